#pragma once
// The SIP Federation Connection Manager's engine (issue 17): a SIP endpoint
// on its node and an xcp-router component, translating between native XMPP
// users and Microsoft Lync/OCS users of the same presence domains
// (partitioned intradomain federation).
//
// Shape (ARCHITECTURE.md "data flows"):
//   XMPP side: registered with the Router as the predicate component that
//     claims what the directory's decision marks as a Microsoft user
//     (xcp::microsoftUsers()); stanzas for Microsoft users arrive through
//     deliver(), stanzas from them go back in with Router::route().
//   SIP side: listens on its own TCP endpoint (default 127.0.0.1:5080) and
//     sends every request to the node's SIP proxy (an outbound proxy), which
//     keeps the ACL, the TLS peer checks and the static routes (RT-2, RT-3)
//     and Record-Routes every dialog, so in-dialog requests from the
//     Microsoft server reach this endpoint through it. The proxy forwards
//     here what its decision marks as a user homed on this node.
//
// What it translates:
//   AV-2  native watcher -> Microsoft user: XMPP subscribe / server probe ->
//         SUBSCRIBE (Event: presence, Accept: application/pidf+xml, Expires
//         7446), refreshed before expiry; NOTIFY -> `subscribed` and presence
//         (AV-4 table); terminated -> `unsubscribed`, except reason=timeout /
//         deactivated / probation -> subscribe again; pending -> wait;
//         XMPP unsubscribe -> SUBSCRIBE Expires: 0.
//   AV-1  Microsoft watcher -> native user: SUBSCRIBE -> 200 and at once a
//         NOTIFY showing the user Offline while the session manager's
//         privacy policy decides (the request goes in as an XMPP subscribe
//         from the Microsoft user): approval -> NOTIFYs with the user's
//         presence (AV-5 table); a prompt not yet answered, a denial and a
//         block all look the same to the watcher: the user is Offline
//         (polite blocking, the subscription is never visibly refused).
//         Expires outside [minExpires, maxExpires]: too short -> 423 with
//         Min-Expires, too long -> granted as maxExpires (RFC 6665 §4.2.1.1).
//   AV-3  both kinds live in the database (SubscriptionStore); after a
//         restart outgoing ones are refreshed in their dialogs (a new
//         dialog when the peer has forgotten it) and Microsoft watchers get
//         a fresh NOTIFY, paced at recoveryRate requests per second; when
//         the Microsoft side stops answering (OPTIONS keep-alive, failed
//         requests) and comes back, outgoing subscriptions are made again.
//   deliverable 6: toward a domain whose peer type is `simple` (a standard
//         SIMPLE server such as Kamailio) IM is page-mode MESSAGE (RFC 3428)
//         and typing a page-mode isComposing MESSAGE (RFC 3994); presence
//         is the same SUBSCRIBE/NOTIFY with PIDF.
//   IM-1..5 session mode: one INVITE dialog per (native bare JID, Microsoft
//         user), created by the first message (the first text rides in
//         ms-text-format), MESSAGE and INFO (typing) inside it, BYE after
//         imIdleTimeout; 408/480/481 to a MESSAGE ends the dialog and the
//         message is sent again in a new one; page-mode MESSAGE accepted;
//         group chat refused (XMPP not-acceptable, SIP 488); every failure
//         reaches the XMPP sender as a message error.
//
// Threads: everything runs on the loop given to the constructor; deliver()
// may be called from any thread (it posts). start() and stop() from another
// thread while the loop runs, or before it runs.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <imp/directory/routing.h>
#include <imp/federation_cm/peer_store.h>
#include <imp/sip/endpoint.h>
#include <imp/xcp_router/router.h>

namespace spdlog {
class logger;
}
namespace imp::core {
class TraceFlags;
}
namespace imp::net {
class EventLoop;
}

