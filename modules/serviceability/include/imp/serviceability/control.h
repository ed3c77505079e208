#pragma once
// NodeControl: the node's serviceability operations (SV-1, SV-3, SV-4),
// shared by the admin API and the serviceability service.
//
// Changes are persisted in the cluster database first (so they survive a
// restart and are visible cluster-wide), the settings generation is bumped,
// and then:
//  - for this node they are applied at once by the caller's thread;
//  - for another node, that node's `serviceability` service applies them
//    when it sees the new generation (applyPending()).
// Errors are core::AdminError with precise messages (unknown service names
// list the valid ones).
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <imp/core/logging.h>
#include <imp/core/service_host.h>

namespace imp::core {
class Database;
class ModuleRegistry;
}  // namespace imp::core

namespace imp::serviceability {

struct NodeIdentity {
  std::string id;
  std::string role;
  std::string hostname;
  std::string adminUrl;
  std::string version;
  std::chrono::system_clock::time_point startedAt = std::chrono::system_clock::now();
};

struct TraceView {
  std::string service;
  bool enabled = true;
  std::string level;
  std::vector<std::string> flags;
  bool stored = false;  // false = defaults (no row)
};

struct CommandResult {
  std::string state;   // "done", "failed", "pending"
  std::string result;  // message
};

class NodeControl {
 public:
  // `modules` gives each role's default services and each service's trace
  // flags (issue 15, deliverable 2).
  NodeControl(NodeIdentity self, core::Database& db, core::ServiceHost& host, core::LogRegistry& logs,
              const core::ModuleRegistry& modules, std::shared_ptr<spdlog::logger> log);

  const NodeIdentity& self() const { return self_; }
  core::ServiceHost& host() { return host_; }

  // Services this node should run: the role's defaults, overridden by
  // activation rows (SV-3). Unknown names in rows are ignored with a warning.
  std::vector<std::string> desiredServices();

  // Registers this node (start-up) and marks it down (clean stop).
  void registerNode();
  void markNodeDown() noexcept;
  // Heartbeat: last_seen and every service's state (ris-collector).
  void publishState();

  // Throws AdminError 404 naming the known nodes.
  void requireNode(const std::string& node);
  // Throws AdminError 404 listing the valid service names.
  void requireService(const std::string& service) const;
  std::vector<std::string> knownNodes();

  // action: activate|deactivate|start|stop|restart.
  CommandResult control(const std::string& node, const std::string& service, const std::string& action);

  std::vector<TraceView> traces(const std::string& node);
  TraceView setTrace(const std::string& node, const std::string& service, std::optional<bool> enabled,
                     std::optional<std::string> level, std::optional<std::vector<std::string>> flags);

  // Applies this node's stored trace settings, activation and pending
  // commands (serviceability service, on every settings generation).
  void applyPending();
  void applyTraces();

 private:
  TraceView traceOf(const std::string& node, const std::string& service);
  void applyActivation();
  void runCommands();
  void runLocal(const std::string& service, const std::string& action);

  NodeIdentity self_;
  core::Database& db_;
  core::ServiceHost& host_;
  core::LogRegistry& logs_;
  const core::ModuleRegistry& modules_;
  std::shared_ptr<spdlog::logger> log_;
  std::recursive_mutex applyMu_;  // one apply at a time; re-entered when serviceability restarts itself
};

}  // namespace imp::serviceability
