#include "imp/sip/transactions.h"

#include <openssl/rand.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "chars.h"

namespace imp::sip {

namespace {

constexpr std::string_view kCookie = "z9hG4bK";
// Key fields are joined with LF: no header value can contain one after
// unfolding, so two different requests never build the same key.
constexpr char kSep = '\n';

bool hasCookie(const std::optional<Via>& via) { return via && via->branch().substr(0, kCookie.size()) == kCookie; }

void add(std::string& key, std::string_view field) {
  key += kSep;
  key += field;
}

std::string_view tagOf(const std::optional<NameAddr>& a) { return a ? a->tag() : std::string_view{}; }

// §17.2.3: the key a request (or a CANCEL looking for its INVITE, with
// method "INVITE") matches a server transaction by.
std::string requestKey(const Message& m, std::string_view method) {
  auto via = m.topVia();
  std::string key;
  if (hasCookie(via)) {
    // branch, sent-by, method
    auto branch = via->branch();
    key.reserve(4 + branch.size() + via->host.size() + method.size() + 10);
    key = "3261";
    add(key, branch);
    key += kSep;
    for (char c : via->host) key += chars::lower(c);
    key += ':';
    char port[8];
    auto [end, ec] = std::to_chars(port, port + sizeof port, via->port);
    (void)ec;
    key.append(port, end);
    add(key, method);
    return key;
  }
  // RFC 2543: Request-URI, To tag, From tag, Call-ID, CSeq, top Via.
  auto cs = m.cseq();
  key = "2543";
  add(key, m.requestUri());
  add(key, tagOf(m.to()));
  add(key, tagOf(m.from()));
  add(key, m.callId().value_or(""));
  add(key, std::to_string(cs ? cs->seq : 0));
  add(key, method);
  add(key, via ? via->raw : std::string_view{});
  return key;
}

// The key an ACK for a non-2xx final matches its INVITE by. Without the
// cookie the To tag is not part of it: it must equal the tag of the
// response sent, which the INVITE did not carry (checked in onAck()).
std::string ackKey(const Message& m) {
  auto via = m.topVia();
  if (hasCookie(via)) return requestKey(m, "INVITE");
  auto cs = m.cseq();
  std::string key = "2543ack";
  add(key, m.requestUri());
  add(key, tagOf(m.from()));
  add(key, m.callId().value_or(""));
  add(key, std::to_string(cs ? cs->seq : 0));
  add(key, via ? via->raw : std::string_view{});
  return key;
}

// §17.1.3: branch of the top Via and the CSeq method.
std::string clientKey(std::string_view branch, std::string_view method) {
  std::string key;
  key.reserve(branch.size() + 1 + method.size());
  key = branch;
  add(key, method);
  return key;
}

void noError(const TransportError&) {}

// Random bytes for branches, drawn from the OpenSSL CSPRNG in blocks: one
// RAND_bytes call costs about a microsecond whatever its size, and a relayed
// request needs a branch each. Per thread, so no locking; a forked child
// drops what its parent drew (it would otherwise hand out the same branches).
std::atomic<unsigned> g_forks{0};
void onFork() { g_forks.fetch_add(1, std::memory_order_relaxed); }

void randomBytes(unsigned char* out, std::size_t n) {
  struct Pool {
    unsigned char bytes[1024];
    std::size_t left = 0;
    unsigned forks = 0;
  };
  static const int registered = pthread_atfork(nullptr, nullptr, onFork);
  (void)registered;
  thread_local Pool pool;
  unsigned forks = g_forks.load(std::memory_order_relaxed);
  if (pool.forks != forks) {
    pool.left = 0;
    pool.forks = forks;
  }
  if (pool.left < n) {
    // Impossible once OpenSSL has seeded; a predictable branch would let a
    // third party inject responses, so refuse rather than fall back.
    if (RAND_bytes(pool.bytes, sizeof pool.bytes) != 1) throw std::runtime_error("no randomness for a Via branch");
    pool.left = sizeof pool.bytes;
  }
  unsigned char* from = pool.bytes + (sizeof pool.bytes - pool.left);
  std::memcpy(out, from, n);
  std::memset(from, 0, n);  // each byte is handed out once
  pool.left -= n;
}

}  // namespace

enum class ClientState { Calling, Trying, Proceeding, Completed };
enum class ServerState { Trying, Proceeding, Completed, Confirmed };

struct TransactionLayer::Client {
  TxId id = 0;
  bool invite = false;
  ClientState state = ClientState::Calling;
  Message request;
  Endpoint dest;
  ClientCallbacks cb;
  std::string key;
  net::Clock::duration interval{};
  net::TimerId retransmit = 0, timeout = 0, linger = 0;  // A/E, B/F, D/K
  std::optional<Message> ack;                       // INVITE after a non-2xx final
};

struct TransactionLayer::Server {
  TxId id = 0;
  bool invite = false;
  ServerState state = ServerState::Trying;
  Message request;
  Source source;
  std::string key, ackKey;  // ackKey: INVITE only
  std::optional<Message> lastResponse;
  net::Clock::duration interval{};
  net::TimerId retransmit = 0, timeout = 0, linger = 0, trying = 0;  // G, H, I/J, 100
};

TransactionLayer::TransactionLayer(TransactionTransport& transport, net::TimerQueue& timers, TransactionUser& tu,
                                   TransactionConfig config)
    : transport_(transport), timers_(timers), tu_(tu), cfg_(config), alive_(std::make_shared<bool>(true)) {
  // A zero T1 would make the retransmission timers fire forever at one instant.
  if (cfg_.t1 <= net::Clock::duration::zero()) throw std::invalid_argument("transactions: T1 must be positive");
  if (cfg_.t2 < cfg_.t1) throw std::invalid_argument("transactions: T2 must not be shorter than T1");
  if (cfg_.t4 < net::Clock::duration::zero()) throw std::invalid_argument("transactions: T4 must not be negative");
  if (cfg_.autoTrying < net::Clock::duration::zero())
    throw std::invalid_argument("transactions: the 100 Trying delay must not be negative");
}

TransactionLayer::~TransactionLayer() {
  for (auto& [id, c] : clients_)
    for (auto t : {c->retransmit, c->timeout, c->linger})
      if (t) timers_.cancel(t);
  for (auto& [id, s] : servers_)
    for (auto t : {s->retransmit, s->timeout, s->linger, s->trying})
      if (t) timers_.cancel(t);
}

std::string TransactionLayer::newBranch() {
  unsigned char raw[16];
  randomBytes(raw, sizeof raw);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kCookie.size() + 2 * sizeof raw, '\0');
  std::memcpy(out.data(), kCookie.data(), kCookie.size());
  char* p = out.data() + kCookie.size();
  for (unsigned char b : raw) {
    *p++ = kHex[b >> 4];
    *p++ = kHex[b & 15];
  }
  return out;
}

