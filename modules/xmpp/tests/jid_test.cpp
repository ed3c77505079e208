// JID preparation and enforcement: RFC 7622 §3.5 examples, PRECIS case
// mapping, IDNA domainparts, length limits and precise reasons.
#include <imp/xmpp/jid.h>

#include <doctest/doctest.h>

#include <string>
#include <unordered_set>

using imp::xmpp::Jid;

namespace {

Jid must(std::string_view s) {
  std::string why;
  auto j = Jid::parse(s, &why);
  INFO("address: " << s << " why: " << why);
  REQUIRE(j.has_value());
  return *j;
}

std::string refused(std::string_view s) {
  std::string why;
  auto j = Jid::parse(s, &why);
  INFO("address: " << s);
  CHECK_FALSE(j.has_value());
  CHECK_FALSE(why.empty());
  return why;
}

}  // namespace

TEST_CASE("RFC 7622 §3.5.1: the valid examples parse, with the parts RFC 7622 gives") {
  auto j = must("juliet@example.com");
  CHECK(j.local() == "juliet");
  CHECK(j.domain() == "example.com");
  CHECK(j.resource().empty());
  CHECK(must("juliet@example.com/foo").resource() == "foo");
  CHECK(must("juliet@example.com/foo bar").resource() == "foo bar");
  auto at = must("juliet@example.com/foo@bar");
  CHECK(at.local() == "juliet");
  CHECK(at.resource() == "foo@bar");
  CHECK(must("foo\\20bar@example.com").local() == "foo\\20bar");
  CHECK(must("fussball@example.com").local() == "fussball");
  CHECK(must("fu\xC3\x9F" "ball@example.com").local() == "fu\xC3\x9F" "ball");  // ß stays (PVALID exception)
  CHECK(must("\xCF\x80@example.com").local() == "\xCF\x80");                     // π
  // Σ (U+03A3) maps to σ (U+03C3) by toLowerCase(); ς (U+03C2) is kept.
  CHECK(must("\xCE\xA3@example.com/foo").local() == "\xCF\x83");
  CHECK(must("\xCF\x83@example.com/foo").local() == "\xCF\x83");
  CHECK(must("\xCF\x82@example.com/foo").local() == "\xCF\x82");
  CHECK(must("king@example.com/\xE2\x99\x9A").resource() == "\xE2\x99\x9A");  // ♚ in a resource is fine
  auto d = must("example.com");
  CHECK_FALSE(d.hasLocal());
  CHECK(d.full() == "example.com");
  CHECK(must("example.com/foobar").resource() == "foobar");
  auto ab = must("a.example.com/b@example.net");
  CHECK_FALSE(ab.hasLocal());
  CHECK(ab.domain() == "a.example.com");
  CHECK(ab.resource() == "b@example.net");
}

TEST_CASE("RFC 7622 §3.5.2: the invalid examples are refused with the reason") {
  CHECK(refused("\"juliet\"@example.com").find("U+0022") != std::string::npos);
  CHECK(refused("foo bar@example.com").find("U+0020") != std::string::npos);
  CHECK(refused("@example.com/").find("empty") != std::string::npos);
  // U+2163 ROMAN NUMERAL FOUR has a compatibility decomposition: Freeform only.
  CHECK(refused("henry\xE2\x85\xA3@example.com").find("U+2163") != std::string::npos);
  // U+265A BLACK CHESS KING is a symbol: not in the IdentifierClass.
  CHECK(refused("\xE2\x99\x9A@example.com").find("U+265A") != std::string::npos);
  CHECK(refused("juliet@").find("domainpart") != std::string::npos);
  CHECK(refused("/foobar").find("domainpart") != std::string::npos);
}

