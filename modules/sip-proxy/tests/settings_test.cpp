#include <doctest/doctest.h>
#include <imp/sip_proxy/settings.h>

using namespace imp::sip_proxy;

namespace {

FederationSettings fed(bool enabled, RoutingMode m = RoutingMode::Basic, bool email = false) {
  FederationSettings f;
  f.enabled = enabled;
  f.routingMode = m;
  f.emailForInterdomain = email;
  return f;
}

bool startsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

}  // namespace

TEST_CASE("FED-4: enabling and disabling federation, the change is described") {
  FederationUpdate u;
  u.enabled = true;
  FederationSettings after;
  CHECK(checkFederationChange(fed(false), u, 0, &after) == "");
  CHECK(after == fed(true));
  CHECK(describeFederationChange(fed(false), after) == "enabled: off -> on");
  u.routingMode = RoutingMode::Advanced;
  CHECK(checkFederationChange(fed(false), u, 0, &after) == "");
  CHECK(describeFederationChange(fed(false), after) == "enabled: off -> on; routing mode: basic -> advanced");
  CHECK(describeFederationChange(after, after) == "");
  FederationUpdate off;
  off.enabled = false;
  CHECK(checkFederationChange(fed(true, RoutingMode::Advanced), off, 0, &after) == "");
  CHECK(after == fed(false, RoutingMode::Advanced));
  CHECK(FederationUpdate{}.empty());
}

TEST_CASE("FED-4: the warning says what enabling does and that it applies live") {
  auto w = federationEnableWarnings(2);
  REQUIRE(w.size() == 1);
  CHECK(w[0].find("not licensed IMP users are routed to the Microsoft server through static routes") != std::string::npos);
  CHECK(w[0].find("Make sure static routes to the Microsoft server exist") != std::string::npos);
  CHECK(w[0].find("no restart is needed") != std::string::npos);
  auto none = federationEnableWarnings(0);
  REQUIRE(none.size() == 2);
  CHECK(startsWith(none[1], "No static route of type 'domain' is configured yet"));
}

TEST_CASE("FED-5: email address for inter-domain federation excludes partitioned federation") {
  FederationSettings after;
  FederationUpdate enable;
  enable.enabled = true;
  CHECK(checkFederationChange(fed(false, RoutingMode::Basic, true), enable, 0, &after) ==
        "partitioned intradomain federation cannot be enabled while 'email address for inter-domain federation' is on; "
        "turn that off first (FED-5)");
  FederationUpdate email;
  email.emailForInterdomain = true;
  CHECK(checkFederationChange(fed(true), email, 0, &after) ==
        "'email address for inter-domain federation' cannot be turned on while partitioned intradomain federation is "
        "enabled; disable federation first (FED-5)");
  FederationUpdate both;
  both.enabled = true;
  both.emailForInterdomain = true;
  CHECK(checkFederationChange(fed(false), both, 0, &after) ==
        "partitioned intradomain federation and 'email address for inter-domain federation' cannot both be enabled (FED-5)");
  // Allowed: the flag alone while federation is off; switching both over at once.
  CHECK(checkFederationChange(fed(false), email, 0, &after) == "");
  FederationUpdate swap;
  swap.enabled = false;
  swap.emailForInterdomain = true;
  CHECK(checkFederationChange(fed(true), swap, 0, &after) == "");
  CHECK(after == fed(false, RoutingMode::Basic, true));
  // A change that switches nothing on is never blocked by an old inconsistency.
  FederationUpdate mode;
  mode.routingMode = RoutingMode::Basic;
  CHECK(checkFederationChange(fed(true, RoutingMode::Basic, true), mode, 0, &after) == "");
}

