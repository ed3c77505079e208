// Loopback tests of the SIP Proxy's forwarding core: real sockets, fake UAC
// and UAS peers on a test-owned event loop; the proxy on its own thread, or
// on the test's loop with a manual clock for the timer tests. Call flows
// read as ladders (ladder.h).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ladder.h"

using namespace imp::sip_proxy::testing;

TEST_CASE("a MESSAGE is relayed over a static route and the 200 comes back") {
  net::EventLoop loop;
  Peer lync(loop), uas(loop);
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".test.remote.*", uas.ep.port, 1)};
  Rig rig(policy);

  lync.send(makeRequest("MESSAGE", "sip:bob@remote.test", lync, "m1"), rig.ep);
  auto got = uas.expect("MESSAGE").reply(200).msg;
  auto resp = lync.expect(200).msg;

  CHECK(resp.vias().size() == 1);  // the proxy's Via was stripped
  CHECK(got.maxForwards() == 69);
  CHECK(got.vias().size() == 2);
  CHECK(got.topVia()->port == rig.ep.port);
  CHECK(got.count(sip::HeaderId::RecordRoute) == 0);  // MESSAGE creates no dialog
  CHECK(got.body() == "hi");
  CHECK(rig.logged("Routing: dipping for remote.test"));
  CHECK(rig.logged("Found domain route for remote.test"));
  CHECK(uas.idle());
  CHECK(lync.idle());
}

TEST_CASE("an INVITE is record-routed, provisional and final responses relayed, the 2xx ACK forwarded statelessly") {
  net::EventLoop loop;
  Peer lync(loop), uas(loop);
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".test.remote.*", uas.ep.port, 1)};
  Rig rig(policy);

  lync.send(makeRequest("INVITE", "sip:bob@remote.test", lync, "i1"), rig.ep);
  auto invite = uas.expect("INVITE").reply(180).reply(200).msg;
  lync.expect(180);
  auto ok = lync.expect(200).msg;

  auto rr = invite.recordRoutes();
  REQUIRE(rr.size() == 1);
  CHECK(std::string(rr.front().uri).find(";lr") != std::string::npos);
  CHECK(std::string(rr.front().uri).find(std::to_string(rig.ep.port)) != std::string::npos);

  // ACK for the 2xx: Route = the Record-Route, Request-URI = the UAS contact.
  lync.send(ackFor(ok, lync, "i1"), rig.ep);
  auto fwdAck = uas.expect("ACK").msg;
  CHECK(fwdAck.count(sip::HeaderId::Route) == 0);  // our own Route was stripped
  CHECK(fwdAck.vias().size() == 2);
  CHECK(rig.proxy->stats().statelessForwards == 1);
}

TEST_CASE("failover: a primary next hop that refuses connections is skipped for the backup") {
  net::EventLoop loop;
  Peer uac(loop), backup(loop);
  answerAll(backup);
  auto dead = closedPort();
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".test.remote.*", dead, 1), route(".test.remote.*", backup.ep.port, 2)};
  Rig rig(policy);

  auto resp = roundTrip(loop, uac, rig, makeRequest("MESSAGE", "sip:bob@remote.test", uac, "f1"));
  CHECK(resp.statusCode() == 200);
  CHECK(backup.requests().size() == 1);
  auto down = rig.proxy->downHops();
  REQUIRE(down.size() == 1);
  CHECK(down.front() == "TCP 127.0.0.1:" + std::to_string(dead));
  CHECK(rig.proxy->stats().failovers == 1);
}

TEST_CASE("failover: a primary that accepts but never answers times out per hop") {
  net::EventLoop loop;
  net::ManualTimers clock;
  Peer lync(loop), silent(loop), backup(loop);
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".test.remote.*", silent.ep.port, 1), route(".test.remote.*", backup.ep.port, 2)};
  Rig rig(policy, [](sp::ProxyConfig& c) { c.hopTimeout = 300ms; }, Rig::OnLoop{loop, clock});

  lync.send(makeRequest("MESSAGE", "sip:bob@remote.test", lync, "f2"), rig.ep);
  silent.expect("MESSAGE");  // and no answer
  clock.advance(299ms);
  CHECK(rig.proxy->downHops().empty());
  clock.advance(1ms);
  backup.expect("MESSAGE").reply(200);
  lync.expect(200);
  CHECK(rig.proxy->downHops() == std::vector<std::string>{"TCP 127.0.0.1:" + std::to_string(silent.ep.port)});
  CHECK(rig.proxy->stats().failovers == 1);
}

