// B-FED-IM, B-FED-SUBS, B-FED-RECOVERY load client: the Microsoft (Lync)
// side of partitioned federation over mutual TLS, single-threaded epoll,
// non-blocking OpenSSL. Not a test: run by tests/bench/fed_bench.sh (see
// tests/bench/README.md and docs/BENCHMARKS.md). The Python Lync emulator
// (tests/peers/lync_emulator.py) is the faithful one; this one is fast.
//
//   fed_load --port P --cert FILE --key FILE [--ca FILE] [--host 127.0.0.1]
//            [--listen-port L] [--connections K] [--domain example.com]
//            [--native-prefix user] [--native-users N] [--lync-prefix lync]
//            [--inflight F] [--expires 3600] [--max-seconds S]
//
// It opens K TLS connections to impd's SIP proxy (its peer-auth listener,
// P), presenting FILE as its client certificate, and listens on L (TLS,
// the same certificate) for the requests impd's proxy sends toward the
// Microsoft side (its static route and the Contacts below point there).
// Every request that arrives, on any connection, is answered on that
// connection: NOTIFY, OPTIONS, MESSAGE, INFO, BYE 200; SUBSCRIBE (a native
// watcher subscribing to a Microsoft user) 200 and at once a NOTIFY
// (active, PIDF "open") in its dialog (the UAS role of B-FED-RECOVERY).
//
// Names: native user i is PREFIX<i> (1..N), Microsoft user j lync<j>.
// Dialog k (INVITE or SUBSCRIBE) pairs native user (k mod N) + 1 with
// Microsoft user k / N + 1: N native users x W watchers each.
//
// Commands on stdin, one per line, each answered by one line of key=value:
//   invite M           M INVITE dialogs (SDP m=message 5060 sip null), F in
//                      flight, ACK for each 200.
//   im RATE SECS       MESSAGEs (text/plain; charset=UTF-8, body "t=<send
//                      ns> seq=<n> ...": CLOCK_MONOTONIC, the receiver
//                      times the arrival) round robin over the INVITE
//                      dialogs, paced every millisecond; SIP latency =
//                      send -> 200. Waits up to 10 s for the answers.
//   subscribe C RATE   C more SUBSCRIBEs (Event: presence, Accept:
//                      application/pidf+xml, Expires), F in flight at most,
//                      RATE per second; waits (up to 120 s after the last)
//                      until each is answered and has had a NOTIFY with a
//                      PIDF body. Reports the rate and counts.
//   refresh RATE SECS  re-SUBSCRIBE in dialog (same Expires) round robin over
//                      the held subscriptions; answers counted, latency.
//   mark               from now on: which held subscriptions got a NOTIFY
//                      with a PIDF, which SUBSCRIBEs the UAS answered.
//   wait-notified SECS until every held subscription has had a PIDF NOTIFY
//                      since the mark: time from the mark to the last one.
//   wait-uas N SECS    until N distinct (watcher, target) SUBSCRIBEs were
//                      answered by the UAS since the mark: time to the Nth.
//   reconnect          opens the K client connections again (after impd
//                      restarted), retrying for up to 60 s.
//   down / up          the Microsoft side unreachable: listener and every
//                      connection closed / listening again, having
//                      forgotten nothing it needs (it answers any dialog).
//   stats              counters.
//   quit               exits (EOF on stdin too).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bench_common.h"

namespace {

using bench::cpuSeconds;
using bench::die;
using bench::nowNs;
using bench::sslError;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0, listenPort = 0, connections = 4, nativeUsers = 100, inflight = 2000, expires = 3600;
  std::string cert, key, ca, domain = "example.com", nativePrefix = "user", lyncPrefix = "lync";
  double maxSeconds = 1800;
};

void usage() {
  std::fprintf(stderr,
               "usage: fed_load --port P --cert FILE --key FILE [--ca FILE] [--host H] [--listen-port L]\n"
               "       [--connections K] [--domain D] [--native-prefix user] [--native-users N]\n"
               "       [--lync-prefix lync] [--inflight F] [--expires E] [--max-seconds S]\n"
               "then commands on stdin (see the header of fed_load.cpp)\n");
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (bench::Args a(argc, argv, 1, usage); a.next();) {
    if (a.is("--host")) o.host = a.value();
    else if (a.is("--port")) o.port = a.integer();
    else if (a.is("--listen-port")) o.listenPort = a.integer();
    else if (a.is("--connections")) o.connections = a.integer();
    else if (a.is("--cert")) o.cert = a.value();
    else if (a.is("--key")) o.key = a.value();
    else if (a.is("--ca")) o.ca = a.value();
    else if (a.is("--domain")) o.domain = a.value();
    else if (a.is("--native-prefix")) o.nativePrefix = a.value();
    else if (a.is("--native-users")) o.nativeUsers = a.integer();
    else if (a.is("--lync-prefix")) o.lyncPrefix = a.value();
    else if (a.is("--inflight")) o.inflight = a.integer();
    else if (a.is("--expires")) o.expires = a.integer();
    else if (a.is("--max-seconds")) o.maxSeconds = a.num();
    else usage();
  }
  if (o.port <= 0 || o.port > 65535) die("--port is required");
  if (o.cert.empty() || o.key.empty()) die("--cert and --key are required (mutual TLS)");
  if (o.nativeUsers < 1 || o.inflight < 1 || o.connections < 0) die("bad --native-users / --inflight / --connections");
  return o;
}

volatile sig_atomic_t gStop = 0;
void onSignal(int) { gStop = 1; }

// ---------------------------------------------------------------- SIP text

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

// Top-level comma split (not inside <> or quotes).
std::vector<std::string_view> splitList(std::string_view v) {
  std::vector<std::string_view> out;
  int angle = 0;
  bool quote = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c == '"') quote = !quote;
    else if (!quote && c == '<') ++angle;
    else if (!quote && c == '>') --angle;
    else if (!quote && angle == 0 && c == ',') {
      out.push_back(trim(v.substr(start, i - start)));
      start = i + 1;
    }
  }
  out.push_back(trim(v.substr(start)));
  return out;
}

