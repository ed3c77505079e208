// The stanza router's decision (issue 16, deliverable 7; FED-6, FED-7;
// RFC 6120 §8.3.3.19 service-unavailable, RFC 6121 §8.5).
#include <doctest/doctest.h>
#include <fakes/fake_directory.h>

#include <imp/net/event_loop.h>
#include <imp/net/worker_pool.h>
#include <imp/xcp_router/router.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

using imp::xcp::Address;
using imp::xcp::RoutedStanza;
using imp::xcp::RouteResult;
using imp::xcp::Router;
using imp::xcp::StanzaKind;

namespace {

Address jid(std::string_view s) {
  auto a = Address::split(s);
  REQUIRE(a.has_value());
  return *a;
}

RoutedStanza message(std::string_view from, std::string_view to, std::string type = "chat") {
  RoutedStanza s;
  s.kind = StanzaKind::Message;
  s.from = jid(from);
  s.to = jid(to);
  s.type = std::move(type);
  return s;
}

RoutedStanza presence(std::string_view from, std::string_view to, std::string type) {
  auto s = message(from, to, std::move(type));
  s.kind = StanzaKind::Presence;
  return s;
}

struct Recorder {
  std::vector<std::string> local;  // to.full() of what reached the local handler
  std::vector<std::pair<std::string, std::string>> bounced;  // to.full(), condition
  std::vector<std::string> bounceTexts;
  void attach(Router& r) {
    r.setLocalHandler([this](RoutedStanza s) { local.push_back(s.to.full()); });
    r.setBounceHandler([this](RoutedStanza s, std::string_view cond, std::string text) {
      bounced.emplace_back(s.to.full(), std::string(cond));
      bounceTexts.push_back(std::move(text));
    });
  }
};

struct FakeComponent : imp::xcp::Component {
  explicit FakeComponent(std::string n) : n_(std::move(n)) {}
  std::string_view name() const override { return n_; }
  void deliver(RoutedStanza s) override {
    std::lock_guard lock(mu);
    got.push_back(s.to.full());
    cv.notify_all();
  }
  std::string n_;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> got;
};

struct FakeSink : imp::xcp::SessionSink {
  void deliver(RoutedStanza s) override { got.push_back(s.to.full() + " " + s.type); }
  void replaced() override { ++replacedCalls; }
  std::vector<std::string> got;
  int replacedCalls = 0;
};

imp::testing::FakeDirectory directoryWithUsers() {
  imp::testing::FakeDirectory d;
  d.domains = {"example.com"};
  d.licensed = {{"ann@example.com", "node-a"}, {"bob@example.com", "node-b"}, {"cy@example.com", ""}};
  d.microsoftUris = {"lync.user@example.com"};
  return d;
}

// A router of node-a for example.com with the test directory, what it
// hands on recorded.
struct LocalRouter {
  imp::testing::FakeDirectory dir = directoryWithUsers();
  Router r{"node-a", dir};
  Recorder rec;
  LocalRouter() {
    r.setLocalDomains({"example.com"});
    rec.attach(r);
  }
};

imp::directory::FederationRouting federation(bool enabled, bool advanced) {
  imp::directory::FederationRouting f;
  f.enabled = enabled;
  f.advanced = advanced;
  return f;
}

}  // namespace

TEST_CASE("Address::split takes a normalised JID apart (RFC 7622 §3.1 shapes)") {
  auto a = jid("juliet@example.com/foo bar@baz/x");
  CHECK(a.local == "juliet");
  CHECK(a.domain == "example.com");
  CHECK(a.resource == "foo bar@baz/x");  // a resource may hold '@' and '/'
  CHECK(a.bare() == "juliet@example.com");
  CHECK(a.full() == "juliet@example.com/foo bar@baz/x");
  auto d = jid("example.com");
  CHECK(d.local.empty());
  CHECK(d.isBare());
  CHECK(d.bare() == "example.com");
  CHECK(jid("example.com/res").full() == "example.com/res");
  CHECK_FALSE(Address::split("").has_value());
  CHECK_FALSE(Address::split("@example.com").has_value());
  CHECK_FALSE(Address::split("juliet@").has_value());
  CHECK_FALSE(Address::split("juliet@example.com/").has_value());
  CHECK_FALSE(Address::split("a@b@example.com").has_value());
  CHECK_FALSE(Address::split("/res").has_value());
}

