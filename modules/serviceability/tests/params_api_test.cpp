// The service parameter commands (MG-3) through the admin API they bind, on
// the in-memory fake database: show, set (applied by this node's settings
// watcher before the answer), reset, and the refusals with their status.
#include <Poco/JSON/Parser.h>
#include <doctest/doctest.h>
#include <imp/core/admin_http.h>
#include <imp/core/cluster_settings.h>
#include <imp/core/command_registry.h>
#include <imp/core/module_registry.h>
#include <imp/core/service_params.h>
#include <imp/serviceability/admin_api.h>
#include <imp/testing/fake_database.h>

#include <atomic>

using namespace imp;
using Obj = Poco::JSON::Object;

namespace {

struct Node {
  testing::FakeDatabase db;
  core::ModuleRegistry modules;
  std::unique_ptr<core::ServiceParams> params;
  std::unique_ptr<core::ClusterSettings> settings;
  std::atomic<std::int64_t> seen{-1};  // what a running service re-read in reload()
  serviceability::AdminContext ctx;
  core::CommandRegistry commands;
  core::AdminRouter router;

  Node() {
    db.migrate();
    modules.addService({"bulk-provisioning", "Cisco Bulk Provisioning Service", core::ServiceKind::Feature, {}, {},
                        [] { return std::unique_ptr<core::Service>(); }});
    modules.addServiceParam({.service = "bulk-provisioning",
                             .name = "import-rate",
                             .defaultValue = 0,
                             .min = 1,
                             .max = 1000000,
                             .unit = "rows/s",
                             .help = "contact rows imported per second",
                             .zeroIsUnlimited = true});
    params = std::make_unique<core::ServiceParams>(db, modules);
    settings = std::make_unique<core::ClusterSettings>(db, std::chrono::hours(1), nullptr);
    settings->subscribe([this](const core::ConfigChange&) { seen = params->get("bulk-provisioning", "import-rate"); });
    settings->start();
    ctx.modules = &modules;
    ctx.db = &db;
    ctx.settings = settings.get();
    ctx.params = params.get();
    serviceability::registerCommands(commands);
    commands.provide(ctx);
    commands.bind(router, "9.9.9");
  }
  ~Node() { settings->stop(); }

  std::pair<int, Obj::Ptr> send(const std::string& method, const std::string& path, const std::string& body = "") {
    core::AdminRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    auto resp = router.dispatch(r, true);
    return {resp.status, Poco::JSON::Parser().parse(resp.body).extract<Obj::Ptr>()};
  }
};

std::string message(const Obj::Ptr& o) { return o->getObject("error")->getValue<std::string>("message"); }

}  // namespace

TEST_CASE("service param show|set|reset over the admin API, applied live on this node (MG-3)") {
  Node n;
  const std::string path = "/api/v1/services/bulk-provisioning/params";
  auto [code, shown] = n.send("GET", path);
  REQUIRE(code == 200);
  CHECK(shown->getValue<std::string>("display_name") == "Cisco Bulk Provisioning Service");
  auto p = shown->getArray("params")->getObject(0);
  CHECK(p->getValue<std::string>("value") == "unlimited");
  CHECK(p->getValue<std::string>("default") == "unlimited");
  CHECK(p->getValue<std::string>("range") == "1..1000000 or unlimited");
  CHECK_FALSE(p->getValue<bool>("stored"));
  CHECK(n.seen == 0);

  auto [setCode, set] = n.send("PUT", path + "/import-rate", R"({"value": "22"})");
  REQUIRE(setCode == 200);
  CHECK(set->getValue<std::string>("old_value") == "unlimited");
  CHECK(set->getValue<std::string>("new_value") == "22");
  CHECK(set->getValue<bool>("changed"));
  CHECK(set->getValue<std::string>("applied") == "live");
  // "live": the settings watcher had run the reloads when the answer came.
  CHECK(n.seen == 22);
  CHECK(n.send("GET", path).second->getArray("params")->getObject(0)->getValue<std::string>("value") == "22");

  auto [sameCode, same] = n.send("PUT", path + "/import-rate", R"({"value": "22"})");
  CHECK(sameCode == 200);
  CHECK(same->getValue<std::string>("applied") == "unchanged");
  CHECK_FALSE(same->has("settings_generation"));

  auto [resetCode, reset] = n.send("DELETE", path + "/import-rate");
  REQUIRE(resetCode == 200);
  CHECK(reset->getValue<std::string>("old_value") == "22");
  CHECK(reset->getValue<std::string>("new_value") == "unlimited");
  CHECK(reset->getValue<std::string>("applied") == "live");
  CHECK(n.seen == 0);
}

TEST_CASE("service param refusals: 400 with the range, 404 for unknown names") {
  Node n;
  auto [bad, badBody] = n.send("PUT", "/api/v1/services/bulk-provisioning/params/import-rate", R"({"value": "-2"})");
  CHECK(bad == 400);
  CHECK(badBody->getObject("error")->getValue<std::string>("field") == "value");
  CHECK(message(badBody) == "service parameter import-rate of bulk-provisioning must be 1..1000000 rows/s or unlimited, not '-2'");
  auto [unknown, unknownBody] = n.send("PUT", "/api/v1/services/bulk/params/import-rate", R"({"value": "2"})");
  CHECK(unknown == 404);
  CHECK(message(unknownBody) == "unknown service 'bulk'; services with parameters: bulk-provisioning");
  auto [noParam, noParamBody] = n.send("DELETE", "/api/v1/services/bulk-provisioning/params/rate");
  CHECK(noParam == 404);
  CHECK(message(noParamBody) == "bulk-provisioning has no service parameter 'rate'; its parameters: import-rate");
  auto [noShow, noShowBody] = n.send("GET", "/api/v1/services/nope/params");
  CHECK(noShow == 404);
  CHECK(noShowBody->getObject("error")->getValue<std::string>("code") == "unknown_service");
  CHECK(n.seen == 0);
}
