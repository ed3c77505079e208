#include <doctest/doctest.h>
#include <imp/core/roles.h>
#include <imp/serviceability/catalog.h>

using namespace imp;

TEST_CASE("the SIP Proxy trace flags are the seed's six filters (SV-4)") {
  const auto& f = serviceability::traceFlagsFor("sip-proxy");
  REQUIRE(f.size() == 6);
  CHECK(f[0].id == "sip-tcp");
  CHECK(f[0].label == "Enable SIP TCP Trace");
  CHECK(f[3].label == "Enable SIP Message and State Machine Trace");
  CHECK(f[5].id == "routing");
  CHECK(serviceability::traceFlagsFor("ris-collector").empty());
}

TEST_CASE("display names come from the seed; unknown ids stay as they are") {
  CHECK(serviceability::displayName("sip-proxy") == "Cisco SIP Proxy");
  CHECK(serviceability::displayName("serviceability") == "Cisco Unified Serviceability");
  CHECK(serviceability::displayName("nothing") == "nothing");
}

TEST_CASE("every role exists and names only services with a display name") {
  for (const char* r : {"single", "routing", "home", "publisher"}) {
    const auto* role = core::findRole(r);
    REQUIRE(role != nullptr);
    for (const auto& s : role->services) CHECK(serviceability::displayName(s) != s);
  }
  CHECK(core::findRole("edge") == nullptr);
}
