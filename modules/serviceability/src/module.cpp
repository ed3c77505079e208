#include "imp/serviceability/module.h"

#include <imp/core/cluster_settings.h>
#include <imp/core/config.h>
#include <imp/core/command_registry.h>
#include <imp/core/module_registry.h>
#include <imp/core/service_params.h>

#include <stdexcept>

#include "imp/serviceability/admin_api.h"
#include "imp/serviceability/control.h"
#include "imp/serviceability/services.h"

namespace imp::serviceability {

namespace {

// Shared by the module's services, routes and node hooks.
struct ModuleState {
  std::unique_ptr<NodeControl> control;
  std::unique_ptr<core::ServiceParams> params;  // only when the node gives none
  AdminContext admin;  // what the admin routes and the commands' handlers use

  NodeControl& get() const {
    if (!control) throw std::logic_error("the serviceability module is not attached to a node (admin routes not registered)");
    return *control;
  }
};

}  // namespace

void registerModule(core::ModuleRegistry& registry) {
  auto state = std::make_shared<ModuleState>();
  const std::vector<std::string> everyRole = {"single", "routing", "home", "publisher"};
  registry.addService({"serviceability", "Cisco Unified Serviceability", core::ServiceKind::Network, everyRole, {},
                       [state] { return makeServiceabilityService(state->get()); }});
  registry.addService({"ris-collector", "Cisco RIS Data Collector", core::ServiceKind::Network, everyRole, {},
                       [state] { return makeRisCollector(state->get()); }});

  registry.addAdminRoutes([state](core::AdminRouter& router, const core::NodeContext& node) {
    if (!node.database || !node.host || !node.logs || !node.modules)
      throw std::logic_error("serviceability needs the node's database, service host, logs and modules");
    NodeIdentity self{node.nodeId, node.role, node.hostname, node.adminUrl, node.version};
    state->control = std::make_unique<NodeControl>(self, *node.database, *node.host, *node.logs, *node.modules,
                                                   node.logs->get("serviceability"));
    AdminContext& actx = state->admin;
    actx.control = state->control.get();
    actx.modules = node.modules;
    actx.db = node.database;
    actx.settings = node.settings;
    actx.migrator = node.migrator;
    actx.metrics = node.metrics;
    actx.logs = node.logs;
    if (!node.params) state->params = std::make_unique<core::ServiceParams>(*node.database, *node.modules);
    actx.params = node.params ? node.params : state->params.get();
    actx.certificate = node.certificate;
    actx.hostname = node.hostname;
    if (node.config) actx.stateDir = node.config->getString("node", "state_dir");
    actx.dbMode = node.databaseMode;
    actx.dbLocation = node.databaseLocation;
    actx.heartbeatInterval = node.config ? static_cast<int>(node.config->getInt("services", "heartbeat_interval")) : 5;
    core::ClusterSettings* settings = node.settings;
    core::ServiceHost* host = node.host;
    actx.notReadyReasons = [settings, host] {
      std::vector<std::string> reasons;
      if (settings && !settings->databaseReachable()) reasons.push_back("database unreachable");
      if (!host->allRunning()) {
        std::string down;
        for (const auto& i : host->list())
          if (i.active && i.state != core::ServiceState::Running)
            down += (down.empty() ? "" : ", ") + i.name + " (" + std::string(core::nameOf(i.state)) + ")";
        reasons.push_back(down.empty() ? "services starting" : "services not running: " + down);
      }
      return reasons;
    };
    registerAdminRoutes(router, actx);
    if (!node.commands) throw std::logic_error("the serviceability admin commands need the node's command registry");
    node.commands->provide(actx);
  });
  registry.addCommands(registerCommands);
  registry.addCommands(registerToolkitCommands);
  registry.addCommands(registerCertCommands);

  registry.addNodeHooks(
      [state] {
        state->get().registerNode();
        state->get().applyTraces();
      },
      [state] {
        if (state->control) state->control->markNodeDown();
      });
  registry.setActivation([state](const core::NodeContext&) { return state->get().desiredServices(); });
}

}  // namespace imp::serviceability