TEST_CASE("408 when the only next hop does not answer; it is marked down, probed, and marked up when it answers") {
  net::EventLoop loop;
  net::ManualTimers clock;
  Peer lync(loop), uas(loop);
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".test.remote.*", uas.ep.port, 1)};
  Rig rig(policy, [](sp::ProxyConfig& c) {
    c.hopTimeout = 2s;
    c.probeInterval = 30s;
  }, Rig::OnLoop{loop, clock});
  const std::string hop = "TCP 127.0.0.1:" + std::to_string(uas.ep.port);

  lync.send(makeRequest("MESSAGE", "sip:bob@remote.test", lync, "t408"), rig.ep);
  uas.expect("MESSAGE");  // unanswered
  clock.advance(2s);
  CHECK(lync.expect(408).msg.reason() == "Request Timeout - no next hop answered");
  CHECK(rig.proxy->downHops() == std::vector<std::string>{hop});
  CHECK(rig.logged("next hop " + hop + " marked down; probing with OPTIONS every 30000 ms"));

  clock.advance(30s);
  uas.expect("OPTIONS").reply(200);
  REQUIRE(loop.runUntil([&] { return rig.proxy->downHops().empty(); }, kDeadline));
  CHECK(rig.logged("next hop " + hop + " answers OPTIONS again: marked up"));
}

TEST_CASE("failover: a 503 from the primary goes to the backup; all hops failing gives 503") {
  net::EventLoop loop;
  Peer uac(loop), busy(loop), backup(loop);
  answerAll(busy, 503);
  answerAll(backup);
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".test.remote.*", busy.ep.port, 1), route(".test.remote.*", backup.ep.port, 2),
                   route(".test.dead.*", closedPort(), 1), route(".test.dead.*", closedPort(), 2)};
  Rig rig(policy);

  auto resp = roundTrip(loop, uac, rig, makeRequest("MESSAGE", "sip:bob@remote.test", uac, "f3"));
  CHECK(resp.statusCode() == 200);
  CHECK(busy.requests().size() == 1);
  CHECK(backup.requests().size() == 1);

  Peer uac2(loop);
  auto resp2 = roundTrip(loop, uac2, rig, makeRequest("MESSAGE", "sip:bob@dead.test", uac2, "f4"));
  CHECK(resp2.statusCode() == 503);
}

TEST_CASE("incoming ACL: an untrusted source gets 403; a trusted PTR name passes") {
  net::EventLoop loop;
  Peer uac(loop), uas(loop);
  answerAll(uas);
  sp::ProxyPolicy policy;
  policy.acl = {sp::AclEntry{"192.0.2.1", sp::AclKind::Address, "lync"}};
  policy.routes = {route(".test.remote.*", uas.ep.port, 1)};
  Rig rig(policy);

  auto resp = roundTrip(loop, uac, rig, makeRequest("MESSAGE", "sip:bob@remote.test", uac, "a1"));
  CHECK(resp.statusCode() == 403);
  CHECK(resp.reason() == "ACL - upstream not trusted - need to authenticate");
  CHECK(rig.logged("ACL - upstream not trusted - need to authenticate"));
  CHECK(uas.requests().empty());

  // Live ACL change: the FQDN the source reverse-resolves to is now trusted.
  rig.resolver->ptr["127.0.0.1"] = "ocs1.lync.test";
  auto p2 = policy;
  p2.acl.push_back(sp::AclEntry{"lync.test", sp::AclKind::Name, "lync pool"});
  rig.proxy->updatePolicy(p2);
  Peer uac2(loop);
  auto resp2 = roundTrip(loop, uac2, rig, makeRequest("MESSAGE", "sip:bob@remote.test", uac2, "a2"));
  CHECK(resp2.statusCode() == 200);
  CHECK(uas.requests().size() == 1);
}

TEST_CASE("a slow reverse lookup is completed asynchronously, allowed by name and reported") {
  net::EventLoop loop;
  Peer uac(loop), uas(loop);
  answerAll(uas);
  sp::ProxyPolicy policy;
  policy.acl = {sp::AclEntry{"lync.test", sp::AclKind::Name, "lync pool"}};
  policy.routes = {route(".test.remote.*", uas.ep.port, 1)};
  std::shared_ptr<FakeResolver> slowDns = std::make_shared<FakeResolver>();
  slowDns->ptr["127.0.0.1"] = "ocs1.lync.test";
  slowDns->delay = 150ms;
  Rig rig(policy, [&](sp::ProxyConfig& c) {
    c.resolver = slowDns;
    c.slowAclThreshold = 50ms;
  });
  // The PTR answer arrives late on a resolver thread and is posted back to the proxy's loop.
  auto resp = roundTrip(loop, uac, rig, makeRequest("MESSAGE", "sip:bob@remote.test", uac, "s1"));
  CHECK(resp.statusCode() == 200);
  CHECK(rig.logged("incoming ACL check took over"));
  CHECK(rig.logged("check DNS"));
}

