// The XML stream parser: events, split feeding, namespaces, restricted XML
// (RFC 6120 §11.1), stream errors (§4.9.3) and the stanza size limit.
#include <imp/xmpp/ns.h>
#include <imp/xmpp/stream_parser.h>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace imp::xmpp;
using Kind = StreamEvent::Kind;
using C = StreamErrorCondition;

namespace {

const std::string kHeader =
    "<stream:stream to='example.com' version='1.0' xml:lang='en' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams'>";

std::vector<StreamEvent> all(StreamParser& p, std::string_view s) { return p.feed(s); }

std::vector<StreamEvent> byteByByte(StreamParser& p, std::string_view s) {
  std::vector<StreamEvent> out;
  for (char c : s) {
    auto ev = p.feed(&c, 1);
    for (auto& e : ev) out.push_back(std::move(e));
  }
  return out;
}

bool sameEvents(const std::vector<StreamEvent>& a, const std::vector<StreamEvent>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto &x = a[i], &y = b[i];
    if (x.kind != y.kind) return false;
    switch (x.kind) {
      case Kind::Opened:
        if (x.header.to != y.header.to || x.header.from != y.header.from || x.header.version != y.header.version ||
            x.header.lang != y.header.lang || x.header.namespaces != y.header.namespaces)
          return false;
        break;
      case Kind::Stanza:
        if (!(x.stanza == y.stanza)) return false;
        break;
      case Kind::Error:
        if (x.error != y.error) return false;
        break;
      case Kind::Closed:
        break;
    }
  }
  return true;
}

// The error that ends `input` fed in one piece, and the same byte by byte.
C errorOf(std::string_view input, std::string* text = nullptr) {
  StreamParser whole;
  auto ev = all(whole, input);
  REQUIRE_FALSE(ev.empty());
  REQUIRE(ev.back().kind == Kind::Error);
  CHECK(whole.failed());
  StreamParser split;
  auto ev2 = byteByByte(split, input);
  REQUIRE_FALSE(ev2.empty());
  REQUIRE(ev2.back().kind == Kind::Error);
  CHECK(ev2.back().error == ev.back().error);
  if (text) *text = ev.back().text;
  return ev.back().error;
}

std::string readFile(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string messageOfSize(std::size_t total) {
  // <message><body>xxx</body></message>: 34 octets of markup.
  const std::string open = "<message><body>", close = "</body></message>";
  REQUIRE(total >= open.size() + close.size());
  return open + std::string(total - open.size() - close.size(), 'x') + close;
}

}  // namespace

TEST_CASE("the stream header gives an Opened event with its attributes and namespaces (RFC 6120 §4.7)") {
  StreamParser p;
  auto ev = p.feed("<?xml version='1.0'?>" + kHeader);
  REQUIRE(ev.size() == 1);
  REQUIRE(ev[0].kind == Kind::Opened);
  const auto& h = ev[0].header;
  CHECK(h.to == "example.com");
  CHECK(h.from.empty());
  CHECK(h.version == "1.0");
  CHECK(h.lang == "en");
  CHECK(h.contentNs == "jabber:client");
  REQUIRE(h.namespaces.size() == 2);
  CHECK(h.namespaces[0] == std::pair<std::string, std::string>{"", "jabber:client"});
  CHECK(h.namespaces[1] == std::pair<std::string, std::string>{"stream", "http://etherx.jabber.org/streams"});
  CHECK(p.opened());
}

TEST_CASE("stanzas, namespaces (default and prefixed), text and the closing tag") {
  StreamParser p;
  auto ev = p.feed(kHeader +
                   "<message to='romeo@example.net' xml:lang='fr'><body>a &amp; b &lt; c &#x263A;</body>"
                   "<x:data xmlns:x='urn:example:p' x:attr='v'><x:inner/></x:data><n xmlns=''/></message>"
                   "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"
                   "</stream:stream>");
  REQUIRE(ev.size() == 4);
  REQUIRE(ev[1].kind == Kind::Stanza);
  const Element& m = ev[1].stanza;
  CHECK(m.is("message", ns::kClient));
  CHECK(*m.attr("to") == "romeo@example.net");
  CHECK(*m.attrNs("lang", ns::kXml) == "fr");
  CHECK(m.child("body")->text() == "a & b < c \xE2\x98\xBA");
  const Element* d = m.child("data", "urn:example:p");
  REQUIRE(d);
  CHECK(*d->attrNs("attr", "urn:example:p") == "v");
  CHECK(d->child("inner", "urn:example:p"));
  REQUIRE(m.children("n").size() == 1);
  CHECK(m.children("n")[0]->ns().empty());
  REQUIRE(ev[2].kind == Kind::Stanza);
  CHECK(ev[2].stanza.is("features", ns::kStreams));
  CHECK(ev[2].stanza.child("starttls", ns::kTls));
  CHECK(ev[3].kind == Kind::Closed);
  CHECK(p.closed());
  CHECK(p.feed("<message/>").empty());  // nothing after the stream closed
}

