// NodeControl on the fake database (issue 15, deliverable 5): two nodes
// sharing one cluster database, the real migrations and the real SQL of
// control.cpp, services played by lifecycle probes.
#include <doctest/doctest.h>
#include <fakes/lifecycle_probe.h>
#include <imp/core/admin_http.h>
#include <imp/core/service_host.h>
#include <imp/core/module_registry.h>
#include <imp/directory/module.h>
#include <imp/serviceability/module.h>
#include <imp/sip_proxy/module.h>
#include <imp/serviceability/control.h>
#include <imp/testing/fake_database.h>
#include <imp/testing/store_checks.h>

#include <algorithm>
#include <thread>

using imp::core::AdminError;
using imp::core::ServiceHost;
using imp::serviceability::NodeControl;
using imp::testing::FakeDatabase;

namespace {

const std::vector<std::string> kServices = {"serviceability", "ris-collector", "sip-proxy"};

// The node's real module registrations: role defaults and trace flags.
const imp::core::ModuleRegistry& nodeModules() {
  static const imp::core::ModuleRegistry r = [] {
    imp::core::ModuleRegistry m;
    imp::serviceability::registerModule(m);
    imp::directory::registerModule(m);
    imp::sip_proxy::registerModule(m);
    return m;
  }();
  return r;
}

// One node: its service host (probes), its logs and its NodeControl.
struct Node {
  std::shared_ptr<imp::testing::Journal> journal = std::make_shared<imp::testing::Journal>();
  ServiceHost host{[](const std::string&) { return imp::core::ServiceContext{}; }, std::chrono::seconds(5), nullptr};
  imp::core::LogRegistry logs{imp::core::LogSettings{}};
  NodeControl control;
  Node(FakeDatabase& db, const std::string& id)
      : control({id, "single", id + ".example.com", "http://" + id + ":8080", "0.1.0"}, db, host, logs, nodeModules(), nullptr) {
    for (const auto& s : kServices) host.registerService(imp::testing::probe(s, {}, journal));
    host.startAll(kServices);
    control.registerNode();
  }
  ~Node() { host.stopAll(); }
  bool active(const std::string& service) { return host.info(service).active; }
};

struct Fixture {
  FakeDatabase db;
  Fixture() { db.migrate(); }
  std::int64_t generation() { return imp::testing::settingsGeneration(db); }
};

using imp::testing::adminError;

}  // namespace

TEST_CASE_FIXTURE(Fixture, "nodes register, publish their services and go down") {
  Node a(db, "node-a");
  Node b(db, "node-b");
  CHECK(a.control.knownNodes() == std::vector<std::string>{"node-a", "node-b"});
  a.control.registerNode();  // again: updated, not duplicated
  CHECK(a.control.knownNodes().size() == 2);

  a.control.publishState();
  a.control.publishState();
  auto rows = db.query("SELECT service, state FROM svc_node_service WHERE node_id = 'node-a' ORDER BY service");
  REQUIRE(rows.size() == 3);
  CHECK(rows.str(0, "service") == "ris-collector");
  CHECK(rows.str(0, "state") == "running");

  a.control.markNodeDown();
  CHECK(db.query("SELECT state FROM core_node WHERE node_id = 'node-a'").str(0, "state") == "down");
  CHECK(db.query("SELECT COUNT(*) AS n FROM svc_node_service WHERE node_id = 'node-a' AND state = 'stopped'").num(0, "n") == 3);
  CHECK(db.query("SELECT state FROM core_node WHERE node_id = 'node-b'").str(0, "state") == "up");
}

TEST_CASE_FIXTURE(Fixture, "control: validation with precise errors") {
  Node a(db, "node-a");
  CHECK(adminError([&] { a.control.control("node-a", "sip-proxy", "explode"); }) ==
        "400 unknown_action: unknown action 'explode'; valid actions: activate, deactivate, start, stop, restart");
  CHECK(adminError([&] { a.control.control("node-a", "xmpp", "stop"); })
            .rfind("404 unknown_service: unknown service 'xmpp'; valid services: ", 0) == 0);
  CHECK(adminError([&] { a.control.control("node-z", "sip-proxy", "stop"); }) ==
        "404 unknown_node: unknown node 'node-z'; nodes: node-a");
  CHECK(generation() == 1);
}

