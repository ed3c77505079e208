#include "imp/xcp_router/router.h"

#include <imp/net/event_loop.h>
#include <imp/net/worker_pool.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

namespace imp::xcp {

std::string_view nameOf(StanzaKind k) {
  switch (k) {
    case StanzaKind::Message: return "message";
    case StanzaKind::Presence: return "presence";
    case StanzaKind::Iq: return "iq";
  }
  return "?";
}

std::string_view nameOf(RouteResult r) {
  switch (r) {
    case RouteResult::Session: return "session";
    case RouteResult::Local: return "local";
    case RouteResult::Component: return "component";
    case RouteResult::Bounced: return "bounced";
    case RouteResult::Deferred: return "deferred";
    case RouteResult::Dropped: return "dropped";
  }
  return "?";
}

std::optional<Address> Address::split(std::string_view jid) {
  // A normalised JID: the resource starts at the first '/', the localpart
  // ends at the '@' before it (RFC 7622 §3.1: neither '@' nor '/' can be in
  // a localpart or a domainpart).
  Address a;
  auto slash = jid.find('/');
  std::string_view head = jid.substr(0, slash);
  if (slash != std::string_view::npos) {
    a.resource = std::string(jid.substr(slash + 1));
    if (a.resource.empty()) return std::nullopt;
  }
  auto at = head.find('@');
  if (at != std::string_view::npos) {
    a.local = std::string(head.substr(0, at));
    if (a.local.empty()) return std::nullopt;
    head = head.substr(at + 1);
  }
  if (head.empty() || head.find('@') != std::string_view::npos) return std::nullopt;
  a.domain = std::string(head);
  return a;
}

std::string Address::bare() const { return local.empty() ? domain : local + "@" + domain; }

std::string Address::full() const { return resource.empty() ? bare() : bare() + "/" + resource; }

RoutePredicate microsoftUsers() {
  return [](const Address&, const RoutingDecision& d) { return d.kind == directory::RouteKind::MicrosoftServer; };
}

namespace {

// Recipients the cache keeps at most (then it starts afresh).
constexpr std::size_t kMaxCachedRecipients = 200000;

enum class ComponentRouteType { Component };
[[maybe_unused]] std::string_view nameOf(ComponentRouteType) { return "component"; }

struct ComponentMatch {
  std::string pattern;
  ComponentRouteType type = ComponentRouteType::Component;
  std::vector<ComponentRoute> routes;
};

// decideRoute's route table: every predicate component is a candidate for
// every recipient; the predicates choose afterwards from the decision.
struct ComponentTable {
  using Route = ComponentRoute;
  std::vector<ComponentRoute> all;
  std::optional<ComponentMatch> match(std::string_view target) const {
    if (all.empty()) return std::nullopt;
    auto at = target.find('@');
    return ComponentMatch{std::string(at == std::string_view::npos ? target : target.substr(at + 1)),
                          ComponentRouteType::Component, all};
  }
};

}  // namespace

Router::Router(std::string nodeId, directory::DirectoryLookup& directory, net::WorkerPool* workers)
    : nodeId_(std::move(nodeId)), directory_(directory), workers_(workers) {}

Router::~Router() {
  // A decision job still running on a worker uses this router (the stanzas
  // that waited behind it): it finishes first.
  std::unique_lock lock(pendingMu_);
  jobsIdle_.wait(lock, [this] { return jobsInFlight_ == 0; });
}

void Router::setLocalHandler(LocalHandler fn) {
  std::unique_lock lock(mu_);
  local_ = std::move(fn);
}

void Router::setBounceHandler(BounceHandler fn) {
  std::unique_lock lock(mu_);
  bounce_ = std::move(fn);
}

void Router::setLocalDomains(std::vector<std::string> domains) {
  std::sort(domains.begin(), domains.end());
  {
    std::unique_lock lock(mu_);
    domains_ = std::move(domains);
  }
  std::lock_guard lock(cacheMu_);
  recipients_.clear();
  ++epoch_;
}

bool Router::isLocalDomain(const std::string& domain) const {
  std::shared_lock lock(mu_);
  return std::binary_search(domains_.begin(), domains_.end(), domain);
}

void Router::addDomainComponent(const std::string& domain, std::shared_ptr<Component> c) {
  if (!c) throw std::invalid_argument("addDomainComponent: no component for " + domain);
  std::unique_lock lock(mu_);
  if (domainComponents_.count(domain))
    throw std::invalid_argument("domain " + domain + " is already served by component " +
                                std::string(domainComponents_[domain]->name()));
  domainComponents_.emplace(domain, std::move(c));
}

void Router::addPredicateComponent(std::shared_ptr<Component> c, RoutePredicate claims,
                                   std::function<directory::FederationRouting()> federation) {
  if (!c || !claims || !federation)
    throw std::invalid_argument("addPredicateComponent needs a component, a predicate and its federation settings");
  std::unique_lock lock(mu_);
  predicates_.push_back({std::move(c), std::move(claims), std::move(federation)});
}

void Router::removeComponent(const Component& c) {
  std::unique_lock lock(mu_);
  std::erase_if(domainComponents_, [&](const auto& kv) { return kv.second.get() == &c; });
  std::erase_if(predicates_, [&](const PredicateEntry& p) { return p.component.get() == &c; });
}

std::shared_ptr<SessionSink> Router::attachSession(const Address& fullJid, net::EventLoop& loop,
                                                   std::shared_ptr<SessionSink> sink) {
  if (fullJid.isBare() || fullJid.local.empty())
    throw std::invalid_argument("attachSession needs a full user JID, not " + fullJid.full());
  std::unique_lock lock(mu_);
  auto& slot = sessions_[fullJid.bare()][fullJid.resource];
  auto old = std::move(slot.sink);
  slot = SessionEntry{&loop, std::move(sink)};
  return old;
}

void Router::detachSession(const Address& fullJid, const SessionSink& sink) {
  std::unique_lock lock(mu_);
  auto user = sessions_.find(fullJid.bare());
  if (user == sessions_.end()) return;
  auto r = user->second.find(fullJid.resource);
  if (r == user->second.end() || r->second.sink.get() != &sink) return;
  user->second.erase(r);
  if (user->second.empty()) sessions_.erase(user);
}

std::vector<std::string> Router::resourcesOf(const std::string& bareJid) const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  if (auto user = sessions_.find(bareJid); user != sessions_.end())
    for (const auto& [resource, entry] : user->second) out.push_back(resource);
  return out;
}

