#pragma once
// lifecycle-probe: a test-only service whose configure/start/stop can be told
// to succeed, throw, fail with a configuration error, or hang. It records
// every call in a shared journal so tests can check the host's ordering.
#include <imp/core/config.h>
#include <imp/core/service.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace imp::testing {

enum class Act { Ok, Throw, ConfigError, Hang };

struct Journal {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> events;
  bool released = false;  // lets hanging calls return (test teardown)
  void add(std::string e) {
    std::lock_guard l(mu);
    events.push_back(std::move(e));
    cv.notify_all();
  }
  std::vector<std::string> snapshot() {
    std::lock_guard l(mu);
    return events;
  }
  void release() {
    std::lock_guard l(mu);
    released = true;
    cv.notify_all();
  }
  // Blocks until release(); bounded so a broken test cannot hang ctest.
  void hang() {
    std::unique_lock l(mu);
    cv.wait_for(l, std::chrono::seconds(60), [&] { return released; });
  }
};

struct ProbeScript {
  Act configure = Act::Ok;
  Act start = Act::Ok;
  Act stop = Act::Ok;
  std::vector<std::string> deps;
};

class LifecycleProbe : public core::Service {
 public:
  LifecycleProbe(std::string name, ProbeScript script, std::shared_ptr<Journal> j)
      : name_(std::move(name)), script_(std::move(script)), j_(std::move(j)) {}
  std::string_view name() const override { return name_; }
  core::ServiceKind kind() const override { return core::ServiceKind::Feature; }
  std::vector<std::string> dependencies() const override { return script_.deps; }
  void configure(const core::ServiceContext&) override { act("configure", script_.configure); }
  void start() override {
    act("start", script_.start);
    running_ = true;
  }
  void stop() noexcept override {
    j_->add(name_ + ".stop");
    if (script_.stop == Act::Hang) j_->hang();
    running_ = false;
  }
  core::ServiceStatus status() const override {
    return {running_ ? core::ServiceState::Running : core::ServiceState::Stopped, running_ ? "probing" : ""};
  }

 private:
  void act(const std::string& phase, Act a) {
    j_->add(name_ + "." + phase);
    switch (a) {
      case Act::Ok: return;
      case Act::Throw: throw std::runtime_error(name_ + " told to fail in " + phase);
      case Act::ConfigError: throw core::ConfigError(name_, "told to refuse its configuration");
      case Act::Hang: j_->hang(); return;
    }
  }
  std::string name_;
  ProbeScript script_;
  std::shared_ptr<Journal> j_;
  bool running_ = false;
};

inline core::ServiceDescriptor probe(const std::string& name, ProbeScript script, std::shared_ptr<Journal> j) {
  return {name, "Lifecycle Probe " + name, core::ServiceKind::Feature,
          [=] { return std::make_unique<LifecycleProbe>(name, script, j); }};
}

}  // namespace imp::testing
