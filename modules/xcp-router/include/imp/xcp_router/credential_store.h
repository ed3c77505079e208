#pragma once
// SCRAM credentials of the users (RFC 5802 §3, RFC 7677): only the salt, the
// iteration count, StoredKey and ServerKey are kept, never a password.
//
// The credentials are xmpp::ScramCredential, derived by
// xmpp::deriveScramCredential (SASLprep, RFC 4013, then PBKDF2): the keys the
// store holds are the ones the SASL exchange of modules/xmpp checks.
// setPassword() stores SCRAM-SHA-1 and SCRAM-SHA-256 for a user in one
// transaction, each with its own random salt. Thread-safe, blocking.
#include <imp/xmpp/sasl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace imp::core {
class Database;
}

namespace imp::xcp {

// "SCRAM-SHA-1" | "SCRAM-SHA-256": the mechanism column of xcp_user_credential.
std::string_view mechanismName(xmpp::ScramHash h);
bool parseMechanism(std::string_view name, xmpp::ScramHash& out);

class CredentialStore {
 public:
  explicit CredentialStore(core::Database& db) : db_(db) {}

  // Derives and stores SCRAM-SHA-1 and SCRAM-SHA-256 credentials for the
  // user (replacing earlier ones), each with a fresh random salt of
  // xmpp::kScramSaltBytes, from the SASLprep'd password. Throws
  // core::AdminError 400 for an iteration count outside
  // [xmpp::kScramMinIterations, xmpp::kScramMaxIterations] or a password
  // SASLprep refuses (or that it maps to nothing), with the reason; 404 for
  // an unknown user; nothing is stored then.
  void setPassword(const std::string& userid, std::string_view password, std::uint32_t iterations);
  // Stores one credential as given (replacing the user's earlier one of that mechanism).
  void put(const std::string& userid, const xmpp::ScramCredential& c);
  std::optional<xmpp::ScramCredential> get(const std::string& userid, xmpp::ScramHash h);
  // Mechanisms the user has credentials for.
  std::vector<xmpp::ScramHash> mechanisms(const std::string& userid);
  bool remove(const std::string& userid);

 private:
  core::Database& db_;
};

}  // namespace imp::xcp
