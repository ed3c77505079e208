// What the admin API and impctl show about services comes from the modules'
// registrations (issue 15, deliverable 2): display names (SV-1), the role
// table (SV-2) and trace flags (SV-4).
#include <doctest/doctest.h>
#include <imp/core/config.h>
#include <imp/core/module_registry.h>
#include <imp/core/roles.h>
#include <imp/directory/module.h>
#include <imp/serviceability/module.h>
#include <imp/sip_proxy/module.h>

#include <stdexcept>

using namespace imp;

namespace {

const core::ModuleRegistry& nodeModules() {
  static const core::ModuleRegistry r = [] {
    core::ModuleRegistry m;
    serviceability::registerModule(m);
    directory::registerModule(m);
    sip_proxy::registerModule(m);
    return m;
  }();
  return r;
}

}  // namespace

TEST_CASE("the SIP Proxy trace flags are the seed's six filters (SV-4)") {
  const auto& f = nodeModules().traceFlags("sip-proxy");
  REQUIRE(f.size() == 6);
  CHECK(f[0].id == "sip-tcp");
  CHECK(f[0].label == "Enable SIP TCP Trace");
  CHECK(f[3].label == "Enable SIP Message and State Machine Trace");
  CHECK(f[5].id == "routing");
  CHECK(nodeModules().traceFlags("ris-collector").empty());
  CHECK(nodeModules().traceFlags("nothing").empty());
}

TEST_CASE("display names come from the seed; unknown ids stay as they are") {
  CHECK(nodeModules().displayName("sip-proxy") == "Cisco SIP Proxy");
  CHECK(nodeModules().displayName("serviceability") == "Cisco Unified Serviceability");
  CHECK(nodeModules().displayName("ris-collector") == "Cisco RIS Data Collector");
  CHECK(nodeModules().displayName("nothing") == "nothing");
}

TEST_CASE("every role exists and names only registered services with a display name") {
  auto table = nodeModules().roleTable();
  REQUIRE(table.size() == 4);
  for (const char* r : {"single", "routing", "home", "publisher"}) {
    REQUIRE(core::findRole(r) != nullptr);
    auto services = nodeModules().servicesOf(r);
    CHECK_FALSE(services.empty());
    for (const auto& s : services) {
      REQUIRE(nodeModules().service(s) != nullptr);
      CHECK(nodeModules().displayName(s) != s);
    }
  }
  CHECK(core::findRole("edge") == nullptr);
  CHECK_THROWS_AS(nodeModules().servicesOf("edge"), std::invalid_argument);
}

TEST_CASE("the routing role runs only SIP routing services and the node's own agents (SV-2)") {
  CHECK(nodeModules().servicesOf("routing") == std::vector<std::string>{"serviceability", "ris-collector", "sip-proxy"});
  // Same order and contents as the role table shows.
  for (const auto& r : nodeModules().roleTable())
    if (r.name == "routing") CHECK(r.services == nodeModules().servicesOf("routing"));
}

TEST_CASE("the impd.conf schema is core plus each module's sections") {
  auto schema = nodeModules().configSchema();
  CHECK(schema.find("node", "id") != nullptr);
  CHECK(schema.find("sip-proxy", "listen_address") != nullptr);
  auto bad = core::Config::parse("[sip-proxy]\nlisten_address = not-an-ip\n", schema);
  CHECK_THROWS_WITH_AS(nodeModules().checkConfig(bad), doctest::Contains("in [sip-proxy]"), core::ConfigError);
  nodeModules().checkConfig(core::Config::parse("", schema));
}
