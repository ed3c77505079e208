#include "imp/serviceability/catalog.h"

#include <map>

namespace imp::serviceability {

const std::vector<TraceFlagInfo>& sipProxyTraceFlags() {
  static const std::vector<TraceFlagInfo> flags = {
      {"sip-tcp", "Enable SIP TCP Trace"},
      {"sip-tls", "Enable SIP TLS Trace"},
      {"server", "Enable Server Trace"},
      {"sip-message-state", "Enable SIP Message and State Machine Trace"},
      {"method-event-routing", "Enable Method/Event Routing Trace"},
      {"routing", "Enable Routing Trace"},
  };
  return flags;
}

const std::vector<TraceFlagInfo>& traceFlagsFor(std::string_view service) {
  static const std::vector<TraceFlagInfo> none;
  if (service == "sip-proxy") return sipProxyTraceFlags();
  return none;
}

std::string displayName(std::string_view service) {
  // Names as the seed's Control Center shows them (SV-1); each service's
  // issue adds its own. sip-proxy is here because its trace flags are.
  static const std::map<std::string, std::string, std::less<>> names = {
      {"serviceability", "Cisco Unified Serviceability"},
      {"ris-collector", "Cisco RIS Data Collector"},
      {"sip-proxy", "Cisco SIP Proxy"},
  };
  auto it = names.find(service);
  return it == names.end() ? std::string(service) : it->second;
}

}  // namespace imp::serviceability
