#include "imp/sip/transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <stdexcept>
#include <unordered_map>

namespace imp::sip {

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxUdpPayload = 65507;  // IPv4: 65535 - IP - UDP headers
constexpr int kAcceptBurst = 64;
constexpr int kDatagramBurst = 64;
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);

struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const { return ss.ss_family; }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

std::optional<Addr> toAddr(const std::string& address, std::uint16_t port) {
  Addr a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len = sizeof(sockaddr_in);
    return a;
  }
  a = Addr{};
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len = sizeof(sockaddr_in6);
    return a;
  }
  return std::nullopt;
}

Endpoint fromAddr(const sockaddr_storage& ss, Transport t) {
  Endpoint e;
  e.transport = t;
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
    e.port = ntohs(v4->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    e.port = ntohs(v6->sin6_port);
  }
  e.address = buf;
  return e;
}

std::optional<Endpoint> localOf(int fd, Transport t) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return std::nullopt;
  return fromAddr(ss, t);
}

std::string errnoText(int e) { return std::strerror(e); }

TransportErrorKind kindForErrno(int e) {
  switch (e) {
    case ECONNREFUSED: return TransportErrorKind::ConnectionRefused;
    case ETIMEDOUT: return TransportErrorKind::ConnectTimeout;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EADDRNOTAVAIL:
    case ENETDOWN: return TransportErrorKind::NoRoute;
    case EMSGSIZE: return TransportErrorKind::MessageTooLarge;
    case ECONNRESET:
    case EPIPE: return TransportErrorKind::ConnectionClosed;
    default: return TransportErrorKind::Other;
  }
}

void setNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// ---- minimal answers to unparseable requests ----

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool isText(std::string_view s) {
  for (unsigned char ch : s)
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return false;
  return true;
}

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char ch : s) {
    if (std::isalnum(ch)) continue;
    if (std::strchr("-.!%*_+`'~", ch) != nullptr && ch != 0) continue;
    return false;
  }
  return true;
}

bool hasTagParam(std::string_view to) {
  // Parameters follow the closing '>' of a name-addr, or the URI itself.
  auto gt = to.rfind('>');
  std::string_view params = gt == std::string_view::npos ? to : to.substr(gt + 1);
  std::string lower(params);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (std::size_t p = lower.find(";"); p != std::string::npos; p = lower.find(';', p + 1)) {
    auto rest = std::string_view(lower).substr(p + 1);
    rest = trim(rest);
    if (rest.starts_with("tag") && trim(rest.substr(3)).starts_with("=")) return true;
  }
  return false;
}

std::string randomTag() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

// ---- TLS glue ----

// TLS-2: refuse the handshake when the listener's peer check rejects the CN
// of the verified leaf certificate.
int verifyCallback(int preverifyOk, X509_STORE_CTX* store);
void msgCallback(int writeP, int version, int contentType, const void* buf, std::size_t len, SSL* ssl, void* arg);

}  // namespace

std::optional<std::string> errorResponseFor(std::string_view raw, int status, std::string_view reason, std::string* why) {
  auto no = [why](const char* because) -> std::optional<std::string> {
    if (why != nullptr) *why = because;
    return std::nullopt;
  };
  std::size_t p = 0;
  while (p < raw.size() && (raw[p] == '\r' || raw[p] == '\n')) ++p;
  raw.remove_prefix(p);

  std::string startLine;
  std::vector<std::string> lines;
  bool first = true;
  std::size_t pos = 0;
  while (pos < raw.size()) {
    auto eol = raw.find('\n', pos);
    if (eol == std::string_view::npos) break;  // a partial line is not trusted
    auto line = raw.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = eol + 1;
    if (first) {
      startLine = line;
      first = false;
      continue;
    }
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {  // folded continuation
      if (!lines.empty()) {
        lines.back() += ' ';
        lines.back() += trim(line);
      }
      continue;
    }
    lines.emplace_back(line);
    if (lines.size() > 4096) break;
  }
  if (startLine.empty()) return no("the request's head did not arrive whole");
  // RFC 3261 §18.1.2: a malformed response is discarded, never answered.
  if (startLine.size() >= 4 && std::equal(startLine.begin(), startLine.begin() + 4, "SIP/",
                                          [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == b; }))
    return no("a malformed response is dropped");
  auto method = std::string_view(startLine).substr(0, startLine.find(' '));
  if (!isToken(method)) return no("no request method on the start line");
  if (method == "ACK") return no("an ACK is never answered");  // §17.2.1

  std::vector<std::string_view> vias;
  std::optional<std::string_view> from, to, callId, cseq;
  for (const auto& l : lines) {
    auto colon = l.find(':');
    if (colon == std::string::npos) continue;
    auto name = trim(std::string_view(l).substr(0, colon));
    auto value = trim(std::string_view(l).substr(colon + 1));
    if (!isText(value) || value.empty()) continue;
    switch (headerIdOf(name)) {
      case HeaderId::Via: vias.push_back(value); break;
      case HeaderId::From: if (!from) from = value; break;
      case HeaderId::To: if (!to) to = value; break;
      case HeaderId::CallId: if (!callId) callId = value; break;
      case HeaderId::CSeq: if (!cseq) cseq = value; break;
      default: break;
    }
  }
  if (vias.empty()) return no("no Via to send a response along");

  std::string phrase;
  for (unsigned char ch : reason.substr(0, 200)) phrase += (ch < 0x20 || ch == 0x7f) ? ' ' : static_cast<char>(ch);
  if (phrase.empty()) phrase = "Bad Request";
  if (status < 300 || status > 699) status = 400;

  Message m = Message::response(status, phrase);
  for (auto v : vias) m.appendHeader("Via", v);
  // RFC 4475 §3.3.1: a request missing From, To or Call-ID still gets its
  // 400, with what it has (the Via alone routes the response back).
  if (from) m.appendHeader("From", *from);
  if (to) m.appendHeader("To", hasTagParam(*to) ? std::string(*to) : std::string(*to) + ";tag=" + randomTag());
  if (callId) m.appendHeader("Call-ID", *callId);
  if (cseq) m.appendHeader("CSeq", *cseq);
  return m.serialize();
}

// ===================================================================

