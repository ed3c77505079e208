#include <doctest/doctest.h>
#include <imp/core/cert_tools.h>

#include <fakes/test_certs.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

using namespace imp::core;

using namespace imp::testcerts;

TEST_CASE("parseCertificate reads subject, issuer, dates, fingerprint, CA flag, EKU and SAN DNS names") {
  TestCa ca("Example Root CA");
  Key leafKey(EVP_EC_gen("P-256"));
  auto pem = certPem({.cn = "imp1.example.com", .eku = "serverAuth,clientAuth",
                      .san = "DNS:imp1.example.com,DNS:imp.example.com,IP:192.0.2.1", .serial = 0x1234},
                     leafKey.k, ca.cert, ca.key.k);
  auto i = parseCertificate(pem);
  CHECK(i.subjectCn == "imp1.example.com");
  CHECK(i.subject == "CN=imp1.example.com,O=Example");
  CHECK(i.issuer == "CN=Example Root CA,O=Example");
  CHECK(i.serial == "1234");
  CHECK(i.notBefore.size() == 20);
  CHECK(i.notAfter.size() == 20);
  CHECK(i.notBefore < i.notAfter);
  CHECK(i.sha256.size() == 32 * 3 - 1);
  CHECK_FALSE(i.isCa);
  CHECK(i.serverAuth);
  CHECK(i.clientAuth);
  CHECK(i.sanDns == std::vector<std::string>{"imp1.example.com", "imp.example.com"});
  CHECK(parseCertificate(i.pem).sha256 == i.sha256);

  auto root = parseCertificate(ca.pem());
  CHECK(root.isCa);
  CHECK_FALSE(root.serverAuth);
  CHECK(root.sanDns.empty());
  CHECK(root.sha256 != i.sha256);

  Key other(EVP_EC_gen("P-256"));
  auto serverOnly = parseCertificate(certPem({.cn = "x", .eku = "serverAuth"}, other.k, ca.cert, ca.key.k));
  CHECK(serverOnly.serverAuth);
  CHECK_FALSE(serverOnly.clientAuth);

  auto chain = parseCertificates(pem + ca.pem());
  REQUIRE(chain.size() == 2);
  CHECK(chain[0].subjectCn == "imp1.example.com");
  CHECK(chain[1].subjectCn == "Example Root CA");
}

TEST_CASE("parseCertificates refuses garbage") {
  CHECK_THROWS_WITH_AS(parseCertificates("not a certificate\n"),
                       "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)", CertError);
  CHECK_THROWS_AS(parseCertificates(""), CertError);
  CHECK_THROWS_AS(parseCertificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), CertError);
  TestCa ca("Root");
  CHECK_THROWS_WITH_AS(parseCertificates(ca.pem() + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
                       "PEM certificate 2 does not parse", CertError);
}

TEST_CASE("generateKeyAndCsr makes an RSA 2048 key and a SHA-256 request for the FQDN") {
  auto r = generateKeyAndCsr("imp1.example.com", {"imp.example.com", "imp1.example.com"});
  CHECK(r.keyPem.find("-----BEGIN PRIVATE KEY-----") == 0);
  CHECK(r.csrPem.find("-----BEGIN CERTIFICATE REQUEST-----") == 0);
  BIO* b = BIO_new_mem_buf(r.csrPem.data(), static_cast<int>(r.csrPem.size()));
  X509_REQ* req = PEM_read_bio_X509_REQ(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  REQUIRE(req != nullptr);
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req);
  REQUIRE(pub != nullptr);
  CHECK(EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA);
  CHECK(EVP_PKEY_get_bits(pub) == 2048);
  CHECK(X509_REQ_verify(req, pub) == 1);
  CHECK(X509_REQ_get_signature_nid(req) == NID_sha256WithRSAEncryption);
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn, sizeof cn);
  CHECK(std::string(cn) == "imp1.example.com");
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  REQUIRE(exts != nullptr);
  std::vector<std::string> dns;
  for (int k = 0; k < sk_X509_EXTENSION_num(exts); ++k) {
    X509_EXTENSION* e = sk_X509_EXTENSION_value(exts, k);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) != NID_subject_alt_name) continue;
    auto* names = static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(e));
    for (int j = 0; j < sk_GENERAL_NAME_num(names); ++j) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, j);
      if (g->type == GEN_DNS)
        dns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                         static_cast<std::size_t>(ASN1_STRING_length(g->d.dNSName)));
    }
    GENERAL_NAMES_free(names);
  }
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  CHECK(dns == std::vector<std::string>{"imp1.example.com", "imp.example.com"});

  // A certificate made from the request's key matches the generated private key.
  TestCa ca("Root");
  auto pem = certPem({.cn = "imp1.example.com"}, pub, ca.cert, ca.key.k);
  CHECK(certificateMatchesKey(pem, r.keyPem));
  X509_REQ_free(req);

  CHECK_THROWS_WITH_AS(generateKeyAndCsr("bad name"), "'bad name' is not a DNS name", CertError);
  CHECK_THROWS_AS(generateKeyAndCsr("ok.example.com", {""}), CertError);
}