std::size_t Router::sessionCount() const {
  std::shared_lock lock(mu_);
  std::size_t n = 0;
  for (const auto& [bare, resources] : sessions_) n += resources.size();
  return n;
}

RouteResult Router::bounce(RoutedStanza stanza, std::string_view condition, std::string text) {
  BounceHandler fn;
  {
    std::shared_lock lock(mu_);
    fn = bounce_;
  }
  ++bounced_;
  if (fn) fn(std::move(stanza), condition, std::move(text));
  return RouteResult::Bounced;
}

RouteResult Router::toLocal(RoutedStanza stanza) {
  LocalHandler fn;
  {
    std::shared_lock lock(mu_);
    fn = local_;
  }
  if (!fn) return bounce(std::move(stanza), "service-unavailable", "no session manager runs on this node");
  ++toLocal_;
  fn(std::move(stanza));
  return RouteResult::Local;
}

RouteResult Router::deliverToSession(RoutedStanza stanza) {
  SessionEntry entry;
  {
    std::shared_lock lock(mu_);
    auto user = sessions_.find(stanza.to.bare());
    if (user != sessions_.end())
      if (auto r = user->second.find(stanza.to.resource); r != user->second.end()) entry = r->second;
  }
  if (!entry.sink) return toLocal(std::move(stanza));
  ++toSessions_;
  // The session may close before the loop runs this: the stanza then goes
  // back to the local handler (offline storage), never into the void (IM-5).
  entry.loop->post([this, weak = std::weak_ptr<SessionSink>(entry.sink), s = std::move(stanza)]() mutable {
    bool bound = false;
    SessionEntry now;
    {
      std::shared_lock lock(mu_);
      auto user = sessions_.find(s.to.bare());
      if (user != sessions_.end())
        if (auto r = user->second.find(s.to.resource); r != user->second.end()) {
          now = r->second;
          bound = r->second.sink == weak.lock();
        }
    }
    auto sink = weak.lock();
    if (bound && sink) {
      sink->deliver(std::move(s));
      return;
    }
    ++stale_;
    // Another session holds the full JID now (an XEP-0198 resumption moved
    // the session to a new stream, or a newer login replaced it, RFC 6120
    // §7.7.2.2): it is the recipient. On this very loop it takes the stanza
    // at once, so the order of what was posted here is kept.
    if (now.sink) {
      if (now.loop->inLoopThread()) {
        ++toSessions_;
        now.sink->deliver(std::move(s));
      } else {
        deliverToSession(std::move(s));
      }
      return;
    }
    toLocal(std::move(s));
  });
  return RouteResult::Session;
}

