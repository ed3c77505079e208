// The session manager's delivery rules (RFC 6121 §8.5) and its error
// answers (RFC 6120 §8.3).
#include <doctest/doctest.h>
#include <fakes/fake_directory.h>

#include <imp/net/event_loop.h>
#include <imp/xcp_router/router.h>
#include <imp/xcp_router/session.h>
#include <imp/xmpp/ns.h>
#include <imp/xmpp/stanza.h>
#include <imp/xmpp/xml.h>

#include <chrono>
#include <map>
#include <utility>

using imp::xcp::Address;
using imp::xcp::RoutedStanza;
using imp::xcp::StanzaKind;
namespace ns = imp::xmpp::ns;

namespace {

struct Sink : imp::xcp::SessionSink {
  std::vector<RoutedStanza> got;
  void deliver(RoutedStanza s) override { got.push_back(std::move(s)); }
  void replaced() override {}
};

RoutedStanza stanza(StanzaKind kind, const std::string& from, const std::string& to, const std::string& type,
                    const std::string& xml) {
  imp::xmpp::Element el(std::string(imp::xcp::nameOf(kind)), std::string(ns::kClient));
  el.setAttr("from", from).setAttr("to", to).setAttr("id", "x1");
  if (!type.empty()) el.setAttr("type", type);
  if (!xml.empty()) el.addChild("body", std::string(ns::kClient)).addText(xml);
  RoutedStanza s;
  s.kind = kind;
  s.from = *Address::split(from);
  s.to = *Address::split(to);
  s.type = type;
  s.element = std::make_shared<const imp::xmpp::Element>(std::move(el));
  return s;
}

struct Fixture {
  imp::testing::FakeDirectory dir;
  imp::net::EventLoop loop;
  imp::xcp::Router router{"node-a", dir};
  imp::xcp::SessionManager sm{router, nullptr};
  std::shared_ptr<Sink> annPc = std::make_shared<Sink>(), annPhone = std::make_shared<Sink>(),
                        bob = std::make_shared<Sink>();
  Fixture() {
    dir.domains = {"example.com"};
    dir.licensed = {{"ann@example.com", "node-a"}, {"bob@example.com", "node-a"}};
    router.setLocalDomains({"example.com"});
    sm.attach();
    router.attachSession(*Address::split("ann@example.com/pc"), loop, annPc);
    router.attachSession(*Address::split("ann@example.com/phone"), loop, annPhone);
    router.attachSession(*Address::split("bob@example.com/x"), loop, bob);
  }
  // Initial presence of both of ann's resources (RFC 6121 §4.2), then the
  // sinks start empty.
  void annAvailable(int pcPriority = 0, int phonePriority = 0) {
    for (auto [res, prio] : {std::pair{"pc", pcPriority}, std::pair{"phone", phonePriority}}) {
      auto p = stanza(StanzaKind::Presence, std::string("ann@example.com/") + res, "ann@example.com", "", "");
      imp::xmpp::Element el = *p.element;
      el.removeChildren("body", ns::kClient);
      el.addChild("priority", std::string(ns::kClient)).addText(std::to_string(prio));
      p.element = std::make_shared<const imp::xmpp::Element>(std::move(el));
      router.route(std::move(p));
    }
    REQUIRE(loop.runUntil([&] { return sm.availableResources("ann@example.com").size() == 2 && annPhone->got.size() >= 1; },
                          std::chrono::seconds(5)));
    drain();
    annPc->got.clear();
    annPhone->got.clear();
  }
  void drain() {
    loop.runUntil([] { return false; }, std::chrono::milliseconds(0));
  }
};

}  // namespace

TEST_CASE("a message to a bare JID reaches every available resource of the highest priority (RFC 6121 §8.5.2.1.1)") {
  Fixture f;
  f.annAvailable();
  f.router.route(stanza(StanzaKind::Message, "bob@example.com/x", "ann@example.com", "chat", "hi"));
  REQUIRE(f.loop.runUntil([&] { return f.annPc->got.size() == 1 && f.annPhone->got.size() == 1; },
                          std::chrono::seconds(5)));
  CHECK(f.annPc->got[0].element->childText("body", ns::kClient) == "hi");
  CHECK(f.annPc->got[0].to.full() == "ann@example.com/pc");
  CHECK(f.annPhone->got[0].to.full() == "ann@example.com/phone");
  CHECK(f.sm.stats().toResources == 2);
}

TEST_CASE("priorities: only the highest non-negative ones get a bare-JID message (RFC 6121 §8.5.2.1.1)") {
  Fixture f;
  f.annAvailable(1, 5);
  f.router.route(stanza(StanzaKind::Message, "bob@example.com/x", "ann@example.com", "chat", "hi"));
  REQUIRE(f.loop.runUntil([&] { return f.annPhone->got.size() == 1; }, std::chrono::seconds(5)));
  f.drain();
  CHECK(f.annPc->got.empty());
  CHECK(f.sm.availableResources("ann@example.com") == std::map<std::string, int>{{"pc", 1}, {"phone", 5}});
}