TEST_CASE("certificateMatchesKey tells the right key from another certificate's key") {
  TestCa ca("Root");
  Key a(EVP_EC_gen("P-256"));
  Key b(EVP_EC_gen("P-256"));
  auto certA = certPem({.cn = "a.example.com"}, a.k, ca.cert, ca.key.k);
  auto certB = certPem({.cn = "b.example.com"}, b.k, ca.cert, ca.key.k);
  CHECK(certificateMatchesKey(certA, keyPem(a.k)));
  CHECK_FALSE(certificateMatchesKey(certA, keyPem(b.k)));
  CHECK_FALSE(certificateMatchesKey(certB, keyPem(a.k)));
  CHECK_THROWS_WITH_AS(certificateMatchesKey(certA, "garbage"), "the private key is not an unencrypted PEM key", CertError);
  CHECK_THROWS_AS(certificateMatchesKey("garbage", keyPem(a.k)), CertError);
}

TEST_CASE("verifyCertificateChain accepts a chain to a trusted root and names the reason otherwise") {
  TestCa root("Example Root CA");
  TestCa otherRoot("Other Root CA");
  Key interKey(EVP_EC_gen("P-256"));
  X509* inter = makeCert({.cn = "Example Issuing CA", .ca = true, .notAfterDays = 1000, .serial = 2}, interKey.k,
                         root.cert, root.key.k);
  std::string interPem = toPem(inter);
  Key leafKey(EVP_EC_gen("P-256"));
  auto direct = certPem({.cn = "imp1.example.com", .eku = "serverAuth,clientAuth"}, leafKey.k, root.cert, root.key.k);
  auto viaInter = certPem({.cn = "imp1.example.com", .serial = 3}, leafKey.k, inter, interKey.k);
  std::time_t now = std::time(nullptr);

  CHECK(verifyCertificateChain(direct, {root.pem()}, now).ok);
  CHECK(verifyCertificateChain(direct, {otherRoot.pem(), root.pem()}, now).ok);
  CHECK(verifyCertificateChain(direct, {otherRoot.pem() + root.pem()}, now).ok);
  CHECK(verifyCertificateChain(viaInter + interPem, {root.pem()}, now).ok);

  SUBCASE("untrusted root") {
    auto r = verifyCertificateChain(direct, {otherRoot.pem()}, now);
    CHECK_FALSE(r.ok);
    CHECK(r.reason ==
          "unable to get local issuer certificate (CN=imp1.example.com,O=Example, issuer CN=Example Root CA,O=Example)");
    CHECK_FALSE(verifyCertificateChain(direct, {}, now).ok);
    CHECK_FALSE(verifyCertificateChain(direct, {"garbage"}, now).ok);
  }
  SUBCASE("missing intermediate") {
    auto r = verifyCertificateChain(viaInter, {root.pem()}, now);
    CHECK_FALSE(r.ok);
    CHECK(r.reason.find("unable to get local issuer certificate") == 0);
    CHECK(r.reason.find("issuer CN=Example Issuing CA") != std::string::npos);
  }
  SUBCASE("expired and not yet valid") {
    auto expired = certPem({.cn = "old.example.com", .notBeforeDays = -400, .notAfterDays = -10, .serial = 4},
                           leafKey.k, root.cert, root.key.k);
    auto r = verifyCertificateChain(expired, {root.pem()}, now);
    CHECK_FALSE(r.ok);
    CHECK(r.reason.find("certificate has expired (CN=old.example.com,O=Example, not after ") == 0);
    // at a time inside its validity the same certificate verifies
    CHECK(verifyCertificateChain(expired, {root.pem()}, now - 100 * kDay).ok);
    auto future = certPem({.cn = "new.example.com", .notBeforeDays = 10, .notAfterDays = 400, .serial = 5},
                          leafKey.k, root.cert, root.key.k);
    auto f = verifyCertificateChain(future, {root.pem()}, now);
    CHECK_FALSE(f.ok);
    CHECK(f.reason.find("certificate is not yet valid (CN=new.example.com") == 0);
  }
  SUBCASE("a forged signature") {
    // same issuer name as the trusted root, signed by another key
    X509* fakeRoot = makeCert({.cn = "Example Root CA", .ca = true}, otherRoot.key.k, nullptr, nullptr);
    auto forged = certPem({.cn = "imp1.example.com", .serial = 6}, leafKey.k, fakeRoot, otherRoot.key.k);
    X509_free(fakeRoot);
    auto r = verifyCertificateChain(forged, {root.pem()}, now);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.reason.empty());
  }
  CHECK_THROWS_AS(verifyCertificateChain("garbage", {root.pem()}, now), CertError);
  X509_free(inter);
}
