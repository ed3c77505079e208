#include "imp/sip/transport.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

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

#include "imp/net/socket_address.h"
#include "imp/net/stream.h"
#include "imp/net/udp_socket.h"

namespace imp::sip {

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxUdpPayload = 65507;  // IPv4: 65535 - IP - UDP headers

Endpoint endpointOf(const net::SocketAddress& a, Transport t) { return Endpoint{a.ip(), a.port(), t}; }

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
// The SIP layer over modules/net (issue 15, deliverable 1): sockets, write
// queues, TLS and timers are net::StreamConnection / Acceptor / Connector /
// UdpSocket; what stays here is SIP's: the connection reuse map per
// (transport, remote), the stream framer, CRLF keep-alives, the answers to
// bad input, per-message error callbacks and the statistics.

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
  Endpoint local;
  bool hidden = false;  // lazily created UDP sender socket
  std::unique_ptr<net::Acceptor> acceptor;  // TCP, TLS
  std::unique_ptr<net::UdpSocket> udp;      // UDP
};

struct Conn {
  explicit Conn(const ParseLimits& limits) : framer(limits) {}
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  std::uint64_t id = 0;
  Transport transport = Transport::Tcp;
  bool outgoing = false;
  Endpoint remote, local;
  std::string key;
  std::unique_ptr<net::StreamConnection> stream;
  std::string peerCn;
  // Set when the transport closes the connection itself: what the pending
  // sends are told.
  std::optional<TransportError> closeWhy;
  // TLS 1.3 client: the server checks our certificate after we consider the
  // handshake done. Until it proves it accepted us (a session ticket or any
  // record), callbacks of written messages stay here.
  bool tlsConfirmed = true;
  std::vector<SendErrorHandler> unconfirmed;

  StreamFramer framer;
  std::string mirror;  // unconsumed framer input, for answering bad requests
  std::uint64_t mirrorBase = 0, fedTotal = 0;

  std::deque<Pending> inflight;  // written messages with an error callback
  std::deque<Waiting> waiting;   // sent while the connection was opening
  std::size_t waitingBytes = 0;
  net::TimerId confirmTimer = 0;

  bool open() const { return stream->isOpen(); }
  Source source() const { return Source{remote, local, id, peerCn}; }
  std::size_t pendingBytes() const { return stream->queuedBytes() + waitingBytes; }
};

std::atomic<std::uint64_t> g_nextConnectionId{0};

struct Counters {
  std::atomic<std::uint64_t> messagesIn{0}, messagesOut{0}, bytesIn{0}, bytesOut{0}, parseErrors{0},
      errorResponsesSent{0}, errorResponsesUnsent{0}, malformedResponsesDropped{0}, unframeableStreams{0}, keepAlivePings{0}, connectionsAccepted{0},
      connectionsOpened{0}, connectionsClosed{0}, connectionsActive{0},
      connectFailures{0}, tlsHandshakeFailures{0}, tlsPeersRefused{0}, idleClosed{0}, sendErrors{0};
};

std::string connKey(Transport t, const net::SocketAddress& a) { return endpointOf(a, t).toString(); }

}  // namespace

class TransportLayer::Impl : public std::enable_shared_from_this<TransportLayer::Impl> {
 public:
  Impl(net::EventLoop& loop, TransportConfig cfg);
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
  void setTlsClient(std::shared_ptr<const net::TlsContext> tls);
  TransportStats stats() const;

  Counters counters_;

 private:
  // sending
  void sendUdp(std::string_view bytes, const Endpoint& dest, const net::SocketAddress& addr, SendErrorHandler cb);
  Conn* connect(const Endpoint& dest, const net::SocketAddress& addr, TransportError* err);
  void writeNow(Conn& c, std::string_view bytes, SendErrorHandler cb, bool isMessage);
  // Sends what queued while the connection was opening (TCP connect or TLS handshake done).
  void flushWaiting(Conn& c);
  void fail(SendErrorHandler cb, TransportError err);

  // events
  void onAccepted(Listener& l, std::unique_ptr<net::StreamConnection> s);
  void readDatagrams(Listener& l);
  void attach(Conn& c);
  void onOpen(Conn& c);
  void onClosed(Conn& c, const net::CloseReason& r);
  TransportError errorFor(Conn& c, const net::CloseReason& r);
  void feedStream(Conn& c, std::string_view data);
  void processFrames(Conn& c);
  void trimMirror(Conn& c);
  void beginDrain(Conn& c);
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
  net::StreamOptions streamOptions() const;

