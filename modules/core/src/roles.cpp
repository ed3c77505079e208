#include "imp/core/roles.h"

namespace imp::core {

const std::vector<RoleInfo>& roleNames() {
  // The routing role (SV-2) runs only SIP routing services (plus the node's
  // own serviceability agents); user-facing services declare home and
  // publisher (and single) when they arrive.
  static const std::vector<RoleInfo> table = {
      {"single", "everything on one machine"},
      {"routing", "dedicated SIP routing node, no users (SV-2)"},
      {"home", "user node: client connections, presence, federation"},
      {"publisher", "home node that also runs cluster administration and bulk provisioning"},
  };
  return table;
}

const RoleInfo* findRole(std::string_view name) {
  for (const auto& r : roleNames())
    if (r.name == name) return &r;
  return nullptr;
}

}  // namespace imp::core