std::string TransactionLayer::prependVia(Message& request, Transport transport, std::string_view sentBy,
                                         std::string_view params) {
  auto branch = newBranch();
  std::string via = "SIP/2.0/";
  via += transportName(transport);
  via += ' ';
  via += sentBy;
  via += ";branch=" + branch;
  via += params;
  request.prependHeader(HeaderId::Via, via);
  return branch;
}

Message TransactionLayer::makeResponse(const Message& request, int status, std::string_view reason, std::string_view toTag) {
  auto r = Message::response(status, reason);
  for (const auto& h : request.headers()) {
    switch (h.id) {
      case HeaderId::Via:
      case HeaderId::From:
      case HeaderId::CallId:
      case HeaderId::CSeq:
        r.appendHeader(h.name, h.value);
        break;
      case HeaderId::To: {
        auto to = parseNameAddr(h.value);
        if (!toTag.empty() && to && to->tag().empty())
          r.appendHeader(h.name, std::string(h.value) + ";tag=" + std::string(toTag));
        else
          r.appendHeader(h.name, h.value);
        break;
      }
      default:
        break;
    }
  }
  // §8.2.6.1: a 100 echoes the Timestamp so the client can measure the RTT.
  if (status == 100)
    if (auto ts = request.header("Timestamp")) r.appendHeader("Timestamp", *ts);
  return r;
}

