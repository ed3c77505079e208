#pragma once
// Call flows for the proxy tests, written as ladders (issue 15, deliverable 5):
//
//   lync.send(makeRequest("MESSAGE", "sip:bob@remote.test", lync, "m1"), rig.ep);
//   uas.expect("MESSAGE").reply(200);
//   lync.expect(200);
//
// A Peer is a SIP endpoint on the test's event loop (real sockets on
// 127.0.0.1). expect() drives the loop until the next message the peer has
// not yet expected arrives (within kDeadline, else the test fails) and
// checks it is the request or the response named: the ladder is read in
// order, and a step that does not happen fails the test. 100 Trying is
// stepped over unless it is what is expected. Peers may still answer on
// their own through onMessage (answerAll, ringForever) for tests that do not
// read as a ladder.
//
// The Rig is the proxy under test with its log captured. By default it runs
// its own loop thread; Rig::onLoop() gives it the test's loop and a manual
// clock instead (ProxyConfig::loop / timers), so hop timeouts, timer C,
// probes and ban expiry happen when the test advances the clock.
#include <doctest/doctest.h>
#include <imp/core/dns.h>
#include <imp/core/logging.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "imp/net/event_loop.h"
#include "imp/net/timers.h"
#include "imp/sip/transactions.h"
#include "imp/sip/transport.h"
#include "imp/sip_proxy/proxy.h"

namespace imp::sip_proxy::testing {

namespace sip = imp::sip;
namespace net = imp::net;
namespace sp = imp::sip_proxy;
using namespace std::chrono_literals;

inline constexpr auto kDeadline = 5s;

// A TCP port nothing listens on (bound and closed again).
inline std::uint16_t closedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class FakeResolver : public imp::core::Resolver {
 public:
  ~FakeResolver() override {
    for (auto& t : slow) t.join();
  }
  std::map<std::string, std::string> ptr;
  std::chrono::milliseconds delay{0};  // > 0: answer PTR lookups from another thread, late
  std::vector<std::thread> slow;
  void reverse(const std::string& ip, imp::core::ReverseCallback cb) override {
    auto it = ptr.find(ip);
    auto answer = it == ptr.end() ? std::nullopt : std::optional<std::string>(it->second);
    if (delay.count() > 0) {
      slow.emplace_back([d = delay, cb = std::move(cb), answer] {
        std::this_thread::sleep_for(d);  // the slow DNS server being simulated
        cb(answer);
      });
      return;
    }
    cb(answer);
  }
  void forward(const std::string& host, imp::core::ForwardCallback cb) override {
    if (sp::canonicalIp(host))
      cb({host});
    else
      cb({});
  }
  // The proxy asks no SRV or NAPTR records (yet): the names have none.
  void srv(const std::string&, imp::core::SrvCallback cb) override { cb({imp::core::DnsStatus::NxDomain, {}, {}}); }
  void naptr(const std::string&, imp::core::NaptrCallback cb) override { cb({imp::core::DnsStatus::NxDomain, {}, {}}); }
};

class FakeDirectory : public sp::DirectoryLookup {
 public:
  bool isLocalDomain(const std::string& d) override { return d == "example.com"; }
  std::optional<std::string> licensedUserHome(const std::string&) override { return std::nullopt; }
  bool hasMicrosoftSipUri(const std::string&) override { return false; }
};

inline sip::Message responseTo(const sip::Message& req, int status, std::string_view reason, bool tag = true) {
  sip::Message r = sip::Message::response(status, reason);
  for (const auto& h : req.headers()) {
    if (h.id == sip::HeaderId::To && tag)
      r.appendHeader("To", std::string(h.value) + ";tag=uas1");
    else if (h.id == sip::HeaderId::Via || h.id == sip::HeaderId::From || h.id == sip::HeaderId::To ||
             h.id == sip::HeaderId::CallId || h.id == sip::HeaderId::CSeq || h.id == sip::HeaderId::RecordRoute)
      r.appendHeader(sip::canonicalName(h.id), h.value);
  }
  return r;
}

inline std::string_view reasonFor(int status) {
  switch (status) {
    case 100: return "Trying";
    case 180: return "Ringing";
    case 200: return "OK";
    case 408: return "Request Timeout";
    case 487: return "Request Terminated";
    case 503: return "Service Unavailable";
    default: return "Response";
  }
}

struct Peer;

// One received message in a ladder; reply() answers it from its peer.
struct Step {
  Peer& peer;
  sip::Message msg;
  sip::Source source;
  // Sends `status` back to where the request came from (To tag "uas1", a
  // Contact for 2xx). Returns *this so a step can answer twice (180, 200).
  Step& reply(int status, std::string_view extraHeader = {}, std::string_view value = {});
};

// A SIP peer on the test loop: records what it receives; `onMessage` may answer.
struct Peer {
  explicit Peer(net::EventLoop& l, sip::Transport transport = sip::Transport::Tcp) : loop(l), tl(l) {
    tl.setMessageHandler([this](sip::Message m, const sip::Source& s) {
      got.push_back(std::move(m));
      sources.push_back(s);
      if (onMessage) onMessage(got.back(), s);
    });
    sip::ListenerConfig lc;
    lc.transport = transport;
    lc.address = "127.0.0.1";
    ep = tl.listen(lc);
  }
  std::vector<sip::Message> requests() const {
    std::vector<sip::Message> r;
    for (const auto& m : got)
      if (m.isRequest()) r.push_back(m);
    return r;
  }
  std::vector<sip::Message> finals() const {
    std::vector<sip::Message> r;
    for (const auto& m : got)
      if (m.isResponse() && m.statusCode() >= 200) r.push_back(m);
    return r;
  }