namespace {

// Decision step 0 (see router.h): a stanza of a local session that its
// user's server processes before it is routed.
bool userOutbound(const RoutedStanza& s) {
  if (s.outboundApplied || s.kind != StanzaKind::Presence || s.from.resource.empty() || s.from.local.empty())
    return false;
  if (s.to.bare() == s.from.bare()) return false;
  return s.type.empty() || s.type == "unavailable" || s.type == "subscribe" || s.type == "subscribed" ||
         s.type == "unsubscribe" || s.type == "unsubscribed";
}

}  // namespace

RouteResult Router::route(RoutedStanza stanza) {
  std::shared_ptr<Component> byDomain;
  bool online = false, fullBound = false, localDomain = false, fromSession = false;
  const bool outbound = userOutbound(stanza);
  {
    std::shared_lock lock(mu_);
    if (outbound)
      if (auto user = sessions_.find(stanza.from.bare()); user != sessions_.end())
        fromSession = user->second.count(stanza.from.resource) > 0;
    if (auto c = domainComponents_.find(stanza.to.domain); c != domainComponents_.end()) byDomain = c->second;
    localDomain = std::binary_search(domains_.begin(), domains_.end(), stanza.to.domain);
    if (auto user = sessions_.find(stanza.to.bare()); user != sessions_.end()) {
      online = true;
      fullBound = !stanza.to.isBare() && user->second.count(stanza.to.resource) > 0;
    }
  }
  if (fromSession) return toLocal(std::move(stanza));
  if (byDomain) {
    ++toComponents_;
    byDomain->deliver(std::move(stanza));
    return RouteResult::Component;
  }
  if (fullBound) return deliverToSession(std::move(stanza));
  // The user is online here, so licensed and homed here: the session
  // manager applies RFC 6121 §8.5 to the bare JID or the unbound resource.
  if (online) return toLocal(std::move(stanza));
  if (localDomain && stanza.to.local.empty()) return toLocal(std::move(stanza));
  if (!workers_) return decide(std::move(stanza));
  // Decisions run concurrently on the workers, which would reorder what one
  // sender sends one recipient (RFC 6121 §8, IM-5: offline messages are
  // delivered in the order sent). A stanza for a recipient whose decision is
  // in flight waits behind it and is decided after it, on the same worker.
  std::string key = stanza.to.bare();
  {
    std::lock_guard lock(pendingMu_);
    if (auto it = pending_.find(key); it != pending_.end()) {
      it->second.push_back(std::move(stanza));
      return RouteResult::Deferred;
    }
    pending_[key];  // an empty queue: a decision is in flight
    ++jobsInFlight_;
  }
  auto shared = std::make_shared<RoutedStanza>(std::move(stanza));
  if (!workers_->submit([this, shared, key] {
        decide(std::move(*shared));
        drainPending(key);
        std::lock_guard lock(pendingMu_);
        --jobsInFlight_;
        jobsIdle_.notify_all();
      })) {
    std::deque<RoutedStanza> waiting;
    {
      std::lock_guard lock(pendingMu_);
      --jobsInFlight_;
      jobsIdle_.notify_all();
      if (auto it = pending_.find(key); it != pending_.end()) {
        waiting.swap(it->second);
        pending_.erase(it);
      }
    }
    for (auto& w : waiting)
      bounce(std::move(w), "resource-constraint", "the router's directory workers are saturated; try again later");
    return bounce(std::move(*shared), "resource-constraint",
                  "the router's directory workers are saturated; try again later");
  }
  return RouteResult::Deferred;
}

