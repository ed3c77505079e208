// The session manager over the real stores on the fake database: roster
// iq and pushes (RFC 6121 §2), subscriptions with the privacy policy
// (§3, AV-1, PS-2), presence broadcast and probes (§4), the PS-1 contact
// limit, XEP-0191 polite blocking and offline messages (IM-5, XEP-0203).
// Strands run inline (no worker pool) unless a test says otherwise;
// deliveries arrive on the loop.
#include <doctest/doctest.h>
#include <fakes/fake_directory.h>

#include <imp/net/event_loop.h>
#include <imp/net/worker_pool.h>
#include <imp/xcp_router/offline_store.h>
#include <imp/xcp_router/presence_settings.h>
#include <imp/xcp_router/privacy_policy.h>
#include <imp/xcp_router/privacy_store.h>
#include <imp/xcp_router/roster_store.h>
#include <imp/xcp_router/router.h>
#include <imp/xcp_router/service.h>
#include <imp/xcp_router/session.h>
#include <imp/xmpp/ns.h>
#include <imp/xmpp/stanza.h>
#include <imp/xmpp/xml.h>

#include <chrono>
#include <sstream>

#include "store_fixture.h"

namespace doctest {
template <>
struct StringMaker<std::string_view> {
  static String convert(std::string_view v) { return String(v.data(), static_cast<unsigned>(v.size())); }
};
}  // namespace doctest

using namespace imp::xcp;
using imp::xmpp::Element;
namespace ns = imp::xmpp::ns;

namespace {

struct Sink : SessionSink {
  std::vector<RoutedStanza> got;
  void deliver(RoutedStanza s) override { got.push_back(std::move(s)); }
  void replaced() override {}
  // The stanzas of one kind (and type, when given) received so far.
  std::vector<const Element*> of(std::string_view name, std::string_view type = "*") const {
    std::vector<const Element*> v;
    for (const auto& s : got)
      if (s.element->name() == name && (type == "*" || s.element->attrOr("type", "") == type))
        v.push_back(s.element.get());
    return v;
  }
};

// A component taking what the router gives it (the federation connection
// manager's place).
struct Collector : Component {
  std::vector<RoutedStanza> got;
  std::string_view name() const override { return "federation-cm"; }
  void deliver(RoutedStanza s) override { got.push_back(std::move(s)); }
};

struct SmFixture : xcptest::StoreFixture {
  imp::testing::FakeDirectory dir;
  imp::net::EventLoop loop;
  Router router{"node-a", dir};
  PresenceSettingsStore settingsStore{db};
  LivePresenceSettings live{settingsStore};
  RosterStore roster{db};
  PrivacyStore decisions{db};
  BlockList blocks{db};
  OfflineStore offline{db};
  PrivacyPolicy policy{decisions, blocks, live};
  std::unique_ptr<SessionManager> sm;
  std::map<std::string, std::shared_ptr<Sink>> sinks;

  SmFixture() {
    live.reload();
    dir.domains = {"example.com"};
    dir.licensed = {{"ann@example.com", "node-a"}, {"bob@example.com", "node-a"}};
    router.setLocalDomains({"example.com"});
    sm = std::make_unique<SessionManager>(router, nullptr, nullptr, data());
    sm->attach();
  }
  SessionManagerData data() {
    return {&roster, &blocks, &policy, &offline, &live, [](const std::string& bare) -> std::optional<std::string> {
              if (bare == "ann@example.com") return "ann";
              if (bare == "bob@example.com") return "bob";
              return std::nullopt;
            }};
  }
  Sink& bind(const std::string& full) {
    auto s = std::make_shared<Sink>();
    sinks[full] = s;
    router.attachSession(*Address::split(full), loop, s);
    return *s;
  }
  void send(const std::string& from, Element el) {
    if (!el.attr("from")) el.setAttr("from", from);
    RoutedStanza s;
    s.kind = el.name() == "message" ? StanzaKind::Message : el.name() == "iq" ? StanzaKind::Iq : StanzaKind::Presence;
    s.from = *Address::split(from);
    auto to = el.attr("to");
    s.to = *Address::split(to ? std::string(*to) : Address::split(from)->bare());
    s.type = std::string(el.attrOr("type", ""));
    s.element = std::make_shared<const Element>(std::move(el));
    router.route(std::move(s));
    drain();
  }
  void drain() { loop.runUntil([] { return false; }, std::chrono::milliseconds(0)); }
  void setSettings(PresenceSettingsUpdate u) {
    settingsStore.update(u);
    live.reload();
  }
};

Element presence(std::string_view to = {}, std::string_view type = {}) {
  Element p("presence", std::string(ns::kClient));
  if (!to.empty()) p.setAttr("to", to);
  if (!type.empty()) p.setAttr("type", type);
  return p;
}

Element rosterSet(const std::string& jid, const std::string& extra = {}, const std::string& id = "r1") {
  Element iq("iq", std::string(ns::kClient));
  iq.setAttr("type", "set").setAttr("id", id);
  auto& item = iq.addChild("query", std::string(ns::kRoster)).addChild("item", std::string(ns::kRoster));
  item.setAttr("jid", jid);
  if (extra == "remove") item.setAttr("subscription", "remove");
  else if (!extra.empty()) item.addChild("group", std::string(ns::kRoster)).addText(extra);
  return iq;
}

Element rosterGet(const std::string& ver = "-") {
  Element iq("iq", std::string(ns::kClient));
  iq.setAttr("type", "get").setAttr("id", "g1");
  auto& q = iq.addChild("query", std::string(ns::kRoster));
  if (ver != "-") q.setAttr("ver", ver);
  return iq;
}

Element message(const std::string& to, const std::string& body) {
  Element m("message", std::string(ns::kClient));
  m.setAttr("to", to).setAttr("type", "chat");
  m.addChild("body", std::string(ns::kClient)).addText(body);
  return m;
}

}  // namespace

