// gather() on the fake database (tests/support): the real migrations and
// the real SQL of the stores fill the troubleshooter's Facts, and a database
// that cannot be read turns into unavailable checks, not an exception.
#include <doctest/doctest.h>
#include <imp/core/dns.h>
#include <imp/directory/directory.h>
#include <imp/sip_proxy/config_store.h>
#include <imp/testing/fake_database.h>
#include <imp/troubleshoot/gather.h>

#include <memory>
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

  auto f = gather({&db, nullptr, nullptr, "imp1", {}});
  CHECK(f.federation.enabled);
  CHECK(f.interClusterPeers == 0);
  REQUIRE(f.routes.size() == 1);
  CHECK(f.routes[0].nextHop == "10.0.0.5");
  CHECK(f.acl.size() == 1);
  CHECK(f.domains == std::vector<std::string>{"example.com"});
  CHECK(f.maxContacts == 200);
  CHECK(f.homedUsers == 1);
  // no service host, no certificate and no resolver given: those checks are unavailable
  CHECK(f.unavailable.size() == 6);
  CHECK(f.nodes == std::vector<std::pair<std::string, std::string>>{{"imp1", "imp1"}});
  CHECK(f.unavailable.count("federation-services") == 1);
  CHECK(f.unavailable.count("node-certificate") == 1);
  CHECK(f.unavailable.at("next-hops") == "no resolver");
  CHECK(f.unavailable.at("peer-reverse-dns") == "no resolver");
  CHECK(f.unavailable.at("microsoft-certificate") == "no resolver");
  CHECK(f.unavailable.at("node-names") == "no resolver");
  CHECK(f.dualEnabledUsers == 0);

  auto results = runChecks(f);
  for (const auto& res : results) {
    INFO(res.id << ": " << res.detail);
    if (f.unavailable.count(res.id)) CHECK(res.status == Status::Fail);
    else CHECK(res.status == Status::Pass);
  }

  // FED-1: licensed here and carrying a Microsoft SIP URI; an unlicensed
  // user with one is a Microsoft user, as it should be
  dir.addUser({"carol", "carol@example.com", true, "imp1", "sip:carol@example.com"});
  dir.addUser({"dave", "dave@example.com", false, "", "sip:dave@example.com"});
  dir.addUser({"abe", "abe@example.com", true, "", "sip:abe@example.com"});
  f = gather({&db, nullptr, nullptr, "imp1", {}});
  CHECK(f.dualEnabledUsers == 2);
  CHECK(f.dualEnabledSample == std::vector<std::string>{"abe", "carol"});
  CHECK(checkSingleSystemUsers(f).status == Status::Fail);

  store.deleteAcl("10.0.0.5");
  CHECK(checkAclCoversNextHops(gather({&db, nullptr, nullptr, "imp1", {}})).status == Status::Fail);
}

namespace {
// Answers every reverse lookup with "peer.example.com" and resolves nothing.
struct AnsweringResolver : imp::core::Resolver {
  std::vector<std::string> asked;
  void reverse(const std::string& ip, imp::core::ReverseCallback cb) override {
    asked.push_back(ip);
    cb(std::string("peer.example.com"));
  }
  void forward(const std::string& host, imp::core::ForwardCallback cb) override {
    cb(host == "imp1.example.com" ? std::vector<std::string>{"10.0.0.1"} : std::vector<std::string>{});
  }
  void srv(const std::string&, imp::core::SrvCallback cb) override { cb({}); }
  void naptr(const std::string&, imp::core::NaptrCallback cb) override { cb({}); }
};
}  // namespace

TEST_CASE("gather probes the next hops and looks up the peers' addresses") {
  FakeDatabase db;
  db.migrate();
  sp::ConfigStore store(db);
  sp::StaticRoute r;
  r.pattern = ".com.example.*";
  r.nextHop = "lync.example.com";  // resolves to nothing here
  store.addRoute(r);
  r.nextHop = "127.0.0.1";
  r.port = 9;  // discard: nothing answers SIP there
  r.transport = sp::Transport::Tcp;
  r.priority = 2;
  store.addRoute(r);
  store.addAcl("10.0.0.5", "Lync");
  store.addAcl("lync.example.com", "Lync");
  db.query("INSERT INTO core_node (node_id, role, hostname, admin_url, version) VALUES "
           "('imp1', 'single', 'imp1.example.com', 'http://127.0.0.1:8780', '1'), "
           "('imp2', 'home', 'imp2.example.com', 'http://127.0.0.2:8780', '1')");
  auto dns = std::make_shared<AnsweringResolver>();
  NodeSources node{&db, nullptr, nullptr, "imp1", {}};
  node.probe.resolver = dns;
  node.probe.sipTimeout = std::chrono::milliseconds(1000);
  auto f = gather(node);
  CHECK(f.unavailable.count("next-hops") == 0);
  REQUIRE(f.hopProbes.size() == 2);
  CHECK(f.hopProbes[0].hop == "lync.example.com:5061;TLS");
  CHECK(f.hopProbes[0].error == "the name does not resolve (no A/AAAA record)");
  CHECK(f.hopProbes[1].hop == "127.0.0.1:9;TCP");
  CHECK(f.hopProbes[1].status == 0);
  // the ACL's address and the next hop given by address, not the names
  REQUIRE(f.ptrProbes.size() == 2);
  CHECK(f.ptrProbes[0].ip == "10.0.0.5");
  CHECK(f.ptrProbes[1].ip == "127.0.0.1");
  CHECK(f.ptrProbes[1].name == std::optional<std::string>("peer.example.com"));
  CHECK(checkNextHops(f).status == Status::Fail);
  CHECK(checkPeerReverseDns(f).status == Status::Pass);
  // the cluster's node names
  REQUIRE(f.nodeNames.size() == 2);
  CHECK(f.nodeNames[0].addresses == std::vector<std::string>{"10.0.0.1"});
  CHECK(f.nodeNames[1].addresses.empty());
  CHECK(checkNodeNames(f).detail == "imp2 (imp2.example.com) does not resolve");
}

TEST_CASE("without a database every database check is unavailable, and gather does not throw") {
  auto f = gather({});
  auto results = runChecks(f);
  REQUIRE(results.size() == 14);
  for (const auto& res : results) {
    INFO(res.id << ": " << res.detail);
    CHECK(res.status == Status::Fail);
    CHECK(res.detail.rfind("could not be checked: ", 0) == 0);
  }
}
