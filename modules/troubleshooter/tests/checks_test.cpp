// The troubleshooter's checks (SV-6, TLS-5, TS-1..TS-11, HA-2) over Facts
// built in the test: each driven to PASS and FAIL (and WARN where it has
// one). Certificates are generated here with OpenSSL.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <imp/serviceability/capacity.h>
#include <imp/troubleshoot/checks.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <unistd.h>

#include <fakes/test_certs.h>

using namespace imp::troubleshoot;
namespace sp = imp::sip_proxy;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

sp::StaticRoute route(const std::string& pattern, const std::string& nextHop) {
  sp::StaticRoute r;
  r.pattern = pattern;
  r.nextHop = nextHop;
  return r;
}

sp::AclEntry aclEntry(const std::string& pattern, sp::AclKind kind) {
  sp::AclEntry e;
  e.pattern = pattern;
  e.kind = kind;
  return e;
}

// A next hop that resolved and answered OPTIONS with `status` (0: did not).
HopProbe hop(const std::string& host, int status, double rttMs, const std::string& error = "") {
  HopProbe h;
  h.host = host;
  h.hop = host + ":5061;TLS";
  h.addresses = {host == "lync.example.com" ? "10.0.0.6" : host};
  h.address = h.addresses.front();
  h.status = status;
  h.reason = status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "";
  h.rttMs = rttMs;
  h.error = error;
  if (status != 0) {
    h.peerCn = "lync.example.com";
    h.peerServerAuth = h.peerClientAuth = true;
  }
  return h;
}

// A healthy single-node federation setup.
Facts healthy() {
  Facts f;
  f.federation.enabled = true;
  f.domains = {"example.com"};
  f.routes = {route(".com.example.*", "10.0.0.5")};
  f.acl = {aclEntry("10.0.0.5", sp::AclKind::Address)};
  f.listeners = {{"tcp", true, 5060}, {"tls-server-auth", true, 5063}, {"tls-peer-auth", true, 5061}};
  f.peerSubjects = {{"lync.example.com", "", {"peer-auth"}}};
  sp::TlsContext ctx;
  ctx.name = "peer-auth";
  ctx.peerSubjects = {"lync.example.com"};
  f.tlsContexts = {ctx};
  for (const auto& s : federationServices()) f.services.push_back({s, true, true});
  f.homedUsers = 100;
  f.hopProbes = {hop("10.0.0.5", 200, 3.25)};
  f.ptrProbes = {{"10.0.0.5", "lync.example.com", 1.5, false}};
  f.nodes = {{"imp1", "imp1.example.com"}};
  f.nodeNames = {{"imp1.example.com", {"10.0.0.1"}, 0.5, false}};
  return f;
}

// ---- certificates ----

// The test certificates of tests/fakes/test_certs.h, with an EC key
// made on construction and both EKUs unless a case says otherwise.
struct Key : imp::testcerts::Key {
  Key() : imp::testcerts::Key(EVP_EC_gen("P-256")) {}
};

struct CertSpec {
  std::string cn;
  long notBeforeDays = -1;
  long notAfterDays = 365;
  const char* eku = "serverAuth,clientAuth";  // nullptr: none
  bool ca = false;
};

// Signed by `issuer`/`issuerKey`, or self-signed when they are null.
std::unique_ptr<X509, void (*)(X509*)> makeCert(const CertSpec& s, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuerKey) {
  static long serial = 1;
  return {imp::testcerts::makeCert({.cn = s.cn,
                                    .ca = s.ca,
                                    .notBeforeDays = s.notBeforeDays,
                                    .notAfterDays = s.notAfterDays,
                                    .eku = s.eku,
                                    .serial = serial++},
                                   key, issuer, issuerKey),
          &X509_free};
}