  net::EventLoop& loop_;
  TransportConfig cfg_;
  Parser parser_;
  std::shared_ptr<net::StreamGroup> group_;
  net::Connector tcpConnector_, tlsConnector_;
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
  std::string scratch_;        // send(Message): serialised here, then copied to the connection
  bool scratchBusy_ = false;   // a send() from inside a send() serialises on its own
  std::vector<std::unique_ptr<Conn>> graveyard_;
  bool buryPosted_ = false;

  mutable std::mutex endpointsMu_;
  std::vector<Endpoint> endpoints_;
};

// ---------------- lifecycle ----------------

net::StreamOptions TransportLayer::Impl::streamOptions() const {
  net::StreamOptions o;
  // The per-connection cap is checked here, on messages (with what waits
  // for the connection to open); keep-alive pongs and error answers always go.
  o.maxQueuedBytes = SIZE_MAX;
  o.idleTimeout = cfg_.idleTimeout;
  o.handshakeTimeout = cfg_.connectTimeout;
  return o;
}

TransportLayer::Impl::Impl(net::EventLoop& loop, TransportConfig cfg)
    : loop_(loop),
      cfg_(std::move(cfg)),
      parser_(cfg_.limits),
      group_(net::StreamGroup::create(loop, cfg_.maxConnections)),
      tcpConnector_(group_, net::ConnectorOptions{cfg_.connectTimeout, nullptr, streamOptions()}),
      tlsConnector_(group_, net::ConnectorOptions{cfg_.connectTimeout, cfg_.tlsClient, streamOptions()}) {}

TransportLayer::Impl::~Impl() {
  // Pending sends are dropped without callbacks: the owner is going away
  // (a connection destroyed open closes its socket without callbacks).
  for (auto& [id, c] : conns_)
    if (c->confirmTimer != 0) loop_.cancel(c->confirmTimer);
  conns_.clear();
  graveyard_.clear();
  listeners_.clear();
}

Conn& TransportLayer::Impl::registerConn(std::unique_ptr<Conn> c) {
  Conn& ref = *c;
  conns_[ref.id] = std::move(c);
  byKey_[ref.key] = ref.id;
  ++byKeyGen_;
  counters_.connectionsActive++;
  attach(ref);
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
  auto addr = net::SocketAddress::fromIp(lc.address, lc.port);
  if (!addr) throw std::runtime_error(what + ": address is not an IP literal");
  if (lc.transport == Transport::Tls && (!lc.tls || lc.tls->role() != net::TlsRole::Server))
    throw std::runtime_error(what + ": needs a server TLS context");
  auto l = std::make_unique<Listener>();
  l->cfg = lc;
  Listener* raw = l.get();
  if (lc.transport == Transport::Udp) {
    net::UdpSocket::Options uo;
    uo.reusePort = lc.reusePort;
    uo.maxDatagram = kReadChunk;
    uo.name = what;
    l->udp = std::make_unique<net::UdpSocket>(loop_, *addr, [this, raw] { readDatagrams(*raw); }, uo);
    l->local = endpointOf(l->udp->local(), lc.transport);
  } else {
    net::AcceptorOptions ao;
    ao.address = *addr;
    ao.reusePort = lc.reusePort;
    ao.backlog = lc.backlog;
    if (lc.transport == Transport::Tls) {
      ao.tls = lc.tls;
      ao.acceptPeer = lc.acceptPeer;
    }
    ao.stream = streamOptions();
    ao.name = what;
    l->acceptor = std::make_unique<net::Acceptor>(
        group_, std::move(ao), [this, raw](std::unique_ptr<net::StreamConnection> s) { onAccepted(*raw, std::move(s)); });
    l->local = endpointOf(l->acceptor->local(), lc.transport);
  }
  Endpoint local = l->local;
  listeners_.push_back(std::move(l));
  {
    std::lock_guard lock(endpointsMu_);
    endpoints_.push_back(local);
  }
  if (logs(spdlog::level::info)) cfg_.log->info("listening on {}", local.toString());
  return local;
}

