#pragma once
// A throwaway PKI for TLS tests (TLS-1..3, TLS-5): a root CA and leaf
// certificates with P-256 keys, written as PEM files into a temporary
// directory that the destructor removes. Leaves carry both extended key
// usages, as Lync requires of federation certificates, and an optional
// subjectAltName. The certificates come from test_certs.h; failures to
// write them throw std::runtime_error naming the step.
#include <fakes/test_certs.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

namespace imp::testing {

struct PkiIdentity {
  std::string cert, key;  // PEM files
};

class TestPki {
 public:
  // `caName`: the root's CN; `dirPrefix`: the temporary directory's name.
  TestPki(const std::string& caName, const std::string& dirPrefix) {
    std::string tmpl = (std::filesystem::temp_directory_path() / (dirPrefix + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("test pki: mkdtemp " + tmpl + " failed");
    dir_ = tmpl;
    caKey_ = makeKey();
    ca_ = makeCert(caName, caKey_.get(), nullptr, nullptr, "");
    caFile_ = (dir_ / "ca.pem").string();
    writeCert(caFile_, ca_.get());
  }
  ~TestPki() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& caFile() const { return caFile_; }

  // A leaf signed by this PKI's CA; `san` such as "DNS:proxy.test" ("" = none).
  PkiIdentity leaf(const std::string& file, const std::string& cn, const std::string& san = "") {
    return issue(file, cn, san, ca_.get(), caKey_.get());
  }
  // A leaf signed by another CA, one that caFile() does not hold.
  PkiIdentity foreignLeaf(const std::string& file, const std::string& cn, const std::string& san = "") {
    Key otherKey = makeKey();
    Cert other = makeCert("Some Other CA", otherKey.get(), nullptr, nullptr, "");
    return issue(file, cn, san, other.get(), otherKey.get());
  }

 private:
  struct KeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  };
  struct CertFree {
    void operator()(X509* c) const { X509_free(c); }
  };
  using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
  using Cert = std::unique_ptr<X509, CertFree>;

  static Key makeKey() {
    Key k(EVP_EC_gen("P-256"));
    if (!k) throw std::runtime_error("test pki: EC key generation failed");
    return k;
  }

  // A CA certificate when `issuer` is null (self-signed), else a leaf with
  // both extended key usages; valid from a day ago for a day.
  static Cert makeCert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuerKey, const std::string& san) {
    static long serial = 1;
    testcerts::CertSpec spec{.cn = cn, .ca = issuer == nullptr, .notBeforeDays = -1, .notAfterDays = 1,
                             .eku = issuer ? "serverAuth,clientAuth" : nullptr, .san = san.empty() ? nullptr : san.c_str(),
                             .serial = serial++};
    return Cert(testcerts::makeCert(spec, key, issuer, issuerKey));
  }

  static FILE* open(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) throw std::runtime_error("test pki: cannot write " + path);
    return f;
  }
  static void writeCert(const std::string& path, X509* cert) {
    FILE* f = open(path);
    PEM_write_X509(f, cert);
    std::fclose(f);
  }
  static void writeKey(const std::string& path, EVP_PKEY* key) {
    FILE* f = open(path);
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
  }

  PkiIdentity issue(const std::string& file, const std::string& cn, const std::string& san, X509* ca, EVP_PKEY* caKey) {
    Key k = makeKey();
    Cert c = makeCert(cn, k.get(), ca, caKey, san);
    PkiIdentity id{(dir_ / (file + ".crt")).string(), (dir_ / (file + ".key")).string()};
    writeCert(id.cert, c.get());
    writeKey(id.key, k.get());
    return id;
  }

  std::filesystem::path dir_;
  Key caKey_;
  Cert ca_;
  std::string caFile_;
};

}  // namespace imp::testing
