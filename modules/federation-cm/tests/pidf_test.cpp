// PIDF / RPID (RFC 3863, RFC 4480) as Lync and SIMPLE servers send it, and as
// IMP publishes it; and the refusals that keep a hostile body harmless.
#include <imp/federation_cm/pidf.h>

#include <doctest/doctest.h>

#include <string>

using namespace imp::fcm;

namespace {

// Lync's plain-PIDF answer to a SUBSCRIBE offering only application/pidf+xml
// (tests/corpus/sip/lync/notify_pidf.dat).
constexpr std::string_view kLyncPlain =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"
    "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:bob@example.com\"><tuple id=\"0\"><status>"
    "<basic>open</basic></status></tuple><note>In a meeting</note></presence>";

// RPID person with activities, prefixed namespaces, a CIPID element and a
// Lync availability number in an extension namespace.
constexpr std::string_view kRich =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<p:presence xmlns:p=\"urn:ietf:params:xml:ns:pidf\" xmlns:r=\"urn:ietf:params:xml:ns:pidf:rpid\"\n"
    "   xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" xmlns:c=\"urn:ietf:params:xml:ns:pidf:cipid\"\n"
    "   xmlns:ms=\"http://schemas.microsoft.com/2006/09/sip/state\" entity=\"sip:bob@example.com\">\n"
    "  <p:tuple id=\"t1\"><p:status><p:basic>open</p:basic></p:status>"
    "<p:contact priority=\"0.8\">sip:bob@example.com</p:contact></p:tuple>\n"
    "  <dm:person id=\"p1\"><r:activities><r:on-the-phone/><r:unknown/></r:activities>"
    "<c:display-name>Bob</c:display-name><dm:note>On a call</dm:note></dm:person>\n"
    "  <ms:state><ms:availability>6500</ms:availability></ms:state>\n"
    "</p:presence>";

std::optional<MicrosoftPresence> parse(std::string_view body) {
  std::string why;
  auto p = parsePidf(body, &why);
  if (!p) MESSAGE("refused: " << why);
  return p;
}

std::string refusal(std::string_view body) {
  std::string why;
  auto p = parsePidf(body, &why);
  CHECK_FALSE(p.has_value());
  CHECK_FALSE(why.empty());
  return why;
}

}  // namespace

TEST_CASE("PIDF content types: pidf+xml and cpim-pidf+xml") {
  CHECK(isPidfContentType("application/pidf+xml"));
  CHECK(isPidfContentType("Application/PIDF+XML; charset=UTF-8"));
  CHECK(isPidfContentType("application/cpim-pidf+xml"));
  CHECK_FALSE(isPidfContentType("application/xpidf+xml"));
  CHECK_FALSE(isPidfContentType("application/msrtc-event-categories+xml"));
  CHECK_FALSE(isPidfContentType("garbage"));
}

TEST_CASE("parsePidf: Lync's plain PIDF") {
  auto p = parse(kLyncPlain);
  REQUIRE(p);
  CHECK(p->known);
  CHECK(p->open);
  CHECK_FALSE(p->availability);
  CHECK(p->activities.empty());
  CHECK(p->note == "In a meeting");
  CHECK(classify(*p) == MsState::Available);
}

TEST_CASE("parsePidf: namespaces are matched by URI, not prefix") {
  auto p = parse(kRich);
  REQUIRE(p);
  CHECK(p->open);
  CHECK(p->availability == 6500);
  REQUIRE(p->activities.size() == 2);
  CHECK(p->activities[0] == "on-the-phone");
  CHECK(p->activities[1] == "unknown");
  CHECK(p->note == "On a call");
  CHECK(classify(*p) == MsState::Busy);
}

TEST_CASE("parsePidf: elements with the right prefix but the wrong namespace do not count") {
  auto p = parse(
      "<presence xmlns='urn:ietf:params:xml:ns:pidf' xmlns:r='urn:example:not-rpid' entity='sip:a@b'>"
      "<tuple id='1'><status><basic>open</basic></status></tuple>"
      "<r:activities><r:busy/></r:activities></presence>");
  REQUIRE(p);
  CHECK(p->activities.empty());
  CHECK(classify(*p) == MsState::Available);
}

TEST_CASE("parsePidf: basic closed is Offline; activities are still read") {
  auto p = parse(
      "<presence xmlns='urn:ietf:params:xml:ns:pidf' xmlns:rpid='urn:ietf:params:xml:ns:pidf:rpid' entity='sip:a@b'>"
      "<tuple id='1'><status><basic> closed </basic></status>"
      "<rpid:activities><rpid:on-the-phone/></rpid:activities></tuple></presence>");
  REQUIRE(p);
  CHECK_FALSE(p->open);
  REQUIRE(p->activities.size() == 1);
  CHECK(classify(*p) == MsState::Offline);
}

