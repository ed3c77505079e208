// The routing decision matrix (FED-6, FED-7, FED-8, RT-5) over a fake
// directory, and the partitioned-federation loop marker.
#include <doctest/doctest.h>
#include <fakes/fake_directory.h>
#include <imp/sip/message.h>
#include <imp/sip/parser.h>
#include <imp/sip_proxy/routing.h>

#include <map>
#include <set>

using namespace imp::sip_proxy;
using Kind = RoutingDecision::Kind;

namespace {

using imp::testing::FakeDirectory;

StaticRoute route(std::int64_t id, const std::string& pattern, const std::string& hop, int priority) {
  StaticRoute r;
  r.id = id;
  r.pattern = pattern;
  r.type = RouteType::Domain;
  r.nextHop = hop;
  r.priority = priority;
  return r;
}

struct World {
  FakeDirectory dir;
  RouteTable routes;
  World() {
    dir.domains = {"example.com", "native-only.org"};
    dir.licensed = {{"ann@example.com", "node-a"}, {"homeless@example.com", ""}};
    dir.microsoftUris = {"bob@example.com"};
    // Microsoft server for example.com (primary and backup), and a remote
    // domain reached by ordinary static routing.
    routes = RouteTable({route(1, ".com.example.*", "10.0.0.2", 2), route(2, ".com.example.*", "10.0.0.1", 1),
                         route(3, ".net.partner.*", "10.9.0.1", 1)});
  }
};

FederationSettings federation(bool enabled, RoutingMode mode = RoutingMode::Basic) {
  FederationSettings f;
  f.enabled = enabled;
  f.routingMode = mode;
  return f;
}

std::vector<std::string> hops(const RoutingDecision& d) {
  std::vector<std::string> out;
  for (const auto& r : d.routes) out.push_back(r.nextHop);
  return out;
}

}  // namespace

TEST_CASE("licensed local users stay on IMP, whatever the federation settings") {
  World w;
  for (auto f : {federation(false), federation(true), federation(true, RoutingMode::Advanced)}) {
    auto d = decideRoute("ann@example.com", f, w.dir, w.routes);
    CHECK(d.kind == Kind::LocalUser);
    CHECK(d.homeNode == "node-a");
    CHECK(d.routes.empty());
    CHECK(d.reason == "ann@example.com is a licensed IMP user homed on node node-a");
  }
  auto d = decideRoute("sip:ANN@Example.COM", federation(true), w.dir, w.routes);
  CHECK(d.kind == Kind::LocalUser);
  auto h = decideRoute("homeless@example.com", federation(true), w.dir, w.routes);
  CHECK(h.kind == Kind::Reject);
  CHECK(h.status == 480);
  CHECK(h.reason == "homeless@example.com is a licensed IMP user but is not assigned to a node");
}

TEST_CASE("basic mode: a local domain's unlicensed recipient goes to the Microsoft server by static route") {
  World w;
  for (const char* who : {"bob@example.com", "carol@example.com", "sip:carol@example.com"}) {
    auto d = decideRoute(who, federation(true), w.dir, w.routes);
    CHECK(d.kind == Kind::MicrosoftServer);
    CHECK(hops(d) == std::vector<std::string>{"10.0.0.1", "10.0.0.2"});
    CHECK(d.pattern == ".com.example.*");
  }
  auto d = decideRoute("carol@example.com", federation(true), w.dir, w.routes);
  CHECK(d.reason ==
        "partitioned federation (basic routing): found domain route .com.example.* for carol@example.com: "
        "10.0.0.1:5061;TLS priority 1 weight 1, 10.0.0.2:5061;TLS priority 2 weight 1");
  // A local domain without a static route to the Microsoft server: 404.
  auto none = decideRoute("dave@native-only.org", federation(true), w.dir, w.routes);
  CHECK(none.kind == Kind::Reject);
  CHECK(none.status == 404);
  CHECK(none.reason ==
        "dave@native-only.org belongs to the Microsoft server (basic routing) but there is no static route for "
        "native-only.org");
}