TEST_CASE("Max-Forwards 0 is answered 483; an absent one is set to 70") {
  net::EventLoop loop;
  Peer uac(loop), uas(loop);
  answerAll(uas);
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".test.remote.*", uas.ep.port, 1)};
  Rig rig(policy);

  auto resp = roundTrip(loop, uac, rig, makeRequest("MESSAGE", "sip:bob@remote.test", uac, "mf0", {}, "0"));
  CHECK(resp.statusCode() == 483);
  CHECK(uas.requests().empty());

  Peer uac2(loop);
  auto resp2 = roundTrip(loop, uac2, rig, makeRequest("MESSAGE", "sip:bob@remote.test", uac2, "mf1", {}, ""));
  CHECK(resp2.statusCode() == 200);
  REQUIRE(uas.requests().size() == 1);
  CHECK(uas.requests().front().maxForwards() == 70);
}

TEST_CASE("partitioned federation: outbound requests are marked; one coming back is a loop (482)") {
  net::EventLoop loop;
  Peer uac(loop), lync(loop);
  answerAll(lync);
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".com.example.*", lync.ep.port, 1)};
  policy.federation.enabled = true;
  policy.clusterNodes = {"imp", "imp2"};
  Rig rig(policy, [](sp::ProxyConfig& c) { c.directory = std::make_shared<FakeDirectory>(); });

  auto resp = roundTrip(loop, uac, rig, makeRequest("MESSAGE", "sip:carol@example.com", uac, "l1"));
  CHECK(resp.statusCode() == 200);
  REQUIRE(lync.requests().size() == 1);
  auto out = lync.requests().front();
  CHECK(out.header("X-IMP-PF") == "imp");
  CHECK(out.topVia()->param("imp-pf") == "imp");

  Peer uac2(loop);
  auto resp2 = roundTrip(loop, uac2, rig,
                         makeRequest("MESSAGE", "sip:carol@example.com", uac2, "l2", "X-IMP-PF: imp2\r\n"));
  CHECK(resp2.statusCode() == 482);
  CHECK(lync.requests().size() == 1);
  CHECK(rig.logged("loop detected"));
  CHECK(rig.proxy->stats().loops == 1);
}

TEST_CASE("a routing decision Reject is answered with its status") {
  net::EventLoop loop;
  Peer uac(loop);
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  Rig rig(policy);
  auto resp = roundTrip(loop, uac, rig, makeRequest("MESSAGE", "sip:bob@nowhere.test", uac, "r1"));
  CHECK(resp.statusCode() == 404);
}

TEST_CASE("OPTIONS to the proxy itself is answered 200 (load balancer heartbeat)") {
  net::EventLoop loop;
  Peer uac(loop);
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  Rig rig(policy);
  auto resp = roundTrip(loop, uac, rig,
                        makeRequest("OPTIONS", "sip:127.0.0.1:" + std::to_string(rig.ep.port), uac, "o1"));
  CHECK(resp.statusCode() == 200);
}

#include <imp/core/module_registry.h>

#include "imp/sip_proxy/module.h"

TEST_CASE("the sip-proxy service configures without side effects") {
  imp::core::ModuleRegistry modules;
  sp::registerModule(modules);
  const auto* desc = modules.service("sip-proxy");
  REQUIRE(desc != nullptr);
  CHECK(desc->kind == imp::core::ServiceKind::Feature);
  auto svc = desc->factory();
  CHECK(svc->name() == "sip-proxy");
  imp::core::ServiceContext ctx;
  ctx.nodeId = "imp1";
  svc->configure(ctx);  // no database: one TCP listener on 5060, not bound yet
  CHECK(svc->status().state == imp::core::ServiceState::Stopped);
  svc->stop();  // before start: a no-op
}

namespace {

// A UAS that rings on INVITE and never answers finally; on CANCEL it
// answers 200 and, when `honourCancel`, 487 to the INVITE.
void ringForever(Peer& uas, bool honourCancel) {
  auto invite = std::make_shared<std::optional<sip::Message>>();
  uas.onMessage = [&uas, invite, honourCancel](const sip::Message& m, const sip::Source& s) {
    if (m.method() == "INVITE") {
      *invite = m;
      uas.tl.send(responseTo(m, 180, "Ringing"), s.remote);
    } else if (m.method() == "CANCEL" && honourCancel) {
      uas.tl.send(responseTo(m, 200, "OK"), s.remote);
      if (*invite) uas.tl.send(responseTo(**invite, 487, "Request Terminated"), s.remote);
    }
  };
}

// Everyone allowed, remote.test routed to `uas`.
sp::ProxyPolicy routeTo(const Peer& uas) {
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".test.remote.*", uas.ep.port, 1)};
  return policy;
}