TEST_CASE("a stanza to a domain a component serves goes to that component") {
  auto dir = directoryWithUsers();
  Router r("node-a", dir);
  Recorder rec;
  rec.attach(r);
  auto muc = std::make_shared<FakeComponent>("muc");
  r.addDomainComponent("conference.example.com", muc);
  CHECK_THROWS_AS(r.addDomainComponent("conference.example.com", std::make_shared<FakeComponent>("other")),
                  std::invalid_argument);
  CHECK(r.route(message("ann@example.com/pc", "room@conference.example.com/nick")) == RouteResult::Component);
  REQUIRE(muc->got.size() == 1);
  CHECK(muc->got[0] == "room@conference.example.com/nick");
  CHECK(dir.calls == 0);  // no directory question for a component's domain
  r.removeComponent(*muc);
  CHECK(r.route(message("ann@example.com/pc", "room@conference.example.com")) == RouteResult::Bounced);
}

TEST_CASE("a full JID with a bound session is delivered on the session's loop") {
  auto dir = directoryWithUsers();
  imp::net::EventLoop loop;
  Router r("node-a", dir);
  r.setLocalDomains({"example.com"});
  Recorder rec;
  rec.attach(r);
  auto sink = std::make_shared<FakeSink>();
  CHECK(r.attachSession(jid("ann@example.com/pc"), loop, sink) == nullptr);
  CHECK(r.sessionCount() == 1);
  CHECK(r.resourcesOf("ann@example.com") == std::vector<std::string>{"pc"});
  CHECK(r.route(message("bob@example.com/x", "ann@example.com/pc")) == RouteResult::Session);
  CHECK(sink->got.empty());  // posted, not run inline
  CHECK(loop.runUntil([&] { return !sink->got.empty(); }, std::chrono::seconds(5)));
  CHECK(sink->got == std::vector<std::string>{"ann@example.com/pc chat"});
  CHECK(dir.calls == 0);

  SUBCASE("the bare JID and an unbound resource of an online user go to the session manager (RFC 6121 §8.5)") {
    CHECK(r.route(message("bob@example.com/x", "ann@example.com")) == RouteResult::Local);
    CHECK(r.route(message("bob@example.com/x", "ann@example.com/phone")) == RouteResult::Local);
    CHECK(rec.local == std::vector<std::string>{"ann@example.com", "ann@example.com/phone"});
    CHECK(dir.calls == 0);
  }
  SUBCASE("a session that closed before its loop ran the delivery hands the stanza back (IM-5)") {
    CHECK(r.route(message("bob@example.com/x", "ann@example.com/pc", "normal")) == RouteResult::Session);
    r.detachSession(jid("ann@example.com/pc"), *sink);
    CHECK(loop.runUntil([&] { return !rec.local.empty(); }, std::chrono::seconds(5)));
    CHECK(rec.local == std::vector<std::string>{"ann@example.com/pc"});
    CHECK(sink->got.size() == 1);
    CHECK(r.stats().staleSessions == 1);
  }
  SUBCASE("a new session for the same full JID replaces the old one, which is returned") {
    auto second = std::make_shared<FakeSink>();
    CHECK(r.attachSession(jid("ann@example.com/pc"), loop, second) == sink);
    r.detachSession(jid("ann@example.com/pc"), *sink);  // the old one's detach leaves the new one bound
    CHECK(r.sessionCount() == 1);
    CHECK(r.route(message("bob@example.com/x", "ann@example.com/pc")) == RouteResult::Session);
    CHECK(loop.runUntil([&] { return !second->got.empty(); }, std::chrono::seconds(5)));
    CHECK(sink->got.size() == 1);
  }
  SUBCASE("a stanza posted to a sink replaced meanwhile (XEP-0198 resumption) reaches the new one, in order") {
    CHECK(r.route(message("bob@example.com/x", "ann@example.com/pc", "normal")) == RouteResult::Session);
    auto resumed = std::make_shared<FakeSink>();
    r.attachSession(jid("ann@example.com/pc"), loop, resumed);
    CHECK(r.route(message("bob@example.com/x", "ann@example.com/pc", "headline")) == RouteResult::Session);
    CHECK(loop.runUntil([&] { return resumed->got.size() == 2; }, std::chrono::seconds(5)));
    CHECK(resumed->got == std::vector<std::string>{"ann@example.com/pc normal", "ann@example.com/pc headline"});
    CHECK(rec.local.empty());
    CHECK(sink->got.size() == 1);
  }
}

