// Service parameters (MG-3) on the in-memory fake database, whose schema is
// the project's real migrations (sql/0010_core_service_param.sql): the
// declared default until set, validation against the declaration, one
// transaction with the settings generation per change, reset, and a running
// service's reload() seeing the new value through ClusterSettings.
#include <doctest/doctest.h>
#include <imp/core/admin_http.h>
#include <imp/core/cluster_settings.h>
#include <imp/core/module_registry.h>
#include <imp/core/service_params.h>
#include <imp/testing/fake_database.h>

#include <atomic>
#include <chrono>

using namespace imp::core;
using imp::testing::FakeDatabase;

namespace {

struct Node {
  FakeDatabase db;
  ModuleRegistry modules;
  std::unique_ptr<ServiceParams> params;

  Node() {
    db.migrate();
    auto factory = [] { return std::unique_ptr<Service>(); };
    modules.addService({"bulk-provisioning", "Cisco Bulk Provisioning Service", ServiceKind::Feature, {}, {}, factory});
    modules.addService({"federation-cm", "Cisco XCP SIP Federation Connection Manager", ServiceKind::Feature, {}, {},
                        factory});
    modules.addService({"ris-collector", "Cisco RIS Data Collector", ServiceKind::Network, {}, {}, factory});
    modules.addServiceParam({.service = "bulk-provisioning",
                             .name = "import-rate",
                             .defaultValue = 0,
                             .min = 1,
                             .max = 1000000,
                             .unit = "rows/s",
                             .help = "rows imported per second",
                             .zeroIsUnlimited = true});
    modules.addServiceParam({.service = "bulk-provisioning",
                             .name = "debug-trace",
                             .type = ServiceParamType::Boolean,
                             .defaultValue = 0,
                             .help = "the Bulk Provisioning Service's own debug trace"});
    modules.addServiceParam({.service = "federation-cm",
                             .name = "recovery-rate",
                             .defaultValue = 5000,
                             .min = 1,
                             .max = 100000,
                             .unit = "requests/s",
                             .help = "SUBSCRIBEs and NOTIFYs per second"});
    params = std::make_unique<ServiceParams>(db, modules);
  }

  std::int64_t generation() { return db.query("SELECT generation FROM core_settings WHERE id = 1").num(0, "generation"); }
  std::int64_t rows() { return db.query("SELECT COUNT(*) AS n FROM core_service_param").num(0, "n"); }
};

struct Refusal {
  int status = 0;
  std::string code, message;
};

template <class F>
Refusal refusal(F fn) {
  try {
    fn();
  } catch (const AdminError& e) {
    return {e.status(), e.code(), e.what()};
  }
  return {};
}

}  // namespace

TEST_CASE("a parameter has its declared default until an administrator sets it (MG-3)") {
  Node n;
  CHECK(n.params->get("bulk-provisioning", "import-rate") == 0);
  CHECK(n.params->get("federation-cm", "recovery-rate") == 5000);
  CHECK_FALSE(n.params->stored("federation-cm", "recovery-rate").has_value());
  auto list = n.params->list("bulk-provisioning");
  REQUIRE(list.size() == 2);
  CHECK(list[0].info->name == "import-rate");
  CHECK(list[0].value == 0);
  CHECK_FALSE(list[0].stored);
  CHECK(list[1].info->name == "debug-trace");
  // A registered service without parameters has an empty list.
  CHECK(n.params->list("ris-collector").empty());
}