bool gotStatus(const Peer& p, int status) {
  for (const auto& m : p.got)
    if (m.isResponse() && m.statusCode() == status) return true;
  return false;
}

std::size_t countMethod(const Peer& p, std::string_view method) {
  std::size_t n = 0;
  for (const auto& m : p.requests()) n += m.method() == method ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("timer C: a ringing INVITE branch with no final answer is cancelled; the 487 is relayed") {
  net::EventLoop loop;
  net::ManualTimers clock;
  Peer lync(loop), uas(loop);
  Rig rig(routeTo(uas), {}, Rig::OnLoop{loop, clock});  // timer C: 181 s

  lync.send(makeRequest("INVITE", "sip:bob@remote.test", lync, "tc1"), rig.ep);
  auto invite = uas.expect("INVITE").reply(180);
  lync.expect(180);
  clock.advance(180s);
  CHECK(!rig.logged("timer C"));
  clock.advance(1s);
  uas.expect("CANCEL").reply(200);
  invite.reply(487);
  lync.expect(487);
  CHECK(rig.logged("timer C: INVITE sip:bob@remote.test"));
}

TEST_CASE("timer C: a branch that ignores the CANCEL is abandoned and the caller gets 408") {
  net::EventLoop loop;
  net::ManualTimers clock;
  Peer lync(loop), uas(loop);
  Rig rig(routeTo(uas), [](sp::ProxyConfig& c) {
    c.timerC = 200s;
    c.cancelGuard = 32s;
  }, Rig::OnLoop{loop, clock});

  lync.send(makeRequest("INVITE", "sip:bob@remote.test", lync, "tc2"), rig.ep);
  uas.expect("INVITE").reply(180);
  lync.expect(180);
  clock.advance(200s);
  uas.expect("CANCEL");  // never answered, nor the INVITE
  clock.advance(32s);
  lync.expect(408);
  CHECK(rig.logged("no final answer after CANCEL"));
}

TEST_CASE("a CANCEL from the caller is answered hop by hop and passed down the ringing branch") {
  net::EventLoop loop;
  Peer uac(loop), uas(loop);
  ringForever(uas, true);
  Rig rig(routeTo(uas));

  auto invite = makeRequest("INVITE", "sip:bob@remote.test", uac, "cx1");
  uac.tl.send(invite, rig.ep);
  REQUIRE(loop.runUntil([&] { return gotStatus(uac, 180); }, kDeadline));
  std::string s = "CANCEL sip:bob@remote.test SIP/2.0\r\n";
  s += "Via: SIP/2.0/TCP 127.0.0.1:" + std::to_string(uac.ep.port) + ";branch=z9hG4bK-cx1\r\n";
  s += "Max-Forwards: 70\r\nFrom: <sip:alice@imp.test>;tag=a1\r\nTo: <sip:bob@remote.test>\r\n";
  s += "Call-ID: cx1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
  uac.tl.send(std::get<sip::Message>(sip::Parser().parseDatagram(s)), rig.ep);
  REQUIRE(loop.runUntil([&] { return gotStatus(uac, 487); }, kDeadline));
  CHECK(gotStatus(uac, 200));  // the CANCEL's own answer, from the proxy
  CHECK(countMethod(uas, "CANCEL") == 1);
  // an unknown CANCEL gets 481
  std::string u = s;
  u.replace(u.find("z9hG4bK-cx1"), 11, "z9hG4bK-zz9");
  u.replace(u.find("Call-ID: cx1"), 12, "Call-ID: zz9");
  uac.tl.send(std::get<sip::Message>(sip::Parser().parseDatagram(u)), rig.ep);
  REQUIRE(loop.runUntil([&] { return gotStatus(uac, 481); }, kDeadline));
}

TEST_CASE("TLS-1: listeners change live: the old port closes, the new one relays, bad ports are reported") {
  net::EventLoop loop;
  Peer uac(loop), uas(loop);
  answerAll(uas);
  Rig rig(routeTo(uas));
  const auto oldEp = rig.ep;
  const std::uint16_t port = closedPort();

  auto errors = rig.proxy->setListeners({{sip::Transport::Tcp, "127.0.0.1", port, nullptr, {}, {}}});
  CHECK(errors.empty());
  auto eps = rig.proxy->endpoints();
  REQUIRE(eps.size() == 1);
  CHECK(eps.front().port == port);
  CHECK(eps.front().port != oldEp.port);
  rig.ep = eps.front();
  CHECK(roundTrip(loop, uac, rig, makeRequest("MESSAGE", "sip:bob@remote.test", uac, "l1")).statusCode() == 200);
  CHECK(uas.requests().front().topVia()->port == port);  // our Via follows the listener

  // a port another socket holds: reported, the working listener kept
  auto taken = uas.ep.port;
  errors = rig.proxy->setListeners({{sip::Transport::Tcp, "127.0.0.1", port, nullptr, {}, {}},
                                    {sip::Transport::Tcp, "127.0.0.1", taken, nullptr, {}, {}}});
  REQUIRE(errors.size() == 1);
  CHECK(errors.front().find("TCP listener on 127.0.0.1:" + std::to_string(taken) + ": bind:") != std::string::npos);
  CHECK(rig.proxy->endpoints().size() == 1);
}

namespace {
// Counts the lookups the proxy makes.
class CountingDirectory : public FakeDirectory {
 public:
  bool isLocalDomain(const std::string& d) override {
    ++calls;
    return FakeDirectory::isLocalDomain(d);
  }
  std::atomic<int> calls{0};
};
}  // namespace

TEST_CASE("with the local domains in the policy, other domains are routed without asking the directory") {
  net::EventLoop loop;
  Peer uac(loop), uas(loop);
  answerAll(uas);
  auto policy = routeTo(uas);
  policy.routes.push_back(route(".com.example.*", uas.ep.port, 1));
  policy.federation.enabled = true;
  policy.localDomains = std::set<std::string>{"example.com"};
  auto dir = std::make_shared<CountingDirectory>();
  Rig rig(policy, [dir](sp::ProxyConfig& c) { c.directory = dir; });

  CHECK(roundTrip(loop, uac, rig, makeRequest("MESSAGE", "sip:bob@remote.test", uac, "d1")).statusCode() == 200);
  CHECK(dir->calls == 0);
  CHECK(rig.logged("Found domain route for remote.test"));
  // a local domain still goes through the directory (federation to the Microsoft server)
  Peer uac2(loop);
  CHECK(roundTrip(loop, uac2, rig, makeRequest("MESSAGE", "sip:carol@example.com", uac2, "d2")).statusCode() == 200);
  CHECK(dir->calls == 1);
}

namespace {
// A directory whose users can change under the proxy, counting user lookups.
class ChangingDirectory : public FakeDirectory {
 public:
  std::optional<std::string> licensedUserHome(const std::string&) override {
    ++userLookups;
    std::lock_guard l(mu);
    return home;
  }
  bool hasMicrosoftSipUri(const std::string&) override {
    ++uriLookups;
    return true;
  }
  void setHome(std::optional<std::string> h) {
    std::lock_guard l(mu);
    home = std::move(h);
  }
  std::atomic<int> userLookups{0}, uriLookups{0};
  std::mutex mu;
  std::optional<std::string> home;
};
}  // namespace

TEST_CASE("directory answers about a recipient are reused until the next settings generation") {
  net::EventLoop loop;
  Peer uas(loop);
  answerAll(uas);
  auto policy = routeTo(uas);
  policy.routes.push_back(route(".com.example.*", uas.ep.port, 1));
  policy.federation.enabled = true;  // basic mode: carol (not licensed) goes to the Microsoft server
  policy.localDomains = std::set<std::string>{"example.com"};
  auto dir = std::make_shared<ChangingDirectory>();
  Rig rig(policy, [dir](sp::ProxyConfig& c) { c.directory = dir; });

  Peer a(loop), b(loop), c(loop);
  CHECK(roundTrip(loop, a, rig, makeRequest("MESSAGE", "sip:carol@example.com", a, "c1")).statusCode() == 200);
  CHECK(dir->userLookups == 1);
  // the same recipient, spelt differently: answered from the cache, same route
  CHECK(roundTrip(loop, b, rig, makeRequest("MESSAGE", "sip:Carol@EXAMPLE.com", b, "c2")).statusCode() == 200);
  CHECK(dir->userLookups == 1);
  CHECK(uas.requests().size() == 2);
  auto st = rig.proxy->stats();
  CHECK(st.directoryLookups == 1);
  CHECK(st.directoryCacheHits == 1);

  // carol becomes a licensed IMP user homed on this node; the change reaches
  // the proxy as a new settings generation, which drops what was cached
  dir->setHome(std::string("imp"));
  rig.proxy->updatePolicy(policy);
  auto r = roundTrip(loop, c, rig, makeRequest("MESSAGE", "sip:carol@example.com", c, "c3"));
  CHECK(r.statusCode() == 480);  // homed here, no federation connection manager yet
  CHECK(dir->userLookups == 2);
  CHECK(uas.requests().size() == 2);

  // advanced mode asks for the Microsoft SIP URI too; both answers are kept
  dir->setHome(std::nullopt);
  policy.federation.routingMode = sp::RoutingMode::Advanced;
  rig.proxy->updatePolicy(policy);
  Peer d(loop), e(loop);
  CHECK(roundTrip(loop, d, rig, makeRequest("MESSAGE", "sip:carol@example.com", d, "c4")).statusCode() == 200);
  CHECK(roundTrip(loop, e, rig, makeRequest("MESSAGE", "sip:carol@example.com", e, "c5")).statusCode() == 200);
  CHECK(dir->userLookups == 3);
  CHECK(dir->uriLookups == 1);
  CHECK(rig.proxy->stats().directoryCacheHits == 2);
}

// ---- RFC 3261 16.3 validation, UDP (RFC 3581, 18.1.1) ----

namespace {

sip::Endpoint endpointOf(const Rig& rig, sip::Transport t) {
  for (const auto& e : rig.proxy->endpoints())
    if (e.transport == t) return e;
  FAIL("the proxy has no listener of that transport");
  return {};
}

}  // namespace

TEST_CASE("requests a proxy must refuse get 400 naming the header, 416 or 420 with Unsupported, and go nowhere") {
  net::EventLoop loop;
  Peer uac(loop), uas(loop);
  answerAll(uas);
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".test.remote.*", uas.ep.port, 1)};
  Rig rig(policy);

  auto r420 = roundTrip(loop, uac, rig,
                        makeRequest("OPTIONS", "sip:bob@remote.test", uac, "pr1", "Proxy-Require: foo, bar\r\nRequire: baz\r\n"));
  CHECK(r420.statusCode() == 420);
  CHECK(r420.header("Unsupported") == "foo, bar");
  uac.got.clear();
  std::string noCallId = "MESSAGE sip:bob@remote.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:" + std::to_string(uac.ep.port) +
                         ";branch=z9hG4bK-nc1\r\nFrom: <sip:alice@imp.test>;tag=a1\r\nTo: <sip:bob@remote.test>\r\n"
                         "CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
  auto r400 = roundTrip(loop, uac, rig, parsedText(noCallId));
  CHECK(r400.statusCode() == 400);
  CHECK(r400.reason() == "Bad Request - missing Call-ID header field");
  uac.got.clear();
  auto twice = roundTrip(loop, uac, rig, makeRequest("MESSAGE", "sip:bob@remote.test", uac, "tw1", "To: <sip:eve@remote.test>\r\n"));
  CHECK(twice.statusCode() == 400);
  CHECK(twice.reason() == "Bad Request - several values in single-value header field To");
  uac.got.clear();
  auto r416 = roundTrip(loop, uac, rig, makeRequest("OPTIONS", "mailto:bob@remote.test", uac, "sc1"));
  CHECK(r416.statusCode() == 416);
  CHECK(r416.reason().find("mailto") != std::string_view::npos);
  CHECK(uas.requests().empty());
  CHECK(rig.proxy->stats().rejected == 4);
}

