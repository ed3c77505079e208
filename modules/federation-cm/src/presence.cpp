// Availability across the federation (AV-1..AV-5): outgoing subscriptions
// of native watchers, incoming subscriptions of Microsoft watchers, their
// persistence and recovery (AV-3), and the health of the Microsoft side.
#include <imp/sip/uri.h>
#include <imp/xmpp/ns.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "gateway_impl.h"
#include "imp/federation_cm/media_type.h"
#include "imp/federation_cm/availability.h"
#include "imp/federation_cm/pidf.h"

namespace imp::fcm {

namespace {

xmpp::Element presence(std::string_view type) {
  xmpp::Element p("presence", std::string(xmpp::ns::kClient));
  if (!type.empty()) p.setAttr("type", type);
  return p;
}

std::int64_t unixAt(Clock::time_point t) {
  auto left = std::chrono::duration_cast<std::chrono::seconds>(t - Clock::now()).count();
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() +
         left;
}

Clock::time_point steadyAt(std::int64_t unixSeconds) {
  auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return Clock::now() + std::chrono::seconds(unixSeconds - now);
}

// "active;expires=600" -> ("active", reason "", expires 600)
struct SubState {
  std::string value, reason;
  std::optional<std::uint32_t> expires;
};
SubState parseSubState(std::string_view v) {
  SubState s;
  auto semi = v.find(';');
  auto head = v.substr(0, semi);
  while (!head.empty() && head.back() == ' ') head.remove_suffix(1);
  s.value = std::string(head);
  std::transform(s.value.begin(), s.value.end(), s.value.begin(), [](unsigned char c) { return std::tolower(c); });
  if (semi != std::string_view::npos) {
    auto params = v.substr(semi);
    if (auto r = sip::findParam(params, "reason")) s.reason = std::string(*r);
    if (auto e = sip::findParam(params, "expires")) {
      std::uint32_t n = 0;
      bool ok = !e->empty();
      for (char c : *e) {
        if (c < '0' || c > '9' || n > 100000000) ok = false;
        else n = n * 10 + static_cast<std::uint32_t>(c - '0');
      }
      if (ok) s.expires = n;
    }
  }
  return s;
}

// What the user is doing, as the AV-5 table's token, from an XEP-0108
// user-activity child of the presence (<activity><talking><on_the_phone/>
// </talking></activity>): "on-the-phone", "in-a-meeting", "out-of-office".
std::string activityOf(const xmpp::Element& presence) {
  static constexpr std::string_view kActivity = "http://jabber.org/protocol/activity";
  auto a = presence.child("activity", kActivity);
  if (!a) return {};
  for (const auto* general : a->children({}, kActivity))
    for (const auto* specific : general->children({}, kActivity)) {
      const auto& n = specific->name();
      if (n == "on_the_phone") return "on-the-phone";
      if (n == "in_a_meeting") return "in-a-meeting";
      if (n == "on_vacation" || n == "out_of_office") return "out-of-office";
    }
  if (a->child("talking", kActivity)) return "on-the-phone";
  return {};
}

int showRank(const ResourcePresence& p) {
  if (!p.available) return 0;
  if (p.show.empty() || p.show == "chat") return 5;
  if (p.show == "away") return 3;
  if (p.show == "xa") return 2;
  return 4;  // dnd: present, busy
}

}  // namespace

// ================= XMPP presence in =================

void Gateway::Impl::presenceFromXmpp(const xcp::RoutedStanza& s) {
  const std::string local = s.from.bare(), remote = s.to.bare();
  const std::string& type = s.type;
  if (type == "subscribe") return outSubscribe(local, remote, true);
  if (type == "unsubscribe") return outUnsubscribe(local, remote);
  if (type == "probe") {
    // Only the session manager's probes (from the user's bare JID, for a
    // contact the roster subscribes to) make SUBSCRIBEs; a client's own
    // probe, like the temporary presence of a directory search, never does.
    if (!s.from.resource.empty()) {
      ++stats_.stanzasIgnored;
      return;
    }
    return outProbe(local, remote);
  }
  if (type == "subscribed") return inApproved(local, remote, true);
  if (type == "unsubscribed") return inApproved(local, remote, false);
  if (type.empty() || type == "unavailable") return inPresence(s);
  ++stats_.stanzasIgnored;  // presence errors are not answered (RFC 6120 §8.3.1)
}

// ================= AV-2: native watcher -> Microsoft user =================

void Gateway::Impl::outSubscribe(const std::string& watcher, const std::string& target, bool) {
  const auto key = key2(watcher, target);
  auto [it, created] = out_.try_emplace(key);
  OutSub& sub = it->second;
  if (created) {
    sub.watcher = watcher;
    sub.target = target;
  }
  sub.unsubscribing = false;
  if (sub.known && sub.toldSubscribed) tellWatcher(sub);  // a repeated request: answered at once
  if (sub.tx) return;                                     // a SUBSCRIBE is on its way
  sendSubscribe(sub, cfg_.subscribeExpires);
  if (!peers_.count(domainOf(target))) scheduleKeepAlive(domainOf(target), cfg_.keepAliveInterval);
}

void Gateway::Impl::outUnsubscribe(const std::string& watcher, const std::string& target) {
  const auto key = key2(watcher, target);
  auto it = out_.find(key);
  // RFC 6121 §3.3.3: the contact's unavailable presence reaches the user.
  route(xcp::StanzaKind::Presence, target, *xcp::Address::split(watcher), presence("unavailable"));
  if (it == out_.end()) return;
  OutSub& sub = it->second;
  loop_.cancel(sub.refreshTimer);
  if (!sub.dlg.established() && !sub.tx) return dropOutSub(key, false, "unsubscribed before it was answered");
  sub.unsubscribing = true;
  if (!sub.tx) sendSubscribe(sub, 0);  // else: sent when the pending answer comes
}

void Gateway::Impl::outProbe(const std::string& watcher, const std::string& target) {
  const auto key = key2(watcher, target);
  auto it = out_.find(key);
  if (it == out_.end()) {
    // A contact the roster subscribes to without a subscription here:
    // contacts imported in bulk (MG-7), by the hundred thousand. Made
    // paced like a recovery (AV-3), so the Microsoft side is not flooded.
    OutSub& sub = out_[key];
    sub.watcher = watcher;
    sub.target = target;
    if (!peers_.count(domainOf(target))) scheduleKeepAlive(domainOf(target), cfg_.keepAliveInterval);
    return paced([this, key] {
      auto o = out_.find(key);
      if (o != out_.end() && !o->second.tx && !o->second.unsubscribing) sendSubscribe(o->second, cfg_.subscribeExpires);
    });
  }
  OutSub& sub = it->second;
  if (sub.known) tellWatcher(sub);
  else if (!sub.tx && sub.state != OutSub::State::Down)
    sendSubscribe(sub, cfg_.subscribeExpires);
}

void Gateway::Impl::sendSubscribe(OutSub& sub, std::uint32_t expires) {
  const auto key = key2(sub.watcher, sub.target);
  const bool fresh = !sub.dlg.established();
  if (fresh) {
    if (!sub.dlg.callId.empty()) byCallId_.erase(sub.dlg.callId);
  }
  auto m = fresh ? outOfDialog("SUBSCRIBE", sub.watcher, sub.target, sub.dlg) : inDialog("SUBSCRIBE", sub.dlg);
  if (fresh) byCallId_[sub.dlg.callId] = "o" + key;
  m.appendHeader("Event", "presence");
  // Only PIDF: Lync then answers with plain PIDF (MICROSOFT-SIP.md).
  m.appendHeader("Accept", "application/pidf+xml");
  m.appendHeader("Expires", std::to_string(expires));
  sip::ClientCallbacks cb;
  // Exactly one of the three ends each transaction: the window of requests
  // in flight (runPaced) counts them.
  const auto sent = Clock::now();
  cb.onFinal = [this, key, sent](const sip::Message& r) {
    --inFlight_;
    onSubscribeFinal(key, r, sent);
  };
  cb.onTimeout = [this, key, sent] {
    --inFlight_;
    onSubscribeFailed(key, 0, "no answer (timer F)", false, sent);
  };
  cb.onTransportError = [this, key, sent](const sip::TransportError& e) {
    --inFlight_;
    // The node's own SIP proxy did not take it (its connection, its send
    // queue): a local matter, not the Microsoft side being down.
    onSubscribeFailed(key, 0, "not handed to the SIP proxy: " + e.detail, true, sent);
  };
  ++stats_.subscribesSent;
  trace("SUBSCRIBE", [&] { return sub.watcher + " -> " + sub.target + " Expires " + std::to_string(expires); });
  if (txl_) ++inFlight_;
  sub.tx = sendRequest(std::move(m), std::move(cb));
}

void Gateway::Impl::onSubscribeFinal(const std::string& key, const sip::Message& r, Clock::time_point sent) {
  auto it = out_.find(key);
  if (it == out_.end()) return;
  OutSub& sub = it->second;
  sub.tx.reset();
  const int code = r.statusCode();
  const std::string domain = domainOf(sub.target);
  if (code >= 200 && code < 300) {
    peerAnswered(domain);
    if (sub.unsubscribing) return dropOutSub(key, false, "unsubscribed");
    sub.confirmedAt = Clock::now();
    if (!sub.dlg.established()) {
      dialogFromResponse(sub.dlg, r);
    } else if (sub.dlg.routeSet.empty() && !r.recordRoutes().empty()) {
      // The first NOTIFY made the dialog (RFC 6665 §4.1.2.4) without a
      // Record-Route of its own; the 200 carries the path (Lync's signed
      // entry among it), which later requests must follow.
      auto remoteTag = sub.dlg.remoteTag;
      auto target = sub.dlg.remoteTarget;
      dialogFromResponse(sub.dlg, r);
      sub.dlg.remoteTag = remoteTag;
      if (!target.empty()) sub.dlg.remoteTarget = target;
    }
    if (sub.state == OutSub::State::Subscribing || sub.state == OutSub::State::Down) sub.state = OutSub::State::Pending;
    sub.failures = 0;
    scheduleRefresh(sub, r.expires().value_or(cfg_.subscribeExpires));
    saveOut(sub);
    return;
  }
  if (code == 423) {
    std::uint32_t min = cfg_.subscribeExpires;
    if (auto h = r.header(sip::HeaderId::MinExpires)) min = static_cast<std::uint32_t>(std::strtoul(std::string(*h).c_str(), nullptr, 10));
    if (min > 0 && min <= 86400 && ++sub.failures < 4) return sendSubscribe(sub, min);
  }
  if (code == 481 && sub.dlg.established() && !sub.unsubscribing) {
    // The Microsoft side forgot the dialog (it restarted): a new one.
    byCallId_.erase(sub.dlg.callId);
    sub.dlg = Dialog{};
    return sendSubscribe(sub, cfg_.subscribeExpires);
  }
  countFailure(code, &r);
  if (code == 408 || code == 480 || code == 500 || code == 503 || code == 504)
    return onSubscribeFailed(key, code, std::to_string(code) + " " + std::string(r.reason()), false, sent);
  if (sub.unsubscribing) return dropOutSub(key, false, "unsubscribed");
  auto [id, reason] = msDiagnostics(r);
  dropOutSub(key, true,
             std::to_string(code) + " " + std::string(r.reason()) + (id.empty() ? "" : " (ms-diagnostics " + id + ": " + reason + ")"));
}

void Gateway::Impl::onSubscribeFailed(const std::string& key, int code, const std::string& why, bool local,
                                      Clock::time_point sent) {
  auto it = out_.find(key);
  if (it == out_.end()) return;
  OutSub& sub = it->second;
  sub.tx.reset();
  if (code == 0) countFailure(0, nullptr);
  if (sub.unsubscribing) return dropOutSub(key, false, "unsubscribed while the Microsoft side did not answer");
  ++sub.failures;
  // Something the Microsoft side answered after this SUBSCRIBE left says it
  // is up: tried again like a local failure, not left for its return.
  if (local || answeredSince(domainOf(sub.target), sent)) {
    // Tried again here, in a few seconds; the Microsoft side's health is
    // not in question.
    if (cfg_.log) cfg_.log->warn("SUBSCRIBE {} -> {} failed: {}; tried again in 2 s", sub.watcher, sub.target, why);
    loop_.cancel(sub.refreshTimer);
    sub.refreshTimer = loop_.schedule(std::chrono::seconds(2), [this, key] {
      auto o = out_.find(key);
      if (o == out_.end()) return;
      o->second.refreshTimer = 0;
      if (!o->second.tx && !o->second.unsubscribing) paced([this, key] {
          auto x = out_.find(key);
          if (x != out_.end() && !x->second.tx) sendSubscribe(x->second, cfg_.subscribeExpires);
        });
    });
    return;
  }
  if (cfg_.log) cfg_.log->warn("SUBSCRIBE {} -> {} failed: {}; retried when the Microsoft side answers", sub.watcher, sub.target, why);
  sub.state = OutSub::State::Down;
  peerFailed(domainOf(sub.target), sent);
  saveOut(sub);
}

void Gateway::Impl::scheduleRefresh(OutSub& sub, std::uint32_t expires) {
  loop_.cancel(sub.refreshTimer);
  sub.expiresAt = Clock::now() + std::chrono::seconds(expires);
  std::uint32_t at = expires - std::min<std::uint32_t>(expires / 10, 600);
  if (at < 5) at = std::max<std::uint32_t>(1, expires / 2);
  const auto key = key2(sub.watcher, sub.target);
  sub.refreshTimer = loop_.schedule(std::chrono::seconds(at), [this, key] {
    auto it = out_.find(key);
    if (it == out_.end()) return;
    it->second.refreshTimer = 0;
    if (!it->second.tx) sendSubscribe(it->second, cfg_.subscribeExpires);
  });
}

void Gateway::Impl::onNotify(sip::TxId tx, const sip::Message& req, OutSub& sub) {
  ++stats_.notifiesReceived;
  const auto key = key2(sub.watcher, sub.target);
  if (!sub.dlg.established()) {
    // The NOTIFY came first: it makes the dialog (RFC 6665 §4.1.2.4).
    if (auto f = req.from()) sub.dlg.remoteTag = std::string(f->tag());
    sub.dlg.routeSet.clear();
    for (const auto& rr : req.recordRoutes()) sub.dlg.routeSet.emplace_back(rr.raw);
    auto c = req.contacts();
    if (!c.empty()) sub.dlg.remoteTarget = std::string(c.front().uri);
  }
  if (auto cs = req.cseq()) sub.dlg.remoteCseq = cs->seq;
  auto st = parseSubState(req.header(sip::HeaderId::SubscriptionState).value_or("active"));
  respond(tx, req, 200, "OK");
  sub.confirmedAt = Clock::now();
  peerAnswered(domainOf(sub.target));
  if (!req.body().empty()) {
    std::string why;
    auto ct = std::string(req.header(sip::HeaderId::ContentType).value_or(""));
    if (ct.find("pidf+xml") == std::string::npos) {
      if (cfg_.log) cfg_.log->warn("NOTIFY from {} with unexpected body type '{}' ignored", sub.target, ct);
    } else if (auto mp = parsePidf(req.body(), &why)) {
      auto state = classify(*mp);
      auto x = toXmpp(state);  // AV-4
      sub.known = true;
      sub.available = x.available;
      sub.show = std::string(x.show);
      sub.status = mp->note;
      trace("NOTIFY -> presence", [&] { return sub.target + " is " + std::string(displayName(state)) + " -> " +
                                      (x.available ? (x.show.empty() ? "available" : std::string(x.show)) : "unavailable"); });
    } else if (cfg_.log) {
      cfg_.log->warn("NOTIFY from {}: PIDF not understood ({}); state unchanged", sub.target, why);
    }
  }
  if (st.value == "active") {
    sub.state = OutSub::State::Active;
    sub.failures = 0;
    tellWatcher(sub);
    if (st.expires && *st.expires > 0) scheduleRefresh(sub, *st.expires);
  } else if (st.value == "pending") {
    sub.state = OutSub::State::Pending;  // the Microsoft user is asked (AV-2): wait
  } else if (st.value == "terminated") {
    loop_.cancel(sub.refreshTimer);
    if (sub.unsubscribing) return dropOutSub(key, false, "unsubscribed");
    if ((st.reason.empty() || st.reason == "timeout" || st.reason == "deactivated" || st.reason == "probation") &&
        sub.failures < 3) {
      // RFC 6665 §4.1.3: subscribe again at once (timeout), not unsubscribe.
      ++sub.failures;
      byCallId_.erase(sub.dlg.callId);
      sub.dlg = Dialog{};
      sub.state = OutSub::State::Subscribing;
      if (!sub.tx) sendSubscribe(sub, cfg_.subscribeExpires);
      return;
    }
    return dropOutSub(key, true, "terminated by the Microsoft side (" + (st.reason.empty() ? std::string("no reason") : st.reason) + ")");
  }
  saveOut(sub);
}

void Gateway::Impl::tellWatcher(OutSub& sub) {
  auto to = xcp::Address::split(sub.watcher);
  if (!to) return;
  if (!sub.toldSubscribed) {
    sub.toldSubscribed = true;
    route(xcp::StanzaKind::Presence, sub.target, *to, presence("subscribed"));
  }
  if (!sub.known) return;
  auto p = presence(sub.available ? "" : "unavailable");
  if (sub.available && !sub.show.empty()) p.addChild("show", std::string(xmpp::ns::kClient)).addText(sub.show);
  if (!sub.status.empty()) p.addChild("status", std::string(xmpp::ns::kClient)).addText(sub.status);
  route(xcp::StanzaKind::Presence, sub.target, *to, std::move(p));
}

void Gateway::Impl::dropOutSub(const std::string& key, bool tellUnsubscribed, const std::string& why) {
  auto it = out_.find(key);
  if (it == out_.end()) return;
  OutSub& sub = it->second;
  loop_.cancel(sub.refreshTimer);
  byCallId_.erase(sub.dlg.callId);
  if (store_) store_->remove(true, sub.watcher, sipUri(sub.target));
  if (cfg_.log) cfg_.log->info("subscription of {} to {} ended: {}", sub.watcher, sub.target, why);
  if (tellUnsubscribed) {
    if (auto to = xcp::Address::split(sub.watcher)) {
      auto u = presence("unsubscribed");
      u.addChild("status", std::string(xmpp::ns::kClient)).addText(why);
      route(xcp::StanzaKind::Presence, sub.target, *to, std::move(u));
      route(xcp::StanzaKind::Presence, sub.target, *to, presence("unavailable"));
    }
  }
  out_.erase(it);
}

namespace {

// A subscription's row (subscription_store.h): its dialog and the rest.
StoredSubscription stored(bool outgoing, const std::string& native, const std::string& remote, std::string state,
                          const Dialog& d, Clock::time_point expiresAt) {
  StoredSubscription s;
  s.outgoing = outgoing;
  s.nativeJid = native;
  s.remoteUri = sipUri(remote);
  s.state = std::move(state);
  s.callId = d.callId;
  s.localTag = d.localTag;
  s.remoteTag = d.remoteTag;
  s.remoteTarget = d.remoteTarget;
  s.routeSet = d.routeSet;
  s.localCseq = d.localCseq;
  s.remoteCseq = d.remoteCseq;
  s.expiresAt = expiresAt == Clock::time_point{} ? 0 : unixAt(expiresAt);
  return s;
}

// The dialog of a stored row, as the side that keeps it (the native user's).
Dialog dialogOf(const StoredSubscription& r) {
  Dialog d;
  d.callId = r.callId;
  d.localTag = r.localTag;
  d.remoteTag = r.remoteTag;
  d.remoteTarget = r.remoteTarget;
  d.routeSet = r.routeSet;
  d.localCseq = r.localCseq;
  d.remoteCseq = r.remoteCseq;
  d.localUri = sipUri(r.nativeJid);
  d.remoteUri = r.remoteUri;
  return d;
}

}  // namespace

void Gateway::Impl::saveOut(const OutSub& sub) {
  if (store_) store_->save(stored(true, sub.watcher, sub.target, std::string(stateName(sub.state)), sub.dlg, sub.expiresAt));
}

// ================= AV-1: Microsoft watcher -> native user =================

void Gateway::Impl::onSubscribeRequest(sip::TxId tx, const sip::Message& req) {
  ++stats_.subscribesReceived;
  // RFC 6665 §8.2.1: the event package is the token before any parameter;
  // "presence.winfo" or "presencex" is another package.
  auto eventValue = req.header(sip::HeaderId::Event).value_or("");
  auto event = std::string(eventValue.substr(0, eventValue.find(';')));
  while (!event.empty() && (event.back() == ' ' || event.back() == '\t')) event.pop_back();
  std::transform(event.begin(), event.end(), event.begin(), [](unsigned char c) { return std::tolower(c); });
  if (event != "presence")
    return refuse(tx, req, 489, "Bad Event", "Event '" + std::string(eventValue) + "' is not presence",
                  {{"Allow-Events", "presence"}});
  std::vector<std::string_view> accept;
  for (const auto& h : req.headers())
    if (h.id == sip::HeaderId::Accept) accept.push_back(h.value);
  if (!acceptsMediaType(accept, "application/pidf+xml"))
    return refuse(tx, req, 406, "Not Acceptable", "its Accept does not take application/pidf+xml",
                  {{"Accept", "application/pidf+xml"}});
  const std::string owner = jidOfUri(req.requestUri());
  const std::string watcher = jidOfUri(req.from() ? req.from()->raw : std::string_view{});
  if (owner.empty() || watcher.empty())
    return refuse(tx, req, 400, "Bad Request - user@domain expected in the Request-URI and From",
                  "no user@domain in the Request-URI or From");
  std::uint32_t expires = req.expires().value_or(3600);
  if (expires != 0 && expires < cfg_.minExpires)
    return refuse(tx, req, 423, "Interval Too Brief", "Expires " + std::to_string(expires) + " below the minimum",
                  {{"Min-Expires", std::to_string(cfg_.minExpires)}});
  expires = std::min(expires, cfg_.maxExpires);
  const auto key = key2(owner, watcher);
  bool wasApproved = false;
  std::map<std::string, ResourcePresence> known;
  if (auto old = in_.find(key); old != in_.end()) {
    // The watcher subscribes again in a new dialog (after its restart): the
    // old one is replaced.
    wasApproved = old->second.approved;
    known = old->second.resources;
    byCallId_.erase(old->second.dlg.callId);
    in_.erase(old);
  }
  InSub sub;
  sub.owner = owner;
  sub.watcher = watcher;
  sub.approved = wasApproved;
  sub.resources = std::move(known);
  dialogFromRequest(sub.dlg, req, token(6));
  respond(tx, req, 200, "OK", {{"Expires", std::to_string(expires)}}, {}, {}, sub.dlg.localTag);
  auto w = xcp::Address::split(owner);
  if (expires == 0) {
    // A one-shot fetch: the state now, then terminated (RFC 6665 §4.4.3).
    auto [it, _] = in_.emplace(key, std::move(sub));
    byCallId_[it->second.dlg.callId] = "i" + key;
    endInSub(key, true, "timeout");
    return;
  }
  sub.expiresAt = Clock::now() + std::chrono::seconds(expires);
  auto [it, _] = in_.emplace(key, std::move(sub));
  InSub& s = it->second;
  byCallId_[s.dlg.callId] = "i" + key;
  // The OPTIONS keep-alive covers domains that only watch (AV-3).
  if (!peers_.count(domainOf(watcher))) scheduleKeepAlive(domainOf(watcher), cfg_.keepAliveInterval);
  // RFC 6665 §4.2.1: a NOTIFY at once. Until the privacy policy approves,
  // the user is Offline to the watcher (AV-1 polite blocking).
  notifyWatcher(s);
  saveIn(s);
  // The session manager applies the privacy policy (AV-1, PS-2): the
  // request goes in as an XMPP subscription from the Microsoft user.
  if (w) route(xcp::StanzaKind::Presence, watcher, *w, presence("subscribe"));
}

void Gateway::Impl::inRefresh(sip::TxId tx, const sip::Message& req, InSub& sub) {
  ++stats_.subscribesReceived;
  const auto key = key2(sub.owner, sub.watcher);
  std::uint32_t expires = req.expires().value_or(3600);
  if (auto cs = req.cseq()) sub.dlg.remoteCseq = cs->seq;
  if (expires == 0) {
    respond(tx, req, 200, "OK", {{"Expires", "0"}});
    // The Microsoft user removed the contact: the roster follows (RFC 6121 §3.3).
    if (auto w = xcp::Address::split(sub.owner)) route(xcp::StanzaKind::Presence, sub.watcher, *w, presence("unsubscribe"));
    return endInSub(key, true, "");
  }
  if (expires < cfg_.minExpires)
    return refuse(tx, req, 423, "Interval Too Brief", "Expires " + std::to_string(expires) + " below the minimum",
                  {{"Min-Expires", std::to_string(cfg_.minExpires)}});
  expires = std::min(expires, cfg_.maxExpires);
  respond(tx, req, 200, "OK", {{"Expires", std::to_string(expires)}});
  sub.expiresAt = Clock::now() + std::chrono::seconds(expires);
  notifyWatcher(sub);
  saveIn(sub);
}

void Gateway::Impl::inApproved(const std::string& owner, const std::string& watcher, bool approved) {
  auto it = in_.find(key2(owner, watcher));
  if (it == in_.end()) {
    ++stats_.stanzasIgnored;
    return;
  }
  InSub& sub = it->second;
  if (sub.approved == approved && approved) return;
  sub.approved = approved;
  if (!approved) sub.resources.clear();  // denied or revoked: Offline, never a refusal (AV-1)
  notifyWatcher(sub);
  saveIn(sub);
}

void Gateway::Impl::inPresence(const xcp::RoutedStanza& s) {
  auto it = in_.find(key2(s.from.bare(), s.to.bare()));
  if (it == in_.end()) {
    ++stats_.stanzasIgnored;  // no Microsoft watcher subscribed (e.g. directed presence)
    return;
  }
  InSub& sub = it->second;
  const auto& el = *s.element;
  if (s.type == "unavailable") {
    if (s.from.resource.empty()) sub.resources.clear();
    else sub.resources.erase(s.from.resource);
  } else {
    ResourcePresence p;
    p.available = true;
    p.show = el.childText("show", xmpp::ns::kClient).value_or("");
    p.status = el.childText("status", xmpp::ns::kClient).value_or("");
    if (auto pr = el.childText("priority", xmpp::ns::kClient)) p.priority = std::atoi(pr->c_str());
    if (auto c = el.child("c", xmpp::ns::kCaps)) p.capsNode = std::string(c->attrOr("node", ""));
    p.activity = activityOf(el);
    sub.resources[s.from.resource] = std::move(p);
    // Presence only reaches a watcher the session manager's rules let see
    // it: the subscription is approved.
    if (!sub.approved) {
      sub.approved = true;
      saveIn(sub);
    }
  }
  notifyWatcher(sub);
}

std::string Gateway::Impl::pidfFor(const InSub& sub) const {
  const ResourcePresence* best = nullptr;
  if (sub.approved)
    for (const auto& [r, p] : sub.resources)
      if (!best || p.priority > best->priority || (p.priority == best->priority && showRank(p) > showRank(*best)))
        best = &p;
  NativePresence np;
  np.available = best && best->available;
  np.show = best ? best->show : "";
  np.client = recogniseClient(best ? best->capsNode : "", "");
  np.activity = best ? best->activity : "";
  auto la = toLync(np);  // AV-5
  return buildPidf(sipUri(sub.owner), la, best ? best->status : "");
}

void Gateway::Impl::sweepExpired() {
  // A slice of the incoming subscriptions each tick, the whole of them every
  // kSweepPasses ticks (10 s), instead of a timer per subscription (about
  // 190 bytes each at a million and more, B-FED-SUBS): a subscription the
  // watcher did not refresh ends (terminated;reason=timeout) at most one
  // pass after its expiry.
  sweepTimer_ = 0;
  if (!running_) return;
  const auto now = Clock::now();
  std::size_t n = std::max<std::size_t>(500, in_.size() / kSweepPasses);
  std::vector<std::string> expired;
  auto it = in_.lower_bound(sweepCursor_);
  for (; it != in_.end() && n; ++it, --n)
    if (it->second.expiresAt <= now) expired.push_back(it->first);
  sweepCursor_ = it == in_.end() ? std::string() : it->first;
  for (const auto& k : expired) endInSub(k, true, "timeout");
  sweepTimer_ = loop_.schedule(kSweepTick, [this] { sweepExpired(); });
}

void Gateway::Impl::notifyWatcher(InSub& sub, std::string_view reason) {
  const auto key = key2(sub.owner, sub.watcher);
  if (sub.notifyInFlight && reason.empty()) {
    sub.notifyAgain = true;  // the latest state goes when the NOTIFY in flight is answered
    return;
  }
  auto body = pidfFor(sub);
  auto m = inDialog("NOTIFY", sub.dlg);
  m.appendHeader("Event", "presence");
  if (!reason.empty() || sub.expiresAt <= Clock::now()) {
    m.appendHeader("Subscription-State", "terminated;reason=" + std::string(reason.empty() ? "noresource" : reason));
  } else {
    auto left = std::chrono::duration_cast<std::chrono::seconds>(sub.expiresAt - Clock::now()).count();
    m.appendHeader("Subscription-State", "active;expires=" + std::to_string(std::max<long long>(1, left)));
  }
  m.setBody(body, "application/pidf+xml");
  sub.notifyInFlight = reason.empty();
  sub.notifyAgain = false;
  ++stats_.notifiesSent;
  trace("presence -> NOTIFY", [&] { return sub.owner + " to " + sub.watcher + ": " + body; });
  sip::ClientCallbacks cb;
  if (reason.empty()) {
    const auto sent = Clock::now();
    cb.onFinal = [this, key, sent](const sip::Message& r) {
      auto it = in_.find(key);
      if (it == in_.end()) return;
      InSub& s = it->second;
      s.notifyInFlight = false;
      const int code = r.statusCode();
      if (code >= 200 && code < 300) {
        s.stale = false;
        peerAnswered(domainOf(s.watcher));
        if (s.notifyAgain) notifyWatcher(s);
        return;
      }
      countFailure(code, &r);
      if (code == 408 || code == 480 || code == 500 || code == 503 || code == 504) {
        // The SIP proxy's own answers when no next hop takes it: the state
        // goes again once the Microsoft side answers (AV-3).
        s.stale = true;
        if (s.notifyAgain) s.notifyAgain = false;
        if (!answeredSince(domainOf(s.watcher), sent)) return peerFailed(domainOf(s.watcher), sent);
        return renotifyLater(key);
      }
      if (code == 481 || code == 404 || code == 410 || code == 489) {
        // The watcher forgot the subscription (it restarted): it subscribes again.
        if (cfg_.log) cfg_.log->info("Microsoft watcher {} of {} dropped the subscription ({}); removed", s.watcher, s.owner, code);
        byCallId_.erase(s.dlg.callId);
        if (store_) store_->remove(false, s.owner, sipUri(s.watcher));
        in_.erase(it);
        return;
      }
      if (s.notifyAgain) notifyWatcher(s);
    };
    auto failed = [this, key, sent](bool local) {
      auto it = in_.find(key);
      if (it == in_.end()) return;
      it->second.notifyInFlight = false;
      it->second.stale = true;
      countFailure(0, nullptr);
      if (!local && !answeredSince(domainOf(it->second.watcher), sent))
        return peerFailed(domainOf(it->second.watcher), sent);
      // Not handed to the node's own SIP proxy, or the Microsoft side
      // answered since it left: the state goes again shortly.
      renotifyLater(key);
    };
    cb.onTimeout = [this, failed] {
      --inFlight_;
      failed(false);
    };
    cb.onTransportError = [this, failed](const sip::TransportError&) {
      --inFlight_;
      failed(true);
    };
    auto answered = std::move(cb.onFinal);
    cb.onFinal = [this, answered](const sip::Message& r) {
      --inFlight_;
      answered(r);
    };
    if (txl_) ++inFlight_;
  }
  sendRequest(std::move(m), std::move(cb));
}

void Gateway::Impl::renotifyLater(const std::string& key) {
  // Not tracked per subscription: the gateway may be gone by then (its
  // loop may be the node's shared one, which outlives it).
  loop_.schedule(std::chrono::seconds(2), [w = weak_from_this(), key] {
    auto self = w.lock();
    if (!self || !self->running_) return;
    self->paced([self = self.get(), key] {
      auto i = self->in_.find(key);
      if (i == self->in_.end() || !i->second.stale) return;
      i->second.stale = false;
      self->notifyWatcher(i->second);
    });
  });
}

void Gateway::Impl::endInSub(const std::string& key, bool sendTerminated, std::string_view reason) {
  auto it = in_.find(key);
  if (it == in_.end()) return;
  InSub& sub = it->second;
  if (sendTerminated) notifyWatcher(sub, reason.empty() ? "noresource" : reason);
  byCallId_.erase(sub.dlg.callId);
  if (store_) store_->remove(false, sub.owner, sipUri(sub.watcher));
  in_.erase(it);
}

void Gateway::Impl::saveIn(const InSub& sub) {
  if (store_) store_->save(stored(false, sub.owner, sub.watcher, sub.approved ? "active" : "offline-shown", sub.dlg, sub.expiresAt));
}

// ================= AV-3: health of the Microsoft side, recovery =================

bool Gateway::Impl::answeredSince(const std::string& domain, Clock::time_point sent) const {
  auto it = peers_.find(domain);
  return it != peers_.end() && it->second.lastAnswer >= sent;
}

void Gateway::Impl::peerFailed(const std::string& domain, Clock::time_point sent) {
  auto& p = peers_[domain];
  if (p.down || p.lastAnswer >= sent) return;
  p.down = true;
  p.downSince = Clock::now();
  ++stats_.keepAliveFailures;
  if (cfg_.log)
    cfg_.log->warn("the Microsoft side for {} does not answer; OPTIONS every {} ms until it does", domain,
                   cfg_.downProbeInterval.count());
  scheduleKeepAlive(domain, cfg_.downProbeInterval);
}

void Gateway::Impl::peerAnswered(const std::string& domain) {
  auto it = peers_.find(domain);
  if (it == peers_.end()) return;
  it->second.lastAnswer = Clock::now();
  if (!it->second.down) return;
  it->second.down = false;
  ++stats_.recoveries;
  // A subscription still queued from an earlier return (the side went away
  // and came back while its recovery was paced) is not queued again.
  std::vector<std::string> outs, ins;
  // Those it confirmed since it went away are known to it: left alone.
  const auto since = it->second.downSince;
  for (auto& [k, s] : out_)
    if (domainOf(s.target) == domain && !s.recoveryQueued && s.confirmedAt < since) {
      s.recoveryQueued = true;
      outs.push_back(k);
    }
  // Watchers: only those whose NOTIFY failed meanwhile. The others have
  // the current state; a Microsoft side that restarted forgot its
  // subscriptions and makes them again (a NOTIFY in an old dialog gets 481).
  for (auto& [k, s] : in_)
    if (s.stale && domainOf(s.watcher) == domain && !s.recoveryQueued) {
      s.recoveryQueued = true;
      ins.push_back(k);
    }
  if (cfg_.log)
    cfg_.log->info("the Microsoft side for {} answers again after {} s: {} outgoing subscription(s) made again, {} "
                   "watcher(s) whose NOTIFY failed notified again",
                   domain,
                   std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - it->second.downSince).count(),
                   outs.size(), ins.size());
  // It may have restarted and forgotten every dialog: new SUBSCRIBEs, paced
  // so that it is not flooded (AV-3).
  for (const auto& k : outs)
    paced([this, k] {
      auto o = out_.find(k);
      if (o == out_.end()) return;
      o->second.recoveryQueued = false;
      if (o->second.tx || o->second.unsubscribing) return;
      byCallId_.erase(o->second.dlg.callId);
      o->second.dlg = Dialog{};
      o->second.state = OutSub::State::Subscribing;
      sendSubscribe(o->second, cfg_.subscribeExpires);
    });
  for (const auto& k : ins)
    paced([this, k] {
      auto i = in_.find(k);
      if (i == in_.end()) return;
      i->second.recoveryQueued = false;
      if (!i->second.stale) return;  // notified since
      i->second.stale = false;
      notifyWatcher(i->second);
    });
  scheduleKeepAlive(domain, cfg_.keepAliveInterval);
}

