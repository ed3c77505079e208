#include "imp/core/cert_tools.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <algorithm>
#include <memory>

namespace imp::core {

namespace {

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using ReqPtr = std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)>;

BioPtr memBio(std::string_view s) {
  BioPtr b(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())), BIO_free);
  if (!b) throw CertError("out of memory");
  return b;
}

std::string bioString(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string nameText(const X509_NAME* name) {
  BioPtr b(BIO_new(BIO_s_mem()), BIO_free);
  X509_NAME_print_ex(b.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  return bioString(b.get());
}

std::string cnOf(const X509_NAME* name) {
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return "";
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

std::string isoTime(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return "";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string hexBytes(const unsigned char* p, std::size_t n, bool colons) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    if (colons && i) out += ':';
    out += digits[p[i] >> 4];
    out += digits[p[i] & 0xf];
  }
  return out;
}

std::string pemOf(X509* c) {
  BioPtr b(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(b.get(), c);
  return bioString(b.get());
}

CertInfo infoOf(X509* c) {
  CertInfo i;
  i.subjectCn = cnOf(X509_get_subject_name(c));
  i.subject = nameText(X509_get_subject_name(c));
  i.issuer = nameText(X509_get_issuer_name(c));
  const ASN1_INTEGER* serial = X509_get0_serialNumber(c);
  i.serial = hexBytes(ASN1_STRING_get0_data(serial), static_cast<std::size_t>(ASN1_STRING_length(serial)), false);
  i.notBefore = isoTime(X509_get0_notBefore(c));
  i.notAfter = isoTime(X509_get0_notAfter(c));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdLen = 0;
  X509_digest(c, EVP_sha256(), md, &mdLen);
  i.sha256 = hexBytes(md, mdLen, true);
  // X509_get_extension_flags caches the extensions (EXFLAG_CA, EXFLAG_XKUSAGE).
  uint32_t flags = X509_get_extension_flags(c);
  i.isCa = (flags & EXFLAG_CA) != 0;
  if (flags & EXFLAG_XKUSAGE) {
    uint32_t xku = X509_get_extended_key_usage(c);
    i.serverAuth = (xku & XKU_SSL_SERVER) != 0;
    i.clientAuth = (xku & XKU_SSL_CLIENT) != 0;
  }
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(c, NID_subject_alt_name, nullptr, nullptr));
  if (names) {
    for (int k = 0; k < sk_GENERAL_NAME_num(names); ++k) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, k);
      if (g->type != GEN_DNS) continue;
      const ASN1_IA5STRING* s = g->d.dNSName;
      i.sanDns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                            static_cast<std::size_t>(ASN1_STRING_length(s)));
    }
    GENERAL_NAMES_free(names);
  }
  i.pem = pemOf(c);
  return i;
}

std::vector<X509Ptr> readAll(std::string_view pem) {
  std::vector<X509Ptr> out;
  auto b = memBio(pem);
  for (;;) {
    X509* c = PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr);
    if (!c) break;
    out.emplace_back(c, X509_free);
  }
  unsigned long err = ERR_peek_last_error();
  ERR_clear_error();
  bool cleanEnd = out.empty() ? false : ERR_GET_REASON(err) == PEM_R_NO_START_LINE || err == 0;
  if (out.empty()) throw CertError("no PEM certificate found (expected -----BEGIN CERTIFICATE-----)");
  if (!cleanEnd) throw CertError("PEM certificate " + std::to_string(out.size() + 1) + " does not parse");
  return out;
}

void addReqExt(STACK_OF(X509_EXTENSION) * exts, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, nullptr, nullptr, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) throw CertError("cannot build the request extension " + value);
  sk_X509_EXTENSION_push(exts, ext);
}

bool validDnsName(const std::string& n) {
  if (n.empty() || n.size() > 253) return false;
  for (char ch : n) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '.' || ch == '*';
    if (!ok) return false;
  }
  return n.front() != '.' && n.back() != '.';
}

}  // namespace

