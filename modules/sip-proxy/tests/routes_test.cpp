#include <doctest/doctest.h>
#include <imp/sip_proxy/routes.h>

using namespace imp::sip_proxy;

namespace {

StaticRoute route(std::int64_t id, const std::string& pattern, const std::string& hop, int priority, int weight = 1,
                  RouteType type = RouteType::Domain, Transport tr = Transport::Tls, int port = 5061) {
  StaticRoute r;
  r.id = id;
  std::string canon;
  REQUIRE(normaliseRoutePattern(type, pattern, &canon) == "");
  r.pattern = canon;
  r.type = type;
  r.nextHop = hop;
  r.port = port;
  r.transport = tr;
  r.priority = priority;
  r.weight = weight;
  return r;
}

std::vector<std::string> hops(const std::vector<StaticRoute>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.nextHop);
  return out;
}

std::string domainPattern(const std::string& in) {
  std::string out;
  auto e = normaliseRoutePattern(RouteType::Domain, in, &out);
  return e.empty() ? out : "ERROR: " + e;
}

}  // namespace

TEST_CASE("RT-2: domain destination patterns are reversed domains with a final '*'") {
  CHECK(domainPattern(".com.example.*") == ".com.example.*");
  CHECK(domainPattern(".com.domaina.lyncserver") == ".com.domaina.lyncserver");
  CHECK(domainPattern("com.remote") == ".com.remote");
  CHECK(domainPattern(".COM.Example.*") == ".com.example.*");
  CHECK(domainPattern("*") == ".*");
  CHECK(domainPattern(".*") == ".*");
  CHECK(domainPattern(".jp.co.example.*") == ".jp.co.example.*");
  // private and RFC 2606 suffixes: corp.example reversed is not "forwards"
  CHECK(domainPattern(".example.corp.*") == ".example.corp.*");
  CHECK(domainPattern(".corp.acme.*") == ".corp.acme.*");
  CHECK(domainPattern("acme.corp") ==
        "ERROR: destination pattern 'acme.corp' looks like a domain written forwards; write it reversed: "
        "'.corp.acme.*' (RT-2)");
  const std::string form = " (write the domain reversed, e.g. '.com.example.*' for example.com, RT-2)";
  CHECK(domainPattern("") == "ERROR: destination pattern is empty" + form);
  CHECK(domainPattern("example.com") ==
        "ERROR: destination pattern 'example.com' looks like a domain written forwards; write it reversed: "
        "'.com.example.*' (RT-2)");
  CHECK(domainPattern(".com.*.example") ==
        "ERROR: destination pattern '.com.*.example': '*' is allowed only as the last label" + form);
  CHECK(domainPattern(".com.exam*") == "ERROR: destination pattern '.com.exam*': '*' must be a whole label" + form);
  CHECK(domainPattern(".com..example") == "ERROR: destination pattern '.com..example' has an empty label" + form);
  CHECK(domainPattern("..com.example") == "ERROR: destination pattern '..com.example' has an empty label" + form);
  CHECK(domainPattern(".com.example.") == "ERROR: destination pattern '.com.example.' has an empty label" + form);
  CHECK(domainPattern(".com.ex_ample.*") ==
        "ERROR: destination pattern '.com.ex_ample.*' may hold only letters, digits, '-', '.' and a final '*'" + form);
  CHECK(domainPattern(".com.-x") == "ERROR: destination pattern '.com.-x': a label may not start or end with '-'");
  CHECK(domainPattern(std::string(256, 'a')).find("longer than 255 characters") != std::string::npos);
}

TEST_CASE("RT-2: user destination patterns") {
  std::string out;
  CHECK(normaliseRoutePattern(RouteType::User, "+1408*", &out) == "");
  CHECK(out == "+1408*");
  CHECK(normaliseRoutePattern(RouteType::User, "Alice", &out) == "");
  CHECK(out == "alice");
  CHECK(normaliseRoutePattern(RouteType::User, "*", &out) == "");
  CHECK(normaliseRoutePattern(RouteType::User, ".com.example.*", &out) ==
        "user route pattern '.com.example.*' cannot start with '.'; a reversed domain pattern needs --route-type domain "
        "(RT-2)");
  CHECK(normaliseRoutePattern(RouteType::User, "a*b", &out) ==
        "user route pattern 'a*b': '*' is allowed only at the end (a prefix match such as '+1408*')");
  CHECK(normaliseRoutePattern(RouteType::User, "bob@example.com", &out) ==
        "user route pattern 'bob@example.com' must be the user part only, without '@'");
  CHECK(normaliseRoutePattern(RouteType::User, "a b", &out) ==
        "user route pattern 'a b' holds a character not allowed in a SIP user part");
}

