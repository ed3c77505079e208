// The federation connection manager's database side on the fake database
// (tests/support): the subscription store (AV-3) and the per-domain peer
// types (deliverable 6); and the gateway's SIP-to-XMPP helpers.
#include <doctest/doctest.h>
#include <imp/federation_cm/peer_store.h>
#include <imp/federation_cm/subscription_store.h>
#include <imp/sip/message.h>
#include <imp/testing/fake_database.h>
#include <imp/testing/store_checks.h>

#include "../src/gateway_impl.h"

#include <set>
#include <string>

using namespace imp::fcm;
using imp::testing::FakeDatabase;

namespace {

StoredSubscription row(bool outgoing, std::string native, std::string remote, std::string state) {
  StoredSubscription s;
  s.outgoing = outgoing;
  s.nativeJid = std::move(native);
  s.remoteUri = std::move(remote);
  s.state = std::move(state);
  s.callId = "c1@node-a";
  s.localTag = "lt";
  s.remoteTag = "rt";
  s.remoteTarget = "sip:bob@10.0.0.5:5061;transport=tls";
  s.routeSet = {"<sip:127.0.0.1:5060;transport=tcp;lr>", "<sip:pool.example.com:5061;transport=tls;lr;ms-key-info=x>"};
  s.localCseq = 7;
  s.remoteCseq = 3;
  s.expiresAt = 1893456000;
  return s;
}

struct Db {
  FakeDatabase db;
  Db() { db.migrate(); }
};

}  // namespace

TEST_CASE_FIXTURE(Db, "AV-3: a saved subscription comes back whole, dialog and route set included") {
  {
    SubscriptionStore store(db, "node-a", nullptr);
    store.save(row(true, "ann@example.com", "sip:bob@example.com", "active"));
    store.save(row(false, "ann@example.com", "sip:carol@example.com", "offline-shown"));
    store.stop();
    CHECK(store.writeFailures() == 0);
  }
  SubscriptionStore store(db, "node-a", nullptr);
  auto rows = store.load();
  REQUIRE(rows.size() == 2);
  const auto& out = rows[0].outgoing ? rows[0] : rows[1];
  const auto& in = rows[0].outgoing ? rows[1] : rows[0];
  CHECK(out.nativeJid == "ann@example.com");
  CHECK(out.remoteUri == "sip:bob@example.com");
  CHECK(out.state == "active");
  CHECK(out.callId == "c1@node-a");
  CHECK(out.localTag == "lt");
  CHECK(out.remoteTag == "rt");
  CHECK(out.remoteTarget == "sip:bob@10.0.0.5:5061;transport=tls");
  REQUIRE(out.routeSet.size() == 2);
  CHECK(out.routeSet[1] == "<sip:pool.example.com:5061;transport=tls;lr;ms-key-info=x>");
  CHECK(out.localCseq == 7);
  CHECK(out.remoteCseq == 3);
  CHECK(out.expiresAt == 1893456000);
  CHECK_FALSE(in.outgoing);
  CHECK(in.remoteUri == "sip:carol@example.com");
  // another node's rows are not this node's
  SubscriptionStore other(db, "node-b", nullptr);
  CHECK(other.load().empty());
}

TEST_CASE_FIXTURE(Db, "AV-3: the latest change of a subscription wins; a removal removes") {
  SubscriptionStore store(db, "node-a", nullptr);
  store.save(row(true, "ann@example.com", "sip:bob@example.com", "pending"));
  store.save(row(true, "ann@example.com", "sip:bob@example.com", "active"));
  store.save(row(true, "ann@example.com", "sip:dave@example.com", "active"));
  store.remove(true, "ann@example.com", "sip:dave@example.com");
  store.save(row(false, "ann@example.com", "sip:bob@example.com", "active"));  // the other direction is another row
  store.stop();
  auto rows = SubscriptionStore(db, "node-a", nullptr).load();
  REQUIRE(rows.size() == 2);
  for (const auto& r : rows) {
    CHECK(r.remoteUri == "sip:bob@example.com");
    CHECK(r.state == "active");
  }
}

TEST_CASE_FIXTURE(Db, "AV-3: hundreds of changes at once: new rows, updates and removals all applied") {
  // More changes than one statement takes (the writer groups them): every
  // one lands, whatever the grouping.
  auto native = [](int i) { return "user" + std::to_string(i) + "@example.com"; };
  {
    SubscriptionStore store(db, "node-a", nullptr);
    for (int i = 0; i < 700; ++i) store.save(row(i % 2 == 0, native(i), "sip:lync@example.com", "pending"));
    store.stop();
    CHECK(store.writeFailures() == 0);
  }
  CHECK(SubscriptionStore(db, "node-a", nullptr).load().size() == 700);
  {
    SubscriptionStore store(db, "node-a", nullptr);
    for (int i = 0; i < 700; ++i) {
      if (i % 3 == 0) {
        store.remove(i % 2 == 0, native(i), "sip:lync@example.com");
      } else {
        auto r = row(i % 2 == 0, native(i), "sip:lync@example.com", "active");
        r.localCseq = static_cast<std::uint32_t>(1000 + i);
        store.save(r);
      }
    }
    store.stop();
    CHECK(store.writeFailures() == 0);
  }
  auto rows = SubscriptionStore(db, "node-a", nullptr).load();
  CHECK(rows.size() == 700 - 234);
  std::set<std::string> seen;
  for (const auto& r : rows) {
    const int i = std::stoi(r.nativeJid.substr(4));
    CHECK(i % 3 != 0);
    CHECK(r.outgoing == (i % 2 == 0));
    CHECK(r.state == "active");
    CHECK(r.localCseq == static_cast<std::uint32_t>(1000 + i));
    seen.insert(r.nativeJid);
  }
  CHECK(seen.size() == rows.size());
}

