// Asynchronous log writing (issue 15): lines reach the file through the
// writer thread, flushAll() waits for them, and a writer that cannot keep up
// never blocks the caller: lines beyond the queue are dropped, counted and
// reported in the log itself.
#include <doctest/doctest.h>
#include <unistd.h>

#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "imp/core/logging.h"

using namespace imp::core;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Records what it is given; the first line blocks until released.
class GateSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::promise<void> entered;
  std::shared_future<void> release;
  std::vector<std::string> lines;  // read after flush()
  bool first = true;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines.emplace_back(msg.payload.data(), msg.payload.size());
    if (first) {
      first = false;
      entered.set_value();
      release.wait();
    }
  }
  void flush_() override {}
};

fs::path freshDir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("imp-logging-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

}  // namespace

TEST_CASE("log lines reach the service's file through the writer; flushAll waits for them") {
  auto dir = freshDir("file");
  {
    LogSettings ls;
    ls.dir = dir;
    LogRegistry logs(ls);
    auto log = logs.get("svc");
    for (int i = 0; i < 1000; ++i) log->info("line {}", i);
    logs.flushAll();
    std::ifstream in(dir / "svc.log");
    std::vector<std::string> got;
    for (std::string l; std::getline(in, l);) got.push_back(l);
    REQUIRE(got.size() == 1000);
    CHECK(got.front().find("[svc]") != std::string::npos);
    CHECK(got.front().find("line 0") != std::string::npos);
    CHECK(got.back().find("line 999") != std::string::npos);
    CHECK(logs.droppedLines() == 0);
  }
  fs::remove_all(dir);
}

TEST_CASE("a writer that cannot keep up never blocks the caller: the overflow is dropped, counted and reported") {
  auto gate = std::make_shared<GateSink>();
  std::promise<void> open;
  gate->release = open.get_future().share();
  auto entered = gate->entered.get_future();
  auto async = std::make_shared<AsyncSink>("svc", std::vector<spdlog::sink_ptr>{gate}, 4);
  spdlog::logger log("svc", async);
  log.set_pattern("%v");

  log.info("first");  // the writer takes it and blocks inside the sink
  REQUIRE(entered.wait_for(5s) == std::future_status::ready);
  for (int i = 0; i < 10; ++i) log.info("queued {}", i);  // 4 fit, 6 do not; none of these calls waits
  CHECK(async->dropped() == 6);

  open.set_value();
  async->flush();
  // The writer reports the loss as soon as it is back, before the next batch.
  REQUIRE(gate->lines.size() == 6);
  CHECK(gate->lines[0] == "first");
  CHECK(gate->lines[1] == "6 log lines dropped: the log writer could not keep up (lower the trace level)");
  CHECK(gate->lines[2] == "queued 0");
  CHECK(gate->lines[5] == "queued 3");
}