TransactionCounts TransactionLayer::counts() const {
  TransactionCounts c = totals_;
  for (const auto& [id, x] : clients_) ++(x->invite ? c.clientInvite : c.clientNonInvite);
  for (const auto& [id, x] : servers_) ++(x->invite ? c.serverInvite : c.serverNonInvite);
  return c;
}

// ---------------------------------------------------------------- client

void TransactionLayer::sendClient(const std::shared_ptr<Client>& c) {
  // `c` is held by the caller, so the request outlives a synchronous error
  // that ends the transaction while the transport still looks at it.
  std::weak_ptr<bool> alive = alive_;
  TxId id = c->id;
  transport_.send(c->request, c->dest, [this, alive, id](const TransportError& err) {
    if (alive.expired()) return;
    auto it = clients_.find(id);
    // After a final response the TU has its answer; a late error of an
    // earlier retransmission changes nothing.
    if (it == clients_.end() || it->second->state == ClientState::Completed) return;
    auto failed = it->second;
    ++totals_.transportErrors;
    endClient(id);
    if (failed->cb.onTransportError) failed->cb.onTransportError(err);
  });
}

void TransactionLayer::armClientRetransmit(Client& c, net::Clock::duration interval) {
  c.interval = interval;
  TxId id = c.id;
  c.retransmit = timers_.schedule(interval, [this, id] {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    auto cl = it->second;
    cl->retransmit = 0;
    if (cl->state == ClientState::Completed || (cl->invite && cl->state != ClientState::Calling)) return;
    // Timer A doubles without bound (§17.1.1.2); timer E doubles up to T2,
    // and is T2 once a provisional came (§17.1.2.2).
    net::Clock::duration next = cl->interval * 2;
    if (!cl->invite) next = cl->state == ClientState::Proceeding ? cfg_.t2 : std::min(next, cfg_.t2);
    ++totals_.retransmissions;
    sendClient(cl);
    if (clients_.count(id)) armClientRetransmit(*cl, next);
  });
}

TxId TransactionLayer::sendRequest(Message request, const Endpoint& dest, ClientCallbacks callbacks) {
  if (!request.isRequest()) throw std::invalid_argument("client transaction needs a request");
  if (request.method() == "ACK") throw std::invalid_argument("ACK is not a transaction; send it through the transport");
  auto via = request.topVia();
  if (!hasCookie(via)) throw std::invalid_argument("client transaction needs a top Via with a z9hG4bK branch");
  auto key = clientKey(via->branch(), request.method());
  if (clientIndex_.count(key)) throw std::invalid_argument("client transaction branch already in use");

  auto c = std::make_shared<Client>();
  c->id = ++next_;
  c->invite = request.method() == "INVITE";
  c->state = c->invite ? ClientState::Calling : ClientState::Trying;
  c->key = std::move(key);
  c->request = std::move(request);
  c->dest = dest;
  c->cb = std::move(callbacks);
  TxId id = c->id;
  clientIndex_[c->key] = id;
  clients_.emplace(id, c);
  // Timer B / F: 64*T1 whatever the transport (§17.1.1.2, §17.1.2.2).
  c->timeout = timers_.schedule(64 * cfg_.t1, [this, id] {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    auto cl = it->second;
    cl->timeout = 0;
    ++totals_.clientTimeouts;
    endClient(id);
    if (cl->cb.onTimeout) cl->cb.onTimeout();
  });
  sendClient(c);
  if (clients_.count(id) && !isReliable(dest.transport)) armClientRetransmit(*c, cfg_.t1);
  return id;
}

