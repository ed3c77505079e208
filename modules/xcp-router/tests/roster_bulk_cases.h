#pragma once
// The bulk roster paths (MG-7 import, MG-9 rename) as scenarios over any
// core::Database: roster_bulk_test.cpp runs them on the fake database,
// mariadb_store_test.cpp on a real MariaDB (the real upserts, locks and
// indexes). Each scenario makes its own directory users through `user`.
#include <doctest/doctest.h>
#include <imp/core/database.h>
#include <imp/xcp_router/roster_store.h>

#include <functional>
#include <string>
#include <vector>

namespace bulkcases {

using namespace imp::xcp;

struct Env {
  imp::core::Database& db;
  // Makes a fresh directory user for `name` (its IM address is
  // <userid>@<domain>) and returns its user id.
  std::function<std::string(const std::string& name)> user;
  std::string domain;
  std::string jid(const std::string& userid) const { return userid + "@" + domain; }
  BulkContact local(const std::string& owner, const std::string& contactUser, const std::string& name = {},
                    std::vector<std::string> groups = {}) const {
    return {owner, jid(owner), jid(contactUser), contactUser, name, std::move(groups)};
  }
  BulkContact remote(const std::string& owner, const std::string& contact, const std::string& name = {},
                     std::vector<std::string> groups = {}) const {
    return {owner, jid(owner), contact, "", name, std::move(groups)};
  }
  std::vector<BulkResult> import(const std::vector<BulkContact>& batch, const PresenceSettings& limits = PresenceSettings{}) {
    std::vector<BulkResult> out;
    db.transaction([&](imp::core::DbSession& s) { out = RosterStore(db).importContacts(s, batch, limits); });
    return out;
  }
  RenameResult rename(const std::string& oldJid, const std::string& newJid) {
    RenameResult out;
    db.transaction([&](imp::core::DbSession& s) { out = RosterStore(db).renameContact(s, oldJid, newJid); });
    return out;
  }
  std::int64_t count(const std::string& sql, const imp::core::SqlParams& p = {}) { return db.query(sql, p).num(0, "n"); }
};

inline PresenceSettings limits(std::uint32_t contacts, std::uint32_t watchers) {
  PresenceSettings p;
  p.maxContacts = contacts;
  p.maxWatchers = watchers;
  return p;
}

inline SubscriptionState state(Subscription s, bool out = false, bool in = false, bool pre = false) {
  SubscriptionState st;
  st.subscription = s;
  st.pendingOut = out;
  st.pendingIn = in;
  st.preApproved = pre;
  return st;
}

inline std::string sub(const std::optional<RosterItem>& it) {
  return it ? it->state.name() + (it->removed ? " (removed)" : "") + (it->pendingOnly ? " (pending only)" : "") : "absent";
}

// New local and remote contacts: both sides, names, groups, versions; a
// contact of one row that is the owner of a later one; the same pair twice.
inline void importNewContacts(Env& e) {
  auto ann = e.user("ann"), bob = e.user("bob"), cy = e.user("cy");
  RosterStore r(e.db);
  const std::string lync = "lync.one@ms.example.org";
  auto res = e.import({
      e.local(ann, bob, "Bob", {"Team"}),  // 0
      e.remote(ann, lync),                 // 1
      e.local(bob, ann, "Ann", {"Work"}),  // 2: bob's item for ann exists ("from", row 0)
      e.local(bob, ann, "Again", {"X"}),   // 3: the same pair again
      e.local(cy, ann, "", {"B", "A"}),    // 4
  });
  REQUIRE(res.size() == 5);
  CHECK(res[0].outcome == BulkOutcome::Imported);
  REQUIRE(res[0].ownerItem);
  CHECK(res[0].ownerItem->contact == e.jid(bob));
  CHECK(res[0].ownerItem->state.name() == "To");
  CHECK(res[0].ownerItem->name == "Bob");
  CHECK(res[0].ownerItem->groups == std::vector<std::string>{"Team"});
  CHECK(res[0].ownerVersion == 1);
  REQUIRE(res[0].contactItem);
  CHECK(res[0].contactItem->contact == e.jid(ann));
  CHECK(res[0].contactItem->state.name() == "From");
  CHECK(res[0].contactItem->name.empty());
  CHECK(res[0].contactItem->groups.empty());
  CHECK(res[0].contactVersion == 1);

  CHECK(res[1].outcome == BulkOutcome::Imported);
  CHECK(res[1].ownerVersion == 2);
  CHECK(res[1].ownerItem->state.name() == "To");
  CHECK_FALSE(res[1].contactItem);

  // from -> both on bob's side, with the row's name and groups; to -> both on ann's.
  CHECK(res[2].outcome == BulkOutcome::Imported);
  CHECK(res[2].ownerItem->state.name() == "Both");
  CHECK(res[2].ownerItem->name == "Ann");
  CHECK(res[2].ownerItem->groups == std::vector<std::string>{"Work"});
  CHECK(res[2].ownerVersion == 2);
  REQUIRE(res[2].contactItem);
  CHECK(res[2].contactItem->state.name() == "Both");
  CHECK(res[2].contactItem->name == "Bob");  // ann's own name and groups stay
  CHECK(res[2].contactItem->groups == std::vector<std::string>{"Team"});
  CHECK(res[2].contactVersion == 3);

  CHECK(res[3].outcome == BulkOutcome::AlreadyPresent);
  CHECK_FALSE(res[3].ownerItem);
  CHECK(res[3].ownerVersion == 2);

  CHECK(res[4].outcome == BulkOutcome::Imported);
  CHECK(res[4].ownerItem->groups == std::vector<std::string>{"A", "B"});  // stored sorted
  CHECK(res[4].ownerVersion == 1);
  CHECK(res[4].contactVersion == 4);

  // What the store holds is what the results said.
  auto annRoster = r.get(ann);
  CHECK(annRoster.version == 4);
  REQUIRE(annRoster.items.size() == 3);
  auto bobItem = r.item(ann, e.jid(bob));
  REQUIRE(bobItem);
  CHECK(*bobItem == *res[2].contactItem);
  CHECK(*r.item(ann, lync) == *res[1].ownerItem);
  CHECK(*r.item(ann, e.jid(cy)) == *res[4].contactItem);
  CHECK(r.version(bob) == 2);
  CHECK(*r.item(bob, e.jid(ann)) == *res[2].ownerItem);
  CHECK(r.version(cy) == 1);
  CHECK(*r.item(cy, e.jid(ann)) == *res[4].ownerItem);
  CHECK(r.contacts(ann) == 3);
  CHECK(r.watchers(ann) == 2);  // bob and cy
  CHECK(r.watchers(bob) == 1);
  // RFC 6121 §2.6: a client of ann's at version 1 gets the rest as pushes.
  auto d = r.since(ann, "1");
  CHECK_FALSE(d.full);
  REQUIRE(d.items.size() == 3);
  CHECK(d.items[0].contact == lync);
  CHECK(d.items[1].contact == e.jid(bob));
  CHECK(d.items[2].contact == e.jid(cy));
  CHECK(e.count("SELECT COUNT(*) AS n FROM xcp_roster_group g JOIN xcp_roster_item i ON i.id = g.item_id "
                "WHERE i.owner IN (?, ?, ?)",
                {ann, bob, cy}) == 4);  // Team, Work, A, B

  // The same batch again: nothing new for the owners' sides.
  auto again = e.import({e.local(ann, bob, "Bob", {"Team"}), e.remote(ann, lync)});
  CHECK(again[0].outcome == BulkOutcome::AlreadyPresent);
  CHECK(again[1].outcome == BulkOutcome::AlreadyPresent);
  CHECK(r.version(ann) == 4);
}

// PS-1 limits, with the limit value; refused rows write nothing on either
// side; later rows see the counts of earlier ones.
inline void importLimits(Env& e) {
  auto ann = e.user("ann"), bob = e.user("bob"), cy = e.user("cy"), dee = e.user("dee");
  RosterStore r(e.db);
  // ContactLimit within one batch; an existing item without "to" is no add.
  REQUIRE(r.setItem(dee, "x@remote.example", "X", {}, 0).changed);
  auto res = e.import({e.remote(dee, "a@remote.example"), e.remote(dee, "b@remote.example"),
                       e.remote(dee, "x@remote.example")},
                      limits(2, 0));
  CHECK(res[0].outcome == BulkOutcome::Imported);
  CHECK(res[1].outcome == BulkOutcome::ContactLimit);
  CHECK(res[1].limit == 2);
  CHECK(res[1].ownerVersion == 2);
  CHECK_FALSE(res[1].ownerItem);
  CHECK(res[2].outcome == BulkOutcome::Imported);  // x: none -> to
  CHECK(res[2].ownerItem->state.name() == "To");
  CHECK(res[2].ownerItem->name == "X");  // the item's own name: the row has none
  CHECK_FALSE(r.item(dee, "b@remote.example"));
  CHECK(r.version(dee) == 3);

  // ContactSideLimit: bob's list is full for ann's item; nothing on ann's side either.
  REQUIRE(r.setItem(bob, "p@remote.example", "", {}, 0).changed);
  REQUIRE(r.setSubscription(bob, "w@remote.example", state(Subscription::From), std::nullopt, limits(0, 0)).changed);
  res = e.import({e.local(ann, bob)}, limits(2, 0));
  CHECK(res[0].outcome == BulkOutcome::ContactSideLimit);
  CHECK(res[0].limit == 2);
  CHECK_FALSE(r.item(ann, e.jid(bob)));
  CHECK_FALSE(r.item(bob, e.jid(ann)));
  CHECK(r.version(ann) == 0);
  CHECK(r.version(bob) == 2);
  // Both limits reached: the contact limit first, as setSubscription() checks.
  res = e.import({e.local(ann, bob)}, limits(2, 1));
  CHECK(res[0].outcome == BulkOutcome::ContactSideLimit);
  // WatcherLimit: bob has one watcher (w); ann is the second, cy the third.
  res = e.import({e.local(ann, bob, "Bob"), e.local(cy, bob)}, limits(0, 2));
  CHECK(res[0].outcome == BulkOutcome::Imported);
  CHECK(res[1].outcome == BulkOutcome::WatcherLimit);
  CHECK(res[1].limit == 2);
  CHECK_FALSE(res[1].ownerItem);
  CHECK_FALSE(res[1].contactItem);
  CHECK_FALSE(r.item(cy, e.jid(bob)));
  CHECK(r.version(cy) == 0);
  CHECK(r.watchers(bob) == 2);
  // No change on the contact's side needs no room there: cy's item for
  // bob when bob already has cy with "from".
  REQUIRE(r.setSubscription(bob, e.jid(cy), state(Subscription::From), std::nullopt, limits(0, 0)).changed);
  res = e.import({e.local(cy, bob)}, limits(0, 1));
  CHECK(res[0].outcome == BulkOutcome::Imported);
  CHECK_FALSE(res[0].contactItem);
  CHECK(res[0].contactVersion == 0);
  // 0 = no limit.
  res = e.import({e.remote(dee, "b@remote.example"), e.remote(dee, "c@remote.example")}, limits(0, 0));
  CHECK(res[1].outcome == BulkOutcome::Imported);
  CHECK(r.contacts(dee) == 4);
}

// Tombstones revived, pendingOnly items made real (both sides), the
// subscription merges, pre-approval and pending requests.
inline void importMerges(Env& e) {
  auto ann = e.user("ann"), bob = e.user("bob"), cy = e.user("cy"), dee = e.user("dee");
  RosterStore r(e.db);
  // A tombstone: the old name and groups do not come back.
  r.setItem(ann, "t@remote.example", "Old", {"G1", "G2"}, 0);  // ann v1
  r.remove(ann, "t@remote.example");                          // ann v2
  // A stranger's pending request (pendingOnly) on ann's side.
  r.setSubscription(ann, "p@remote.example", state(Subscription::None, false, true), std::string("hello"),
                    limits(0, 0));  // ann v3
  // ann's item for bob: To + Pending In (bob asked, not answered).
  r.setSubscription(ann, e.jid(bob), state(Subscription::To, false, true), std::string("me?"), limits(0, 0));  // ann v4
  // cy has ann's request pending only; cy pre-approved dee.
  r.setSubscription(cy, e.jid(ann), state(Subscription::None, false, true), std::string("add me"), limits(0, 0));
  r.setSubscription(cy, e.jid(dee), state(Subscription::None, false, false, true), std::nullopt, limits(0, 0));
  REQUIRE(r.contacts(cy) == 1);  // dee (pre-approved); ann's request does not count

  auto res = e.import({
      e.remote(ann, "t@remote.example", "New"),           // 0: tombstone revived
      e.remote(ann, "p@remote.example", "P", {"Fans"}),   // 1: pendingOnly made real
      e.local(bob, ann, "Ann", {"Work"}),                 // 2: ann's To + Pending In -> Both
      e.local(ann, cy, "Cy"),                             // 3: cy's pendingOnly -> From
      e.local(dee, cy),                                   // 4: cy's pre-approval of dee -> From
  }, limits(4, 0));
  for (const auto& x : res) CHECK(x.outcome == BulkOutcome::Imported);
  auto t = r.item(ann, "t@remote.example");
  REQUIRE(t);
  CHECK(t->state.name() == "To");
  CHECK(t->name == "New");
  CHECK(t->groups.empty());
  CHECK(t->version == 5);
  auto p = r.item(ann, "p@remote.example");
  REQUIRE(p);
  CHECK_FALSE(p->pendingOnly);
  CHECK(p->state.name() == "To + Pending In");  // the stranger's request stays
  CHECK(p->pendingInStatus == "hello");
  CHECK(p->groups == std::vector<std::string>{"Fans"});
  CHECK(r.pendingIn(ann).size() == 1);
  auto ab = r.item(ann, e.jid(bob));
  CHECK(ab->state.name() == "Both");  // bob's request is approved with it
  CHECK(ab->pendingInStatus.empty());
  CHECK(*ab == *res[2].contactItem);
  auto ca = r.item(cy, e.jid(ann));
  REQUIRE(ca);
  CHECK(sub(ca) == "From");
  CHECK(ca->pendingInStatus.empty());
  CHECK(*ca == *res[3].contactItem);
  auto cd = r.item(cy, e.jid(dee));
  CHECK(sub(cd) == "From");
  CHECK_FALSE(cd->state.preApproved);
  CHECK(r.contacts(cy) == 2);
  CHECK(r.watchers(cy) == 2);
  // ann's item for cy: To (its own side), cy's for ann: From.
  CHECK(sub(r.item(ann, e.jid(cy))) == "To");

  // A pendingOnly item on the contact's side counts as a new item there.
  auto eve = e.user("eve"), fay = e.user("fay");
  r.setItem(eve, "q@remote.example", "", {}, 0);
  r.setSubscription(eve, e.jid(fay), state(Subscription::None, false, true), std::nullopt, limits(0, 0));
  res = e.import({e.local(fay, eve)}, limits(1, 0));
  CHECK(res[0].outcome == BulkOutcome::ContactSideLimit);
  CHECK(res[0].limit == 1);
  CHECK(sub(r.item(eve, e.jid(fay))) == "None + Pending In (pending only)");
  CHECK_FALSE(r.item(fay, e.jid(eve)));

  // The own JID: one item, both sides of it.
  auto own = e.import({e.local(dee, dee, "Me")});
  CHECK(own[0].outcome == BulkOutcome::Imported);
  CHECK(sub(own[0].ownerItem) == "Both");
  CHECK(sub(r.item(dee, e.jid(dee))) == "Both");
  CHECK(r.item(dee, e.jid(dee))->name == "Me");
  CHECK(own[0].ownerVersion == own[0].contactVersion);
  CHECK(r.version(dee) == own[0].ownerVersion);
}

// Two batches and a rename in one transaction (the job may write several
// before its checkpoint): each sees what the one before it wrote.
inline void batchesInOneTransaction(Env& e) {
  auto ann = e.user("ann"), bob = e.user("bob");
  RosterStore r(e.db);
  const std::string x = "x." + ann + "@remote.example", y = "y." + ann + "@remote.example";  // this case's own
  std::vector<BulkResult> first, second;
  RenameResult renamed;
  e.db.transaction([&](imp::core::DbSession& s) {
    first = r.importContacts(s, {e.local(ann, bob, "Bob"), e.remote(ann, x)}, limits(0, 0));
    second = r.importContacts(s, {e.local(bob, ann, "Ann"), e.local(ann, bob, "Again")}, limits(0, 0));
    renamed = r.renameContact(s, x, y);
  });
  CHECK(first[0].outcome == BulkOutcome::Imported);
  CHECK(second[0].outcome == BulkOutcome::Imported);
  CHECK(sub(second[0].ownerItem) == "Both");  // bob's item for ann was "from" after the first batch
  CHECK(second[0].contactVersion == 3);
  CHECK(second[1].outcome == BulkOutcome::AlreadyPresent);
  REQUIRE(renamed.changed.size() == 1);
  CHECK(renamed.changed[0].version == 4);
  CHECK(sub(r.item(ann, e.jid(bob))) == "Both");
  CHECK(sub(r.item(ann, y)) == "To");
  CHECK(r.version(ann) == 4);
  CHECK(r.version(bob) == 2);
}

// Refused input: nothing runs, the row is named.
inline void importRefusedInput(Env& e) {
  auto ann = e.user("ann");
  RosterStore r(e.db);
  auto refusal = [&](std::vector<BulkContact> batch) -> std::string {
    try {
      e.import(batch);
    } catch (const StoreInputError& x) {
      return x.condition() + ": " + x.what();
    }
    return "stored";
  };
  CHECK(refusal({e.remote(ann, "a@remote.example"), e.remote(ann, "")}) ==
        "jid-malformed: row 1: the contact JID is empty");
  CHECK(refusal({e.remote(ann, "a@remote.example", "", {"G", "G"})}) ==
        "bad-request: row 0: the group 'G' is given twice");
  CHECK(refusal({e.remote(ann, std::string(641, 'x'))}).find("not-acceptable: row 0:") == 0);
  CHECK(refusal({e.remote(ann, "a@remote.example"), e.local(ann, "nobody-at-all")}) ==
        "item-not-found: row 1: no user 'nobody-at-all' in the directory");
  CHECK(refusal({e.remote("nobody-at-all", "a@remote.example")}) ==
        "item-not-found: row 0: no user 'nobody-at-all' in the directory");
  CHECK_FALSE(r.item(ann, "a@remote.example"));
  CHECK(r.version(ann) == 0);
  CHECK(e.import({}).empty());
}

// Many rows, long values: the statements are cut in chunks by rows and by
// bytes, and every row arrives.
inline void importChunks(Env& e) {
  std::vector<std::string> users;
  for (int i = 0; i < 12; ++i) users.push_back(e.user("u" + std::to_string(i)));
  // Names of 1000 four-byte characters: a 256-row statement would be over
  // the 1 MB a statement may take, so chunks are cut by bytes too.
  std::string longName, longGroup;
  for (int i = 0; i < 1000; ++i) longName += "\xf0\x9f\x98\x80";
  for (int i = 0; i < 600; ++i) longGroup += "\xc3\xa9";
  std::vector<BulkContact> batch;
  for (std::size_t i = 0; i < users.size(); ++i)
    for (std::size_t j = 0; j < users.size(); ++j)
      if (i != j) batch.push_back(e.local(users[i], users[j], longName + std::to_string(j), {"G" + std::to_string(j % 3)}));
  for (int k = 0; k < 700; ++k)
    batch.push_back(e.remote(users[0], "r" + std::to_string(k) + "@" + std::string(600, 'd') + ".example",
                             longName, {longGroup, "x" + std::to_string(k)}));
  auto res = e.import(batch, limits(0, 0));
  REQUIRE(res.size() == batch.size());
  for (const auto& x : res) CHECK(x.outcome == BulkOutcome::Imported);
  RosterStore r(e.db);
  for (std::size_t i = 0; i < users.size(); ++i) {
    auto roster = r.get(users[i]);
    CHECK(roster.items.size() == (i == 0 ? 11 + 700 : 11));
    for (const auto& it : roster.items) {
      CHECK(it.state.name() == (it.contact.size() > 600 ? "To" : "Both"));  // remote contacts have no reverse side
      CHECK(it.groups.size() == (it.contact.size() > 600 ? 2 : 1));
    }
    CHECK(roster.version == (i == 0 ? 22 + 700 : 22));  // one bump per row on each side
  }
  auto far = r.item(users[0], "r699@" + std::string(600, 'd') + ".example");
  REQUIRE(far);
  CHECK(far->name == longName);
  CHECK(far->groups == std::vector<std::string>{"x699", longGroup});  // binary order: 'x' < 0xc3
}

// MG-9: items moved with name, groups and state; tombstones; owners with the
// new ID already; a revived tombstone; privacy and block rows; the deltas.
inline void renameContact(Env& e) {
  auto ann = e.user("ann"), bob = e.user("bob"), cy = e.user("cy"), dee = e.user("dee"), eve = e.user("eve");
  RosterStore r(e.db);
  const std::string oldJid = "john.smith@ms.example.org", newJid = "jsmith@ms.example.org";
  r.setItem(ann, oldJid, "John", {"A", "B"}, 0);  // ann v1
  r.setSubscription(ann, oldJid, state(Subscription::Both), std::nullopt, limits(0, 0));  // v2
  r.setItem(ann, "other@ms.example.org", "", {}, 0);                                     // v3
  r.setSubscription(bob, oldJid, state(Subscription::To, false, true), std::string("hi"), limits(0, 0));  // bob v1
  r.setItem(cy, oldJid, "Old", {}, 0);
  r.setItem(cy, newJid, "New", {"N"}, 0);  // cy already has the new ID
  r.setItem(dee, newJid, "Gone", {"Z"}, 0);
  r.remove(dee, newJid);  // a tombstone for the new ID (dee v2)
  r.setItem(dee, oldJid, "", {}, 0);  // dee v3
  // eve: only a stranger's pending request from the old ID (not in her list).
  r.setSubscription(eve, oldJid, state(Subscription::None, false, true), std::string("?"), limits(0, 0));
  auto cyVersion = r.version(cy);
  auto eveVersion = r.version(eve);
  e.db.exec("INSERT INTO xcp_privacy_decision (owner, watcher, decision) VALUES (?, ?, 'allow'), (?, ?, 'block'), "
            "(?, ?, 'allow')",
            {ann, oldJid, bob, oldJid, bob, newJid});
  e.db.exec("INSERT INTO xcp_block (owner, blocked) VALUES (?, ?), (?, ?), (?, ?), (?, ?)",
            {ann, oldJid, bob, oldJid, bob, newJid, cy, oldJid + "/phone"});

  auto res = e.rename(oldJid, newJid);
  REQUIRE(res.changed.size() == 3);
  CHECK(res.changed[0].owner == ann);
  CHECK(res.changed[1].owner == bob);
  CHECK(res.changed[2].owner == dee);
  CHECK(res.alreadyHadNew == std::vector<std::string>{cy});
  CHECK(res.privacyRows == 1);  // ann's; bob has the new one already
  CHECK(res.blockRows == 1);
  CHECK(res.blockOwners == std::vector<std::string>{ann});

  const auto& a = res.changed[0];
  CHECK(a.version == 4);
  CHECK(a.removedOld.removed);
  CHECK(a.removedOld.contact == oldJid);
  CHECK(a.removedOld.version == 4);
  CHECK(a.added.contact == newJid);
  CHECK(a.added.name == "John");
  CHECK(a.added.groups == std::vector<std::string>{"A", "B"});
  CHECK(a.added.state.name() == "Both");
  CHECK(a.added.version == 4);
  CHECK_FALSE(r.item(ann, oldJid));
  CHECK(*r.item(ann, newJid) == a.added);
  CHECK(r.version(ann) == 4);
  CHECK(r.contacts(ann) == 2);
  // A client at version 3 gets the removal and the addition (RFC 6121 §2.6.3).
  auto d = r.since(ann, "3");
  CHECK_FALSE(d.full);
  REQUIRE(d.items.size() == 2);
  CHECK(d.items[0].contact == oldJid);  // same version: by contact
  CHECK(d.items[0].removed);
  CHECK(d.items[0].version == 4);
  CHECK(d.items[1].contact == newJid);
  CHECK_FALSE(d.items[1].removed);
  CHECK(d.items[1] == a.added);

  auto b = r.item(bob, newJid);
  REQUIRE(b);
  CHECK(b->state.name() == "To + Pending In");
  CHECK(b->pendingInStatus == "hi");
  CHECK(r.version(bob) == 2);
  auto dn = r.item(dee, newJid);  // revived: the tombstone's old name and groups are not back
  REQUIRE(dn);
  CHECK(dn->name.empty());
  CHECK(dn->groups.empty());
  CHECK(dn->version == 4);
  CHECK(r.version(dee) == 4);
  // cy: left alone.
  CHECK(r.item(cy, oldJid)->name == "Old");
  CHECK(r.item(cy, newJid)->name == "New");
  CHECK(r.version(cy) == cyVersion);
  // eve: her pending request from the old ID stays as it was.
  CHECK(r.pendingIn(eve).size() == 1);
  CHECK(r.pendingIn(eve)[0].contact == oldJid);
  CHECK(r.version(eve) == eveVersion);
  // Groups moved, not copied.
  CHECK(e.count("SELECT COUNT(*) AS n FROM xcp_roster_group g JOIN xcp_roster_item i ON i.id = g.item_id "
                "WHERE i.owner = ? AND i.contact = ?",
                {ann, oldJid}) == 0);
  CHECK(e.count("SELECT COUNT(*) AS n FROM xcp_roster_item WHERE contact = ? AND removed = FALSE AND pending_only = FALSE",
                {oldJid}) == 1);  // cy's
  // Privacy decisions and block items.
  CHECK(e.count("SELECT COUNT(*) AS n FROM xcp_privacy_decision WHERE owner = ? AND watcher = ? AND decision = 'allow'",
                {ann, newJid}) == 1);
  CHECK(e.count("SELECT COUNT(*) AS n FROM xcp_privacy_decision WHERE owner = ?", {bob}) == 2);  // skipped: stays
  CHECK(e.count("SELECT COUNT(*) AS n FROM xcp_block WHERE owner = ? AND blocked = ?", {ann, newJid}) == 1);
  CHECK(e.count("SELECT COUNT(*) AS n FROM xcp_block WHERE owner = ?", {bob}) == 2);
  CHECK(e.count("SELECT COUNT(*) AS n FROM xcp_block WHERE owner = ? AND blocked = ?", {cy, oldJid + "/phone"}) == 1);

  // Again: nothing left under the old ID but cy's.
  auto again = e.rename(oldJid, newJid);
  CHECK(again.changed.empty());
  CHECK(again.alreadyHadNew == std::vector<std::string>{cy});
  CHECK(again.privacyRows == 0);
  CHECK(again.blockRows == 0);
  CHECK(r.version(ann) == 4);
  // Back: the tombstones of the old ID are revived.
  auto back = e.rename(newJid, oldJid);
  REQUIRE(back.changed.size() == 3);
  CHECK(*r.item(ann, oldJid) == back.changed[0].added);
  CHECK(r.item(ann, oldJid)->groups == std::vector<std::string>{"A", "B"});

  CHECK_THROWS_AS(e.rename(oldJid, oldJid), StoreInputError);
  CHECK_THROWS_AS(e.rename("", newJid), StoreInputError);
}

// A stranger's request from the new ID (pendingOnly) meets the moved item.
inline void renameOntoPendingRequest(Env& e) {
  auto ann = e.user("ann"), bob = e.user("bob");
  RosterStore r(e.db);
  const std::string oldJid = "old.id@ms.example.org", newJid = "new.id@ms.example.org";
  r.setSubscription(ann, oldJid, state(Subscription::To), std::nullopt, limits(0, 0));
  r.setSubscription(ann, newJid, state(Subscription::None, false, true), std::string("new here"), limits(0, 0));
  r.setSubscription(bob, oldJid, state(Subscription::Both), std::nullopt, limits(0, 0));
  r.setSubscription(bob, newJid, state(Subscription::None, false, true), std::string("new here"), limits(0, 0));
  auto res = e.rename(oldJid, newJid);
  REQUIRE(res.changed.size() == 2);
  auto a = r.item(ann, newJid);
  REQUIRE(a);
  CHECK(sub(a) == "To + Pending In");  // the request stays pending
  CHECK(a->pendingInStatus == "new here");
  CHECK(r.contacts(ann) == 1);
  CHECK(r.pendingIn(ann).size() == 1);
  auto b = r.item(bob, newJid);
  CHECK(sub(b) == "Both");  // "from" already: nothing to ask
  CHECK(b->pendingInStatus.empty());
}

}  // namespace bulkcases
