#pragma once
// Asynchronous DNS for event-loop code (ARCHITECTURE.md, Concurrency; RT-8):
// lookups never run on the caller's thread, so a resolver that stalls for
// 20 s delays only the requests waiting for that one answer.
//
//  Resolver           the interface (tests use a fake with scripted answers
//                     and delays)
//  SystemResolver     getaddrinfo / getnameinfo, and libresolv (res_nsend)
//                     for SRV and NAPTR, on a net::WorkerPool
//  DnsClientResolver  net::DnsClient, asking configured servers (dns_client.h)
//  CachingResolver    positive and negative caching with TTLs, coalescing of
//                     concurrent lookups for the same key, and a "slow lookup"
//                     report (RT-8: "incoming ACL check took over 2 seconds")
//
// The wire format and the record types are net's (imp/net/dns_wire.h): core
// adapts them to the Resolver interface the services use (issue 15,
// deliverable 1).
//
// Callbacks run on a resolver thread (a worker, the DNS client's loop) or
// synchronously from the calling thread (a cache hit, an answer that needs
// no lookup, a refused job); callers that own an event loop post the result
// back to it. A callback is called exactly once.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <imp/net/dns_client.h>
#include <imp/net/dns_wire.h>

namespace imp::net {
class WorkerPool;
}

namespace imp::core {

using net::DnsStatus;
using net::NaptrRecord;
using net::SrvRecord;

// SRV or NAPTR records (RFC 2782, RFC 3403) of one name, as the server sent
// them (order is the caller's business: RFC 2782 priority/weight, RFC 3403
// order/preference). status Ok with no records: the name has none of that
// type. ttl: see net::DnsAnswer (records: their TTL; negative answers: the
// SOA's negative TTL when the server sent one; Failed: nullopt).
template <class R>
struct RecordAnswer {
  DnsStatus status = DnsStatus::Failed;
  std::vector<R> records;
  std::optional<std::uint32_t> ttl;
  bool operator==(const RecordAnswer&) const = default;
};
using SrvAnswer = RecordAnswer<SrvRecord>;
using NaptrAnswer = RecordAnswer<NaptrRecord>;

using ReverseCallback = std::function<void(std::optional<std::string> name)>;     // nullopt: no PTR
using ForwardCallback = std::function<void(std::vector<std::string> addresses)>;  // empty: no answer
using SrvCallback = std::function<void(SrvAnswer)>;
using NaptrCallback = std::function<void(NaptrAnswer)>;

class Resolver {
 public:
  virtual ~Resolver() = default;
  // PTR lookup of an IP literal.
  virtual void reverse(const std::string& ip, ReverseCallback cb) = 0;
  // A/AAAA lookup of a host name; an IP literal resolves to itself.
  virtual void forward(const std::string& host, ForwardCallback cb) = 0;
  // SRV records of `name` ("_sip._tls.example.com"), RFC 2782.
  virtual void srv(const std::string& name, SrvCallback cb) = 0;
  // NAPTR records of `name` ("example.com"), RFC 3403.
  virtual void naptr(const std::string& name, NaptrCallback cb) = 0;
};

// The system's resolver, one blocking call per job on a worker pool: the
// pool it is given (shared with other blocking work), or its own ("imp-dns",
// `threads` workers, 16384 queued lookups). A lookup the pool refuses (queue
// full, pool stopping) completes at once on the caller's thread with no
// answer (srv/naptr: Failed). The destructor of an own pool waits for the
// lookups queued and running; with a borrowed pool, the pool must outlive
// the lookups (stop it before destroying the resolver, or keep both alive).
class SystemResolver : public Resolver {
 public:
  explicit SystemResolver(unsigned threads = 4);
  explicit SystemResolver(net::WorkerPool& pool);
  ~SystemResolver() override;
  SystemResolver(const SystemResolver&) = delete;
  SystemResolver& operator=(const SystemResolver&) = delete;
  void reverse(const std::string& ip, ReverseCallback cb) override;
  void forward(const std::string& host, ForwardCallback cb) override;
  void srv(const std::string& name, SrvCallback cb) override;
  void naptr(const std::string& name, NaptrCallback cb) override;

 private:
  std::unique_ptr<net::WorkerPool> own_;
  net::WorkerPool* pool_;
};

// SRV/NAPTR through libresolv (res_nsend: the servers of /etc/resolv.conf,
// or `server` when given — an IPv4 server, for tests —, TCP when the reply
// is truncated), decoded by net::parseDnsReply with the same checks as
// net::DnsClient (id, question): the blocking call SystemResolver runs on its
// workers. Never throws except std::bad_alloc.
SrvAnswer systemSrvLookup(const std::string& name, const std::optional<net::DnsServer>& server = std::nullopt);
NaptrAnswer systemNaptrLookup(const std::string& name, const std::optional<net::DnsServer>& server = std::nullopt);

struct DnsCacheConfig {
  std::chrono::seconds positiveTtl{300};
  std::chrono::seconds negativeTtl{60};
  std::chrono::milliseconds slowThreshold{2000};
  std::size_t maxEntries = 100000;
};

// Forward and reverse answers are kept for positiveTtl (an answer) or
// negativeTtl (none). SRV and NAPTR answers are kept for their own TTL
// (net::DnsAnswer::ttl), bounded by positiveTtl when they hold records and
// by negativeTtl when they do not (Failed, or no TTL given: negativeTtl). A
// hit hands out the records with the TTL left (ttl and each record's ttl at
// most the seconds left).
//
// Create with std::make_shared: lookups in flight keep the resolver alive.
class CachingResolver : public Resolver, public std::enable_shared_from_this<CachingResolver> {
 public:
  using SlowReport = std::function<void(const std::string& key, std::chrono::milliseconds took)>;
  CachingResolver(std::shared_ptr<Resolver> inner, DnsCacheConfig config = {}, SlowReport onSlow = {});
  void reverse(const std::string& ip, ReverseCallback cb) override;
  void forward(const std::string& host, ForwardCallback cb) override;
  void srv(const std::string& name, SrvCallback cb) override;
  void naptr(const std::string& name, NaptrCallback cb) override;
  // Cached PTR answer without a lookup: nullopt = not cached (or expired);
  // an inner nullopt = cached negative answer.
  std::optional<std::optional<std::string>> cachedReverse(const std::string& ip);
  void clear();
  // The resolver it caches for: lookups that must see the DNS as it is now
  // (the troubleshooter's timings, RT-8) go there.
  const std::shared_ptr<Resolver>& inner() const { return inner_; }
  std::uint64_t hits() const;
  std::uint64_t misses() const;

 private:
  // reverse: 0 or 1 name; forward: addresses; srv; naptr.
  using Value = std::variant<std::vector<std::string>, SrvAnswer, NaptrAnswer>;
  struct Entry {
    Value value;
    std::chrono::steady_clock::time_point expires;
  };
  using Waiter = std::function<void(const Value&)>;
  void lookup(const std::string& key, Waiter cb);
  void startLookup(const std::string& key);
  void complete(const std::string& key, Value value, std::chrono::steady_clock::time_point started);
  std::chrono::steady_clock::duration ttlFor(const Value& v) const;

  std::shared_ptr<Resolver> inner_;
  DnsCacheConfig config_;
  SlowReport onSlow_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> cache_;
  std::map<std::string, std::vector<Waiter>> pending_;
  std::uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace imp::core
