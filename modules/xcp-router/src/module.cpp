#include "imp/xcp_router/module.h"

#include <imp/core/command_registry.h>
#include <imp/core/module_registry.h>

#include <memory>
#include <stdexcept>

#include "imp/xcp_router/admin_api.h"
#include "imp/xcp_router/c2s_options.h"
#include "imp/xcp_router/service.h"
#include "imp/xcp_router/store_commands.h"

namespace imp::xcp {

std::shared_ptr<XcpRuntime> registerModule(core::ModuleRegistry& registry) {
  // Shared by the two services and the session commands; lives as long as
  // the registry.
  auto runtime = std::make_shared<XcpRuntime>();
  // The architecture's role table: the router runs wherever users or
  // routing are (single, routing, home, publisher); client connections only
  // where users are homed (not on a routing-only node, SV-2).
  registry.addService({"xcp-router",
                       "Cisco XCP Router",
                       core::ServiceKind::Network,
                       {"single", "routing", "home", "publisher"},
                       {},
                       [runtime] { return makeRouterService(runtime); }});
  registry.addService({"xcp-connection-manager",
                       "Cisco XCP Connection Manager",
                       core::ServiceKind::Network,
                       {"single", "home", "publisher"},
                       {},
                       [runtime] { return makeConnectionManagerService(runtime); }});
  registry.addConfig(addC2sOptions, [](const core::Config& cfg) { readC2sOptions(cfg); });

  // The stores the admin commands use; they live as long as the registry.
  auto stores = std::make_shared<std::unique_ptr<StoreCommandsContext>>();
  registry.addCommands([](core::CommandRegistry& r) {
    registerStoreCommands(r);
    registerSessionCommands(r);
  });
  registry.addAdminRoutes([stores, runtime](core::AdminRouter&, const core::NodeContext& node) {
    if (!node.database || !node.commands)
      throw std::logic_error("the xcp-router admin commands need the node's database and command registry");
    *stores = std::make_unique<StoreCommandsContext>(*node.database);
    node.commands->provide(**stores);
    node.commands->provide(*runtime);
  });
  return runtime;
}

}  // namespace imp::xcp
