// A module is one registration call (issue 15, deliverable 2): its service
// then shows in the host, the role table, display names and trace flags;
// its config section joins the schema; its admin routes and node hooks run.
#include <doctest/doctest.h>
#include <imp/core/admin_http.h>
#include <imp/core/config.h>
#include <imp/core/module_registry.h>
#include <imp/core/service_host.h>

#include <atomic>
#include <stdexcept>

using namespace imp::core;

namespace {

// Records what the host asked of it and what the context carried.
struct Seen {
  std::atomic<int> configured{0}, started{0}, stopped{0};
  std::string nodeId;
  const ModuleRegistry* modules = nullptr;
};

class EchoService : public Service {
 public:
  explicit EchoService(std::shared_ptr<Seen> seen) : seen_(std::move(seen)) {}
  std::string_view name() const override { return "echo"; }
  ServiceKind kind() const override { return ServiceKind::Feature; }
  void configure(const ServiceContext& ctx) override {
    seen_->nodeId = ctx.nodeId;
    seen_->modules = ctx.modules;
    ++seen_->configured;
  }
  void start() override {
    running_ = true;
    ++seen_->started;
  }
  void stop() noexcept override {
    if (running_.exchange(false)) ++seen_->stopped;
  }
  ServiceStatus status() const override {
    return {running_ ? ServiceState::Running : ServiceState::Stopped, running_ ? "echoing" : ""};
  }

 private:
  std::shared_ptr<Seen> seen_;
  std::atomic<bool> running_{false};
};

// The whole dummy module: one call.
void registerEchoModule(ModuleRegistry& r, std::shared_ptr<Seen> seen) {
  r.addService({"echo", "Cisco Echo Service", ServiceKind::Feature, {"home", "single"},
                {{"echo-wire", "Enable Echo Wire Trace"}}, [seen] { return std::make_unique<EchoService>(seen); }});
}

}  // namespace

TEST_CASE("a dummy module registered in one call is listed, started and stopped by the host") {
  auto seen = std::make_shared<Seen>();
  ModuleRegistry modules;
  registerEchoModule(modules, seen);

  ServiceHost host(
      [&](const std::string&) {
        ServiceContext ctx;
        ctx.nodeId = "n1";
        ctx.modules = &modules;
        return ctx;
      },
      std::chrono::seconds(5), nullptr);
  modules.registerServices(host);

  auto list = host.list();
  REQUIRE(list.size() == 1);
  CHECK(list[0].name == "echo");
  CHECK(list[0].displayName == "Cisco Echo Service");
  CHECK(list[0].state == ServiceState::Stopped);

  NodeContext node;
  node.role = "home";
  host.startAll(modules.activeServices(node));
  CHECK(seen->configured == 1);
  CHECK(seen->started == 1);
  CHECK(seen->nodeId == "n1");
  CHECK(seen->modules == &modules);
  CHECK(host.info("echo").state == ServiceState::Running);
  CHECK(host.info("echo").detail == "echoing");

  host.stop("echo");
  CHECK(seen->stopped == 1);
  CHECK(host.info("echo").state == ServiceState::Stopped);
  host.start("echo");
  CHECK(seen->started == 2);  // a fresh object from the factory
  host.stopAll();
  CHECK(seen->stopped == 2);
}

TEST_CASE("the role table, display name and trace flags come from the registration") {
  ModuleRegistry modules;
  registerEchoModule(modules, std::make_shared<Seen>());

  auto table = modules.roleTable();
  REQUIRE(table.size() == roleNames().size());
  for (const auto& r : table) {
    bool runs = r.name == "home" || r.name == "single";
    CHECK(r.description == findRole(r.name)->description);
    CHECK(r.services == (runs ? std::vector<std::string>{"echo"} : std::vector<std::string>{}));
  }
  CHECK(modules.servicesOf("routing").empty());
  CHECK(modules.displayName("echo") == "Cisco Echo Service");
  CHECK(modules.displayName("other") == "other");
  REQUIRE(modules.traceFlags("echo").size() == 1);
  CHECK(modules.traceFlags("echo")[0].id == "echo-wire");
  CHECK(modules.traceFlags("echo")[0].label == "Enable Echo Wire Trace");
}