  // ---- ladder ----
  Peer& send(const sip::Message& m, const sip::Endpoint& to) {
    tl.send(m, to);
    return *this;
  }
  // The next request not yet expected; it must be `method`.
  Step expect(std::string_view method) {
    auto i = next([](const sip::Message&) { return false; });
    REQUIRE_MESSAGE(got[i].isRequest(), "expected a " << method << " request, got a " << got[i].statusCode());
    REQUIRE(got[i].method() == method);
    return Step{*this, got[i], sources[i]};
  }
  // The next response not yet expected (100 stepped over unless asked for);
  // it must have `status`.
  Step expect(int status) {
    auto i = next([status](const sip::Message& m) { return status != 100 && m.isResponse() && m.statusCode() == 100; });
    REQUIRE_MESSAGE(got[i].isResponse(), "expected a " << status << " response, got a " << got[i].method() << " request");
    REQUIRE(got[i].statusCode() == status);
    return Step{*this, got[i], sources[i]};
  }
  // Nothing received that was not expected yet.
  bool idle() const { return expected == got.size(); }

  net::EventLoop& loop;
  sip::TransportLayer tl;
  sip::Endpoint ep;
  std::vector<sip::Message> got;
  std::vector<sip::Source> sources;  // parallel to got
  std::size_t expected = 0;          // got[0..expected) were read by expect()
  std::function<void(const sip::Message&, const sip::Source&)> onMessage;

 private:
  template <class Skip>
  std::size_t next(Skip skip) {
    for (;;) {
      REQUIRE(loop.runUntil([&] { return got.size() > expected; }, kDeadline));
      std::size_t i = expected++;
      if (!skip(got[i])) return i;
    }
  }
};

inline Step& Step::reply(int status, std::string_view extraHeader, std::string_view value) {
  auto r = responseTo(msg, status, reasonFor(status));
  if (status >= 200 && status < 300)
    r.appendHeader("Contact", "<sip:uas@127.0.0.1:" + std::to_string(peer.ep.port) + ";transport=tcp>");
  if (!extraHeader.empty()) r.appendHeader(extraHeader, value);
  peer.tl.send(r, source.remote);
  return *this;
}

// A UAS answering every request but ACK with `status`.
inline void answerAll(Peer& p, int status = 200) {
  p.onMessage = [&p, status](const sip::Message& m, const sip::Source& s) {
    if (m.isRequest() && m.method() != "ACK") {
      auto r = responseTo(m, status, status == 200 ? "OK" : "Service Unavailable");
      r.appendHeader("Contact", "<sip:uas@127.0.0.1:" + std::to_string(p.ep.port) + ";transport=tcp>");
      p.tl.send(r, s.remote);
    }
  };
}

inline sip::Message parsedText(const std::string& text) {
  auto r = sip::Parser().parseDatagram(text);
  REQUIRE(std::holds_alternative<sip::Message>(r));
  return std::get<sip::Message>(std::move(r));
}

inline sip::Message makeRequest(std::string_view method, std::string_view uri, const Peer& from, std::string_view callId,
                                std::string_view extra = {}, std::string_view maxForwards = "70") {
  std::string s = std::string(method) + " " + std::string(uri) + " SIP/2.0\r\n";
  s += "Via: SIP/2.0/TCP 127.0.0.1:" + std::to_string(from.ep.port) + ";branch=z9hG4bK-" + std::string(callId) + "\r\n";
  if (!maxForwards.empty()) s += "Max-Forwards: " + std::string(maxForwards) + "\r\n";
  s += "From: <sip:alice@imp.test>;tag=a1\r\n";
  s += "To: <" + std::string(uri) + ">\r\n";
  s += "Call-ID: " + std::string(callId) + "\r\n";
  s += "CSeq: 1 " + std::string(method) + "\r\n";
  s += extra;
  s += "Content-Length: 2\r\n\r\nhi";
  return parsedText(s);
}

// The ACK for a 2xx: Route = its Record-Route, Request-URI = its Contact.
inline sip::Message ackFor(const sip::Message& ok, const Peer& from, std::string_view callId) {
  auto contact = ok.contacts();
  REQUIRE(contact.size() == 1);
  std::string s = "ACK " + std::string(contact.front().uri) + " SIP/2.0\r\n";
  s += "Via: SIP/2.0/TCP 127.0.0.1:" + std::to_string(from.ep.port) + ";branch=z9hG4bK-ack-" + std::string(callId) + "\r\n";
  s += "Max-Forwards: 70\r\nFrom: <sip:alice@imp.test>;tag=a1\r\nTo: <sip:bob@remote.test>;tag=uas1\r\n";
  s += "Call-ID: " + std::string(callId) + "\r\nCSeq: 1 ACK\r\n";
  for (const auto& rr : ok.recordRoutes()) s += "Route: " + std::string(rr.raw) + "\r\n";
  s += "Content-Length: 0\r\n\r\n";
  return parsedText(s);
}

inline sp::StaticRoute route(const std::string& pattern, std::uint16_t port, int priority) {
  sp::StaticRoute r;
  std::string canon;
  REQUIRE(sp::normaliseRoutePattern(sp::RouteType::Domain, pattern, &canon) == "");
  r.id = priority;
  r.pattern = canon;
  r.type = sp::RouteType::Domain;
  r.nextHop = "127.0.0.1";
  r.port = port;
  r.transport = sp::Transport::Tcp;
  r.priority = priority;
  return r;
}

inline std::vector<sp::AclEntry> allowAll() { return {sp::AclEntry{"all", sp::AclKind::All, "Allow from all"}}; }

// The proxy under test with its log captured.
struct Rig {
  // Gives the proxy the test's loop and a manual clock (see the top).
  struct OnLoop {
    net::EventLoop& loop;
    net::ManualTimers& timers;
  };

