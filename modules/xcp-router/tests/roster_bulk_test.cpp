// RosterStore's bulk paths (MG-7 import, MG-9 rename) on the fake database:
// the scenarios of roster_bulk_cases.h (also run on MariaDB), plus what only
// the fake can show: the statements a batch costs, and that a batch is all
// or nothing whichever statement fails.
#include <doctest/doctest.h>
#include <imp/xcp_router/roster_store.h>

#include "roster_bulk_cases.h"
#include "store_fixture.h"

using namespace imp::xcp;
using bulkcases::sub;
using xcptest::StoreFixture;

namespace {

struct BulkFixture : StoreFixture {
  bulkcases::Env env{db, [this](const std::string& name) { return user(name); }, "example.com"};
  std::string user(const std::string& name) {
    imp::directory::Directory dir(db);
    if (!dir.user(name)) {
      imp::directory::User u;
      u.userid = name;
      u.imAddress = name + "@example.com";
      dir.addUser(u);
    }
    return name;
  }
};

}  // namespace

TEST_CASE_FIXTURE(BulkFixture, "MG-7: new local and remote contacts, both sides, names, groups, versions, a pair twice") {
  bulkcases::importNewContacts(env);
}

TEST_CASE_FIXTURE(BulkFixture, "MG-7: PS-1 contact, watcher and contact-side limits refuse a row with the limit") {
  bulkcases::importLimits(env);
}

TEST_CASE_FIXTURE(BulkFixture, "MG-7: tombstones revived, pending-only items made real, subscription merges") {
  bulkcases::importMerges(env);
}

TEST_CASE_FIXTURE(BulkFixture, "MG-7: refused input names the row and writes nothing") { bulkcases::importRefusedInput(env); }

TEST_CASE_FIXTURE(BulkFixture, "MG-7 / MG-9: batches and a rename in one transaction see each other") {
  bulkcases::batchesInOneTransaction(env);
}

TEST_CASE_FIXTURE(BulkFixture, "MG-7: long values and many rows are cut into statements that all arrive") {
  bulkcases::importChunks(env);
}

TEST_CASE_FIXTURE(BulkFixture, "MG-9: a rename moves items, leaves owners of the new ID alone, rewrites privacy and blocks") {
  bulkcases::renameContact(env);
}

TEST_CASE_FIXTURE(BulkFixture, "MG-9: a pending request from the new ID survives the rename onto it") {
  bulkcases::renameOntoPendingRequest(env);
}

TEST_CASE_FIXTURE(BulkFixture, "MG-7: a 1000-row batch costs a handful of statements, not some per row") {
  // 10 owners x 100 local contacts each (the contacts' rosters get the
  // reverse side), with the PS-1 limits on (the counts are read too).
  std::vector<std::string> owners, contacts;
  for (int i = 0; i < 10; ++i) owners.push_back(user("own" + std::to_string(i)));
  for (int i = 0; i < 100; ++i) contacts.push_back(user("con" + std::to_string(i)));
  std::vector<BulkContact> batch;
  for (const auto& o : owners)
    for (const auto& c : contacts) batch.push_back(env.local(o, c, "N", {"General"}));
  auto before = db.statements();
  auto res = env.import(batch, bulkcases::limits(200, 200));
  auto used = db.statements() - before;
  MESSAGE("statements for 1000 rows: " << used);
  for (const auto& r : res) CHECK(r.outcome == BulkOutcome::Imported);
  // Lock the 110 users and read their versions (1); their rosters, short,
  // read whole with the counts on the way (1); no groups to read; 2000 new
  // items (6 plain INSERTs: 1024 + 512 + 256 + 128 + 64 + 16 rows), the ids
  // of those with groups checked (1), 1000 groups (1), 110 versions (1).
  CHECK(used == 11);
  RosterStore r(db);
  CHECK(r.contacts(owners[3]) == 100);
  CHECK(r.watchers(contacts[42]) == 10);
  CHECK(r.version(contacts[42]) == 10);
}

TEST_CASE_FIXTURE(BulkFixture, "MG-7 / MG-9: a batch is all or nothing, whichever statement fails") {
  auto ann = user("ann"), bob = user("bob"), cy = user("cy");
  RosterStore r(db);
  r.setItem(ann, "t@remote.example", "T", {"G"}, 0);
  r.remove(ann, "t@remote.example");
  auto snapshot = [&] {
    return std::vector<Roster>{r.get(ann), r.get(bob), r.get(cy)};
  };
  auto same = [](const std::vector<Roster>& a, const std::vector<Roster>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (a[i].version != b[i].version || a[i].items != b[i].items) return false;
    return true;
  };
  auto before = snapshot();
  std::vector<BulkContact> batch = {env.local(ann, bob, "Bob", {"Team"}), env.remote(ann, "t@remote.example", "New", {"X"}),
                                    env.local(bob, ann, "Ann"), env.local(cy, ann, "", {"A", "B"})};
  auto n = imp::testing::failAtEveryStatement(
      db, [&] { env.import(batch, bulkcases::limits(200, 200)); },
      [&](std::size_t k) {
        INFO("fault at statement ", k);
        CHECK(same(snapshot(), before));
      });
  CHECK(n > 5);
  CHECK(sub(r.item(ann, "t@remote.example")) == "To");
  CHECK(r.item(ann, "t@remote.example")->groups == std::vector<std::string>{"X"});
  CHECK(sub(r.item(ann, env.jid(bob))) == "Both");

  before = snapshot();
  db.exec("INSERT INTO xcp_privacy_decision (owner, watcher, decision) VALUES (?, ?, 'allow')",
          {bob, env.jid(ann)});
  before = snapshot();
  n = imp::testing::failAtEveryStatement(
      db, [&] { env.rename(env.jid(ann), "ann.new@example.com"); },
      [&](std::size_t k) {
        INFO("fault at statement ", k);
        CHECK(same(snapshot(), before));
        CHECK(env.count("SELECT COUNT(*) AS n FROM xcp_privacy_decision WHERE watcher = ?", {env.jid(ann)}) == 1);
      });
  CHECK(n > 5);
  CHECK_FALSE(r.item(bob, env.jid(ann)));
  CHECK(sub(r.item(bob, "ann.new@example.com")) == "Both");
  CHECK(sub(r.item(cy, "ann.new@example.com")) == "To");
}
