// The session manager's presence (RFC 6121 §4) and subscriptions (§3,
// Appendix A) with the privacy policy (AV-1, PS-2).
#include <imp/xmpp/ns.h>
#include <imp/xmpp/stanza.h>
#include <imp/xmpp/xml.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "imp/xcp_router/offline_store.h"
#include "imp/xcp_router/presence_settings.h"
#include "imp/xcp_router/privacy_policy.h"
#include "imp/xcp_router/roster_store.h"
#include "imp/xcp_router/session.h"
#include "imp/xcp_router/subscription.h"
#include "session_util.h"

namespace imp::xcp {

namespace ns = xmpp::ns;

namespace {

std::optional<SubscriptionEvent> subscriptionType(std::string_view type, bool outbound) {
  if (type == "subscribe") return outbound ? SubscriptionEvent::OutSubscribe : SubscriptionEvent::InSubscribe;
  if (type == "subscribed") return outbound ? SubscriptionEvent::OutSubscribed : SubscriptionEvent::InSubscribed;
  if (type == "unsubscribe") return outbound ? SubscriptionEvent::OutUnsubscribe : SubscriptionEvent::InUnsubscribe;
  if (type == "unsubscribed")
    return outbound ? SubscriptionEvent::OutUnsubscribed : SubscriptionEvent::InUnsubscribed;
  return std::nullopt;
}

bool isSubscriptionType(std::string_view t) {
  return t == "subscribe" || t == "subscribed" || t == "unsubscribe" || t == "unsubscribed";
}

// §4.7.2.3: -128..127; anything else (absent, not a number) is 0.
int priorityOf(const xmpp::Element& presence) {
  auto text = presence.childText("priority", ns::kClient);
  if (!text) return 0;
  int v = 0;
  auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || p != text->data() + text->size()) return 0;
  return std::clamp(v, -128, 127);
}

xmpp::Element presenceOfType(std::string_view type) {
  xmpp::Element el("presence", std::string(ns::kClient));
  if (!type.empty()) el.setAttr("type", type);
  return el;
}

bool blockedBy(const std::set<std::string>& list, const std::string& jid) {
  if (list.empty()) return false;
  for (const auto& f : blockMatchForms(jid))
    if (list.count(f)) return true;
  return false;
}

}  // namespace

