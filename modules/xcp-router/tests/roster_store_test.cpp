// RosterStore on the fake database: items, groups, versions (RFC 6121 §2.6),
// subscription states, pending requests and the PS-1 limits.
#include <doctest/doctest.h>
#include <imp/xcp_router/roster_store.h>

#include "store_fixture.h"

using namespace imp::xcp;
using xcptest::StoreFixture;

namespace {

PresenceSettings limits(std::uint32_t contacts, std::uint32_t watchers) {
  PresenceSettings p;
  p.maxContacts = contacts;
  p.maxWatchers = watchers;
  return p;
}

SubscriptionState state(Subscription s, bool out = false, bool in = false) {
  SubscriptionState st;
  st.subscription = s;
  st.pendingOut = out;
  st.pendingIn = in;
  return st;
}

}  // namespace

TEST_CASE_FIXTURE(StoreFixture, "RFC 6121 §2.3-2.5: roster set, get and remove with names and groups") {
  RosterStore r(db);
  CHECK(r.get("ann").items.empty());
  CHECK(r.get("ann").version == 0);
  auto w = r.setItem("ann", "carol@example.org", "Carol", {"Work", "Friends", "Work2"}, 200);
  REQUIRE(w.item);
  CHECK(w.changed);
  CHECK(w.version == 1);
  CHECK(w.item->groups == std::vector<std::string>{"Friends", "Work", "Work2"});
  CHECK(w.item->state.name() == "None");
  r.setItem("ann", "bob@example.com", "", {}, 200);
  auto roster = r.get("ann");
  CHECK(roster.version == 2);
  REQUIRE(roster.items.size() == 2);
  CHECK(roster.items[0].contact == "bob@example.com");
  CHECK(roster.items[1].name == "Carol");
  CHECK(roster.items[1].groups.size() == 3);
  CHECK(roster.items[1].version == 1);
  // The same set again changes nothing: no version, no push.
  auto again = r.setItem("ann", "carol@example.org", "Carol", {"Work2", "Work", "Friends"}, 200);
  CHECK_FALSE(again.changed);
  CHECK(again.version == 2);
  // Rename and regroup.
  auto renamed = r.setItem("ann", "carol@example.org", "C.", {"Family"}, 200);
  CHECK(renamed.changed);
  CHECK(renamed.version == 3);
  CHECK(r.item("ann", "carol@example.org")->groups == std::vector<std::string>{"Family"});
  // Bob's roster is his own.
  CHECK(r.get("bob").items.empty());
  // Remove returns the item as it was.
  auto gone = r.remove("ann", "carol@example.org");
  REQUIRE(gone);
  CHECK(gone->removed);
  CHECK(gone->name == "C.");
  CHECK(gone->version == 4);
  CHECK_FALSE(r.item("ann", "carol@example.org"));
  CHECK_FALSE(r.remove("ann", "carol@example.org"));
  CHECK(r.get("ann").items.size() == 1);
  CHECK(db.query("SELECT COUNT(*) AS n FROM xcp_roster_group").num(0, "n") == 0);
}

TEST_CASE_FIXTURE(StoreFixture, "RFC 6121 §2.3.3: refused names and groups, with the stanza error") {
  RosterStore r(db);
  auto condition = [&](const std::string& contact, const std::string& name, const std::vector<std::string>& groups) {
    try {
      r.setItem("ann", contact, name, groups, 200);
    } catch (const StoreInputError& e) {
      return e.condition();
    }
    return std::string("stored");
  };
  CHECK(condition("c@example.org", "", {"A", "A"}) == "bad-request");
  CHECK(condition("c@example.org", "", {""}) == "not-acceptable");
  CHECK(condition("c@example.org", std::string(1024, 'n'), {}) == "not-acceptable");
  CHECK(condition("c@example.org", "", {std::string(641, 'g')}) == "not-acceptable");
  CHECK(condition(std::string(600, 'u') + "@" + std::string(40, 'd'), "", {}) == "not-acceptable");  // 641 characters
  CHECK(condition("", "", {}) == "jid-malformed");
  // 1023 two-byte characters are 1023 characters, not 2046.
  std::string longName;
  for (int i = 0; i < 1023; ++i) longName += "\xc3\xa9";
  CHECK(condition("c@example.org", longName, {}) == "stored");
  CHECK(r.get("ann").items.size() == 1);
  // A roster for someone the directory does not know.
  CHECK_THROWS_AS(r.setItem("nobody", "c@example.org", "", {}, 200), StoreInputError);
}

