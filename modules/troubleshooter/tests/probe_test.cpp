// The troubleshooter's network probes (probe.h; RT-1, RT-8, RT-10, TS-2,
// TS-6) against real sockets on 127.0.0.1: a SIP responder over UDP, TCP and
// TLS (certificates from a test CA made here), a port nobody listens on, a
// TLS hop whose CA is not trusted, and a scripted resolver that answers,
// answers nothing, or never answers.
#include <doctest/doctest.h>
#include <imp/core/dns.h>
#include <imp/net/tls.h>
#include <imp/sip/message.h>
#include <imp/sip/parser.h>
#include <imp/troubleshoot/probe.h>

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "fakes/test_pki.h"

using namespace imp::troubleshoot;
namespace sp = imp::sip_proxy;
using imp::sip::Message;

namespace {

// Answers from tables; a reverse lookup of an address not in `ptr` is held
// until the test ends (a DNS server that never answers), then answered.
class ScriptedResolver : public imp::core::Resolver {
 public:
  std::map<std::string, std::vector<std::string>> a;
  std::map<std::string, std::optional<std::string>> ptr;
  ~ScriptedResolver() override {
    for (auto& cb : held_) cb(std::nullopt);
  }
  void reverse(const std::string& ip, imp::core::ReverseCallback cb) override {
    if (auto it = ptr.find(ip); it != ptr.end()) return cb(it->second);
    std::lock_guard l(mu_);
    held_.push_back(std::move(cb));
  }
  void forward(const std::string& host, imp::core::ForwardCallback cb) override {
    auto it = a.find(host);
    cb(it == a.end() ? std::vector<std::string>{} : it->second);
  }
  void srv(const std::string&, imp::core::SrvCallback cb) override { cb({}); }
  void naptr(const std::string&, imp::core::NaptrCallback cb) override { cb({}); }

 private:
  std::mutex mu_;
  std::vector<imp::core::ReverseCallback> held_;
};

int bound(int type) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  if (type == SOCK_STREAM) REQUIRE(::listen(fd, 4) == 0);
  return fd;
}

int portOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// The answer to `request`: `status`, with its Via, From, To, Call-ID, CSeq.
std::string answer(const Message& request, int status) {
  auto r = Message::response(status, status == 200 ? "OK" : "Service Unavailable");
  for (auto name : {"Via", "From", "To", "Call-ID", "CSeq"}) r.appendHeader(name, request.header(name).value_or(""));
  r.appendHeader("Content-Length", "0");
  return r.serialize();
}

// A SIP server for one request over UDP, TCP or TLS (with `tls`): it
// answers `status` (or sends `raw` instead) and keeps the request it got.
class OneShotSipServer {
 public:
  OneShotSipServer(sp::Transport t, int status, std::shared_ptr<const imp::net::TlsContext> tls = nullptr,
                   std::string raw = "")
      : fd_(bound(t == sp::Transport::Udp ? SOCK_DGRAM : SOCK_STREAM)), port_(portOf(fd_)), raw_(std::move(raw)) {
    thread_ = std::thread([this, t, status, tls] { t == sp::Transport::Udp ? serveUdp(status) : serveStream(status, tls); });
  }
  ~OneShotSipServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::optional<Message> request() {
    std::lock_guard l(mu_);
    return request_;
  }
  std::string handshakeError() {
    std::lock_guard l(mu_);
    return tlsError_;
  }

 private:
  void keep(const Message& m) {
    std::lock_guard l(mu_);
    request_ = m;
  }
  void serveUdp(int status) {
    char buf[65536];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) return;
    auto r = imp::sip::Parser().parseDatagram(std::string_view(buf, static_cast<std::size_t>(n)));
    auto* m = std::get_if<Message>(&r);
    if (!m) return;
    keep(*m);
    auto out = answer(*m, status);
    ::sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  }
  void serveStream(int status, const std::shared_ptr<const imp::net::TlsContext>& tls) {
    int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    SSL* ssl = nullptr;
    if (tls) {
      ssl = SSL_new(tls->native());
      SSL_set_fd(ssl, c);
      if (SSL_accept(ssl) != 1) {
        std::lock_guard l(mu_);
        tlsError_ = imp::net::takeOpenSslError();
        SSL_free(ssl);
        ::close(c);
        return;
      }
    }
    imp::sip::StreamFramer framer;
    char buf[16384];
    for (;;) {
      Message m;
      imp::sip::ParseError e;
      if (framer.next(&m, &e) == imp::sip::StreamFramer::Event::Message) {
        keep(m);
        auto out = raw_.empty() ? answer(m, status) : raw_;
        if (ssl) SSL_write(ssl, out.data(), static_cast<int>(out.size()));
        else ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
        break;
      }
      int n = ssl ? SSL_read(ssl, buf, sizeof buf) : static_cast<int>(::recv(c, buf, sizeof buf, 0));
      if (n <= 0) break;
      framer.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
    if (ssl) {
      SSL_shutdown(ssl);
      SSL_free(ssl);
    }
    ::close(c);
  }

  int fd_;
  int port_;
  std::string raw_;
  std::thread thread_;
  std::mutex mu_;
  std::optional<Message> request_;
  std::string tlsError_;
};

