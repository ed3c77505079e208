#pragma once
// An independent SCRAM client for the tests (RFC 5802 §3), written against
// OpenSSL directly so the server's own helpers never compute an expected
// value, plus a small credential store.
#include <imp/xmpp/sasl.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace imp::xmpp::testing {

inline const EVP_MD* md(ScramHash h) { return h == ScramHash::Sha1 ? EVP_sha1() : EVP_sha256(); }

inline std::string hmac(ScramHash h, const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md(h), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

inline std::string digest(ScramHash h, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md(h), nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

// The client-final-message a correct client sends for `password` (ASCII, so
// SASLprep is the identity), given what was exchanged so far.
inline std::string clientFinal(ScramHash h, const std::string& password, const std::string& salt, int iterations,
                               const std::string& clientFirstBare, const std::string& serverFirst,
                               const std::string& cbindInput, const std::string& nonce) {
  std::string salted(h == ScramHash::Sha1 ? 20 : 32, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), iterations,
                    md(h), static_cast<int>(salted.size()), reinterpret_cast<unsigned char*>(salted.data()));
  std::string clientKey = hmac(h, salted, "Client Key");
  std::string storedKey = digest(h, clientKey);
  std::string withoutProof = "c=" + base64Encode(cbindInput) + ",r=" + nonce;
  std::string authMessage = clientFirstBare + "," + serverFirst + "," + withoutProof;
  std::string signature = hmac(h, storedKey, authMessage);
  std::string proof = clientKey;
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(proof[i] ^ signature[i]);
  return withoutProof + ",p=" + base64Encode(proof);
}

// "r=...,s=...,i=..." -> its three values (throws when the shape differs).
struct ServerFirst {
  std::string nonce, salt;
  int iterations = 0;
};
inline ServerFirst parseServerFirst(const std::string& s) {
  auto c1 = s.find(",s="), c2 = s.find(",i=");
  if (s.rfind("r=", 0) != 0 || c1 == std::string::npos || c2 == std::string::npos || c2 < c1)
    throw std::runtime_error("not a server-first-message: " + s);
  auto salt = base64Decode(s.substr(c1 + 3, c2 - c1 - 3));
  if (!salt) throw std::runtime_error("salt is not base64: " + s);
  return {s.substr(2, c1 - 2), *salt, std::stoi(s.substr(c2 + 3))};
}

struct Store {
  std::map<std::pair<std::string, ScramHash>, ScramCredential> creds;
  int lookups = 0;
  void add(const std::string& user, const ScramCredential& c) { creds[{user, c.hash}] = c; }
  CredentialLookup lookup() {
    return [this](const std::string& user, ScramHash h) -> std::optional<ScramCredential> {
      ++lookups;
      auto it = creds.find({user, h});
      if (it == creds.end()) return std::nullopt;
      return it->second;
    };
  }
};

inline std::shared_ptr<SaslConfig> config(std::string nonce = {}) {
  auto c = std::make_shared<SaslConfig>();
  c->domain = "example.com";
  c->iterations = 4096;
  c->fakeCredentialSecret = "0123456789abcdef-test-secret";
  if (!nonce.empty()) c->nonceSource = [nonce] { return nonce; };
  c->stats = std::make_shared<SaslStats>();
  return c;
}

inline std::unique_ptr<SaslExchange> exchange(std::string_view mech, std::shared_ptr<const SaslConfig> cfg,
                                              CredentialLookup lookup, SaslStream stream = {true, {}}) {
  auto r = SaslExchange::create(mech, std::move(cfg), std::move(lookup), std::move(stream));
  if (auto* f = std::get_if<SaslFailure>(&r)) throw std::runtime_error("create failed: " + f->detail);
  return std::move(std::get<std::unique_ptr<SaslExchange>>(r));
}

}  // namespace imp::xmpp::testing
