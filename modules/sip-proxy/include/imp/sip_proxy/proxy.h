#pragma once
// The SIP Proxy's request-forwarding core (RT-3, RT-5, RT-7..RT-9, FED-6..8):
// TCP/TLS/UDP listeners, an RFC 3261 transaction layer and a chain of
// request processors (reSIProcate repro style; issue 15, deliverable 2),
// each in its own file and called directly in this order (src/proxy_impl.h):
//
//  1. Admission: source address allowed by the incoming ACL, else an
//     asynchronous reverse DNS through the resolver and a name match;
//     refused -> 403 "ACL - upstream not trusted - need to authenticate";
//     sources not listed by address pass the flood limiter (503 when banned);
//  2. Validation (request_checks.h, RFC 3261 §16.3): missing or repeated
//     header fields -> 400 naming them, a scheme other than sip/sips ->
//     416; Max-Forwards: 0 -> 483, absent -> 70, else decremented;
//     Proxy-Require -> 420 with Unsupported;
//  3. Router: our own Route entries are stripped; a remaining Route header
//     or an in-dialog request goes where it says; otherwise decideRoute()
//     (routing.h) on the Request-URI with loop detection (FED-7: the
//     cluster's own partitioned-federation marker on a request that would
//     go to the Microsoft server -> 482), on a worker thread when the
//     directory must be asked (it may block), from the recipient cache
//     otherwise;
//  4. HopHealth: candidates marked down go last; a hop that fails is marked
//     down and OPTIONS probes bring it back;
//  5. StatefulForwarder: Record-Route for INVITE/SUBSCRIBE/REFER, a new
//     Via, one client transaction per next hop; transport error, per-hop
//     timeout or 503 marks the hop down and the request goes to the next
//     candidate inside the same server transaction; 503 (408 after a
//     timeout) when every candidate failed; timer C and CANCEL.
// Each answers Continue, Stop (answered) or Wait (it resumes the request
// later on the loop: after the reverse DNS answer, after the directory).
//
// Responses matching no transaction and ACKs for 2xx are forwarded
// statelessly (StatelessForwarder).
//
// Loop and clock (deliverable 4): by default the proxy runs its own event
// loop on its own thread (start() starts it). Given ProxyConfig::loop, it
// runs on that loop instead and starts no thread: whoever runs the loop
// runs the proxy (a net::LoopGroup's loop, or a test driving the loop with
// runUntil()); ProxyConfig::timers replaces the loop's clock for the
// proxy's and its transactions' timers (net::ManualTimers in tests). With a
// given loop, construct, start, stop and destroy the proxy on the loop's
// thread or while no thread runs the loop; stop() closes its listeners
// then, and its pending timers and posted functions are cancelled or made
// harmless when it is destroyed.
//
// Threads: the constructor and start()/stop() run on the owner's thread;
// everything else runs on the proxy's loop thread. updatePolicy(),
// setListeners(), setTlsClient(), bans() and clearBans() run at once when called on the
// loop's thread, else post to the loop and wait for it. Untrusted input
// never throws out of the loop; environment failures (DNS, next hops) are
// logged and answered.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "imp/sip/endpoint.h"
#include "imp/net/tls.h"
#include "imp/sip_proxy/acl.h"
#include "imp/sip_proxy/flood.h"
#include "imp/sip_proxy/routes.h"
#include "imp/sip_proxy/routing.h"
#include "imp/sip_proxy/settings.h"

namespace spdlog {
class logger;
}
namespace imp::core {
class Resolver;
class TraceFlags;
}  // namespace imp::core
namespace imp::net {
class EventLoop;
class TimerQueue;
}  // namespace imp::net

