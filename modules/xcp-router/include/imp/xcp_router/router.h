#pragma once
// The XCP Router's stanza router (issue 16, deliverable 7): where a stanza
// addressed to a JID goes. One Router per node, shared by every client
// connection loop, the session manager and in-process components.
//
// Decision for a stanza's `to`, in order:
//  0. presence from a bound local session to another account, of a
//     subscription type (subscribe/subscribed/unsubscribe/unsubscribed) or
//     directed presence (no type, unavailable): the local handler, whatever
//     the recipient. The user's server applies a subscription stanza to the
//     user's roster and pushes the change before routing it on (RFC 6121
//     §3.1.2, §3.2.2, §3.3.2, §3.4), and records directed presence so that
//     the entity hears "unavailable" when the session ends (§4.6.3); the
//     session manager then routes it again with `outboundApplied` set, and
//     this step is skipped;
//  1. its domain is claimed by a component (addDomainComponent): that
//     component ("conference.example.com" style services);
//  2. a full JID with a bound local session (attachSession): that session,
//     on the session's own loop;
//  3. the local handler (the session manager: bare JIDs, the server
//     itself, resources not bound, offline storage) for a local presence
//     domain itself, for a user with a bound session here, and for an
//     address the directory says is a licensed user homed on this node; a
//     licensed user homed on another node is not reachable from here (no
//     router-to-router link yet): service-unavailable naming the node;
//  4. otherwise the partitioned-federation decision of the directory
//     (directory::decideRoute, FED-6/FED-7) over the components registered
//     by routing predicate (addPredicateComponent): the federation connection
//     manager registers one that claims what the decision marks as a
//     Microsoft user (RouteKind::MicrosoftServer) — see microsoftUsers();
//  5. nothing claims it: the bounce handler answers service-unavailable
//     (RFC 6120 §8.3.3.19; RFC 6121 §8.5.2.2 for an unknown local user).
//
// The component interface (the federation connection manager's way in):
//
//   class Fcm : public imp::xcp::Component {
//     std::string_view name() const override { return "federation-cm"; }
//     void deliver(RoutedStanza s) override { queue_.push(std::move(s)); }
//   };
//   router.addPredicateComponent(fcm, imp::xcp::microsoftUsers(),
//                                [&] { return currentFederationSettings(); });
//   ... and stanzas it receives from Microsoft users go back in with
//   router.route(stanza).
//
// Threads: every member is safe from any thread. route() never blocks: a
// decision that needs the directory (which reads the database) runs on the
// WorkerPool given to the constructor (inline when none, e.g. unit tests),
// and deliveries to sessions are posted to the session's loop. Component
// deliver() and the handlers run on the thread that made the decision (a
// loop or a worker): they must queue and return, never block.
//
// Errors: a stanza nothing can take is never dropped silently: it goes to
// the bounce handler with the condition and a text (counted in stats()). A
// session that went away between the decision and the delivery hands the
// stanza back to the local handler (offline storage, IM-5).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <imp/directory/routing.h>
#include <imp/xcp_router/blocking.h>
#include <imp/xcp_router/carbons.h>

namespace imp::net {
class EventLoop;
class WorkerPool;
}  // namespace imp::net

namespace imp::xmpp {
class Element;
}  // namespace imp::xmpp

namespace imp::xcp {

enum class StanzaKind : std::uint8_t { Message, Presence, Iq };
std::string_view nameOf(StanzaKind k);  // "message", "presence", "iq"

// A JID already normalised by the caller (RFC 7622; the stream parser's
// Jid does it), split into its parts. The router compares parts byte-wise.
struct Address {
  std::string local;     // "" for a domain JID
  std::string domain;
  std::string resource;  // "" for a bare JID