TEST_CASE("advanced mode: only recipients with a Microsoft SIP URI go to the Microsoft server") {
  World w;
  auto bob = decideRoute("bob@example.com", federation(true, RoutingMode::Advanced), w.dir, w.routes);
  CHECK(bob.kind == Kind::MicrosoftServer);
  CHECK(hops(bob) == std::vector<std::string>{"10.0.0.1", "10.0.0.2"});
  CHECK(bob.reason.rfind("partitioned federation (advanced routing): found domain route", 0) == 0);
  auto carol = decideRoute("carol@example.com", federation(true, RoutingMode::Advanced), w.dir, w.routes);
  CHECK(carol.kind == Kind::Reject);
  CHECK(carol.status == 404);
  CHECK(carol.routes.empty());
  CHECK(carol.reason ==
        "advanced routing: carol@example.com is not a licensed IMP user and IMP's directory holds no Microsoft SIP URI "
        "for it");
  // A Microsoft URI but no static route: still 404.
  w.dir.microsoftUris.insert("erin@native-only.org");
  auto erin = decideRoute("erin@native-only.org", federation(true, RoutingMode::Advanced), w.dir, w.routes);
  CHECK(erin.kind == Kind::Reject);
  CHECK(erin.status == 404);
  CHECK(erin.reason.find("(advanced routing) but there is no static route for native-only.org") != std::string::npos);
}

TEST_CASE("federation disabled: 404 without consulting routes or Microsoft URIs") {
  World w;
  for (auto mode : {RoutingMode::Basic, RoutingMode::Advanced}) {
    w.dir.calls = 0;
    auto d = decideRoute("bob@example.com", federation(false, mode), w.dir, w.routes);
    CHECK(d.kind == Kind::Reject);
    CHECK(d.status == 404);
    CHECK(d.routes.empty());
    CHECK(d.pattern.empty());
    CHECK(d.reason ==
          "bob@example.com is in local presence domain example.com but is not a licensed IMP user, and partitioned "
          "intradomain federation is disabled");
    CHECK(w.dir.calls == 2);  // domain + licence; never the Microsoft URI
  }
}

TEST_CASE("other domains: ordinary static routing, or 404 when unknown everywhere") {
  World w;
  for (auto f : {federation(false), federation(true), federation(true, RoutingMode::Advanced)}) {
    auto d = decideRoute("pat@sales.partner.net", f, w.dir, w.routes);
    CHECK(d.kind == Kind::StaticRoute);
    CHECK(hops(d) == std::vector<std::string>{"10.9.0.1"});
    CHECK(d.pattern == ".net.partner.*");
    auto u = decideRoute("x@unknown.example.org", f, w.dir, w.routes);
    CHECK(u.kind == Kind::Reject);
    CHECK(u.status == 404);
    CHECK(u.reason == "unknown.example.org is not a local presence domain and no static route matches x@unknown.example.org");
  }
}

TEST_CASE("FED-7: a request IMP sent to the Microsoft server that comes back is a loop (482)") {
  World w;
  auto d = decideRoute("carol@example.com", federation(true), w.dir, w.routes, true);
  CHECK(d.kind == Kind::Reject);
  CHECK(d.status == 482);
  CHECK(d.routes.empty());
  CHECK(d.reason.rfind("loop detected: carol@example.com was already sent to the Microsoft server", 0) == 0);
  // Marked, but now a licensed local user: delivered, not a loop.
  CHECK(decideRoute("ann@example.com", federation(true), w.dir, w.routes, true).kind == Kind::LocalUser);
  // Marked, advanced mode, no Microsoft URI: the ordinary 404.
  CHECK(decideRoute("carol@example.com", federation(true, RoutingMode::Advanced), w.dir, w.routes, true).status == 404);
}

TEST_CASE("recipients that are not user@domain are refused") {
  World w;
  for (const char* bad : {"example.com", "@example.com", "bob@", "tel:+14085551234", "a b@example.com"}) {
    auto d = decideRoute(bad, federation(true), w.dir, w.routes);
    CHECK(d.kind == Kind::Reject);
    CHECK(d.status == 400);
  }
  CHECK(nameOf(Kind::MicrosoftServer) == "microsoft_server");
  CHECK(nameOf(Kind::StaticRoute) == "static_route");
}

