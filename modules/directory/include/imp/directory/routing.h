#pragma once
// The routing decision for one recipient (FED-6, FED-7, RT-5) as pure
// functions over plain data (issue 15, deliverable 1): user@domain
// addresses, domains, node ids and the federation settings as plain values;
// no protocol types. The SIP proxy, the federation connection manager and
// the XMPP router call the same function, each after turning its own
// request into a Recipient.
//
// Rules, in order:
//  1. Recipient in a local presence domain and a licensed IMP user ->
//     LocalUser (its home node; 480 if it has none).
//  2. Local domain, not a licensed user:
//     - federation disabled -> Reject 404 (routes are not consulted);
//     - basic mode          -> MicrosoftServer with the static routes for
//                              the recipient, or Reject 404 if none;
//     - advanced mode       -> the same, but only if the directory holds a
//                              Microsoft SIP URI for the recipient; else
//                              Reject 404.
//  3. Not a local domain -> StaticRoute (ordinary routing) with the matching
//     routes, or Reject 404.
//  A request that carries this cluster's own outbound partitioned-federation
//  marker and would go to the Microsoft server again is a loop: Reject 482
//  (FED-7). Recognising the marker is the caller's (it is in the protocol).
//
// Routes: the decision is a template over the caller's route table, so the
// routes it returns are the caller's own values (no conversion per
// request). A table offers
//   std::optional<M> match(std::string_view target) const   // "user@domain" or "domain"
//   using Route = ...;                                        // the element of M::routes
// where M has `pattern` (std::string), `type` (nameOf(type) names it, found
// by argument-dependent lookup) and `routes` (std::vector<Route>, in the
// order to try), and Route has describe() for the reason text.
//
// Threads: pure, except for what the DirectoryLookup does (it may block:
// call it off event-loop threads, or through CachedLookup).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace imp::directory {

class Directory;

// What the routing decision needs from the directory. Implementations may
// block (database); call them off event-loop threads.
class DirectoryLookup {
 public:
  virtual ~DirectoryLookup() = default;
  // `domain` is lower-case.
  virtual bool isLocalDomain(const std::string& domain) = 0;
  // The licensed (IM-enabled) IMP user with this IM address, if any: its
  // home node, "" when unassigned. `address` is user@domain, lower-case.
  virtual std::optional<std::string> licensedUserHome(const std::string& address) = 0;
  // True if the directory holds a Microsoft SIP URI (msRTCSIP-
  // PrimaryUserAddress) for this address (advanced mode, FED-6).
  virtual bool hasMicrosoftSipUri(const std::string& address) = 0;
  // Every local presence domain (lower-case), for callers that keep the set
  // in memory between settings generations; nullopt = cannot list them.
  virtual std::optional<std::vector<std::string>> localDomains() { return std::nullopt; }
};

// DirectoryLookup over the cluster directory.
std::unique_ptr<DirectoryLookup> directoryLookup(Directory& dir);

// ---- the recipient cache ----

// What the directory answered about one recipient, kept between requests by
// a caller that drops it whenever the settings generation changes (every
// directory change makes a new generation). A field is set once asked; under
// one policy decideRoute asks the same questions for a recipient each time.
struct CachedRecipient {
  std::optional<std::optional<std::string>> licensedHome;  // licensedUserHome()
  std::optional<bool> microsoftSipUri;                    // hasMicrosoftSipUri()
};

// A DirectoryLookup over another one that notes the answers about users in
// `into` (for the cache above). isLocalDomain passes through.
class RecordingLookup : public DirectoryLookup {
 public:
  RecordingLookup(DirectoryLookup& inner, CachedRecipient& into) : inner_(inner), into_(into) {}
  bool isLocalDomain(const std::string& domain) override { return inner_.isLocalDomain(domain); }
  std::optional<std::string> licensedUserHome(const std::string& address) override {
    auto r = inner_.licensedUserHome(address);
    into_.licensedHome = r;
    return r;
  }
  bool hasMicrosoftSipUri(const std::string& address) override {
    bool r = inner_.hasMicrosoftSipUri(address);
    into_.microsoftSipUri = r;
    return r;
  }

 private:
  DirectoryLookup& inner_;
  CachedRecipient& into_;
};

// A DirectoryLookup answering from a cached entry for a recipient whose
// domain the caller already knows to be local; throws CacheMiss should the
// decision need something the entry does not hold (ask the directory then).
struct CacheMiss {};
class CachedLookup : public DirectoryLookup {
 public:
  explicit CachedLookup(const CachedRecipient& entry) : entry_(entry) {}
  bool isLocalDomain(const std::string&) override { return true; }
  std::optional<std::string> licensedUserHome(const std::string&) override {
    if (!entry_.licensedHome) throw CacheMiss{};
    return *entry_.licensedHome;
  }
  bool hasMicrosoftSipUri(const std::string&) override {
    if (!entry_.microsoftSipUri) throw CacheMiss{};
    return *entry_.microsoftSipUri;
  }

