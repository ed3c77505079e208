#pragma once
// N event loops, each run by its own named thread (issue 15, deliverable 1):
// the runtime a node's network services share. A service takes a loop with
// next() (round-robin) for each listener or connection it owns, or at(i)
// when it shards by index; loops share nothing (see event_loop.h).
//
// Thread contract:
//  - The loops exist from construction to destruction; references from
//    next()/at() stay valid for the group's lifetime, across stop().
//  - Before start(), the constructing thread may set loops up (watch(),
//    schedule(); EventLoop allows it while no thread runs a loop).
//  - start() starts thread i ("<name>-<i>", pthread_setname_np) running
//    loop i until stop(); it returns once every thread runs its loop, so
//    at(i).inLoopThread() is true exactly on thread i from then on.
//  - After start(), other threads reach a loop only through post() (and
//    stop()); what a loop owns is touched only on its thread.
//  - stop() stops every loop, joins the threads and returns; posted
//    functions not run yet stay queued (they run if the group is started
//    again, else they are destroyed with the loops). stop() is idempotent;
//    calling it from one of the group's loop threads would wait for itself
//    and aborts with a message. The destructor calls stop().
//  - next(), at(), size() may be called from any thread at any time.
//
// Errors: the constructor throws std::invalid_argument for zero loops or a
// name too long for "<name>-<index>" (15 bytes) and std::system_error when a
// loop cannot be created; start() throws std::logic_error when the group is
// already running and std::system_error when a thread cannot be started
// (loops already started are stopped again first).
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "imp/net/event_loop.h"

namespace imp::net {

struct LoopGroupConfig {
  std::string name = "imp-loop";  // thread name prefix
  unsigned loops = 1;
};

class LoopGroup {
 public:
  explicit LoopGroup(LoopGroupConfig config);
  ~LoopGroup();
  LoopGroup(const LoopGroup&) = delete;
  LoopGroup& operator=(const LoopGroup&) = delete;

  void start();
  void stop();
  bool running() const { return running_.load(); }

  // Round-robin over the loops; any thread.
  EventLoop& next();
  // Loop i; throws std::out_of_range for i >= size().
  EventLoop& at(std::size_t i);
  std::size_t size() const { return loops_.size(); }
  const std::string& name() const { return config_.name; }

 private:
  LoopGroupConfig config_;
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> running_{false};
};

}  // namespace imp::net