struct TempDir {
  fs::path dir = fs::temp_directory_path() / ("imp-troubleshoot-" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(dir); }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path write(const std::string& name, const std::vector<X509*>& certs) const {
    auto p = dir / name;
    FILE* f = std::fopen(p.c_str(), "w");
    REQUIRE(f != nullptr);
    for (auto* c : certs) PEM_write_X509(f, c);
    std::fclose(f);
    return p;
  }
};

}  // namespace

TEST_CASE("the healthy setup passes every check") {
  auto f = healthy();
  TempDir tmp;
  Key caKey, key;
  auto ca = makeCert({"Test CA", -1, 3650, nullptr, true}, caKey.k, nullptr, nullptr);
  auto cert = makeCert({"imp1.example.com"}, key.k, ca.get(), caKey.k);
  f.certFile = tmp.write("node.pem", {cert.get()});
  f.caFile = tmp.write("ca.pem", {ca.get()});
  auto results = runChecks(f);
  REQUIRE(results.size() == 14);
  for (const auto& r : results) {
    INFO(r.id << ": " << r.detail);
    CHECK(r.status == Status::Pass);
    CHECK(r.fix.empty());
    CHECK(!r.requirement.empty());
  }
  CHECK(summary(results) == "14 checks: 14 pass, 0 warn, 0 fail");
  CHECK(results.front().id == "federation-enabled");
  CHECK(results.back().id == "contact-limits");
}

TEST_CASE("federation-enabled (FED-1, TS-2)") {
  auto f = healthy();
  CHECK(checkFederationEnabled(f).status == Status::Pass);
  f.federation.enabled = false;
  auto r = checkFederationEnabled(f);
  CHECK(r.status == Status::Fail);
  CHECK(r.requirement == "FED-1/TS-2");
  CHECK(r.fix == "impctl federation enable");
}

TEST_CASE("routing-mode (FED-6, TS-7): advanced only on a single cluster") {
  auto f = healthy();
  CHECK(checkRoutingMode(f).status == Status::Pass);
  f.interClusterPeers = 2;
  CHECK(checkRoutingMode(f).status == Status::Pass);  // basic is always fine
  f.federation.routingMode = sp::RoutingMode::Advanced;
  auto r = checkRoutingMode(f);
  CHECK(r.status == Status::Fail);
  CHECK(contains(r.detail, "2 inter-cluster peer(s)"));
  CHECK(r.fix == "impctl federation set --routing-mode basic");
  f.interClusterPeers = 0;
  CHECK(checkRoutingMode(f).status == Status::Pass);
}

TEST_CASE("static-routes (RT-1, TS-2): one per presence domain") {
  auto f = healthy();
  f.domains = {"example.com", "sub.example.com", "other.org", "third.net"};
  f.routes.push_back(route(".org.other", "10.0.0.6"));  // other.org itself
  auto r = checkStaticRoutes(f);
  CHECK(r.status == Status::Fail);
  CHECK(r.detail == "no static route for third.net (requests to the Microsoft users time out: 408)");
  CHECK(r.fix == "impctl route add .net.third.* --route-type domain --next-hop MICROSOFT-SERVER");
  f.routes.push_back(route(".*", "10.0.0.7"));  // a default route covers the rest
  CHECK(checkStaticRoutes(f).status == Status::Pass);
  f.routes.clear();
  r = checkStaticRoutes(f);
  CHECK(r.status == Status::Fail);
  CHECK(contains(r.detail, "example.com, sub.example.com, other.org, third.net"));
  CHECK(contains(r.fix, "(one per domain)"));
  f.domains.clear();
  CHECK(checkStaticRoutes(f).status == Status::Warn);
}

