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
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <imp/core/service.h>

#include "imp/xcp_router/c2s.h"

namespace imp::xcp {

class Router;
class SessionManager;
struct RosterItem;

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

  // For the bulk jobs (MG-7 contact list import, MG-9 contact ID rename),
  // after the transaction of RosterStore::importContacts / renameContact
  // committed; for the users' sessions on this node. Thread-safe, never
  // block on the database (the work runs in the user's strand of the
  // session manager); no-ops (false) while the router is stopped.
  //
  // Roster pushes of `items` (RFC 6121 §2.1.6, removals as
  // subscription='remove') to ownerBare's resources that asked for the
  // roster (SessionManager::pushRosterChanges); `version` is the owner's
  // roster version after the change. True when the user had such a
  // resource ("users notified" of MG-9).
  bool pushRoster(const std::string& ownerBare, const std::vector<RosterItem>& items, std::uint64_t version);
  // The presence probe ownerBare's login sends to a contact with "to"
  // (SessionManager::probeContact): a local contact answers with its
  // presence; a Microsoft contact's federation-cm starts the SUBSCRIBE.
  void probe(const std::string& ownerBare, const std::string& contactBare);
  // The subscriptions of an item that left ownerBare's roster end
  // (SessionManager::endSubscriptions): a renamed contact's old ID.
  void endSubscriptions(const std::string& ownerBare, const RosterItem& was);
  // Reloads ownerBare's block list into the router's BlockingRegistry (in
  // the user's strand) when one of its resources is bound on this node,
  // after renameContact() rewrote it (RenameResult::blockOwners). True
  // when a reload was queued.
  bool reloadBlockList(const std::string& ownerBare);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<Router> router_;
  std::shared_ptr<SessionManager> sessionManager_;
  std::shared_ptr<C2sServer> c2s_;
};

std::unique_ptr<core::Service> makeRouterService(std::shared_ptr<XcpRuntime> runtime);
std::unique_ptr<core::Service> makeConnectionManagerService(std::shared_ptr<XcpRuntime> runtime);

}  // namespace imp::xcp