void TransactionLayer::clientResponse(const std::shared_ptr<Client>& c, const Message& msg) {
  int code = msg.statusCode();
  TxId id = c->id;
  if (c->state == ClientState::Completed) {
    // A retransmitted final: INVITE re-sends its ACK (§17.1.1.2), non-INVITE absorbs it.
    if (c->invite && c->ack && code >= 300) {
      ++totals_.retransmissions;
      transport_.send(*c->ack, c->dest, noError);
    }
    return;
  }
  if (code < 200) {
    if (c->invite) {
      // Proceeding: no more retransmissions, and no timer B — how long a
      // callee may ring is the TU's business (timer C, §16.6).
      for (auto* t : {&c->retransmit, &c->timeout})
        if (*t) {
          timers_.cancel(*t);
          *t = 0;
        }
    }
    // Non-INVITE keeps timer E running; it fires at T2 from now on.
    c->state = ClientState::Proceeding;
    if (c->cb.onProvisional) c->cb.onProvisional(msg);
    return;
  }
  if (c->invite && code < 300) {
    // 2xx: the TU acknowledges end to end; later 2xx are strays (§17.1.1.2).
    endClient(id);
    if (c->cb.onFinal) c->cb.onFinal(msg);
    return;
  }
  for (auto* t : {&c->retransmit, &c->timeout})
    if (*t) {
      timers_.cancel(*t);
      *t = 0;
    }
  c->state = ClientState::Completed;
  bool reliable = isReliable(c->dest.transport);
  if (c->invite) {
    // §17.1.1.3: same Request-URI, Call-ID, From, CSeq number and top Via
    // (so the same branch) as the INVITE, the Routes it carried, and the To
    // of the response (its tag).
    auto ack = Message::request("ACK", c->request.requestUri());
    if (auto v = c->request.header(HeaderId::Via)) ack.appendHeader("Via", splitList(*v).front());
    ack.appendHeader("Max-Forwards", "70");
    for (const auto& h : c->request.headers())
      if (h.id == HeaderId::Route) ack.appendHeader(h.name, h.value);
    for (const auto& h : c->request.headers())
      if (h.id == HeaderId::From || h.id == HeaderId::CallId) ack.appendHeader(h.name, h.value);
    if (auto to = msg.header(HeaderId::To)) ack.appendHeader("To", *to);
    if (auto cs = c->request.cseq()) ack.appendHeader("CSeq", std::to_string(cs->seq) + " ACK");
    transport_.send(ack, c->dest, noError);
    c->ack = std::move(ack);
  }
  // Timer D (at least 32 s) / K (T4) on unreliable transports, zero on reliable.
  net::Clock::duration linger = net::Clock::duration::zero();
  if (!reliable)
    linger = c->invite ? std::max<net::Clock::duration>(std::chrono::seconds(32), 64 * cfg_.t1) : cfg_.t4;
  c->linger = timers_.schedule(linger, [this, id] {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    it->second->linger = 0;
    endClient(id);
  });
  if (c->cb.onFinal) c->cb.onFinal(msg);
}

void TransactionLayer::terminateClient(TxId clientTx) { endClient(clientTx); }

void TransactionLayer::endClient(TxId id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  auto& c = *it->second;
  for (auto t : {c.retransmit, c.timeout, c.linger})
    if (t) timers_.cancel(t);
  c.retransmit = c.timeout = c.linger = 0;
  if (auto ix = clientIndex_.find(c.key); ix != clientIndex_.end() && ix->second == id) clientIndex_.erase(ix);
  clients_.erase(it);
}

// ---------------------------------------------------------------- server

std::shared_ptr<TransactionLayer::Server> TransactionLayer::findServer(TxId id) const {
  auto it = servers_.find(id);
  return it == servers_.end() ? nullptr : it->second;
}

