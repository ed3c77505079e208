// Streams, STARTTLS, acceptors, connectors and UDP sockets of modules/net
// (issue 15, deliverable 1) on loopback. Every wait is on an event
// (runUntil); the test PKI is generated here with the OpenSSL API.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fakes/test_pki.h>

#include "imp/net/event_loop.h"
#include "imp/net/socket_address.h"
#include "imp/net/stream.h"
#include "imp/net/tls.h"
#include "imp/net/tls_session.h"
#include "imp/net/udp_socket.h"

using namespace imp::net;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr auto kDeadline = 10s;

// ---- test PKI (tests/fakes/test_pki.h) ----

using Identity = imp::testing::PkiIdentity;

struct Pki {
  imp::testing::TestPki ca{"IMP Net Test CA", "imp-net-test"};
  std::string caFile = ca.caFile();
  Identity server = ca.leaf("server", "server.test");
  Identity client = ca.leaf("client", "client.test");
  Identity intruder = ca.leaf("intruder", "intruder.test");
  Identity renewed = ca.leaf("renewed", "renewed.test");  // a server certificate replaced live
};

const Pki& pki() {
  static Pki p;
  return p;
}

std::shared_ptr<const TlsContext> serverTls() {
  TlsContextConfig c;
  c.certFile = pki().server.cert;
  c.keyFile = pki().server.key;
  c.caFile = pki().caFile;
  c.verifyPeer = true;
  return TlsContext::server(c);
}

std::shared_ptr<const TlsContext> serverTls(const Identity& id) {
  TlsContextConfig c;
  c.certFile = id.cert;
  c.keyFile = id.key;
  c.caFile = pki().caFile;
  return TlsContext::server(c);
}

std::shared_ptr<const TlsContext> clientTls(const Identity* id) {
  TlsContextConfig c;
  if (id != nullptr) {
    c.certFile = id->cert;
    c.keyFile = id->key;
  }
  c.caFile = pki().caFile;
  c.verifyPeer = true;
  return TlsContext::client(c);
}

SocketAddress loopbackAny() { return *SocketAddress::fromIp("127.0.0.1", 0); }

// One side of a connection as the tests see it.
struct Peer {
  std::unique_ptr<StreamConnection> conn;
  std::string received;
  bool opened = false, tlsReady = false;
  std::optional<CloseReason> closed;
  int closeCalls = 0;

  void attach(StreamConnection& c) {
    StreamCallbacks cb;
    cb.onData = [this](std::string_view d) { received.append(d); };
    cb.onOpen = [this] { opened = true; };
    cb.onTlsReady = [this] { tlsReady = true; };
    cb.onClose = [this](const CloseReason& why) {
      closed = why;
      ++closeCalls;
    };
    c.setCallbacks(std::move(cb));
  }
};

// An acceptor whose connections land in `accepted`.
struct Server {
  std::shared_ptr<StreamGroup> group;
  std::unique_ptr<Acceptor> acceptor;
  std::vector<std::unique_ptr<Peer>> accepted;

  Server(EventLoop& loop, AcceptorOptions opt, std::size_t maxConnections = SIZE_MAX)
      : group(StreamGroup::create(loop, maxConnections)) {
    if (!opt.address.valid()) opt.address = loopbackAny();
    acceptor = std::make_unique<Acceptor>(group, std::move(opt), [this](std::unique_ptr<StreamConnection> c) {
      auto p = std::make_unique<Peer>();
      p->attach(*c);
      p->conn = std::move(c);
      accepted.push_back(std::move(p));
    });
  }
};

std::unique_ptr<Peer> dial(std::shared_ptr<StreamGroup> group, const SocketAddress& to, ConnectorOptions opt = {}) {
  Connector connector(std::move(group), std::move(opt));
  auto p = std::make_unique<Peer>();
  CloseReason err;
  p->conn = connector.connect(to, &err);
  if (!p->conn) {
    p->closed = err;
    p->closeCalls = 1;
    return p;
  }
  p->attach(*p->conn);
  return p;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
  return s;
}

}  // namespace