void Gateway::Impl::scheduleKeepAlive(const std::string& domain, std::chrono::milliseconds after) {
  auto& p = peers_[domain];
  loop_.cancel(p.timer);
  p.timer = loop_.schedule(after, [this, domain] {
    auto it = peers_.find(domain);
    if (it == peers_.end()) return;
    it->second.timer = 0;
    keepAlive(domain);
  });
}

void Gateway::Impl::keepAlive(const std::string& domain) {
  // Asked of a Microsoft user we watch: the proxy routes it like the
  // subscriptions themselves (static route, failover).
  std::string target, from;
  for (const auto& [k, s] : out_)
    if (domainOf(s.target) == domain) {
      target = s.target;
      from = s.watcher;
      break;
    }
  if (target.empty())
    for (const auto& [k, s] : in_)
      if (domainOf(s.watcher) == domain) {
        target = s.watcher;
        from = s.owner;
        break;
      }
  if (target.empty()) {
    peers_.erase(domain);  // nothing federated with it any more
    return;
  }
  Dialog d;
  auto m = outOfDialog("OPTIONS", from, target, d);
  m.appendHeader("Accept", "application/sdp");
  sip::ClientCallbacks cb;
  const auto sent = Clock::now();
  auto failed = [this, domain, sent] {
    ++stats_.keepAliveFailures;
    auto& p = peers_[domain];
    if (!p.down && !answeredSince(domain, sent)) return peerFailed(domain, sent);
    scheduleKeepAlive(domain, p.down ? cfg_.downProbeInterval : cfg_.keepAliveInterval);
  };
  cb.onFinal = [this, domain, failed](const sip::Message& r) {
    const int code = r.statusCode();
    // The proxy's own answers when no next hop works.
    if (code == 408 || code == 503 || code == 504 || code == 480 || code == 500) return failed();
    if (peers_[domain].down) return peerAnswered(domain);
    peers_[domain].lastAnswer = Clock::now();
    scheduleKeepAlive(domain, cfg_.keepAliveInterval);
  };
  cb.onTimeout = failed;
  cb.onTransportError = [failed](const sip::TransportError&) { failed(); };
  sendRequest(std::move(m), std::move(cb));
}

