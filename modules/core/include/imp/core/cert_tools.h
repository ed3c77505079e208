#pragma once
// Certificate tools for certificate management (TLS-4) and the handshake
// checks (TLS-5): read PEM certificates, make a key and a certificate signing
// request for the service certificate, match a certificate to a key, and
// verify that a certificate chains to a trusted root.
#include <ctime>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace imp::core {

// A refusal with a message fit for the administrator.
class CertError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CertInfo {
  std::string subjectCn;    // "" when the subject has no CN
  std::string subject;      // "CN=imp1.example.com, O=Example" (RFC 2253 order)
  std::string issuer;       // same form
  std::string serial;       // upper-case hex
  std::string notBefore;    // "2026-12-07T19:00:00Z"
  std::string notAfter;
  std::string sha256;       // "AB:CD:..." of the DER certificate
  bool isCa = false;        // basicConstraints CA:TRUE
  bool serverAuth = false;  // EKU 1.3.6.1.5.5.7.3.1
  bool clientAuth = false;  // EKU 1.3.6.1.5.5.7.3.2
  std::vector<std::string> sanDns;
  std::string pem;          // this certificate alone, PEM
};

// Every certificate of a PEM text, in order. Throws CertError when the text
// holds no certificate or a block does not parse.
std::vector<CertInfo> parseCertificates(std::string_view pem);

// The first certificate of a PEM text (CertError as above).
CertInfo parseCertificate(std::string_view pem);

struct KeyAndCsr {
  std::string keyPem;  // unencrypted PKCS#8 PEM
  std::string csrPem;  // PKCS#10, SHA-256
};

// A new RSA 2048 key and a request with subject CN = cn and subjectAltName
// DNS = cn plus extraDnsNames (duplicates dropped). Throws CertError.
KeyAndCsr generateKeyAndCsr(const std::string& cn, const std::vector<std::string>& extraDnsNames = {});

// True when the public key of the (first) certificate is that of the private
// key. Throws CertError when either does not parse.
bool certificateMatchesKey(std::string_view certPem, std::string_view keyPem);

struct ChainCheck {
  bool ok = false;
  std::string reason;  // when !ok: "certificate has expired (CN=...)" etc.
};

// Verifies the first certificate of chainPem, helped by the certificates that
// follow it (intermediates), against trustedRootPems (each one or more PEM
// certificates) at the time `at`. Throws CertError when chainPem does not
// parse; an unusable trusted entry is skipped.
ChainCheck verifyCertificateChain(std::string_view chainPem, const std::vector<std::string>& trustedRootPems,
                                  std::time_t at);

}  // namespace imp::core