sp::StaticRoute routeTo(const std::string& host, int port, sp::Transport t) {
  sp::StaticRoute r;
  r.pattern = ".com.example.*";
  r.nextHop = host;
  r.port = port;
  r.transport = t;
  return r;
}

}  // namespace

TEST_CASE("OPTIONS over UDP and TCP: the final answer and its round-trip time (RT-1, TS-2)") {
  auto dns = std::make_shared<ScriptedResolver>();
  ProbeConfig cfg;
  cfg.resolver = dns;
  cfg.fromHost = "imp1.example.com";
  OneShotSipServer udp(sp::Transport::Udp, 200), tcp(sp::Transport::Tcp, 503);
  dns->a["pool.example.com"] = {"127.0.0.1"};
  auto hops = probeNextHops({routeTo("127.0.0.1", udp.port(), sp::Transport::Udp),
                             routeTo("pool.example.com", tcp.port(), sp::Transport::Tcp),
                             routeTo("127.0.0.1", udp.port(), sp::Transport::Udp)},  // the same hop once
                            cfg);
  REQUIRE(hops.size() == 2);
  CHECK(hops[0].hop == "127.0.0.1:" + std::to_string(udp.port()) + ";UDP");
  CHECK(hops[0].error == "");
  CHECK(hops[0].status == 200);
  CHECK(hops[0].reason == "OK");
  CHECK(hops[0].rttMs > 0);
  CHECK(hops[1].addresses == std::vector<std::string>{"127.0.0.1"});
  CHECK(hops[1].address == "127.0.0.1");
  CHECK(hops[1].status == 503);
  CHECK(hops[1].reason == "Service Unavailable");
  // what the hops received: an OPTIONS to the route's host, from the node
  auto m = tcp.request();
  REQUIRE(m.has_value());
  CHECK(m->method() == "OPTIONS");
  CHECK(m->requestUri() == "sip:pool.example.com:" + std::to_string(tcp.port()));
  CHECK(std::string(m->header("Via").value_or("")).starts_with("SIP/2.0/TCP 127.0.0.1:"));
  CHECK(std::string(m->header("From").value_or("")).starts_with("<sip:troubleshoot@imp1.example.com>;tag="));
  REQUIRE(udp.request().has_value());
  CHECK(std::string(udp.request()->header("CSeq").value_or("")) == "1 OPTIONS");
}

TEST_CASE("a hop that does not resolve, and one where nothing listens") {
  auto dns = std::make_shared<ScriptedResolver>();
  ProbeConfig cfg;
  cfg.resolver = dns;
  cfg.sipTimeout = std::chrono::milliseconds(1500);
  int closed = bound(SOCK_STREAM);
  const int port = portOf(closed);
  ::close(closed);  // nothing listens there any more
  int udpClosed = bound(SOCK_DGRAM);
  const int udpPort = portOf(udpClosed);
  ::close(udpClosed);
  auto hops = probeNextHops({routeTo("nowhere.example.com", 5061, sp::Transport::Tls),
                             routeTo("127.0.0.1", port, sp::Transport::Tcp),
                             routeTo("127.0.0.1", udpPort, sp::Transport::Udp)},
                            cfg);
  REQUIRE(hops.size() == 3);
  CHECK(hops[0].addresses.empty());
  CHECK(hops[0].error == "the name does not resolve (no A/AAAA record)");
  CHECK(hops[1].status == 0);
  CHECK(hops[1].error == "connect: Connection refused");
  CHECK(hops[2].status == 0);
  CHECK(hops[2].error == "nothing listens there (ICMP port unreachable)");
}

