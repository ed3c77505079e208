#pragma once
// The directory's impctl commands and admin API routes (PS-3, PS-5), declared
// once in the command registry (issue 15 deliverable 4):
//
//   user add|list|show|delete    POST|GET /api/v1/users, GET|DELETE /api/v1/users/{userid}
//   domain add|list|delete       POST|GET /api/v1/domains, DELETE /api/v1/domains/{domain}
//
// The handlers work on the Directory provided to the registry.
namespace imp::core {
class CommandRegistry;
}

namespace imp::directory {

void registerCommands(core::CommandRegistry& registry);

}  // namespace imp::directory
