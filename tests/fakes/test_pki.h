#pragma once
// A throwaway PKI for TLS tests (TLS-1..3, TLS-5): a root CA and leaf
// certificates with P-256 keys, written as PEM files into a temporary
// directory that the destructor removes. Leaves carry both extended key
// usages, as Lync requires of federation certificates, and an optional
// subjectAltName. Failures throw std::runtime_error naming the step.
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

  static void addExt(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) throw std::runtime_error(std::string("test pki: extension ") + value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }

  // A CA certificate when `issuer` is null (self-signed), else a leaf.
  static Cert makeCert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuerKey, const std::string& san) {
    static long serial = 1;
    Cert cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
    X509_set_pubkey(cert.get(), key);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("IMP test"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509* signer = issuer != nullptr ? issuer : cert.get();
    X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
    addExt(cert.get(), signer, NID_subject_key_identifier, "hash");
    if (issuer == nullptr) {
      addExt(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
      addExt(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
      addExt(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
      addExt(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
      addExt(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
      addExt(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
      if (!san.empty()) addExt(cert.get(), signer, NID_subject_alt_name, san.c_str());
    }
    if (X509_sign(cert.get(), issuerKey != nullptr ? issuerKey : key, EVP_sha256()) <= 0)
      throw std::runtime_error("test pki: signing " + cn + " failed");
    return cert;
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