// A Request-URI without a user part is a valid address (RFC 4475 escnull,
// regaut01, cparam01...): routed by its domain, never refused as malformed.
TEST_CASE("domain-only recipients are routed by their domain") {
  World w;
  // A remote domain: its static route, or 404 naming the domain.
  auto remote = decideRoute("sip:partner.net", federation(true), w.dir, w.routes);
  CHECK(remote.kind == Kind::StaticRoute);
  CHECK(remote.pattern == ".net.partner.*");
  auto none = decideRoute("sip:registrar.nowhere.org", federation(true), w.dir, w.routes);
  CHECK(none.kind == Kind::Reject);
  CHECK(none.status == 404);
  CHECK(none.reason == "registrar.nowhere.org is not a local presence domain and no static route matches it");
  // A local presence domain shared with the Microsoft server: there with
  // federation on (FED-6); 404 saying IMP is no registrar otherwise.
  auto shared = decideRoute("sips:Example.COM", federation(true), w.dir, w.routes);
  CHECK(shared.kind == Kind::MicrosoftServer);
  REQUIRE(shared.routes.size() == 2);
  CHECK(shared.routes[0].nextHop == "10.0.0.1");
  auto off = decideRoute("sip:example.com", federation(false), w.dir, w.routes);
  CHECK(off.status == 404);
  CHECK(off.reason.find("no registrar") != std::string::npos);
  auto unrouted = decideRoute("sip:native-only.org", federation(true), w.dir, w.routes);
  CHECK(unrouted.status == 404);
  CHECK(unrouted.reason.find("no static route") != std::string::npos);
  CHECK(decideRoute("sip:example.com", federation(true), w.dir, w.routes, true).status == 482);  // FED-7
}

namespace {

imp::sip::Message parse(const std::string& text) {
  auto r = imp::sip::Parser().parseDatagram(text);
  REQUIRE(std::holds_alternative<imp::sip::Message>(r));
  return std::get<imp::sip::Message>(r);
}

std::string subscribe(const std::string& extraVia, const std::string& extraHeaders) {
  return "SUBSCRIBE sip:carol@example.com SIP/2.0\r\n"
         "Via: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKlync1\r\n" +
         extraVia +
         "Max-Forwards: 68\r\n"
         "From: <sip:ann@example.com>;tag=a1\r\n"
         "To: <sip:carol@example.com>\r\n"
         "Call-ID: loop-1@imp\r\n"
         "CSeq: 1 SUBSCRIBE\r\n"
         "Event: presence\r\n" +
         extraHeaders + "Content-Length: 0\r\n\r\n";
}

}  // namespace

TEST_CASE("FED-7/FED-8: the outbound marker and its detection") {
  const std::vector<std::string> cluster = {"node-a", "node-b"};
  CHECK(federationViaParam("node-a") == ";imp-pf=node-a");

  // Our own Via with the marker parameter, below the Microsoft server's Via.
  auto viaLoop = parse(subscribe("Via: SIP/2.0/TLS 10.0.0.10:5061;branch=z9hG4bKimp1;imp-pf=node-b\r\n", ""));
  CHECK(carriesOwnFederationMarker(viaLoop, cluster));
  CHECK_FALSE(carriesOwnFederationMarker(viaLoop, {"node-x"}));

  // Only the header survived.
  auto headerLoop = parse(subscribe("", "X-IMP-PF: node-a\r\n"));
  CHECK(carriesOwnFederationMarker(headerLoop, cluster));
  CHECK(isFederationRequest(headerLoop));

  // Another IMP cluster's marker is not ours.
  auto foreign = parse(subscribe("Via: SIP/2.0/TLS 10.7.0.1;branch=z9hG4bKother;imp-pf=far-node\r\n",
                                 "x-imp-pf: far-node\r\n"));
  CHECK_FALSE(carriesOwnFederationMarker(foreign, cluster));

  auto plain = parse(subscribe("", "User-Agent: UCCAPI/15.0\r\n"));
  CHECK_FALSE(carriesOwnFederationMarker(plain, cluster));
  CHECK_FALSE(isFederationRequest(plain));

  // markFederationRequest() produces a request the detector recognises.
  auto out = parse(subscribe("", "User-Agent: IMP/0.1\r\n"));
  markFederationRequest(out, "node-b");
  CHECK(out.header(imp::sip::HeaderId::UserAgent) == std::optional<std::string_view>("IMP partitioned-federation"));
  CHECK(out.header("X-IMP-PF") == std::optional<std::string_view>("node-b"));
  CHECK(isFederationRequest(out));
  auto back = parse(out.serialize());
  CHECK(carriesOwnFederationMarker(back, cluster));
}
