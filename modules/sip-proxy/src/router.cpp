// Router, the third stage of the Proxy's chain (proxy_impl.h): Route
// headers and in-dialog requests, the heartbeat OPTIONS, and decideRoute()
// with loop detection (FED-7) and the recipient cache.
#include <spdlog/spdlog.h>

#include "proxy_impl.h"

namespace imp::sip_proxy {

namespace {

// Directory lookups allowed to wait for the worker before requests are
// refused with 503 (about a second of work at the measured lookup cost).
constexpr std::size_t kMaxDirectoryQueue = 5000;
constexpr std::string_view kNoFcm =
    "Temporarily Unavailable - user is homed on this node and no federation connection manager is connected";

// For requests outside the local presence domains: no directory involved.
struct NotLocal : DirectoryLookup {
  bool isLocalDomain(const std::string&) override { return false; }
  std::optional<std::string> licensedUserHome(const std::string&) override { return std::nullopt; }
  bool hasMicrosoftSipUri(const std::string&) override { return false; }
};

std::string phrase(std::string s) {
  for (auto& c : s)
    if (c == '\r' || c == '\n') c = ' ';
  return s;
}

}  // namespace

using detail::Hop;
using detail::Stage;

Verdict Router::process(const CtxPtr& ctx) {
  const sip::Message& req = ctx->request;
  for (int i = 0; i < 8; ++i) {
    auto routes = ctx->fwd.routes();
    if (routes.empty() || !p_.isOwnUri(routes.front().uri)) break;
    ctx->fwd.removeFirstValue(sip::HeaderId::Route);
  }
  if (isFederationRequest(req) && p_.trace("method-event-routing"))
    p_.log_->info("This is a partitioned federation request, skip User Location DB lookup");

  // A pre-set route or an in-dialog request goes where it says.
  auto routes = ctx->fwd.routes();
  auto to = req.to();
  bool inDialog = to && !to->tag().empty();
  if (!routes.empty() || inDialog) {
    auto h = detail::hopFromUri(!routes.empty() ? routes.front().uri : req.requestUri());
    if (!h) {
      p_.answer(ctx->serverTx, req, 416, "Unsupported URI Scheme");
      return Verdict::Stop;
    }
    if (routes.empty() && p_.isOwn(h->host, h->port, h->transport)) {
      p_.answer(ctx->serverTx, req, 481, "Call/Transaction Does Not Exist");
      return Verdict::Stop;
    }
    ctx->hops.push_back(std::move(*h));
    return Verdict::Continue;
  }
  // OPTIONS for the proxy itself: a load balancer's heartbeat (RT-4).
  if (auto h = detail::hopFromUri(req.requestUri());
      h && req.method() == "OPTIONS" && p_.isOwn(h->host, h->port, h->transport)) {
    p_.answer(ctx->serverTx, req, 200, "OK");
    return Verdict::Stop;
  }
  return decide(ctx);
}

// The routing decision. Requests for other domains and recipients cached
// since the last settings generation are decided on the loop; the rest off
// it, on the worker (the directory may block).
Verdict Router::decide(const CtxPtr& ctx) {
  auto policy = p_.policy_;
  std::string target(ctx->request.requestUri());
  std::string domain;
  if (auto u = sip::parseUri(target)) domain = lower(u->host);
  if (p_.trace("routing")) p_.log_->info("Routing: dipping for {}", domain.empty() ? target : domain);
  bool own = carriesOwnFederationMarker(ctx->request, policy->clusterNodes);
  // A routing decision's words are for the trace; a relayed request needs
  // only a Reject's (its reason phrase).
  auto reasons = p_.trace("routing") ? directory::Reasons::Explain : directory::Reasons::RejectsOnly;
  const auto& federation = policy->raw.federation;
  const auto& local = policy->raw.localDomains;
  // The Request-URI as the decision takes it (plain data, routing.h),
  // adapted on the loop when the decision or the cache key is made here;
  // otherwise the worker does it.
  std::optional<directory::Recipient> recipient;
  if (local) recipient = sipRecipient(target);
  if (local && !domain.empty() && local->count(domain) == 0) {
    // Not a local presence domain: static routes only, decided here.
    NotLocal notLocal;
    return applyDecision(ctx, recipient ? decideRoute(*recipient, federation, notLocal, policy->routes, own, reasons)
                                        : decideRoute(target, federation, notLocal, policy->routes, own),
                         domain);
  }
  // A local domain (or the set is unknown): the directory decides. What it
  // said about this recipient since the last settings generation is kept
  // on the loop (every directory change makes a new generation).
  std::optional<std::string> key;
  if (local && recipient && !recipient->address.empty()) key = recipient->address;
  if (key) {
    if (const auto* entry = recipients_.find(*key)) {
      CachedLookup cached(*entry);
      std::optional<RoutingDecision> d;
      try {
        d = decideRoute(*recipient, federation, cached, policy->routes, own, reasons);
      } catch (const CacheMiss&) {
        // a question the cached lookup did not ask: the directory answers it
      }
      if (d) {
        ++p_.directoryCacheHits_;
        return applyDecision(ctx, *d, domain);
      }
    }
  }
  auto directory = p_.cfg_.directory;
  auto poster = p_.poster_;
  auto epoch = recipients_.epoch();
  bool queued = p_.worker_.post([poster, ctx, policy, directory, target, recipient = std::move(recipient), domain, own,
                                 key, epoch, reasons] {
    RoutingDecision d;
    CachedRecipient seen;
    bool ok = false;
    try {
      RecordingLookup recording(*directory, seen);
      const auto& fed = policy->raw.federation;
      d = recipient ? decideRoute(*recipient, fed, recording, policy->routes, own, reasons)
                    : decideRoute(target, fed, recording, policy->routes, own);
      ok = true;
    } catch (const std::exception& e) {
      d.kind = RoutingDecision::Kind::Reject;
      d.status = 503;
      d.reason = std::string("Service Unavailable - directory lookup failed: ") + e.what();
    }
    poster->post([ctx, d = std::move(d), domain, key, epoch, seen, ok](Proxy::Impl& self) {
      auto& router = self.router_;
      if (ok && key) router.recipients_.remember(*key, seen, epoch);
      if (router.applyDecision(ctx, d, domain) == Verdict::Continue) self.resume(ctx, Stage::HopHealth);
    });
  }, kMaxDirectoryQueue);
  if (queued) {
    ++p_.directoryLookups_;
    return Verdict::Wait;
  }
  // Overload: the directory cannot keep up. Refuse now rather than let
  // every request wait longer than its sender's timers.
  if (p_.overloaded_++ % 1000 == 0 && p_.log_)
    p_.log_->warn("overload: {} directory lookups waiting; answering 503 (Retry-After 5)", kMaxDirectoryQueue);
  auto resp = sip::TransactionLayer::makeResponse(ctx->request, 503, "Service Unavailable - overloaded",
                                                  detail::randomTag());
  resp.appendHeader("Retry-After", "5");
  p_.txl_->respond(ctx->serverTx, resp);
  return Verdict::Stop;
}

// A new settings generation: what the directory said is stale.
void Router::forgetRecipients() { recipients_.forget(); }

Verdict Router::applyDecision(const CtxPtr& ctx, const RoutingDecision& d, const std::string& domain) {
  using K = RoutingDecision::Kind;
  const auto& log = p_.log_;
  switch (d.kind) {
    case K::Reject: {
      if (d.status == 482) {
        ++p_.loops_;
        if (log)
          log->warn("loop detected (FED-7): {} {} came back from the Microsoft server; answering 482",
                    ctx->request.method(), ctx->request.requestUri());
      } else if (p_.trace("routing")) {
        log->info("Routing: {} rejected with {}: {}", domain, d.status, d.reason);
      }
      int status = d.status >= 300 && d.status <= 699 ? d.status : 404;
      p_.answer(ctx->serverTx, ctx->request, status, d.reason.empty() ? "Not Found" : phrase(d.reason));
      return Verdict::Stop;
    }
    case K::LocalUser: {
      const auto& nodes = p_.policy_->raw.nodeAddresses;
      auto it = nodes.find(d.homeNode);
      if (d.homeNode != p_.cfg_.nodeId && it != nodes.end()) {
        if (auto h = detail::hopFromUri("sip:" + it->second)) {
          if (p_.trace("routing")) log->info("Routing: {} is homed on node {} ({})", domain, d.homeNode, it->second);
          ctx->hops.push_back(std::move(*h));
          return Verdict::Continue;
        }
      }
      if ((d.homeNode == p_.cfg_.nodeId || d.homeNode.empty()) && !p_.policy_->raw.federationCm.empty()) {
        // Issue 17: the node's federation connection manager takes it.
        if (auto h = detail::hopFromUri("sip:" + p_.policy_->raw.federationCm + ";transport=tcp")) {
          if (p_.trace("routing")) log->info("Routing: {} is homed here: federation connection manager", domain);
          ctx->hops.push_back(std::move(*h));
          return Verdict::Continue;
        }
      }
      if (log)
        log->warn("{} {}: recipient homed on node '{}': no federation connection manager to deliver it",
                  ctx->request.method(), ctx->request.requestUri(), d.homeNode);
      p_.answer(ctx->serverTx, ctx->request, 480, kNoFcm);
      return Verdict::Stop;
    }
    case K::MicrosoftServer:
    case K::StaticRoute: {
      if (p_.trace("routing")) {
        std::string list;
        for (const auto& r : d.routes) list += (list.empty() ? "" : ", ") + r.describe();
        log->info("Found domain route for {}: {} -> {}", domain, d.pattern, list);
      }
      ctx->hops.reserve(d.routes.size());
      for (const auto& r : d.routes)
        ctx->hops.push_back(Hop{r.nextHop, static_cast<std::uint16_t>(r.port), detail::toSip(r.transport)});
      if (d.kind == K::MicrosoftServer) {
        ctx->federation = true;
        markFederationRequest(ctx->fwd, p_.cfg_.nodeId);
        if (p_.trace("method-event-routing")) log->info("This is an outbound Partitioned federation request");
      }
      return Verdict::Continue;
    }
  }
  return Verdict::Stop;
}

}  // namespace imp::sip_proxy