struct Msg {
  std::string_view start, body;
  bool request = false;
  std::string_view method;  // request: method; response: CSeq method
  int status = 0;
  std::vector<std::string_view> vias, recordRoutes;
  std::string_view from, to, callId, cseq, contact, contentType, subState;
  std::uint32_t cseqNum = 0;
};

// One message from buf: its total length (0 = incomplete, SIZE_MAX = bad).
std::size_t parse(std::string_view buf, Msg& m) {
  std::size_t skip = 0;
  while (skip + 1 < buf.size() && buf[skip] == '\r' && buf[skip + 1] == '\n') skip += 2;
  std::size_t end = buf.find("\r\n\r\n", skip);
  if (end == std::string_view::npos) return buf.size() - skip > 262144 ? SIZE_MAX : 0;
  std::string_view head = buf.substr(skip, end - skip);
  std::size_t eol = head.find("\r\n");
  m.start = head.substr(0, eol);
  std::size_t clen = 0;
  std::size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    std::size_t e = head.find("\r\n", pos);
    if (e == std::string_view::npos) e = head.size();
    std::string_view line = head.substr(pos, e - pos);
    pos = e + 2;
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view n = trim(line.substr(0, colon)), v = trim(line.substr(colon + 1));
    if (nameIs(n, "Via", 'v')) {
      for (auto x : splitList(v)) m.vias.push_back(x);
    } else if (nameIs(n, "Record-Route", 0)) {
      for (auto x : splitList(v)) m.recordRoutes.push_back(x);
    } else if (nameIs(n, "From", 'f')) m.from = v;
    else if (nameIs(n, "To", 't')) m.to = v;
    else if (nameIs(n, "Call-ID", 'i')) m.callId = v;
    else if (nameIs(n, "CSeq", 0)) m.cseq = v;
    else if (nameIs(n, "Contact", 'm')) { if (m.contact.empty()) m.contact = v; }
    else if (nameIs(n, "Content-Type", 'c')) m.contentType = v;
    else if (nameIs(n, "Subscription-State", 0)) m.subState = v;
    else if (nameIs(n, "Content-Length", 'l')) {
      auto r = std::from_chars(v.data(), v.data() + v.size(), clen);
      if (r.ec != std::errc()) return SIZE_MAX;
    }
  }
  std::size_t total = end + 4 + clen;
  if (total > buf.size()) return 0;
  m.body = buf.substr(end + 4, clen);
  if (m.start.rfind("SIP/2.0 ", 0) == 0) {
    m.request = false;
    std::from_chars(m.start.data() + 8, m.start.data() + m.start.size(), m.status);
  } else {
    m.request = true;
    m.method = m.start.substr(0, m.start.find(' '));
  }
  {
    auto sp = m.cseq.find(' ');
    std::from_chars(m.cseq.data(), m.cseq.data() + m.cseq.size(), m.cseqNum);
    if (!m.request && sp != std::string_view::npos) m.method = trim(m.cseq.substr(sp + 1));
  }
  return total;
}

std::string_view param(std::string_view v, std::string_view name) {
  // ;name=value in a header value, outside <>.
  std::size_t gt = v.rfind('>');
  std::size_t from = gt == std::string_view::npos ? 0 : gt;
  std::string key = ";" + std::string(name) + "=";
  std::size_t p = v.find(key, from);
  if (p == std::string_view::npos) return {};
  p += key.size();
  std::size_t e = v.find_first_of(";, >", p);
  return v.substr(p, e == std::string_view::npos ? std::string_view::npos : e - p);
}

std::string_view uriOf(std::string_view v) {
  auto lt = v.find('<');
  if (lt != std::string_view::npos) {
    auto gt = v.find('>', lt);
    return v.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1);
  }
  auto semi = v.find(';');
  return trim(v.substr(0, semi));
}

// ---------------------------------------------------------------- connections

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  std::string in, out;
  std::size_t inOff = 0, outOff = 0;
  bool wantOut = false, handshaken = false, client = false, dead = false;
  int index = -1;  // client connection index
};

struct Dlg {
  std::string callId, localTag, remoteTag, localUri, remoteUri, remoteTarget;
  std::vector<std::string> routes;
  std::uint32_t cseq = 1;
  bool up = false, failed = false, pidf = false, pidfSinceMark = false;
  std::uint32_t notifies = 0;
};

enum class Kind : std::uint8_t { Invite, Message, Subscribe, Refresh, Other };
struct Tx {
  Kind kind;
  std::uint32_t dlg;
  std::int64_t sentNs;
};

std::string codesText(const std::map<int, std::uint64_t>& now, const std::map<int, std::uint64_t>& before) {
  std::string out;
  for (auto [c, n] : now) {
    auto it = before.find(c);
    std::uint64_t d = n - (it == before.end() ? 0 : it->second);
    if (d == 0) continue;
    if (!out.empty()) out += ',';
    out.append(std::to_string(c)).append(":").append(std::to_string(d));
  }
  return out.empty() ? "-" : out;
}

double pct(std::vector<std::int64_t>& v, double q) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  std::size_t k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  if (k > 0) --k;
  return static_cast<double>(v[std::min(k, v.size() - 1)]) / 1e6;
}

class Load {
 public:
  explicit Load(Options o) : o_(std::move(o)), pid_(std::to_string(getpid())) {}
  int run();