bool TransportLayer::Impl::closeListener(const Endpoint& local) {
  auto it = std::find_if(listeners_.begin(), listeners_.end(),
                         [&](const auto& l) { return !l->hidden && l->local == local; });
  if (it == listeners_.end()) return false;
  {
    std::lock_guard lock(endpointsMu_);
    std::erase(endpoints_, local);
  }
  if (logs(spdlog::level::info)) cfg_.log->info("stopped listening on {}", local.toString());
  listeners_.erase(it);  // the acceptor or socket stops listening and closes
  return true;
}

void TransportLayer::Impl::onAccepted(Listener& l, std::unique_ptr<net::StreamConnection> s) {
  auto c = std::make_unique<Conn>(cfg_.limits);
  c->id = ++g_nextConnectionId;
  c->transport = l.cfg.transport;
  c->outgoing = false;
  c->remote = endpointOf(s->remote(), l.cfg.transport);
  c->local = l.local;
  c->key = c->remote.toString();
  c->stream = std::move(s);
  Conn& conn = registerConn(std::move(c));
  counters_.connectionsAccepted++;
  if (logs(spdlog::level::debug)) cfg_.log->debug("conn {} accepted from {}", conn.id, conn.remote.toString());
}

void TransportLayer::Impl::readDatagrams(Listener& l) {
  int err = 0;
  l.udp->readBurst(
      [&](std::string_view data, const net::SocketAddress& from, bool truncated) {
        Source src{endpointOf(from, Transport::Udp), l.local, 0, {}};
        if (truncated) {
          counters_.bytesIn += data.size();
          counters_.parseErrors++;
          reportParseError(ParseError{513, "Message Too Large", false}, src);
          return;
        }
        counters_.bytesIn += data.size();
        if (data.find_first_not_of("\r\n \t") == std::string_view::npos) {
          counters_.keepAlivePings++;  // NAT keep-alive; UDP pongs are STUN's job (RFC 5626 §4.4.2)
          return;
        }
        auto res = parser_.parseDatagram(data);
        if (auto* msg = std::get_if<Message>(&res)) {
          counters_.messagesIn++;
          deliver(std::move(*msg), src);
          return;
        }
        const auto& perr = std::get<ParseError>(res);
        counters_.parseErrors++;
        reportParseError(perr, src);
        // The answer leaves from the listening socket to the source address and
        // port (RFC 3581 §4: the response goes where the request came from).
        answerBadInput(src.remote, data, perr, [&](const std::string& resp) {
          int e = l.udp->sendTo(resp, from);
          if (e != 0) {
            errno = e;
            return false;
          }
          counters_.bytesOut += resp.size();
          return true;
        });
      },
      &err);
  if (err != 0 && logs(spdlog::level::warn)) cfg_.log->warn("recvfrom on {}: {}", l.local.toString(), errnoText(err));
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
  std::optional<net::SocketAddress> addr;
  if (c == nullptr) {
    addr = net::SocketAddress::fromIp(dest.address, dest.port);
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
    TransportError err;
    c = connect(dest, *addr, &err);
    if (c == nullptr) {
      fail(std::move(cb), std::move(err));
      return;
    }
  }
  if (c->pendingBytes() + bytes.size() > cfg_.maxSendQueue) {
    fail(std::move(cb), {TransportErrorKind::Other, "send queue to " + c->remote.toString() + " full (" +
                                                        std::to_string(c->pendingBytes()) + " bytes): peer not reading"});
    return;
  }
  if (c->open()) {
    writeNow(*c, bytes, std::move(cb), true);
  } else {
    c->waitingBytes += bytes.size();
    c->waiting.push_back(Waiting{std::move(bytes), std::move(cb)});
  }
}

Listener* TransportLayer::Impl::udpSocketFor(int family) {
  for (auto& l : listeners_) {
    if (l->cfg.transport != Transport::Udp) continue;
    if (l->udp->local().family() == family) return l.get();
  }
  // No UDP listener of that family: a hidden ephemeral socket, which also
  // receives the responses sent back to it.
  ListenerConfig lc;
  lc.transport = Transport::Udp;
  lc.address = family == AF_INET6 ? "::" : "0.0.0.0";
  auto l = std::make_unique<Listener>();
  l->cfg = lc;
  l->hidden = true;
  Listener* raw = l.get();
  try {
    l->udp = net::UdpSocket::ephemeral(loop_, family, [this, raw] { readDatagrams(*raw); });
  } catch (const std::exception&) {
    return nullptr;  // errno says why
  }
  l->local = Endpoint{lc.address, 0, Transport::Udp};
  listeners_.push_back(std::move(l));
  return raw;
}

