#pragma once
// Request validation before routing (RFC 3261 §16.3 steps 1, 2 and 5;
// §8.2.2): what a proxy must refuse before it looks at routes. The parser
// has already checked the syntax of the headers it reads (Via, From, To,
// CSeq, Call-ID, Max-Forwards, Content-Length) and that the CSeq method is
// the request method; these checks add what a parsed message can still
// lack:
//  - the mandatory header fields Via, To, From, Call-ID and CSeq (400 naming
//    each missing one; Max-Forwards may be absent: a proxy adds 70, §16.6
//    step 3, so RFC 2543 peers still get through);
//  - single-value header fields given more than once (400 naming them);
//  - a Request-URI scheme the proxy cannot route (416; sip and sips only);
//  - Proxy-Require options (420 with Unsupported listing them: this proxy
//    implements no proxy-required extension).
// Pure functions of the message; thread-safe.
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace imp::sip {
class Message;
}

namespace imp::sip_proxy {

struct RequestRejection {
  int status = 400;
  std::string reason;  // the reason phrase: names the header or the option
  std::vector<std::pair<std::string, std::string>> headers;  // added to the response (Unsupported)
};

// Steps 1 and 2: syntax beyond the parser's and the URI scheme.
std::optional<RequestRejection> checkRequestSyntax(const sip::Message& request);
// Step 5: Proxy-Require.
std::optional<RequestRejection> checkProxyRequire(const sip::Message& request);

}  // namespace imp::sip_proxy
