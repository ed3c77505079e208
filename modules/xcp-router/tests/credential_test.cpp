// SCRAM key derivation against the RFC test vectors: the keys derived from
// "pencil" must verify the client proof and produce the server signature of
// the exchanges in RFC 5802 §5 (SCRAM-SHA-1) and RFC 7677 §3 (SCRAM-SHA-256).
#include <doctest/doctest.h>
#include <imp/xcp_router/credential_store.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <stdexcept>
#include <string>

using namespace imp::xcp;

namespace {

std::string hmac(ScramHash h, const std::string& key, const std::string& data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned len = 0;
  HMAC(h == ScramHash::Sha1 ? EVP_sha1() : EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return {reinterpret_cast<const char*>(out.data()), len};
}

std::string hash(ScramHash h, const std::string& data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, h == ScramHash::Sha1 ? EVP_sha1() : EVP_sha256(), nullptr);
  return {reinterpret_cast<const char*>(out.data()), len};
}

struct Vector {
  ScramHash h;
  const char* salt;
  const char* clientFirstBare;
  const char* serverFirst;
  const char* clientFinalWithoutProof;
  const char* proof;
  const char* serverSignature;
};

void checkVector(const Vector& v) {
  auto salt = base64Decode(v.salt);
  REQUIRE(salt);
  auto c = deriveScram(v.h, "pencil", *salt, 4096);
  std::string auth = std::string(v.clientFirstBare) + "," + v.serverFirst + "," + v.clientFinalWithoutProof;
  // RFC 5802 §3: ServerSignature = HMAC(ServerKey, AuthMessage).
  CHECK(base64Encode(hmac(v.h, c.serverKey, auth)) == v.serverSignature);
  // The server's check of the proof: ClientKey = proof XOR HMAC(StoredKey,
  // AuthMessage), and H(ClientKey) must be StoredKey.
  auto proof = base64Decode(v.proof);
  REQUIRE(proof);
  auto sig = hmac(v.h, c.storedKey, auth);
  REQUIRE(sig.size() == proof->size());
  std::string clientKey(sig.size(), '\0');
  for (std::size_t i = 0; i < sig.size(); ++i) clientKey[i] = static_cast<char>((*proof)[i] ^ sig[i]);
  CHECK(hash(v.h, clientKey) == c.storedKey);
  CHECK(c.iterations == 4096);
  CHECK(c.salt == *salt);
}

}  // namespace

TEST_CASE("RFC 5802 §5: SCRAM-SHA-1 keys from 'pencil' verify the example exchange") {
  checkVector({ScramHash::Sha1, "QSXCR+Q6sek8bf92", "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
               "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
               "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j", "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
               "rmF9pqV8S7suAoZWja4dJRkFsKQ="});
}

TEST_CASE("RFC 7677 §3: SCRAM-SHA-256 keys from 'pencil' verify the example exchange") {
  checkVector({ScramHash::Sha256, "W22ZaJ0SNY7soEsUEjb6gQ==", "n=user,r=rOprNGfwEbeRWgbNEkqO",
               "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
               "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
               "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="});
}

TEST_CASE("RFC 4648 §10: base64 test vectors, and non-canonical input refused") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    CHECK(base64Encode(plain) == encoded);
    auto d = base64Decode(encoded);
    REQUIRE(d);
    CHECK(*d == plain);
  }
  CHECK_FALSE(base64Decode("Zg="));    // length not a multiple of 4
  CHECK_FALSE(base64Decode("Zh=="));   // bits under the padding set
  CHECK_FALSE(base64Decode("Zm9v!A==")); // not the alphabet
  CHECK_FALSE(base64Decode("=m9v"));
}

TEST_CASE("passwords: printable ASCII only (SASLprep is the identity there), 1..1023 bytes") {
  CHECK(passwordProblem("pencil").empty());
  CHECK(passwordProblem("a b~!").empty());
  CHECK(passwordProblem("") == "the password is empty");
  CHECK(passwordProblem(std::string(1024, 'x')) == "the password is longer than 1023 bytes");
  CHECK(passwordProblem(std::string(1023, 'x')).empty());
  CHECK(passwordProblem("tab\there").find("control character") != std::string::npos);
  CHECK(passwordProblem("caf\xc3\xa9").find("SASLprep") != std::string::npos);
  CHECK_THROWS_AS(deriveScram(ScramHash::Sha256, "pencil", "salt", 0), std::invalid_argument);
  CHECK_THROWS_AS(deriveScram(ScramHash::Sha256, "pencil", "", 4096), std::invalid_argument);
  ScramHash h;
  CHECK(parseMechanism("SCRAM-SHA-1", h));
  CHECK(h == ScramHash::Sha1);
  CHECK_FALSE(parseMechanism("SCRAM-SHA-1-PLUS", h));
}
