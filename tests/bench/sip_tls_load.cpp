// B-PROXY-TLS load client: SIP over TLS with OpenSSL, single-threaded epoll,
// non-blocking. Not a test: run by hand or by tests/bench/proxy_tls_bench.sh
// (see docs/BENCHMARKS.md). Debian's SIPp is built without TLS, hence this.
//
//   sip_tls_load relay     --port P [--host H] [--rate R] [--duration D] [--connections N]
//                          [--tls-version 1.2|1.3] [--ca FILE] [--domain example.com]
//   sip_tls_load uas       --port P --cert FILE --key FILE [--host H] [--tls-version 1.2|1.3]
//                          [--duration D]
//   sip_tls_load handshake --port P [--host H] [--duration D] [--inflight K]
//                          [--tls-version 1.2|1.3] [--ca FILE]
//
// relay: N TLS connections, MESSAGE requests (about 350 bytes, each its own
// transaction: branch, Call-ID and CSeq unique) paced every millisecond so
// that R per second go out for D seconds; responses are framed by
// Content-Length and matched to their request by CSeq; latency from handing
// the request to OpenSSL to reading its final response, CLOCK_MONOTONIC.
// After the last send it waits up to --timeout seconds (5) for the
// outstanding answers. One result line of key=value on stdout.
//
// uas: a TLS server answering every request (but ACK) with 200 OK, Via,
// Record-Route, From, To (a tag added), Call-ID and CSeq copied, no body.
// Stops after --duration seconds (default 3600) or on SIGTERM/SIGINT.
//
// handshake: K connections in flight, each a full handshake (no session
// resumption: no session cache, no tickets), then close_notify and wait for
// the server's close_notify or EOF (so the server has finished its side),
// close with RST (no TIME_WAIT); repeated for D seconds.
//
// --tls-version pins the version (min = max); without it 1.2..1.3.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.h"

namespace {

using bench::cpuSeconds;
using bench::die;
using bench::nowNs;
using bench::sslError;

// ---------------------------------------------------------------- options

struct Options {
  std::string mode;
  std::string host = "127.0.0.1";
  int port = 0;
  double rate = 1000;
  double duration = 10;
  int connections = 1;
  int inflight = 8;
  std::string tlsVersion;  // "", "1.2", "1.3"
  std::string ca, cert, key;
  std::string domain = "example.com";
  double timeout = 5;
};

void usage() {
  std::fprintf(stderr,
               "usage: sip_tls_load relay|uas|handshake --port P [--host H] [--rate R] [--duration D]\n"
               "       [--connections N] [--inflight K] [--tls-version 1.2|1.3] [--ca FILE]\n"
               "       [--cert FILE --key FILE] [--domain D] [--timeout S]\n");
  std::exit(2);
}

Options parse(int argc, char** argv) {
  if (argc < 2) usage();
  Options o;
  o.mode = argv[1];
  if (o.mode != "relay" && o.mode != "uas" && o.mode != "handshake") usage();
  for (bench::Args a(argc, argv, 2, usage); a.next();) {
    if (a.is("--host")) o.host = a.value();
    else if (a.is("--port")) o.port = a.integer();
    else if (a.is("--rate")) o.rate = a.num();
    else if (a.is("--duration")) o.duration = a.num();
    else if (a.is("--connections")) o.connections = a.integer();
    else if (a.is("--inflight")) o.inflight = a.integer();
    else if (a.is("--tls-version")) o.tlsVersion = a.value();
    else if (a.is("--ca")) o.ca = a.value();
    else if (a.is("--cert")) o.cert = a.value();
    else if (a.is("--key")) o.key = a.value();
    else if (a.is("--domain")) o.domain = a.value();
    else if (a.is("--timeout")) o.timeout = a.num();
    else usage();
  }
  if (o.port <= 0 || o.port > 65535) die("--port is required (1..65535)");
  if (!o.tlsVersion.empty() && o.tlsVersion != "1.2" && o.tlsVersion != "1.3") die("--tls-version is 1.2 or 1.3");
  if (o.rate <= 0 || o.duration <= 0 || o.connections < 1 || o.inflight < 1 || o.timeout < 0)
    die("--rate, --duration, --connections, --inflight must be positive");
  if (o.mode == "uas" && (o.cert.empty() || o.key.empty())) die("uas needs --cert and --key");
  return o;
}

// ---------------------------------------------------------------- common

void setNonBlocking(int fd) {
  int fl = fcntl(fd, F_GETFL, 0);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die(std::string("fcntl: ") + std::strerror(errno));
}

void setNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

sockaddr_in address(const Options& o) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &sa.sin_addr) != 1) die("--host must be an IPv4 address: " + o.host);
  return sa;
}