TEST_CASE("a subscription stanza of a local session goes to the session manager first, whatever the recipient (RFC 6121 §3)") {
  auto dir = directoryWithUsers();
  imp::net::EventLoop loop;
  Router r("node-a", dir);
  r.setLocalDomains({"example.com"});
  Recorder rec;
  rec.attach(r);
  auto muc = std::make_shared<FakeComponent>("gateway");
  r.addDomainComponent("gateway.example.com", muc);
  auto fcm = std::make_shared<FakeComponent>("federation-cm");
  r.addPredicateComponent(fcm, imp::xcp::microsoftUsers(), [] { return federation(true, false); });
  r.attachSession(jid("ann@example.com/pc"), loop, std::make_shared<FakeSink>());
  for (const char* type : {"subscribe", "subscribed", "unsubscribe", "unsubscribed"}) {
    CHECK(r.route(presence("ann@example.com/pc", "lync.user@example.com", type)) == RouteResult::Local);
    CHECK(r.route(presence("ann@example.com/pc", "x@elsewhere.org", type)) == RouteResult::Local);
    CHECK(r.route(presence("ann@example.com/pc", "gateway.example.com", type)) == RouteResult::Local);
  }
  CHECK(rec.local.size() == 12);
  CHECK(fcm->got.empty());
  CHECK(muc->got.empty());
  CHECK(rec.bounced.empty());
  // What the session manager routes on, and what is no session's own, is
  // routed to its recipient.
  auto processed = presence("ann@example.com", "lync.user@example.com", "subscribe");
  processed.outboundApplied = true;
  CHECK(r.route(processed) == RouteResult::Component);
  CHECK(r.route(presence("ann@example.com/gone", "lync.user@example.com", "subscribe")) == RouteResult::Component);
  CHECK(r.route(presence("ann@example.com/pc", "lync.user@example.com", "probe")) == RouteResult::Component);
  CHECK(r.route(message("ann@example.com/pc", "lync.user@example.com")) == RouteResult::Component);
  CHECK(fcm->got.size() == 4);
}

TEST_CASE("directed presence of a local session goes to the session manager first, whatever the recipient (RFC 6121 §4.6.3)") {
  auto dir = directoryWithUsers();
  imp::net::EventLoop loop;
  Router r("node-a", dir);
  r.setLocalDomains({"example.com"});
  Recorder rec;
  rec.attach(r);
  auto muc = std::make_shared<FakeComponent>("muc");
  r.addDomainComponent("conference.example.com", muc);
  r.attachSession(jid("ann@example.com/pc"), loop, std::make_shared<FakeSink>());
  CHECK(r.route(presence("ann@example.com/pc", "room@conference.example.com/ann", "")) == RouteResult::Local);
  CHECK(r.route(presence("ann@example.com/pc", "room@conference.example.com/ann", "unavailable")) ==
        RouteResult::Local);
  CHECK(muc->got.empty());
  auto processed = presence("ann@example.com/pc", "room@conference.example.com/ann", "");
  processed.outboundApplied = true;
  CHECK(r.route(processed) == RouteResult::Component);
  // Broadcast presence (to the user's own bare JID) and presence errors are
  // not directed presence.
  CHECK(r.route(presence("ann@example.com/pc", "room@conference.example.com/ann", "error")) ==
        RouteResult::Component);
  CHECK(r.route(presence("ann@example.com/pc", "ann@example.com", "")) == RouteResult::Local);
  CHECK(rec.local.size() == 3);
  CHECK(muc->got.size() == 2);
}

TEST_CASE("the block lists in memory match a JID in its XEP-0191 forms; a binding waits for the loader") {
  imp::xcp::BlockingRegistry b;
  CHECK_FALSE(b.blocks("ann@example.com", "bob@example.com/pc"));  // never loaded: nothing blocked
  b.set("ann@example.com", {"bob@example.com", "elsewhere.org", "cy@example.com/phone"});
  CHECK(b.blocks("ann@example.com", "bob@example.com"));
  CHECK(b.blocks("ann@example.com", "bob@example.com/pc"));  // a bare item blocks every resource
  CHECK(b.blocks("ann@example.com", "x@elsewhere.org/r"));    // a domain item blocks its users
  CHECK(b.blocks("ann@example.com", "elsewhere.org"));
  CHECK(b.blocks("ann@example.com", "cy@example.com/phone"));
  CHECK_FALSE(b.blocks("ann@example.com", "cy@example.com/pc"));  // a full item only that resource
  CHECK_FALSE(b.blocks("ann@example.com", "cy@example.com"));
  CHECK_FALSE(b.blocks("bob@example.com", "ann@example.com"));   // lists are per user
  b.set("ann@example.com", {});
  CHECK_FALSE(b.blocks("ann@example.com", "bob@example.com"));
  // Without a loader a refresh is done at once; with one, when it says so.
  int done = 0;
  b.refresh("ann@example.com", [&](bool ok) { done += ok ? 1 : 100; });
  CHECK(done == 1);
  std::function<void(bool)> later;
  b.setLoader([&](const std::string& bare, std::function<void(bool)> d) {
    b.set(bare, {"eve@example.com"});
    later = std::move(d);
  });
  b.refresh("ann@example.com", [&](bool ok) { done += ok ? 1 : 100; });
  CHECK(done == 1);
  CHECK(b.blocks("ann@example.com", "eve@example.com"));
  later(true);
  CHECK(done == 2);
}