namespace {

struct Pending {
  std::uint64_t mark;  // absolute stream offset after the message's last byte
  SendErrorHandler cb;
};
struct Waiting {
  std::string bytes;
  SendErrorHandler cb;
};

struct Listener {
  ListenerConfig cfg;
  int fd = -1;
  Endpoint local;
  bool hidden = false;  // lazily created UDP sender socket
  net::TimerId retryTimer = 0;  // accept paused after EMFILE/ENOMEM
};

enum class ConnState { Connecting, Handshaking, Open, Draining, Closed };

struct Conn {
  explicit Conn(const ParseLimits& limits) : framer(limits) {}
  ~Conn() {
    if (ssl != nullptr) SSL_free(ssl);  // frees both BIOs
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  std::uint64_t id = 0;
  int fd = -1;
  Transport transport = Transport::Tcp;
  bool outgoing = false;
  ConnState state = ConnState::Connecting;
  Endpoint remote, local;
  std::string key;
  std::function<bool(std::string_view)> acceptPeer;

  std::shared_ptr<const net::TlsContext> tls;
  SSL* ssl = nullptr;
  BIO* rbio = nullptr;  // network -> SSL
  BIO* wbio = nullptr;  // SSL -> network
  std::string peerCn;
  bool peerRefused = false;
  std::string refusedCn;
  bool peerCheckRan = false;
  // TLS 1.3 client: the server checks our certificate after we consider the
  // handshake done. Until it proves it accepted us (a session ticket or any
  // record), callbacks of written messages stay here.
  bool tlsConfirmed = true;
  bool serverSpoke = false;
  std::vector<SendErrorHandler> unconfirmed;

  StreamFramer framer;
  std::string mirror;  // unconsumed framer input, for answering bad requests
  std::uint64_t mirrorBase = 0, fedTotal = 0;

  std::string out;
  std::size_t outPos = 0;
  std::uint64_t queuedTotal = 0, sentTotal = 0;
  std::deque<Pending> inflight;
  std::deque<Waiting> waiting;
  std::size_t waitingBytes = 0;
  bool writeWatched = false;
  bool shutdownSent = false;
  bool flushQueued = false;  // in flushQueue_: written at the end of this loop iteration

  net::TimerId connectTimer = 0, idleTimer = 0, lingerTimer = 0, confirmTimer = 0;
  net::Clock::time_point lastActivity = net::Clock::now();

  Source source() const { return Source{remote, local, id, peerCn}; }
  std::size_t pendingBytes() const { return (out.size() - outPos) + waitingBytes; }
};

std::atomic<std::uint64_t> g_nextConnectionId{0};

struct Counters {
  std::atomic<std::uint64_t> messagesIn{0}, messagesOut{0}, bytesIn{0}, bytesOut{0}, parseErrors{0},
      errorResponsesSent{0}, errorResponsesUnsent{0}, malformedResponsesDropped{0}, unframeableStreams{0}, keepAlivePings{0}, connectionsAccepted{0},
      connectionsOpened{0}, connectionsClosed{0}, connectionsActive{0}, connectionsRejected{0},
      connectFailures{0}, tlsHandshakeFailures{0}, tlsPeersRefused{0}, idleClosed{0}, sendErrors{0};
};

}  // namespace

class TransportLayer::Impl : public std::enable_shared_from_this<TransportLayer::Impl> {
 public:
  Impl(net::EventLoop& loop, TransportConfig cfg)
      : loop_(loop), cfg_(std::move(cfg)), parser_(cfg_.limits), rbuf_(kReadChunk) {}
  ~Impl();

  MessageHandler onMessage_;
  ParseErrorHandler onParseError_;

  Endpoint listen(const ListenerConfig& lc);
  bool closeListener(const Endpoint& local);
  std::vector<Endpoint> localEndpoints() const {
    std::lock_guard lock(endpointsMu_);
    return endpoints_;
  }
  // `bytes` is moved from only when the connection is still being opened.
  void send(std::string&& bytes, const Endpoint& dest, SendErrorHandler cb);
  // Loop thread: serialises into a buffer kept for the purpose (the bytes
  // are copied into the connection's output at once), no string per message.
  void sendMessage(const Message& msg, const Endpoint& dest, SendErrorHandler cb);
  std::uint64_t connectionTo(const Endpoint& remote) const;
  void closeConnection(std::uint64_t id);
  TransportStats stats() const;

  Counters counters_;

 private:
  // sending
  void sendUdp(std::string_view bytes, const Endpoint& dest, const Addr& addr, SendErrorHandler cb);
  Conn* connect(const Endpoint& dest, const Addr& addr, TransportError* err);
  void writeNow(Conn& c, std::string_view bytes, SendErrorHandler cb, bool isMessage);
  // Sends what queued while the connection was opening (TCP connect or TLS handshake done).
  void flushWaiting(Conn& c);
  void flush(Conn& c);
  void queueFlush(Conn& c);
  void flushQueued();
  void updateWriteInterest(Conn& c);
  void drainWbio(Conn& c);
  void fail(SendErrorHandler cb, TransportError err);

  // events
  void onListener(Listener& l, std::uint32_t events);
  void acceptAll(Listener& l);
  void readDatagrams(Listener& l);
  void onConnEvent(std::uint64_t id, std::uint32_t events);
  void onConnected(Conn& c);
  void startTls(Conn& c, bool server);
  void driveHandshake(Conn& c);
  void handshakeDone(Conn& c);
  void tlsHandshakeFailed(Conn& c, std::string why);
  void readSocket(Conn& c);
  void readTlsApp(Conn& c);
  void feedStream(Conn& c, std::string_view data);
  void processFrames(Conn& c);
  void trimMirror(Conn& c);
  void beginDrain(Conn& c);
  void armIdle(Conn& c);
  void onIdle(std::uint64_t id);
  void closeConn(Conn& c, const TransportError& why);

  void deliver(Message msg, const Source& src);
  void reportParseError(const ParseError& e, const Source& src);
  // Answers a request that failed to parse through `write` (which returns
  // false when the bytes could not be written); logs and counts why when
  // no answer could be formed or sent.
  void answerBadInput(const Endpoint& from, std::string_view raw, const ParseError& err,
                      const std::function<bool(const std::string&)>& write);

  Conn* find(std::uint64_t id) {
    auto it = conns_.find(id);
    return it == conns_.end() ? nullptr : it->second.get();
  }
  Conn& registerConn(std::unique_ptr<Conn> c);
  Listener* udpSocketFor(int family);
  void buryLater();
  bool logs(spdlog::level::level_enum l) const { return cfg_.log && cfg_.log->should_log(l); }

  net::EventLoop& loop_;
  TransportConfig cfg_;
  Parser parser_;
  std::vector<char> rbuf_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Conn>> conns_;
  std::unordered_map<std::string, std::uint64_t> byKey_;
  // The last few destinations send() resolved to a connection, so the next
  // message to the same one skips parsing and formatting the address;
  // valid while byKeyGen_ (bumped on every change of byKey_) is unchanged.
  struct RecentDest {
    Endpoint dest;
    std::uint64_t conn = 0, gen = 0;
  };
  std::array<RecentDest, 4> recent_{};
  std::size_t recentNext_ = 0;
  std::uint64_t byKeyGen_ = 1;
  std::vector<std::uint64_t> flushQueue_;  // connections written to in this iteration
  std::string scratch_;        // send(Message): serialised here, then copied to the connection
  bool scratchBusy_ = false;   // a send() from inside a send() serialises on its own
  bool flushArmed_ = false;
  std::vector<std::unique_ptr<Conn>> graveyard_;
  bool buryPosted_ = false;

