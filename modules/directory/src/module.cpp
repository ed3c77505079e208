#include "imp/directory/module.h"

#include <imp/core/module_registry.h>

#include <memory>
#include <stdexcept>

#include "imp/directory/directory.h"

namespace imp::directory {

void registerModule(core::ModuleRegistry& registry) {
  // The Directory the routes use; lives as long as the registry.
  auto dir = std::make_shared<std::unique_ptr<Directory>>();
  registry.addAdminRoutes([dir](core::AdminRouter& router, const core::NodeContext& node) {
    if (!node.database) throw std::logic_error("the directory admin routes need the node's database");
    *dir = std::make_unique<Directory>(*node.database);
    registerAdminRoutes(router, **dir);
  });
}

}  // namespace imp::directory