TEST_CASE("set stores the value and bumps the settings generation; the same value again changes nothing") {
  Node n;
  const auto gen = n.generation();
  auto c = n.params->set("federation-cm", "recovery-rate", std::int64_t{200});
  CHECK(c.changed);
  CHECK(c.oldValue == 5000);
  CHECK(c.newValue == 200);
  CHECK(c.generation == static_cast<std::uint64_t>(gen + 1));
  CHECK(n.generation() == gen + 1);
  CHECK(n.params->get("federation-cm", "recovery-rate") == 200);
  CHECK(n.params->stored("federation-cm", "recovery-rate") == 200);
  auto list = n.params->list("federation-cm");
  REQUIRE(list.size() == 1);
  CHECK(list[0].stored);
  CHECK(list[0].value == 200);
  CHECK(list[0].changedAt.size() == 19);  // 2026-12-07T10:00:00

  auto again = n.params->set("federation-cm", "recovery-rate", "200");
  CHECK_FALSE(again.changed);
  CHECK(again.oldValue == 200);
  CHECK(again.generation == 0);
  CHECK(n.generation() == gen + 1);

  auto next = n.params->set("federation-cm", "recovery-rate", "300");
  CHECK(next.changed);
  CHECK(next.oldValue == 200);
  CHECK(n.generation() == gen + 2);
  CHECK(n.rows() == 1);
  // Setting the default stores it too: it then overrides what a service
  // would use without a stored value (federation-cm: impd.conf).
  CHECK(n.params->set("federation-cm", "recovery-rate", "5000").changed);
  CHECK(n.params->stored("federation-cm", "recovery-rate") == 5000);
}

TEST_CASE("a change and its generation are one transaction: a failure at any statement keeps neither") {
  Node n;
  n.params->set("federation-cm", "recovery-rate", "200");
  auto gen = n.generation();
  auto statements = imp::testing::failAtEveryStatement(
      n.db, [&] { n.params->set("federation-cm", "recovery-rate", "300"); },
      [&](std::size_t) {
        CHECK(n.params->get("federation-cm", "recovery-rate") == 200);
        CHECK(n.generation() == gen);
      });
  CHECK(statements >= 3);  // read, write, bump
  CHECK(n.params->get("federation-cm", "recovery-rate") == 300);
  CHECK(n.generation() == gen + 1);

  gen = n.generation();
  imp::testing::failAtEveryStatement(
      n.db, [&] { n.params->reset("federation-cm", "recovery-rate"); },
      [&](std::size_t) {
        CHECK(n.params->stored("federation-cm", "recovery-rate") == 300);
        CHECK(n.generation() == gen);
      });
  CHECK_FALSE(n.params->stored("federation-cm", "recovery-rate").has_value());
  CHECK(n.generation() == gen + 1);
}

TEST_CASE("values the declaration refuses are 400 naming the parameter and its range; nothing is stored") {
  Node n;
  const auto gen = n.generation();
  for (const char* bad : {"0", "100001", "-5", "unlimited", "fast", "", "12abc", " 12", "1e3", "99999999999999999999"}) {
    INFO("value: '", bad, "'");
    auto r = refusal([&] { n.params->set("federation-cm", "recovery-rate", std::string_view(bad)); });
    CHECK(r.status == 400);
    CHECK(r.code == "invalid_value");
    CHECK(r.message == "service parameter recovery-rate of federation-cm must be 1..100000 requests/s, not '" +
                           std::string(bad) + "'");
  }
  auto r = refusal([&] { n.params->set("federation-cm", "recovery-rate", std::int64_t{0}); });
  CHECK(r.message == "service parameter recovery-rate of federation-cm must be 1..100000 requests/s, not '0'");
  r = refusal([&] { n.params->set("bulk-provisioning", "import-rate", "-1"); });
  CHECK(r.message == "service parameter import-rate of bulk-provisioning must be 1..1000000 rows/s or unlimited, not '-1'");
  r = refusal([&] { n.params->set("bulk-provisioning", "debug-trace", "1"); });
  CHECK(r.message == "service parameter debug-trace of bulk-provisioning must be on or off, not '1'");
  CHECK(n.generation() == gen);
  CHECK(n.rows() == 0);
}

TEST_CASE("unknown services and parameters are 404 with the valid names") {
  Node n;
  auto r = refusal([&] { n.params->list("bulk"); });
  CHECK(r.status == 404);
  CHECK(r.code == "unknown_service");
  CHECK(r.message == "unknown service 'bulk'; services with parameters: bulk-provisioning, federation-cm");
  r = refusal([&] { n.params->set("bulk", "import-rate", "5"); });
  CHECK(r.code == "unknown_service");
  r = refusal([&] { n.params->set("bulk-provisioning", "import_rate", "5"); });
  CHECK(r.status == 404);
  CHECK(r.code == "unknown_service_param");
  CHECK(r.message == "bulk-provisioning has no service parameter 'import_rate'; its parameters: import-rate, debug-trace");
  r = refusal([&] { n.params->reset("ris-collector", "rate"); });
  CHECK(r.message == "ris-collector has no service parameter 'rate'; it has none");
  r = refusal([&] { n.params->get("federation-cm", "nope"); });
  CHECK(r.status == 404);
}