  mutable std::mutex endpointsMu_;
  std::vector<Endpoint> endpoints_;
};

namespace {

std::string connKey(Transport t, const Addr& a) { return fromAddr(a.ss, t).toString(); }

int sslConnIndex() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

int verifyCallback(int preverifyOk, X509_STORE_CTX* store) {
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* c = ssl != nullptr ? static_cast<Conn*>(SSL_get_ex_data(ssl, sslConnIndex())) : nullptr;
  if (preverifyOk != 1 || c == nullptr || !c->acceptPeer) return preverifyOk;
  if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
  std::string cn = net::certificateCommonName(X509_STORE_CTX_get_current_cert(store));
  c->peerCheckRan = true;
  bool ok = false;
  try {
    ok = c->acceptPeer(cn);
  } catch (...) {
    ok = false;  // a throwing check must not unwind through OpenSSL
  }
  if (!ok) {
    c->peerRefused = true;
    c->refusedCn = cn;
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  return 1;
}

void msgCallback(int writeP, int, int contentType, const void* buf, std::size_t len, SSL* ssl, void* arg) {
  if (writeP != 0 || arg == nullptr || !SSL_is_init_finished(ssl)) return;
  auto* c = static_cast<Conn*>(arg);
  // Any post-handshake handshake record (NewSessionTicket) or application
  // data proves the server accepted our Finished and certificate.
  if ((contentType == SSL3_RT_HANDSHAKE && len > 0 && static_cast<const unsigned char*>(buf)[0] == SSL3_MT_NEWSESSION_TICKET) ||
      contentType == SSL3_RT_APPLICATION_DATA)
    c->serverSpoke = true;
}

}  // namespace

// ---------------- lifecycle ----------------

TransportLayer::Impl::~Impl() {
  // Pending sends are dropped without callbacks: the owner is going away.
  for (auto& [id, c] : conns_) {
    for (net::TimerId t : {c->connectTimer, c->idleTimer, c->lingerTimer, c->confirmTimer})
      if (t != 0) loop_.cancel(t);
    loop_.unwatch(c->fd);
    ::close(c->fd);
  }
  for (auto& l : listeners_) {
    if (l->retryTimer != 0) loop_.cancel(l->retryTimer);
    loop_.unwatch(l->fd);
    ::close(l->fd);
  }
}

Conn& TransportLayer::Impl::registerConn(std::unique_ptr<Conn> c) {
  Conn& ref = *c;
  conns_[ref.id] = std::move(c);
  byKey_[ref.key] = ref.id;
  ++byKeyGen_;
  counters_.connectionsActive++;
  return ref;
}

void TransportLayer::Impl::buryLater() {
  if (buryPosted_) return;
  buryPosted_ = true;
  loop_.post([w = weak_from_this()] {
    if (auto self = w.lock()) {
      self->buryPosted_ = false;
      self->graveyard_.clear();
    }
  });
}

// ---------------- listeners ----------------

Endpoint TransportLayer::Impl::listen(const ListenerConfig& lc) {
  std::string what = std::string(transportName(lc.transport)) + " listener on " + lc.address + ":" + std::to_string(lc.port);
  auto addr = toAddr(lc.address, lc.port);
  if (!addr) throw std::runtime_error(what + ": address is not an IP literal");
  if (lc.transport == Transport::Tls && (!lc.tls || lc.tls->role() != net::TlsRole::Server))
    throw std::runtime_error(what + ": needs a server TLS context");
  bool udp = lc.transport == Transport::Udp;
  int fd = ::socket(addr->family(), (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(what + ": socket: " + errnoText(errno));
  int one = 1;
  if (!udp) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (lc.reusePort && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error(what + ": SO_REUSEPORT: " + errnoText(e));
  }
  if (addr->family() == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, addr->sa(), addr->len) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error(what + ": bind: " + errnoText(e));
  }
  if (!udp && ::listen(fd, lc.backlog) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error(what + ": listen: " + errnoText(e));
  }
  auto local = localOf(fd, lc.transport);
  if (!local) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error(what + ": getsockname: " + errnoText(e));
  }
  auto l = std::make_unique<Listener>();
  l->cfg = lc;
  l->fd = fd;
  l->local = *local;
  Listener* raw = l.get();
  try {
    loop_.watch(fd, EPOLLIN, [this, raw](std::uint32_t ev) { onListener(*raw, ev); });
  } catch (...) {
    ::close(fd);
    throw;
  }
  listeners_.push_back(std::move(l));
  {
    std::lock_guard lock(endpointsMu_);
    endpoints_.push_back(*local);
  }
  if (logs(spdlog::level::info)) cfg_.log->info("listening on {}", local->toString());
  return *local;
}

bool TransportLayer::Impl::closeListener(const Endpoint& local) {
  auto it = std::find_if(listeners_.begin(), listeners_.end(),
                         [&](const auto& l) { return !l->hidden && l->local == local; });
  if (it == listeners_.end()) return false;
  Listener& l = **it;
  if (l.retryTimer != 0) loop_.cancel(l.retryTimer);
  loop_.unwatch(l.fd);
  ::close(l.fd);
  {
    std::lock_guard lock(endpointsMu_);
    std::erase(endpoints_, local);
  }
  if (logs(spdlog::level::info)) cfg_.log->info("stopped listening on {}", local.toString());
  listeners_.erase(it);
  return true;
}

void TransportLayer::Impl::onListener(Listener& l, std::uint32_t) {
  if (l.cfg.transport == Transport::Udp)
    readDatagrams(l);
  else
    acceptAll(l);
}

void TransportLayer::Impl::acceptAll(Listener& l) {
  for (int i = 0; i < kAcceptBurst; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(l.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EINTR || e == ECONNABORTED) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) return;
      // Out of descriptors or memory: the pending connection stays queued and
      // a level-triggered listener would spin; pause it briefly.
      if (logs(spdlog::level::warn)) cfg_.log->warn("accept on {}: {}", l.local.toString(), errnoText(e));
      if (l.retryTimer == 0) {
        loop_.modify(l.fd, 0);
        Listener* raw = &l;
        l.retryTimer = loop_.schedule(kAcceptRetry, [this, raw] {
          raw->retryTimer = 0;
          loop_.modify(raw->fd, EPOLLIN);
        });
      }
      return;
    }
    if (conns_.size() >= cfg_.maxConnections) {
      ::close(fd);
      counters_.connectionsRejected++;
      continue;
    }
    setNoDelay(fd);
    auto c = std::make_unique<Conn>(cfg_.limits);
    c->id = ++g_nextConnectionId;
    c->fd = fd;
    c->transport = l.cfg.transport;
    c->outgoing = false;
    c->remote = fromAddr(ss, l.cfg.transport);
    c->local = l.local;
    c->key = c->remote.toString();
    c->acceptPeer = l.cfg.acceptPeer;
    c->tls = l.cfg.tls;
    c->state = ConnState::Open;
    Conn& conn = registerConn(std::move(c));
    counters_.connectionsAccepted++;
    std::uint64_t id = conn.id;
    loop_.watch(fd, EPOLLIN, [this, id](std::uint32_t ev) { onConnEvent(id, ev); });
    if (logs(spdlog::level::debug)) cfg_.log->debug("conn {} accepted from {}", id, conn.remote.toString());
    if (conn.transport == Transport::Tls) {
      startTls(conn, true);
      if (conn.state == ConnState::Closed) continue;
      conn.connectTimer = loop_.schedule(cfg_.connectTimeout, [this, id] {
        if (Conn* cc = find(id); cc != nullptr && cc->state == ConnState::Handshaking) {
          cc->connectTimer = 0;
          counters_.tlsHandshakeFailures++;
          closeConn(*cc, {TransportErrorKind::TlsHandshakeFailed, "TLS handshake not finished in time"});
        }
      });
    }
    armIdle(conn);
  }
}

