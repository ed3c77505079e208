#pragma once
// The Proxy's inside (issue 15, deliverable 2): a fixed chain of processors,
// each a plain member of Proxy::Impl called directly, in this order, for
// every request that is not a CANCEL:
//
//   Admission -> Validation -> Router -> HopHealth -> StatefulForwarder
//
// Each answers Continue (the next one runs now), Stop (the request was
// answered or dropped) or Wait (it keeps the request and resumes the chain
// later on the loop with Impl::resume(ctx, next stage): Admission after an
// asynchronous reverse DNS answer, Router after the directory lookup on the
// worker). The request's state is one Ctx per server transaction, allocated
// once in onRequest as before the split; no stage copies the request
// beyond what forwarding needs (the prepared `fwd`, the branch kept for a
// CANCEL). StatelessForwarder is not a stage: it takes the transaction
// layer's stray responses and 2xx ACKs. CANCEL goes straight to the
// StatefulForwarder (RFC 3261 §16.10).
//
// Threads: everything here runs on the proxy's loop, except Router's
// directory job (the worker thread) and HopHealth::isDown/downHops, which
// take its mutex.
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <imp/core/logging.h>

#include "imp/net/event_loop.h"
#include "imp/net/timers.h"
#include "imp/sip/transactions.h"
#include "imp/sip/transport.h"
#include "imp/sip/uri.h"
#include "imp/sip_proxy/proxy.h"
#include "imp/sip_proxy/request_checks.h"

namespace imp::sip_proxy::detail {

using net::Clock;
using sip::Message;
using sip::TxId;

inline bool isWildcard(const std::string& a) { return a.empty() || a == "0.0.0.0" || a == "::"; }

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

inline sip::Transport toSip(Transport t) {
  switch (t) {
    case Transport::Tcp: return sip::Transport::Tcp;
    case Transport::Tls: return sip::Transport::Tls;
    case Transport::Udp: return sip::Transport::Udp;
  }
  return sip::Transport::Tcp;
}

inline std::optional<sip::Transport> parseSipTransport(std::string_view s) {
  if (iequals(s, "tcp")) return sip::Transport::Tcp;
  if (iequals(s, "tls")) return sip::Transport::Tls;
  if (iequals(s, "udp")) return sip::Transport::Udp;
  return std::nullopt;
}

inline std::uint16_t defaultPort(sip::Transport t) { return t == sip::Transport::Tls ? 5061 : 5060; }

inline bool isDialogCreating(std::string_view m) { return m == "INVITE" || m == "SUBSCRIBE" || m == "REFER"; }

std::string hostPort(const std::string& host, std::uint16_t port);
std::string randomTag();

// A next hop to try: host may be an FQDN until resolved.
struct Hop {
  std::string host;
  std::uint16_t port = 0;
  sip::Transport transport = sip::Transport::Tcp;
  std::string key() const { return std::string(sip::transportName(transport)) + " " + hostPort(host, port); }
};

// Where a URI (Route, Request-URI, Contact) says to go.
std::optional<Hop> hopFromUri(std::string_view text);

// One worker thread for blocking work (directory lookups).
class Worker {
 public:
  void start();
  // False (job dropped) when `limit` jobs are already waiting.
  bool post(std::function<void()> job, std::size_t limit = SIZE_MAX);
  void stop();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

struct CompiledPolicy {
  ProxyPolicy raw;
  AclMatcher acl;
  RouteTable routes;
  std::vector<std::string> clusterNodes;  // raw.clusterNodes + own node id
};

// One forwarded request (server transaction) and its attempts.
struct Ctx {
  TxId serverTx = 0;
  Message request;  // as received
  sip::Source source;
  Message fwd;  // prepared for forwarding (no Via of ours yet)
  std::vector<Hop> hops;  // Router's candidates, in the order to try
  std::size_t next = 0;
  bool federation = false;  // outbound partitioned-federation request
  std::uint64_t attempt = 0;
  net::TimerId hopTimer = 0;
  net::TimerId timerC = 0;  // INVITE after a provisional answer
  TxId clientTx = 0;        // the current attempt's client transaction
  bool gotProvisional = false;
  bool done = false;
  bool cancelled = false;
  bool cancelSent = false;
  bool lastWasTimeout = false;
  Hop currentHop;
  sip::Endpoint currentEp;
  std::optional<Message> current;  // the request as sent to the current hop
};
using CtxPtr = std::shared_ptr<Ctx>;

enum class Verdict { Continue, Stop, Wait };
// Where Impl::resume() re-enters the chain.
enum class Stage { Admission, Validation, Router, HopHealth, Forward };

}  // namespace imp::sip_proxy::detail

namespace imp::sip_proxy {

using detail::CtxPtr;
using detail::Verdict;
using sip::TxId;

// (1) Incoming ACL (RT-7, RT-8): the source address, else an asynchronous
// reverse DNS lookup (Wait; resumed at Validation when the name matches) and
// the per-address flood limiter for sources not listed by address.
class Admission {
 public:
  explicit Admission(Proxy::Impl& p);
  Verdict process(const CtxPtr& ctx);
  std::vector<Ban> bans();
  std::size_t clearBans(const std::string& address);

