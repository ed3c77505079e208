#include "imp/core/dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include <imp/net/worker_pool.h>

namespace imp::core {

namespace {

// Lookups queued on the resolver's own pool before it refuses more (RT-8: a
// stalled server must not let the queue grow without bound).
constexpr std::size_t kOwnQueueLimit = 16384;

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
  if (net::ipLiteralFamily(host) != 0) return {host};
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

// One query through libresolv's own state (thread-safe: res_n*), decoded by
// net's decoder so both resolvers hand out the same records.
template <class R>
RecordAnswer<R> systemLookup(const std::string& name, std::uint16_t qtype, const std::optional<net::DnsServer>& server) {
  RecordAnswer<R> out;  // Failed
  auto n = net::normalDnsName(name);
  if (n.empty() || n.back() == '.') return out;
  std::uint16_t id = 0;
  if (::getrandom(&id, sizeof id, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof id)) id = 0x5a5a;
  auto query = net::buildDnsQuery(id, n, qtype);
  if (query.empty()) return out;
  struct __res_state st;
  std::memset(&st, 0, sizeof st);
  if (res_ninit(&st) != 0) return out;
  if (server) {
    sockaddr_in a{};
    if (inet_pton(AF_INET, server->address.c_str(), &a.sin_addr) != 1) {
      res_nclose(&st);
      return out;
    }
    a.sin_family = AF_INET;
    a.sin_port = htons(server->port);
    st.nscount = 1;
    st.nsaddr_list[0] = a;
    st.retrans = 1;
    st.retry = 1;
  }
  std::vector<unsigned char> answer(65536);
  int len = res_nsend(&st, reinterpret_cast<const unsigned char*>(query.data()), static_cast<int>(query.size()),
                      answer.data(), static_cast<int>(answer.size()));
  res_nclose(&st);
  if (len <= 0) return out;
  auto reply = net::parseDnsReply(
      std::string_view(reinterpret_cast<const char*>(answer.data()), static_cast<std::size_t>(len)), qtype);
  if (!reply || reply->id != id || reply->question != n || reply->truncated) return out;
  if (reply->rcode == net::kDnsRcodeNoError)
    out.status = DnsStatus::Ok;
  else if (reply->rcode == net::kDnsRcodeNxDomain)
    out.status = DnsStatus::NxDomain;
  else
    return out;
  if constexpr (std::is_same_v<R, SrvRecord>)
    out.records = std::move(reply->srv);
  else
    out.records = std::move(reply->naptr);
  out.ttl = reply->ttl;
  return out;
}

}  // namespace

SrvAnswer systemSrvLookup(const std::string& name, const std::optional<net::DnsServer>& server) {
  return systemLookup<SrvRecord>(name, net::kDnsTypeSrv, server);
}

NaptrAnswer systemNaptrLookup(const std::string& name, const std::optional<net::DnsServer>& server) {
  return systemLookup<NaptrRecord>(name, net::kDnsTypeNaptr, server);
}

SystemResolver::SystemResolver(unsigned threads)
    : own_(std::make_unique<net::WorkerPool>(net::WorkerPoolConfig{"imp-dns", std::max(1u, threads), kOwnQueueLimit})),
      pool_(own_.get()) {}

SystemResolver::SystemResolver(net::WorkerPool& pool) : pool_(&pool) {}

// The own pool drains: every lookup queued gets its answer.
SystemResolver::~SystemResolver() = default;

namespace {

// Submits `lookup` to the pool; a refusal answers `failed` on this thread.
template <class Cb, class Lookup, class Failed>
void runOn(net::WorkerPool& pool, Cb cb, Lookup lookup, Failed failed) {
  auto shared = std::make_shared<Cb>(std::move(cb));
  if (!pool.submit([shared, lookup = std::move(lookup)] { (*shared)(lookup()); })) (*shared)(failed());
}

}  // namespace

void SystemResolver::reverse(const std::string& ip, ReverseCallback cb) {
  runOn(*pool_, std::move(cb), [ip] { return ptr(ip); }, [] { return std::optional<std::string>{}; });
}

void SystemResolver::forward(const std::string& host, ForwardCallback cb) {
  runOn(*pool_, std::move(cb), [host] { return addresses(host); }, [] { return std::vector<std::string>{}; });
}

void SystemResolver::srv(const std::string& name, SrvCallback cb) {
  runOn(*pool_, std::move(cb), [name] { return systemSrvLookup(name); }, [] { return SrvAnswer{}; });
}

void SystemResolver::naptr(const std::string& name, NaptrCallback cb) {
  runOn(*pool_, std::move(cb), [name] { return systemNaptrLookup(name); }, [] { return NaptrAnswer{}; });
}

// ---- CachingResolver ----

CachingResolver::CachingResolver(std::shared_ptr<Resolver> inner, DnsCacheConfig config, SlowReport onSlow)
    : inner_(std::move(inner)), config_(config), onSlow_(std::move(onSlow)) {}

namespace {

template <class R>
void capRemaining(RecordAnswer<R>& a, std::chrono::steady_clock::duration left) {
  auto secs = static_cast<std::uint32_t>(std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(left).count()));
  if (a.ttl) a.ttl = std::min(*a.ttl, secs);
  for (auto& r : a.records) r.ttl = std::min(r.ttl, secs);
}

}  // namespace

