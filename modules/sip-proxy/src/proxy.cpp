#include "imp/sip_proxy/proxy.h"

#include <imp/core/dns.h>
#include <imp/core/logging.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "imp/net/event_loop.h"
#include "imp/sip/transactions.h"
#include "imp/sip/transport.h"
#include "imp/sip/uri.h"
#include "imp/sip_proxy/request_checks.h"

namespace imp::sip_proxy {

namespace {

using net::Clock;
using sip::Message;
using sip::TxId;
using namespace std::chrono_literals;

// Directory lookups allowed to wait for the worker before requests are
// refused with 503 (about a second of work at the measured lookup cost).
constexpr std::size_t kMaxDirectoryQueue = 5000;
// Recipients whose directory answers are kept between requests (cleared on
// every settings generation; all of it dropped when it grows past this).
constexpr std::size_t kMaxCachedRecipients = 100000;

// For requests outside the local presence domains: no directory involved.
struct NotLocal : DirectoryLookup {
  bool isLocalDomain(const std::string&) override { return false; }
  std::optional<std::string> licensedUserHome(const std::string&) override { return std::nullopt; }
  bool hasMicrosoftSipUri(const std::string&) override { return false; }
};

// RFC 3261 §18.1.1: requests larger than this (MTU unknown: 1500 - 200)
// leave over TCP rather than UDP; our Via adds about kViaAllowance bytes.
constexpr std::size_t kMaxUdpRequest = 1300;
constexpr std::size_t kViaAllowance = 100;

// How long a reverse-DNS ACL match exempts its address from the flood limiter.
constexpr auto kNameTrust = std::chrono::seconds(60);
constexpr std::string_view kAclRefused = "ACL - upstream not trusted - need to authenticate";
constexpr std::string_view kNoFcm =
    "Temporarily Unavailable - user is homed on this node and no federation connection manager is connected";

std::string hostPort(const std::string& host, std::uint16_t port) {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return port ? h + ":" + std::to_string(port) : h;
}

bool isWildcard(const std::string& a) { return a.empty() || a == "0.0.0.0" || a == "::"; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

sip::Transport toSip(Transport t) {
  switch (t) {
    case Transport::Tcp: return sip::Transport::Tcp;
    case Transport::Tls: return sip::Transport::Tls;
    case Transport::Udp: return sip::Transport::Udp;
  }
  return sip::Transport::Tcp;
}

std::optional<sip::Transport> parseSipTransport(std::string_view s) {
  if (iequals(s, "tcp")) return sip::Transport::Tcp;
  if (iequals(s, "tls")) return sip::Transport::Tls;
  if (iequals(s, "udp")) return sip::Transport::Udp;
  return std::nullopt;
}

std::uint16_t defaultPort(sip::Transport t) { return t == sip::Transport::Tls ? 5061 : 5060; }

bool isDialogCreating(std::string_view m) { return m == "INVITE" || m == "SUBSCRIBE" || m == "REFER"; }

// A next hop to try: host may be an FQDN until resolved.
struct Hop {
  std::string host;
  std::uint16_t port = 0;
  sip::Transport transport = sip::Transport::Tcp;
  std::string key() const { return std::string(sip::transportName(transport)) + " " + hostPort(host, port); }
};

// Where a URI (Route, Request-URI, Contact) says to go.
std::optional<Hop> hopFromUri(std::string_view text) {
  auto u = sip::parseUri(text);
  if (!u || !u->isSip() || u->host.empty()) return std::nullopt;
  Hop h;
  h.host = std::string(u->host);
  h.transport = u->scheme == sip::UriScheme::Sips ? sip::Transport::Tls : sip::Transport::Tcp;
  if (auto t = u->param("transport"))
    if (auto p = parseSipTransport(*t)) h.transport = *p;
  h.port = u->port ? u->port : defaultPort(h.transport);
  return h;
}

std::string randomTag() { return sip::TransactionLayer::newBranch().substr(7, 16); }

// One worker thread for blocking work (directory lookups).
class Worker {
 public:
  void start() {
    thread_ = std::thread([this] {
      for (;;) {
        std::function<void()> job;
        {
          std::unique_lock l(mu_);
          cv_.wait(l, [&] { return stopping_ || !jobs_.empty(); });
          if (stopping_) return;
          job = std::move(jobs_.front());
          jobs_.pop_front();
        }
        job();
      }
    });
  }
  // False (job dropped) when `limit` jobs are already waiting.
  bool post(std::function<void()> job, std::size_t limit = SIZE_MAX) {
    {
      std::lock_guard l(mu_);
      if (stopping_) return true;
      if (jobs_.size() >= limit) return false;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
  }
  void stop() {
    {
      std::lock_guard l(mu_);
      stopping_ = true;
      jobs_.clear();
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

class NoDirectory : public DirectoryLookup {
 public:
  bool isLocalDomain(const std::string&) override { return false; }
  std::optional<std::string> licensedUserHome(const std::string&) override { return std::nullopt; }
  bool hasMicrosoftSipUri(const std::string&) override { return false; }
};

struct CompiledPolicy {
  ProxyPolicy raw;
  AclMatcher acl;
  RouteTable routes;
  std::vector<std::string> clusterNodes;  // raw.clusterNodes + own node id
};

}  // namespace

class Proxy::Impl : public sip::TransactionTransport, public sip::TransactionUser {
 public:
  // Posts to the loop from any thread, and safely does nothing once the
  // proxy is gone.
  struct Poster {
    std::mutex mu;
    Impl* impl = nullptr;
    void post(std::function<void(Impl&)> fn) {
      std::lock_guard l(mu);
      if (!impl) return;
      Impl* i = impl;
      i->loop_.post([i, fn = std::move(fn)] { fn(*i); });
    }
    void close() {
      std::lock_guard l(mu);
      impl = nullptr;
    }
  };

  // One forwarded request (server transaction) and its attempts.
  struct Ctx {
    TxId serverTx = 0;
    Message request;  // as received
    sip::Source source;
    Message fwd;  // prepared for forwarding (no Via of ours yet)
    std::vector<Hop> hops;
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

  Impl(ProxyConfig cfg, ProxyPolicy policy) : cfg_(std::move(cfg)) {
    log_ = cfg_.log;
    flags_ = cfg_.traceFlags;
    if (!cfg_.directory) cfg_.directory = std::make_shared<NoDirectory>();
    resolver_ = cfg_.resolver;
    if (!resolver_) resolver_ = std::make_shared<core::CachingResolver>(std::make_shared<core::SystemResolver>(2));
    sip::TransportConfig tc;
    tc.connectTimeout = cfg_.connectTimeout;
    tc.tlsClient = cfg_.tlsClient;
    tc.log = cfg_.log;
    transport_ = std::make_unique<sip::TransportLayer>(loop_, tc);
    txl_ = std::make_unique<sip::TransactionLayer>(*this, loop_, *this);
    transport_->setMessageHandler([this](Message m, const sip::Source& s) { onWire(std::move(m), s); });
    policy_ = compile(std::move(policy));
    poster_ = std::make_shared<Poster>();
    poster_->impl = this;
  }

  ~Impl() override {
    stop();
    poster_->close();
    txl_.reset();
    transport_.reset();
  }

  std::shared_ptr<const CompiledPolicy> compile(ProxyPolicy p) const {
    auto c = std::make_shared<CompiledPolicy>();
    c->acl = AclMatcher(p.acl);
    c->routes = RouteTable(p.routes);
    c->clusterNodes = p.clusterNodes;
    if (std::find(c->clusterNodes.begin(), c->clusterNodes.end(), cfg_.nodeId) == c->clusterNodes.end())
      c->clusterNodes.push_back(cfg_.nodeId);
    c->raw = std::move(p);
    return c;
  }

  void start() {
    if (started_) throw std::runtime_error("sip proxy already started");
    started_ = true;
    for (const auto& l : cfg_.listeners) bind(l);
    if (!cfg_.advertisedHost.empty())
      advertised_ = cfg_.advertisedHost;
    else if (!bound_.empty() && !isWildcard(bound_.front().address))
      advertised_ = bound_.front().address;
    else
      advertised_ = "127.0.0.1";
    worker_.start();
    running_ = true;
    thread_ = std::thread([this] { loop_.run(); });
  }

  sip::Endpoint bind(const ProxyListener& l) {
    sip::ListenerConfig lc;
    lc.transport = l.transport;
    lc.address = l.address;
    lc.port = l.port;
    lc.tls = l.tls;
    lc.acceptPeer = l.acceptPeer;
    auto ep = transport_->listen(lc);
    bound_.push_back(ep);
    boundCfg_.push_back(l);
    return ep;
  }

  static bool sameListener(const ProxyListener& a, const ProxyListener& b) {
    return a.transport == b.transport && a.address == b.address && a.port == b.port && a.tls == b.tls &&
           a.acceptPeerKey == b.acceptPeerKey;
  }

  // Loop thread. Closes the listeners not wanted any more, then binds the
  // new ones (TLS-1: port changes apply live). Returns one message per
  // listener that could not be bound.
  std::vector<std::string> setListeners(const std::vector<ProxyListener>& wanted) {
    std::vector<std::string> errors;
    for (std::size_t i = bound_.size(); i-- > 0;) {
      bool keep = std::any_of(wanted.begin(), wanted.end(), [&](const auto& w) { return sameListener(w, boundCfg_[i]); });
      if (keep) continue;
      transport_->closeListener(bound_[i]);
      if (log_) log_->info("listener {} closed", bound_[i].toString());
      bound_.erase(bound_.begin() + static_cast<std::ptrdiff_t>(i));
      boundCfg_.erase(boundCfg_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    for (const auto& w : wanted) {
      bool have = std::any_of(boundCfg_.begin(), boundCfg_.end(), [&](const auto& b) { return sameListener(w, b); });
      if (have) continue;
      try {
        auto ep = bind(w);
        if (log_) log_->info("listener {} opened", ep.toString());
      } catch (const std::exception& e) {
        errors.push_back(e.what());
        if (log_) log_->error("{}", e.what());
      }
    }
    // Keep the configured order: our Via and Record-Route use the first
    // listener of a transport (server-auth before peer-auth).
    std::vector<sip::Endpoint> eps;
    std::vector<ProxyListener> cfgs;
    for (const auto& w : wanted)
      for (std::size_t i = 0; i < boundCfg_.size(); ++i)
        if (sameListener(w, boundCfg_[i])) {
          eps.push_back(bound_[i]);
          cfgs.push_back(boundCfg_[i]);
          break;
        }
    bound_ = std::move(eps);
    boundCfg_ = std::move(cfgs);
    return errors;
  }

  void stop() noexcept {
    if (!started_) return;
    loop_.stop();
    if (thread_.joinable()) thread_.join();
    worker_.stop();
    running_ = false;
  }

  // ---- plumbing ----

  bool trace(std::string_view flag) const { return log_ && flags_ && flags_->has(flag); }

  void dump(const char* what, const Message& m, const sip::Endpoint& peer) {
    std::string_view flag = peer.transport == sip::Transport::Tls ? "sip-tls" : "sip-tcp";
    if (trace(flag)) log_->info("{} {}:\n{}", what, peer.toString(), m.serialize());
  }

  void onWire(Message m, const sip::Source& s) {
    dump("Received from", m, s.remote);
    txl_->onMessage(std::move(m), s);
  }

  // TransactionTransport
  void send(const Message& msg, const sip::Endpoint& dest,
            std::function<void(const sip::TransportError&)> onError) override {
    dump("Sending to", msg, dest);
    transport_->send(msg, dest, std::move(onError));
  }

  std::uint16_t ownPort(sip::Transport t) const {
    for (const auto& e : bound_)
      if (e.transport == t) return e.port;
    return bound_.empty() ? 5060 : bound_.front().port;
  }

  bool isOwn(std::string_view host, std::uint16_t port, sip::Transport t) const {
    bool hostOurs = iequals(host, advertised_);
    for (const auto& e : bound_)
      if (!isWildcard(e.address) && iequals(host, e.address)) hostOurs = true;
    if (!hostOurs) return false;
    std::uint16_t p = port ? port : defaultPort(t);
    for (const auto& e : bound_)
      if (e.port == p) return true;
    return false;
  }

  bool isOwnUri(std::string_view uri) const {
    auto h = hopFromUri(uri);
    return h && isOwn(h->host, h->port, h->transport);
  }

  bool hasListener(sip::Transport t) const {
    return std::any_of(bound_.begin(), bound_.end(), [t](const sip::Endpoint& e) { return e.transport == t; });
  }

  // Our host[:port] for a transport, as written in Via and Record-Route.
  void appendSentBy(std::string& out, sip::Transport t) const {
    bool v6 = advertised_.find(':') != std::string::npos;
    if (v6) out += '[';
    out += advertised_;
    if (v6) out += ']';
    if (std::uint16_t port = ownPort(t)) {
      char digits[8];
      auto [end, ec] = std::to_chars(digits, digits + sizeof digits, port);
      (void)ec;
      out += ':';
      out.append(digits, end);
    }
  }

  // Both built in one buffer: one per relayed request (Via) or dialog (Record-Route).
  std::string recordRoute(sip::Transport t) const {
    std::string rr;
    rr.reserve(advertised_.size() + 40);
    rr += "<sip:";
    appendSentBy(rr, t);
    rr += ";transport=";
    for (char c : sip::transportName(t)) rr += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    rr += ";lr>";
    return rr;
  }

  std::string viaFor(sip::Transport t) const {
    std::string via;
    via.reserve(advertised_.size() + 72);
    via += "SIP/2.0/";
    via += sip::transportName(t);
    via += ' ';
    appendSentBy(via, t);
    via += ";branch=";
    via += sip::TransactionLayer::newBranch();
    return via;
  }

  // RFC 3261 §18.2.1 and RFC 3581 §4: the top Via gets received= when its
  // sent-by host is not the source address, and rport= (with received=)
  // when the client asked for it, so responses, stateless ones included, go
  // back to where the request came from (through NAT too).
  static void markReceived(Message& m, const sip::Source& src) {
    auto top = m.topVia();
    if (!top) return;
    auto rport = top->param("rport");
    bool wantRport = rport && rport->empty();
    bool hostDiffers = canonicalIp(top->host).value_or(std::string(top->host)) != src.remote.address;
    if (!wantRport && (!hostDiffers || top->param("received"))) return;
    std::string raw(top->raw);
    if (wantRport) {
      // ";rport" gets its value in place (the parameter stays where it was).
      auto p = raw.find(";rport");
      while (p != std::string::npos) {
        auto after = p + 6;
        if (after == raw.size() || raw[after] == ';' || raw[after] == ' ' || raw[after] == '\t') {
          raw.insert(after, "=" + std::to_string(src.remote.port));
          break;
        }
        p = raw.find(";rport", after);
      }
    }
    if (!top->param("received")) raw += ";received=" + src.remote.address;
    m.removeFirstValue(sip::HeaderId::Via);
    m.prependHeader(sip::HeaderId::Via, raw);
  }

  void reject(const std::shared_ptr<Ctx>& ctx, const RequestRejection& r) {
    ++rejected_;
    if (log_)
      log_->info("{} {} from {} refused: {} {}", ctx->request.method(), ctx->request.requestUri(),
                 ctx->source.remote.toString(), r.status, r.reason);
    auto resp = sip::TransactionLayer::makeResponse(ctx->request, r.status, r.reason, randomTag());
    for (const auto& [name, value] : r.headers) resp.appendHeader(name, value);
    txl_->respond(ctx->serverTx, std::move(resp));
  }

  void answer(TxId tx, const Message& req, int status, std::string_view reason) {
    txl_->respond(tx, sip::TransactionLayer::makeResponse(req, status, reason, randomTag()));
  }

  // Resolves a hop to an endpoint (async for FQDNs); nullopt = no address.
  void resolve(const Hop& h, std::function<void(Impl&, std::optional<sip::Endpoint>)> done) {
    if (auto ip = canonicalIp(h.host)) {
      done(*this, sip::Endpoint{*ip, h.port, h.transport});
      return;
    }
    auto poster = poster_;
    resolver_->forward(h.host, [poster, h, done = std::move(done)](std::vector<std::string> addrs) mutable {
      poster->post([h, addrs = std::move(addrs), done = std::move(done)](Impl& self) {
        if (addrs.empty()) {
          if (self.log_) self.log_->warn("cannot resolve next hop {} (RT-10: check DNS)", h.host);
          done(self, std::nullopt);
        } else {
          done(self, sip::Endpoint{addrs.front(), h.port, h.transport});
        }
      });
    });
  }

  // ---- TransactionUser ----

  void onRequest(TxId tx, const Message& req, const sip::Source& src) override {
    ++requests_;
    if (req.method() == "CANCEL") {
      onCancel(tx, req);
      return;
    }
    auto ctx = std::make_shared<Ctx>();
    ctx->serverTx = tx;
    ctx->request = req;
    ctx->source = src;
    if (trace("sip-message-state"))
      log_->info("State: transaction {} {} {} from {}: received (server transaction trying)", tx, req.method(),
                 req.requestUri(), src.remote.toString());
    checkAcl(ctx);
  }

  // (1) incoming ACL (RT-7, RT-8)
  void checkAcl(const std::shared_ptr<Ctx>& ctx) {
    const auto& acl = policy_->acl;
    const std::string ip = ctx->source.remote.address;
    if (acl.allowsAll() || acl.allowsAddress(ip)) {
      afterAcl(ctx);
      return;
    }
    // Not listed by address: the flood limiter applies (RT-7, like pike),
    // except to addresses whose reverse-DNS name the ACL accepted lately.
    if (cfg_.flood.maxRequests > 0 && !trustedByName(ip)) {
      auto now = Clock::now();
      auto issued = flood_.bansIssued();
      if (!flood_.allow(ip, now)) {
        ++floodRefused_;
        if (flood_.bansIssued() != issued && log_)
          log_->warn("flood limit: {} sent over {} requests in {} ms; banned for {} s (impctl ban list)", ip,
                     cfg_.flood.maxRequests, cfg_.flood.window.count(), cfg_.flood.banTime.count());
        auto resp = sip::TransactionLayer::makeResponse(ctx->request, 503, "Service Unavailable - flood limit",
                                                        randomTag());
        resp.appendHeader("Retry-After", std::to_string(cfg_.flood.banTime.count()));
        txl_->respond(ctx->serverTx, resp);
        return;
      }
    }
    auto started = Clock::now();
    auto poster = poster_;
    resolver_->reverse(ip, [poster, ctx, started](std::optional<std::string> name) {
      auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
      poster->post([ctx, name = std::move(name), took](Impl& self) { self.aclAnswer(ctx, name, took); });
    });
  }

  bool trustedByName(const std::string& ip) {
    auto it = nameTrusted_.find(ip);
    if (it == nameTrusted_.end()) return false;
    if (it->second > Clock::now()) return true;
    nameTrusted_.erase(it);
    return false;
  }

  void aclAnswer(const std::shared_ptr<Ctx>& ctx, const std::optional<std::string>& name,
                 std::chrono::milliseconds took) {
    if (took > cfg_.slowAclThreshold && log_)
      log_->warn("incoming ACL check took over {} seconds – check DNS ({} for {})",
                 std::max<long long>(1, std::chrono::duration_cast<std::chrono::seconds>(cfg_.slowAclThreshold).count()),
                 took.count() >= 0 ? std::to_string(took.count()) + " ms" : "?", ctx->source.remote.address);
    if (name && policy_->acl.allowsName(*name)) {
      nameTrusted_[ctx->source.remote.address] = Clock::now() + kNameTrust;
      afterAcl(ctx);
      return;
    }
    ++aclRefused_;
    if (log_)
      log_->warn("{}: {} from {} ({})", kAclRefused, ctx->request.method(), ctx->source.remote.toString(),
                 name ? *name : std::string("no PTR record"));
    answer(ctx->serverTx, ctx->request, 403, kAclRefused);
  }

  // (2) Max-Forwards, own Route, then (3)/(4)
  void afterAcl(const std::shared_ptr<Ctx>& ctx) {
    const Message& req = ctx->request;
    // RFC 3261 §16.3 steps 1-2: a request the proxy cannot forward as it is
    // gets 400 naming the header, or 416 for the scheme, before routing.
    if (auto bad = checkRequestSyntax(req)) {
      reject(ctx, *bad);
      return;
    }
    auto mf = req.maxForwards();
    if (mf && *mf <= 0) {
      answer(ctx->serverTx, req, 483, "Too Many Hops");
      return;
    }
    if (auto bad = checkProxyRequire(req)) {  // step 5
      reject(ctx, *bad);
      return;
    }
    ctx->fwd = req;
    markReceived(ctx->fwd, ctx->source);
    ctx->fwd.setHeader(sip::HeaderId::MaxForwards, mf ? std::to_string(*mf - 1) : "70");
    for (int i = 0; i < 8; ++i) {
      auto routes = ctx->fwd.routes();
      if (routes.empty() || !isOwnUri(routes.front().uri)) break;
      ctx->fwd.removeFirstValue(sip::HeaderId::Route);
    }
    if (isFederationRequest(req) && trace("method-event-routing"))
      log_->info("This is a partitioned federation request, skip User Location DB lookup");

    // A pre-set route or an in-dialog request goes where it says.
    auto routes = ctx->fwd.routes();
    auto to = req.to();
    bool inDialog = to && !to->tag().empty();
    if (!routes.empty() || inDialog) {
      auto h = hopFromUri(!routes.empty() ? routes.front().uri : req.requestUri());
      if (!h) {
        answer(ctx->serverTx, req, 416, "Unsupported URI Scheme");
        return;
      }
      if (routes.empty() && isOwn(h->host, h->port, h->transport)) {
        answer(ctx->serverTx, req, 481, "Call/Transaction Does Not Exist");
        return;
      }
      forward(ctx, {*h});
      return;
    }
    // OPTIONS for the proxy itself: a load balancer's heartbeat (RT-4).
    if (auto h = hopFromUri(req.requestUri());
        h && req.method() == "OPTIONS" && isOwn(h->host, h->port, h->transport)) {
      answer(ctx->serverTx, req, 200, "OK");
      return;
    }
    decide(ctx);
  }

  // (3) + (4): the routing decision. Requests for other domains and recipients
  // cached since the last settings generation are decided on the loop; the
  // rest off it, on the worker (the directory may block).
  void decide(const std::shared_ptr<Ctx>& ctx) {
    auto policy = policy_;
    std::string target(ctx->request.requestUri());
    std::string domain;
    if (auto u = sip::parseUri(target)) domain = lower(u->host);
    if (trace("routing")) log_->info("Routing: dipping for {}", domain.empty() ? target : domain);
    bool own = carriesOwnFederationMarker(ctx->request, policy->clusterNodes);
    const auto& local = policy->raw.localDomains;
    if (local && !domain.empty() && local->count(domain) == 0) {
      // Not a local presence domain: static routes only, decided here.
      NotLocal notLocal;
      applyDecision(ctx, decideRoute(target, policy->raw.federation, notLocal, policy->routes, own), domain);
      return;
    }
    // A local domain (or the set is unknown): the directory decides. What it
    // said about this recipient since the last settings generation is kept
    // on the loop (every directory change makes a new generation).
    std::optional<std::string> key;
    if (local) key = recipientAddress(target);
    if (key) {
      if (auto it = recipientCache_.find(*key); it != recipientCache_.end()) {
        CachedLookup cached(it->second);
        std::optional<RoutingDecision> d;
        try {
          d = decideRoute(target, policy->raw.federation, cached, policy->routes, own);
        } catch (const CacheMiss&) {
          // a question the cached lookup did not ask: the directory answers it
        }
        if (d) {
          ++directoryCacheHits_;
          applyDecision(ctx, *d, domain);
          return;
        }
      }
    }
    auto directory = cfg_.directory;
    auto poster = poster_;
    auto epoch = cacheEpoch_;
    bool queued = worker_.post([poster, ctx, policy, directory, target, domain, own, key, epoch] {
      RoutingDecision d;
      CachedRecipient seen;
      bool ok = false;
      try {
        RecordingLookup recording(*directory, seen);
        d = decideRoute(target, policy->raw.federation, recording, policy->routes, own);
        ok = true;
      } catch (const std::exception& e) {
        d.kind = RoutingDecision::Kind::Reject;
        d.status = 503;
        d.reason = std::string("Service Unavailable - directory lookup failed: ") + e.what();
      }
      poster->post([ctx, d = std::move(d), domain, key, epoch, seen, ok](Impl& self) {
        if (ok && key && epoch == self.cacheEpoch_) self.remember(*key, seen);
        self.applyDecision(ctx, d, domain);
      });
    }, kMaxDirectoryQueue);
    if (queued) ++directoryLookups_;
    if (!queued) {
      // Overload: the directory cannot keep up. Refuse now rather than let
      // every request wait longer than its sender's timers.
      if (overloaded_++ % 1000 == 0 && log_)
        log_->warn("overload: {} directory lookups waiting; answering 503 (Retry-After 5)", kMaxDirectoryQueue);
      auto resp = sip::TransactionLayer::makeResponse(ctx->request, 503, "Service Unavailable - overloaded", randomTag());
      resp.appendHeader("Retry-After", "5");
      txl_->respond(ctx->serverTx, resp);
    }
  }

  // Loop thread. Answers noted while the settings generation they were asked
  // under is still the current one.
  void remember(const std::string& key, const CachedRecipient& seen) {
    if (!seen.licensedHome && !seen.microsoftSipUri) return;
    if (recipientCache_.size() >= kMaxCachedRecipients && recipientCache_.count(key) == 0) recipientCache_.clear();
    recipientCache_[key] = seen;
  }
  void forgetRecipients() {
    recipientCache_.clear();
    ++cacheEpoch_;
  }

  static std::string phrase(std::string s) {
    for (auto& c : s)
      if (c == '\r' || c == '\n') c = ' ';
    return s;
  }

  void applyDecision(const std::shared_ptr<Ctx>& ctx, const RoutingDecision& d, const std::string& domain) {
    using K = RoutingDecision::Kind;
    switch (d.kind) {
      case K::Reject: {
        if (d.status == 482) {
          ++loops_;
          if (log_)
            log_->warn("loop detected (FED-7): {} {} came back from the Microsoft server; answering 482",
                       ctx->request.method(), ctx->request.requestUri());
        } else if (trace("routing")) {
          log_->info("Routing: {} rejected with {}: {}", domain, d.status, d.reason);
        }
        int status = d.status >= 300 && d.status <= 699 ? d.status : 404;
        answer(ctx->serverTx, ctx->request, status, d.reason.empty() ? "Not Found" : phrase(d.reason));
        return;
      }
      case K::LocalUser: {
        auto it = policy_->raw.nodeAddresses.find(d.homeNode);
        if (d.homeNode != cfg_.nodeId && it != policy_->raw.nodeAddresses.end()) {
          if (auto h = hopFromUri("sip:" + it->second)) {
            if (trace("routing")) log_->info("Routing: {} is homed on node {} ({})", domain, d.homeNode, it->second);
            forward(ctx, {*h});
            return;
          }
        }
        if (log_)
          log_->warn("{} {}: recipient homed on node '{}': no federation connection manager to deliver it",
                     ctx->request.method(), ctx->request.requestUri(), d.homeNode);
        answer(ctx->serverTx, ctx->request, 480, kNoFcm);
        return;
      }
      case K::MicrosoftServer:
      case K::StaticRoute: {
        if (trace("routing")) {
          std::string list;
          for (const auto& r : d.routes) list += (list.empty() ? "" : ", ") + r.describe();
          log_->info("Found domain route for {}: {} -> {}", domain, d.pattern, list);
        }
        std::vector<Hop> hops;
        for (const auto& r : d.routes)
          hops.push_back(Hop{r.nextHop, static_cast<std::uint16_t>(r.port), toSip(r.transport)});
        if (d.kind == K::MicrosoftServer) {
          ctx->federation = true;
          markFederationRequest(ctx->fwd, cfg_.nodeId);
          if (trace("method-event-routing")) log_->info("This is an outbound Partitioned federation request");
        }
        forward(ctx, std::move(hops));
        return;
      }
    }
  }

  // (5) stateful forwarding with failover
  void forward(const std::shared_ptr<Ctx>& ctx, std::vector<Hop> hops) {
    // Hops marked down go last: tried only when nothing else is left.
    std::stable_partition(hops.begin(), hops.end(), [&](const Hop& h) { return !isDown(h.key()); });
    ctx->hops = std::move(hops);
    auto to = ctx->request.to();
    if (isDialogCreating(ctx->request.method()) && (!to || to->tag().empty()))
      ctx->fwd.prependHeader(sip::HeaderId::RecordRoute, recordRoute(ctx->source.local.transport));
    active_[ctx->serverTx] = ctx;
    ++forwarded_;
    tryNext(ctx);
  }

  void tryNext(const std::shared_ptr<Ctx>& ctx) {
    if (ctx->done) return;
    if (ctx->cancelled) {
      finish(ctx, 487, "Request Terminated");
      return;
    }
    if (ctx->next >= ctx->hops.size()) {
      if (ctx->lastWasTimeout)
        finish(ctx, 408, "Request Timeout - no next hop answered");
      else
        finish(ctx, 503, "Service Unavailable - no next hop reachable");
      return;
    }
    if (ctx->next > 0) ++failovers_;
    Hop h = ctx->hops[ctx->next++];
    resolve(h, [ctx, h](Impl& self, std::optional<sip::Endpoint> ep) {
      if (ctx->done) return;
      if (!ep) {
        ctx->lastWasTimeout = false;
        self.tryNext(ctx);
        return;
      }
      self.sendHop(ctx, h, *ep);
    });
  }

  void sendHop(const std::shared_ptr<Ctx>& ctx, const Hop& hop, const sip::Endpoint& hopEp, bool udpRetry = false) {
    Message m = ctx->fwd;
    // RFC 3261 §18.1.1: a request within 200 bytes of the path MTU (1300
    // bytes when it is unknown) does not go over UDP but over TCP to the
    // same address; if the next hop refuses TCP it gets the datagram after all.
    sip::Endpoint ep = hopEp;
    bool largeOverTcp = false;
    if (ep.transport == sip::Transport::Udp && !udpRetry &&
        m.serialize().size() + kViaAllowance > kMaxUdpRequest) {
      ep.transport = sip::Transport::Tcp;
      largeOverTcp = true;
    }
    // RFC 5658 double Record-Route: the request leaves over another transport
    // than it came in on, so the callee's side gets a Record-Route of its own
    // (on top), the caller's side keeps the one added in forward().
    auto inbound = ctx->source.local.transport;
    auto to = ctx->request.to();
    if (ep.transport != inbound && isDialogCreating(ctx->request.method()) && (!to || to->tag().empty()) &&
        hasListener(ep.transport))
      m.prependHeader(sip::HeaderId::RecordRoute, recordRoute(ep.transport));
    std::string via = viaFor(ep.transport);
    if (ctx->federation) via += federationViaParam(cfg_.nodeId);
    m.prependHeader(sip::HeaderId::Via, via);
    std::uint64_t attempt = ++ctx->attempt;
    ctx->currentHop = hop;
    ctx->currentEp = ep;
    // Kept for the CANCEL of this branch, which only an INVITE can get.
    if (ctx->request.method() == "INVITE") ctx->current = m;
    ctx->gotProvisional = false;
    if (trace("routing")) log_->info("Routing: {} {} to {}", m.method(), m.requestUri(), ep.toString());
    if (trace("sip-message-state"))
      log_->info("State: transaction {}: attempt {} to {} (client transaction calling)", ctx->serverTx, attempt,
                 ep.toString());
    sip::ClientCallbacks cb;
    cb.onProvisional = [this, ctx, attempt](const Message& r) {
      if (ctx->done || ctx->attempt != attempt) return;
      ctx->gotProvisional = true;
      loop_.cancel(ctx->hopTimer);
      if (ctx->request.method() == "INVITE" && !ctx->cancelSent) armTimerC(ctx, attempt);
      if (ctx->cancelled && !ctx->cancelSent) cancelBranch(ctx);
      if (r.statusCode() > 100) relay(ctx, r, false);
    };
    cb.onFinal = [this, ctx, attempt](const Message& r) {
      if (ctx->done || ctx->attempt != attempt) return;
      loop_.cancel(ctx->hopTimer);
      if (r.statusCode() == 503) {
        hopFailed(ctx, "answered 503", false);
        return;
      }
      relay(ctx, r, true);
    };
    cb.onTimeout = [this, ctx, attempt] {
      if (ctx->done || ctx->attempt != attempt) return;
      hopFailed(ctx, "timed out", true);
    };
    cb.onTransportError = [this, ctx, attempt, hop, hopEp, largeOverTcp](const sip::TransportError& e) {
      if (ctx->done || ctx->attempt != attempt) return;
      loop_.cancel(ctx->hopTimer);
      if (largeOverTcp && (e.kind == sip::TransportErrorKind::ConnectionRefused ||
                           e.kind == sip::TransportErrorKind::ConnectTimeout)) {
        if (log_)
          log_->info("{} {}: {} does not take TCP ({}); sending the {}-byte request over UDP", ctx->request.method(),
                     ctx->request.requestUri(), hopEp.toString(), sip::errorKindName(e.kind), ctx->fwd.serialize().size());
        sendHop(ctx, hop, hopEp, true);
        return;
      }
      hopFailed(ctx, std::string(sip::errorKindName(e.kind)) + (e.detail.empty() ? "" : ": " + e.detail), false);
    };
    ctx->hopTimer = loop_.schedule(cfg_.hopTimeout, [this, ctx, attempt] {
      if (ctx->done || ctx->attempt != attempt || ctx->gotProvisional) return;
      hopFailed(ctx, "no answer within " + std::to_string(cfg_.hopTimeout.count()) + " ms", true);
    });
    ctx->clientTx = txl_->sendRequest(std::move(m), ep, std::move(cb));
  }

  // Timer C (RFC 3261 16.6 item 11, 16.7 item 2): reset by every provisional.
  void armTimerC(const std::shared_ptr<Ctx>& ctx, std::uint64_t attempt) {
    loop_.cancel(ctx->timerC);
    ctx->timerC = loop_.schedule(cfg_.timerC, [this, ctx, attempt] {
      ctx->timerC = 0;
      if (ctx->done || ctx->attempt != attempt) return;
      if (log_)
        log_->warn("timer C: {} {} to {} has had no final answer for {} s; cancelling the branch",
                   ctx->request.method(), ctx->request.requestUri(), ctx->currentEp.toString(),
                   std::chrono::duration_cast<std::chrono::seconds>(cfg_.timerC).count());
      cancelBranch(ctx);
    });
  }

  // CANCELs the current branch; a branch that still gives no final answer
  // within cancelGuard is abandoned and the client gets 408 (or 487 when it
  // cancelled itself).
  void cancelBranch(const std::shared_ptr<Ctx>& ctx) {
    sendCancel(ctx);
    loop_.cancel(ctx->timerC);
    std::uint64_t attempt = ctx->attempt;
    ctx->timerC = loop_.schedule(cfg_.cancelGuard, [this, ctx, attempt] {
      ctx->timerC = 0;
      if (ctx->done || ctx->attempt != attempt) return;
      if (log_)
        log_->warn("{} {}: no final answer after CANCEL to {}; giving up on the branch", ctx->request.method(),
                   ctx->request.requestUri(), ctx->currentEp.toString());
      ++ctx->attempt;
      txl_->terminateClient(ctx->clientTx);
      if (ctx->cancelled)
        finish(ctx, 487, "Request Terminated");
      else
        finish(ctx, 408, "Request Timeout");
    });
  }

  void hopFailed(const std::shared_ptr<Ctx>& ctx, const std::string& why, bool timeout) {
    ++ctx->attempt;  // callbacks of the failed attempt are stale from now on
    ctx->lastWasTimeout = timeout;
    markDown(ctx->currentHop, ctx->currentEp);
    if (log_)
      log_->warn("next hop {} for {} {} failed ({}){}", ctx->currentEp.toString(), ctx->request.method(),
                 ctx->request.requestUri(), why, ctx->next < ctx->hops.size() ? ": trying the next one" : "");
    tryNext(ctx);
  }

  void relay(const std::shared_ptr<Ctx>& ctx, const Message& r, bool final) {
    if (final) loop_.cancel(ctx->timerC);
    if (trace("sip-message-state"))
      log_->info("State: transaction {}: {} {} from {} relayed{}", ctx->serverTx, r.statusCode(), r.reason(),
                 ctx->currentEp.toString(), final ? " (server transaction completed)" : " (proceeding)");
    Message up = r;
    up.removeFirstValue(sip::HeaderId::Via);
    if (final) {
      ctx->done = true;
      active_.erase(ctx->serverTx);
    }
    txl_->respond(ctx->serverTx, std::move(up));
  }

  void finish(const std::shared_ptr<Ctx>& ctx, int status, std::string_view reason) {
    loop_.cancel(ctx->timerC);
    if (trace("sip-message-state"))
      log_->info("State: transaction {}: answered {} {} (server transaction completed)", ctx->serverTx, status, reason);
    ctx->done = true;
    loop_.cancel(ctx->hopTimer);
    active_.erase(ctx->serverTx);
    answer(ctx->serverTx, ctx->request, status, reason);
  }

  // CANCEL (§16.10): answered hop by hop, then sent down the current branch.
  void onCancel(TxId tx, const Message& cancel) {
    auto invite = txl_->inviteFor(cancel);
    auto it = invite ? active_.find(*invite) : active_.end();
    if (it == active_.end()) {
      answer(tx, cancel, 481, "Call/Transaction Does Not Exist");
      return;
    }
    answer(tx, cancel, 200, "OK");
    auto ctx = it->second;
    ctx->cancelled = true;
    if (ctx->gotProvisional && !ctx->cancelSent) cancelBranch(ctx);
  }

  void sendCancel(const std::shared_ptr<Ctx>& ctx) {
    if (!ctx->current) return;
    ctx->cancelSent = true;
    const Message& inv = *ctx->current;
    Message c = Message::request("CANCEL", inv.requestUri());
    if (auto v = inv.topVia()) c.appendHeader("Via", v->raw);
    c.appendHeader("Max-Forwards", "70");
    for (const auto& h : inv.headers())
      if (h.id == sip::HeaderId::From || h.id == sip::HeaderId::To || h.id == sip::HeaderId::CallId ||
          h.id == sip::HeaderId::Route)
        c.appendHeader(sip::canonicalName(h.id), h.value);
    if (auto cs = inv.cseq()) c.appendHeader("CSeq", std::to_string(cs->seq) + " CANCEL");
    txl_->sendRequest(std::move(c), ctx->currentEp, {});
  }

  // A response (ours or relayed) that could not be written back to the
  // client: its connection is gone or its address unreachable. Logged and
  // counted, so no answer disappears silently.
  void onServerTransportError(TxId tx, const sip::TransportError& e) override {
    ++responsesUnsent_;
    if (!log_) return;
    auto it = active_.find(tx);
    if (it != active_.end())
      log_->warn("response to {} {} from {} not delivered: {}: {}", it->second->request.method(),
                 it->second->request.requestUri(), it->second->source.remote.toString(), sip::errorKindName(e.kind),
                 e.detail);
    else
      log_->warn("response for server transaction {} not delivered: {}: {}", tx, sip::errorKindName(e.kind), e.detail);
  }

  void onServerTerminated(TxId tx) override {
    auto it = active_.find(tx);
    if (it == active_.end()) return;
    it->second->done = true;  // nobody to answer any more
    loop_.cancel(it->second->hopTimer);
    loop_.cancel(it->second->timerC);
    active_.erase(it);
  }

  // ---- stateless forwarding ----

  void onStrayResponse(const Message& msg, const sip::Source&) override {
    auto vias = msg.vias();
    if (vias.size() < 2) return;
    const auto& top = vias.front();
    auto topT = parseSipTransport(top.transport).value_or(sip::Transport::Tcp);
    if (!isOwn(top.host, top.port, topT)) return;
    const auto& next = vias[1];
    Hop h;
    h.transport = parseSipTransport(next.transport).value_or(sip::Transport::Tcp);
    h.host = std::string(next.param("received").value_or(next.host));
    h.port = next.port ? next.port : defaultPort(h.transport);
    if (auto rp = next.param("rport"); rp && !rp->empty()) {
      int p = 0;
      for (char ch : *rp) p = ch >= '0' && ch <= '9' && p < 65536 ? p * 10 + (ch - '0') : 70000;
      if (p > 0 && p < 65536) h.port = static_cast<std::uint16_t>(p);
    }
    Message up = msg;
    up.removeFirstValue(sip::HeaderId::Via);
    statelessSend(std::move(up), h);
  }

  void onStrayAck(const Message& msg, const sip::Source&) override {
    Message out = msg;
    auto mf = msg.maxForwards();
    if (mf && *mf <= 0) return;
    out.setHeader(sip::HeaderId::MaxForwards, mf ? std::to_string(*mf - 1) : "70");
    for (int i = 0; i < 8; ++i) {
      auto routes = out.routes();
      if (routes.empty() || !isOwnUri(routes.front().uri)) break;
      out.removeFirstValue(sip::HeaderId::Route);
    }
    auto routes = out.routes();
    auto h = hopFromUri(!routes.empty() ? routes.front().uri : out.requestUri());
    if (!h || (routes.empty() && isOwn(h->host, h->port, h->transport))) return;
    out.prependHeader(sip::HeaderId::Via, viaFor(h->transport));
    statelessSend(std::move(out), *h);
  }

  void statelessSend(Message m, const Hop& h) {
    auto shared = std::make_shared<Message>(std::move(m));
    resolve(h, [shared](Impl& self, std::optional<sip::Endpoint> ep) {
      if (!ep) return;
      ++self.stateless_;
      self.send(*shared, *ep, [&self, ep = *ep](const sip::TransportError& e) {
        if (self.log_) self.log_->warn("stateless forward to {} failed: {}", ep.toString(), sip::errorKindName(e.kind));
      });
    });
  }

  // ---- next hop health ----

  bool isDown(const std::string& key) const {
    std::lock_guard l(downMu_);
    return down_.count(key) != 0;
  }

  void markDown(const Hop& hop, const sip::Endpoint& ep) {
    auto key = hop.key();
    {
      std::lock_guard l(downMu_);
      if (!down_.insert(key).second) return;
    }
    if (log_) log_->warn("next hop {} marked down; probing with OPTIONS every {} ms", key, cfg_.probeInterval.count());
    scheduleProbe(key, ep);
  }

  void scheduleProbe(const std::string& key, const sip::Endpoint& ep) {
    loop_.schedule(cfg_.probeInterval, [this, key, ep] { probe(key, ep); });
  }

  void probe(const std::string& key, const sip::Endpoint& ep) {
    if (!isDown(key)) return;
    Message o = Message::request("OPTIONS", "sip:" + hostPort(ep.address, ep.port));
    o.appendHeader("Via", viaFor(ep.transport));
    o.appendHeader("Max-Forwards", "70");
    o.appendHeader("From", "<sip:ping@" + hostPort(advertised_, ownPort(ep.transport)) + ">;tag=" + randomTag());
    o.appendHeader("To", "<sip:" + hostPort(ep.address, ep.port) + ">");
    o.appendHeader("Call-ID", randomTag() + "@" + advertised_);
    o.appendHeader("CSeq", "1 OPTIONS");
    sip::ClientCallbacks cb;
    cb.onFinal = [this, key](const Message&) {
      {
        std::lock_guard l(downMu_);
        down_.erase(key);
      }
      if (log_) log_->info("next hop {} answers OPTIONS again: marked up", key);
    };
    cb.onTimeout = [this, key, ep] { scheduleProbe(key, ep); };
    cb.onTransportError = [this, key, ep](const sip::TransportError&) { scheduleProbe(key, ep); };
    txl_->sendRequest(std::move(o), ep, std::move(cb));
  }

  // ---- state ----
  ProxyConfig cfg_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<const core::TraceFlags> flags_;
  std::shared_ptr<core::Resolver> resolver_;
  net::EventLoop loop_;
  std::unique_ptr<sip::TransportLayer> transport_;
  std::unique_ptr<sip::TransactionLayer> txl_;
  std::shared_ptr<const CompiledPolicy> policy_;  // loop thread
  std::shared_ptr<Poster> poster_;
  Worker worker_;
  std::thread thread_;
  bool started_ = false;
  std::atomic<bool> running_{false};
  std::vector<sip::Endpoint> bound_;
  std::vector<ProxyListener> boundCfg_;  // parallel to bound_
  std::string advertised_;
  std::map<TxId, std::shared_ptr<Ctx>> active_;
  mutable std::mutex downMu_;
  std::set<std::string> down_;

  FloodLimiter flood_{cfg_.flood};                          // loop thread
  std::unordered_map<std::string, Clock::time_point> nameTrusted_;  // ip -> until (loop)
  std::unordered_map<std::string, CachedRecipient> recipientCache_;  // user@domain -> answers (loop)
  std::uint64_t cacheEpoch_ = 0;                                     // bumped with each new policy (loop)

  std::atomic<std::uint64_t> requests_{0}, forwarded_{0}, failovers_{0}, aclRefused_{0}, loops_{0}, stateless_{0},
      floodRefused_{0}, overloaded_{0}, directoryLookups_{0}, directoryCacheHits_{0}, rejected_{0}, responsesUnsent_{0};
};

namespace {
// Runs fn on the proxy's loop and waits for its result; nullopt when the
// loop is not running or did not answer within 10 s.
template <class R>
std::optional<R> onLoop(const std::shared_ptr<Proxy::Impl>& impl, std::function<R(Proxy::Impl&)> fn) {
  if (!impl->running_) return std::nullopt;
  auto done = std::make_shared<std::promise<R>>();
  auto result = done->get_future();
  impl->poster_->post([done, fn = std::move(fn)](Proxy::Impl& self) { done->set_value(fn(self)); });
  if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return std::nullopt;
  try {
    return result.get();
  } catch (const std::future_error&) {
    return std::nullopt;  // the loop stopped with the call queued
  }
}
}  // namespace

Proxy::Proxy(ProxyConfig config, ProxyPolicy policy)
    : impl_(std::make_shared<Impl>(std::move(config), std::move(policy))) {}

Proxy::~Proxy() { stop(); }

void Proxy::start() { impl_->start(); }
void Proxy::stop() noexcept { impl_->stop(); }
bool Proxy::running() const { return impl_->running_; }

std::vector<std::string> Proxy::setListeners(std::vector<ProxyListener> listeners) {
  if (!impl_->running_) {
    impl_->cfg_.listeners = std::move(listeners);
    return {};
  }
  auto r = onLoop<std::vector<std::string>>(impl_, [listeners = std::move(listeners)](Impl& self) {
    self.cfg_.listeners = listeners;
    return self.setListeners(listeners);
  });
  if (!r) return {"the SIP proxy loop did not apply the listener change (stopped or busy for 10 s)"};
  return *r;
}

std::vector<Ban> Proxy::bans() const {
  auto r = onLoop<std::vector<Ban>>(impl_, [](Impl& self) { return self.flood_.bans(Clock::now()); });
  return r.value_or(std::vector<Ban>{});
}

std::size_t Proxy::clearBans(const std::string& address) {
  auto r = onLoop<std::size_t>(impl_, [address](Impl& self) { return self.flood_.clear(address); });
  return r.value_or(0);
}

void Proxy::updatePolicy(ProxyPolicy policy) {
  auto compiled = impl_->compile(std::move(policy));
  if (!impl_->running_) {
    impl_->policy_ = std::move(compiled);
    impl_->forgetRecipients();
    return;
  }
  // Waits for the loop, so that once this returns every new request sees the
  // new policy (what "settings generation N applied" promises).
  onLoop<bool>(impl_, [compiled](Impl& self) {
    self.policy_ = compiled;
    self.forgetRecipients();
    if (self.log_)
      self.log_->info("applied {} ACL entries, {} static routes", compiled->raw.acl.size(), compiled->routes.size());
    if (self.trace("server")) {
      for (const auto& a : compiled->raw.acl)
        self.log_->info("Server: incoming ACL {} ({}) {}", a.pattern, nameOf(a.kind), a.description);
      for (const auto& r : compiled->raw.routes) self.log_->info("Server: static route {}", r.describe());
      self.log_->info("Server: federation {} routing mode {}", compiled->raw.federation.enabled ? "enabled" : "disabled",
                      nameOf(compiled->raw.federation.routingMode));
    }
    return true;
  });
}

std::vector<sip::Endpoint> Proxy::endpoints() const { return impl_->transport_->localEndpoints(); }

ProxyStats Proxy::stats() const {
  ProxyStats s;
  s.requests = impl_->requests_;
  s.forwarded = impl_->forwarded_;
  s.failovers = impl_->failovers_;
  s.aclRefused = impl_->aclRefused_;
  s.floodRefused = impl_->floodRefused_;
  s.overloaded = impl_->overloaded_;
  s.directoryLookups = impl_->directoryLookups_;
  s.directoryCacheHits = impl_->directoryCacheHits_;
  s.loops = impl_->loops_;
  s.rejected = impl_->rejected_;
  s.responsesUnsent = impl_->responsesUnsent_;
  auto t = impl_->transport_->stats();
  s.parseErrors = t.parseErrors;
  s.errorResponsesSent = t.errorResponsesSent;
  s.errorResponsesUnsent = t.errorResponsesUnsent;
  s.malformedResponsesDropped = t.malformedResponsesDropped;
  s.statelessForwards = impl_->stateless_;
  return s;
}

std::vector<std::string> Proxy::downHops() const {
  std::lock_guard l(impl_->downMu_);
  return {impl_->down_.begin(), impl_->down_.end()};
}

}  // namespace imp::sip_proxy