 private:
  bool trustedByName(const std::string& ip);
  bool fromOwnFederationCm(const std::string& ip) const;
  void aclAnswer(const CtxPtr& ctx, const std::optional<std::string>& name, std::chrono::milliseconds took);

  Proxy::Impl& p_;
  FloodLimiter flood_;
  std::unordered_map<std::string, detail::Clock::time_point> nameTrusted_;  // ip -> until
};

// (2) RFC 3261 §16.3: request_checks (400/416/420), Max-Forwards (483, else
// decremented or set to 70); prepares ctx->fwd (received/rport on the top Via).
class Validation {
 public:
  explicit Validation(Proxy::Impl& p) : p_(p) {}
  Verdict process(const CtxPtr& ctx);

 private:
  Proxy::Impl& p_;
};

// (3) + (4) Our own Route entries are stripped; a remaining Route or an
// in-dialog request goes where it says; OPTIONS to the proxy itself is
// answered; otherwise decideRoute() with loop detection (FED-7): on the loop
// for other domains and cached recipients, else on the worker (Wait; resumed
// at HopHealth). Continue = ctx->hops holds the candidates.
class Router {
 public:
  explicit Router(Proxy::Impl& p) : p_(p) {}
  Verdict process(const CtxPtr& ctx);
  // A new settings generation: what the directory said is stale.
  void forgetRecipients();

 private:
  Verdict decide(const CtxPtr& ctx);
  Verdict applyDecision(const CtxPtr& ctx, const RoutingDecision& d, const std::string& domain);

  Proxy::Impl& p_;
  directory::RecipientCache recipients_;  // user@domain -> what the directory said (loop)
};

// Next-hop health: hops marked down go last among the candidates (the
// chain stage); a failed hop is marked down and probed with OPTIONS every
// probeInterval until it answers.
class HopHealth {
 public:
  explicit HopHealth(Proxy::Impl& p) : p_(p) {}
  Verdict process(const CtxPtr& ctx);
  bool isDown(const std::string& key) const;
  void markDown(const detail::Hop& hop, const sip::Endpoint& ep);
  std::vector<std::string> downHops() const;
  // Cancels the pending probes (the proxy is going; its timers may not be).
  void shutdown();

 private:
  void scheduleProbe(const std::string& key, const sip::Endpoint& ep);
  void probe(const std::string& key, const sip::Endpoint& ep);

  Proxy::Impl& p_;
  mutable std::mutex mu_;
  std::set<std::string> down_;
  std::map<std::string, net::TimerId> probes_;  // key -> its next probe (loop)
};

// (5) Stateful forwarding: Record-Route for dialog-creating requests, our
// Via, one client transaction per attempt, failover to the next candidate
// on transport error, per-hop timeout or 503, timer C for INVITE, CANCEL.
class StatefulForwarder {
 public:
  explicit StatefulForwarder(Proxy::Impl& p) : p_(p) {}
  Verdict process(const CtxPtr& ctx);
  void onCancel(TxId tx, const sip::Message& cancel);
  void onServerTransportError(TxId tx, const sip::TransportError& e);
  void onServerTerminated(TxId tx);
  // Cancels the timers of the requests in progress (the proxy is going;
  // its timers may not be).
  void shutdown();

 private:
  void tryNext(const CtxPtr& ctx);
  void sendHop(const CtxPtr& ctx, const detail::Hop& hop, const sip::Endpoint& hopEp, bool udpRetry = false);
  void armTimerC(const CtxPtr& ctx, std::uint64_t attempt);
  void cancelBranch(const CtxPtr& ctx);
  void hopFailed(const CtxPtr& ctx, const std::string& why, bool timeout);
  void relay(const CtxPtr& ctx, const sip::Message& r, bool final);
  void finish(const CtxPtr& ctx, int status, std::string_view reason);
  void sendCancel(const CtxPtr& ctx);

  Proxy::Impl& p_;
  std::map<TxId, CtxPtr> active_;
};

// Responses matching no transaction (back along the Via) and ACKs for 2xx
// (along the Route / Request-URI), without a transaction.
class StatelessForwarder {
 public:
  explicit StatelessForwarder(Proxy::Impl& p) : p_(p) {}
  void onStrayResponse(const sip::Message& msg);
  void onStrayAck(const sip::Message& msg);

