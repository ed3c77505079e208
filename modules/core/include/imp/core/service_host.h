#pragma once
// The service host: runs the contract written in service.h.
//
// Start-up (startAll): configure EVERY selected service, then start them in
// dependency order. A configure failure starts nothing; a start failure stops
// the already started services in reverse order. Both throw HostError naming
// the service; nothing else escapes.
// Runtime (start/stop/restart one service, SV-3): other services are not
// touched; a failure marks the service Failed and is thrown as HostError.
// Stop: reverse dependency order, each stop() on a helper thread bounded by
// the stop timeout; a stop that hangs is reported (StopTimeout) and its object
// is kept alive by that thread instead of being destroyed under it.
//
// Threads: control operations are serialised by one mutex and may be called
// from any thread (admin API, settings watcher). list() never waits for a
// control operation.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "imp/core/service.h"

namespace imp::core {

class Metrics;

class HostError : public std::runtime_error {
 public:
  HostError(std::string service, const std::string& message, int exitCode)
      : std::runtime_error(message), service_(std::move(service)), exitCode_(exitCode) {}
  const std::string& service() const { return service_; }
  int exitCode() const { return exitCode_; }  // sysexits: 78 config, 70 software

 private:
  std::string service_;
  int exitCode_;
};

struct ServiceInfo {
  std::string name;
  std::string displayName;
  ServiceKind kind = ServiceKind::Feature;
  bool active = false;  // selected to run on this node
  ServiceState state = ServiceState::Stopped;
  std::string detail;
  std::chrono::system_clock::time_point since{};  // last state change
  std::int64_t uptimeSeconds = 0;                  // 0 unless running
  std::uint64_t restarts = 0;
  std::uint64_t failures = 0;
};

class ServiceHost {
 public:
  using ContextFactory = std::function<ServiceContext(const std::string& serviceName)>;

  ServiceHost(ContextFactory contexts, std::chrono::milliseconds stopTimeout,
              std::shared_ptr<spdlog::logger> log, Metrics* metrics = nullptr);
  ~ServiceHost();
  ServiceHost(const ServiceHost&) = delete;
  ServiceHost& operator=(const ServiceHost&) = delete;

  // Catalog of services this binary knows.
  void registerService(ServiceDescriptor d);
  const ServiceDescriptor* descriptor(const std::string& name) const;
  std::vector<std::string> knownNames() const;

  void startAll(const std::vector<std::string>& names);
  void stopAll() noexcept;

  // Runtime control (SV-3). `activate` selects and starts; `deactivate`
  // stops and deselects. Errors are HostError (unknown name lists the valid
  // names; a dependency that is not running is named).
  void start(const std::string& name);
  void stop(const std::string& name);
  void restart(const std::string& name);
  void activate(const std::string& name);
  void deactivate(const std::string& name);

  void reloadAll(const ConfigChange& change) noexcept;
  std::vector<ServiceInfo> list() const;
  ServiceInfo info(const std::string& name) const;
  // Names of services whose stop() hung past the timeout.
  std::vector<std::string> abandoned() const;
  // True once startAll finished and no selected service is Failed.
  bool allRunning() const;

 private:
  struct Slot;
  Slot& slot(const std::string& name);
  const Slot& slot(const std::string& name) const;
  std::vector<std::string> order(const std::vector<std::string>& names) const;
  void configureInto(Slot& s);
  void startSlot(Slot& s);
  bool stopSlot(Slot& s) noexcept;
  void setState(Slot& s, ServiceState st, std::string detail = {});

  ContextFactory contexts_;
  std::chrono::milliseconds stopTimeout_;
  std::shared_ptr<spdlog::logger> log_;
  Metrics* metrics_;
  std::mutex control_;       // serialises control operations
  mutable std::mutex state_; // guards slots_ fields read by list()
  std::map<std::string, std::unique_ptr<Slot>> slots_;
  std::vector<std::string> startOrder_;  // names in the order they started
  std::atomic<bool> started_{false};
};

}  // namespace imp::core