void Router::drainPending(const std::string& key) {
  for (;;) {
    RoutedStanza next;
    {
      std::lock_guard lock(pendingMu_);
      auto it = pending_.find(key);
      if (it == pending_.end()) return;
      if (it->second.empty()) {
        pending_.erase(it);
        return;
      }
      next = std::move(it->second.front());
      it->second.pop_front();
    }
    decide(std::move(next));
  }
}

RouteResult Router::decide(RoutedStanza stanza) {
  ++lookups_;
  std::vector<PredicateEntry> predicates;
  {
    std::shared_lock lock(mu_);
    predicates = predicates_;
  }
  ComponentTable table;
  for (const auto& p : predicates) table.all.push_back({std::string(p.component->name())});
  auto federation = predicates.empty() ? directory::FederationRouting{} : predicates.front().federation();

  if (stopping_ && stanza.kind == StanzaKind::Presence) {
    ++droppedAtStop_;
    return RouteResult::Dropped;
  }
  directory::Recipient rcpt;
  rcpt.domain = stanza.to.domain;
  rcpt.address = stanza.to.local.empty() ? std::string() : stanza.to.bare();
  // A user of a local domain: the recipient cache may answer (see router.h).
  const bool cacheable = !rcpt.address.empty() && isLocalDomain(rcpt.domain);
  std::optional<directory::CachedRecipient> known;
  std::uint64_t epoch = 0;
  if (cacheable) {
    std::lock_guard lock(cacheMu_);
    epoch = epoch_;
    if (auto it = recipients_.find(rcpt.address); it != recipients_.end()) known = it->second;
  }
  std::optional<RoutingDecision> d;
  if (known) {
    try {
      directory::CachedLookup cached(*known);
      d = directory::decideRoute(rcpt, federation, cached, table, false, directory::Reasons::Explain);
      ++cacheHits_;
    } catch (const directory::CacheMiss&) {
      // a question the entry does not answer: the directory does
    }
  }
  if (!d) try {
      directory::CachedRecipient seen;
      directory::RecordingLookup recording(directory_, seen);
      d = directory::decideRoute(rcpt, federation, recording, table, false, directory::Reasons::Explain);
      if (cacheable) {
        std::lock_guard lock(cacheMu_);
        if (epoch == epoch_) {
          if (recipients_.size() >= kMaxCachedRecipients) recipients_.clear();
          recipients_[rcpt.address] = seen;
        }
      }
    } catch (const std::exception& e) {
      // The directory (database) is unreachable: the sender hears it now
      // rather than the stanza waiting without bound (RFC 6120 §8.3.3.8).
      return bounce(std::move(stanza), "internal-server-error",
                    std::string("the directory cannot be read: ") + e.what());
    }
  switch (d->kind) {
    case directory::RouteKind::LocalUser:
      if (d->homeNode == nodeId_) return toLocal(std::move(stanza));
      {
        std::string why = stanza.to.bare() + " is homed on node " + d->homeNode + ", which this node does not route to";
        return bounce(std::move(stanza), "service-unavailable", std::move(why));
      }
    case directory::RouteKind::MicrosoftServer:
    case directory::RouteKind::StaticRoute:
      for (const auto& p : predicates)
        if (p.claims(stanza.to, *d)) {
          ++toComponents_;
          p.component->deliver(std::move(stanza));
          return RouteResult::Component;
        }
      return bounce(std::move(stanza), "service-unavailable", d->reason + "; no component takes it");
    case directory::RouteKind::Reject:
      // The domain itself, when it is a local presence domain the cached set
      // did not hold yet: the server.
      if (rcpt.address.empty() && directory_.isLocalDomain(rcpt.domain)) return toLocal(std::move(stanza));
      break;
  }
  return bounce(std::move(stanza), "service-unavailable", d->reason);
}

RouterStats Router::stats() const {
  return {toSessions_.load(),   toLocal_.load(),    toComponents_.load(), bounced_.load(),
          lookups_.load(),      stale_.load(),      cacheHits_.load(),    droppedAtStop_.load()};
}

}  // namespace imp::xcp
