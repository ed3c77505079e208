// The DNS wire codec (issue 15, deliverable 1): query encoding, reply
// decoding with name compression and strict question checks, SRV (RFC 2782),
// NAPTR (RFC 3403), TTLs, and refusal of truncated and malformed replies.
#include <doctest/doctest.h>
#include <imp/net/dns_client.h>
#include <imp/net/dns_wire.h>

#include <fakes/fake_dns.h>

#include <stdexcept>
#include <string>
#include <vector>

using namespace imp::net;
using namespace imp::testing;

TEST_CASE("buildDnsQuery: wire format with RD set, refuses names it cannot encode") {
  auto q = buildDnsQuery(0x1234, "Ab.c.", kDnsTypePtr);
  CHECK(q == std::string("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x02"
                         "Ab\x01"
                         "c\x00\x00\x0c\x00\x01",
                         12 + 6 + 4));
  CHECK(buildDnsQuery(1, "", kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, ".", kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, "a..b", kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, ".a", kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, std::string(63, 'a') + ".b", kDnsTypeA).size() == 12 + 1 + 63 + 2 + 1 + 4);
  CHECK(buildDnsQuery(1, std::string(64, 'a') + ".b", kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, "a b.c", kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, "a\\.b", kDnsTypeA).empty());
  std::string longName;
  while (longName.size() < 260) longName += "abcdefghi.";
  longName.resize(253);
  CHECK_FALSE(buildDnsQuery(1, longName, kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, longName + "x", kDnsTypeA).empty());
}

