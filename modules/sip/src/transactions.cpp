#include "imp/sip/transactions.h"

#include <openssl/rand.h>

#include <stdexcept>

#include "chars.h"

namespace imp::sip {

namespace {

constexpr std::string_view kCookie = "z9hG4bK";

bool isCookie(std::string_view branch) { return branch.substr(0, kCookie.size()) == kCookie; }

std::string cseqMethod(const Message& m) {
  auto c = m.cseq();
  return c ? std::string(c->method) : std::string();
}

}  // namespace

enum class ClientState { Calling, Trying, Proceeding, Completed };
enum class ServerState { Proceeding, Trying, Completed, Confirmed };

struct TransactionLayer::Client {
  TxId id = 0;
  bool invite = false;
  ClientState state = ClientState::Calling;
  Message request;
  Endpoint dest;
  ClientCallbacks cb;
  std::string key;
  Clock::duration interval{};
  TimerId retransmit = 0, timeout = 0, linger = 0;
  std::optional<Message> ack;  // for non-2xx finals of INVITE
};

struct TransactionLayer::Server {
  TxId id = 0;
  bool invite = false;
  ServerState state = ServerState::Proceeding;
  Message request;
  Source source;
  std::string key;
  std::optional<Message> lastResponse;
  Clock::duration interval{};
  TimerId retransmit = 0, timeout = 0, linger = 0, trying = 0;
};

TransactionLayer::TransactionLayer(TransactionTransport& transport, TimerQueue& timers, TransactionUser& tu,
                                   TransactionConfig config)
    : transport_(transport), timers_(timers), tu_(tu), cfg_(config), alive_(std::make_shared<bool>(true)) {}

TransactionLayer::~TransactionLayer() {
  *alive_ = false;
  for (auto& [id, c] : clients_)
    for (auto t : {c->retransmit, c->timeout, c->linger})
      if (t) timers_.cancel(t);
  for (auto& [id, s] : servers_)
    for (auto t : {s->retransmit, s->timeout, s->linger, s->trying})
      if (t) timers_.cancel(t);
}

std::string TransactionLayer::newBranch() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no randomness for a Via branch");
  static const char* hex = "0123456789abcdef";
  std::string out(kCookie);
  for (unsigned char b : raw) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
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
        if (!toTag.empty() && to && to->tag().empty()) r.appendHeader(h.name, std::string(h.value) + ";tag=" + std::string(toTag));
        else r.appendHeader(h.name, h.value);
        break;
      }
      default:
        break;
    }
  }
  return r;
}

TransactionCounts TransactionLayer::counts() const {
  TransactionCounts c;
  for (const auto& [id, x] : clients_) (x->invite ? c.clientInvite : c.clientNonInvite)++;
  for (const auto& [id, x] : servers_) (x->invite ? c.serverInvite : c.serverNonInvite)++;
  return c;
}

// ---------------------------------------------------------------- client

void TransactionLayer::sendClient(Client& c) {
  std::weak_ptr<bool> alive = alive_;
  TxId id = c.id;
  transport_.send(c.request, c.dest, [this, alive, id](const TransportError& err) {
    auto a = alive.lock();
    if (!a || !*a) return;
    auto it = clients_.find(id);
    if (it == clients_.end() || it->second->state == ClientState::Completed) return;
    auto cb = it->second->cb.onTransportError;
    endClient(id);
    if (cb) cb(err);
  });
}

void TransactionLayer::armClientRetransmit(TxId id, Clock::duration interval) {
  auto& c = *clients_.at(id);
  c.interval = interval;
  c.retransmit = timers_.schedule(interval, [this, id] {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    auto& cl = *it->second;
    cl.retransmit = 0;
    if (cl.state == ClientState::Completed) return;
    // Timer A doubles without bound; timer E doubles up to T2 (§17.1.2.2).
    auto next = cl.invite ? cl.interval * 2 : std::min(cl.interval * 2, cfg_.t2);
    if (!cl.invite && cl.state == ClientState::Proceeding) next = cfg_.t2;
    sendClient(cl);
    if (clients_.count(id)) armClientRetransmit(id, next);
  });
}

TxId TransactionLayer::sendRequest(Message request, const Endpoint& dest, ClientCallbacks callbacks) {
  auto via = request.topVia();
  if (!via || !isCookie(via->branch())) throw std::invalid_argument("client transaction needs a top Via with a z9hG4bK branch");
  auto c = std::make_unique<Client>();
  c->id = ++next_;
  c->invite = request.method() == "INVITE";
  c->state = c->invite ? ClientState::Calling : ClientState::Trying;
  c->key = std::string(via->branch()) + "|" + std::string(request.method());
  c->request = std::move(request);
  c->dest = dest;
  c->cb = std::move(callbacks);
  TxId id = c->id;
  clientIndex_[c->key] = id;
  auto& ref = *c;
  clients_.emplace(id, std::move(c));
  // Timer B / F: 64*T1 whatever the transport (§17.1.1.2, §17.1.2.2).
  ref.timeout = timers_.schedule(64 * cfg_.t1, [this, id] {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    it->second->timeout = 0;
    auto cb = it->second->cb.onTimeout;
    endClient(id);
    if (cb) cb();
  });
  sendClient(ref);
  if (clients_.count(id) && !isReliable(dest.transport)) armClientRetransmit(id, cfg_.t1);
  return id;
}