TEST_CASE("a Request-URI without a user part is routed by its domain") {
  net::EventLoop loop;
  Peer uac(loop), uas(loop);
  answerAll(uas);
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".test.remote.*", uas.ep.port, 1)};
  Rig rig(policy);
  auto ok = roundTrip(loop, uac, rig, makeRequest("REGISTER", "sip:remote.test", uac, "rg1"));
  CHECK(ok.statusCode() == 200);
  REQUIRE(uas.requests().size() == 1);
  CHECK(uas.requests()[0].requestUri() == "sip:remote.test");
  uac.got.clear();
  auto none = roundTrip(loop, uac, rig, makeRequest("REGISTER", "sip:elsewhere.test", uac, "rg2"));
  CHECK(none.statusCode() == 404);
  CHECK(none.reason() == "elsewhere.test is not a local presence domain and no static route matches it");
}

TEST_CASE("UDP: received and rport are added to the top Via and the answer goes to the source port (RFC 3581)") {
  net::EventLoop loop;
  Peer uac(loop, sip::Transport::Udp), uas(loop);
  answerAll(uas);
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".test.remote.*", uas.ep.port, 1)};
  Rig rig(policy, [](sp::ProxyConfig& c) { c.listeners.push_back({sip::Transport::Udp, "127.0.0.1", 0, nullptr, {}}); });
  // The Via names an address behind a NAT; only the source address works.
  std::string text = "MESSAGE sip:bob@remote.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.99.0.1:5999;rport;branch=z9hG4bK-u1\r\n"
                     "Max-Forwards: 70\r\nFrom: <sip:alice@imp.test>;tag=a1\r\nTo: <sip:bob@remote.test>\r\n"
                     "Call-ID: u1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 2\r\n\r\nhi";
  auto udpEp = endpointOf(rig, sip::Transport::Udp);
  uac.tl.send(parsedText(text), udpEp);
  REQUIRE(loop.runUntil([&] { return !uac.finals().empty(); }, kDeadline));
  CHECK(uac.finals()[0].statusCode() == 200);
  // From the listening socket (§18.2.2 / RFC 3581 §4).
  CHECK(uac.sources.back().remote.port == udpEp.port);
  REQUIRE(uas.requests().size() == 1);
  auto vias = uas.requests()[0].vias();
  REQUIRE(vias.size() == 2);
  CHECK(vias[1].param("rport") == std::to_string(uac.ep.port));
  CHECK(vias[1].param("received") == "127.0.0.1");
}

