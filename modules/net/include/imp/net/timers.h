#pragma once
// Time for the protocol layers: an injectable timer queue, so protocol
// timers (SIP transaction timers A-K of RFC 3261 §17, stream and handshake
// timeouts) run on the real event loop in production and on a manual clock
// in tests.
//
// Contract: callbacks run on the thread that owns the queue (the event loop
// thread, or the test thread inside advance()); cancel() of a timer that
// already fired or was cancelled is a no-op; schedule() from inside a
// callback is allowed.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <utility>

namespace imp::net {

using Clock = std::chrono::steady_clock;
using TimerId = std::uint64_t;

class TimerQueue {
 public:
  virtual ~TimerQueue() = default;
  virtual Clock::time_point now() const = 0;
  virtual TimerId schedule(Clock::duration after, std::function<void()> fn) = 0;
  virtual void cancel(TimerId id) = 0;
};

// Test clock: time moves only in advance(), which fires due timers in order.
class ManualTimers : public TimerQueue {
 public:
  Clock::time_point now() const override { return now_; }
  TimerId schedule(Clock::duration after, std::function<void()> fn) override {
    TimerId id = ++next_;
    timers_.emplace(std::make_pair(now_ + after, id), std::move(fn));
    return id;
  }
  void cancel(TimerId id) override {
    for (auto it = timers_.begin(); it != timers_.end(); ++it)
      if (it->first.second == id) {
        timers_.erase(it);
        return;
      }
  }
  // Moves the clock forward by d, firing every timer due on the way.
  void advance(Clock::duration d) {
    auto end = now_ + d;
    while (!timers_.empty() && timers_.begin()->first.first <= end) {
      auto it = timers_.begin();
      now_ = it->first.first;
      auto fn = std::move(it->second);
      timers_.erase(it);
      fn();
    }
    now_ = end;
  }
  std::size_t pending() const { return timers_.size(); }

 private:
  Clock::time_point now_{};
  TimerId next_ = 0;
  std::map<std::pair<Clock::time_point, TimerId>, std::function<void()>> timers_;
};

}  // namespace imp::net
