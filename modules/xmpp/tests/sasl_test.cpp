// SASL framework tests: RFC 6120 §6.5 condition names, RFC 4648 base64,
// RFC 4013 SASLprep examples, the advertised mechanism list, credential
// derivation limits, and PLAIN (RFC 4616) over the stored SCRAM credential.
#include <doctest/doctest.h>

#include "sasl_test_support.h"

#include <stdexcept>

using namespace imp::xmpp;
using namespace imp::xmpp::testing;
using namespace std::string_literals;

TEST_CASE("RFC 6120 §6.5: condition element names") {
  CHECK(conditionName(SaslCondition::Aborted) == "aborted");
  CHECK(conditionName(SaslCondition::AccountDisabled) == "account-disabled");
  CHECK(conditionName(SaslCondition::CredentialsExpired) == "credentials-expired");
  CHECK(conditionName(SaslCondition::EncryptionRequired) == "encryption-required");
  CHECK(conditionName(SaslCondition::IncorrectEncoding) == "incorrect-encoding");
  CHECK(conditionName(SaslCondition::InvalidAuthzid) == "invalid-authzid");
  CHECK(conditionName(SaslCondition::InvalidMechanism) == "invalid-mechanism");
  CHECK(conditionName(SaslCondition::MalformedRequest) == "malformed-request");
  CHECK(conditionName(SaslCondition::MechanismTooWeak) == "mechanism-too-weak");
  CHECK(conditionName(SaslCondition::NotAuthorized) == "not-authorized");
  CHECK(conditionName(SaslCondition::TemporaryAuthFailure) == "temporary-auth-failure");
}

TEST_CASE("RFC 4648 §10: base64 test vectors both ways") {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (auto [plain, encoded] : vectors) {
    CAPTURE(plain);
    CHECK(base64Encode(plain) == encoded);
    auto back = base64Decode(encoded);
    REQUIRE(back.has_value());
    CHECK(*back == plain);
  }
  CHECK(base64Encode(std::string("\xff\xfe\x00", 3)) == "//4A");
}

TEST_CASE("RFC 4648 §3.5: non-canonical or damaged base64 is refused") {
  for (const char* bad : {"Zg=", "Zh==", "Zm9=", "Zm9v\n", " Zm9v", "Z===", "Zm=v", "====", "Zg==Zg==", "Zm9-", "Zg"}) {
    CAPTURE(bad);
    CHECK_FALSE(base64Decode(bad).has_value());
  }
}

TEST_CASE("RFC 6120 §6.4.2: SASL element payloads") {
  auto none = decodeSaslPayload("");
  REQUIRE(std::holds_alternative<std::optional<std::string>>(none));
  CHECK_FALSE(std::get<std::optional<std::string>>(none).has_value());
  auto empty = decodeSaslPayload("=");
  REQUIRE(std::holds_alternative<std::optional<std::string>>(empty));
  CHECK(std::get<std::optional<std::string>>(empty) == std::string());
  auto data = decodeSaslPayload("biwsbj11c2VyLHI9YWJj");
  REQUIRE(std::holds_alternative<std::optional<std::string>>(data));
  CHECK(std::get<std::optional<std::string>>(data) == std::string("n,,n=user,r=abc"));
  for (const char* bad : {"!!!!", "biws=", "bi ws"}) {
    auto r = decodeSaslPayload(bad);
    REQUIRE(std::holds_alternative<SaslFailure>(r));
    CHECK(std::get<SaslFailure>(r).condition == SaslCondition::IncorrectEncoding);
  }
}

TEST_CASE("RFC 4013 §3: the SASLprep examples") {
  CHECK(saslPrep("I\xC2\xAD" "X") == std::string("IX"));  // U+00AD soft hyphen mapped to nothing
  CHECK(saslPrep("user") == std::string("user"));
  CHECK(saslPrep("USER") == std::string("USER"));
  CHECK(saslPrep("\xC2\xAA") == std::string("a"));       // U+00AA, NFKC
  CHECK(saslPrep("\xE2\x85\xA8") == std::string("IX"));  // U+2168, NFKC
  CHECK_FALSE(saslPrep("\x07").has_value());             // prohibited control
  CHECK_FALSE(saslPrep("\xD8\xA7" "1").has_value());     // U+0627 U+0031: bidi rule
  // RFC 4013 §2.1: non-ASCII space (U+00A0) maps to U+0020.
  CHECK(saslPrep("a\xC2\xA0" "b") == std::string("a b"));
  CHECK_FALSE(saslPrep("\xff").has_value());             // invalid UTF-8
  CHECK_FALSE(saslPrep("\xEE\x80\x80").has_value());     // U+E000 private use
}

