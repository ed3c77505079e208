// OfflineStore on the fake database (IM-5): order, quota with a clear
// "storage full", and delivery in two steps so a crash redelivers.
#include <doctest/doctest.h>
#include <imp/directory/directory.h>
#include <imp/xcp_router/offline_store.h>

#include <regex>

#include "store_fixture.h"

using namespace imp::xcp;
using xcptest::StoreFixture;

TEST_CASE_FIXTURE(StoreFixture, "IM-5: messages come back in the order they were stored, with sender, stamp and size") {
  OfflineStore s(db);
  for (int i = 0; i < 5; ++i) {
    auto a = s.append("ann", "bob@example.com/phone", "<message><body>" + std::to_string(i) + "</body></message>", 0);
    CHECK(a.status == OfflineAppend::Status::Stored);
    CHECK(a.queued == static_cast<std::uint64_t>(i + 1));
  }
  auto all = s.fetch("ann");
  REQUIRE(all.size() == 5);
  for (std::size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i].stanza == "<message><body>" + std::to_string(i) + "</body></message>");
    CHECK(all[i].from == "bob@example.com/phone");
    CHECK(all[i].bytes == all[i].stanza.size());
    CHECK(std::regex_match(all[i].stamp, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
    if (i) CHECK(all[i].id > all[i - 1].id);
  }
  auto first2 = s.fetch("ann", 2);
  REQUIRE(first2.size() == 2);
  CHECK(first2[1].id == all[1].id);
  CHECK(s.fetch("bob").empty());
  CHECK(s.count("ann") == 5);
  CHECK(s.total() == 5);
}

TEST_CASE_FIXTURE(StoreFixture, "the offline queue of a node counts the messages of the users homed on it") {
  for (const char* node : {"node-a", "node-b"})
    db.exec("INSERT INTO core_node (node_id, role, hostname, admin_url, version) VALUES (?, 'single', ?, '', '0')",
            {std::string(node), std::string(node)});
  imp::directory::Directory dir(db);
  for (auto [id, node] : {std::pair{"carl", "node-a"}, std::pair{"dora", "node-a"}, std::pair{"eve", "node-b"}}) {
    imp::directory::User u;
    u.userid = id;
    u.imAddress = std::string(id) + "@example.com";
    u.homeNode = node;
    dir.addUser(u);
  }
  OfflineStore s(db);
  CHECK(s.totalOnNode("node-a") == 0);
  s.append("carl", "x@example.com/r", "<m>1</m>", 0);
  s.append("carl", "x@example.com/r", "<m>2</m>", 0);
  s.append("dora", "x@example.com/r", "<m>3</m>", 0);
  s.append("eve", "x@example.com/r", "<m>4</m>", 0);
  s.append("ann", "x@example.com/r", "<m>5</m>", 0);  // not assigned to a node
  CHECK(s.totalOnNode("node-a") == 3);
  CHECK(s.totalOnNode("node-b") == 1);
  CHECK(s.totalOnNode("node-c") == 0);
  CHECK(s.total() == 5);
}

TEST_CASE_FIXTURE(StoreFixture, "IM-5: delivery is fetch, then remove: a crash in between delivers again, never loses") {
  OfflineStore s(db);
  s.append("ann", "bob@example.com/a", "<message>1</message>", 0);
  s.append("ann", "bob@example.com/a", "<message>2</message>", 0);
  auto batch = s.fetch("ann");
  // ... the router "crashes" before removing: the next login sees both again.
  auto again = s.fetch("ann");
  REQUIRE(again.size() == 2);
  CHECK(again[0].id == batch[0].id);
  // Delivered: removed by id; another owner's ids are not touched.
  CHECK(s.remove("bob", {batch[0].id}) == 0);
  CHECK(s.remove("ann", {batch[0].id}) == 1);
  CHECK(s.remove("ann", {batch[0].id}) == 0);  // already gone: no error
  // A message that arrived during delivery stays.
  s.append("ann", "bob@example.com/a", "<message>3</message>", 0);
  CHECK(s.remove("ann", {batch[1].id}) == 1);
  auto left = s.fetch("ann");
  REQUIRE(left.size() == 1);
  CHECK(left[0].stanza == "<message>3</message>");
  CHECK(s.remove("ann", {}) == 0);
}

TEST_CASE_FIXTURE(StoreFixture, "IM-5: the quota gives a clear 'storage full', nothing is stored; 0 = no limit") {
  OfflineStore s(db);
  CHECK(s.append("ann", "b@x/r", "<m>1</m>", 2).status == OfflineAppend::Status::Stored);
  CHECK(s.append("ann", "b@x/r", "<m>2</m>", 2).status == OfflineAppend::Status::Stored);
  auto full = s.append("ann", "b@x/r", "<m>3</m>", 2);
  CHECK(full.status == OfflineAppend::Status::StorageFull);
  CHECK(full.queued == 2);
  CHECK(full.quota == 2);
  CHECK(full.text == "offline storage of ann is full: 2 messages (IM-5)");
  CHECK(s.count("ann") == 2);
  // Bob has his own quota.
  CHECK(s.append("bob", "a@x/r", "<m>1</m>", 2).status == OfflineAppend::Status::Stored);
  // A larger quota (changed live) or none lets it in.
  CHECK(s.append("ann", "b@x/r", "<m>3</m>", 3).status == OfflineAppend::Status::Stored);
  CHECK(s.append("ann", "b@x/r", "<m>4</m>", 0).status == OfflineAppend::Status::Stored);
  CHECK(s.count("ann") == 4);
}

TEST_CASE_FIXTURE(StoreFixture, "IM-5: refused input says why; an unknown owner is not silently dropped") {
  OfflineStore s(db);
  CHECK_THROWS_WITH_AS(s.append("ann", "b@x/r", "", 0), "the offline message is empty", StoreInputError);
  try {
    s.append("nobody", "b@x/r", "<m/>", 0);
    FAIL("stored for an unknown user");
  } catch (const StoreInputError& e) {
    CHECK(e.condition() == "item-not-found");
    CHECK(std::string(e.what()) == "no user 'nobody' in the directory");
  }
  db.failNextOperations(1);
  CHECK_THROWS_AS(s.append("ann", "b@x/r", "<m/>", 0), imp::core::DbError);
  CHECK(s.count("ann") == 0);
}
