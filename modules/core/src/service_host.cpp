#include "imp/core/service_host.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <set>
#include <thread>

#include "imp/core/config.h"
#include "imp/core/metrics.h"

namespace imp::core {

std::string_view nameOf(ServiceKind k) { return k == ServiceKind::Network ? "network" : "feature"; }

std::string_view nameOf(ServiceState s) {
  switch (s) {
    case ServiceState::Stopped: return "stopped";
    case ServiceState::Starting: return "starting";
    case ServiceState::Running: return "running";
    case ServiceState::Stopping: return "stopping";
    case ServiceState::Failed: return "failed";
    case ServiceState::StopTimeout: return "stop-timeout";
  }
  return "unknown";
}

struct ServiceHost::Slot {
  ServiceDescriptor desc;
  bool active = false;
  std::shared_ptr<Service> service;  // configured instance, null when stopped
  ServiceState state = ServiceState::Stopped;
  std::string detail;
  std::chrono::system_clock::time_point since = std::chrono::system_clock::now();
  std::chrono::steady_clock::time_point runningSince{};
  std::atomic<std::uint64_t>* restarts = nullptr;
  std::atomic<std::uint64_t>* failures = nullptr;
  std::atomic<std::uint64_t> localRestarts{0};
  std::atomic<std::uint64_t> localFailures{0};
};

namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

ServiceHost::ServiceHost(ContextFactory contexts, std::chrono::milliseconds stopTimeout,
                         std::shared_ptr<spdlog::logger> log, Metrics* metrics)
    : contexts_(std::move(contexts)), stopTimeout_(stopTimeout), log_(std::move(log)), metrics_(metrics) {
  if (metrics_) {
    metrics_->collect("imp_service_up", "1 if the service is running on this node", Metrics::Type::Gauge, "service-host",
                      [this] {
                        std::vector<Metrics::Sample> out;
                        for (const auto& i : list())
                          out.push_back({{{"service", i.name}}, i.state == ServiceState::Running ? 1.0 : 0.0});
                        return out;
                      });
  }
}

ServiceHost::~ServiceHost() {
  stopAll();
  if (metrics_) metrics_->remove("service-host");
}

void ServiceHost::registerService(ServiceDescriptor d) {
  std::lock_guard lock(state_);
  if (slots_.count(d.name)) throw std::logic_error("service registered twice: " + d.name);
  auto s = std::make_unique<Slot>();
  if (metrics_) {
    s->restarts = &metrics_->counter("imp_service_restarts_total", "runtime restarts of the service", {{"service", d.name}});
    s->failures = &metrics_->counter("imp_service_failures_total", "failed configure/start of the service", {{"service", d.name}});
  } else {
    s->restarts = &s->localRestarts;
    s->failures = &s->localFailures;
  }
  s->desc = std::move(d);
  auto name = s->desc.name;
  slots_.emplace(name, std::move(s));
}

const ServiceDescriptor* ServiceHost::descriptor(const std::string& name) const {
  std::lock_guard lock(state_);
  auto it = slots_.find(name);
  return it == slots_.end() ? nullptr : &it->second->desc;
}

std::vector<std::string> ServiceHost::knownNames() const {
  std::lock_guard lock(state_);
  std::vector<std::string> out;
  for (const auto& [n, s] : slots_) out.push_back(n);
  return out;
}

ServiceHost::Slot& ServiceHost::slot(const std::string& name) {
  return const_cast<Slot&>(static_cast<const ServiceHost*>(this)->slot(name));
}

const ServiceHost::Slot& ServiceHost::slot(const std::string& name) const {
  std::lock_guard lock(state_);
  auto it = slots_.find(name);
  if (it == slots_.end()) {
    std::vector<std::string> names;
    for (const auto& [n, s] : slots_) names.push_back(n);
    throw HostError(name, "unknown service '" + name + "'; valid services: " + joined(names), 78);
  }
  return *it->second;
}

void ServiceHost::setState(Slot& s, ServiceState st, std::string detail) {
  std::lock_guard lock(state_);
  s.state = st;
  s.detail = std::move(detail);
  s.since = std::chrono::system_clock::now();
  if (st == ServiceState::Running) s.runningSince = std::chrono::steady_clock::now();
}

// Dependency order over `names`; every dependency must be among them.
std::vector<std::string> ServiceHost::order(const std::vector<std::string>& names) const {
  std::set<std::string> wanted(names.begin(), names.end());
  std::vector<std::string> out;
  std::set<std::string> done, visiting;
  std::function<void(const std::string&)> visit = [&](const std::string& n) {
    if (done.count(n)) return;
    if (!visiting.insert(n).second) throw HostError(n, "service '" + n + "' is part of a dependency cycle", 78);
    const auto& s = slot(n);
    std::shared_ptr<Service> probe = s.desc.factory();
    for (const auto& dep : probe->dependencies()) {
      if (!wanted.count(dep))
        throw HostError(n, "service '" + n + "' requires '" + dep + "', which is not active on this node", 78);
      visit(dep);
    }
    visiting.erase(n);
    done.insert(n);
    out.push_back(n);
  };
  for (const auto& n : names) visit(n);
  return out;
}

void ServiceHost::configureInto(Slot& s) {
  auto svc = std::shared_ptr<Service>(s.desc.factory());
  try {
    svc->configure(contexts_(s.desc.name));
  } catch (const ConfigError& e) {
    ++*s.failures;
    setState(s, ServiceState::Failed, e.what());
    throw HostError(s.desc.name, std::string(e.what()), 78);
  } catch (const std::exception& e) {
    ++*s.failures;
    setState(s, ServiceState::Failed, std::string("configure failed: ") + e.what());
    throw HostError(s.desc.name, "in [" + s.desc.name + "]: configure failed: " + e.what(), 78);
  } catch (...) {
    ++*s.failures;
    setState(s, ServiceState::Failed, "configure failed: unknown exception");
    throw HostError(s.desc.name, "in [" + s.desc.name + "]: configure failed with an unknown exception", 78);
  }
  std::lock_guard lock(state_);
  s.service = std::move(svc);
}

void ServiceHost::startSlot(Slot& s) {
  std::shared_ptr<Service> svc;
  {
    std::lock_guard lock(state_);
    svc = s.service;
  }
  setState(s, ServiceState::Starting);
  if (log_) log_->info("starting service {}", s.desc.name);
  std::string error;
  try {
    svc->start();
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception";
  }
  if (error.empty()) {
    setState(s, ServiceState::Running, svc->status().detail);
    if (log_) log_->info("service {} running", s.desc.name);
    return;
  }
  ++*s.failures;
  if (log_) log_->error("service {} failed to start: {}", s.desc.name, error);
  stopSlot(s);  // the contract allows stop() after a failed start
  setState(s, ServiceState::Failed, "start failed: " + error);
  throw HostError(s.desc.name, "service " + s.desc.name + " failed to start: " + error, 70);
}

bool ServiceHost::stopSlot(Slot& s) noexcept {
  std::shared_ptr<Service> svc;
  {
    std::lock_guard lock(state_);
    svc = std::move(s.service);
  }
  if (!svc) return true;
  bool failedBefore = false;
  {
    std::lock_guard lock(state_);
    failedBefore = s.state == ServiceState::Failed;
  }
  setState(s, ServiceState::Stopping);
  if (log_) log_->info("stopping service {}", s.desc.name);
  try {
    auto done = std::make_shared<std::promise<void>>();
    auto fut = done->get_future();
    // The thread owns a reference: a hung stop() keeps its object alive.
    std::thread t([svc, done] {
      svc->stop();
      done->set_value();
    });
    if (fut.wait_for(stopTimeout_) == std::future_status::ready) {
      t.join();
      svc.reset();  // destroy on the control thread, after stop() returned
      setState(s, failedBefore ? ServiceState::Failed : ServiceState::Stopped, failedBefore ? s.detail : "");
      if (log_) log_->info("service {} stopped", s.desc.name);
      return true;
    }
    t.detach();
  } catch (const std::exception& e) {
    if (log_) log_->error("stopping service {}: {}", s.desc.name, e.what());
  }
  auto msg = "stop did not finish within " + std::to_string(stopTimeout_.count()) + " ms; abandoned";
  setState(s, ServiceState::StopTimeout, msg);
  if (log_) log_->error("service {}: {}", s.desc.name, msg);
  return false;
}

void ServiceHost::startAll(const std::vector<std::string>& names) {
  std::lock_guard ctl(control_);
  for (const auto& n : names) slot(n);  // unknown names fail before anything
  {
    std::lock_guard lock(state_);
    for (auto& [n, s] : slots_) s->active = std::find(names.begin(), names.end(), n) != names.end();
  }
  auto ordered = order(names);
  // Phase 1: configure everything; any failure means nothing starts.
  for (const auto& n : ordered) {
    try {
      configureInto(slot(n));
    } catch (...) {
      std::lock_guard lock(state_);
      for (auto& [sn, s] : slots_) s->service.reset();  // configured, never started: just drop
      throw;
    }
  }
  // Phase 2: start in dependency order; on failure unwind in reverse.
  for (const auto& n : ordered) {
    try {
      startSlot(slot(n));
      startOrder_.push_back(n);
    } catch (...) {
      for (auto it = startOrder_.rbegin(); it != startOrder_.rend(); ++it) stopSlot(slot(*it));
      startOrder_.clear();
      std::lock_guard lock(state_);
      for (auto& [sn, s] : slots_) s->service.reset();
      throw;
    }
  }
  started_ = true;
}

void ServiceHost::stopAll() noexcept {
  std::lock_guard ctl(control_);
  started_ = false;
  // Reverse start order; services started later at runtime are in the list too.
  for (auto it = startOrder_.rbegin(); it != startOrder_.rend(); ++it) {
    try {
      stopSlot(slot(*it));
    } catch (...) {
    }
  }
  startOrder_.clear();
}

void ServiceHost::start(const std::string& name) {
  std::lock_guard ctl(control_);
  auto& s = slot(name);
  {
    std::lock_guard lock(state_);
    if (!s.active) throw HostError(name, "service '" + name + "' is deactivated on this node; activate it first", 1);
    if (s.state == ServiceState::Running) return;
    if (s.state == ServiceState::StopTimeout)
      throw HostError(name, "service '" + name + "' did not finish stopping; restart impd to recover it", 70);
  }
  auto probe = s.desc.factory();
  for (const auto& dep : probe->dependencies())
    if (info(dep).state != ServiceState::Running)
      throw HostError(name, "service '" + name + "' requires '" + dep + "', which is not running", 1);
  configureInto(s);
  startSlot(s);
  if (std::find(startOrder_.begin(), startOrder_.end(), name) == startOrder_.end()) startOrder_.push_back(name);
}

void ServiceHost::stop(const std::string& name) {
  std::lock_guard ctl(control_);
  auto& s = slot(name);
  std::vector<std::string> dependents;
  for (const auto& other : startOrder_) {
    if (other == name || info(other).state != ServiceState::Running) continue;
    auto probe = slot(other).desc.factory();
    auto deps = probe->dependencies();
    if (std::find(deps.begin(), deps.end(), name) != deps.end()) dependents.push_back(other);
  }
  if (!dependents.empty())
    throw HostError(name, "service '" + name + "' is required by running services: " + joined(dependents) + "; stop them first", 1);
  if (!stopSlot(s)) throw HostError(name, "service '" + name + "' did not stop within the stop timeout", 70);
  std::erase(startOrder_, name);
}

void ServiceHost::restart(const std::string& name) {
  stop(name);
  start(name);
  ++*slot(name).restarts;
}

void ServiceHost::activate(const std::string& name) {
  {
    auto& s = slot(name);
    std::lock_guard lock(state_);
    s.active = true;
  }
  start(name);
}

void ServiceHost::deactivate(const std::string& name) {
  stop(name);
  auto& s = slot(name);
  std::lock_guard lock(state_);
  s.active = false;
}

void ServiceHost::reloadAll(const ConfigChange& change) noexcept {
  std::vector<std::pair<std::string, std::shared_ptr<Service>>> running;
  {
    std::lock_guard lock(state_);
    for (auto& [n, s] : slots_)
      if (s->service && s->state == ServiceState::Running) running.emplace_back(n, s->service);
  }
  for (auto& [n, svc] : running) {
    try {
      svc->reload(change);
    } catch (const std::exception& e) {
      if (log_) log_->error("service {} failed to apply settings generation {}: {}", n, change.toGeneration, e.what());
    } catch (...) {
      if (log_) log_->error("service {} failed to apply settings generation {}", n, change.toGeneration);
    }
  }
}

ServiceInfo ServiceHost::info(const std::string& name) const {
  const auto& s = slot(name);
  ServiceInfo i;
  std::shared_ptr<Service> svc;
  {
    std::lock_guard lock(state_);
    i.name = s.desc.name;
    i.displayName = s.desc.displayName;
    i.kind = s.desc.kind;
    i.active = s.active;
    i.state = s.state;
    i.detail = s.detail;
    i.since = s.since;
    if (s.state == ServiceState::Running) {
      i.uptimeSeconds =
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - s.runningSince).count();
      svc = s.service;
    }
    i.restarts = s.restarts->load();
    i.failures = s.failures->load();
  }
  if (svc) {
    auto st = svc->status();
    if (!st.detail.empty()) i.detail = st.detail;
  }
  return i;
}

std::vector<ServiceInfo> ServiceHost::list() const {
  std::vector<ServiceInfo> out;
  for (const auto& n : knownNames()) out.push_back(info(n));
  return out;
}

std::vector<std::string> ServiceHost::abandoned() const {
  std::vector<std::string> out;
  for (const auto& i : list())
    if (i.state == ServiceState::StopTimeout) out.push_back(i.name);
  return out;
}

bool ServiceHost::allRunning() const {
  if (!started_) return false;
  for (const auto& i : list())
    if (i.active && i.state != ServiceState::Running) return false;
  return true;
}

}  // namespace imp::core
