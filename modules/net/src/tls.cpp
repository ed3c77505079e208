#include "imp/net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace imp::net {

namespace {

int osslVersion(TlsVersion v) {
  switch (v) {
    case TlsVersion::Tls10: return TLS1_VERSION;
    case TlsVersion::Tls11: return TLS1_1_VERSION;
    case TlsVersion::Tls12: return TLS1_2_VERSION;
    case TlsVersion::Tls13: return TLS1_3_VERSION;
  }
  return TLS1_2_VERSION;
}

[[noreturn]] void fail(const std::string& what) {
  std::string e = takeOpenSslError();
  throw std::runtime_error("TLS context: " + what + (e.empty() ? "" : ": " + e));
}

void checkReadable(const std::string& setting, const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail(setting + " '" + path + "': no such file");
  if (std::filesystem::is_directory(path, ec)) fail(setting + " '" + path + "': is a directory");
  std::ifstream in(path);
  if (!in) fail(setting + " '" + path + "': cannot be read (permissions?)");
}

}  // namespace

std::string_view tlsVersionName(TlsVersion v) {
  switch (v) {
    case TlsVersion::Tls10: return "TLSv1.0";
    case TlsVersion::Tls11: return "TLSv1.1";
    case TlsVersion::Tls12: return "TLSv1.2";
    case TlsVersion::Tls13: return "TLSv1.3";
  }
  return "?";
}

