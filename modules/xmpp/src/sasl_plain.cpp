// PLAIN (RFC 4616), checked against the stored SCRAM-SHA-256 credential: the
// offered password is SASLprep'd and run through PBKDF2 with the stored salt
// and iteration count, so no password is ever stored. Offered over TLS only.
#include "sasl_internal.h"

#include <exception>

namespace imp::xmpp {
namespace {

constexpr std::size_t kMaxPlainField = 1024;

}  // namespace

std::variant<PlainMessage, SaslFailure> parsePlainMessage(std::string_view message) {
  auto first = message.find('\0');
  if (first == std::string_view::npos)
    return SaslFailure{SaslCondition::MalformedRequest, "PLAIN message has no NUL separator (RFC 4616 §2)"};
  auto second = message.find('\0', first + 1);
  if (second == std::string_view::npos)
    return SaslFailure{SaslCondition::MalformedRequest, "PLAIN message has one NUL separator, not two (RFC 4616 §2)"};
  if (message.find('\0', second + 1) != std::string_view::npos)
    return SaslFailure{SaslCondition::MalformedRequest, "PLAIN message has more than two NUL bytes (RFC 4616 §2)"};
  PlainMessage out{std::string(message.substr(0, first)), std::string(message.substr(first + 1, second - first - 1)),
                   std::string(message.substr(second + 1))};
  if (out.authcid.empty()) return SaslFailure{SaslCondition::MalformedRequest, "PLAIN authcid is empty (RFC 4616 §2)"};
  if (out.password.empty()) return SaslFailure{SaslCondition::MalformedRequest, "PLAIN password is empty (RFC 4616 §2)"};
  for (const auto* field : {&out.authzid, &out.authcid, &out.password}) {
    if (field->size() > kMaxPlainField)
      return SaslFailure{SaslCondition::MalformedRequest,
                         "a PLAIN field is longer than " + std::to_string(kMaxPlainField) + " bytes"};
    if (!detail::validUtf8(*field))
      return SaslFailure{SaslCondition::MalformedRequest, "a PLAIN field is not valid UTF-8 (RFC 4616 §2)"};
  }
  return out;
}

namespace {

class PlainExchange final : public SaslExchange {
 public:
  PlainExchange(std::shared_ptr<const SaslConfig> config, CredentialLookup lookup)
      : SaslExchange("PLAIN", std::move(config)), lookup_(std::move(lookup)) {}

  SaslStep start(const std::optional<std::string>& initial) override {
    if (finished_) return finishedAlready();
    if (started_) return fail(SaslCondition::MalformedRequest, "a second <auth/> in one exchange");
    started_ = true;
    if (!initial) {
      awaiting_ = true;  // RFC 6120 §6.4.2: empty challenge, then the message
      return challenge({});
    }
    return check(*initial);
  }

  SaslStep next(const std::string& response) override {
    if (finished_) return finishedAlready();
    if (!awaiting_) return fail(SaslCondition::MalformedRequest, "a <response/> PLAIN did not ask for");
    awaiting_ = false;
    return check(response);
  }

 private:
  SaslStep check(const std::string& message) {
    auto parsed = parsePlainMessage(message);
    if (auto* f = std::get_if<SaslFailure>(&parsed)) return fail(f->condition, f->detail);
    auto& plain = std::get<PlainMessage>(parsed);
    if (!authzidAllowed(plain.authcid, plain.authzid))
      return fail(SaslCondition::InvalidAuthzid,
                  "authzid '" + plain.authzid + "' is not the bare JID of '" + plain.authcid + "' (RFC 6120 §6.3.8)");
    std::optional<ScramCredential> credential;
    try {
      credential = lookup_(plain.authcid, ScramHash::Sha256);
    } catch (const std::exception& e) {
      return fail(SaslCondition::TemporaryAuthFailure, std::string("credential lookup failed: ") + e.what());
    } catch (...) {
      return fail(SaslCondition::TemporaryAuthFailure, "credential lookup failed with an unknown exception");
    }
    bool known = credential.has_value();
    if (known && (credential->hash != ScramHash::Sha256 || credential->salt.empty() ||
                  credential->salt.size() > 1024 || credential->iterations == 0 ||
                  credential->iterations > kScramMaxIterations ||
                  credential->storedKey.size() != hashSize(ScramHash::Sha256)))
      return fail(SaslCondition::TemporaryAuthFailure,
                  "the stored SCRAM-SHA-256 credential of '" + plain.authcid + "' is unusable");
    if (!known) {
      // Same PBKDF2 cost as a real user, so time does not reveal the name.
      credential = detail::fakeCredential(*config_, ScramHash::Sha256, plain.authcid);
      if (config_->stats) config_->stats->unknownUser.fetch_add(1, std::memory_order_relaxed);
    }
    auto prepared = saslPrep(plain.password);
    // A password SASLprep refuses can never have been stored: the same
    // answer as a wrong one, after the same work.
    auto salted = detail::pbkdf2(ScramHash::Sha256, prepared ? *prepared : plain.password, credential->salt,
                                 credential->iterations);
    auto derived = detail::credentialFromSalted(ScramHash::Sha256, salted, credential->salt, credential->iterations);
    bool match = detail::sameBytes(derived.storedKey, credential->storedKey);
    if (!known) return fail(SaslCondition::NotAuthorized, "unknown user '" + plain.authcid + "'");
    if (!prepared)
      return fail(SaslCondition::NotAuthorized, "password of '" + plain.authcid + "' refused by SASLprep (RFC 4013)");
    if (!match) return fail(SaslCondition::NotAuthorized, "wrong password for '" + plain.authcid + "'");
    return succeed(plain.authcid, plain.authzid, {});
  }

  CredentialLookup lookup_;
  bool started_ = false;
  bool awaiting_ = false;
};

}  // namespace

namespace detail {
std::unique_ptr<SaslExchange> makePlainExchange(std::shared_ptr<const SaslConfig> config, CredentialLookup lookup) {
  return std::make_unique<PlainExchange>(std::move(config), std::move(lookup));
}
}  // namespace detail

}  // namespace imp::xmpp