TEST_CASE("parsePidf: the first tuple with a <basic> decides") {
  auto p = parse(
      "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'>"
      "<tuple id='0'><status/></tuple>"
      "<tuple id='1'><status><basic>open</basic></status></tuple>"
      "<tuple id='2'><status><basic>closed</basic></status></tuple></presence>");
  REQUIRE(p);
  CHECK(p->open);
}

TEST_CASE("parsePidf: no tuple at all is closed") {
  auto p = parse("<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'/>");
  REQUIRE(p);
  CHECK(p->known);
  CHECK_FALSE(p->open);
  CHECK(classify(*p) == MsState::Offline);
}

TEST_CASE("parsePidf: cpim-pidf namespace is accepted") {
  auto p = parse(
      "<presence xmlns='urn:ietf:params:xml:ns:cpim-pidf' entity='pres:a@b'>"
      "<tuple id='1'><status><basic>open</basic></status><note>hi</note></tuple></presence>");
  REQUIRE(p);
  CHECK(p->open);
  CHECK(p->note == "hi");
}

TEST_CASE("parsePidf: note at tuple level, the first non-empty one, entities decoded") {
  auto p = parse(
      "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'>"
      "<tuple id='1'><status><basic>open</basic></status><note>  </note><note>Lunch &amp; coffee &#x1F600;</note>"
      "</tuple><note>later</note></presence>");
  REQUIRE(p);
  CHECK(p->note == "Lunch & coffee \xF0\x9F\x98\x80");
}

TEST_CASE("parsePidf: availability numbers that are not small decimals are ignored") {
  auto withAvail = [](std::string text) {
    return "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'>"
           "<tuple id='1'><status><basic>open</basic></status></tuple><availability>" +
           text + "</availability></presence>";
  };
  CHECK(parse(withAvail(" 15500 "))->availability == 15500);
  CHECK_FALSE(parse(withAvail("-5"))->availability);
  CHECK_FALSE(parse(withAvail("12a"))->availability);
  CHECK_FALSE(parse(withAvail("99999999999999999999"))->availability);
  CHECK_FALSE(parse(withAvail(""))->availability);
}

TEST_CASE("parsePidf: unknown content is ignored") {
  auto p = parse(
      "<presence xmlns='urn:ietf:params:xml:ns:pidf' xmlns:x='urn:x' entity='sip:a@b'>"
      "<x:whatever a='1'><x:deep><x:deeper>text</x:deeper></x:deep></x:whatever>"
      "<tuple id='1'><status><basic>open</basic><x:extra/></status><x:timestamp>now</x:timestamp></tuple>"
      "<!-- a comment --><?some-pi data?></presence>");
  REQUIRE(p);
  CHECK(p->open);
}

TEST_CASE("parsePidf refuses malformed XML with a reason") {
  CHECK(refusal("").find("malformed") != std::string::npos);
  refusal("<presence xmlns='urn:ietf:params:xml:ns:pidf'>");            // truncated
  refusal("<presence xmlns='urn:ietf:params:xml:ns:pidf'></tuple>");    // mismatched
  refusal("<p:presence xmlns='urn:ietf:params:xml:ns:pidf'/>");         // unbound prefix
  refusal("<presence xmlns='urn:ietf:params:xml:ns:pidf'>&bogus;</presence>");  // undefined entity
  refusal("not xml at all");
  refusal(std::string_view("<presence\0/>", 12));
}

TEST_CASE("parsePidf refuses a document that is not PIDF") {
  CHECK(refusal("<presence xmlns='urn:example'/>").find("not a PIDF") != std::string::npos);
  refusal("<presence/>");
  refusal("<tuple xmlns='urn:ietf:params:xml:ns:pidf'/>");
}

TEST_CASE("parsePidf refuses DTDs and entity declarations (billion laughs)") {
  const std::string laughs =
      "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
      "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
      "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>"
      "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'><note>&lol3;</note></presence>";
  CHECK(refusal(laughs).find("DTD") != std::string::npos);
  refusal("<!DOCTYPE presence SYSTEM 'http://example.com/x.dtd'><presence xmlns='urn:ietf:params:xml:ns:pidf'/>");
}

