#include <doctest/doctest.h>
#include <imp/core/dns.h>
#include <imp/net/worker_pool.h>

#include <fakes/fake_dns.h>

#include <pthread.h>

#include <atomic>
#include <future>
#include <thread>

using namespace imp::core;
using namespace imp::testing;

namespace {

// Answers only when the test says so: a stalled DNS server on demand.
class ScriptedResolver : public Resolver {
 public:
  void reverse(const std::string& ip, ReverseCallback cb) override {
    std::lock_guard l(mu);
    ++calls;
    reverses.emplace_back(ip, std::move(cb));
  }
  void forward(const std::string& host, ForwardCallback cb) override {
    std::lock_guard l(mu);
    ++calls;
    forwards.emplace_back(host, std::move(cb));
  }
  void srv(const std::string& name, SrvCallback cb) override {
    std::lock_guard l(mu);
    ++calls;
    srvs.emplace_back(name, std::move(cb));
  }
  void naptr(const std::string& name, NaptrCallback cb) override {
    std::lock_guard l(mu);
    ++calls;
    naptrs.emplace_back(name, std::move(cb));
  }
  template <class Cb, class A>
  static void answerFrom(std::mutex& m, std::vector<std::pair<std::string, Cb>>& q, const std::string& key, A a) {
    Cb cb;
    {
      std::lock_guard l(m);
      for (auto it = q.begin(); it != q.end(); ++it)
        if (it->first == key) {
          cb = std::move(it->second);
          q.erase(it);
          break;
        }
    }
    REQUIRE(cb);
    cb(std::move(a));
  }
  void answerSrv(const std::string& name, SrvAnswer a) { answerFrom(mu, srvs, name, std::move(a)); }
  void answerNaptr(const std::string& name, NaptrAnswer a) { answerFrom(mu, naptrs, name, std::move(a)); }
  void answerReverse(const std::string& ip, std::optional<std::string> name) {
    ReverseCallback cb;
    {
      std::lock_guard l(mu);
      for (auto it = reverses.begin(); it != reverses.end(); ++it)
        if (it->first == ip) {
          cb = std::move(it->second);
          reverses.erase(it);
          break;
        }
    }
    REQUIRE(cb);
    cb(std::move(name));
  }
  std::mutex mu;
  int calls = 0;
  std::vector<std::pair<std::string, ReverseCallback>> reverses;
  std::vector<std::pair<std::string, ForwardCallback>> forwards;
  std::vector<std::pair<std::string, SrvCallback>> srvs;
  std::vector<std::pair<std::string, NaptrCallback>> naptrs;
};

std::string threadName() {
  char buf[16] = {};
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  return buf;
}

}  // namespace

TEST_CASE("a stalled lookup does not delay others; concurrent lookups coalesce") {
  auto inner = std::make_shared<ScriptedResolver>();
  auto cache = std::make_shared<CachingResolver>(inner);
  std::optional<std::string> a1, a2, b;
  int aCalls = 0, bCalls = 0;
  cache->reverse("192.0.2.1", [&](std::optional<std::string> n) { a1 = n, ++aCalls; });  // stalls
  cache->reverse("192.0.2.1", [&](std::optional<std::string> n) { a2 = n, ++aCalls; });
  cache->reverse("192.0.2.2", [&](std::optional<std::string> n) { b = n, ++bCalls; });
  CHECK(inner->calls == 2);  // one lookup per address
  inner->answerReverse("192.0.2.2", "lync.example.com");
  CHECK(bCalls == 1);
  CHECK(b == "lync.example.com");
  CHECK(aCalls == 0);  // still waiting for the stalled server
  inner->answerReverse("192.0.2.1", std::nullopt);
  CHECK(aCalls == 2);
  CHECK_FALSE(a1);
  CHECK_FALSE(a2);
}

TEST_CASE("positive and negative answers are cached") {
  auto inner = std::make_shared<ScriptedResolver>();
  auto cache = std::make_shared<CachingResolver>(inner);
  cache->reverse("192.0.2.1", [](auto) {});
  inner->answerReverse("192.0.2.1", "a.example.com");
  cache->reverse("192.0.2.9", [](auto) {});
  inner->answerReverse("192.0.2.9", std::nullopt);
  std::optional<std::string> again;
  cache->reverse("192.0.2.1", [&](auto n) { again = n; });
  CHECK(again == "a.example.com");
  CHECK(inner->calls == 2);
  CHECK(cache->cachedReverse("192.0.2.1") == std::optional<std::optional<std::string>>(std::optional<std::string>("a.example.com")));
  auto neg = cache->cachedReverse("192.0.2.9");
  REQUIRE(neg.has_value());
  CHECK_FALSE(neg->has_value());
  CHECK_FALSE(cache->cachedReverse("192.0.2.7").has_value());
  CHECK(cache->hits() == 1);
  cache->clear();
  CHECK_FALSE(cache->cachedReverse("192.0.2.1").has_value());
}