TEST_CASE("an answer that is not SIP is reported, not taken for an answer") {
  ProbeConfig cfg;
  cfg.resolver = std::make_shared<ScriptedResolver>();
  cfg.sipTimeout = std::chrono::milliseconds(2000);
  OneShotSipServer garbage(sp::Transport::Tcp, 0, nullptr, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
  auto hops = probeNextHops({routeTo("127.0.0.1", garbage.port(), sp::Transport::Tcp)}, cfg);
  REQUIRE(hops.size() == 1);
  CHECK(hops[0].status == 0);
  CHECK(hops[0].error == "unreadable answer: Malformed Method");
  REQUIRE(garbage.request().has_value());
}

TEST_CASE("OPTIONS over TLS: the node certificate, the trust store, a failing handshake (TS-10)") {
  imp::testing::TestPki pki("Probe Test CA", "imp-probe");
  auto hop = pki.leaf("hop", "pool.example.com", "IP:127.0.0.1");
  auto node = pki.leaf("node", "imp1.example.com");
  auto stranger = pki.foreignLeaf("stranger", "pool.example.com", "IP:127.0.0.1");
  // the hop asks for the node's certificate (mutual TLS, as Lync does)
  auto hopTls =
      imp::net::TlsContext::server({.certFile = hop.cert, .keyFile = hop.key, .caFile = pki.caFile(), .verifyPeer = true});
  auto strangerTls = imp::net::TlsContext::server({.certFile = stranger.cert, .keyFile = stranger.key});

  ProbeConfig cfg;
  cfg.resolver = std::make_shared<ScriptedResolver>();
  cfg.tls =
      imp::net::TlsContext::client({.certFile = node.cert, .keyFile = node.key, .caFile = pki.caFile(), .verifyPeer = true});
  {
    OneShotSipServer good(sp::Transport::Tls, 200, hopTls);
    auto hops = probeNextHops({routeTo("127.0.0.1", good.port(), sp::Transport::Tls)}, cfg);
    REQUIRE(hops.size() == 1);
    CHECK(hops[0].error == "");
    CHECK(hops[0].status == 200);
    CHECK(hops[0].peerCn == "pool.example.com");
    CHECK(hops[0].peerServerAuth);
    CHECK(hops[0].peerClientAuth);
    REQUIRE(good.request().has_value());
    CHECK(std::string(good.request()->header("Via").value_or("")).starts_with("SIP/2.0/TLS 127.0.0.1:"));
  }
  {
    OneShotSipServer foreign(sp::Transport::Tls, 200, strangerTls);
    auto hops = probeNextHops({routeTo("127.0.0.1", foreign.port(), sp::Transport::Tls)}, cfg);
    REQUIRE(hops.size() == 1);
    CHECK(hops[0].status == 0);
    CHECK(hops[0].error.starts_with("TLS handshake failed: certificate verify failed: "));
    CHECK(hops[0].peerCn == "");
    CHECK_FALSE(foreign.request().has_value());
  }
  {
    // no client context at all
    ProbeConfig none = cfg;
    none.tls = nullptr;
    none.tlsError = "key_file: no such file";
    auto hops = probeNextHops({routeTo("127.0.0.1", 5061, sp::Transport::Tls)}, none);
    CHECK(hops[0].error == "no client TLS context: key_file: no such file");
  }
}

TEST_CASE("reverse lookups are timed; one that never answers times out (RT-8, TS-6)") {
  auto dns = std::make_shared<ScriptedResolver>();
  dns->ptr["10.0.0.5"] = "lync.example.com";
  dns->ptr["10.0.0.6"] = std::nullopt;  // NXDOMAIN, at once
  ProbeConfig cfg;
  cfg.resolver = dns;
  cfg.dnsTimeout = std::chrono::milliseconds(300);
  auto out = reverseLookups({"10.0.0.5", "10.0.0.6", "10.0.0.7"}, cfg);
  REQUIRE(out.size() == 3);
  CHECK(out[0].name == std::optional<std::string>("lync.example.com"));
  CHECK_FALSE(out[0].timedOut);
  CHECK_FALSE(out[1].name.has_value());
  CHECK_FALSE(out[1].timedOut);
  CHECK(out[2].timedOut);
  CHECK(out[2].ms >= 300);
}