TEST_CASE_FIXTURE(SmFixture, "roster set, get and versioned get; pushes to the interested resources (RFC 6121 §2)") {
  auto& pc = bind("ann@example.com/pc");
  auto& phone = bind("ann@example.com/phone");
  send("ann@example.com/pc", rosterGet());
  send("ann@example.com/pc", rosterSet("bob@example.com", "Team"));
  auto results = pc.of("iq", "result");
  REQUIRE(results.size() == 2);
  auto pushes = pc.of("iq", "set");
  REQUIRE(pushes.size() == 1);  // only pc asked for the roster
  CHECK(phone.of("iq").empty());
  const Element* item = pushes[0]->child("query", ns::kRoster)->child("item", ns::kRoster);
  CHECK(item->attrOr("jid", "") == "bob@example.com");
  CHECK(item->attrOr("subscription", "") == "none");
  CHECK(item->childText("group", ns::kRoster) == "Team");
  std::string ver(pushes[0]->child("query", ns::kRoster)->attrOr("ver", ""));
  CHECK(ver != "");
  // §2.6.3: the client's version is current: an empty result.
  pc.got.clear();
  send("ann@example.com/pc", rosterGet(ver));
  REQUIRE(pc.of("iq", "result").size() == 1);
  CHECK(pc.of("iq", "result")[0]->child("query", ns::kRoster) == nullptr);
  // remove: result and a push with subscription='remove' (§2.5)
  pc.got.clear();
  send("ann@example.com/pc", rosterSet("bob@example.com", "remove"));
  REQUIRE(pc.of("iq", "set").size() == 1);
  CHECK(pc.of("iq", "set")[0]->child("query", ns::kRoster)->child("item", ns::kRoster)->attrOr("subscription", "") ==
        "remove");
  // removing it again: item-not-found (§2.5.3)
  pc.got.clear();
  send("ann@example.com/pc", rosterSet("bob@example.com", "remove"));
  REQUIRE(pc.of("iq", "error").size() == 1);
  CHECK(pc.of("iq", "error")[0]->child("error", ns::kClient)->child("item-not-found", ns::kStanzaErrors));
}

TEST_CASE_FIXTURE(SmFixture, "unavailable while still connected keeps the resource interested in roster pushes (RFC 6121 §2.1.6, §4.5.1)") {
  auto& pc = bind("ann@example.com/pc");
  send("ann@example.com/pc", rosterGet());
  send("ann@example.com/pc", presence());
  send("ann@example.com/pc", presence({}, "unavailable"));
  CHECK(sm->availableResources("ann@example.com").empty());
  pc.got.clear();
  send("ann@example.com/pc", rosterSet("bob@example.com", "Team"));
  CHECK(pc.of("iq", "result").size() == 1);
  CHECK(pc.of("iq", "set").size() == 1);  // the push: pc is still an interested resource
  // Available again: a broadcast like any initial presence, no second interest needed.
  send("ann@example.com/pc", presence());
  CHECK(sm->availableResources("ann@example.com") == std::map<std::string, int>{{"pc", 0}});
}

TEST_CASE_FIXTURE(SmFixture, "PS-1: a roster add beyond the contact limit is policy-violation/modify naming the limit") {
  setSettings({.maxContacts = 1});
  auto& pc = bind("ann@example.com/pc");
  send("ann@example.com/pc", rosterSet("bob@example.com"));
  send("ann@example.com/pc", rosterSet("carol@example.com", {}, "r2"));
  auto errors = pc.of("iq", "error");
  REQUIRE(errors.size() == 1);
  const Element* err = errors[0]->child("error", ns::kClient);
  CHECK(err->attrOr("type", "") == "modify");
  CHECK(err->child("policy-violation", ns::kStanzaErrors));
  CHECK(err->childText("text", ns::kStanzaErrors).value_or("").find('1') != std::string::npos);
  setSettings({.maxContacts = 0});  // live: no restart
  pc.got.clear();
  send("ann@example.com/pc", rosterSet("carol@example.com", {}, "r3"));
  CHECK(pc.of("iq", "error").empty());
  CHECK(roster.get("ann").items.size() == 2);
}

TEST_CASE_FIXTURE(SmFixture, "auto-approval: subscribed on the user's behalf, then the user's presence (PS-2, RFC 6121 §3.1.5)") {
  auto& ann = bind("ann@example.com/pc");
  auto& bob = bind("bob@example.com/pc");
  send("bob@example.com/pc", presence());
  send("ann@example.com/pc", presence());
  send("ann@example.com/pc", presence("bob@example.com", "subscribe"));
  REQUIRE(ann.of("presence", "subscribed").size() == 1);
  CHECK(ann.of("presence", "subscribed")[0]->attrOr("from", "") == "bob@example.com");
  bool bobsPresence = false;
  for (const auto* p : ann.of("presence", ""))
    if (p->attrOr("from", "") == "bob@example.com/pc") bobsPresence = true;
  CHECK(bobsPresence);
  CHECK(bob.of("presence", "subscribe").empty());  // never prompted
  CHECK(std::string(toString(roster.item("ann", "bob@example.com")->state.subscription)) == "to");
  CHECK(std::string(toString(roster.item("bob", "ann@example.com")->state.subscription)) == "from");
  // bob's later presence reaches ann, his subscriber (§4.4.2)
  ann.got.clear();
  Element p = presence();
  p.addChild("status", std::string(ns::kClient)).addText("away a bit");
  send("bob@example.com/pc", p);
  bool got = false;
  for (const auto* q : ann.of("presence", ""))
    if (q->childText("status", ns::kClient) == "away a bit") got = true;
  CHECK(got);
  // a probe at ann's next login is answered from bob's last presence (§4.3.2)
  auto& ann2 = bind("ann@example.com/phone");
  send("ann@example.com/phone", presence());
  got = false;
  for (const auto* q : ann2.of("presence", ""))
    if (q->attrOr("from", "") == "bob@example.com/pc" && q->childText("status", ns::kClient) == "away a bit") got = true;
  CHECK(got);
}