TEST_CASE("reverseName: in-addr.arpa, nibbles under ip6.arpa, v4-mapped as IPv4") {
  CHECK(reverseName("192.0.2.1") == "1.2.0.192.in-addr.arpa");
  CHECK(reverseName("2001:db8::567:89ab") == "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  CHECK(reverseName("::ffff:192.0.2.7") == "7.2.0.192.in-addr.arpa");
  CHECK(reverseName("example.com").empty());
  CHECK(reverseName("192.0.2.256").empty());
  CHECK(reverseName("").empty());
}

TEST_CASE("parseDnsServers: accepted forms") {
  auto s = parseDnsServers(" 10.0.0.2, 10.0.0.3:5353,[2001:db8::1]:53 , 2001:db8::2,[::1]");
  REQUIRE(s.size() == 5);
  CHECK(s[0].address == "10.0.0.2");
  CHECK(s[0].port == 53);
  CHECK(s[1].address == "10.0.0.3");
  CHECK(s[1].port == 5353);
  CHECK(s[2].address == "2001:db8::1");
  CHECK(s[2].port == 53);
  CHECK(s[3].address == "2001:db8::2");
  CHECK(s[3].port == 53);
  CHECK(s[4].address == "::1");
  CHECK(s[4].port == 53);
  CHECK(parseDnsServers("").empty());
  CHECK(parseDnsServers("  ").empty());
  CHECK(parseDnsServers("127.0.0.1:65535").at(0).port == 65535);
}

TEST_CASE("parseDnsServers: refused elements are named in the message") {
  auto message = [](const std::string& list) -> std::string {
    try {
      parseDnsServers(list);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  CHECK(message("10.0.0.2, dns.example") == "dns server 'dns.example': not an IP address");
  CHECK(message("10.0.0.3:0") == "dns server '10.0.0.3:0': port out of range 1..65535");
  CHECK(message("10.0.0.3:65536") == "dns server '10.0.0.3:65536': port out of range 1..65535");
  CHECK(message("10.0.0.3:99999999999999999999999") ==
        "dns server '10.0.0.3:99999999999999999999999': port out of range 1..65535");
  CHECK(message("10.0.0.3:dns") == "dns server '10.0.0.3:dns': port 'dns' is not a number");
  CHECK(message("10.0.0.3:") == "dns server '10.0.0.3:': missing port after ':'");
  CHECK(message("[2001:db8::1") == "dns server '[2001:db8::1': missing ']'");
  CHECK(message("[2001:db8::1]53") == "dns server '[2001:db8::1]53': expected ':port' after ']'");
  CHECK(message("[dns.example]:53") == "dns server '[dns.example]:53': not an IP address");
  CHECK(message("10.0.0.256") == "dns server '10.0.0.256': not an IP address");
  CHECK(message("10.0.0.2,,10.0.0.3") == "dns server list '10.0.0.2,,10.0.0.3': empty element");
  CHECK(message("10.0.0.2,") == "dns server list '10.0.0.2,': empty element");
}

TEST_CASE("parseDnsReply: answers, compression, CNAME chains") {
  auto q = dnsQuestionOf("1.2.0.192.in-addr.arpa", kDnsTypePtr);
  auto r = parseDnsReply(dnsMakeReply(7, 0, q, {{"", kDnsTypePtr, "Lync.Example.COM"}, {"", kDnsTypePtr, "lync.example.com"},
                                             {"", kDnsTypePtr, "bad name.example"}, {"other.arpa", kDnsTypePtr, "x.example"}}),
                         kDnsTypePtr);
  REQUIRE(r);
  CHECK(r->id == 7);
  CHECK(r->rcode == 0);
  CHECK(r->question == "1.2.0.192.in-addr.arpa");
  CHECK(r->values == std::vector<std::string>{"lync.example.com"});  // deduplicated; not a host name; not the owner
  CHECK_FALSE(r->truncated);

  // RFC 2317 style: the PTR hangs off a CNAME target.
  r = parseDnsReply(dnsMakeReply(1, 0, q, {{"", kDnsTypeCname, "1.0/25.2.0.192.in-addr.arpa"},
                                        {"1.0/25.2.0.192.in-addr.arpa", kDnsTypePtr, "h.example"}}),
                    kDnsTypePtr);
  REQUIRE(r);
  CHECK(r->values == std::vector<std::string>{"h.example"});

  auto qa = dnsQuestionOf("www.example.com", kDnsTypeA);
  r = parseDnsReply(dnsMakeReply(2, 0, qa, {{"", kDnsTypeCname, "web.example.net"}, {"web.example.net", kDnsTypeA, "192.0.2.5"},
                                         {"web.example.net", kDnsTypeA, "192.0.2.6"}, {"x.example", kDnsTypeA, "192.0.2.66"}}),
                    kDnsTypeA);
  REQUIRE(r);
  CHECK(r->values == std::vector<std::string>{"192.0.2.5", "192.0.2.6"});

  auto q6 = dnsQuestionOf("www.example.com", kDnsTypeAaaa);
  r = parseDnsReply(dnsMakeReply(3, 0, q6, {{"", kDnsTypeAaaa, "2001:db8::5"}}), kDnsTypeAaaa);
  REQUIRE(r);
  CHECK(r->values == std::vector<std::string>{"2001:db8::5"});

  r = parseDnsReply(dnsMakeReply(4, kDnsRcodeNxDomain, qa, {}), kDnsTypeA);
  REQUIRE(r);
  CHECK(r->rcode == kDnsRcodeNxDomain);
  CHECK(r->values.empty());

  r = parseDnsReply(dnsMakeReply(5, 0, qa, {}, 0x0200), kDnsTypeA);
  REQUIRE(r);
  CHECK(r->truncated);

  // A question label holding a dot cannot pass for the dotted name.
  std::string oq("\x03" "a.b\x07" "example", 12);
  oq += '\0';
  dnsPut16(oq, kDnsTypeA);
  dnsPut16(oq, 1);
  r = parseDnsReply(dnsMakeReply(6, 0, oq, {}), kDnsTypeA);
  REQUIRE(r);
  CHECK(r->question == "a\\.b.example");
}

TEST_CASE("parseDnsReply: truncated and malicious input gives nullopt") {
  auto qa = dnsQuestionOf("www.example.com", kDnsTypeA);
  auto good = dnsMakeReply(9, 0, qa, {{"", kDnsTypeA, "192.0.2.1"}});
  REQUIRE(parseDnsReply(good, kDnsTypeA));
  for (std::size_t n = 0; n < good.size(); ++n) CHECK_FALSE(parseDnsReply(std::string_view(good).substr(0, n), kDnsTypeA));

  CHECK_FALSE(parseDnsReply(good, kDnsTypeAaaa));  // another question type
  auto notReply = good;
  notReply[2] = static_cast<char>(notReply[2] & 0x7f);
  CHECK_FALSE(parseDnsReply(notReply, kDnsTypeA));
  auto twoQuestions = good;
  twoQuestions[5] = 2;
  CHECK_FALSE(parseDnsReply(twoQuestions, kDnsTypeA));

  auto header = good.substr(0, 12);
  header[7] = 0;  // no answers: only the question is at stake
  auto withName = [&](const std::string& name) { return header + name + std::string("\x00\x01\x00\x01", 4); };
  REQUIRE(parseDnsReply(withName(dnsEncodeName("www.example.com")), kDnsTypeA));
  // pointer to itself (offset 12)
  CHECK_FALSE(parseDnsReply(withName(std::string("\xc0\x0c", 2)), kDnsTypeA));
  // two pointers pointing at each other: label run at 12 ends in a pointer to 14, 14 points to 12
  CHECK_FALSE(parseDnsReply(withName(std::string("\xc0\x0e\xc0\x0c", 4)), kDnsTypeA));
  // label then pointer back to the start of the same run: a loop
  CHECK_FALSE(parseDnsReply(withName(std::string("\x01" "a\xc0\x0c", 4)), kDnsTypeA));
  // pointer out of range, into the header, forwards
  CHECK_FALSE(parseDnsReply(withName(std::string("\xff\xff", 2)), kDnsTypeA));
  CHECK_FALSE(parseDnsReply(withName(std::string("\xc0\x02", 2)), kDnsTypeA));
  CHECK_FALSE(parseDnsReply(withName(std::string("\xc0\x10", 2)), kDnsTypeA));
  // pointer cut in half
  CHECK_FALSE(parseDnsReply(header + std::string("\xc0", 1), kDnsTypeA));
  // label types 01 and 10
  CHECK_FALSE(parseDnsReply(withName(std::string("\x41" "a\x00", 3)), kDnsTypeA));
  CHECK_FALSE(parseDnsReply(withName(std::string("\x81" "a\x00", 3)), kDnsTypeA));
  // label longer than the message
  CHECK_FALSE(parseDnsReply(withName(std::string("\x3f" "abc", 4)), kDnsTypeA));
  // name over 255 octets: five labels of 63
  std::string longName;
  for (int i = 0; i < 5; ++i) longName += static_cast<char>(63) + std::string(63, 'a');
  longName += '\0';
  CHECK_FALSE(parseDnsReply(withName(longName), kDnsTypeA));

  // answer record: pointer loop in its owner, rdata past the end, bad A length
  auto q = header + qa;
  q[7] = 1;  // ANCOUNT
  auto rec = [&](const std::string& owner, std::uint16_t type, std::uint16_t rdlen, const std::string& rdata) {
    std::string m = q + owner;
    dnsPut16(m, type);
    dnsPut16(m, 1);
    dnsPut16(m, 0);
    dnsPut16(m, 60);
    dnsPut16(m, rdlen);
    return m + rdata;
  };
  auto loopAt = static_cast<char>(q.size());
  CHECK_FALSE(parseDnsReply(rec(std::string("\xc0", 1) + loopAt, kDnsTypeA, 4, std::string(4, 'x')), kDnsTypeA));
  CHECK_FALSE(parseDnsReply(rec(std::string("\xc0\x0c", 2), kDnsTypeA, 400, std::string(4, 'x')), kDnsTypeA));
  CHECK_FALSE(parseDnsReply(rec(std::string("\xc0\x0c", 2), kDnsTypeA, 3, std::string(3, 'x')), kDnsTypeA));
  CHECK(parseDnsReply(rec(std::string("\xc0\x0c", 2), kDnsTypeA, 4, std::string(4, 'x')), kDnsTypeA));
  // PTR rdata whose name runs past its rdlength, or ends early
  auto qp = header + dnsQuestionOf("1.2.0.192.in-addr.arpa", kDnsTypePtr);
  qp[7] = 1;
  auto ptrRec = [&](std::uint16_t rdlen, const std::string& rdata) {
    std::string m = qp + std::string("\xc0\x0c", 2);
    dnsPut16(m, kDnsTypePtr);
    dnsPut16(m, 1);
    dnsPut16(m, 0);
    dnsPut16(m, 60);
    dnsPut16(m, rdlen);
    return m + rdata;
  };
  CHECK(parseDnsReply(ptrRec(3, std::string("\x01" "a\x00", 3)), kDnsTypePtr));
  CHECK_FALSE(parseDnsReply(ptrRec(2, std::string("\x01" "a\x00", 3)), kDnsTypePtr));
  CHECK_FALSE(parseDnsReply(ptrRec(4, std::string("\x01" "a\x00\x00", 4)), kDnsTypePtr));
  // PTR pointing at itself
  auto selfAt = static_cast<char>(qp.size() + 12);
  CHECK_FALSE(parseDnsReply(ptrRec(2, std::string("\xc0", 1) + selfAt), kDnsTypePtr));
}

TEST_CASE("parseDnsReply: SRV records (RFC 2782) with their TTLs, root target, CNAME, skipped targets") {
  auto q = dnsQuestionOf("_sip._tls.example.com", kDnsTypeSrv);
  auto r = parseDnsReply(dnsMakeReply(1, 0, q,
                                      {{"", kDnsTypeSrv, "10 60 5061 Sip1.Example.COM", 300},
                                       {"", kDnsTypeSrv, "10 20 5061 sip2.example.com", 120},
                                       {"", kDnsTypeSrv, "10 60 5061 sip1.example.com", 300},  // duplicate
                                       {"", kDnsTypeSrv, "20 0 5061 bad\\032name.example", 300},
                                       {"other.example.com", kDnsTypeSrv, "1 1 1 x.example", 300}}),
                         kDnsTypeSrv);
  REQUIRE(r);
  REQUIRE(r->srv.size() == 2);
  CHECK(r->srv[0] == SrvRecord{10, 60, 5061, "sip1.example.com", 120});  // each record capped at the set's TTL
  CHECK(r->srv[1] == SrvRecord{10, 20, 5061, "sip2.example.com", 120});
  CHECK(r->ttl == 120u);
  CHECK(r->values.empty());
  CHECK(r->naptr.empty());

  // "." : the service is decidedly not available (target "")
  r = parseDnsReply(dnsMakeReply(2, 0, q, {{"", kDnsTypeSrv, "0 0 0 ."}}), kDnsTypeSrv);
  REQUIRE(r);
  REQUIRE(r->srv.size() == 1);
  CHECK(r->srv[0].target.empty());
  CHECK(r->srv[0].port == 0);

  // Owned by a CNAME target; the chain's TTL bounds the answer's.
  r = parseDnsReply(dnsMakeReply(3, 0, q,
                                 {{"", kDnsTypeCname, "_sip._tls.hosted.example.net", 30},
                                  {"_sip._tls.hosted.example.net", kDnsTypeSrv, "5 5 5061 edge.example.net", 600}}),
                    kDnsTypeSrv);
  REQUIRE(r);
  REQUIRE(r->srv.size() == 1);
  CHECK(r->srv[0].target == "edge.example.net");
  CHECK(r->ttl == 30u);
  CHECK(r->srv[0].ttl == 30u);

  // A TTL with the top bit set counts as 0 (RFC 2181 §8).
  r = parseDnsReply(dnsMakeReply(4, 0, q, {{"", kDnsTypeSrv, "1 1 5060 a.example", 0x80000001u}}), kDnsTypeSrv);
  REQUIRE(r);
  CHECK(r->ttl == 0u);

  // A target that is not a host name is skipped and counted.
  std::string bad = dnsMakeReply(5, 0, q, {{"", kDnsTypeSrv, "1 1 5060 a.example"}});
  auto at = bad.find("\x01" "a\x07" "example");
  REQUIRE(at != std::string::npos);
  bad[at + 1] = '*';
  r = parseDnsReply(bad, kDnsTypeSrv);
  REQUIRE(r);
  CHECK(r->srv.empty());
  CHECK(r->skipped == 1);
}

TEST_CASE("parseDnsReply: SRV rdata must be whole and filled exactly") {
  auto q = dnsQuestionOf("_sip._tcp.example.com", kDnsTypeSrv);
  std::string header;
  dnsPut16(header, 9);
  dnsPut16(header, 0x8180);
  dnsPut16(header, 1);
  dnsPut16(header, 1);
  dnsPut16(header, 0);
  dnsPut16(header, 0);
  auto rec = [&](const std::string& rdata) {
    std::string m = header + q;
    dnsPut16(m, 0xC00C);
    dnsPut16(m, kDnsTypeSrv);
    dnsPut16(m, 1);
    dnsPut32(m, 60);
    dnsPut16(m, static_cast<std::uint16_t>(rdata.size()));
    return m + rdata;
  };
  std::string fields;
  dnsPut16(fields, 1);
  dnsPut16(fields, 2);
  dnsPut16(fields, 5060);
  CHECK(parseDnsReply(rec(fields + dnsEncodeName("a.example")), kDnsTypeSrv));
  CHECK_FALSE(parseDnsReply(rec(fields.substr(0, 5)), kDnsTypeSrv));                     // fields cut short
  CHECK_FALSE(parseDnsReply(rec(fields), kDnsTypeSrv));                                   // no target
  CHECK_FALSE(parseDnsReply(rec(fields + dnsEncodeName("a.example") + "x"), kDnsTypeSrv));  // bytes left over
  // The target compressed into the question: accepted (resolvers do).
  std::string compressed = fields;
  dnsPut16(compressed, 0xC00C + 0);
  auto r = parseDnsReply(rec(compressed), kDnsTypeSrv);
  REQUIRE(r);
  REQUIRE(r->srv.size() == 1);
  CHECK(r->srv[0].target == "_sip._tcp.example.com");
  // Every cut of a good reply is refused.
  auto good = rec(fields + dnsEncodeName("a.example"));
  for (std::size_t n = 0; n < good.size(); ++n) CHECK_FALSE(parseDnsReply(std::string_view(good).substr(0, n), kDnsTypeSrv));
}

TEST_CASE("parseDnsReply: NAPTR records (RFC 3403): fields, case, skipped records") {
  auto q = dnsQuestionOf("example.com", kDnsTypeNaptr);
  auto r = parseDnsReply(dnsMakeReply(1, 0, q,
                                      {{"", kDnsTypeNaptr, "10 50 S SIPS+D2T - _sips._tcp.example.com", 3600},
                                       {"", kDnsTypeNaptr, "20 50 s SIP+D2U - _sip._udp.example.com", 3600},
                                       {"", kDnsTypeNaptr, "30 10 u E2U+sip !^.*$!sip:info@example.com! .", 3600},
                                       // both regexp and replacement: an error (RFC 3403 §4.1)
                                       {"", kDnsTypeNaptr, "40 10 u E2U+sip !^.*$!sip:x@example.com! a.example", 3600},
                                       // neither
                                       {"", kDnsTypeNaptr, "50 10 - E2U+sip - .", 3600},
                                       // flags outside A-Z0-9
                                       {"", kDnsTypeNaptr, "60 10 s! SIP+D2T - _sip._tcp.example.com", 3600}}),
                         kDnsTypeNaptr);
  REQUIRE(r);
  REQUIRE(r->naptr.size() == 3);
  CHECK(r->naptr[0] == NaptrRecord{10, 50, "s", "sips+d2t", "", "_sips._tcp.example.com", 3600});
  CHECK(r->naptr[1] == NaptrRecord{20, 50, "s", "sip+d2u", "", "_sip._udp.example.com", 3600});
  CHECK(r->naptr[2] == NaptrRecord{30, 10, "u", "e2u+sip", "!^.*$!sip:info@example.com!", "", 3600});
  CHECK(r->skipped == 3);
  CHECK(r->ttl == 3600u);
}

TEST_CASE("parseDnsReply: NAPTR rdata must be whole and filled exactly") {
  auto q = dnsQuestionOf("example.com", kDnsTypeNaptr);
  auto good = dnsMakeReply(1, 0, q, {{"", kDnsTypeNaptr, "10 50 s SIP+D2T - _sip._tcp.example.com"}});
  REQUIRE(parseDnsReply(good, kDnsTypeNaptr));
  for (std::size_t n = 0; n < good.size(); ++n) CHECK_FALSE(parseDnsReply(std::string_view(good).substr(0, n), kDnsTypeNaptr));
  // A character-string that claims more bytes than the rdata holds.
  auto rdataAt = good.size() - dnsRdata(kDnsTypeNaptr, "10 50 s SIP+D2T - _sip._tcp.example.com").size();
  auto longFlags = good;
  longFlags[rdataAt + 4] = static_cast<char>(0x7f);
  CHECK_FALSE(parseDnsReply(longFlags, kDnsTypeNaptr));
  // rdlength one short: the replacement runs past its rdata.
  auto shortRd = good;
  shortRd[rdataAt - 1] = static_cast<char>(shortRd[rdataAt - 1] - 1);
  CHECK_FALSE(parseDnsReply(shortRd.substr(0, shortRd.size() - 1), kDnsTypeNaptr));
}

TEST_CASE("parseDnsReply: negative answers carry the SOA's negative TTL (RFC 2308)") {
  auto q = dnsQuestionOf("_sip._tcp.example.com", kDnsTypeSrv);
  auto r = parseDnsReply(dnsMakeReply(1, kDnsRcodeNxDomain, q, {}, 0, 900, 120), kDnsTypeSrv);
  REQUIRE(r);
  CHECK(r->rcode == kDnsRcodeNxDomain);
  CHECK(r->ttl == 120u);  // min(SOA TTL 900, MINIMUM 120)
  r = parseDnsReply(dnsMakeReply(2, 0, q, {}, 0, 30, 120), kDnsTypeSrv);  // NODATA
  REQUIRE(r);
  CHECK(r->empty());
  CHECK(r->ttl == 30u);
  r = parseDnsReply(dnsMakeReply(3, kDnsRcodeNxDomain, q, {}), kDnsTypeSrv);
  REQUIRE(r);
  CHECK_FALSE(r->ttl);
  // A malformed SOA refuses the reply.
  auto soa = dnsMakeReply(4, kDnsRcodeNxDomain, q, {}, 0, 900, 120);
  CHECK_FALSE(parseDnsReply(soa.substr(0, soa.size() - 1), kDnsTypeSrv));
  // A and PTR answers carry their TTL too.
  auto qa = dnsQuestionOf("www.example.com", kDnsTypeA);
  r = parseDnsReply(dnsMakeReply(5, 0, qa, {{"", kDnsTypeA, "192.0.2.1", 77}, {"", kDnsTypeA, "192.0.2.2", 99}}), kDnsTypeA);
  REQUIRE(r);
  CHECK(r->values == std::vector<std::string>{"192.0.2.1", "192.0.2.2"});
  CHECK(r->ttl == 77u);
}

TEST_CASE("parseDnsReply: at most 32 records, truncated SRV replies carry none") {
  auto q = dnsQuestionOf("_sip._tcp.example.com", kDnsTypeSrv);
  std::vector<DnsRr> many;
  for (int i = 0; i < 40; ++i) many.push_back({"", kDnsTypeSrv, "1 1 5060 h" + std::to_string(i) + ".example"});
  auto r = parseDnsReply(dnsMakeReply(1, 0, q, many), kDnsTypeSrv);
  REQUIRE(r);
  CHECK(r->srv.size() == 32);
  r = parseDnsReply(dnsMakeReply(2, 0, q, many, 0x0200), kDnsTypeSrv);
  REQUIRE(r);
  CHECK(r->truncated);
  CHECK(r->srv.empty());
}

TEST_CASE("dnsTypeName") {
  CHECK(dnsTypeName(kDnsTypeSrv) == "SRV");
  CHECK(dnsTypeName(kDnsTypeNaptr) == "NAPTR");
  CHECK(dnsTypeName(kDnsTypeAaaa) == "AAAA");
  CHECK(dnsTypeName(99) == "TYPE99");
}