void TransactionLayer::clientResponse(Client& c, Message msg) {
  int code = msg.statusCode();
  TxId id = c.id;
  if (c.state == ClientState::Completed) {
    // A retransmitted final: INVITE re-sends its ACK, non-INVITE absorbs it.
    if (c.invite && c.ack && code >= 300) transport_.send(*c.ack, c.dest, nullptr);
    return;
  }
  if (code < 200) {
    if (c.invite && c.retransmit) {
      timers_.cancel(c.retransmit);
      c.retransmit = 0;
    }
    c.state = ClientState::Proceeding;
    if (c.cb.onProvisional) c.cb.onProvisional(msg);
    return;
  }
  auto onFinal = c.cb.onFinal;
  if (c.invite && code < 300) {
    // 2xx: the TU (or the UA core) acknowledges end to end.
    endClient(id);
    if (onFinal) onFinal(msg);
    return;
  }
  if (c.retransmit) timers_.cancel(c.retransmit);
  if (c.timeout) timers_.cancel(c.timeout);
  c.retransmit = c.timeout = 0;
  c.state = ClientState::Completed;
  bool reliable = isReliable(c.dest.transport);
  if (c.invite) {
    // §17.1.1.3: ACK for a non-2xx final, same branch, To from the response.
    auto ack = Message::request("ACK", c.request.requestUri());
    if (auto v = c.request.header(HeaderId::Via)) ack.appendHeader("Via", splitList(*v).front());
    ack.appendHeader("Max-Forwards", "70");
    for (const auto& h : c.request.headers())
      if (h.id == HeaderId::Route) ack.appendHeader(h.name, h.value);
    for (const auto& h : c.request.headers())
      if (h.id == HeaderId::From || h.id == HeaderId::CallId) ack.appendHeader(h.name, h.value);
    if (auto to = msg.header(HeaderId::To)) ack.appendHeader("To", *to);
    if (auto cs = c.request.cseq()) ack.appendHeader("CSeq", std::to_string(cs->seq) + " ACK");
    transport_.send(ack, c.dest, nullptr);
    c.ack = std::move(ack);
  }
  // Timer D (32 s, at least) / K (T4) on unreliable transports, zero on reliable.
  auto linger = reliable ? Clock::duration::zero() : (c.invite ? std::max(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(32)), 64 * cfg_.t1) : cfg_.t4);
  c.linger = timers_.schedule(linger, [this, id] {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    it->second->linger = 0;
    endClient(id);
  });
  if (onFinal) onFinal(msg);
}

void TransactionLayer::endClient(TxId id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  for (auto t : {it->second->retransmit, it->second->timeout, it->second->linger})
    if (t) timers_.cancel(t);
  clientIndex_.erase(it->second->key);
  clients_.erase(it);
}

// ---------------------------------------------------------------- server

std::string TransactionLayer::serverKey(const Message& m, bool forAck) const {
  auto via = m.topVia();
  std::string method = forAck ? "INVITE" : std::string(m.method());
  if (via && isCookie(via->branch()))
    return std::string(via->branch()) + "|" + std::string(via->host) + ":" + std::to_string(via->port) + "|" + method;
  // RFC 2543 matching (§17.2.3): Request-URI, tags, Call-ID, CSeq, top Via.
  auto from = m.from();
  auto cs = m.cseq();
  std::string key = "2543|" + std::string(m.callId().value_or("")) + "|" + std::string(from ? from->tag() : "") + "|" +
                    std::to_string(cs ? cs->seq : 0) + "|" + method + "|" + (via ? std::string(via->raw) : "");
  if (!forAck) key += "|" + std::string(m.requestUri());
  return key;
}

void TransactionLayer::sendServerResponse(Server& s) {
  if (s.lastResponse) transport_.send(*s.lastResponse, s.source.remote, nullptr);
}

void TransactionLayer::armServerRetransmit(TxId id, Clock::duration interval) {
  auto& s = *servers_.at(id);
  s.interval = interval;
  s.retransmit = timers_.schedule(interval, [this, id] {
    auto it = servers_.find(id);
    if (it == servers_.end()) return;
    auto& sv = *it->second;
    sv.retransmit = 0;
    if (sv.state != ServerState::Completed) return;
    sendServerResponse(sv);
    armServerRetransmit(id, std::min(sv.interval * 2, cfg_.t2));  // timer G
  });
}

void TransactionLayer::serverRequestAgain(Server& s) {
  // A retransmitted request: answer with the last response, if any (§17.2.1, §17.2.2).
  if (s.state == ServerState::Confirmed) return;
  sendServerResponse(s);
}

