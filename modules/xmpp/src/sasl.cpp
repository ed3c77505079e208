// SASL framework for XMPP (RFC 6120 §6): conditions, the payload encoding,
// the mechanism list, SASLprep, and the exchange base class with its factory.
#include "sasl_internal.h"

#include <unicode/usprep.h>
#include <unicode/ustring.h>

#include <stdexcept>

namespace imp::xmpp {

std::string_view conditionName(SaslCondition c) {
  switch (c) {
    case SaslCondition::Aborted: return "aborted";
    case SaslCondition::AccountDisabled: return "account-disabled";
    case SaslCondition::CredentialsExpired: return "credentials-expired";
    case SaslCondition::EncryptionRequired: return "encryption-required";
    case SaslCondition::IncorrectEncoding: return "incorrect-encoding";
    case SaslCondition::InvalidAuthzid: return "invalid-authzid";
    case SaslCondition::InvalidMechanism: return "invalid-mechanism";
    case SaslCondition::MalformedRequest: return "malformed-request";
    case SaslCondition::MechanismTooWeak: return "mechanism-too-weak";
    case SaslCondition::NotAuthorized: return "not-authorized";
    case SaslCondition::TemporaryAuthFailure: return "temporary-auth-failure";
  }
  return "not-authorized";
}

std::string_view channelBindingName(ChannelBindingType t) {
  return t == ChannelBindingType::TlsExporter ? "tls-exporter" : "tls-server-end-point";
}

// ---- base64 -----------------------------------------------------------------

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::string base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t v = (std::uint32_t(std::uint8_t(bytes[i])) << 16) | (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) |
                      std::uint8_t(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    std::uint32_t v = std::uint32_t(std::uint8_t(bytes[i])) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    std::uint32_t v = (std::uint32_t(std::uint8_t(bytes[i])) << 16) | (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int a = sextet(text[i]), b = sextet(text[i + 1]);
    if (a < 0 || b < 0) return std::nullopt;
    if (last && text[i + 2] == '=') {
      // "xx==": one byte; the unused low 4 bits must be zero (canonical).
      if (text[i + 3] != '=' || (b & 0x0F) != 0) return std::nullopt;
      out += static_cast<char>((a << 2) | (b >> 4));
      break;
    }
    int c = sextet(text[i + 2]);
    if (c < 0) return std::nullopt;
    if (last && text[i + 3] == '=') {
      if ((c & 0x03) != 0) return std::nullopt;
      out += static_cast<char>((a << 2) | (b >> 4));
      out += static_cast<char>(((b & 0x0F) << 4) | (c >> 2));
      break;
    }
    int d = sextet(text[i + 3]);
    if (d < 0) return std::nullopt;
    out += static_cast<char>((a << 2) | (b >> 4));
    out += static_cast<char>(((b & 0x0F) << 4) | (c >> 2));
    out += static_cast<char>(((c & 0x03) << 6) | d);
  }
  return out;
}

std::variant<std::optional<std::string>, SaslFailure> decodeSaslPayload(std::string_view text) {
  if (text.empty()) return std::optional<std::string>{};
  if (text == "=") return std::optional<std::string>{std::string()};
  auto bytes = base64Decode(text);
  if (!bytes)
    return SaslFailure{SaslCondition::IncorrectEncoding,
                       "the SASL element's character data is not canonical base64 (RFC 6120 §6.4.2, RFC 4648 §4)"};
  if (bytes->empty())
    return SaslFailure{SaslCondition::IncorrectEncoding, "base64 of an empty response must be sent as '='"};
  return std::optional<std::string>{std::move(*bytes)};
}

// ---- SASLprep ---------------------------------------------------------------

std::optional<std::string> saslPrep(std::string_view utf8) {
  if (!detail::validUtf8(utf8) || utf8.size() > 65536) return std::nullopt;
  // ASCII without controls is unchanged by the profile: skip ICU.
  bool plain = true;
  for (char ch : utf8) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7F) {
      plain = false;
      break;
    }
  }
  if (plain) return std::string(utf8);

  UErrorCode st = U_ZERO_ERROR;
  std::u16string in(utf8.size() + 1, u'\0');
  int32_t inLen = 0;
  u_strFromUTF8(in.data(), static_cast<int32_t>(in.size()), &inLen, utf8.data(), static_cast<int32_t>(utf8.size()), &st);
  if (U_FAILURE(st)) return std::nullopt;
  UStringPrepProfile* profile = usprep_openByType(USPREP_RFC4013_SASLPREP, &st);
  if (U_FAILURE(st)) throw std::runtime_error(std::string("ICU SASLprep profile unavailable: ") + u_errorName(st));
  // NFKC can expand a code point up to 18 times (U+FDFA).
  std::u16string out(static_cast<std::size_t>(inLen) * 18 + 1, u'\0');
  int32_t outLen = usprep_prepare(profile, in.data(), inLen, out.data(), static_cast<int32_t>(out.size()),
                                  USPREP_DEFAULT, nullptr, &st);
  usprep_close(profile);
  if (U_FAILURE(st)) return std::nullopt;
  std::string result(static_cast<std::size_t>(outLen) * 3 + 1, '\0');
  int32_t resultLen = 0;
  u_strToUTF8(result.data(), static_cast<int32_t>(result.size()), &resultLen, out.data(), outLen, &st);
  if (U_FAILURE(st)) return std::nullopt;
  result.resize(static_cast<std::size_t>(resultLen));
  return result;
}

// ---- Mechanisms and configuration -------------------------------------------

