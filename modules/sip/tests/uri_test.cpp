#include <doctest/doctest.h>
#include <imp/sip/uri.h>

using namespace imp::sip;

TEST_CASE("sip and sips URIs: user, password, host, port, params, headers") {
  auto u = parseUri("sip:alice:secret@atlanta.com:5061;transport=tls;lr?subject=project%20x&priority=urgent");
  REQUIRE(u);
  CHECK(u->scheme == UriScheme::Sip);
  CHECK(u->user == "alice");
  CHECK(u->password == "secret");
  CHECK(u->host == "atlanta.com");
  CHECK(u->port == 5061);
  CHECK(u->param("transport") == "tls");
  CHECK(u->param("LR") == "");
  CHECK_FALSE(u->param("maddr"));
  CHECK(u->headers == "?subject=project%20x&priority=urgent");
  CHECK(parseUri("SIPS:bob@biloxi.com")->scheme == UriScheme::Sips);
  CHECK(parseUri("sip:biloxi.com")->user.empty());
}

TEST_CASE("IPv6 references and user parts with ';' (semiuri)") {
  auto u = parseUri("sip:[2001:db8::10]:5070;transport=tcp");
  REQUIRE(u);
  CHECK(u->ipv6);
  CHECK(u->host == "2001:db8::10");
  CHECK(u->port == 5070);
  auto s = parseUri("sip:user;par=u%40example.net@example.com");
  REQUIRE(s);
  CHECK(s->user == "user;par=u%40example.net");
  CHECK(s->host == "example.com");
}

TEST_CASE("tel and other schemes") {
  auto t = parseUri("tel:+1-201-555-0123;phone-context=example.com");
  REQUIRE(t);
  CHECK(t->scheme == UriScheme::Tel);
  CHECK(t->opaque == "+1-201-555-0123");
  CHECK(t->param("phone-context") == "example.com");
  auto o = parseUri("im:ann@example.com");
  REQUIRE(o);
  CHECK(o->scheme == UriScheme::Other);
  CHECK(o->opaque == "ann@example.com");
}

TEST_CASE("bad URIs are refused with a reason") {
  std::string why;
  CHECK_FALSE(parseUri("<sip:user@example.com>", &why));
  CHECK(why == "bad scheme");  // "<sip" is not a scheme
  CHECK_FALSE(parseUri("sip:user@example.com; lr", &why));
  CHECK(why == "bad uri parameter name");
  CHECK_FALSE(parseUri("sip:user@[2001:db8::1", &why));
  CHECK(why == "unterminated IPv6 reference");
  CHECK_FALSE(parseUri("sip:user@host:99999", &why));
  CHECK(why == "bad port");
  CHECK_FALSE(parseUri("sip:us er@host", &why));
  CHECK(why == "bad character in user part");
  CHECK_FALSE(parseUri("sip:user@", &why));
  CHECK(why == "empty host");
  CHECK_FALSE(parseUri("sip:u@h;x=%4", &why));
  CHECK_FALSE(parseUri("tel:", &why));
  CHECK_FALSE(parseUri("1abc:x", &why));
  CHECK_FALSE(parseUri("http:has space", &why));
}

TEST_CASE("unescape") {
  CHECK(unescape("I%20have%20spaces") == "I have spaces");
  CHECK(unescape("%00")->size() == 1);
  CHECK_FALSE(unescape("%4"));
  CHECK_FALSE(unescape("%zz"));
}
