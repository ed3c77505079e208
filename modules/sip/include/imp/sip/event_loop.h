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
// own TransportLayer (SO_REUSEPORT listeners, connections sharded by loop);
// loops share nothing.
//
// Timers: implements TimerQueue (timers.h) with a heap; cancel() is O(1) and
// a no-op for fired/cancelled ids; a timer scheduled from a callback with a
// zero delay fires on the next iteration, never in the same pass.
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
#include <queue>
#include <thread>
#include <unordered_map>
#include <vector>

#include "imp/sip/timers.h"

namespace imp::sip {

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

  // TimerQueue.
  Clock::time_point now() const override { return Clock::now(); }
  TimerId schedule(Clock::duration after, std::function<void()> fn) override;
  void cancel(TimerId id) override;

  // Any thread.
  void post(std::function<void()> fn);
  void stop();
  // True on the thread currently running the loop.
  bool inLoopThread() const { return owner_.load() == std::this_thread::get_id(); }

  // Runs until stop() (a stop() before run() makes run() return at once).
  void run();
  // Runs until done() is true or `timeout` has passed (at least one
  // non-blocking iteration even for a zero timeout); returns done().
  // For tests and tools that drive the loop from their own thread.
  bool runUntil(const std::function<bool()>& done, Clock::duration timeout);

  std::size_t watchedCount() const { return watches_.size(); }
  std::size_t timerCount() const { return timerFns_.size(); }

 private:
  struct Watch {
    std::uint64_t token;
    IoCallback cb;
  };
  void iterate(Clock::duration maxWait);
  void runPosted();
  void runTimers();

  int epfd_ = -1;
  int wakefd_ = -1;
  std::atomic<std::thread::id> owner_{};
  std::atomic<bool> stopRequested_{false};

  std::unordered_map<int, Watch> watches_;
  std::unordered_map<std::uint64_t, int> tokens_;  // live token -> fd
  std::uint64_t nextToken_ = 1;                    // 0 is the wake-up eventfd

  using HeapEntry = std::pair<Clock::time_point, TimerId>;
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, std::greater<>> heap_;
  std::unordered_map<TimerId, std::function<void()>> timerFns_;
  TimerId nextTimer_ = 0;

  std::mutex postMu_;
  std::vector<std::function<void()>> posted_;
};

}  // namespace imp::sip
