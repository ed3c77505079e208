#pragma once
// The compiled-in role table (SV-1, SV-2). A role names the services a node
// runs unless per-node activation rows in the database say otherwise (SV-3).
// It lists only services that exist in this build; each feature issue adds
// its service to the roles that run it.
#include <string>
#include <string_view>
#include <vector>

namespace imp::core {

struct Role {
  std::string name;
  std::string description;
  std::vector<std::string> services;  // default activation
};

const std::vector<Role>& roleTable();
const Role* findRole(std::string_view name);

}  // namespace imp::core
