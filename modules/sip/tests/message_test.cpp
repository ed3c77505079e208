// Message model: typed access, edits that keep other headers byte-exact,
// canonical serialisation, Lync-style messages from the corpus.
#include <doctest/doctest.h>
#include <imp/sip/parser.h>

#include <fstream>
#include <iterator>

using namespace imp::sip;

namespace {

std::string lync(const std::string& name) {
  std::ifstream in(std::string(IMP_CORPUS_DIR) + "/lync/" + name, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Message parse(std::string_view text) {
  auto r = Parser().parseDatagram(text);
  REQUIRE_MESSAGE(std::holds_alternative<Message>(r), std::get<ParseError>(r).reason);
  return std::get<Message>(std::move(r));
}

const char* kInvite =
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKold\r\n"
    "Max-Forwards: 70\r\n"
    "Route: <sip:p1.example.com;lr;ms-route-sig=AbC+/=>\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    "Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n"
    "X-Custom:   spaced   value\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 4\r\n"
    "\r\n"
    "v=0\n";

}  // namespace

TEST_CASE("typed access") {
  auto m = parse(kInvite);
  CHECK(m.isRequest());
  CHECK(m.method() == "INVITE");
  CHECK(m.vias().size() == 2);
  CHECK(m.topVia()->branch() == "z9hG4bK74bf9");
  CHECK(m.topVia()->port == 5060);
  CHECK(m.from()->display == "Alice");
  CHECK(m.from()->tag() == "9fxced76sl");
  CHECK(m.to()->tag().empty());
  CHECK(m.cseq()->seq == 1);
  CHECK(m.maxForwards() == 70);
  CHECK(m.header("x-custom") == "spaced   value");
  CHECK(m.body() == "v=0\n");
}

TEST_CASE("proxy edits keep every other header byte-exact") {
  auto m = parse(kInvite);
  m.prependHeader(HeaderId::Via, "SIP/2.0/TCP proxy.example.com:5060;branch=z9hG4bKnew");
  m.setHeader(HeaderId::MaxForwards, "69");
  m.prependHeader(HeaderId::RecordRoute, "<sip:proxy.example.com;lr>");
  CHECK(m.removeFirstValue(HeaderId::Route));
  m.setRequestUri("sip:bob@192.0.2.4");
  auto out = m.serialize();
  CHECK(out.rfind("INVITE sip:bob@192.0.2.4 SIP/2.0\r\nRecord-Route: <sip:proxy.example.com;lr>\r\n"
                  "Via: SIP/2.0/TCP proxy.example.com:5060;branch=z9hG4bKnew\r\n"
                  "Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKold\r\n"
                  "Max-Forwards: 69\r\n",
                  0) == 0);
  CHECK(out.find("Route: <sip:p1") == std::string::npos);
  CHECK(out.find("X-Custom: spaced   value\r\n") != std::string::npos);
  // the top value of a multi-value line comes off, the rest stays as written
  auto again = parse(out);
  CHECK(again.removeFirstValue(HeaderId::Via));
  CHECK(again.removeFirstValue(HeaderId::Via));
  CHECK(again.serialize().find("Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKold\r\n") != std::string::npos);
}

TEST_CASE("copies are independent and keep edits") {
  auto m = parse(kInvite);
  m.setHeader(HeaderId::MaxForwards, "5");
  Message copy = m;
  m.setHeader(HeaderId::MaxForwards, "4");
  CHECK(copy.maxForwards() == 5);
  CHECK(m.maxForwards() == 4);
  Message moved = std::move(copy);
  CHECK(moved.maxForwards() == 5);
  CHECK(moved.serialize() == parse(moved.serialize()).serialize());
}

TEST_CASE("builders produce a parseable response with a matching Content-Length") {
  auto req = parse(kInvite);
  auto r = Message::response(486, "Busy Here");
  for (auto id : {HeaderId::Via, HeaderId::From, HeaderId::To, HeaderId::CallId, HeaderId::CSeq})
    for (const auto& h : req.headers())
      if (h.id == id) r.appendHeader(h.name, h.value);
  r.setBody("busy", "text/plain");
  auto text = r.serialize();
  CHECK(text.rfind("SIP/2.0 486 Busy Here\r\n", 0) == 0);
  auto back = parse(text);
  CHECK(back.statusCode() == 486);
  CHECK(back.vias().size() == 2);
  CHECK(back.body() == "busy");
  CHECK(back.header(HeaderId::ContentLength) == "4");
}

TEST_CASE("Lync dialect: signed Record-Route, ms-* parameters and headers survive a round trip") {
  auto raw = lync("ok_signed_record_route.dat");
  auto m = parse(raw);
  auto rr = m.recordRoutes();
  REQUIRE(rr.size() == 1);
  CHECK(parseUri(rr[0].uri)->param("ms-route-sig") == "gaXyz0a3Kd2fL0Ab_xAs9dfLK8AAA");
  CHECK(m.topVia()->param("ms-received-cid") == "2B00");
  CHECK(m.count(HeaderId::Supported) == 2);
  CHECK(m.serialize() == raw);  // nothing edited: byte for byte
  auto invite = parse(lync("invite_session_im.dat"));
  CHECK(invite.header("ms-text-format")->find("ms-body=SGVsbG8gQm9i") != std::string_view::npos);
  CHECK(invite.header("Ms-Conversation-ID") == "AcnZ8wKj3Lr0kq7nQzW4s1u9mQ==");
  CHECK(invite.contacts().at(0).param("proxy") == "replace");
  auto diag = parse(lync("busy_ms_diagnostics.dat"));
  CHECK(diag.header("ms-diagnostics")->rfind("2165;", 0) == 0);
  for (const char* f : {"subscribe_presence.dat", "message_in_dialog.dat", "info_typing.dat", "notify_pidf.dat"}) {
    CAPTURE(f);
    auto text = lync(f);
    CHECK(parse(text).serialize() == text);
  }
}
