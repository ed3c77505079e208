// Gateway: lifecycle, SIP plumbing (dialogs, requests, responses), the XMPP
// entry point and the admin views. Presence is in presence.cpp, IM in im.cpp.
#include <imp/core/logging.h>
#include <imp/sip/uri.h>
#include <imp/xmpp/ns.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <future>
#include <stdexcept>

#include "gateway_impl.h"

namespace imp::fcm {

// ---------------- helpers ----------------

std::string token(std::size_t bytes) {
  std::vector<unsigned char> b(bytes);
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (auto c : b) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

std::string sipUri(const std::string& bareJid) { return "sip:" + bareJid; }

std::string jidOfUri(std::string_view text) {
  auto lt = text.find('<');
  if (lt != std::string_view::npos) {
    auto gt = text.find('>', lt);
    if (gt == std::string_view::npos) return {};
    text = text.substr(lt + 1, gt - lt - 1);
  }
  auto u = sip::parseUri(text);
  if (!u || !u->isSip() || u->user.empty()) return {};
  auto user = sip::unescape(u->user);
  if (!user) return {};
  std::string out = *user + "@" + std::string(u->host);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string key2(const std::string& a, const std::string& b) { return a + "\n" + b; }

std::string domainOf(const std::string& bareJid) {
  auto at = bareJid.find('@');
  return at == std::string::npos ? bareJid : bareJid.substr(at + 1);
}

std::pair<std::string, std::string> msDiagnostics(const sip::Message& resp) {
  auto h = resp.header("ms-diagnostics");
  if (!h) h = resp.header("ms-diagnostics-public");
  if (!h) return {};
  std::string_view v = *h;
  std::string id;
  std::size_t i = 0;
  while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) id += v[i++];
  std::string reason;
  if (auto r = sip::findParam(v.substr(i), "reason")) {
    reason = std::string(*r);
    if (reason.size() >= 2 && reason.front() == '"' && reason.back() == '"') reason = reason.substr(1, reason.size() - 2);
  }
  return {id, reason};
}

// IM-5 / FED-7: what an XMPP sender is told when the SIP side failed. One
// table; 0 stands for a timeout or a transport failure.
std::pair<std::string_view, std::string_view> xmppErrorFor(int code) {
  struct Row {
    int from, to;
    std::string_view condition, type;
  };
  static constexpr Row rows[] = {
      {0, 0, "remote-server-timeout", "wait"},
      {403, 403, "forbidden", "auth"},
      {404, 404, "item-not-found", "cancel"},
      {408, 408, "remote-server-timeout", "wait"},
      {410, 410, "item-not-found", "cancel"},
      {415, 415, "not-acceptable", "modify"},
      {480, 480, "recipient-unavailable", "wait"},
      {482, 483, "item-not-found", "cancel"},  // FED-7: the request came back: known on neither side
      {484, 485, "item-not-found", "cancel"},
      {486, 486, "recipient-unavailable", "wait"},
      {488, 488, "not-acceptable", "modify"},
      {500, 500, "internal-server-error", "wait"},
      {501, 501, "feature-not-implemented", "cancel"},
      {502, 502, "remote-server-not-found", "cancel"},
      {503, 503, "service-unavailable", "wait"},
      {504, 504, "remote-server-timeout", "wait"},
      {600, 600, "recipient-unavailable", "wait"},
      {603, 603, "forbidden", "auth"},
      {604, 604, "item-not-found", "cancel"},
      {606, 606, "not-acceptable", "modify"},
  };
  for (const auto& r : rows)
    if (code >= r.from && code <= r.to) return {r.condition, r.type};
  return {"undefined-condition", "cancel"};
}

// ---------------- Gateway ----------------

namespace {

// Runs fn on the loop and waits, or inline when no other thread runs it.
template <typename F>
auto onLoop(net::EventLoop& loop, F fn) -> decltype(fn()) {
  if (!loop.runningElsewhere()) return fn();
  std::packaged_task<decltype(fn())()> task(std::move(fn));
  auto f = task.get_future();
  loop.post([&task] { task(); });
  return f.get();
}

}  // namespace

Gateway::Gateway(GatewayConfig cfg, net::EventLoop& loop, xcp::Router& router, SubscriptionStore* store)
    : impl_(std::make_shared<Impl>(std::move(cfg), loop, router, store)) {}

Gateway::~Gateway() { stop(); }

sip::Endpoint Gateway::start() {
  auto impl = impl_;
  return onLoop(impl->loop_, [impl] { return impl->start(); });
}

void Gateway::recover() {
  // Stored subscriptions are read here, off the loop (the database blocks).
  std::vector<StoredSubscription> rows;
  if (impl_->store_) rows = impl_->store_->load();
  auto impl = impl_;
  impl->loop_.post([impl, rows = std::move(rows)]() mutable { impl->recover(std::move(rows)); });
}

void Gateway::stop() noexcept {
  auto impl = impl_;
  if (!impl) return;
  try {
    onLoop(impl->loop_, [impl] { impl->stop(); });
  } catch (const std::exception& e) {
    if (impl->cfg_.log) impl->cfg_.log->error("federation-cm stop: {}", e.what());
  }
}

void Gateway::deliver(xcp::RoutedStanza stanza) {
  std::weak_ptr<Impl> w = impl_;
  impl_->loop_.post([w, s = std::move(stanza)]() mutable {
    if (auto impl = w.lock()) impl->onStanza(std::move(s));
  });
}

void Gateway::setPeerTypes(std::map<std::string, PeerType> types) {
  std::weak_ptr<Impl> w = impl_;
  impl_->loop_.post([w, t = std::move(types)]() mutable {
    if (auto impl = w.lock()) impl->peerTypes_ = std::move(t);
  });
}

void Gateway::setProxy(sip::Endpoint proxy) {
  std::weak_ptr<Impl> w = impl_;
  impl_->loop_.post([w, p = std::move(proxy)]() mutable {
    if (auto impl = w.lock(); impl && !(impl->cfg_.proxy == p)) {
      if (impl->cfg_.log) impl->cfg_.log->info("the SIP proxy is now at {}", p.toString());
      impl->cfg_.proxy = std::move(p);
    }
  });
}

void Gateway::setRecoveryRate(unsigned perSecond) {
  perSecond = std::max(1u, perSecond);
  std::weak_ptr<Impl> w = impl_;
  impl_->loop_.post([w, perSecond] {
    // runPaced() reads the rate on this loop at every tick.
    if (auto impl = w.lock(); impl && impl->cfg_.recoveryRate != perSecond) {
      impl->cfg_.recoveryRate = perSecond;
      if (impl->cfg_.log) impl->cfg_.log->info("recovery rate now {} per second", perSecond);
    }
  });
}

GatewayStats Gateway::stats() const {
  auto impl = impl_;
  return onLoop(impl->loop_, [impl] { return impl->stats(); });
}

std::vector<SubscriptionInfo> Gateway::subscriptions(const std::string& user) const {
  auto impl = impl_;
  return onLoop(impl->loop_, [impl, user] { return impl->subscriptionList(user); });
}

std::vector<ImSessionInfo> Gateway::sessions() const {
  auto impl = impl_;
  return onLoop(impl->loop_, [impl] { return impl->sessionList(); });
}

// ---------------- Impl: lifecycle ----------------

Gateway::Impl::Impl(GatewayConfig cfg, net::EventLoop& loop, xcp::Router& router, SubscriptionStore* store)
    : cfg_(std::move(cfg)), loop_(loop), router_(router), store_(store), stanzaIds_(token(4) + "-") {}

Gateway::Impl::~Impl() = default;

sip::Endpoint Gateway::Impl::start() {
  if (running_) return bound_;
  sip::TransportConfig tc;
  tc.log = cfg_.log;
  tc.idleTimeout = std::chrono::milliseconds(0);  // the proxy's connection stays
  transport_ = std::make_unique<sip::TransportLayer>(loop_, tc);
  sip::ListenerConfig lc;
  lc.transport = sip::Transport::Tcp;
  lc.address = cfg_.listenAddress;
  lc.port = cfg_.listenPort;
  bound_ = transport_->listen(lc);
  txl_ = std::make_unique<sip::TransactionLayer>(*this, loop_, *this);
  transport_->setMessageHandler([this](sip::Message m, const sip::Source& src) {
    if (txl_) txl_->onMessage(std::move(m), src);
  });
  running_ = true;
  sweepTimer_ = loop_.schedule(kSweepTick, [this] { sweepExpired(); });
  if (cfg_.log)
    cfg_.log->info("federation connection manager listening on {}, requests via the SIP proxy at {}, recovery at {} per second",
                   bound_.toString(), cfg_.proxy.toString(), cfg_.recoveryRate);
  return bound_;
}

void Gateway::Impl::stop() {
  if (!running_) return;
  running_ = false;
  // IM dialogs end with the service (BYE, best effort); subscriptions are
  // kept in the store and recovered at the next start (AV-3).
  std::vector<std::string> keys;
  for (const auto& [k, s] : im_) keys.push_back(k);
  for (const auto& k : keys) endSession(k, true, "the federation connection manager stops");
  for (auto& [k, s] : out_) loop_.cancel(s.refreshTimer);
  loop_.cancel(sweepTimer_);
  for (auto& [d, p] : peers_) loop_.cancel(p.timer);
  loop_.cancel(pacedTimer);
  pacedQueue_.clear();
  out_.clear();
  in_.clear();
  im_.clear();
  byCallId_.clear();
  txl_.reset();
  transport_.reset();
}

// ---------------- Impl: SIP plumbing ----------------

void Gateway::Impl::send(const sip::Message& msg, const sip::Endpoint& dest,
                         std::function<void(const sip::TransportError&)> onError) {
  if (!transport_) return;
  transport_->send(msg, dest, std::move(onError));
}

std::string Gateway::Impl::contact() const {
  return "<sip:federation-cm@" + bound_.address + ":" + std::to_string(bound_.port) + ";transport=tcp>";
}

sip::Message Gateway::Impl::outOfDialog(std::string_view method, const std::string& fromJid, const std::string& toJid,
                                        Dialog& dlg) {
  dlg = Dialog{};
  dlg.callId = token(12) + "@" + cfg_.nodeId;
  dlg.localTag = token(6);
  dlg.localUri = sipUri(fromJid);
  dlg.remoteUri = sipUri(toJid);
  return inDialog(method, dlg);
}

sip::Message Gateway::Impl::inDialog(std::string_view method, Dialog& dlg) {
  auto m = sip::Message::request(method, dlg.remoteTarget.empty() ? dlg.remoteUri : dlg.remoteTarget);
  sip::TransactionLayer::prependVia(m, sip::Transport::Tcp, bound_.address + ":" + std::to_string(bound_.port),
                                    ";rport");
  m.appendHeader("Max-Forwards", "70");
  for (const auto& r : dlg.routeSet) m.appendHeader("Route", r);
  m.appendHeader("From", "<" + dlg.localUri + ">;tag=" + dlg.localTag);
  m.appendHeader("To", "<" + dlg.remoteUri + ">" + (dlg.remoteTag.empty() ? "" : ";tag=" + dlg.remoteTag));
  m.appendHeader("Call-ID", dlg.callId);
  m.appendHeader("CSeq", std::to_string(++dlg.localCseq) + " " + std::string(method));
  if (method == "SUBSCRIBE" || method == "NOTIFY" || method == "INVITE") m.appendHeader("Contact", contact());
  m.appendHeader("User-Agent", "IMP federation-cm/" IMP_FCM_VERSION);
  return m;
}

sip::TxId Gateway::Impl::sendRequest(sip::Message req, sip::ClientCallbacks cb) {
  if (!txl_) return 0;
  return txl_->sendRequest(std::move(req), cfg_.proxy, std::move(cb));
}

void Gateway::Impl::refuse(sip::TxId tx, const sip::Message& req, int status, std::string_view reason,
                           std::string_view why, const std::vector<std::pair<std::string, std::string>>& headers) {
  ++stats_.refused;
  if (cfg_.log) {
    auto who = jidOfUri(req.from() ? req.from()->raw : std::string_view{});
    cfg_.log->info("{} from {} refused with {}: {}", req.method(), who.empty() ? std::string("?") : who, status, why);
  }
  respond(tx, req, status, reason, headers);
}

void Gateway::Impl::respond(sip::TxId tx, const sip::Message& req, int status, std::string_view reason,
                            const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body,
                            std::string_view contentType, const std::string& toTag) {
  if (!txl_) return;
  auto resp = sip::TransactionLayer::makeResponse(req, status, reason, toTag);
  if (status >= 200 && status < 300 && (req.method() == "INVITE" || req.method() == "SUBSCRIBE")) {
    // RFC 3261 §12.1.1: the dialog's route set goes back in the 2xx.
    for (const auto& h : req.headers())
      if (h.id == sip::HeaderId::RecordRoute) resp.appendHeader("Record-Route", h.value);
    resp.appendHeader("Contact", contact());
  }
  for (const auto& [n, v] : headers) resp.appendHeader(n, v);
  if (!body.empty()) resp.setBody(body, contentType);
  txl_->respond(tx, std::move(resp));
}

void Gateway::Impl::dialogFromResponse(Dialog& d, const sip::Message& resp) {
  if (auto to = resp.to()) d.remoteTag = std::string(to->tag());
  auto rr = resp.recordRoutes();
  d.routeSet.clear();
  for (auto it = rr.rbegin(); it != rr.rend(); ++it) d.routeSet.emplace_back(it->raw);
  auto c = resp.contacts();
  if (!c.empty()) d.remoteTarget = std::string(c.front().uri);
}

void Gateway::Impl::dialogFromRequest(Dialog& d, const sip::Message& req, const std::string& localTag) {
  d.callId = std::string(req.callId().value_or(""));
  d.localTag = localTag;
  if (auto f = req.from()) {
    d.remoteTag = std::string(f->tag());
    d.remoteUri = std::string(f->uri);
  }
  if (auto t = req.to()) d.localUri = std::string(t->uri);
  d.routeSet.clear();
  for (const auto& r : req.recordRoutes()) d.routeSet.emplace_back(r.raw);
  auto c = req.contacts();
  d.remoteTarget = c.empty() ? d.remoteUri : std::string(c.front().uri);
  if (auto cs = req.cseq()) d.remoteCseq = cs->seq;
}

bool Gateway::Impl::tracing() const { return cfg_.log && cfg_.trace && cfg_.trace->has("translation"); }

void Gateway::Impl::traceLine(std::string_view what, const std::string& detail) { cfg_.log->info("{}: {}", what, detail); }

void Gateway::Impl::countFailure(int code, const sip::Message* resp) {
  ++failuresByCode_[code];
  if (resp) {
    auto [id, reason] = msDiagnostics(*resp);
    if (!id.empty()) {
      ++failuresByDiag_[id];
      if (cfg_.log) cfg_.log->warn("Microsoft side answered {} with ms-diagnostics {} ({})", code, id, reason);
    }
  }
}

void Gateway::Impl::route(xcp::StanzaKind kind, const std::string& from, const xcp::Address& to, xmpp::Element el) {
  auto f = xcp::Address::split(from);
  if (!f) return;
  el.setAttr("from", from);
  el.setAttr("to", to.full());
  xcp::RoutedStanza s;
  s.kind = kind;
  s.from = std::move(*f);
  s.to = to;
  s.type = std::string(el.attrOr("type", ""));
  trace("sip -> xmpp", [&] { return el.serialize(); });
  s.element = std::make_shared<const xmpp::Element>(std::move(el));
  router_.route(std::move(s));
}

void Gateway::Impl::messageError(const xcp::Address& sender, const std::string& remote, const std::string& id,
                                 std::string_view condition, std::string_view type, const std::string& text,
                                 const std::shared_ptr<const xmpp::Element>& original) {
  ++stats_.xmppErrors;
  xmpp::Element m("message", std::string(xmpp::ns::kClient));
  m.setAttr("type", "error");
  if (!id.empty()) m.setAttr("id", id);
  if (original)
    if (auto body = original->child("body", xmpp::ns::kClient)) m.addChild(*body);
  auto& e = m.addChild("error", std::string(xmpp::ns::kClient));
  e.setAttr("type", type);
  e.addChild(std::string(condition), std::string(xmpp::ns::kStanzaErrors));
  e.addChild("text", std::string(xmpp::ns::kStanzaErrors)).addText(text);
  if (cfg_.log) cfg_.log->info("message from {} to {} not delivered: {} ({})", sender.full(), remote, condition, text);
  route(xcp::StanzaKind::Message, remote, sender, std::move(m));
}

// ---------------- Impl: requests from the SIP side ----------------

void Gateway::Impl::onRequest(sip::TxId tx, const sip::Message& req, const sip::Source&) {
  const auto method = req.method();
  auto to = req.to();
  const bool inDialog = to && !to->tag().empty();
  std::string owner;
  if (inDialog) {
    auto it = byCallId_.find(std::string(req.callId().value_or("")));
    if (it != byCallId_.end()) owner = it->second;
  }
  if (method == "OPTIONS") {
    return respond(tx, req, 200, "OK",
                   {{"Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, SUBSCRIBE, NOTIFY"},
                    {"Accept", "application/sdp, application/pidf+xml, text/plain"}},
                   {}, {}, token(6));
  }
  if (method == "CANCEL") return respond(tx, req, 200, "OK");  // INVITEs are answered at once
  if (method == "SUBSCRIBE") {
    if (!inDialog) return onSubscribeRequest(tx, req);
    if (!owner.empty() && owner[0] == 'i') {
      auto it = in_.find(owner.substr(1));
      if (it != in_.end()) return inRefresh(tx, req, it->second);
    }
    return respond(tx, req, 481, "Subscription Does Not Exist");
  }
  if (method == "NOTIFY") {
    // A NOTIFY may come before the SUBSCRIBE's 200 (RFC 6665 §4.1.2.4): the
    // Call-ID and our tag are enough.
    auto it = byCallId_.find(std::string(req.callId().value_or("")));
    if (it != byCallId_.end() && it->second[0] == 'o') {
      auto s = out_.find(it->second.substr(1));
      if (s != out_.end() && to && to->tag() == s->second.dlg.localTag) return onNotify(tx, req, s->second);
    }
    return respond(tx, req, 481, "Subscription Does Not Exist");
  }
  if (method == "INVITE") {
    if (!inDialog) return onInvite(tx, req);
    if (!owner.empty() && owner[0] == 'm') {
      auto it = im_.find(owner.substr(1));
      if (it != im_.end()) return onImRequest(tx, req, it->second);
    }
    return respond(tx, req, 481, "Call/Transaction Does Not Exist");
  }
  if (method == "MESSAGE" && !inDialog) return onPageMessage(tx, req);
  if (method == "MESSAGE" || method == "INFO" || method == "BYE") {
    if (!owner.empty() && owner[0] == 'm') {
      auto it = im_.find(owner.substr(1));
      if (it != im_.end()) return onImRequest(tx, req, it->second);
    }
    return respond(tx, req, 481, "Call/Transaction Does Not Exist");
  }
  ++stats_.refused;
  respond(tx, req, 405, "Method Not Allowed",
          {{"Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, SUBSCRIBE, NOTIFY"}});
}

// ---------------- Impl: stanzas from the XMPP side ----------------

void Gateway::Impl::onStanza(xcp::RoutedStanza s) {
  if (!running_) {
    // Stopped: a message is answered (IM-5), presence is not (RFC 6121 §4.3.2).
    if (s.kind == xcp::StanzaKind::Message && s.type != "error")
      messageError(s.from, s.to.bare(), std::string(s.element->attrOr("id", "")), "service-unavailable", "wait",
                   "the federation connection manager is stopping", s.element);
    return;
  }
  trace("xmpp -> sip", [&] { return s.element->serialize(); });
  switch (s.kind) {
    case xcp::StanzaKind::Presence:
      return presenceFromXmpp(s);
    case xcp::StanzaKind::Message:
      return messageFromXmpp(s);
    case xcp::StanzaKind::Iq: {
      if (s.type != "get" && s.type != "set") {
        ++stats_.stanzasIgnored;
        return;
      }
      // Nothing on the Microsoft side answers XMPP queries (disco, vCard,
      // version): service-unavailable, RFC 6120 §8.3.3.19.
      xmpp::Element e("iq", std::string(xmpp::ns::kClient));
      e.setAttr("type", "error");
      e.setAttr("id", s.element->attrOr("id", ""));
      auto& err = e.addChild("error", std::string(xmpp::ns::kClient));
      err.setAttr("type", "cancel");
      err.addChild("service-unavailable", std::string(xmpp::ns::kStanzaErrors));
      err.addChild("text", std::string(xmpp::ns::kStanzaErrors))
          .addText("Microsoft users are reached through SIP federation: XMPP queries are not supported");
      ++stats_.xmppErrors;
      route(xcp::StanzaKind::Iq, s.to.bare(), s.from, std::move(e));
      return;
    }
  }
}

// ---------------- Impl: admin views ----------------

GatewayStats Gateway::Impl::stats() const {
  GatewayStats s = stats_;
  for (const auto& [c, n] : failuresByCode_) s.failuresByCode.emplace_back(c, n);
  for (const auto& [d, n] : failuresByDiag_) s.failuresByDiagnostic.emplace_back(d, n);
  for (const auto& [k, o] : out_) (o.state == OutSub::State::Active ? s.outgoingActive : s.outgoingPending)++;
  for (const auto& [k, i] : in_) (i.approved ? s.incomingActive : s.incomingPending)++;
  s.imDialogs = im_.size();
  return s;
}

std::vector<SubscriptionInfo> Gateway::Impl::subscriptionList(const std::string& user) const {
  std::vector<SubscriptionInfo> v;
  auto now = Clock::now();
  auto left = [&](Clock::time_point t) {
    return t == Clock::time_point{} ? 0 : std::chrono::duration_cast<std::chrono::seconds>(t - now).count();
  };
  for (const auto& [k, o] : out_) {
    if (!user.empty() && o.watcher != user && o.target != user) continue;
    v.push_back({"outgoing", o.watcher, sipUri(o.target), std::string(stateName(o.state)),
                 left(o.expiresAt), o.dlg.remoteTarget});
  }
  for (const auto& [k, i] : in_) {
    if (!user.empty() && i.owner != user && i.watcher != user) continue;
    v.push_back({"incoming", i.owner, sipUri(i.watcher), i.approved ? "active" : "offline-shown", left(i.expiresAt),
                 i.dlg.remoteTarget});
  }
  return v;
}

std::vector<ImSessionInfo> Gateway::Impl::sessionList() const {
  std::vector<ImSessionInfo> v;
  auto now = Clock::now();
  for (const auto& [k, s] : im_) {
    static constexpr std::string_view names[] = {"inviting", "up", "closing"};
    v.push_back({s.native, sipUri(s.remote), std::string(names[static_cast<int>(s.state)]), s.conversationId,
                 s.dlg.callId, s.initiatedHere,
                 std::chrono::duration_cast<std::chrono::seconds>(now - s.lastActivity).count(), s.out, s.in});
  }
  return v;
}

}  // namespace imp::fcm
