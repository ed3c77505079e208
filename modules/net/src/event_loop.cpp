#include "imp/net/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace imp::net {

namespace {

constexpr int kMaxEvents = 128;
// Upper bound of one epoll_wait so a missed wake-up can never stall forever.
constexpr auto kMaxWait = std::chrono::seconds(1);

[[noreturn]] void throwErrno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// Restores the previous loop owner when a run()/runUntil() returns.
class OwnerScope {
 public:
  explicit OwnerScope(std::atomic<std::thread::id>& owner) : owner_(owner), prev_(owner.load()) {
    owner_.store(std::this_thread::get_id());
  }
  ~OwnerScope() { owner_.store(prev_); }
  OwnerScope(const OwnerScope&) = delete;
  OwnerScope& operator=(const OwnerScope&) = delete;

 private:
  std::atomic<std::thread::id>& owner_;
  std::thread::id prev_;
};

}  // namespace

EventLoop::EventLoop() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throwErrno("epoll_create1");
  wakefd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd_ < 0) {
    int e = errno;
    ::close(epfd_);
    errno = e;
    throwErrno("eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) < 0) {
    int e = errno;
    ::close(wakefd_);
    ::close(epfd_);
    errno = e;
    throwErrno("epoll_ctl(eventfd)");
  }
}

EventLoop::~EventLoop() {
  ::close(wakefd_);
  ::close(epfd_);
}

void EventLoop::watch(int fd, std::uint32_t events, IoCallback cb) {
  std::uint64_t token = nextToken_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) throwErrno("epoll_ctl(ADD)");
  watches_[fd] = Watch{token, std::move(cb)};
  tokens_[token] = fd;
}

void EventLoop::modify(int fd, std::uint32_t events) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = it->second.token;
  if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) < 0) throwErrno("epoll_ctl(MOD)");
}

void EventLoop::unwatch(int fd) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return;
  // EPOLL_CTL_DEL fails only for fds already closed, which the caller must
  // not do; nothing useful to report then.
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  tokens_.erase(it->second.token);
  watches_.erase(it);
}

bool EventLoop::timerBefore(std::uint32_t a, std::uint32_t b) const {
  const auto& x = timerNodes_[a];
  const auto& y = timerNodes_[b];
  return x.when < y.when || (x.when == y.when && x.seq < y.seq);
}

void EventLoop::heapUp(std::size_t i) {
  std::uint32_t slot = timerHeap_[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (!timerBefore(slot, timerHeap_[parent])) break;
    timerHeap_[i] = timerHeap_[parent];
    timerNodes_[timerHeap_[i]].heapPos = static_cast<std::uint32_t>(i);
    i = parent;
  }
  timerHeap_[i] = slot;
  timerNodes_[slot].heapPos = static_cast<std::uint32_t>(i);
}

void EventLoop::heapDown(std::size_t i) {
  std::uint32_t slot = timerHeap_[i];
  const std::size_t n = timerHeap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && timerBefore(timerHeap_[child + 1], timerHeap_[child])) ++child;
    if (!timerBefore(timerHeap_[child], slot)) break;
    timerHeap_[i] = timerHeap_[child];
    timerNodes_[timerHeap_[i]].heapPos = static_cast<std::uint32_t>(i);
    i = child;
  }
  timerHeap_[i] = slot;
  timerNodes_[slot].heapPos = static_cast<std::uint32_t>(i);
}

void EventLoop::heapRemove(std::size_t i) {
  std::uint32_t last = timerHeap_.back();
  timerHeap_.pop_back();
  if (i == timerHeap_.size()) return;
  timerHeap_[i] = last;
  timerNodes_[last].heapPos = static_cast<std::uint32_t>(i);
  if (i > 0 && timerBefore(last, timerHeap_[(i - 1) / 2]))
    heapUp(i);
  else
    heapDown(i);
}

void EventLoop::freeTimer(std::uint32_t slot) {
  auto& node = timerNodes_[slot];
  if (++node.gen == 0) node.gen = 1;
  freeSlots_.push_back(slot);
}

TimerId EventLoop::schedule(Clock::duration after, std::function<void()> fn) {
  if (after < Clock::duration::zero()) after = Clock::duration::zero();
  std::uint32_t slot;
  if (!freeSlots_.empty()) {
    slot = freeSlots_.back();
    freeSlots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(timerNodes_.size());
    timerNodes_.emplace_back();
  }
  auto& node = timerNodes_[slot];
  node.when = Clock::now() + after;
  node.seq = ++timerSeq_;
  node.fn = std::move(fn);
  timerHeap_.push_back(slot);
  heapUp(timerHeap_.size() - 1);
  return (static_cast<TimerId>(node.gen) << 32) | slot;
}