TEST_CASE("acl-covers-next-hops (RT-7, TS-1, TS-3)") {
  auto f = healthy();
  f.routes = {route(".com.example.*", "10.0.0.5"), route(".com.example.*", "lync.example.com"),
              route(".org.other.*", "ocs.other.org")};
  f.routes[1].priority = 2;
  f.acl = {aclEntry("10.0.0.5", sp::AclKind::Address)};
  auto r = checkAclCoversNextHops(f);
  CHECK(r.status == Status::Fail);
  CHECK(r.detail == "the incoming ACL does not cover lync.example.com, ocs.other.org (Lync clients sign out and in again, "
                    "no availability)");
  CHECK(r.fix == "impctl acl add lync.example.com (one per next hop, IP and FQDN)");
  f.acl.push_back(aclEntry("lync.example.com", sp::AclKind::Name));
  f.acl.push_back(aclEntry("other.org", sp::AclKind::Name));  // a domain covers its hosts
  CHECK(checkAclCoversNextHops(f).status == Status::Pass);
  f.acl = {aclEntry("10.0.0.6", sp::AclKind::Address)};
  CHECK(checkAclCoversNextHops(f).status == Status::Fail);
  f.acl = {aclEntry("all", sp::AclKind::All)};
  r = checkAclCoversNextHops(f);
  CHECK(r.status == Status::Pass);
  CHECK(contains(r.detail, "allows all sources"));
  f.routes.clear();
  CHECK(checkAclCoversNextHops(f).status == Status::Warn);
}

TEST_CASE("next-hops (RT-1, RT-10, TS-2, TS-5): each hop resolves and answers OPTIONS") {
  auto f = healthy();
  f.routes.push_back(route(".com.example.*", "lync.example.com"));
  f.hopProbes.push_back(hop("lync.example.com", 200, 12.04));
  auto r = checkNextHops(f);
  CHECK(r.status == Status::Pass);
  CHECK(r.requirement == "RT-1/RT-10/TS-2/TS-5");
  CHECK(r.detail == "10.0.0.5:5061;TLS answered 200 OK in 3.3 ms; lync.example.com:5061;TLS (10.0.0.6) answered 200 OK "
                    "in 12.0 ms");

  // a name that does not resolve
  auto unresolved = hop("lync.example.com", 0, 0, "the name does not resolve (no A/AAAA record)");
  unresolved.addresses.clear();
  f.hopProbes[1] = unresolved;
  r = checkNextHops(f);
  CHECK(r.status == Status::Fail);
  CHECK(contains(r.detail, "lync.example.com:5061;TLS: the name does not resolve (no A/AAAA record)"));
  CHECK(r.fix == "add an A record for lync.example.com to the DNS this node uses (RT-10), or route to the server's IP "
                 "address");

  // no answer; a failing TLS handshake gets its own fix
  f.hopProbes = {hop("10.0.0.5", 0, 0, "connect: Connection refused")};
  r = checkNextHops(f);
  CHECK(r.status == Status::Fail);
  CHECK(r.detail == "10.0.0.5:5061;TLS: no answer to OPTIONS: connect: Connection refused");
  CHECK(contains(r.fix, "listens on 5061 over TLS"));
  f.hopProbes = {hop("10.0.0.5", 0, 0, "TLS handshake failed: certificate verify failed: unable to get local issuer")};
  r = checkNextHops(f);
  CHECK(r.status == Status::Fail);
  CHECK(contains(r.fix, "impctl cert upload-trust"));

  // up but unwell
  f.hopProbes = {hop("10.0.0.5", 503, 2)};
  r = checkNextHops(f);
  CHECK(r.status == Status::Warn);
  CHECK(r.detail == "10.0.0.5:5061;TLS answered 503 Service Unavailable in 2.0 ms");

  f.routes.clear();
  CHECK(checkNextHops(f).status == Status::Warn);
}

