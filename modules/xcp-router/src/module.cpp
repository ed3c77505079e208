#include "imp/xcp_router/module.h"

#include <imp/core/command_registry.h>
#include <imp/core/module_registry.h>

#include <memory>
#include <stdexcept>

#include "imp/xcp_router/store_commands.h"

namespace imp::xcp {

void registerModule(core::ModuleRegistry& registry) {
  // The stores the admin commands use; they live as long as the registry.
  auto stores = std::make_shared<std::unique_ptr<StoreCommandsContext>>();
  registry.addCommands(registerStoreCommands);
  registry.addAdminRoutes([stores](core::AdminRouter&, const core::NodeContext& node) {
    if (!node.database || !node.commands)
      throw std::logic_error("the xcp-router admin commands need the node's database and command registry");
    *stores = std::make_unique<StoreCommandsContext>(*node.database);
    node.commands->provide(**stores);
  });
}

}  // namespace imp::xcp