TEST_CASE("only negative priorities: the user counts as offline for bare-JID messages (RFC 6121 §8.5.2.1.1)") {
  Fixture f;
  f.annAvailable(-1, -3);
  f.router.route(stanza(StanzaKind::Message, "bob@example.com/x", "ann@example.com", "chat", "hi"));
  REQUIRE(f.loop.runUntil([&] { return f.bob->got.size() == 1; }, std::chrono::seconds(5)));
  CHECK(f.bob->got[0].type == "error");  // no offline storage in this fixture
  CHECK(f.annPc->got.empty());
  CHECK(f.annPhone->got.empty());
}

TEST_CASE("unavailable ends a resource's availability; the others stay (RFC 6121 §4.5)") {
  Fixture f;
  f.annAvailable();
  f.router.route(stanza(StanzaKind::Presence, "ann@example.com/pc", "ann@example.com", "unavailable", ""));
  REQUIRE(f.loop.runUntil([&] { return f.annPhone->got.size() == 1; }, std::chrono::seconds(5)));
  CHECK(f.annPhone->got[0].type == "unavailable");
  CHECK(f.annPhone->got[0].from.full() == "ann@example.com/pc");
  CHECK(f.sm.availableResources("ann@example.com") == std::map<std::string, int>{{"phone", 0}});
}

TEST_CASE("a chat message to a resource not bound goes to the bare JID; groupchat gets an error (RFC 6121 §8.5.3.2.1)") {
  Fixture f;
  f.annAvailable();
  f.router.route(stanza(StanzaKind::Message, "bob@example.com/x", "ann@example.com/tablet", "chat", "hi"));
  REQUIRE(f.loop.runUntil([&] { return f.annPc->got.size() == 1 && f.annPhone->got.size() == 1; },
                          std::chrono::seconds(5)));
  f.router.route(stanza(StanzaKind::Message, "bob@example.com/x", "ann@example.com/tablet", "groupchat", "hi"));
  REQUIRE(f.loop.runUntil([&] { return f.bob->got.size() == 1; }, std::chrono::seconds(5)));
  const auto& err = *f.bob->got[0].element;
  CHECK(err.attrOr("type", "") == "error");
  CHECK(err.attrOr("to", "") == "bob@example.com/x");
  CHECK(err.attrOr("from", "") == "ann@example.com/tablet");
  REQUIRE(err.child("error", ns::kClient));
  CHECK(err.child("error", ns::kClient)->child("service-unavailable", ns::kStanzaErrors));
}

TEST_CASE("a message to an offline user is answered service-unavailable; an error never gets an error (RFC 6120 §8.3.1)") {
  Fixture f;
  f.dir.licensed["cy@example.com"] = "node-a";
  f.router.route(stanza(StanzaKind::Message, "bob@example.com/x", "cy@example.com", "chat", "hi"));
  REQUIRE(f.loop.runUntil([&] { return f.bob->got.size() == 1; }, std::chrono::seconds(5)));
  CHECK(f.bob->got[0].type == "error");
  CHECK(f.bob->got[0].element->child("error", ns::kClient)->child("service-unavailable", ns::kStanzaErrors));
  f.router.route(stanza(StanzaKind::Message, "bob@example.com/x", "cy@example.com", "error", "bounced"));
  f.drain();
  CHECK(f.bob->got.size() == 1);
  CHECK(f.sm.stats().bounced == 1);
  CHECK(f.sm.stats().droppedByRule == 1);
}

TEST_CASE("presence: directed to every available resource; to nobody, dropped by the rule and counted (RFC 6121 §8.5.2)") {
  Fixture f;
  f.annAvailable();
  f.router.route(stanza(StanzaKind::Presence, "bob@example.com/x", "ann@example.com", "", ""));
  REQUIRE(f.loop.runUntil([&] { return f.annPc->got.size() == 1 && f.annPhone->got.size() == 1; },
                          std::chrono::seconds(5)));
  f.dir.licensed["cy@example.com"] = "node-a";
  f.router.route(stanza(StanzaKind::Presence, "bob@example.com/x", "cy@example.com", "", ""));
  f.drain();
  CHECK(f.bob->got.empty());
  CHECK(f.sm.stats().droppedByRule == 1);
}

TEST_CASE("an iq to a resource not bound gets service-unavailable (RFC 6121 §8.5.3.2.3)") {
  Fixture f;
  f.router.route(stanza(StanzaKind::Iq, "bob@example.com/x", "ann@example.com/tablet", "get", ""));
  REQUIRE(f.loop.runUntil([&] { return f.bob->got.size() == 1; }, std::chrono::seconds(5)));
  CHECK(f.bob->got[0].element->name() == "iq");
  CHECK(f.bob->got[0].type == "error");
}