TEST_CASE_FIXTURE(StoreFixture, "RFC 6121 §2.6: roster versioning: up to date, pushes since a version, full roster") {
  RosterStore r(db);
  r.setItem("ann", "a@x.org", "", {}, 0);  // v1
  r.setItem("ann", "b@x.org", "", {}, 0);  // v2
  r.setItem("ann", "c@x.org", "", {}, 0);  // v3
  r.remove("ann", "a@x.org");              // v4
  r.setItem("ann", "b@x.org", "Bee", {"G"}, 0);  // v5

  auto upToDate = r.since("ann", "5");
  CHECK_FALSE(upToDate.full);
  CHECK(upToDate.items.empty());
  CHECK(upToDate.version == 5);

  auto delta = r.since("ann", "3");
  CHECK_FALSE(delta.full);
  REQUIRE(delta.items.size() == 2);
  CHECK(delta.items[0].contact == "a@x.org");  // v4: a removal push
  CHECK(delta.items[0].removed);
  CHECK(delta.items[1].contact == "b@x.org");  // v5
  CHECK(delta.items[1].name == "Bee");
  CHECK(delta.items[1].groups == std::vector<std::string>{"G"});

  for (const char* v : {"", "6", "abc", "03", "-1", "99999999999999999999999"}) {
    INFO("client version '", v, "'");
    auto full = r.since("ann", v);
    CHECK(full.full);
    CHECK(full.version == 5);
    REQUIRE(full.items.size() == 2);
    CHECK(full.items[0].contact == "b@x.org");
    CHECK(full.items[1].contact == "c@x.org");
  }
  // Version 0: every change is a push.
  CHECK(r.since("ann", "0").items.size() == 3);
  // A re-added item is live again and carries the new version.
  r.setItem("ann", "a@x.org", "A", {}, 0);  // v6
  auto back = r.since("ann", "5");
  REQUIRE(back.items.size() == 1);
  CHECK_FALSE(back.items[0].removed);
  CHECK(back.items[0].state == SubscriptionState{});
}

TEST_CASE_FIXTURE(StoreFixture, "subscription states are stored with the pending status text; roster set keeps them") {
  RosterStore r(db);
  auto w = r.setSubscription("ann", "bob@example.com", state(Subscription::To, false, true), std::string("let me in"),
                             limits(200, 200));
  REQUIRE(w.item);
  CHECK(w.changed);
  CHECK_FALSE(w.item->pendingOnly);  // To + Pending In is a roster item
  auto item = r.item("ann", "bob@example.com");
  REQUIRE(item);
  CHECK(item->state.name() == "To + Pending In");
  CHECK(item->pendingInStatus == "let me in");
  r.setItem("ann", "bob@example.com", "Bob", {"Team"}, 200);
  item = r.item("ann", "bob@example.com");
  CHECK(item->state.name() == "To + Pending In");
  CHECK(item->pendingInStatus == "let me in");
  // Approval: Both; the status text goes with the pending flag.
  r.setSubscription("ann", "bob@example.com", state(Subscription::Both), std::nullopt, limits(200, 200));
  item = r.item("ann", "bob@example.com");
  CHECK(item->state.name() == "Both");
  CHECK(item->pendingInStatus.empty());
  CHECK(item->name == "Bob");
  CHECK(item->groups == std::vector<std::string>{"Team"});
  // The same state again: no change, no version.
  auto v = r.version("ann");
  CHECK_FALSE(r.setSubscription("ann", "bob@example.com", state(Subscription::Both), std::nullopt, limits(200, 200)).changed);
  CHECK(r.version("ann") == v);
  SubscriptionState pre;
  pre.preApproved = true;
  r.setSubscription("ann", "dora@example.org", pre, std::nullopt, limits(200, 200));
  CHECK(r.item("ann", "dora@example.org")->state.preApproved);
}

