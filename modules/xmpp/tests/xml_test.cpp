// The element model and the escaping serializer (RFC 6120 §11).
#include <imp/xmpp/ns.h>
#include <imp/xmpp/stream.h>
#include <imp/xmpp/xml.h>

#include <doctest/doctest.h>

using imp::xmpp::Element;
namespace ns = imp::xmpp::ns;

TEST_CASE("serialize escapes & < > in text and & < > \" ' in attributes") {
  Element m("message", std::string(ns::kClient));
  m.setAttr("to", "a&b@example.com");
  m.setAttr("id", "q\"uo'te<>");
  m.addChild("body", std::string(ns::kClient)).addText("1 < 2 && 3 > 2 ]]> \"'");
  CHECK(m.serialize(ns::kClient) ==
        "<message to='a&amp;b@example.com' id='q&quot;uo&apos;te&lt;&gt;'>"
        "<body>1 &lt; 2 &amp;&amp; 3 &gt; 2 ]]&gt; \"'</body></message>");
  CHECK(imp::xmpp::escapeAttr("a\tb\nc\rd") == "a&#9;b&#10;c&#13;d");
}

TEST_CASE("xmlns is written only where the namespace differs from the parent's") {
  Element iq("iq", std::string(ns::kClient));
  iq.setAttr("type", "get");
  iq.addChild("ping", std::string(ns::kPing));
  Element& q = iq.addChild("query", std::string(ns::kRoster));
  q.addChild("item", std::string(ns::kRoster)).setAttr("jid", "b@example.com");
  CHECK(iq.serialize(ns::kClient) ==
        "<iq type='get'><ping xmlns='urn:xmpp:ping'/><query xmlns='jabber:iq:roster'>"
        "<item jid='b@example.com'/></query></iq>");
  // Standalone, the top element declares its own namespace.
  CHECK(iq.serialize().starts_with("<iq xmlns='jabber:client' type='get'>"));
}

TEST_CASE("elements of the streams namespace take the stream: prefix") {
  Element f("features", std::string(ns::kStreams));
  f.addChild("starttls", std::string(ns::kTls)).addChild("required", std::string(ns::kTls));
  f.addChild("mechanisms", std::string(ns::kSasl));
  CHECK(f.serialize(ns::kClient) ==
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
        "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:features>");
  Element standalone("error", std::string(ns::kStreams));
  CHECK(standalone.serialize() == "<stream:error xmlns:stream='http://etherx.jabber.org/streams'/>");
}

TEST_CASE("xml:lang and other qualified attributes") {
  Element b("body", std::string(ns::kClient));
  b.setAttrNs("lang", ns::kXml, "xml", "de");
  b.setAttrNs("x", "urn:example:a", "ex", "1");
  CHECK(b.serialize(ns::kClient) == "<body xmlns:ex='urn:example:a' xml:lang='de' ex:x='1'/>");
  CHECK(*b.attrNs("lang", ns::kXml) == "de");
  CHECK_FALSE(b.attr("lang"));
}

TEST_CASE("accessors: attr, setAttr in place, child, children, text") {
  Element m("message", std::string(ns::kClient));
  m.setAttr("type", "chat").setAttr("to", "x@y");
  m.setAttr("type", "normal");
  REQUIRE(m.attributes().size() == 2);
  CHECK(m.attributes()[0].name == "type");
  CHECK(*m.attr("type") == "normal");
  CHECK(m.attrOr("from", "none") == "none");
  m.addChild("body", std::string(ns::kClient)).addText("hel").addText("lo");
  m.addChild("active", std::string(ns::kChatStates));
  m.addChild("body", std::string(ns::kClient)).addText("second");
  REQUIRE(m.child("body"));
  CHECK(m.child("body")->text() == "hello");
  CHECK(m.child("body")->nodes().size() == 1);  // adjacent text merged
  CHECK(m.child("active", ns::kChatStates));
  CHECK_FALSE(m.child("active"));  // not in jabber:client
  CHECK(m.children("body").size() == 2);
  CHECK(m.children({}, ns::kChatStates).size() == 1);
  CHECK(m.children().size() == 3);
  CHECK(*m.childText("body") == "hello");
  CHECK(m.removeChildren("body", ns::kClient) == 2);
  CHECK(m.children().size() == 1);
  CHECK(m.removeAttr("to"));
  CHECK_FALSE(m.removeAttr("to"));
}

TEST_CASE("copies are deep and compare equal") {
  Element a("iq", std::string(ns::kClient));
  a.addChild("query", std::string(ns::kRoster)).addChild("item", std::string(ns::kRoster)).setAttr("jid", "x@y");
  Element b = a;
  CHECK(a == b);
  b.child("query", ns::kRoster)->child("item")->setAttr("jid", "z@y");
  CHECK_FALSE(a == b);
  CHECK(*a.child("query", ns::kRoster)->child("item")->attr("jid") == "x@y");
}

TEST_CASE("stream framing: header, close, stream errors (RFC 6120 §4.7, §4.9)") {
  imp::xmpp::StreamHeaderOut h;
  h.from = "example.com";
  h.to = "juliet@example.com";
  h.id = "abc";
  CHECK(imp::xmpp::streamHeader(h) ==
        "<?xml version='1.0'?><stream:stream from='example.com' to='juliet@example.com' id='abc' version='1.0' "
        "xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
  CHECK(imp::xmpp::streamClose() == "</stream:stream>");
  using C = imp::xmpp::StreamErrorCondition;
  CHECK(imp::xmpp::streamError(C::NotWellFormed) ==
        "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
  CHECK(imp::xmpp::streamError(C::PolicyViolation, "stanza > 10240 & more") ==
        "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>stanza &gt; 10240 &amp; more</text>"
        "</stream:error>");
  CHECK(imp::xmpp::streamError(C::SeeOtherHost, "node-b.example.com:5222") ==
        "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>node-b.example.com:5222"
        "</see-other-host></stream:error>");
}

TEST_CASE("stream error names round-trip through the enum (RFC 6120 §4.9.3)") {
  using imp::xmpp::StreamErrorCondition;
  for (std::size_t i = 0; i < imp::xmpp::kStreamErrorConditionCount; ++i) {
    auto c = static_cast<StreamErrorCondition>(i);
    auto back = imp::xmpp::streamErrorFromName(imp::xmpp::streamErrorName(c));
    REQUIRE(back);
    CHECK(*back == c);
  }
  CHECK(imp::xmpp::streamErrorName(StreamErrorCondition::RestrictedXml) == "restricted-xml");
  CHECK(imp::xmpp::streamErrorName(StreamErrorCondition::UnsupportedVersion) == "unsupported-version");
  CHECK(imp::xmpp::streamErrorName(StreamErrorCondition::BadFormat) == "bad-format");
  CHECK_FALSE(imp::xmpp::streamErrorFromName("no-such-condition"));
}
