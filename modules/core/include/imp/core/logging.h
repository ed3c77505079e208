#pragma once
// Logging (SV-4, SV-5): one named spdlog logger and one rotating file per
// service under the log directory; trace settings (on/off, level, flags)
// changeable at runtime from any thread.
//
// Trace semantics (like the Control Center's "Trace On" box): trace on writes
// at the chosen level; trace off writes warnings and errors only. Flags are
// extra per-service filters (e.g. the SIP Proxy's "sip-tcp"); services ask
// traceFlag() on their own hot paths, which is a lock-free read.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <condition_variable>

#include <spdlog/common.h>

namespace spdlog {
class logger;
}

namespace imp::core {

struct LogSettings {
  std::filesystem::path dir;  // empty = no files (tests): console or null sink
  std::size_t maxSize = 10 * 1024 * 1024;
  std::size_t maxFiles = 5;
  spdlog::level::level_enum defaultLevel = spdlog::level::info;
  bool console = false;
};

struct TraceSetting {
  bool enabled = true;
  spdlog::level::level_enum level = spdlog::level::info;
  std::set<std::string> flags;
};

// Parses "debug", "info", ... ; nullopt if not a level name.
std::optional<spdlog::level::level_enum> parseLevel(std::string_view s);
std::string levelName(spdlog::level::level_enum l);

class TraceFlags;

class LogRegistry {
 public:
  explicit LogRegistry(LogSettings settings);
  ~LogRegistry();
  LogRegistry(const LogRegistry&) = delete;
  LogRegistry& operator=(const LogRegistry&) = delete;

  // The logger for `name` (created on first use, file <dir>/<name>.log).
  std::shared_ptr<spdlog::logger> get(const std::string& name);
  // Applies a trace setting live; creates the logger if needed.
  void setTrace(const std::string& name, const TraceSetting& t);
  TraceSetting trace(const std::string& name) const;
  // Flag check for hot paths: lock-free after the first call per name.
  std::shared_ptr<const TraceFlags> flags(const std::string& name);
  void flushAll();
  const LogSettings& settings() const { return settings_; }

 private:
  struct Entry;
  Entry& entry(const std::string& name);
  std::shared_ptr<spdlog::logger> makeLogger(const std::string& name);

  LogSettings settings_;
  mutable std::mutex mu_;
  // Lines below `info` are not flushed one by one (debug tracing is hot);
  // this thread flushes every logger once a second so they show up promptly.
  std::mutex flushMu_;
  std::condition_variable flushCv_;
  bool stopping_ = false;
  std::thread flusher_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
};

// A service's current flag set; replaced atomically on change.
class TraceFlags {
 public:
  bool has(std::string_view flag) const;
  void replace(std::set<std::string> flags);

 private:
  mutable std::mutex mu_;
  std::set<std::string, std::less<>> flags_;
  std::atomic<bool> any_{false};
};

}  // namespace imp::core
