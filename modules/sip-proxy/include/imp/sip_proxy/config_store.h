#pragma once
// The SIP Proxy's cluster settings in the database (sip_* tables): federation
// (FED-4..6), listeners (TLS-1), TLS peer subjects and contexts (TLS-2/3),
// incoming ACL (RT-7) and static routes (RT-2/3).
//
// Each change is validated (settings.h, routes.h), then made in one
// transaction that also bumps the cluster settings generation, so running
// proxies apply it live; nothing is stored when a check fails. Input errors
// are core::AdminError (400 with the field named, 404 unknown, 409 conflict).
// Stateless over the database: thread-safe, blocking.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "imp/sip_proxy/acl.h"
#include "imp/sip_proxy/routes.h"
#include "imp/sip_proxy/settings.h"

namespace imp::core {
class Database;
}

namespace imp::sip_proxy {

struct FederationState {
  FederationSettings settings;
  std::string changedAt;  // "" before the first change
  struct Change {
    std::string at;
    std::string what;
  };
  std::vector<Change> recent;  // newest first, at most 10
};

struct FederationResult {
  FederationSettings settings;
  bool changed = false;
  std::vector<std::string> warnings;
  std::uint64_t generation = 0;  // 0 when nothing changed
};

struct TlsContextUpdate {
  std::optional<std::string> ciphers;
  std::optional<TlsVersion> minVersion;
  std::optional<TlsVersion> maxVersion;
  std::optional<bool> disableEmptyFragments;
  std::optional<std::vector<std::string>> peerSubjects;  // replaces the selection
};

class ConfigStore {
 public:
  explicit ConfigStore(core::Database& db) : db_(db) {}

  FederationState federation();
  FederationResult updateFederation(const FederationUpdate& u);

  std::vector<Listener> listeners();  // catalog order
  Listener setListener(const std::string& name, std::optional<std::int64_t> port, std::optional<bool> enabled);

  std::vector<PeerSubject> peerSubjects();
  PeerSubject addPeerSubject(const std::string& cn, const std::string& description);
  bool deletePeerSubject(const std::string& cn);  // 409 while a context selects it

  std::vector<TlsContext> tlsContexts();
  std::optional<TlsContext> tlsContext(const std::string& name);
  // Returns the stored context; *warnings gets TLS 1.0/1.1 notes.
  TlsContext updateTlsContext(const std::string& name, const TlsContextUpdate& u, std::vector<std::string>* warnings);

  std::vector<AclEntry> acl();
  AclEntry addAcl(const std::string& pattern, const std::string& description);
  bool deleteAcl(const std::string& pattern);
  AclMatcher aclMatcher() { return AclMatcher(acl()); }

  std::vector<StaticRoute> routes();  // by pattern, then priority
  StaticRoute addRoute(const StaticRoute& r);  // returns it canonical, with its id
  bool deleteRoute(std::int64_t id);
  RouteTable routeTable() { return RouteTable(routes()); }

 private:
  core::Database& db_;
};

}  // namespace imp::sip_proxy
