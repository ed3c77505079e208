#include "imp/serviceability/services.h"

#include <imp/core/config.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "imp/serviceability/control.h"

namespace imp::serviceability {

namespace {

class ServiceabilityService : public core::Service {
 public:
  explicit ServiceabilityService(NodeControl& c) : control_(c) {}
  std::string_view name() const override { return "serviceability"; }
  core::ServiceKind kind() const override { return core::ServiceKind::Network; }
  void configure(const core::ServiceContext& ctx) override { log_ = ctx.logger; }
  void start() override {
    running_ = true;
    // Catch up with anything stored for this node while we were stopped.
    control_.applyPending();
  }
  void stop() noexcept override { running_ = false; }
  void reload(const core::ConfigChange& change) override {
    if (!running_) return;
    control_.applyPending();
    applied_ = change.toGeneration;
    // Logged after applying, so a trace change made for this node shows here.
    if (log_) log_->debug("settings generation {} applied", change.toGeneration);
  }
  core::ServiceStatus status() const override {
    return {running_ ? core::ServiceState::Running : core::ServiceState::Stopped,
            applied_ ? "applied settings generation " + std::to_string(applied_.load()) : ""};
  }

 private:
  NodeControl& control_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<bool> running_{false};
  std::atomic<std::uint64_t> applied_{0};
};

class RisCollector : public core::Service {
 public:
  explicit RisCollector(NodeControl& c) : control_(c) {}
  ~RisCollector() override { stop(); }
  std::string_view name() const override { return "ris-collector"; }
  core::ServiceKind kind() const override { return core::ServiceKind::Network; }
  void configure(const core::ServiceContext& ctx) override {
    log_ = ctx.logger;
    interval_ = std::chrono::seconds(ctx.config ? ctx.config->getInt("services", "heartbeat_interval") : 5);
  }
  void start() override {
    stopping_ = false;
    if (log_) log_->info("publishing heartbeat and service states every {} s", interval_.count());
    thread_ = std::thread([this] { run(); });
  }
  void stop() noexcept override {
    {
      std::lock_guard l(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  core::ServiceStatus status() const override {
    auto n = beats_.load();
    return {thread_.joinable() ? core::ServiceState::Running : core::ServiceState::Stopped,
            "heartbeat every " + std::to_string(interval_.count()) + " s, " + std::to_string(n) + " sent" +
                (lastError_.load() ? ", last one failed" : "")};
  }

 private:
  void run() {
    while (true) {
      try {
        control_.publishState();
        ++beats_;
        if (log_) log_->debug("heartbeat {} published", beats_.load());
        if (lastError_.exchange(false) && log_) log_->info("heartbeat published again");
      } catch (const std::exception& e) {
        // The database may be down: keep trying at the same pace (Envoy policy:
        // environment failures are retried, reported, never fatal).
        if (!lastError_.exchange(true) && log_) log_->error("heartbeat failed: {}", e.what());
      }
      std::unique_lock l(mu_);
      if (cv_.wait_for(l, interval_, [&] { return stopping_; })) return;
    }
  }

  NodeControl& control_;
  std::shared_ptr<spdlog::logger> log_;
  std::chrono::seconds interval_{5};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<std::uint64_t> beats_{0};
  std::atomic<bool> lastError_{false};
};

}  // namespace

std::unique_ptr<core::Service> makeServiceabilityService(NodeControl& control) {
  return std::make_unique<ServiceabilityService>(control);
}

std::unique_ptr<core::Service> makeRisCollector(NodeControl& control) { return std::make_unique<RisCollector>(control); }

}  // namespace imp::serviceability