std::vector<CertInfo> parseCertificates(std::string_view pem) {
  std::vector<CertInfo> out;
  for (auto& c : readAll(pem)) out.push_back(infoOf(c.get()));
  return out;
}

CertInfo parseCertificate(std::string_view pem) { return parseCertificates(pem).front(); }

KeyAndCsr generateKeyAndCsr(const std::string& cn, const std::vector<std::string>& extraDnsNames) {
  std::vector<std::string> names{cn};
  for (const auto& n : extraDnsNames)
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  for (const auto& n : names)
    if (!validDnsName(n)) throw CertError("'" + n + "' is not a DNS name");
  KeyPtr key(EVP_RSA_gen(2048), EVP_PKEY_free);
  if (!key) throw CertError("cannot generate an RSA 2048 key");
  ReqPtr req(X509_REQ_new(), X509_REQ_free);
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key.get());
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  std::string san;
  for (const auto& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
  try {
    addReqExt(exts, NID_subject_alt_name, san);
    addReqExt(exts, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    addReqExt(exts, NID_ext_key_usage, "serverAuth,clientAuth");
  } catch (...) {
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    throw;
  }
  int added = X509_REQ_add_extensions(req.get(), exts);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  if (added != 1) throw CertError("cannot add the request extensions");
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) == 0) throw CertError("cannot sign the request");
  KeyAndCsr out;
  BioPtr kb(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  out.keyPem = bioString(kb.get());
  BioPtr rb(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509_REQ(rb.get(), req.get());
  out.csrPem = bioString(rb.get());
  return out;
}

bool certificateMatchesKey(std::string_view certPem, std::string_view keyPem) {
  auto certs = readAll(certPem);
  auto b = memBio(keyPem);
  KeyPtr key(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  ERR_clear_error();
  if (!key) throw CertError("the private key is not an unencrypted PEM key");
  bool ok = X509_check_private_key(certs.front().get(), key.get()) == 1;
  ERR_clear_error();
  return ok;
}

ChainCheck verifyCertificateChain(std::string_view chainPem, const std::vector<std::string>& trustedRootPems,
                                  std::time_t at) {
  auto chain = readAll(chainPem);
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  for (const auto& root : trustedRootPems) {
    std::vector<X509Ptr> roots;
    try {
      roots = readAll(root);
    } catch (const CertError&) {
      continue;
    }
    for (auto& r : roots) X509_STORE_add_cert(store.get(), r.get());
  }
  ERR_clear_error();
  std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)> untrusted(sk_X509_new_null(),
                                                                       [](STACK_OF(X509)* s) { sk_X509_free(s); });
  for (std::size_t k = 1; k < chain.size(); ++k) sk_X509_push(untrusted.get(), chain[k].get());
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain.front().get(), untrusted.get()) != 1)
    throw CertError("cannot set up the certificate verification");
  X509_STORE_CTX_set_time(ctx.get(), 0, at);
  ChainCheck out;
  if (X509_verify_cert(ctx.get()) == 1) {
    out.ok = true;
  } else {
    int err = X509_STORE_CTX_get_error(ctx.get());
    out.reason = X509_verify_cert_error_string(err);
    X509* bad = X509_STORE_CTX_get_current_cert(ctx.get());
    if (bad) {
      out.reason += " (" + nameText(X509_get_subject_name(bad));
      if (err == X509_V_ERR_CERT_HAS_EXPIRED) out.reason += ", not after " + isoTime(X509_get0_notAfter(bad));
      if (err == X509_V_ERR_CERT_NOT_YET_VALID) out.reason += ", not before " + isoTime(X509_get0_notBefore(bad));
      if (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
        out.reason += ", issuer " + nameText(X509_get_issuer_name(bad));
      out.reason += ")";
    }
  }
  ERR_clear_error();
  return out;
}

}  // namespace imp::core