TEST_CASE("UDP next hop: a request over 1300 bytes goes over TCP, back to UDP when TCP is refused (RFC 3261 18.1.1)") {
  net::EventLoop loop;
  Peer uac(loop), tcpUas(loop), udpUas(loop, sip::Transport::Udp);
  answerAll(tcpUas);
  answerAll(udpUas);
  auto udpRoute = [](const std::string& pattern, std::uint16_t port) {
    auto r = route(pattern, port, 1);
    r.transport = sp::Transport::Udp;
    return r;
  };
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  // tcp.test: a next hop that listens on TCP at the port the route names UDP for.
  policy.routes = {udpRoute(".test.tcp.*", tcpUas.ep.port), udpRoute(".test.udp.*", udpUas.ep.port)};
  Rig rig(policy, [](sp::ProxyConfig& c) { c.listeners.push_back({sip::Transport::Udp, "127.0.0.1", 0, nullptr, {}}); });
  std::string big = "X-Padding: " + std::string(1400, 'p') + "\r\n";

  auto small = roundTrip(loop, uac, rig, makeRequest("MESSAGE", "sip:bob@udp.test", uac, "s1"));
  CHECK(small.statusCode() == 200);
  REQUIRE(udpUas.requests().size() == 1);
  CHECK(udpUas.requests()[0].topVia()->transport == "UDP");
  uac.got.clear();
  auto large = roundTrip(loop, uac, rig, makeRequest("MESSAGE", "sip:bob@tcp.test", uac, "l1", big));
  CHECK(large.statusCode() == 200);
  REQUIRE(tcpUas.requests().size() == 1);
  CHECK(tcpUas.requests()[0].topVia()->transport == "TCP");
  uac.got.clear();
  auto fallback = roundTrip(loop, uac, rig, makeRequest("MESSAGE", "sip:bob@udp.test", uac, "l2", big));
  CHECK(fallback.statusCode() == 200);
  REQUIRE(udpUas.requests().size() == 2);
  CHECK(udpUas.requests()[1].topVia()->transport == "UDP");
  CHECK(rig.logged("does not take TCP"));
}