TEST_CASE_FIXTURE(SmFixture, "auto-approval off: the prompt waits for the next login; denial ends pending out (RFC 6121 §3.1.3, §3.2)") {
  setSettings({.autoApprove = false});
  auto& ann = bind("ann@example.com/pc");
  send("ann@example.com/pc", presence());
  send("ann@example.com/pc", presence("bob@example.com", "subscribe"));
  CHECK(ann.of("presence", "subscribed").empty());
  CHECK(roster.item("ann", "bob@example.com")->state.pendingOut);
  // bob logs in: the request is delivered after his initial presence
  auto& bob = bind("bob@example.com/pc");
  send("bob@example.com/pc", presence());
  REQUIRE(bob.of("presence", "subscribe").size() == 1);
  CHECK(bob.of("presence", "subscribe")[0]->attrOr("from", "") == "ann@example.com");
  send("bob@example.com/pc", presence("ann@example.com", "unsubscribed"));
  REQUIRE(ann.of("presence", "unsubscribed").size() == 1);
  auto item = roster.item("ann", "bob@example.com");
  CHECK(std::string(toString(item->state.subscription)) == "none");
  CHECK_FALSE(item->state.pendingOut);
  // the denial is remembered: a new request is politely blocked (AV-1)
  send("ann@example.com/pc", presence("bob@example.com", "subscribe"));
  CHECK(bob.of("presence", "subscribe").size() == 1);
  CHECK(sm->stats().politeBlocks == 1);
}

TEST_CASE_FIXTURE(SmFixture, "an approval taken back (cancelled pre-approval, revoked subscription) is not applied to the next request (PS-2, RFC 6121 §3.2, §3.4)") {
  setSettings({.autoApprove = false});
  auto& ann = bind("ann@example.com/pc");
  auto& bob = bind("bob@example.com/pc");
  send("ann@example.com/pc", presence());
  send("bob@example.com/pc", presence());
  SUBCASE("pre-approval cancelled") {
    send("bob@example.com/pc", presence("ann@example.com", "subscribed"));  // §3.4: pre-approves ann
    CHECK(roster.item("bob", "ann@example.com")->state.preApproved);
    send("bob@example.com/pc", presence("ann@example.com", "unsubscribed"));  // and takes it back
  }
  SUBCASE("subscription revoked") {
    send("ann@example.com/pc", presence("bob@example.com", "subscribe"));
    REQUIRE(bob.of("presence", "subscribe").size() == 1);
    send("bob@example.com/pc", presence("ann@example.com", "subscribed"));  // approves the prompt
    REQUIRE(ann.of("presence", "subscribed").size() == 1);
    send("bob@example.com/pc", presence("ann@example.com", "unsubscribed"));  // §3.2: revokes it
    REQUIRE(ann.of("presence", "unsubscribed").size() == 1);
  }
  ann.got.clear();
  bob.got.clear();
  send("ann@example.com/pc", presence("bob@example.com", "subscribe"));
  CHECK(bob.of("presence", "subscribe").size() == 1);  // bob is asked again
  CHECK(ann.of("presence", "subscribed").empty());      // not approved on the old answer
  CHECK(!decisions.decision("bob", "ann@example.com"));
}

TEST_CASE_FIXTURE(SmFixture, "XEP-0191: blocking a subscriber sends it unavailable and keeps the broadcast from it") {
  auto& ann = bind("ann@example.com/pc");
  auto& bob = bind("bob@example.com/pc");
  send("ann@example.com/pc", presence());
  send("bob@example.com/pc", presence());
  send("bob@example.com/pc", presence("ann@example.com", "subscribe"));  // auto-approved
  REQUIRE(roster.item("ann", "bob@example.com")->state.hasFrom());
  Element get("iq", std::string(ns::kClient));
  get.setAttr("type", "get").setAttr("id", "b0").addChild("blocklist", std::string(ns::kBlocking));
  send("ann@example.com/pc", get);
  Element block("iq", std::string(ns::kClient));
  block.setAttr("type", "set").setAttr("id", "b1");
  block.addChild("block", std::string(ns::kBlocking)).addChild("item", std::string(ns::kBlocking)).setAttr(
      "jid", "bob@example.com");
  bob.got.clear();
  send("ann@example.com/pc", block);
  REQUIRE(bob.of("presence", "unavailable").size() == 1);
  CHECK(bob.of("presence", "unavailable")[0]->attrOr("from", "") == "ann@example.com/pc");
  CHECK(ann.of("iq", "set").size() >= 1);  // the block push
  bob.got.clear();
  send("ann@example.com/pc", presence());
  CHECK(bob.of("presence").empty());
  CHECK(bob.of("message").empty());  // never an error
  CHECK(blocks.list("ann") == std::vector<std::string>{"bob@example.com"});
}

TEST_CASE_FIXTURE(SmFixture, "IM-5: a message to an offline user is stored and delivered in order after initial presence, with a delay") {
  bind("ann@example.com/pc");
  send("ann@example.com/pc", message("bob@example.com", "one"));
  send("ann@example.com/pc", message("bob@example.com", "two"));
  CHECK(offline.count("bob") == 2);
  auto& bob = bind("bob@example.com/pc");
  CHECK(bob.of("message").empty());  // bound, not yet available
  send("bob@example.com/pc", presence());
  auto msgs = bob.of("message");
  REQUIRE(msgs.size() == 2);
  CHECK(msgs[0]->childText("body", ns::kClient) == "one");
  CHECK(msgs[1]->childText("body", ns::kClient) == "two");
  CHECK(msgs[0]->attrOr("from", "") == "ann@example.com/pc");
  REQUIRE(msgs[0]->child("delay", ns::kDelay));
  CHECK(!msgs[0]->child("delay", ns::kDelay)->attrOr("stamp", "").empty());
  CHECK(offline.count("bob") == 0);
}

