#pragma once
// Helpers of the session manager's files (session*.cpp): stored stanzas
// back into elements, roster items into <item/> (RFC 6121 §2.1.2).
#include <imp/xmpp/xml.h>

#include <cstdint>
#include <optional>
#include <string>

#include "imp/xcp_router/roster_store.h"

namespace imp::xcp::sessionutil {

// A stanza serialized in the jabber:client namespace (what OfflineStore
// keeps) parsed back; nullopt when it is not one complete element.
std::optional<xmpp::Element> parseStanza(const std::string& xml);

// <item jid name subscription [ask] [approved]><group/>...</item>; a
// removed item is subscription='remove' (§2.5.2).
xmpp::Element rosterItemElement(const RosterItem& item);

// <iq type='set' id=...><query xmlns='jabber:iq:roster' ver=...>item</query></iq>
// (a roster push, §2.1.6).
xmpp::Element rosterPush(const RosterItem& item, std::uint64_t version, const std::string& id);

}  // namespace imp::xcp::sessionutil
