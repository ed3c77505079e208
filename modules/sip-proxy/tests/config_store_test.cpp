// ConfigStore on the fake database (issue 15, deliverable 5): the real
// migrations and the real SQL of config_store.cpp, without a MariaDB.
#include <doctest/doctest.h>
#include <imp/core/admin_http.h>
#include <imp/sip_proxy/config_store.h>
#include <imp/testing/fake_database.h>
#include <imp/testing/store_checks.h>

using imp::core::AdminError;
using imp::testing::FakeDatabase;
using namespace imp::sip_proxy;

namespace {

struct Fixture {
  FakeDatabase db;
  ConfigStore store{db};
  Fixture() { db.migrate(); }
  std::int64_t generation() { return imp::testing::settingsGeneration(db); }
};

using imp::testing::adminError;

StaticRoute route(const std::string& pattern, const std::string& hop, int priority) {
  StaticRoute r;
  r.pattern = pattern;
  r.nextHop = hop;
  r.priority = priority;
  return r;
}

}  // namespace

TEST_CASE_FIXTURE(Fixture, "federation: defaults, a change with its history, refusals") {
  auto st = store.federation();
  CHECK_FALSE(st.settings.enabled);
  CHECK(st.settings.routingMode == RoutingMode::Basic);
  CHECK(st.recent.empty());

  auto res = store.updateFederation({.enabled = true});
  CHECK(res.changed);
  CHECK(res.generation == 2);
  CHECK(generation() == 2);
  st = store.federation();
  CHECK(st.settings.enabled);
  REQUIRE(st.recent.size() == 1);
  CHECK(st.recent[0].what.find("enabled") != std::string::npos);
  CHECK(st.changedAt == st.recent[0].at);

  // The same value again changes nothing and bumps nothing.
  res = store.updateFederation({.enabled = true});
  CHECK_FALSE(res.changed);
  CHECK(res.generation == 0);
  CHECK(generation() == 2);

  CHECK(adminError([&] { store.updateFederation({}); }).rfind("400 invalid_federation", 0) == 0);

  // FED-6: advanced routing is refused while an inter-cluster peer exists.
  db.exec("INSERT INTO sip_intercluster_peer (address) VALUES ('peer.example.com')");
  CHECK(adminError([&] { store.updateFederation({.routingMode = RoutingMode::Advanced}); }).rfind("409 federation_refused", 0) ==
        0);
  CHECK(store.federation().settings.routingMode == RoutingMode::Basic);
  CHECK(generation() == 2);
}

TEST_CASE_FIXTURE(Fixture, "listeners: catalog order, changes, port conflicts") {
  auto ls = store.listeners();
  REQUIRE(ls.size() == 4);
  CHECK(ls[0].name == "tcp");
  CHECK(ls[0].port == 5060);

  auto l = store.setListener("tcp", 5070, std::nullopt);
  CHECK(l.port == 5070);
  CHECK(l.enabled);
  CHECK(store.listeners()[0].port == 5070);
  CHECK(generation() == 2);

  store.setListener("tcp", 5070, true);  // no change
  CHECK(generation() == 2);

  CHECK(adminError([&] { store.setListener("sctp", 5060, std::nullopt); }).rfind("404 unknown_listener", 0) == 0);
  CHECK(adminError([&] { store.setListener("tcp", 0, std::nullopt); }).rfind("400 invalid_port", 0) == 0);
  CHECK(adminError([&] { store.setListener("tcp", std::nullopt, std::nullopt); }).rfind("400 invalid_listener", 0) == 0);
  auto conflict = adminError([&] { store.setListener("tls-server-auth", 5070, std::nullopt); });
  CHECK(conflict.rfind("409 port_conflict", 0) == 0);
  CHECK(conflict.find("tcp") != std::string::npos);
  CHECK(store.listeners()[1].port == 5061);
  CHECK(generation() == 2);
}

