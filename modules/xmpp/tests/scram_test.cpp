// SCRAM server tests: the RFC example exchanges byte for byte, wrong
// passwords, unknown users (RFC 5802 §9), malformed messages, GS2 and
// channel binding (RFC 5802 §6, RFC 9266, RFC 5929).
#include <doctest/doctest.h>

#include "sasl_test_support.h"

using namespace imp::xmpp;
using namespace imp::xmpp::testing;
using namespace std::string_literals;

namespace {

std::string unb64(const char* s) {
  auto b = base64Decode(s);
  REQUIRE(b.has_value());
  return *b;
}

// RFC 5802 §5 (SCRAM-SHA-1, user "user", password "pencil").
const char* kSha1ClientFirst = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
const char* kSha1ServerFirst = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
const char* kSha1ClientFinal =
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
const char* kSha1ServerFinal = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";

// RFC 7677 §3 (SCRAM-SHA-256, user "user", password "pencil").
const char* kSha256ClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const char* kSha256ServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const char* kSha256ClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const char* kSha256ServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

struct Fixture {
  Store store;
  Fixture() {
    store.add("user", deriveScramCredential(ScramHash::Sha1, "pencil", 4096, unb64("QSXCR+Q6sek8bf92")));
    store.add("user", deriveScramCredential(ScramHash::Sha256, "pencil", 4096, unb64("W22ZaJ0SNY7soEsUEjb6gQ==")));
  }
};

SaslCondition conditionOf(const SaslStep& s) {
  REQUIRE(s.isFailure());
  return s.failure.condition;
}

}  // namespace

TEST_CASE("RFC 5802 §5: the SCRAM-SHA-1 example exchange, byte for byte") {
  Fixture f;
  auto cfg = config("3rfcNHYJY1ZVvWVs7j");
  auto ex = exchange("SCRAM-SHA-1", cfg, f.store.lookup());
  auto first = ex->start(std::string(kSha1ClientFirst));
  REQUIRE(first.isChallenge());
  CHECK(first.data == kSha1ServerFirst);
  auto last = ex->next(kSha1ClientFinal);
  REQUIRE(last.isSuccess());
  CHECK(last.data == kSha1ServerFinal);
  CHECK(ex->succeeded());
  CHECK(ex->user() == "user");
  CHECK(ex->authzid().empty());
  CHECK(cfg->stats->succeeded.load() == 1);
}