TEST_CASE("peer-reverse-dns (RT-8, TS-6): the peers' PTR lookups are fast") {
  auto f = healthy();
  auto r = checkPeerReverseDns(f);
  CHECK(r.status == Status::Pass);
  CHECK(r.requirement == "RT-8/TS-6");
  CHECK(r.detail == "10.0.0.5 -> lync.example.com (1.5 ms)");

  f.ptrProbes.push_back({"10.0.0.6", std::nullopt, 5000.2, true});
  r = checkPeerReverseDns(f);
  CHECK(r.status == Status::Fail);
  CHECK(contains(r.detail, "10.0.0.6: no answer in 5000.2 ms"));
  CHECK(contains(r.fix, "add PTR records"));
  f.ptrProbes.back() = {"10.0.0.6", "pool.example.com", kSlowDnsMs + 1, false};
  CHECK(checkPeerReverseDns(f).status == Status::Fail);

  // no PTR record, answered fast: a problem only for FQDN and domain ACL entries
  f.ptrProbes.back() = {"10.0.0.6", std::nullopt, 0.8, false};
  r = checkPeerReverseDns(f);
  CHECK(r.status == Status::Pass);
  CHECK(contains(r.detail, "10.0.0.6: no PTR record (the ACL matches it by address)"));
  f.acl.push_back(aclEntry("lync.example.com", sp::AclKind::Name));
  r = checkPeerReverseDns(f);
  CHECK(r.status == Status::Warn);
  CHECK(r.detail == "no PTR record for 10.0.0.6: FQDN and domain ACL entries cannot match requests from them");
  CHECK(contains(r.fix, "impctl acl add 10.0.0.6"));

  f.ptrProbes.clear();
  CHECK(checkPeerReverseDns(f).status == Status::Pass);
}

TEST_CASE("microsoft-certificate (TLS-2, TLS-5, TS-10): the next hop's certificate as the peer-auth listener sees it") {
  auto f = healthy();
  auto r = checkMicrosoftCertificate(f);
  CHECK(r.status == Status::Pass);
  CHECK(r.requirement == "TLS-2/TLS-5/TS-10");
  CHECK(r.detail == "10.0.0.5:5061;TLS presents lync.example.com (serverAuth, clientAuth, a selected peer subject)");

  f.hopProbes[0].peerClientAuth = false;
  r = checkMicrosoftCertificate(f);
  CHECK(r.status == Status::Fail);
  CHECK(r.detail == "10.0.0.5:5061;TLS presents lync.example.com, whose extended key usage lacks clientAuth "
                    "(1.3.6.1.5.5.7.3.2)");
  CHECK(contains(r.fix, "serverAuth and clientAuth"));

  f = healthy();
  f.hopProbes[0].peerCn = "Pool2.Example.com";  // compared without case
  r = checkMicrosoftCertificate(f);
  CHECK(r.status == Status::Fail);
  CHECK(contains(r.detail, "presents Pool2.Example.com, which is not a TLS peer subject"));
  CHECK(r.fix == "impctl tls peer-subject add Pool2.Example.com, then impctl tls context set peer-auth --peer-subject "
                 "Pool2.Example.com");
  f.peerSubjects.push_back({"pool2.example.com", "", {}});
  r = checkMicrosoftCertificate(f);
  CHECK(r.status == Status::Fail);
  CHECK(contains(r.detail, "not selected by the peer-auth TLS context"));
  f.tlsContexts[0].peerSubjects.push_back("pool2.example.com");
  CHECK(checkMicrosoftCertificate(f).status == Status::Pass);

  // no handshake completed; no TLS route at all
  f.hopProbes = {hop("10.0.0.5", 0, 0, "connect: Connection refused")};
  CHECK(checkMicrosoftCertificate(f).status == Status::Warn);
  f.hopProbes[0].transport = sp::Transport::Tcp;
  CHECK(checkMicrosoftCertificate(f).status == Status::Pass);
}