TEST_CASE_FIXTURE(SmFixture, "IM-5: storage full is resource-constraint/wait back to the sender, with the quota in the text") {
  setSettings({.offlineQuota = 1});
  auto& ann = bind("ann@example.com/pc");
  send("ann@example.com/pc", message("bob@example.com", "one"));
  send("ann@example.com/pc", message("bob@example.com", "two"));
  auto errors = ann.of("message", "error");
  REQUIRE(errors.size() == 1);
  const Element* err = errors[0]->child("error", ns::kClient);
  CHECK(err->attrOr("type", "") == "wait");
  CHECK(err->child("resource-constraint", ns::kStanzaErrors));
  CHECK(offline.count("bob") == 1);
}

TEST_CASE_FIXTURE(SmFixture, "the end of a session is unavailable to the subscribers and to directed-presence recipients (RFC 6121 §4.6.3)") {
  auto& ann = bind("ann@example.com/pc");
  auto& bob = bind("bob@example.com/pc");
  send("bob@example.com/pc", presence());
  send("ann@example.com/pc", presence());
  send("ann@example.com/pc", presence("bob@example.com"));  // directed, no subscription
  REQUIRE(bob.of("presence", "").size() >= 1);
  bob.got.clear();
  router.detachSession(*Address::split("ann@example.com/pc"), ann);
  send("ann@example.com/pc", presence("", "unavailable"));  // what c2s routes when the stream ends
  REQUIRE(bob.of("presence", "unavailable").size() == 1);
  CHECK(sm->availableResources("ann@example.com").empty());
}

TEST_CASE_FIXTURE(SmFixture, "subscription stanzas to a contact of another server update the roster and push it before they are routed on (RFC 6121 §3.1.2, §3.2.2, §3.3.2, §3.4)") {
  auto fcm = std::make_shared<Collector>();
  router.addPredicateComponent(fcm, microsoftUsers(), [] {
    imp::directory::FederationRouting f;
    f.enabled = true;  // basic mode: lync.user@example.com is a Microsoft user (FED-6)
    return f;
  });
  auto& pc = bind("ann@example.com/pc");
  send("ann@example.com/pc", rosterGet());
  const std::string lync = "lync.user@example.com";
  // The one roster push since the last call: its item.
  auto pushed = [&]() -> std::optional<Element> {
    auto pushes = pc.of("iq", "set");
    REQUIRE(pushes.size() == 1);
    Element item = *pushes[0]->child("query", ns::kRoster)->child("item", ns::kRoster);
    pc.got.clear();
    return item;
  };
  pc.got.clear();
  // §3.1.2: the request is recorded (ask='subscribe'), pushed, then routed
  // with the user's bare JID.
  send("ann@example.com/pc", presence(lync, "subscribe"));
  CHECK(roster.item("ann", lync)->state.pendingOut);
  CHECK(pushed()->attrOr("ask", "") == "subscribe");
  REQUIRE(fcm->got.size() == 1);
  CHECK(fcm->got[0].type == "subscribe");
  CHECK(fcm->got[0].from.full() == "ann@example.com");
  CHECK(fcm->got[0].element->attrOr("from", "") == "ann@example.com");
  // The contact's answer comes in from the component (A.3.3).
  send(lync, presence("ann@example.com", "subscribed"));
  CHECK(pushed()->attrOr("subscription", "") == "to");
  // §3.4: "subscribed" with no request pending is a pre-approval: stored,
  // pushed, not routed.
  send("ann@example.com/pc", presence(lync, "subscribed"));
  CHECK(roster.item("ann", lync)->state.preApproved);
  CHECK(pushed()->attrOr("approved", "") == "true");
  CHECK(fcm->got.size() == 1);
  // The contact's request meets the pre-approval: answered for the user.
  send(lync, presence("ann@example.com", "subscribe"));
  CHECK(pushed()->attrOr("subscription", "") == "both");
  REQUIRE(fcm->got.size() == 2);
  CHECK(fcm->got[1].type == "subscribed");
  // §3.2.2: the user cancels the contact's subscription.
  send("ann@example.com/pc", presence(lync, "unsubscribed"));
  CHECK(pushed()->attrOr("subscription", "") == "to");
  REQUIRE(fcm->got.size() == 3);
  CHECK(fcm->got[2].type == "unsubscribed");
  CHECK(fcm->got[2].from.full() == "ann@example.com");
  // §3.3.2: the user unsubscribes from the contact's presence.
  send("ann@example.com/pc", presence(lync, "unsubscribe"));
  CHECK(pushed()->attrOr("subscription", "") == "none");
  REQUIRE(fcm->got.size() == 4);
  CHECK(fcm->got[3].type == "unsubscribe");
  // A contact nothing routes to: the roster still records the request, the
  // stanza is bounced (a presence is not answered with an error).
  auto bounced = router.stats().bounced;
  send("ann@example.com/pc", presence("someone@elsewhere.example", "subscribe"));
  CHECK(roster.item("ann", "someone@elsewhere.example")->state.pendingOut);
  CHECK(pushed()->attrOr("ask", "") == "subscribe");
  CHECK(router.stats().bounced == bounced + 1);
  CHECK(fcm->got.size() == 4);
}

