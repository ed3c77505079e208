#include "imp/federation_cm/peer_store.h"

#include <imp/core/cluster_settings.h>
#include <imp/core/database.h>
#include <imp/directory/directory.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace imp::fcm {

std::string_view nameOf(PeerType t) { return t == PeerType::Simple ? "simple" : "lync"; }

std::optional<PeerType> peerTypeOf(std::string_view name) {
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "lync") return PeerType::Lync;
  if (n == "simple") return PeerType::Simple;
  return std::nullopt;
}

std::optional<std::string> normaliseDomain(std::string_view domain) {
  std::string out(domain);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!directory::checkDomain(out).empty()) return std::nullopt;  // the directory's own domain check
  return out;
}

std::map<std::string, PeerType> PeerStore::all() {
  std::map<std::string, PeerType> out;
  auto rows = db_.query("SELECT domain, peer_type FROM fcm_domain_peer");
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (auto t = peerTypeOf(rows.str(i, "peer_type"))) out[rows.str(i, "domain")] = *t;
  return out;
}

bool PeerStore::set(const std::string& domain, PeerType type) {
  auto d = normaliseDomain(domain);
  if (!d) throw std::invalid_argument("'" + domain + "' is not a domain name");
  bool changed = false;
  db_.transaction([&](core::DbSession& s) {
    changed = false;
    auto r = s.query("SELECT peer_type FROM fcm_domain_peer WHERE domain = ?", {*d});
    if (!r.empty() && r.str(0, "peer_type") == nameOf(type)) return;
    s.exec("INSERT INTO fcm_domain_peer (domain, peer_type) VALUES (?, ?) ON DUPLICATE KEY UPDATE"
           " peer_type = VALUES(peer_type), changed_at = CURRENT_TIMESTAMP(3)",
           {*d, std::string(nameOf(type))});
    core::ClusterSettings::bump(s);
    changed = true;
  });
  return changed;
}

bool PeerStore::remove(const std::string& domain) {
  auto d = normaliseDomain(domain);
  if (!d) throw std::invalid_argument("'" + domain + "' is not a domain name");
  bool removed = false;
  db_.transaction([&](core::DbSession& s) {
    removed = s.exec("DELETE FROM fcm_domain_peer WHERE domain = ?", {*d}) > 0;
    if (removed) core::ClusterSettings::bump(s);
  });
  return removed;
}

}  // namespace imp::fcm
