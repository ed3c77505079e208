// net::DnsClient on an event loop driven by the test thread, against a fake
// DNS server on loopback (tests/fakes/fake_dns.h): UDP, TCP after a
// truncated reply, retries and timeouts on loop timers, replies from the
// wrong source or with the wrong id or question ignored (issue 15,
// deliverable 1).
#include <doctest/doctest.h>
#include <imp/net/dns_client.h>

#include <fakes/fake_dns.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace imp::net;
using namespace imp::testing;
using namespace std::chrono_literals;

namespace {

DnsClientConfig configFor(std::vector<DnsServer> servers, std::chrono::milliseconds timeout = 5000ms, unsigned attempts = 1) {
  return DnsClientConfig{std::move(servers), timeout, attempts};
}

// One query's answer, collected on the loop thread (the test thread).
struct Got {
  std::optional<DnsAnswer> answer;
  int calls = 0;
  DnsClient::Callback callback() {
    return [this](DnsAnswer a) {
      ++calls;
      answer = std::move(a);
    };
  }
};

bool wait(EventLoop& loop, const Got& g) {
  return loop.runUntil([&] { return g.calls > 0; }, kDnsWait);
}

}  // namespace

TEST_CASE("DnsClient: A, PTR, SRV and NAPTR answers over UDP, with their TTLs; callbacks never inside query()") {
  FakeDns dns;
  dns.set("sip.example.com", kDnsTypeA, {FakeDns::Mode::Answer, {"192.0.2.10", "192.0.2.11"}, 45});
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Answer, {"Lync.Example.com"}});
  dns.set("_sip._tls.example.com", kDnsTypeSrv, {FakeDns::Mode::Answer, {"10 60 5061 sip1.example.com", "20 0 5061 sip2.example.com"}, 600});
  dns.set("example.com", kDnsTypeNaptr, {FakeDns::Mode::Answer, {"10 50 s SIPS+D2T - _sips._tcp.example.com"}, 900});
  EventLoop loop;
  DnsClient client(loop, configFor({dns.server()}));
  Got a, ptr, srv, naptr;
  client.query("SIP.example.com.", kDnsTypeA, a.callback());
  client.query("1.2.0.192.in-addr.arpa", kDnsTypePtr, ptr.callback());
  client.query("_sip._tls.example.com", kDnsTypeSrv, srv.callback());
  client.query("example.com", kDnsTypeNaptr, naptr.callback());
  CHECK(a.calls == 0);
  REQUIRE(loop.runUntil([&] { return a.calls && ptr.calls && srv.calls && naptr.calls; }, kDnsWait));
  CHECK(a.answer->status == DnsStatus::Ok);
  CHECK(a.answer->values == std::vector<std::string>{"192.0.2.10", "192.0.2.11"});
  CHECK(a.answer->ttl == 45u);
  CHECK(ptr.answer->values == std::vector<std::string>{"lync.example.com"});
  REQUIRE(srv.answer->srv.size() == 2);
  CHECK(srv.answer->srv[0] == SrvRecord{10, 60, 5061, "sip1.example.com", 600});
  CHECK(srv.answer->srv[1] == SrvRecord{20, 0, 5061, "sip2.example.com", 600});
  REQUIRE(naptr.answer->naptr.size() == 1);
  CHECK(naptr.answer->naptr[0] == NaptrRecord{10, 50, "s", "sips+d2t", "", "_sips._tcp.example.com", 900});
  CHECK(client.stats().sent == 4);
  CHECK(client.stats().ignored == 0);
  CHECK(client.stats().tcp == 0);
  CHECK(client.outstanding() == 0);
  CHECK((a.calls == 1 && ptr.calls == 1 && srv.calls == 1 && naptr.calls == 1));
}

TEST_CASE("DnsClient: NXDOMAIN and NODATA complete at once with the SOA's negative TTL") {
  FakeDns first(FakeDns::Mode::NxDomain), second(FakeDns::Mode::Silent);
  first.set("_sip._udp.example.com", kDnsTypeSrv, {FakeDns::Mode::NxDomain, {}, 60, 300, 40});
  first.set("example.com", kDnsTypeNaptr, {FakeDns::Mode::Answer, {}, 60, 20, 3600});
  EventLoop loop;
  DnsClient client(loop, configFor({first.server(), second.server()}, 5000ms, 3));
  Got nx, nodata;
  client.query("_sip._udp.example.com", kDnsTypeSrv, nx.callback());
  client.query("example.com", kDnsTypeNaptr, nodata.callback());
  REQUIRE(loop.runUntil([&] { return nx.calls && nodata.calls; }, kDnsWait));
  CHECK(nx.answer->status == DnsStatus::NxDomain);
  CHECK(nx.answer->ttl == 40u);
  CHECK(nodata.answer->status == DnsStatus::Ok);
  CHECK(nodata.answer->naptr.empty());
  CHECK(nodata.answer->ttl == 20u);
  CHECK(second.totalQueries() == 0);
}