TEST_CASE("FED-6: advanced routing mode is refused while inter-cluster peers exist") {
  FederationSettings after;
  FederationUpdate adv;
  adv.routingMode = RoutingMode::Advanced;
  CHECK(checkFederationChange(fed(true), adv, 0, &after) == "");
  CHECK(checkFederationChange(fed(true), adv, 2, &after) ==
        "advanced routing mode is only valid for a single cluster, and 2 inter-cluster peer(s) are configured; remove "
        "them or keep basic mode (FED-6)");
  FederationUpdate enable;
  enable.enabled = true;
  CHECK(startsWith(checkFederationChange(fed(false, RoutingMode::Advanced), enable, 1, &after),
                   "advanced routing mode is only valid for a single cluster"));
  CHECK(checkFederationChange(fed(false, RoutingMode::Basic), enable, 1, &after) == "");
  FederationUpdate basic;
  basic.routingMode = RoutingMode::Basic;
  CHECK(checkFederationChange(fed(true, RoutingMode::Advanced), basic, 3, &after) == "");
  CHECK(parseRoutingMode("Advanced") == RoutingMode::Advanced);
  CHECK(parseRoutingMode("BASIC") == RoutingMode::Basic);
  CHECK_FALSE(parseRoutingMode("fast"));
}

TEST_CASE("TLS-1: listener ports") {
  REQUIRE(listenerCatalog().size() == 4);
  CHECK(findListener("tcp")->defaultPort == 5060);
  CHECK(findListener("tls-server-auth")->defaultPort == 5061);
  CHECK(findListener("tls-peer-auth")->defaultPort == 5062);
  CHECK(findListener("tls-peer-auth")->auth == "mutual");
  REQUIRE(findListener("udp") != nullptr);
  CHECK(findListener("udp")->defaultPort == 5060);
  CHECK(findListener("udp")->transport == "UDP");
  CHECK(findListener("udp")->displayName == "Default Cisco SIP Proxy UDP Listener");
  CHECK_FALSE(findListener("udp")->enabledByDefault);  // Lync and OCS do not use UDP
  CHECK(findListener("tcp")->enabledByDefault);
  CHECK(findListener("nope") == nullptr);
  CHECK(checkPort(1) == "");
  CHECK(checkPort(65535) == "");
  CHECK(checkPort(0) == "port 0 is out of range 1..65535");
  CHECK(checkPort(65536) == "port 65536 is out of range 1..65535");
  std::vector<Listener> ok = {{"tcp", true, 5060}, {"tls-server-auth", true, 5062}, {"tls-peer-auth", true, 5061}};
  CHECK(checkListenerPorts(ok, "tls-peer-auth") == "");
  std::vector<Listener> clash = {{"tcp", true, 5060}, {"tls-server-auth", true, 5061}, {"tls-peer-auth", true, 5061}};
  CHECK(checkListenerPorts(clash, "tls-peer-auth") ==
        "port 5061 is already used by the enabled listener 'tls-server-auth'; choose another port for 'tls-peer-auth' "
        "or move that listener first (TLS-1)");
  CHECK(checkListenerPorts(clash, "tls-server-auth").find("enabled listener 'tls-peer-auth'") != std::string::npos);
  // A disabled listener binds nothing, so it does not hold its port.
  std::vector<Listener> disabled = {{"tcp", true, 5060}, {"tls-server-auth", false, 5061}, {"tls-peer-auth", true, 5061}};
  CHECK(checkListenerPorts(disabled, "tls-peer-auth") == "");
  disabled[1].enabled = true;
  CHECK(checkListenerPorts(disabled, "tls-server-auth").find("port 5061 is already used") == 0);
  // UDP and TCP are different sockets: both may take 5060; UDP and TLS clash
  // only with another UDP listener.
  std::vector<Listener> udp = {{"tcp", true, 5060}, {"tls-server-auth", true, 5061}, {"udp", true, 5060}};
  CHECK(checkListenerPorts(udp, "udp") == "");
  udp[2].port = 5061;
  CHECK(checkListenerPorts(udp, "udp") == "");
}