TEST_CASE_FIXTURE(Db, "AV-3: a write the database refuses is retried, not lost") {
  SubscriptionStore store(db, "node-a", nullptr);
  db.failNextOperations(2);
  store.save(row(true, "ann@example.com", "sip:bob@example.com", "active"));
  store.stop();
  CHECK(store.writeFailures() == 2);
  auto rows = SubscriptionStore(db, "node-a", nullptr).load();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].state == "active");
}

TEST_CASE("route sets are stored one value per line") {
  std::vector<std::string> r{"<sip:a;lr>", "<sip:b;lr>"};
  CHECK(joinRouteSet(r) == "<sip:a;lr>\n<sip:b;lr>");
  CHECK(splitRouteSet(joinRouteSet(r)) == r);
  CHECK(splitRouteSet("").empty());
}

TEST_CASE_FIXTURE(Db, "deliverable 6: peer types per domain, each change a new settings generation") {
  PeerStore peers(db);
  CHECK(peers.all().empty());
  auto g0 = imp::testing::settingsGeneration(db);
  CHECK(peers.set("Simple.Example", PeerType::Simple));
  auto g1 = imp::testing::settingsGeneration(db);
  CHECK(g1 > g0);
  auto all = peers.all();
  REQUIRE(all.size() == 1);
  CHECK(all.at("simple.example") == PeerType::Simple);
  CHECK_FALSE(peers.set("simple.example", PeerType::Simple));  // unchanged: no new generation
  CHECK(imp::testing::settingsGeneration(db) == g1);
  CHECK(peers.set("simple.example", PeerType::Lync));
  CHECK(peers.all().at("simple.example") == PeerType::Lync);
  CHECK(peers.remove("simple.example"));
  CHECK_FALSE(peers.remove("simple.example"));
  CHECK(peers.all().empty());
  CHECK_THROWS_AS(peers.set("not a domain", PeerType::Simple), std::invalid_argument);
}

TEST_CASE("domain names for peer types") {
  CHECK(normaliseDomain("Example.COM") == "example.com");
  CHECK(normaliseDomain("a-b.example") == "a-b.example");
  for (const char* bad : {"", ".example", "example.", "a..b", "-a.example", "a-.example", "a b", "a_b.example",
                          "ex\xc3\xa4mple.com"})
    CHECK_MESSAGE(!normaliseDomain(bad), bad);
  CHECK_FALSE(normaliseDomain(std::string(64, 'a') + ".example"));
  CHECK(peerTypeOf("SIMPLE") == PeerType::Simple);
  CHECK(peerTypeOf("lync") == PeerType::Lync);
  CHECK_FALSE(peerTypeOf("xmpp"));
}

TEST_CASE("IM-5, FED-7: SIP failures become XMPP errors by one table") {
  struct Case {
    int code;
    std::string_view condition, type;
  };
  for (auto c : {Case{0, "remote-server-timeout", "wait"}, Case{403, "forbidden", "auth"},
                 Case{404, "item-not-found", "cancel"}, Case{408, "remote-server-timeout", "wait"},
                 Case{415, "not-acceptable", "modify"}, Case{480, "recipient-unavailable", "wait"},
                 Case{482, "item-not-found", "cancel"}, Case{483, "item-not-found", "cancel"},
                 Case{486, "recipient-unavailable", "wait"}, Case{488, "not-acceptable", "modify"},
                 Case{503, "service-unavailable", "wait"}, Case{604, "item-not-found", "cancel"},
                 Case{699, "undefined-condition", "cancel"}}) {
    INFO("SIP ", c.code);
    auto [condition, type] = xmppErrorFor(c.code);
    CHECK(condition == c.condition);
    CHECK(type == c.type);
  }
}

TEST_CASE("SIP addresses become bare JIDs") {
  CHECK(jidOfUri("sip:bob@example.com") == "bob@example.com");
  CHECK(jidOfUri("\"Bob\" <sip:Bob@Example.COM;transport=tls>;tag=1") == "bob@example.com");
  CHECK(jidOfUri("<sips:b%6Fb@example.com>") == "bob@example.com");
  CHECK(jidOfUri("sip:example.com").empty());   // no user part
  CHECK(jidOfUri("tel:+15551234").empty());
  CHECK(jidOfUri("<sip:bob@example.com").empty());  // unterminated
  CHECK(jidOfUri("sip:bob%zz@example.com").empty());  // bad escape
  CHECK(jidOfUri("").empty());
  CHECK(domainOf("bob@example.com") == "example.com");
}

TEST_CASE("ms-diagnostics: id and reason for the log and the XMPP error text") {
  auto r = imp::sip::Message::response(404, "Not Found");
  r.appendHeader("ms-diagnostics",
                 "4005;reason=\"Destination URI either not enabled for SIP or does not exist\";source=\"lync.example.com\"");
  auto [id, reason] = msDiagnostics(r);
  CHECK(id == "4005");
  CHECK(reason == "Destination URI either not enabled for SIP or does not exist");
  auto none = imp::sip::Message::response(404, "Not Found");
  CHECK(msDiagnostics(none).first.empty());
  auto pub = imp::sip::Message::response(488, "Not Acceptable Here");
  pub.appendHeader("ms-diagnostics-public", "2165;reason=\"contact list moved\"");
  CHECK(msDiagnostics(pub).first == "2165");
}
