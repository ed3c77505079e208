#pragma once
// The Service interface and its lifecycle contract (SV-1, SV-3).
//
// Every feature of impd is a library plus one Service adapter. The ServiceHost
// (service_host.h) drives services through this contract:
//
//  configure(ctx)  Called for EVERY selected service before ANY start().
//                  Validates settings only (issue 15, deliverable 2): no
//                  sockets, threads, database writes, and no files loaded
//                  (it may check that a file is named and readable; the
//                  node certificate is loaded by start()). Keeps what it
//                  needs from ctx. Throws ConfigError ("in [section]: ...")
//                  or any std::exception to refuse; then no service is
//                  started.
//  start()         Called in dependency order (dependencies() first) on the
//                  host's control thread. Reads cluster settings, loads
//                  files, binds, starts threads; returns once the service is
//                  ready. Throws to fail: the host then stops the services
//                  it already started, in reverse.
//  stop()          Called in reverse start order. noexcept, idempotent, safe
//                  to call before start() returned or after it threw. The host
//                  runs it on a helper thread and gives up after the
//                  per-service stop timeout: the service is reported as
//                  "stop-timeout" and its object is never destroyed (its
//                  thread may still be inside it).
//  reload(change)  Cluster settings changed (generation counter moved). Runs
//                  on the settings watcher thread, only while running. Apply
//                  what can be applied live; exceptions are caught, counted
//                  and logged by the host. It may run concurrently with
//                  status() and with a runtime stop(): it computes the new
//                  state (database queries, directory lookups, waits for an
//                  event loop) WITHOUT holding any lock status() takes, and
//                  publishes the result under that lock (issue 15,
//                  deliverable 2).
//  status()        Cheap, thread-safe snapshot; may be called from any thread
//                  at any time (admin API, metrics) and never waits for a
//                  database query, a lookup or a loop.
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

namespace imp::net {
class LoopGroup;   // issue 15, deliverable 1 (modules/net)
class WorkerPool;  // issue 15, deliverable 1 (modules/net)
}  // namespace imp::net

namespace imp::core {

class Config;
class Database;
class AdminRouter;
class Metrics;
class ClusterSettings;
class ModuleRegistry;
class Resolver;
class ServiceParams;
class TraceFlags;
struct NodeCertificate;

enum class ServiceKind { Network, Feature };
std::string_view nameOf(ServiceKind k);

enum class ServiceState { Stopped, Starting, Running, Stopping, Failed, StopTimeout };
std::string_view nameOf(ServiceState s);

struct ServiceStatus {
  ServiceState state = ServiceState::Stopped;
  std::string detail;  // human readable, e.g. "listening on 0.0.0.0:5060"
};

// Everything a service may use (issue 15, deliverable 2), so a service never
// needs options plumbed by impd. Pointers are owned by the node and outlive
// every service. Any part may be null/empty in unit tests; a service falls
// back to what it can do without it (no database = defaults, no certificate =
// no TLS, no resolver = its own system resolver).
struct ServiceContext {
  const Config* config = nullptr;  // impd.conf (the service's [section] is read from it)
  std::string nodeId;
  Database* database = nullptr;
  ClusterSettings* settings = nullptr;
  // Service parameters (MG-3, service_params.h): read them in start() and
  // again in reload(), which every change of one triggers.
  const ServiceParams* params = nullptr;
  Metrics* metrics = nullptr;
  std::shared_ptr<spdlog::logger> logger;         // this service's own logger (SV-5)
  std::shared_ptr<const TraceFlags> traceFlags;   // this service's trace flags (SV-4)
  std::shared_ptr<Resolver> resolver;             // the node's caching resolver (RT-8)
  const NodeCertificate* certificate = nullptr;   // node certificate and trust store (TLS-1..3)
  AdminRouter* router = nullptr;                  // the node's admin API
  const ModuleRegistry* modules = nullptr;        // every module's registration
  // Shared event loops and worker threads (issue 15, deliverable 1); null
  // until impd builds them: a service then runs its own loop.
  net::LoopGroup* loops = nullptr;
  net::WorkerPool* workers = nullptr;
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

// Static facts about a service, known without building it. Built from a
// module's registration (module_registry.h) by ModuleRegistry::registerServices.
struct ServiceDescriptor {
  std::string name;         // stable id: "sip-proxy"
  std::string displayName;  // the seed's name: "Cisco SIP Proxy"
  ServiceKind kind = ServiceKind::Feature;
  std::function<std::unique_ptr<Service>()> factory;
};

}  // namespace imp::core