TEST_CASE("bad registrations are refused with the reason") {
  ModuleRegistry modules;
  auto factory = [] { return std::unique_ptr<Service>(); };
  modules.addService({"a", "A", ServiceKind::Feature, {"home"}, {}, factory});
  CHECK_THROWS_WITH_AS(modules.addService({"a", "A2", ServiceKind::Feature, {}, {}, factory}),
                       "service 'a' is registered twice", std::logic_error);
  CHECK_THROWS_WITH_AS(modules.addService({"b", "B", ServiceKind::Feature, {"edge"}, {}, factory}),
                       "service 'b' names unknown role 'edge'", std::logic_error);
  CHECK_THROWS_WITH_AS(modules.addService({"c", "C", ServiceKind::Feature, {}, {}, {}}), "service 'c' has no factory",
                       std::logic_error);
  CHECK_THROWS_WITH_AS(
      modules.addService({"d", "D", ServiceKind::Feature, {}, {{"x", "X"}, {"x", "Y"}}, factory}),
      "service 'd' declares trace flag 'x' twice", std::logic_error);
  CHECK_THROWS_AS(modules.addService({"", "", ServiceKind::Feature, {}, {}, factory}), std::logic_error);
  modules.setActivation([](const NodeContext&) { return std::vector<std::string>{"a"}; });
  CHECK_THROWS_WITH_AS(modules.setActivation([](const NodeContext&) { return std::vector<std::string>{}; }),
                       "two modules decide which services run", std::logic_error);
  CHECK(modules.services().size() == 1);
}

TEST_CASE("service parameters are declared for a registered service, checked, and listed in order (MG-3)") {
  ModuleRegistry modules;
  auto factory = [] { return std::unique_ptr<Service>(); };
  modules.addService({"bulk-provisioning", "Cisco Bulk Provisioning Service", ServiceKind::Feature, {}, {}, factory});
  modules.addService({"echo", "Cisco Echo", ServiceKind::Feature, {}, {}, factory});
  const ServiceParamInfo rate{.service = "bulk-provisioning",
                              .name = "import-rate",
                              .defaultValue = 0,
                              .min = 1,
                              .max = 1000000,
                              .unit = "rows/s",
                              .help = "rows imported per second",
                              .zeroIsUnlimited = true};
  modules.addServiceParam(rate);
  modules.addServiceParam({.service = "echo", .name = "loud", .type = ServiceParamType::Boolean, .defaultValue = 1,
                           .help = "echo louder"});
  modules.addServiceParam({.service = "bulk-provisioning", .name = "batch-size", .defaultValue = 500, .min = 1,
                           .max = 10000, .unit = "rows", .help = "rows per transaction"});

  REQUIRE(modules.serviceParams().size() == 3);
  auto bulk = modules.serviceParams("bulk-provisioning");
  REQUIRE(bulk.size() == 2);
  CHECK(bulk[0]->name == "import-rate");
  CHECK(bulk[1]->name == "batch-size");
  CHECK(modules.serviceParams("nope").empty());
  REQUIRE(modules.serviceParam("echo", "loud"));
  // A Boolean is 0..1 whatever the declaration said.
  CHECK(modules.serviceParam("echo", "loud")->max == 1);
  CHECK(modules.serviceParam("echo", "import-rate") == nullptr);

  auto with = [&](auto change) {
    ServiceParamInfo p = rate;
    p.name = "other";
    change(p);
    return p;
  };
  CHECK_THROWS_WITH_AS(modules.addServiceParam(with([](auto& p) { p.service = "ghost"; })),
                       "service parameter 'ghost other' names a service that is not registered (addService first)",
                       std::logic_error);
  CHECK_THROWS_WITH_AS(modules.addServiceParam(rate), "service parameter 'bulk-provisioning import-rate' is declared twice",
                       std::logic_error);
  for (const char* bad : {"", "Import-Rate", "import_rate", "import--rate", "-rate", "rate-", "9rate", "import rate"})
    CHECK_THROWS_WITH_AS(modules.addServiceParam(with([&](auto& p) { p.name = bad; })),
                         ("service parameter 'bulk-provisioning " + std::string(bad) +
                          "': the name must be kebab-case (import-rate)")
                             .c_str(),
                         std::logic_error);
  CHECK_THROWS_WITH_AS(modules.addServiceParam(with([](auto& p) { p.zeroIsUnlimited = false; })),
                       "service parameter 'bulk-provisioning other': default 0 is outside 1..1000000", std::logic_error);
  CHECK_THROWS_WITH_AS(modules.addServiceParam(with([](auto& p) { p.defaultValue = 1000001; })),
                       "service parameter 'bulk-provisioning other': default 1000001 is outside 1..1000000",
                       std::logic_error);
  CHECK_THROWS_WITH_AS(modules.addServiceParam(with([](auto& p) { p.min = 5, p.max = 4; })),
                       "service parameter 'bulk-provisioning other': min 5 is above max 4", std::logic_error);
  CHECK_THROWS_WITH_AS(modules.addServiceParam(with([](auto& p) { p.min = -1; })),
                       "service parameter 'bulk-provisioning other': an unlimited parameter cannot take negative values",
                       std::logic_error);
  CHECK_THROWS_WITH_AS(modules.addServiceParam(with([](auto& p) { p.help = ""; })),
                       "service parameter 'bulk-provisioning other' needs a one-line help", std::logic_error);
  CHECK_THROWS_WITH_AS(modules.addServiceParam(with([](auto& p) { p.help = "two\nlines"; })),
                       "service parameter 'bulk-provisioning other' needs a one-line help", std::logic_error);
  CHECK_THROWS_WITH_AS(modules.addServiceParam(with([](auto& p) { p.type = ServiceParamType::Boolean; })),
                       "service parameter 'bulk-provisioning other': a boolean cannot be unlimited", std::logic_error);
  CHECK_THROWS_WITH_AS(modules.addServiceParam({.service = "echo", .name = "quiet", .type = ServiceParamType::Boolean,
                                                .defaultValue = 2, .help = "h"}),
                       "service parameter 'echo quiet': default 2 is outside 0..1", std::logic_error);
  // Nothing of the refused ones was kept.
  CHECK(modules.serviceParams().size() == 3);
}

