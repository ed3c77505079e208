#pragma once
// TLS contexts for the protocols that speak TLS, built on OpenSSL directly:
// SIP over TLS (TLS-1..TLS-3, MICROSOFT-SIP.md "Transport and trust") first;
// nothing here knows which protocol runs inside.
//
// A TlsContext wraps one SSL_CTX for one side (server: listeners; client:
// outgoing connections). It is immutable after construction and shared by
// every connection that uses it (std::shared_ptr<const TlsContext>); OpenSSL
// makes a configured SSL_CTX safe to use from several threads/loops.
//
// Errors: construction throws std::runtime_error with a message naming the
// setting or file and OpenSSL's reason: unreadable/invalid certFile, keyFile,
// caFile, a key that does not match the certificate, a cipher list that
// selects nothing, minVersion > maxVersion, TLS 1.0/1.1 requested while
// allowTls10 is false, a server context without a certificate, peer
// verification without a trust store.
//
// Versions: TLS 1.0/1.1 are refused unless allowTls10 is set (OCS 2007 R2
// speaks only TLS 1.0). OpenSSL 3 refuses them at its default security level
// whatever the version range says, so an allowTls10 context whose range
// includes them runs at "@SECLEVEL=0" (added to the cipher list). That also
// admits SHA-1 signatures and short keys for TLS 1.2 peers of that context:
// keep OCS peers on their own context when possible.
//
// Peer identity (TLS-2): callers see the subject CN of the verified peer
// certificate, never a Subject Alternative Name.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct x509_st X509;

namespace imp::net {

enum class TlsVersion : std::uint8_t { Tls10, Tls11, Tls12, Tls13 };
std::string_view tlsVersionName(TlsVersion v);  // "TLSv1.0" ...

enum class TlsRole : std::uint8_t { Server, Client };

struct TlsContextConfig {
  std::string certFile;  // PEM chain, leaf first; required for servers
  std::string keyFile;   // PEM private key of certFile
  std::string caFile;    // PEM trust store (TLS-4 "cup-trust")
  std::string cipherList;         // OpenSSL list for TLS <= 1.2; "" = DEFAULT
  std::string tls13CipherSuites;  // OpenSSL TLS 1.3 suites; "" = default
  TlsVersion minVersion = TlsVersion::Tls12;
  TlsVersion maxVersion = TlsVersion::Tls13;
  bool allowTls10 = false;  // permit minVersion Tls10/Tls11 (OCS 2007 R2)
  // Server: request a client certificate, refuse the handshake without a
  // valid one (mutual TLS, "Peer Auth" listener). Client: verify the
  // server's certificate chain against caFile; there is no host-name check
  // (destinations are IP literals): callers compare Source::peerCommonName.
  bool verifyPeer = false;
  // SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS (TLS-3 "Disable Empty TLS
  // Fragments"): on by default, as Lync federation requires.
  bool disableEmptyFragments = true;
};

class TlsContext {
 public:
  // Throws std::runtime_error (see above).
  TlsContext(const TlsContextConfig& config, TlsRole role);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  static std::shared_ptr<const TlsContext> server(const TlsContextConfig& config) {
    return std::make_shared<const TlsContext>(config, TlsRole::Server);
  }
  static std::shared_ptr<const TlsContext> client(const TlsContextConfig& config) {
    return std::make_shared<const TlsContext>(config, TlsRole::Client);
  }

  TlsRole role() const { return role_; }
  const TlsContextConfig& config() const { return config_; }
  bool verifiesPeer() const { return config_.verifyPeer; }
  // The underlying context (for the transport's SSL objects).
  SSL_CTX* native() const { return ctx_; }

 private:
  TlsContextConfig config_;
  TlsRole role_;
  SSL_CTX* ctx_ = nullptr;
};

// Subject CN of the peer's certificate on `ssl` (the first CN entry when the
// subject has several); "" when there is no certificate or no CN. Never looks
// at subjectAltName (TLS-2).
std::string peerCommonName(const SSL* ssl);
// Subject CN of `cert` (same rules); "" for nullptr.
std::string certificateCommonName(const X509* cert);
// The first queued OpenSSL error as text ("" if none); clears the queue.
std::string takeOpenSslError();
// Whether this OpenSSL build can negotiate `v` at all (built without
// no-tls1 etc.); says nothing about security levels.
bool tlsVersionCompiledIn(TlsVersion v);

}  // namespace imp::net