TEST_CASE("what the parser produced serializes and parses back to the same element") {
  StreamParser p;
  const std::string stanza =
      "<message to='a@b' id='x&apos;&quot;'><body>1 &lt; 2 &amp;&amp; 3 &gt; 2\n\ttab</body>"
      "<x:data xmlns:x='urn:example:p' x:attr='v'><x:inner>t</x:inner></x:data><n xmlns=''><m/></n>"
      "<status xml:lang='de' note='a&#10;b'>s</status></message>";
  auto ev = p.feed(kHeader + stanza);
  REQUIRE(ev.size() == 2);
  const std::string text = ev[1].stanza.serialize(ns::kClient);
  StreamParser q;
  auto ev2 = q.feed(kHeader + text);
  REQUIRE(ev2.size() == 2);
  CHECK(ev2[1].stanza == ev[1].stanza);
  CHECK(*ev2[1].stanza.child("status")->attr("note") == "a\nb");
  CHECK(*ev2[1].stanza.attr("id") == "x'\"");
}

TEST_CASE("feeding byte by byte gives the same events as feeding all at once (corpus)") {
  for (const auto& entry : std::filesystem::directory_iterator(IMP_CORPUS_DIR "/stream")) {
    const std::string input = readFile(entry.path());
    INFO(entry.path().filename().string());
    StreamParser a, b;
    auto whole = all(a, input);
    auto split = byteByByte(b, input);
    CHECK(sameEvents(whole, split));
    CHECK_FALSE(whole.empty());
  }
  StreamParser a;
  auto session = a.feed(readFile(IMP_CORPUS_DIR "/stream/session.xml"));
  REQUIRE(session.size() == 11);  // header, 9 top-level elements, close
  CHECK(session.back().kind == Kind::Closed);
  for (std::size_t i = 1; i + 1 < session.size(); ++i) CHECK(session[i].kind == Kind::Stanza);
}

TEST_CASE("a multi-byte UTF-8 character split across feeds") {
  StreamParser p;
  REQUIRE(p.feed(kHeader + "<message><body>caf").size() == 1);
  // é = C3 A9, 😀 = F0 9F 98 80, each cut in the middle.
  CHECK(p.feed("\xC3").empty());
  CHECK(p.feed("\xA9 \xF0\x9F").empty());
  CHECK(p.feed("\x98").empty());
  auto ev = p.feed("\x80</body></message>");
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].stanza.child("body")->text() == "caf\xC3\xA9 \xF0\x9F\x98\x80");
}

TEST_CASE("restricted XML: DTD, entities, comments, processing instructions (RFC 6120 §11.1)") {
  std::string why;
  CHECK(errorOf("<?xml version='1.0'?><!DOCTYPE stream:stream>" + kHeader, &why) == C::RestrictedXml);
  CHECK(why.find("DTD") != std::string::npos);
  CHECK(errorOf("<!DOCTYPE x [<!ENTITY e 'v'>]>" + kHeader) == C::RestrictedXml);
  CHECK(errorOf(kHeader + "<message><body>&ext;</body></message>", &why) == C::RestrictedXml);
  CHECK(why.find("entity") != std::string::npos);
  CHECK(errorOf(kHeader + "<message to='&ext;'/>") == C::RestrictedXml);
  CHECK(errorOf("<!-- hello -->" + kHeader, &why) == C::RestrictedXml);
  CHECK(why.find("comment") != std::string::npos);
  CHECK(errorOf(kHeader + "<!-- between -->") == C::RestrictedXml);
  CHECK(errorOf(kHeader + "<message><!-- inside --></message>") == C::RestrictedXml);
  CHECK(errorOf(kHeader + "<?php echo 1; ?>", &why) == C::RestrictedXml);
  CHECK(why.find("processing instruction 'php'") != std::string::npos);
  CHECK(errorOf("<?xml-stylesheet href='a'?>" + kHeader) == C::RestrictedXml);
  CHECK(errorOf(kHeader + "<message><?pi x?></message>") == C::RestrictedXml);
  // An XML declaration anywhere but the very start.
  CHECK(errorOf(" <?xml version='1.0'?>" + kHeader) == C::RestrictedXml);
  CHECK(errorOf(kHeader + "<?xml version='1.0'?>") == C::RestrictedXml);
}

