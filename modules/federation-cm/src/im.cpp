// Instant messaging across the federation (IM-1..IM-5): session mode (one
// INVITE dialog per native user / Microsoft user pair, MESSAGE and INFO in
// it), page mode (RFC 3428) accepted, group chat refused, and every failure
// told to the XMPP sender.
#include <imp/xmpp/ns.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <variant>

#include "gateway_impl.h"
#include "imp/federation_cm/im_content.h"
#include "imp/federation_cm/sdp.h"
#include "imp/federation_cm/typing.h"

namespace imp::fcm {

namespace {

constexpr std::string_view kMucUser = "http://jabber.org/protocol/muc#user";

bool containsToken(std::string_view list, std::string_view token) {
  std::string l(list), t(token);
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  return l.find(t) != std::string::npos;
}

// IM-4: a Lync multiparty conversation (MICROSOFT-SIP.md "Multiparty").
bool isMultiparty(const sip::Message& req) {
  for (const auto& h : req.headers()) {
    if (h.id == sip::HeaderId::Require && containsToken(h.value, "com.microsoft.rtc-multiparty")) return true;
    std::string n(h.name);
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
    if (n == "roster-manager" || n == "triggeredinvite") return true;
    // A two-party conversation lists both ends; more is a conference.
    if (n == "endpoints" && sip::splitList(h.value).size() > 2) return true;
  }
  return false;
}

std::string failureText(int code, std::string_view reason, const sip::Message* resp) {
  std::string t = code ? "the federated SIP side answered " + std::to_string(code) + " " + std::string(reason)
                       : std::string(reason);
  if (resp) {
    auto [id, why] = msDiagnostics(*resp);
    if (!id.empty()) t += " (ms-diagnostics " + id + (why.empty() ? "" : ": " + why) + ")";
  }
  return t;
}

}  // namespace

// ================= XMPP -> SIP =================

void Gateway::Impl::messageFromXmpp(const xcp::RoutedStanza& s) {
  const auto& el = *s.element;
  const std::string id(el.attrOr("id", ""));
  if (s.type == "error") {
    ++stats_.stanzasIgnored;  // never answered with an error (RFC 6120 §8.3.1)
    return;
  }
  bool mucInvite = false;
  if (auto x = el.child("x", kMucUser)) mucInvite = x->child("invite", kMucUser) != nullptr;
  if (s.type == "groupchat" || mucInvite) {
    ++stats_.refused;
    return messageError(s.from, s.to.bare(), id, "not-acceptable", "cancel",
                        "group chat with Microsoft Lync/OCS users is not supported (IM-4)", s.element);
  }
  const std::string native = s.from.bare(), remote = s.to.bare(), key = key2(native, remote);
  auto body = el.childText("body", xmpp::ns::kClient);
  if (isSimple(remote)) {
    // A standard SIMPLE peer: no dialog, one MESSAGE per stanza (RFC 3428).
    if (body) return sendPageMessage(s, *body, "text/plain;charset=UTF-8");
    for (const auto& n : el.nodes()) {
      if (!n.isElement() || n.element().ns() != xmpp::ns::kChatStates) continue;
      if (auto typing = typingFor(n.element().name()))
        return sendPageMessage(s, buildIsComposing(*typing), "application/im-iscomposing+xml");
      break;
    }
    ++stats_.stanzasIgnored;
    return;
  }
  if (body) {
    auto [it, created] = im_.try_emplace(key);
    ImSession& ses = it->second;
    if (created) {
      ses.native = native;
      ses.remote = remote;
      ses.initiatedHere = true;
    }
    ses.lastSender = s.from;
    PendingIm m;
    m.from = s.from;
    m.id = id;
    m.text = std::move(*body);
    m.original = s.element;
    return sendIm(ses, std::move(m));
  }
  // A chat state alone (XEP-0085) is typing: INFO in an existing dialog;
  // it never starts a conversation.
  for (const auto& n : el.nodes()) {
    if (!n.isElement() || n.element().ns() != xmpp::ns::kChatStates) continue;
    auto typing = typingFor(n.element().name());
    auto it = im_.find(key);
    if (typing && it != im_.end() && it->second.state == ImSession::State::Up)
      return sendTyping(it->second, *typing == Typing::Active);
    break;
  }
  ++stats_.stanzasIgnored;
}

bool Gateway::Impl::isSimple(const std::string& remote) const {
  auto it = peerTypes_.find(domainOf(remote));
  return it != peerTypes_.end() && it->second == PeerType::Simple;
}

void Gateway::Impl::sendPageMessage(const xcp::RoutedStanza& s, const std::string& body, std::string_view contentType) {
  const std::string native = s.from.bare(), remote = s.to.bare();
  const bool text = contentType.rfind("text/", 0) == 0;
  Dialog d;
  auto req = outOfDialog("MESSAGE", native, remote, d);
  req.setBody(body, contentType);
  if (text) ++stats_.messagesSent;
  trace(text ? "message -> page-mode MESSAGE" : "chat state -> isComposing MESSAGE", [&] { return native + " -> " + remote; });
  PendingIm m;
  m.from = s.from;
  m.id = std::string(s.element->attrOr("id", ""));
  m.original = s.element;
  sip::ClientCallbacks cb;
  cb.onFinal = [this, remote, m, text](const sip::Message& r) {
    const int code = r.statusCode();
    if (code >= 200 && code < 300) return;
    countFailure(code, &r);
    if (!text) return;  // a typing notification that did not arrive is not an error for the sender
    auto [condition, type] = xmppErrorFor(code);
    messageError(m.from, remote, m.id, condition, type, failureText(code, r.reason(), &r), m.original);
  };
  auto failed = [this, remote, m, text](const std::string& why) {
    countFailure(0, nullptr);
    if (!text) return;
    auto [condition, type] = xmppErrorFor(0);
    messageError(m.from, remote, m.id, condition, type, why, m.original);
  };
  cb.onTimeout = [failed] { failed("no answer from the SIP peer"); };
  cb.onTransportError = [failed](const sip::TransportError& e) { failed("the SIP proxy cannot be reached: " + e.detail); };
  sendRequest(std::move(req), std::move(cb));
}

void Gateway::Impl::sendIm(ImSession& ses, PendingIm m) {
  switch (ses.state) {
    case ImSession::State::Up:
      return sendMessage(ses, std::move(m));
    case ImSession::State::Inviting:
      if (ses.dlg.callId.empty()) {
        ses.inInvite = std::move(m);  // IM-2: the first text rides in the INVITE
        return invite(ses);
      }
      ses.queue.push_back(std::move(m));
      return;
    case ImSession::State::Closing:
      ses.queue.push_back(std::move(m));
      return;
  }
}

void Gateway::Impl::invite(ImSession& ses) {
  const auto key = key2(ses.native, ses.remote);
  auto m = outOfDialog("INVITE", ses.native, ses.remote, ses.dlg);
  byCallId_[ses.dlg.callId] = "m" + key;
  ses.conversationId = token(16);
  m.appendHeader("Ms-Conversation-ID", ses.conversationId);
  m.appendHeader("Supported", "ms-sender");
  m.appendHeader("Supported", "ms-text-format");
  if (ses.inInvite) m.appendHeader("ms-text-format", buildMsTextFormat(ses.inInvite->text));
  m.setBody(buildImOffer(bound_.address), "application/sdp");
  sip::ClientCallbacks cb;
  cb.onFinal = [this, key](const sip::Message& r) { onInviteFinal(key, r); };
  cb.onTimeout = [this, key] { onInviteFailed(key, 0, "no answer from the Microsoft side", nullptr); };
  cb.onTransportError = [this, key](const sip::TransportError& e) {
    onInviteFailed(key, 0, "the SIP proxy cannot be reached: " + e.detail, nullptr);
  };
  ++stats_.invitesSent;
  trace("message -> INVITE", [&] { return ses.native + " -> " + ses.remote + " Ms-Conversation-ID " + ses.conversationId; });
  ses.state = ImSession::State::Inviting;
  ses.inviteSentAt = Clock::now();
  ses.inviteTx = sendRequest(std::move(m), std::move(cb));
  // An INVITE that rings forever has failed for the sender (IM-5).
  ses.inviteTimer = loop_.schedule(cfg_.requestTimeout, [this, key] {
    auto it = im_.find(key);
    if (it == im_.end() || it->second.state != ImSession::State::Inviting) return;
    it->second.inviteTimer = 0;
    if (it->second.inviteTx && txl_) txl_->terminateClient(*it->second.inviteTx);
    onInviteFailed(key, 0, "no final answer from the Microsoft side within " +
                               std::to_string(cfg_.requestTimeout.count() / 1000) + " s",
                   nullptr);
  });
  touch(ses);
}

void Gateway::Impl::onInviteFinal(const std::string& key, const sip::Message& r) {
  auto it = im_.find(key);
  if (it == im_.end()) return;
  ImSession& ses = it->second;
  const int code = r.statusCode();
  if (code < 200 || code >= 300) return onInviteFailed(key, code, std::string(r.reason()), &r);
  ses.inviteTx.reset();
  loop_.cancel(ses.inviteTimer);
  ses.inviteTimer = 0;
  dialogFromResponse(ses.dlg, r);
  // ACK for the 2xx: its own transaction-less request with the INVITE's
  // CSeq number (RFC 3261 §13.2.2.4).
  --ses.dlg.localCseq;
  auto ack = inDialog("ACK", ses.dlg);
  if (transport_) transport_->send(ack, cfg_.proxy);
  peerAnswered(domainOf(ses.remote));
  ses.state = ImSession::State::Up;
  for (const auto& h : r.headers())
    if (h.id == sip::HeaderId::Supported && containsToken(h.value, "ms-text-format")) ses.textFormat = true;
  if (ses.inInvite) {
    auto first = std::move(*ses.inInvite);
    ses.inInvite.reset();
    if (ses.textFormat) {
      ++ses.out;
      ++stats_.messagesSent;
    } else {
      sendMessage(ses, std::move(first));  // not taken from the INVITE: sent again as MESSAGE
    }
  }
  while (!ses.queue.empty()) {
    auto m = std::move(ses.queue.front());
    ses.queue.pop_front();
    sendMessage(ses, std::move(m));
  }
  touch(ses);
}

void Gateway::Impl::onInviteFailed(const std::string& key, int code, const std::string& why, const sip::Message* r) {
  auto it = im_.find(key);
  if (it == im_.end()) return;
  ImSession& ses = it->second;
  ses.inviteTx.reset();
  countFailure(code, r);
  if (code == 0 || code == 408 || code == 503 || code == 504) peerFailed(domainOf(ses.remote), ses.inviteSentAt);
  failQueued(ses, code, failureText(code, why, r));
  loop_.cancel(ses.inviteTimer);
  loop_.cancel(ses.idleTimer);
  byCallId_.erase(ses.dlg.callId);
  im_.erase(it);
}

void Gateway::Impl::failQueued(ImSession& ses, int code, const std::string& why) {
  auto [condition, type] = xmppErrorFor(code);
  std::vector<PendingIm> all;
  if (ses.inInvite) all.push_back(std::move(*ses.inInvite));
  ses.inInvite.reset();
  for (auto& m : ses.queue) all.push_back(std::move(m));
  ses.queue.clear();
  for (const auto& m : all) messageError(m.from, ses.remote, m.id, condition, type, why, m.original);
}

void Gateway::Impl::sendMessage(ImSession& ses, PendingIm m) {
  const auto key = key2(ses.native, ses.remote);
  auto req = inDialog("MESSAGE", ses.dlg);
  req.setBody(m.text, "text/plain; charset=UTF-8");
  ++stats_.messagesSent;
  ++ses.out;
  trace("message -> MESSAGE", [&] { return ses.native + " -> " + ses.remote + ": " + m.text; });
  sip::ClientCallbacks cb;
  cb.onFinal = [this, key, m](const sip::Message& r) mutable {
    const int code = r.statusCode();
    if (code >= 200 && code < 300) return;
    countFailure(code, &r);
    if ((code == 408 || code == 480 || code == 481 || code == 503) && m.attempts == 0) {
      // The dialog is dead (MICROSOFT-SIP.md: 408/480/481; 503: the SIP proxy
      // cannot reach the dialog's peer any more): BYE, and this message opens
      // a new one, which the static routes may send to a backup (RT-3).
      return retryInNewDialog(key, std::move(m), code != 481 && code != 503,
                              "the Microsoft side answered " + std::to_string(code));
    }
    auto [condition, type] = xmppErrorFor(code);
    messageError(m.from, key.substr(key.find('\n') + 1), m.id, condition, type,
                 failureText(code, r.reason(), &r), m.original);
  };
  auto failed = [this, key, m, sent = Clock::now()](const std::string& why) mutable {
    countFailure(0, nullptr);
    if (m.attempts == 0) return retryInNewDialog(key, std::move(m), false, why);
    peerFailed(domainOf(key.substr(key.find('\n') + 1)), sent);
    auto [condition, type] = xmppErrorFor(0);
    messageError(m.from, key.substr(key.find('\n') + 1), m.id, condition, type, why, m.original);
  };
  cb.onTimeout = [failed]() mutable { failed("no answer from the Microsoft side"); };
  cb.onTransportError = [failed](const sip::TransportError& e) mutable {
    failed("the SIP proxy cannot be reached: " + e.detail);
  };
  sendRequest(std::move(req), std::move(cb));
  touch(ses);
}

void Gateway::Impl::retryInNewDialog(const std::string& key, PendingIm m, bool sendBye, const std::string& why) {
  endSession(key, sendBye, why);
  ++m.attempts;
  auto sep = key.find('\n');
  auto [it, created] = im_.try_emplace(key);
  if (created) {
    it->second.native = key.substr(0, sep);
    it->second.remote = key.substr(sep + 1);
    it->second.initiatedHere = true;
  }
  sendIm(it->second, std::move(m));
}

void Gateway::Impl::sendTyping(ImSession& ses, bool composing) {
  const auto key = key2(ses.native, ses.remote);
  auto req = inDialog("INFO", ses.dlg);
  req.setBody(buildKeyboardActivity(composing ? Typing::Active : Typing::Idle), "application/xml");
  ++stats_.infosSent;
  trace("chat state -> INFO", [&] { return ses.native + " -> " + ses.remote + (composing ? ": typing" : ": idle"); });
  sip::ClientCallbacks cb;
  cb.onFinal = [this, key](const sip::Message& r) {
    if (r.statusCode() == 481) endSession(key, false, "the Microsoft side forgot the conversation");
  };
  sendRequest(std::move(req), std::move(cb));
}

// ================= SIP -> XMPP =================

// What a text MESSAGE may carry (im_content.h): UTF-8 text only.
constexpr std::string_view kTextAccept = "text/plain;charset=UTF-8, text/html;charset=UTF-8, multipart/alternative";

void Gateway::Impl::onInvite(sip::TxId tx, const sip::Message& req) {
  ++stats_.invitesReceived;
  const std::string remote = jidOfUri(req.from() ? req.from()->raw : std::string_view{});
  const std::string native = jidOfUri(req.requestUri());
  if (remote.empty() || native.empty())
    return refuse(tx, req, 400, "Bad Request - user@domain expected in the Request-URI and From",
                  "no user@domain in the Request-URI or From");
  if (isMultiparty(req))
    return refuse(tx, req, 488, "Not Acceptable Here", "a multiparty conversation (IM-4)",
                  {{"Warning", "399 " + bound_.address +
                                   " \"Group chat and multiparty conversations with XMPP users are not supported\""}});
  auto ct = std::string(req.header(sip::HeaderId::ContentType).value_or(""));
  if (!containsToken(ct, "application/sdp") || !offersMessageMedia(req.body()))
    return refuse(tx, req, 488, "Not Acceptable Here - no message media line", "no message media line in its SDP",
                  {{"Warning", "304 " + bound_.address + " \"only instant messaging sessions are supported\""}});
  const auto key = key2(native, remote);
  std::deque<PendingIm> queued;
  if (auto old = im_.find(key); old != im_.end()) {
    // The Microsoft user opened a new conversation: it replaces ours (its
    // messages still waiting are sent in the new dialog).
    queued = std::move(old->second.queue);
    if (old->second.inInvite) queued.push_front(std::move(*old->second.inInvite));
    old->second.queue.clear();
    old->second.inInvite.reset();
    if (old->second.inviteTx && txl_) txl_->terminateClient(*old->second.inviteTx);
    endSession(key, old->second.state == ImSession::State::Up, "replaced by the Microsoft user's new conversation");
  }
  ImSession& ses = im_[key];
  ses.queue = std::move(queued);
  ses.native = native;
  ses.remote = remote;
  ses.initiatedHere = false;
  ses.state = ImSession::State::Up;
  ses.conversationId = std::string(req.header("Ms-Conversation-ID").value_or(""));
  dialogFromRequest(ses.dlg, req, token(6));
  byCallId_[ses.dlg.callId] = "m" + key;
  std::vector<std::pair<std::string, std::string>> headers;
  if (auto tf = req.header("ms-text-format")) {
    if (auto first = parseMsTextFormat(*tf)) {
      auto decoded = decodeBody(first->first, first->second);
      if (auto text = std::get_if<ImText>(&decoded)) {
        deliverText(remote, native, text->text);
        ++ses.in;
        headers.emplace_back("Supported", "ms-text-format");  // delivered: not sent again
      }
    }
  }
  respond(tx, req, 200, "OK", headers, buildImAnswer(req.body(), bound_.address), "application/sdp", ses.dlg.localTag);
  trace("INVITE -> conversation", [&] { return remote + " -> " + native + " Ms-Conversation-ID " + ses.conversationId; });
  queued = std::move(ses.queue);
  ses.queue.clear();
  for (auto& m : queued) sendMessage(ses, std::move(m));
  touch(ses);
}

void Gateway::Impl::onImRequest(sip::TxId tx, const sip::Message& req, ImSession& ses) {
  const auto key = key2(ses.native, ses.remote);
  const auto method = req.method();
  if (auto cs = req.cseq()) ses.dlg.remoteCseq = cs->seq;
  if (method == "BYE") {
    ++stats_.byesReceived;
    respond(tx, req, 200, "OK");
    return endSession(key, false, "the Microsoft user ended the conversation");
  }
  if (method == "INVITE") {  // a session refresh
    respond(tx, req, 200, "OK", {}, buildImAnswer(req.body(), bound_.address), "application/sdp", ses.dlg.localTag);
    return touch(ses);
  }
  const auto ct = std::string(req.header(sip::HeaderId::ContentType).value_or(""));
  if (method == "INFO") {
    ++stats_.infosReceived;
    std::optional<Typing> t;
    if (containsToken(ct, "im-iscomposing+xml")) t = parseIsComposing(req.body());
    else if (containsToken(ct, "application/xml")) t = parseKeyboardActivity(req.body());
    else
      return refuse(tx, req, 415, "Unsupported Media Type", "body type '" + ct + "' is no typing indication",
                    {{"Accept", "application/xml, application/im-iscomposing+xml"}});
    if (!t) return refuse(tx, req, 400, "Bad Request - typing indication not understood", "typing indication not understood");
    respond(tx, req, 200, "OK");
    deliverTyping(ses.remote, ses.native, *t == Typing::Active);
    return touch(ses);
  }
  // MESSAGE
  ++stats_.messagesReceived;
  if (containsToken(ct, "im-iscomposing+xml")) {
    auto t = parseIsComposing(req.body());
    if (!t) return refuse(tx, req, 400, "Bad Request - isComposing not understood", "isComposing not understood");
    respond(tx, req, 200, "OK");
    deliverTyping(ses.remote, ses.native, *t == Typing::Active);
    return touch(ses);
  }
  auto decoded = decodeBody(ct, req.body());
  if (auto bad = std::get_if<Unsupported>(&decoded))
    return refuse(tx, req, 415, "Unsupported Media Type", bad->why, {{"Accept", std::string(kTextAccept)}});
  // IM-5: the router takes it (a session, or offline storage) before the 200.
  deliverText(ses.remote, ses.native, std::get<ImText>(decoded).text);
  ++ses.in;
  respond(tx, req, 200, "OK");
  touch(ses);
}

void Gateway::Impl::onPageMessage(sip::TxId tx, const sip::Message& req) {
  ++stats_.messagesReceived;
  const std::string remote = jidOfUri(req.from() ? req.from()->raw : std::string_view{});
  const std::string native = jidOfUri(req.requestUri());
  if (remote.empty() || native.empty())
    return refuse(tx, req, 400, "Bad Request - user@domain expected in the Request-URI and From",
                  "no user@domain in the Request-URI or From");
  const auto ct = std::string(req.header(sip::HeaderId::ContentType).value_or(""));
  if (containsToken(ct, "im-iscomposing+xml")) {  // RFC 3994 in page mode
    auto t = parseIsComposing(req.body());
    if (!t) return refuse(tx, req, 400, "Bad Request - isComposing not understood", "isComposing not understood");
    respond(tx, req, 200, "OK");
    return deliverTyping(remote, native, *t == Typing::Active);
  }
  auto decoded = decodeBody(ct, req.body());
  if (auto bad = std::get_if<Unsupported>(&decoded))
    return refuse(tx, req, 415, "Unsupported Media Type", bad->why, {{"Accept", std::string(kTextAccept)}});
  deliverText(remote, native, std::get<ImText>(decoded).text);
  respond(tx, req, 200, "OK");
}

void Gateway::Impl::deliverText(const std::string& remote, const std::string& native, const std::string& text) {
  auto to = xcp::Address::split(native);
  if (!to) return;
  xmpp::Element m("message", std::string(xmpp::ns::kClient));
  m.setAttr("type", "chat");
  m.setAttr("id", stanzaIds_ + std::to_string(++stanzaCount_));
  m.addChild("body", std::string(xmpp::ns::kClient)).addText(text);
  m.addChild("active", std::string(xmpp::ns::kChatStates));
  route(xcp::StanzaKind::Message, remote, *to, std::move(m));
}

void Gateway::Impl::deliverTyping(const std::string& remote, const std::string& native, bool composing) {
  auto to = xcp::Address::split(native);
  if (!to) return;
  xmpp::Element m("message", std::string(xmpp::ns::kClient));
  m.setAttr("type", "chat");
  m.addChild(std::string(chatStateFor(composing ? Typing::Active : Typing::Idle)), std::string(xmpp::ns::kChatStates));
  m.addChild("no-store", std::string(xmpp::ns::kHints));  // XEP-0334: typing is not kept offline
  route(xcp::StanzaKind::Message, remote, *to, std::move(m));
}

void Gateway::Impl::touch(ImSession& ses) {
  ses.lastActivity = Clock::now();
  // One timer per conversation, not one per message: when it fires early
  // (there was activity since) it waits for the rest of the idle time.
  if (!ses.idleTimer) armIdleTimer(ses, cfg_.imIdleTimeout);
}

void Gateway::Impl::armIdleTimer(ImSession& ses, Clock::duration after) {
  const auto key = key2(ses.native, ses.remote);
  ses.idleTimer = loop_.schedule(std::chrono::duration_cast<std::chrono::milliseconds>(after), [this, key] {
    auto it = im_.find(key);
    if (it == im_.end()) return;
    ImSession& s = it->second;
    s.idleTimer = 0;
    const auto idle = Clock::now() - s.lastActivity;
    if (idle < cfg_.imIdleTimeout) return armIdleTimer(s, cfg_.imIdleTimeout - idle);
    // An INVITE still waiting for its answer is bounded by requestTimeout
    // (its messages fail then, IM-5), not by the idle timeout.
    if (s.state == ImSession::State::Inviting) return touch(s);
    endSession(key, true, "idle for " + std::to_string(cfg_.imIdleTimeout.count() / 1000) + " s");
  });
}

void Gateway::Impl::endSession(const std::string& key, bool sendBye, std::string_view why) {
  auto it = im_.find(key);
  if (it == im_.end()) return;
  ImSession& ses = it->second;
  loop_.cancel(ses.idleTimer);
  loop_.cancel(ses.inviteTimer);
  if (sendBye && ses.state == ImSession::State::Up && ses.dlg.established()) {
    auto bye = inDialog("BYE", ses.dlg);
    ++stats_.byesSent;
    sendRequest(std::move(bye), {});
  }
  failQueued(ses, 0, "the conversation ended before the message was sent: " + std::string(why));
  if (cfg_.log) cfg_.log->info("conversation {} <-> {} ended: {}", ses.native, ses.remote, why);
  byCallId_.erase(ses.dlg.callId);
  im_.erase(it);
}

}  // namespace imp::fcm