TEST_CASE_FIXTURE(StoreFixture, "RFC 6121 §3.1.3: a stranger's request is kept apart from the roster and redelivered") {
  RosterStore r(db);
  auto w = r.setSubscription("ann", "eve@example.org", state(Subscription::None, false, true), std::string("hi"),
                             limits(1, 1));
  REQUIRE(w.item);
  CHECK(w.item->pendingOnly);
  CHECK(r.get("ann").items.empty());
  CHECK(r.since("ann", "0").items.empty());
  CHECK(r.contacts("ann") == 0);
  auto pending = r.pendingIn("ann");
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].contact == "eve@example.org");
  CHECK(pending[0].pendingInStatus == "hi");
  // The stranger withdraws (inbound unsubscribe): the request is gone, nothing was ever in the roster.
  auto drop = r.setSubscription("ann", "eve@example.org", SubscriptionState{}, std::nullopt, limits(1, 1));
  CHECK(drop.changed);
  CHECK(r.pendingIn("ann").empty());
  CHECK_FALSE(r.item("ann", "eve@example.org"));
  CHECK(r.since("ann", "0").items.empty());
  // Nothing is stored for a plain None about a stranger.
  auto none = r.setSubscription("ann", "zed@example.org", SubscriptionState{}, std::nullopt, limits(1, 1));
  CHECK_FALSE(none.item);
  CHECK_FALSE(none.changed);
  // The user approves a stranger's request: it becomes a roster item (and counts).
  r.setSubscription("ann", "eve@example.org", state(Subscription::None, false, true), std::string("again"), limits(1, 1));
  auto approved = r.setSubscription("ann", "eve@example.org", state(Subscription::From), std::nullopt, limits(1, 1));
  REQUIRE(approved.item);
  CHECK_FALSE(approved.item->pendingOnly);
  CHECK(r.get("ann").items.size() == 1);
  CHECK(r.watchers("ann") == 1);
}

TEST_CASE_FIXTURE(StoreFixture, "PS-1: the contact limit refuses a new item and nothing else; 0 = no limit") {
  RosterStore r(db);
  r.setItem("ann", "a@x.org", "", {}, 2);
  r.setItem("ann", "b@x.org", "", {}, 2);
  auto full = r.setItem("ann", "c@x.org", "", {}, 2);
  REQUIRE(full.refused);
  CHECK(*full.refused == LimitError{LimitError::Limit::Contacts, 2});
  CHECK_FALSE(full.item);
  CHECK_FALSE(full.changed);
  CHECK(r.get("ann").items.size() == 2);
  CHECK(r.version("ann") == 2);
  // Updating an existing item is not an add.
  CHECK(r.setItem("ann", "b@x.org", "Bee", {}, 2).changed);
  // An outbound subscribe to a new contact creates an item: refused too.
  auto sub = r.setSubscription("ann", "c@x.org", state(Subscription::None, true), std::nullopt, limits(2, 200));
  REQUIRE(sub.refused);
  CHECK(sub.refused->limit == LimitError::Limit::Contacts);
  // A stranger's pending request does not count and is not refused.
  CHECK_FALSE(r.setSubscription("ann", "d@x.org", state(Subscription::None, false, true), std::nullopt, limits(2, 200)).refused);
  // The limit changes live: the caller passes the current value.
  CHECK(r.setItem("ann", "c@x.org", "", {}, 3).changed);
  CHECK(r.setItem("ann", "e@x.org", "", {}, 0).changed);
  CHECK(r.contacts("ann") == 4);
  // After a removal there is room again.
  r.remove("ann", "a@x.org");
  CHECK(r.setItem("ann", "f@x.org", "", {}, 4).changed);
}