TEST_CASE("RFC 4616 §4, RFC 5802 §6: the advertised mechanisms") {
  using V = std::vector<std::string>;
  CHECK(mechanisms(false, {}) == V{"SCRAM-SHA-256", "SCRAM-SHA-1"});
  CHECK(mechanisms(true, {}) == V{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"});
  CHECK(mechanisms(true, {true, false}) ==
        V{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"});
  CHECK(mechanisms(true, {false, true}, false) == V{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN"});
  // Never -PLUS (nor PLAIN) without TLS, whatever the binding flags say.
  CHECK(mechanisms(false, {true, true}) == V{"SCRAM-SHA-256", "SCRAM-SHA-1"});
}

TEST_CASE("RFC 7677 §4: iteration counts below 4096 are refused with a clear error") {
  CHECK_THROWS_WITH_AS(checkScramIterations(4095),
                       "SCRAM iteration count 4095 is below the minimum 4096 (RFC 7677 §4); set 4096 or more",
                       std::invalid_argument);
  CHECK_NOTHROW(checkScramIterations(4096));
  CHECK_THROWS_AS(checkScramIterations(kScramMaxIterations + 1), std::invalid_argument);
  CHECK_THROWS_AS(deriveScramCredential(ScramHash::Sha256, "pw", 1000), std::invalid_argument);
  auto cfg = config();
  cfg->iterations = 100;
  CHECK_THROWS_AS(checkSaslConfig(*cfg), std::invalid_argument);
}

TEST_CASE("SaslConfig: the unknown-user secret and the domain are required") {
  auto cfg = config();
  CHECK_NOTHROW(checkSaslConfig(*cfg));
  cfg->fakeCredentialSecret = "short";
  CHECK_THROWS_WITH_AS(checkSaslConfig(*cfg),
                       "the unknown-user secret has 5 bytes; it needs 16 or more random bytes, the same on every node "
                       "(RFC 5802 §9)",
                       std::invalid_argument);
  cfg = config();
  cfg->domain.clear();
  CHECK_THROWS_AS(checkSaslConfig(*cfg), std::invalid_argument);
}

TEST_CASE("RFC 5802 §2.2: credentials hold salted keys only, with a fresh 16-byte salt") {
  auto a = deriveScramCredential(ScramHash::Sha256, "pencil", 4096);
  auto b = deriveScramCredential(ScramHash::Sha256, "pencil", 4096);
  CHECK(a.salt.size() == kScramSaltBytes);
  CHECK(a.salt != b.salt);
  CHECK(a.storedKey != b.storedKey);
  CHECK(a.storedKey.size() == 32);
  CHECK(a.serverKey.size() == 32);
  CHECK(a.iterations == 4096);
  auto s1 = deriveScramCredential(ScramHash::Sha1, "pencil", 4096);
  CHECK(s1.storedKey.size() == 20);
  CHECK(s1.hash == ScramHash::Sha1);
  // Derivation is deterministic for a given salt; SASLprep applies
  // (RFC 4013 §3: "I<U+00AD>X" and "IX" are the same password).
  CHECK(deriveScramCredential(ScramHash::Sha256, "I\xC2\xAD" "X", 4096, a.salt) ==
        deriveScramCredential(ScramHash::Sha256, "IX", 4096, a.salt));
  CHECK_THROWS_AS(deriveScramCredential(ScramHash::Sha256, "bad\x07", 4096), std::invalid_argument);
  CHECK_THROWS_AS(deriveScramCredential(ScramHash::Sha256, "\xC2\xAD", 4096), std::invalid_argument);
}

TEST_CASE("RFC 4616 §2: the PLAIN message grammar") {
  auto ok = parsePlainMessage("ann@example.com\0ann\0pw"s);
  REQUIRE(std::holds_alternative<PlainMessage>(ok));
  CHECK(std::get<PlainMessage>(ok).authzid == "ann@example.com");
  CHECK(std::get<PlainMessage>(ok).authcid == "ann");
  CHECK(std::get<PlainMessage>(ok).password == "pw");
  for (const std::string& bad :
       {std::string("annpw"), "ann\0pw"s, "\0ann\0pw\0"s, "\0\0pw"s,
        "\0ann\0"s, "\0ann\0\xff"s, "\0"s + std::string(2000, 'a') + "\0pw"s}) {
    auto r = parsePlainMessage(bad);
    REQUIRE(std::holds_alternative<SaslFailure>(r));
    CHECK(std::get<SaslFailure>(r).condition == SaslCondition::MalformedRequest);
  }
}

TEST_CASE("RFC 4616: PLAIN over TLS against the stored SCRAM-SHA-256 credential") {
  Store store;
  store.add("ann", deriveScramCredential(ScramHash::Sha256, "correct horse", 4096));
  store.add("ivan", deriveScramCredential(ScramHash::Sha256, "I\xC2\xAD" "X-pass", 4096));
  auto cfg = config();
  auto plain = [&](const std::string& message) {
    auto ex = exchange("PLAIN", cfg, store.lookup());
    return ex->start(message);
  };
  CHECK(plain("\0ann\0correct horse"s).isSuccess());
  CHECK(plain("ann@example.com\0ann\0correct horse"s).isSuccess());
  CHECK(plain("\0ivan\0IX-pass"s).isSuccess());  // RFC 4013 mapping on both sides
  auto wrong = plain("\0ann\0Correct horse"s);
  auto ghost = plain("\0bob\0correct horse"s);
  REQUIRE(wrong.isFailure());
  REQUIRE(ghost.isFailure());
  CHECK(wrong.failure.condition == SaslCondition::NotAuthorized);
  CHECK(ghost.failure.condition == SaslCondition::NotAuthorized);
  CHECK(wrong.data == ghost.data);
  CHECK(plain("bob@example.com\0ann\0correct horse"s).failure.condition ==
        SaslCondition::InvalidAuthzid);
  CHECK(plain("\0ann\0bad\x07"s).failure.condition == SaslCondition::NotAuthorized);
  CHECK(cfg->stats->succeeded.load() == 3);
  CHECK(cfg->stats->unknownUser.load() == 1);
  CHECK(cfg->stats->failures(SaslCondition::NotAuthorized) == 3);
  CHECK(cfg->stats->failures(SaslCondition::InvalidAuthzid) == 1);
}

TEST_CASE("RFC 6120 §6.4.2: PLAIN without an initial response, and its user") {
  Store store;
  store.add("ann", deriveScramCredential(ScramHash::Sha256, "pw-of-ann", 4096));
  auto ex = exchange("PLAIN", config(), store.lookup());
  auto empty = ex->start(std::nullopt);
  REQUIRE(empty.isChallenge());
  CHECK(empty.data.empty());
  CHECK(ex->next("\0ann\0pw-of-ann"s).isSuccess());
  CHECK(ex->user() == "ann");
  CHECK(ex->next("\0ann\0pw-of-ann"s).failure.condition == SaslCondition::MalformedRequest);
  auto early = exchange("PLAIN", config(), store.lookup());
  CHECK(early->next("\0ann\0pw-of-ann"s).failure.condition == SaslCondition::MalformedRequest);
  CredentialLookup down = [](const std::string&, ScramHash) -> std::optional<ScramCredential> {
    throw std::runtime_error("no database");
  };
  auto failing = exchange("PLAIN", config(), down);
  CHECK(failing->start("\0ann\0pw-of-ann"s).failure.condition == SaslCondition::TemporaryAuthFailure);
  auto huge = store.creds[{"ann", ScramHash::Sha256}];
  huge.iterations = 4'000'000'000u;
  store.creds[{"ann", ScramHash::Sha256}] = huge;
  auto tooMany = exchange("PLAIN", config(), store.lookup());
  CHECK(tooMany->start("\0ann\0pw-of-ann"s).failure.condition == SaslCondition::TemporaryAuthFailure);
}
