#include "imp/core/cert_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "imp/core/cluster_settings.h"
#include "imp/core/database.h"

namespace imp::core {

namespace {

constexpr const char* kCols = "SELECT fingerprint, pem, added_at FROM cert_trust";

std::string isoUtc(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::vector<TrustEntry> readEntries(DbSession& s) {
  std::vector<TrustEntry> out;
  auto r = s.query(std::string(kCols) + " ORDER BY subject_cn, fingerprint");
  for (std::size_t i = 0; i < r.size(); ++i) {
    TrustEntry e;
    e.info = parseCertificate(r.str(i, "pem"));
    e.addedAt = r.str(i, "added_at");
    out.push_back(std::move(e));
  }
  return out;
}

// "ab:cd..." or "ABCD..." -> "AB:CD:..."; "" when `key` is not a SHA-256.
std::string normalFingerprint(const std::string& key) {
  std::string hex;
  for (char ch : key) {
    if (ch == ':') continue;
    if (!std::isxdigit(static_cast<unsigned char>(ch))) return "";
    hex += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  if (hex.size() != 64) return "";
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) out += (i ? ":" : "") + hex.substr(i, 2);
  return out;
}

const TrustEntry& pick(const std::vector<TrustEntry>& all, const std::string& key) {
  const auto fp = normalFingerprint(key);
  std::vector<const TrustEntry*> hits;
  for (const auto& e : all)
    if ((!fp.empty() && e.info.sha256 == fp) || e.info.subjectCn == key) hits.push_back(&e);
  if (hits.empty()) throw CertError("no certificate cup-trust/" + key + " in the trust store (impctl cert list shows them)");
  if (hits.size() > 1) {
    std::string fps;
    for (const auto* h : hits) fps += "\n  cup-trust/" + h->info.sha256;
    throw CertError("several trust-store certificates have the CN " + key + "; name one by its fingerprint:" + fps);
  }
  return *hits.front();
}

}  // namespace

std::vector<TrustEntry> TrustStore::list() {
  std::vector<TrustEntry> out;
  db_.run([&](DbSession& s) { out = readEntries(s); });
  return out;
}

std::vector<CertInfo> TrustStore::add(const std::string& pem, std::time_t now) {
  auto certs = parseCertificates(pem);
  const auto nowIso = isoUtc(now);
  std::set<std::string> seen;
  for (const auto& c : certs) {
    const std::string who = c.subject + " (SHA-256 " + c.sha256 + ")";
    if (!c.isCa) throw CertError("not a CA certificate (no basicConstraints CA:TRUE): " + who);
    if (c.notAfter < nowIso) throw CertError("expired on " + c.notAfter + ": " + who);
    if (c.notBefore > nowIso) throw CertError("not valid before " + c.notBefore + ": " + who);
    if (!seen.insert(c.sha256).second) throw CertError("given twice: " + who);
  }
  db_.transaction([&](DbSession& s) {
    for (const auto& c : certs) {
      auto r = s.query("SELECT fingerprint FROM cert_trust WHERE fingerprint = ?", {c.sha256});
      if (!r.empty()) throw CertError("already in the trust store as cup-trust/" + c.sha256 + ": " + c.subject);
      s.exec("INSERT INTO cert_trust (fingerprint, subject_cn, subject, issuer, not_after, pem, added_at) "
             "VALUES (?, ?, ?, ?, ?, ?, CURRENT_TIMESTAMP(3))",
             {c.sha256, c.subjectCn, c.subject, c.issuer, c.notAfter, c.pem});
    }
    ClusterSettings::bump(s);
  });
  return certs;
}

CertInfo TrustStore::find(const std::string& key) { return pick(list(), key).info; }

CertInfo TrustStore::remove(const std::string& key) {
  CertInfo gone;
  db_.transaction([&](DbSession& s) {
    gone = pick(readEntries(s), key).info;
    s.exec("DELETE FROM cert_trust WHERE fingerprint = ?", {gone.sha256});
    ClusterSettings::bump(s);
  });
  return gone;
}

void writeFileAtomically(const std::filesystem::path& path, const std::string& content, unsigned mode) {
  const auto tmp = path.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp);
  ::fchmod(fd, mode);
  std::size_t done = 0;
  while (done < content.size()) {
    auto n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      ::close(fd);
      throw std::runtime_error("cannot write " + tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw std::runtime_error("cannot write " + tmp);
  std::filesystem::rename(tmp, path);
}

std::vector<std::string> writeTrustBundle(const std::vector<TrustEntry>& entries, const std::filesystem::path& caFile,
                                          const std::filesystem::path& bundle) {
  std::string text;
  if (!caFile.empty()) {
    std::ifstream in(caFile, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + caFile.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    if (!text.empty() && text.back() != '\n') text += '\n';
  }
  std::vector<std::string> fps;
  for (const auto& e : entries) {
    text += "# cup-trust/" + e.info.sha256 + " " + e.info.subject + "\n" + e.info.pem;
    fps.push_back(e.info.sha256);
  }
  writeFileAtomically(bundle, text, 0644);
  return fps;
}

}  // namespace imp::core