TEST_CASE_FIXTURE(Fixture, "activation is stored per node and applied by that node (SV-3)") {
  Node a(db, "node-a");
  Node b(db, "node-b");
  auto r = a.control.control("node-b", "sip-proxy", "deactivate");
  CHECK(r.state == "pending");
  CHECK(generation() == 2);
  CHECK(b.active("sip-proxy"));
  auto desired = b.control.desiredServices();
  CHECK(std::find(desired.begin(), desired.end(), "sip-proxy") == desired.end());
  b.control.applyPending();
  CHECK_FALSE(b.active("sip-proxy"));
  CHECK(a.active("sip-proxy"));

  // Upserted, not duplicated.
  a.control.control("node-b", "sip-proxy", "activate");
  CHECK(db.query("SELECT COUNT(*) AS n FROM svc_activation").num(0, "n") == 1);
  b.control.applyPending();
  CHECK(b.active("sip-proxy"));

  // On this node: done at once.
  r = a.control.control("node-a", "ris-collector", "stop");
  CHECK(r.state == "done");
  CHECK(a.host.info("ris-collector").state == imp::core::ServiceState::Stopped);
  CHECK(generation() == 4);
}

TEST_CASE_FIXTURE(Fixture, "a start/stop/restart for another node is carried out by that node") {
  Node a(db, "node-a");
  Node b(db, "node-b");
  imp::serviceability::CommandResult result;
  std::thread requester([&] { result = a.control.control("node-b", "sip-proxy", "restart"); });
  // Node b's serviceability service: apply what is pending until the
  // request has been carried out.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (db.query("SELECT COUNT(*) AS n FROM svc_command WHERE state = 'done'").num(0, "n") == 0 &&
         std::chrono::steady_clock::now() < deadline)
    b.control.applyPending();
  requester.join();
  CHECK(result.state == "done");
  CHECK(result.result == "sip-proxy: restart done on node-b");
  CHECK(b.host.info("sip-proxy").restarts == 1);
  CHECK(a.host.info("sip-proxy").restarts == 0);
}

TEST_CASE_FIXTURE(Fixture, "trace settings (SV-4)") {
  Node a(db, "node-a");
  Node b(db, "node-b");
  CHECK(adminError([&] { a.control.setTrace("node-a", "sip-proxy", std::nullopt, std::string("loud"), std::nullopt); })
            .rfind("400 bad_level: unknown trace level 'loud'", 0) == 0);
  CHECK(adminError([&] {
          a.control.setTrace("node-a", "sip-proxy", std::nullopt, std::nullopt, std::vector<std::string>{"nope"});
        }).rfind("400 bad_flag: service 'sip-proxy' has no trace flag 'nope'; valid flags: sip-tcp", 0) == 0);
  CHECK(generation() == 1);

  auto v = a.control.setTrace("node-a", "sip-proxy", true, std::string("debug"), std::vector<std::string>{"routing"});
  CHECK(v.level == "debug");
  CHECK(a.logs.trace("sip-proxy").level == spdlog::level::debug);
  CHECK(a.logs.trace("sip-proxy").flags == std::set<std::string>{"routing"});
  // Only the level changes: the stored flags stay.
  v = a.control.setTrace("node-a", "sip-proxy", std::nullopt, std::string("warn"), std::nullopt);
  CHECK(v.flags == std::vector<std::string>{"routing"});
  CHECK(generation() == 3);

  // For another node: stored, applied there.
  a.control.setTrace("node-b", "sip-proxy", false, std::nullopt, std::nullopt);
  CHECK(b.logs.trace("sip-proxy").enabled);
  b.control.applyPending();
  CHECK_FALSE(b.logs.trace("sip-proxy").enabled);

  auto all = a.control.traces("node-a");
  REQUIRE(all.size() == 3);
  auto proxy = std::find_if(all.begin(), all.end(), [](const auto& t) { return t.service == "sip-proxy"; });
  CHECK(proxy->stored);
  CHECK(proxy->level == "warn");
  auto ris = std::find_if(all.begin(), all.end(), [](const auto& t) { return t.service == "ris-collector"; });
  CHECK_FALSE(ris->stored);
  CHECK(ris->level == "info");
}

TEST_CASE_FIXTURE(Fixture, "every change is all or nothing, whichever statement fails") {
  Node a(db, "node-a");
  Node b(db, "node-b");
  auto gen = generation();
  imp::testing::failAtEveryStatement(
      db, [&] { a.control.setTrace("node-b", "sip-proxy", false, std::string("error"), std::nullopt); },
      [&](std::size_t) {
        CHECK(db.query("SELECT COUNT(*) AS n FROM svc_trace").num(0, "n") == 0);
        CHECK(generation() == gen);
      });
  CHECK(db.query("SELECT level FROM svc_trace WHERE node_id = 'node-b'").str(0, "level") == "error");
  CHECK(generation() == gen + 1);

  gen = generation();
  imp::testing::failAtEveryStatement(
      db, [&] { a.control.publishState(); },
      [&](std::size_t) { CHECK(db.query("SELECT COUNT(*) AS n FROM svc_node_service").num(0, "n") == 0); });
  CHECK(db.query("SELECT COUNT(*) AS n FROM svc_node_service").num(0, "n") == 3);
  CHECK(generation() == gen);  // a heartbeat is not a settings change
}
