#include <imp/federation_cm/typing.h>

#include <imp/federation_cm/media_type.h>

#include "xml_doc.h"

namespace imp::fcm {

namespace {

// Typing bodies are a few hundred bytes; a small cap keeps junk cheap.
constexpr detail::XmlLimits kTypingLimits{.maxBytes = 8 * 1024, .maxDepth = 8, .maxElements = 64};

std::optional<Typing> refuse(std::string* why, std::string reason) {
  if (why) *why = std::move(reason);
  return std::nullopt;
}

}  // namespace

std::optional<Typing> parseKeyboardActivity(std::string_view body, std::string* why) {
  auto root = detail::parseXml(body, why, kTypingLimits);
  if (!root) return std::nullopt;
  if (root->name != "KeyboardActivity") return refuse(why, "root element is <" + root->name + ">, not <KeyboardActivity>");
  const detail::XmlNode* status = root->child(root->ns, "status");
  if (!status) return refuse(why, "<KeyboardActivity> without <status>");
  const std::string* value = status->attr("status");
  if (!value) return refuse(why, "<status> without a status attribute");
  if (*value == "type") return Typing::Active;
  if (*value == "idle") return Typing::Idle;
  return refuse(why, "unknown KeyboardActivity status '" + *value + "'");
}

std::string buildKeyboardActivity(Typing typing) {
  return std::string("<?xml version=\"1.0\"?><KeyboardActivity><status status=\"") +
         (typing == Typing::Active ? "type" : "idle") + "\" /></KeyboardActivity>";
}

std::optional<Typing> parseIsComposing(std::string_view body, std::string* why) {
  auto root = detail::parseXml(body, why, kTypingLimits);
  if (!root) return std::nullopt;
  if (root->name != "isComposing" || root->ns != kIsComposingNs)
    return refuse(why, "root element is {" + root->ns + "}" + root->name + ", not an RFC 3994 <isComposing>");
  const detail::XmlNode* state = root->child(kIsComposingNs, "state");
  if (!state) return refuse(why, "<isComposing> without <state>");
  auto s = detail::trimXmlSpace(state->text);
  if (s == "active") return Typing::Active;
  if (s == "idle") return Typing::Idle;
  return refuse(why, "unknown isComposing state '" + std::string(s) + "'");
}

std::string buildIsComposing(Typing typing, int refreshSeconds) {
  std::string out =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
      "<isComposing xmlns=\"urn:ietf:params:xml:ns:im-iscomposing\">";
  out += typing == Typing::Active ? "<state>active</state>" : "<state>idle</state>";
  out += "<contenttype>text/plain</contenttype>";
  if (typing == Typing::Active && refreshSeconds > 0) out += "<refresh>" + std::to_string(refreshSeconds) + "</refresh>";
  out += "</isComposing>\r\n";
  return out;
}

std::optional<Typing> parseTypingBody(std::string_view contentType, std::string_view body, std::string* why) {
  auto m = parseMediaType(contentType);
  if (m && m->is(kIsComposingContentType)) return parseIsComposing(body, why);
  if (m && m->is(kKeyboardActivityContentType)) return parseKeyboardActivity(body, why);
  return refuse(why, "not a typing body: Content-Type '" + std::string(contentType) + "'");
}

std::string_view chatStateFor(Typing typing) { return typing == Typing::Active ? "composing" : "paused"; }

std::optional<Typing> typingFor(std::string_view chatState) {
  if (chatState == "composing") return Typing::Active;
  if (chatState == "paused" || chatState == "active" || chatState == "inactive" || chatState == "gone")
    return Typing::Idle;
  return std::nullopt;
}

}  // namespace imp::fcm
