#include "imp/core/certificates.h"

#include "imp/core/cert_store.h"
#include "imp/core/cert_tools.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>

#include "imp/core/config.h"

namespace imp::core {

namespace {

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

X509Ptr readCert(const std::filesystem::path& p) {
  File f(std::fopen(p.c_str(), "r"));
  if (!f) throw ConfigError("tls", "cannot read certificate " + p.string());
  X509Ptr c(PEM_read_X509(f.get(), nullptr, nullptr, nullptr), X509_free);
  if (!c) throw ConfigError("tls", p.string() + " is not a PEM certificate");
  return c;
}

KeyPtr readKey(const std::filesystem::path& p) {
  File f(std::fopen(p.c_str(), "r"));
  if (!f) throw ConfigError("tls", "cannot read private key " + p.string());
  KeyPtr k(PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!k) throw ConfigError("tls", p.string() + " is not an unencrypted PEM private key");
  return k;
}

std::string cnOf(X509* c) {
  char buf[256] = {};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

std::string notAfter(X509* c) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(c), &tm) != 1) return "";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void addExt(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) throw std::runtime_error("cannot build certificate extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

void generate(const std::filesystem::path& certPath, const std::filesystem::path& keyPath, const std::string& cn) {
  KeyPtr key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) throw std::runtime_error("cannot generate an EC key");
  X509Ptr cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  FILE* ur = std::fopen("/dev/urandom", "rb");
  if (!ur || std::fread(serial, 1, sizeof serial, ur) != sizeof serial) {
    if (ur) std::fclose(ur);
    throw std::runtime_error("no randomness for the certificate serial");
  }
  std::fclose(ur);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("IMP node"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  addExt(cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  addExt(cert.get(), NID_key_usage, "critical,digitalSignature,keyAgreement");
  addExt(cert.get(), NID_ext_key_usage, "serverAuth,clientAuth");
  addExt(cert.get(), NID_subject_alt_name, ("DNS:" + cn).c_str());
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) throw std::runtime_error("cannot sign the certificate");
  {
    auto tmp = keyPath.string() + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) throw std::runtime_error("cannot write " + tmp);
    File f(::fdopen(fd, "w"));
    if (!f || PEM_write_PrivateKey(f.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
      throw std::runtime_error("cannot write " + tmp);
    f.reset();
    std::filesystem::rename(tmp, keyPath);
  }
  auto tmp = certPath.string() + ".tmp";
  File f(std::fopen(tmp.c_str(), "w"));
  if (!f || PEM_write_X509(f.get(), cert.get()) != 1) throw std::runtime_error("cannot write " + tmp);
  f.reset();
  std::filesystem::rename(tmp, certPath);
}

}  // namespace

std::string certificateCommonName(const std::filesystem::path& pem) { return cnOf(readCert(pem).get()); }

std::string certificateFilesKey(const std::filesystem::path& certFile, const std::filesystem::path& keyFile) {
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + p.string());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  };
  const auto key = slurp(keyFile);
  return parseCertificate(slurp(certFile)).sha256 + "|" + std::to_string(std::hash<std::string>{}(key));
}

std::filesystem::path pendingKeyFile(const std::filesystem::path& stateDir) { return stateDir / "tls" / "cup-pending.key"; }

NodeCertificate ensureNodeCertificate(const std::filesystem::path& stateDir, const std::string& certFile,
                                      const std::string& keyFile, const std::string& caFile,
                                      const std::string& hostName) {
  NodeCertificate out;
  if (certFile.empty() != keyFile.empty())
    throw ConfigError("tls", "cert_file and key_file go together: set both or neither");
  const auto dir = stateDir / "tls";
  try {
    std::filesystem::create_directories(dir);
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  } catch (const std::exception& e) {
    throw ConfigError("tls", "cannot create " + dir.string() + ": " + e.what());
  }
  out.trustBundle = dir / "cup-trust.pem";
  if (certFile.empty()) {
    out.certFile = dir / "node.crt";
    out.keyFile = dir / "node.key";
    if (!std::filesystem::exists(out.certFile) || !std::filesystem::exists(out.keyFile)) {
      try {
        generate(out.certFile, out.keyFile, hostName);
      } catch (const std::exception& e) {
        throw ConfigError("tls", std::string("cannot generate the node certificate: ") + e.what());
      }
      out.generated = true;
    }
  } else {
    out.certFile = certFile;
    out.keyFile = keyFile;
  }
  auto cert = readCert(out.certFile);
  auto key = readKey(out.keyFile);
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    // `impctl cert upload` writes the certificate, then the key, then drops
    // the pending key: a stop in between leaves the pending key matching.
    const auto pending = pendingKeyFile(stateDir);
    std::error_code ec;
    if (!std::filesystem::exists(pending, ec) ||
        X509_check_private_key(cert.get(), readKey(pending).get()) != 1)
      throw ConfigError("tls", "the private key " + out.keyFile.string() + " does not match " + out.certFile.string());
    try {
      std::ifstream in(pending, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      writeFileAtomically(out.keyFile, text.str(), 0600);
      std::filesystem::remove(pending);
    } catch (const std::exception& e) {
      throw ConfigError("tls", "cannot finish the interrupted certificate upload (" + pending.string() + " to " +
                                   out.keyFile.string() + "): " + e.what());
    }
    out.uploadFinished = true;
  }
  if (!caFile.empty()) {
    readCert(caFile);
    out.caFile = caFile;
  }
  out.subjectCn = cnOf(cert.get());
  out.notAfter = notAfter(cert.get());
  return out;
}

}  // namespace imp::core
