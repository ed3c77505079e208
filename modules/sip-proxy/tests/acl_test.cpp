#include <doctest/doctest.h>
#include <imp/sip_proxy/acl.h>

using namespace imp::sip_proxy;

namespace {
AclEntry entry(const std::string& pattern) {
  AclEntry e;
  std::string canon;
  REQUIRE(normaliseAclPattern(pattern, &canon, &e.kind) == "");
  e.pattern = canon;
  return e;
}
}  // namespace

TEST_CASE("RT-7: an empty ACL allows nothing") {
  AclMatcher m;
  CHECK(m.empty());
  CHECK_FALSE(m.allowsAddress("10.1.10.100"));
  CHECK_FALSE(m.allowsName("ocs1.foo.com"));
}

TEST_CASE("RT-7: 'all' allows every address and name") {
  AclMatcher m({entry("all")});
  CHECK(m.allowsAll());
  CHECK(m.allowsAddress("192.0.2.7"));
  CHECK(m.allowsAddress("2001:db8::7"));
  CHECK(m.allowsName("anything.example.org"));
  CHECK_FALSE(m.allowsAddress("not-an-ip"));
}

TEST_CASE("RT-7: address entries match exactly, IPv4 also in its IPv6-mapped form") {
  AclMatcher m({entry("10.1.10.100"), entry("2001:db8::1")});
  CHECK(m.allowsAddress("10.1.10.100"));
  CHECK(m.allowsAddress("::ffff:10.1.10.100"));
  CHECK(m.allowsAddress("2001:DB8:0::1"));
  CHECK(m.allowsAddress("[2001:db8::1]"));
  CHECK_FALSE(m.allowsAddress("10.1.10.101"));
  CHECK_FALSE(m.allowsAddress("::ffff:10.1.10.101"));
  CHECK_FALSE(m.allowsAddress("2001:db8::2"));
  CHECK_FALSE(m.allowsName("10.1.10.100.example.com"));
}

TEST_CASE("RT-7: a domain entry allows the name and every name below it, case-insensitively") {
  AclMatcher m({entry("foo.com"), entry("ocs1.bar.com")});
  CHECK(m.allowsName("foo.com"));
  CHECK(m.allowsName("ocs1.foo.com"));
  CHECK(m.allowsName("a.b.FOO.com."));
  CHECK(m.allowsName("OCS1.bar.com"));
  CHECK(m.allowsName("x.ocs1.bar.com"));
  CHECK_FALSE(m.allowsName("bar.com"));
  CHECK_FALSE(m.allowsName("ocs2.bar.com"));
  CHECK_FALSE(m.allowsName("evilfoo.com"));
  CHECK_FALSE(m.allowsName("foo.com.evil.net"));
  CHECK_FALSE(m.allowsName("com"));
  CHECK_FALSE(m.allowsName(""));
  CHECK_FALSE(m.allowsName("."));
  CHECK_FALSE(m.allowsAddress("10.0.0.1"));
}

TEST_CASE("RT-7: entries that are not canonical are ignored") {
  AclEntry bad;
  bad.pattern = "10.0.0.0/8";
  bad.kind = AclKind::Address;
  AclMatcher m({bad});
  CHECK(m.empty());
  CHECK_FALSE(m.allowsAddress("10.0.0.1"));
}