void SessionManager::onPresence(RoutedStanza s) {
  if (isSubscriptionType(s.type)) {
    // A subscription stanza of a local session is outbound for its user
    // first (RFC 6121 §3, A.2): the router hands every one of them here,
    // whatever the contact's domain (router.h, step 0). What the session
    // manager routes on (with the user's bare JID) and what comes from
    // elsewhere is inbound (A.3).
    bool outbound = false;
    if (!s.outboundApplied && !s.from.resource.empty() && !s.from.local.empty()) {
      auto rs = router_.resourcesOf(s.from.bare());
      outbound = std::find(rs.begin(), rs.end(), s.from.resource) != rs.end();
    }
    // The server itself has no roster; another domain (a gateway) may.
    if (s.to.local.empty() && (!outbound || router_.isLocalDomain(s.to.domain))) {
      ++stats_.droppedByRule;
      if (log_) log_->debug("{} presence to the domain {} ignored", s.type, s.to.domain);
      return;
    }
    if (!haveData() && outbound) {
      // No roster to apply it to: routed on as it is (§3.1.2: with the
      // user's bare JID).
      Address own = s.from, contact = s.to;
      own.resource.clear();
      contact.resource.clear();
      send(StanzaKind::Presence, own, contact, *s.element);
      return;
    }
    if (!haveData()) {
      ++stats_.droppedByRule;
      if (log_) log_->debug("{} presence to {} ignored: no roster storage", s.type, s.to.bare());
      return;
    }
    ++stats_.subscriptions;
    auto key = outbound ? s.from.bare() : s.to.bare();
    if (outbound)
      inStrand(key, std::move(s), [this](const RoutedStanza& p) { outboundSubscription(p); }, nullptr);
    else
      inStrand(key, std::move(s), [this](const RoutedStanza& p) { inboundSubscription(p); }, nullptr);
    return;
  }
  if (!s.to.local.empty() && s.from.bare() == s.to.bare() && !s.from.resource.empty() && s.to.isBare() &&
      (s.type.empty() || s.type == "unavailable")) {
    ++stats_.broadcasts;
    auto key = s.from.bare();
    inStrand(key, std::move(s), [this](const RoutedStanza& p) { ownPresence(p); }, nullptr);
    return;
  }
  if (s.type == "probe") {
    ++stats_.probes;
    if (!haveData() || s.to.local.empty()) {
      ++stats_.droppedByRule;
      return;
    }
    auto key = s.to.bare();
    inStrand(key, std::move(s), [this](const RoutedStanza& p) { answerProbe(p); }, nullptr);
    return;
  }
  // Directed presence of a local session (§4.6.3), whatever the recipient
  // (the router hands it here first, router.h step 0): recorded in the
  // sender's strand, then routed on.
  if (!s.outboundApplied && (s.type.empty() || s.type == "unavailable") && !s.from.resource.empty() &&
      !s.from.local.empty() && s.from.bare() != s.to.bare()) {
    auto rs = router_.resourcesOf(s.from.bare());
    if (std::find(rs.begin(), rs.end(), s.from.resource) != rs.end()) {
      auto key = s.from.bare();
      inStrand(key, std::move(s), [this](const RoutedStanza& p) { outboundDirected(p); }, nullptr);
      return;
    }
  }
  if (!s.to.isBare()) {
    // §8.5.3.2.2: presence to a resource not bound is dropped.
    ++stats_.droppedByRule;
    if (log_) log_->debug("presence to unbound {} dropped (RFC 6121 §8.5.3.2.2)", s.to.full());
    return;
  }
  // Through the recipient's strand: a "subscribed" waiting there is
  // delivered before the presence that follows it (RFC 6121 §3.1.5).
  auto key = s.to.bare();
  inStrand(
      key,
      [this, s = std::move(s)] {
        auto targets = available(s.to.bare());
        if (targets.empty()) {
          ++stats_.droppedByRule;
          if (log_) log_->debug("presence to offline {} dropped (RFC 6121 §8.5.2.2.3)", s.to.bare());
          return;
        }
        toEveryResource(s, targets);  // §8.5.2.1.3
      },
      nullptr);
}

void SessionManager::outboundDirected(const RoutedStanza& s) {
  const std::string user = s.from.bare();
  // §4.6.3 rule 1: a contact subscribed to the user's presence (from/both)
  // gets every broadcast, "unavailable" included: it is not recorded.
  // Rules 2 and 3: any other entity, also one a resource that is not
  // available sent presence to, hears "unavailable" when the resource goes,
  // unless the user has sent it directed "unavailable" since.
  bool subscriber = false;
  if (haveData()) {
    try {
      if (auto userid = userOf(user)) {
        auto item = data_.roster->item(*userid, s.to.bare());
        subscriber = item && item->state.hasFrom();
      }
    } catch (const std::exception& e) {
      // Recorded as for a non-subscriber: at worst the contact hears
      // "unavailable" twice; the presence itself still goes out.
      ++stats_.storeErrors;
      if (log_) log_->error("the roster of {} cannot be read for directed presence: {}", user, e.what());
    }
  }
  const bool toServer = s.to.local.empty() && router_.isLocalDomain(s.to.domain);
  {
    // The entry exists from here on even for a resource that never sent
    // available presence (rule 3); the end of the session, queued in this
    // strand after this job, removes it.
    std::lock_guard l(mu_);
    auto& st = online_[user][s.from.resource];
    if (s.type.empty() && !subscriber && !toServer)
      st.directed.insert(s.to.full());
    else
      st.directed.erase(s.to.full());
  }
  RoutedStanza out = s;
  out.outboundApplied = true;
  router_.route(std::move(out));
}