 private:
  // I/O
  void setup();
  bool connectClients(double secs);
  void listenTls();
  void closeListener();
  void accept();
  void closeConn(Conn* c);
  void onEvent(Conn* c, std::uint32_t ev);
  void handshake(Conn* c);
  void readConn(Conn* c);
  void flush(Conn* c);
  void want(Conn* c, bool out);
  void send(Conn* c, const std::string& s);
  Conn* clientFor(std::uint32_t k);
  void poll(int timeoutMs);
  template <class Pred, class Tick>
  void runUntil(std::int64_t untilNs, Pred pred, Tick tick);
  // SIP
  void onMessage(Conn* c, const Msg& m);
  void onResponse(const Msg& m);
  void onRequest(Conn* c, const Msg& m);
  void respond(Conn* c, const Msg& m, int code, std::string_view reason, const std::string& toTag = {},
               const std::string& extra = {}, std::string_view body = {}, std::string_view ctype = {});
  std::uint64_t request(Conn* c, Dlg& d, std::string_view method, Kind kind, std::uint32_t k, const std::string& extra,
                        std::string_view body = {}, std::string_view ctype = {}, bool newTx = true);
  std::string native(std::uint32_t k) const {
    return o_.nativePrefix + std::to_string(k % static_cast<std::uint32_t>(o_.nativeUsers) + 1) + "@" + o_.domain;
  }
  std::string lync(std::uint32_t k) const {
    return o_.lyncPrefix + std::to_string(k / static_cast<std::uint32_t>(o_.nativeUsers) + 1) + "@" + o_.domain;
  }
  std::string contact(const std::string& aor) const {
    return "<sip:" + aor.substr(0, aor.find('@')) + "@" + o_.host + ":" + std::to_string(boundPort_) + ";transport=tls>";
  }
  Dlg* dlgOf(std::string_view callId);
  std::string pidf(const std::string& entity) const;
  // commands
  void cmdInvite(std::uint32_t m);
  void cmdIm(double rate, double secs);
  void cmdSubscribe(std::uint32_t c, double rate);
  void cmdRefresh(double rate, double secs);
  void cmdWaitNotified(double secs);
  void cmdWaitUas(std::uint64_t n, double secs);
  void cmdStats();
  void downAll();

  Options o_;
  std::string pid_;
  SSL_CTX* cctx_ = nullptr;
  SSL_CTX* sctx_ = nullptr;
  int ep_ = -1, tfd_ = -1, lfd_ = -1;
  int boundPort_ = 0;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<Conn*> clients_;
  std::vector<Dlg> inv_, subs_;
  std::unordered_map<std::uint64_t, Tx> txs_;
  std::uint64_t nextTx_ = 1;
  std::string stdinBuf_;
  std::vector<std::string> lines_;
  bool stdinEof_ = false;
  std::int64_t deadline_ = 0;
  // counters
  std::uint64_t okInvite_ = 0, failInvite_ = 0, okMsg_ = 0, failMsg_ = 0, okSub_ = 0, failSub_ = 0, okRef_ = 0,
                failRef_ = 0, notifiesIn_ = 0, pidfNotifies_ = 0, terminatedNotifies_ = 0, uasSubscribes_ = 0,
                uasNotifyOk_ = 0, optionsIn_ = 0, otherIn_ = 0, connLost_ = 0, accepted_ = 0, badFrames_ = 0;
  std::map<int, std::uint64_t> failCodes_;
  std::vector<std::int64_t> lat_;
  std::int64_t markNs_ = 0, lastPidfNs_ = 0, lastUasNs_ = 0;
  std::uint64_t pidfSinceMark_ = 0;
  std::unordered_set<std::string> uasPairs_;
  bool down_ = false;
};

// ---------------------------------------------------------------- I/O

void setNonBlocking(int fd) {
  int fl = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void Load::setup() {
  cctx_ = SSL_CTX_new(TLS_client_method());
  sctx_ = SSL_CTX_new(TLS_server_method());
  if (!cctx_ || !sctx_) die("SSL_CTX_new: " + sslError());
  for (SSL_CTX* c : {cctx_, sctx_}) {
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(c, o_.cert.c_str()) != 1) die("--cert " + o_.cert + ": " + sslError());
    if (SSL_CTX_use_PrivateKey_file(c, o_.key.c_str(), SSL_FILETYPE_PEM) != 1) die("--key " + o_.key + ": " + sslError());
  }
  if (!o_.ca.empty()) {
    if (SSL_CTX_load_verify_locations(cctx_, o_.ca.c_str(), nullptr) != 1) die("--ca: " + sslError());
    SSL_CTX_set_verify(cctx_, SSL_VERIFY_PEER, nullptr);
    // The proxy's outgoing connections show their certificate too.
    SSL_CTX_load_verify_locations(sctx_, o_.ca.c_str(), nullptr);
    SSL_CTX_set_verify(sctx_, SSL_VERIFY_PEER, nullptr);
  }
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  tfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  itimerspec its{};
  its.it_interval.tv_nsec = 1000000;
  its.it_value.tv_nsec = 1000000;
  timerfd_settime(tfd_, 0, &its, nullptr);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 1;  // timer
  epoll_ctl(ep_, EPOLL_CTL_ADD, tfd_, &ev);
  setNonBlocking(0);
  ev.data.u64 = 2;  // stdin
  epoll_ctl(ep_, EPOLL_CTL_ADD, 0, &ev);
  listenTls();
}

void Load::listenTls() {
  lfd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(boundPort_ ? boundPort_ : o_.listenPort));
  inet_pton(AF_INET, o_.host.c_str(), &sa.sin_addr);
  if (bind(lfd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(lfd_, 1024) != 0)
    die(std::string("listen: ") + std::strerror(errno));
  socklen_t l = sizeof sa;
  getsockname(lfd_, reinterpret_cast<sockaddr*>(&sa), &l);
  boundPort_ = ntohs(sa.sin_port);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 3;  // listener
  epoll_ctl(ep_, EPOLL_CTL_ADD, lfd_, &ev);
}

void Load::closeListener() {
  if (lfd_ < 0) return;
  epoll_ctl(ep_, EPOLL_CTL_DEL, lfd_, nullptr);
  close(lfd_);
  lfd_ = -1;
}

bool Load::connectClients(double secs) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(o_.port));
  inet_pton(AF_INET, o_.host.c_str(), &sa.sin_addr);
  clients_.clear();
  std::int64_t until = nowNs() + static_cast<std::int64_t>(secs * 1e9);
  for (int i = 0; i < o_.connections; ++i) {
    for (;;) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      SSL* ssl = nullptr;
      if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ssl = SSL_new(cctx_);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) == 1) {
          setNonBlocking(fd);
          auto c = std::make_unique<Conn>();
          c->fd = fd;
          c->ssl = ssl;
          c->handshaken = true;
          c->client = true;
          c->index = i;
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.ptr = c.get();
          epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
          clients_.push_back(c.get());
          conns_.push_back(std::move(c));
          break;
        }
        std::fprintf(stderr, "fed_load: TLS handshake with the proxy: %s\n", sslError().c_str());
        SSL_free(ssl);
      }
      close(fd);
      if (nowNs() > until) return false;
      usleep(200000);
    }
  }
  return true;
}

