#include "imp/core/dns.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace imp::core {

namespace {

bool isIpLiteral(const std::string& s) {
  in6_addr a6{};
  in_addr a4{};
  return inet_pton(AF_INET, s.c_str(), &a4) == 1 || inet_pton(AF_INET6, s.c_str(), &a6) == 1;
}

std::optional<std::string> ptr(const std::string& ip) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    len = sizeof(sockaddr_in6);
  } else {
    return std::nullopt;
  }
  char host[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host, nullptr, 0, NI_NAMEREQD) != 0)
    return std::nullopt;
  std::string name = host;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!name.empty() && name.back() == '.') name.pop_back();
  return name;
}

std::vector<std::string> addresses(const std::string& host) {
  if (isIpLiteral(host)) return {host};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::vector<std::string> out;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return out;
  for (auto* p = res; p; p = p->ai_next) {
    char buf[INET6_ADDRSTRLEN];
    const void* addr = p->ai_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(p->ai_addr)->sin_addr)
                                               : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(p->ai_addr)->sin6_addr);
    if (inet_ntop(p->ai_family, addr, buf, sizeof buf) && std::find(out.begin(), out.end(), buf) == out.end())
      out.emplace_back(buf);
  }
  freeaddrinfo(res);
  return out;
}

}  // namespace

SystemResolver::SystemResolver(unsigned threads) {
  for (unsigned i = 0; i < std::max(1u, threads); ++i)
    workers_.emplace_back([this] {
      for (;;) {
        std::function<void()> job;
        {
          std::unique_lock lock(mu_);
          cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
          if (stopping_ && jobs_.empty()) return;
          job = std::move(jobs_.front());
          jobs_.pop_front();
        }
        job();
      }
    });
}

SystemResolver::~SystemResolver() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void SystemResolver::post(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void SystemResolver::reverse(const std::string& ip, ReverseCallback cb) {
  post([ip, cb = std::move(cb)] { cb(ptr(ip)); });
}

void SystemResolver::forward(const std::string& host, ForwardCallback cb) {
  post([host, cb = std::move(cb)] { cb(addresses(host)); });
}

CachingResolver::CachingResolver(std::shared_ptr<Resolver> inner, DnsCacheConfig config, SlowReport onSlow)
    : inner_(std::move(inner)), config_(config), onSlow_(std::move(onSlow)) {}

void CachingResolver::lookup(const std::string& key, bool isReverse,
                             std::function<void(const std::vector<std::string>&)> cb) {
  std::vector<std::string> hit;
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.expires > std::chrono::steady_clock::now()) {
      ++hits_;
      hit = it->second.values;
    } else {
      ++misses_;
      auto& waiters = pending_[key];
      waiters.push_back(std::move(cb));
      if (waiters.size() > 1) return;  // a lookup for this key is already out
      cb = nullptr;
    }
  }
  if (cb) {
    cb(hit);
    return;
  }
  auto started = std::chrono::steady_clock::now();
  auto target = key.substr(2);
  auto self = shared_from_this();
  if (isReverse)
    inner_->reverse(target, [self, key, started](std::optional<std::string> name) {
      self->complete(key, name ? std::vector<std::string>{*name} : std::vector<std::string>{}, started);
    });
  else
    inner_->forward(target,
                    [self, key, started](std::vector<std::string> addrs) { self->complete(key, std::move(addrs), started); });
}

void CachingResolver::complete(const std::string& key, std::vector<std::string> values,
                               std::chrono::steady_clock::time_point started) {
  auto now = std::chrono::steady_clock::now();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(now - started);
  Waiters waiters;
  {
    std::lock_guard lock(mu_);
    if (cache_.size() >= config_.maxEntries) {
      // Drop expired entries; if still full, start over (bounded memory).
      std::erase_if(cache_, [&](const auto& e) { return e.second.expires <= now; });
      if (cache_.size() >= config_.maxEntries) cache_.clear();
    }
    auto ttl = values.empty() ? config_.negativeTtl : config_.positiveTtl;
    cache_[key] = Entry{values, now + ttl};
    waiters = std::move(pending_[key]);
    pending_.erase(key);
  }
  if (onSlow_ && took >= config_.slowThreshold) onSlow_(key.substr(2), took);
  for (auto& w : waiters) w(values);
}

void CachingResolver::reverse(const std::string& ip, ReverseCallback cb) {
  lookup("r:" + ip, true, [cb = std::move(cb)](const std::vector<std::string>& v) {
    cb(v.empty() ? std::nullopt : std::optional<std::string>(v.front()));
  });
}

void CachingResolver::forward(const std::string& host, ForwardCallback cb) {
  lookup("f:" + host, false, [cb = std::move(cb)](const std::vector<std::string>& v) { cb(v); });
}

std::optional<std::optional<std::string>> CachingResolver::cachedReverse(const std::string& ip) {
  std::lock_guard lock(mu_);
  auto it = cache_.find("r:" + ip);
  if (it == cache_.end() || it->second.expires <= std::chrono::steady_clock::now()) return std::nullopt;
  if (it->second.values.empty()) return std::optional<std::string>{};
  return std::optional<std::string>{it->second.values.front()};
}

void CachingResolver::clear() {
  std::lock_guard lock(mu_);
  cache_.clear();
}

std::uint64_t CachingResolver::hits() const {
  std::lock_guard lock(mu_);
  return hits_;
}

std::uint64_t CachingResolver::misses() const {
  std::lock_guard lock(mu_);
  return misses_;
}

}  // namespace imp::core