TEST_CASE("SocketAddress: IPv4 and [IPv6] with port parse and format; anything else is refused with the reason") {
  auto v4 = SocketAddress::parse("192.0.2.7:5060");
  REQUIRE(v4);
  CHECK(v4->ip() == "192.0.2.7");
  CHECK(v4->port() == 5060);
  CHECK(v4->toString() == "192.0.2.7:5060");
  CHECK(v4->family() == AF_INET);

  auto v6 = SocketAddress::parse("[2001:db8::1]:5061");
  REQUIRE(v6);
  CHECK(v6->isV6());
  CHECK(v6->ip() == "2001:db8::1");
  CHECK(v6->toString() == "[2001:db8::1]:5061");
  CHECK(*SocketAddress::fromIp("2001:db8::1", 5061) == *v6);
  sockaddr_storage ss{};
  std::memcpy(&ss, v6->sockaddrPtr(), v6->length());
  CHECK(SocketAddress::fromSockaddr(ss) == *v6);
  std::memcpy(&ss, v4->sockaddrPtr(), v4->length());
  CHECK(SocketAddress::fromSockaddr(ss) == *v4);
  static_assert(sizeof(SocketAddress) <= 32, "two per connection: no room for other families");
  CHECK_FALSE(*v6 == *SocketAddress::fromIp("2001:db8::1", 5062));

  std::string why;
  CHECK_FALSE(SocketAddress::parse("2001:db8::1:5060", &why));
  CHECK(why.find("brackets") != std::string::npos);
  CHECK_FALSE(SocketAddress::parse("proxy.example.com:5060", &why));
  CHECK(why.find("not an IP literal") != std::string::npos);
  CHECK_FALSE(SocketAddress::parse("192.0.2.7:65536", &why));
  CHECK(why.find("bad port") != std::string::npos);
  CHECK_FALSE(SocketAddress::parse("192.0.2.7", &why));
  CHECK(why.find("no port") != std::string::npos);
  CHECK_FALSE(SocketAddress::parse("[192.0.2.7]:5060", &why));
  CHECK_FALSE(SocketAddress::parse("192.0.2.7:50x", &why));
  CHECK_FALSE(SocketAddress{}.valid());
}

TEST_CASE("TCP echo through an Acceptor and a Connector on an ephemeral port") {
  EventLoop loop;
  Server server(loop, {});
  CHECK(server.acceptor->local().port() != 0);
  auto clientGroup = StreamGroup::create(loop);
  auto client = dial(clientGroup, server.acceptor->local());
  REQUIRE(client->conn);
  // Written before the connection opened: waits, then goes out.
  CHECK(client->conn->write("ping-1 ") == StreamConnection::WriteResult::Queued);
  REQUIRE(loop.runUntil([&] { return client->opened && server.accepted.size() == 1; }, kDeadline));
  auto& srv = *server.accepted[0];
  srv.conn->callbacks().onData = [&](std::string_view d) { srv.conn->write(d); };
  client->conn->write("ping-2");
  REQUIRE(loop.runUntil([&] { return client->received == "ping-1 ping-2"; }, kDeadline));
  CHECK(srv.conn->remote() == client->conn->local());
  CHECK(client->conn->remote() == server.acceptor->local());
  CHECK(server.group->bytesIn() == 13);
  CHECK(server.group->bytesOut() >= 6);
  CHECK(server.group->active() == 1);

  client->conn->close();
  REQUIRE(client->closed);
  CHECK(client->closed->kind == CloseKind::Local);
  REQUIRE(loop.runUntil([&] { return srv.closed.has_value(); }, kDeadline));
  CHECK(srv.closed->kind == CloseKind::PeerClosed);
  CHECK(srv.closeCalls == 1);
  CHECK(client->closeCalls == 1);
  CHECK(server.group->active() == 0);
}

