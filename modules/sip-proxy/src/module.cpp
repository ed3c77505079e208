#include "imp/sip_proxy/module.h"

#include <imp/core/command_registry.h>
#include <imp/core/module_registry.h>

#include <stdexcept>

#include "imp/sip_proxy/admin_api.h"
#include "imp/sip_proxy/config_store.h"
#include "imp/sip_proxy/node_options.h"
#include "imp/sip_proxy/proxy_service.h"

namespace imp::sip_proxy {

namespace {

// Shared by the service and the admin routes; lives as long as the registry.
struct ModuleState {
  std::shared_ptr<ProxyHandle> running = std::make_shared<ProxyHandle>();
  std::unique_ptr<ConfigStore> store;
};

}  // namespace

void registerModule(core::ModuleRegistry& registry) {
  auto state = std::make_shared<ModuleState>();
  registry.addService({"sip-proxy",
                       "Cisco SIP Proxy",
                       core::ServiceKind::Feature,
                       {"single", "routing", "home", "publisher"},
                       {
                           {"sip-tcp", "Enable SIP TCP Trace"},
                           {"sip-tls", "Enable SIP TLS Trace"},
                           {"server", "Enable Server Trace"},
                           {"sip-message-state", "Enable SIP Message and State Machine Trace"},
                           {"method-event-routing", "Enable Method/Event Routing Trace"},
                           {"routing", "Enable Routing Trace"},
                       },
                       [state] { return makeSipProxyService(state->running); }});
  registry.addConfig(addNodeOptions, [](const core::Config& cfg) { readNodeOptions(cfg); });
  registry.addCommands(registerCommands);
  // The commands' handlers work on the settings store and the running proxy
  // (and on the directory module's Directory).
  registry.addAdminRoutes([state](core::AdminRouter&, const core::NodeContext& node) {
    if (!node.database || !node.commands)
      throw std::logic_error("the sip-proxy admin commands need the node's database and command registry");
    state->store = std::make_unique<ConfigStore>(*node.database);
    node.commands->provide(*state->store);
    node.commands->provide(*state->running);
  });
}

}  // namespace imp::sip_proxy
