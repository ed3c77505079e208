// The event loop's timer queue and its end-of-iteration queue (no sockets).
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "imp/net/event_loop.h"

using namespace imp::net;
using namespace std::chrono_literals;

namespace {
constexpr auto kDeadline = 5s;
}

TEST_CASE("event loop timers: cancel frees at once, stale ids never cancel a reused slot, ties fire in order") {
  EventLoop loop;
  auto held = std::make_shared<int>(1);
  TimerId a = loop.schedule(1h, [held] {});
  CHECK(held.use_count() == 2);
  CHECK(loop.timerCount() == 1);
  loop.cancel(a);
  CHECK(held.use_count() == 1);  // the function (and what it captured) is gone
  CHECK(loop.timerCount() == 0);

  // The freed slot is reused; the old id must not cancel the new timer.
  std::vector<int> fired;
  TimerId b = loop.schedule(0ms, [&] { fired.push_back(1); });
  CHECK(b != a);
  loop.cancel(a);
  CHECK(loop.timerCount() == 1);
  loop.cancel(0);  // never issued
  // Same deadline: scheduling order.
  auto at = 5ms;
  for (int i = 2; i <= 6; ++i) loop.schedule(at, [&fired, i] { fired.push_back(i); });
  CHECK(loop.runUntil([&] { return fired.size() == 6; }, kDeadline));
  CHECK(fired == std::vector<int>{1, 2, 3, 4, 5, 6});
  loop.cancel(b);  // fired: no-op
  CHECK(loop.timerCount() == 0);
}

TEST_CASE("event loop timers: many pending, cancelled out of order, the rest fire by deadline") {
  EventLoop loop;
  std::vector<TimerId> ids;
  std::vector<int> fired;
  for (int i = 0; i < 200; ++i) ids.push_back(loop.schedule(std::chrono::milliseconds(200 - i), [&fired, i] { fired.push_back(i); }));
  for (int i = 0; i < 200; i += 3) loop.cancel(ids[i]);
  std::size_t want = 200 - (200 + 2) / 3;
  CHECK(loop.timerCount() == want);
  CHECK(loop.runUntil([&] { return fired.size() == want; }, kDeadline));
  for (std::size_t k = 0; k + 1 < fired.size(); ++k) CHECK(fired[k] > fired[k + 1]);  // later i = earlier deadline
  for (int i : fired) CHECK(i % 3 != 0);
  CHECK(loop.timerCount() == 0);
}

TEST_CASE("event loop: a zero-delay timer scheduled by a timer fires on the next pass; atIterationEnd runs after the pass") {
  EventLoop loop;
  std::vector<std::string> seen;
  loop.schedule(0ms, [&] {
    seen.push_back("timer");
    loop.atIterationEnd([&] {
      seen.push_back("end");
      loop.atIterationEnd([&] { seen.push_back("end2"); });  // same pass
    });
    loop.schedule(0ms, [&] { seen.push_back("next"); });
  });
  CHECK(loop.runUntil([&] { return seen.size() == 4; }, kDeadline));
  CHECK(seen == std::vector<std::string>{"timer", "end", "end2", "next"});

  // Queued outside an iteration: runs at the start of the next one, without
  // waiting for the (long) timeout.
  bool ran = false;
  loop.atIterationEnd([&] { ran = true; });
  auto t0 = Clock::now();
  CHECK(loop.runUntil([&] { return ran; }, kDeadline));
  CHECK(Clock::now() - t0 < 1s);
}
