// Bad input and stream framing: every malformed or hostile input gets a
// precise error; oversized messages and header floods are refused.
#include <doctest/doctest.h>
#include <imp/sip/parser.h>

using namespace imp::sip;

namespace {

const std::string kOptions =
    "OPTIONS sip:proxy.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:a@example.com>;tag=1\r\n"
    "To: <sip:proxy.example.com>\r\n"
    "Call-ID: opt1@192.0.2.1\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

ParseError errorOf(std::string_view text, ParseLimits limits = {}) {
  auto r = Parser(limits).parseDatagram(text);
  REQUIRE_MESSAGE(std::holds_alternative<ParseError>(r), "expected an error for:\n" << text);
  return std::get<ParseError>(r);
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto p = s.find(from);
  REQUIRE(p != std::string::npos);
  return s.replace(p, from.size(), to);
}

}  // namespace

TEST_CASE("malformed requests get 400 with the reason, 505 for other versions") {
  CHECK(errorOf(replace(kOptions, "Via: SIP/2.0/TCP 192.0.2.1:5060", "Via: SIP/2.0 192.0.2.1")).reason ==
        "Malformed Via: expected '/' in sent-protocol");
  CHECK(errorOf(replace(kOptions, "CSeq: 1 OPTIONS", "CSeq: one OPTIONS")).reason == "Malformed CSeq: CSeq without a number");
  CHECK(errorOf(replace(kOptions, "Max-Forwards: 70", "Max-Forwards: 256")).reason == "Malformed Max-Forwards");
  CHECK(errorOf(replace(kOptions, "Call-ID: opt1@192.0.2.1", "Call-ID: a b")).reason == "Malformed Call-ID");
  CHECK(errorOf(replace(kOptions, "From: <sip:a@example.com>;tag=1", "From: <sip:a@example.com;tag=1")).reason ==
        "Malformed From: missing '>'");
  CHECK(errorOf(replace(kOptions, "To: <sip:proxy.example.com>", "To: <sip:proxy.example.com>;;")).reason ==
        "Malformed To: empty parameter");
  CHECK(errorOf(replace(kOptions, "SIP/2.0\r\nVia", "SIP/3.0\r\nVia")).status == 505);
  CHECK(errorOf(replace(kOptions, "Max-Forwards: 70\r\n", "Max-Forwards 70\r\n")).reason == "Header field without ':'");
  CHECK(errorOf(replace(kOptions, "Max-Forwards: 70\r\n", "Max Forwards: 70\r\n")).reason == "Malformed header field name");
  CHECK(errorOf(replace(kOptions, "\r\n\r\n", "\r\n")).reason == "Message ends inside the header section");
  CHECK(errorOf("").reason == "Incomplete message");
  CHECK(errorOf(" Via: x\r\n\r\n").reason == "Malformed Request-Line");
  auto e = errorOf(replace(kOptions, "Content-Length: 0", "Content-Length: 0x10"));
  CHECK(e.reason == "Malformed Content-Length");
  CHECK(e.canRespond);
  // without a Call-ID no response can be formed
  CHECK_FALSE(errorOf(replace(replace(kOptions, "Call-ID: opt1@192.0.2.1\r\n", ""), "CSeq: 1", "CSeq: x")).canRespond);
}

TEST_CASE("oversized messages and header floods are refused") {
  ParseLimits small{512, 20};
  std::string big = replace(kOptions, "Content-Length: 0\r\n\r\n", "Content-Length: 600\r\n\r\n") + std::string(600, 'x');
  CHECK(errorOf(big, small).status == 513);
  std::string flood = kOptions;
  std::string extra;
  for (int i = 0; i < 30; ++i) extra += "X-Flood: " + std::to_string(i) + "\r\n";
  flood = replace(flood, "Content-Length: 0\r\n", extra + "Content-Length: 0\r\n");
  CHECK(errorOf(flood, ParseLimits{4096, 20}).reason == "Too many header fields");
}

TEST_CASE("folded header lines are unfolded; leading CRLFs are skipped") {
  auto r = Parser().parseDatagram("\r\n\r\n" + replace(kOptions, "Max-Forwards: 70", "Max-Forwards:\r\n   70"));
  REQUIRE(std::holds_alternative<Message>(r));
  CHECK(std::get<Message>(r).maxForwards() == 70);
}

