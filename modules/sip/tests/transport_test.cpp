// UDP/TCP transports and the event loop, over loopback (RFC 3261 §18,
// RFC 5626 keep-alives).
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <future>
#include <thread>

#include "transport_test_util.h"

using namespace imp::sip;
using namespace imp::net;
using namespace imp::sip::testing;

namespace {

ListenerConfig on(Transport t) { return ListenerConfig{.transport = t, .address = "127.0.0.1"}; }

}  // namespace

TEST_CASE("event loop: timers fire in order, cancel is a no-op afterwards, post wakes from another thread") {
  EventLoop loop;
  std::vector<int> fired;
  loop.schedule(30ms, [&] { fired.push_back(3); });
  loop.schedule(10ms, [&] { fired.push_back(1); });
  TimerId cancelled = loop.schedule(20ms, [&] { fired.push_back(99); });
  loop.schedule(20ms, [&] { fired.push_back(2); });
  loop.cancel(cancelled);
  CHECK(loop.runUntil([&] { return fired.size() == 3; }, kDeadline));
  CHECK(fired == std::vector<int>{1, 2, 3});
  loop.cancel(cancelled);  // already cancelled: no-op
  CHECK(loop.timerCount() == 0);

  std::atomic<bool> ran{false};
  std::thread poster([&] { loop.post([&] { ran = true; }); });
  CHECK(loop.runUntil([&] { return ran.load(); }, kDeadline));
  poster.join();

  // run() on its own thread, stopped from here.
  std::promise<std::thread::id> where;
  std::thread runner([&] { loop.run(); });
  loop.post([&] { where.set_value(std::this_thread::get_id()); });
  auto f = where.get_future();
  REQUIRE(f.wait_for(kDeadline) == std::future_status::ready);
  CHECK(f.get() == runner.get_id());
  loop.stop();
  runner.join();
}

TEST_CASE("UDP: request and response between two transport layers") {
  EventLoop loop;
  TransportLayer a(loop), b(loop);
  Endpoint ea = a.listen(on(Transport::Udp));
  Endpoint eb = b.listen(on(Transport::Udp));
  CHECK(ea.port != 0);
  CHECK(eb.port != 0);
  CHECK(b.localEndpoint(Transport::Udp) == eb);

  Inbox atB, atA;
  atA.attach(a);
  b.setMessageHandler([&](Message m, const Source& s) {
    atB.sources.push_back(s);
    b.send(responseTo(m, 200, "OK"), s.remote);
    atB.messages.push_back(std::move(m));
  });
  ErrorLog errs;
  a.send(parse(request("OPTIONS", Transport::Udp, "udp-1")), eb, errs.handler());
  REQUIRE(loop.runUntil([&] { return !atA.messages.empty(); }, kDeadline));
  CHECK(errs.errors.empty());
  REQUIRE(atB.messages.size() == 1);
  CHECK(atB.messages[0].method() == "OPTIONS");
  CHECK(atB.sources[0].remote.port == ea.port);  // sent from the listener socket (§18.1.1)
  CHECK(atB.sources[0].local == eb);
  CHECK(atB.sources[0].connectionId == 0);
  CHECK(atA.messages[0].statusCode() == 200);
  CHECK(atA.messages[0].callId() == "udp-1");
  CHECK(a.stats().messagesOut == 1);
  CHECK(b.stats().messagesIn == 1);
}

TEST_CASE("UDP: a malformed request is answered 400 with the reason, a datagram of CRLFs is ignored") {
  EventLoop loop;
  TransportLayer server(loop), client(loop);
  Endpoint es = server.listen(on(Transport::Udp));
  client.listen(on(Transport::Udp));
  Inbox atServer, atClient;
  atServer.attach(server);
  atClient.attach(client);
  std::string bad = request("OPTIONS", Transport::Udp, "udp-bad");
  bad.replace(bad.find("Max-Forwards: 70"), 16, "Max-Forwards: xy");
  client.sendBytes("\r\n\r\n", es);
  client.sendBytes(bad, es);
  REQUIRE(loop.runUntil([&] { return !atClient.messages.empty(); }, kDeadline));
  CHECK(atServer.messages.empty());
  REQUIRE(atServer.parseErrors.size() == 1);
  CHECK(atClient.messages[0].statusCode() == 400);
  CHECK(atClient.messages[0].reason() == "Malformed Max-Forwards");
  CHECK(atClient.messages[0].callId() == "udp-bad");
  CHECK(atClient.messages[0].to()->tag() != "");
  CHECK(server.stats().keepAlivePings == 1);
  CHECK(server.stats().errorResponsesSent == 1);
}

