// The routing decision as pure functions over plain data (FED-6, FED-7,
// RT-5; issue 15 deliverable 1): a fake directory and a plain route table,
// no protocol types.
#include <doctest/doctest.h>
#include <fakes/fake_directory.h>
#include <imp/directory/routing.h>

#include <map>
#include <set>

using namespace imp::directory;

namespace plain {

struct Route {
  std::string hop;
  std::string describe() const { return hop; }
};
enum class Type { Domain };
std::string_view nameOf(Type) { return "domain"; }
struct Match {
  std::string pattern;
  Type type = Type::Domain;
  std::vector<Route> routes;
};
// Routes by exact domain.
struct Table {
  using Route = plain::Route;
  std::map<std::string, std::vector<Route>> byDomain;
  std::optional<Match> match(std::string_view target) const {
    auto at = target.rfind('@');
    std::string d(at == std::string_view::npos ? target : target.substr(at + 1));
    auto it = byDomain.find(d);
    if (it == byDomain.end()) return std::nullopt;
    return Match{d, Type::Domain, it->second};
  }
};

}  // namespace plain

namespace {

// The directory these tests route against.
struct FakeDirectory : imp::testing::FakeDirectory {
  FakeDirectory() {
    domains = {"example.com"};
    licensed = {{"ann@example.com", "node-a"}, {"homeless@example.com", ""}};
    microsoftUris = {"bob@example.com"};
  }
};

plain::Table table() {
  plain::Table t;
  t.byDomain["example.com"] = {{"10.0.0.1"}, {"10.0.0.2"}};
  t.byDomain["partner.net"] = {{"10.9.0.1"}};
  return t;
}

Recipient user(std::string_view a) {
  auto r = recipientFromAddress(a);
  REQUIRE(r);
  return *r;
}

const FederationRouting kOff{false, false}, kBasic{true, false}, kAdvanced{true, true};

}  // namespace

TEST_CASE("recipients as plain data: user@domain lower-cased, a domain alone, bad input refused") {
  auto r = recipientFromAddress("Ann@EXAMPLE.com.");
  REQUIRE(r);
  CHECK(r->address == "ann@example.com");
  CHECK(r->domain == "example.com");
  auto parts = recipientFromParts("a@b", "Example.COM");  // an unescaped user part may hold '@'
  REQUIRE(parts);
  CHECK(parts->address == "a@b@example.com");
  CHECK(parts->domain == "example.com");
  CHECK(!recipientFromAddress("nobody"));
  CHECK(!recipientFromAddress("@example.com"));
  CHECK(!recipientFromAddress("ann@"));
  CHECK(!recipientFromAddress("an n@example.com"));
  CHECK(!recipientFromParts("ann", "exa\tmple.com"));
  auto d = recipientFromDomain("Example.com.");
  REQUIRE(d);
  CHECK(d->address.empty());
  CHECK(d->domain == "example.com");
  CHECK(!recipientFromDomain("."));
}

TEST_CASE("the decision matrix over plain values") {
  FakeDirectory dir;
  auto routes = table();

  auto ann = decideRoute(user("ann@example.com"), kAdvanced, dir, routes);
  CHECK(ann.kind == RouteKind::LocalUser);
  CHECK(ann.homeNode == "node-a");
  CHECK(ann.reason == "ann@example.com is a licensed IMP user homed on node node-a");
  CHECK(decideRoute(user("homeless@example.com"), kBasic, dir, routes).status == 480);

  auto off = decideRoute(user("carol@example.com"), kOff, dir, routes);
  CHECK(off.kind == RouteKind::Reject);
  CHECK(off.status == 404);
  CHECK(off.reason ==
        "carol@example.com is in local presence domain example.com but is not a licensed IMP user, and partitioned "
        "intradomain federation is disabled");

  auto basic = decideRoute(user("carol@example.com"), kBasic, dir, routes);
  CHECK(basic.kind == RouteKind::MicrosoftServer);
  REQUIRE(basic.routes.size() == 2);
  CHECK(basic.routes[0].hop == "10.0.0.1");
  CHECK(basic.reason ==
        "partitioned federation (basic routing): found domain route example.com for carol@example.com: 10.0.0.1, "
        "10.0.0.2");

  CHECK(decideRoute(user("carol@example.com"), kAdvanced, dir, routes).status == 404);
  CHECK(decideRoute(user("bob@example.com"), kAdvanced, dir, routes).kind == RouteKind::MicrosoftServer);
  auto loop = decideRoute(user("bob@example.com"), kAdvanced, dir, routes, true);
  CHECK(loop.status == 482);
  CHECK(loop.reason.find("(FED-7)") != std::string::npos);

  auto partner = decideRoute(user("dan@partner.net"), kOff, dir, routes);
  CHECK(partner.kind == RouteKind::StaticRoute);
  CHECK(partner.pattern == "partner.net");
  auto nowhere = decideRoute(user("eve@nowhere.org"), kBasic, dir, routes);
  CHECK(nowhere.status == 404);
  CHECK(nowhere.reason == "nowhere.org is not a local presence domain and no static route matches eve@nowhere.org");
  CHECK(nameOf(RouteKind::MicrosoftServer) == "microsoft_server");
}

