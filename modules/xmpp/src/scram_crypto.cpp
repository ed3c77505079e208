// SCRAM primitives (RFC 5802 §2.2, §3) on OpenSSL, and the credentials built
// from them: derived from a password, or — for a user that does not exist —
// from the server secret (RFC 5802 §9).
#include "sasl_internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>
#include <string>

namespace imp::xmpp {
namespace {

const EVP_MD* digestOf(ScramHash h) { return h == ScramHash::Sha1 ? EVP_sha1() : EVP_sha256(); }

// OpenSSL failing on in-memory digests means the library is broken: an
// impossible state, not bad input.
[[noreturn]] void cryptoFailure(const char* what) {
  throw std::runtime_error(std::string("SCRAM: OpenSSL ") + what + " failed");
}

}  // namespace

std::string_view hashName(ScramHash h) { return h == ScramHash::Sha1 ? "SHA-1" : "SHA-256"; }
std::size_t hashSize(ScramHash h) { return h == ScramHash::Sha1 ? 20 : 32; }

void checkScramIterations(std::uint32_t iterations) {
  if (iterations < kScramMinIterations)
    throw std::invalid_argument("SCRAM iteration count " + std::to_string(iterations) + " is below the minimum " +
                                std::to_string(kScramMinIterations) + " (RFC 7677 §4); set 4096 or more");
  if (iterations > kScramMaxIterations)
    throw std::invalid_argument("SCRAM iteration count " + std::to_string(iterations) + " is above the maximum " +
                                std::to_string(kScramMaxIterations) + " (every login would cost seconds of CPU)");
}

ScramCredential deriveScramCredential(ScramHash hash, std::string_view password, std::uint32_t iterations) {
  return deriveScramCredential(hash, password, iterations, detail::randomBytes(kScramSaltBytes));
}

ScramCredential deriveScramCredential(ScramHash hash, std::string_view password, std::uint32_t iterations,
                                      std::string_view salt) {
  checkScramIterations(iterations);
  if (salt.empty()) throw std::invalid_argument("SCRAM salt is empty");
  auto prepared = saslPrep(password);
  if (!prepared)
    throw std::invalid_argument(
        "the password is refused by SASLprep (RFC 4013): invalid UTF-8, a control, private-use, unassigned or "
        "otherwise prohibited character, or mixed-direction text");
  if (prepared->empty()) throw std::invalid_argument("the password is empty after SASLprep (RFC 4013)");
  auto salted = detail::pbkdf2(hash, *prepared, salt, iterations);
  return detail::credentialFromSalted(hash, salted, salt, iterations);
}

namespace detail {

std::string hashOf(ScramHash h, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, digestOf(h), nullptr) != 1) cryptoFailure("EVP_Digest");
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string hmacOf(ScramHash h, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(digestOf(h), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), out, &len))
    cryptoFailure("HMAC");
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string pbkdf2(ScramHash h, std::string_view password, std::string_view salt, std::uint32_t iterations) {
  std::string out(hashSize(h), '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                        static_cast<int>(iterations), digestOf(h), static_cast<int>(out.size()),
                        reinterpret_cast<unsigned char*>(out.data())) != 1)
    cryptoFailure("PKCS5_PBKDF2_HMAC");
  return out;
}

bool sameBytes(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

ScramCredential credentialFromSalted(ScramHash h, std::string_view saltedPassword, std::string_view salt,
                                     std::uint32_t iterations) {
  ScramCredential c;
  c.hash = h;
  c.salt = std::string(salt);
  c.iterations = iterations;
  c.storedKey = hashOf(h, hmacOf(h, saltedPassword, "Client Key"));
  c.serverKey = hmacOf(h, saltedPassword, "Server Key");
  return c;
}

ScramCredential fakeCredential(const SaslConfig& config, ScramHash h, std::string_view user) {
  // One HMAC per part, each with its own label, so no part reveals another;
  // the hash name is in the input so SHA-1 and SHA-256 salts differ as a
  // real user's two credentials do.
  auto part = [&](std::string_view label) {
    std::string input(label);
    input += '\0';
    input += hashName(h);
    input += '\0';
    input += user;
    return hmacOf(ScramHash::Sha256, config.fakeCredentialSecret, input);
  };
  ScramCredential c;
  c.hash = h;
  c.salt = part("imp scram unknown-user salt").substr(0, kScramSaltBytes);
  c.iterations = config.iterations;
  c.storedKey = part("imp scram unknown-user stored key").substr(0, hashSize(h));
  c.serverKey = part("imp scram unknown-user server key").substr(0, hashSize(h));
  return c;
}

std::string randomBytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) cryptoFailure("RAND_bytes");
  return out;
}

bool validUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF (RFC 3629 §3).
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

}  // namespace detail
}  // namespace imp::xmpp
