#pragma once
// PIDF (RFC 3863) with RPID (RFC 4480) as Lync and SIMPLE servers send it in
// NOTIFY bodies, and as IMP publishes it (AV-4, AV-5; MICROSOFT-SIP.md,
// Presence). Parsing is defensive: the body is untrusted input. Pure
// functions, any thread.
#include <imp/federation_cm/availability.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace imp::fcm {

inline constexpr std::string_view kPidfNs = "urn:ietf:params:xml:ns:pidf";
inline constexpr std::string_view kCpimPidfNs = "urn:ietf:params:xml:ns:cpim-pidf";  // pre-RFC 3863 drafts
inline constexpr std::string_view kRpidNs = "urn:ietf:params:xml:ns:pidf:rpid";
inline constexpr std::string_view kDataModelNs = "urn:ietf:params:xml:ns:pidf:data-model";
inline constexpr std::size_t kMaxPidfBytes = 64 * 1024;

// True for application/pidf+xml and application/cpim-pidf+xml (parameters
// ignored): both carry the same format (RFC 3863 §4, RFC 3862).
bool isPidfContentType(std::string_view contentType);

// The presence a PIDF document states, or nullopt with the reason in *why:
// over kMaxPidfBytes, malformed XML, a DTD or entity declaration, a root
// other than <presence> in the PIDF namespace (or the cpim-pidf one).
// Namespaces are matched by URI, never by prefix. Read:
//  - open: <status><basic> of the first <tuple> that has one ("open" ->
//    true; anything else or none -> false);
//  - activities: the local names of the children of every RPID <activities>
//    element, wherever it is (person, tuple), in document order;
//  - note: the first non-empty <note> in the PIDF or data-model namespace at
//    presence, tuple or person level, trimmed;
//  - availability: the first element with local name "availability" in any
//    namespace whose trimmed text is a decimal number 0..999999 (Lync adds
//    its availability number in its own elements).
// Everything else is ignored. On success `known` is true.
std::optional<MicrosoftPresence> parsePidf(std::string_view body, std::string* why = nullptr);

// A PIDF document for `entity` ("sip:ann@example.com"): one tuple with
// <basic> open (closed when the state is Offline or AppearOffline), then
// `note` at presence level (escaped; omitted when empty), then a data-model
// <person> whose RPID <activities> holds the rpidActivity (none when it is ""
// or not a lower-case RPID-style name). UTF-8, no
// <contact> (the tuple is not reachable by itself). The entity is escaped.
std::string buildPidf(std::string_view entity, const LyncAvailability& availability, std::string_view note);

}  // namespace imp::fcm
