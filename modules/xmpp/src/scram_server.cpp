// SCRAM server (RFC 5802 §5, §7; RFC 7677), with channel binding for the
// -PLUS variants (RFC 5802 §6; RFC 9266 tls-exporter; RFC 5929
// tls-server-end-point). The message grammar is parsed strictly: attribute
// order as §7 fixes it, saslname escapes, printable nonces, canonical base64,
// the reserved m= refused (§5.1); unknown extensions are ignored as §7 asks.
#include "sasl_internal.h"

#include <exception>
#include <stdexcept>
#include <vector>

namespace imp::xmpp {
namespace {

constexpr std::size_t kMaxScramMessage = 8192;

SaslFailure malformed(std::string detail) { return {SaslCondition::MalformedRequest, std::move(detail)}; }

std::vector<std::string_view> splitCommas(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    auto comma = s.find(',', start);
    if (comma == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
}

bool isAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

// printable = %x21-2B / %x2D-7E (RFC 5802 §7): the nonce alphabet.
bool printable(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c > 0x7E || c == ',') return false;
  }
  return true;
}

// saslname = 1*(value-safe-char / "=2C" / "=3D"), decoded; `what` names the
// field in the error.
std::variant<std::string, SaslFailure> decodeSaslname(std::string_view s, std::string_view what) {
  if (s.empty()) return malformed(std::string(what) + " is empty");
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '=') {
      out += s[i];
      continue;
    }
    auto esc = s.substr(i, 3);
    if (esc == "=2C")
      out += ',';
    else if (esc == "=3D")
      out += '=';
    else
      return malformed(std::string(what) + " has a '=' that is neither =2C nor =3D (RFC 5802 §5.1)");
    i += 2;
  }
  return out;
}

// attr-val extensions: ALPHA "=" 1*value-char; ignored once well-formed.
std::optional<SaslFailure> checkExtension(std::string_view token) {
  if (token.size() < 3 || !isAlpha(token[0]) || token[1] != '=')
    return malformed("'" + std::string(token.substr(0, 16)) + "' is not an attribute=value extension (RFC 5802 §7)");
  if (token[0] == 'm') return malformed("the reserved mandatory extension m= is not supported (RFC 5802 §5.1)");
  return std::nullopt;
}

std::optional<SaslFailure> checkEnvelope(std::string_view message, std::string_view what) {
  if (message.size() > kMaxScramMessage)
    return malformed(std::string(what) + " is " + std::to_string(message.size()) + " bytes, more than " +
                     std::to_string(kMaxScramMessage));
  if (message.find('\0') != std::string_view::npos) return malformed(std::string(what) + " contains a NUL byte");
  if (!detail::validUtf8(message)) return malformed(std::string(what) + " is not valid UTF-8");
  return std::nullopt;
}

}  // namespace

