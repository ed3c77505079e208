// The stream's framing on the wire (RFC 6120 §4.7, §4.9).
#include <imp/xmpp/ns.h>
#include <imp/xmpp/stream.h>
#include <imp/xmpp/xml.h>

namespace imp::xmpp {
namespace {

void attr(std::string& out, std::string_view name, std::string_view value) {
  out += ' ';
  out += name;
  out += "='";
  appendEscapedAttr(out, value);
  out += '\'';
}

}  // namespace

std::string streamHeader(const StreamHeaderOut& h) {
  std::string out;
  if (h.xmlDeclaration) out += "<?xml version='1.0'?>";
  out += "<stream:stream";
  if (!h.from.empty()) attr(out, "from", h.from);
  if (!h.to.empty()) attr(out, "to", h.to);
  if (!h.id.empty()) attr(out, "id", h.id);
  attr(out, "version", "1.0");
  if (!h.lang.empty()) attr(out, "xml:lang", h.lang);
  attr(out, "xmlns", h.contentNs);
  attr(out, "xmlns:stream", ns::kStreams);
  out += '>';
  return out;
}

std::string_view streamClose() { return "</stream:stream>"; }

std::string streamError(StreamErrorCondition condition, std::string_view text) {
  std::string out = "<stream:error><";
  out += streamErrorName(condition);
  attr(out, "xmlns", ns::kStreamErrors);
  if (condition == StreamErrorCondition::SeeOtherHost) {
    // §4.9.3.19: the new host[:port] is the condition element's character data.
    out += '>';
    appendEscapedText(out, text);
    out += "</see-other-host>";
  } else {
    out += "/>";
    if (!text.empty()) {
      out += "<text";
      attr(out, "xmlns", ns::kStreamErrors);
      attr(out, "xml:lang", "en");
      out += '>';
      appendEscapedText(out, text);
      out += "</text>";
    }
  }
  out += "</stream:error>";
  return out;
}

}  // namespace imp::xmpp
