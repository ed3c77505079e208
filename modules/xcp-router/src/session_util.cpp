#include "session_util.h"

#include <imp/xmpp/ns.h>
#include <imp/xmpp/stream_parser.h>

namespace imp::xcp::sessionutil {

namespace ns = xmpp::ns;

std::optional<xmpp::Element> parseStanza(const std::string& xml) {
  // The stored text is one element of a jabber:client stream: parse it
  // inside a header that declares that namespace.
  xmpp::StreamParser p(xml.size() + 4096);  // the limit applies to the header too
  (void)p.feed(
      "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
  auto more = p.feed(xml);
  for (auto& ev : more)
    if (ev.kind == xmpp::StreamEvent::Kind::Stanza) return std::move(ev.stanza);
  return std::nullopt;
}

xmpp::Element rosterItemElement(const RosterItem& item) {
  xmpp::Element el("item", std::string(ns::kRoster));
  el.setAttr("jid", item.contact);
  if (item.removed) {
    el.setAttr("subscription", "remove");
    return el;
  }
  if (!item.name.empty()) el.setAttr("name", item.name);
  el.setAttr("subscription", toString(item.state.subscription));
  if (item.state.pendingOut) el.setAttr("ask", "subscribe");
  if (item.state.preApproved) el.setAttr("approved", "true");  // §3.4
  for (const auto& g : item.groups) el.addChild("group", std::string(ns::kRoster)).addText(g);
  return el;
}

xmpp::Element rosterPush(const RosterItem& item, std::uint64_t version, const std::string& id) {
  xmpp::Element iq("iq", std::string(ns::kClient));
  iq.setAttr("type", "set").setAttr("id", id);
  auto& q = iq.addChild("query", std::string(ns::kRoster));
  q.setAttr("ver", std::to_string(version));
  q.addChild(rosterItemElement(item));
  return iq;
}

}  // namespace imp::xcp::sessionutil