std::variant<ScramClientFirst, SaslFailure> parseScramClientFirst(std::string_view message) {
  if (auto bad = checkEnvelope(message, "client-first-message")) return *bad;
  auto tokens = splitCommas(message);
  if (tokens.size() < 4) return malformed("client-first-message needs gs2-header, n= and r= (RFC 5802 §7)");
  ScramClientFirst out;
  // gs2-cbind-flag (RFC 5802 §7): "n" / "y" / "p=" cb-name
  std::string_view flag = tokens[0];
  if (flag == "n" || flag == "y") {
    out.cbindFlag = flag[0];
  } else if (flag.size() > 2 && flag.substr(0, 2) == "p=") {
    out.cbindFlag = 'p';
    for (char c : flag.substr(2))
      if (!isAlpha(c) && !(c >= '0' && c <= '9') && c != '.' && c != '-')
        return malformed("channel binding name has a character outside ALPHA / DIGIT / '.' / '-' (RFC 5802 §7)");
    out.cbindName = std::string(flag.substr(2));
  } else if (flag == "m" || flag.substr(0, 2) == "m=") {
    return malformed("the reserved mandatory extension m= is not supported (RFC 5802 §5.1)");
  } else {
    return malformed("GS2 channel binding flag must be 'n', 'y' or 'p=<type>' (RFC 5802 §7)");
  }
  // authzid = "a=" saslname, or nothing
  if (!tokens[1].empty()) {
    if (tokens[1].substr(0, 2) != "a=") return malformed("GS2 authzid must be empty or 'a=<saslname>' (RFC 5802 §7)");
    auto authz = decodeSaslname(tokens[1].substr(2), "authzid");
    if (auto* f = std::get_if<SaslFailure>(&authz)) return *f;
    out.authzid = std::get<std::string>(authz);
  }
  std::size_t headerLen = tokens[0].size() + 1 + tokens[1].size() + 1;
  out.gs2Header = std::string(message.substr(0, headerLen));
  out.bare = std::string(message.substr(headerLen));
  // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
  std::string_view user = tokens[2];
  if (user.substr(0, 2) == "m=") return malformed("the reserved mandatory extension m= is not supported (RFC 5802 §5.1)");
  if (user.substr(0, 2) != "n=") return malformed("client-first-message-bare must start with n= (RFC 5802 §7)");
  auto name = decodeSaslname(user.substr(2), "username");
  if (auto* f = std::get_if<SaslFailure>(&name)) return *f;
  out.user = std::get<std::string>(name);
  std::string_view nonce = tokens[3];
  if (nonce.substr(0, 2) != "r=") return malformed("r= must follow n= in client-first-message (RFC 5802 §7)");
  if (!printable(nonce.substr(2))) return malformed("client nonce is empty or not printable ASCII (RFC 5802 §7)");
  out.clientNonce = std::string(nonce.substr(2));
  for (std::size_t i = 4; i < tokens.size(); ++i)
    if (auto bad = checkExtension(tokens[i])) return *bad;
  return out;
}

std::variant<ScramClientFinal, SaslFailure> parseScramClientFinal(std::string_view message) {
  if (auto bad = checkEnvelope(message, "client-final-message")) return *bad;
  auto tokens = splitCommas(message);
  if (tokens.size() < 3) return malformed("client-final-message needs c=, r= and p= (RFC 5802 §7)");
  ScramClientFinal out;
  if (tokens[0].substr(0, 2) != "c=") return malformed("client-final-message must start with c= (RFC 5802 §7)");
  auto cb = base64Decode(tokens[0].substr(2));
  if (!cb || cb->empty()) return malformed("c= is not canonical, non-empty base64 (RFC 5802 §7)");
  out.channelBinding = std::move(*cb);
  if (tokens[1].substr(0, 2) != "r=") return malformed("r= must follow c= in client-final-message (RFC 5802 §7)");
  if (!printable(tokens[1].substr(2))) return malformed("nonce is empty or not printable ASCII (RFC 5802 §7)");
  out.nonce = std::string(tokens[1].substr(2));
  std::string_view last = tokens.back();
  if (last.substr(0, 2) != "p=") return malformed("client-final-message must end with the proof p= (RFC 5802 §7)");
  auto proof = base64Decode(last.substr(2));
  if (!proof || proof->empty()) return malformed("p= is not canonical, non-empty base64 (RFC 5802 §7)");
  out.proof = std::move(*proof);
  for (std::size_t i = 2; i + 1 < tokens.size(); ++i)
    if (auto bad = checkExtension(tokens[i])) return *bad;
  out.withoutProof = std::string(message.substr(0, message.size() - last.size() - 1));
  return out;
}

namespace {

class ScramExchange final : public SaslExchange {
 public:
  ScramExchange(std::string mechanism, ScramHash hash, bool plus, std::shared_ptr<const SaslConfig> config,
                CredentialLookup lookup, SaslStream stream)
      : SaslExchange(std::move(mechanism), std::move(config)),
        hash_(hash),
        plus_(plus),
        lookup_(std::move(lookup)),
        stream_(std::move(stream)) {}

  SaslStep start(const std::optional<std::string>& initial) override {
    if (finished_) return finishedAlready();
    if (state_ != State::Initial) return fail(SaslCondition::MalformedRequest, "a second <auth/> in one exchange");
    if (!initial) {
      // RFC 6120 §6.4.2: no initial response -> an empty challenge first.
      state_ = State::AwaitClientFirst;
      return challenge({});
    }
    return clientFirst(*initial);
  }