TEST_CASE("the five predefined entities and character references are fine") {
  StreamParser p;
  auto ev = p.feed(kHeader + "<message><body>&amp;&lt;&gt;&quot;&apos;&#65;&#x42;&#x10348;</body></message>");
  REQUIRE(ev.size() == 2);
  CHECK(ev[1].stanza.child("body")->text() == "&<>\"'AB\xF0\x90\x8D\x88");
}

TEST_CASE("billion laughs is refused at the DOCTYPE with bounded memory") {
  const std::string input = readFile(IMP_CORPUS_DIR "/stream/billion_laughs.xml");
  StreamParser p;
  auto ev = p.feed(input);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].error == C::RestrictedXml);
  CHECK(p.expatPeakBytes() < 64 * 1024);
}

TEST_CASE("invalid UTF-8 is unsupported-encoding (RFC 6120 §4.9.3.22), wherever the feeds split it") {
  for (const std::string bad : {"\xC3\x28", "\xFF", "\xED\xA0\x80" /* surrogate */, "\xC0\xAF" /* overlong */,
                                "\xE0\x80\xAF" /* overlong */, "\xF4\x90\x80\x80" /* > U+10FFFF */,
                                "\x80" /* lone continuation */, "\xF5\x80\x80\x80"}) {
    const std::string text = kHeader + "<message><body>" + bad + "</body></message>";
    std::string why;  // errorOf also feeds it byte by byte: the same verdict
    CHECK_MESSAGE(errorOf(text, &why) == C::UnsupportedEncoding, bad);
    CHECK(why.find("invalid UTF-8 at offset ") != std::string::npos);
  }
  // Valid multi-octet characters at the edges of the ranges pass.
  StreamParser ok;
  auto ev = ok.feed(kHeader + "<message><body>\xC2\x80\xE0\xA0\x80\xED\x9F\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF"
                              "</body></message>");
  REQUIRE(ev.size() == 2);
  CHECK(ev[1].kind == Kind::Stanza);
}

TEST_CASE("malformed XML is not-well-formed (RFC 6120 §4.9.3.13)") {
  CHECK(errorOf(kHeader + "<message></iq>") == C::NotWellFormed);
  CHECK(errorOf(kHeader + "<message a='1' a='2'/>") == C::NotWellFormed);
  CHECK(errorOf(kHeader + "<message><body>\x01</body></message>") == C::NotWellFormed);          // not an XML char
  CHECK(errorOf(kHeader + "<message><body>&#0;</body></message>") == C::NotWellFormed);
  CHECK(errorOf(kHeader + "<p:message/>") == C::NotWellFormed);  // unbound prefix
  CHECK(errorOf(kHeader + std::string("<message>\0</message>", 20)) == C::NotWellFormed);
  // A NUL at the very start would make expat guess UTF-16; it must not matter how it is split.
  CHECK(errorOf(std::string("\t\0>", 3)) == C::NotWellFormed);
  CHECK(errorOf(std::string("<\0s\0", 4)) == C::NotWellFormed);
  // An incomplete header is no error yet: more may come.
  StreamParser p;
  CHECK(p.feed("<stream:stream").empty());
}

