#pragma once
// Writing the stream's own framing (RFC 6120 §4): the opening header, the
// closing tag and stream errors. Stanzas are written with Element::serialize(
// ns::kClient) between them.
#include <imp/xmpp/stream_error.h>

#include <string>
#include <string_view>

namespace imp::xmpp {

struct StreamHeaderOut {
  std::string from;              // the server's domain (§4.7.1)
  std::string to;                // the peer's address when known (§4.7.2)
  std::string id;                // fresh per stream (§4.7.3); empty = omitted
  std::string lang = "en";       // xml:lang (§4.7.4)
  std::string contentNs = "jabber:client";  // default namespace (§4.8.2)
  bool xmlDeclaration = true;    // <?xml version='1.0'?> first (§11.5)
};

// <?xml version='1.0'?><stream:stream from=... to=... id=... version='1.0'
// xml:lang=... xmlns=... xmlns:stream='http://etherx.jabber.org/streams'>
std::string streamHeader(const StreamHeaderOut& h);
// </stream:stream>
std::string_view streamClose();
// <stream:error><condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>
// [<text xmlns=... xml:lang='en'>text</text>]</stream:error> (§4.9.2). For
// see-other-host the text is the new host[:port] and goes inside the
// condition element (§4.9.3.19), not into <text/>.
std::string streamError(StreamErrorCondition condition, std::string_view text = {});

}  // namespace imp::xmpp