std::string takeOpenSslError() {
  unsigned long code = ERR_get_error();
  if (code == 0) return {};
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

bool tlsVersionCompiledIn(TlsVersion v) {
  switch (v) {
#ifdef OPENSSL_NO_TLS1
    case TlsVersion::Tls10: return false;
#else
    case TlsVersion::Tls10: return true;
#endif
#ifdef OPENSSL_NO_TLS1_1
    case TlsVersion::Tls11: return false;
#else
    case TlsVersion::Tls11: return true;
#endif
    case TlsVersion::Tls12: return true;
#ifdef OPENSSL_NO_TLS1_3
    case TlsVersion::Tls13: return false;
#else
    case TlsVersion::Tls13: return true;
#endif
  }
  return false;
}

TlsContext::TlsContext(const TlsContextConfig& config, TlsRole role) : config_(config), role_(role) {
  ERR_clear_error();
  const auto& c = config_;

  // Settings first: cheap checks with the clearest messages.
  if (c.minVersion > c.maxVersion)
    fail("minVersion " + std::string(tlsVersionName(c.minVersion)) + " is above maxVersion " +
         std::string(tlsVersionName(c.maxVersion)));
  if (c.minVersion < TlsVersion::Tls12 && !c.allowTls10)
    fail("minVersion " + std::string(tlsVersionName(c.minVersion)) +
         " requested but TLS 1.0/1.1 are not allowed (set allowTls10, needed only for OCS 2007 R2)");
  if (!tlsVersionCompiledIn(c.minVersion))
    fail("minVersion " + std::string(tlsVersionName(c.minVersion)) + " is not supported by this OpenSSL build");
  if (role == TlsRole::Server && (c.certFile.empty() || c.keyFile.empty()))
    fail("a server context needs certFile and keyFile");
  if (c.certFile.empty() != c.keyFile.empty())
    fail(c.certFile.empty() ? "keyFile given without certFile" : "certFile given without keyFile");
  if (c.verifyPeer && c.caFile.empty()) fail("verifyPeer needs caFile (the trust store)");
  if (!c.certFile.empty()) checkReadable("certFile", c.certFile);
  if (!c.keyFile.empty()) checkReadable("keyFile", c.keyFile);
  if (!c.caFile.empty()) checkReadable("caFile", c.caFile);

  ctx_ = SSL_CTX_new(role == TlsRole::Server ? TLS_server_method() : TLS_client_method());
  if (ctx_ == nullptr) fail("SSL_CTX_new failed");
  // From here on the destructor does not run if we throw: free by hand.
  try {
    SSL_CTX_set_min_proto_version(ctx_, osslVersion(c.minVersion));
    SSL_CTX_set_max_proto_version(ctx_, osslVersion(c.maxVersion));

    std::string ciphers = c.cipherList.empty() ? std::string("DEFAULT") : c.cipherList;
    // OpenSSL 3 refuses TLS 1.0/1.1 at security level >= 1 regardless of
    // the version range (no SHA-1 in the handshake signature).
    bool legacy = c.allowTls10 && c.minVersion < TlsVersion::Tls12;
    if (legacy && ciphers.find("@SECLEVEL=") == std::string::npos) ciphers += ":@SECLEVEL=0";
    if (SSL_CTX_set_cipher_list(ctx_, ciphers.c_str()) != 1) fail("cipherList '" + c.cipherList + "' selects no cipher");
    if (!c.tls13CipherSuites.empty() && SSL_CTX_set_ciphersuites(ctx_, c.tls13CipherSuites.c_str()) != 1)
      fail("tls13CipherSuites '" + c.tls13CipherSuites + "' is invalid");

    SSL_CTX_set_options(ctx_, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (c.disableEmptyFragments)
      SSL_CTX_set_options(ctx_, SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS);
    else
      SSL_CTX_clear_options(ctx_, SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS);
    // RELEASE_BUFFERS: the 16 KB read and write record buffers are freed
    // whenever they run empty, instead of living as long as the connection
    // (an idle XMPP client would otherwise cost 33 KB in them alone).
    SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                               SSL_MODE_RELEASE_BUFFERS);

    if (!c.certFile.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx_, c.certFile.c_str()) != 1)
        fail("certFile '" + c.certFile + "' is not a valid PEM certificate chain");
      if (SSL_CTX_use_PrivateKey_file(ctx_, c.keyFile.c_str(), SSL_FILETYPE_PEM) != 1) {
        // OpenSSL checks the pair while loading the key: say which problem it is.
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
          fail("keyFile '" + c.keyFile + "' does not match certFile '" + c.certFile + "'");
        fail("keyFile '" + c.keyFile + "' is not a valid PEM private key (encrypted keys are not supported)");
      }
      if (SSL_CTX_check_private_key(ctx_) != 1)
        fail("keyFile '" + c.keyFile + "' does not match certFile '" + c.certFile + "'");
    }
    if (!c.caFile.empty()) {
      if (SSL_CTX_load_verify_locations(ctx_, c.caFile.c_str(), nullptr) != 1)
        fail("caFile '" + c.caFile + "' holds no valid PEM certificate");
      if (role == TlsRole::Server && c.verifyPeer) {
        // Tell clients which CAs we accept, so they pick the right certificate.
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(c.caFile.c_str());
        if (names != nullptr) SSL_CTX_set_client_CA_list(ctx_, names);
      }
    }
    if (c.verifyPeer) {
      int mode = SSL_VERIFY_PEER;
      if (role == TlsRole::Server) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      SSL_CTX_set_verify(ctx_, mode, nullptr);
    } else {
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    }
    if (role == TlsRole::Server) {
      // Required for session resumption once client certificates are verified.
      static const unsigned char kSessionContext[] = "imp";
      SSL_CTX_set_session_id_context(ctx_, kSessionContext, sizeof kSessionContext - 1);
    }
  } catch (...) {
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
    throw;
  }
  ERR_clear_error();
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::string peerCommonName(const SSL* ssl) {
  if (ssl == nullptr) return {};
  return certificateCommonName(SSL_get0_peer_certificate(ssl));
}

std::string certificateCommonName(const X509* cert) {
  if (cert == nullptr) return {};
  const X509_NAME* subject = X509_get_subject_name(cert);
  if (subject == nullptr) return {};
  // TLS-2: the subject CN only; subjectAltName is deliberately ignored.
  int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx < 0) return {};
  const X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, idx);
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(entry);
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0 || utf8 == nullptr) return {};
  std::string cn(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  // A NUL inside a CN is an attack on naive string comparisons.
  if (cn.find('\0') != std::string::npos) return {};
  return cn;
}

}  // namespace imp::net