void CachingResolver::lookup(const std::string& key, Waiter cb) {
  std::optional<Value> hit;
  {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.expires > now) {
      ++hits_;
      hit = it->second.value;
      auto left = it->second.expires - now;
      std::visit(
          [&](auto& v) {
            if constexpr (!std::is_same_v<std::decay_t<decltype(v)>, std::vector<std::string>>) capRemaining(v, left);
          },
          *hit);
    } else {
      ++misses_;
      auto& waiters = pending_[key];
      waiters.push_back(std::move(cb));
      if (waiters.size() > 1) return;  // a lookup for this key is already out
      cb = nullptr;
    }
  }
  if (hit) {
    cb(*hit);
    return;
  }
  startLookup(key);
}

void CachingResolver::startLookup(const std::string& key) {
  auto started = std::chrono::steady_clock::now();
  auto target = key.substr(2);
  auto self = shared_from_this();
  switch (key[0]) {
    case 'r':
      inner_->reverse(target, [self, key, started](std::optional<std::string> name) {
        self->complete(key, name ? std::vector<std::string>{*name} : std::vector<std::string>{}, started);
      });
      break;
    case 'f':
      inner_->forward(target, [self, key, started](std::vector<std::string> addrs) {
        self->complete(key, std::move(addrs), started);
      });
      break;
    case 's':
      inner_->srv(target, [self, key, started](SrvAnswer a) { self->complete(key, std::move(a), started); });
      break;
    default:
      inner_->naptr(target, [self, key, started](NaptrAnswer a) { self->complete(key, std::move(a), started); });
      break;
  }
}

std::chrono::steady_clock::duration CachingResolver::ttlFor(const Value& v) const {
  return std::visit(
      [&](const auto& x) -> std::chrono::steady_clock::duration {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return x.empty() ? config_.negativeTtl : config_.positiveTtl;
        } else {
          // Their own TTL, within the configured bounds.
          bool positive = x.status == DnsStatus::Ok && !x.records.empty();
          auto bound = positive ? config_.positiveTtl : config_.negativeTtl;
          if (x.status == DnsStatus::Failed || !x.ttl) return bound;
          return std::min<std::chrono::steady_clock::duration>(bound, std::chrono::seconds(*x.ttl));
        }
      },
      v);
}

void CachingResolver::complete(const std::string& key, Value value, std::chrono::steady_clock::time_point started) {
  auto now = std::chrono::steady_clock::now();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(now - started);
  std::vector<Waiter> waiters;
  {
    std::lock_guard lock(mu_);
    if (cache_.size() >= config_.maxEntries) {
      // Drop expired entries; if still full, start over (bounded memory).
      std::erase_if(cache_, [&](const auto& e) { return e.second.expires <= now; });
      if (cache_.size() >= config_.maxEntries) cache_.clear();
    }
    cache_[key] = Entry{value, now + ttlFor(value)};
    waiters = std::move(pending_[key]);
    pending_.erase(key);
  }
  if (onSlow_ && took >= config_.slowThreshold) onSlow_(key.substr(2), took);
  for (auto& w : waiters) w(value);
}

void CachingResolver::reverse(const std::string& ip, ReverseCallback cb) {
  lookup("r:" + ip, [cb = std::move(cb)](const Value& v) {
    const auto& names = std::get<std::vector<std::string>>(v);
    cb(names.empty() ? std::nullopt : std::optional<std::string>(names.front()));
  });
}

void CachingResolver::forward(const std::string& host, ForwardCallback cb) {
  lookup("f:" + host, [cb = std::move(cb)](const Value& v) { cb(std::get<std::vector<std::string>>(v)); });
}

void CachingResolver::srv(const std::string& name, SrvCallback cb) {
  lookup("s:" + net::normalDnsName(name), [cb = std::move(cb)](const Value& v) { cb(std::get<SrvAnswer>(v)); });
}

void CachingResolver::naptr(const std::string& name, NaptrCallback cb) {
  lookup("n:" + net::normalDnsName(name), [cb = std::move(cb)](const Value& v) { cb(std::get<NaptrAnswer>(v)); });
}

std::optional<std::optional<std::string>> CachingResolver::cachedReverse(const std::string& ip) {
  std::lock_guard lock(mu_);
  auto it = cache_.find("r:" + ip);
  if (it == cache_.end() || it->second.expires <= std::chrono::steady_clock::now()) return std::nullopt;
  const auto& names = std::get<std::vector<std::string>>(it->second.value);
  if (names.empty()) return std::optional<std::string>{};
  return std::optional<std::string>{names.front()};
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