 private:
  const CachedRecipient& entry_;
};

// The entries above by recipient address (user@domain), for one settings
// generation at a time. Not thread-safe: one owner thread (the proxy's loop).
class RecipientCache {
 public:
  explicit RecipientCache(std::size_t maxEntries = 100000) : max_(maxEntries) {}
  const CachedRecipient* find(const std::string& address) const {
    auto it = entries_.find(address);
    return it == entries_.end() ? nullptr : &it->second;
  }
  // Notes what was asked about `address` under generation `epoch`; ignored
  // when the generation has changed since (or nothing was asked). At
  // maxEntries everything is dropped first.
  void remember(const std::string& address, const CachedRecipient& seen, std::uint64_t epoch) {
    if (epoch != epoch_ || (!seen.licensedHome && !seen.microsoftSipUri)) return;
    if (entries_.size() >= max_ && entries_.count(address) == 0) entries_.clear();
    entries_[address] = seen;
  }
  // A new settings generation: everything noted is stale.
  void forget() {
    entries_.clear();
    ++epoch_;
  }
  std::uint64_t epoch() const { return epoch_; }
  std::size_t size() const { return entries_.size(); }

 private:
  std::size_t max_;
  std::unordered_map<std::string, CachedRecipient> entries_;
  std::uint64_t epoch_ = 0;
};

// ---- the decision ----

enum class RouteKind { LocalUser, MicrosoftServer, StaticRoute, Reject };
std::string_view nameOf(RouteKind k);  // "local_user", "microsoft_server", ...

// Whether a decision that routes (not a Reject) says why in `reason`: the
// route test and the routing trace (RT-9) want the words, the relay path
// does not (building them costs about 2% of a relayed MESSAGE). Rejects
// always carry their reason: it becomes the response's reason phrase.
enum class Reasons { Explain, RejectsOnly };

// Partitioned intradomain federation as the decision needs it (FED-4..6).
struct FederationRouting {
  bool enabled = false;
  bool advanced = false;  // advanced routing mode (else basic)
};

// The recipient, as the caller's protocol named it: a user@domain address,
// or a domain alone (a SIP Request-URI without a user part).
struct Recipient {
  std::string address;  // user@domain, lower-case; "" for a domain alone
  std::string domain;   // lower-case, without a trailing dot
};
// "user@domain" -> the address and its domain (lower-cased; a trailing dot
// of the domain dropped); nullopt when it is not user@domain with both
// parts non-empty and free of spaces and control characters.
std::optional<Recipient> recipientFromAddress(std::string_view userAtDomain);
// The address from its user and host parts as the caller parsed them.
std::optional<Recipient> recipientFromParts(std::string_view user, std::string_view host);
// A domain alone; nullopt when empty.
std::optional<Recipient> recipientFromDomain(std::string_view host);

template <class Route>
struct RoutingDecisionOf {
  using Kind = RouteKind;
  Kind kind = Kind::Reject;
  std::string homeNode;       // LocalUser
  std::vector<Route> routes;  // MicrosoftServer / StaticRoute, in the order to try
  std::string pattern;        // the static route pattern that matched
  int status = 0;             // Reject: SIP status (404, 480, 482, 400)
  // Why, in words fit for the routing trace (RT-9) and the Reject reason.
  std::string reason;
};

namespace detail {

template <class Decision>
Decision reject(int status, std::string reason) {
  Decision d;
  d.kind = RouteKind::Reject;
  d.status = status;
  d.reason = std::move(reason);
  return d;
}

template <class Route>
std::string routesText(const std::vector<Route>& routes) {
  std::string s;
  for (const auto& r : routes) s += (s.empty() ? "" : ", ") + r.describe();
  return s;
}

inline std::string_view modeName(const FederationRouting& f) { return f.advanced ? "advanced" : "basic"; }

}  // namespace detail