  explicit Rig(sp::ProxyPolicy policy, std::function<void(sp::ProxyConfig&)> tweak = {},
               std::optional<OnLoop> onLoop = std::nullopt) {
    sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(200);
    auto log = std::make_shared<spdlog::logger>("sip-proxy-test", sink);
    log->set_level(spdlog::level::debug);
    flags = std::make_shared<imp::core::TraceFlags>();
    flags->replace({"routing", "method-event-routing"});
    resolver = std::make_shared<FakeResolver>();
    sp::ProxyConfig cfg;
    cfg.nodeId = "imp";
    cfg.listeners.push_back({sip::Transport::Tcp, "127.0.0.1", 0, nullptr, {}});
    cfg.resolver = resolver;
    cfg.log = log;
    cfg.traceFlags = flags;
    cfg.connectTimeout = 2000ms;
    if (onLoop) {
      cfg.loop = &onLoop->loop;
      cfg.timers = &onLoop->timers;
    }
    if (tweak) tweak(cfg);
    proxy = std::make_unique<sp::Proxy>(std::move(cfg), std::move(policy));
    proxy->start();
    ep = proxy->endpoints().at(0);
  }
  ~Rig() { proxy.reset(); }  // the proxy thread stops before the peers go
  bool logged(std::string_view text) const {
    for (const auto& l : sink->last_formatted())
      if (l.find(text) != std::string::npos) return true;
    return false;
  }
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink;
  std::shared_ptr<imp::core::TraceFlags> flags;
  std::shared_ptr<FakeResolver> resolver;
  std::unique_ptr<sp::Proxy> proxy;
  sip::Endpoint ep;
};

// Runs f on the test's loop (for the proxy's loop-thread calls, bans() or
// updatePolicy(), when the proxy runs on that loop) and returns its result.
template <class F>
auto onTestLoop(net::EventLoop& loop, F f) -> decltype(f()) {
  std::optional<decltype(f())> r;
  loop.post([&] { r.emplace(f()); });
  REQUIRE(loop.runUntil([&] { return r.has_value(); }, kDeadline));
  return std::move(*r);
}

// Sends `req` from `uac` through the proxy and waits for a final response.
inline sip::Message roundTrip(net::EventLoop& loop, Peer& uac, const Rig& rig, const sip::Message& req) {
  uac.tl.send(req, rig.ep);
  REQUIRE(loop.runUntil([&] { return !uac.finals().empty(); }, kDeadline));
  return uac.finals().front();
}

}  // namespace imp::sip_proxy::testing
