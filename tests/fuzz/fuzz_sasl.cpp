// libFuzzer target: the SASL parsers of modules/xmpp (RFC 5802 §7 client
// messages, RFC 4616 PLAIN, the element payload's base64, SASLprep) and a
// SCRAM exchange driven by the input ("client-first\nclient-final").
#include <imp/xmpp/sasl.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace {

using namespace imp::xmpp;

// Precomputed once: PBKDF2 per input would starve the fuzzer.
const ScramCredential& credential() {
  static const ScramCredential c = deriveScramCredential(ScramHash::Sha256, "pencil", 4096,
                                                         std::string("\x5b\x6d\x99\x68\x9d\x12\x35\x8e\xec\xa0\x4b"
                                                                     "\x14\x12\x36\xfa\x81",
                                                                     16));
  return c;
}

std::shared_ptr<const SaslConfig> config() {
  static const auto c = [] {
    auto cfg = std::make_shared<SaslConfig>();
    cfg->domain = "example.com";
    cfg->fakeCredentialSecret = "fuzzing-secret-of-32-bytes-length";
    cfg->nonceSource = [] { return std::string("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"); };
    return std::shared_ptr<const SaslConfig>(cfg);
  }();
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto first = parseScramClientFirst(text);
  if (auto* f = std::get_if<ScramClientFirst>(&first)) {
    // The header and the bare message partition the input exactly.
    if (f->gs2Header + f->bare != text) abort();
    if (f->user.empty() || f->clientNonce.empty()) abort();
  }
  auto final = parseScramClientFinal(text);
  if (auto* f = std::get_if<ScramClientFinal>(&final)) {
    if (text.substr(0, f->withoutProof.size()) != f->withoutProof) abort();
    if (f->proof.empty() || f->channelBinding.empty()) abort();
  }
  (void)parsePlainMessage(text);
  if (auto bytes = base64Decode(text)) {
    if (base64Encode(*bytes) != text) abort();  // only canonical base64 decodes
  }
  (void)decodeSaslPayload(text);
  if (size <= 1024) (void)saslPrep(text);

  auto nl = text.find('\n');
  std::string clientFirst(text.substr(0, nl));
  std::string clientFinal(nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1));
  SaslStream stream{true, {std::string(32, '\x01'), std::nullopt}};
  for (std::string_view mech : {"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"}) {
    auto made = SaslExchange::create(
        mech, config(),
        [](const std::string& user, ScramHash h) -> std::optional<ScramCredential> {
          if (user == "user" && h == ScramHash::Sha256) return credential();
          return std::nullopt;
        },
        stream);
    auto* ex = std::get_if<std::unique_ptr<SaslExchange>>(&made);
    if (!ex) abort();
    auto step = (*ex)->start(clientFirst);
    if (step.isChallenge()) step = (*ex)->next(clientFinal);
    // The second message never leaves the exchange half-open.
    if (step.isChallenge()) abort();
    if (step.isSuccess() != (*ex)->succeeded()) abort();
  }
  return 0;
}