TEST_CASE_FIXTURE(Fixture, "TLS peer subjects and contexts") {
  auto p = store.addPeerSubject("Lync.Example.COM", "edge");
  CHECK(p.subjectCn == "lync.example.com");
  CHECK(generation() == 2);
  auto dup = adminError([&] { store.addPeerSubject("lync.example.com", ""); });
  CHECK(dup == "409 peer_subject_exists: TLS peer subject 'lync.example.com' already exists");
  CHECK(adminError([&] { store.addPeerSubject("", ""); }).rfind("400 invalid_subject_cn", 0) == 0);
  CHECK(adminError([&] { store.addPeerSubject("a.example.com", std::string(256, 'x')); }).rfind("400 invalid_description", 0) ==
        0);
  CHECK(generation() == 2);

  auto contexts = store.tlsContexts();
  REQUIRE(contexts.size() == 2);
  CHECK(contexts[0].name == "default-server");

  std::vector<std::string> warnings;
  auto c = store.updateTlsContext("peer-auth", {.peerSubjects = std::vector<std::string>{"lync.example.com"}}, &warnings);
  CHECK(c.peerSubjects == std::vector<std::string>{"lync.example.com"});
  CHECK(store.tlsContext("peer-auth")->peerSubjects == std::vector<std::string>{"lync.example.com"});
  CHECK(store.peerSubjects()[0].usedBy == std::vector<std::string>{"peer-auth"});
  CHECK(generation() == 3);

  auto inUse = adminError([&] { store.deletePeerSubject("lync.example.com"); });
  CHECK(inUse.rfind("409 peer_subject_in_use: TLS peer subject 'lync.example.com' is selected by TLS context 'peer-auth'", 0) == 0);

  auto missing = adminError([&] {
    store.updateTlsContext("peer-auth", {.ciphers = std::string("HIGH"), .peerSubjects = std::vector<std::string>{"x.example.com"}},
                           nullptr);
  });
  CHECK(missing.rfind("400 invalid_peer_subjects: TLS peer subject 'x.example.com' does not exist", 0) == 0);
  CHECK(store.tlsContext("peer-auth")->ciphers == "HIGH:!aNULL:!MD5");  // nothing of the change is stored
  CHECK(generation() == 3);

  auto unknown = adminError([&] { store.updateTlsContext("nope", {.ciphers = std::string("HIGH")}, nullptr); });
  CHECK(unknown == "404 unknown_tls_context: no TLS context 'nope'; contexts: default-server, peer-auth");
  CHECK(adminError([&] { store.updateTlsContext("peer-auth", {}, nullptr); }).rfind("400 invalid_tls_context", 0) == 0);

  store.updateTlsContext("peer-auth", {.peerSubjects = std::vector<std::string>{}}, nullptr);
  CHECK(store.deletePeerSubject("lync.example.com"));
  CHECK_FALSE(store.deletePeerSubject("lync.example.com"));
  CHECK(store.peerSubjects().empty());
  CHECK(generation() == 5);
}

TEST_CASE_FIXTURE(Fixture, "incoming ACL") {
  auto e = store.addAcl("10.0.0.1", "lab");
  CHECK(e.kind == AclKind::Address);
  store.addAcl("Example.COM", "");
  CHECK(generation() == 3);
  CHECK(adminError([&] { store.addAcl("example.com", ""); }) ==
        "409 acl_entry_exists: incoming ACL entry 'example.com' already exists");
  CHECK(adminError([&] { store.addAcl("not a pattern", ""); }).rfind("400 invalid_pattern", 0) == 0);
  auto all = store.acl();
  REQUIRE(all.size() == 2);
  CHECK(all[0].pattern == "10.0.0.1");
  CHECK(all[1].pattern == "example.com");
  CHECK(all[1].kind == AclKind::Name);
  CHECK(store.deleteAcl("EXAMPLE.com"));
  CHECK_FALSE(store.deleteAcl("example.com"));
  CHECK(store.acl().size() == 1);
  CHECK(generation() == 4);
}

TEST_CASE_FIXTURE(Fixture, "static routes") {
  auto r = store.addRoute(route(".com.Example.*", "10.0.0.5", 1));
  CHECK(r.id > 0);
  CHECK(r.pattern == ".com.example.*");
  auto backup = store.addRoute(route(".com.example.*", "10.0.0.6", 2));
  CHECK(backup.id == r.id + 1);
  CHECK(generation() == 3);
  CHECK(adminError([&] { store.addRoute(route(".com.example.*", "10.0.0.7", 2)); }).rfind("409 route_conflict", 0) == 0);
  auto badPort = route(".com.example.*", "10.0.0.7", 3);
  badPort.port = 70000;
  CHECK(adminError([&] { store.addRoute(badPort); }).rfind("400 invalid_port", 0) == 0);
  auto routes = store.routes();
  REQUIRE(routes.size() == 2);
  CHECK(routes[0].nextHop == "10.0.0.5");
  CHECK(routes[1].priority == 2);
  CHECK(store.deleteRoute(r.id));
  CHECK_FALSE(store.deleteRoute(r.id));
  CHECK(store.routes().size() == 1);
  CHECK(generation() == 4);
}

TEST_CASE_FIXTURE(Fixture, "every change is all or nothing, whichever statement fails") {
  store.addPeerSubject("a.example.com", "");
  auto before = store.tlsContext("peer-auth");
  auto gen = generation();
  auto n = imp::testing::failAtEveryStatement(
      db,
      [&] {
        store.updateTlsContext("peer-auth",
                               {.ciphers = std::string("HIGH"), .peerSubjects = std::vector<std::string>{"a.example.com"}},
                               nullptr);
      },
      [&](std::size_t) {
        auto now = store.tlsContext("peer-auth");
        CHECK(now->ciphers == before->ciphers);
        CHECK(now->peerSubjects == before->peerSubjects);
        CHECK(generation() == gen);
      });
  CHECK(n >= 6);
  CHECK(store.tlsContext("peer-auth")->ciphers == "HIGH");
  CHECK(generation() == gen + 1);

  gen = generation();
  imp::testing::failAtEveryStatement(
      db, [&] { store.updateFederation({.enabled = true}); },
      [&](std::size_t) {
        CHECK_FALSE(store.federation().settings.enabled);
        CHECK(store.federation().recent.empty());
        CHECK(generation() == gen);
      });
  CHECK(store.federation().recent.size() == 1);
  CHECK(generation() == gen + 1);
}

TEST_CASE_FIXTURE(Fixture, "a lost database is a DbError, not a silent empty answer") {
  db.failNextOperations(1);
  CHECK_THROWS_AS(store.routes(), imp::core::DbError);
  CHECK(store.routes().empty());
}