void Load::accept() {
  for (;;) {
    int fd = accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->ssl = SSL_new(sctx_);
    SSL_set_fd(c->ssl, fd);
    SSL_set_accept_state(c->ssl);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c.get();
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    ++accepted_;
    Conn* raw = c.get();
    conns_.push_back(std::move(c));
    handshake(raw);
  }
}

void Load::closeConn(Conn* c) {
  if (c->dead) return;
  c->dead = true;
  ++connLost_;
  epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
  SSL_free(c->ssl);
  c->ssl = nullptr;
  close(c->fd);
  c->fd = -1;
  for (auto& p : clients_)
    if (p == c) p = nullptr;
}

void Load::want(Conn* c, bool out) {
  if (c->wantOut == out || c->dead) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (out ? EPOLLOUT : 0u);
  ev.data.ptr = c;
  epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &ev);
  c->wantOut = out;
}

void Load::handshake(Conn* c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    c->handshaken = true;
    want(c, !c->out.empty());
    readConn(c);
    return;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ) return want(c, false);
  if (e == SSL_ERROR_WANT_WRITE) return want(c, true);
  std::fprintf(stderr, "fed_load: TLS accept failed: %s\n", sslError().c_str());
  closeConn(c);
}

void Load::send(Conn* c, const std::string& s) {
  if (c == nullptr || c->dead) return;
  c->out += s;
  if (c->handshaken && !c->wantOut) flush(c);
}

void Load::flush(Conn* c) {
  while (c->outOff < c->out.size()) {
    ERR_clear_error();
    int w = SSL_write(c->ssl, c->out.data() + c->outOff, static_cast<int>(std::min<std::size_t>(c->out.size() - c->outOff, 1 << 16)));
    if (w > 0) {
      c->outOff += static_cast<std::size_t>(w);
      continue;
    }
    int e = SSL_get_error(c->ssl, w);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return want(c, true);
    return closeConn(c);
  }
  c->out.clear();
  c->outOff = 0;
  want(c, false);
}

