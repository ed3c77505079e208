#pragma once
// A bounded pool of named worker threads for blocking work — the system
// resolver, database calls, file I/O — that must never run on an event loop
// (ARCHITECTURE.md, Concurrency; issue 15, deliverable 1).
//
// Threads: the constructor starts `threads` threads named "<name>-0",
// "<name>-1", ... (pthread_setname_np; ps, top -H and gdb show them).
// submit() and stats() may be called from any thread, a worker included.
//
// Bound: at most `queueLimit` jobs wait at once. submit() never blocks: when
// the queue is full, or the pool is stopping, it refuses the job — returns
// false, counts it in `rejected`, and the job (and what it captured) is
// destroyed before submit() returns. The caller decides what a refusal means
// (the system resolver answers "no answer" at once).
//
// Post-back: submit(job, loop, done) runs job() on a worker and then posts
// done(result) to `loop` (EventLoop::post), so done runs on the loop thread.
// Post-backs reach a loop in the order their jobs finished; with one worker
// that is submission order. The loop must outlive the job (a loop destroyed
// first destroys the posted done without running it). Jobs, done and the
// result travel in std::function, so they must be copyable.
//
// Errors: a job must handle its own errors, as loop callbacks do; an
// exception leaving a job is a bug and terminates the process.
//
// Stop contract: stop(StopMode::Drain) refuses new jobs, lets the workers run
// every job already queued (their post-backs are posted as usual), then joins
// the threads. stop(StopMode::Drop) refuses new jobs, destroys the queued
// ones without running them (counted in `dropped`; their done is never
// called) and joins once the running jobs return. Either waits for running
// jobs: a job that blocks forever blocks stop(). stop() is idempotent (a
// later call only waits for the first); calling it from one of the pool's
// own workers would wait for itself and aborts with a message. The
// destructor calls stop(StopMode::Drain).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "imp/net/event_loop.h"

namespace imp::net {

struct WorkerPoolConfig {
  // Thread name prefix; "<name>-<index>" must fit the kernel's 15 bytes.
  std::string name = "imp-work";
  unsigned threads = 2;
  std::size_t queueLimit = 1024;  // jobs waiting (not counting running ones)
};

struct WorkerPoolStats {
  std::size_t queued = 0;      // waiting now
  std::size_t running = 0;     // running now
  std::uint64_t completed = 0;  // jobs that returned
  std::uint64_t rejected = 0;   // refused by submit() (full or stopping)
  std::uint64_t dropped = 0;    // queued jobs destroyed by stop(Drop)
};

enum class StopMode : std::uint8_t { Drain, Drop };

class WorkerPool {
 public:
  // Throws std::invalid_argument for zero threads, a zero queue limit or a
  // name too long for "<name>-<index>" (15 bytes); std::system_error when a
  // thread cannot be started (the ones started are stopped first).
  explicit WorkerPool(WorkerPoolConfig config);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues job for a worker; false = refused (see above).
  bool submit(std::function<void()> job);

  // Runs job() on a worker, then done(result) — done() for a void job — on
  // `loop`'s thread. false = refused: neither runs.
  template <class Job, class Done>
  bool submit(Job job, EventLoop& loop, Done done) {
    using R = std::invoke_result_t<Job&>;
    return submit(std::function<void()>([job = std::move(job), &loop, done = std::move(done)]() mutable {
      if constexpr (std::is_void_v<R>) {
        job();
        loop.post([done = std::move(done)]() mutable { done(); });
      } else {
        loop.post([done = std::move(done), r = job()]() mutable { done(std::move(r)); });
      }
    }));
  }

  void stop(StopMode mode = StopMode::Drain);

  WorkerPoolStats stats() const;
  unsigned size() const { return static_cast<unsigned>(threads_.size()); }
  const std::string& name() const { return config_.name; }
  // True on one of this pool's workers.
  bool inWorker() const;

 private:
  void work(unsigned index);

  WorkerPoolConfig config_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::size_t running_ = 0;
  std::uint64_t completed_ = 0, rejected_ = 0, dropped_ = 0;
  std::mutex stopMu_;  // serialises stop() callers
  std::vector<std::thread> threads_;
};

}  // namespace imp::net