TEST_CASE("stream framing: split and coalesced messages") {
  StreamFramer f;
  Message m;
  ParseError e;
  std::string two = kOptions + replace(kOptions, "CSeq: 1", "CSeq: 2");
  for (char c : two.substr(0, 100)) {
    f.feed(std::string_view(&c, 1));
    CHECK(f.next(&m, &e) == StreamFramer::Event::NeedMore);
  }
  f.feed(two.substr(100));
  REQUIRE(f.next(&m, &e) == StreamFramer::Event::Message);
  CHECK(m.cseq()->seq == 1);
  REQUIRE(f.next(&m, &e) == StreamFramer::Event::Message);
  CHECK(m.cseq()->seq == 2);
  CHECK(f.next(&m, &e) == StreamFramer::Event::NeedMore);
  CHECK(f.buffered() == 0);
}

TEST_CASE("stream framing: keep-alive pings") {
  StreamFramer f;
  Message m;
  ParseError e;
  f.feed("\r\n\r\n");
  CHECK(f.next(&m, &e) == StreamFramer::Event::KeepAlivePing);
  f.feed("\r\n" + kOptions);  // a pong, then a message
  CHECK(f.next(&m, &e) == StreamFramer::Event::Message);
}

TEST_CASE("stream framing: invalid but framed messages do not kill the stream") {
  StreamFramer f;
  Message m;
  ParseError e;
  bool resynced = false;
  f.feed(replace(kOptions, "CSeq: 1 OPTIONS", "CSeq: 1 INVITE") + kOptions);
  CHECK(f.next(&m, &e, &resynced) == StreamFramer::Event::Error);
  CHECK(resynced);
  CHECK(e.reason == "CSeq method does not match the request method");
  CHECK(e.canRespond);
  CHECK(f.next(&m, &e, &resynced) == StreamFramer::Event::Message);
}

TEST_CASE("stream framing: unframeable input is fatal") {
  Message m;
  ParseError e;
  SUBCASE("no Content-Length") {
    StreamFramer f;
    f.feed(replace(kOptions, "Content-Length: 0\r\n", ""));
    CHECK(f.next(&m, &e) == StreamFramer::Event::Error);
    CHECK(e.reason == "Content-Length required on stream transports");
    CHECK(f.dead());
  }
  SUBCASE("conflicting Content-Length") {
    StreamFramer f;
    f.feed(replace(kOptions, "Content-Length: 0\r\n", "Content-Length: 0\r\nl: 5\r\n"));
    CHECK(f.next(&m, &e) == StreamFramer::Event::Error);
    CHECK(e.reason == "Conflicting Content-Length values");
  }
  SUBCASE("negative Content-Length") {
    StreamFramer f;
    f.feed(replace(kOptions, "Content-Length: 0", "Content-Length: -1"));
    CHECK(f.next(&m, &e) == StreamFramer::Event::Error);
    CHECK(e.reason == "Malformed Content-Length");
  }
  SUBCASE("a head that never ends") {
    StreamFramer f(ParseLimits{1024, 64});
    f.feed("OPTIONS sip:x SIP/2.0\r\nX-A: " + std::string(2000, 'a'));
    CHECK(f.next(&m, &e) == StreamFramer::Event::Error);
    CHECK(e.status == 513);
  }
  SUBCASE("a header flood before the head ends") {
    StreamFramer f(ParseLimits{65536, 10});
    std::string flood = "OPTIONS sip:x SIP/2.0\r\n";
    for (int i = 0; i < 20; ++i) flood += "X: 1\r\n";
    f.feed(flood);
    CHECK(f.next(&m, &e) == StreamFramer::Event::Error);
    CHECK(e.reason == "Too many header fields");
  }
  SUBCASE("a body over the limit") {
    StreamFramer f(ParseLimits{1024, 64});
    f.feed(replace(kOptions, "Content-Length: 0", "Content-Length: 5000"));
    CHECK(f.next(&m, &e) == StreamFramer::Event::Error);
    CHECK(e.status == 513);
  }
  StreamFramer dead;
  dead.feed("garbage without end of head\r\n\r\n");
  CHECK(dead.next(&m, &e) == StreamFramer::Event::Error);
}