void Load::readConn(Conn* c) {
  char buf[1 << 16];
  bool eof = false;
  for (;;) {
    ERR_clear_error();
    int r = SSL_read(c->ssl, buf, sizeof buf);
    if (r > 0) {
      c->in.append(buf, static_cast<std::size_t>(r));
      continue;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    eof = true;
    break;
  }
  for (;;) {
    Msg m;
    std::size_t n = parse(std::string_view(c->in).substr(c->inOff), m);
    if (n == 0) break;
    if (n == SIZE_MAX) {
      ++badFrames_;
      eof = true;
      break;
    }
    c->inOff += n;
    onMessage(c, m);
    if (c->dead) return;
  }
  if (c->inOff >= c->in.size()) {
    c->in.clear();
    c->inOff = 0;
  } else if (c->inOff > (1 << 16)) {
    c->in.erase(0, c->inOff);
    c->inOff = 0;
  }
  if (eof) closeConn(c);
}

void Load::onEvent(Conn* c, std::uint32_t ev) {
  if (c->dead) return;
  if (!c->handshaken) return handshake(c);
  if (ev & EPOLLOUT) flush(c);
  if (!c->dead && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) readConn(c);
}

Conn* Load::clientFor(std::uint32_t k) {
  if (clients_.empty()) return nullptr;
  for (std::size_t i = 0; i < clients_.size(); ++i) {
    Conn* c = clients_[(k + i) % clients_.size()];
    if (c != nullptr && !c->dead) return c;
  }
  return nullptr;
}

void Load::poll(int timeoutMs) {
  epoll_event evs[256];
  int n = epoll_wait(ep_, evs, 256, timeoutMs);
  for (int i = 0; i < n; ++i) {
    std::uint64_t tag = evs[i].data.u64;
    if (tag == 1) {
      std::uint64_t x;
      if (read(tfd_, &x, sizeof x) < 0) {}
      continue;
    }
    if (tag == 2) {
      char b[4096];
      for (;;) {
        ssize_t r = read(0, b, sizeof b);
        if (r > 0) {
          stdinBuf_.append(b, static_cast<std::size_t>(r));
          continue;
        }
        if (r == 0) {
          stdinEof_ = true;
          epoll_ctl(ep_, EPOLL_CTL_DEL, 0, nullptr);
        }
        break;
      }
      std::size_t nl;
      while ((nl = stdinBuf_.find('\n')) != std::string::npos) {
        lines_.push_back(stdinBuf_.substr(0, nl));
        stdinBuf_.erase(0, nl + 1);
      }
      continue;
    }
    if (tag == 3) {
      if (lfd_ >= 0) accept();
      continue;
    }
    onEvent(static_cast<Conn*>(evs[i].data.ptr), evs[i].events);
  }
  // dead connections: freed between rounds
  conns_.erase(std::remove_if(conns_.begin(), conns_.end(), [](const auto& c) { return c->dead; }), conns_.end());
}

template <class Pred, class Tick>
void Load::runUntil(std::int64_t untilNs, Pred pred, Tick tick) {
  while (!gStop && !pred() && nowNs() < untilNs && nowNs() < deadline_) {
    poll(1);
    tick();
  }
}

// ---------------------------------------------------------------- SIP

Dlg* Load::dlgOf(std::string_view callId) {
  // ours: "fb<pid>-i<k>" (INVITE) / "fb<pid>-s<k>" (SUBSCRIBE)
  std::string prefix = "fb" + pid_ + "-";
  if (callId.size() < prefix.size() + 2 || callId.substr(0, prefix.size()) != prefix) return nullptr;
  char kind = callId[prefix.size()];
  std::uint32_t k = 0;
  auto r = std::from_chars(callId.data() + prefix.size() + 1, callId.data() + callId.size(), k);
  if (r.ec != std::errc()) return nullptr;
  auto& v = kind == 'i' ? inv_ : subs_;
  if (kind != 'i' && kind != 's') return nullptr;
  return k < v.size() ? &v[k] : nullptr;
}

std::string Load::pidf(const std::string& entity) const {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:" +
         entity + "\"><tuple id=\"t1\"><status><basic>open</basic></status></tuple><note>fed_load</note></presence>";
}

void Load::respond(Conn* c, const Msg& m, int code, std::string_view reason, const std::string& toTag,
                   const std::string& extra, std::string_view body, std::string_view ctype) {
  std::string s = "SIP/2.0 " + std::to_string(code) + " " + std::string(reason) + "\r\n";
  for (auto v : m.vias) s.append("Via: ").append(v).append("\r\n");
  if (code >= 200 && code < 300)
    for (auto r : m.recordRoutes) s.append("Record-Route: ").append(r).append("\r\n");
  s.append("From: ").append(m.from).append("\r\nTo: ").append(m.to);
  if (!toTag.empty() && param(m.to, "tag").empty()) s.append(";tag=").append(toTag);
  s.append("\r\nCall-ID: ").append(m.callId).append("\r\nCSeq: ").append(m.cseq).append("\r\n").append(extra);
  if (!ctype.empty()) s.append("Content-Type: ").append(ctype).append("\r\n");
  s.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n").append(body);
  send(c, s);
}

std::uint64_t Load::request(Conn* c, Dlg& d, std::string_view method, Kind kind, std::uint32_t k,
                            const std::string& extra, std::string_view body, std::string_view ctype, bool newTx) {
  std::uint64_t id = nextTx_++;
  std::string s;
  s.reserve(600 + body.size());
  s.append(method).append(" ").append(d.up ? d.remoteTarget : "sip:" + d.remoteUri).append(" SIP/2.0\r\n");
  s.append("Via: SIP/2.0/TLS ").append(o_.host).append(":").append(std::to_string(boundPort_));
  s.append(";branch=z9hG4bK-").append(pid_).append("-").append(std::to_string(id)).append("\r\n");
  s.append("Max-Forwards: 70\r\n");
  if (d.up)
    for (const auto& r : d.routes) s.append("Route: ").append(r).append("\r\n");
  s.append("From: <sip:").append(d.localUri).append(">;tag=").append(d.localTag).append("\r\n");
  s.append("To: <sip:").append(d.remoteUri).append(">");
  if (!d.remoteTag.empty()) s.append(";tag=").append(d.remoteTag);
  s.append("\r\nCall-ID: ").append(d.callId).append("\r\nCSeq: ").append(std::to_string(d.cseq++)).append(" ");
  s.append(method).append("\r\n").append(extra);
  if (!ctype.empty()) s.append("Content-Type: ").append(ctype).append("\r\n");
  s.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n").append(body);
  if (newTx) txs_[id] = Tx{kind, k, nowNs()};
  send(c, s);
  return id;
}

void Load::onMessage(Conn* c, const Msg& m) {
  if (m.request) return onRequest(c, m);
  onResponse(m);
}

void Load::onResponse(const Msg& m) {
  if (m.status < 200 || m.vias.empty()) return;
  std::string_view br = param(m.vias.front(), "branch");
  std::string prefix = "z9hG4bK-" + pid_ + "-";
  if (br.substr(0, std::min(br.size(), prefix.size())) != prefix) return;
  std::uint64_t id = 0;
  std::from_chars(br.data() + prefix.size(), br.data() + br.size(), id);
  auto it = txs_.find(id);
  if (it == txs_.end()) return;
  Tx tx = it->second;
  txs_.erase(it);
  const bool ok = m.status < 300;
  if (!ok) ++failCodes_[m.status];
  auto establish = [&](Dlg& d) {
    if (d.up) return;
    d.remoteTag = std::string(param(m.to, "tag"));
    d.routes.clear();
    for (auto it2 = m.recordRoutes.rbegin(); it2 != m.recordRoutes.rend(); ++it2) d.routes.emplace_back(*it2);
    d.remoteTarget = std::string(uriOf(m.contact));
    d.up = !d.remoteTarget.empty();
  };
  switch (tx.kind) {
    case Kind::Invite: {
      Dlg& d = inv_[tx.dlg];
      if (!ok) {
        d.failed = true;
        ++failInvite_;
        return;
      }
      establish(d);
      ++okInvite_;
      // ACK: the INVITE's CSeq number, no transaction
      --d.cseq;
      request(clientFor(tx.dlg), d, "ACK", Kind::Other, tx.dlg, "", {}, {}, false);
      return;
    }
    case Kind::Message:
      if (ok) ++okMsg_;
      else ++failMsg_;
      lat_.push_back(nowNs() - tx.sentNs);
      return;
    case Kind::Subscribe: {
      Dlg& d = subs_[tx.dlg];
      if (!ok) {
        d.failed = true;
        ++failSub_;
        return;
      }
      // the NOTIFY may have come first and made the dialog
      if (!d.up) establish(d);
      ++okSub_;
      return;
    }
    case Kind::Refresh:
      if (ok) ++okRef_;
      else ++failRef_;
      lat_.push_back(nowNs() - tx.sentNs);
      return;
    case Kind::Other:
      return;
  }
}

void Load::onRequest(Conn* c, const Msg& m) {
  if (m.method == "ACK") return;
  if (m.method == "NOTIFY") {
    ++notifiesIn_;
    Dlg* d = dlgOf(m.callId);
    if (d != nullptr) {
      if (!d->up && !m.contact.empty()) {
        d->remoteTag = std::string(param(m.from, "tag"));
        d->routes.clear();
        for (auto r : m.recordRoutes) d->routes.emplace_back(r);
        d->remoteTarget = std::string(uriOf(m.contact));
        d->up = true;
      }
      ++d->notifies;
      if (m.subState.rfind("terminated", 0) == 0) ++terminatedNotifies_;
      if (!m.body.empty() && m.contentType.find("pidf+xml") != std::string_view::npos) {
        ++pidfNotifies_;
        d->pidf = true;
        if (markNs_ != 0 && !d->pidfSinceMark) {
          d->pidfSinceMark = true;
          ++pidfSinceMark_;
          lastPidfNs_ = nowNs();
        }
      }
    } else {
      ++uasNotifyOk_;
    }
    return respond(c, m, 200, "OK");
  }
  if (m.method == "SUBSCRIBE") {
    // UAS: a native watcher subscribing to a Microsoft user.
    ++uasSubscribes_;
    std::string tag = std::string(param(m.to, "tag"));
    if (tag.empty()) tag = "u" + std::to_string(uasSubscribes_);
    std::string extra = "Expires: 7446\r\nContact: " + contact(std::string(uriOf(m.to)).substr(4)) + "\r\n";
    respond(c, m, 200, "OK", tag, extra);
    std::string key = std::string(uriOf(m.from)) + " " + std::string(uriOf(m.to));
    if (markNs_ != 0 && uasPairs_.insert(key).second) lastUasNs_ = nowNs();
    // NOTIFY in the dialog: To = the subscriber, Route = Record-Route (UAS order).
    std::string target = std::string(m.contact.empty() ? uriOf(m.from) : uriOf(m.contact));
    std::string me = std::string(uriOf(m.to));
    std::uint64_t id = nextTx_++;
    std::string s = "NOTIFY " + target + " SIP/2.0\r\nVia: SIP/2.0/TLS " + o_.host + ":" + std::to_string(boundPort_) +
                    ";branch=z9hG4bK-" + pid_ + "-" + std::to_string(id) + "\r\nMax-Forwards: 70\r\n";
    for (auto r : m.recordRoutes) s.append("Route: ").append(r).append("\r\n");
    s.append("From: <").append(me).append(">;tag=").append(tag).append("\r\nTo: ").append(m.from);
    s.append("\r\nCall-ID: ").append(m.callId).append("\r\nCSeq: ").append(std::to_string(m.cseqNum + 100000));
    std::string body = pidf(me.substr(4));
    s.append(" NOTIFY\r\nEvent: presence\r\nSubscription-State: active;expires=7446\r\nContact: ")
        .append(contact(me.substr(4)))
        .append("\r\nContent-Type: application/pidf+xml\r\nContent-Length: ")
        .append(std::to_string(body.size()))
        .append("\r\n\r\n")
        .append(body);
    send(c, s);
    return;
  }
  if (m.method == "OPTIONS") ++optionsIn_;
  else ++otherIn_;
  respond(c, m, 200, "OK", "o" + pid_);
}

// ---------------------------------------------------------------- commands

void Load::cmdInvite(std::uint32_t count) {
  std::int64_t t0 = nowNs();
  double c0 = cpuSeconds();
  std::uint32_t first = static_cast<std::uint32_t>(inv_.size());
  inv_.resize(first + count);
  std::uint64_t ok0 = okInvite_, fail0 = failInvite_;
  std::uint32_t next = first;
  const std::string sdpHead = "v=0\r\no=- 0 0 IN IP4 " + o_.host + "\r\ns=session\r\nc=IN IP4 " + o_.host +
                              "\r\nt=0 0\r\nm=message 5060 sip null\r\na=accept-types:text/plain\r\n";
  auto fill = [&] {
    while (next < first + count && txs_.size() < static_cast<std::size_t>(o_.inflight)) {
      Dlg& d = inv_[next];
      d.callId = "fb" + pid_ + "-i" + std::to_string(next);
      d.localTag = std::string(1, 'l') + std::to_string(next);  // not "l" + ...: GCC 12 -Wrestrict false positive (bug 105329)
      d.localUri = lync(next - first);
      d.remoteUri = native(next - first);
      std::string extra = "Contact: " + contact(d.localUri) + "\r\nMs-Conversation-ID: c" + pid_ +
                          std::to_string(next) + "\r\nSupported: ms-sender\r\n";
      request(clientFor(next), d, "INVITE", Kind::Invite, next, extra, sdpHead, "application/sdp");
      ++next;
    }
  };
  runUntil(nowNs() + 120000000000LL, [&] { return next >= first + count && txs_.empty(); }, fill);
  std::printf("invite dialogs=%u ok=%" PRIu64 " failed=%" PRIu64 " unanswered=%zu secs=%.2f client_cpu_s=%.2f\n", count,
              okInvite_ - ok0, failInvite_ - fail0, txs_.size(), double(nowNs() - t0) / 1e9, cpuSeconds() - c0);
  txs_.clear();
}

void Load::cmdIm(double rate, double secs) {
  std::vector<std::uint32_t> up;
  for (std::uint32_t k = 0; k < inv_.size(); ++k)
    if (inv_[k].up) up.push_back(k);
  if (up.empty()) {
    std::printf("im error=no-dialogs\n");
    return;
  }
  lat_.clear();
  const std::uint64_t total = static_cast<std::uint64_t>(rate * secs);
  lat_.reserve(total);
  std::uint64_t sent = 0, ok0 = okMsg_, fail0 = failMsg_;
  const auto codes0 = failCodes_;
  double c0 = cpuSeconds();
  std::int64_t t0 = nowNs(), sendEnd = t0 + static_cast<std::int64_t>(secs * 1e9);
  char body[128];
  auto pace = [&] {
    std::int64_t now = nowNs();
    std::uint64_t due = now >= sendEnd ? total : std::min<std::uint64_t>(total, std::uint64_t(double(now - t0) * rate / 1e9));
    while (sent < due) {
      std::uint32_t k = up[sent % up.size()];
      int n = std::snprintf(body, sizeof body, "t=%" PRId64 " seq=%" PRIu64 " fed bench message", nowNs(), sent);
      request(clientFor(k), inv_[k], "MESSAGE", Kind::Message, k, "", std::string_view(body, std::size_t(n)),
              "text/plain; charset=UTF-8");
      ++sent;
    }
  };
  runUntil(sendEnd + 60000000000LL, [&] { return sent >= total; }, pace);
  std::int64_t t1 = nowNs();
  runUntil(nowNs() + 10000000000LL, [&] { return txs_.empty(); }, [] {});
  double wall = double(nowNs() - t0) / 1e9, cpu = cpuSeconds() - c0;
  std::uint64_t ok = okMsg_ - ok0;
  std::sort(lat_.begin(), lat_.end());
  std::printf("im dialogs=%zu target_rate=%.0f secs=%.1f sent=%" PRIu64 " ok=%" PRIu64 " failed=%" PRIu64
              " unanswered=%zu send_secs=%.2f rate=%.0f sip_p50_ms=%.3f sip_p99_ms=%.3f sip_max_ms=%.3f client_cpu_s=%.2f "
              "client_cpu_pct=%.0f fail_codes=%s\n",
              up.size(), rate, secs, sent, ok, failMsg_ - fail0, txs_.size(), double(t1 - t0) / 1e9,
              double(ok) / std::max(double(t1 - t0) / 1e9, 1e-9), pct(lat_, 0.5), pct(lat_, 0.99),
              lat_.empty() ? -1.0 : double(lat_.back()) / 1e6, cpu, 100 * cpu / std::max(wall, 1e-9),
              codesText(failCodes_, codes0).c_str());
  txs_.clear();
}

void Load::cmdSubscribe(std::uint32_t count, double rate) {
  std::int64_t t0 = nowNs();
  double c0 = cpuSeconds();
  std::uint32_t first = static_cast<std::uint32_t>(subs_.size());
  subs_.resize(first + count);
  std::uint64_t ok0 = okSub_, fail0 = failSub_;
  std::uint32_t next = first;
  std::int64_t lastSend = t0;
  auto pace = [&] {
    std::int64_t now = nowNs();
    std::uint32_t due = first + std::min<std::uint32_t>(count, std::uint32_t(double(now - t0) * rate / 1e9) + 1);
    while (next < due && txs_.size() < static_cast<std::size_t>(o_.inflight)) {
      Dlg& d = subs_[next];
      d.callId = "fb" + pid_ + "-s" + std::to_string(next);
      d.localTag = std::string(1, 'w') + std::to_string(next);  // see above
      d.localUri = lync(next);
      d.remoteUri = native(next);
      std::string extra = "Contact: " + contact(d.localUri) +
                          "\r\nEvent: presence\r\nAccept: application/pidf+xml\r\nSupported: ms-dialog-route-set-update\r\n"
                          "Expires: " + std::to_string(o_.expires) + "\r\n";
      request(clientFor(next), d, "SUBSCRIBE", Kind::Subscribe, next, extra);
      ++next;
      lastSend = nowNs();
    }
  };
  std::uint32_t notified = 0;
  auto done = [&] {
    if (next < first + count || !txs_.empty()) return false;
    while (first + notified < first + count && (subs_[first + notified].pidf || subs_[first + notified].failed)) ++notified;
    return notified >= count;
  };
  runUntil(INT64_MAX, [&] { return done() || nowNs() > lastSend + 120000000000LL; }, pace);
  std::uint32_t pidf = 0, failed = 0;
  for (std::uint32_t k = first; k < first + count; ++k) {
    if (subs_[k].pidf) ++pidf;
    if (subs_[k].failed) ++failed;
  }
  std::uint32_t held = 0;
  for (const auto& d : subs_)
    if (d.up && !d.failed) ++held;
  double secs = double(nowNs() - t0) / 1e9, cpu = cpuSeconds() - c0;
  std::printf("subscribe added=%u ok=%" PRIu64 " failed=%" PRIu64 " unanswered=%zu with_pidf_notify=%u held=%u secs=%.2f "
              "rate=%.0f notifies_in=%" PRIu64 " client_cpu_s=%.2f client_cpu_pct=%.0f\n",
              count, okSub_ - ok0, failSub_ - fail0, txs_.size(), pidf, held, secs, double(okSub_ - ok0) / std::max(secs, 1e-9),
              notifiesIn_, cpu, 100 * cpu / std::max(secs, 1e-9));
  (void)failed;
  txs_.clear();
}

void Load::cmdRefresh(double rate, double secs) {
  std::vector<std::uint32_t> held;
  for (std::uint32_t k = 0; k < subs_.size(); ++k)
    if (subs_[k].up && !subs_[k].failed) held.push_back(k);
  if (held.empty()) {
    std::printf("refresh error=no-subscriptions\n");
    return;
  }
  lat_.clear();
  const std::uint64_t total = static_cast<std::uint64_t>(rate * secs);
  std::uint64_t sent = 0, ok0 = okRef_, fail0 = failRef_, n0 = notifiesIn_;
  const auto codes0 = failCodes_;
  double c0 = cpuSeconds();
  std::int64_t t0 = nowNs(), sendEnd = t0 + static_cast<std::int64_t>(secs * 1e9);
  const std::string extra = "Event: presence\r\nAccept: application/pidf+xml\r\nExpires: " + std::to_string(o_.expires) + "\r\n";
  auto pace = [&] {
    std::int64_t now = nowNs();
    std::uint64_t due = now >= sendEnd ? total : std::min<std::uint64_t>(total, std::uint64_t(double(now - t0) * rate / 1e9));
    while (sent < due) {
      std::uint32_t k = held[sent % held.size()];
      Dlg& d = subs_[k];
      request(clientFor(k), d, "SUBSCRIBE", Kind::Refresh, k, "Contact: " + contact(d.localUri) + "\r\n" + extra);
      ++sent;
    }
  };
  runUntil(sendEnd + 60000000000LL, [&] { return sent >= total; }, pace);
  std::int64_t t1 = nowNs();
  runUntil(nowNs() + 10000000000LL, [&] { return txs_.empty(); }, [] {});
  double wall = double(nowNs() - t0) / 1e9, cpu = cpuSeconds() - c0;
  std::printf("refresh held=%zu target_rate=%.0f secs=%.1f sent=%" PRIu64 " ok=%" PRIu64 " failed=%" PRIu64
              " unanswered=%zu rate=%.0f notifies_in=%" PRIu64 " p50_ms=%.3f p99_ms=%.3f client_cpu_pct=%.0f fail_codes=%s\n",
              held.size(), rate, secs, sent, okRef_ - ok0, failRef_ - fail0, txs_.size(),
              double(okRef_ - ok0) / std::max(double(t1 - t0) / 1e9, 1e-9), notifiesIn_ - n0, pct(lat_, 0.5),
              pct(lat_, 0.99), 100 * cpu / std::max(wall, 1e-9), codesText(failCodes_, codes0).c_str());
  txs_.clear();
}

void Load::cmdWaitNotified(double secs) {
  std::uint64_t held = 0;
  for (const auto& d : subs_)
    if (d.up && !d.failed) ++held;
  runUntil(nowNs() + static_cast<std::int64_t>(secs * 1e9), [&] { return pidfSinceMark_ >= held; }, [] {});
  // a few of those still without one: watcher>native
  std::string missing;
  int shown = 0;
  for (const auto& d : subs_)
    if (d.up && !d.failed && !d.pidfSinceMark && shown++ < 5) {
      if (!missing.empty()) missing += ',';
      missing.append(d.localUri).append(">").append(d.remoteUri);
    }
  std::printf("notified held=%" PRIu64 " with_pidf_since_mark=%" PRIu64 " complete=%d secs_mark_to_last=%.2f missing=%s\n",
              held, pidfSinceMark_, pidfSinceMark_ >= held ? 1 : 0,
              lastPidfNs_ > markNs_ ? double(lastPidfNs_ - markNs_) / 1e9 : -1.0, missing.empty() ? "-" : missing.c_str());
}

void Load::cmdWaitUas(std::uint64_t n, double secs) {
  runUntil(nowNs() + static_cast<std::int64_t>(secs * 1e9), [&] { return uasPairs_.size() >= n; }, [] {});
  std::printf("uas wanted=%" PRIu64 " answered_since_mark=%zu complete=%d secs_mark_to_last=%.2f subscribes_in=%" PRIu64
              " options_in=%" PRIu64 "\n",
              n, uasPairs_.size(), uasPairs_.size() >= n ? 1 : 0,
              lastUasNs_ > markNs_ ? double(lastUasNs_ - markNs_) / 1e9 : -1.0, uasSubscribes_, optionsIn_);
}

void Load::cmdStats() {
  std::uint64_t held = 0;
  for (const auto& d : subs_)
    if (d.up && !d.failed) ++held;
  std::string codes;
  for (auto [c, n] : failCodes_) {
    if (!codes.empty()) codes += ',';
    codes.append(std::to_string(c)).append(":").append(std::to_string(n));
  }
  std::printf("stats clients=%zu conns=%zu accepted=%" PRIu64 " conn_closed=%" PRIu64 " held_subs=%" PRIu64
              " notifies_in=%" PRIu64 " pidf_notifies=%" PRIu64 " terminated_notifies=%" PRIu64 " uas_subscribes=%" PRIu64
              " options_in=%" PRIu64 " other_in=%" PRIu64 " fail_codes=%s bad_frames=%" PRIu64 " cpu_s=%.2f\n",
              std::count_if(clients_.begin(), clients_.end(), [](Conn* c) { return c != nullptr; }), conns_.size(),
              accepted_, connLost_, held, notifiesIn_, pidfNotifies_, terminatedNotifies_, uasSubscribes_, optionsIn_,
              otherIn_, codes.empty() ? "-" : codes.c_str(), badFrames_, cpuSeconds());
}

void Load::downAll() {
  closeListener();
  for (auto& c : conns_) closeConn(c.get());
  clients_.clear();
  down_ = true;
}

int Load::run() {
  deadline_ = nowNs() + static_cast<std::int64_t>(o_.maxSeconds * 1e9);
  setup();
  if (o_.connections > 0 && !connectClients(30)) die("cannot connect to the proxy at port " + std::to_string(o_.port));
  std::printf("ready listen_port=%d clients=%zu\n", boundPort_, clients_.size());
  std::fflush(stdout);
  while (!gStop && nowNs() < deadline_) {
    if (lines_.empty()) {
      if (stdinEof_) break;
      poll(100);
      continue;
    }
    std::string cmd = lines_.front();
    lines_.erase(lines_.begin());
    unsigned long long n = 0;
    double a = 0, b = 0;
    if (cmd == "quit") break;
    if (std::sscanf(cmd.c_str(), "invite %llu", &n) == 1) cmdInvite(static_cast<std::uint32_t>(n));
    else if (std::sscanf(cmd.c_str(), "im %lf %lf", &a, &b) == 2) cmdIm(a, b);
    else if (std::sscanf(cmd.c_str(), "subscribe %llu %lf", &n, &a) == 2) cmdSubscribe(static_cast<std::uint32_t>(n), a);
    else if (std::sscanf(cmd.c_str(), "refresh %lf %lf", &a, &b) == 2) cmdRefresh(a, b);
    else if (cmd == "mark") {
      markNs_ = nowNs();
      pidfSinceMark_ = 0;
      lastPidfNs_ = lastUasNs_ = 0;
      for (auto& d : subs_) d.pidfSinceMark = false;
      uasPairs_.clear();
      std::printf("mark\n");
    } else if (std::sscanf(cmd.c_str(), "wait-notified %lf", &a) == 1) cmdWaitNotified(a);
    else if (std::sscanf(cmd.c_str(), "wait-uas %llu %lf", &n, &a) == 2) cmdWaitUas(n, a);
    else if (cmd == "reconnect") {
      for (Conn* c : clients_)
        if (c != nullptr) closeConn(c);
      bool ok = connectClients(60);
      std::printf("reconnect ok=%d clients=%zu\n", ok ? 1 : 0, clients_.size());
    } else if (cmd == "down") {
      downAll();
      std::printf("down\n");
    } else if (cmd == "up") {
      listenTls();
      down_ = false;
      if (o_.connections > 0) connectClients(30);
      std::printf("up listen_port=%d\n", boundPort_);
    } else if (cmd == "stats") cmdStats();
    else std::printf("error unknown command: %s\n", cmd.c_str());
    std::fflush(stdout);
  }
  std::printf("end\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bench::program = "fed_load";
  Options o = parse(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, onSignal);
  signal(SIGINT, onSignal);
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  Load l(std::move(o));
  return l.run();
}
