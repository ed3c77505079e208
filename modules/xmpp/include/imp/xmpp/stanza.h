#pragma once
// Stanza helpers over the element model (RFC 6120 §8): the kind of a
// top-level element, its addressing attributes, and stanza errors (§8.3).
#include <imp/xmpp/xml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace imp::xmpp {

enum class StanzaKind : std::uint8_t { Message, Presence, Iq, Other };

// Message/Presence/Iq for those names in jabber:client or jabber:server
// (RFC 6120 §8), Other for anything else (stream features, SASL, SM, ...).
StanzaKind stanzaKind(const Element& e);
std::string_view stanzaKindName(StanzaKind k);  // "message", "presence", "iq", "other"

// Accessors of the common attributes (§8.1.1-8.1.5); empty when absent.
inline std::string_view stanzaTo(const Element& e) { return e.attrOr("to", {}); }
inline std::string_view stanzaFrom(const Element& e) { return e.attrOr("from", {}); }
inline std::string_view stanzaId(const Element& e) { return e.attrOr("id", {}); }
inline std::string_view stanzaType(const Element& e) { return e.attrOr("type", {}); }

// Defined conditions of stanza errors (RFC 6120 §8.3.3).
enum class StanzaErrorCondition : std::uint8_t {
  BadRequest,             // §8.3.3.1
  Conflict,               // §8.3.3.2
  FeatureNotImplemented,  // §8.3.3.3
  Forbidden,              // §8.3.3.4
  Gone,                   // §8.3.3.5 (the element's text is the new address)
  InternalServerError,    // §8.3.3.6
  ItemNotFound,           // §8.3.3.7
  JidMalformed,           // §8.3.3.8
  NotAcceptable,          // §8.3.3.9
  NotAllowed,             // §8.3.3.10
  NotAuthorized,          // §8.3.3.11
  PolicyViolation,        // §8.3.3.12
  RecipientUnavailable,   // §8.3.3.13
  Redirect,               // §8.3.3.14 (the element's text is the new address)
  RegistrationRequired,   // §8.3.3.15
  RemoteServerNotFound,   // §8.3.3.16
  RemoteServerTimeout,    // §8.3.3.17
  ResourceConstraint,     // §8.3.3.18
  ServiceUnavailable,     // §8.3.3.19
  SubscriptionRequired,   // §8.3.3.20
  UndefinedCondition,     // §8.3.3.21
  UnexpectedRequest,      // §8.3.3.22
};

// Error types (§8.3.2).
enum class StanzaErrorType : std::uint8_t { Auth, Cancel, Continue, Modify, Wait };

std::string_view stanzaErrorName(StanzaErrorCondition c);  // "item-not-found", ...
std::optional<StanzaErrorCondition> stanzaErrorFromName(std::string_view name);
std::string_view stanzaErrorTypeName(StanzaErrorType t);   // "cancel", ...
std::optional<StanzaErrorType> stanzaErrorTypeFromName(std::string_view name);
// The type RFC 6120 §8.3.3 gives as the usual one for each condition.
StanzaErrorType defaultErrorType(StanzaErrorCondition c);

struct ErrorOptions {
  std::string text;              // <text xml:lang='en'> when non-empty
  std::string lang = "en";
  std::string by;                // the 'by' attribute (§8.3.2) when non-empty
  std::string redirectTarget;    // the XML character data of <gone/> / <redirect/>
  std::optional<Element> appCondition;  // application-specific condition element
  bool includeOriginal = true;   // copy the original's children (§8.3.1, "MAY include")
};

// The error stanza answering `stanza` (RFC 6120 §8.3.1): the same kind and
// id, type='error', 'to' and 'from' swapped (each only if present), the
// original payload (when includeOriginal), then
// <error type='...'><condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
// [<text/>]</error>. Never call it for a stanza of type 'error' (§8.3.1:
// an entity MUST NOT answer an error with an error); isErrorStanza() tells.
Element makeError(const Element& stanza, StanzaErrorCondition condition, StanzaErrorType type,
                  const ErrorOptions& options = {});
// The same with the condition's default type and an optional text.
Element makeError(const Element& stanza, StanzaErrorCondition condition, std::string_view text = {});
bool isErrorStanza(const Element& stanza);

// The condition of a received error stanza, if it carries a defined one.
struct ParsedStanzaError {
  StanzaErrorType type = StanzaErrorType::Cancel;
  StanzaErrorCondition condition = StanzaErrorCondition::UndefinedCondition;
  std::string text;
};
std::optional<ParsedStanzaError> parseStanzaError(const Element& stanza);

// An <iq type='result'/> answering `request`: same id, to/from swapped.
Element makeIqResult(const Element& request);

}  // namespace imp::xmpp
