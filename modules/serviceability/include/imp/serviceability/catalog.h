#pragma once
// What serviceability knows about services as data: the seed's display
// names (SV-1) and each service's extra trace flags (SV-4). Later modules'
// services are described here when they arrive, so the admin API and impctl
// can show and validate them in one place.
#include <string>
#include <string_view>
#include <vector>

namespace imp::serviceability {

struct TraceFlagInfo {
  std::string id;     // "sip-tcp"
  std::string label;  // "Enable SIP TCP Trace"
};

// SV-4: the SIP Proxy's trace filters, for the proxy to consult.
const std::vector<TraceFlagInfo>& sipProxyTraceFlags();

// Extra trace flags a service accepts (empty for most).
const std::vector<TraceFlagInfo>& traceFlagsFor(std::string_view service);

// The seed's display name for a service id, or the id itself.
std::string displayName(std::string_view service);

}  // namespace imp::serviceability