TEST_CASE_FIXTURE(SmFixture, "IM-5: the offline queue gauge follows what is stored and delivered, from its base at start") {
  setSettings({.offlineQuota = 2});
  CHECK(sm->stats().offlineQueued == 0);
  bind("ann@example.com/pc");
  send("ann@example.com/pc", message("bob@example.com", "one"));
  send("ann@example.com/pc", message("bob@example.com", "two"));
  send("ann@example.com/pc", message("bob@example.com", "three"));  // over the quota: refused, not counted
  CHECK(offline.count("bob") == 2);
  CHECK(sm->stats().offlineQueued == 2);
  auto& bob = bind("bob@example.com/pc");
  send("bob@example.com/pc", presence());
  CHECK(bob.of("message").size() == 2);
  CHECK(sm->stats().offlineQueued == 0);
  // A session manager that starts with messages already stored for its
  // node's users counts from there (OfflineStore::totalOnNode, service.cpp).
  SessionManagerData d{&roster, &blocks, &policy, &offline, &live, nullptr, 7};
  SessionManager restarted(router, nullptr, nullptr, std::move(d));
  CHECK(restarted.stats().offlineQueued == 7);
}

TEST_CASE_FIXTURE(SmFixture, "IM-5: a message handed back after delivery from storage keeps the delay of its first storage (XEP-0203)") {
  bind("ann@example.com/pc");
  send("ann@example.com/pc", message("bob@example.com", "one"));
  db.exec("UPDATE xcp_offline_message SET stamp = ?", {std::string("2020-01-02 03:04:05.000")});
  auto& bob = bind("bob@example.com/pc");
  send("bob@example.com/pc", presence());
  RoutedStanza delivered;
  for (const auto& s : bob.got)
    if (s.element->name() == "message") delivered = s;
  REQUIRE(delivered.element);
  REQUIRE(delivered.element->children("delay", ns::kDelay).size() == 1);
  CHECK(delivered.element->child("delay", ns::kDelay)->attrOr("stamp", "") == "2020-01-02T03:04:05Z");
  // The session ends before its client had the message: the connection
  // manager hands it back (C2sStream::handBack) and it is stored again.
  router.detachSession(*Address::split("bob@example.com/pc"), bob);
  send("bob@example.com/pc", presence("", "unavailable"));
  RoutedStanza back = delivered;
  back.to = *Address::split(std::string(delivered.element->attrOr("to", "")));
  router.deliverToSession(std::move(back));
  drain();
  REQUIRE(offline.count("bob") == 1);
  auto& phone = bind("bob@example.com/phone");
  send("bob@example.com/phone", presence());
  auto msgs = phone.of("message");
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0]->childText("body", ns::kClient) == "one");
  auto delays = msgs[0]->children("delay", ns::kDelay);
  REQUIRE(delays.size() == 1);
  CHECK(delays[0]->attrOr("stamp", "") == "2020-01-02T03:04:05Z");
  CHECK(delays[0]->attrOr("from", "") == "example.com");
}

TEST_CASE_FIXTURE(SmFixture, "directed presence is recorded for non-subscribers only, whatever the recipient, and cleared by directed unavailable (RFC 6121 §4.6.3)") {
  auto fcm = std::make_shared<Collector>();
  router.addPredicateComponent(fcm, microsoftUsers(), [] {
    imp::directory::FederationRouting f;
    f.enabled = true;
    return f;
  });
  auto muc = std::make_shared<Collector>();
  router.addDomainComponent("conference.example.com", muc);
  auto& ann = bind("ann@example.com/pc");
  auto& bob = bind("bob@example.com/pc");
  send("bob@example.com/pc", presence());
  send("ann@example.com/pc", presence());
  send("bob@example.com/pc", presence("ann@example.com", "subscribe"));  // auto-approved: bob is a subscriber
  REQUIRE(roster.item("ann", "bob@example.com")->state.hasFrom());
  bob.got.clear();
  // Rule 1: to a subscriber (its full JID): delivered, not recorded.
  send("ann@example.com/pc", presence("bob@example.com/pc"));
  CHECK(bob.of("presence", "").size() == 1);
  // Rule 2: to a Microsoft user and to a room of a domain component: routed
  // with the full JID, recorded.
  send("ann@example.com/pc", presence("lync.user@example.com"));
  send("ann@example.com/pc", presence("room@conference.example.com/ann"));
  REQUIRE(fcm->got.size() == 1);
  CHECK(fcm->got[0].from.full() == "ann@example.com/pc");
  CHECK(fcm->got[0].type == "");
  REQUIRE(muc->got.size() == 1);
  // Directed unavailable clears the record: the room hears nothing more.
  send("ann@example.com/pc", presence("room@conference.example.com/ann", "unavailable"));
  REQUIRE(muc->got.size() == 2);
  CHECK(muc->got[1].type == "unavailable");
  // ann cancels bob's subscription: bob hears "unavailable" now (§3.2.2).
  bob.got.clear();
  send("ann@example.com/pc", presence("bob@example.com", "unsubscribed"));
  CHECK(bob.of("presence", "unavailable").size() == 1);
  // The session ends (what c2s routes): the Microsoft user hears it because
  // of the record; bob, neither a subscriber nor recorded, and the room,
  // whose record was cleared, hear nothing.
  bob.got.clear();
  router.detachSession(*Address::split("ann@example.com/pc"), ann);
  send("ann@example.com/pc", presence("", "unavailable"));
  CHECK(bob.of("presence", "unavailable").empty());
  REQUIRE(fcm->got.size() == 2);
  CHECK(fcm->got[1].type == "unavailable");
  CHECK(fcm->got[1].from.full() == "ann@example.com/pc");
  CHECK(muc->got.size() == 2);
}