void EventLoop::cancel(TimerId id) {
  auto slot = static_cast<std::uint32_t>(id & 0xFFFFFFFFu);
  auto gen = static_cast<std::uint32_t>(id >> 32);
  if (gen == 0 || slot >= timerNodes_.size() || timerNodes_[slot].gen != gen) return;  // fired, cancelled or never issued
  heapRemove(timerNodes_[slot].heapPos);
  // Destroyed now (what it captured is released at once), after the slot is
  // free: a destructor that schedules or cancels sees a consistent queue.
  auto fn = std::move(timerNodes_[slot].fn);
  timerNodes_[slot].fn = nullptr;
  freeTimer(slot);
}

void EventLoop::atIterationEnd(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }

void EventLoop::runDeferred() {
  // Bounded, so functions that keep queueing more cannot hold the loop:
  // what is left runs at the start of the next iteration, which then does
  // not wait.
  for (int round = 0; round < 16 && !deferred_.empty(); ++round) {
    deferredRunning_.swap(deferred_);
    for (auto& fn : deferredRunning_) fn();
    deferredRunning_.clear();
  }
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(postMu_);
    posted_.push_back(std::move(fn));
  }
  // From the loop's own thread no wake-up is needed: iterate() runs what is
  // posted before it waits again (one write(2) less per routed stanza).
  if (inLoopThread()) return;
  std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  [[maybe_unused]] auto n = ::write(wakefd_, &one, sizeof one);
}

void EventLoop::stop() {
  stopRequested_.store(true);
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wakefd_, &one, sizeof one);
}

void EventLoop::run() {
  OwnerScope scope(owner_);
  while (!stopRequested_.load()) iterate(kMaxWait);
  stopRequested_.store(false);
}

bool EventLoop::runUntil(const std::function<bool()>& done, Clock::duration timeout) {
  OwnerScope scope(owner_);
  auto deadline = Clock::now() + timeout;
  // At least one iteration, so a zero timeout still runs what is ready.
  for (;;) {
    if (done()) return true;
    auto left = std::max(deadline - Clock::now(), Clock::duration::zero());
    iterate(std::min<Clock::duration>(left, kMaxWait));
    if (Clock::now() >= deadline) return done();
  }
}

void EventLoop::iterate(Clock::duration maxWait) {
  // Queued outside an iteration (set-up code, a test): run now, and do not
  // sleep after it, as the caller may be waiting for what it did.
  bool hadDeferred = !deferred_.empty();
  runDeferred();
  auto wait = maxWait;
  if (hadDeferred) wait = Clock::duration::zero();
  {
    std::lock_guard lock(postMu_);
    if (!posted_.empty()) wait = Clock::duration::zero();
  }
  if (!timerHeap_.empty()) wait = std::min(wait, timerNodes_[timerHeap_.front()].when - Clock::now());
  if (wait < Clock::duration::zero()) wait = Clock::duration::zero();
  // Round up so a timer 0.3 ms away does not turn into a busy spin.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();

  epoll_event events[kMaxEvents];
  int n = ::epoll_wait(epfd_, events, kMaxEvents, static_cast<int>(ms));
  if (n < 0 && errno != EINTR) {
    // Only EBADF/EFAULT/EINVAL are possible: the loop itself is broken.
    throwErrno("epoll_wait");
  }
  for (int i = 0; i < n; ++i) {
    std::uint64_t token = events[i].data.u64;
    if (token == 0) {
      std::uint64_t count;
      [[maybe_unused]] auto r = ::read(wakefd_, &count, sizeof count);
      continue;
    }
    auto t = tokens_.find(token);
    if (t == tokens_.end()) continue;  // unwatched by an earlier callback
    auto w = watches_.find(t->second);
    if (w == watches_.end()) continue;
    // Copy: the callback may unwatch (and so destroy) its own entry.
    IoCallback cb = w->second.cb;
    cb(events[i].events);
  }
  runPosted();
  runTimers();
  runDeferred();
}

void EventLoop::runPosted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(postMu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) fn();
}

void EventLoop::runTimers() {
  if (timerHeap_.empty()) return;
  auto now = Clock::now();
  std::uint64_t last = timerSeq_;  // timers scheduled by these callbacks wait a turn
  while (!timerHeap_.empty()) {
    std::uint32_t slot = timerHeap_.front();
    auto& node = timerNodes_[slot];
    if (node.when > now || node.seq > last) break;
    heapRemove(0);
    auto fn = std::move(node.fn);
    node.fn = nullptr;
    freeTimer(slot);
    fn();
  }
}

}  // namespace imp::net