// A request addressed to a domain itself (e.g. REGISTER sip:example.com).
// Local presence domain: with federation enabled it goes to the Microsoft
// server by the static route matching the domain (482 when it comes back,
// FED-7), else Reject 404 saying IMP is no registrar. Other domains:
// StaticRoute by the domain's routes, or 404.
template <class Table>
RoutingDecisionOf<typename Table::Route> decideDomainRoute(const std::string& domain, const FederationRouting& federation,
                                                           DirectoryLookup& directory, const Table& routes,
                                                           bool returningOwnRequest = false,
                                                           Reasons reasons = Reasons::Explain) {
  const bool explain = reasons == Reasons::Explain;
  using D = RoutingDecisionOf<typename Table::Route>;
  auto m = routes.match(domain);
  bool routed = m && !m->routes.empty();
  if (directory.isLocalDomain(domain)) {
    // A local presence domain shared with the Microsoft server (FED-6): what
    // is addressed to the domain itself (REGISTER, OPTIONS) belongs to that
    // server when federation routes there; IMP is no registrar.
    if (!federation.enabled)
      return detail::reject<D>(404, "sip:" + domain + " names local presence domain " + domain +
                                        " but no user; IMP is no registrar and partitioned intradomain federation is "
                                        "disabled");
    if (returningOwnRequest)
      return detail::reject<D>(482, "loop detected: a request for sip:" + domain +
                                        " was already sent to the Microsoft server by this cluster and came back "
                                        "(FED-7)");
    if (!routed)
      return detail::reject<D>(404, "sip:" + domain + " names local presence domain " + domain +
                                        " but no user; IMP is no registrar and no static route leads to the Microsoft "
                                        "server for " +
                                        domain);
    D d;
    d.kind = RouteKind::MicrosoftServer;
    d.pattern = m->pattern;
    d.routes = std::move(m->routes);
    if (explain)
      d.reason = "partitioned federation: sip:" + domain + " (the domain itself) goes to the Microsoft server by " +
               std::string(nameOf(m->type)) + " route " + d.pattern + ": " + detail::routesText(d.routes);
    return d;
  }
  if (!routed) return detail::reject<D>(404, domain + " is not a local presence domain and no static route matches it");
  D d;
  d.kind = RouteKind::StaticRoute;
  d.pattern = m->pattern;
  d.routes = std::move(m->routes);
  if (explain)
    d.reason = "found " + std::string(nameOf(m->type)) + " route " + d.pattern + " for " + domain + ": " +
               detail::routesText(d.routes);
  return d;
}

// `returningOwnRequest`: the request carries this cluster's outbound
// partitioned-federation marker (FED-7). A Recipient without an address is
// routed by its domain (decideDomainRoute).
template <class Table>
RoutingDecisionOf<typename Table::Route> decideRoute(const Recipient& recipient, const FederationRouting& federation,
                                                     DirectoryLookup& directory, const Table& routes,
                                                     bool returningOwnRequest = false,
                                                     Reasons reasons = Reasons::Explain) {
  using D = RoutingDecisionOf<typename Table::Route>;
  if (recipient.address.empty())
    return decideDomainRoute(recipient.domain, federation, directory, routes, returningOwnRequest, reasons);
  const bool explain = reasons == Reasons::Explain;
  const std::string& address = recipient.address;
  const std::string& domain = recipient.domain;

  if (directory.isLocalDomain(domain)) {
    if (auto home = directory.licensedUserHome(address)) {
      if (home->empty()) return detail::reject<D>(480, address + " is a licensed IMP user but is not assigned to a node");
      D d;
      d.kind = RouteKind::LocalUser;
      d.homeNode = *home;
      if (explain) d.reason = address + " is a licensed IMP user homed on node " + *home;
      return d;
    }
    // FED-6: a local domain, not a licensed IMP user -> perhaps a Microsoft user.
    if (!federation.enabled)
      return detail::reject<D>(404, address + " is in local presence domain " + domain +
                                        " but is not a licensed IMP user, and partitioned intradomain federation is "
                                        "disabled");
    if (federation.advanced && !directory.hasMicrosoftSipUri(address))
      return detail::reject<D>(404, "advanced routing: " + address +
                                        " is not a licensed IMP user and IMP's directory holds no Microsoft SIP URI "
                                        "for it");
    if (returningOwnRequest)
      return detail::reject<D>(482, "loop detected: " + address +
                                        " was already sent to the Microsoft server by this cluster and came back; it "
                                        "is provisioned on neither system (FED-7)");
    auto m = routes.match(address);
    if (!m || m->routes.empty())
      return detail::reject<D>(404, address + " belongs to the Microsoft server (" +
                                        std::string(detail::modeName(federation)) +
                                        " routing) but there is no static route for " + domain);
    D d;
    d.kind = RouteKind::MicrosoftServer;
    d.pattern = m->pattern;
    d.routes = std::move(m->routes);
    if (explain)
      d.reason = "partitioned federation (" + std::string(detail::modeName(federation)) + " routing): found " +
                 std::string(nameOf(m->type)) + " route " + d.pattern + " for " + address + ": " +
                 detail::routesText(d.routes);
    return d;
  }

  auto m = routes.match(address);
  if (!m || m->routes.empty())
    return detail::reject<D>(404, domain + " is not a local presence domain and no static route matches " + address);
  D d;
  d.kind = RouteKind::StaticRoute;
  d.pattern = m->pattern;
  d.routes = std::move(m->routes);
  if (explain)
    d.reason = "found " + std::string(nameOf(m->type)) + " route " + d.pattern + " for " + address + ": " +
               detail::routesText(d.routes);
  return d;
}

}  // namespace imp::directory