 private:
  void send(sip::Message m, const detail::Hop& h);

  Proxy::Impl& p_;
};

// The wiring: transport, transaction layer, loop and timers, listeners, the
// policy, the plumbing the processors share (answers, Via and
// Record-Route, name resolution) and the chain itself.
class Proxy::Impl : public sip::TransactionTransport, public sip::TransactionUser {
 public:
  // Posts to the loop from any thread, and safely does nothing once the
  // proxy is gone.
  struct Poster {
    std::mutex mu;
    Impl* impl = nullptr;
    void post(std::function<void(Impl&)> fn);
    void close();
  };

  Impl(ProxyConfig cfg, ProxyPolicy policy);
  ~Impl() override;

  std::shared_ptr<const detail::CompiledPolicy> compile(ProxyPolicy p) const;
  void start();
  void stop() noexcept;
  sip::Endpoint bind(const ProxyListener& l);
  std::vector<std::string> setListeners(const std::vector<ProxyListener>& wanted);
  void applyPolicy(std::shared_ptr<const detail::CompiledPolicy> compiled);

  // The chain from `from` on (see the top).
  void resume(const CtxPtr& ctx, detail::Stage from);

  // ---- plumbing for the processors ----
  bool trace(std::string_view flag) const { return log_ && flags_ && flags_->has(flag); }
  void dump(const char* what, const sip::Message& m, const sip::Endpoint& peer);
  void onWire(sip::Message m, const sip::Source& s);
  std::uint16_t ownPort(sip::Transport t) const;
  bool isOwn(std::string_view host, std::uint16_t port, sip::Transport t) const;
  bool isOwnUri(std::string_view uri) const;
  bool hasListener(sip::Transport t) const;
  void appendSentBy(std::string& out, sip::Transport t) const;
  std::string recordRoute(sip::Transport t) const;
  std::string viaFor(sip::Transport t) const;
  static void markReceived(sip::Message& m, const sip::Source& src);
  void reject(const CtxPtr& ctx, const RequestRejection& r);
  void answer(TxId tx, const sip::Message& req, int status, std::string_view reason);
  // Resolves a hop to an endpoint (async for FQDNs); nullopt = no address.
  void resolve(const detail::Hop& h, std::function<void(Impl&, std::optional<sip::Endpoint>)> done);

  // TransactionTransport
  void send(const sip::Message& msg, const sip::Endpoint& dest,
            std::function<void(const sip::TransportError&)> onError) override;
  // TransactionUser
  void onRequest(TxId tx, const sip::Message& req, const sip::Source& src) override;
  void onServerTransportError(TxId tx, const sip::TransportError& e) override {
    forwarder_.onServerTransportError(tx, e);
  }
  void onServerTerminated(TxId tx) override { forwarder_.onServerTerminated(tx); }
  void onStrayResponse(const sip::Message& msg, const sip::Source&) override {
    statelessForwarder_.onStrayResponse(msg);
  }
  void onStrayAck(const sip::Message& msg, const sip::Source&) override { statelessForwarder_.onStrayAck(msg); }

  // ---- state ----
  ProxyConfig cfg_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<const core::TraceFlags> flags_;
  std::shared_ptr<core::Resolver> resolver_;
  std::unique_ptr<net::EventLoop> ownLoop_;  // null when the loop is given (ProxyConfig::loop)
  net::EventLoop& loop_;
  net::TimerQueue& timers_;  // ProxyConfig::timers, else the loop
  std::unique_ptr<sip::TransportLayer> transport_;
  std::unique_ptr<sip::TransactionLayer> txl_;
  std::shared_ptr<const detail::CompiledPolicy> policy_;  // loop thread
  std::shared_ptr<Poster> poster_;
  detail::Worker worker_;
  std::thread thread_;
  bool started_ = false;
  std::atomic<bool> running_{false};
  std::vector<sip::Endpoint> bound_;
  std::vector<ProxyListener> boundCfg_;  // parallel to bound_
  std::string advertised_;

  std::atomic<std::uint64_t> requests_{0}, forwarded_{0}, failovers_{0}, aclRefused_{0}, loops_{0}, stateless_{0},
      floodRefused_{0}, overloaded_{0}, directoryLookups_{0}, directoryCacheHits_{0}, rejected_{0}, responsesUnsent_{0};

  // The chain, in its order.
  Admission admission_{*this};
  Validation validation_{*this};
  Router router_{*this};
  HopHealth health_{*this};
  StatefulForwarder forwarder_{*this};
  StatelessForwarder statelessForwarder_{*this};
};

}  // namespace imp::sip_proxy
