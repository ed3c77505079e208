// core::DnsClientResolver, the Resolver adapter over net::DnsClient, against
// a fake DNS server on loopback (the codec's own tests are net's).
#include <doctest/doctest.h>
#include <imp/core/dns_client.h>
#include <imp/net/loop_group.h>

#include <fakes/fake_dns.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

using namespace imp::core;
using namespace imp::testing;
using imp::net::kDnsTypeA;
using imp::net::kDnsTypeAaaa;
using imp::net::kDnsTypeNaptr;
using imp::net::kDnsTypePtr;
using imp::net::kDnsTypeSrv;
using namespace std::chrono_literals;

namespace {

constexpr auto kWait = kDnsWait;

// Collects one callback's result and counts the calls (exactly once).
template <class T>
struct Result {
  std::shared_ptr<std::promise<T>> promise = std::make_shared<std::promise<T>>();
  std::shared_future<T> future = promise->get_future().share();
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  auto callback() {
    return [p = promise, c = calls](T v) {
      if (c->fetch_add(1) == 0) p->set_value(std::move(v));
    };
  }
  T get() {
    REQUIRE(future.wait_for(kWait) == std::future_status::ready);
    return future.get();
  }
  bool done() const { return future.wait_for(0s) == std::future_status::ready; }
};
using ReverseResult = Result<std::optional<std::string>>;
using ForwardResult = Result<std::vector<std::string>>;

DnsClientConfig configFor(std::vector<DnsServer> servers, std::chrono::milliseconds timeout = 5000ms, unsigned attempts = 1) {
  return DnsClientConfig{std::move(servers), timeout, attempts};
}

}  // namespace

TEST_CASE("DnsClientResolver: PTR answer") {
  FakeDns dns;
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Answer, {"Lync.Example.com."}});
  DnsClientResolver r(configFor({dns.server()}));
  ReverseResult res;
  r.reverse("192.0.2.1", res.callback());
  CHECK(res.get() == "lync.example.com");
  CHECK(*res.calls == 1);
  CHECK(r.stats().sent == 1);
  CHECK(r.stats().ignored == 0);
}

TEST_CASE("DnsClientResolver: A answer, AAAA when there is no A, IP literals answer themselves") {
  FakeDns dns;
  dns.set("sip.example.com", kDnsTypeA, {FakeDns::Mode::Answer, {"192.0.2.10", "192.0.2.11"}});
  dns.set("v6only.example.com", kDnsTypeA, {FakeDns::Mode::Answer, {}});
  dns.set("v6only.example.com", kDnsTypeAaaa, {FakeDns::Mode::Answer, {"2001:db8::10"}});
  DnsClientResolver r(configFor({dns.server()}));

  ForwardResult a, six, literal, invalid;
  r.forward("SIP.example.com.", a.callback());
  r.forward("v6only.example.com", six.callback());
  r.forward("192.0.2.99", literal.callback());
  CHECK(literal.done());  // synchronously
  CHECK(literal.get() == std::vector<std::string>{"192.0.2.99"});
  r.forward("bad..name", invalid.callback());
  CHECK(invalid.done());
  CHECK(invalid.get().empty());
  CHECK(a.get() == std::vector<std::string>{"192.0.2.10", "192.0.2.11"});
  CHECK(six.get() == std::vector<std::string>{"2001:db8::10"});
  CHECK(dns.queries("sip.example.com") == 1);     // A only
  CHECK(dns.queries("v6only.example.com") == 2);  // A, then AAAA
}

TEST_CASE("DnsClientResolver: NXDOMAIN completes negative at once, without retries") {
  FakeDns first(FakeDns::Mode::NxDomain), second(FakeDns::Mode::Silent);
  DnsClientResolver r(configFor({first.server(), second.server()}, 5000ms, 3));
  ReverseResult res;
  ForwardResult fwd;
  r.reverse("192.0.2.1", res.callback());
  r.forward("nowhere.example", fwd.callback());
  CHECK_FALSE(res.get());
  CHECK(fwd.get().empty());
  CHECK(first.queries("1.2.0.192.in-addr.arpa") == 1);
  CHECK(first.queries("nowhere.example") == 1);  // no AAAA after NXDOMAIN
  CHECK(second.totalQueries() == 0);
}