  // "local@domain/resource" -> parts; nullopt for an empty domain or an
  // empty part next to its separator ("@d", "l@", "d/").
  static std::optional<Address> split(std::string_view jid);
  std::string bare() const;  // local@domain, or domain
  std::string full() const;  // bare()/resource, or bare()
  bool isBare() const { return resource.empty(); }
  bool operator==(const Address&) const = default;
};

// One stanza in flight with the addressing the router reads. `element` is
// the stanza itself (modules/xmpp), shared read-only by whoever receives it.
struct RoutedStanza {
  StanzaKind kind = StanzaKind::Message;
  Address from;      // stamped by the sender's session (RFC 6120 §8.1.2.1)
  Address to;
  std::string type;  // the type attribute ("" when absent)
  std::shared_ptr<const xmpp::Element> element;
  // The sender's session manager has applied its outbound rules to this
  // stanza (decision step 0 above): it is routed to its recipient.
  bool outboundApplied = false;
};

// An in-process service that takes stanzas from the router.
class Component {
 public:
  virtual ~Component() = default;
  virtual std::string_view name() const = 0;
  // Any thread; must queue and return.
  virtual void deliver(RoutedStanza stanza) = 0;
};

// A bound client session (the connection manager's): stanzas are handed to
// it on its own loop.
class SessionSink {
 public:
  virtual ~SessionSink() = default;
  // On the session's loop.
  virtual void deliver(RoutedStanza stanza) = 0;
  // Any thread: a newer session took this full JID (RFC 6120 §7.7.2.2);
  // the session closes itself with the `conflict` stream error.
  virtual void replaced() = 0;
};

// The routes of the directory's decision, as the router feeds them to
// directory::decideRoute: the predicate components, by name.
struct ComponentRoute {
  std::string component;
  std::string describe() const { return "component " + component; }
};
using RoutingDecision = directory::RoutingDecisionOf<ComponentRoute>;

// What the routing predicate of a component sees: the recipient and the
// directory's decision for it.
using RoutePredicate = std::function<bool(const Address& to, const RoutingDecision& decision)>;
// The federation connection manager's predicate: the decision marks the
// recipient as a Microsoft user (partitioned federation, FED-6).
RoutePredicate microsoftUsers();

enum class RouteResult : std::uint8_t {
  Session,       // handed to a bound session
  Local,         // handed to the local handler (session manager)
  Component,     // handed to a component
  Bounced,       // handed to the bounce handler
  Deferred,      // the directory decision runs on a worker; one of the above follows
  Dropped,       // presence waiting for a directory decision while the router stops (counted)
};
std::string_view nameOf(RouteResult r);

struct RouterStats {
  std::uint64_t toSessions = 0, toLocal = 0, toComponents = 0, bounced = 0, directoryLookups = 0,
                staleSessions = 0;
  // Decisions answered from the recipient cache (no directory query), and
  // presence dropped undecided at stop.
  std::uint64_t directoryCacheHits = 0, droppedAtStop = 0;
};

class Router {
 public:
  // Stanzas for local users, the server and resources not bound.
  using LocalHandler = std::function<void(RoutedStanza)>;
  // Undeliverable: `condition` is the RFC 6120 §8.3.3 name
  // ("service-unavailable", "internal-server-error", ...).
  using BounceHandler = std::function<void(RoutedStanza, std::string_view condition, std::string text)>;

  // `nodeId`: this node (a LocalUser decision for another node is not
  // local). `directory` may block (database); it runs on `workers` when
  // given, concurrently on several of them (directory::directoryLookup is
  // thread-safe). Both must outlive the router.
  Router(std::string nodeId, directory::DirectoryLookup& directory, net::WorkerPool* workers = nullptr);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  void setLocalHandler(LocalHandler fn);
  void setBounceHandler(BounceHandler fn);

  // The local presence domains, cached between settings generations; a
  // domain outside the set is still asked of the directory. Called at every
  // settings generation (every directory change makes one): it also forgets
  // what the directory said about recipients (the recipient cache, below).
  void setLocalDomains(std::vector<std::string> domains);
  bool isLocalDomain(const std::string& domain) const;

  // Components. Adding a domain twice throws std::invalid_argument.
  void addDomainComponent(const std::string& domain, std::shared_ptr<Component> c);
  // `federation` is read for each decision (the caller's live settings).
  void addPredicateComponent(std::shared_ptr<Component> c, RoutePredicate claims,
                             std::function<directory::FederationRouting()> federation);
  // Removes every registration of `c`.
  void removeComponent(const Component& c);