TEST_CASE("node-names (RT-10, TS-4): every node's host name resolves") {
  auto f = healthy();
  auto r = checkNodeNames(f);
  CHECK(r.status == Status::Pass);
  CHECK(r.requirement == "RT-10/TS-4");
  CHECK(r.detail == "imp1 (imp1.example.com) -> 10.0.0.1");
  f.nodes.push_back({"imp2", "imp2.example.com"});
  f.nodes.push_back({"imp3", "imp3.example.com"});
  f.nodeNames.push_back({"imp2.example.com", {}, 0.7, false});
  f.nodeNames.push_back({"imp3.example.com", {"10.0.0.3"}, kSlowDnsMs + 5, false});
  r = checkNodeNames(f);
  CHECK(r.status == Status::Fail);
  CHECK(r.detail == "imp2 (imp2.example.com) does not resolve; imp3 (imp3.example.com) took 2005.0 ms to resolve");
  CHECK(contains(r.fix, "add an A record for every IMP node's host name"));
  f.nodeNames[1] = {"imp2.example.com", {}, 5000, true};
  f.nodeNames[2].ms = 1;
  CHECK(checkNodeNames(f).detail == "imp2 (imp2.example.com): no DNS answer");
  f.nodes.clear();
  CHECK(checkNodeNames(f).status == Status::Warn);
}

TEST_CASE("single-system-users (FED-1): no user enabled on both systems") {
  auto f = healthy();
  auto r = checkSingleSystemUsers(f);
  CHECK(r.status == Status::Pass);
  CHECK(r.requirement == "FED-1");
  f.dualEnabledUsers = 7;
  f.dualEnabledSample = {"ann", "bob", "cy", "dee", "eve"};
  r = checkSingleSystemUsers(f);
  CHECK(r.status == Status::Fail);
  CHECK(contains(r.detail, "7 user(s) licensed on IMP also carry a Microsoft SIP URI"));
  CHECK(contains(r.detail, "ann, bob, cy, dee, eve and 2 more"));
  CHECK(contains(r.fix, "Disable-CsUser"));
}

TEST_CASE("peer-auth-listener (TLS-5, TS-10)") {
  auto f = healthy();
  CHECK(checkPeerAuthListener(f).status == Status::Pass);
  f.listeners[2].port = 5062;  // the default: not what Lync's routes use
  auto r = checkPeerAuthListener(f);
  CHECK(r.status == Status::Warn);
  CHECK(contains(r.detail, "port 5062"));
  f.listeners[2].enabled = false;
  r = checkPeerAuthListener(f);
  CHECK(r.status == Status::Fail);
  CHECK(r.fix == "impctl listener set tls-peer-auth --port 5061 --enable");
  f.listeners.pop_back();
  CHECK(checkPeerAuthListener(f).status == Status::Fail);
}

TEST_CASE("peer-subjects (TLS-2, TLS-3, TS-10)") {
  auto f = healthy();
  CHECK(checkPeerSubjects(f).status == Status::Pass);
  f.peerSubjects.push_back({"pool.example.com", "", {}});
  auto r = checkPeerSubjects(f);
  CHECK(r.status == Status::Warn);
  CHECK(r.detail == "the peer-auth TLS context does not select pool.example.com");
  CHECK(r.fix == "impctl tls context set peer-auth --peer-subject lync.example.com --peer-subject pool.example.com");
  f.tlsContexts[0].peerSubjects.clear();
  r = checkPeerSubjects(f);
  CHECK(r.status == Status::Fail);
  CHECK(contains(r.detail, "selects no configured peer subject"));
  f.peerSubjects.clear();
  r = checkPeerSubjects(f);
  CHECK(r.status == Status::Fail);
  CHECK(contains(r.detail, "no TLS peer subject"));
  CHECK(contains(r.fix, "impctl tls peer-subject add"));
}