void TransportLayer::Impl::sendUdp(std::string_view bytes, const Endpoint& dest, const net::SocketAddress& addr,
                                   SendErrorHandler cb) {
  if (bytes.size() > kMaxUdpPayload) {
    fail(std::move(cb), {TransportErrorKind::MessageTooLarge, std::to_string(bytes.size()) + " bytes do not fit a UDP datagram"});
    return;
  }
  Listener* s = udpSocketFor(addr.family());
  if (s == nullptr) {
    fail(std::move(cb), {TransportErrorKind::Other, "no UDP socket for " + dest.toString() + ": " + errnoText(errno)});
    return;
  }
  int e = s->udp->sendTo(bytes, addr);
  if (e == 0) {
    counters_.messagesOut++;
    counters_.bytesOut += bytes.size();
    if (s->local.port == 0) s->local = endpointOf(s->udp->local(), Transport::Udp);  // bound by the first send
    return;
  }
  std::string detail = "sendto " + dest.toString() + ": " + errnoText(e);
  if (e == EAGAIN || e == EWOULDBLOCK) detail += " (socket buffer full)";
  fail(std::move(cb), {kindForErrno(e), detail});
}

Conn* TransportLayer::Impl::connect(const Endpoint& dest, const net::SocketAddress& addr, TransportError* err) {
  if (dest.transport == Transport::Tls && !cfg_.tlsClient) {
    *err = {TransportErrorKind::Other, "no client TLS context configured for " + dest.toString()};
    return nullptr;
  }
  if (conns_.size() >= cfg_.maxConnections) {
    *err = {TransportErrorKind::Other, "connection limit reached"};
    return nullptr;
  }
  net::CloseReason why;
  auto s = (dest.transport == Transport::Tls ? tlsConnector_ : tcpConnector_).connect(addr, &why);
  if (!s) {
    if (why.kind == net::CloseKind::ConnectRefused || (why.kind == net::CloseKind::ConnectFailed && why.sysError != 0 &&
                                                       why.detail.starts_with("connect to "))) {
      counters_.connectFailures++;
      *err = {kindForErrno(why.sysError), "connect to " + dest.toString() + ": " + errnoText(why.sysError)};
    } else {
      *err = {TransportErrorKind::Other, why.detail};
    }
    return nullptr;
  }
  auto c = std::make_unique<Conn>(cfg_.limits);
  c->id = ++g_nextConnectionId;
  c->transport = dest.transport;
  c->outgoing = true;
  c->remote = endpointOf(addr, dest.transport);
  c->key = c->remote.toString();
  c->local = endpointOf(s->local(), dest.transport);
  c->stream = std::move(s);
  return &registerConn(std::move(c));
}

void TransportLayer::Impl::attach(Conn& c) {
  Conn* p = &c;
  net::StreamCallbacks cb;
  cb.onData = [this, p](std::string_view data) { feedStream(*p, data); };
  cb.onConnected = [this, p] {
    counters_.connectionsOpened++;
    p->local = endpointOf(p->stream->local(), p->transport);
    if (logs(spdlog::level::debug)) cfg_.log->debug("conn {} connected to {}", p->id, p->remote.toString());
  };
  cb.onOpen = [this, p] { onOpen(*p); };
  cb.onTlsConfirmed = [this, p] {
    p->tlsConfirmed = true;
    p->unconfirmed.clear();
    if (p->confirmTimer != 0) loop_.cancel(p->confirmTimer);
    p->confirmTimer = 0;
  };
  cb.onClose = [this, p](const net::CloseReason& why) { onClosed(*p, why); };
  c.stream->setCallbacks(std::move(cb));
}

void TransportLayer::Impl::onOpen(Conn& c) {
  if (const net::TlsSession* tls = c.stream->tls()) {
    // TLS-2: only a verified certificate names the peer; CN, never SAN.
    c.peerCn = tls->peerCommonName();
    if (c.outgoing && !tls->peerConfirmed()) {
      c.tlsConfirmed = false;
      Conn* p = &c;
      c.confirmTimer = loop_.schedule(cfg_.connectTimeout, [p] {
        p->confirmTimer = 0;
        p->tlsConfirmed = true;  // a server that sends no tickets: assume acceptance
        p->unconfirmed.clear();
      });
    }
    if (logs(spdlog::level::debug))
      cfg_.log->debug("conn {} TLS {} with {} ({}, peer CN '{}')", c.id, tls->version(), c.remote.toString(),
                      tls->cipher(), c.peerCn);
  }
  flushWaiting(c);
}

