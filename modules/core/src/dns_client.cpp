#include "imp/core/dns_client.h"

#include <future>

#include <pthread.h>

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <type_traits>

namespace imp::core {

// Threads: callers touch only `mu`-guarded `stopping` and the loop's post();
// the client, its sockets and timers belong to the loop thread, so no lookup
// ever waits for a lock held across I/O. Posted functions hold a raw Impl*:
// they run only on the loop thread, which holds the Impl alive while it runs.
struct DnsClientResolver::Impl {
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<net::EventLoop> own;  // null when the loop is given
  net::EventLoop* loop = nullptr;
  std::unique_ptr<net::DnsClient> client;  // loop thread; moved out under `mu` at shutdown

  mutable std::mutex mu;
  bool stopping = false;
  net::DnsClientStats finalStats;

  // Runs a caller's callback on the loop thread; what it throws stays here.
  template <class F>
  void guarded(F&& f) const {
    try {
      f();
    } catch (const std::exception& e) {
      if (log) log->error("dns client: a lookup callback threw: {}", e.what());
    } catch (...) {
      if (log) log->error("dns client: a lookup callback threw a non-standard exception");
    }
  }

  // Hands `job` to the loop thread, or runs `failNow` on this thread when
  // the resolver is shutting down.
  template <class Job, class Fail>
  void post(Job job, Fail failNow) {
    {
      std::lock_guard lock(mu);
      if (!stopping) {
        // The shutdown is posted last, so the client is still there; the
        // check only keeps the exactly-once promise if that ever changed.
        loop->post([this, job = std::move(job), failNow]() mutable {
          if (client)
            job(client.get());
          else
            failNow();
        });
        return;
      }
    }
    failNow();
  }

  // On the loop thread: fails what is outstanding, then ends the loop if it
  // is our own (a given loop goes on serving its other users).
  void shutdown() {
    std::unique_ptr<net::DnsClient> dying;
    {
      std::lock_guard lock(mu);
      if (client) finalStats = client->stats();
      dying = std::move(client);
    }
    dying.reset();  // completes every outstanding query with Failed
    if (own) loop->stop();
  }

  net::DnsClient::Report reporter() const {
    return [logger = log](bool warning, const std::string& m) {
      if (!logger) return;
      if (warning)
        logger->warn("{}", m);
      else
        logger->info("{}", m);
    };
  }

  net::DnsClientStats stats() const {
    std::lock_guard lock(mu);
    return client ? client->stats() : finalStats;
  }
};

DnsClientResolver::DnsClientResolver(DnsClientConfig config, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_shared<Impl>()) {
  auto& im = *impl_;
  im.log = std::move(log);
  im.own = std::make_unique<net::EventLoop>();
  im.loop = im.own.get();
  // Built here, before the loop thread exists, so configuration errors reach
  // the caller; from now on only the loop thread touches it.
  im.client = std::make_unique<net::DnsClient>(*im.loop, std::move(config), im.reporter());
  thread_ = std::thread([impl = impl_] {
    pthread_setname_np(pthread_self(), "imp-dns-loop");
    try {
      impl->loop->run();
    } catch (const std::exception& e) {
      // Only the loop itself failing (epoll) or memory running out get
      // here; callers would wait forever for their callbacks, so stop loudly.
      if (impl->log) impl->log->critical("dns client: resolver thread failed: {}", e.what());
      std::fprintf(stderr, "dns client: resolver thread failed: %s\n", e.what());
      std::abort();
    }
  });
}

DnsClientResolver::DnsClientResolver(net::EventLoop& loop, DnsClientConfig config, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_shared<Impl>()) {
  auto& im = *impl_;
  im.log = std::move(log);
  im.loop = &loop;
  // The client's sockets belong to the loop thread: built there when another
  // thread runs the loop (configuration errors still reach the caller).
  if (!loop.runningElsewhere()) {
    im.client = std::make_unique<net::DnsClient>(loop, std::move(config), im.reporter());
    return;
  }
  std::promise<void> built;
  auto done = built.get_future();
  loop.post([&] {
    try {
      im.client = std::make_unique<net::DnsClient>(loop, std::move(config), im.reporter());
      built.set_value();
    } catch (...) {
      built.set_exception(std::current_exception());
    }
  });
  done.get();
}

DnsClientResolver::~DnsClientResolver() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  if (!impl_->own) {
    // A given loop: the shutdown runs on it (last in its queue, so every
    // lookup posted before runs first); wait for it unless it is this
    // thread's loop (dropped inside one of our callbacks, or a loop nobody
    // runs now), where it runs once the current callback returns.
    auto& loop = *impl_->loop;
    if (!loop.runningElsewhere()) {
      loop.post([impl = impl_] { impl->shutdown(); });
      return;
    }
    std::promise<void> finished;
    auto done = finished.get_future();
    loop.post([impl = impl_, &finished] {
      impl->shutdown();
      finished.set_value();
    });
    done.wait();
    return;
  }
  {
    std::lock_guard lock(impl_->mu);
    // Last in the loop's queue: every lookup posted before runs first.
    impl_->loop->post([impl = impl_.get()] { impl->shutdown(); });
  }
  if (!thread_.joinable()) return;
  // Dropped from inside one of our own callbacks: the thread cannot join
  // itself; it fails what is left and ends on its own, holding `impl_`.
  if (thread_.get_id() == std::this_thread::get_id())
    thread_.detach();
  else
    thread_.join();
}