TEST_CASE("RFC 7677 §3: the SCRAM-SHA-256 example exchange, byte for byte") {
  Fixture f;
  auto cfg = config("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
  auto ex = exchange("SCRAM-SHA-256", cfg, f.store.lookup());
  auto first = ex->start(std::string(kSha256ClientFirst));
  REQUIRE(first.isChallenge());
  CHECK(first.data == kSha256ServerFirst);
  auto last = ex->next(kSha256ClientFinal);
  REQUIRE(last.isSuccess());
  CHECK(last.data == kSha256ServerFinal);
}

TEST_CASE("RFC 6120 §6.4.2: SCRAM without an initial response answers an empty challenge first") {
  Fixture f;
  auto ex = exchange("SCRAM-SHA-256", config("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"), f.store.lookup());
  auto empty = ex->start(std::nullopt);
  REQUIRE(empty.isChallenge());
  CHECK(empty.data.empty());
  CHECK(ex->next(kSha256ClientFirst).data == kSha256ServerFirst);
  CHECK(ex->next(kSha256ClientFinal).isSuccess());
}

TEST_CASE("RFC 5802: nonces come from the CSPRNG when no test seam is set") {
  Fixture f;
  auto a = exchange("SCRAM-SHA-256", config(), f.store.lookup());
  auto b = exchange("SCRAM-SHA-256", config(), f.store.lookup());
  auto sa = parseServerFirst(a->start(std::string(kSha256ClientFirst)).data);
  auto sb = parseServerFirst(b->start(std::string(kSha256ClientFirst)).data);
  CHECK(sa.nonce.rfind("rOprNGfwEbeRWgbNEkqO", 0) == 0);
  CHECK(sa.nonce.size() == std::string("rOprNGfwEbeRWgbNEkqO").size() + 32);  // 24 random bytes, base64
  CHECK(sa.nonce != sb.nonce);
}

TEST_CASE("RFC 5802: a full exchange with a random nonce and the independent test client") {
  Store store;
  store.add("ann", deriveScramCredential(ScramHash::Sha256, "s3cret pass", 5000));
  auto ex = exchange("SCRAM-SHA-256", config(), store.lookup());
  auto sf = ex->start(std::string("n,,n=ann,r=clientnonce123"));
  REQUIRE(sf.isChallenge());
  auto p = parseServerFirst(sf.data);
  CHECK(p.iterations == 5000);
  CHECK(p.salt.size() == kScramSaltBytes);
  auto fin = ex->next(clientFinal(ScramHash::Sha256, "s3cret pass", p.salt, p.iterations, "n=ann,r=clientnonce123",
                                  sf.data, "n,,", p.nonce));
  CHECK(fin.isSuccess());
  CHECK(fin.data.rfind("v=", 0) == 0);
}

TEST_CASE("RFC 5802 §9: a wrong password fails with not-authorized after the full exchange") {
  Store store;
  // Same salt and nonce as RFC 7677 §3, other password: server-first is the
  // RFC's, and the RFC's proof (for "pencil") must be refused.
  store.add("user", deriveScramCredential(ScramHash::Sha256, "pencil2", 4096, unb64("W22ZaJ0SNY7soEsUEjb6gQ==")));
  auto cfg = config("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
  auto ex = exchange("SCRAM-SHA-256", cfg, store.lookup());
  CHECK(ex->start(std::string(kSha256ClientFirst)).data == kSha256ServerFirst);
  auto last = ex->next(kSha256ClientFinal);
  CHECK(conditionOf(last) == SaslCondition::NotAuthorized);
  CHECK(last.data.empty());
  CHECK(ex->finished());
  CHECK_FALSE(ex->succeeded());
  CHECK(cfg->stats->failures(SaslCondition::NotAuthorized) == 1);
}

TEST_CASE("RFC 5802 §9: an unknown user cannot be told from a wrong password") {
  Store store;
  auto cfg = config("SERVERNONCE");
  store.add("known", deriveScramCredential(ScramHash::Sha256, "right", 4096));
  auto run = [&](const std::string& user, std::string* serverFirst) {
    auto ex = exchange("SCRAM-SHA-256", cfg, store.lookup());
    auto sf = ex->start("n,,n=" + user + ",r=CNONCE");
    REQUIRE(sf.isChallenge());
    *serverFirst = sf.data;
    auto p = parseServerFirst(sf.data);
    auto last = ex->next(clientFinal(ScramHash::Sha256, "wrong", p.salt, p.iterations, "n=" + user + ",r=CNONCE",
                                     sf.data, "n,,", p.nonce));
    return last;
  };
  std::string knownFirst, ghostFirst, ghostAgain, otherGhost;
  auto wrong = run("known", &knownFirst);
  auto ghost = run("ghost", &ghostFirst);
  auto again = run("ghost", &ghostAgain);
  run("phantom", &otherGhost);
  // Same message shapes: nonce, 16-byte salt, the configured iteration count.
  auto k = parseServerFirst(knownFirst), g = parseServerFirst(ghostFirst);
  CHECK(k.nonce == "CNONCESERVERNONCE");
  CHECK(g.nonce == "CNONCESERVERNONCE");
  CHECK(g.salt.size() == k.salt.size());
  CHECK(g.iterations == k.iterations);
  CHECK(ghostFirst.size() == knownFirst.size());  // names of equal length
  // Same failure, same (empty) data.
  CHECK(conditionOf(wrong) == SaslCondition::NotAuthorized);
  CHECK(conditionOf(ghost) == SaslCondition::NotAuthorized);
  CHECK(wrong.data == ghost.data);
  // A stable salt for one unknown name, another for another name.
  CHECK(ghostAgain == ghostFirst);
  CHECK(parseServerFirst(otherGhost).salt != g.salt);
  CHECK(cfg->stats->unknownUser.load() == 3);
  // The fake salt depends on the secret: another cluster gives another one.
  auto other = config("SERVERNONCE");
  other->fakeCredentialSecret = "another-secret-of-enough-bytes";
  auto ex = exchange("SCRAM-SHA-256", other, store.lookup());
  CHECK(parseServerFirst(ex->start(std::string("n,,n=ghost,r=CNONCE")).data).salt != g.salt);
  // And per hash, as a real user's two credentials differ.
  auto sha1 = exchange("SCRAM-SHA-1", cfg, store.lookup());
  CHECK(parseServerFirst(sha1->start(std::string("n,,n=ghost,r=CNONCE")).data).salt != g.salt);
}

TEST_CASE("RFC 5802 §9: an unknown user's fake iteration count follows the configuration") {
  Store store;
  auto cfg = config("N");
  cfg->iterations = 10000;
  auto ex = exchange("SCRAM-SHA-1", cfg, store.lookup());
  auto sf = ex->start(std::string("n,,n=nobody,r=C"));
  REQUIRE(sf.isChallenge());
  CHECK(parseServerFirst(sf.data).iterations == 10000);
  CHECK(parseServerFirst(sf.data).salt.size() == kScramSaltBytes);
}

TEST_CASE("RFC 5802 §7: malformed client-first messages are refused with malformed-request") {
  Fixture f;
  const char* bad[] = {
      "",                                  // empty initial response
      "x,,n=user,r=abc",                   // unknown GS2 flag
      "n,,r=abc,n=user",                   // attribute order
      "n,,m=ext,n=user,r=abc",             // reserved mandatory extension
      "m=ext,n,,n=user,r=abc",             // m= in place of the flag
      "n,,n=us=3Xer,r=abc",                // bad saslname escape
      "n,,n=user=,r=abc",                  // '=' at the end of a saslname
      "n,,n=,r=abc",                       // empty username
      "n,,n=user,r=",                      // empty nonce
      "n,,n=user",                         // no nonce
      "n,b=x,n=user,r=abc",                // authzid without a=
      "n,,n=user,r=ab\x7f",                // DEL in the nonce
      "n,,n=user,r=abc,1=x",               // extension name not ALPHA
      "n,,n=user,r=abc,x",                 // extension without value
      "p=tls-unique,,n=user,r=abc",        // p= with a non-PLUS mechanism
      "p=tls_x,,n=user,r=abc",             // bad cb-name characters
      "n,,n=\xff\xfe,r=abc",               // invalid UTF-8
      "n,,n=\xc0\xaf,r=abc",               // overlong UTF-8
  };
  for (const char* m : bad) {
    CAPTURE(m);
    auto ex = exchange("SCRAM-SHA-256", config("S"), f.store.lookup());
    CHECK(conditionOf(ex->start(std::string(m))) == SaslCondition::MalformedRequest);
  }
  auto withNul = exchange("SCRAM-SHA-256", config("S"), f.store.lookup());
  CHECK(conditionOf(withNul->start("n,,n=us\0er,r=abc"s)) == SaslCondition::MalformedRequest);
  auto huge = exchange("SCRAM-SHA-256", config("S"), f.store.lookup());
  CHECK(conditionOf(huge->start("n,,n=user,r=" + std::string(9000, 'a'))) == SaslCondition::MalformedRequest);
  // Malformed input is refused before the store is asked.
  CHECK(f.store.lookups == 0);
}

TEST_CASE("RFC 5802 §7: unknown extensions are ignored and saslname escapes decoded") {
  Store store;
  store.add("a,b=c", deriveScramCredential(ScramHash::Sha256, "pw-pw-pw", 4096));
  auto ex = exchange("SCRAM-SHA-256", config("S"), store.lookup());
  auto sf = ex->start(std::string("n,,n=a=2Cb=3Dc,r=CN,x=ignored"));
  REQUIRE(sf.isChallenge());
  auto p = parseServerFirst(sf.data);
  auto fin = ex->next(clientFinal(ScramHash::Sha256, "pw-pw-pw", p.salt, p.iterations, "n=a=2Cb=3Dc,r=CN,x=ignored",
                                  sf.data, "n,,", p.nonce));
  CHECK(fin.isSuccess());
  CHECK(ex->user() == "a,b=c");
}

TEST_CASE("RFC 5802 §7: malformed or mismatching client-final messages") {
  Fixture f;
  const std::string nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  struct Case {
    std::string message;
    SaslCondition expected;
  } cases[] = {
      {"c=biws,r=" + nonce, SaslCondition::MalformedRequest},                      // no proof
      {"r=" + nonce + ",c=biws," + proof, SaslCondition::MalformedRequest},        // order
      {"c=biw,r=" + nonce + "," + proof, SaslCondition::MalformedRequest},         // bad base64 length
      {"c=bi*s,r=" + nonce + "," + proof, SaslCondition::MalformedRequest},        // bad base64 alphabet
      {"c=biws,r=" + nonce + ",p=dHzb", SaslCondition::MalformedRequest},          // proof of the wrong size
      {"c=biws,r=" + nonce + ",m=x," + proof, SaslCondition::MalformedRequest},    // m= extension
      {"c=eSws,r=" + nonce + "," + proof, SaslCondition::MalformedRequest},        // "y,," is not the header sent
      {"c=biwsYWJj,r=" + nonce + "," + proof, SaslCondition::NotAuthorized},       // binding data without p=
      {"c=biws,r=" + nonce + "X," + proof, SaslCondition::NotAuthorized},          // nonce differs
      {"c=biws,r=rOprNGfwEbeRWgbNEkqO," + proof, SaslCondition::NotAuthorized},    // client nonce only
  };
  for (const auto& c : cases) {
    CAPTURE(c.message);
    auto ex = exchange("SCRAM-SHA-256", config("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"), f.store.lookup());
    REQUIRE(ex->start(std::string(kSha256ClientFirst)).isChallenge());
    CHECK(conditionOf(ex->next(c.message)) == c.expected);
  }
}

TEST_CASE("RFC 6120 §6.3.8: authzid is accepted empty or as the user's bare JID, else invalid-authzid") {
  Store store;
  store.add("ann", deriveScramCredential(ScramHash::Sha256, "password1", 4096));
  for (const std::string& authz : std::vector<std::string>{"ann@example.com", "ann@EXAMPLE.com"}) {
    CAPTURE(authz);
    auto ex = exchange("SCRAM-SHA-256", config(), store.lookup());
    std::string gs2 = "n,a=" + authz + ",";
    auto sf = ex->start(gs2 + "n=ann,r=XYZ");
    REQUIRE(sf.isChallenge());
    auto p = parseServerFirst(sf.data);
    auto fin = ex->next(clientFinal(ScramHash::Sha256, "password1", p.salt, p.iterations, "n=ann,r=XYZ", sf.data, gs2,
                                    p.nonce));
    CHECK(fin.isSuccess());
    CHECK(ex->authzid() == authz);
  }
  for (const char* authz : {"bob@example.com", "ann@example.org", "ann@example.com/res", "annx@example.com", "ann"}) {
    CAPTURE(authz);
    auto ex = exchange("SCRAM-SHA-256", config(), store.lookup());
    CHECK(conditionOf(ex->start("n,a=" + std::string(authz) + ",n=ann,r=XYZ")) == SaslCondition::InvalidAuthzid);
  }
  // c= must repeat the authzid too (RFC 5802 §7: cbind-input = gs2-header).
  auto ex = exchange("SCRAM-SHA-256", config(), store.lookup());
  auto sf = ex->start(std::string("n,a=ann@example.com,n=ann,r=XYZ"));
  auto p = parseServerFirst(sf.data);
  auto fin = ex->next(clientFinal(ScramHash::Sha256, "password1", p.salt, p.iterations, "n=ann,r=XYZ", sf.data, "n,,",
                                  p.nonce));
  CHECK(conditionOf(fin) == SaslCondition::MalformedRequest);
}

TEST_CASE("RFC 5802 §6, RFC 9266: SCRAM-SHA-256-PLUS with tls-exporter, matching and mismatching data") {
  Store store;
  store.add("ann", deriveScramCredential(ScramHash::Sha256, "password1", 4096));
  SaslStream tls{true, {std::string(32, '\x5a'), std::string(32, '\x11')}};
  auto run = [&](const std::string& type, const std::string& bound) {
    auto ex = exchange("SCRAM-SHA-256-PLUS", config(), store.lookup(), tls);
    std::string gs2 = "p=" + type + ",,";
    auto sf = ex->start(gs2 + "n=ann,r=PLUSNONCE");
    REQUIRE(sf.isChallenge());
    auto p = parseServerFirst(sf.data);
    return ex->next(clientFinal(ScramHash::Sha256, "password1", p.salt, p.iterations, "n=ann,r=PLUSNONCE", sf.data,
                                gs2 + bound, p.nonce));
  };
  CHECK(run("tls-exporter", std::string(32, '\x5a')).isSuccess());
  CHECK(run("tls-server-end-point", std::string(32, '\x11')).isSuccess());
  CHECK(conditionOf(run("tls-exporter", std::string(32, '\x5b'))) == SaslCondition::NotAuthorized);
  CHECK(conditionOf(run("tls-exporter", std::string(32, '\x11'))) == SaslCondition::NotAuthorized);
  CHECK(conditionOf(run("tls-exporter", "")) == SaslCondition::NotAuthorized);
}

TEST_CASE("RFC 5929: SCRAM-SHA-1-PLUS with tls-server-end-point only; other types are refused") {
  Store store;
  store.add("ann", deriveScramCredential(ScramHash::Sha1, "password1", 4096));
  SaslStream tls{true, {std::nullopt, std::string(20, '\x42')}};
  auto ex = exchange("SCRAM-SHA-1-PLUS", config(), store.lookup(), tls);
  auto sf = ex->start(std::string("p=tls-server-end-point,,n=ann,r=N1"));
  auto p = parseServerFirst(sf.data);
  CHECK(ex->next(clientFinal(ScramHash::Sha1, "password1", p.salt, p.iterations, "n=ann,r=N1", sf.data,
                             "p=tls-server-end-point,," + std::string(20, '\x42'), p.nonce))
            .isSuccess());
  for (const char* first : {"p=tls-exporter,,n=ann,r=N1", "p=tls-unique,,n=ann,r=N1", "n,,n=ann,r=N1",
                            "y,,n=ann,r=N1"}) {
    CAPTURE(first);
    auto e = exchange("SCRAM-SHA-1-PLUS", config(), store.lookup(), tls);
    CHECK(conditionOf(e->start(std::string(first))) == SaslCondition::MalformedRequest);
  }
}

TEST_CASE("RFC 5802 §6: GS2 flag y when -PLUS was offered is a downgrade and fails") {
  Store store;
  store.add("ann", deriveScramCredential(ScramHash::Sha256, "password1", 4096));
  SaslStream withBinding{true, {std::string(32, 'x'), std::nullopt}};
  auto ex = exchange("SCRAM-SHA-256", config(), store.lookup(), withBinding);
  CHECK(conditionOf(ex->start(std::string("y,,n=ann,r=N"))) == SaslCondition::NotAuthorized);
  // Without binding data -PLUS was not offered: 'y' is a client that could
  // bind talking to a server that cannot, and goes on (c=eSws = "y,,").
  auto ok = exchange("SCRAM-SHA-256", config(), store.lookup(), SaslStream{true, {}});
  auto sf = ok->start(std::string("y,,n=ann,r=N"));
  REQUIRE(sf.isChallenge());
  auto p = parseServerFirst(sf.data);
  CHECK(ok->next(clientFinal(ScramHash::Sha256, "password1", p.salt, p.iterations, "n=ann,r=N", sf.data, "y,,", p.nonce))
            .isSuccess());
  // 'n' is fine on a stream offering -PLUS: that client cannot bind at all.
  auto n = exchange("SCRAM-SHA-256", config(), store.lookup(), withBinding);
  CHECK(n->start(std::string("n,,n=ann,r=N")).isChallenge());
}

TEST_CASE("RFC 6120 §6.5: mechanism selection failures") {
  Store store;
  auto cfg = config();
  auto failure = [&](std::string_view mech, SaslStream stream, std::shared_ptr<const SaslConfig> c) {
    auto r = SaslExchange::create(mech, c, store.lookup(), stream);
    REQUIRE(std::holds_alternative<SaslFailure>(r));
    return std::get<SaslFailure>(r).condition;
  };
  CHECK(failure("DIGEST-MD5", {true, {}}, cfg) == SaslCondition::InvalidMechanism);
  CHECK(failure("scram-sha-256", {true, {}}, cfg) == SaslCondition::InvalidMechanism);
  CHECK(failure("SCRAM-SHA-256-PLUS", {true, {}}, cfg) == SaslCondition::InvalidMechanism);
  // Binding data without TLS is ignored: no -PLUS on a plain stream.
  CHECK(failure("SCRAM-SHA-256-PLUS", {false, {std::string(32, 'x'), std::nullopt}}, cfg) ==
        SaslCondition::InvalidMechanism);
  CHECK(failure("PLAIN", {false, {}}, cfg) == SaslCondition::EncryptionRequired);
  auto noSha1 = config();
  noSha1->allowSha1 = false;
  CHECK(failure("SCRAM-SHA-1", {true, {}}, noSha1) == SaslCondition::MechanismTooWeak);
  CHECK(noSha1->stats->failures(SaslCondition::MechanismTooWeak) == 1);
  CHECK(cfg->stats->failures(SaslCondition::InvalidMechanism) == 4);
}

TEST_CASE("RFC 6120 §6.5.11: a failing credential store is temporary-auth-failure") {
  auto cfg = config();
  CredentialLookup down = [](const std::string&, ScramHash) -> std::optional<ScramCredential> {
    throw std::runtime_error("database unavailable");
  };
  auto ex = exchange("SCRAM-SHA-256", cfg, down);
  auto s = ex->start(std::string("n,,n=ann,r=N"));
  CHECK(conditionOf(s) == SaslCondition::TemporaryAuthFailure);
  CHECK(s.failure.detail.find("database unavailable") != std::string::npos);
  // A credential for the other hash is a store bug, not a wrong password.
  Store store;
  store.creds[{"ann", ScramHash::Sha256}] = deriveScramCredential(ScramHash::Sha1, "password1", 4096);
  auto mixed = exchange("SCRAM-SHA-256", cfg, store.lookup());
  CHECK(conditionOf(mixed->start(std::string("n,,n=ann,r=N"))) == SaslCondition::TemporaryAuthFailure);
  auto corrupt = deriveScramCredential(ScramHash::Sha256, "password1", 4096);
  corrupt.storedKey.pop_back();
  store.creds[{"ann", ScramHash::Sha256}] = corrupt;
  auto broken = exchange("SCRAM-SHA-256", cfg, store.lookup());
  CHECK(conditionOf(broken->start(std::string("n,,n=ann,r=N"))) == SaslCondition::TemporaryAuthFailure);
  auto huge = deriveScramCredential(ScramHash::Sha256, "password1", 4096);
  huge.iterations = 4'000'000'000u;
  store.creds[{"ann", ScramHash::Sha256}] = huge;
  auto tooMany = exchange("SCRAM-SHA-256", cfg, store.lookup());
  CHECK(conditionOf(tooMany->start(std::string("n,,n=ann,r=N"))) == SaslCondition::TemporaryAuthFailure);
}

TEST_CASE("RFC 6120 §6.4.4: abort, and messages after the end of the exchange") {
  Fixture f;
  auto cfg = config("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
  auto ex = exchange("SCRAM-SHA-256", cfg, f.store.lookup());
  REQUIRE(ex->start(std::string(kSha256ClientFirst)).isChallenge());
  CHECK(conditionOf(ex->abort()) == SaslCondition::Aborted);
  CHECK(conditionOf(ex->next(kSha256ClientFinal)) == SaslCondition::MalformedRequest);
  CHECK(cfg->stats->failures(SaslCondition::Aborted) == 1);
  // A <response/> before <auth/>, and a second success attempt.
  auto early = exchange("SCRAM-SHA-256", cfg, f.store.lookup());
  CHECK(conditionOf(early->next(kSha256ClientFirst)) == SaslCondition::MalformedRequest);
  auto done = exchange("SCRAM-SHA-256", cfg, f.store.lookup());
  done->start(std::string(kSha256ClientFirst));
  REQUIRE(done->next(kSha256ClientFinal).isSuccess());
  CHECK(conditionOf(done->next(kSha256ClientFinal)) == SaslCondition::MalformedRequest);
  CHECK(done->succeeded());
}

TEST_CASE("RFC 5802 §7: the client-first and client-final parsers keep the verbatim parts") {
  auto first = parseScramClientFirst("p=tls-exporter,a=ann@example.com,n=ann,r=abc,q=ext");
  REQUIRE(std::holds_alternative<ScramClientFirst>(first));
  auto& cf = std::get<ScramClientFirst>(first);
  CHECK(cf.cbindFlag == 'p');
  CHECK(cf.cbindName == "tls-exporter");
  CHECK(cf.authzid == "ann@example.com");
  CHECK(cf.gs2Header == "p=tls-exporter,a=ann@example.com,");
  CHECK(cf.bare == "n=ann,r=abc,q=ext");
  CHECK(cf.user == "ann");
  CHECK(cf.clientNonce == "abc");
  auto fin = parseScramClientFinal("c=biws,r=abc,e=x,p=AAAA");
  REQUIRE(std::holds_alternative<ScramClientFinal>(fin));
  auto& f = std::get<ScramClientFinal>(fin);
  CHECK(f.channelBinding == "n,,");
  CHECK(f.nonce == "abc");
  CHECK(f.proof == std::string(3, '\0'));
  CHECK(f.withoutProof == "c=biws,r=abc,e=x");
}