TEST_CASE("Reasons::RejectsOnly: the same decisions, words only for a Reject") {
  FakeDirectory dir;
  auto routes = table();
  constexpr auto terse = Reasons::RejectsOnly;
  auto ann = decideRoute(user("ann@example.com"), kAdvanced, dir, routes, false, terse);
  CHECK(ann.kind == RouteKind::LocalUser);
  CHECK(ann.homeNode == "node-a");
  CHECK(ann.reason.empty());
  auto basic = decideRoute(user("carol@example.com"), kBasic, dir, routes, false, terse);
  CHECK(basic.kind == RouteKind::MicrosoftServer);
  CHECK(basic.routes.size() == 2);
  CHECK(basic.reason.empty());
  auto partner = decideRoute(user("dan@partner.net"), kOff, dir, routes, false, terse);
  CHECK(partner.kind == RouteKind::StaticRoute);
  CHECK(partner.reason.empty());
  auto domainOnly = decideRoute(Recipient{"", "partner.net"}, kOff, dir, routes, false, terse);
  CHECK(domainOnly.kind == RouteKind::StaticRoute);
  CHECK(domainOnly.reason.empty());
  // A Reject keeps its reason: it is the response's reason phrase.
  auto nowhere = decideRoute(user("eve@nowhere.org"), kBasic, dir, routes, false, terse);
  CHECK(nowhere.status == 404);
  CHECK(nowhere.reason == "nowhere.org is not a local presence domain and no static route matches eve@nowhere.org");
  auto loop = decideRoute(user("bob@example.com"), kAdvanced, dir, routes, true, terse);
  CHECK(loop.status == 482);
  CHECK(loop.reason.find("(FED-7)") != std::string::npos);
}

TEST_CASE("a domain alone: the Microsoft server with federation, else 404; other domains by static route") {
  FakeDirectory dir;
  auto routes = table();
  auto local = *recipientFromDomain("example.com");
  CHECK(decideRoute(local, kBasic, dir, routes).kind == RouteKind::MicrosoftServer);
  CHECK(decideRoute(local, kBasic, dir, routes, true).status == 482);
  auto off = decideRoute(local, kOff, dir, routes);
  CHECK(off.status == 404);
  CHECK(off.reason.find("IMP is no registrar") != std::string::npos);
  CHECK(decideRoute(*recipientFromDomain("partner.net"), kOff, dir, routes).kind == RouteKind::StaticRoute);
  CHECK(decideRoute(*recipientFromDomain("nowhere.org"), kOff, dir, routes).status == 404);
}

TEST_CASE("the recipient cache answers the same questions again, for one settings generation") {
  FakeDirectory dir;
  auto routes = table();
  RecipientCache cache;
  auto carol = user("carol@example.com");

  CachedRecipient seen;
  RecordingLookup recording(dir, seen);
  auto first = decideRoute(carol, kAdvanced, recording, routes);
  CHECK(first.status == 404);
  cache.remember(carol.address, seen, cache.epoch());
  REQUIRE(cache.find(carol.address));

  dir.calls = 0;
  CachedLookup cached(*cache.find(carol.address));
  auto again = decideRoute(carol, kAdvanced, cached, routes);
  CHECK(again.reason == first.reason);
  CHECK(dir.calls == 0);

  // basic mode asks nothing about the Microsoft URI: still answered; a
  // question not asked before is a miss
  CachedRecipient partial;
  partial.licensedHome = std::optional<std::string>{};
  CachedLookup missing(partial);
  CHECK_THROWS_AS(decideRoute(carol, kAdvanced, missing, routes), CacheMiss);
  CHECK(decideRoute(carol, kBasic, missing, routes).kind == RouteKind::MicrosoftServer);

  auto old = cache.epoch();
  cache.forget();
  CHECK(cache.find(carol.address) == nullptr);
  cache.remember(carol.address, seen, old);  // asked under the old generation: dropped
  CHECK(cache.size() == 0);
  cache.remember(carol.address, CachedRecipient{}, cache.epoch());  // nothing asked: nothing kept
  CHECK(cache.size() == 0);
}