namespace imp::fcm {

class SubscriptionStore;

struct GatewayConfig {
  std::string nodeId;
  // This endpoint (TCP) and the node's SIP proxy every request goes to.
  std::string listenAddress = "127.0.0.1";
  std::uint16_t listenPort = 5080;  // 0 = ephemeral (tests)
  sip::Endpoint proxy{"127.0.0.1", 5060, sip::Transport::Tcp};
  // Outgoing SUBSCRIBE expiry (the original product's 7446 s) and the range
  // accepted from the Microsoft server (OCS: 1200..43200).
  std::uint32_t subscribeExpires = 7446;
  std::uint32_t minExpires = 1200;
  std::uint32_t maxExpires = 43200;
  std::chrono::milliseconds imIdleTimeout{std::chrono::minutes(10)};
  // OPTIONS keep-alive toward each Microsoft domain with subscriptions, and
  // the probe interval while it does not answer.
  std::chrono::milliseconds keepAliveInterval{std::chrono::seconds(15)};
  std::chrono::milliseconds downProbeInterval{std::chrono::seconds(3)};
  // SUBSCRIBEs and NOTIFYs per second when many are re-established at once.
  unsigned recoveryRate = 5000;
  // A MESSAGE or INVITE without a final answer this long has failed.
  std::chrono::milliseconds requestTimeout{std::chrono::seconds(32)};
  // Whether a native user (bare JID) has an available resource on this
  // node, as its session manager sees it; any thread. Recovery NOTIFYs the
  // watchers of users without one at once (Offline, what a probe would get)
  // and probes only for the others. Unset: a probe for every watcher.
  std::function<bool(const std::string& bareJid)> nativeAvailable;
  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<const core::TraceFlags> trace;  // "translation": every stanza <-> SIP pair
};

struct GatewayStats {
  std::uint64_t subscribesSent = 0, subscribesReceived = 0, notifiesSent = 0, notifiesReceived = 0,
                messagesSent = 0, messagesReceived = 0, invitesSent = 0, invitesReceived = 0, infosSent = 0,
                infosReceived = 0, byesSent = 0, byesReceived = 0, xmppErrors = 0, refused = 0, recoveries = 0,
                keepAliveFailures = 0, stanzasIgnored = 0,
                recoveryProbes = 0;  // probes for a recovered watcher of a user online (AV-3)
  // Final failures of our requests, by SIP code (0 = timeout or transport).
  std::vector<std::pair<int, std::uint64_t>> failuresByCode;
  // ... and by ms-diagnostics id.
  std::vector<std::pair<std::string, std::uint64_t>> failuresByDiagnostic;
  std::size_t outgoingActive = 0, outgoingPending = 0, incomingActive = 0, incomingPending = 0, imDialogs = 0;
};

// One row of `impctl federation subscriptions`.
struct SubscriptionInfo {
  std::string direction;  // "outgoing" (native watcher) / "incoming" (Microsoft watcher)
  std::string nativeUser, microsoftUser;  // bare JID, sip: URI
  std::string state;      // "subscribing", "pending", "active", "down", "offline-shown"
  std::int64_t expiresIn = 0;  // seconds
  std::string peer;       // the Microsoft side's Contact
};

// One row of `impctl federation sessions`.
struct ImSessionInfo {
  std::string nativeUser, microsoftUser, state, conversationId, callId;
  bool initiatedHere = false;
  std::int64_t idleSeconds = 0;
  std::uint64_t messagesOut = 0, messagesIn = 0;
};

class Gateway : public xcp::Component {
 public:
  // `store` may be null (no persistence: tests). The router and the loop
  // must outlive the gateway.
  Gateway(GatewayConfig cfg, net::EventLoop& loop, xcp::Router& router, SubscriptionStore* store);
  ~Gateway() override;
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Binds the SIP listener (throws std::runtime_error naming the address);
  // waits for the loop. Returns the bound endpoint.
  sip::Endpoint start();
  // Loads the stored subscriptions (on the caller's thread: the database
  // blocks) and starts recovering them (AV-3). Called once the gateway is a
  // router component, so that the session manager's answers reach it.
  void recover();
  // Ends IM dialogs (BYE), keeps subscriptions stored (they are recovered at
  // the next start), closes the listener. Waits for the loop (bounded).
  void stop() noexcept;

  // The peer type of each federated domain (peer_store.h); a domain not in
  // the map is Lync. Any thread; applied on the loop.
  void setPeerTypes(std::map<std::string, PeerType> types);
  // Where the node's SIP proxy listens (its port may change). Any thread.
  void setProxy(sip::Endpoint proxy);
  // The pace of recovery (recoveryRate, at least 1), changed live by the
  // service parameter recovery-rate (MG-3). Any thread; applied on the
  // loop, from the next 100 ms tick of a recovery in progress.
  void setRecoveryRate(unsigned perSecond);

  // xcp::Component
  std::string_view name() const override { return "federation-cm"; }
  void deliver(xcp::RoutedStanza stanza) override;

  // For the admin commands; wait for the loop.
  GatewayStats stats() const;
  std::vector<SubscriptionInfo> subscriptions(const std::string& user = {}) const;
  std::vector<ImSessionInfo> sessions() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace imp::fcm