TEST_CASE("parsePidf refuses bodies over 64 KiB") {
  std::string big = "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'><note>";
  big += std::string(kMaxPidfBytes, 'x');
  big += "</note></presence>";
  CHECK(refusal(big).find("limit") != std::string::npos);
  // Just under the cap is fine.
  std::string ok = "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'><note>";
  ok += std::string(kMaxPidfBytes - ok.size() - 50, 'y');
  ok += "</note></presence>";
  REQUIRE(ok.size() <= kMaxPidfBytes);
  CHECK(parse(ok));
}

TEST_CASE("parsePidf refuses very deep nesting and encodings other than UTF-8") {
  std::string deep = "<presence xmlns='urn:ietf:params:xml:ns:pidf'>";
  for (int i = 0; i < 100; ++i) deep += "<a>";
  for (int i = 0; i < 100; ++i) deep += "</a>";
  deep += "</presence>";
  CHECK(refusal(deep).find("deeper") != std::string::npos);
  refusal("<?xml version='1.0' encoding='ISO-8859-1'?><presence xmlns='urn:ietf:params:xml:ns:pidf'/>");
  refusal("<presence xmlns='urn:ietf:params:xml:ns:pidf'><note>\xC3\x28</note></presence>");  // bad UTF-8
}

TEST_CASE("parsePidf without a why pointer") {
  CHECK_FALSE(parsePidf("<junk"));
  CHECK(parsePidf(kLyncPlain));
}

TEST_CASE("buildPidf: open with an activity and a note, read back") {
  const std::string doc = buildPidf("sip:ann@example.com", kLyncOnThePhone, "On a call <with> Bob & co");
  CHECK(doc.find("entity=\"sip:ann@example.com\"") != std::string::npos);
  CHECK(doc.find("<basic>open</basic>") != std::string::npos);
  CHECK(doc.find("<rpid:on-the-phone/>") != std::string::npos);
  CHECK(doc.find("On a call &lt;with&gt; Bob &amp; co") != std::string::npos);
  // RFC 3863 §4.1: tuples, then notes, then extensions.
  CHECK(doc.find("<tuple") < doc.find("<note>"));
  CHECK(doc.find("<note>") < doc.find("<dm:person"));
  auto p = parse(doc);
  REQUIRE(p);
  CHECK(p->open);
  CHECK(p->note == "On a call <with> Bob & co");
  REQUIRE(p->activities.size() == 1);
  CHECK(p->activities[0] == "on-the-phone");
  CHECK(classify(*p) == MsState::Busy);
}

TEST_CASE("buildPidf: every AV-5 answer reads back as its own state") {
  for (const auto* a : {&kLyncAvailable, &kLyncBusy, &kLyncOnThePhone, &kLyncInAMeeting, &kLyncAway, &kLyncOffline}) {
    CAPTURE(a->availability);
    auto p = parse(buildPidf("sip:ann@example.com", *a, ""));
    REQUIRE(p);
    CHECK(p->note.empty());
    CHECK(classify(*p) == a->state);
  }
}

TEST_CASE("buildPidf: offline is closed, no activities, no note element when empty") {
  const std::string doc = buildPidf("sip:ann@example.com", kLyncOffline, "");
  CHECK(doc.find("<basic>closed</basic>") != std::string::npos);
  CHECK(doc.find("activities") == std::string::npos);
  CHECK(doc.find("<note>") == std::string::npos);
  CHECK(buildPidf("sip:a@b", {MsState::AppearOffline, 18500, ""}, "").find("closed") != std::string::npos);
}

TEST_CASE("buildPidf: a CR in the note survives the round trip (found by fuzz_fcm_bodies)") {
  auto p = parse("<presence xmlns='urn:ietf:params:xml:ns:pidf'><note>a&#13;b\r\nc</note></presence>");
  REQUIRE(p);
  CHECK(p->note == "a\rb\nc");  // a literal CR LF is read as LF, the reference as CR
  auto back = parse(buildPidf("sip:a@b", kLyncAway, p->note));
  REQUIRE(back);
  CHECK(back->note == p->note);
}

TEST_CASE("buildPidf: hostile entity, note and activity cannot break the document") {
  const std::string doc =
      buildPidf("sip:a\"b<c>&d@example.com", {MsState::Busy, 6500, "busy/><evil"}, std::string("bad\x01\x02 ctl\t ok"));
  auto p = parse(doc);
  REQUIRE(p);
  CHECK(p->activities.empty());  // an invalid activity name is left out
  CHECK(p->note == "bad ctl\t ok");
  CHECK(doc.find("entity=\"sip:a&quot;b&lt;c&gt;&amp;d@example.com\"") != std::string::npos);
}