TEST_CASE("TCP: two messages in one write and one message split across many writes are framed") {
  EventLoop loop;
  TransportLayer server(loop);
  Endpoint es = server.listen(on(Transport::Tcp));
  Inbox in;
  in.attach(server);
  RawPeer peer(loop, es);
  REQUIRE(peer.connected());

  SUBCASE("two in one write") {
    peer.write(request("OPTIONS", Transport::Tcp, "two-1") + request("MESSAGE", Transport::Tcp, "two-2", "hello"));
    REQUIRE(loop.runUntil([&] { return in.messages.size() == 2; }, kDeadline));
    CHECK(in.messages[0].callId() == "two-1");
    CHECK(in.messages[1].callId() == "two-2");
    CHECK(in.messages[1].body() == "hello");
  }
  SUBCASE("one split across many writes") {
    std::string msg = request("MESSAGE", Transport::Tcp, "split-1", "a body split in pieces");
    for (std::size_t i = 0; i < msg.size(); i += 7) {
      peer.write(std::string_view(msg).substr(i, 7));
      auto want = std::min(msg.size(), i + 7);
      // The server sees every piece before the next is written.
      REQUIRE(loop.runUntil([&] { return server.stats().bytesIn >= want; }, kDeadline));
      if (want < msg.size()) CHECK(in.messages.empty());
    }
    REQUIRE(loop.runUntil([&] { return in.messages.size() == 1; }, kDeadline));
    CHECK(in.messages[0].body() == "a body split in pieces");
  }
  CHECK(in.sources.back().remote.transport == Transport::Tcp);
  CHECK(in.sources.back().connectionId != 0);
  CHECK(server.stats().parseErrors == 0);
}

TEST_CASE("TCP: sends to the same peer reuse one connection, responses come back on it") {
  EventLoop loop;
  TransportLayer client(loop), server(loop);
  Endpoint es = server.listen(on(Transport::Tcp));
  Inbox atServer, atClient;
  atClient.attach(client);
  server.setMessageHandler([&](Message m, const Source& s) {
    atServer.sources.push_back(s);
    server.send(responseTo(m, 200, "OK"), s.remote);  // §18.2.2: back on the same connection
    atServer.messages.push_back(std::move(m));
  });
  ErrorLog errs;
  client.send(parse(request("OPTIONS", Transport::Tcp, "reuse-1")), es, errs.handler());
  client.send(parse(request("OPTIONS", Transport::Tcp, "reuse-2")), es, errs.handler());  // while connecting
  REQUIRE(loop.runUntil([&] { return atClient.messages.size() == 2; }, kDeadline));
  std::uint64_t first = client.connectionTo(es);
  CHECK(first != 0);
  client.send(parse(request("OPTIONS", Transport::Tcp, "reuse-3")), es, errs.handler());
  REQUIRE(loop.runUntil([&] { return atClient.messages.size() == 3; }, kDeadline));

  CHECK(errs.errors.empty());
  CHECK(client.connectionTo(es) == first);
  REQUIRE(atServer.sources.size() == 3);
  CHECK(atServer.sources[0].connectionId == atServer.sources[1].connectionId);
  CHECK(atServer.sources[1].connectionId == atServer.sources[2].connectionId);
  CHECK(atClient.sources[0].connectionId == first);
  CHECK(atClient.sources[2].connectionId == first);
  CHECK(client.stats().connectionsOpened == 1);
  CHECK(server.stats().connectionsAccepted == 1);
  CHECK(server.stats().connectionsActive == 1);
}