TEST_CASE("RT-2: next hops, ports, priorities, weights, transports") {
  std::string out;
  CHECK(normaliseNextHop("10.1.10.100", &out) == "");
  CHECK(normaliseNextHop("[2001:DB8::5]", &out) == "");
  CHECK(out == "2001:db8::5");
  CHECK(normaliseNextHop("Lync-FE1.Example.com", &out) == "");
  CHECK(out == "lync-fe1.example.com");
  CHECK(normaliseNextHop("", &out) == "next hop is empty");
  CHECK(normaliseNextHop("10.1.10.300", &out) ==
        "next hop '10.1.10.300' is not a valid IPv4 address (a next hop is an IP address or an FQDN)");
  CHECK(normaliseNextHop("2001:db8:::1", &out) == "next hop '2001:db8:::1' is not a valid IPv6 address");
  CHECK(normaliseNextHop("lync", &out) ==
        "next hop 'lync' needs at least 2 labels (a fully qualified name such as host.example.com) (a next hop is an IP "
        "address or an FQDN)");
  CHECK(normaliseNextHop("lync_fe.example.com", &out).find("may hold only letters") != std::string::npos);
  CHECK(checkPriority(1) == "");
  CHECK(checkPriority(0) == "priority 0 is out of range 1..65535 (1 = primary)");
  CHECK(checkPriority(65536) == "priority 65536 is out of range 1..65535 (1 = primary)");
  CHECK(checkWeight(65535) == "");
  CHECK(checkWeight(0) == "weight 0 is out of range 1..65535");
  CHECK(parseTransport("tls") == Transport::Tls);
  CHECK(parseTransport("UDP") == Transport::Udp);
  CHECK_FALSE(parseTransport("SCTP"));
  CHECK(parseRouteType("Domain") == RouteType::Domain);
  CHECK_FALSE(parseRouteType("host"));
  CHECK(route(1, ".com.example.*", "10.1.10.100", 1).describe() == "10.1.10.100:5061;TLS priority 1 weight 1");
  CHECK(route(1, ".com.example.*", "2001:db8::5", 2, 3, RouteType::Domain, Transport::Tcp, 5060).describe() ==
        "[2001:db8::5]:5060;TCP priority 2 weight 3");
}

TEST_CASE("RT-3: duplicate routes and duplicate priorities for one pattern are refused") {
  std::vector<StaticRoute> existing = {route(1, ".com.example.*", "10.0.0.1", 1), route(2, ".com.example.*", "10.0.0.2", 2)};
  CHECK(checkRouteConflict(existing, route(0, ".com.example.*", "10.0.0.3", 3)) == "");
  CHECK(checkRouteConflict(existing, route(0, ".com.other.*", "10.0.0.1", 1)) == "");
  CHECK(checkRouteConflict(existing, route(0, ".com.example.*", "10.0.0.1", 1, 1, RouteType::Domain, Transport::Tcp, 5060)) ==
        "pattern '.com.example.*' already has a route with priority 1 (id 1, to 10.0.0.1:5061;TLS priority 1 weight 1); "
        "give a backup route a larger priority (RT-3: the smaller value is tried first)");
  CHECK(checkRouteConflict(existing, route(0, ".com.example.*", "10.0.0.2", 5)) ==
        "a domain route for pattern '.com.example.*' to 10.0.0.2:5061;TLS priority 2 weight 1 already exists (id 2)");
  // A user route with the same priority is another pattern space.
  CHECK(checkRouteConflict(existing, route(0, "bob", "10.0.0.1", 1, 1, RouteType::User)) == "");
}