void TransportLayer::Impl::readDatagrams(Listener& l) {
  for (int i = 0; i < kDatagramBurst; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ssize_t n = ::recvfrom(l.fd, rbuf_.data(), rbuf_.size(), MSG_TRUNC, reinterpret_cast<sockaddr*>(&ss), &len);
    if (n < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e != EAGAIN && e != EWOULDBLOCK && e != ECONNREFUSED && logs(spdlog::level::warn))
        cfg_.log->warn("recvfrom on {}: {}", l.local.toString(), errnoText(e));
      return;
    }
    counters_.bytesIn += static_cast<std::uint64_t>(n);
    Source src{fromAddr(ss, Transport::Udp), l.local, 0, {}};
    auto size = static_cast<std::size_t>(n);
    if (size > rbuf_.size()) {
      counters_.parseErrors++;
      reportParseError(ParseError{513, "Message Too Large", false}, src);
      continue;
    }
    std::string_view data(rbuf_.data(), size);
    if (data.find_first_not_of("\r\n \t") == std::string_view::npos) {
      counters_.keepAlivePings++;  // NAT keep-alive; UDP pongs are STUN's job (RFC 5626 §4.4.2)
      continue;
    }
    auto res = parser_.parseDatagram(data);
    if (auto* msg = std::get_if<Message>(&res)) {
      counters_.messagesIn++;
      deliver(std::move(*msg), src);
      continue;
    }
    const auto& err = std::get<ParseError>(res);
    counters_.parseErrors++;
    reportParseError(err, src);
    // The answer leaves from the listening socket to the source address and
    // port (RFC 3581 §4: the response goes where the request came from).
    answerBadInput(src.remote, data, err, [&](const std::string& resp) {
      auto to = toAddr(src.remote.address, src.remote.port);
      if (!to) return false;
      ssize_t sent = ::sendto(l.fd, resp.data(), resp.size(), MSG_NOSIGNAL | MSG_DONTWAIT, to->sa(), to->len);
      if (sent != static_cast<ssize_t>(resp.size())) return false;
      counters_.bytesOut += resp.size();
      return true;
    });
  }
}

void TransportLayer::Impl::answerBadInput(const Endpoint& from, std::string_view raw, const ParseError& err,
                                          const std::function<bool(const std::string&)>& write) {
  std::string why;
  auto resp = errorResponseFor(raw, err.status, err.reason, &why);
  if (resp) {
    if (write(*resp)) {
      counters_.errorResponsesSent++;
      return;
    }
    why = "the response could not be sent: " + errnoText(errno);
  }
  if (why == "a malformed response is dropped") {
    counters_.malformedResponsesDropped++;
    if (logs(spdlog::level::info)) cfg_.log->info("malformed response from {} dropped: {}", from.toString(), err.reason);
    return;
  }
  counters_.errorResponsesUnsent++;
  if (logs(spdlog::level::warn))
    cfg_.log->warn("bad input from {} ({} {}) not answered: {}", from.toString(), err.status, err.reason, why);
}

// ---------------- sending ----------------

void TransportLayer::Impl::fail(SendErrorHandler cb, TransportError err) {
  counters_.sendErrors++;
  if (logs(spdlog::level::debug)) cfg_.log->debug("send failed: {}: {}", errorKindName(err.kind), err.detail);
  if (!cb) return;
  loop_.post([cb = std::move(cb), err = std::move(err)] { cb(err); });
}

void TransportLayer::Impl::send(std::string&& bytes, const Endpoint& dest, SendErrorHandler cb) {
  if (bytes.size() > cfg_.limits.maxMessageSize) {
    fail(std::move(cb), {TransportErrorKind::MessageTooLarge, std::to_string(bytes.size()) + " bytes, limit " +
                                                                  std::to_string(cfg_.limits.maxMessageSize)});
    return;
  }
  Conn* c = nullptr;
  if (dest.transport != Transport::Udp)
    for (const auto& r : recent_)
      if (r.gen == byKeyGen_ && r.dest.port == dest.port && r.dest.transport == dest.transport &&
          r.dest.address == dest.address) {
        c = find(r.conn);
        break;
      }
  if (c == nullptr) {
    auto addr = toAddr(dest.address, dest.port);
    if (!addr || dest.port == 0) {
      fail(std::move(cb), {TransportErrorKind::NoRoute, "not an IP literal with a port: " + dest.toString()});
      return;
    }
    if (dest.transport == Transport::Udp) {
      sendUdp(bytes, dest, *addr, std::move(cb));
      return;
    }
    if (auto it = byKey_.find(connKey(dest.transport, *addr)); it != byKey_.end()) c = find(it->second);
    if (c != nullptr) {
      recent_[recentNext_] = RecentDest{dest, c->id, byKeyGen_};
      recentNext_ = (recentNext_ + 1) % recent_.size();
    }
  }
  if (c == nullptr) {
    auto addr = toAddr(dest.address, dest.port);
    TransportError err;
    c = connect(dest, *addr, &err);
    if (c == nullptr) {
      fail(std::move(cb), std::move(err));
      return;
    }
  }
  if (c->state == ConnState::Closed) {  // failed while being opened
    fail(std::move(cb), {TransportErrorKind::ConnectionClosed, "connection to " + dest.toString() + " failed"});
    return;
  }
  if (c->pendingBytes() + bytes.size() > cfg_.maxSendQueue) {
    fail(std::move(cb), {TransportErrorKind::Other, "send queue to " + c->remote.toString() + " full (" +
                                                        std::to_string(c->pendingBytes()) + " bytes): peer not reading"});
    return;
  }
  if (c->state == ConnState::Open) {
    writeNow(*c, bytes, std::move(cb), true);
  } else {
    c->waitingBytes += bytes.size();
    c->waiting.push_back(Waiting{std::move(bytes), std::move(cb)});
  }
}

Listener* TransportLayer::Impl::udpSocketFor(int family) {
  for (auto& l : listeners_) {
    if (l->cfg.transport != Transport::Udp) continue;
    auto a = toAddr(l->local.address, 0);
    if (a && a->family() == family) return l.get();
  }
  // No UDP listener of that family: a hidden ephemeral socket, which also
  // receives the responses sent back to it.
  ListenerConfig lc;
  lc.transport = Transport::Udp;
  lc.address = family == AF_INET6 ? "::" : "0.0.0.0";
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  auto local = localOf(fd, Transport::Udp);
  auto l = std::make_unique<Listener>();
  l->cfg = lc;
  l->fd = fd;
  l->local = local.value_or(Endpoint{lc.address, 0, Transport::Udp});
  l->hidden = true;
  Listener* raw = l.get();
  try {
    loop_.watch(fd, EPOLLIN, [this, raw](std::uint32_t ev) { onListener(*raw, ev); });
  } catch (...) {
    ::close(fd);
    return nullptr;
  }
  listeners_.push_back(std::move(l));
  return raw;
}