TEST_CASE("a response that cannot reach the client any more is logged and counted, not lost silently") {
  net::EventLoop loop;
  Peer uac(loop), uas(loop);  // the UAS answers only when told to
  sp::ProxyPolicy policy;
  policy.acl = allowAll();
  policy.routes = {route(".test.remote.*", uas.ep.port, 1)};
  Rig rig(policy);
  uac.tl.send(makeRequest("MESSAGE", "sip:bob@remote.test", uac, "gone1"), rig.ep);
  REQUIRE(loop.runUntil([&] { return uas.requests().size() == 1; }, kDeadline));
  // The client hangs up before the answer: the proxy's TCP connection back
  // to it (an ephemeral port nobody listens on) is refused.
  uac.tl.closeConnection(uac.tl.connectionTo(rig.ep));
  // Once the proxy has seen the close (else the answer would go into a
  // socket the kernel accepts and the peer resets later: undetectable).
  REQUIRE(loop.runUntil([&] { return rig.logged("closed by "); }, kDeadline));
  uas.tl.send(responseTo(uas.requests()[0], 200, "OK"), uas.sources[0].remote);
  REQUIRE(loop.runUntil([&] { return rig.proxy->stats().responsesUnsent == 1; }, kDeadline));
  CHECK(rig.logged("not delivered: connection refused"));
  CHECK(uac.finals().empty());
}