TEST_CASE("header checks: namespace, prefix, content namespace, version, encoding") {
  std::string why;
  CHECK(errorOf("<stream:stream version='1.0' xmlns='jabber:client' xmlns:stream='urn:wrong'>") == C::InvalidNamespace);
  CHECK(errorOf("<stream version='1.0' xmlns='http://etherx.jabber.org/streams'>") == C::BadNamespacePrefix);
  CHECK(errorOf("<stream:features version='1.0' xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams'>") == C::InvalidNamespace);
  CHECK(errorOf("<stream:stream version='1.0' xmlns='jabber:server' "
                "xmlns:stream='http://etherx.jabber.org/streams'>", &why) == C::InvalidNamespace);
  CHECK(why.find("jabber:client") != std::string::npos);
  CHECK(errorOf("<stream:stream version='1.0' xmlns:stream='http://etherx.jabber.org/streams'>") ==
        C::InvalidNamespace);
  CHECK(errorOf("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>", &why) ==
        C::UnsupportedVersion);
  CHECK(why.find("pre-1.0") != std::string::npos);
  CHECK(errorOf("<stream:stream version='2.0' xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams'>") == C::UnsupportedVersion);
  CHECK(errorOf("<stream:stream version='one' xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams'>") == C::UnsupportedVersion);
  StreamParser ok;
  auto ev = ok.feed("<stream:stream version='1.1' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].kind == Kind::Opened);
  CHECK(errorOf("<?xml version='1.0' encoding='ISO-8859-1'?>" + kHeader) == C::UnsupportedEncoding);
  CHECK(errorOf("\xFF\xFE<\0") == C::UnsupportedEncoding);  // UTF-16LE byte order mark (§11.6)
  CHECK(errorOf("\xFE\xFF\0<") == C::UnsupportedEncoding);  // UTF-16BE
  StreamParser bom;                                          // a UTF-8 BOM is fine
  CHECK(bom.feed("\xEF\xBB\xBF" + kHeader).at(0).kind == Kind::Opened);
  StreamParser utf8;
  CHECK(utf8.feed("<?xml version='1.0' encoding='utf-8'?>" + kHeader).at(0).kind == Kind::Opened);
  StreamParser s2s(kDefaultPreAuthStanzaLimit, std::string(ns::kServer));
  CHECK(s2s.feed("<stream:stream version='1.0' xmlns='jabber:server' "
                 "xmlns:stream='http://etherx.jabber.org/streams'>").at(0).kind == Kind::Opened);
}

TEST_CASE("text between top-level elements: whitespace is a keepalive, anything else bad-format") {
  StreamParser p;
  auto ev = p.feed(kHeader + " \n\t <message/>\n \n<presence/> ");
  REQUIRE(ev.size() == 3);
  CHECK(errorOf(kHeader + "hello<message/>") == C::BadFormat);
  CHECK(errorOf(kHeader + "hello</stream:stream>") == C::BadFormat);
  CHECK(errorOf(kHeader + "hello<!-- c -->") == C::BadFormat);
  // Text holding an error further on is that error, however it is split.
  CHECK(errorOf(kHeader + "hello ]]> <message/>") == C::NotWellFormed);
  StreamParser waiting;  // the text alone is no error yet: the decision waits for markup
  REQUIRE(waiting.feed(kHeader + "hello").size() == 1);
  CHECK_FALSE(waiting.failed());
}

TEST_CASE("nesting deeper than the parser allows is a policy-violation") {
  std::string deep;
  for (int i = 0; i < 101; ++i) deep += "<a>";
  CHECK(errorOf(kHeader + "<message>" + deep) == C::PolicyViolation);
  std::string ok = "<message>";
  for (int i = 0; i < 98; ++i) ok += "<a>";
  for (int i = 0; i < 98; ++i) ok += "</a>";
  ok += "</message>";
  StreamParser p;
  CHECK(p.feed(kHeader + ok).size() == 2);
}

TEST_CASE("stanza limit: exactly at the limit accepted, one byte more refused") {
  for (std::size_t limit : {std::size_t(200), kDefaultPreAuthStanzaLimit}) {
    INFO("limit " << limit);
    const std::string atLimit = messageOfSize(limit), over = messageOfSize(limit + 1);
    REQUIRE(atLimit.size() == limit);
    StreamParser a(limit);
    auto ev = a.feed(kHeader + atLimit + "\n" + atLimit);
    REQUIRE(ev.size() == 3);
    CHECK(ev[2].kind == Kind::Stanza);
    StreamParser b(limit);
    auto ev2 = b.feed(kHeader + over);
    REQUIRE(ev2.size() == 2);
    CHECK(ev2[1].kind == Kind::Error);
    CHECK(ev2[1].error == C::PolicyViolation);
    // The same byte by byte.
    StreamParser c(limit), d(limit);
    CHECK(byteByByte(c, kHeader + atLimit).size() == 2);
    auto ev3 = byteByByte(d, kHeader + over);
    REQUIRE(ev3.size() == 2);
    CHECK(ev3[1].error == C::PolicyViolation);
  }
}

TEST_CASE("limits before and after authentication: 10 KB, then 256 KB after reset") {
  const std::string big = messageOfSize(20 * 1024);
  StreamParser p;
  CHECK(p.stanzaLimit() == 10 * 1024);
  auto ev = p.feed(kHeader + big);
  REQUIRE(ev.size() == 2);
  CHECK(ev[1].error == C::PolicyViolation);
  // SASL success: the stream restarts (RFC 6120 §6.4.6) and the limit is raised.
  p.reset();
  p.setStanzaLimit(kDefaultPostAuthStanzaLimit);
  auto ev2 = p.feed(kHeader + big + messageOfSize(kDefaultPostAuthStanzaLimit));
  REQUIRE(ev2.size() == 3);
  CHECK(ev2[1].kind == Kind::Stanza);
  CHECK(ev2[2].kind == Kind::Stanza);
  auto ev3 = p.feed(messageOfSize(kDefaultPostAuthStanzaLimit + 1));
  REQUIRE(ev3.size() == 1);
  CHECK(ev3[0].error == C::PolicyViolation);
}

TEST_CASE("setStanzaLimit applies to an element already in progress") {
  StreamParser p(kDefaultPostAuthStanzaLimit);
  REQUIRE(p.feed(kHeader + "<message><body>" + std::string(5000, 'x')).size() == 1);
  p.setStanzaLimit(1000);
  auto ev = p.feed("y");
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].error == C::PolicyViolation);
}