void TransportLayer::Impl::sendUdp(std::string_view bytes, const Endpoint& dest, const Addr& addr, SendErrorHandler cb) {
  if (bytes.size() > kMaxUdpPayload) {
    fail(std::move(cb), {TransportErrorKind::MessageTooLarge, std::to_string(bytes.size()) + " bytes do not fit a UDP datagram"});
    return;
  }
  Listener* s = udpSocketFor(addr.family());
  if (s == nullptr) {
    fail(std::move(cb), {TransportErrorKind::Other, "no UDP socket for " + dest.toString() + ": " + errnoText(errno)});
    return;
  }
  for (;;) {
    ssize_t n = ::sendto(s->fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT, addr.sa(), addr.len);
    if (n >= 0) {
      counters_.messagesOut++;
      counters_.bytesOut += static_cast<std::uint64_t>(n);
      if (s->local.port == 0)
        if (auto local = localOf(s->fd, Transport::Udp)) s->local = *local;  // bound by the first send
      return;
    }
    int e = errno;
    if (e == EINTR) continue;
    std::string detail = "sendto " + dest.toString() + ": " + errnoText(e);
    if (e == EAGAIN || e == EWOULDBLOCK) detail += " (socket buffer full)";
    fail(std::move(cb), {kindForErrno(e), detail});
    return;
  }
}

Conn* TransportLayer::Impl::connect(const Endpoint& dest, const Addr& addr, TransportError* err) {
  if (dest.transport == Transport::Tls && !cfg_.tlsClient) {
    *err = {TransportErrorKind::Other, "no client TLS context configured for " + dest.toString()};
    return nullptr;
  }
  if (conns_.size() >= cfg_.maxConnections) {
    *err = {TransportErrorKind::Other, "connection limit reached"};
    return nullptr;
  }
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = {TransportErrorKind::Other, "socket: " + errnoText(errno)};
    return nullptr;
  }
  setNoDelay(fd);
  int r;
  do {
    r = ::connect(fd, addr.sa(), addr.len);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EINPROGRESS) {
    int e = errno;
    ::close(fd);
    counters_.connectFailures++;
    *err = {kindForErrno(e), "connect to " + dest.toString() + ": " + errnoText(e)};
    return nullptr;
  }
  auto c = std::make_unique<Conn>(cfg_.limits);
  c->id = ++g_nextConnectionId;
  c->fd = fd;
  c->transport = dest.transport;
  c->outgoing = true;
  c->remote = fromAddr(addr.ss, dest.transport);
  c->key = c->remote.toString();
  c->local = localOf(fd, dest.transport).value_or(Endpoint{});
  c->tls = dest.transport == Transport::Tls ? cfg_.tlsClient : nullptr;
  c->state = ConnState::Connecting;
  Conn& conn = registerConn(std::move(c));
  std::uint64_t id = conn.id;
  loop_.watch(fd, r == 0 ? EPOLLIN : EPOLLOUT, [this, id](std::uint32_t ev) { onConnEvent(id, ev); });
  conn.connectTimer = loop_.schedule(cfg_.connectTimeout, [this, id] {
    Conn* cc = find(id);
    if (cc == nullptr) return;
    cc->connectTimer = 0;
    if (cc->state == ConnState::Connecting) {
      counters_.connectFailures++;
      closeConn(*cc, {TransportErrorKind::ConnectTimeout, "no TCP connection to " + cc->remote.toString() + " within " +
                                                              std::to_string(cfg_.connectTimeout.count()) + " ms"});
    } else if (cc->state == ConnState::Handshaking) {
      counters_.tlsHandshakeFailures++;
      closeConn(*cc, {TransportErrorKind::ConnectTimeout, "TLS handshake with " + cc->remote.toString() +
                                                              " not finished within " +
                                                              std::to_string(cfg_.connectTimeout.count()) + " ms"});
    }
  });
  if (r == 0) onConnected(conn);
  return &conn;
}

void TransportLayer::Impl::onConnected(Conn& c) {
  counters_.connectionsOpened++;
  if (auto local = localOf(c.fd, c.transport)) c.local = *local;
  loop_.modify(c.fd, EPOLLIN);
  c.writeWatched = false;
  c.lastActivity = net::Clock::now();
  if (logs(spdlog::level::debug)) cfg_.log->debug("conn {} connected to {}", c.id, c.remote.toString());
  if (c.transport == Transport::Tls) {
    startTls(c, false);
    return;
  }
  if (c.connectTimer != 0) loop_.cancel(c.connectTimer);
  c.connectTimer = 0;
  c.state = ConnState::Open;
  armIdle(c);
  flushWaiting(c);
}

void TransportLayer::Impl::flushWaiting(Conn& c) {
  auto waiting = std::move(c.waiting);
  c.waiting.clear();
  c.waitingBytes = 0;
  for (auto& w : waiting) {
    if (c.state != ConnState::Open) {
      fail(std::move(w.cb), {TransportErrorKind::ConnectionClosed, "connection to " + c.remote.toString() + " closed"});
      continue;
    }
    writeNow(c, w.bytes, std::move(w.cb), true);
  }
}

void TransportLayer::Impl::writeNow(Conn& c, std::string_view bytes, SendErrorHandler cb, bool isMessage) {
  if (c.ssl == nullptr) {
    c.out.append(bytes);
    c.queuedTotal += bytes.size();
  } else {
    std::size_t off = 0;
    while (off < bytes.size()) {
      int chunk = static_cast<int>(std::min<std::size_t>(bytes.size() - off, INT_MAX));
      int r = SSL_write(c.ssl, bytes.data() + off, chunk);
      if (r <= 0) {
        std::string why = net::takeOpenSslError();
        fail(std::move(cb), {TransportErrorKind::ConnectionClosed, "TLS write to " + c.remote.toString() + ": " + why});
        closeConn(c, {TransportErrorKind::ConnectionClosed, "TLS write failed: " + why});
        return;
      }
      off += static_cast<std::size_t>(r);
    }
    drainWbio(c);
  }
  if (isMessage) counters_.messagesOut++;
  c.inflight.push_back(Pending{c.queuedTotal, std::move(cb)});
  queueFlush(c);
}

void TransportLayer::Impl::sendMessage(const Message& msg, const Endpoint& dest, SendErrorHandler cb) {
  if (scratchBusy_) {  // a send from inside a send (an error callback)
    send(msg.serialize(), dest, std::move(cb));
    return;
  }
  scratch_.clear();
  msg.serializeTo(scratch_);
  scratchBusy_ = true;
  try {
    send(std::move(scratch_), dest, std::move(cb));
  } catch (...) {
    scratchBusy_ = false;
    throw;
  }
  scratchBusy_ = false;
}

// What one loop iteration writes to a connection leaves in one send() at the
// end of the iteration, not one per message: under load a read brings many
// requests, and each would otherwise cost a system call and a TCP segment
// of its own (on loopback the receiver's side of the stack runs in that
// call too).
void TransportLayer::Impl::queueFlush(Conn& c) {
  if (c.flushQueued) return;
  c.flushQueued = true;
  flushQueue_.push_back(c.id);
  if (flushArmed_) return;
  flushArmed_ = true;
  loop_.atIterationEnd([w = weak_from_this()] {
    if (auto self = w.lock()) self->flushQueued();
  });
}

void TransportLayer::Impl::flushQueued() {
  flushArmed_ = false;
  std::vector<std::uint64_t> ids;
  ids.swap(flushQueue_);
  for (auto id : ids)
    if (Conn* c = find(id)) {
      c->flushQueued = false;
      flush(*c);
    }
  ids.clear();
  if (flushQueue_.empty()) flushQueue_.swap(ids);  // keep the capacity
}