namespace imp::sip_proxy {

struct ProxyListener {
  sip::Transport transport = sip::Transport::Tcp;
  std::string address = "0.0.0.0";
  std::uint16_t port = 0;  // 0 = ephemeral (tests)
  std::shared_ptr<const net::TlsContext> tls;  // TLS: a server context
  std::function<bool(std::string_view)> acceptPeer;  // TLS-2 subject check
  // Identifies what acceptPeer accepts (e.g. the sorted subject list):
  // setListeners() rebinds a listener whose key changed.
  std::string acceptPeerKey;
};

// Fixed for the proxy's life (changing them needs a new Proxy).
struct ProxyConfig {
  std::string nodeId = "imp";
  // Host written in our Via and Record-Route; "" = the first listener's
  // address (127.0.0.1 when it is a wildcard).
  std::string advertisedHost;
  std::vector<ProxyListener> listeners;
  std::shared_ptr<const net::TlsContext> tlsClient;  // outgoing TLS (Proxy::setTlsClient() replaces it)
  std::chrono::milliseconds hopTimeout{5000};        // per next hop, < timer B
  std::chrono::milliseconds probeInterval{30000};    // OPTIONS to a down hop
  // RFC 3261 16.6 item 11: an INVITE branch that has answered provisionally
  // but not finally within timer C (> 3 min) is CANCELled; if no final
  // answer follows within cancelGuard (64*T1) the client gets 408.
  std::chrono::milliseconds timerC{181000};
  std::chrono::milliseconds cancelGuard{32000};
  std::chrono::milliseconds connectTimeout{5000};
  std::chrono::milliseconds slowAclThreshold{2000};  // RT-8 report
  // Per-address flood limiter for sources not listed in the ACL by address
  // (maxRequests 0 = off).
  FloodConfig flood;
  std::shared_ptr<core::Resolver> resolver;          // null = cached system resolver
  // Directory for the routing decision; may block (called on a worker
  // thread). Null = no local domains (everything goes by static route).
  std::shared_ptr<DirectoryLookup> directory;
  std::shared_ptr<spdlog::logger> log;                // null = silent
  std::shared_ptr<const core::TraceFlags> traceFlags;  // null = no trace flags
  // The loop to run on (must outlive the proxy); null = the proxy's own
  // loop on its own thread. See the top (issue 15, deliverable 4).
  net::EventLoop* loop = nullptr;
  // The clock for the proxy's timers (hop timeout, timer C, probes, flood
  // bans, the transaction timers); null = the loop. Used on the loop thread.
  net::TimerQueue* timers = nullptr;
};

// Live settings (reload): replaced as a whole.
struct ProxyPolicy {
  std::vector<AclEntry> acl;
  std::vector<StaticRoute> routes;
  FederationSettings federation;
  std::vector<std::string> clusterNodes;  // node ids of this cluster (FED-7)
  // node id -> "host:port" (TCP) of its SIP proxy, for LocalUser forwarding.
  std::map<std::string, std::string> nodeAddresses;
  // The local presence domains as of this policy (every directory change
  // makes a new settings generation, so a new policy). Requests for other
  // domains are routed on the loop without asking the directory; nullopt =
  // ask the directory for every request.
  std::optional<std::set<std::string>> localDomains;
  // This node's federation connection manager, "host:port" (TCP), from
  // fcm_node_endpoint (issue 17): requests for users homed here go to it,
  // and requests coming from it (a loopback address) are this node's own,
  // admitted without the ACL. Empty: none runs here (480).
  std::string federationCm;
};

struct ProxyStats {
  std::uint64_t requests = 0;
  std::uint64_t forwarded = 0;
  std::uint64_t failovers = 0;
  std::uint64_t aclRefused = 0;
  std::uint64_t loops = 0;
  std::uint64_t statelessForwards = 0;
  std::uint64_t floodRefused = 0;  // answered 503 while the source was banned
  std::uint64_t overloaded = 0;    // answered 503: too many directory lookups queued
  std::uint64_t directoryLookups = 0;    // routing decisions that asked the directory
  std::uint64_t directoryCacheHits = 0;  // ... answered from the recipient cache instead
  std::uint64_t rejected = 0;  // refused by validation before routing (400/416/420, RFC 3261 16.3)
  std::uint64_t responsesUnsent = 0;  // responses that could not be written back to the client (logged)
  // From the transport: requests that failed to parse, the 4xx/5xx sent for
  // them, those no answer could be formed or sent for (logged), and
  // malformed responses dropped.
  std::uint64_t parseErrors = 0;
  std::uint64_t errorResponsesSent = 0;
  std::uint64_t errorResponsesUnsent = 0;
  std::uint64_t malformedResponsesDropped = 0;
};

class Proxy {
 public:
  Proxy(ProxyConfig config, ProxyPolicy policy);
  ~Proxy();  // stops
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Binds the listeners (throws std::runtime_error naming the address) and
  // starts the loop thread. Once.
  void start();
  void stop() noexcept;
  bool running() const;

  // Applies new ACL / routes / federation settings on the loop.
  void updatePolicy(ProxyPolicy policy);
  // Makes the bound listeners exactly `listeners` (TLS-1, live): closes the
  // others (their connections stay), binds the new ones. Waits for the
  // loop; returns one message per listener that could not be bound. Not
  // from the loop thread.
  std::vector<std::string> setListeners(std::vector<ProxyListener> listeners);
  // Replaces the outgoing TLS context (TLS-4: a new node certificate or
  // trust store): connections to next hops opened from now on present and
  // verify with `tls`, open ones keep their session. Waits for the loop;
  // false when the loop did not apply it (stopped, or busy for 10 s).
  // Throws std::invalid_argument for a context that is not a client's.
  bool setTlsClient(std::shared_ptr<const net::TlsContext> tls);
  // Bound listener endpoints (after start()).
  std::vector<sip::Endpoint> endpoints() const;
  ProxyStats stats() const;
  // Addresses banned by the flood limiter now; lifting bans ("" = all)
  // returns how many were lifted. Wait for the loop; empty/0 when stopped.
  std::vector<Ban> bans() const;
  std::size_t clearBans(const std::string& address = "");
  // Next hops currently marked down ("TCP 10.0.0.5:5061").
  std::vector<std::string> downHops() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace imp::sip_proxy
