#pragma once
// The Service interface and its lifecycle contract (SV-1, SV-3).
//
// Every feature of impd is a library plus one Service adapter. The ServiceHost
// (service_host.h) drives services through this contract:
//
//  configure(ctx)  Called for EVERY selected service before ANY start().
//                  Validates settings only: no sockets, threads or files.
//                  Throws ConfigError ("in [section]: ...") or any
//                  std::exception to refuse; then no service is started.
//  start()         Called in dependency order (dependencies() first) on the
//                  host's control thread. Returns once the service is ready
//                  (listening, threads running). Throws to fail: the host
//                  then stops the services it already started, in reverse.
//  stop()          Called in reverse start order. noexcept, idempotent, safe
//                  to call before start() returned or after it threw. The host
//                  runs it on a helper thread and gives up after the
//                  per-service stop timeout: the service is reported as
//                  "stop-timeout" and its object is never destroyed (its
//                  thread may still be inside it).
//  reload(change)  Cluster settings changed (generation counter moved). Runs
//                  on the settings watcher thread, only while running. Apply
//                  what can be applied live; exceptions are caught, counted
//                  and logged by the host.
//  status()        Cheap, thread-safe snapshot; may be called from any thread
//                  at any time (admin API, metrics).
//
// A service object is started at most once: a runtime restart destroys the
// old object (after a clean stop) and builds a new one from its factory, so a
// service never has to reset itself. Exceptions never cross the host.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace spdlog {
class logger;
}

namespace imp::core {

class Config;
class Database;
class AdminRouter;
class Metrics;
class ClusterSettings;

enum class ServiceKind { Network, Feature };
std::string_view nameOf(ServiceKind k);

enum class ServiceState { Stopped, Starting, Running, Stopping, Failed, StopTimeout };
std::string_view nameOf(ServiceState s);

struct ServiceStatus {
  ServiceState state = ServiceState::Stopped;
  std::string detail;  // human readable, e.g. "listening on 0.0.0.0:5060"
};

// Everything a service may use. Pointers are owned by the node and outlive
// every service. Optional parts (database, admin) may be null in unit tests.
struct ServiceContext {
  const Config* config = nullptr;
  std::string nodeId;
  Database* database = nullptr;
  ClusterSettings* settings = nullptr;
  Metrics* metrics = nullptr;
  std::shared_ptr<spdlog::logger> logger;  // this service's own logger (SV-5)
};

// What changed in the cluster settings since the last reload.
struct ConfigChange {
  std::uint64_t fromGeneration = 0;
  std::uint64_t toGeneration = 0;
};

class Service {
 public:
  virtual ~Service() = default;
  virtual std::string_view name() const = 0;
  virtual ServiceKind kind() const = 0;
  // Named `dependencies` because `requires` is a C++20 keyword.
  virtual std::vector<std::string> dependencies() const { return {}; }
  virtual void configure(const ServiceContext& ctx) = 0;
  virtual void start() = 0;
  virtual void stop() noexcept = 0;
  virtual void reload(const ConfigChange&) {}
  virtual ServiceStatus status() const = 0;
};

// Static facts about a service, known without building it.
struct ServiceDescriptor {
  std::string name;         // stable id: "sip-proxy"
  std::string displayName;  // the seed's name: "Cisco SIP Proxy"
  ServiceKind kind = ServiceKind::Feature;
  std::function<std::unique_ptr<Service>()> factory;
};

}  // namespace imp::core