void TransportLayer::Impl::drainWbio(Conn& c) {
  if (c.wbio == nullptr) return;
  for (;;) {
    std::size_t pending = BIO_ctrl_pending(c.wbio);
    if (pending == 0) return;
    std::size_t old = c.out.size();
    c.out.resize(old + pending);
    int n = BIO_read(c.wbio, c.out.data() + old, static_cast<int>(pending));
    if (n <= 0) {
      c.out.resize(old);
      return;
    }
    c.out.resize(old + static_cast<std::size_t>(n));
    c.queuedTotal += static_cast<std::uint64_t>(n);
  }
}

void TransportLayer::Impl::flush(Conn& c) {
  if (c.state == ConnState::Closed || c.state == ConnState::Connecting) return;
  while (c.outPos < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.outPos, c.out.size() - c.outPos, MSG_NOSIGNAL);
    if (n > 0) {
      c.outPos += static_cast<std::size_t>(n);
      c.sentTotal += static_cast<std::uint64_t>(n);
      counters_.bytesOut += static_cast<std::uint64_t>(n);
      c.lastActivity = net::Clock::now();
      continue;
    }
    int e = errno;
    if (n < 0 && e == EINTR) continue;
    if (n < 0 && (e == EAGAIN || e == EWOULDBLOCK)) break;
    closeConn(c, {TransportErrorKind::ConnectionClosed, "send to " + c.remote.toString() + ": " + errnoText(e)});
    return;
  }
  while (!c.inflight.empty() && c.inflight.front().mark <= c.sentTotal) {
    if (!c.tlsConfirmed && c.inflight.front().cb) c.unconfirmed.push_back(std::move(c.inflight.front().cb));
    c.inflight.pop_front();
  }
  if (c.outPos == c.out.size()) {
    c.out.clear();
    c.outPos = 0;
  } else if (c.outPos > kReadChunk && c.outPos * 2 > c.out.size()) {
    c.out.erase(0, c.outPos);
    c.outPos = 0;
  }
  updateWriteInterest(c);
  if (c.state == ConnState::Draining && c.out.empty() && !c.shutdownSent) {
    ::shutdown(c.fd, SHUT_WR);
    c.shutdownSent = true;
  }
}

void TransportLayer::Impl::updateWriteInterest(Conn& c) {
  bool want = c.outPos < c.out.size();
  if (want == c.writeWatched) return;
  c.writeWatched = want;
  loop_.modify(c.fd, EPOLLIN | (want ? EPOLLOUT : 0u));
}

// ---------------- connection events ----------------

void TransportLayer::Impl::onConnEvent(std::uint64_t id, std::uint32_t events) {
  Conn* c = find(id);
  if (c == nullptr) return;
  if (c->state == ConnState::Connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0 && (events & EPOLLOUT) != 0 && (events & (EPOLLERR | EPOLLHUP)) == 0) {
      onConnected(*c);
      return;
    }
    if (err == 0) err = ECONNREFUSED;  // HUP without an error code
    counters_.connectFailures++;
    closeConn(*c, {kindForErrno(err), "connect to " + c->remote.toString() + ": " + errnoText(err)});
    return;
  }
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
    readSocket(*c);
    if (c->state == ConnState::Closed) return;
  }
  if ((events & EPOLLOUT) != 0) flush(*c);
}

void TransportLayer::Impl::readSocket(Conn& c) {
  for (int i = 0; i < 4; ++i) {
    ssize_t n = ::recv(c.fd, rbuf_.data(), rbuf_.size(), 0);
    if (n > 0) {
      auto size = static_cast<std::size_t>(n);
      counters_.bytesIn += size;
      c.lastActivity = net::Clock::now();
      if (c.state != ConnState::Draining) {
        if (c.ssl != nullptr) {
          BIO_write(c.rbio, rbuf_.data(), static_cast<int>(size));
          if (c.state == ConnState::Handshaking)
            driveHandshake(c);
          else
            readTlsApp(c);
        } else {
          feedStream(c, std::string_view(rbuf_.data(), size));
        }
        if (c.state == ConnState::Closed) return;
      }
      if (size < rbuf_.size()) return;
      continue;
    }
    if (n == 0) {
      closeConn(c, {TransportErrorKind::ConnectionClosed,
                    c.state == ConnState::Draining ? "closed after an unframeable message" : "closed by " + c.remote.toString()});
      return;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) return;
    closeConn(c, {TransportErrorKind::ConnectionClosed, "recv from " + c.remote.toString() + ": " + errnoText(e)});
    return;
  }
}

// ---------------- TLS ----------------

void TransportLayer::Impl::startTls(Conn& c, bool server) {
  c.state = ConnState::Handshaking;
  SSL* ssl = SSL_new(c.tls->native());
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (ssl == nullptr || rbio == nullptr || wbio == nullptr) {
    SSL_free(ssl);
    BIO_free(rbio);
    BIO_free(wbio);
    tlsHandshakeFailed(c, "out of memory creating the TLS session: " + net::takeOpenSslError());
    return;
  }
  c.ssl = ssl;
  c.rbio = rbio;
  c.wbio = wbio;
  BIO_set_mem_eof_return(c.rbio, -1);  // empty = "try again", not EOF
  BIO_set_mem_eof_return(c.wbio, -1);
  SSL_set_bio(c.ssl, c.rbio, c.wbio);
  SSL_set_ex_data(c.ssl, sslConnIndex(), &c);
  if (server) {
    SSL_set_accept_state(c.ssl);
    if (c.acceptPeer && (SSL_get_verify_mode(c.ssl) & SSL_VERIFY_PEER) != 0)
      SSL_set_verify(c.ssl, SSL_get_verify_mode(c.ssl), verifyCallback);
  } else {
    SSL_set_connect_state(c.ssl);
    SSL_set_msg_callback(c.ssl, msgCallback);
    SSL_set_msg_callback_arg(c.ssl, &c);
  }
  driveHandshake(c);  // the client writes its ClientHello now
}

void TransportLayer::Impl::driveHandshake(Conn& c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c.ssl);
  drainWbio(c);
  if (r == 1) {
    flush(c);
    if (c.state == ConnState::Closed) return;
    handshakeDone(c);
    return;
  }
  int e = SSL_get_error(c.ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    flush(c);
    return;
  }
  std::string why = net::takeOpenSslError();
  long vr = SSL_get_verify_result(c.ssl);
  if (vr != X509_V_OK && !c.peerRefused) why += std::string(" (certificate: ") + X509_verify_cert_error_string(vr) + ")";
  if (c.peerRefused) {
    counters_.tlsPeersRefused++;
    why = "peer certificate CN '" + c.refusedCn + "' is not an accepted peer subject";
  }
  if (why.empty()) why = "handshake aborted";
  flush(c);  // best effort: let the peer see our alert
  if (c.state == ConnState::Closed) return;
  tlsHandshakeFailed(c, std::move(why));
}

void TransportLayer::Impl::tlsHandshakeFailed(Conn& c, std::string why) {
  counters_.tlsHandshakeFailures++;
  if (logs(spdlog::level::warn))
    cfg_.log->warn("TLS handshake {} {} failed: {}", c.outgoing ? "to" : "from", c.remote.toString(), why);  // TLS-5
  closeConn(c, {TransportErrorKind::TlsHandshakeFailed, "TLS handshake with " + c.remote.toString() + " failed: " + why});
}

