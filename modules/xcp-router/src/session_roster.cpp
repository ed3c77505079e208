// The session manager's roster iq (RFC 6121 §2, versioning §2.6) and the
// XEP-0191 blocking command, with the PS-1 contact limit.
#include <imp/xmpp/jid.h>
#include <imp/xmpp/ns.h>
#include <imp/xmpp/stanza.h>
#include <imp/xmpp/xml.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "imp/xcp_router/presence_settings.h"
#include "imp/xcp_router/privacy_store.h"
#include "imp/xcp_router/roster_store.h"
#include "imp/xcp_router/session.h"
#include "session_util.h"

namespace imp::xcp {

namespace ns = xmpp::ns;

namespace {

const xmpp::Element* payloadOf(const xmpp::Element& iq) {
  for (const auto& n : iq.nodes())
    if (n.isElement()) return &n.element();
  return nullptr;
}

// The result of the iq `request` (RFC 6120 §8.2.3), from its recipient to its
// sender.
void answerResult(Router& router, const RoutedStanza& request, xmpp::Element result) {
  RoutedStanza r;
  r.kind = StanzaKind::Iq;
  r.from = request.to;
  r.to = request.from;
  r.type = "result";
  r.element = std::make_shared<const xmpp::Element>(std::move(result));
  router.route(std::move(r));
}

}  // namespace

void SessionManager::rosterIq(const RoutedStanza& s) {
  const std::string user = s.to.bare();
  const xmpp::Element* q = payloadOf(*s.element);
  auto userid = userOf(user);
  if (!userid) return answerError(s, "internal-server-error", "wait", "the user's account cannot be read");
  if (s.type == "get") {
    {
      // §2.1.6: a resource that asked for the roster gets the pushes.
      auto bound = router_.resourcesOf(user);
      std::lock_guard l(mu_);
      if (std::find(bound.begin(), bound.end(), s.from.resource) != bound.end())
        online_[user][s.from.resource].rosterRequested = true;
    }
    auto result = xmpp::makeIqResult(*s.element);
    if (auto ver = q->attr("ver")) {
      auto d = data_.roster->since(*userid, std::string(*ver));
      if (!d.full) {
        // §2.6.3: an empty result, then the changes as pushes.
        answerResult(router_, s, std::move(result));
        Address to = s.from;
        auto from = s.to;
        for (const auto& item : d.items) {
          ++stats_.rosterPushes;
          send(StanzaKind::Iq, from, to, sessionutil::rosterPush(item, d.version, "push" + std::to_string(++pushIds_)));
        }
        return;
      }
      auto& out = result.addChild("query", std::string(ns::kRoster));
      out.setAttr("ver", std::to_string(d.version));
      for (const auto& item : d.items) out.addChild(sessionutil::rosterItemElement(item));
      return answerResult(router_, s, std::move(result));
    }
    auto roster = data_.roster->get(*userid);
    auto& out = result.addChild("query", std::string(ns::kRoster));
    out.setAttr("ver", std::to_string(roster.version));
    for (const auto& item : roster.items)
      if (!item.pendingOnly) out.addChild(sessionutil::rosterItemElement(item));
    return answerResult(router_, s, std::move(result));
  }
  // §2.3.3: a roster set carries exactly one item.
  auto items = q->children("item", ns::kRoster);
  if (items.size() != 1)
    return answerError(s, "bad-request", "modify", "a roster set carries exactly one <item/> (RFC 6121 §2.3.3), not " +
                                                       std::to_string(items.size()));
  const xmpp::Element& it = *items.front();
  std::string why;
  auto jidText = it.attr("jid");
  if (!jidText) return answerError(s, "bad-request", "modify", "the roster item has no 'jid' (RFC 6121 §2.1.2.2)");
  auto jid = xmpp::Jid::parse(*jidText, &why);
  if (!jid) return answerError(s, "jid-malformed", "modify", "the roster item's JID is not valid: " + why);
  if (jid->hasResource())
    return answerError(s, "bad-request", "modify", "a roster item is a bare JID (RFC 6121 §2.1.1), not " + jid->full());
  const std::string contact = jid->bareString();
  auto contactAddr = Address::split(contact);
  if (!contactAddr) return answerError(s, "jid-malformed", "modify", "the roster item's JID is not valid");
  if (it.attrOr("subscription", "") == "remove") {
    auto old = data_.roster->remove(*userid, contact);
    if (!old) return answerError(s, "item-not-found", "cancel", contact + " is not in the roster (RFC 6121 §2.5.3)");
    answerResult(router_, s, xmpp::makeIqResult(*s.element));
    pushRoster(user, *old, old->version);
    // §2.5.2: the subscriptions end with the item.
    if (auto own = Address::split(user)) sendSubscriptionEnds(user, *own, *contactAddr, *old);
    return;
  }
  std::vector<std::string> groups;
  for (const auto* g : it.children("group", ns::kRoster)) {
    auto name = g->text();
    if (name.empty()) return answerError(s, "not-acceptable", "modify", "an empty group name (RFC 6121 §2.3.3)");
    if (std::find(groups.begin(), groups.end(), name) != groups.end())
      return answerError(s, "bad-request", "modify", "the group '" + name + "' is given twice (RFC 6121 §2.3.3)");
    groups.push_back(std::move(name));
  }
  RosterWrite w;
  try {
    w = data_.roster->setItem(*userid, contact, std::string(it.attrOr("name", "")), groups,
                              data_.settings->current().maxContacts);
  } catch (const StoreInputError& e) {
    return answerError(s, e.condition(), "modify", e.what());
  }
  if (w.refused) return answerError(s, w.refused->condition(), w.refused->type(), w.refused->text());  // PS-1
  answerResult(router_, s, xmpp::makeIqResult(*s.element));
  if (w.changed && w.item) pushRoster(user, *w.item, w.version);
}

void SessionManager::blockingIq(const RoutedStanza& s) {
  const std::string user = s.to.bare();
  const xmpp::Element* q = payloadOf(*s.element);
  auto userid = userOf(user);
  if (!userid) return answerError(s, "internal-server-error", "wait", "the user's account cannot be read");
  auto own = Address::split(user);
  if (!own) return;
  if (s.type == "get" && q->name() == "blocklist") {  // XEP-0191 §3.2
    {
      auto bound = router_.resourcesOf(user);
      std::lock_guard l(mu_);
      if (std::find(bound.begin(), bound.end(), s.from.resource) != bound.end())
        online_[user][s.from.resource].blocklistRequested = true;
    }
    auto result = xmpp::makeIqResult(*s.element);
    auto& list = result.addChild("blocklist", std::string(ns::kBlocking));
    for (const auto& j : data_.blocks->list(*userid))
      list.addChild("item", std::string(ns::kBlocking)).setAttr("jid", j);
    return answerResult(router_, s, std::move(result));
  }
  const bool block = q->name() == "block";
  if (s.type != "set" || (!block && q->name() != "unblock"))
    return answerError(s, "bad-request", "modify",
                       "the blocking command is get <blocklist/>, set <block/> or set <unblock/> (XEP-0191)");
  std::vector<std::string> jids;
  for (const auto* item : q->children("item", ns::kBlocking)) {
    std::string why;
    auto j = xmpp::Jid::parse(item->attrOr("jid", ""), &why);
    if (!j) return answerError(s, "jid-malformed", "modify", "a blocked JID is not valid: " + why);  // XEP-0191 §3.3
    jids.push_back(j->full());
  }
  if (block && jids.empty())
    return answerError(s, "bad-request", "modify", "<block/> names at least one JID (XEP-0191 §3.3)");
  // What the change concerns: for "unblock all" the list before it.
  std::vector<std::string> affected = jids.empty() ? data_.blocks->list(*userid) : jids;
  if (block)
    data_.blocks->block(*userid, jids);
  else
    data_.blocks->unblock(*userid, jids);
  // In force for the next stanza (XEP-0191 §3.3, §3.4): the connection
  // manager and the session manager check the list in memory.
  router_.blocking().set(user, data_.blocks->list(*userid));
  answerResult(router_, s, xmpp::makeIqResult(*s.element));
  // Pushes to the resources that asked for the list (XEP-0191 §3.3, §3.4).
  std::vector<std::string> interested;
  {
    std::lock_guard l(mu_);
    auto u = online_.find(user);
    if (u != online_.end())
      for (const auto& [r, st] : u->second)
        if (st.blocklistRequested) interested.push_back(r);
  }
  for (const auto& r : interested) {
    xmpp::Element iq("iq", std::string(ns::kClient));
    iq.setAttr("type", "set").setAttr("id", "push" + std::to_string(++pushIds_));
    auto& p = iq.addChild(block ? "block" : "unblock", std::string(ns::kBlocking));
    for (const auto& j : jids) p.addChild("item", std::string(ns::kBlocking)).setAttr("jid", j);
    Address to = *own;
    to.resource = r;
    send(StanzaKind::Iq, *own, to, std::move(iq));
  }
  // The contacts with a subscription to the user's presence see the user go
  // offline when blocked (polite blocking, AV-1; XEP-0191 §3.3) and get the
  // current presence again when unblocked (§3.4).
  for (const auto& j : affected) {
    auto to = Address::split(j);
    if (!to) continue;
    auto item = data_.roster->item(*userid, to->bare());
    if (!item || !item->state.hasFrom()) continue;
    if (!block && data_.blocks->isBlocked(*userid, j)) continue;  // still blocked by another form
    presenceOfUserTo(user, *to, block);
  }
}

}  // namespace imp::xcp