TEST_CASE("config sections, admin routes, node hooks and activation run from the registry") {
  ModuleRegistry modules;
  std::vector<std::string> calls;
  modules.addConfig(
      [](ConfigSchema& s) {
        s.add({"echo", "port", OptionType::Int, "7", 1, 65535, {}, "echo port"});
      },
      [](const Config& c) {
        if (c.getInt("echo", "port") == 13) throw ConfigError("echo", "port = 13 is unlucky");
      });
  modules.addAdminRoutes([&](AdminRouter&, const NodeContext& node) { calls.push_back("routes " + node.nodeId); });
  modules.addNodeHooks([&] { calls.push_back("up 1"); }, [&] { calls.push_back("down 1"); });
  modules.addNodeHooks([&] { calls.push_back("up 2"); }, [&] {
    calls.push_back("down 2");
    throw std::runtime_error("ignored: the other hooks still run");
  });

  auto schema = modules.configSchema();
  CHECK(schema.find("node", "id") != nullptr);  // core options first
  CHECK(schema.find("echo", "port") != nullptr);
  modules.checkConfig(Config::parse("[echo]\nport = 8\n", schema));
  CHECK_THROWS_WITH_AS(modules.checkConfig(Config::parse("[echo]\nport = 13\n", schema)),
                       "in [echo]: port = 13 is unlucky", ConfigError);

  AdminRouter router;
  NodeContext node;
  node.nodeId = "n1";
  node.role = "single";
  modules.registerAdminRoutes(router, node);
  modules.nodeUp();
  CHECK(modules.activeServices(node).empty());  // no service, no activation module
  modules.nodeDown();
  CHECK(calls == std::vector<std::string>{"routes n1", "up 1", "up 2", "down 2", "down 1"});
}
