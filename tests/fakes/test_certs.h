#pragma once
// Test certificates made with the OpenSSL API: a CA, leaf certificates with
// chosen validity, CA flag, EKU and SAN.
#include <doctest/doctest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>

namespace imp::testcerts {

constexpr long kDay = 24L * 3600;

struct Key {
  EVP_PKEY* k;
  explicit Key(EVP_PKEY* p) : k(p) {}
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
  ~Key() { EVP_PKEY_free(k); }
};

inline std::string toPem(X509* c) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, c);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return out;
}

inline std::string keyPem(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return out;
}

inline void ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  REQUIRE(e != nullptr);
  X509_add_ext(cert, e, -1);
  X509_EXTENSION_free(e);
}

struct CertSpec {
  std::string cn;
  bool ca = false;
  long notBeforeDays = -1;  // relative to now
  long notAfterDays = 365;
  const char* eku = nullptr;
  const char* san = nullptr;
  long serial = 1;
};

// A certificate for `subjectKey`, signed by issuer/issuerKey (self-signed when
// issuer is null). The caller frees it.
inline X509* makeCert(const CertSpec& s, EVP_PKEY* subjectKey, X509* issuer, EVP_PKEY* issuerKey) {
  X509* c = X509_new();
  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), s.serial);
  X509_gmtime_adj(X509_getm_notBefore(c), s.notBeforeDays * kDay);
  X509_gmtime_adj(X509_getm_notAfter(c), s.notAfterDays * kDay);
  X509_set_pubkey(c, subjectKey);
  X509_NAME* name = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Example"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(s.cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
  X509* iss = issuer ? issuer : c;
  ext(c, iss, NID_basic_constraints, s.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  ext(c, iss, NID_key_usage, s.ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
  ext(c, iss, NID_subject_key_identifier, "hash");
  if (issuer) ext(c, iss, NID_authority_key_identifier, "keyid");
  if (s.eku) ext(c, iss, NID_ext_key_usage, s.eku);
  if (s.san) ext(c, iss, NID_subject_alt_name, s.san);
  REQUIRE(X509_sign(c, issuerKey ? issuerKey : subjectKey, EVP_sha256()) != 0);
  return c;
}

inline std::string certPem(const CertSpec& s, EVP_PKEY* subjectKey, X509* issuer, EVP_PKEY* issuerKey) {
  X509* c = makeCert(s, subjectKey, issuer, issuerKey);
  std::string out = toPem(c);
  X509_free(c);
  return out;
}

// A test CA: root key and certificate.
struct TestCa {
  Key key{EVP_EC_gen("P-256")};
  X509* cert;
  explicit TestCa(const std::string& cn) : cert(makeCert({.cn = cn, .ca = true, .notBeforeDays = -1000, .notAfterDays = 3650}, key.k, nullptr, nullptr)) {}
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;
  ~TestCa() { X509_free(cert); }
  std::string pem() const { return toPem(cert); }
};


}  // namespace imp::testcerts
