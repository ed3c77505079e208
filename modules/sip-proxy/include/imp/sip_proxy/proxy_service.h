#pragma once
// The "sip-proxy" Service ("Cisco SIP Proxy"): adapts Proxy (proxy.h) to the
// service lifecycle (core/service.h). It is registered by registerModule
// (module.h) and takes everything else from the ServiceContext (issue 15,
// deliverable 2): impd.conf [sip-proxy], database, resolver, node
// certificate, trace flags, metrics.
//
//  configure()  validates only: reads the [sip-proxy] section and checks the
//               node certificate files are readable (without loading them).
//  start()      reads the listeners (cluster settings plus this node's
//               [sip-proxy] overrides), TLS contexts, incoming ACL, static
//               routes, federation settings and the other nodes' SIP
//               endpoints; builds the TLS contexts from the node certificate
//               (a TLS listener whose context cannot be built is left closed
//               and reported in status(); no listener at all fails), builds
//               the Proxy, binds, starts its loop and records this node's SIP
//               endpoint for the other nodes.
//  stop()       stops the loop (idempotent).
//  reload()     applies ACL, routes, federation, TLS contexts and listener
//               changes live: listeners whose port or context changed are
//               rebound; connections already open stay (TLS-1, FED-4). The
//               database queries, directory lookups and loop waits run
//               without the lock status() takes; the result is published
//               under it at the end.
//  status()     the listening addresses, and what is not open and why.
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <imp/core/service.h>

#include "imp/sip_proxy/proxy.h"

namespace imp::sip_proxy {

// The running Proxy as seen from the admin API (flood bans, next hops
// marked down): empty while the service is stopped. Thread-safe.
class ProxyHandle {
 public:
  // nullopt when the service is not running.
  std::optional<std::vector<Ban>> bans() const;
  std::optional<std::size_t> clearBans(const std::string& address);
  std::optional<ProxyStats> stats() const;
  std::optional<std::vector<std::string>> downHops() const;

  void attach(std::shared_ptr<Proxy> p);
  // Only if `p` is the proxy attached: a service object the host built just
  // to read its dependencies is destroyed (and stopped) without ever running,
  // and must not detach the running one.
  void detach(const Proxy* p);

 private:
  std::shared_ptr<Proxy> get() const;
  mutable std::mutex mu_;
  std::shared_ptr<Proxy> proxy_;
};

// `running` (may be null) is attached to the Proxy while the service runs:
// the module shares it with its admin routes. `directory` replaces the
// directory over ctx.database (null = that one; no database = static routes
// only).
std::unique_ptr<core::Service> makeSipProxyService(std::shared_ptr<ProxyHandle> running = nullptr,
                                                   std::shared_ptr<DirectoryLookup> directory = nullptr);

}  // namespace imp::sip_proxy