void TransactionLayer::sendServerResponse(const std::shared_ptr<Server>& s) {
  if (!s->lastResponse) return;
  std::weak_ptr<bool> alive = alive_;
  TxId id = s->id;
  // §18.2.2 reduced to what the transport offers: back to the source address,
  // which reuses the request's connection for TCP and TLS.
  transport_.send(*s->lastResponse, s->source.remote, [this, alive, id](const TransportError& err) {
    if (alive.expired()) return;
    auto failed = findServer(id);
    // Confirmed: the ACK proved the final arrived.
    if (failed && failed->state == ServerState::Confirmed) return;
    ++totals_.transportErrors;
    if (!failed) {
      // The transaction ended before the transport gave up (zero timers J/K
      // on TCP, a 2xx ending an INVITE): the answer is still lost, so the TU
      // hears of it; onServerTerminated has already been called.
      tu_.onServerTransportError(id, err);
      return;
    }
    dropServer(id);
    tu_.onServerTransportError(id, err);
    tu_.onServerTerminated(id);
  });
}

void TransactionLayer::armServerRetransmit(Server& s, net::Clock::duration interval) {
  s.interval = interval;
  TxId id = s.id;
  s.retransmit = timers_.schedule(interval, [this, id] {
    auto sv = findServer(id);
    if (!sv) return;
    sv->retransmit = 0;
    if (sv->state != ServerState::Completed) return;
    ++totals_.retransmissions;
    sendServerResponse(sv);
    if (servers_.count(id)) armServerRetransmit(*sv, std::min(sv->interval * 2, cfg_.t2));  // timer G
  });
}

void TransactionLayer::respond(TxId serverTx, Message response) {
  if (!response.isResponse()) throw std::invalid_argument("respond() needs a response");
  auto s = findServer(serverTx);
  if (!s || s->state == ServerState::Completed || s->state == ServerState::Confirmed) return;
  if (s->trying) {
    timers_.cancel(s->trying);
    s->trying = 0;
  }
  int code = response.statusCode();
  s->lastResponse = std::move(response);
  if (code < 200) {
    s->state = ServerState::Proceeding;
    sendServerResponse(s);
    return;
  }
  if (s->invite && code < 300) {
    // 2xx: the transaction ends; retransmitting it is the TU's (§17.2.1).
    sendServerResponse(s);
    endServer(serverTx);
    return;
  }
  s->state = ServerState::Completed;
  sendServerResponse(s);
  if (!servers_.count(serverTx)) return;  // the send failed synchronously
  bool reliable = isReliable(s->source.remote.transport);
  if (s->invite) {
    if (!reliable) armServerRetransmit(*s, cfg_.t1);
    // Timer H: wait 64*T1 for the ACK, whatever the transport.
    s->timeout = timers_.schedule(64 * cfg_.t1, [this, serverTx] {
      auto sv = findServer(serverTx);
      if (!sv) return;
      sv->timeout = 0;
      ++totals_.serverTimeouts;
      dropServer(serverTx);
      tu_.onServerTimeout(serverTx);
      tu_.onServerTerminated(serverTx);
    });
  } else {
    // Timer J: absorb request retransmissions for 64*T1 on unreliable transports.
    s->linger = timers_.schedule(reliable ? net::Clock::duration::zero() : 64 * cfg_.t1, [this, serverTx] {
      auto sv = findServer(serverTx);
      if (!sv) return;
      sv->linger = 0;
      endServer(serverTx);
    });
  }
}

void TransactionLayer::onAck(const Message& ack, const Source& source) {
  auto it = ackIndex_.find(ackKey(ack));
  auto s = it == ackIndex_.end() ? nullptr : findServer(it->second);
  // RFC 2543 ACKs also name the response they acknowledge by its To tag.
  if (s && !hasCookie(ack.topVia())) {
    auto sentTo = s->lastResponse ? s->lastResponse->to() : std::nullopt;
    if (tagOf(ack.to()) != tagOf(sentTo)) s = nullptr;
  }
  if (!s) {
    tu_.onStrayAck(ack, source);
    return;
  }
  // Proceeding has no ACK transition; Confirmed absorbs retransmitted ACKs.
  if (s->state != ServerState::Completed) return;
  s->state = ServerState::Confirmed;
  for (auto* t : {&s->retransmit, &s->timeout})
    if (*t) {
      timers_.cancel(*t);
      *t = 0;
    }
  TxId id = s->id;
  // Timer I: absorb ACK retransmissions for T4 on unreliable transports.
  s->linger = timers_.schedule(isReliable(s->source.remote.transport) ? net::Clock::duration::zero() : cfg_.t4, [this, id] {
    auto sv = findServer(id);
    if (!sv) return;
    sv->linger = 0;
    endServer(id);
  });
}

