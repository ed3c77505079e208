#pragma once
// SCRAM credentials of the users (RFC 5802 §3, RFC 7677): only the salt, the
// iteration count, StoredKey and ServerKey are kept, never a password.
//
// deriveScram() computes them from a password (PBKDF2 = Hi(), HMAC, H with
// OpenSSL); setPassword() stores SCRAM-SHA-1 and SCRAM-SHA-256 for a user in
// one transaction, each with its own random salt. Thread-safe, blocking.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace imp::core {
class Database;
}

namespace imp::xcp {

enum class ScramHash { Sha1, Sha256 };
// "SCRAM-SHA-1" | "SCRAM-SHA-256"
std::string_view mechanismName(ScramHash h);
bool parseMechanism(std::string_view name, ScramHash& out);

// RFC 5802 §3; byte strings are raw (not base64).
struct StoredScram {
  ScramHash hash = ScramHash::Sha256;
  std::string salt;
  std::uint32_t iterations = 0;
  std::string storedKey;  // H(HMAC(SaltedPassword, "Client Key"))
  std::string serverKey;  // HMAC(SaltedPassword, "Server Key")
  friend bool operator==(const StoredScram&, const StoredScram&) = default;
};

// RFC 7677 §4 asks for at least 4096 iterations.
inline constexpr std::uint32_t kMinScramIterations = 4096;
inline constexpr std::uint32_t kMaxScramIterations = 10000000;
inline constexpr std::size_t kMaxPasswordBytes = 1023;

// Checks a password for storage; returns "" when accepted, else why not.
// Accepted: 1..1023 bytes of printable ASCII (for which SASLprep, RFC 4013,
// is the identity, so the client's and the server's keys agree). Other
// characters need SASLprep and are refused with a message saying so.
std::string passwordProblem(std::string_view password);

// SaltedPassword = Hi(password, salt, i); throws std::invalid_argument for
// iterations outside [1, kMaxScramIterations] or an empty salt.
StoredScram deriveScram(ScramHash h, std::string_view password, std::string_view salt, std::uint32_t iterations);

// Base64 (RFC 4648 §4, with padding), as SCRAM messages and the table use.
std::string base64Encode(std::string_view bytes);
// nullopt for anything that is not canonical base64.
std::optional<std::string> base64Decode(std::string_view text);

class CredentialStore {
 public:
  explicit CredentialStore(core::Database& db) : db_(db) {}

  // Derives and stores SCRAM-SHA-1 and SCRAM-SHA-256 credentials for the
  // user (replacing earlier ones), each with a fresh 16-byte random salt.
  // Throws core::AdminError 400 for a refused password or iteration count,
  // 404 for an unknown user; nothing is stored then.
  void setPassword(const std::string& userid, std::string_view password, std::uint32_t iterations);
  // Stores one credential as given (replacing the user's earlier one of that mechanism).
  void put(const std::string& userid, const StoredScram& c);
  std::optional<StoredScram> get(const std::string& userid, ScramHash h);
  // Mechanisms the user has credentials for.
  std::vector<ScramHash> mechanisms(const std::string& userid);
  bool remove(const std::string& userid);

 private:
  core::Database& db_;
};

}  // namespace imp::xcp
