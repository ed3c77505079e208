#pragma once
// The "sip-proxy" Service ("Cisco SIP Proxy"): adapts Proxy (proxy.h) to the
// service lifecycle (core/service.h).
//
//  configure()  reads the listeners, incoming ACL, static routes and
//               federation settings from the ConfigStore (no sockets, no
//               threads); without a database: one TCP listener on 5060 and
//               an empty ACL.
//  start()      builds the Proxy, binds the listeners, starts its loop.
//  stop()       stops the loop (idempotent).
//  reload()     re-reads ACL, routes and federation settings and applies them
//               live on the loop; listener changes are logged as needing a
//               restart of the service.
//  status()     the listening addresses.
#include <map>
#include <memory>
#include <string>

#include <imp/core/service.h>

#include "imp/sip_proxy/proxy.h"

namespace imp::core {
class TraceFlags;
}

namespace imp::sip_proxy {

struct ProxyServiceOptions {
  std::shared_ptr<const core::TraceFlags> traceFlags;  // the "sip-proxy" flags
  std::shared_ptr<DirectoryLookup> directory;          // null = static routes only
  // Server TLS contexts by listener name ("tls-server-auth", "tls-peer-auth");
  // a TLS listener without one is not opened (reported in status()).
  std::map<std::string, std::shared_ptr<const sip::TlsContext>> tlsServer;
  std::shared_ptr<const sip::TlsContext> tlsClient;
  std::string advertisedHost;  // "" = this host's name
  std::string listenAddress = "0.0.0.0";
  std::map<std::string, std::string> nodeAddresses;  // node id -> host:port
};

core::ServiceDescriptor sipProxyService(ProxyServiceOptions options = {});
std::unique_ptr<core::Service> makeSipProxyService(ProxyServiceOptions options = {});

}  // namespace imp::sip_proxy