TEST_CASE("node-certificate (TLS-4, TLS-5, TS-10)") {
  auto f = healthy();
  TempDir tmp;
  Key caKey, key, otherKey;
  auto ca = makeCert({"Test CA", -1, 3650, nullptr, true}, caKey.k, nullptr, nullptr);
  f.caFile = tmp.write("ca.pem", {ca.get()});

  SUBCASE("a good certificate signed by the trusted CA passes") {
    auto cert = makeCert({"imp1.example.com"}, key.k, ca.get(), caKey.k);
    f.certFile = tmp.write("good.pem", {cert.get()});
    auto r = checkNodeCertificate(f);
    CHECK(r.status == Status::Pass);
    CHECK(r.requirement == "TLS-4/TLS-5/TS-10");
  }
  SUBCASE("an intermediate in the certificate file completes the chain") {
    Key midKey;
    auto mid = makeCert({"Test Intermediate", -1, 3650, nullptr, true}, midKey.k, ca.get(), caKey.k);
    auto cert = makeCert({"imp1.example.com"}, key.k, mid.get(), midKey.k);
    f.certFile = tmp.write("chain.pem", {cert.get(), mid.get()});
    CHECK(checkNodeCertificate(f).status == Status::Pass);
  }
  SUBCASE("an expired certificate fails") {
    auto cert = makeCert({"imp1.example.com", -30, -1}, key.k, ca.get(), caKey.k);
    f.certFile = tmp.write("expired.pem", {cert.get()});
    auto r = checkNodeCertificate(f);
    CHECK(r.status == Status::Fail);
    CHECK(contains(r.detail, "it has expired"));
    CHECK(!r.fix.empty());
  }
  SUBCASE("an expired CA in the chain fails though the certificate itself is valid") {
    Key midKey;
    auto mid = makeCert({"Old Intermediate", -400, -2, nullptr, true}, midKey.k, ca.get(), caKey.k);
    auto cert = makeCert({"imp1.example.com"}, key.k, mid.get(), midKey.k);
    f.certFile = tmp.write("old-chain.pem", {cert.get(), mid.get()});
    auto r = checkNodeCertificate(f);
    CHECK(r.status == Status::Fail);
    CHECK(contains(r.detail, "does not chain to the trust store (certificate has expired"));
    CHECK(contains(r.detail, "Old Intermediate"));
  }
  SUBCASE("a certificate expiring within 30 days warns") {
    auto cert = makeCert({"imp1.example.com", -300, 10}, key.k, ca.get(), caKey.k);
    f.certFile = tmp.write("soon.pem", {cert.get()});
    auto r = checkNodeCertificate(f);
    CHECK(r.status == Status::Warn);
    CHECK(contains(r.detail, "expires within 30 days"));
  }
  SUBCASE("a certificate without clientAuth fails") {
    auto cert = makeCert({"imp1.example.com", -1, 365, "serverAuth"}, key.k, ca.get(), caKey.k);
    f.certFile = tmp.write("server-only.pem", {cert.get()});
    auto r = checkNodeCertificate(f);
    CHECK(r.status == Status::Fail);
    CHECK(contains(r.detail, "lacks clientAuth (1.3.6.1.5.5.7.3.2)"));
    CHECK(!contains(r.detail, "serverAuth (1.3.6.1.5.5.7.3.1)"));
  }
  SUBCASE("a certificate without extended key usage fails") {
    auto cert = makeCert({"imp1.example.com", -1, 365, nullptr}, key.k, ca.get(), caKey.k);
    f.certFile = tmp.write("no-eku.pem", {cert.get()});
    auto r = checkNodeCertificate(f);
    CHECK(r.status == Status::Fail);
    CHECK(contains(r.detail, "lacks serverAuth (1.3.6.1.5.5.7.3.1) and clientAuth (1.3.6.1.5.5.7.3.2)"));
  }
  SUBCASE("a self-signed certificate not in the trust store fails") {
    auto cert = makeCert({"imp1.example.com"}, otherKey.k, nullptr, nullptr);
    f.certFile = tmp.write("self.pem", {cert.get()});
    auto r = checkNodeCertificate(f);
    CHECK(r.status == Status::Fail);
    CHECK(contains(r.detail, "does not chain to the trust store"));
  }
  SUBCASE("the cluster trust store cup-trust alone (TLS-4) is a trust store") {
    auto cert = makeCert({"imp1.example.com"}, key.k, ca.get(), caKey.k);
    f.certFile = tmp.write("good.pem", {cert.get()});
    std::ifstream in(f.caFile);
    std::stringstream pem;
    pem << in.rdbuf();
    f.caFile.clear();
    f.trustPems = {pem.str()};
    CHECK(checkNodeCertificate(f).status == Status::Pass);
    f.trustPems = {"not a certificate"};
    auto r = checkNodeCertificate(f);
    CHECK(r.status == Status::Fail);
    CHECK(contains(r.detail, "cannot be read"));
  }
  SUBCASE("without a trust store the chain is not checked: a warning") {
    auto cert = makeCert({"imp1.example.com"}, otherKey.k, nullptr, nullptr);
    f.certFile = tmp.write("self.pem", {cert.get()});
    f.caFile.clear();
    auto r = checkNodeCertificate(f);
    CHECK(r.status == Status::Warn);
    CHECK(contains(r.detail, "no trust store is configured"));
  }
  SUBCASE("a missing or unreadable file fails") {
    f.certFile = tmp.dir / "absent.pem";
    CHECK(checkNodeCertificate(f).status == Status::Fail);
    f.certFile.clear();
    CHECK(checkNodeCertificate(f).status == Status::Fail);
  }
}