TEST_CASE("DnsClient: a truncated UDP reply is asked again over TCP to the same server") {
  FakeDns dns;
  std::vector<std::string> many;
  for (int i = 0; i < 20; ++i) many.push_back("10 10 5061 sip" + std::to_string(i) + ".example.com");
  dns.set("_sips._tcp.example.com", kDnsTypeSrv, {FakeDns::Mode::TcOverUdp, many, 300});
  EventLoop loop;
  DnsClient client(loop, configFor({dns.server()}, 60000ms, 1));
  Got g;
  client.query("_sips._tcp.example.com", kDnsTypeSrv, g.callback());
  REQUIRE(wait(loop, g));
  CHECK(g.answer->status == DnsStatus::Ok);
  CHECK(g.answer->srv.size() == 20);
  CHECK(dns.queries("_sips._tcp.example.com") == 1);
  CHECK(dns.tcpQueries("_sips._tcp.example.com") == 1);
  CHECK(client.stats().tcp == 1);
  CHECK(client.stats().timeouts == 0);
  CHECK(loop.watchedCount() == 1);  // the TCP connection is gone, the UDP socket stays
}

TEST_CASE("DnsClient: a failed TCP exchange moves on to the next server at once") {
  FakeDns good;
  good.set("_sip._tcp.example.com", kDnsTypeSrv, {FakeDns::Mode::Answer, {"1 1 5060 ok.example.com"}});
  EventLoop loop;
  SUBCASE("TC over TCP too") {
    FakeDns bad;
    bad.set("_sip._tcp.example.com", kDnsTypeSrv, {FakeDns::Mode::Truncated, {}});
    DnsClient client(loop, configFor({bad.server(), good.server()}, 60000ms, 1));
    Got g;
    client.query("_sip._tcp.example.com", kDnsTypeSrv, g.callback());
    REQUIRE(wait(loop, g));
    REQUIRE(g.answer->srv.size() == 1);
    CHECK(bad.tcpQueries("_sip._tcp.example.com") == 1);
    CHECK(client.stats().timeouts == 0);
  }
  SUBCASE("a TCP reply with another id is ignored") {
    FakeDns bad;
    bad.set("_sip._tcp.example.com", kDnsTypeSrv, {FakeDns::Mode::TcTcpWrongId, {"1 1 5060 evil.example.com"}});
    DnsClient client(loop, configFor({bad.server(), good.server()}, 60000ms, 1));
    Got g;
    client.query("_sip._tcp.example.com", kDnsTypeSrv, g.callback());
    REQUIRE(wait(loop, g));
    REQUIRE(g.answer->srv.size() == 1);
    CHECK(g.answer->srv[0].target == "ok.example.com");
    CHECK(client.stats().ignored == 1);
  }
  SUBCASE("the server closes the connection without a reply") {
    FakeDns bad;
    bad.set("_sip._tcp.example.com", kDnsTypeSrv, {FakeDns::Mode::TcTcpClose, {}});
    DnsClient client(loop, configFor({bad.server(), good.server()}, 60000ms, 1));
    Got g;
    client.query("_sip._tcp.example.com", kDnsTypeSrv, g.callback());
    REQUIRE(wait(loop, g));
    REQUIRE(g.answer->srv.size() == 1);
    CHECK(bad.tcpQueries("_sip._tcp.example.com") == 1);
  }
}

TEST_CASE("DnsClient: a silent server fails the query after attempts x timeout, on loop timers") {
  FakeDns dns(FakeDns::Mode::Silent);
  EventLoop loop;
  DnsClient client(loop, configFor({dns.server()}, 50ms, 3));
  Got g;
  client.query("_sip._tcp.example.com", kDnsTypeSrv, g.callback());
  CHECK(loop.timerCount() == 1);
  REQUIRE(wait(loop, g));
  CHECK(g.answer->status == DnsStatus::Failed);
  CHECK_FALSE(g.answer->ttl);
  CHECK(g.calls == 1);
  CHECK(dns.queriesAtLeast("_sip._tcp.example.com", 3) == 3);
  CHECK(client.stats().sent == 3);
  CHECK(client.stats().timeouts == 3);
  CHECK(loop.timerCount() == 0);
}

