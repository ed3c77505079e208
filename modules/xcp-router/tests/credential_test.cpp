// The credential store on the fake database: it keeps xmpp::ScramCredential
// as derived by xmpp::deriveScramCredential (the RFC 5802/7677 vectors and
// SASLprep are tested in modules/xmpp/tests), so a password set through the
// store, non-ASCII included, passes the SCRAM exchange of modules/xmpp. The
// client side here is written against OpenSSL directly and applies SASLprep
// itself, as RFC 5802 §5.1 asks of a client: the expected prepared form is
// spelled out, never computed by the server's code.
#include <doctest/doctest.h>
#include <imp/core/admin_http.h>
#include <imp/xcp_router/credential_store.h>
#include <imp/xmpp/sasl.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "store_fixture.h"

using namespace imp;
using namespace imp::xcp;
using xmpp::ScramHash;

namespace {

const EVP_MD* md(ScramHash h) { return h == ScramHash::Sha1 ? EVP_sha1() : EVP_sha256(); }

std::string hmac(ScramHash h, const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md(h), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string digest(ScramHash h, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md(h), nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

// One SCRAM exchange (no channel binding) of `user` with the prepared
// password against the store's credential; true when the server accepts the
// proof and its signature verifies.
bool scramLogin(CredentialStore& store, ScramHash h, const std::string& user, const std::string& preparedPassword) {
  auto cfg = std::make_shared<xmpp::SaslConfig>();
  cfg->domain = "example.com";
  cfg->fakeCredentialSecret = "0123456789abcdef-test-secret";
  xmpp::checkSaslConfig(*cfg);
  auto created = xmpp::SaslExchange::create(h == ScramHash::Sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256", cfg,
                                            [&](const std::string& u, ScramHash hash) { return store.get(u, hash); },
                                            xmpp::SaslStream{true, {}});
  auto* failure = std::get_if<xmpp::SaslFailure>(&created);
  if (failure) throw std::runtime_error("create failed: " + failure->detail);
  auto& ex = std::get<std::unique_ptr<xmpp::SaslExchange>>(created);

  const std::string clientFirstBare = "n=" + user + ",r=clientnonce42";
  auto first = ex->start("n,," + clientFirstBare);
  REQUIRE(first.isChallenge());
  // server-first-message: r=NONCE,s=SALT,i=ITERATIONS
  const std::string& sf = first.data;
  auto s = sf.find(",s="), i = sf.find(",i=");
  REQUIRE(s != std::string::npos);
  REQUIRE(i != std::string::npos);
  auto nonce = sf.substr(2, s - 2);
  auto salt = xmpp::base64Decode(sf.substr(s + 3, i - s - 3));
  REQUIRE(salt);
  int iterations = std::stoi(sf.substr(i + 3));

  std::string salted(xmpp::hashSize(h), '\0');
  REQUIRE(PKCS5_PBKDF2_HMAC(preparedPassword.data(), static_cast<int>(preparedPassword.size()),
                            reinterpret_cast<const unsigned char*>(salt->data()), static_cast<int>(salt->size()),
                            iterations, md(h), static_cast<int>(salted.size()),
                            reinterpret_cast<unsigned char*>(salted.data())) == 1);
  auto clientKey = hmac(h, salted, "Client Key");
  auto storedKey = digest(h, clientKey);
  std::string withoutProof = "c=biws,r=" + nonce;
  std::string authMessage = clientFirstBare + "," + sf + "," + withoutProof;
  auto signature = hmac(h, storedKey, authMessage);
  std::string proof = clientKey;
  for (std::size_t k = 0; k < proof.size(); ++k) proof[k] = static_cast<char>(proof[k] ^ signature[k]);
  auto fin = ex->next(withoutProof + ",p=" + xmpp::base64Encode(proof));
  if (!fin.isSuccess()) return false;
  auto serverSignature = hmac(h, hmac(h, salted, "Server Key"), authMessage);
  CHECK(fin.data == "v=" + xmpp::base64Encode(serverSignature));
  return ex->succeeded();
}

}  // namespace

TEST_CASE("the mechanism column: SCRAM-SHA-1 and SCRAM-SHA-256 only") {
  CHECK(std::string(mechanismName(ScramHash::Sha1)) == "SCRAM-SHA-1");
  CHECK(std::string(mechanismName(ScramHash::Sha256)) == "SCRAM-SHA-256");
  ScramHash h = ScramHash::Sha256;
  CHECK(parseMechanism("SCRAM-SHA-1", h));
  CHECK(h == ScramHash::Sha1);
  CHECK(parseMechanism("SCRAM-SHA-256", h));
  CHECK(h == ScramHash::Sha256);
  CHECK_FALSE(parseMechanism("SCRAM-SHA-1-PLUS", h));
  CHECK_FALSE(parseMechanism("PLAIN", h));
}

TEST_CASE_FIXTURE(xcptest::StoreFixture,
                  "RFC 4013, RFC 5802: a non-ASCII password set through the store passes a SCRAM exchange") {
  CredentialStore store(db);
  // "päss<U+00A0>wörd<U+00AD>": SASLprep maps the no-break space to U+0020
  // and the soft hyphen to nothing, and keeps the precomposed umlauts (NFKC).
  store.setPassword("ann", "p\xC3\xA4ss\xC2\xA0w\xC3\xB6rd\xC2\xAD", 4096);
  const std::string prepared = "p\xC3\xA4ss w\xC3\xB6rd";
  for (auto h : {ScramHash::Sha1, ScramHash::Sha256}) {
    const std::string mechanism(mechanismName(h));
    CAPTURE(mechanism);
    auto c = store.get("ann", h);
    REQUIRE(c);
    CHECK(c->hash == h);
    CHECK(c->iterations == 4096);
    CHECK(c->salt.size() == xmpp::kScramSaltBytes);
    CHECK(c->storedKey.size() == xmpp::hashSize(h));
    CHECK(c->serverKey.size() == xmpp::hashSize(h));
    CHECK(scramLogin(store, h, "ann", prepared));
    CHECK_FALSE(scramLogin(store, h, "ann", "p\xC3\xA4ss w\xC3\xB6rd2"));
    // The unprepared form is another password: a client must apply SASLprep.
    CHECK_FALSE(scramLogin(store, h, "ann", "p\xC3\xA4ss\xC2\xA0w\xC3\xB6rd\xC2\xAD"));
  }
  CHECK(store.get("ann", ScramHash::Sha1)->salt != store.get("ann", ScramHash::Sha256)->salt);
  const std::vector<ScramHash> both{ScramHash::Sha1, ScramHash::Sha256};
  CHECK(store.mechanisms("ann") == both);
  CHECK_FALSE(store.get("bob", ScramHash::Sha256));
}

TEST_CASE_FIXTURE(xcptest::StoreFixture, "setPassword refuses what SASLprep refuses, and weak iteration counts") {
  CredentialStore store(db);
  store.setPassword("ann", "caf\xC3\xA9", 5000);
  auto before = store.get("ann", ScramHash::Sha256);
  REQUIRE(before);
  auto refusal = [&](std::string_view password, std::uint32_t iterations) -> std::string {
    try {
      store.setPassword("ann", password, iterations);
    } catch (const core::AdminError& e) {
      CHECK(e.status() == 400);
      return e.what();
    }
    return "(accepted)";
  };
  CHECK(refusal("tab\there", 4096).find("SASLprep") != std::string::npos);       // control character
  CHECK(refusal("\xEE\x80\x80", 4096).find("SASLprep") != std::string::npos);    // U+E000 private use
  CHECK(refusal("\xD8\xA7" "1", 4096).find("SASLprep") != std::string::npos);    // RFC 3454 §6 bidi rule
  CHECK(refusal("caf\xff", 4096).find("SASLprep") != std::string::npos);         // invalid UTF-8
  CHECK(refusal("", 4096).find("empty") != std::string::npos);
  CHECK(refusal("\xC2\xAD", 4096).find("empty") != std::string::npos);           // mapped to nothing
  CHECK(refusal("pencil", 1000).find("RFC 7677") != std::string::npos);
  CHECK(refusal("pencil", xmpp::kScramMaxIterations + 1).find("maximum") != std::string::npos);
  CHECK(store.get("ann", ScramHash::Sha256) == before);  // unchanged by the refusals
  try {
    store.setPassword("nobody", "pencil", 4096);
    FAIL("an unknown user was accepted");
  } catch (const core::AdminError& e) {
    CHECK(e.status() == 404);
  }
}

TEST_CASE_FIXTURE(xcptest::StoreFixture, "put/get keep a credential byte for byte; remove drops the user's") {
  CredentialStore store(db);
  auto c = xmpp::deriveScramCredential(ScramHash::Sha256, "pencil", 4096, std::string("\x00\xff salt", 7));
  store.put("bob", c);
  CHECK(store.get("bob", ScramHash::Sha256) == c);
  CHECK_FALSE(store.get("bob", ScramHash::Sha1));
  CHECK(store.remove("bob"));
  CHECK_FALSE(store.get("bob", ScramHash::Sha256));
  CHECK_FALSE(store.remove("bob"));
}