TEST_CASE("Acceptor: the connection cap rejects and counts; a bound port refuses a second listener") {
  EventLoop loop;
  Server server(loop, {}, 1);
  auto group = StreamGroup::create(loop);
  auto a = dial(group, server.acceptor->local());
  auto b = dial(group, server.acceptor->local());
  REQUIRE(loop.runUntil([&] { return server.accepted.size() == 1 && server.acceptor->rejected() == 1; }, kDeadline));
  CHECK(server.group->rejected() == 1);
  CHECK(server.acceptor->accepted() == 1);
  // The rejected one sees its connection closed by the peer.
  REQUIRE(loop.runUntil([&] { return a->closed.has_value() || b->closed.has_value(); }, kDeadline));

  AcceptorOptions same;
  same.address = server.acceptor->local();
  CHECK_THROWS_WITH_AS(Acceptor(StreamGroup::create(loop), same, [](std::unique_ptr<StreamConnection>) {}),
                       doctest::Contains("bind: Address already in use"), std::runtime_error);
}

TEST_CASE("connect refused is reported as soon as the kernel says so") {
  EventLoop loop;
  SocketAddress freed;
  {
    Server gone(loop, {});
    freed = gone.acceptor->local();
  }
  auto group = StreamGroup::create(loop);
  ConnectorOptions opt;
  opt.timeout = 60s;  // a refusal must not wait for the timeout
  auto p = dial(group, freed, opt);
  REQUIRE(loop.runUntil([&] { return p->closed.has_value(); }, kDeadline));
  CHECK(p->closed->kind == CloseKind::ConnectRefused);
  CHECK(p->closed->sysError == ECONNREFUSED);
  CHECK(p->closed->detail.find(freed.toString()) != std::string::npos);
  CHECK_FALSE(p->opened);
}

TEST_CASE("connect timeout: a peer whose accept queue is full never completes the TCP connect") {
  EventLoop loop;
  // A listener with a full accept queue drops further SYNs.
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(lfd >= 0);
  auto any = loopbackAny();
  REQUIRE(::bind(lfd, any.sockaddrPtr(), any.length()) == 0);
  REQUIRE(::listen(lfd, 0) == 0);
  auto target = *SocketAddress::localOf(lfd);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ::connect(fd, target.sockaddrPtr(), target.length());
    fillers.push_back(fd);
  }
  auto group = StreamGroup::create(loop);
  ConnectorOptions opt;
  opt.timeout = 200ms;
  auto p = dial(group, target, opt);
  REQUIRE(loop.runUntil([&] { return p->closed.has_value(); }, kDeadline));
  CHECK(p->closed->kind == CloseKind::ConnectTimeout);
  CHECK(p->closed->detail == "no TCP connection to " + target.toString() + " within 200 ms");
  for (int fd : fillers) ::close(fd);
  ::close(lfd);
}

TEST_CASE("the Connector timeout also covers the TLS handshake") {
  EventLoop loop;
  Server silent(loop, {});  // plain TCP: never answers a ClientHello
  auto group = StreamGroup::create(loop);
  ConnectorOptions opt;
  opt.timeout = 200ms;
  opt.tls = clientTls(nullptr);
  auto p = dial(group, silent.acceptor->local(), opt);
  REQUIRE(loop.runUntil([&] { return p->closed.has_value(); }, kDeadline));
  CHECK(p->closed->kind == CloseKind::TlsTimeout);
  CHECK(p->closed->detail.find("not finished within 200 ms") != std::string::npos);
}

TEST_CASE("idle timeout closes a silent connection, once, with the reason") {
  EventLoop loop;
  AcceptorOptions opt;
  opt.stream.idleTimeout = 100ms;
  Server server(loop, opt);
  auto group = StreamGroup::create(loop);
  auto client = dial(group, server.acceptor->local());
  REQUIRE(loop.runUntil([&] { return !server.accepted.empty() && server.accepted[0]->closed.has_value(); }, kDeadline));
  CHECK(server.accepted[0]->closed->kind == CloseKind::IdleTimeout);
  CHECK(server.accepted[0]->closed->detail == "idle for 100 ms, closed");
  REQUIRE(loop.runUntil([&] { return client->closed.has_value(); }, kDeadline));
  CHECK(client->closed->kind == CloseKind::PeerClosed);
  CHECK(server.accepted[0]->closeCalls == 1);
}