TEST_CASE("UsernameCaseMapped: case, width and normalisation of the localpart (RFC 8265 §3.3)") {
  CHECK(must("JULIET@EXAMPLE.COM").full() == "juliet@example.com");
  CHECK(must("Juliet@Example.Com/Balcony").full() == "juliet@example.com/Balcony");  // resource keeps case
  // Ñ (U+00D1) -> ñ (U+00F1); N + U+0303 composes to the same.
  CHECK(must("\xC3\x91" "o\xC3\xB1o@example.com").local() == "\xC3\xB1o\xC3\xB1o");
  CHECK(must("N\xCC\x83@example.com").local() == "\xC3\xB1");
  // Fullwidth ＪＵＬＩＥＴ (U+FF2A...) -> juliet.
  CHECK(must("\xEF\xBC\xAA\xEF\xBC\xB5\xEF\xBC\xAC\xEF\xBC\xA9\xEF\xBC\xA5\xEF\xBC\xB4@example.com").local() == "juliet");
  auto a = imp::xmpp::normaliseLocalpart("Ann.Smith");
  REQUIRE(a);
  CHECK(*a == "ann.smith");
  std::string why;
  CHECK_FALSE(imp::xmpp::normaliseLocalpart("ann@x", &why));
  CHECK(why == "localpart: U+0040 '@' is not allowed (RFC 7622 §3.3.1)");
  for (std::string_view bad : {"a&b", "a'b", "a/b", "a:b", "a<b", "a>b", "a\"b"}) {
    INFO(bad);
    CHECK_FALSE(imp::xmpp::normaliseLocalpart(bad));
  }
  CHECK_FALSE(imp::xmpp::normaliseLocalpart("a\tb", &why));
  CHECK(why.find("U+0009") != std::string::npos);
  // Middle dot: only between two 'l' (RFC 5892 A.3).
  CHECK(imp::xmpp::normaliseLocalpart("l\xC2\xB7l"));
  CHECK_FALSE(imp::xmpp::normaliseLocalpart("a\xC2\xB7" "b", &why));
  CHECK(why.find("U+00B7") != std::string::npos);
  // Bidi rule: Hebrew alef-bet is fine; a Hebrew string ending in a Latin letter is not.
  CHECK(imp::xmpp::normaliseLocalpart("\xD7\x90\xD7\x91"));
  CHECK_FALSE(imp::xmpp::normaliseLocalpart("\xD7\x90" "a", &why));
  CHECK(why.find("bidi") != std::string::npos);
  // Invalid UTF-8 is named with its offset.
  CHECK_FALSE(imp::xmpp::normaliseLocalpart("ab\xC3(", &why));
  CHECK(why == "localpart: invalid UTF-8 at octet 3");
  CHECK_FALSE(imp::xmpp::normaliseLocalpart("\xC0\xAF", &why));  // overlong '/'
  CHECK(why == "localpart: invalid UTF-8 at octet 0");
}

TEST_CASE("domainpart: lower case, trailing dot, IDNA, IP literals (RFC 7622 §3.2)") {
  CHECK(must("EXAMPLE.COM.").domain() == "example.com");
  CHECK(must("juliet@example.com./r").full() == "juliet@example.com/r");
  // An A-label becomes its U-label: xn--bcher-kva = bücher.
  CHECK(must("xn--bcher-kva.example").domain() == "b\xC3\xBC" "cher.example");
  CHECK(must("B\xC3\x9C" "CHER.example").domain() == "b\xC3\xBC" "cher.example");
  CHECK(must("[2001:DB8::1]").domain() == "[2001:db8::1]");
  CHECK(must("juliet@192.0.2.1").domain() == "192.0.2.1");
  std::string why;
  CHECK_FALSE(Jid::parse("juliet@[nope]", &why));
  CHECK(why == "domainpart: 'nope' is not an IPv6 address");
  CHECK_FALSE(Jid::parse("juliet@exa mple.com", &why));
  CHECK(why.find("disallowed") != std::string::npos);
  CHECK_FALSE(Jid::parse("juliet@example..com", &why));
  CHECK(why.find("empty label") != std::string::npos);
  CHECK_FALSE(Jid::parse("juliet@-example.com", &why));
  CHECK(why.find("starts with '-'") != std::string::npos);
  CHECK_FALSE(Jid::parse("juliet@.", &why));
  CHECK(why.find("domainpart") != std::string::npos);
}

