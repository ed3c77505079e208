#pragma once
// The directory module's registration (issue 15, deliverable 2): no service
// yet; its admin routes (users, domains: directory.h registerAdminRoutes)
// over the node's database.
namespace imp::core {
class ModuleRegistry;
}

namespace imp::directory {

void registerModule(core::ModuleRegistry& registry);

}  // namespace imp::directory
