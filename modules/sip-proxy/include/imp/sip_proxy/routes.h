#pragma once
// Static routes (RT-2, RT-3) and their lookup.
//
// Destination patterns:
//  - route type `domain`: the domain written reversed, labels separated by
//    '.', with an optional leading '.' and an optional final `*` label:
//      example.com                 -> .com.example.*   (the domain and every
//                                                       name below it)
//      lyncserver.domaina.com      -> .com.domaina.lyncserver (that name only)
//      everything (a default route) -> .*
//    `com.remote` is accepted and stored as `.com.remote`. Labels are
//    case-insensitive and stored lower-case; `*` is only allowed as the last
//    whole label.
//  - route type `user`: matched against the user part of the address
//    (RFC 3261 user characters), optionally ending in `*` (prefix match):
//    `+1408*`, `alice`, `*`.
//
// Lookup: user routes are tried first when the target has a user part (a
// user route names one user or number range, the most specific match), then
// domain routes on the host. The longest pattern wins (most literal labels /
// characters; an exact pattern beats a wildcard of the same length); its
// routes are returned ordered by priority (1 = primary, tried first), then
// weight (larger first), then id. Pure values; thread-safe once built.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace imp::sip_proxy {

enum class RouteType { Domain, User };
std::string_view nameOf(RouteType t);  // "domain", "user"
std::optional<RouteType> parseRouteType(std::string_view s);

enum class Transport { Tcp, Tls, Udp };
std::string_view nameOf(Transport t);  // "TCP", "TLS", "UDP"
std::optional<Transport> parseTransport(std::string_view s);  // case-insensitive

struct StaticRoute {
  std::int64_t id = 0;
  std::string pattern;  // canonical
  RouteType type = RouteType::Domain;
  std::string nextHop;  // canonical IP literal or lower-case FQDN
  int port = 5061;
  Transport transport = Transport::Tls;
  int priority = 1;
  int weight = 1;
  // "10.0.0.5:5061;TLS priority 1 weight 1" (traces, RT-9).
  std::string describe() const;
};

// Checks `in` for route type `t`; *out receives the canonical pattern.
std::string normaliseRoutePattern(RouteType t, const std::string& in, std::string* out);
// A next hop: an IPv4/IPv6 literal or an FQDN (at least two labels).
std::string normaliseNextHop(const std::string& in, std::string* out);
// Priority and weight are 1..65535.
std::string checkPriority(std::int64_t v);
std::string checkWeight(std::int64_t v);

// Why `r` (canonical) cannot be added next to `existing`: the same pattern,
// next hop, port and transport already exists, or the pattern already has a
// route with that priority (RT-3: backups need a larger priority). "" if fine.
std::string checkRouteConflict(const std::vector<StaticRoute>& existing, const StaticRoute& r);

struct RouteMatch {
  std::string pattern;
  RouteType type = RouteType::Domain;
  std::vector<StaticRoute> routes;  // ordered, first = try first
};

class RouteTable {
 public:
  using Route = StaticRoute;  // for directory::decideRoute (imp/directory/routing.h)
  RouteTable() = default;
  // Routes must be canonical (as stored); others are ignored.
  explicit RouteTable(std::vector<StaticRoute> routes);

  // target: "example.com", "user@example.com" or a sip:/sips: URI.
  std::optional<RouteMatch> match(std::string_view target) const;
  // The candidate next hops of the best match, in the order to try; empty
  // when no pattern matches.
  std::vector<StaticRoute> lookup(std::string_view target) const;
  std::size_t size() const { return routes_.size(); }

 private:
  struct Compiled {
    RouteType type;
    std::string pattern;
    std::vector<std::string> labels;  // domain: reversed literal labels; user: one prefix
    bool wildcard;
  };
  std::vector<StaticRoute> routes_;
  std::vector<Compiled> patterns_;  // one per distinct (type, pattern)
};

}  // namespace imp::sip_proxy