void DnsClientResolver::reverse(const std::string& ip, ReverseCallback cb) {
  auto name = reverseName(ip);
  if (name.empty()) {
    cb(std::nullopt);
    return;
  }
  auto shared = std::make_shared<ReverseCallback>(std::move(cb));
  impl_->post(
      [impl = impl_.get(), name = std::move(name), shared](net::DnsClient* c) {
        c->query(name, net::kDnsTypePtr, [impl, shared](net::DnsAnswer a) {
          impl->guarded([&] {
            (*shared)(a.status == DnsStatus::Ok && !a.values.empty() ? std::optional<std::string>(a.values.front())
                                                                     : std::nullopt);
          });
        });
      },
      [shared] { (*shared)(std::nullopt); });
}

void DnsClientResolver::forward(const std::string& host, ForwardCallback cb) {
  if (net::ipLiteralFamily(host) != 0) {
    cb({host});
    return;
  }
  auto name = net::normalDnsName(host);
  if (name.empty() || name.back() == '.' || net::buildDnsQuery(0, name, net::kDnsTypeA).empty()) {
    cb({});
    return;
  }
  auto shared = std::make_shared<ForwardCallback>(std::move(cb));
  impl_->post(
      [impl = impl_.get(), name = std::move(name), shared](net::DnsClient* c) {
        c->query(name, net::kDnsTypeA, [impl, c, name, shared](net::DnsAnswer a) {
          if (a.status == DnsStatus::Ok && a.values.empty()) {
            // The name exists without IPv4 addresses: it may have IPv6 ones.
            c->query(name, net::kDnsTypeAaaa, [impl, shared](net::DnsAnswer six) {
              impl->guarded([&] { (*shared)(six.status == DnsStatus::Ok ? std::move(six.values) : std::vector<std::string>{}); });
            });
            return;
          }
          impl->guarded([&] { (*shared)(a.status == DnsStatus::Ok ? std::move(a.values) : std::vector<std::string>{}); });
        });
      },
      [shared] { (*shared)({}); });
}

namespace {

template <class R>
RecordAnswer<R> recordsOf(net::DnsAnswer& a) {
  RecordAnswer<R> out;
  out.status = a.status;
  out.ttl = a.ttl;
  if constexpr (std::is_same_v<R, SrvRecord>)
    out.records = std::move(a.srv);
  else
    out.records = std::move(a.naptr);
  return out;
}

}  // namespace

void DnsClientResolver::srv(const std::string& name, SrvCallback cb) {
  auto shared = std::make_shared<SrvCallback>(std::move(cb));
  impl_->post(
      [impl = impl_.get(), name, shared](net::DnsClient* c) {
        c->query(name, net::kDnsTypeSrv, [impl, shared](net::DnsAnswer a) {
          impl->guarded([&] { (*shared)(recordsOf<SrvRecord>(a)); });
        });
      },
      [shared] { (*shared)(SrvAnswer{}); });
}

void DnsClientResolver::naptr(const std::string& name, NaptrCallback cb) {
  auto shared = std::make_shared<NaptrCallback>(std::move(cb));
  impl_->post(
      [impl = impl_.get(), name, shared](net::DnsClient* c) {
        c->query(name, net::kDnsTypeNaptr, [impl, shared](net::DnsAnswer a) {
          impl->guarded([&] { (*shared)(recordsOf<NaptrRecord>(a)); });
        });
      },
      [shared] { (*shared)(NaptrAnswer{}); });
}

DnsClientStats DnsClientResolver::stats() const { return impl_->stats(); }

}  // namespace imp::core
