// net::LoopGroup: N loops on N named threads, round-robin next(), at(),
// start/stop and the thread contract (issue 15, deliverable 1).
#include <doctest/doctest.h>

#include <pthread.h>

#include <chrono>
#include <future>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "imp/net/loop_group.h"

using namespace imp::net;
using namespace std::chrono_literals;

namespace {

constexpr auto kDeadline = 10s;

// Runs fn on `loop`'s thread and waits for its result.
template <class F>
auto onLoop(EventLoop& loop, F fn) {
  auto p = std::make_shared<std::promise<decltype(fn())>>();
  auto f = p->get_future();
  loop.post([p, fn] { p->set_value(fn()); });
  REQUIRE(f.wait_for(kDeadline) == std::future_status::ready);
  return f.get();
}

std::string threadName() {
  char buf[16] = {};
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  return buf;
}

}  // namespace

TEST_CASE("LoopGroup: each loop runs on its own named thread; next() goes round") {
  LoopGroup group({"imp-loop", 3});
  CHECK(group.size() == 3);
  CHECK_FALSE(group.running());
  // Before start(), the constructing thread may set a loop up.
  bool fired = false;
  group.at(1).schedule(0ms, [&] { fired = true; });
  group.start();
  CHECK(group.running());
  std::set<std::string> names;
  std::set<std::thread::id> ids;
  for (std::size_t i = 0; i < group.size(); ++i) {
    auto& loop = group.at(i);
    CHECK_FALSE(loop.inLoopThread());
    names.insert(onLoop(loop, [&loop] { return loop.inLoopThread() ? threadName() : std::string("not on the loop"); }));
    ids.insert(onLoop(loop, [] { return std::this_thread::get_id(); }));
  }
  CHECK(names == std::set<std::string>{"imp-loop-0", "imp-loop-1", "imp-loop-2"});
  CHECK(ids.size() == 3);
  CHECK(onLoop(group.at(1), [&] { return fired; }));

  EventLoop* seen[6];
  for (auto& s : seen) s = &group.next();
  CHECK(seen[0] != seen[1]);
  CHECK(seen[1] != seen[2]);
  CHECK(seen[0] != seen[2]);
  CHECK(seen[3] == seen[0]);
  CHECK(seen[4] == seen[1]);
  CHECK(seen[5] == seen[2]);
  CHECK_THROWS_AS(group.start(), std::logic_error);

  group.stop();
  CHECK_FALSE(group.running());
  group.stop();  // idempotent
  // The loops outlive stop(): what is posted now runs after a restart.
  bool ran = false;
  group.at(0).post([&] { ran = true; });
  group.start();
  CHECK(onLoop(group.at(0), [&] { return ran; }));
}

TEST_CASE("LoopGroup: at() out of range and bad configurations are refused") {
  LoopGroup group({"imp-loop", 1});
  CHECK_THROWS_AS(group.at(1), std::out_of_range);
  CHECK_THROWS_WITH_AS(LoopGroup({"imp-loop", 0}), "loop group 'imp-loop': loops must be at least 1", std::invalid_argument);
  CHECK_THROWS_WITH_AS(LoopGroup({"imp-event-loops", 2}),
                       "loop group 'imp-event-loops': thread name 'imp-event-loops-1' is empty or longer than 15 bytes",
                       std::invalid_argument);
}
