#pragma once
// The roles a node can take (SV-1, SV-2): names and descriptions live here in
// core; which services each role runs is not written here but derived from
// the modules' registrations (ModuleRegistry::roleTable, issue 15
// deliverable 2): a service names the roles that run it by default. Per-node
// activation rows in the database override the defaults (SV-3).
#include <string>
#include <string_view>
#include <vector>

namespace imp::core {

struct RoleInfo {
  std::string name;
  std::string description;
};

struct Role {
  std::string name;
  std::string description;
  std::vector<std::string> services;  // default activation
};

// Every role, in the order `impctl` and the docs list them.
const std::vector<RoleInfo>& roleNames();
const RoleInfo* findRole(std::string_view name);

}  // namespace imp::core
