#include "imp/troubleshoot/probe.h"

#include <imp/core/dns.h>
#include <imp/net/socket_address.h>
#include <imp/net/tls.h>
#include <imp/sip/message.h>
#include <imp/sip/parser.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <future>
#include <map>
#include <mutex>
#include <poll.h>
#include <random>
#include <set>
#include <sys/socket.h>
#include <unistd.h>

namespace imp::troubleshoot {

using sip_proxy::Transport;
using Clock = std::chrono::steady_clock;

namespace {

double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string token() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard l(mu);
  static const char* hex = "0123456789abcdef";
  std::string out;
  auto v = rng();
  for (int i = 0; i < 16; ++i, v >>= 4) out += hex[v & 15];
  return out;
}

std::string hostPort(const std::string& host, int port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string errnoText(int e) { return std::strerror(e); }

// A result shared by a lookup callback (a resolver thread) and the waiting
// caller, who may have given up: the callback only ever touches this.
template <class T>
struct Shared {
  std::promise<T> promise;
  std::once_flag once;
  void set(T v) {
    std::call_once(once, [&] { promise.set_value(std::move(v)); });
  }
};

std::vector<std::string> resolve(const std::string& host, const ProbeConfig& cfg, bool* timedOut) {
  *timedOut = false;
  if (!cfg.resolver) return {};
  auto s = std::make_shared<Shared<std::vector<std::string>>>();
  auto f = s->promise.get_future();
  cfg.resolver->forward(host, [s](std::vector<std::string> a) { s->set(std::move(a)); });
  if (f.wait_for(cfg.dnsTimeout) != std::future_status::ready) {
    *timedOut = true;
    return {};
  }
  return f.get();
}

// Closes the descriptor and frees the TLS session on every way out.
struct Connection {
  int fd = -1;
  SSL* ssl = nullptr;
  ~Connection() {
    if (ssl) SSL_free(ssl);
    if (fd >= 0) ::close(fd);
  }
};

// Waits for `events` on fd until `deadline`; false on timeout.
bool waitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return true;  // let the next call report the error
  }
}

// The subject CN and extended key usage of the certificate the hop presented.
void notePeer(HopProbe& h, SSL* ssl) {
  X509* peer = SSL_get1_peer_certificate(ssl);
  if (!peer) return;
  h.peerCn = net::certificateCommonName(peer);
  if (h.peerCn.empty()) h.peerCn = "(no CN)";
  const std::uint32_t eku = (X509_get_extension_flags(peer) & EXFLAG_XKUSAGE) ? X509_get_extended_key_usage(peer) : 0;
  h.peerServerAuth = (eku & XKU_SSL_SERVER) != 0;
  h.peerClientAuth = (eku & XKU_SSL_CLIENT) != 0;
  X509_free(peer);
}

// TLS over the non-blocking socket, bounded by the deadline.
bool tlsHandshake(Connection& c, const net::TlsContext& ctx, Clock::time_point deadline, std::string* error) {
  c.ssl = SSL_new(ctx.native());
  if (!c.ssl || SSL_set_fd(c.ssl, c.fd) != 1) {
    *error = "TLS: " + net::takeOpenSslError();
    return false;
  }
  ERR_clear_error();
  for (;;) {
    int r = SSL_connect(c.ssl);
    if (r == 1) return true;
    int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (!waitFor(c.fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
        *error = "TLS handshake: no answer in time";
        return false;
      }
      continue;
    }
    std::string why = net::takeOpenSslError();
    long verify = SSL_get_verify_result(c.ssl);
    if (verify != X509_V_OK) why = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    if (why.empty())
      why = e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN ? "the peer closed the connection"
                                                                 : "error " + std::to_string(e);
    *error = "TLS handshake failed: " + why;
    return false;
  }
}

bool writeAll(Connection& c, const std::string& data, Clock::time_point deadline, std::string* error) {
  std::size_t off = 0;
  while (off < data.size()) {
    if (c.ssl) {
      int r = SSL_write(c.ssl, data.data() + off, static_cast<int>(data.size() - off));
      if (r > 0) {
        off += static_cast<std::size_t>(r);
        continue;
      }
      int e = SSL_get_error(c.ssl, r);
      if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
          waitFor(c.fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline))
        continue;
      *error = "TLS write: " + net::takeOpenSslError();
      return false;
    }
    ssize_t n = ::send(c.fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!waitFor(c.fd, POLLOUT, deadline)) {
        *error = "send: timed out";
        return false;
      }
    } else {
      *error = "send: " + errnoText(errno);
      return false;
    }
  }
  return true;
}