// --tls-version: "1.2", "1.3" or "" (1.2..1.3) -> [lo, hi].
void versionRange(const std::string& v, int* lo, int* hi) {
  *lo = TLS1_2_VERSION;
  *hi = TLS1_3_VERSION;
  if (v == "1.2") *lo = *hi = TLS1_2_VERSION;
  if (v == "1.3") *lo = *hi = TLS1_3_VERSION;
}

void pinVersion(SSL_CTX* ctx, const std::string& v) {
  int lo, hi;
  versionRange(v, &lo, &hi);
  SSL_CTX_set_min_proto_version(ctx, lo);
  SSL_CTX_set_max_proto_version(ctx, hi);
}

SSL_CTX* clientContext(const Options& o) {
  bench::ClientTls t;
  versionRange(o.tlsVersion, &t.minVersion, &t.maxVersion);
  t.noResumption = true;  // every connection is a full handshake: nothing kept for resumption
  t.caFile = o.ca;
  t.verifyIp = o.host;  // with --ca: the server's certificate must name the address we connect to
  return bench::clientContext(t);
}

volatile sig_atomic_t g_stop = 0;
void onSignal(int) { g_stop = 1; }

// Case-insensitive header name match, compact forms included.
bool nameIs(std::string_view name, std::string_view full, char compact) {
  if (name.size() == 1 && compact != 0) return (name[0] | 0x20) == compact;
  if (name.size() != full.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if ((name[i] | 0x20) != (full[i] | 0x20)) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// One SIP message out of a stream buffer: [start, start+len) holds the head
// (start line + headers, without the blank line), the body follows.
struct Framed {
  std::string_view head;
  std::size_t total = 0;  // bytes consumed including body; 0 = incomplete
  bool bad = false;
};

Framed frame(std::string_view buf) {
  Framed f;
  std::size_t skip = 0;
  while (skip + 1 < buf.size() && buf[skip] == '\r' && buf[skip + 1] == '\n') skip += 2;  // keep-alive CRLFs
  std::size_t end = buf.find("\r\n\r\n", skip);
  if (end == std::string_view::npos) {
    if (buf.size() - skip > 65536) f.bad = true;
    return f;
  }
  f.head = buf.substr(skip, end - skip);
  std::size_t clen = 0;
  bool have = false;
  std::size_t pos = 0;
  while (pos < f.head.size()) {
    std::size_t eol = f.head.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = f.head.size();
    std::string_view line = f.head.substr(pos, eol - pos);
    pos = eol + 2;
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    if (nameIs(trim(line.substr(0, colon)), "Content-Length", 'l')) {
      std::string_view v = trim(line.substr(colon + 1));
      auto r = std::from_chars(v.data(), v.data() + v.size(), clen);
      if (r.ec != std::errc()) {
        f.bad = true;
        return f;
      }
      have = true;
    }
  }
  if (!have) clen = 0;  // stream transports require it; tolerate its absence as 0
  std::size_t total = end + 4 + clen;
  if (total <= buf.size()) f.total = total;
  return f;
}

// ---------------------------------------------------------------- TLS conn

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  std::string in;
  std::size_t inOff = 0;
  std::string out;
  std::size_t outOff = 0;
  bool wantOut = false;  // EPOLLOUT registered
  bool handshaken = false;
  bool shutdownSent = false;
  std::int64_t started = 0;
  int id = 0;
  bool closed = false;
};

void closeConn(Conn& c, bool rst) {
  if (c.closed) return;
  c.closed = true;
  if (rst) {
    linger l{1, 0};
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  if (c.ssl != nullptr) SSL_free(c.ssl);
  c.ssl = nullptr;
  if (c.fd >= 0) close(c.fd);
  c.fd = -1;
}

void updateEvents(int ep, Conn& c, bool wantOut) {
  if (c.wantOut == wantOut || c.fd < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (wantOut ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
  c.wantOut = wantOut;
}

// Writes what is queued. false = the connection failed.
bool flush(int ep, Conn& c, std::string* err) {
  while (c.outOff < c.out.size()) {
    std::size_t n = std::min<std::size_t>(c.out.size() - c.outOff, 1 << 16);
    ERR_clear_error();
    int w = SSL_write(c.ssl, c.out.data() + c.outOff, static_cast<int>(n));
    if (w > 0) {
      c.outOff += static_cast<std::size_t>(w);
      continue;
    }
    int e = SSL_get_error(c.ssl, w);
    if (e == SSL_ERROR_WANT_WRITE) {
      updateEvents(ep, c, true);
      return true;
    }
    if (e == SSL_ERROR_WANT_READ) return true;  // retried after the next read
    *err = "SSL_write: " + sslError() + " (" + std::strerror(errno) + ")";
    return false;
  }
  c.out.clear();
  c.outOff = 0;
  updateEvents(ep, c, false);
  return true;
}

// Reads what OpenSSL has. Returns false when the connection ended (peer
// close_notify/EOF: *eof = true) or failed.
bool readAll(Conn& c, bool* eof, std::string* err) {
  char buf[1 << 16];
  for (;;) {
    ERR_clear_error();
    int r = SSL_read(c.ssl, buf, sizeof buf);
    if (r > 0) {
      c.in.append(buf, static_cast<std::size_t>(r));
      continue;
    }
    int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
      *eof = true;
      return false;
    }
    *err = "SSL_read: " + sslError();
    return false;
  }
}

void compactIn(Conn& c) {
  if (c.inOff == 0) return;
  if (c.inOff >= c.in.size()) {
    c.in.clear();
  } else if (c.inOff > (1 << 16)) {
    c.in.erase(0, c.inOff);
  } else {
    return;
  }
  c.inOff = 0;
}

// Blocking connect + handshake (relay mode, before the clock starts).
Conn* connectBlocking(const Options& o, SSL_CTX* ctx, std::string* version, std::string* cipher) {
  sockaddr_in sa = address(o);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    die("connect " + o.host + ":" + std::to_string(o.port) + ": " + std::strerror(errno));
  setNoDelay(fd);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) die("TLS handshake with " + o.host + ":" + std::to_string(o.port) + ": " + sslError());
  *version = SSL_get_version(ssl);
  *cipher = SSL_get_cipher_name(ssl);
  setNonBlocking(fd);
  auto* c = new Conn;
  c->fd = fd;
  c->ssl = ssl;
  c->handshaken = true;
  return c;
}

double pctMs(std::vector<std::int64_t>& v, double q) {
  if (v.empty()) return -1;
  std::size_t k = static_cast<std::size_t>(q * static_cast<double>(v.size()));
  if (k > 0 && static_cast<double>(k) == q * static_cast<double>(v.size())) --k;  // nearest-rank
  if (k >= v.size()) k = v.size() - 1;
  return static_cast<double>(v[k]) / 1e6;
}

// ---------------------------------------------------------------- relay

int runRelay(const Options& o) {
  SSL_CTX* ctx = clientContext(o);
  int ep = epoll_create1(0);
  std::vector<std::unique_ptr<Conn>> conns;
  std::string version, cipher;
  for (int i = 0; i < o.connections; ++i) {
    conns.emplace_back(connectBlocking(o, ctx, &version, &cipher));
    Conn& c = *conns.back();
    c.id = i;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &c;
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  }
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  {
    itimerspec its{};
    its.it_interval.tv_nsec = 1000000;
    its.it_value.tv_nsec = 1000000;
    timerfd_settime(tfd, 0, &its, nullptr);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
  }

  const std::uint64_t total = static_cast<std::uint64_t>(o.rate * o.duration + 0.5);
  std::vector<std::int64_t> sentAt(total, 0);
  std::vector<std::uint8_t> done(total, 0);
  std::vector<std::int64_t> lat;
  lat.reserve(total);
  std::map<int, std::uint64_t> statuses;  // final non-200 statuses
  std::uint64_t sent = 0, ok = 0, other = 0, dup = 0, provisional = 0, unmatched = 0, answered = 0;
  std::vector<std::uint16_t> localPorts;
  for (auto& c : conns) {
    sockaddr_in la{};
    socklen_t ll = sizeof la;
    getsockname(c->fd, reinterpret_cast<sockaddr*>(&la), &ll);
    localPorts.push_back(ntohs(la.sin_port));
  }
  const std::string pid = std::to_string(getpid());
  const std::string body = "Hello from sip_tls_load, one MESSAGE of the B-PROXY-TLS benchmark, call ";
  std::string err;
  std::size_t rr = 0;

  auto append = [&](Conn& c, std::uint64_t seq) {
    std::string n = std::to_string(seq + 1);
    std::string b = body + n;
    std::string& s = c.out;
    s += "MESSAGE sip:bob@";
    s += o.domain;
    s += " SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:";
    s += std::to_string(localPorts[static_cast<std::size_t>(c.id)]);
    s += ";branch=z9hG4bK-";
    s += pid;
    s += '-';
    s += n;
    s += "\r\nFrom: <sip:ann@";
    s += o.domain;
    s += ">;tag=";
    s += pid;
    s += "t";
    s += n;
    s += "\r\nTo: <sip:bob@";
    s += o.domain;
    s += ">\r\nCall-ID: ";
    s += n;
    s += '-';
    s += pid;
    s += "@127.0.0.1\r\nCSeq: ";
    s += n;
    s += " MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: ";
    s += std::to_string(b.size());
    s += "\r\n\r\n";
    s += b;
  };

  auto handle = [&](std::string_view head, std::int64_t t) {
    // "SIP/2.0 200 OK"
    if (head.size() < 12 || head.substr(0, 8) != "SIP/2.0 ") {
      ++unmatched;
      return;
    }
    int status = 0;
    std::from_chars(head.data() + 8, head.data() + 11, status);
    std::uint64_t cseq = 0;
    bool have = false;
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos < head.size()) {
      pos += 2;
      std::size_t eol = head.find("\r\n", pos);
      std::string_view line = head.substr(pos, (eol == std::string_view::npos ? head.size() : eol) - pos);
      std::size_t colon = line.find(':');
      if (colon != std::string_view::npos && nameIs(trim(line.substr(0, colon)), "CSeq", 0)) {
        std::string_view v = trim(line.substr(colon + 1));
        have = std::from_chars(v.data(), v.data() + v.size(), cseq).ec == std::errc();
        break;
      }
      pos = eol;
    }
    if (!have || cseq == 0 || cseq > sent) {
      ++unmatched;
      return;
    }
    if (status < 200) {
      ++provisional;
      return;
    }
    std::uint64_t k = cseq - 1;
    if (done[k]) {
      ++dup;
      return;
    }
    done[k] = 1;
    ++answered;
    if (status == 200) {
      ++ok;
      lat.push_back(t - sentAt[k]);
    } else {
      ++other;
      ++statuses[status];
    }
  };

  const double cpu0 = cpuSeconds();
  const std::int64_t t0 = nowNs();
  const std::int64_t sendEnd = t0 + static_cast<std::int64_t>(o.duration * 1e9);
  std::int64_t lastSend = t0;
  std::int64_t deadline = 0;  // set once every request is out
  bool failed = false;
  epoll_event evs[64];
  while (!failed) {
    std::int64_t now = nowNs();
    if (sent < total) {
      std::uint64_t due = now >= sendEnd ? total
                                         : std::min<std::uint64_t>(total, static_cast<std::uint64_t>(
                                                                              static_cast<double>(now - t0) * o.rate / 1e9));
      if (due > sent) {
        std::uint64_t n = due - sent;
        std::size_t nc = conns.size();
        for (std::uint64_t i = 0; i < n; ++i) {
          Conn& c = *conns[(rr + i) % nc];
          sentAt[sent] = now;
          append(c, sent);
          ++sent;
        }
        rr = (rr + static_cast<std::size_t>(n)) % nc;
        for (auto& c : conns)
          if (c->outOff < c->out.size() && !c->wantOut && !flush(ep, *c, &err)) failed = true;
        lastSend = now;
      }
      if (sent == total) deadline = lastSend + static_cast<std::int64_t>(o.timeout * 1e9);
    } else if (answered >= total || now >= deadline) {
      break;
    }
    int n = epoll_wait(ep, evs, 64, 100);
    if (n < 0 && errno != EINTR) die(std::string("epoll_wait: ") + std::strerror(errno));
    std::int64_t t = nowNs();
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.ptr == nullptr) {
        std::uint64_t exp;
        while (read(tfd, &exp, sizeof exp) > 0) {
        }
        continue;
      }
      Conn& c = *static_cast<Conn*>(evs[i].data.ptr);
      if (c.closed) continue;
      if ((evs[i].events & EPOLLOUT) && !flush(ep, c, &err)) {
        failed = true;
        break;
      }
      if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        bool eof = false;
        bool alive = readAll(c, &eof, &err);
        for (;;) {
          Framed f = frame(std::string_view(c.in).substr(c.inOff));
          if (f.bad) {
            err = "unframeable response stream";
            alive = false;
            break;
          }
          if (f.total == 0) break;
          handle(f.head, t);
          c.inOff += f.total;
        }
        compactIn(c);
        if (!alive) {
          if (eof) err = "server closed the connection";
          failed = true;
          break;
        }
        if (c.outOff < c.out.size() && !c.wantOut && !flush(ep, c, &err)) {
          failed = true;
          break;
        }
      }
    }
  }
  const std::int64_t t1 = nowNs();
  const double cpu = cpuSeconds() - cpu0;
  std::sort(lat.begin(), lat.end());
  double sendSecs = static_cast<double>(lastSend - t0) / 1e9;
  if (sendSecs < o.duration) sendSecs = o.duration;  // the last batch goes out just before the end
  std::string st;
  for (auto& [code, cnt] : statuses) {
    if (!st.empty()) st += ',';
    st += std::to_string(code);
    st += ':';
    st += std::to_string(cnt);
  }
  std::printf(
      "mode=relay tls=%s cipher=%s conns=%d target=%.0f duration=%.1f sent=%llu ok=%llu other=%llu statuses=%s "
      "timeouts=%llu dup=%llu provisional=%llu unmatched=%llu rate=%.0f ok_rate=%.0f p50=%.3f p99=%.3f p999=%.3f "
      "max=%.3f wall=%.2f client_cpu=%.0f%% error=%s\n",
      version.c_str(), cipher.c_str(), o.connections, o.rate, o.duration, static_cast<unsigned long long>(sent),
      static_cast<unsigned long long>(ok), static_cast<unsigned long long>(other), st.empty() ? "-" : st.c_str(),
      static_cast<unsigned long long>(sent - answered), static_cast<unsigned long long>(dup),
      static_cast<unsigned long long>(provisional), static_cast<unsigned long long>(unmatched),
      static_cast<double>(sent) / sendSecs, static_cast<double>(ok) / sendSecs, pctMs(lat, 0.5), pctMs(lat, 0.99),
      pctMs(lat, 0.999), lat.empty() ? -1.0 : static_cast<double>(lat.back()) / 1e6,
      static_cast<double>(t1 - t0) / 1e9, 100 * cpu / (static_cast<double>(t1 - t0) / 1e9),
      err.empty() ? "-" : err.c_str());
  for (auto& c : conns) {
    if (c->ssl != nullptr && !failed) SSL_shutdown(c->ssl);
    closeConn(*c, false);
  }
  SSL_CTX_free(ctx);
  return failed ? 1 : 0;
}