TEST_CASE("RT-2/RT-3: lookup — wildcard, exact FQDN, longest pattern wins, priority order") {
  RouteTable t({route(1, ".com.example.*", "10.0.0.2", 2), route(2, ".com.example.*", "10.0.0.1", 1),
                route(3, ".com.example.lyncserver", "10.0.0.9", 1), route(4, ".com.example.eu.*", "10.0.1.1", 1),
                route(5, ".com.other", "10.0.2.1", 1)});
  CHECK(t.size() == 5);
  // The wildcard covers the domain itself and everything below it.
  CHECK(hops(t.lookup("example.com")) == std::vector<std::string>{"10.0.0.1", "10.0.0.2"});
  CHECK(hops(t.lookup("bob@example.com")) == std::vector<std::string>{"10.0.0.1", "10.0.0.2"});
  CHECK(hops(t.lookup("sip:Bob@EXAMPLE.com;transport=tls")) == std::vector<std::string>{"10.0.0.1", "10.0.0.2"});
  CHECK(hops(t.lookup("pool.a.example.com")) == std::vector<std::string>{"10.0.0.1", "10.0.0.2"});
  // The exact FQDN pattern beats the wildcard of its parent.
  CHECK(hops(t.lookup("lyncserver.example.com")) == std::vector<std::string>{"10.0.0.9"});
  CHECK(hops(t.lookup("x.lyncserver.example.com")) == std::vector<std::string>{"10.0.0.1", "10.0.0.2"});
  // A longer wildcard wins over a shorter one.
  CHECK(hops(t.lookup("ann@eu.example.com")) == std::vector<std::string>{"10.0.1.1"});
  CHECK(hops(t.lookup("fr.eu.example.com.")) == std::vector<std::string>{"10.0.1.1"});
  // Exact patterns match only the name itself.
  CHECK(hops(t.lookup("other.com")) == std::vector<std::string>{"10.0.2.1"});
  CHECK(t.lookup("sub.other.com").empty());
  CHECK(t.lookup("example.org").empty());
  CHECK(t.lookup("com").empty());
  CHECK(t.lookup("").empty());
  auto m = t.match("bob@example.com");
  REQUIRE(m);
  CHECK(m->pattern == ".com.example.*");
  CHECK(m->type == RouteType::Domain);
}

TEST_CASE("RT-3: same priority is ordered by weight (larger first), then id") {
  // Stored data never holds two routes with one priority for a pattern, but
  // the table does not depend on it.
  RouteTable t({route(7, ".com.example.*", "a.example.net", 1, 10), route(3, ".com.example.*", "b.example.net", 1, 50),
                route(2, ".com.example.*", "c.example.net", 1, 10), route(1, ".com.example.*", "d.example.net", 9, 99)});
  CHECK(hops(t.lookup("example.com")) ==
        std::vector<std::string>{"b.example.net", "c.example.net", "a.example.net", "d.example.net"});
}

TEST_CASE("RT-2: a default route, user routes before domain routes, bad routes ignored") {
  StaticRoute broken = route(9, ".com.example.*", "10.9.9.9", 1);
  broken.pattern = "example.com";  // not canonical: ignored
  RouteTable t({route(1, "*", "10.0.0.100", 1), route(2, ".com.example.*", "10.0.0.1", 1),
                route(3, "+1408*", "10.0.3.1", 1, 1, RouteType::User), route(4, "+14085551234", "10.0.3.2", 1, 1, RouteType::User),
                broken});
  CHECK(t.size() == 4);
  CHECK(hops(t.lookup("anything.example.net")) == std::vector<std::string>{"10.0.0.100"});
  CHECK(hops(t.lookup("x@example.com")) == std::vector<std::string>{"10.0.0.1"});
  CHECK(hops(t.lookup("+14085550000@example.com")) == std::vector<std::string>{"10.0.3.1"});
  CHECK(hops(t.lookup("sip:+14085551234@example.com")) == std::vector<std::string>{"10.0.3.2"});
  // Without a user part only domain routes apply.
  CHECK(hops(t.lookup("example.com")) == std::vector<std::string>{"10.0.0.1"});
  auto m = t.match("+14085550000@example.com");
  REQUIRE(m);
  CHECK(m->type == RouteType::User);
  CHECK(m->pattern == "+1408*");
}
