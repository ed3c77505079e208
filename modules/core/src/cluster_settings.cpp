#include "imp/core/cluster_settings.h"

#include <spdlog/spdlog.h>

#include "imp/core/database.h"

namespace imp::core {

ClusterSettings::ClusterSettings(Database& db, std::chrono::milliseconds pollInterval,
                                 std::shared_ptr<spdlog::logger> log)
    : db_(db), interval_(pollInterval), log_(std::move(log)) {}

ClusterSettings::~ClusterSettings() { stop(); }

void ClusterSettings::subscribe(Listener fn) { listeners_.push_back(std::move(fn)); }

std::uint64_t ClusterSettings::bump(DbSession& s) {
  s.exec("UPDATE core_settings SET generation = generation + 1, changed_at = CURRENT_TIMESTAMP(3) WHERE id = 1");
  auto r = s.query("SELECT generation FROM core_settings WHERE id = 1");
  return static_cast<std::uint64_t>(r.num(0, "generation"));
}

void ClusterSettings::pollOnce() {
  std::lock_guard poll(pollMu_);
  std::uint64_t gen = 0;
  try {
    auto r = db_.query("SELECT generation FROM core_settings WHERE id = 1");
    gen = r.empty() ? 0 : static_cast<std::uint64_t>(r.num(0, "generation"));
    if (!reachable_.exchange(true) && log_) log_->info("database reachable");
  } catch (const std::exception& e) {
    if (reachable_.exchange(false) && log_) log_->error("database unreachable: {}", e.what());
    return;
  }
  auto old = applied_.load();
  if (gen != old) {
    ConfigChange change{old, gen};
    if (log_) log_->debug("cluster settings generation {} -> {}", old, gen);
    for (auto& l : listeners_) {
      try {
        l(change);
      } catch (const std::exception& e) {
        if (log_) log_->error("settings listener failed for generation {}: {}", gen, e.what());
      }
    }
    applied_ = gen;
  }
  std::lock_guard lock(mu_);
  appliedCv_.notify_all();
}

void ClusterSettings::run() {
  while (!stopping_) {
    pollOnce();
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, interval_, [&] { return stopping_.load() || poke_; });
    poke_ = false;
  }
}

void ClusterSettings::start() {
  pollOnce();
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void ClusterSettings::stop() noexcept {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool ClusterSettings::applyNow(std::uint64_t atLeast, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  while (applied_.load() < atLeast) {
    poke_ = true;
    cv_.notify_all();
    if (appliedCv_.wait_until(lock, deadline) == std::cv_status::timeout) return applied_.load() >= atLeast;
  }
  return true;
}

}  // namespace imp::core