TEST_CASE("a 1 MB stanza before authentication costs bounded memory") {
  std::string huge = "<message><body>" + std::string(1024 * 1024, 'x') + "</body></message>";
  StreamParser p;
  auto ev = p.feed(kHeader + huge);
  REQUIRE(ev.size() == 2);
  CHECK(ev[1].error == C::PolicyViolation);
  // Expat was handed at most limit + 1 octets of the stanza, and allocated
  // accordingly: far below the megabyte that arrived.
  CHECK(p.totalBytes() <= kHeader.size() + kDefaultPreAuthStanzaLimit + 1);
  CHECK(p.expatPeakBytes() < 4 * kDefaultPreAuthStanzaLimit);
  // The same arriving in 1,500-octet segments.
  StreamParser q;
  const std::string all = kHeader + huge;
  std::vector<StreamEvent> got;
  for (std::size_t off = 0; off < all.size() && !q.failed(); off += 1500) {
    auto e = q.feed(all.data() + off, std::min<std::size_t>(1500, all.size() - off));
    for (auto& x : e) got.push_back(std::move(x));
  }
  REQUIRE(got.size() == 2);
  CHECK(got[1].error == C::PolicyViolation);
  CHECK(q.expatPeakBytes() < 4 * kDefaultPreAuthStanzaLimit);
  // An endless start tag (the element never completes) is cut the same way.
  StreamParser r;
  auto ev2 = r.feed(kHeader + "<message to='" + std::string(1024 * 1024, 'a'));
  REQUIRE(ev2.size() == 2);
  CHECK(ev2[1].error == C::PolicyViolation);
  CHECK(r.expatPeakBytes() < 4 * kDefaultPreAuthStanzaLimit);
  // And an endless stream header.
  StreamParser s;
  auto ev3 = s.feed("<stream:stream to='" + std::string(1024 * 1024, 'a'));
  REQUIRE(ev3.size() == 1);
  CHECK(ev3[0].error == C::PolicyViolation);
}