TEST_CASE_FIXTURE(StoreFixture, "PS-1: the watcher limit refuses granting 'from' beyond the maximum") {
  RosterStore r(db);
  auto p = limits(0, 2);
  CHECK_FALSE(r.setSubscription("ann", "a@x.org", state(Subscription::From), std::nullopt, p).refused);
  CHECK_FALSE(r.setSubscription("ann", "b@x.org", state(Subscription::Both), std::nullopt, p).refused);
  r.setSubscription("ann", "c@x.org", state(Subscription::To, false, true), std::string("me too"), p);
  auto refused = r.setSubscription("ann", "c@x.org", state(Subscription::Both), std::nullopt, p);
  REQUIRE(refused.refused);
  CHECK(*refused.refused == LimitError{LimitError::Limit::Watchers, 2});
  CHECK(r.item("ann", "c@x.org")->state.name() == "To + Pending In");  // unchanged, still pending
  // A watcher that already has 'from' keeps it through other changes.
  CHECK_FALSE(r.setSubscription("ann", "b@x.org", state(Subscription::From), std::nullopt, p).refused);
  // Losing 'from' frees a place.
  r.setSubscription("ann", "a@x.org", state(Subscription::None), std::nullopt, p);
  CHECK(r.watchers("ann") == 1);
  CHECK(r.setSubscription("ann", "c@x.org", state(Subscription::Both), std::nullopt, p).changed);
  CHECK(r.watchers("ann") == 2);
  // 0 = no limit.
  CHECK(r.setSubscription("ann", "d@x.org", state(Subscription::From), std::nullopt, limits(0, 0)).changed);
}

TEST_CASE_FIXTURE(StoreFixture, "a roster change is all or nothing: the version never moves without the item") {
  RosterStore r(db);
  r.setItem("ann", "a@x.org", "A", {"G1"}, 0);
  auto n = imp::testing::failAtEveryStatement(
      db, [&] { r.setItem("ann", "a@x.org", "B", {"G2", "G3"}, 0); },
      [&](std::size_t) {
        auto it = r.item("ann", "a@x.org");
        CHECK(it->name == "A");
        CHECK(it->groups == std::vector<std::string>{"G1"});
        CHECK(r.version("ann") == 1);
      });
  CHECK(n > 3);
  CHECK(r.item("ann", "a@x.org")->name == "B");
  CHECK(r.version("ann") == 2);
  imp::testing::failAtEveryStatement(
      db, [&] { r.remove("ann", "a@x.org"); },
      [&](std::size_t) {
        CHECK(r.item("ann", "a@x.org"));
        CHECK(r.version("ann") == 2);
      });
  CHECK_FALSE(r.item("ann", "a@x.org"));
}

TEST_CASE_FIXTURE(StoreFixture, "deleting the user deletes the roster") {
  RosterStore r(db);
  r.setItem("ann", "a@x.org", "A", {"G1"}, 0);
  imp::directory::Directory(db).deleteUser("ann");
  CHECK(db.query("SELECT COUNT(*) AS n FROM xcp_roster_item").num(0, "n") == 0);
  CHECK(db.query("SELECT COUNT(*) AS n FROM xcp_roster_group").num(0, "n") == 0);
  CHECK(db.query("SELECT COUNT(*) AS n FROM xcp_roster_version").num(0, "n") == 0);
}

TEST_CASE_FIXTURE(StoreFixture, "a lost database is a DbError, not an empty roster") {
  RosterStore r(db);
  r.setItem("ann", "a@x.org", "A", {}, 0);
  db.failNextOperations(1);
  CHECK_THROWS_AS(r.get("ann"), imp::core::DbError);
  CHECK(r.get("ann").items.size() == 1);
}
