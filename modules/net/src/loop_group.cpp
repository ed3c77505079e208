#include "imp/net/loop_group.h"

#include <pthread.h>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <stdexcept>
#include <system_error>

namespace imp::net {

namespace {

constexpr std::size_t kMaxThreadName = 15;

}  // namespace

LoopGroup::LoopGroup(LoopGroupConfig config) : config_(std::move(config)) {
  if (config_.loops == 0) throw std::invalid_argument("loop group '" + config_.name + "': loops must be at least 1");
  auto longest = config_.name + "-" + std::to_string(config_.loops - 1);
  if (config_.name.empty() || longest.size() > kMaxThreadName)
    throw std::invalid_argument("loop group '" + config_.name + "': thread name '" + longest +
                                "' is empty or longer than 15 bytes");
  loops_.reserve(config_.loops);
  for (unsigned i = 0; i < config_.loops; ++i) loops_.push_back(std::make_unique<EventLoop>());
}

LoopGroup::~LoopGroup() { stop(); }

void LoopGroup::start() {
  if (running_.load()) throw std::logic_error("loop group '" + config_.name + "': already running");
  threads_.reserve(loops_.size());
  std::vector<std::future<void>> started;
  try {
    for (std::size_t i = 0; i < loops_.size(); ++i) {
      auto ready = std::make_shared<std::promise<void>>();
      started.push_back(ready->get_future());
      threads_.emplace_back([this, i, ready] {
        auto name = config_.name + "-" + std::to_string(i);
        pthread_setname_np(pthread_self(), name.c_str());
        EventLoop& loop = *loops_[i];
        // Runs as the first posted function, i.e. once run() owns the loop.
        loop.post([ready] { ready->set_value(); });
        loop.run();
      });
    }
  } catch (const std::system_error&) {
    running_.store(true);
    stop();
    throw;
  }
  for (auto& f : started) f.wait();
  running_.store(true);
}

void LoopGroup::stop() {
  if (threads_.empty()) return;
  auto me = std::this_thread::get_id();
  for (const auto& t : threads_)
    if (t.get_id() == me) {
      std::fprintf(stderr, "loop group '%s': stop() called from its own loop thread\n", config_.name.c_str());
      std::abort();
    }
  for (auto& l : loops_) l->stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  running_.store(false);
}

EventLoop& LoopGroup::next() { return *loops_[next_.fetch_add(1, std::memory_order_relaxed) % loops_.size()]; }

EventLoop& LoopGroup::at(std::size_t i) {
  if (i >= loops_.size())
    throw std::out_of_range("loop group '" + config_.name + "': no loop " + std::to_string(i) + " (size " +
                            std::to_string(loops_.size()) + ")");
  return *loops_[i];
}

}  // namespace imp::net