void TransportLayer::Impl::handshakeDone(Conn& c) {
  if (c.connectTimer != 0) loop_.cancel(c.connectTimer);
  c.connectTimer = 0;
  bool verified = (SSL_get_verify_mode(c.ssl) & SSL_VERIFY_PEER) != 0 && SSL_get0_peer_certificate(c.ssl) != nullptr &&
                  SSL_get_verify_result(c.ssl) == X509_V_OK;
  // TLS-2: only a verified certificate names the peer; CN, never SAN.
  c.peerCn = verified ? net::peerCommonName(c.ssl) : std::string();
  if (!c.outgoing && c.acceptPeer && !c.peerCheckRan) {
    bool ok = false;
    try {
      ok = c.acceptPeer(c.peerCn);
    } catch (...) {
      ok = false;
    }
    if (!ok) {
      counters_.tlsPeersRefused++;
      c.refusedCn = c.peerCn;
      tlsHandshakeFailed(c, c.peerCn.empty() ? std::string("no verified client certificate")
                                             : "peer certificate CN '" + c.peerCn + "' is not an accepted peer subject");
      return;
    }
  }
  if (c.outgoing && SSL_version(c.ssl) == TLS1_3_VERSION) {
    c.tlsConfirmed = false;
    std::uint64_t id = c.id;
    c.confirmTimer = loop_.schedule(cfg_.connectTimeout, [this, id] {
      if (Conn* cc = find(id)) {
        cc->confirmTimer = 0;
        cc->tlsConfirmed = true;  // a server that sends no tickets: assume acceptance
        cc->unconfirmed.clear();
      }
    });
  }
  c.state = ConnState::Open;
  armIdle(c);
  if (logs(spdlog::level::debug))
    cfg_.log->debug("conn {} TLS {} with {} ({}, peer CN '{}')", c.id, SSL_get_version(c.ssl), c.remote.toString(),
                    SSL_get_cipher_name(c.ssl), c.peerCn);
  flushWaiting(c);
  if (c.state == ConnState::Open) readTlsApp(c);  // records that came with the last flight
}

void TransportLayer::Impl::readTlsApp(Conn& c) {
  char buf[16 * 1024];
  for (;;) {
    if (c.state != ConnState::Open) return;
    ERR_clear_error();
    int r = SSL_read(c.ssl, buf, sizeof buf);
    if (r > 0) {
      c.serverSpoke = true;
      feedStream(c, std::string_view(buf, static_cast<std::size_t>(r)));
      continue;
    }
    int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    drainWbio(c);
    if (e == SSL_ERROR_ZERO_RETURN) {
      closeConn(c, {TransportErrorKind::ConnectionClosed, c.remote.toString() + " closed the TLS session"});
      return;
    }
    std::string why = net::takeOpenSslError();
    flush(c);
    if (c.state == ConnState::Closed) return;
    if (!c.tlsConfirmed) {
      // TLS 1.3: the server refused our certificate after our Finished.
      tlsHandshakeFailed(c, why);
      return;
    }
    closeConn(c, {TransportErrorKind::ConnectionClosed, "TLS error from " + c.remote.toString() + ": " + why});
    return;
  }
  if (!c.tlsConfirmed && c.serverSpoke) {
    c.tlsConfirmed = true;
    c.unconfirmed.clear();
    if (c.confirmTimer != 0) loop_.cancel(c.confirmTimer);
    c.confirmTimer = 0;
  }
  drainWbio(c);
  flush(c);
}

// ---------------- framing ----------------

void TransportLayer::Impl::feedStream(Conn& c, std::string_view data) {
  if (c.state != ConnState::Open) return;
  c.framer.feed(data);
  c.mirror.append(data);
  c.fedTotal += data.size();
  processFrames(c);
}

void TransportLayer::Impl::trimMirror(Conn& c) {
  std::uint64_t consumed = c.fedTotal - c.framer.buffered();
  if (consumed <= c.mirrorBase) return;
  auto drop = static_cast<std::size_t>(consumed - c.mirrorBase);
  if (drop >= c.mirror.size()) {
    c.mirror.clear();
    c.mirrorBase = consumed;
    return;
  }
  // Dropping a prefix moves the rest: once it is large, not after every
  // message of a big read (the offsets stay valid either way).
  if (drop < kReadChunk && drop * 2 < c.mirror.size()) return;
  c.mirror.erase(0, drop);
  c.mirrorBase = consumed;
}

void TransportLayer::Impl::processFrames(Conn& c) {
  for (;;) {
    if (c.state != ConnState::Open) return;
    std::uint64_t start = c.fedTotal - c.framer.buffered();
    Message msg;
    ParseError perr;
    bool resynced = false;
    auto ev = c.framer.next(&msg, &perr, &resynced);
    switch (ev) {
      case StreamFramer::Event::NeedMore:
        trimMirror(c);
        return;
      case StreamFramer::Event::Message:
        trimMirror(c);
        counters_.messagesIn++;
        deliver(std::move(msg), c.source());
        continue;
      case StreamFramer::Event::KeepAlivePing:
        trimMirror(c);
        counters_.keepAlivePings++;
        writeNow(c, "\r\n", {}, false);  // RFC 5626 §4.4.1 pong
        continue;
      case StreamFramer::Event::Error: {
        counters_.parseErrors++;
        std::string raw;
        if (start >= c.mirrorBase && start - c.mirrorBase <= c.mirror.size())
          raw = c.mirror.substr(static_cast<std::size_t>(start - c.mirrorBase));
        if (logs(spdlog::level::info))
          cfg_.log->info("conn {} from {}: {} {}{}", c.id, c.remote.toString(), perr.status, perr.reason,
                         resynced ? "" : " (closing: stream cannot be framed)");
        reportParseError(perr, c.source());
        if (c.state != ConnState::Open) return;
        // Every bad request is answered on the connection it came on, framed
        // or not (a dead framer's head: missing/bad Content-Length, 513),
        // whenever the bytes hold a Via to answer along; otherwise the reason
        // is logged and counted.
        bool headWhole = resynced || raw.find("\r\n\r\n") != std::string::npos;
        if (!headWhole) raw.clear();  // a partial head is not trusted for an answer
        answerBadInput(c.remote, raw, perr, [&](const std::string& resp) {
          writeNow(c, resp, {}, false);
          return true;
        });
        if (c.state == ConnState::Closed) return;
        if (!resynced) {
          counters_.unframeableStreams++;
          beginDrain(c);
          return;
        }
        trimMirror(c);
        continue;
      }
    }
  }
}

void TransportLayer::Impl::beginDrain(Conn& c) {
  c.state = ConnState::Draining;
  c.mirror.clear();
  if (auto it = byKey_.find(c.key); it != byKey_.end() && it->second == c.id) byKey_.erase(it);
  ++byKeyGen_;
  if (c.idleTimer != 0) loop_.cancel(c.idleTimer);
  c.idleTimer = 0;
  if (c.ssl != nullptr) {
    SSL_shutdown(c.ssl);  // queues close_notify
    drainWbio(c);
  }
  std::uint64_t id = c.id;
  c.lingerTimer = loop_.schedule(cfg_.closeLinger, [this, id] {
    if (Conn* cc = find(id)) {
      cc->lingerTimer = 0;
      closeConn(*cc, {TransportErrorKind::ConnectionClosed, "closed after an unframeable message"});
    }
  });
  flush(c);
}

