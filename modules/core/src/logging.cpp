#include "imp/core/logging.h"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace imp::core {

struct LogRegistry::Entry {
  std::shared_ptr<spdlog::logger> logger;
  TraceSetting trace;
  std::shared_ptr<TraceFlags> flags = std::make_shared<TraceFlags>();
};

std::optional<spdlog::level::level_enum> parseLevel(std::string_view s) {
  static const std::pair<std::string_view, spdlog::level::level_enum> names[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug}, {"info", spdlog::level::info},
      {"warn", spdlog::level::warn},   {"warning", spdlog::level::warn}, {"error", spdlog::level::err},
      {"critical", spdlog::level::critical}, {"off", spdlog::level::off}};
  for (const auto& [n, l] : names)
    if (n == s) return l;
  return std::nullopt;
}

std::string levelName(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    default: return "off";
  }
}

bool TraceFlags::has(std::string_view flag) const {
  if (!any_.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(mu_);
  return flags_.find(flag) != flags_.end();
}

void TraceFlags::replace(std::set<std::string> flags) {
  std::lock_guard lock(mu_);
  flags_ = std::set<std::string, std::less<>>(flags.begin(), flags.end());
  any_.store(!flags_.empty(), std::memory_order_release);
}

LogRegistry::LogRegistry(LogSettings settings) : settings_(std::move(settings)) {
  if (!settings_.dir.empty()) std::filesystem::create_directories(settings_.dir);
  flusher_ = std::thread([this] {
    std::unique_lock lock(flushMu_);
    while (!flushCv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; })) flushAll();
  });
}

LogRegistry::~LogRegistry() {
  {
    std::lock_guard lock(flushMu_);
    stopping_ = true;
  }
  flushCv_.notify_all();
  flusher_.join();
  flushAll();
}

std::shared_ptr<spdlog::logger> LogRegistry::makeLogger(const std::string& name) {
  std::vector<spdlog::sink_ptr> sinks;
  if (!settings_.dir.empty())
    sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
        (settings_.dir / (name + ".log")).string(), settings_.maxSize, settings_.maxFiles));
  if (settings_.console) sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (sinks.empty()) sinks.push_back(std::make_shared<spdlog::sinks::null_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>(name, sinks.begin(), sinks.end());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %-5l [%n] [%t] %v");
  logger->flush_on(spdlog::level::info);
  return logger;
}

LogRegistry::Entry& LogRegistry::entry(const std::string& name) {
  auto it = entries_.find(name);
  if (it != entries_.end()) return *it->second;
  auto e = std::make_unique<Entry>();
  e->logger = makeLogger(name);
  e->trace.level = settings_.defaultLevel;
  e->logger->set_level(settings_.defaultLevel);
  return *entries_.emplace(name, std::move(e)).first->second;
}

std::shared_ptr<spdlog::logger> LogRegistry::get(const std::string& name) {
  std::lock_guard lock(mu_);
  return entry(name).logger;
}

void LogRegistry::setTrace(const std::string& name, const TraceSetting& t) {
  std::lock_guard lock(mu_);
  auto& e = entry(name);
  e.trace = t;
  // SV-4: trace off keeps warnings and errors; on writes at the chosen level.
  e.logger->set_level(t.enabled ? t.level : std::max(t.level, spdlog::level::warn));
  e.flags->replace(t.enabled ? t.flags : std::set<std::string>{});
}

TraceSetting LogRegistry::trace(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return TraceSetting{true, settings_.defaultLevel, {}};
  return it->second->trace;
}

std::shared_ptr<const TraceFlags> LogRegistry::flags(const std::string& name) {
  std::lock_guard lock(mu_);
  return entry(name).flags;
}

void LogRegistry::flushAll() {
  std::lock_guard lock(mu_);
  for (auto& [name, e] : entries_) e->logger->flush();
}

}  // namespace imp::core