  SaslStep next(const std::string& response) override {
    if (finished_) return finishedAlready();
    switch (state_) {
      case State::AwaitClientFirst: return clientFirst(response);
      case State::AwaitClientFinal: return clientFinal(response);
      case State::Initial: break;
    }
    return fail(SaslCondition::MalformedRequest, "a <response/> before <auth/>");
  }

 private:
  enum class State { Initial, AwaitClientFirst, AwaitClientFinal };

  SaslStep clientFirst(const std::string& message) {
    auto parsed = parseScramClientFirst(message);
    if (auto* f = std::get_if<SaslFailure>(&parsed)) return fail(f->condition, f->detail);
    auto& first = std::get<ScramClientFirst>(parsed);

    // Channel binding negotiation (RFC 5802 §6).
    std::string cbindData;
    if (plus_) {
      if (first.cbindFlag != 'p')
        return fail(SaslCondition::MalformedRequest,
                    std::string("a -PLUS mechanism needs the GS2 flag p=<type>, the client sent '") + first.cbindFlag +
                        "' (RFC 5802 §6)");
      const std::optional<std::string>* data = nullptr;
      if (first.cbindName == channelBindingName(ChannelBindingType::TlsExporter))
        data = &stream_.bindings.tlsExporter;
      else if (first.cbindName == channelBindingName(ChannelBindingType::TlsServerEndPoint))
        data = &stream_.bindings.tlsServerEndPoint;
      if (!data || !data->has_value())
        return fail(SaslCondition::MalformedRequest,
                    "channel binding type '" + first.cbindName + "' is not available on this stream (offered:" +
                        offeredTypes() + ")");
      cbindData = **data;
    } else if (first.cbindFlag == 'p') {
      return fail(SaslCondition::MalformedRequest,
                  "channel binding p=" + first.cbindName + " with a mechanism without -PLUS (RFC 5802 §6)");
    } else if (first.cbindFlag == 'y' && stream_.bindings.types().any()) {
      // The client could bind but believes we cannot: the -PLUS list was
      // stripped on the way (RFC 5802 §6, downgrade detection).
      return fail(SaslCondition::NotAuthorized,
                  "GS2 flag 'y' although this stream offered -PLUS mechanisms: possible downgrade (RFC 5802 §6)");
    }

    if (!authzidAllowed(first.user, first.authzid))
      return fail(SaslCondition::InvalidAuthzid,
                  "authzid '" + first.authzid + "' is not the bare JID of '" + first.user + "' (RFC 6120 §6.3.8)");

    std::optional<ScramCredential> credential;
    try {
      credential = lookup_(first.user, hash_);
    } catch (const std::exception& e) {
      return fail(SaslCondition::TemporaryAuthFailure, std::string("credential lookup failed: ") + e.what());
    } catch (...) {
      return fail(SaslCondition::TemporaryAuthFailure, "credential lookup failed with an unknown exception");
    }
    if (credential) {
      if (credential->hash != hash_)
        return fail(SaslCondition::TemporaryAuthFailure,
                    "the credential store returned a SCRAM-" + std::string(hashName(credential->hash)) +
                        " credential for SCRAM-" + std::string(hashName(hash_)));
      if (credential->salt.empty() || credential->salt.size() > 1024 || credential->iterations == 0 ||
          credential->iterations > kScramMaxIterations ||
          credential->storedKey.size() != hashSize(hash_) || credential->serverKey.size() != hashSize(hash_))
        return fail(SaslCondition::TemporaryAuthFailure,
                    "the stored credential of '" + first.user + "' is corrupt (salt, iterations or key sizes)");
      known_ = true;
      credential_ = std::move(*credential);
    } else {
      // RFC 5802 §9: carry on with a stable fake; the peer sees the same
      // messages as for a wrong password.
      known_ = false;
      credential_ = detail::fakeCredential(*config_, hash_, first.user);
      if (config_->stats) config_->stats->unknownUser.fetch_add(1, std::memory_order_relaxed);
    }

    std::string serverNonce =
        config_->nonceSource ? config_->nonceSource() : base64Encode(detail::randomBytes(24));
    if (!printable(serverNonce)) throw std::logic_error("SaslConfig::nonceSource returned a nonce outside printable");
    user_ = first.user;
    authzid_ = first.authzid;
    nonce_ = first.clientNonce + serverNonce;
    clientFirstBare_ = first.bare;
    expectedBinding_ = first.gs2Header + cbindData;
    gs2Header_ = first.gs2Header;
    serverFirst_ = "r=" + nonce_ + ",s=" + base64Encode(credential_.salt) + ",i=" + std::to_string(credential_.iterations);
    state_ = State::AwaitClientFinal;
    return challenge(serverFirst_);
  }