// ---------------- timers and close ----------------

void TransportLayer::Impl::armIdle(Conn& c) {
  if (cfg_.idleTimeout.count() <= 0 || c.idleTimer != 0) return;
  std::uint64_t id = c.id;
  c.idleTimer = loop_.schedule(cfg_.idleTimeout, [this, id] { onIdle(id); });
}

void TransportLayer::Impl::onIdle(std::uint64_t id) {
  Conn* c = find(id);
  if (c == nullptr) return;
  c->idleTimer = 0;
  auto idle = net::Clock::now() - c->lastActivity;
  if (idle >= cfg_.idleTimeout) {
    counters_.idleClosed++;
    closeConn(*c, {TransportErrorKind::ConnectionClosed,
                   "idle for " + std::to_string(cfg_.idleTimeout.count()) + " ms, closed"});
    return;
  }
  c->idleTimer = loop_.schedule(cfg_.idleTimeout - idle, [this, id] { onIdle(id); });
}

void TransportLayer::Impl::closeConn(Conn& c, const TransportError& why) {
  if (c.state == ConnState::Closed) return;
  bool unconfirmed = !c.tlsConfirmed;
  c.state = ConnState::Closed;
  for (net::TimerId* t : {&c.connectTimer, &c.idleTimer, &c.lingerTimer, &c.confirmTimer}) {
    if (*t != 0) loop_.cancel(*t);
    *t = 0;
  }
  loop_.unwatch(c.fd);
  ::close(c.fd);
  c.fd = -1;
  if (auto it = byKey_.find(c.key); it != byKey_.end() && it->second == c.id) byKey_.erase(it);
  ++byKeyGen_;
  counters_.connectionsClosed++;
  counters_.connectionsActive--;
  if (logs(spdlog::level::debug))
    cfg_.log->debug("conn {} {} closed: {}: {}", c.id, c.remote.toString(), errorKindName(why.kind), why.detail);

  for (auto& w : c.waiting) fail(std::move(w.cb), why);
  c.waiting.clear();
  for (auto& p : c.inflight)
    if (p.cb) fail(std::move(p.cb), why);
  c.inflight.clear();
  if (unconfirmed) {
    TransportError late{TransportErrorKind::TlsHandshakeFailed, why.detail};
    for (auto& cb : c.unconfirmed) fail(std::move(cb), late);
  }
  c.unconfirmed.clear();

  auto it = conns_.find(c.id);
  if (it != conns_.end()) {
    graveyard_.push_back(std::move(it->second));
    conns_.erase(it);
    buryLater();
  }
}

void TransportLayer::Impl::closeConnection(std::uint64_t id) {
  if (Conn* c = find(id)) closeConn(*c, {TransportErrorKind::ConnectionClosed, "closed locally"});
}

std::uint64_t TransportLayer::Impl::connectionTo(const Endpoint& remote) const {
  auto addr = toAddr(remote.address, remote.port);
  if (!addr) return 0;
  auto it = byKey_.find(connKey(remote.transport, *addr));
  return it == byKey_.end() ? 0 : it->second;
}

// ---------------- upcalls ----------------

void TransportLayer::Impl::deliver(Message msg, const Source& src) {
  if (!onMessage_) return;
  try {
    onMessage_(std::move(msg), src);
  } catch (const std::exception& e) {
    // A handler bug triggered by one peer's message must not stop the loop.
    if (logs(spdlog::level::err)) cfg_.log->error("message handler threw on input from {}: {}", src.remote.toString(), e.what());
  }
}

void TransportLayer::Impl::reportParseError(const ParseError& e, const Source& src) {
  if (!onParseError_) return;
  try {
    onParseError_(e, src);
  } catch (const std::exception& ex) {
    if (logs(spdlog::level::err)) cfg_.log->error("parse-error handler threw: {}", ex.what());
  }
}

TransportStats TransportLayer::Impl::stats() const {
  const auto& k = counters_;
  TransportStats s;
  s.messagesIn = k.messagesIn;
  s.messagesOut = k.messagesOut;
  s.bytesIn = k.bytesIn;
  s.bytesOut = k.bytesOut;
  s.parseErrors = k.parseErrors;
  s.errorResponsesSent = k.errorResponsesSent;
  s.errorResponsesUnsent = k.errorResponsesUnsent;
  s.malformedResponsesDropped = k.malformedResponsesDropped;
  s.unframeableStreams = k.unframeableStreams;
  s.keepAlivePings = k.keepAlivePings;
  s.connectionsAccepted = k.connectionsAccepted;
  s.connectionsOpened = k.connectionsOpened;
  s.connectionsClosed = k.connectionsClosed;
  s.connectionsActive = k.connectionsActive;
  s.connectionsRejected = k.connectionsRejected;
  s.connectFailures = k.connectFailures;
  s.tlsHandshakeFailures = k.tlsHandshakeFailures;
  s.tlsPeersRefused = k.tlsPeersRefused;
  s.idleClosed = k.idleClosed;
  s.sendErrors = k.sendErrors;
  return s;
}

// ===================================================================

TransportLayer::TransportLayer(net::EventLoop& loop, TransportConfig config)
    : loop_(loop), impl_(std::make_shared<Impl>(loop, std::move(config))) {}

TransportLayer::~TransportLayer() = default;

void TransportLayer::setMessageHandler(MessageHandler h) { impl_->onMessage_ = std::move(h); }
void TransportLayer::setParseErrorHandler(ParseErrorHandler h) { impl_->onParseError_ = std::move(h); }
Endpoint TransportLayer::listen(const ListenerConfig& config) { return impl_->listen(config); }
bool TransportLayer::closeListener(const Endpoint& local) { return impl_->closeListener(local); }
std::vector<Endpoint> TransportLayer::localEndpoints() const { return impl_->localEndpoints(); }

std::optional<Endpoint> TransportLayer::localEndpoint(Transport t) const {
  for (auto& e : impl_->localEndpoints())
    if (e.transport == t) return e;
  return std::nullopt;
}

void TransportLayer::send(const Message& msg, const Endpoint& dest, SendErrorHandler onError) {
  if (loop_.inLoopThread()) {
    impl_->sendMessage(msg, dest, std::move(onError));
    return;
  }
  sendBytes(msg.serialize(), dest, std::move(onError));
}

void TransportLayer::sendBytes(std::string bytes, const Endpoint& dest, SendErrorHandler onError) {
  if (loop_.inLoopThread()) {
    impl_->send(std::move(bytes), dest, std::move(onError));
    return;
  }
  loop_.post([w = std::weak_ptr<Impl>(impl_), bytes = std::move(bytes), dest, cb = std::move(onError)]() mutable {
    if (auto self = w.lock()) {
      self->send(std::move(bytes), dest, std::move(cb));
    } else if (cb) {
      cb(TransportError{TransportErrorKind::Other, "transport shut down"});
    }
  });
}

std::uint64_t TransportLayer::connectionTo(const Endpoint& remote) const { return impl_->connectionTo(remote); }
void TransportLayer::closeConnection(std::uint64_t id) { impl_->closeConnection(id); }
TransportStats TransportLayer::stats() const { return impl_->stats(); }

}  // namespace imp::sip
