// net::WorkerPool: named threads, a bounded queue that refuses instead of
// blocking, post-back to a loop in order, stats and the stop contract
// (issue 15, deliverable 1).
#include <doctest/doctest.h>

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "imp/net/worker_pool.h"

using namespace imp::net;
using namespace std::chrono_literals;

namespace {

constexpr auto kDeadline = 10s;

std::string threadName() {
  char buf[16] = {};
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  return buf;
}

// Holds the workers inside jobs until opened.
class Gate {
 public:
  void wait() {
    std::unique_lock l(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(l, [&] { return open_; });
  }
  bool waitForWaiting(int n) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, kDeadline, [&] { return waiting_ >= n; });
  }
  void open() {
    std::lock_guard l(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

}  // namespace

TEST_CASE("WorkerPool: threads are named <name>-<index>") {
  WorkerPool pool({"imp-test", 3, 16});
  CHECK(pool.size() == 3);
  Gate gate;
  std::mutex mu;
  std::set<std::string> names;
  for (int i = 0; i < 3; ++i)
    REQUIRE(pool.submit([&] {
      {
        std::lock_guard l(mu);
        names.insert(threadName());
      }
      gate.wait();  // each job holds its worker, so the three run on three threads
    }));
  REQUIRE(gate.waitForWaiting(3));
  gate.open();
  pool.stop();
  CHECK(names == std::set<std::string>{"imp-test-0", "imp-test-1", "imp-test-2"});
  CHECK_FALSE(pool.inWorker());
}

TEST_CASE("WorkerPool: a full queue refuses without blocking and counts the refusal") {
  WorkerPool pool({"imp-test", 1, 2});
  Gate gate;
  REQUIRE(pool.submit([&] { gate.wait(); }));
  REQUIRE(gate.waitForWaiting(1));  // the worker is busy
  auto held = std::make_shared<int>(0);
  CHECK(pool.submit([held] {}));
  CHECK(pool.submit([held] {}));
  CHECK(held.use_count() == 3);
  CHECK_FALSE(pool.submit([held] {}));  // third waiting job: refused
  CHECK(held.use_count() == 3);         // and destroyed at once
  auto s = pool.stats();
  CHECK(s.queued == 2);
  CHECK(s.running == 1);
  CHECK(s.rejected == 1);
  CHECK(s.completed == 0);
  gate.open();
  pool.stop();
  s = pool.stats();
  CHECK(s.completed == 3);
  CHECK(s.queued == 0);
  CHECK(s.running == 0);
  CHECK(held.use_count() == 1);
  CHECK_FALSE(pool.submit([] {}));  // stopped: refused
  CHECK(pool.stats().rejected == 2);
}

TEST_CASE("WorkerPool: post-back runs done(result) on the loop thread, in completion order") {
  WorkerPool pool({"imp-test", 1, 256});
  EventLoop loop;
  std::vector<int> order;
  std::vector<std::string> doneThreads;
  std::set<std::string> jobThreads;
  std::mutex mu;
  constexpr int kJobs = 100;
  for (int i = 0; i < kJobs; ++i)
    REQUIRE(pool.submit(
        [i, &mu, &jobThreads] {
          std::lock_guard l(mu);
          jobThreads.insert(threadName());
          return i * 2;
        },
        loop,
        [&](int r) {
          CHECK(loop.inLoopThread());
          order.push_back(r / 2);
        }));
  bool voidDone = false;
  REQUIRE(pool.submit([] {}, loop, [&] { voidDone = true; }));
  REQUIRE(loop.runUntil([&] { return order.size() == kJobs && voidDone; }, kDeadline));
  std::vector<int> expected;
  for (int i = 0; i < kJobs; ++i) expected.push_back(i);
  CHECK(order == expected);
  CHECK(jobThreads == std::set<std::string>{"imp-test-0"});
}

TEST_CASE("WorkerPool: stop(Drain) runs what is queued; stop(Drop) destroys it and counts it") {
  SUBCASE("drain") {
    WorkerPool pool({"imp-test", 1, 8});
    Gate gate;
    int ran = 0;
    REQUIRE(pool.submit([&] { gate.wait(); }));
    REQUIRE(gate.waitForWaiting(1));
    for (int i = 0; i < 5; ++i) REQUIRE(pool.submit([&] { ++ran; }));
    std::thread opener([&] { gate.open(); });
    pool.stop(StopMode::Drain);
    opener.join();
    CHECK(ran == 5);
    CHECK(pool.stats().dropped == 0);
    CHECK(pool.stats().completed == 6);
  }
  SUBCASE("drop") {
    WorkerPool pool({"imp-test", 1, 8});
    Gate gate;
    int ran = 0;
    auto held = std::make_shared<int>(0);
    REQUIRE(pool.submit([&] { gate.wait(); }));
    REQUIRE(gate.waitForWaiting(1));
    for (int i = 0; i < 5; ++i) REQUIRE(pool.submit([&ran, held] { ++ran; }));
    // stop() waits for the running job; open the gate once the queued jobs
    // (and what they hold) are gone, so the drop happened first.
    std::thread opener([&] {
      auto deadline = std::chrono::steady_clock::now() + kDeadline;
      while (held.use_count() > 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      gate.open();
    });
    pool.stop(StopMode::Drop);
    opener.join();
    CHECK(ran == 0);
    CHECK(held.use_count() == 1);
    auto s = pool.stats();
    CHECK(s.completed == 1);
    CHECK(s.dropped == 5);
    pool.stop();  // idempotent
  }
}

TEST_CASE("WorkerPool: bad configurations are refused with the reason") {
  auto message = [](WorkerPoolConfig c) -> std::string {
    try {
      WorkerPool p(std::move(c));
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  CHECK(message({"imp-x", 0, 8}) == "worker pool 'imp-x': threads must be at least 1");
  CHECK(message({"imp-x", 1, 0}) == "worker pool 'imp-x': queue limit must be at least 1");
  CHECK(message({"imp-workers-xyz", 10, 8}) ==
        "worker pool 'imp-workers-xyz': thread name 'imp-workers-xyz-9' is empty or longer than 15 bytes");
  CHECK(message({"imp-workers", 10, 8}) == "accepted");
}