// ---------------------------------------------------------------- uas

struct Header {
  std::string_view name, line;
};

// 200 OK for one request head; false when none is due (ACK, responses).
bool answer(std::string_view head, std::string& out, std::uint64_t n) {
  if (head.substr(0, 4) == "ACK " || head.substr(0, 8) == "SIP/2.0 ") return false;
  out += "SIP/2.0 200 OK\r\n";
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos < head.size()) {
    pos += 2;
    std::size_t eol = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, (eol == std::string_view::npos ? head.size() : eol) - pos);
    pos = eol;
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = trim(line.substr(0, colon));
    if (nameIs(name, "Via", 'v') || nameIs(name, "Record-Route", 0) || nameIs(name, "From", 'f') ||
        nameIs(name, "Call-ID", 'i') || nameIs(name, "CSeq", 0)) {
      out += line;
      out += "\r\n";
    } else if (nameIs(name, "To", 't')) {
      out += line;
      if (line.find(";tag=") == std::string_view::npos) {
        out += ";tag=uas";
        out += std::to_string(n);
      }
      out += "\r\n";
    }
  }
  out += "Content-Length: 0\r\n\r\n";
  return true;
}

int runUas(const Options& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) die("SSL_CTX_new: " + sslError());
  pinVersion(ctx, o.tlsVersion);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, o.cert.c_str()) != 1) die("--cert " + o.cert + ": " + sslError());
  if (SSL_CTX_use_PrivateKey_file(ctx, o.key.c_str(), SSL_FILETYPE_PEM) != 1) die("--key " + o.key + ": " + sslError());
  sockaddr_in sa = address(o);
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    die("bind " + o.host + ":" + std::to_string(o.port) + ": " + std::strerror(errno));
  if (listen(lfd, 1024) != 0) die(std::string("listen: ") + std::strerror(errno));
  setNonBlocking(lfd);
  signal(SIGTERM, onSignal);
  signal(SIGINT, onSignal);
  signal(SIGPIPE, SIG_IGN);
  int ep = epoll_create1(0);
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  std::vector<std::unique_ptr<Conn>> conns;
  std::uint64_t requests = 0, accepted = 0, failedHs = 0;
  const std::int64_t end = nowNs() + static_cast<std::int64_t>(o.duration * 1e9);
  epoll_event evs[64];
  std::string err;
  std::fprintf(stderr, "sip_tls_load uas: listening on %s:%d\n", o.host.c_str(), o.port);
  while (!g_stop && nowNs() < end) {
    int n = epoll_wait(ep, evs, 64, 200);
    if (n < 0 && errno != EINTR) die(std::string("epoll_wait: ") + std::strerror(errno));
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.ptr == nullptr) {
        for (;;) {
          int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (fd < 0) break;
          setNoDelay(fd);
          auto c = std::make_unique<Conn>();
          c->fd = fd;
          c->ssl = SSL_new(ctx);
          SSL_set_fd(c->ssl, fd);
          SSL_set_accept_state(c->ssl);
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.ptr = c.get();
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
          conns.push_back(std::move(c));
          ++accepted;
        }
        continue;
      }
      Conn& c = *static_cast<Conn*>(evs[i].data.ptr);
      if (c.closed) continue;
      if (!c.handshaken) {
        ERR_clear_error();
        int r = SSL_do_handshake(c.ssl);
        if (r == 1) {
          c.handshaken = true;
          updateEvents(ep, c, false);
        } else {
          int e = SSL_get_error(c.ssl, r);
          if (e == SSL_ERROR_WANT_READ) updateEvents(ep, c, false);
          else if (e == SSL_ERROR_WANT_WRITE) updateEvents(ep, c, true);
          else {
            ++failedHs;
            closeConn(c, true);
          }
          continue;
        }
      }
      if ((evs[i].events & EPOLLOUT) && !flush(ep, c, &err)) {
        closeConn(c, true);
        continue;
      }
      bool eof = false;
      bool alive = readAll(c, &eof, &err);
      for (;;) {
        Framed f = frame(std::string_view(c.in).substr(c.inOff));
        if (f.bad) {
          alive = false;
          break;
        }
        if (f.total == 0) break;
        if (answer(f.head, c.out, requests)) ++requests;
        c.inOff += f.total;
      }
      compactIn(c);
      if (!c.out.empty() && !c.wantOut && !flush(ep, c, &err)) alive = false;
      if (!alive) {
        if (eof && c.ssl != nullptr) SSL_shutdown(c.ssl);
        closeConn(c, !eof);
      }
    }
    // forget closed connections now and then
    if (conns.size() > 64)
      conns.erase(std::remove_if(conns.begin(), conns.end(), [](const auto& c) { return c->closed; }), conns.end());
  }
  std::fprintf(stderr, "sip_tls_load uas: %llu connections, %llu failed handshakes, %llu requests answered\n",
               static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(failedHs),
               static_cast<unsigned long long>(requests));
  for (auto& c : conns) closeConn(*c, false);
  close(lfd);
  SSL_CTX_free(ctx);
  return 0;
}

