#pragma once
// Namespace names used on XMPP streams (RFC 6120, RFC 6121 and the XEPs
// named next to each). One place, so a typo is a compile error, not a
// silently unmatched child.
#include <string_view>

namespace imp::xmpp::ns {

// RFC 6120
inline constexpr std::string_view kClient = "jabber:client";
inline constexpr std::string_view kServer = "jabber:server";
inline constexpr std::string_view kStreams = "http://etherx.jabber.org/streams";      // §4.8.1
inline constexpr std::string_view kStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams";  // §4.9.2
inline constexpr std::string_view kStanzaErrors = "urn:ietf:params:xml:ns:xmpp-stanzas";  // §8.3.2
inline constexpr std::string_view kTls = "urn:ietf:params:xml:ns:xmpp-tls";          // §5
inline constexpr std::string_view kSasl = "urn:ietf:params:xml:ns:xmpp-sasl";        // §6
inline constexpr std::string_view kBind = "urn:ietf:params:xml:ns:xmpp-bind";        // §7
inline constexpr std::string_view kXml = "http://www.w3.org/XML/1998/namespace";     // xml: prefix
// RFC 3921 §3 session establishment (still advertised as optional, RFC 6121 App. E)
inline constexpr std::string_view kSession = "urn:ietf:params:xml:ns:xmpp-session";
// RFC 6121
inline constexpr std::string_view kRoster = "jabber:iq:roster";
inline constexpr std::string_view kRosterVer = "urn:xmpp:features:rosterver";        // §2.6
inline constexpr std::string_view kPreApproval = "urn:xmpp:features:pre-approval";   // §3.4
// XEPs
inline constexpr std::string_view kDiscoInfo = "http://jabber.org/protocol/disco#info";    // XEP-0030
inline constexpr std::string_view kDiscoItems = "http://jabber.org/protocol/disco#items";  // XEP-0030
inline constexpr std::string_view kVersion = "jabber:iq:version";                          // XEP-0092
inline constexpr std::string_view kPing = "urn:xmpp:ping";                                 // XEP-0199
inline constexpr std::string_view kSm = "urn:xmpp:sm:3";                                   // XEP-0198
inline constexpr std::string_view kCarbons = "urn:xmpp:carbons:2";                         // XEP-0280
inline constexpr std::string_view kForward = "urn:xmpp:forward:0";                         // XEP-0297
inline constexpr std::string_view kChatStates = "http://jabber.org/protocol/chatstates";   // XEP-0085
inline constexpr std::string_view kBlocking = "urn:xmpp:blocking";                         // XEP-0191
inline constexpr std::string_view kBlockingErrors = "urn:xmpp:blocking:errors";            // XEP-0191 §3.5
inline constexpr std::string_view kStreamLimits = "urn:xmpp:stream-limits:0";              // XEP-0478
inline constexpr std::string_view kDelay = "urn:xmpp:delay";                               // XEP-0203
inline constexpr std::string_view kCaps = "http://jabber.org/protocol/caps";               // XEP-0115
inline constexpr std::string_view kReceipts = "urn:xmpp:receipts";                         // XEP-0184
inline constexpr std::string_view kHints = "urn:xmpp:hints";                               // XEP-0334
inline constexpr std::string_view kStanzaId = "urn:xmpp:sid:0";                            // XEP-0359
inline constexpr std::string_view kDataForms = "jabber:x:data";                            // XEP-0004
inline constexpr std::string_view kTlsDirect = "urn:xmpp:direct-tls:0";                    // XEP-0368 (SRV label only)

}  // namespace imp::xmpp::ns