// Reads until `framer` holds a final response; nullopt with *error otherwise.
std::optional<sip::Message> readFinal(Connection& c, const std::string& callId, Clock::time_point deadline,
                                      std::string* error) {
  sip::StreamFramer framer;
  char buf[16384];
  for (;;) {
    sip::Message m;
    sip::ParseError pe;
    for (;;) {
      auto ev = framer.next(&m, &pe);
      if (ev == sip::StreamFramer::Event::NeedMore) break;
      // A hop that answers with something other than SIP is a finding.
      if (ev == sip::StreamFramer::Event::Error) {
        *error = "unreadable answer: " + pe.reason;
        return std::nullopt;
      }
      if (ev == sip::StreamFramer::Event::Message && m.isResponse() && m.statusCode() >= 200 &&
          m.callId().value_or("") == callId)
        return m;
    }
    ssize_t n;
    if (c.ssl) {
      int r = SSL_read(c.ssl, buf, sizeof buf);
      if (r <= 0) {
        int e = SSL_get_error(c.ssl, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
            waitFor(c.fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline))
          continue;
        *error = Clock::now() >= deadline ? "no final answer in time" : "the connection closed without an answer";
        return std::nullopt;
      }
      n = r;
    } else {
      n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!waitFor(c.fd, POLLIN, deadline)) {
          *error = "no final answer in time";
          return std::nullopt;
        }
        continue;
      }
      if (n <= 0) {
        *error = n == 0 ? "the connection closed without an answer" : "recv: " + errnoText(errno);
        return std::nullopt;
      }
    }
    framer.feed(std::string_view(buf, static_cast<std::size_t>(n)));
  }
}

std::string optionsRequest(const HopProbe& h, const net::SocketAddress& local, const std::string& callId,
                           const ProbeConfig& cfg) {
  auto o = sip::Message::request("OPTIONS", "sip:" + hostPort(h.host, h.port));
  o.appendHeader("Via", "SIP/2.0/" + std::string(sip_proxy::nameOf(h.transport)) + " " + local.toString() +
                            ";branch=z9hG4bK" + token() + ";rport");
  o.appendHeader("Max-Forwards", "70");
  o.appendHeader("From", "<sip:troubleshoot@" + cfg.fromHost + ">;tag=" + token());
  o.appendHeader("To", "<sip:" + hostPort(h.host, h.port) + ">");
  o.appendHeader("Call-ID", callId);
  o.appendHeader("CSeq", "1 OPTIONS");
  const char* transport = h.transport == Transport::Udp ? "udp" : h.transport == Transport::Tcp ? "tcp" : "tls";
  o.appendHeader("Contact", "<sip:troubleshoot@" + local.toString() + ";transport=" + transport + ">");
  o.appendHeader("Accept", "application/sdp");
  o.appendHeader("User-Agent", "IMP troubleshoot");
  o.appendHeader("Content-Length", "0");
  return o.serialize();
}

void finish(HopProbe& h, const sip::Message& m, Clock::time_point sent) {
  h.rttMs = msSince(sent);
  h.status = m.statusCode();
  h.reason = std::string(m.reason());
}

void optionsOverUdp(HopProbe& h, const net::SocketAddress& to, const ProbeConfig& cfg) {
  Connection c;
  c.fd = ::socket(to.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0 || ::connect(c.fd, to.sockaddrPtr(), to.length()) != 0) {
    h.error = "UDP socket: " + errnoText(errno);
    return;
  }
  auto local = net::SocketAddress::localOf(c.fd).value_or(net::SocketAddress{});
  const std::string callId = token() + "@" + cfg.fromHost;
  const std::string data = optionsRequest(h, local, callId, cfg);
  const auto start = Clock::now();
  const auto deadline = start + cfg.sipTimeout;
  sip::Parser parser;
  auto interval = std::chrono::milliseconds(500);  // RFC 3261 timer E, from T1
  while (Clock::now() < deadline) {
    if (::send(c.fd, data.data(), data.size(), 0) < 0) {
      h.error = "send: " + errnoText(errno);
      return;
    }
    const auto resend = std::min(deadline, Clock::now() + interval);
    interval = std::min(interval * 2, std::chrono::milliseconds(4000));
    while (waitFor(c.fd, POLLIN, resend)) {
      char buf[65536];
      ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        h.error = errno == ECONNREFUSED ? "nothing listens there (ICMP port unreachable)" : "recv: " + errnoText(errno);
        return;
      }
      auto r = parser.parseDatagram(std::string_view(buf, static_cast<std::size_t>(n)));
      auto* m = std::get_if<sip::Message>(&r);
      if (m && m->isResponse() && m->statusCode() >= 200 && m->callId().value_or("") == callId) {
        finish(h, *m, start);
        return;
      }
    }
  }
  h.error = "no answer within " + std::to_string(cfg.sipTimeout.count()) + " ms";
}