TEST_CASE("TLS-2: peer subject CNs") {
  std::string out;
  CHECK(normalisePeerSubject("Lync-FE1.Example.com", &out) == "");
  CHECK(out == "lync-fe1.example.com");
  CHECK(normalisePeerSubject("pool01", &out) == "");
  CHECK(normalisePeerSubject("10.1.10.100", &out) == "");
  CHECK(out == "10.1.10.100");
  CHECK(normalisePeerSubject("2001:DB8::1", &out) == "");
  CHECK(out == "2001:db8::1");
  CHECK(normalisePeerSubject("", &out) == "subject CN is empty");
  CHECK(normalisePeerSubject("*.example.com", &out) ==
        "subject CN '*.example.com' may not be a wildcard: add the CN of each server and pool certificate (TLS-2)");
  CHECK(normalisePeerSubject("CN=lync.example.com, O=Example", &out).find("must be the common name only") != std::string::npos);
  CHECK(normalisePeerSubject("bad_name.example.com", &out) ==
        "subject CN 'bad_name.example.com' may hold only letters, digits, '-' and '.' (a subject CN is a DNS name or an "
        "IP address)");
  CHECK(normalisePeerSubject("10.1.10.300", &out).find("is not a valid IPv4 address") != std::string::npos);
}

TEST_CASE("TLS-3: versions, min > max refused, 1.0/1.1 flagged") {
  CHECK(parseTlsVersion("1.0") == TlsVersion::V1_0);
  CHECK(parseTlsVersion("TLSv1.2") == TlsVersion::V1_2);
  CHECK(parseTlsVersion("1.3") == TlsVersion::V1_3);
  CHECK_FALSE(parseTlsVersion("1.4"));
  CHECK_FALSE(parseTlsVersion("ssl3"));
  CHECK(checkTlsVersions(TlsVersion::V1_0, TlsVersion::V1_3) == "");
  CHECK(checkTlsVersions(TlsVersion::V1_2, TlsVersion::V1_2) == "");
  CHECK(checkTlsVersions(TlsVersion::V1_3, TlsVersion::V1_2) == "min-version 1.3 is higher than max-version 1.2");
  CHECK(tlsVersionWarnings(TlsVersion::V1_2).empty());
  auto w = tlsVersionWarnings(TlsVersion::V1_0);
  REQUIRE(w.size() == 1);
  CHECK(w[0].find("only for OCS 2007 R2") != std::string::npos);
  CHECK(tlsVersionWarnings(TlsVersion::V1_1).size() == 1);
}

TEST_CASE("TLS-3: cipher lists are checked by OpenSSL") {
  CHECK(checkCipherList("HIGH:!aNULL:!MD5", TlsVersion::V1_2) == "");
  CHECK(checkCipherList("ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA", TlsVersion::V1_0) == "");
  CHECK(checkCipherList("ALL:@SECLEVEL=0", TlsVersion::V1_0) == "");
  CHECK(checkCipherList("AES128-SHA,AES256-SHA", TlsVersion::V1_2) == "");
  CHECK(checkCipherList("HIGH:TLS_AES_128_GCM_SHA256", TlsVersion::V1_2) == "");
  CHECK(checkCipherList("TLS_AES_256_GCM_SHA384", TlsVersion::V1_3) == "");
  CHECK(checkCipherList("", TlsVersion::V1_2) == "cipher list is empty");
  CHECK(checkCipherList("FOO", TlsVersion::V1_2) == "cipher list 'FOO' is invalid: no cipher match (OpenSSL)");
  // OpenSSL alone would skip the unknown element; it is refused as a typo.
  CHECK(checkCipherList("AES128-SHA:AES129-SHA", TlsVersion::V1_2) ==
        "cipher list 'AES128-SHA:AES129-SHA' is invalid: 'AES129-SHA': no cipher match (OpenSSL)");
  CHECK(checkCipherList("HIGH:TLS_FOO", TlsVersion::V1_2).find("'TLS_FOO' is not a TLS 1.3 suite OpenSSL knows") !=
        std::string::npos);
  CHECK(checkCipherList("TLS_AES_256_GCM_SHA384", TlsVersion::V1_2).find("holds only TLS 1.3 suites") != std::string::npos);
  CHECK(checkCipherList("HIGH:\x01", TlsVersion::V1_2) == "cipher list holds a control or non-ASCII character");
  auto lists = splitCipherList("HIGH:TLS_AES_128_GCM_SHA256 !MD5,TLS_CHACHA20_POLY1305_SHA256");
  CHECK(lists.tls12 == "HIGH:!MD5");
  CHECK(lists.tls13 == "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256");
}

