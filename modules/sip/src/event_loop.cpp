#include "imp/sip/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace imp::sip {

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

TimerId EventLoop::schedule(Clock::duration after, std::function<void()> fn) {
  TimerId id = ++nextTimer_;
  if (after < Clock::duration::zero()) after = Clock::duration::zero();
  heap_.emplace(Clock::now() + after, id);
  timerFns_.emplace(id, std::move(fn));
  return id;
}

void EventLoop::cancel(TimerId id) {
  // The heap entry stays until it surfaces; it is skipped then.
  timerFns_.erase(id);
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(postMu_);
    posted_.push_back(std::move(fn));
  }
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
  auto wait = maxWait;
  {
    std::lock_guard lock(postMu_);
    if (!posted_.empty()) wait = Clock::duration::zero();
  }
  // Skip cancelled timers at the top so they do not shorten the wait.
  while (!heap_.empty() && !timerFns_.contains(heap_.top().second)) heap_.pop();
  if (!heap_.empty()) wait = std::min(wait, heap_.top().first - Clock::now());
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
  auto now = Clock::now();
  TimerId last = nextTimer_;  // timers scheduled by these callbacks wait a turn
  while (!heap_.empty() && heap_.top().first <= now) {
    TimerId id = heap_.top().second;
    if (id > last) break;
    heap_.pop();
    auto it = timerFns_.find(id);
    if (it == timerFns_.end()) continue;
    auto fn = std::move(it->second);
    timerFns_.erase(it);
    fn();
  }
}

}  // namespace imp::sip