void SessionManager::presenceOfUserTo(const std::string& userBare, const Address& to, bool unavailable) {
  std::vector<std::pair<Address, xmpp::Element>> out;
  {
    std::lock_guard l(mu_);
    auto u = online_.find(userBare);
    if (u != online_.end())
      for (const auto& [r, st] : u->second) {
        if (!st.available) continue;
        auto from = Address::split(userBare);
        if (!from) continue;
        from->resource = r;
        if (unavailable || !st.last)
          out.emplace_back(*from, presenceOfType(unavailable ? "unavailable" : ""));
        else
          out.emplace_back(*from, *st.last);
      }
  }
  for (auto& [from, el] : out) send(StanzaKind::Presence, from, to, std::move(el));
}

void SessionManager::pushRoster(const std::string& bare, const RosterItem& item, std::uint64_t version) {
  std::vector<std::string> interested;
  {
    std::lock_guard l(mu_);
    auto u = online_.find(bare);
    if (u != online_.end())
      for (const auto& [r, st] : u->second)
        if (st.rosterRequested) interested.push_back(r);
  }
  auto from = Address::split(bare);
  if (!from) return;
  for (const auto& r : interested) {
    Address to = *from;
    to.resource = r;
    ++stats_.rosterPushes;
    send(StanzaKind::Iq, *from, to, sessionutil::rosterPush(item, version, "push" + std::to_string(++pushIds_)));
  }
}

void SessionManager::sendProbe(const Address& own, const Address& contact) {
  send(StanzaKind::Presence, own, contact, presenceOfType("probe"));
}

bool SessionManager::pushRosterChanges(const std::string& bare, const std::vector<RosterItem>& items,
                                       std::uint64_t version) {
  {
    std::lock_guard l(mu_);
    auto u = online_.find(bare);
    if (u == online_.end() ||
        std::none_of(u->second.begin(), u->second.end(), [](const auto& r) { return r.second.rosterRequested; }))
      return false;
  }
  if (items.empty()) return true;
  std::vector<RosterItem> given = items;
  for (auto& it : given)
    if (it.version == 0) it.version = version;
  std::stable_sort(given.begin(), given.end(),
                   [](const RosterItem& a, const RosterItem& b) { return a.version < b.version; });
  inStrand(
      bare,
      [this, bare, given = std::move(given), version]() mutable {
        if (haveData()) {
          if (auto userid = userOf(bare); userid && data_.roster->version(*userid) > version) {
            // Changed after the caller's commit: the store's state, not the caller's.
            auto from = given.front().version ? given.front().version - 1 : 0;
            auto d = data_.roster->since(*userid, std::to_string(from));
            if (!d.full) given = std::move(d.items);
          }
        }
        for (std::size_t i = 0; i < given.size(); ++i) {
          std::uint64_t ver = given[i].version;
          if (i + 1 < given.size() && given[i + 1].version == ver) --ver;
          pushRoster(bare, given[i], ver);
        }
      },
      [this, bare] {
        if (log_) log_->warn("roster pushes for {} not sent: the session manager is busy or stopping", bare);
      });
  return true;
}

void SessionManager::probeContact(const std::string& bare, const std::string& contactBare) {
  inStrand(
      bare,
      [this, bare, contactBare] {
        auto own = Address::split(bare);
        auto to = Address::split(contactBare);
        if (!own || !to) return;
        to->resource.clear();  // subscriptions are between bare JIDs (RFC 6121 §3.1.1)
        sendProbe(*own, *to);
      },
      [this, bare, contactBare] {
        if (log_) log_->warn("probe from {} to {} not sent: the session manager is busy or stopping", bare, contactBare);
      });
}

