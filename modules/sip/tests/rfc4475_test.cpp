// RFC 4475 torture tests: every message of the corpus against the RFC's
// verdict (tests/corpus/sip/rfc4475/verdicts.tsv), plus the details the RFC
// calls out for individual messages.
#include <doctest/doctest.h>
#include <imp/sip/parser.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

using namespace imp::sip;

namespace {

std::string corpus(const std::string& name) {
  std::ifstream in(std::string(IMP_CORPUS_DIR) + "/rfc4475/" + name, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "missing corpus file " << name);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Verdict {
  std::string file, section, parser;
};

std::vector<Verdict> verdicts() {
  std::ifstream in(std::string(IMP_CORPUS_DIR) + "/rfc4475/verdicts.tsv");
  std::vector<Verdict> out;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    Verdict v;
    std::string title;
    std::getline(ss, v.file, '\t');
    std::getline(ss, v.section, '\t');
    std::getline(ss, title, '\t');
    std::getline(ss, v.parser, '\t');
    out.push_back(v);
  }
  return out;
}

Message parsed(const std::string& name) {
  auto r = Parser().parseDatagram(corpus(name));
  REQUIRE_MESSAGE(std::holds_alternative<Message>(r), name << ": " << std::get<ParseError>(r).reason);
  return std::get<Message>(std::move(r));
}

}  // namespace

TEST_CASE("all 49 RFC 4475 messages get the RFC's verdict") {
  auto all = verdicts();
  REQUIRE(all.size() == 49);
  int accepted = 0, rejected = 0;
  for (const auto& v : all) {
    CAPTURE(v.file);
    auto r = Parser().parseDatagram(corpus(v.file));
    bool ok = std::holds_alternative<Message>(r);
    std::string why = ok ? "" : std::get<ParseError>(r).reason;
    if (v.parser == "accept") CHECK_MESSAGE(ok, v.file << " (" << v.section << ") should parse: " << why);
    if (v.parser == "reject") CHECK_MESSAGE(!ok, v.file << " (" << v.section << ") should be rejected");
    accepted += ok;
    rejected += !ok;
    if (ok) {
      // What we accept we can write out and read back to the same message.
      const auto& m = std::get<Message>(r);
      auto again = Parser().parseDatagram(m.serialize());
      REQUIRE_MESSAGE(std::holds_alternative<Message>(again), v.file << " re-parse: " << std::get<ParseError>(again).reason);
      const auto& m2 = std::get<Message>(again);
      CHECK(m2.headers().size() == m.headers().size() + (m.count(HeaderId::ContentLength) ? 0 : 1) -
                                       (m.count(HeaderId::ContentLength) > 1 ? m.count(HeaderId::ContentLength) - 1 : 0));
      CHECK(m2.body() == m.body());
    }
  }
  MESSAGE("RFC 4475: " << accepted << " accepted, " << rejected << " rejected of " << all.size());
}

TEST_CASE("wsinv: a short tortuous INVITE reads as the RFC explains") {
  auto m = parsed("wsinv.dat");
  CHECK(m.method() == "INVITE");
  CHECK(m.requestUri() == "sip:vivekg@chair-dnrc.example.com;unknownparam");
  CHECK(m.to()->tag() == "1918181833n");
  CHECK(m.from()->tag() == "98asjd8");
  CHECK(m.from()->display == "J Rosenberg \\\\\\\"");
  CHECK(m.maxForwards() == 68);
  CHECK(m.cseq()->seq == 9);
  CHECK(m.cseq()->method == "INVITE");
  auto vias = m.vias();
  REQUIRE(vias.size() == 3);
  CHECK(vias[0].transport == "UDP");
  CHECK(vias[0].host == "192.0.2.2");
  CHECK(vias[0].branch() == "390skdjuw");
  CHECK(vias[1].transport == "TCP");
  CHECK(vias[1].host == "spindle.example.com");
  CHECK(vias[1].branch() == "z9hG4bK9ikj8");
  CHECK(vias[2].branch() == "z9hG4bK30239");
  CHECK(m.header("NewFangledHeader") == "newfangled value continued newfangled value");
  CHECK(m.header(HeaderId::Subject) == "");
  CHECK(m.routes().size() == 1);
  CHECK(m.body().size() == 150);
}