TEST_CASE("DnsClientResolver: a silent server gives no answer after attempts x timeout") {
  FakeDns dns(FakeDns::Mode::Silent);
  DnsClientResolver r(configFor({dns.server()}, 100ms, 2));
  auto started = std::chrono::steady_clock::now();
  ReverseResult res;
  r.reverse("192.0.2.1", res.callback());
  CHECK_FALSE(res.get());
  CHECK(std::chrono::steady_clock::now() - started >= 200ms);
  CHECK(*res.calls == 1);
  CHECK(dns.queriesAtLeast("1.2.0.192.in-addr.arpa", 2) == 2);
  CHECK(r.stats().sent == 2);
  CHECK(r.stats().timeouts == 2);
}

TEST_CASE("DnsClientResolver: the next server is used when one is silent, fails or truncates") {
  FakeDns silent(FakeDns::Mode::Silent), servfail(FakeDns::Mode::ServFail), truncating(FakeDns::Mode::Truncated), good;
  good.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Answer, {"a.example"}});

  SUBCASE("silent") {
    DnsClientResolver r(configFor({silent.server(), good.server()}, 100ms, 2));
    ReverseResult res;
    r.reverse("192.0.2.1", res.callback());
    CHECK(res.get() == "a.example");
    CHECK(silent.queriesAtLeast("1.2.0.192.in-addr.arpa", 1) == 1);
    CHECK(r.stats().timeouts == 1);
  }
  SUBCASE("SERVFAIL and TC (over UDP, then over TCP) move on without waiting for the timeout") {
    // A timeout this long would fail the test's wait if it were waited for.
    DnsClientResolver r(configFor({servfail.server(), truncating.server(), good.server()}, 60000ms, 1));
    ReverseResult res;
    r.reverse("192.0.2.1", res.callback());
    CHECK(res.get() == "a.example");
    CHECK(servfail.totalQueries() == 1);
    CHECK(truncating.queries("1.2.0.192.in-addr.arpa") == 1);     // TC over UDP,
    CHECK(truncating.tcpQueries("1.2.0.192.in-addr.arpa") == 1);  // then TC over TCP too
    CHECK(r.stats().timeouts == 0);
  }
}

TEST_CASE("DnsClientResolver: a stalled lookup does not delay a later one (RT-8)") {
  FakeDns dns;
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Hold, {"slow.example"}});
  dns.set("2.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Answer, {"fast.example"}});
  DnsClientResolver r(configFor({dns.server()}, 60000ms, 1));
  std::mutex mu;
  std::vector<std::string> order;
  ReverseResult slow, fast;
  r.reverse("192.0.2.1", [&, cb = slow.callback()](std::optional<std::string> n) {
    {
      std::lock_guard l(mu);
      order.push_back("slow");
    }
    cb(std::move(n));
  });
  REQUIRE(dns.waitForQuery("1.2.0.192.in-addr.arpa"));  // the slow one is out and stalled
  r.reverse("192.0.2.2", [&, cb = fast.callback()](std::optional<std::string> n) {
    {
      std::lock_guard l(mu);
      order.push_back("fast");
    }
    cb(std::move(n));
  });
  CHECK(fast.get() == "fast.example");
  CHECK_FALSE(slow.done());
  dns.release("1.2.0.192.in-addr.arpa");
  CHECK(slow.get() == "slow.example");
  std::lock_guard l(mu);
  CHECK(order == std::vector<std::string>{"fast", "slow"});
}

TEST_CASE("DnsClientResolver: garbage, wrong id, wrong question and wrong source are ignored") {
  FakeDns dns;
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Garbage, {"real.example"}});
  dns.set("www.example.com", kDnsTypeA, {FakeDns::Mode::Garbage, {"192.0.2.80"}});
  DnsClientResolver r(configFor({dns.server()}));
  ReverseResult res;
  r.reverse("192.0.2.1", res.callback());
  CHECK(res.get() == "real.example");
  CHECK(r.stats().ignored == 6);
  ForwardResult fwd;
  r.forward("www.example.com", fwd.callback());
  CHECK(fwd.get() == std::vector<std::string>{"192.0.2.80"});
  CHECK(r.stats().ignored == 12);
  CHECK(r.stats().sent == 2);
}

TEST_CASE("DnsClientResolver: the question is compared case-insensitively") {
  FakeDns dns;
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::UpperCase, {"x.example"}});
  DnsClientResolver r(configFor({dns.server()}));
  ReverseResult res;
  r.reverse("192.0.2.1", res.callback());
  CHECK(res.get() == "x.example");
}

