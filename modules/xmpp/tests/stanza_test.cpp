// Stanza kinds and stanza errors (RFC 6120 §8.3).
#include <imp/xmpp/ns.h>
#include <imp/xmpp/stanza.h>

#include <doctest/doctest.h>

using namespace imp::xmpp;

TEST_CASE("stanzaKind: message/presence/iq in jabber:client or jabber:server") {
  CHECK(stanzaKind(Element("message", std::string(ns::kClient))) == StanzaKind::Message);
  CHECK(stanzaKind(Element("presence", std::string(ns::kServer))) == StanzaKind::Presence);
  CHECK(stanzaKind(Element("iq", std::string(ns::kClient))) == StanzaKind::Iq);
  CHECK(stanzaKind(Element("iq", "urn:other")) == StanzaKind::Other);
  CHECK(stanzaKind(Element("auth", std::string(ns::kSasl))) == StanzaKind::Other);
  CHECK(stanzaKindName(StanzaKind::Presence) == "presence");
}

TEST_CASE("makeError: swapped addresses, same id, payload, condition (RFC 6120 §8.3.1)") {
  Element iq("iq", std::string(ns::kClient));
  iq.setAttr("from", "juliet@example.com/balcony").setAttr("to", "romeo@example.net").setAttr("id", "r1");
  iq.setAttr("type", "set");
  iq.addChild("query", std::string(ns::kRoster));
  Element e = makeError(iq, StanzaErrorCondition::ServiceUnavailable);
  CHECK(e.serialize(ns::kClient) ==
        "<iq from='romeo@example.net' to='juliet@example.com/balcony' id='r1' type='error'>"
        "<query xmlns='jabber:iq:roster'/>"
        "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
  CHECK(isErrorStanza(e));

  Element m("message", std::string(ns::kClient));
  m.setAttr("to", "nobody@example.com").setAttr("type", "chat");
  m.addChild("body", std::string(ns::kClient)).addText("hi");
  ErrorOptions o;
  o.text = "no such user";
  o.includeOriginal = false;
  o.by = "example.com";
  Element me = makeError(m, StanzaErrorCondition::ItemNotFound, StanzaErrorType::Cancel, o);
  CHECK(me.serialize(ns::kClient) ==
        "<message from='nobody@example.com' type='error'><error type='cancel' by='example.com'>"
        "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>no such user</text></error></message>");

  auto parsed = parseStanzaError(me);
  REQUIRE(parsed);
  CHECK(parsed->condition == StanzaErrorCondition::ItemNotFound);
  CHECK(parsed->type == StanzaErrorType::Cancel);
  CHECK(parsed->text == "no such user");
  CHECK_FALSE(parseStanzaError(m));
}

TEST_CASE("redirect/gone carry the new address; default types follow RFC 6120 §8.3.3") {
  Element p("presence", std::string(ns::kClient));
  p.setAttr("to", "old@example.com");
  ErrorOptions o;
  o.redirectTarget = "xmpp:new@example.com";
  Element e = makeError(p, StanzaErrorCondition::Gone, StanzaErrorType::Cancel, o);
  CHECK(e.serialize(ns::kClient) ==
        "<presence from='old@example.com' type='error'><error type='cancel'>"
        "<gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>xmpp:new@example.com</gone></error></presence>");
  CHECK(defaultErrorType(StanzaErrorCondition::BadRequest) == StanzaErrorType::Modify);
  CHECK(defaultErrorType(StanzaErrorCondition::Forbidden) == StanzaErrorType::Auth);
  CHECK(defaultErrorType(StanzaErrorCondition::ResourceConstraint) == StanzaErrorType::Wait);
  CHECK(stanzaErrorName(StanzaErrorCondition::FeatureNotImplemented) == "feature-not-implemented");
  CHECK(stanzaErrorFromName("policy-violation") == StanzaErrorCondition::PolicyViolation);
  CHECK(stanzaErrorTypeFromName("continue") == StanzaErrorType::Continue);
  CHECK_FALSE(stanzaErrorFromName("nope"));
}

TEST_CASE("makeIqResult answers with the same id and swapped addresses") {
  Element iq("iq", std::string(ns::kClient));
  iq.setAttr("from", "a@b/c").setAttr("id", "p1").setAttr("type", "get");
  iq.addChild("ping", std::string(ns::kPing));
  CHECK(makeIqResult(iq).serialize(ns::kClient) == "<iq to='a@b/c' id='p1' type='result'/>");
}