TEST_CASE("escapes: esc01, escnull, esc02 keep the escaped forms") {
  auto m = parsed("esc01.dat");
  auto uri = parseUri(m.requestUri());
  REQUIRE(uri);
  CHECK(uri->user == "sips%3Auser%40example.com");
  CHECK(unescape(uri->user) == "sips:user@example.com");
  CHECK(m.callId() == "esc01.239409asdfakjkn23onasd0-3234");
  auto contact = m.contacts().at(0);
  // Parameters keep their escaped spelling; comparison after unescape is the caller's.
  auto cu = parseUri(contact.uri);
  CHECK(cu->param("%6C%72") == "");
  CHECK(unescape(*cu->param("n%61me")) == "value%41");
  auto nul = parsed("escnull.dat");
  CHECK(unescape(parseUri(nul.to()->uri)->user)->find('\0') != std::string::npos);
  parsed("esc02.dat");
}

TEST_CASE("dblreq: trailing octets of a datagram are ignored") {
  auto m = parsed("dblreq.dat");
  CHECK(m.method() == "REGISTER");
  CHECK(m.body().empty());
}

TEST_CASE("mpart01: the binary multipart body is carried byte for byte") {
  auto raw = corpus("mpart01.dat");
  auto m = parsed("mpart01.dat");
  CHECK(m.body().size() == 553);
  CHECK(raw.find(m.body()) != std::string::npos);
  auto out = m.serialize();
  CHECK(out.substr(out.size() - m.body().size()) == m.body());
}

TEST_CASE("responses with unusual reason phrases parse") {
  auto u = parsed("unreason.dat");
  CHECK(u.statusCode() == 200);
  CHECK(u.reason().size() > 20);
  auto n = parsed("noreason.dat");
  CHECK(n.statusCode() == 100);
  CHECK(n.reason().empty());
}

TEST_CASE("rejections carry the status and a reason") {
  auto reason = [](const std::string& f) {
    auto r = Parser().parseDatagram(corpus(f));
    REQUIRE(std::holds_alternative<ParseError>(r));
    return std::get<ParseError>(r);
  };
  CHECK(reason("badvers.dat").status == 505);
  CHECK(reason("badinv01.dat").reason.rfind("Malformed Via", 0) == 0);
  CHECK(reason("ncl.dat").reason == "Malformed Content-Length");
  CHECK(reason("clerr.dat").reason == "Content-Length larger than the message");
  CHECK(reason("scalar02.dat").reason.rfind("Malformed", 0) == 0);
  CHECK(reason("quotbal.dat").reason == "Malformed To: unterminated quoted display name");
  CHECK(reason("ltgtruri.dat").reason.rfind("Malformed Request-URI", 0) == 0);
  CHECK(reason("lwsruri.dat").reason.rfind("Malformed Request-URI", 0) == 0);
  CHECK(reason("mismatch01.dat").reason == "CSeq method does not match the request method");
  CHECK(reason("mismatch02.dat").reason == "CSeq method does not match the request method");
  CHECK(reason("bigcode.dat").reason == "Status-Code is not 3 digits");
  CHECK(reason("mismatch01.dat").canRespond);
  // A bad start line fails before the headers are read, yet the request
  // carries what its 505/400 needs (the transport answers it).
  CHECK(reason("badvers.dat").canRespond);
  CHECK(reason("ltgtruri.dat").canRespond);
  CHECK(reason("lwsruri.dat").canRespond);
  CHECK_FALSE(reason("bigcode.dat").canRespond);  // a response is never answered
}

TEST_CASE("clerr on a stream waits for the rest of the body") {
  StreamFramer f;
  f.feed(corpus("clerr.dat"));
  Message m;
  ParseError e;
  CHECK(f.next(&m, &e) == StreamFramer::Event::NeedMore);
}

TEST_CASE("above the parser: insuf, unkscm, novelsc, bext01, zeromf, multi01, mcl01 parse") {
  CHECK_FALSE(parsed("insuf.dat").header(HeaderId::CallId));
  CHECK(parseUri(parsed("unkscm.dat").requestUri())->scheme == UriScheme::Other);
  CHECK(parseUri(parsed("novelsc.dat").requestUri())->schemeText == "soap.beep");
  CHECK(parsed("bext01.dat").header(HeaderId::ProxyRequire));
  CHECK(parsed("zeromf.dat").maxForwards() == 0);
  CHECK(parsed("multi01.dat").count(HeaderId::CSeq) == 2);
  CHECK(parsed("mcl01.dat").count(HeaderId::ContentLength) == 2);
  CHECK(parsed("inv2543.dat").topVia()->branch().empty());
}
