// Stanza kinds and stanza errors (RFC 6120 §8).
#include <imp/xmpp/ns.h>
#include <imp/xmpp/stanza.h>

#include <array>

namespace imp::xmpp {
namespace {

struct ConditionInfo {
  std::string_view name;
  StanzaErrorType type;  // the type §8.3.3 shows for the condition
};

// In enum order.
constexpr std::array<ConditionInfo, 22> kConditions = {{
    {"bad-request", StanzaErrorType::Modify},
    {"conflict", StanzaErrorType::Cancel},
    {"feature-not-implemented", StanzaErrorType::Cancel},
    {"forbidden", StanzaErrorType::Auth},
    {"gone", StanzaErrorType::Cancel},
    {"internal-server-error", StanzaErrorType::Cancel},
    {"item-not-found", StanzaErrorType::Cancel},
    {"jid-malformed", StanzaErrorType::Modify},
    {"not-acceptable", StanzaErrorType::Modify},
    {"not-allowed", StanzaErrorType::Cancel},
    {"not-authorized", StanzaErrorType::Auth},
    {"policy-violation", StanzaErrorType::Modify},
    {"recipient-unavailable", StanzaErrorType::Wait},
    {"redirect", StanzaErrorType::Modify},
    {"registration-required", StanzaErrorType::Auth},
    {"remote-server-not-found", StanzaErrorType::Cancel},
    {"remote-server-timeout", StanzaErrorType::Wait},
    {"resource-constraint", StanzaErrorType::Wait},
    {"service-unavailable", StanzaErrorType::Cancel},
    {"subscription-required", StanzaErrorType::Auth},
    {"undefined-condition", StanzaErrorType::Cancel},
    {"unexpected-request", StanzaErrorType::Wait},
}};
static_assert(static_cast<std::size_t>(StanzaErrorCondition::UnexpectedRequest) + 1 == kConditions.size());

constexpr std::array<std::string_view, 5> kTypes = {"auth", "cancel", "continue", "modify", "wait"};

bool isStanzaNs(std::string_view n) { return n == ns::kClient || n == ns::kServer; }

}  // namespace

StanzaKind stanzaKind(const Element& e) {
  if (!isStanzaNs(e.ns())) return StanzaKind::Other;
  if (e.name() == "message") return StanzaKind::Message;
  if (e.name() == "presence") return StanzaKind::Presence;
  if (e.name() == "iq") return StanzaKind::Iq;
  return StanzaKind::Other;
}

std::string_view stanzaKindName(StanzaKind k) {
  switch (k) {
    case StanzaKind::Message: return "message";
    case StanzaKind::Presence: return "presence";
    case StanzaKind::Iq: return "iq";
    case StanzaKind::Other: break;
  }
  return "other";
}

std::string_view stanzaErrorName(StanzaErrorCondition c) {
  auto i = static_cast<std::size_t>(c);
  return i < kConditions.size() ? kConditions[i].name : std::string_view("undefined-condition");
}

std::optional<StanzaErrorCondition> stanzaErrorFromName(std::string_view name) {
  for (std::size_t i = 0; i < kConditions.size(); ++i)
    if (kConditions[i].name == name) return static_cast<StanzaErrorCondition>(i);
  return std::nullopt;
}

std::string_view stanzaErrorTypeName(StanzaErrorType t) {
  auto i = static_cast<std::size_t>(t);
  return i < kTypes.size() ? kTypes[i] : std::string_view("cancel");
}

std::optional<StanzaErrorType> stanzaErrorTypeFromName(std::string_view name) {
  for (std::size_t i = 0; i < kTypes.size(); ++i)
    if (kTypes[i] == name) return static_cast<StanzaErrorType>(i);
  return std::nullopt;
}

StanzaErrorType defaultErrorType(StanzaErrorCondition c) {
  auto i = static_cast<std::size_t>(c);
  return i < kConditions.size() ? kConditions[i].type : StanzaErrorType::Cancel;
}

bool isErrorStanza(const Element& stanza) { return stanza.attrOr("type", {}) == "error"; }

Element makeError(const Element& stanza, StanzaErrorCondition condition, StanzaErrorType type,
                  const ErrorOptions& options) {
  Element out(stanza.name(), stanza.ns());
  // §8.3.1: 'from' of the error is the original 'to' and vice versa; the
  // id is kept so the sender can match the answer.
  if (auto to = stanza.attr("to")) out.setAttr("from", *to);
  if (auto from = stanza.attr("from")) out.setAttr("to", *from);
  if (auto id = stanza.attr("id")) out.setAttr("id", *id);
  out.setAttr("type", "error");
  if (auto lang = stanza.attrNs("lang", ns::kXml)) out.setAttrNs("lang", ns::kXml, "xml", *lang);
  if (options.includeOriginal) {
    for (const auto& n : stanza.nodes()) {
      // An earlier <error/> child is not part of the payload.
      if (n.isElement() && n.element().name() == "error" && n.element().ns() == stanza.ns()) continue;
      out.nodes().push_back(n);
    }
  }
  Element& err = out.addChild("error", stanza.ns());
  err.setAttr("type", stanzaErrorTypeName(type));
  if (!options.by.empty()) err.setAttr("by", options.by);
  Element& cond = err.addChild(std::string(stanzaErrorName(condition)), std::string(ns::kStanzaErrors));
  if ((condition == StanzaErrorCondition::Gone || condition == StanzaErrorCondition::Redirect) &&
      !options.redirectTarget.empty())
    cond.addText(options.redirectTarget);
  if (!options.text.empty()) {
    Element& text = err.addChild("text", std::string(ns::kStanzaErrors));
    if (!options.lang.empty()) text.setAttrNs("lang", ns::kXml, "xml", options.lang);
    text.addText(options.text);
  }
  if (options.appCondition) err.addChild(*options.appCondition);
  return out;
}

Element makeError(const Element& stanza, StanzaErrorCondition condition, std::string_view text) {
  ErrorOptions o;
  o.text = std::string(text);
  return makeError(stanza, condition, defaultErrorType(condition), o);
}

std::optional<ParsedStanzaError> parseStanzaError(const Element& stanza) {
  if (!isErrorStanza(stanza)) return std::nullopt;
  const Element* err = stanza.child("error", stanza.ns());
  if (!err) return std::nullopt;
  ParsedStanzaError out;
  if (auto t = stanzaErrorTypeFromName(err->attrOr("type", {}))) out.type = *t;
  bool found = false;
  for (const Element* c : err->children({}, ns::kStanzaErrors)) {
    if (c->name() == "text") {
      out.text = c->text();
    } else if (!found) {
      if (auto cond = stanzaErrorFromName(c->name())) {
        out.condition = *cond;
        found = true;
      }
    }
  }
  if (!found) return std::nullopt;
  return out;
}

Element makeIqResult(const Element& request) {
  Element out("iq", request.ns());
  if (auto to = request.attr("to")) out.setAttr("from", *to);
  if (auto from = request.attr("from")) out.setAttr("to", *from);
  if (auto id = request.attr("id")) out.setAttr("id", *id);
  out.setAttr("type", "result");
  return out;
}

}  // namespace imp::xmpp