TEST_CASE("TCP over IPv6 loopback, with the address written non-canonically") {
  EventLoop loop;
  TransportLayer client(loop), server(loop);
  Endpoint es;
  try {
    es = server.listen(ListenerConfig{.transport = Transport::Tcp, .address = "::1"});
  } catch (const std::runtime_error& e) {
    MESSAGE("no IPv6 loopback here, skipped: " << e.what());
    return;
  }
  CHECK(es.address == "::1");
  Inbox atServer, atClient;
  atClient.attach(client);
  server.setMessageHandler([&](Message m, const Source& s) {
    atServer.sources.push_back(s);
    server.send(responseTo(m, 200, "OK"), s.remote);
  });
  Endpoint longForm{"0:0:0:0:0:0:0:1", es.port, Transport::Tcp};
  client.send(parse(request("OPTIONS", Transport::Tcp, "v6-1")), longForm);
  REQUIRE(loop.runUntil([&] { return atClient.messages.size() == 1; }, kDeadline));
  client.send(parse(request("OPTIONS", Transport::Tcp, "v6-2")), es);  // same peer, canonical spelling
  REQUIRE(loop.runUntil([&] { return atClient.messages.size() == 2; }, kDeadline));
  CHECK(atServer.sources[0].remote.address == "::1");
  CHECK(atClient.sources[0].remote.toString() == "TCP [::1]:" + std::to_string(es.port));
  CHECK(client.stats().connectionsOpened == 1);
  CHECK(client.connectionTo(longForm) == client.connectionTo(es));
}

TEST_CASE("TCP: a refused connection is reported as ConnectionRefused within milliseconds") {
  EventLoop loop;
  TransportLayer client(loop);
  Endpoint dead{"127.0.0.1", closedPort(), Transport::Tcp};
  ErrorLog errs;
  auto start = Clock::now();
  client.send(parse(request("OPTIONS", Transport::Tcp, "refused")), dead, errs.handler());
  REQUIRE(loop.runUntil([&] { return !errs.errors.empty(); }, kDeadline));
  auto elapsed = Clock::now() - start;
  CHECK(errs.errors[0].kind == TransportErrorKind::ConnectionRefused);
  CHECK(elapsed < 500ms);
  CHECK(client.connectionTo(dead) == 0);
  CHECK(client.stats().connectFailures == 1);
  CHECK(client.stats().connectionsActive == 0);
}