TEST_CASE_FIXTURE(LocalRouter, "offline local users, users homed elsewhere and the server itself (directory decision)") {
  CHECK(r.route(message("bob@example.com/x", "ann@example.com")) == RouteResult::Local);
  CHECK(r.route(message("bob@example.com/x", "example.com")) == RouteResult::Local);
  CHECK(rec.local == std::vector<std::string>{"ann@example.com", "example.com"});

  CHECK(r.route(message("ann@example.com/x", "bob@example.com/pc")) == RouteResult::Bounced);
  CHECK(r.route(message("ann@example.com/x", "cy@example.com")) == RouteResult::Bounced);
  REQUIRE(rec.bounced.size() == 2);
  CHECK(rec.bounced[0] == std::make_pair(std::string("bob@example.com/pc"), std::string("service-unavailable")));
  CHECK(rec.bounceTexts[0] == "bob@example.com is homed on node node-b, which this node does not route to");
  CHECK(rec.bounced[1].second == "service-unavailable");
  CHECK(rec.bounceTexts[1] == "cy@example.com is a licensed IMP user but is not assigned to a node");
}

TEST_CASE_FIXTURE(LocalRouter, "the recipient cache: a local recipient is asked of the directory once per settings generation") {
  CHECK(r.route(presence("bob@example.com/x", "ann@example.com", "unavailable")) == RouteResult::Local);
  const int first = dir.calls;
  CHECK(first > 0);
  for (int i = 0; i < 3; ++i) {
    CHECK(r.route(presence("bob@example.com/x", "ann@example.com", "unavailable")) == RouteResult::Local);
    CHECK(r.route(message("ann@example.com/x", "bob@example.com/pc")) == RouteResult::Bounced);
  }
  const int afterBob = dir.calls;
  CHECK(r.route(message("ann@example.com/x", "bob@example.com/pc")) == RouteResult::Bounced);
  CHECK(dir.calls == afterBob);  // bob: asked once, then cached
  CHECK(r.stats().directoryCacheHits == 6);  // ann 3 times, bob 3 times after the first of each
  CHECK(rec.local.size() == 4);
  // A new settings generation (a directory change): asked again.
  dir.licensed["bob@example.com"] = "node-a";
  r.setLocalDomains({"example.com"});
  CHECK(r.route(message("ann@example.com/x", "bob@example.com")) == RouteResult::Local);
  CHECK(dir.calls > afterBob);
}

TEST_CASE_FIXTURE(LocalRouter, "at stop, presence waiting for a directory decision is dropped and counted; a message is still decided (IM-5)") {
  r.beginStop();
  CHECK(r.route(presence("bob@example.com/x", "ann@example.com", "unavailable")) == RouteResult::Dropped);
  CHECK(r.route(message("bob@example.com/x", "ann@example.com")) == RouteResult::Local);
  CHECK(rec.local == std::vector<std::string>{"ann@example.com"});
  CHECK(r.stats().droppedAtStop == 1);
}

