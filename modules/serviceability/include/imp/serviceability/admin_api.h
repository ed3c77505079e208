#pragma once
// The serviceability part of the admin API, registered next to its code.
// registerAdminRoutes() adds the routes that are not impctl commands:
//   GET  /health/live, /health/ready (no auth), /metrics (no auth)
// registerCommands() declares the impctl commands (issue 15 deliverable 4;
// their handlers need the AdminContext provided to the registry):
//   GET  /api/v1/status, /api/v1/cluster/nodes
//   GET  /api/v1/services[?node=ID]
//   POST /api/v1/services/{name}/{activate|deactivate|start|stop|restart}[?node=ID]
//   GET  /api/v1/services/{name}/params, PUT|DELETE /api/v1/services/{name}/params/{param}
//   GET  /api/v1/trace[?node=ID], GET|PUT /api/v1/trace/{service}[?node=ID]
//   GET  /api/v1/db/status, POST /api/v1/db/migrate
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace imp::core {
class AdminRouter;
class CommandRegistry;
class ClusterSettings;
class Database;
class Metrics;
class LogRegistry;
class Migrator;
class ModuleRegistry;
class ServiceParams;
struct NodeCertificate;
}  // namespace imp::core

namespace imp::serviceability {

class NodeControl;

struct AdminContext {
  NodeControl* control = nullptr;
  const core::ModuleRegistry* modules = nullptr;  // display names and trace flags
  core::Database* db = nullptr;
  core::ClusterSettings* settings = nullptr;
  core::Migrator* migrator = nullptr;
  core::Metrics* metrics = nullptr;
  core::ServiceParams* params = nullptr;  // service parameters (MG-3)
  core::LogRegistry* logs = nullptr;      // the node's log files (SV-5)
  std::string dbMode;      // "managed" | "external"
  std::string dbLocation;  // redacted URL or socket
  int heartbeatInterval = 5;
  // Certificate management (TLS-4): the node certificate, where its pending
  // key goes (<state_dir>/tls) and the default CN of a request.
  const core::NodeCertificate* certificate = nullptr;
  std::filesystem::path stateDir;
  std::string hostname;
  // Why the node is not ready (empty = ready).
  std::function<std::vector<std::string>()> notReadyReasons;
};

void registerAdminRoutes(core::AdminRouter& router, const AdminContext& ctx);
void registerCommands(core::CommandRegistry& registry);
// The toolkit of issue 19 that needs no other module: capacity (HA-2), log
// list and log tail (SV-5).
void registerToolkitCommands(core::CommandRegistry& registry);
// Certificate management (TLS-4): cert list, show, csr, upload,
// upload-trust, delete.
void registerCertCommands(core::CommandRegistry& registry);

}  // namespace imp::serviceability