TEST_CASE("federation-services (SV-6, TS-2)") {
  auto f = healthy();
  CHECK(checkFederationServices(f).status == Status::Pass);
  for (auto& s : f.services)
    if (s.name == "federation-cm") s.running = false;
  f.services.erase(f.services.begin());  // sip-proxy not on this node at all
  auto r = checkFederationServices(f);
  CHECK(r.status == Status::Fail);
  CHECK(r.detail == "not running on this node: sip-proxy, federation-cm");
  CHECK(r.fix == "impctl service start sip-proxy; impctl service start federation-cm");
}

TEST_CASE("contact-limits (HA-2, PS-1)") {
  auto f = healthy();
  const std::uint64_t cap = imp::serviceability::kImpMeasuredContacts;
  f.maxContacts = 200;
  f.homedUsers = cap / 200 * 80 / 100;  // 80 % of what the node holds
  CHECK(checkContactLimits(f).status == Status::Pass);
  f.homedUsers += 1;
  auto r = checkContactLimits(f);
  CHECK(r.status == Status::Warn);
  CHECK(contains(r.detail, ": over 80% of capacity"));
  CHECK(contains(r.fix, "impctl presence settings set --max-contacts"));
  f.homedUsers = cap / 200;
  CHECK(checkContactLimits(f).status == Status::Warn);
  f.homedUsers += 1;
  r = checkContactLimits(f);
  CHECK(r.status == Status::Fail);
  CHECK(contains(r.detail, ": over capacity"));
  CHECK(contains(r.fix, "impctl presence settings set --max-contacts"));
  f.maxContacts = 0;  // no limit: planned with the average of 200
  CHECK(checkContactLimits(f).status == Status::Fail);
  CHECK(contains(checkContactLimits(f).detail, "average of 200"));
  f.maxContacts = 100;
  CHECK(checkContactLimits(f).status == Status::Pass);
}

TEST_CASE("a check whose facts could not be read is a FAIL naming why") {
  auto f = healthy();
  f.unavailable["static-routes"] = "database unreachable";
  TempDir tmp;
  f.certFile = tmp.dir / "absent.pem";
  auto results = runChecks(f);
  REQUIRE(results.size() == 14);
  CHECK(results[2].id == "static-routes");
  CHECK(results[2].status == Status::Fail);
  CHECK(results[2].requirement == "RT-1/TS-2");
  CHECK(results[2].detail == "could not be checked: database unreachable");
  CHECK(summary(results) == "14 checks: 12 pass, 0 warn, 2 fail");
}
