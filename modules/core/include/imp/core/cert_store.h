#pragma once
// The trust store cup-trust (TLS-4): CA certificates trusted cluster-wide,
// kept in the cluster database (cert_trust), and the bundle file each node
// writes from them for its TLS listeners.
#include <filesystem>
#include <string>
#include <vector>

#include "imp/core/cert_tools.h"

namespace imp::core {

class Database;
class DbSession;

struct TrustEntry {
  CertInfo info;
  std::string addedAt;  // "2026-12-07 19:00:00.000" (UTC)
};

class TrustStore {
 public:
  explicit TrustStore(Database& db) : db_(db) {}

  std::vector<TrustEntry> list();
  // Adds every certificate of `pem`. Throws CertError, naming the
  // certificate, for a text that is not PEM, a certificate that is not a CA,
  // one that is expired or not yet valid at `now`, or one already stored (or
  // twice in the text); nothing is added then. Bumps the cluster settings
  // generation; returns the added entries.
  std::vector<CertInfo> add(const std::string& pem, std::time_t now);
  // Removes the entry whose fingerprint (with or without colons, any case) or
  // subject CN is `key`. Throws CertError when none or several match.
  // Returns the removed entry and bumps the generation.
  CertInfo remove(const std::string& key);
  // The entry `key` names (as remove()); throws CertError.
  CertInfo find(const std::string& key);

 private:
  Database& db_;
};

// Writes `bundle` (temp file + rename): the content of `caFile` (if given)
// followed by every trust-store entry. Returns the SHA-256 fingerprints of
// the entries written, in order (for the callers' cache keys).
std::vector<std::string> writeTrustBundle(const std::vector<TrustEntry>& entries, const std::filesystem::path& caFile,
                                          const std::filesystem::path& bundle);

// Writes `content` to `path` through a temp file in the same directory and
// rename(2), with `mode` (0600 for keys).
void writeFileAtomically(const std::filesystem::path& path, const std::string& content, unsigned mode);

}  // namespace imp::core
