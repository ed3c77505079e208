#pragma once
// Logging (SV-4, SV-5): one named spdlog logger and one rotating file per
// service under the log directory; trace settings (on/off, level, flags)
// changeable at runtime from any thread.
//
// Writing is asynchronous: a service's thread (an event loop among them)
// queues the line, and a writer thread per logger formats it, does the file
// I/O and flushes once per batch of lines (so a line shows at once when the
// writer keeps up, and a busy writer pays one write per batch). A
// queue that is full (the disk cannot keep up) drops new lines instead of
// blocking the caller; the writer then logs how many it dropped, and
// LogRegistry::droppedLines() counts them.
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
#include <cstdint>
#include <deque>
#include <vector>

#include <spdlog/common.h>
#include <spdlog/details/log_msg_buffer.h>
#include <spdlog/sinks/sink.h>

namespace spdlog {
class logger;
}

namespace imp::core {

// An spdlog sink that hands its lines to a writer thread, which passes them
// on to the wrapped sinks (a rotating file, the console). log() never waits
// for I/O: at `capacity` queued lines it drops the line and counts it.
// flush() waits until everything queued so far is written and flushed (for
// shutdown and tests; loggers using this sink do not flush per line).
class AsyncSink final : public spdlog::sinks::sink {
 public:
  // `name` is the logger's, for the writer's own "lines dropped" line.
  AsyncSink(std::string name, std::vector<spdlog::sink_ptr> sinks, std::size_t capacity = 65536);
  ~AsyncSink() override;  // writes what is queued, then stops the writer
  AsyncSink(const AsyncSink&) = delete;
  AsyncSink& operator=(const AsyncSink&) = delete;

  void log(const spdlog::details::log_msg& msg) override;
  void flush() override;
  void set_pattern(const std::string& pattern) override;
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override;
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  void run();

  std::string name_;
  std::vector<spdlog::sink_ptr> sinks_;
  std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::deque<spdlog::details::log_msg_buffer> queue_;
  std::uint64_t queued_ = 0, written_ = 0;  // lines taken / handled by the writer
  std::uint64_t droppedReported_ = 0;        // writer thread only
  std::atomic<std::uint64_t> dropped_{0};
  bool stop_ = false;
  std::thread writer_;
};

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
  // Waits until every logger's queued lines are written and flushed.
  void flushAll();
  // Lines dropped because a logger's queue was full, over all loggers.
  std::uint64_t droppedLines() const;
  const LogSettings& settings() const { return settings_; }

 private:
  struct Entry;
  Entry& entry(const std::string& name);
  std::shared_ptr<spdlog::logger> makeLogger(const std::string& name);

  LogSettings settings_;
  mutable std::mutex mu_;
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