TEST_CASE_FIXTURE(SmFixture, "directed presence of a resource that is not available is followed by unavailable when it ends (RFC 6121 §4.6.3 rule 3)") {
  auto muc = std::make_shared<Collector>();
  router.addDomainComponent("conference.example.com", muc);
  auto& ann = bind("ann@example.com/pc");
  send("ann@example.com/pc", presence("room@conference.example.com/ann"));  // no initial presence
  REQUIRE(muc->got.size() == 1);
  CHECK(sm->availableResources("ann@example.com").empty());
  router.detachSession(*Address::split("ann@example.com/pc"), ann);
  send("ann@example.com/pc", presence("", "unavailable"));
  REQUIRE(muc->got.size() == 2);
  CHECK(muc->got[1].type == "unavailable");
  CHECK(muc->got[1].to.full() == "room@conference.example.com/ann");
}

TEST_CASE_FIXTURE(SmFixture, "an entity given directed presence that subscribes meanwhile hears the end of the session once (RFC 6121 §4.6.3, §4.5.2)") {
  auto& ann = bind("ann@example.com/pc");
  auto& bob = bind("bob@example.com/pc");
  send("bob@example.com/pc", presence());
  send("ann@example.com/pc", presence());
  send("ann@example.com/pc", presence("bob@example.com/pc"));  // bob is no subscriber yet: recorded
  send("bob@example.com/pc", presence("ann@example.com", "subscribe"));  // auto-approved: now one
  REQUIRE(roster.item("ann", "bob@example.com")->state.hasFrom());
  bob.got.clear();
  router.detachSession(*Address::split("ann@example.com/pc"), ann);
  send("ann@example.com/pc", presence("", "unavailable"));
  CHECK(bob.of("presence", "unavailable").size() == 1);
}

TEST_CASE_FIXTURE(SmFixture, "XEP-0191 §3.3: a message from a blocked JID is answered service-unavailable, online or offline; §3.4: unblocked, it flows again") {
  auto blockingIq = [](std::string_view what, const std::string& jid, const std::string& id) {
    Element iq("iq", std::string(ns::kClient));
    iq.setAttr("type", "set").setAttr("id", id);
    iq.addChild(std::string(what), std::string(ns::kBlocking)).addChild("item", std::string(ns::kBlocking)).setAttr(
        "jid", jid);
    return iq;
  };
  auto serviceUnavailable = [](const Sink& s) {
    auto errors = s.of("message", "error");
    return errors.size() == 1 && errors[0]->child("error", ns::kClient)->child("service-unavailable", ns::kStanzaErrors) &&
           !errors[0]->child("error", ns::kClient)->child("text", ns::kStanzaErrors);
  };
  auto& ann = bind("ann@example.com/pc");
  auto& bob = bind("bob@example.com/pc");
  send("ann@example.com/pc", presence());
  send("ann@example.com/pc", blockingIq("block", "bob@example.com", "b1"));
  ann.got.clear();
  // Online: nothing reaches ann; bob hears what he would from an offline user.
  send("bob@example.com/pc", message("ann@example.com", "hi"));
  CHECK(ann.of("message").empty());
  CHECK(serviceUnavailable(bob));
  CHECK(sm->stats().blocked == 1);
  // Offline: not stored.
  bob.got.clear();
  router.detachSession(*Address::split("ann@example.com/pc"), ann);
  send("ann@example.com/pc", presence("", "unavailable"));
  send("bob@example.com/pc", message("ann@example.com", "are you there?"));
  CHECK(serviceUnavailable(bob));
  CHECK(offline.count("ann") == 0);
  // A list that is not in memory (ann not logged in since the node
  // started): the store decides before the message is stored.
  bob.got.clear();
  router.blocking().set("ann@example.com", {});
  send("bob@example.com/pc", message("ann@example.com", "and now?"));
  CHECK(serviceUnavailable(bob));
  CHECK(offline.count("ann") == 0);
  // §3.4: unblocked, bob's messages are delivered again.
  auto& phone = bind("ann@example.com/phone");
  send("ann@example.com/phone", presence());
  send("ann@example.com/phone", blockingIq("unblock", "bob@example.com", "u1"));
  bob.got.clear();
  send("bob@example.com/pc", message("ann@example.com", "hello again"));
  REQUIRE(phone.of("message").size() == 1);
  CHECK(phone.of("message")[0]->childText("body", ns::kClient) == "hello again");
  CHECK(bob.of("message", "error").empty());
}

namespace {

// The one <error/> of an error stanza, with its condition and type.
bool isError(const Element& stanza, std::string_view condition, std::string_view type) {
  const Element* err = stanza.child("error", ns::kClient);
  return stanza.attrOr("type", "") == "error" && err && err->attrOr("type", "") == type &&
         err->child(condition, ns::kStanzaErrors);
}

}  // namespace

TEST_CASE_FIXTURE(SmFixture, "a roster get failing on the database is answered internal-server-error/wait (RFC 6120 §8.3.3.5)") {
  auto& pc = bind("ann@example.com/pc");
  SUBCASE("strands on the worker pool") {
    imp::net::WorkerPool workers({"sm-fail", 1, 16});
    auto pooled = std::make_shared<SessionManager>(router, nullptr, &workers, data());
    pooled->attach();
    db.failNextOperations(1);  // the roster read
    send("ann@example.com/pc", rosterGet());
    REQUIRE(loop.runUntil([&] { return !pc.of("iq").empty(); }, std::chrono::seconds(5)));
    REQUIRE(pc.of("iq", "error").size() == 1);
    const Element& err = *pc.of("iq", "error")[0];
    CHECK(err.attrOr("id", "") == "g1");
    CHECK(err.attrOr("to", "") == "ann@example.com/pc");
    CHECK(isError(err, "internal-server-error", "wait"));
    CHECK(pooled->stats().failedJobs == 1);
    // The next request is served.
    pc.got.clear();
    send("ann@example.com/pc", rosterGet());
    REQUIRE(loop.runUntil([&] { return !pc.of("iq").empty(); }, std::chrono::seconds(5)));
    CHECK(pc.of("iq", "result").size() == 1);
    CHECK(pooled->drain(std::chrono::seconds(5)));
    pooled->stop();
    sm->attach();  // the router's handlers outlive `pooled`
  }
  SUBCASE("strands inline") {
    db.failNextOperations(1);
    send("ann@example.com/pc", rosterGet());
    REQUIRE(pc.of("iq", "error").size() == 1);
    CHECK(isError(*pc.of("iq", "error")[0], "internal-server-error", "wait"));
    CHECK(sm->stats().failedJobs == 1);
  }
}