TEST_CASE("lengths: labels of 63 octets, parts of 1023 octets (RFC 7622 §3.1, §3.2)") {
  const std::string l63(63, 'a'), l64(64, 'a');
  CHECK(Jid::parse("u@" + l63 + ".example"));
  std::string why;
  CHECK_FALSE(Jid::parse("u@" + l64 + ".example", &why));
  CHECK(why.find("63") != std::string::npos);
  const std::string p1023(1023, 'a'), p1024(1024, 'a');
  CHECK(Jid::parse(p1023 + "@example.com"));
  CHECK_FALSE(Jid::parse(p1024 + "@example.com", &why));
  CHECK(why == "localpart: 1024 octets, more than 1023 (RFC 7622 §3.1)");
  CHECK(Jid::parse("u@example.com/" + p1023));
  CHECK_FALSE(Jid::parse("u@example.com/" + p1024, &why));
  CHECK(why == "resourcepart: 1024 octets, more than 1023 (RFC 7622 §3.1)");
  // 16 labels of 63 octets: 1023 octets in all, the most a domainpart may have.
  std::string d;
  for (int i = 0; i < 16; ++i) d += (i ? "." : "") + l63;
  REQUIRE(d.size() == 1023);
  CHECK(Jid::parse("u@" + d));
  CHECK_FALSE(Jid::parse("u@" + d + ".a", &why));
  CHECK(why == "domainpart: 1025 octets, more than 1023 (RFC 7622 §3.1)");
  // Localpart length counts octets: 'é' is two.
  std::string e512;
  for (int i = 0; i < 512; ++i) e512 += "\xC3\xA9";
  CHECK_FALSE(Jid::parse(e512 + "@example.com", &why));
  CHECK(why == "localpart: 1024 octets, more than 1023 (RFC 7622 §3.1)");
}

TEST_CASE("resourcepart: OpaqueString (RFC 8265 §4.2)") {
  // U+3000 IDEOGRAPHIC SPACE -> U+0020; e + U+0301 -> é (NFC); case kept.
  CHECK(must("a@b/x\xE3\x80\x80y").resource() == "x y");
  CHECK(must("a@b/Cafe\xCC\x81").resource() == "Caf\xC3\xA9");
  CHECK(must("a@b/ lead").resource() == " lead");
  std::string why;
  CHECK_FALSE(Jid::parse("a@b/x\x07y", &why));
  CHECK(why.find("U+0007") != std::string::npos);
  CHECK_FALSE(Jid::parse("a@b/x\xC2\x85y", &why));  // U+0085 NEL: a control
  CHECK(why.find("U+0085") != std::string::npos);
  CHECK_FALSE(Jid::parse("a@b/x\xE2\x80\x8By", &why));  // U+200B: default ignorable
  CHECK(why.find("U+200B") != std::string::npos);
  CHECK_FALSE(Jid::parse("a@b/", &why));
  CHECK(why.find("resourcepart") != std::string::npos);
}

TEST_CASE("Jid API: bare, full, withResource, comparison and hash") {
  auto j = must("Ann@Example.com/Phone");
  CHECK(j.bare().full() == "ann@example.com");
  CHECK(j.bareString() == "ann@example.com");
  CHECK(j.isBare() == false);
  CHECK(j.bare().isBare());
  auto w = j.withResource("Desk");
  REQUIRE(w);
  CHECK(w->full() == "ann@example.com/Desk");
  CHECK_FALSE(j.withResource("bad\x01"));
  CHECK(*j.withResource("") == j.bare());
  CHECK(must("ANN@EXAMPLE.COM/Phone") == j);
  CHECK(must("ann@example.com/phone") != j);
  CHECK(must("ann@example.com") < j);
  std::unordered_set<Jid> set{j, must("ann@EXAMPLE.com/Phone"), must("bob@example.com")};
  CHECK(set.size() == 2);
  auto parts = Jid::fromParts("ANN", "example.com", "r");
  REQUIRE(parts);
  CHECK(parts->full() == "ann@example.com/r");
  CHECK_FALSE(Jid().valid());
}
