// The Proxy's wiring (issue 15, deliverable 2): the loop (its own thread, or
// one it is given, deliverable 4), transport and transaction layer,
// listeners, the policy and the plumbing the processors of proxy_impl.h
// share. The request handling itself is in the processors' files.
#include "imp/sip_proxy/proxy.h"

#include <imp/core/dns.h>
#include <imp/core/logging.h>
#include <spdlog/spdlog.h>

#include <pthread.h>

#include <algorithm>
#include <charconv>
#include <future>
#include <stdexcept>

#include "proxy_impl.h"

namespace imp::sip_proxy {

namespace detail {

std::string hostPort(const std::string& host, std::uint16_t port) {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return port ? h + ":" + std::to_string(port) : h;
}

std::string randomTag() { return sip::TransactionLayer::newBranch().substr(7, 16); }

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

void Worker::start() {
  thread_ = std::thread([this] {
    // Named, not inheriting the name of the thread that started the proxy
    // (a node loop, "imp-loop-N").
    pthread_setname_np(pthread_self(), "sip-proxy-dir");
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

bool Worker::post(std::function<void()> job, std::size_t limit) {
  {
    std::lock_guard l(mu_);
    if (stopping_) return true;
    if (jobs_.size() >= limit) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void Worker::stop() {
  {
    std::lock_guard l(mu_);
    stopping_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace detail

namespace {

class NoDirectory : public DirectoryLookup {
 public:
  bool isLocalDomain(const std::string&) override { return false; }
  std::optional<std::string> licensedUserHome(const std::string&) override { return std::nullopt; }
  bool hasMicrosoftSipUri(const std::string&) override { return false; }
};

}  // namespace

using detail::CompiledPolicy;
using detail::Stage;

void Proxy::Impl::Poster::post(std::function<void(Impl&)> fn) {
  std::lock_guard l(mu);
  if (!impl) return;
  Impl* i = impl;
  if (i->ownLoop_) {
    // The loop dies with the proxy: what it has not run by then never runs.
    i->loop_.post([i, fn = std::move(fn)] { fn(*i); });
    return;
  }
  // A loop the proxy was given may outlive it: look again when it runs.
  i->loop_.post([self = i->poster_, fn = std::move(fn)] {
    Impl* live = nullptr;
    {
      std::lock_guard l2(self->mu);
      live = self->impl;
    }
    if (live) fn(*live);
  });
}

void Proxy::Impl::Poster::close() {
  std::lock_guard l(mu);
  impl = nullptr;
}

Proxy::Impl::Impl(ProxyConfig cfg, ProxyPolicy policy)
    : cfg_(std::move(cfg)),
      ownLoop_(cfg_.loop ? nullptr : std::make_unique<net::EventLoop>()),
      loop_(cfg_.loop ? *cfg_.loop : *ownLoop_),
      timers_(cfg_.timers ? *cfg_.timers : static_cast<net::TimerQueue&>(loop_)) {
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
  txl_ = std::make_unique<sip::TransactionLayer>(*this, timers_, *this);
  transport_->setMessageHandler([this](sip::Message m, const sip::Source& s) { onWire(std::move(m), s); });
  policy_ = compile(std::move(policy));
  poster_ = std::make_shared<Poster>();
  poster_->impl = this;
}

Proxy::Impl::~Impl() {
  stop();
  poster_->close();
  forwarder_.shutdown();
  health_.shutdown();
  txl_.reset();
  transport_.reset();
}

std::shared_ptr<const CompiledPolicy> Proxy::Impl::compile(ProxyPolicy p) const {
  auto c = std::make_shared<CompiledPolicy>();
  c->acl = AclMatcher(p.acl);
  c->routes = RouteTable(p.routes);
  c->clusterNodes = p.clusterNodes;
  if (std::find(c->clusterNodes.begin(), c->clusterNodes.end(), cfg_.nodeId) == c->clusterNodes.end())
    c->clusterNodes.push_back(cfg_.nodeId);
  c->raw = std::move(p);
  return c;
}

void Proxy::Impl::start() {
  if (started_) throw std::runtime_error("sip proxy already started");
  started_ = true;
  for (const auto& l : cfg_.listeners) bind(l);
  if (!cfg_.advertisedHost.empty())
    advertised_ = cfg_.advertisedHost;
  else if (!bound_.empty() && !detail::isWildcard(bound_.front().address))
    advertised_ = bound_.front().address;
  else
    advertised_ = "127.0.0.1";
  worker_.start();
  running_ = true;
  if (ownLoop_) thread_ = std::thread([this] { loop_.run(); });
}

sip::Endpoint Proxy::Impl::bind(const ProxyListener& l) {
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

namespace {
bool sameListener(const ProxyListener& a, const ProxyListener& b) {
  return a.transport == b.transport && a.address == b.address && a.port == b.port && a.tls == b.tls &&
         a.acceptPeerKey == b.acceptPeerKey;
}
}  // namespace

// Loop thread. Closes the listeners not wanted any more, then binds the
// new ones (TLS-1: port changes apply live). Returns one message per
// listener that could not be bound.
std::vector<std::string> Proxy::Impl::setListeners(const std::vector<ProxyListener>& wanted) {
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

void Proxy::Impl::stop() noexcept {
  if (!started_) return;
  if (ownLoop_) {
    loop_.stop();
    if (thread_.joinable()) thread_.join();
  } else {
    // A given loop keeps running: no new requests from now on.
    for (const auto& ep : bound_) transport_->closeListener(ep);
    bound_.clear();
    boundCfg_.clear();
  }
  worker_.stop();
  running_ = false;
}

// Loop thread.
void Proxy::Impl::applyPolicy(std::shared_ptr<const CompiledPolicy> compiled) {
  policy_ = std::move(compiled);
  router_.forgetRecipients();
}

// ---- the chain ----

void Proxy::Impl::onRequest(TxId tx, const sip::Message& req, const sip::Source& src) {
  ++requests_;
  if (req.method() == "CANCEL") {
    forwarder_.onCancel(tx, req);
    return;
  }
  auto ctx = std::make_shared<detail::Ctx>();
  ctx->serverTx = tx;
  ctx->request = req;
  ctx->source = src;
  if (trace("sip-message-state"))
    log_->info("State: transaction {} {} {} from {}: received (server transaction trying)", tx, req.method(),
               req.requestUri(), src.remote.toString());
  resume(ctx, Stage::Admission);
}

void Proxy::Impl::resume(const CtxPtr& ctx, Stage from) {
  switch (from) {
    case Stage::Admission:
      if (admission_.process(ctx) != Verdict::Continue) return;
      [[fallthrough]];
    case Stage::Validation:
      if (validation_.process(ctx) != Verdict::Continue) return;
      [[fallthrough]];
    case Stage::Router:
      if (router_.process(ctx) != Verdict::Continue) return;
      [[fallthrough]];
    case Stage::HopHealth:
      if (health_.process(ctx) != Verdict::Continue) return;
      [[fallthrough]];
    case Stage::Forward:
      forwarder_.process(ctx);
  }
}

// ---- plumbing ----

void Proxy::Impl::dump(const char* what, const sip::Message& m, const sip::Endpoint& peer) {
  std::string_view flag = peer.transport == sip::Transport::Tls ? "sip-tls" : "sip-tcp";
  if (trace(flag)) log_->info("{} {}:\n{}", what, peer.toString(), m.serialize());
}

void Proxy::Impl::onWire(sip::Message m, const sip::Source& s) {
  dump("Received from", m, s.remote);
  txl_->onMessage(std::move(m), s);
}

void Proxy::Impl::send(const sip::Message& msg, const sip::Endpoint& dest,
                       std::function<void(const sip::TransportError&)> onError) {
  dump("Sending to", msg, dest);
  transport_->send(msg, dest, std::move(onError));
}

std::uint16_t Proxy::Impl::ownPort(sip::Transport t) const {
  for (const auto& e : bound_)
    if (e.transport == t) return e.port;
  return bound_.empty() ? 5060 : bound_.front().port;
}

bool Proxy::Impl::isOwn(std::string_view host, std::uint16_t port, sip::Transport t) const {
  bool hostOurs = detail::iequals(host, advertised_);
  for (const auto& e : bound_)
    if (!detail::isWildcard(e.address) && detail::iequals(host, e.address)) hostOurs = true;
  if (!hostOurs) return false;
  std::uint16_t p = port ? port : detail::defaultPort(t);
  for (const auto& e : bound_)
    if (e.port == p) return true;
  return false;
}

bool Proxy::Impl::isOwnUri(std::string_view uri) const {
  auto h = detail::hopFromUri(uri);
  return h && isOwn(h->host, h->port, h->transport);
}

bool Proxy::Impl::hasListener(sip::Transport t) const {
  return std::any_of(bound_.begin(), bound_.end(), [t](const sip::Endpoint& e) { return e.transport == t; });
}

// Our host[:port] for a transport, as written in Via and Record-Route.
void Proxy::Impl::appendSentBy(std::string& out, sip::Transport t) const {
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
std::string Proxy::Impl::recordRoute(sip::Transport t) const {
  std::string rr;
  rr.reserve(advertised_.size() + 40);
  rr += "<sip:";
  appendSentBy(rr, t);
  rr += ";transport=";
  for (char c : sip::transportName(t)) rr += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  rr += ";lr>";
  return rr;
}

std::string Proxy::Impl::viaFor(sip::Transport t) const {
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
void Proxy::Impl::markReceived(sip::Message& m, const sip::Source& src) {
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

void Proxy::Impl::reject(const CtxPtr& ctx, const RequestRejection& r) {
  ++rejected_;
  if (log_)
    log_->info("{} {} from {} refused: {} {}", ctx->request.method(), ctx->request.requestUri(),
               ctx->source.remote.toString(), r.status, r.reason);
  auto resp = sip::TransactionLayer::makeResponse(ctx->request, r.status, r.reason, detail::randomTag());
  for (const auto& [name, value] : r.headers) resp.appendHeader(name, value);
  txl_->respond(ctx->serverTx, std::move(resp));
}

void Proxy::Impl::answer(TxId tx, const sip::Message& req, int status, std::string_view reason) {
  txl_->respond(tx, sip::TransactionLayer::makeResponse(req, status, reason, detail::randomTag()));
}

void Proxy::Impl::resolve(const detail::Hop& h, std::function<void(Impl&, std::optional<sip::Endpoint>)> done) {
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

// ---- the public face ----

namespace {
// Runs fn on the proxy's loop and waits for its result: at once on the loop
// thread itself; nullopt when the loop is not running or did not answer
// within 10 s.
template <class R>
std::optional<R> onLoop(const std::shared_ptr<Proxy::Impl>& impl, std::function<R(Proxy::Impl&)> fn) {
  if (!impl->running_) return std::nullopt;
  if (impl->loop_.inLoopThread()) return fn(*impl);
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

namespace {

// A proxy on a loop it was given while another thread runs that loop (a
// node's net::LoopGroup, issue 15 deliverable 2): start, stop and teardown
// touch the transport, the transactions and the timers, which belong to the
// loop thread, so they run there and the caller waits. Otherwise (own
// loop, or a loop nobody runs now, as in tests that drive it) right here.
// Exceptions thrown on the loop reach the caller.
template <class F>
void onGivenLoop(const std::shared_ptr<Proxy::Impl>& impl, net::EventLoop& loop, F&& fn) {
  if (impl->ownLoop_ || !loop.runningElsewhere()) {
    fn();
    return;
  }
  std::promise<void> done;
  auto finished = done.get_future();
  loop.post([&] {
    try {
      fn();
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  finished.get();
}

}  // namespace

Proxy::~Proxy() {
  if (!impl_) return;
  if (impl_->ownLoop_ || !impl_->loop_.runningElsewhere()) {
    stop();
    return;
  }
  // The last reference is dropped on the loop thread, so the transport,
  // transactions and timers are torn down there.
  auto& loop = impl_->loop_;
  std::promise<void> done;
  auto finished = done.get_future();
  loop.post([impl = std::move(impl_), &done]() mutable {
    impl->stop();
    impl.reset();
    done.set_value();
  });
  finished.wait();
}

void Proxy::start() { onGivenLoop(impl_, impl_->loop_, [this] { impl_->start(); }); }
void Proxy::stop() noexcept {
  try {
    onGivenLoop(impl_, impl_->loop_, [this] { impl_->stop(); });
  } catch (...) {
    // Impl::stop() is noexcept; only a broken promise could get here.
  }
}
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

bool Proxy::setTlsClient(std::shared_ptr<const net::TlsContext> tls) {
  // Checked here: the loop must not throw.
  if (tls && tls->role() != net::TlsRole::Client)
    throw std::invalid_argument("outgoing SIP over TLS needs a client TLS context");
  if (!impl_->running_) {
    impl_->cfg_.tlsClient = tls;
    impl_->transport_->setTlsClient(std::move(tls));
    return true;
  }
  auto r = onLoop<bool>(impl_, [tls = std::move(tls)](Impl& self) {
    self.cfg_.tlsClient = tls;
    self.transport_->setTlsClient(tls);
    return true;
  });
  return r.value_or(false);
}

std::vector<Ban> Proxy::bans() const {
  auto r = onLoop<std::vector<Ban>>(impl_, [](Impl& self) { return self.admission_.bans(); });
  return r.value_or(std::vector<Ban>{});
}

std::size_t Proxy::clearBans(const std::string& address) {
  auto r = onLoop<std::size_t>(impl_, [address](Impl& self) { return self.admission_.clearBans(address); });
  return r.value_or(0);
}

void Proxy::updatePolicy(ProxyPolicy policy) {
  auto compiled = impl_->compile(std::move(policy));
  if (!impl_->running_) {
    impl_->applyPolicy(std::move(compiled));
    return;
  }
  // Waits for the loop, so that once this returns every new request sees the
  // new policy (what "settings generation N applied" promises).
  onLoop<bool>(impl_, [compiled](Impl& self) {
    self.applyPolicy(compiled);
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

std::vector<std::string> Proxy::downHops() const { return impl_->health_.downHops(); }

}  // namespace imp::sip_proxy
