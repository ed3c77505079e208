#include "imp/sip_proxy/config_store.h"

#include <imp/core/admin_http.h>
#include <imp/core/cluster_settings.h>
#include <imp/core/database.h>

#include <Poco/JSON/Object.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

namespace imp::sip_proxy {

using core::AdminError;
using core::DbSession;

namespace {

constexpr int kDuplicateKey = 1062;  // ER_DUP_ENTRY
constexpr int kRowReferenced = 1451;  // ER_ROW_IS_REFERENCED_2
constexpr int kNoParent = 1452;       // ER_NO_REFERENCED_ROW_2

[[noreturn]] void bad(const std::string& field, const std::string& message) {
  Poco::JSON::Object::Ptr d = new Poco::JSON::Object;
  d->set("field", field);
  throw AdminError(400, "invalid_" + field, message, d);
}

void checkDescription(const std::string& d) {
  if (d.size() > 255) bad("description", "description is longer than 255 characters");
}

// Runs a change; a key race lost to another admin becomes a 409
// instead of a 500 (the checks inside fn normally answer first).
void changeTx(core::Database& db, const std::function<void(DbSession&)>& fn, const std::string& what) {
  try {
    db.transaction(fn);
  } catch (const core::DbError& e) {
    if (e.code() == kDuplicateKey || e.code() == kRowReferenced || e.code() == kNoParent)
      throw AdminError(409, "conflict", what + " was changed at the same time; try again");
    throw;
  }
}

FederationSettings rowFederation(const core::Rows& r) {
  FederationSettings f;
  f.enabled = r.num(0, "enabled") != 0;
  f.routingMode = parseRoutingMode(r.str(0, "routing_mode")).value_or(RoutingMode::Basic);
  f.emailForInterdomain = r.num(0, "email_for_interdomain") != 0;
  return f;
}

const char* kFederationCols = "SELECT enabled, routing_mode, email_for_interdomain FROM sip_federation WHERE id = 1";

StaticRoute rowRoute(const core::Rows& r, std::size_t i) {
  StaticRoute s;
  s.id = r.num(i, "id");
  s.pattern = r.str(i, "pattern");
  s.type = parseRouteType(r.str(i, "route_type")).value_or(RouteType::Domain);
  s.nextHop = r.str(i, "next_hop");
  s.port = static_cast<int>(r.num(i, "port"));
  s.transport = parseTransport(r.str(i, "transport")).value_or(Transport::Tls);
  s.priority = static_cast<int>(r.num(i, "priority"));
  s.weight = static_cast<int>(r.num(i, "weight"));
  return s;
}

const char* kRouteCols = "SELECT id, pattern, route_type, next_hop, port, transport, priority, weight FROM sip_static_route";

std::string contextNames(DbSession& s) {
  auto r = s.query("SELECT name FROM sip_tls_context ORDER BY name");
  std::string out;
  for (std::size_t i = 0; i < r.size(); ++i) out += (out.empty() ? "" : ", ") + r.str(i, "name");
  return out;
}

std::optional<TlsContext> readContext(DbSession& s, const std::string& name, bool forUpdate) {
  auto r = s.query(std::string("SELECT name, display_name, ciphers, min_version, max_version, disable_empty_fragments "
                               "FROM sip_tls_context WHERE name = ?") +
                       (forUpdate ? " FOR UPDATE" : ""),
                   {name});
  if (r.empty()) return std::nullopt;
  TlsContext c;
  c.name = r.str(0, "name");
  c.displayName = r.str(0, "display_name");
  c.ciphers = r.str(0, "ciphers");
  c.minVersion = parseTlsVersion(r.str(0, "min_version")).value_or(TlsVersion::V1_2);
  c.maxVersion = parseTlsVersion(r.str(0, "max_version")).value_or(TlsVersion::V1_3);
  c.disableEmptyFragments = r.num(0, "disable_empty_fragments") != 0;
  auto p = s.query("SELECT subject_cn FROM sip_tls_context_peer WHERE context_name = ? ORDER BY subject_cn", {name});
  for (std::size_t i = 0; i < p.size(); ++i) c.peerSubjects.push_back(p.str(i, "subject_cn"));
  return c;
}

std::vector<Listener> readListeners(DbSession& s, bool forUpdate) {
  auto r = s.query(std::string("SELECT name, enabled, port FROM sip_listener") + (forUpdate ? " FOR UPDATE" : ""));
  std::map<std::string, Listener> stored;
  for (std::size_t i = 0; i < r.size(); ++i)
    stored[r.str(i, "name")] = {r.str(i, "name"), r.num(i, "enabled") != 0, static_cast<int>(r.num(i, "port"))};
  std::vector<Listener> out;
  for (const auto& info : listenerCatalog()) {
    auto it = stored.find(std::string(info.name));
    out.push_back(it != stored.end() ? it->second
                                     : Listener{std::string(info.name), info.enabledByDefault, info.defaultPort});
  }
  return out;
}

}  // namespace

// ---- federation ----

FederationState ConfigStore::federation() {
  FederationState st;
  db_.run([&](DbSession& s) {
    st.settings = rowFederation(s.query(kFederationCols));
    auto h = s.query("SELECT changed_at, what FROM sip_federation_change ORDER BY id DESC LIMIT 10");
    for (std::size_t i = 0; i < h.size(); ++i) st.recent.push_back({h.str(i, "changed_at"), h.str(i, "what")});
    if (!st.recent.empty()) st.changedAt = st.recent.front().at;
  });
  return st;
}

FederationResult ConfigStore::updateFederation(const FederationUpdate& u) {
  if (u.empty()) bad("federation", "nothing to change: give enabled, routing_mode or email_for_interdomain");
  FederationResult res;
  std::size_t domainRoutes = 0;
  changeTx(
      db_,
      [&](DbSession& s) {
        auto current = rowFederation(s.query(std::string(kFederationCols) + " FOR UPDATE"));
        auto peers = static_cast<std::size_t>(s.query("SELECT COUNT(*) AS n FROM sip_intercluster_peer").num(0, "n"));
        FederationSettings after;
        if (auto e = checkFederationChange(current, u, peers, &after); !e.empty())
          throw AdminError(409, "federation_refused", e);
        res.settings = after;
        auto what = describeFederationChange(current, after);
        res.changed = !what.empty();
        res.generation = 0;
        if (res.changed) {
          s.exec("UPDATE sip_federation SET enabled = ?, routing_mode = ?, email_for_interdomain = ?, "
                 "changed_at = CURRENT_TIMESTAMP(3) WHERE id = 1",
                 {after.enabled, std::string(nameOf(after.routingMode)), after.emailForInterdomain});
          s.exec("INSERT INTO sip_federation_change (what) VALUES (?)", {what});
          res.generation = core::ClusterSettings::bump(s);
        }
        domainRoutes = static_cast<std::size_t>(
            s.query("SELECT COUNT(*) AS n FROM sip_static_route WHERE route_type = 'domain'").num(0, "n"));
      },
      "the federation settings");
  if (u.enabled.value_or(false)) res.warnings = federationEnableWarnings(domainRoutes);
  return res;
}

// ---- listeners ----

std::vector<Listener> ConfigStore::listeners() {
  std::vector<Listener> out;
  db_.run([&](DbSession& s) { out = readListeners(s, false); });
  return out;
}

Listener ConfigStore::setListener(const std::string& name, std::optional<std::int64_t> port, std::optional<bool> enabled) {
  if (!findListener(name)) {
    std::string names;
    for (const auto& l : listenerCatalog()) names += (names.empty() ? "" : ", ") + std::string(l.name);
    throw AdminError(404, "unknown_listener", "no listener '" + name + "'; listeners: " + names);
  }
  if (!port && !enabled) bad("listener", "nothing to change: give port and/or enabled");
  if (port)
    if (auto e = checkPort(*port); !e.empty()) bad("port", e);
  Listener result;
  changeTx(
      db_,
      [&](DbSession& s) {
        auto all = readListeners(s, true);
        auto it = std::find_if(all.begin(), all.end(), [&](const Listener& l) { return l.name == name; });
        Listener before = *it;
        if (port) it->port = static_cast<int>(*port);
        if (enabled) it->enabled = *enabled;
        if (auto e = checkListenerPorts(all, name); !e.empty()) throw AdminError(409, "port_conflict", e);
        result = *it;
        if (result == before) return;
        s.exec("INSERT INTO sip_listener (name, enabled, port) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE "
               "enabled = VALUES(enabled), port = VALUES(port), changed_at = CURRENT_TIMESTAMP(3)",
               {result.name, result.enabled, static_cast<std::int64_t>(result.port)});
        core::ClusterSettings::bump(s);
      },
      "the listener");
  return result;
}

// ---- TLS peer subjects ----

std::vector<PeerSubject> ConfigStore::peerSubjects() {
  std::vector<PeerSubject> out;
  db_.run([&](DbSession& s) {
    auto r = s.query("SELECT subject_cn, description FROM sip_tls_peer_subject ORDER BY subject_cn");
    auto used = s.query("SELECT subject_cn, context_name FROM sip_tls_context_peer ORDER BY context_name");
    std::map<std::string, std::vector<std::string>> by;
    for (std::size_t i = 0; i < used.size(); ++i) by[used.str(i, "subject_cn")].push_back(used.str(i, "context_name"));
    for (std::size_t i = 0; i < r.size(); ++i)
      out.push_back({r.str(i, "subject_cn"), r.str(i, "description"), by[r.str(i, "subject_cn")]});
  });
  return out;
}

PeerSubject ConfigStore::addPeerSubject(const std::string& cnIn, const std::string& description) {
  std::string cn;
  if (auto e = normalisePeerSubject(cnIn, &cn); !e.empty()) bad("subject_cn", e);
  checkDescription(description);
  changeTx(
      db_,
      [&](DbSession& s) {
        if (!s.query("SELECT 1 FROM sip_tls_peer_subject WHERE subject_cn = ?", {cn}).empty())
          throw AdminError(409, "peer_subject_exists", "TLS peer subject '" + cn + "' already exists");
        s.exec("INSERT INTO sip_tls_peer_subject (subject_cn, description) VALUES (?, ?)", {cn, description});
        core::ClusterSettings::bump(s);
      },
      "the TLS peer subject list");
  return {cn, description, {}};
}

bool ConfigStore::deletePeerSubject(const std::string& cnIn) {
  std::string cn;
  if (!normalisePeerSubject(cnIn, &cn).empty()) return false;
  bool gone = false;
  changeTx(
      db_,
      [&](DbSession& s) {
        auto used = s.query("SELECT context_name FROM sip_tls_context_peer WHERE subject_cn = ? ORDER BY context_name", {cn});
        if (!used.empty()) {
          std::string names;
          for (std::size_t i = 0; i < used.size(); ++i) names += (names.empty() ? "'" : ", '") + used.str(i, "context_name") + "'";
          throw AdminError(409, "peer_subject_in_use",
                           "TLS peer subject '" + cn + "' is selected by TLS context " + names +
                               "; remove it from the context first (impctl tls context set NAME --peer-subject ... or "
                               "--clear-peer-subjects)");
        }
        gone = s.exec("DELETE FROM sip_tls_peer_subject WHERE subject_cn = ?", {cn}) > 0;
        if (gone) core::ClusterSettings::bump(s);
      },
      "the TLS peer subject list");
  return gone;
}

// ---- TLS contexts ----

std::vector<TlsContext> ConfigStore::tlsContexts() {
  std::vector<TlsContext> out;
  db_.run([&](DbSession& s) {
    auto r = s.query("SELECT name FROM sip_tls_context ORDER BY name");
    for (std::size_t i = 0; i < r.size(); ++i)
      if (auto c = readContext(s, r.str(i, "name"), false)) out.push_back(*c);
  });
  return out;
}

std::optional<TlsContext> ConfigStore::tlsContext(const std::string& name) {
  std::optional<TlsContext> out;
  db_.run([&](DbSession& s) { out = readContext(s, name, false); });
  return out;
}

TlsContext ConfigStore::updateTlsContext(const std::string& name, const TlsContextUpdate& u, std::vector<std::string>* warnings) {
  if (!u.ciphers && !u.minVersion && !u.maxVersion && !u.disableEmptyFragments && !u.peerSubjects)
    bad("tls_context", "nothing to change: give ciphers, min_version, max_version, disable_empty_fragments or peer_subjects");
  std::vector<std::string> wanted;
  if (u.peerSubjects) {
    std::set<std::string> uniq;
    for (const auto& p : *u.peerSubjects) {
      std::string cn;
      if (auto e = normalisePeerSubject(p, &cn); !e.empty()) bad("peer_subjects", e);
      uniq.insert(cn);
    }
    wanted.assign(uniq.begin(), uniq.end());
  }
  TlsContext result;
  changeTx(
      db_,
      [&](DbSession& s) {
        auto c = readContext(s, name, true);
        if (!c) throw AdminError(404, "unknown_tls_context", "no TLS context '" + name + "'; contexts: " + contextNames(s));
        if (u.ciphers) c->ciphers = *u.ciphers;
        if (u.minVersion) c->minVersion = *u.minVersion;
        if (u.maxVersion) c->maxVersion = *u.maxVersion;
        if (u.disableEmptyFragments) c->disableEmptyFragments = *u.disableEmptyFragments;
        if (auto e = checkTlsVersions(c->minVersion, c->maxVersion); !e.empty()) bad("min_version", e);
        if (auto e = checkCipherList(c->ciphers, c->minVersion); !e.empty()) bad("ciphers", e);
        if (u.peerSubjects) {
          for (const auto& cn : wanted)
            if (s.query("SELECT 1 FROM sip_tls_peer_subject WHERE subject_cn = ? FOR UPDATE", {cn}).empty())
              bad("peer_subjects", "TLS peer subject '" + cn + "' does not exist; add it first (impctl tls peer-subject add " +
                                       cn + ")");
          c->peerSubjects = wanted;
        }
        s.exec("UPDATE sip_tls_context SET ciphers = ?, min_version = ?, max_version = ?, disable_empty_fragments = ?, "
               "changed_at = CURRENT_TIMESTAMP(3) WHERE name = ?",
               {c->ciphers, std::string(nameOf(c->minVersion)), std::string(nameOf(c->maxVersion)), c->disableEmptyFragments,
                name});
        if (u.peerSubjects) {
          s.exec("DELETE FROM sip_tls_context_peer WHERE context_name = ?", {name});
          for (const auto& cn : wanted)
            s.exec("INSERT INTO sip_tls_context_peer (context_name, subject_cn) VALUES (?, ?)", {name, cn});
        }
        core::ClusterSettings::bump(s);
        result = *c;
      },
      "the TLS context");
  if (warnings) *warnings = tlsVersionWarnings(result.minVersion);
  return result;
}

// ---- incoming ACL ----

std::vector<AclEntry> ConfigStore::acl() {
  auto r = db_.query("SELECT pattern, kind, description FROM sip_acl ORDER BY id");
  std::vector<AclEntry> out;
  for (std::size_t i = 0; i < r.size(); ++i) {
    AclEntry e;
    e.pattern = r.str(i, "pattern");
    auto k = r.str(i, "kind");
    e.kind = k == "address" ? AclKind::Address : k == "name" ? AclKind::Name : AclKind::All;
    e.description = r.str(i, "description");
    out.push_back(e);
  }
  return out;
}

AclEntry ConfigStore::addAcl(const std::string& patternIn, const std::string& description) {
  AclEntry e;
  if (auto err = normaliseAclPattern(patternIn, &e.pattern, &e.kind); !err.empty()) bad("pattern", err);
  checkDescription(description);
  e.description = description;
  changeTx(
      db_,
      [&](DbSession& s) {
        if (!s.query("SELECT 1 FROM sip_acl WHERE pattern = ?", {e.pattern}).empty())
          throw AdminError(409, "acl_entry_exists", "incoming ACL entry '" + e.pattern + "' already exists");
        s.exec("INSERT INTO sip_acl (pattern, kind, description) VALUES (?, ?, ?)",
               {e.pattern, std::string(nameOf(e.kind)), e.description});
        core::ClusterSettings::bump(s);
      },
      "the incoming ACL");
  return e;
}

bool ConfigStore::deleteAcl(const std::string& patternIn) {
  std::string pattern;
  AclKind kind = AclKind::All;
  if (!normaliseAclPattern(patternIn, &pattern, &kind).empty()) return false;
  bool gone = false;
  changeTx(
      db_,
      [&](DbSession& s) {
        gone = s.exec("DELETE FROM sip_acl WHERE pattern = ?", {pattern}) > 0;
        if (gone) core::ClusterSettings::bump(s);
      },
      "the incoming ACL");
  return gone;
}

// ---- static routes ----

std::vector<StaticRoute> ConfigStore::routes() {
  auto r = db_.query(std::string(kRouteCols) + " ORDER BY route_type, pattern, priority, id");
  std::vector<StaticRoute> out;
  for (std::size_t i = 0; i < r.size(); ++i) out.push_back(rowRoute(r, i));
  return out;
}

StaticRoute ConfigStore::addRoute(const StaticRoute& in) {
  StaticRoute r = in;
  if (auto e = normaliseRoutePattern(in.type, in.pattern, &r.pattern); !e.empty()) bad("pattern", e);
  if (auto e = normaliseNextHop(in.nextHop, &r.nextHop); !e.empty()) bad("next_hop", e);
  if (auto e = checkPort(in.port); !e.empty()) bad("port", e);
  if (auto e = checkPriority(in.priority); !e.empty()) bad("priority", e);
  if (auto e = checkWeight(in.weight); !e.empty()) bad("weight", e);
  changeTx(
      db_,
      [&](DbSession& s) {
        auto rows = s.query(std::string(kRouteCols) + " WHERE route_type = ? AND pattern = ? FOR UPDATE",
                            {std::string(nameOf(r.type)), r.pattern});
        std::vector<StaticRoute> existing;
        for (std::size_t i = 0; i < rows.size(); ++i) existing.push_back(rowRoute(rows, i));
        if (auto e = checkRouteConflict(existing, r); !e.empty()) throw AdminError(409, "route_conflict", e);
        s.exec("INSERT INTO sip_static_route (pattern, route_type, next_hop, port, transport, priority, weight) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)",
               {r.pattern, std::string(nameOf(r.type)), r.nextHop, static_cast<std::int64_t>(r.port),
                std::string(nameOf(r.transport)), static_cast<std::int64_t>(r.priority), static_cast<std::int64_t>(r.weight)});
        r.id = static_cast<std::int64_t>(s.lastInsertId());
        core::ClusterSettings::bump(s);
      },
      "the static routes");
  return r;
}

bool ConfigStore::deleteRoute(std::int64_t id) {
  bool gone = false;
  changeTx(
      db_,
      [&](DbSession& s) {
        gone = s.exec("DELETE FROM sip_static_route WHERE id = ?", {id}) > 0;
        if (gone) core::ClusterSettings::bump(s);
      },
      "the static routes");
  return gone;
}

}  // namespace imp::sip_proxy