TEST_CASE("unlimited is 0 of a parameter that allows it; booleans are on and off") {
  Node n;
  const auto& rate = n.params->info("bulk-provisioning", "import-rate");
  CHECK(paramRange(rate) == "1..1000000 or unlimited");
  CHECK(formatParamValue(rate, 0) == "unlimited");
  CHECK(formatParamValue(rate, 22) == "22");
  CHECK(parseParamValue(rate, "unlimited") == 0);
  CHECK(parseParamValue(rate, "0") == 0);
  CHECK(parseParamValue(rate, "1000000") == 1000000);
  n.params->set("bulk-provisioning", "import-rate", "22");
  auto c = n.params->set("bulk-provisioning", "import-rate", "unlimited");
  CHECK(c.changed);
  CHECK(c.oldValue == 22);
  CHECK(c.newValue == 0);
  CHECK(n.params->stored("bulk-provisioning", "import-rate") == 0);

  const auto& trace = n.params->info("bulk-provisioning", "debug-trace");
  CHECK(paramRange(trace) == "on|off");
  CHECK(formatParamValue(trace, 1) == "on");
  CHECK(parseParamValue(trace, "off") == 0);
  n.params->set("bulk-provisioning", "debug-trace", "on");
  CHECK(n.params->get("bulk-provisioning", "debug-trace") == 1);

  const auto& recovery = n.params->info("federation-cm", "recovery-rate");
  CHECK(paramRange(recovery) == "1..100000");
  CHECK(formatParamValue(recovery, 0) == "0");
}

TEST_CASE("reset removes the stored value: the default applies again") {
  Node n;
  n.params->set("bulk-provisioning", "import-rate", "22");
  const auto gen = n.generation();
  auto c = n.params->reset("bulk-provisioning", "import-rate");
  CHECK(c.changed);
  CHECK(c.oldValue == 22);
  CHECK(c.newValue == 0);
  CHECK(c.generation == static_cast<std::uint64_t>(gen + 1));
  CHECK(n.params->get("bulk-provisioning", "import-rate") == 0);
  CHECK(n.rows() == 0);
  auto again = n.params->reset("bulk-provisioning", "import-rate");
  CHECK_FALSE(again.changed);
  CHECK(n.generation() == gen + 1);
}

TEST_CASE("a stored value the declaration no longer accepts counts as not set") {
  // E.g. a release narrowed the range: the service gets the default, not a
  // value its declaration refuses.
  Node n;
  n.db.exec("INSERT INTO core_service_param (service, name, value) VALUES (?, ?, ?)",
            {std::string("federation-cm"), std::string("recovery-rate"), std::int64_t{500000}});
  CHECK_FALSE(n.params->stored("federation-cm", "recovery-rate").has_value());
  CHECK(n.params->get("federation-cm", "recovery-rate") == 5000);
  CHECK_FALSE(n.params->list("federation-cm")[0].stored);
  auto c = n.params->set("federation-cm", "recovery-rate", "100");
  CHECK(c.oldValue == 5000);
  CHECK(n.params->get("federation-cm", "recovery-rate") == 100);
}

TEST_CASE("a running service's reload() sees the new value once the settings watcher applies the change") {
  Node n;
  ClusterSettings settings(n.db, std::chrono::hours(1), nullptr);  // polls only when asked
  std::atomic<std::int64_t> seen{-1};
  // What a service does in reload(): re-read its parameter.
  settings.subscribe([&](const ConfigChange&) { seen = n.params->get("federation-cm", "recovery-rate"); });
  settings.start();
  CHECK(seen == 5000);  // the first poll, like start()
  auto c = n.params->set("federation-cm", "recovery-rate", "200");
  REQUIRE(settings.applyNow(c.generation, std::chrono::seconds(10)));
  CHECK(seen == 200);
  c = n.params->reset("federation-cm", "recovery-rate");
  REQUIRE(settings.applyNow(c.generation, std::chrono::seconds(10)));
  CHECK(seen == 5000);
  settings.stop();
}