TEST_CASE("DnsClient: SERVFAIL moves on; a silent first server is retried after its timeout") {
  FakeDns silent(FakeDns::Mode::Silent), servfail(FakeDns::Mode::ServFail), good;
  good.set("example.com", kDnsTypeNaptr, {FakeDns::Mode::Answer, {"10 50 s SIP+D2T - _sip._tcp.example.com"}});
  EventLoop loop;
  DnsClient client(loop, configFor({silent.server(), servfail.server(), good.server()}, 100ms, 1));
  Got g;
  client.query("example.com", kDnsTypeNaptr, g.callback());
  REQUIRE(wait(loop, g));
  CHECK(g.answer->naptr.size() == 1);
  CHECK(client.stats().timeouts == 1);
  CHECK(servfail.totalQueries() == 1);
}

TEST_CASE("DnsClient: garbage, wrong id, wrong question and wrong source are ignored and counted") {
  FakeDns dns;
  dns.set("_sip._tcp.example.com", kDnsTypeSrv, {FakeDns::Mode::Garbage, {"1 1 5060 real.example.com"}});
  EventLoop loop;
  DnsClient client(loop, configFor({dns.server()}));
  Got g;
  client.query("_sip._tcp.example.com", kDnsTypeSrv, g.callback());
  REQUIRE(wait(loop, g));
  REQUIRE(g.answer->srv.size() == 1);
  CHECK(g.answer->srv[0].target == "real.example.com");
  CHECK(client.stats().ignored == 6);
  CHECK(client.stats().sent == 1);
}

TEST_CASE("DnsClient: bad names fail on the loop, bad configuration is refused") {
  EventLoop loop;
  DnsClient client(loop, configFor({{"127.0.0.1", 9}}));
  Got g;
  client.query("bad..name", kDnsTypeSrv, g.callback());
  CHECK(g.calls == 0);  // not inside query()
  REQUIRE(wait(loop, g));
  CHECK(g.answer->status == DnsStatus::Failed);

  auto message = [&](DnsClientConfig c) -> std::string {
    try {
      DnsClient bad(loop, std::move(c));
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
  CHECK(loop.watchedCount() == 1);  // refused clients left nothing behind
}

TEST_CASE("DnsClient: destruction fails outstanding queries once and leaves the loop clean") {
  FakeDns dns(FakeDns::Mode::Silent);
  EventLoop loop;
  Got a, b;
  {
    DnsClient client(loop, configFor({dns.server()}, 60000ms, 1));
    client.query("a.example.com", kDnsTypeA, a.callback());
    client.query("_sip._tcp.example.com", kDnsTypeSrv, b.callback());
    REQUIRE(dns.waitForQuery("_sip._tcp.example.com"));
  }
  CHECK(a.calls == 1);
  CHECK(b.calls == 1);
  CHECK(a.answer->status == DnsStatus::Failed);
  CHECK(b.answer->status == DnsStatus::Failed);
  CHECK(loop.watchedCount() == 0);
  CHECK(loop.timerCount() == 0);
  loop.runUntil([] { return false; }, 0ms);  // a flush queued before is a no-op now
  CHECK(a.calls == 1);
}

TEST_CASE("DnsClient: a callback may ask again; one may destroy the client, the rest still complete") {
  FakeDns dns;
  dns.set("a.example.com", kDnsTypeA, {FakeDns::Mode::Answer, {}});
  dns.set("a.example.com", kDnsTypeAaaa, {FakeDns::Mode::Answer, {"2001:db8::1"}});
  EventLoop loop;
  auto client = std::make_unique<DnsClient>(loop, configFor({dns.server()}));
  Got six;
  client->query("a.example.com", kDnsTypeA, [&](DnsAnswer a) {
    CHECK(a.values.empty());
    client->query("a.example.com", kDnsTypeAaaa, six.callback());
  });
  REQUIRE(wait(loop, six));
  CHECK(six.answer->values == std::vector<std::string>{"2001:db8::1"});

  Got first, second;
  client->query("bad..one", kDnsTypeA, [&](DnsAnswer a) {
    first.callback()(std::move(a));
    client.reset();
  });
  client->query("bad..two", kDnsTypeA, second.callback());
  REQUIRE(wait(loop, second));
  CHECK(first.calls == 1);
  CHECK(second.calls == 1);
  CHECK_FALSE(client);
}