TEST_CASE("TCP: a connect nobody answers fails with ConnectTimeout") {
  // A listener whose accept queue is full: Linux drops further SYNs, so the
  // connect neither succeeds nor fails until our timer fires.
  int full = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(full, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(full, 0) == 0);
  socklen_t len = sizeof a;
  ::getsockname(full, reinterpret_cast<sockaddr*>(&a), &len);
  Endpoint ep{"127.0.0.1", ntohs(a.sin_port), Transport::Tcp};
  int filler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(::connect(filler, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);

  EventLoop loop;
  TransportConfig cfg;
  cfg.connectTimeout = 200ms;
  TransportLayer client(loop, cfg);
  ErrorLog errs;
  auto start = Clock::now();
  client.send(parse(request("OPTIONS", Transport::Tcp, "timeout")), ep, errs.handler());
  REQUIRE(loop.runUntil([&] { return !errs.errors.empty(); }, kDeadline));
  CHECK(errs.errors[0].kind == TransportErrorKind::ConnectTimeout);
  CHECK(Clock::now() - start >= 200ms);
  CHECK(client.stats().connectionsActive == 0);
  ::close(filler);
  ::close(full);
}

TEST_CASE("send errors: too large, not an IP literal, no TLS client context") {
  EventLoop loop;
  TransportConfig cfg;
  cfg.limits.maxMessageSize = 2000;
  TransportLayer client(loop, cfg);
  ErrorLog errs;
  client.send(parse(request("MESSAGE", Transport::Tcp, "big", std::string(3000, 'x'))),
              Endpoint{"127.0.0.1", 5060, Transport::Tcp}, errs.handler());
  client.send(parse(request("OPTIONS", Transport::Tcp, "dns")), Endpoint{"proxy.test", 5060, Transport::Tcp},
              errs.handler());
  client.send(parse(request("OPTIONS", Transport::Tls, "tls")), Endpoint{"127.0.0.1", 5061, Transport::Tls},
              errs.handler());
  CHECK(errs.errors.empty());  // never called from inside send()
  REQUIRE(loop.runUntil([&] { return errs.errors.size() == 3; }, kDeadline));
  CHECK(errs.errors[0].kind == TransportErrorKind::MessageTooLarge);
  CHECK(errs.errors[1].kind == TransportErrorKind::NoRoute);
  CHECK(errs.errors[2].kind == TransportErrorKind::Other);
  CHECK(errs.errors[2].detail.find("TLS") != std::string::npos);
}

TEST_CASE("TCP: a peer that accepts but never reads does not hold up other sends, and idles out") {
  EventLoop loop;
  // The stuck peer: the kernel completes the handshake, nobody ever reads.
  int stuck = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int small = 4096;  // a small window keeps the kernel from absorbing the queue
  ::setsockopt(stuck, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  REQUIRE(::bind(stuck, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(stuck, 8) == 0);
  socklen_t len = sizeof a;
  ::getsockname(stuck, reinterpret_cast<sockaddr*>(&a), &len);
  Endpoint stuckEp{"127.0.0.1", ntohs(a.sin_port), Transport::Tcp};

  TransportConfig cfg;
  cfg.maxSendQueue = 256 * 1024;
  cfg.idleTimeout = 1500ms;
  TransportLayer client(loop, cfg), good(loop);
  Endpoint eg = good.listen(on(Transport::Tcp));
  Inbox atGood;
  atGood.attach(good);

  ErrorLog stuckErrs;
  std::string body(60000, 'x');
  // Far more than the socket buffers hold: the queue fills and says so.
  for (int i = 0; i < 200 && stuckErrs.errors.empty(); ++i) {
    client.send(parse(request("MESSAGE", Transport::Tcp, "stuck-" + std::to_string(i), body)), stuckEp,
                stuckErrs.handler());
    loop.runUntil([] { return false; }, 0ms);  // let the loop move bytes
  }
  ErrorLog goodErrs;
  auto start = Clock::now();
  client.send(parse(request("OPTIONS", Transport::Tcp, "good")), eg, goodErrs.handler());
  REQUIRE(loop.runUntil([&] { return !atGood.messages.empty(); }, kDeadline));
  CHECK(Clock::now() - start < 1s);
  CHECK(goodErrs.errors.empty());
  REQUIRE(!stuckErrs.errors.empty());
  CHECK(stuckErrs.errors[0].kind == TransportErrorKind::Other);
  CHECK(stuckErrs.errors[0].detail.find("full") != std::string::npos);

  // Nothing moves on the stuck connection: the idle timeout closes it and
  // the messages still queued are reported as not delivered.
  std::size_t before = stuckErrs.errors.size();
  REQUIRE(loop.runUntil([&] { return client.stats().idleClosed >= 1; }, kDeadline));
  REQUIRE(loop.runUntil([&] { return stuckErrs.errors.size() > before; }, kDeadline));
  CHECK(stuckErrs.errors.back().kind == TransportErrorKind::ConnectionClosed);
  CHECK(client.connectionTo(stuckEp) == 0);
  ::close(stuck);
}

TEST_CASE("TCP: a malformed request gets 400 with the reason and the connection goes on") {
  EventLoop loop;
  TransportLayer server(loop);
  Endpoint es = server.listen(on(Transport::Tcp));
  Inbox in;
  in.attach(server);
  RawPeer peer(loop, es);
  std::string bad = request("OPTIONS", Transport::Tcp, "bad-1");
  bad.replace(bad.find("Max-Forwards: 70"), 16, "Max-Forwards: xy");
  peer.write(bad);
  REQUIRE(loop.runUntil([&] { return peer.received().find("\r\n\r\n") != std::string::npos; }, kDeadline));
  CHECK(peer.received().starts_with("SIP/2.0 400 Malformed Max-Forwards\r\n"));
  CHECK(peer.received().find("Call-ID: bad-1\r\n") != std::string::npos);
  CHECK(peer.received().find("CSeq: 1 OPTIONS\r\n") != std::string::npos);
  CHECK(peer.received().find("Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-bad-1\r\n") != std::string::npos);
  CHECK(in.parseErrors.size() == 1);
  CHECK(in.messages.empty());

  peer.write(request("OPTIONS", Transport::Tcp, "good-after"));
  REQUIRE(loop.runUntil([&] { return in.messages.size() == 1; }, kDeadline));
  CHECK(in.messages[0].callId() == "good-after");
  CHECK_FALSE(peer.closed());
  CHECK(server.stats().parseErrors == 1);
  CHECK(server.stats().errorResponsesSent == 1);
}

TEST_CASE("TCP: unframeable input closes the connection") {
  EventLoop loop;
  TransportLayer server(loop);
  Endpoint es = server.listen(on(Transport::Tcp));
  Inbox in;
  in.attach(server);
  RawPeer peer(loop, es);

  SUBCASE("header flood") {
    std::string flood = "OPTIONS sip:proxy.test SIP/2.0\r\n";
    for (int i = 0; i < 1000; ++i) flood += "X-Flood-" + std::to_string(i) + ": a\r\n";
    peer.write(flood);  // never ends its head
    REQUIRE(loop.runUntil([&] { return peer.closed(); }, kDeadline));
    CHECK(peer.received().empty());  // no Via/From/...: nothing to answer
    REQUIRE(in.parseErrors.size() == 1);
    CHECK(in.parseErrors[0].reason.find("header") != std::string::npos);
  }
  SUBCASE("oversized message") {
    std::string head = request("MESSAGE", Transport::Tcp, "huge", "");
    head.replace(head.find("Content-Length: 0"), 17, "Content-Length: 200000");
    peer.write(head);
    peer.write(std::string(100000, 'x'));
    REQUIRE(loop.runUntil([&] { return peer.closed(); }, kDeadline));
    CHECK(peer.received().starts_with("SIP/2.0 513 "));
    CHECK(peer.received().find("Call-ID: huge\r\n") != std::string::npos);
  }
  SUBCASE("missing Content-Length") {
    std::string msg = request("OPTIONS", Transport::Tcp, "nocl");
    msg.erase(msg.find("Content-Length: 0\r\n"), 19);
    peer.write(msg);
    REQUIRE(loop.runUntil([&] { return peer.closed(); }, kDeadline));
    CHECK(peer.received().starts_with("SIP/2.0 400 Content-Length required"));
  }
  CHECK(in.messages.empty());
  CHECK(server.stats().unframeableStreams == 1);
  REQUIRE(loop.runUntil([&] { return server.stats().connectionsActive == 0; }, kDeadline));
}

TEST_CASE("TCP: a CRLFCRLF ping gets a CRLF pong (RFC 5626)") {
  EventLoop loop;
  TransportLayer server(loop);
  Endpoint es = server.listen(on(Transport::Tcp));
  Inbox in;
  in.attach(server);
  RawPeer peer(loop, es);
  peer.write("\r\n\r\n");
  REQUIRE(loop.runUntil([&] { return !peer.received().empty(); }, kDeadline));
  CHECK(peer.received() == "\r\n");
  CHECK(server.stats().keepAlivePings == 1);
  // The stream is still framed after the ping.
  peer.write(request("OPTIONS", Transport::Tcp, "after-ping"));
  REQUIRE(loop.runUntil([&] { return in.messages.size() == 1; }, kDeadline));
  CHECK(in.parseErrors.empty());
}

TEST_CASE("send from another thread while the loop runs on its own") {
  EventLoop loop;
  TransportLayer client(loop), server(loop);
  Endpoint es = server.listen(on(Transport::Tcp));
  std::promise<std::string> got;
  server.setMessageHandler([&](Message m, const Source&) { got.set_value(std::string(*m.callId())); });
  std::thread runner([&] { loop.run(); });
  client.send(parse(request("OPTIONS", Transport::Tcp, "cross-thread")), es);
  auto f = got.get_future();
  bool ready = f.wait_for(kDeadline) == std::future_status::ready;
  loop.stop();
  runner.join();
  REQUIRE(ready);
  CHECK(f.get() == "cross-thread");
}

TEST_CASE("listen: a port in use is a precise error, SO_REUSEPORT shares one") {
  EventLoop loop;
  TransportLayer a(loop), b(loop);
  Endpoint ea = a.listen(on(Transport::Tcp));
  ListenerConfig again = on(Transport::Tcp);
  again.port = ea.port;
  CHECK_THROWS_WITH_AS(b.listen(again), doctest::Contains("bind"), std::runtime_error);
  // Several loops can share one port (one TransportLayer per loop).
  EventLoop loop2;
  TransportLayer c(loop), d(loop2);
  ListenerConfig shared = on(Transport::Tcp);
  shared.reusePort = true;
  Endpoint ec = c.listen(shared);
  shared.port = ec.port;
  CHECK(d.listen(shared).port == ec.port);
  ListenerConfig tlsNoCtx = on(Transport::Tls);
  CHECK_THROWS_WITH_AS(b.listen(tlsNoCtx), doctest::Contains("TLS context"), std::runtime_error);
}

TEST_CASE("errorResponseFor copies the identity headers and never answers ACK or responses") {
  std::string req = request("INVITE", Transport::Udp, "er-1");
  auto r = errorResponseFor(req, 400, "Bad\r\nInjected: yes");
  REQUIRE(r);
  CHECK(r->starts_with("SIP/2.0 400 Bad  Injected: yes\r\n"));
  CHECK(r->find("\r\nInjected:") == std::string::npos);
  CHECK_FALSE(errorResponseFor(request("ACK", Transport::Udp, "er-2"), 400, "x"));
  CHECK_FALSE(errorResponseFor("SIP/2.0 200 OK\r\nVia: x\r\n\r\n", 400, "x"));
  std::string why;
  CHECK_FALSE(errorResponseFor("OPTIONS sip:a SIP/2.0\r\nFrom: <sip:b@c>\r\n\r\n", 400, "x", &why));
  CHECK(why.find("Via") != std::string::npos);
  // RFC 4475 §3.3.1: no From, To or Call-ID, yet the Via routes a 400 back.
  auto partial = errorResponseFor("OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKp\r\nCSeq: 1 OPTIONS\r\n\r\n",
                                  400, "Missing Call-ID");
  REQUIRE(partial);
  CHECK(partial->starts_with("SIP/2.0 400 Missing Call-ID\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKp\r\nCSeq: 1 OPTIONS\r\n"));
}

// The 400/505 for a bad Request-Line reaches the sender on every transport
// (RFC 4475 §3.1.2.7, §3.1.2.8, §3.1.2.16): the start line fails before the
// headers are read, yet the headers needed for the answer are there.
TEST_CASE("a request with a bad Request-Line is answered on its connection or to its address") {
  struct Case {
    const char* from;
    const char* to;
    const char* status;
  };
  for (Case k : {Case{"OPTIONS sip:proxy.test SIP/2.0", "OPTIONS <sip:proxy.test> SIP/2.0", "SIP/2.0 400 Malformed Request-URI"},
                 Case{"OPTIONS sip:proxy.test SIP/2.0", "OPTIONS sip:proxy.test SIP/7.0", "SIP/2.0 505 Version Not Supported"}}) {
    CAPTURE(k.to);
    EventLoop loop;
    TransportLayer server(loop);
    Inbox in;
    in.attach(server);
    std::string bad = request("OPTIONS", Transport::Tcp, "rl-tcp");
    REQUIRE(bad.starts_with(k.from));
    bad.replace(0, std::strlen(k.from), k.to);
    SUBCASE("TCP") {
      Endpoint es = server.listen(on(Transport::Tcp));
      RawPeer peer(loop, es);
      peer.write(bad);
      REQUIRE(loop.runUntil([&] { return peer.received().find("\r\n\r\n") != std::string::npos; }, kDeadline));
      CHECK(peer.received().starts_with(k.status));
      CHECK(peer.received().find("Call-ID: rl-tcp\r\n") != std::string::npos);
      CHECK_FALSE(peer.closed());  // framed: the stream goes on
    }
    SUBCASE("UDP") {
      Endpoint es = server.listen(on(Transport::Udp));
      TransportLayer client(loop);
      client.listen(on(Transport::Udp));
      Inbox atClient;
      atClient.attach(client);
      std::string dgram = bad;
      dgram.replace(dgram.find("SIP/2.0/TCP"), 11, "SIP/2.0/UDP");
      client.sendBytes(dgram, es);
      REQUIRE(loop.runUntil([&] { return !atClient.messages.empty(); }, kDeadline));
      CHECK((std::string("SIP/2.0 ") + std::to_string(atClient.messages[0].statusCode()) + " " +
             std::string(atClient.messages[0].reason()))
                .starts_with(k.status));
      CHECK(atClient.messages[0].callId() == "rl-tcp");
    }
    CHECK(in.messages.empty());
    CHECK(server.stats().errorResponsesSent == 1);
    CHECK(server.stats().errorResponsesUnsent == 0);
  }
}

TEST_CASE("bad input that cannot be answered is counted; malformed responses are dropped") {
  EventLoop loop;
  TransportLayer server(loop), client(loop);
  Endpoint es = server.listen(on(Transport::Udp));
  client.listen(on(Transport::Udp));
  Inbox in;
  in.attach(server);
  client.sendBytes("OPTIONS sip:a@b SIP/2.0\r\nFrom: <sip:c@d>;tag=1\r\nContent-Length: x\r\n\r\n", es);
  client.sendBytes("SIP/2.0 9999 Huge\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKr\r\n\r\n", es);
  REQUIRE(loop.runUntil([&] { return in.parseErrors.size() == 2; }, kDeadline));
  CHECK(server.stats().errorResponsesUnsent == 1);
  CHECK(server.stats().malformedResponsesDropped == 1);
  CHECK(server.stats().errorResponsesSent == 0);
}