// ---------------------------------------------------------------- handshake

int runHandshake(const Options& o) {
  SSL_CTX* ctx = clientContext(o);
  signal(SIGPIPE, SIG_IGN);
  int ep = epoll_create1(0);
  sockaddr_in sa = address(o);
  std::vector<Conn> slots(static_cast<std::size_t>(o.inflight));
  std::uint64_t done = 0, failed = 0, timedOut = 0;
  std::vector<std::int64_t> lat;
  std::map<std::string, std::uint64_t> versions;
  std::string lastErr;
  const std::int64_t timeoutNs = static_cast<std::int64_t>((o.timeout > 0 ? o.timeout : 5) * 1e9);

  auto start = [&](Conn& c) {
    c = Conn{};
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c.fd < 0) die(std::string("socket: ") + std::strerror(errno));
    setNoDelay(c.fd);
    int r = connect(c.fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    if (r != 0 && errno != EINPROGRESS) die(std::string("connect: ") + std::strerror(errno));
    c.ssl = SSL_new(ctx);
    SSL_set_fd(c.ssl, c.fd);
    SSL_set_connect_state(c.ssl);
    c.started = nowNs();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = &c;
    c.wantOut = true;
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  };
  auto finish = [&](Conn& c, bool ok, const std::string& why) {
    if (ok) {
      ++done;
      lat.push_back(nowNs() - c.started);
    } else {
      ++failed;
      lastErr = why;
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    closeConn(c, true);
  };
  // drives one connection: handshake, then close_notify, then wait for the
  // server's close_notify/EOF
  auto step = [&](Conn& c) {
    ERR_clear_error();
    if (!c.handshaken) {
      int r = SSL_do_handshake(c.ssl);
      if (r != 1) {
        int e = SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_WANT_READ) updateEvents(ep, c, false);
        else if (e == SSL_ERROR_WANT_WRITE) updateEvents(ep, c, true);
        else finish(c, false, "handshake: " + sslError() + " " + std::strerror(errno));
        return;
      }
      c.handshaken = true;
      ++versions[SSL_get_version(c.ssl)];
    }
    if (!c.shutdownSent) {
      int r = SSL_shutdown(c.ssl);
      if (r < 0) {
        int e = SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_WANT_WRITE) {
          updateEvents(ep, c, true);
          return;
        }
        if (e != SSL_ERROR_WANT_READ) {
          finish(c, false, "close_notify: " + sslError());
          return;
        }
      }
      c.shutdownSent = true;
      updateEvents(ep, c, false);
    }
    char buf[4096];
    for (;;) {
      ERR_clear_error();
      int r = SSL_read(c.ssl, buf, sizeof buf);
      if (r > 0) continue;  // tickets are handled inside; data is ignored
      int e = SSL_get_error(c.ssl, r);
      if (e == SSL_ERROR_WANT_READ) return;
      if (e == SSL_ERROR_WANT_WRITE) {
        updateEvents(ep, c, true);
        return;
      }
      // close_notify, EOF or a reset after the server finished: done
      finish(c, true, "");
      return;
    }
  };

  const double cpu0 = cpuSeconds();
  const std::int64_t t0 = nowNs();
  const std::int64_t end = t0 + static_cast<std::int64_t>(o.duration * 1e9);
  for (auto& c : slots) start(c);
  epoll_event evs[256];
  std::int64_t lastSweep = t0;
  for (;;) {
    std::int64_t now = nowNs();
    bool stopping = now >= end;
    if (stopping) {
      bool any = false;
      for (auto& c : slots) any = any || !c.closed;
      if (!any || now >= end + timeoutNs) break;
    }
    int n = epoll_wait(ep, evs, 256, 50);
    if (n < 0 && errno != EINTR) die(std::string("epoll_wait: ") + std::strerror(errno));
    for (int i = 0; i < n; ++i) {
      Conn& c = *static_cast<Conn*>(evs[i].data.ptr);
      if (c.closed) continue;
      step(c);
      if (c.closed && nowNs() < end) start(c);
    }
    now = nowNs();
    if (now - lastSweep > 100000000) {
      lastSweep = now;
      for (auto& c : slots)
        if (!c.closed && now - c.started > timeoutNs) {
          ++timedOut;
          finish(c, false, "timeout");
          if (now < end) start(c);
        }
    }
  }
  const std::int64_t t1 = nowNs();
  const double cpu = cpuSeconds() - cpu0;
  std::sort(lat.begin(), lat.end());
  std::string vs;
  for (auto& [v, cnt] : versions) {
    if (!vs.empty()) vs += ',';
    vs += v;
    vs += ':';
    vs += std::to_string(cnt);
  }
  double secs = static_cast<double>(t1 - t0) / 1e9;
  std::printf(
      "mode=handshake inflight=%d duration=%.1f handshakes=%llu failed=%llu timeouts=%llu rate=%.0f versions=%s "
      "p50=%.3f p99=%.3f max=%.3f wall=%.2f client_cpu=%.0f%% error=%s\n",
      o.inflight, o.duration, static_cast<unsigned long long>(done), static_cast<unsigned long long>(failed),
      static_cast<unsigned long long>(timedOut), static_cast<double>(done) / secs, vs.empty() ? "-" : vs.c_str(),
      pctMs(lat, 0.5), pctMs(lat, 0.99), lat.empty() ? -1.0 : static_cast<double>(lat.back()) / 1e6, secs,
      100 * cpu / secs, lastErr.empty() ? "-" : lastErr.c_str());
  for (auto& c : slots) closeConn(c, true);
  SSL_CTX_free(ctx);
  return done > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bench::program = "sip_tls_load";
  Options o = parse(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  if (o.mode == "relay") return runRelay(o);
  if (o.mode == "uas") return runUas(o);
  return runHandshake(o);
}
