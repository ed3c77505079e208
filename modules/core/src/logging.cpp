#include "imp/core/logging.h"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace imp::core {

AsyncSink::AsyncSink(std::string name, std::vector<spdlog::sink_ptr> sinks, std::size_t capacity)
    : name_(std::move(name)), sinks_(std::move(sinks)), capacity_(capacity == 0 ? 1 : capacity) {
  writer_ = std::thread([this] { run(); });
}

AsyncSink::~AsyncSink() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

void AsyncSink::log(const spdlog::details::log_msg& msg) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= capacity_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.emplace_back(msg);
    ++queued_;
  }
  wake_.notify_one();
}

void AsyncSink::flush() {
  std::unique_lock lock(mu_);
  // The writer flushes after every batch: wait for the one that reaches
  // what is queued now.
  auto target = queued_;
  done_.wait(lock, [&] { return written_ >= target || stop_; });
}

void AsyncSink::set_pattern(const std::string& pattern) {
  std::lock_guard lock(mu_);
  for (auto& s : sinks_) s->set_pattern(pattern);
}

void AsyncSink::set_formatter(std::unique_ptr<spdlog::formatter> formatter) {
  std::lock_guard lock(mu_);
  for (auto& s : sinks_) s->set_formatter(formatter->clone());
}

void AsyncSink::run() {
  std::deque<spdlog::details::log_msg_buffer> batch;
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    batch.swap(queue_);
    auto upto = queued_;
    bool stopping = stop_;
    lock.unlock();
    for (const auto& m : batch) {
      for (auto& s : sinks_)
        if (s->should_log(m.level)) s->log(m);
    }
    batch.clear();
    auto dropped = dropped_.load(std::memory_order_relaxed);
    if (dropped != droppedReported_) {
      std::string text = std::to_string(dropped - droppedReported_) +
                         " log lines dropped: the log writer could not keep up (lower the trace level)";
      spdlog::details::log_msg note(spdlog::source_loc{}, name_, spdlog::level::warn, text);
      for (auto& s : sinks_) s->log(note);
      droppedReported_ = dropped;
    }
    // One flush per batch: lines show up at once when the writer keeps up,
    // and cost one write per batch, not per line, when it is busy.
    for (auto& s : sinks_) s->flush();
    lock.lock();
    written_ = upto;
    done_.notify_all();
    if (stopping && queue_.empty()) return;
  }
}

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
}

LogRegistry::~LogRegistry() { flushAll(); }

std::shared_ptr<spdlog::logger> LogRegistry::makeLogger(const std::string& name) {
  std::vector<spdlog::sink_ptr> sinks;
  if (!settings_.dir.empty())
    sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
        (settings_.dir / (name + ".log")).string(), settings_.maxSize, settings_.maxFiles));
  if (settings_.console) sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (sinks.empty()) return std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::null_sink_mt>());
  // No flush_on(): a flush from the caller would wait for the writer.
  auto logger = std::make_shared<spdlog::logger>(name, std::make_shared<AsyncSink>(name, std::move(sinks)));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %-5l [%n] [%t] %v");
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
  std::vector<std::shared_ptr<spdlog::logger>> loggers;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, e] : entries_) loggers.push_back(e->logger);
  }
  for (auto& l : loggers) l->flush();  // outside mu_: flushing waits for the writers
}

std::uint64_t LogRegistry::droppedLines() const {
  std::lock_guard lock(mu_);
  std::uint64_t n = 0;
  for (const auto& [name, e] : entries_)
    for (const auto& sink : e->logger->sinks())
      if (auto* a = dynamic_cast<const AsyncSink*>(sink.get())) n += a->dropped();
  return n;
}

}  // namespace imp::core
