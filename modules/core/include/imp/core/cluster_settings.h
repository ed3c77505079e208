#pragma once
// Cluster settings change notification. Every admin change that services
// must see bumps one generation counter (core_settings.generation) in the
// same transaction as the change. A watcher thread polls the counter and,
// when it moved, calls every listener with the old and new generation; the
// services then re-read what they own and apply it live (reload()).
//
// The watcher also tracks database reachability for /health/ready: a failed
// poll marks the database down; the next good one marks it up again.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "imp/core/service.h"

namespace imp::core {

class Database;
class DbSession;

class ClusterSettings {
 public:
  using Listener = std::function<void(const ConfigChange&)>;

  ClusterSettings(Database& db, std::chrono::milliseconds pollInterval, std::shared_ptr<spdlog::logger> log);
  ~ClusterSettings();

  // Listeners run on the watcher thread, in registration order. Register
  // before start().
  void subscribe(Listener fn);
  void start();
  void stop() noexcept;

  // Bumps the generation inside the caller's transaction; returns the new value.
  static std::uint64_t bump(DbSession& s);
  // Checks now instead of at the next poll and returns once the listeners
  // have seen a generation >= `atLeast` (or the timeout passed).
  bool applyNow(std::uint64_t atLeast, std::chrono::milliseconds timeout);

  std::uint64_t appliedGeneration() const { return applied_.load(); }
  bool databaseReachable() const { return reachable_.load(); }

 private:
  void run();
  void pollOnce();

  Database& db_;
  std::chrono::milliseconds interval_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<Listener> listeners_;
  std::atomic<std::uint64_t> applied_{0};
  std::atomic<bool> reachable_{false};
  std::atomic<bool> stopping_{false};
  bool poke_ = false;
  std::mutex mu_;
  std::condition_variable cv_;       // wakes the watcher
  std::condition_variable appliedCv_;  // wakes applyNow() callers
  std::mutex pollMu_;  // one poll at a time
  std::thread thread_;
};

}  // namespace imp::core
