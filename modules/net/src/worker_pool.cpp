#include "imp/net/worker_pool.h"

#include <pthread.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <system_error>

namespace imp::net {

namespace {

constexpr std::size_t kMaxThreadName = 15;  // plus NUL: the kernel's TASK_COMM_LEN

}  // namespace

WorkerPool::WorkerPool(WorkerPoolConfig config) : config_(std::move(config)) {
  if (config_.threads == 0) throw std::invalid_argument("worker pool '" + config_.name + "': threads must be at least 1");
  if (config_.queueLimit == 0)
    throw std::invalid_argument("worker pool '" + config_.name + "': queue limit must be at least 1");
  auto longest = config_.name + "-" + std::to_string(config_.threads - 1);
  if (config_.name.empty() || longest.size() > kMaxThreadName)
    throw std::invalid_argument("worker pool '" + config_.name + "': thread name '" + longest +
                                "' is empty or longer than 15 bytes");
  threads_.reserve(config_.threads);
  try {
    for (unsigned i = 0; i < config_.threads; ++i) threads_.emplace_back([this, i] { work(i); });
  } catch (const std::system_error&) {
    stop(StopMode::Drop);
    throw;
  }
}

WorkerPool::~WorkerPool() { stop(StopMode::Drain); }

bool WorkerPool::inWorker() const {
  auto me = std::this_thread::get_id();
  for (const auto& t : threads_)
    if (t.get_id() == me) return true;
  return false;
}

bool WorkerPool::submit(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || jobs_.size() >= config_.queueLimit) {
      ++rejected_;
      return false;
    }
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void WorkerPool::work(unsigned index) {
  auto name = config_.name + "-" + std::to_string(index);
  pthread_setname_np(pthread_self(), name.c_str());
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and nothing left to drain
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    job();
    job = nullptr;  // what it captured goes before the job counts as done
    lock.lock();
    --running_;
    ++completed_;
  }
}

void WorkerPool::stop(StopMode mode) {
  if (inWorker()) {
    std::fprintf(stderr, "worker pool '%s': stop() called from its own worker thread\n", config_.name.c_str());
    std::abort();
  }
  std::lock_guard stopLock(stopMu_);
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (mode == StopMode::Drop) {
      dropped.swap(jobs_);
      dropped_ += dropped.size();
    }
  }
  cv_.notify_all();
  dropped.clear();  // outside the lock: their captures may be anything
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

WorkerPoolStats WorkerPool::stats() const {
  std::lock_guard lock(mu_);
  return WorkerPoolStats{jobs_.size(), running_, completed_, rejected_, dropped_};
}

}  // namespace imp::net
