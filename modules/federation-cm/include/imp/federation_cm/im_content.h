#pragma once
// IM bodies between Lync / SIP peers and XMPP (IM-1, IM-2): which SIP MESSAGE
// bodies become XMPP text, and the INVITE's ms-text-format header
// (MICROSOFT-SIP.md, Instant messaging). Text passes through unchanged —
// emoticons like ":-)" and any non-ASCII stay as they are. Pure functions,
// any thread; bodies are untrusted.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace imp::fcm {

struct ImText {
  std::string text;  // valid UTF-8
};
// A body this layer does not turn into text: the caller answers 415 (IM-1).
struct Unsupported {
  std::string why;
};
using DecodedBody = std::variant<ImText, Unsupported>;

inline constexpr std::size_t kMaxImBodyBytes = 256 * 1024;

// The text of a SIP IM body:
//  - text/plain: charset UTF-8 (any case, "utf8" too), US-ASCII, or absent;
//    other parameters (Lync's msgr= formatting hints) ignored; the body must
//    be valid UTF-8 (ASCII for US-ASCII), else Unsupported;
//  - text/html: htmlToText() of the body, same charset rule;
//  - multipart/alternative (RFC 2046 §5.1): the boundary parameter must be
//    1..70 characters; the body needs a first delimiter and a close
//    delimiter. The first text/plain part that decodes wins, else the first
//    text/html one. Parts without Content-Type are text/plain (RFC 2046
//    §5.1). Part Content-Transfer-Encoding 7bit/8bit/binary is taken as is,
//    base64 decoded (canonical, line breaks allowed), any other is skipped.
//    Nested multipart/alternative is followed, three levels deep;
//  - anything else, an unparsable Content-Type, or a body over
//    kMaxImBodyBytes -> Unsupported with the reason.
DecodedBody decodeBody(std::string_view contentType, std::string_view body);

// Text from an HTML fragment: tags removed; <br> (any form) -> "\n"; the
// ends of <p>, <div> and <li> -> "\n" (a trailing one dropped); comments and
// the contents of <script>/<style>/<head> removed; &lt; &gt; &amp; &quot;
// &apos; &nbsp; (as a space) and numeric references (&#NNN; &#xHH;) decoded,
// other entities and invalid references left as written. No white-space
// collapsing: what the user typed stays.
std::string htmlToText(std::string_view html);

// RFC 3629: well-formed UTF-8 (no overlongs, surrogates or code points
// above U+10FFFF).
bool validUtf8(std::string_view s);

// The INVITE header `ms-text-format: text/plain; charset=UTF-8;msgr=...;
// ms-body=<base64>`: the content type (the header's value without ms-body,
// e.g. "text/plain; charset=UTF-8; msgr=...") and the decoded body, for
// decodeBody(). nullopt when the value does not parse, has no ms-body, or the
// base64 is not canonical padded base64.
std::optional<std::pair<std::string, std::string>> parseMsTextFormat(std::string_view headerValue);

// "text/plain; charset=UTF-8;ms-body=<base64 of text>".
std::string buildMsTextFormat(std::string_view text);

}  // namespace imp::fcm