TEST_CASE_FIXTURE(SmFixture, "a subscription request failing on the database is answered with a presence error (RFC 6120 §8.3.3.5)") {
  auto& bob = bind("bob@example.com/x");
  bind("ann@example.com/pc");
  db.failNextOperations(1);
  send("bob@example.com/x", presence("ann@example.com", "subscribe"));
  auto errors = bob.of("presence", "error");
  REQUIRE(errors.size() == 1);
  CHECK(isError(*errors[0], "internal-server-error", "wait"));
  CHECK(errors[0]->attrOr("from", "") == "ann@example.com");
  CHECK(sm->stats().failedJobs == 1);
}

TEST_CASE_FIXTURE(SmFixture, "a blocked JID the store refuses is answered with the store's condition, type modify (XEP-0191 §3.3)") {
  auto& pc = bind("ann@example.com/pc");
  Element block("iq", std::string(ns::kClient));
  block.setAttr("type", "set").setAttr("id", "b1");
  block.addChild("block", std::string(ns::kBlocking)).addChild("item", std::string(ns::kBlocking)).setAttr(
      "jid", std::string(700, 'x') + "@example.com");  // a valid JID, longer than the store keeps
  send("ann@example.com/pc", block);
  auto errors = pc.of("iq", "error");
  REQUIRE(errors.size() == 1);
  CHECK(isError(*errors[0], "not-acceptable", "modify"));
  CHECK(blocks.list("ann").empty());
}

// ---- Changes written by the bulk jobs (MG-7, MG-9): pushes and probes ----

namespace {

std::vector<BulkResult> importIn(imp::core::Database& db, RosterStore& r, const std::vector<BulkContact>& batch) {
  std::vector<BulkResult> out;
  db.transaction([&](imp::core::DbSession& s) { out = r.importContacts(s, batch, PresenceSettings{}); });
  return out;
}

RenameResult renameIn(imp::core::Database& db, RosterStore& r, const std::string& oldJid, const std::string& newJid) {
  RenameResult out;
  db.transaction([&](imp::core::DbSession& s) { out = r.renameContact(s, oldJid, newJid); });
  return out;
}

// The roster pushes a resource got: jid, subscription, ver, groups.
struct Push {
  std::string jid, subscription, ver, groups;
  friend bool operator==(const Push&, const Push&) = default;
  friend std::ostream& operator<<(std::ostream& o, const Push& p) {
    return o << p.jid << " " << p.subscription << " ver " << p.ver << " [" << p.groups << "]";
  }
};

}  // namespace

namespace doctest {
template <>
struct StringMaker<std::vector<Push>> {
  static String convert(const std::vector<Push>& v) {
    std::ostringstream o;
    for (const auto& p : v) o << "{" << p << "} ";
    return String(o.str().c_str());
  }
};
}  // namespace doctest

namespace {

std::vector<Push> pushesOf(const Sink& s) {
  std::vector<Push> out;
  for (const auto* iq : s.of("iq", "set")) {
    const Element* q = iq->child("query", ns::kRoster);
    if (!q) continue;
    const Element* item = q->child("item", ns::kRoster);
    std::string groups;
    for (const auto* g : item->children("group", ns::kRoster)) groups += (groups.empty() ? "" : ",") + g->text();
    out.push_back({std::string(item->attrOr("jid", "")), std::string(item->attrOr("subscription", "")),
                   std::string(q->attrOr("ver", "")), groups});
  }
  return out;
}

}  // namespace

TEST_CASE_FIXTURE(SmFixture, "MG-7 / MG-9: what a bulk job wrote is pushed to the interested resources in version order (RFC 6121 §2.1.6, §2.6)") {
  auto& pc = bind("ann@example.com/pc");
  auto& phone = bind("ann@example.com/phone");  // never asked for the roster
  send("ann@example.com/pc", rosterGet());
  pc.got.clear();
  const std::string lync = "lync.user@example.com";
  auto res = importIn(db, roster, {{"ann", "ann@example.com", "bob@example.com", "bob", "Bob", {"Team"}},
                                   {"ann", "ann@example.com", lync, "", "", {}}});
  // Given in any order, pushed in version order, each with its own version.
  CHECK(sm->pushRosterChanges("ann@example.com", {*res[1].ownerItem, *res[0].ownerItem}, res[1].ownerVersion));
  drain();
  CHECK(pushesOf(pc) == std::vector<Push>{{"bob@example.com", "to", "1", "Team"}, {lync, "to", "2", ""}});
  CHECK(phone.of("iq").empty());
  // bob has no session here: nothing to push ("not notified").
  CHECK_FALSE(sm->pushRosterChanges("bob@example.com", {*res[0].contactItem}, res[0].contactVersion));
  drain();

  // MG-9: the removal and the addition share the version; the first push
  // carries one less, so a client that loses the second asks again for both.
  pc.got.clear();
  auto rn = renameIn(db, roster, lync, "jsmith@example.com");
  REQUIRE(rn.changed.size() == 1);
  const auto& c = rn.changed[0];
  CHECK(c.version == 3);
  CHECK(sm->pushRosterChanges("ann@example.com", {c.removedOld, c.added}, c.version));
  drain();
  CHECK(pushesOf(pc) == std::vector<Push>{{lync, "remove", "2", ""}, {"jsmith@example.com", "to", "3", ""}});

  // The user changes the item after the job's commit, before its pushes run:
  // the pushes are what the store holds since the job's first change, not
  // the job's older item.
  send("ann@example.com/pc", rosterSet("jsmith@example.com", "Friends"));  // version 4, pushed by itself
  pc.got.clear();
  CHECK(sm->pushRosterChanges("ann@example.com", {c.removedOld, c.added}, c.version));
  drain();
  CHECK(pushesOf(pc) == std::vector<Push>{{lync, "remove", "3", ""}, {"jsmith@example.com", "to", "4", "Friends"}});
}