TEST_CASE("flood limiter: a source over the limit is answered 503 until its ban expires on the clock") {
  net::EventLoop loop;
  net::ManualTimers clock;
  clock.advance(1h);
  Peer uac(loop), uas(loop);
  sp::ProxyPolicy policy;
  policy.acl = {sp::AclEntry{"192.0.2.1", sp::AclKind::Address, "lync"}};  // 127.0.0.1 is not listed
  policy.routes = {route(".test.remote.*", uas.ep.port, 1)};
  Rig rig(policy, [](sp::ProxyConfig& c) {
    c.flood.maxRequests = 2;
    c.flood.window = 2000ms;
    c.flood.banTime = 10s;
  }, Rig::OnLoop{loop, clock});

  uac.send(makeRequest("MESSAGE", "sip:bob@remote.test", uac, "fl1"), rig.ep);
  uac.expect(403);  // let through by the limiter, refused by the ACL (no PTR record)
  uac.send(makeRequest("MESSAGE", "sip:bob@remote.test", uac, "fl2"), rig.ep);
  uac.expect(403);
  uac.send(makeRequest("MESSAGE", "sip:bob@remote.test", uac, "fl3"), rig.ep);
  auto banned = uac.expect(503).msg;
  CHECK(banned.reason() == "Service Unavailable - flood limit");
  CHECK(banned.header("Retry-After") == "10");
  CHECK(rig.logged("flood limit: 127.0.0.1 sent over 2 requests in 2000 ms; banned for 10 s"));
  auto bans = onTestLoop(loop, [&] { return rig.proxy->bans(); });
  REQUIRE(bans.size() == 1);
  CHECK(bans.front().address == "127.0.0.1");

  clock.advance(9s);
  uac.send(makeRequest("MESSAGE", "sip:bob@remote.test", uac, "fl4"), rig.ep);
  uac.expect(503);  // still banned
  clock.advance(1s);
  CHECK(onTestLoop(loop, [&] { return rig.proxy->bans(); }).empty());
  uac.send(makeRequest("MESSAGE", "sip:bob@remote.test", uac, "fl5"), rig.ep);
  uac.expect(403);  // the ban expired: the ACL answers again
  CHECK(rig.proxy->stats().floodRefused == 2);
  CHECK(uas.requests().empty());
}

TEST_CASE("on a given loop: the proxy runs when the loop runs; stop() closes its listeners and the loop goes on") {
  net::EventLoop loop;
  net::ManualTimers clock;
  Peer lync(loop), uas(loop);
  Rig rig(routeTo(uas), {}, Rig::OnLoop{loop, clock});

  lync.send(makeRequest("MESSAGE", "sip:bob@remote.test", lync, "g1"), rig.ep);
  uas.expect("MESSAGE").reply(200);
  lync.expect(200);
  CHECK(rig.proxy->running());

  rig.proxy->stop();
  CHECK(!rig.proxy->running());
  CHECK(rig.proxy->endpoints().empty());
  // the loop still serves its other users
  lync.send(makeRequest("MESSAGE", "sip:bob@remote.test", lync, "g2"), uas.ep);
  uas.expect("MESSAGE");
}

#include <imp/net/loop_group.h>

TEST_CASE("on a node loop another thread runs: start, relay, stop and teardown run on that loop; a new proxy follows") {
  // impd hands the proxy a loop of its net::LoopGroup (issue 15,
  // deliverable 2): the group's thread runs it, the service host's threads
  // start, stop and destroy the proxy.
  net::LoopGroup group(net::LoopGroupConfig{"test-loop", 1});
  group.start();
  net::EventLoop loop;  // the peers' loop, driven by this thread
  Peer lync(loop), uas(loop);
  auto onGroup = [&](sp::ProxyConfig& c) { c.loop = &group.at(0); };

  auto first = std::make_unique<Rig>(routeTo(uas), onGroup);
  lync.send(makeRequest("MESSAGE", "sip:bob@remote.test", lync, "n1"), first->ep);
  uas.expect("MESSAGE").reply(200);
  lync.expect(200);
  const auto firstEp = first->ep;
  first->proxy->stop();
  CHECK(!first->proxy->running());
  first.reset();  // torn down on the group's thread, which goes on
  {
    // its listener is closed: a connect is refused
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(firstEp.port);
    CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0);
    ::close(fd);
  }

  auto second = std::make_unique<Rig>(routeTo(uas), onGroup);
  CHECK(second->ep.port != 0);
  lync.send(makeRequest("MESSAGE", "sip:bob@remote.test", lync, "n2"), second->ep);
  uas.expect("MESSAGE").reply(200);
  lync.expect(200);
  second.reset();  // destroyed while running: stop and teardown on the loop
  CHECK(group.running());
}
