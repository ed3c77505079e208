#pragma once
// The "sip-proxy" Service ("Cisco SIP Proxy"): adapts Proxy (proxy.h) to the
// service lifecycle (core/service.h).
//
//  configure()  reads the listeners (cluster settings plus this node's
//               [sip-proxy] overrides), TLS contexts, incoming ACL, static
//               routes, federation settings and the other nodes' SIP
//               endpoints; builds the TLS contexts from the node certificate
//               (no sockets, no threads). A TLS listener whose context cannot
//               be built is left closed and reported in status().
//  start()      builds the Proxy, binds the listeners, starts its loop and
//               records this node's SIP endpoint for the other nodes.
//  stop()       stops the loop (idempotent).
//  reload()     applies ACL, routes, federation, TLS contexts and listener
//               changes live: listeners whose port or context changed are
//               rebound; connections already open stay (TLS-1, FED-4).
//  status()     the listening addresses, and what is not open and why.
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <imp/core/service.h>

#include "imp/sip_proxy/node_options.h"
#include "imp/sip_proxy/proxy.h"

namespace imp::core {
class TraceFlags;
}

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
  void detach();

 private:
  std::shared_ptr<Proxy> get() const;
  mutable std::mutex mu_;
  std::shared_ptr<Proxy> proxy_;
};

struct ProxyServiceOptions {
  std::shared_ptr<const core::TraceFlags> traceFlags;  // the "sip-proxy" flags
  std::shared_ptr<DirectoryLookup> directory;          // null = static routes only
  NodeOptions node;                                    // impd.conf [sip-proxy]
  // Node certificate and trust store (core/certificates.h); empty certFile =
  // no TLS listeners, plain TCP only.
  std::string certFile;
  std::string keyFile;
  std::string caFile;
  std::shared_ptr<ProxyHandle> handle;  // may be null
  std::shared_ptr<core::Resolver> resolver;  // null = cached system resolver
};

core::ServiceDescriptor sipProxyService(ProxyServiceOptions options = {});
std::unique_ptr<core::Service> makeSipProxyService(ProxyServiceOptions options = {});

}  // namespace imp::sip_proxy