TEST_CASE_FIXTURE(SmFixture, "MG-7: the probe for an imported contact is the login's probe: a Microsoft contact's goes to federation-cm, a local contact answers (RFC 6121 §4.3)") {
  auto fcm = std::make_shared<Collector>();
  router.addPredicateComponent(fcm, microsoftUsers(), [] {
    imp::directory::FederationRouting f;
    f.enabled = true;  // basic mode: lync.*@example.com are Microsoft users (FED-6)
    return f;
  });
  const std::string lync = "lync.user@example.com", other = "lync.other@example.com";
  // The probe ann's login sends for a contact with "to", to compare with.
  roster.setSubscription("ann", other, SubscriptionState{Subscription::To}, std::nullopt, PresenceSettings{});
  auto& pc = bind("ann@example.com/pc");
  send("ann@example.com/pc", presence());
  REQUIRE(fcm->got.size() == 1);
  const RoutedStanza login = fcm->got[0];
  CHECK(login.type == "probe");
  fcm->got.clear();

  sm->probeContact("ann@example.com", lync);
  drain();
  REQUIRE(fcm->got.size() == 1);
  const auto& p = fcm->got[0];
  CHECK(p.type == "probe");
  CHECK(p.from.full() == "ann@example.com");  // the bare JID: federation-cm subscribes only for these
  CHECK(p.to.full() == lync);
  Element same = *p.element;
  same.setAttr("to", other);
  CHECK(same.serialize(ns::kClient) == login.element->serialize(ns::kClient));

  // A local contact with ann as a subscriber (the import's reverse side)
  // answers from its available resource.
  auto& bob = bind("bob@example.com/pc");
  Element away = presence();
  away.addChild("show", std::string(ns::kClient)).addText("away");
  send("bob@example.com/pc", away);
  importIn(db, roster, {{"ann", "ann@example.com", "bob@example.com", "bob", "", {}}});
  pc.got.clear();
  sm->probeContact("ann@example.com", "bob@example.com");
  drain();
  bool got = false;
  for (const auto* q : pc.of("presence", ""))
    if (q->attrOr("from", "") == "bob@example.com/pc" && q->childText("show", ns::kClient) == "away") got = true;
  CHECK(got);
  CHECK(bob.of("presence", "probe").empty());  // answered by the server, not shown to bob
  CHECK(fcm->got.size() == 1);
}

TEST_CASE_FIXTURE(SmFixture, "XcpRuntime: pushRoster, probe and reloadBlockList reach the session manager; no-ops while the router is stopped") {
  XcpRuntime rt;
  auto& pc = bind("ann@example.com/pc");
  send("ann@example.com/pc", rosterGet());
  send("ann@example.com/pc", presence());
  pc.got.clear();
  auto res = importIn(db, roster, {{"ann", "ann@example.com", "bob@example.com", "bob", "", {}}});
  CHECK_FALSE(rt.pushRoster("ann@example.com", {*res[0].ownerItem}, res[0].ownerVersion));
  drain();
  rt.probe("ann@example.com", "bob@example.com");
  drain();
  CHECK_FALSE(rt.reloadBlockList("ann@example.com"));
  drain();
  CHECK(pc.got.empty());

  // Non-owning pointers: the fixture owns the router and the session manager.
  rt.setRouter(std::shared_ptr<Router>(std::shared_ptr<Router>{}, &router),
               std::shared_ptr<SessionManager>(std::shared_ptr<SessionManager>{}, sm.get()));
  CHECK(rt.pushRoster("ann@example.com", {*res[0].ownerItem}, res[0].ownerVersion));
  drain();
  CHECK(pushesOf(pc) == std::vector<Push>{{"bob@example.com", "to", "1", ""}});
  auto& bob = bind("bob@example.com/pc");
  send("bob@example.com/pc", presence());
  pc.got.clear();
  rt.probe("ann@example.com", "bob@example.com");
  drain();
  bool got = false;
  for (const auto* q : pc.of("presence", ""))
    if (q->attrOr("from", "") == "bob@example.com/pc") got = true;
  CHECK(got);

  // MG-9 rewrote ann's block list: the copy in memory follows once reloaded.
  blocks.block("ann", {"old.id@remote.example"});
  router.blocking().set("ann@example.com", blocks.list("ann"));
  auto rn = renameIn(db, roster, "old.id@remote.example", "new.id@remote.example");
  CHECK(rn.blockOwners == std::vector<std::string>{"ann"});
  CHECK_FALSE(router.blocking().blocks("ann@example.com", "new.id@remote.example"));
  CHECK(rt.reloadBlockList("ann@example.com"));
  drain();
  CHECK(router.blocking().blocks("ann@example.com", "new.id@remote.example"));
  CHECK_FALSE(router.blocking().blocks("ann@example.com", "old.id@remote.example"));
  bob.got.clear();
  CHECK_FALSE(rt.reloadBlockList("carol@example.com"));
  drain();  // no session on this node

  rt.setRouter(nullptr, nullptr);
  pc.got.clear();
  CHECK_FALSE(rt.pushRoster("ann@example.com", {*res[0].ownerItem}, res[0].ownerVersion));
  drain();
  rt.probe("ann@example.com", "bob@example.com");
  drain();
  CHECK(pc.got.empty());
}