void TransactionLayer::respond(TxId serverTx, Message response) {
  auto it = servers_.find(serverTx);
  if (it == servers_.end()) return;
  auto& s = *it->second;
  if (s.state == ServerState::Completed || s.state == ServerState::Confirmed) return;  // final already sent
  if (s.trying) {
    timers_.cancel(s.trying);
    s.trying = 0;
  }
  int code = response.statusCode();
  s.lastResponse = std::move(response);
  sendServerResponse(s);
  bool reliable = isReliable(s.source.remote.transport);
  if (code < 200) {
    s.state = ServerState::Proceeding;
    return;
  }
  if (s.invite && code < 300) {
    // 2xx: the transaction ends; retransmissions are the TU's (§17.2.1).
    endServer(serverTx);
    return;
  }
  s.state = ServerState::Completed;
  if (s.invite) {
    if (!reliable) armServerRetransmit(serverTx, cfg_.t1);
    // Timer H: wait 64*T1 for the ACK.
    s.timeout = timers_.schedule(64 * cfg_.t1, [this, serverTx] {
      auto sit = servers_.find(serverTx);
      if (sit == servers_.end()) return;
      sit->second->timeout = 0;
      endServer(serverTx);
      tu_.onServerTimeout(serverTx);
    });
  } else {
    // Timer J: absorb retransmissions for 64*T1 on unreliable transports.
    s.linger = timers_.schedule(reliable ? Clock::duration::zero() : 64 * cfg_.t1, [this, serverTx] {
      auto sit = servers_.find(serverTx);
      if (sit == servers_.end()) return;
      sit->second->linger = 0;
      endServer(serverTx);
    });
  }
}

void TransactionLayer::endServer(TxId id) {
  auto it = servers_.find(id);
  if (it == servers_.end()) return;
  for (auto t : {it->second->retransmit, it->second->timeout, it->second->linger, it->second->trying})
    if (t) timers_.cancel(t);
  serverIndex_.erase(it->second->key);
  servers_.erase(it);
}

std::optional<TxId> TransactionLayer::inviteFor(const Message& cancel) const {
  auto key = serverKey(cancel, true);
  // CANCEL carries the INVITE's branch and Request-URI; its method differs.
  auto it = serverIndex_.find(key);
  if (it == serverIndex_.end()) {
    // RFC 2543 keys of an INVITE include the Request-URI
    auto with = key + "|" + std::string(cancel.requestUri());
    it = serverIndex_.find(with);
  }
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
    auto method = cseqMethod(msg);
    auto it = via ? clientIndex_.find(std::string(via->branch()) + "|" + method) : clientIndex_.end();
    if (it == clientIndex_.end()) {
      tu_.onStrayResponse(msg, source);
      return;
    }
    clientResponse(*clients_.at(it->second), std::move(msg));
    return;
  }
  if (msg.method() == "ACK") {
    auto it = serverIndex_.find(serverKey(msg, true));
    if (it == serverIndex_.end()) {
      // RFC 2543 INVITE keys carry the Request-URI too
      it = serverIndex_.find(serverKey(msg, true) + "|" + std::string(msg.requestUri()));
    }
    if (it == serverIndex_.end()) {
      tu_.onStrayAck(msg, source);
      return;
    }
    auto& s = *servers_.at(it->second);
    if (!s.invite) {
      tu_.onStrayAck(msg, source);
      return;
    }
    if (s.state == ServerState::Completed) {
      s.state = ServerState::Confirmed;
      if (s.retransmit) timers_.cancel(s.retransmit);
      if (s.timeout) timers_.cancel(s.timeout);
      s.retransmit = s.timeout = 0;
      TxId id = s.id;
      // Timer I: absorb ACK retransmissions for T4 on unreliable transports.
      s.linger = timers_.schedule(isReliable(source.remote.transport) ? Clock::duration::zero() : cfg_.t4, [this, id] {
        auto sit = servers_.find(id);
        if (sit == servers_.end()) return;
        sit->second->linger = 0;
        endServer(id);
      });
    }
    return;
  }
  auto key = serverKey(msg, false);
  auto it = serverIndex_.find(key);
  if (it != serverIndex_.end()) {
    serverRequestAgain(*servers_.at(it->second));
    return;
  }
  auto s = std::make_unique<Server>();
  s->id = ++next_;
  s->invite = msg.method() == "INVITE";
  s->state = s->invite ? ServerState::Proceeding : ServerState::Trying;
  s->key = key;
  s->source = source;
  s->request = std::move(msg);
  TxId id = s->id;
  serverIndex_[key] = id;
  auto& ref = *s;
  servers_.emplace(id, std::move(s));
  if (ref.invite && cfg_.autoTrying > Clock::duration::zero()) {
    ref.trying = timers_.schedule(cfg_.autoTrying, [this, id] {
      auto sit = servers_.find(id);
      if (sit == servers_.end()) return;
      sit->second->trying = 0;
      if (!sit->second->lastResponse) respond(id, makeResponse(sit->second->request, 100, "Trying"));
    });
  }
  tu_.onRequest(id, ref.request, ref.source);
}

}  // namespace imp::sip