void TransactionLayer::endServer(TxId id) {
  if (dropServer(id)) tu_.onServerTerminated(id);
}

bool TransactionLayer::dropServer(TxId id) {
  auto it = servers_.find(id);
  if (it == servers_.end()) return false;
  auto& s = *it->second;
  for (auto t : {s.retransmit, s.timeout, s.linger, s.trying})
    if (t) timers_.cancel(t);
  s.retransmit = s.timeout = s.linger = s.trying = 0;
  if (auto ix = serverIndex_.find(s.key); ix != serverIndex_.end() && ix->second == id) serverIndex_.erase(ix);
  if (auto ix = ackIndex_.find(s.ackKey); s.invite && ix != ackIndex_.end() && ix->second == id) ackIndex_.erase(ix);
  servers_.erase(it);
  return true;
}

std::optional<TxId> TransactionLayer::inviteFor(const Message& cancel) const {
  // §9.2: the transaction the CANCEL would match were its method INVITE.
  auto it = serverIndex_.find(requestKey(cancel, "INVITE"));
  if (it == serverIndex_.end()) return std::nullopt;
  return it->second;
}

const Message* TransactionLayer::serverRequest(TxId serverTx) const {
  auto it = servers_.find(serverTx);
  return it == servers_.end() ? nullptr : &it->second->request;
}

// ---------------------------------------------------------------- dispatch

void TransactionLayer::onMessage(Message msg, const Source& source) {
  if (msg.isResponse()) {
    auto via = msg.topVia();
    auto cs = msg.cseq();
    auto it = via && cs ? clientIndex_.find(clientKey(via->branch(), cs->method)) : clientIndex_.end();
    if (it == clientIndex_.end() || msg.statusCode() < 100) {
      tu_.onStrayResponse(msg, source);
      return;
    }
    auto c = clients_.at(it->second);
    clientResponse(c, msg);
    return;
  }
  if (msg.method() == "ACK") {
    onAck(msg, source);
    return;
  }
  auto key = requestKey(msg, msg.method());
  if (auto it = serverIndex_.find(key); it != serverIndex_.end()) {
    // A retransmitted request: the last response again, if there is one
    // (§17.2.1, §17.2.2); Confirmed absorbs.
    auto s = findServer(it->second);
    if (s && s->state != ServerState::Confirmed && s->lastResponse) {
      ++totals_.retransmissions;
      sendServerResponse(s);
    }
    return;
  }
  auto s = std::make_shared<Server>();
  s->id = ++next_;
  s->invite = msg.method() == "INVITE";
  s->state = s->invite ? ServerState::Proceeding : ServerState::Trying;
  s->key = std::move(key);
  if (s->invite) s->ackKey = ackKey(msg);
  s->source = source;
  s->request = std::move(msg);
  TxId id = s->id;
  serverIndex_[s->key] = id;
  if (s->invite) ackIndex_[s->ackKey] = id;
  servers_.emplace(id, s);
  if (s->invite && cfg_.autoTrying > net::Clock::duration::zero()) {
    s->trying = timers_.schedule(cfg_.autoTrying, [this, id] {
      auto sv = findServer(id);
      if (!sv) return;
      sv->trying = 0;
      if (!sv->lastResponse) respond(id, makeResponse(sv->request, 100, "Trying"));
    });
  }
  // `s` keeps the request and source alive even if the TU ends the
  // transaction from inside the callback (a synchronous 2xx).
  tu_.onRequest(id, s->request, s->source);
}

}  // namespace imp::sip