std::vector<std::string> mechanisms(bool tls, ChannelBindingTypes bindings, bool allowSha1) {
  std::vector<std::string> out;
  if (tls && bindings.any()) {
    out.emplace_back("SCRAM-SHA-256-PLUS");
    if (allowSha1) out.emplace_back("SCRAM-SHA-1-PLUS");
  }
  out.emplace_back("SCRAM-SHA-256");
  if (allowSha1) out.emplace_back("SCRAM-SHA-1");
  if (tls) out.emplace_back("PLAIN");  // RFC 4616 §4: never over an unencrypted stream
  return out;
}

void checkSaslConfig(const SaslConfig& config) {
  checkScramIterations(config.iterations);
  if (config.fakeCredentialSecret.size() < 16)
    throw std::invalid_argument(
        "the unknown-user secret has " + std::to_string(config.fakeCredentialSecret.size()) +
        " bytes; it needs 16 or more random bytes, the same on every node (RFC 5802 §9)");
  if (config.domain.empty()) throw std::invalid_argument("the SASL domain is empty; set the service's XMPP domain");
}

// ---- SaslExchange -----------------------------------------------------------

SaslExchange::SaslExchange(std::string mechanism, std::shared_ptr<const SaslConfig> config)
    : mechanism_(std::move(mechanism)), config_(std::move(config)) {
  if (config_->stats) config_->stats->started.fetch_add(1, std::memory_order_relaxed);
}

SaslStep SaslExchange::fail(SaslCondition c, std::string detail) {
  finished_ = true;
  succeeded_ = false;
  if (config_->stats) config_->stats->failed[static_cast<std::size_t>(c)].fetch_add(1, std::memory_order_relaxed);
  SaslStep s;
  s.kind = SaslStep::Kind::Failure;
  s.failure = {c, mechanism_ + ": " + detail};
  return s;
}

SaslStep SaslExchange::succeed(std::string user, std::string authzid, std::string data) {
  finished_ = true;
  succeeded_ = true;
  user_ = std::move(user);
  authzid_ = std::move(authzid);
  if (config_->stats) config_->stats->succeeded.fetch_add(1, std::memory_order_relaxed);
  SaslStep s;
  s.kind = SaslStep::Kind::Success;
  s.data = std::move(data);
  return s;
}

SaslStep SaslExchange::challenge(std::string data) {
  SaslStep s;
  s.kind = SaslStep::Kind::Challenge;
  s.data = std::move(data);
  return s;
}

SaslStep SaslExchange::finishedAlready() {
  // Not counted again: the exchange's outcome was counted when it ended.
  SaslStep s;
  s.kind = SaslStep::Kind::Failure;
  s.failure = {SaslCondition::MalformedRequest, mechanism_ + ": a message after the exchange ended"};
  return s;
}

SaslStep SaslExchange::abort() {
  if (finished_) return finishedAlready();
  return fail(SaslCondition::Aborted, "the client aborted the exchange (RFC 6120 §6.4.4)");
}

bool SaslExchange::authzidAllowed(const std::string& user, const std::string& authzid) const {
  if (authzid.empty()) return true;
  auto at = authzid.find('@');
  if (at == std::string::npos || authzid.compare(0, at, user) != 0 || at != user.size()) return false;
  std::string_view domain = std::string_view(authzid).substr(at + 1);
  const std::string& ours = config_->domain;
  if (domain.size() != ours.size()) return false;
  for (std::size_t i = 0; i < domain.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(domain[i]) != lower(ours[i])) return false;
  }
  return true;
}

std::variant<std::unique_ptr<SaslExchange>, SaslFailure> SaslExchange::create(
    std::string_view mechanism, std::shared_ptr<const SaslConfig> config, CredentialLookup lookup, SaslStream stream) {
  auto failure = [&](SaslCondition c, std::string detail) {
    if (config->stats) config->stats->failed[static_cast<std::size_t>(c)].fetch_add(1, std::memory_order_relaxed);
    return SaslFailure{c, std::string(mechanism) + ": " + detail};
  };
  if (!stream.tls) stream.bindings = {};  // no binding data without TLS
  ScramHash hash;
  bool plus = false;
  if (mechanism == "PLAIN") {
    if (!stream.tls)
      return failure(SaslCondition::EncryptionRequired, "PLAIN is offered over TLS only (RFC 4616 §4, RFC 6120 §6.5.4)");
    return detail::makePlainExchange(std::move(config), std::move(lookup));
  } else if (mechanism == "SCRAM-SHA-256") {
    hash = ScramHash::Sha256;
  } else if (mechanism == "SCRAM-SHA-1") {
    hash = ScramHash::Sha1;
  } else if (mechanism == "SCRAM-SHA-256-PLUS") {
    hash = ScramHash::Sha256;
    plus = true;
  } else if (mechanism == "SCRAM-SHA-1-PLUS") {
    hash = ScramHash::Sha1;
    plus = true;
  } else {
    return failure(SaslCondition::InvalidMechanism, "not a mechanism this server supports");
  }
  if (plus && !stream.bindings.types().any())
    return failure(SaslCondition::InvalidMechanism, "-PLUS was not offered: this stream has no channel binding data");
  if (hash == ScramHash::Sha1 && !config->allowSha1)
    return failure(SaslCondition::MechanismTooWeak, "SCRAM-SHA-1 is disabled by configuration");
  return detail::makeScramExchange(std::string(mechanism), hash, plus, std::move(config), std::move(lookup),
                                   std::move(stream));
}

}  // namespace imp::xmpp
