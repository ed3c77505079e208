#pragma once
// Shared by the SASL sources only: the SCRAM primitives (RFC 5802 §2.2) over
// OpenSSL, the unknown-user credential, and the mechanism factories.
#include <imp/xmpp/sasl.h>

#include <memory>
#include <string>
#include <string_view>

namespace imp::xmpp::detail {

std::string hashOf(ScramHash h, std::string_view data);
std::string hmacOf(ScramHash h, std::string_view key, std::string_view data);
// Hi(password, salt, i): PBKDF2 with HMAC-H, output length = hash size.
std::string pbkdf2(ScramHash h, std::string_view password, std::string_view salt, std::uint32_t iterations);
// Constant-time comparison of equal-length byte strings (false otherwise).
bool sameBytes(std::string_view a, std::string_view b);
// Keys from a SaltedPassword.
ScramCredential credentialFromSalted(ScramHash h, std::string_view saltedPassword, std::string_view salt,
                                     std::uint32_t iterations);
// RFC 5802 §9: what an unknown `user` gets, stable for a (secret, hash,
// user): salt and keys from HMAC-SHA-256(secret, label | hash | user), the
// configured iteration count.
ScramCredential fakeCredential(const SaslConfig& config, ScramHash h, std::string_view user);
std::string randomBytes(std::size_t n);
bool validUtf8(std::string_view s);

std::unique_ptr<SaslExchange> makeScramExchange(std::string mechanism, ScramHash hash, bool plus,
                                                std::shared_ptr<const SaslConfig> config,
                                                CredentialLookup lookup, SaslStream stream);
std::unique_ptr<SaslExchange> makePlainExchange(std::shared_ptr<const SaslConfig> config, CredentialLookup lookup);

}  // namespace imp::xmpp::detail