  SaslStep clientFinal(const std::string& message) {
    auto parsed = parseScramClientFinal(message);
    if (auto* f = std::get_if<SaslFailure>(&parsed)) return fail(f->condition, f->detail);
    auto& final = std::get<ScramClientFinal>(parsed);
    if (final.channelBinding.compare(0, gs2Header_.size(), gs2Header_) != 0)
      return fail(SaslCondition::MalformedRequest, "c= does not repeat the GS2 header of client-first (RFC 5802 §7)");
    if (!detail::sameBytes(final.channelBinding, expectedBinding_))
      return fail(SaslCondition::NotAuthorized,
                  plus_ ? "channel binding data differs from this TLS session's (RFC 5802 §6)"
                        : "c= carries channel binding data without p= in client-first (RFC 5802 §6)");
    if (final.nonce != nonce_)
      return fail(SaslCondition::NotAuthorized, "r= is not the nonce of server-first (RFC 5802 §5.1)");
    if (final.proof.size() != hashSize(hash_))
      return fail(SaslCondition::MalformedRequest, "the proof has " + std::to_string(final.proof.size()) +
                                                       " bytes, SCRAM-" + std::string(hashName(hash_)) + " gives " +
                                                       std::to_string(hashSize(hash_)));
    // RFC 5802 §3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage);
    // the proof is right when H(ClientKey) = StoredKey. The fake credential
    // of an unknown user goes through the same computation.
    std::string authMessage = clientFirstBare_ + "," + serverFirst_ + "," + final.withoutProof;
    std::string signature = detail::hmacOf(hash_, credential_.storedKey, authMessage);
    std::string clientKey = final.proof;
    for (std::size_t i = 0; i < clientKey.size(); ++i) clientKey[i] = static_cast<char>(clientKey[i] ^ signature[i]);
    bool proofOk = detail::sameBytes(detail::hashOf(hash_, clientKey), credential_.storedKey);
    if (!known_) return fail(SaslCondition::NotAuthorized, "unknown user '" + user_ + "'");
    if (!proofOk) return fail(SaslCondition::NotAuthorized, "wrong proof for '" + user_ + "' (wrong password)");
    std::string serverSignature = detail::hmacOf(hash_, credential_.serverKey, authMessage);
    auto user = user_;
    auto authzid = authzid_;
    return succeed(std::move(user), std::move(authzid), "v=" + base64Encode(serverSignature));
  }

  std::string offeredTypes() const {
    std::string s;
    if (stream_.bindings.tlsExporter) s += " tls-exporter";
    if (stream_.bindings.tlsServerEndPoint) s += " tls-server-end-point";
    return s.empty() ? " none" : s;
  }

  ScramHash hash_;
  bool plus_;
  CredentialLookup lookup_;
  SaslStream stream_;
  State state_ = State::Initial;
  bool known_ = false;
  ScramCredential credential_;
  std::string nonce_, clientFirstBare_, serverFirst_, gs2Header_, expectedBinding_;
};

}  // namespace

namespace detail {
std::unique_ptr<SaslExchange> makeScramExchange(std::string mechanism, ScramHash hash, bool plus,
                                                std::shared_ptr<const SaslConfig> config, CredentialLookup lookup,
                                                SaslStream stream) {
  return std::make_unique<ScramExchange>(std::move(mechanism), hash, plus, std::move(config), std::move(lookup),
                                         std::move(stream));
}
}  // namespace detail

}  // namespace imp::xmpp
