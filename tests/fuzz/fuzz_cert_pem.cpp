// libFuzzer target: the PEM an administrator uploads (impctl cert upload,
// upload-trust; TLS-4) is refused with CertError only. The input is split
// at the first NUL: the certificate text, then a private key for the match
// check; the certificates are also checked as a chain against themselves.
#include <imp/core/cert_tools.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto nul = in.find('\0');
  const std::string_view cert = in.substr(0, nul);
  const std::string_view key = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  try {
    auto chain = imp::core::parseCertificates(cert);
    (void)imp::core::verifyCertificateChain(cert, {std::string(cert)}, 1700000000);
    if (!key.empty()) (void)imp::core::certificateMatchesKey(cert, key);
    (void)chain.front().subjectCn.size();
  } catch (const imp::core::CertError&) {
  }
  return 0;
}
