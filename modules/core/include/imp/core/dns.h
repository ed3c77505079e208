#pragma once
// Asynchronous DNS for event-loop code (ARCHITECTURE.md, Concurrency; RT-8):
// lookups run on worker threads and never on the caller's thread, so a
// resolver that stalls for 20 s delays only the requests waiting for that
// one answer.
//
//  Resolver          the interface (tests use a fake with scripted answers
//                    and delays)
//  SystemResolver    getaddrinfo / getnameinfo on a small worker pool
//  CachingResolver   positive and negative caching with TTLs, coalescing of
//                    concurrent lookups for the same key, and a "slow lookup"
//                    report (RT-8: "incoming ACL check took over 2 seconds")
//
// Callbacks run on a resolver worker thread (or synchronously from the
// calling thread on a cache hit); callers that own an event loop post the
// result back to it. A callback is called exactly once.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace imp::core {

using ReverseCallback = std::function<void(std::optional<std::string> name)>;        // nullopt: no PTR
using ForwardCallback = std::function<void(std::vector<std::string> addresses)>;     // empty: no answer

class Resolver {
 public:
  virtual ~Resolver() = default;
  // PTR lookup of an IP literal.
  virtual void reverse(const std::string& ip, ReverseCallback cb) = 0;
  // A/AAAA lookup of a host name; an IP literal resolves to itself.
  virtual void forward(const std::string& host, ForwardCallback cb) = 0;
};

class SystemResolver : public Resolver {
 public:
  explicit SystemResolver(unsigned threads = 4);
  ~SystemResolver() override;
  void reverse(const std::string& ip, ReverseCallback cb) override;
  void forward(const std::string& host, ForwardCallback cb) override;

 private:
  void post(std::function<void()> job);
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

struct DnsCacheConfig {
  std::chrono::seconds positiveTtl{300};
  std::chrono::seconds negativeTtl{60};
  std::chrono::milliseconds slowThreshold{2000};
  std::size_t maxEntries = 100000;
};

// Create with std::make_shared: lookups in flight keep the resolver alive.
class CachingResolver : public Resolver, public std::enable_shared_from_this<CachingResolver> {
 public:
  using SlowReport = std::function<void(const std::string& key, std::chrono::milliseconds took)>;
  CachingResolver(std::shared_ptr<Resolver> inner, DnsCacheConfig config = {}, SlowReport onSlow = {});
  void reverse(const std::string& ip, ReverseCallback cb) override;
  void forward(const std::string& host, ForwardCallback cb) override;
  // Cached PTR answer without a lookup: nullopt = not cached (or expired);
  // an inner nullopt = cached negative answer.
  std::optional<std::optional<std::string>> cachedReverse(const std::string& ip);
  void clear();
  std::uint64_t hits() const;
  std::uint64_t misses() const;

 private:
  struct Entry {
    std::vector<std::string> values;  // reverse: 0 or 1 name; forward: addresses
    std::chrono::steady_clock::time_point expires;
  };
  using Waiters = std::vector<std::function<void(const std::vector<std::string>&)>>;
  void lookup(const std::string& key, bool isReverse, std::function<void(const std::vector<std::string>&)> cb);
  void complete(const std::string& key, std::vector<std::string> values, std::chrono::steady_clock::time_point started);

  std::shared_ptr<Resolver> inner_;
  DnsCacheConfig config_;
  SlowReport onSlow_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> cache_;
  std::map<std::string, Waiters> pending_;
  std::uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace imp::core