void SessionManager::sendSubscriptionEnds(const std::string& bare, const Address& own, const Address& contact,
                                          const RosterItem& was) {
  if (was.state.hasTo() || was.state.pendingOut)
    send(StanzaKind::Presence, own, contact, presenceOfType("unsubscribe"));
  if (was.state.hasFrom() || was.state.pendingIn) {
    if (was.state.hasFrom()) presenceOfUserTo(bare, contact, true);
    send(StanzaKind::Presence, own, contact, presenceOfType("unsubscribed"));
  }
}

void SessionManager::endSubscriptions(const std::string& bare, const RosterItem& was) {
  inStrand(
      bare,
      [this, bare, was] {
        auto own = Address::split(bare);
        auto to = Address::split(was.contact);
        if (!own || !to) return;
        to->resource.clear();
        sendSubscriptionEnds(bare, *own, *to, was);
      },
      [this, bare, contact = was.contact] {
        if (log_) log_->warn("the subscriptions between {} and {} not ended: the session manager is busy or stopping",
                             bare, contact);
      });
}

void SessionManager::ownPresence(const RoutedStanza& s) {
  const std::string bare = s.from.bare();
  const std::string& res = s.from.resource;
  const bool unavailable = s.type == "unavailable";
  bool initial = false, neverAvailable = false;
  std::set<std::string> directed;
  xmpp::Element el = *s.element;
  el.removeAttr("to");
  auto bound = router_.resourcesOf(bare);
  const bool stillBound = std::find(bound.begin(), bound.end(), res) != bound.end();
  if (!unavailable && !stillBound) return;  // the session is gone already
  {
    std::lock_guard l(mu_);
    auto& resources = online_[bare];
    auto it = resources.find(res);
    const bool was = it != resources.end() && it->second.available;
    if (unavailable) {
      if (it == resources.end()) {
        if (resources.empty()) online_.erase(bare);
        return;
      }
      directed = std::move(it->second.directed);
      neverAvailable = !was;
      if (stillBound) {
        // Unavailable while still connected (§4.5.1): no longer available,
        // but still an interested resource (§2.1.6) and still listening for
        // block-list pushes (XEP-0191 §3.2) until the session ends.
        auto& st = it->second;
        st.available = false;
        st.priority = 0;
        st.last.reset();
      } else {
        resources.erase(it);
        if (resources.empty()) online_.erase(bare);
      }
    } else {
      auto& st = resources[res];
      initial = !st.available;
      st.available = true;
      st.priority = priorityOf(el);
      st.last = std::make_shared<const xmpp::Element>(el);
    }
  }
  if (neverAvailable) {
    // The resource never sent available presence: its subscribers had
    // nothing from it; only the entities it sent directed presence to hear
    // the end (§4.6.3 rule 3). Its interest in pushes ends with it.
    for (const auto& d : directed)
      if (auto to = Address::split(d)) send(StanzaKind::Presence, s.from, *to, el);
    return;
  }
  // The user's own available resources (§4.2.2, §4.4.2), the sender included.
  auto own = Address::split(bare);
  if (!own) return;
  for (const auto& r : available(bare)) {
    Address to = *own;
    to.resource = r;
    send(StanzaKind::Presence, s.from, to, el);
  }
  std::set<std::string> told;
  if (haveData()) {
    auto userid = userOf(bare);
    if (userid) {
      auto roster = data_.roster->get(*userid);
      auto blockedList = data_.blocks->list(*userid);
      std::set<std::string> blocked(blockedList.begin(), blockedList.end());
      for (const auto& item : roster.items) {
        if (!item.state.hasFrom() || blockedBy(blocked, item.contact)) continue;
        auto to = Address::split(item.contact);
        if (!to) continue;
        told.insert(item.contact);
        send(StanzaKind::Presence, s.from, *to, el);  // §4.2.2 / §4.4.2 / §4.5.2
      }
      if (initial) {
        // §4.2.2: probes to the contacts whose presence the user has.
        for (const auto& item : roster.items) {
          if (!item.state.hasTo()) continue;
          auto to = Address::split(item.contact);
          if (!to) continue;
          sendProbe(*own, *to);
        }
        // §3.1.3: requests the user has not answered are delivered again.
        for (const auto& p : data_.roster->pendingIn(*userid)) {
          auto from = Address::split(p.contact);
          if (!from) continue;
          auto sub = presenceOfType("subscribe");
          if (!p.pendingInStatus.empty()) sub.addChild("status", std::string(ns::kClient)).addText(p.pendingInStatus);
          sub.setAttr("from", p.contact).setAttr("to", bare);
          RoutedStanza d;
          d.kind = StanzaKind::Presence;
          d.from = *from;
          d.to = s.from;
          d.type = "subscribe";
          d.element = std::make_shared<const xmpp::Element>(std::move(sub));
          router_.deliverToSession(std::move(d));
        }
        // IM-5: the messages kept while the user was offline, after initial
        // presence (the client is ready for them).
        deliverOffline(*userid, s.from);
      }
    }
  }
  if (unavailable) {
    // §4.6.3: everyone given directed presence hears the end too (a contact
    // that has become a subscriber since heard it with the broadcast).
    for (const auto& d : directed) {
      auto to = Address::split(d);
      if (!to || told.count(to->bare())) continue;
      send(StanzaKind::Presence, s.from, *to, el);
    }
  }
}

