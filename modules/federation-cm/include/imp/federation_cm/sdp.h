#pragma once
// The SDP of session-mode IM (IM-2; MICROSOFT-SIP.md, Instant messaging):
// Lync's INVITE offers `m=message 5060 sip null` (older peers
// `m=x-ms-message`), and no RTP is ever negotiated. Pure functions.
#include <string>
#include <string_view>

namespace imp::fcm {

inline constexpr std::string_view kImAcceptTypes =
    "text/plain text/html multipart/alternative application/im-iscomposing+xml application/ms-imdn+xml";

// True when `sdp` has a media line for IM: a line "m=message ..." or
// "m=x-ms-message ..." (any port, including 0, and any protocol). Lines may
// end in CRLF or LF. An INVITE without one is answered 488 by the caller.
bool offersMessageMedia(std::string_view sdp);

// The offer IMP sends in its INVITE (CRLF lines):
//   v=0 / o=- 0 0 IN IP4 <host> / s=session / c=IN IP4 <host> / t=0 0 /
//   m=message 5060 sip null / a=accept-types:<kImAcceptTypes>
// IP6 instead of IP4 when `host` contains ':' (an IPv6 literal, without
// brackets).
std::string buildImOffer(std::string_view host);

// The answer to `offer`: the same lines as buildImOffer(host), but the media
// line uses the media name of the offer's first IM media line (message or
// x-ms-message). "" when the offer has no IM media line.
std::string buildImAnswer(std::string_view offer, std::string_view host);

}  // namespace imp::fcm
