// gather() on the fake database (tests/support): the real migrations and
// the real SQL of the stores fill the troubleshooter's Facts, and a database
// that cannot be read turns into unavailable checks, not an exception.
#include <doctest/doctest.h>
#include <imp/directory/directory.h>
#include <imp/sip_proxy/config_store.h>
#include <imp/testing/fake_database.h>
#include <imp/troubleshoot/gather.h>

#include <stdexcept>

using namespace imp::troubleshoot;
using imp::testing::FakeDatabase;
namespace sp = imp::sip_proxy;

TEST_CASE("gather reads the stores and the checks see a healthy setup") {
  FakeDatabase db;
  db.migrate();
  sp::ConfigStore store(db);
  imp::directory::Directory dir(db);
  db.query("INSERT INTO core_node (node_id, role, hostname, admin_url, version) VALUES "
           "('imp1', 'single', 'imp1', 'http://127.0.0.1:8780', '1')");
  dir.addDomain("example.com");
  dir.addUser({"alice", "alice@example.com", true, "imp1", ""});
  dir.addUser({"bob", "bob@example.com", true, "", ""});
  store.updateFederation({.enabled = true});
  sp::StaticRoute r;
  r.pattern = ".com.example.*";
  r.nextHop = "10.0.0.5";
  store.addRoute(r);
  store.addAcl("10.0.0.5", "Lync");
  store.setListener("tls-server-auth", 5063, std::nullopt);
  store.setListener("tls-peer-auth", 5061, std::nullopt);
  store.addPeerSubject("lync.example.com", "");
  sp::TlsContextUpdate u;
  u.peerSubjects = std::vector<std::string>{"lync.example.com"};
  store.updateTlsContext("peer-auth", u, nullptr);

  auto f = gather({&db, nullptr, nullptr, "imp1"});
  CHECK(f.federation.enabled);
  CHECK(f.interClusterPeers == 0);
  REQUIRE(f.routes.size() == 1);
  CHECK(f.routes[0].nextHop == "10.0.0.5");
  CHECK(f.acl.size() == 1);
  CHECK(f.domains == std::vector<std::string>{"example.com"});
  CHECK(f.maxContacts == 200);
  CHECK(f.homedUsers == 1);
  // no service host and no certificate given: those two checks are unavailable
  CHECK(f.unavailable.size() == 2);
  CHECK(f.unavailable.count("federation-services") == 1);
  CHECK(f.unavailable.count("node-certificate") == 1);

  auto results = runChecks(f);
  for (const auto& res : results) {
    INFO(res.id << ": " << res.detail);
    if (res.id == "federation-services" || res.id == "node-certificate") CHECK(res.status == Status::Fail);
    else CHECK(res.status == Status::Pass);
  }

  store.deleteAcl("10.0.0.5");
  CHECK(checkAclCoversNextHops(gather({&db, nullptr, nullptr, "imp1"})).status == Status::Fail);
}

TEST_CASE("without a database every database check is unavailable, and gather does not throw") {
  auto f = gather({});
  auto results = runChecks(f);
  REQUIRE(results.size() == 9);
  for (const auto& res : results) {
    INFO(res.id << ": " << res.detail);
    CHECK(res.status == Status::Fail);
    CHECK(res.detail.rfind("could not be checked: ", 0) == 0);
  }
}
