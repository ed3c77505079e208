#include "imp/directory/module.h"

#include <imp/core/command_registry.h>
#include <imp/core/module_registry.h>

#include <memory>
#include <stdexcept>

#include "imp/directory/admin_api.h"
#include "imp/directory/directory.h"

namespace imp::directory {

void registerModule(core::ModuleRegistry& registry) {
  // The Directory the routes use; lives as long as the registry.
  auto dir = std::make_shared<std::unique_ptr<Directory>>();
  registry.addCommands(registerCommands);
  registry.addAdminRoutes([dir](core::AdminRouter&, const core::NodeContext& node) {
    if (!node.database || !node.commands)
      throw std::logic_error("the directory admin commands need the node's database and command registry");
    *dir = std::make_unique<Directory>(*node.database);
    node.commands->provide(**dir);
  });
}

}  // namespace imp::directory