void Gateway::Impl::paced(std::function<void()> fn) {
  pacedQueue_.push_back(std::move(fn));
  if (!pacedTimer) runPaced();
}

void Gateway::Impl::runPaced() {
  pacedTimer = 0;
  // recoveryRate per second, in ticks of 100 ms, and never more than a
  // window of SUBSCRIBEs and NOTIFYs waiting for their answers: a node that
  // cannot forward them as fast (its proxy's send queue, its core) is not
  // buried, and its own overload is not taken for the peer failing.
  std::size_t n = std::max<std::size_t>(1, cfg_.recoveryRate / 10);
  const std::size_t window = std::max<std::size_t>(50, cfg_.recoveryRate / 10);
  while (n-- && !pacedQueue_.empty() && inFlight_ < window) {
    auto fn = std::move(pacedQueue_.front());
    pacedQueue_.pop_front();
    fn();
  }
  if (!pacedQueue_.empty()) pacedTimer = loop_.schedule(std::chrono::milliseconds(100), [this] { runPaced(); });
}

void Gateway::Impl::recover(std::vector<StoredSubscription> rows) {
  if (!running_) return;
  std::size_t outs = 0, ins = 0;
  for (auto& r : rows) {
    const std::string remote = jidOfUri(r.remoteUri);
    if (remote.empty()) continue;
    Dialog d = dialogOf(r);
    if (r.outgoing) {
      const auto key = key2(r.nativeJid, remote);
      OutSub& sub = out_[key];
      sub.watcher = r.nativeJid;
      sub.target = remote;
      sub.dlg = std::move(d);
      // The watcher already holds the subscription (its roster says so):
      // only presence follows.
      sub.toldSubscribed = true;
      if (!sub.dlg.callId.empty()) byCallId_[sub.dlg.callId] = "o" + key;
      ++outs;
      // Refreshed in its dialog; a peer that forgot it answers 481 and a
      // new dialog is made (onSubscribeFinal).
      paced([this, key] {
        auto o = out_.find(key);
        if (o != out_.end() && !o->second.tx) sendSubscribe(o->second, cfg_.subscribeExpires);
      });
      if (!peers_.count(domainOf(remote))) scheduleKeepAlive(domainOf(remote), cfg_.keepAliveInterval);
    } else {
      auto expiresAt = steadyAt(r.expiresAt);
      if (expiresAt <= Clock::now() || r.callId.empty()) {
        if (store_) store_->remove(false, r.nativeJid, r.remoteUri);
        continue;
      }
      const auto key = key2(r.nativeJid, remote);
      InSub& sub = in_[key];
      sub.owner = r.nativeJid;
      sub.watcher = remote;
      sub.dlg = std::move(d);
      sub.approved = r.state == "active";
      sub.expiresAt = expiresAt;
      byCallId_[sub.dlg.callId] = "i" + key;
          ++ins;
      if (!peers_.count(domainOf(remote))) scheduleKeepAlive(domainOf(remote), cfg_.keepAliveInterval);
      // A fresh NOTIFY with the user's presence now (AV-3). Decided when
      // its turn comes: without approval, Offline. A user with no available
      // resource on the node (after an impd restart, every user: their
      // sessions ended with it) is Offline, what the session manager would
      // answer a probe, or what it routed here since. Only for a user who
      // is online does the session manager answer a probe with the presence
      // of every resource, through its privacy rules (polite blocking).
      paced([this, key] {
        auto i = in_.find(key);
        if (i == in_.end()) return;
        InSub& in = i->second;
        if (!in.approved || !in.resources.empty() || (cfg_.nativeAvailable && !cfg_.nativeAvailable(in.owner)))
          return notifyWatcher(in);
        ++stats_.recoveryProbes;
        if (auto owner = xcp::Address::split(in.owner))
          route(xcp::StanzaKind::Presence, in.watcher, *owner, presence("probe"));
      });
    }
  }
  if ((outs || ins) && cfg_.log)
    cfg_.log->info("recovering {} outgoing and {} incoming federated subscription(s) at {} per second", outs, ins,
                   cfg_.recoveryRate);
}

}  // namespace imp::fcm