TEST_CASE("RT-7: incoming ACL patterns") {
  std::string out;
  AclKind kind = AclKind::Name;
  CHECK(normaliseAclPattern("ALL", &out, &kind) == "");
  CHECK(out == "all");
  CHECK(kind == AclKind::All);
  CHECK(normaliseAclPattern("10.1.10.100", &out, &kind) == "");
  CHECK(kind == AclKind::Address);
  CHECK(normaliseAclPattern("2001:DB8:0:0::1", &out, &kind) == "");
  CHECK(out == "2001:db8::1");
  CHECK(normaliseAclPattern("[::1]", &out, &kind) == "");
  CHECK(out == "::1");
  CHECK(normaliseAclPattern("Foo.COM", &out, &kind) == "");
  CHECK(out == "foo.com");
  CHECK(kind == AclKind::Name);
  CHECK(normaliseAclPattern("ocs1.foo.com.", &out, &kind) == "");
  CHECK(out == "ocs1.foo.com");
  const std::string hint = " (an ACL pattern is 'all', an IP address, or a DNS domain / FQDN)";
  CHECK(normaliseAclPattern("", &out, &kind) == "address pattern is empty" + hint);
  CHECK(normaliseAclPattern("10.1.10.300", &out, &kind) == "address pattern '10.1.10.300' is not a valid IPv4 address" + hint);
  CHECK(normaliseAclPattern("2001:db8::g", &out, &kind) == "address pattern '2001:db8::g' is not a valid IPv6 address");
  CHECK(normaliseAclPattern("10.0.0.0/8", &out, &kind).find("address ranges are not supported") != std::string::npos);
  CHECK(normaliseAclPattern("lync", &out, &kind) ==
        "address pattern 'lync' needs at least 2 labels (a fully qualified name such as host.example.com)" + hint);
  CHECK(normaliseAclPattern("foo..com", &out, &kind) == "address pattern 'foo..com' has an empty label" + hint);
  CHECK(normaliseAclPattern("allow from all", &out, &kind).find("may hold only letters") != std::string::npos);
  CHECK(normaliseAclPattern("-foo.com", &out, &kind).find("may not start or end with '-'") != std::string::npos);
}

TEST_CASE("canonicalIp: the IPv4 fast path agrees with inet_pton/inet_ntop") {
  // Canonical dotted quads come back unchanged.
  for (const char* ip : {"127.0.0.1", "0.0.0.0", "255.255.255.255", "10.20.30.40", "192.168.0.100"})
    CHECK(canonicalIp(ip) == std::optional<std::string>(ip));
  CHECK(canonicalIp("[10.0.0.1]") == std::optional<std::string>("10.0.0.1"));
  // Not an address: leading zeros (inet_pton refuses them), out of range,
  // too few or too many parts, empty parts, trailing garbage, names.
  for (const char* bad : {"010.0.0.1", "1.2.3.04", "256.1.1.1", "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.", ".1.2.3",
                          "1.2.3.4 ", "1.2.3.4a", "1234.1.1.1", "example.com", "", "[]"})
    CHECK_MESSAGE(!canonicalIp(bad), bad);
  // IPv6 still goes through libc and comes back in its canonical form.
  CHECK(canonicalIp("[2001:DB8:0:0::1]") == std::optional<std::string>("2001:db8::1"));
  CHECK(canonicalIp("::ffff:10.0.0.1") == std::optional<std::string>("::ffff:10.0.0.1"));
}