void SessionManager::answerProbe(const RoutedStanza& s) {
  const std::string user = s.to.bare();
  const std::string prober = s.from.bare();
  auto userid = userOf(user);
  if (!userid) return;
  auto item = data_.roster->item(*userid, prober);
  auto own = Address::split(user);
  if (!own) return;
  if (!item || !item->state.hasFrom()) {
    // §4.3.2: no subscription, nothing revealed.
    ++stats_.droppedByRule;
    if (log_) log_->debug("probe from {} to {} without subscription ignored (RFC 6121 §4.3.2)", prober, user);
    return;
  }
  if (data_.blocks->isBlocked(*userid, s.from.full())) {
    // AV-1 polite blocking: the user is offline for the blocked watcher.
    ++stats_.politeBlocks;
    send(StanzaKind::Presence, *own, s.from, presenceOfType("unavailable"));
    return;
  }
  if (available(user).empty()) {
    send(StanzaKind::Presence, *own, s.from, presenceOfType("unavailable"));  // §4.3.2
    return;
  }
  presenceOfUserTo(user, s.from, false);
}

void SessionManager::outboundSubscription(const RoutedStanza& s) {
  const std::string user = s.from.bare();
  Address contact = s.to;
  contact.resource.clear();  // §3.1.1: subscriptions are to bare JIDs
  auto userid = userOf(user);
  if (!userid) return answerError(s, "internal-server-error", "wait", "the user's account cannot be read");
  auto event = *subscriptionType(s.type, true);
  auto item = data_.roster->item(*userid, contact.bare());
  SubscriptionState state = item ? item->state : SubscriptionState{};
  auto out = applySubscriptionEvent(state, event);
  // AV-1/PS-2: the user's answer to a prompt is remembered for later requests.
  if (event == SubscriptionEvent::OutSubscribed)
    data_.policy->remember(*userid, contact.bare(), PrivacyDecision::Allow);
  else if (event == SubscriptionEvent::OutUnsubscribed && state.pendingIn)
    data_.policy->remember(*userid, contact.bare(), PrivacyDecision::Block);
  else if (event == SubscriptionEvent::OutUnsubscribed && (state.hasFrom() || state.preApproved))
    data_.policy->forget(*userid, contact.bare());  // an approval taken back is not applied again
  if (out.changed) {
    RosterWrite w;
    try {
      w = data_.roster->setSubscription(*userid, contact.bare(), out.state, std::nullopt, data_.settings->current());
    } catch (const StoreInputError& e) {
      return answerError(s, e.condition(), "modify", e.what());
    }
    if (w.refused) return answerError(s, w.refused->condition(), w.refused->type(), w.refused->text());  // PS-1
    if (w.item && w.changed && !w.item->pendingOnly) pushRoster(user, *w.item, w.version);
  }
  auto own = Address::split(user);
  if (!own) return;
  if (out.route) {
    // §3.1.2: stamped with the user's bare JID.
    xmpp::Element el = *s.element;
    send(StanzaKind::Presence, *own, contact, std::move(el));
  }
  if (out.sendPresence) presenceOfUserTo(user, contact, false);   // §3.1.5
  if (out.sendUnavailable) presenceOfUserTo(user, contact, true);  // §3.2.2
}