TEST_CASE("back-pressure: high and low watermarks let a producer pause and resume; the cap refuses") {
  EventLoop loop;
  Server server(loop, {});
  auto group = StreamGroup::create(loop);
  ConnectorOptions opt;
  opt.stream.highWatermark = 256 * 1024;
  opt.stream.lowWatermark = 32 * 1024;
  opt.stream.maxQueuedBytes = 1024 * 1024;
  auto client = dial(group, server.acceptor->local(), opt);
  REQUIRE(loop.runUntil([&] { return client->opened && server.accepted.size() == 1; }, kDeadline));
  auto& srv = *server.accepted[0];
  srv.conn->setReading(false);  // the consumer stalls
  // Small kernel buffers, so the stall shows within a few hundred KiB.
  int small = 32 * 1024;
  ::setsockopt(srv.conn->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ::setsockopt(client->conn->fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);

  const std::string data = pattern(8 * 1024 * 1024);
  constexpr std::size_t kChunk = 16 * 1024;
  std::size_t produced = 0, maxQueued = 0;
  int highs = 0, lows = 0;
  bool paused = false;
  std::function<void()> produce = [&] {
    while (!paused && produced < data.size()) {
      auto r = client->conn->write(std::string_view(data).substr(produced, kChunk));
      REQUIRE(r == StreamConnection::WriteResult::Queued);
      produced += kChunk;
      maxQueued = std::max(maxQueued, client->conn->queuedBytes());
    }
  };
  client->conn->callbacks().onHighWatermark = [&] {
    ++highs;
    paused = true;
  };
  client->conn->callbacks().onLowWatermark = [&] {
    ++lows;
    paused = false;
    loop.post(produce);
  };
  produce();
  CHECK(highs == 1);
  CHECK(paused);
  CHECK(maxQueued <= opt.stream.highWatermark);
  // Past the cap, write() refuses instead of queueing.
  CHECK(client->conn->write(std::string(opt.stream.maxQueuedBytes, 'x')) == StreamConnection::WriteResult::QueueFull);
  // The kernel buffers fill and the queue stays above the low watermark:
  // the producer stays paused while the consumer stalls.
  CHECK_FALSE(loop.runUntil([&] { return lows > 0; }, 300ms));
  CHECK(produced < data.size());
  CHECK(srv.received.empty());

  srv.conn->setReading(true);
  REQUIRE(loop.runUntil([&] { return srv.received.size() == data.size(); }, kDeadline));
  CHECK(srv.received == data);
  CHECK(highs >= 1);
  CHECK(lows == highs);
  CHECK(maxQueued <= opt.stream.highWatermark + kChunk);
}

TEST_CASE("flush-then-close: everything queued arrives before the EOF; the linger limit ends a stuck drain") {
  EventLoop loop;
  Server server(loop, {});
  auto group = StreamGroup::create(loop);
  auto client = dial(group, server.acceptor->local());
  REQUIRE(loop.runUntil([&] { return client->opened && server.accepted.size() == 1; }, kDeadline));
  auto& srv = *server.accepted[0];
  const std::string data = pattern(3 * 1024 * 1024);
  REQUIRE(srv.conn->write(data) == StreamConnection::WriteResult::Queued);
  srv.conn->closeAfterFlush(10s, "done talking");
  CHECK(srv.conn->state() == StreamConnection::State::Draining);
  CHECK(srv.conn->write("late") == StreamConnection::WriteResult::Closed);
  REQUIRE(loop.runUntil([&] { return client->closed.has_value(); }, kDeadline));
  CHECK(client->closed->kind == CloseKind::PeerClosed);
  CHECK(client->received == data);
  // The client's close ends the drain.
  REQUIRE(loop.runUntil([&] { return srv.closed.has_value(); }, kDeadline));
  CHECK(srv.closed->kind == CloseKind::Drained);
  CHECK(srv.closed->detail == "done talking");

  // A reader that never reads: the linger limit closes the connection.
  auto stuck = dial(group, server.acceptor->local());
  REQUIRE(loop.runUntil([&] { return stuck->opened && server.accepted.size() == 2; }, kDeadline));
  stuck->conn->setReading(false);
  int small = 32 * 1024;
  ::setsockopt(stuck->conn->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  auto& srv2 = *server.accepted[1];
  ::setsockopt(srv2.conn->fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  REQUIRE(srv2.conn->write(pattern(3 * 1024 * 1024)) == StreamConnection::WriteResult::Queued);
  srv2.conn->closeAfterFlush(100ms, "gave up");
  REQUIRE(loop.runUntil([&] { return srv2.closed.has_value(); }, kDeadline));
  CHECK(srv2.closed->kind == CloseKind::Drained);
  CHECK(srv2.closed->detail == "gave up");
  CHECK(srv2.closeCalls == 1);
}

namespace {

// A line protocol with STARTTLS: "HELLO" -> "HI", "STARTTLS" -> "PROCEED"
// then TLS, "ECHO x" -> "x" (on whatever the stream carries by then).
struct LineServer {
  Peer* peer = nullptr;
  std::string buffer;
  std::size_t leftover = 0;  // bytes past STARTTLS handed to startTls
  std::string peerCnChecked;
  std::vector<std::string> lines;

  void onData(std::string_view d) {
    buffer.append(d);
    for (;;) {
      auto eol = buffer.find("\r\n");
      if (eol == std::string::npos) return;
      std::string line = buffer.substr(0, eol);
      buffer.erase(0, eol + 2);
      lines.push_back(line);
      if (line == "HELLO") {
        peer->conn->write("HI\r\n");
      } else if (line == "STARTTLS" || line == "STARTTLS-QUIET") {
        if (line == "STARTTLS") peer->conn->write("PROCEED\r\n");
        std::string rest = std::move(buffer);
        buffer.clear();
        leftover = rest.size();
        std::string why;
        REQUIRE(peer->conn->startTls(serverTls(),
                                     [this](std::string_view cn) {
                                       peerCnChecked = cn;
                                       return cn == "client.test";
                                     },
                                     rest, &why));
        return;  // the rest of this chunk, if any, was TLS
      } else if (line.starts_with("ECHO ")) {
        peer->conn->write(line.substr(5) + "\r\n");
      }
    }
  }
};

}  // namespace

TEST_CASE("STARTTLS mid-stream: plaintext pipelined before the switch is answered, then TLS with a CN check") {
  EventLoop loop;
  Server server(loop, {});
  LineServer ls;
  auto group = StreamGroup::create(loop);
  auto client = dial(group, server.acceptor->local());
  REQUIRE(loop.runUntil([&] { return client->opened && server.accepted.size() == 1; }, kDeadline));
  auto& srv = *server.accepted[0];
  ls.peer = &srv;
  srv.conn->callbacks().onData = [&](std::string_view d) { ls.onData(d); };

  // Two commands in one segment, the second one switching to TLS.
  client->conn->write("HELLO\r\nSTARTTLS\r\n");
  REQUIRE(loop.runUntil([&] { return client->received == "HI\r\nPROCEED\r\n"; }, kDeadline));
  CHECK(ls.lines == std::vector<std::string>{"HELLO", "STARTTLS"});
  CHECK(srv.conn->state() == StreamConnection::State::Handshaking);
  client->received.clear();
  REQUIRE(client->conn->startTls(clientTls(&pki().client)));
  REQUIRE(loop.runUntil([&] { return client->tlsReady && srv.tlsReady; }, kDeadline));
  CHECK(ls.peerCnChecked == "client.test");
  CHECK(srv.conn->tls()->peerCommonName() == "client.test");
  CHECK(client->conn->tls()->peerCommonName() == "server.test");

  client->conn->write("ECHO secret\r\n");
  REQUIRE(loop.runUntil([&] { return client->received == "secret\r\n"; }, kDeadline));
  // The secret never crossed the wire in clear: the server read it through TLS.
  CHECK(ls.lines.back() == "ECHO secret");
  std::string why;
  CHECK_FALSE(client->conn->startTls(clientTls(nullptr), {}, {}, &why));
  CHECK(why == "the connection already runs TLS");
}

TEST_CASE("STARTTLS: a ClientHello in the same segment as the command is not lost") {
  EventLoop loop;
  Server server(loop, {});
  LineServer ls;
  auto group = StreamGroup::create(loop);
  auto client = dial(group, server.acceptor->local());
  REQUIRE(loop.runUntil([&] { return client->opened && server.accepted.size() == 1; }, kDeadline));
  auto& srv = *server.accepted[0];
  ls.peer = &srv;
  srv.conn->callbacks().onData = [&](std::string_view d) { ls.onData(d); };

  // The client does not wait for an answer: command and ClientHello leave
  // in one send(), and the server reads them in one recv().
  client->conn->write("STARTTLS-QUIET\r\n");
  REQUIRE(client->conn->startTls(clientTls(&pki().client)));
  REQUIRE(loop.runUntil([&] { return client->tlsReady && srv.tlsReady; }, kDeadline));
  CHECK(ls.leftover > 0);  // the ClientHello came with the command
  client->conn->write("ECHO after\r\n");
  REQUIRE(loop.runUntil([&] { return client->received == "after\r\n"; }, kDeadline));
}

TEST_CASE("TLS handshake failures carry the reason: a refused CN, a missing client certificate") {
  EventLoop loop;
  std::vector<std::string> checked;
  AcceptorOptions opt;
  opt.tls = serverTls();
  opt.acceptPeer = [&](std::string_view cn) {
    checked.emplace_back(cn);
    return cn == "client.test";
  };
  Server server(loop, opt);
  auto group = StreamGroup::create(loop);

  ConnectorOptions good;
  good.tls = clientTls(&pki().client);
  auto ok = dial(group, server.acceptor->local(), good);
  REQUIRE(loop.runUntil([&] { return ok->opened && server.accepted.size() == 1 && server.accepted[0]->opened; },
                        kDeadline));
  CHECK(server.accepted[0]->conn->tls()->peerCommonName() == "client.test");
  ok->conn->write("over tls");
  REQUIRE(loop.runUntil([&] { return server.accepted[0]->received == "over tls"; }, kDeadline));

  ConnectorOptions bad;
  bad.tls = clientTls(&pki().intruder);
  auto intruder = dial(group, server.acceptor->local(), bad);
  REQUIRE(loop.runUntil([&] { return server.accepted.size() == 2 && server.accepted[1]->closed.has_value(); },
                        kDeadline));
  CHECK(server.accepted[1]->closed->kind == CloseKind::TlsFailed);
  CHECK(server.accepted[1]->closed->detail == "peer certificate CN 'intruder.test' is not an accepted peer subject");
  CHECK(server.accepted[1]->conn->tls()->peerRefused());
  CHECK(checked == std::vector<std::string>{"client.test", "intruder.test"});
  REQUIRE(loop.runUntil([&] { return intruder->closed.has_value(); }, kDeadline));
  // TLS 1.3: the client may have finished its side, but the server never
  // confirmed it (TlsSession::peerConfirmed()).
  bool confirmed = intruder->conn->tls()->peerConfirmed();
  CHECK_FALSE(confirmed);

  ConnectorOptions anonymous;
  anonymous.tls = clientTls(nullptr);
  auto anon = dial(group, server.acceptor->local(), anonymous);
  REQUIRE(loop.runUntil([&] { return server.accepted.size() == 3 && server.accepted[2]->closed.has_value(); },
                        kDeadline));
  CHECK(server.accepted[2]->closed->kind == CloseKind::TlsFailed);
  CHECK(server.accepted[2]->closed->detail.find("certificate") != std::string::npos);  // OpenSSL's reason
  REQUIRE(loop.runUntil([&] { return anon->closed.has_value(); }, kDeadline));
}

TEST_CASE("Acceptor::setTls: the next connection gets the new certificate, an open one keeps its session (TLS-4)") {
  EventLoop loop;
  AcceptorOptions opt;
  opt.tls = serverTls(pki().server);
  opt.name = "test TLS listener";
  Server server(loop, opt);
  auto group = StreamGroup::create(loop);
  ConnectorOptions copt;
  copt.tls = clientTls(nullptr);

  auto before = dial(group, server.acceptor->local(), copt);
  REQUIRE(loop.runUntil([&] { return before->opened && server.accepted.size() == 1 && server.accepted[0]->opened; },
                        kDeadline));
  CHECK(before->conn->tls()->peerCommonName() == "server.test");

  auto renewed = serverTls(pki().renewed);
  server.acceptor->setTls(renewed);
  CHECK(server.acceptor->tls() == renewed);
  auto after = dial(group, server.acceptor->local(), copt);
  REQUIRE(loop.runUntil([&] { return after->opened && server.accepted.size() == 2 && server.accepted[1]->opened; },
                        kDeadline));
  CHECK(after->conn->tls()->peerCommonName() == "renewed.test");

  // The connection accepted before the change still carries its session.
  before->conn->write("still here");
  REQUIRE(loop.runUntil([&] { return server.accepted[0]->received == "still here"; }, kDeadline));
  CHECK(before->conn->tls()->peerCommonName() == "server.test");
  CHECK_FALSE(server.accepted[0]->closed.has_value());

  // Only a server context replaces a server context; a plain listener stays plain.
  CHECK_THROWS_WITH_AS(server.acceptor->setTls(clientTls(nullptr)), "test TLS listener: needs a server TLS context",
                       std::runtime_error);
  CHECK_THROWS_AS(server.acceptor->setTls(nullptr), std::runtime_error);
  CHECK(server.acceptor->tls() == renewed);
  Server plain(loop, AcceptorOptions{});
  CHECK_THROWS_AS(plain.acceptor->setTls(renewed), std::runtime_error);
  CHECK(plain.acceptor->tls() == nullptr);
}

TEST_CASE("UDP: a datagram round trip with the source address; a batch read; an oversized datagram is reported truncated") {
  EventLoop loop;
  struct Got {
    std::string data;
    SocketAddress from;
    bool truncated;
  };
  std::vector<Got> atA, atB;
  std::unique_ptr<UdpSocket> a, b;
  a = std::make_unique<UdpSocket>(loop, loopbackAny(), [&] {
    a->readBurst([&](std::string_view d, const SocketAddress& from, bool t) { atA.push_back({std::string(d), from, t}); });
  });
  UdpSocket::Options small;
  small.maxDatagram = 16;
  b = std::make_unique<UdpSocket>(
      loop, loopbackAny(),
      [&] {
        int got = b->readBurst([&](std::string_view d, const SocketAddress& from, bool t) {
          atB.push_back({std::string(d), from, t});
          if (!t) b->sendTo("re:" + std::string(d), from);
        });
        CHECK(got > 0);
      },
      small);
  CHECK(a->local().port() != 0);
  REQUIRE(a->sendTo("one", b->local()) == 0);
  REQUIRE(a->sendTo("two", b->local()) == 0);
  REQUIRE(a->sendTo("a datagram longer than sixteen bytes", b->local()) == 0);
  REQUIRE(loop.runUntil([&] { return atB.size() == 3 && atA.size() == 2; }, kDeadline));
  CHECK(atB[0].data == "one");
  CHECK(atB[0].from == a->local());
  CHECK(atB[1].data == "two");
  CHECK(atB[2].truncated);
  CHECK(atB[2].data == "a datagram longe");
  CHECK(atA[0].data == "re:one");
  CHECK(atA[1].data == "re:two");
  CHECK(atA[0].from == b->local());

  auto eph = UdpSocket::ephemeral(loop, AF_INET, [] {});
  CHECK(eph->local().port() == 0);
  REQUIRE(eph->sendTo("hi", b->local()) == 0);
  CHECK(eph->local().port() != 0);  // bound by the first send
  CHECK_THROWS_WITH_AS(UdpSocket(loop, b->local(), [] {}), doctest::Contains("bind"), std::runtime_error);
}

TEST_CASE("TLS: data written while the handshake runs goes out once it is done; flush-then-close ends with close_notify") {
  EventLoop loop;
  AcceptorOptions opt;
  opt.tls = serverTls();
  Server server(loop, opt);
  auto group = StreamGroup::create(loop);
  ConnectorOptions copt;
  copt.tls = clientTls(&pki().client);
  auto client = dial(group, server.acceptor->local(), copt);
  REQUIRE(client->conn);
  CHECK(client->conn->write("early ") == StreamConnection::WriteResult::Queued);  // still connecting
  REQUIRE(loop.runUntil([&] { return server.accepted.size() == 1 && server.accepted[0]->received == "early "; },
                        kDeadline));
  auto& srv = *server.accepted[0];
  CHECK(srv.opened);
  CHECK(client->opened);
  const std::string data = pattern(1024 * 1024);
  REQUIRE(srv.conn->write(data) == StreamConnection::WriteResult::Queued);
  srv.conn->closeAfterFlush(10s, "bye");
  // The client reads everything, then the peer's close_notify.
  REQUIRE(loop.runUntil([&] { return client->closed.has_value(); }, kDeadline));
  CHECK(client->received == data);
  CHECK(client->closed->kind == CloseKind::PeerClosed);
  CHECK(client->closed->detail.find("closed the TLS session") != std::string::npos);
  REQUIRE(loop.runUntil([&] { return srv.closed.has_value(); }, kDeadline));
  CHECK(srv.closed->kind == CloseKind::Drained);
}

TEST_CASE("an idle connection holds no buffers: plain and TLS, after traffic both ways") {
  EventLoop loop;
  AcceptorOptions opt;
  opt.tls = serverTls();
  Server server(loop, opt);
  Server plainServer(loop, {});
  auto group = StreamGroup::create(loop);
  ConnectorOptions copt;
  copt.tls = clientTls(&pki().client);
  auto client = dial(group, server.acceptor->local(), copt);
  auto plainClient = dial(group, plainServer.acceptor->local());
  REQUIRE(loop.runUntil([&] { return client->opened && plainClient->opened && server.accepted.size() == 1 &&
                                     plainServer.accepted.size() == 1; },
                        kDeadline));
  auto& srv = *server.accepted[0];
  auto& plainSrv = *plainServer.accepted[0];
  // Bursts larger than a TLS record, in several records, both ways.
  const std::string data = pattern(100 * 1024);
  for (int round = 0; round < 3; ++round) {
    client->received.clear();
    srv.received.clear();
    plainClient->received.clear();
    plainSrv.received.clear();
    REQUIRE(client->conn->write(data) == StreamConnection::WriteResult::Queued);
    REQUIRE(plainClient->conn->write(data) == StreamConnection::WriteResult::Queued);
    REQUIRE(loop.runUntil([&] { return srv.received.size() == data.size() && plainSrv.received.size() == data.size(); },
                          kDeadline));
    REQUIRE(srv.conn->write(data.substr(0, 40000)) == StreamConnection::WriteResult::Queued);
    REQUIRE(plainSrv.conn->write(data.substr(0, 40000)) == StreamConnection::WriteResult::Queued);
    REQUIRE(loop.runUntil([&] { return client->received.size() == 40000 && plainClient->received.size() == 40000; },
                          kDeadline));
    CHECK(srv.received == data);
    CHECK(client->received == data.substr(0, 40000));
    CHECK(plainSrv.received == data);
  }
  // Everything was written and read: no side keeps a buffer.
  REQUIRE(loop.runUntil([&] { return srv.conn->queuedBytes() == 0 && client->conn->queuedBytes() == 0; }, kDeadline));
  CHECK(srv.conn->bufferedBytes() == 0);
  CHECK(client->conn->bufferedBytes() == 0);
  CHECK(srv.conn->tls()->bufferedBytes() == 0);
  CHECK(plainSrv.conn->bufferedBytes() == 0);
  CHECK(plainClient->conn->bufferedBytes() == 0);
  CHECK((SSL_get_mode(srv.conn->tls()->native()) & SSL_MODE_RELEASE_BUFFERS) != 0);
  // And the sessions go on working.
  client->received.clear();
  REQUIRE(srv.conn->write("still there") == StreamConnection::WriteResult::Queued);
  REQUIRE(loop.runUntil([&] { return client->received == "still there"; }, kDeadline));
}