TEST_CASE("DnsClientResolver: many concurrent lookups") {
  FakeDns dns;
  constexpr int kCount = 300;
  for (int i = 0; i < kCount; ++i)
    dns.set(reverseName("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256)), kDnsTypePtr,
            {FakeDns::Mode::Answer, {"h" + std::to_string(i) + ".example"}});
  // Short timeout, several tries: a datagram dropped by a full socket buffer is retried.
  DnsClientResolver r(configFor({dns.server()}, 300ms, 5));
  std::vector<ReverseResult> results(kCount);
  for (int i = 0; i < kCount; ++i)
    r.reverse("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), results[static_cast<std::size_t>(i)].callback());
  for (int i = 0; i < kCount; ++i) {
    auto& res = results[static_cast<std::size_t>(i)];
    CHECK(res.get() == "h" + std::to_string(i) + ".example");
    CHECK(*res.calls == 1);
  }
  CHECK(r.stats().sent >= kCount);
}

TEST_CASE("DnsClientResolver: destruction completes outstanding lookups with no answer, once") {
  FakeDns dns(FakeDns::Mode::Silent);
  ReverseResult rev;
  ForwardResult fwd;
  {
    DnsClientResolver r(configFor({dns.server()}, 60000ms, 1));
    r.reverse("192.0.2.1", rev.callback());
    r.forward("www.example.com", fwd.callback());
    REQUIRE(dns.waitForQuery("www.example.com"));
  }
  CHECK(rev.done());
  CHECK(fwd.done());
  CHECK_FALSE(rev.get());
  CHECK(fwd.get().empty());
  CHECK(*rev.calls == 1);
  CHECK(*fwd.calls == 1);
}

TEST_CASE("DnsClientResolver: the last reference may be dropped inside a callback") {
  FakeDns dns;
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Hold, {}});
  dns.set("2.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Hold, {"b.example"}});
  auto r = std::make_shared<DnsClientResolver>(configFor({dns.server()}, 60000ms, 1));
  ReverseResult pending, last;
  r->reverse("192.0.2.1", pending.callback());
  REQUIRE(dns.waitForQuery("1.2.0.192.in-addr.arpa"));
  r->reverse("192.0.2.2", [keep = r, cb = last.callback()](std::optional<std::string> n) { cb(std::move(n)); });
  REQUIRE(dns.waitForQuery("2.2.0.192.in-addr.arpa"));
  r.reset();  // now only the callback holds the resolver
  dns.release("2.2.0.192.in-addr.arpa");
  CHECK(last.get() == "b.example");
  CHECK_FALSE(pending.get());  // failed by the thread winding down after the resolver went away
  CHECK(*pending.calls == 1);
}

TEST_CASE("DnsClientResolver: a throwing callback does not stop the resolver") {
  FakeDns dns;
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Answer, {"a.example"}});
  DnsClientResolver r(configFor({dns.server()}));
  r.reverse("192.0.2.1", [](std::optional<std::string>) { throw std::runtime_error("caller bug"); });
  ReverseResult res;
  r.reverse("192.0.2.1", res.callback());
  CHECK(res.get() == "a.example");
}