TEST_CASE("expired entries are looked up again; slow lookups are reported") {
  auto inner = std::make_shared<ScriptedResolver>();
  std::vector<std::string> slow;
  DnsCacheConfig cfg;
  cfg.positiveTtl = std::chrono::seconds(0);
  cfg.slowThreshold = std::chrono::milliseconds(0);  // every lookup counts as slow
  auto cache = std::make_shared<CachingResolver>(inner, cfg, [&](const std::string& k, auto) { slow.push_back(k); });
  cache->reverse("192.0.2.1", [](auto) {});
  inner->answerReverse("192.0.2.1", "a.example.com");
  std::optional<std::string> second;
  cache->reverse("192.0.2.1", [&](auto n) { second = n; });
  CHECK(inner->calls == 2);
  CHECK(slow == std::vector<std::string>{"192.0.2.1"});
  inner->answerReverse("192.0.2.1", "b.example.com");  // a lookup in flight holds the cache: finish it
  CHECK(second == "b.example.com");
}

TEST_CASE("the system resolver answers IP literals and runs off the caller's thread") {
  SystemResolver r(1);
  std::promise<std::vector<std::string>> p;
  r.forward("192.0.2.44", [&](std::vector<std::string> a) { p.set_value(a); });
  auto f = p.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(f.get() == std::vector<std::string>{"192.0.2.44"});
  std::promise<std::optional<std::string>> bad;
  r.reverse("not-an-ip", [&](std::optional<std::string> n) { bad.set_value(n); });
  auto fb = bad.get_future();
  REQUIRE(fb.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK_FALSE(fb.get());
}

TEST_CASE("SRV and NAPTR answers are cached by their TTL within the configured bounds, and coalesce") {
  auto inner = std::make_shared<ScriptedResolver>();
  DnsCacheConfig cfg;
  cfg.positiveTtl = std::chrono::seconds(300);
  cfg.negativeTtl = std::chrono::seconds(60);
  auto cache = std::make_shared<CachingResolver>(inner, cfg);
  std::vector<SrvAnswer> got;
  cache->srv("_sip._tls.example.com", [&](SrvAnswer a) { got.push_back(a); });
  cache->srv("_SIP._tls.example.com.", [&](SrvAnswer a) { got.push_back(a); });  // same name: coalesced
  CHECK(inner->calls == 1);
  SrvAnswer answer{DnsStatus::Ok, {{10, 60, 5061, "sip1.example.com", 120}}, 120u};
  inner->answerSrv("_sip._tls.example.com", answer);
  REQUIRE(got.size() == 2);
  CHECK(got[0] == answer);
  CHECK(got[1] == answer);

  // A hit hands out the TTL left (at most 120 s), without a lookup.
  cache->srv("_sip._tls.example.com", [&](SrvAnswer a) { got.push_back(a); });
  CHECK(inner->calls == 1);
  REQUIRE(got.size() == 3);
  REQUIRE(got[2].records.size() == 1);
  CHECK(got[2].ttl <= 120u);
  CHECK(got[2].records[0].ttl <= 120u);
  CHECK(got[2].records[0].target == "sip1.example.com");

  // A TTL of 0 is not kept; a TTL above positiveTtl is cut to it.
  cache->naptr("zero.example.com", [](NaptrAnswer) {});
  inner->answerNaptr("zero.example.com", NaptrAnswer{DnsStatus::Ok, {{10, 50, "s", "sip+d2t", "", "_sip._tcp.zero.example.com", 0}}, 0u});
  cache->naptr("zero.example.com", [](NaptrAnswer) {});
  CHECK(inner->calls == 3);
  inner->answerNaptr("zero.example.com", NaptrAnswer{});
}

TEST_CASE("negative SRV/NAPTR answers: SOA TTL bounded by negativeTtl; failures kept for negativeTtl") {
  auto inner = std::make_shared<ScriptedResolver>();
  DnsCacheConfig cfg;
  cfg.positiveTtl = std::chrono::seconds(300);
  cfg.negativeTtl = std::chrono::seconds(0);  // negative answers are never kept
  auto cache = std::make_shared<CachingResolver>(inner, cfg);
  cache->srv("_sip._udp.example.com", [](SrvAnswer) {});
  inner->answerSrv("_sip._udp.example.com", SrvAnswer{DnsStatus::NxDomain, {}, 3600u});
  std::optional<SrvAnswer> again;
  cache->srv("_sip._udp.example.com", [&](SrvAnswer a) { again = a; });
  CHECK(inner->calls == 2);  // the SOA said an hour, the configuration says 0
  inner->answerSrv("_sip._udp.example.com", SrvAnswer{});
  REQUIRE(again);
  CHECK(again->status == DnsStatus::Failed);

  cfg.negativeTtl = std::chrono::seconds(60);
  auto cache2 = std::make_shared<CachingResolver>(inner, cfg);
  cache2->naptr("example.com", [](NaptrAnswer) {});
  inner->answerNaptr("example.com", NaptrAnswer{DnsStatus::Failed, {}, std::nullopt});
  std::optional<NaptrAnswer> cached;
  cache2->naptr("example.com", [&](NaptrAnswer a) { cached = a; });
  CHECK(inner->calls == 3);  // the failure is kept for negativeTtl
  REQUIRE(cached);
  CHECK(cached->status == DnsStatus::Failed);
  CHECK(cache2->hits() == 1);
}

TEST_CASE("the system resolver runs on a worker pool it is given; a refused lookup answers at once") {
  imp::net::WorkerPool pool({"imp-test", 1, 1});
  SystemResolver r(pool);
  std::promise<std::string> where;
  r.forward("192.0.2.44", [&](std::vector<std::string> a) {
    CHECK(a == std::vector<std::string>{"192.0.2.44"});
    where.set_value(threadName());
  });
  auto f = where.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(f.get() == "imp-test-0");

  // Hold the only worker, fill the one queue slot: the next lookup is refused.
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> busy;
  REQUIRE(pool.submit([&busy, released] {
    busy.set_value();
    released.wait();
  }));
  busy.get_future().wait();
  REQUIRE(pool.submit([] {}));
  std::optional<SrvAnswer> refused;
  std::thread::id answeredOn;
  r.srv("_sip._tcp.example.com", [&](SrvAnswer a) {
    refused = a;
    answeredOn = std::this_thread::get_id();
  });
  REQUIRE(refused);
  CHECK(refused->status == DnsStatus::Failed);
  CHECK(answeredOn == std::this_thread::get_id());
  CHECK(pool.stats().rejected == 1);
  release.set_value();
  pool.stop();
}

TEST_CASE("systemSrvLookup / systemNaptrLookup: libresolv and the shared decoder") {
  FakeDns dns;
  dns.set("_sip._tcp.example.com", imp::net::kDnsTypeSrv, {FakeDns::Mode::Answer, {"10 60 5060 sip1.example.com"}, 600});
  dns.set("example.com", imp::net::kDnsTypeNaptr, {FakeDns::Mode::Answer, {"10 50 s SIP+D2T - _sip._tcp.example.com"}, 900});
  dns.set("_sip._udp.example.com", imp::net::kDnsTypeSrv, {FakeDns::Mode::NxDomain, {}, 60, 300, 30});
  std::vector<std::string> big;
  for (int i = 0; i < 30; ++i) big.push_back("10 10 5061 edge" + std::to_string(i) + ".example.com");
  dns.set("_sips._tcp.example.com", imp::net::kDnsTypeSrv, {FakeDns::Mode::TcOverUdp, big, 300});
  auto s = systemSrvLookup("_SIP._tcp.example.com.", dns.server());
  CHECK(s.status == DnsStatus::Ok);
  CHECK(s.records == std::vector<SrvRecord>{{10, 60, 5060, "sip1.example.com", 600}});
  CHECK(s.ttl == 600u);
  auto n = systemNaptrLookup("example.com", dns.server());
  CHECK(n.status == DnsStatus::Ok);
  CHECK(n.records == std::vector<NaptrRecord>{{10, 50, "s", "sip+d2t", "", "_sip._tcp.example.com", 900}});
  auto nx = systemSrvLookup("_sip._udp.example.com", dns.server());
  CHECK(nx.status == DnsStatus::NxDomain);
  CHECK(nx.ttl == 30u);
  auto tc = systemSrvLookup("_sips._tcp.example.com", dns.server());  // libresolv retries over TCP itself
  CHECK(tc.status == DnsStatus::Ok);
  CHECK(tc.records.size() == 30);
  CHECK(systemSrvLookup("bad..name", dns.server()).status == DnsStatus::Failed);
}