TEST_CASE("after an error the parser is dead until reset(); reset() starts a new stream (RFC 6120 §5.4.3.3)") {
  StreamParser p;
  REQUIRE(p.feed(kHeader + "<!-- x -->").back().error == C::RestrictedXml);
  CHECK(p.feed("<message/>").empty());
  p.reset();
  CHECK_FALSE(p.failed());
  auto ev = p.feed("<?xml version='1.0'?>" + kHeader + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  REQUIRE(ev.size() == 2);
  // STARTTLS proceeds: the next stream starts again with an XML declaration.
  p.reset();
  auto ev2 = p.feed("<?xml version='1.0'?>" + kHeader + "<message/>");
  REQUIRE(ev2.size() == 2);
  CHECK(ev2[1].stanza.is("message", ns::kClient));
}

TEST_CASE("host-unknown: the header's 'to' must name a served domain (RFC 6120 §4.9.3.6)") {
  auto served = [](std::string_view d) { return d == "example.com"; };
  StreamParser ok;
  ok.setHostCheck(served);
  // 'to' is prepared before the check: upper case and a trailing dot are the same domain.
  auto ev = ok.feed("<stream:stream to='EXAMPLE.COM.' version='1.0' xmlns='jabber:client' "
                    "xmlns:stream='http://etherx.jabber.org/streams'>");
  REQUIRE(ev.size() == 1);
  REQUIRE(ev[0].kind == Kind::Opened);
  CHECK(ev[0].header.to == "EXAMPLE.COM.");
  CHECK(ev[0].header.toDomain == "example.com");
  ok.reset();  // the check survives the restart
  CHECK(ok.feed("<stream:stream to='other.example' version='1.0' xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams'>").at(0).error == C::HostUnknown);
  for (std::string header : {"<stream:stream to='other.example' ", "<stream:stream ", "<stream:stream to='a b' "}) {
    INFO(header);
    StreamParser p;
    p.setHostCheck(served);
    auto e = p.feed(header + "version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
    REQUIRE(e.size() == 1);
    CHECK(e[0].error == C::HostUnknown);
    CHECK_FALSE(e[0].text.empty());
  }
  StreamParser unchecked;  // without a check any 'to' opens
  CHECK(unchecked.feed("<stream:stream to='other.example' version='1.0' xmlns='jabber:client' "
                       "xmlns:stream='http://etherx.jabber.org/streams'>").at(0).kind == Kind::Opened);
}

// ---- compact(): an idle stream gives its expat parser back ----

namespace {

// Feeds `s` in pieces of `step` octets, compacting after every piece; the
// events of all the pieces.
std::vector<StreamEvent> compactingFeed(StreamParser& p, std::string_view s, std::size_t step,
                                        std::size_t* compactions = nullptr) {
  std::vector<StreamEvent> out;
  for (std::size_t off = 0; off < s.size(); off += step) {
    auto ev = p.feed(s.substr(off, step));
    for (auto& e : ev) out.push_back(std::move(e));
    if (p.compact() && compactions && p.opened()) ++*compactions;
  }
  return out;
}

}  // namespace

TEST_CASE("compact() between stanzas: the stream goes on with the same events, however it was split") {
  for (const auto& entry : std::filesystem::directory_iterator(IMP_CORPUS_DIR "/stream")) {
    const std::string input = readFile(entry.path());
    INFO(entry.path().filename().string());
    StreamParser a;
    auto whole = all(a, input);
    for (std::size_t step : {std::size_t(1), std::size_t(7), std::size_t(64), input.size()}) {
      INFO("pieces of " << step);
      StreamParser b;
      CHECK(sameEvents(whole, compactingFeed(b, input, step)));
    }
  }
  // session.xml has whitespace between its stanzas: fed byte by byte, the
  // parser is compacted (and rebuilt) at every gap.
  StreamParser p;
  std::size_t compactions = 0;
  auto ev = compactingFeed(p, readFile(IMP_CORPUS_DIR "/stream/session.xml"), 1, &compactions);
  CHECK(ev.size() == 11);
  CHECK(compactions > 20);
}

TEST_CASE("compact() frees expat only where nothing is pending") {
  StreamParser p;
  CHECK_FALSE(p.compact());  // before the header
  CHECK_FALSE(p.compacted());
  REQUIRE(p.feed(kHeader.substr(0, 20)).empty());
  CHECK_FALSE(p.compact());  // inside the header
  REQUIRE(p.feed(kHeader.substr(20)).size() == 1);
  CHECK(p.expatBytes() > 0);
  const std::size_t peak = p.expatPeakBytes();
  CHECK(p.compact());
  CHECK(p.compacted());
  CHECK(p.expatBytes() == 0);
  CHECK(p.pendingBytes() == 0);
  CHECK(p.expatPeakBytes() == peak);  // the peak since the stream started stays
  CHECK(p.opened());
  CHECK(p.compact());  // again: nothing to do
  CHECK(p.feed("").empty());
  CHECK(p.compacted());  // nothing fed, nothing rebuilt

  REQUIRE(p.feed("<message><body>a").empty());
  CHECK_FALSE(p.compacted());
  CHECK_FALSE(p.compact());  // inside a stanza
  REQUIRE(p.feed("</body></message>\xC3").size() == 1);
  CHECK_FALSE(p.compact());  // inside a character
  REQUIRE(p.feed("\xA9").empty());
  CHECK_FALSE(p.compact());  // stray text waits for the next markup
  CHECK(p.feed("<message/>").back().error == C::BadFormat);
  CHECK_FALSE(p.compact());  // dead

  StreamParser q;
  REQUIRE(q.feed(kHeader + "<message/>  \n ").size() == 2);
  CHECK(q.compact());  // whitespace keepalives are no pending unit
  auto ev = q.feed("<presence/></stream:stream>");
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].stanza.is("presence", ns::kClient));
  CHECK(ev[1].kind == Kind::Closed);
  CHECK_FALSE(q.compact());  // closed
}