TEST_CASE("partitioned federation: Microsoft users go to the component registered by predicate (FED-6)") {
  auto dir = directoryWithUsers();
  Router r("node-a", dir);
  r.setLocalDomains({"example.com"});
  Recorder rec;
  rec.attach(r);
  auto fcm = std::make_shared<FakeComponent>("federation-cm");
  auto settings = federation(true, false);
  r.addPredicateComponent(fcm, imp::xcp::microsoftUsers(), [&] { return settings; });

  SUBCASE("basic mode: any address of a local domain that is no licensed user") {
    CHECK(r.route(message("ann@example.com/pc", "lync.user@example.com")) == RouteResult::Component);
    CHECK(r.route(message("ann@example.com/pc", "other@example.com")) == RouteResult::Component);
    CHECK(fcm->got == std::vector<std::string>{"lync.user@example.com", "other@example.com"});
  }
  SUBCASE("advanced mode: only addresses with a Microsoft SIP URI in the directory") {
    settings = federation(true, true);
    CHECK(r.route(message("ann@example.com/pc", "lync.user@example.com")) == RouteResult::Component);
    CHECK(r.route(message("ann@example.com/pc", "other@example.com")) == RouteResult::Bounced);
    CHECK(fcm->got == std::vector<std::string>{"lync.user@example.com"});
    REQUIRE(rec.bounced.size() == 1);
    CHECK(rec.bounced[0].second == "service-unavailable");
    CHECK(rec.bounceTexts[0] ==
          "advanced routing: other@example.com is not a licensed IMP user and IMP's directory holds no Microsoft SIP "
          "URI for it");
  }
  SUBCASE("federation disabled: nothing goes to the component") {
    settings = federation(false, false);
    CHECK(r.route(message("ann@example.com/pc", "lync.user@example.com")) == RouteResult::Bounced);
    CHECK(fcm->got.empty());
  }
  SUBCASE("a licensed local user never goes to the component") {
    CHECK(r.route(message("bob@example.com/pc", "ann@example.com")) == RouteResult::Local);
    CHECK(fcm->got.empty());
  }
  SUBCASE("another domain is not the Microsoft server's: the predicate refuses it") {
    CHECK(r.route(message("ann@example.com/pc", "x@elsewhere.org")) == RouteResult::Bounced);
    CHECK(fcm->got.empty());
    CHECK(rec.bounced[0].second == "service-unavailable");
  }
}

TEST_CASE("nothing claims an address: service-unavailable (RFC 6120 §8.3.3.19)") {
  auto dir = directoryWithUsers();
  Router r("node-a", dir);
  Recorder rec;
  rec.attach(r);
  CHECK(r.route(message("ann@example.com/pc", "x@elsewhere.org")) == RouteResult::Bounced);
  CHECK(r.route(message("ann@example.com/pc", "nobody@example.com")) == RouteResult::Bounced);
  REQUIRE(rec.bounced.size() == 2);
  CHECK(rec.bounceTexts[0] == "elsewhere.org is not a local presence domain and no static route matches x@elsewhere.org");
  CHECK(rec.bounceTexts[1] ==
        "nobody@example.com is in local presence domain example.com but is not a licensed IMP user, and partitioned "
        "intradomain federation is disabled");
  CHECK(r.stats().bounced == 2);
}

TEST_CASE("with no session manager a local stanza is bounced, not dropped") {
  auto dir = directoryWithUsers();
  Router r("node-a", dir);
  std::vector<std::string> conditions;
  r.setBounceHandler([&](RoutedStanza, std::string_view c, std::string) { conditions.emplace_back(c); });
  CHECK(r.route(message("bob@example.com/x", "ann@example.com")) == RouteResult::Bounced);
  CHECK(conditions == std::vector<std::string>{"service-unavailable"});
}

TEST_CASE("a directory decision runs on the worker pool, never on the caller's thread") {
  auto dir = directoryWithUsers();
  imp::net::WorkerPool workers({"xcp-test", 1, 16});
  Router r("node-a", dir, &workers);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> local;
  bool onWorker = false;
  r.setLocalHandler([&](RoutedStanza s) {
    std::lock_guard lock(mu);
    onWorker = workers.inWorker();
    local.push_back(s.to.full());
    cv.notify_all();
  });
  CHECK(r.route(message("bob@example.com/x", "ann@example.com")) == RouteResult::Deferred);
  std::unique_lock lock(mu);
  CHECK(cv.wait_for(lock, std::chrono::seconds(10), [&] { return !local.empty(); }));
  CHECK(local == std::vector<std::string>{"ann@example.com"});
  CHECK(onWorker);
}

TEST_CASE("stanzas for one recipient keep their order through concurrent directory decisions (RFC 6121 §8, IM-5)") {
  auto dir = directoryWithUsers();
  imp::net::WorkerPool workers({"xcp-order", 2, 256});
  Router r("node-a", dir, &workers);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> got;
  r.setLocalHandler([&](RoutedStanza s) {
    std::lock_guard lock(mu);
    got.push_back(s.type);
    cv.notify_all();
  });
  constexpr int kCount = 100;
  for (int i = 0; i < kCount; ++i) r.route(message("bob@example.com/x", "ann@example.com", std::to_string(i)));
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return got.size() == kCount; }));
  }
  // The last job may still be in the router when the handler has run: the
  // workers finish before the router goes.
  workers.stop();
  for (int i = 0; i < kCount; ++i) CHECK(got[static_cast<std::size_t>(i)] == std::to_string(i));
}