TEST_CASE("DnsClientResolver: bad configuration is refused") {
  auto message = [](DnsClientConfig c) -> std::string {
    try {
      DnsClientResolver r(std::move(c));
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  CHECK(message({}) == "dns client: no servers configured");
  CHECK(message({{{"dns.example", 53}}}) == "dns server 'dns.example': not an IP address");
  CHECK(message({{{"::1", 0}}}) == "dns server '[::1]:0': port out of range 1..65535");
  CHECK(message({{{"127.0.0.1", 53}}, 0ms}) == "dns client: timeout must be positive");
  CHECK(message({{{"127.0.0.1", 53}}, 100ms, 0}) == "dns client: attempts must be at least 1");
  // reverse() of something that is not an address answers at once
  DnsClientResolver r(configFor({{"127.0.0.1", 9}}));
  ReverseResult res;
  r.reverse("not-an-ip", res.callback());
  CHECK(res.done());
  CHECK_FALSE(res.get());
}

TEST_CASE("DnsClientResolver: SRV and NAPTR records with their TTLs and status") {
  FakeDns dns;
  dns.set("_sip._tls.example.com", kDnsTypeSrv, {FakeDns::Mode::Answer, {"10 60 5061 sip1.example.com", "20 0 5061 sip2.example.com"}, 600});
  dns.set("example.com", kDnsTypeNaptr, {FakeDns::Mode::Answer, {"10 50 s SIPS+D2T - _sips._tls.example.com"}, 900});
  dns.set("_sip._udp.example.com", kDnsTypeSrv, {FakeDns::Mode::NxDomain, {}, 60, 300, 45});
  DnsClientResolver r(configFor({dns.server()}));
  Result<SrvAnswer> srv, none;
  Result<NaptrAnswer> naptr;
  r.srv("_sip._tls.example.com", srv.callback());
  r.naptr("Example.COM.", naptr.callback());
  r.srv("_sip._udp.example.com", none.callback());
  auto s = srv.get();
  CHECK(s.status == DnsStatus::Ok);
  CHECK(s.records == std::vector<SrvRecord>{{10, 60, 5061, "sip1.example.com", 600}, {20, 0, 5061, "sip2.example.com", 600}});
  CHECK(s.ttl == 600u);
  auto n = naptr.get();
  CHECK(n.status == DnsStatus::Ok);
  CHECK(n.records == std::vector<NaptrRecord>{{10, 50, "s", "sips+d2t", "", "_sips._tls.example.com", 900}});
  auto x = none.get();
  CHECK(x.status == DnsStatus::NxDomain);
  CHECK(x.records.empty());
  CHECK(x.ttl == 45u);
}

TEST_CASE("DnsClientResolver: a truncated SRV answer comes over TCP") {
  FakeDns dns;
  std::vector<std::string> many;
  for (int i = 0; i < 25; ++i) many.push_back("10 10 5061 edge" + std::to_string(i) + ".example.com");
  dns.set("_sips._tcp.example.com", kDnsTypeSrv, {FakeDns::Mode::TcOverUdp, many});
  DnsClientResolver r(configFor({dns.server()}, 60000ms, 1));
  Result<SrvAnswer> res;
  r.srv("_sips._tcp.example.com", res.callback());
  CHECK(res.get().records.size() == 25);
  CHECK(r.stats().tcp == 1);
}

TEST_CASE("DnsClientResolver: callbacks run on the resolver's own loop thread") {
  FakeDns dns;
  dns.set("_sip._tcp.example.com", kDnsTypeSrv, {FakeDns::Mode::Answer, {"1 1 5060 a.example.com"}});
  DnsClientResolver r(configFor({dns.server()}));
  Result<std::string> where;
  r.srv("_sip._tcp.example.com", [cb = where.callback()](SrvAnswer) {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    cb(name);
  });
  CHECK(where.get() == "imp-dns-loop");
}

TEST_CASE("DnsClientResolver on a node loop: answers there, and destruction fails what is outstanding, once") {
  imp::net::LoopGroup group(imp::net::LoopGroupConfig{"test-dns", 1});
  group.start();
  FakeDns dns;
  dns.set("_sip._tcp.example.com", kDnsTypeSrv, {FakeDns::Mode::Answer, {"1 1 5060 a.example.com"}});
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Hold, {}});
  ReverseResult held;
  {
    DnsClientResolver r(group.at(0), configFor({dns.server()}, 60000ms, 1));
    Result<std::string> where;
    r.srv("_sip._tcp.example.com", [cb = where.callback()](SrvAnswer a) {
      char name[16] = {};
      pthread_getname_np(pthread_self(), name, sizeof name);
      cb(std::string(name) + " " + (a.records.empty() ? "-" : a.records.front().target));
    });
    CHECK(where.get() == "test-dns-0 a.example.com");
    r.reverse("192.0.2.1", held.callback());
    REQUIRE(dns.waitForQuery("1.2.0.192.in-addr.arpa"));
  }
  CHECK(held.done());  // the destructor waited for the shutdown on the loop
  CHECK_FALSE(held.get());
  CHECK(*held.calls == 1);
  CHECK(group.running());  // the node's loop goes on
}

TEST_CASE("DnsClientResolver on a node loop: a bad configuration is refused to the caller") {
  imp::net::LoopGroup group(imp::net::LoopGroupConfig{"test-dns", 1});
  group.start();
  CHECK_THROWS_AS(DnsClientResolver(group.at(0), configFor({})), std::invalid_argument);
}