TEST_CASE("after compact() the header's namespaces still apply, and a STARTTLS-style reset starts over") {
  const std::string header =
      "<stream:stream to='example.com' version='1.0' xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
      "xmlns:db='jabber:server:dialback' xmlns:q=\"urn:x:a&apos;b&amp;&#10;c\">";
  StreamParser p(kDefaultPreAuthStanzaLimit, std::string(ns::kServer));
  REQUIRE(p.feed(header).size() == 1);
  REQUIRE(p.compact());
  auto ev = p.feed("<db:result from='a.example' to='example.com'>key</db:result><q:x/><stream:features/><message/>");
  REQUIRE(ev.size() == 4);
  CHECK(ev[0].stanza.is("result", "jabber:server:dialback"));
  CHECK(ev[1].stanza.is("x", "urn:x:a'b&\nc"));
  CHECK(ev[2].stanza.is("features", ns::kStreams));
  CHECK(ev[3].stanza.is("message", ns::kServer));
  REQUIRE(p.compact());
  CHECK(p.feed("</stream:stream>").at(0).kind == Kind::Closed);

  // reset() forgets the old header: a new stream must open again.
  StreamParser r;
  REQUIRE(r.feed(kHeader + "<message/>").size() == 2);
  REQUIRE(r.compact());
  r.reset();
  CHECK(r.feed("<message/>").at(0).error == C::InvalidNamespace);
}

TEST_CASE("after compact() limits count from the same place and errors name the same position") {
  const std::size_t limit = 300;
  const std::string atLimit = messageOfSize(limit), over = messageOfSize(limit + 1);
  StreamParser a(limit);
  REQUIRE(a.feed(kHeader + "\n").size() == 1);
  REQUIRE(a.compact());
  REQUIRE(a.feed(atLimit).size() == 1);
  REQUIRE(a.compact());
  auto ev = a.feed(over);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].error == C::PolicyViolation);

  // Not-well-formed input after some lines: the message names the line and
  // column in the stream, with or without compacting on the way.
  const std::vector<std::string> pieces = {kHeader + "\n", "<message/>\n  <presence/>", "  \n<iq type='get'>",
                                           "<x/></iq> <message>\n<body>a</iq>"};
  std::string plain, compacted;
  {
    StreamParser p;
    for (const auto& s : pieces)
      for (auto& e : p.feed(s))
        if (e.kind == Kind::Error) plain = e.text;
  }
  {
    StreamParser p;
    std::size_t n = 0;
    for (const auto& s : pieces) {
      for (auto& e : p.feed(s))
        if (e.kind == Kind::Error) compacted = e.text;
      if (p.compact()) ++n;
    }
    CHECK(n == 2);
  }
  CHECK(plain.find(" at line 5, column ") != std::string::npos);
  CHECK(compacted == plain);
  // Also when the error is on the line where the rebuilt parser started.
  StreamParser q, r;
  const std::string text = kHeader + "<message/><presence></message>";
  auto e1 = q.feed(text);
  REQUIRE(r.feed(kHeader + "<message/>").size() == 2);
  REQUIRE(r.compact());
  auto e2 = r.feed("<presence></message>");
  REQUIRE(e2.size() == 1);
  CHECK(e2[0].text == e1.back().text);
}