void TransportLayer::Impl::flushWaiting(Conn& c) {
  auto waiting = std::move(c.waiting);
  c.waiting.clear();
  c.waitingBytes = 0;
  for (auto& w : waiting) {
    if (!c.open()) {
      fail(std::move(w.cb), {TransportErrorKind::ConnectionClosed, "connection to " + c.remote.toString() + " closed"});
      continue;
    }
    writeNow(c, w.bytes, std::move(w.cb), true);
  }
}

void TransportLayer::Impl::writeNow(Conn& c, std::string_view bytes, SendErrorHandler cb, bool isMessage) {
  auto r = c.stream->write(bytes);
  if (r != net::StreamConnection::WriteResult::Queued) {
    // Failed: a TLS write error, which closed the connection.
    std::string detail = r == net::StreamConnection::WriteResult::Failed
                             ? "TLS write to " + c.remote.toString() + ": " + c.stream->tlsError()
                             : "connection to " + c.remote.toString() + " closed";
    fail(std::move(cb), {TransportErrorKind::ConnectionClosed, std::move(detail)});
    return;
  }
  if (isMessage) counters_.messagesOut++;
  if (!cb) return;
  // Callbacks of messages the kernel took are done with (or, TLS 1.3 before
  // the server confirmed us, wait for that).
  std::uint64_t sent = c.stream->bytesSentTotal();
  while (!c.inflight.empty() && c.inflight.front().mark <= sent) {
    if (!c.tlsConfirmed) c.unconfirmed.push_back(std::move(c.inflight.front().cb));
    c.inflight.pop_front();
  }
  c.inflight.push_back(Pending{c.stream->bytesQueuedTotal(), std::move(cb)});
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

// ---------------- framing ----------------

void TransportLayer::Impl::feedStream(Conn& c, std::string_view data) {
  if (!c.open()) return;
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
    if (!c.open()) return;
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
        if (!c.open()) return;
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
        if (!c.open()) return;
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
  c.mirror.clear();
  if (auto it = byKey_.find(c.key); it != byKey_.end() && it->second == c.id) byKey_.erase(it);
  ++byKeyGen_;
  // Flush the answer (TLS: then close_notify), then close when the peer
  // does or after closeLinger.
  c.stream->closeAfterFlush(cfg_.closeLinger, "closed after an unframeable message");
}

// ---------------- close ----------------

TransportError TransportLayer::Impl::errorFor(Conn& c, const net::CloseReason& r) {
  using K = net::CloseKind;
  const std::string peer = c.remote.toString();
  auto handshakeFailed = [&](const std::string& why) {
    counters_.tlsHandshakeFailures++;
    if (c.stream->tls() != nullptr && c.stream->tls()->peerRefused()) counters_.tlsPeersRefused++;
    if (logs(spdlog::level::warn))
      cfg_.log->warn("TLS handshake {} {} failed: {}", c.outgoing ? "to" : "from", peer, why);  // TLS-5
    return TransportError{TransportErrorKind::TlsHandshakeFailed, "TLS handshake with " + peer + " failed: " + why};
  };
  switch (r.kind) {
    case K::PeerClosed:
      return {TransportErrorKind::ConnectionClosed,
              r.detail.ends_with("closed the TLS session") ? peer + " closed the TLS session" : "closed by " + peer};
    case K::Local: return {TransportErrorKind::ConnectionClosed, r.detail};
    case K::SocketError:
      return {TransportErrorKind::ConnectionClosed,
              (r.detail.starts_with("send") ? "send to " : "recv from ") + peer + ": " + errnoText(r.sysError)};
    case K::IdleTimeout:
      counters_.idleClosed++;
      return {TransportErrorKind::ConnectionClosed, r.detail};
    case K::Drained: return {TransportErrorKind::ConnectionClosed, r.detail};
    case K::ConnectRefused:
    case K::ConnectFailed:
      counters_.connectFailures++;
      return {kindForErrno(r.sysError), "connect to " + peer + ": " + errnoText(r.sysError)};
    case K::ConnectTimeout:
      counters_.connectFailures++;
      return {TransportErrorKind::ConnectTimeout, "no TCP connection to " + peer + " within " +
                                                      std::to_string(cfg_.connectTimeout.count()) + " ms"};
    case K::TlsTimeout:
      counters_.tlsHandshakeFailures++;
      if (!c.outgoing) return {TransportErrorKind::TlsHandshakeFailed, "TLS handshake not finished in time"};
      return {TransportErrorKind::ConnectTimeout, "TLS handshake with " + peer + " not finished within " +
                                                      std::to_string(cfg_.connectTimeout.count()) + " ms"};
    case K::TlsFailed: return handshakeFailed(r.detail);
    case K::TlsError:
      // TLS 1.3: the server refused our certificate after our Finished.
      if (!c.tlsConfirmed) return handshakeFailed(c.stream->tlsError());
      if (r.detail.starts_with("TLS write"))
        return {TransportErrorKind::ConnectionClosed, "TLS write failed: " + c.stream->tlsError()};
      return {TransportErrorKind::ConnectionClosed, "TLS error from " + peer + ": " + c.stream->tlsError()};
  }
  return {TransportErrorKind::Other, r.detail};
}

void TransportLayer::Impl::closeConn(Conn& c, const TransportError& why) {
  if (c.stream->state() == net::StreamConnection::State::Closed) return;
  c.closeWhy = why;
  c.stream->close({net::CloseKind::Local, 0, why.detail});  // onClosed does the rest
}

void TransportLayer::Impl::onClosed(Conn& c, const net::CloseReason& r) {
  TransportError why = c.closeWhy ? *c.closeWhy : errorFor(c, r);
  bool unconfirmed = !c.tlsConfirmed;
  if (c.confirmTimer != 0) loop_.cancel(c.confirmTimer);
  c.confirmTimer = 0;
  if (auto it = byKey_.find(c.key); it != byKey_.end() && it->second == c.id) byKey_.erase(it);
  ++byKeyGen_;
  counters_.connectionsClosed++;
  counters_.connectionsActive--;
  if (logs(spdlog::level::debug))
    cfg_.log->debug("conn {} {} closed: {}: {}", c.id, c.remote.toString(), errorKindName(why.kind), why.detail);

  for (auto& w : c.waiting) fail(std::move(w.cb), why);
  c.waiting.clear();
  c.waitingBytes = 0;
  // Messages the kernel never took get the reason; those it took before a
  // TLS 1.3 server confirmed us learn that the handshake failed after all.
  std::uint64_t sent = c.stream->bytesSentTotal();
  TransportError late{TransportErrorKind::TlsHandshakeFailed, why.detail};
  for (auto& p : c.inflight) {
    if (p.mark > sent)
      fail(std::move(p.cb), why);
    else if (unconfirmed)
      fail(std::move(p.cb), late);
  }
  c.inflight.clear();
  if (unconfirmed)
    for (auto& cb : c.unconfirmed) fail(std::move(cb), late);
  c.unconfirmed.clear();

  auto it = conns_.find(c.id);
  if (it != conns_.end()) {
    // Destroyed later: we are inside the connection's own callback.
    graveyard_.push_back(std::move(it->second));
    conns_.erase(it);
    buryLater();
  }
}

void TransportLayer::Impl::setTlsClient(std::shared_ptr<const net::TlsContext> tls) {
  if (tls && tls->role() != net::TlsRole::Client)
    throw std::invalid_argument("outgoing SIP over TLS needs a client TLS context");
  cfg_.tlsClient = std::move(tls);
  tlsConnector_ = net::Connector(group_, net::ConnectorOptions{cfg_.connectTimeout, cfg_.tlsClient, streamOptions()});
}

void TransportLayer::Impl::closeConnection(std::uint64_t id) {
  if (Conn* c = find(id)) closeConn(*c, {TransportErrorKind::ConnectionClosed, "closed locally"});
}

std::uint64_t TransportLayer::Impl::connectionTo(const Endpoint& remote) const {
  auto addr = net::SocketAddress::fromIp(remote.address, remote.port);
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
  s.bytesIn = k.bytesIn + group_->bytesIn();
  s.bytesOut = k.bytesOut + group_->bytesOut();
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
  s.connectionsRejected = group_->rejected();
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
void TransportLayer::setTlsClient(std::shared_ptr<const net::TlsContext> tls) { impl_->setTlsClient(std::move(tls)); }
TransportStats TransportLayer::stats() const { return impl_->stats(); }

}  // namespace imp::sip
