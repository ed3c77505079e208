// Request validation before routing (RFC 3261 §16.3) on the RFC 4475
// messages that a proxy must refuse, and on requests it must let through.
#include <doctest/doctest.h>

#include <imp/sip/parser.h>

#include <fstream>
#include <sstream>

#include "imp/sip_proxy/request_checks.h"

using namespace imp::sip_proxy;
using imp::sip::Message;
using imp::sip::Parser;

namespace {

Message corpus(const std::string& name) {
  std::ifstream in(std::string(IMP_CORPUS_DIR) + "/rfc4475/" + name, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "missing corpus file " << name);
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = Parser().parseDatagram(ss.str());
  REQUIRE_MESSAGE(std::holds_alternative<Message>(r), name << " does not parse");
  return std::get<Message>(std::move(r));
}

Message parsed(const std::string& text) {
  auto r = Parser().parseDatagram(text);
  REQUIRE(std::holds_alternative<Message>(r));
  return std::get<Message>(std::move(r));
}

}  // namespace

TEST_CASE("insuf: 400 naming every missing mandatory header field (RFC 4475 3.3.1)") {
  auto r = checkRequestSyntax(corpus("insuf.dat"));
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(r->reason == "Bad Request - missing To, From and Call-ID header fields");
}

TEST_CASE("multi01 and mcl01: 400 naming the repeated single-value fields (RFC 4475 3.3.8, 3.3.9)") {
  auto r = checkRequestSyntax(corpus("multi01.dat"));
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(r->reason == "Bad Request - several values in single-value header fields To, From, Call-ID, CSeq and Max-Forwards");
  auto m = checkRequestSyntax(corpus("mcl01.dat"));
  REQUIRE(m);
  CHECK(m->status == 400);
  CHECK(m->reason.find("Content-Length") != std::string::npos);
}

TEST_CASE("unkscm and novelsc: 416 naming the scheme (RFC 4475 3.3.2, 3.3.3)") {
  auto a = checkRequestSyntax(corpus("unkscm.dat"));
  REQUIRE(a);
  CHECK(a->status == 416);
  CHECK(a->reason.find("nobodyKnowsThisScheme") != std::string::npos);
  auto b = checkRequestSyntax(corpus("novelsc.dat"));
  REQUIRE(b);
  CHECK(b->status == 416);
  CHECK(b->reason.find("soap.beep") != std::string::npos);
}

TEST_CASE("bext01: 420 with Unsupported listing the Proxy-Require options, Require is left to the UAS") {
  auto msg = corpus("bext01.dat");
  CHECK_FALSE(checkRequestSyntax(msg));
  auto r = checkProxyRequire(msg);
  REQUIRE(r);
  CHECK(r->status == 420);
  REQUIRE(r->headers.size() == 1);
  CHECK(r->headers[0].first == "Unsupported");
  CHECK(r->headers[0].second == "noProxiesSupportThis, norDoAnyProxiesSupportThis");
  auto only = parsed("OPTIONS sip:a@b.example SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b.example>\r\n"
                     "From: <sip:c@d.example>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nRequire: foo\r\n\r\n");
  CHECK_FALSE(checkProxyRequire(only));
}

TEST_CASE("valid requests pass: domain-only Request-URI, RFC 2543 syntax without Max-Forwards, odd characters") {
  for (const char* f : {"wsinv.dat", "intmeth.dat", "esc01.dat", "escnull.dat", "esc02.dat", "lwsdisp.dat", "longreq.dat",
                        "semiuri.dat", "transports.dat", "mpart01.dat", "badbranch.dat", "unksm2.dat", "invut.dat",
                        "regaut01.dat", "cparam01.dat", "cparam02.dat", "regescrt.dat", "sdp01.dat", "inv2543.dat",
                        "zeromf.dat"}) {
    CAPTURE(f);
    auto m = corpus(f);
    CHECK_FALSE(checkRequestSyntax(m));
    CHECK_FALSE(checkProxyRequire(m));
  }
}
