#pragma once
// One epoll event loop = one thread (ARCHITECTURE.md, Concurrency).
//
// Threads: run()/runUntil() make the calling thread the loop thread. watch(),
// unwatch(), schedule() and cancel() are for the loop thread only (or any
// single thread while no thread runs the loop, e.g. during set-up). post()
// and stop() may be called from any thread: post() queues the function and
// wakes the loop through an eventfd; it runs on the loop thread, in post
// order. Nothing run on the loop may block (no DNS, database, file I/O).
//
// Scaling: a process may run several loops, each on its own thread with its
// own transports (SO_REUSEPORT listeners, connections sharded by loop);
// loops share nothing.
//
// Layering: modules/net knows no protocol; sip (and the protocols after it)
// build their transports on this loop.
//
// Timers: implements TimerQueue (timers.h) with a binary heap of live timers
// only: schedule() and cancel() are O(log n) in the timers pending, cancel()
// takes the timer out at once (its function is destroyed then) and is a
// no-op for fired/cancelled ids; a timer scheduled from a callback with a
// zero delay fires on the next iteration, never in the same pass. Timer
// slots are reused: an id names its slot and the slot's generation, so a
// stale id never cancels a later timer.
//
// Errors: the constructor throws std::system_error when epoll or eventfd
// cannot be created; watch() throws std::system_error when epoll_ctl fails.
// Exceptions thrown by callbacks are not caught: a callback must handle its
// own errors (a throwing callback is a bug, not an input problem).
//
// Ownership: the loop does not own watched fds; the watcher closes them after
// unwatch(). Posted functions that have not run when the loop is destroyed
// are destroyed without running.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "imp/net/timers.h"

namespace imp::net {

class EventLoop final : public TimerQueue {
 public:
  // Receives the epoll event bits (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP...).
  using IoCallback = std::function<void(std::uint32_t events)>;

  EventLoop();
  ~EventLoop() override;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Level-triggered interest in `events` on a non-blocking fd. The callback
  // may unwatch any fd (itself included); events already collected for an
  // unwatched fd are dropped.
  void watch(int fd, std::uint32_t events, IoCallback cb);
  void modify(int fd, std::uint32_t events);
  void unwatch(int fd);

  // Runs fn once at the end of the current iteration, after its I/O
  // callbacks, posted functions and timers (or at the start of the next
  // one when called outside an iteration); the loop does not sleep while
  // one is pending. Functions queued by these functions run in the same
  // pass. For work batched per iteration, e.g. one write per connection
  // for all the messages the iteration produced. Loop thread only.
  void atIterationEnd(std::function<void()> fn);

  // TimerQueue.
  Clock::time_point now() const override { return Clock::now(); }
  TimerId schedule(Clock::duration after, std::function<void()> fn) override;
  void cancel(TimerId id) override;

  // Any thread.
  void post(std::function<void()> fn);
  void stop();
  // True on the thread currently running the loop.
  bool inLoopThread() const { return owner_.load() == std::this_thread::get_id(); }
  // True while another thread runs the loop (run()/runUntil()): what the
  // loop owns must then be touched through post() only.
  bool runningElsewhere() const {
    auto o = owner_.load();
    return o != std::thread::id{} && o != std::this_thread::get_id();
  }

  // Runs until stop() (a stop() before run() makes run() return at once).
  void run();
  // Runs until done() is true or `timeout` has passed (at least one
  // non-blocking iteration even for a zero timeout); returns done().
  // For tests and tools that drive the loop from their own thread.
  bool runUntil(const std::function<bool()>& done, Clock::duration timeout);

  std::size_t watchedCount() const { return watches_.size(); }
  std::size_t timerCount() const { return timerHeap_.size(); }

 private:
  struct Watch {
    std::uint64_t token;
    IoCallback cb;
  };
  void iterate(Clock::duration maxWait);
  void runPosted();
  void runTimers();
  void runDeferred();

  int epfd_ = -1;
  int wakefd_ = -1;
  std::atomic<std::thread::id> owner_{};
  std::atomic<bool> stopRequested_{false};

  std::unordered_map<int, Watch> watches_;
  std::unordered_map<std::uint64_t, int> tokens_;  // live token -> fd
  std::uint64_t nextToken_ = 1;                    // 0 is the wake-up eventfd

  struct TimerNode {
    Clock::time_point when{};
    std::uint64_t seq = 0;       // scheduling order: ties, and "not in this pass"
    std::uint32_t gen = 1;       // bumped whenever the slot is freed; never 0
    std::uint32_t heapPos = 0;   // index in timerHeap_ while pending
    std::function<void()> fn;
  };
  bool timerBefore(std::uint32_t a, std::uint32_t b) const;
  void heapUp(std::size_t i);
  void heapDown(std::size_t i);
  void heapRemove(std::size_t i);
  void freeTimer(std::uint32_t slot);

  std::vector<TimerNode> timerNodes_;     // by slot
  std::vector<std::uint32_t> freeSlots_;
  std::vector<std::uint32_t> timerHeap_;  // pending slots, min-heap on (when, seq)
  std::uint64_t timerSeq_ = 0;

  std::vector<std::function<void()>> deferred_, deferredRunning_;

  std::mutex postMu_;
  std::vector<std::function<void()>> posted_;
};

}  // namespace imp::net
