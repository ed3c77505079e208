#include "imp/core/roles.h"

namespace imp::core {

const std::vector<Role>& roleTable() {
  // Every role runs the serviceability agent, the RIS collector and the SIP
  // proxy; the routing role (SV-2) will add only the SIP routing services,
  // the others the user-facing ones, as those services arrive.
  static const std::vector<Role> table = {
      {"single", "everything on one machine", {"serviceability", "ris-collector", "sip-proxy"}},
      {"routing", "dedicated SIP routing node, no users (SV-2)", {"serviceability", "ris-collector", "sip-proxy"}},
      {"home", "user node: client connections, presence, federation", {"serviceability", "ris-collector", "sip-proxy"}},
      {"publisher", "home node that also runs cluster administration and bulk provisioning",
       {"serviceability", "ris-collector", "sip-proxy"}},
  };
  return table;
}

const Role* findRole(std::string_view name) {
  for (const auto& r : roleTable())
    if (r.name == name) return &r;
  return nullptr;
}

}  // namespace imp::core