  // Sessions (full JIDs). attachSession replaces an earlier sink for the
  // same full JID and returns it (the resource conflict policy is the
  // caller's, RFC 6120 §7.7.2.2). detach removes only that very sink.
  std::shared_ptr<SessionSink> attachSession(const Address& fullJid, net::EventLoop& loop,
                                             std::shared_ptr<SessionSink> sink);
  void detachSession(const Address& fullJid, const SessionSink& sink);
  // The bound resources of a bare JID.
  std::vector<std::string> resourcesOf(const std::string& bareJid) const;
  std::size_t sessionCount() const;
  // XEP-0280: the resources that enabled carbons, beside the sessions: the
  // connection manager copies what its streams send and receive by full
  // JID, the session manager what it delivers for a bare JID.
  CarbonsRegistry& carbons() { return carbons_; }
  // XEP-0191: the block lists of the users who log in here, for the checks
  // of the connection manager and the session manager (blocking.h).
  BlockingRegistry& blocking() { return blocking_; }

  // Sends one stanza on its way (see the decision order above).
  RouteResult route(RoutedStanza stanza);
  // The same, skipping the session step: for stanzas the local handler
  // has already taken apart (e.g. a bare-JID message to each resource).
  RouteResult deliverToSession(RoutedStanza stanza);

  RouterStats stats() const;

  // The service stops: presence still waiting for a directory decision is
  // dropped and counted (it is never stored, RFC 6121 §4.3.2, §4.5); a mass
  // logout leaves thousands of unavailable broadcasts behind, which would
  // hold the stop for minutes. Messages and iqs are still decided (IM-5).
  void beginStop() { stopping_ = true; }

 private:
  struct SessionEntry {
    net::EventLoop* loop = nullptr;
    std::shared_ptr<SessionSink> sink;
  };
  struct PredicateEntry {
    std::shared_ptr<Component> component;
    RoutePredicate claims;
    std::function<directory::FederationRouting()> federation;
  };
  RouteResult decide(RoutedStanza stanza);
  RouteResult bounce(RoutedStanza stanza, std::string_view condition, std::string text);
  RouteResult toLocal(RoutedStanza stanza);
  // Decides the stanzas that waited for `key`'s decision, in order.
  void drainPending(const std::string& key);

  std::string nodeId_;
  directory::DirectoryLookup& directory_;
  net::WorkerPool* workers_;
  mutable std::shared_mutex mu_;
  LocalHandler local_;
  BounceHandler bounce_;
  std::vector<std::string> domains_;
  std::map<std::string, std::shared_ptr<Component>, std::less<>> domainComponents_;
  std::vector<PredicateEntry> predicates_;
  std::map<std::string, std::map<std::string, SessionEntry>, std::less<>> sessions_;  // bare -> resource -> entry
  CarbonsRegistry carbons_;
  BlockingRegistry blocking_;
  std::mutex pendingMu_;
  std::map<std::string, std::deque<RoutedStanza>, std::less<>> pending_;  // bare JID -> waiting behind a decision
  std::size_t jobsInFlight_ = 0;  // decision jobs submitted and not finished (pendingMu_)
  std::condition_variable jobsIdle_;
  std::atomic<std::uint64_t> toSessions_{0}, toLocal_{0}, toComponents_{0}, bounced_{0}, lookups_{0}, stale_{0},
      cacheHits_{0}, droppedAtStop_{0};
  std::atomic<bool> stopping_{false};
  // The recipient cache: what the directory answered about a recipient in a
  // local domain, until the next settings generation (epoch_ counts them; an
  // answer that raced a new generation is not kept). The broadcasts of one
  // logout go to the same contacts again and again.
  std::mutex cacheMu_;
  std::unordered_map<std::string, directory::CachedRecipient> recipients_;
  std::uint64_t epoch_ = 0;
};

}  // namespace imp::xcp