void SessionManager::inboundSubscription(const RoutedStanza& s) {
  const std::string user = s.to.bare();
  Address contact = s.from;
  contact.resource.clear();
  auto userid = userOf(user);
  if (!userid) {
    ++stats_.droppedByRule;  // §3.1.3: no such user; a presence is not answered with an error
    if (log_) log_->debug("{} from {} to unknown {} ignored", s.type, contact.bare(), user);
    return;
  }
  auto own = Address::split(user);
  if (!own) return;
  auto event = *subscriptionType(s.type, false);
  auto item = data_.roster->item(*userid, contact.bare());
  SubscriptionState state = item ? item->state : SubscriptionState{};
  auto out = applySubscriptionEvent(state, event);
  const auto settings = data_.settings->current();
  auto store = [&](const SubscriptionState& st, const std::optional<std::string>& status) {
    auto w = data_.roster->setSubscription(*userid, contact.bare(), st, status, settings);
    if (!w.refused && w.item && w.changed && !w.item->pendingOnly) pushRoster(user, *w.item, w.version);
    return w;
  };
  auto deliver = [&] {
    xmpp::Element el = *s.element;
    el.setAttr("from", contact.bare());
    el.setAttr("to", user);
    RoutedStanza d = s;
    d.from = contact;
    d.to = *own;
    d.element = std::make_shared<const xmpp::Element>(std::move(el));
    toEveryResource(d, available(user));
  };
  if (event != SubscriptionEvent::InSubscribe) {
    if (out.changed) store(out.state, std::nullopt);
    if (out.route) deliver();
    if (out.sendUnavailable) presenceOfUserTo(user, contact, true);
    if (out.sendPresence) presenceOfUserTo(user, contact, false);
    return;
  }
  auto verdict = data_.policy->decide(*userid, s.from.full());
  if (verdict == PolicyVerdict::PoliteBlock) {
    // AV-1: no prompt, no answer, no error; the watcher sees the user offline.
    ++stats_.politeBlocks;
    if (log_) log_->debug("subscription request from {} to {} politely blocked", contact.bare(), user);
    return;
  }
  if (out.autoSubscribed) {
    // Already approved or pre-approved (§3.1.3, §3.4): answered for the user.
    if (out.changed) store(out.state, std::nullopt);
    send(StanzaKind::Presence, *own, contact, presenceOfType("subscribed"));
    if (out.sendPresence || !out.changed) presenceOfUserTo(user, contact, false);
    return;
  }
  std::optional<std::string> status = s.element->childText("status", ns::kClient);
  if (verdict == PolicyVerdict::Approve) {
    // PS-2 automatic approval, or an earlier "allow": as if the user had
    // answered "subscribed" (A.2.3).
    auto approved = applySubscriptionEvent(out.state, SubscriptionEvent::OutSubscribed);
    auto w = store(approved.state, std::nullopt);
    if (!w.refused) {
      send(StanzaKind::Presence, *own, contact, presenceOfType("subscribed"));
      presenceOfUserTo(user, contact, false);  // §3.1.5
      return;
    }
    // PS-1: the watcher limit is reached; the user decides (and gets the
    // limit's error when approving).
    if (log_) log_->info("automatic approval of {} for {} refused: {}; the user is asked", contact.bare(), user,
                         w.refused->text());
  }
  store(out.state, status.value_or(""));
  if (out.route) deliver();  // no available resource: delivered at the next login (§3.1.3)
}

}  // namespace imp::xcp
