// Directory on the fake database (issue 15, deliverable 5): the real
// migrations and the real SQL of directory.cpp, without a MariaDB.
#include <doctest/doctest.h>
#include <imp/core/admin_http.h>
#include <imp/directory/directory.h>
#include <imp/testing/fake_database.h>
#include <imp/testing/store_checks.h>

using imp::core::AdminError;
using imp::directory::Directory;
using imp::directory::User;
using imp::testing::FakeDatabase;

namespace {

struct Fixture {
  FakeDatabase db;
  Directory dir{db};
  Fixture() {
    db.migrate();
    db.exec("INSERT INTO core_node (node_id, role, hostname, admin_url, version) VALUES ('node-a', 'single', 'a', '', '0')");
  }
  std::int64_t generation() { return imp::testing::settingsGeneration(db); }
};

using imp::testing::adminError;

User user(const std::string& id, const std::string& address) {
  User u;
  u.userid = id;
  u.imAddress = address;
  return u;
}

}  // namespace

TEST_CASE_FIXTURE(Fixture, "users: add, look up, list, delete") {
  auto alice = user("alice", "Alice@Example.COM");
  alice.homeNode = "node-a";
  alice.msSipUri = "sip:alice@example.com";
  dir.addUser(alice);
  CHECK(generation() == 2);
  auto got = dir.user("alice");
  REQUIRE(got);
  CHECK(got->imAddress == "alice@example.com");
  CHECK(got->licensed);
  CHECK(got->homeNode == "node-a");
  CHECK(dir.userByAddress("ALICE@example.com")->userid == "alice");
  CHECK(dir.userByMsSipUri("sip:alice@example.com")->userid == "alice");
  CHECK_FALSE(dir.userByAddress("alice"));
  CHECK_FALSE(dir.user("bob"));

  auto bob = user("bob", "bob@other.org");
  bob.licensed = false;
  dir.addUser(bob);
  dir.addUser(user("carol", "carol@example.com"));
  CHECK(dir.users().size() == 3);
  auto inDomain = dir.users("EXAMPLE.com");
  REQUIRE(inDomain.size() == 2);
  CHECK(inDomain[0].userid == "alice");
  CHECK(inDomain[1].userid == "carol");
  auto page = dir.users("", 1, 1);
  REQUIRE(page.size() == 1);
  CHECK(page[0].userid == "bob");
  CHECK_FALSE(page[0].licensed);
  CHECK(page[0].homeNode.empty());
  CHECK(generation() == 4);

  CHECK(dir.deleteUser("bob"));
  CHECK_FALSE(dir.deleteUser("bob"));
  CHECK(dir.users().size() == 2);
  CHECK(generation() == 5);
}

TEST_CASE_FIXTURE(Fixture, "users: validation and duplicate keys answered precisely") {
  dir.addUser(user("alice", "alice@example.com"));
  auto gen = generation();
  CHECK(adminError([&] { dir.addUser(user("alice", "other@example.com")); }) == "409 user_exists: user 'alice' already exists");
  CHECK(adminError([&] { dir.addUser(user("alice2", "ALICE@example.com")); }) ==
        "409 im_address_in_use: IM address 'alice@example.com' already belongs to user 'alice'");
  CHECK(adminError([&] { dir.addUser(user("bad id", "x@example.com")); }).rfind("400 invalid_userid", 0) == 0);
  CHECK(adminError([&] { dir.addUser(user("x", "no-domain")); }).rfind("400 invalid_im_address", 0) == 0);
  auto homeless = user("dave", "dave@example.com");
  homeless.homeNode = "node-z";
  CHECK(adminError([&] { dir.addUser(homeless); }) ==
        "400 invalid_home_node: home node 'node-z' is not a node of this cluster");
  auto badUri = user("erin", "erin@example.com");
  badUri.msSipUri = "tel:+1555";
  CHECK(adminError([&] { dir.addUser(badUri); }).rfind("400 invalid_ms_sip_uri", 0) == 0);
  CHECK(dir.users().size() == 1);
  CHECK(generation() == gen);
}

TEST_CASE_FIXTURE(Fixture, "domains: administrator-managed and in use") {
  dir.addDomain("Example.COM", "main");
  CHECK(generation() == 2);
  CHECK(adminError([&] { dir.addDomain("example.com"); }) == "409 domain_exists: domain 'example.com' is already configured");
  CHECK(adminError([&] { dir.addDomain("localhost"); }).rfind("400 invalid_domain", 0) == 0);
  CHECK(adminError([&] { dir.addDomain("ok.example.com", std::string(256, 'd')); }).rfind("400 invalid_description", 0) == 0);
  dir.addUser(user("alice", "alice@example.com"));
  dir.addUser(user("bob", "bob@other.org"));
  auto ds = dir.domains();
  REQUIRE(ds.size() == 2);
  CHECK(ds[0].name == "example.com");
  CHECK(ds[0].adminManaged);
  CHECK(ds[0].localUsers == 1);
  CHECK(ds[0].description == "main");
  CHECK(ds[1].name == "other.org");
  CHECK_FALSE(ds[1].adminManaged);
  CHECK(ds[1].status() == "in use on local cluster");
  CHECK(dir.isLocalDomain("OTHER.org"));
  CHECK(dir.isLocalDomain("example.com"));
  CHECK_FALSE(dir.isLocalDomain("example.net"));

  auto gen = generation();
  CHECK(adminError([&] { dir.deleteDomain("example.com"); }) ==
        "409 domain_in_use: domain 'example.com' is in use by 1 user(s); move or delete them first");
  CHECK(generation() == gen);
  dir.deleteUser("alice");
  CHECK(dir.deleteDomain("EXAMPLE.com"));
  CHECK_FALSE(dir.deleteDomain("example.com"));
  CHECK_FALSE(dir.isLocalDomain("example.com"));
  CHECK(generation() == gen + 2);
}

TEST_CASE_FIXTURE(Fixture, "every change is all or nothing, whichever statement fails") {
  auto gen = generation();
  auto u = user("alice", "alice@example.com");
  u.homeNode = "node-a";
  auto n = imp::testing::failAtEveryStatement(
      db, [&] { dir.addUser(u); },
      [&](std::size_t) {
        CHECK_FALSE(dir.user("alice"));
        CHECK(generation() == gen);
      });
  CHECK(n >= 5);
  CHECK(dir.user("alice"));
  CHECK(generation() == gen + 1);

  gen = generation();
  imp::testing::failAtEveryStatement(
      db, [&] { dir.deleteUser("alice"); },
      [&](std::size_t) {
        CHECK(dir.user("alice"));
        CHECK(generation() == gen);
      });
  CHECK_FALSE(dir.user("alice"));
  CHECK(generation() == gen + 1);
}