void optionsOverStream(HopProbe& h, const net::SocketAddress& to, const ProbeConfig& cfg) {
  const auto deadline = Clock::now() + cfg.sipTimeout;
  if (h.transport == Transport::Tls && !cfg.tls) {
    h.error = "no client TLS context: " + (cfg.tlsError.empty() ? std::string("no node certificate") : cfg.tlsError);
    return;
  }
  Connection c;
  c.fd = ::socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    h.error = "socket: " + errnoText(errno);
    return;
  }
  if (::connect(c.fd, to.sockaddrPtr(), to.length()) != 0) {
    if (errno != EINPROGRESS) {
      h.error = "connect: " + errnoText(errno);
      return;
    }
    if (!waitFor(c.fd, POLLOUT, deadline)) {
      h.error = "connect: no answer within " + std::to_string(cfg.sipTimeout.count()) + " ms";
      return;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      h.error = "connect: " + errnoText(err);
      return;
    }
  }
  if (h.transport == Transport::Tls) {
    if (!tlsHandshake(c, *cfg.tls, deadline, &h.error)) return;
    notePeer(h, c.ssl);
  }
  auto local = net::SocketAddress::localOf(c.fd).value_or(net::SocketAddress{});
  const std::string callId = token() + "@" + cfg.fromHost;
  const auto sent = Clock::now();
  if (!writeAll(c, optionsRequest(h, local, callId, cfg), deadline, &h.error)) return;
  if (auto m = readFinal(c, callId, deadline, &h.error)) finish(h, *m, sent);
}

}  // namespace

void sendOptions(HopProbe& h, const std::string& address, const ProbeConfig& cfg) {
  h.address = address;
  auto to = net::SocketAddress::fromIp(address, static_cast<std::uint16_t>(h.port));
  if (!to) {
    h.error = "not an IP address: " + address;
    return;
  }
  if (h.transport == Transport::Udp) optionsOverUdp(h, *to, cfg);
  else optionsOverStream(h, *to, cfg);
}

std::vector<HopProbe> probeNextHops(const std::vector<sip_proxy::StaticRoute>& routes, const ProbeConfig& cfg) {
  std::vector<HopProbe> hops;
  std::set<std::string> seen;
  for (const auto& r : routes) {
    HopProbe h;
    h.host = r.nextHop;
    h.port = r.port;
    h.transport = r.transport;
    h.hop = hostPort(r.nextHop, r.port) + ";" + std::string(sip_proxy::nameOf(r.transport));
    if (seen.insert(h.hop).second) hops.push_back(std::move(h));
  }
  std::vector<std::future<void>> running;
  for (auto& h : hops)
    running.push_back(std::async(std::launch::async, [&h, &cfg] {
      const auto start = Clock::now();
      bool timedOut = false;
      h.addresses = net::SocketAddress::fromIp(h.host, 0) ? std::vector<std::string>{h.host} : resolve(h.host, cfg, &timedOut);
      h.resolveMs = msSince(start);
      if (h.addresses.empty()) {
        h.error = timedOut ? "no DNS answer within " + std::to_string(cfg.dnsTimeout.count()) + " ms"
                           : "the name does not resolve (no A/AAAA record)";
        return;
      }
      sendOptions(h, h.addresses.front(), cfg);
    }));
  for (auto& f : running) f.get();
  return hops;
}

std::vector<NameProbe> forwardLookups(const std::vector<std::string>& names, const ProbeConfig& cfg) {
  std::vector<NameProbe> out(names.size());
  std::vector<std::future<void>> running;
  for (std::size_t i = 0; i < names.size(); ++i)
    running.push_back(std::async(std::launch::async, [&, i] {
      const auto start = Clock::now();
      out[i].name = names[i];
      out[i].addresses = resolve(names[i], cfg, &out[i].timedOut);
      out[i].ms = msSince(start);
    }));
  for (auto& f : running) f.get();
  return out;
}

std::vector<PtrProbe> reverseLookups(const std::vector<std::string>& ips, const ProbeConfig& cfg) {
  std::vector<PtrProbe> out;
  using Answer = std::pair<std::optional<std::string>, double>;
  std::vector<std::future<Answer>> answers;
  const auto start = Clock::now();
  for (const auto& ip : ips) {
    out.push_back({ip, std::nullopt, 0, false});
    auto s = std::make_shared<Shared<Answer>>();
    answers.push_back(s->promise.get_future());
    if (!cfg.resolver) {
      s->set({std::nullopt, 0.0});
      continue;
    }
    const auto began = Clock::now();
    cfg.resolver->reverse(ip, [s, began](std::optional<std::string> name) { s->set({std::move(name), msSince(began)}); });
  }
  const auto deadline = start + cfg.dnsTimeout;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (answers[i].wait_until(deadline) != std::future_status::ready) {
      out[i].timedOut = true;
      out[i].ms = msSince(start);
      continue;
    }
    auto [name, ms] = answers[i].get();
    out[i].name = std::move(name);
    out[i].ms = ms;
  }
  return out;
}

}  // namespace imp::troubleshoot
