#pragma once
// The two services of the XMPP side (issue 16), registered by
// registerModule (module.h):
//
//  xcp-router ("Cisco XCP Router")
//    start()  the Router over the cluster directory (decisions on the node's
//             WorkerPool) with the session manager as its local handler;
//             loads the local presence domains.
//    reload() reloads the local presence domains (every directory change
//             bumps the settings generation).
//    stop()   detaches the router from XcpRuntime (the connection manager
//             depends on it and is stopped first).
//  xcp-connection-manager ("Cisco XCP Connection Manager"), after
//  xcp-router
//    configure() reads [xcp-connection-manager] and checks the node
//             certificate is named (TLS is mandatory, RFC 6120 §5).
//    start()  builds the TLS server context from the node certificate, binds
//             the client listeners on the node's loops (C2sServer) and
//             records this node's client address in xcp_node_endpoint for
//             the other nodes' see-other-host.
//    stop()   closes the listeners and every stream (system-shutdown).
//
// XcpRuntime is what the services share with each other and with the admin
// commands (`impctl session list|kick`): thread-safe, empty pieces while a
// service is stopped.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <imp/core/service.h>

#include "imp/xcp_router/c2s.h"

namespace imp::xcp {

class Router;
class SessionManager;

class XcpRuntime {
 public:
  std::shared_ptr<Router> router() const;
  std::shared_ptr<C2sServer> c2s() const;
  void setRouter(std::shared_ptr<Router> r, std::shared_ptr<SessionManager> sm);
  void setC2s(std::shared_ptr<C2sServer> c);
  // nullopt while the connection manager is not running.
  std::optional<std::vector<C2sSessionInfo>> sessions(const std::string& userid = {}) const;
  std::optional<std::size_t> kick(const std::string& userid);
  // Whether a bare JID has an available resource on this node, as the
  // session manager sees it (false while the router is stopped).
  bool available(const std::string& bareJid) const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<Router> router_;
  std::shared_ptr<SessionManager> sessionManager_;
  std::shared_ptr<C2sServer> c2s_;
};

std::unique_ptr<core::Service> makeRouterService(std::shared_ptr<XcpRuntime> runtime);
std::unique_ptr<core::Service> makeConnectionManagerService(std::shared_ptr<XcpRuntime> runtime);

}  // namespace imp::xcp
