// The trust store cup-trust (TLS-4) on the in-memory fake database.
#include <doctest/doctest.h>
#include <imp/core/cert_store.h>
#include <imp/core/database.h>
#include <imp/testing/fake_database.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fakes/test_certs.h>

using namespace imp::core;
using namespace imp::testcerts;
using imp::testing::FakeDatabase;

namespace {
std::int64_t generation(Database& db) { return db.query("SELECT generation FROM core_settings WHERE id = 1").num(0, "generation"); }
}  // namespace

TEST_CASE("the trust store adds CA certificates, refuses the others and removes by fingerprint or CN") {
  FakeDatabase db;
  db.migrate();
  TrustStore store(db);
  TestCa root("Example Root CA");
  TestCa other("Other Root CA");
  const auto now = std::time(nullptr);
  const auto g0 = generation(db);

  auto added = store.add(root.pem() + other.pem(), now);
  REQUIRE(added.size() == 2);
  CHECK(generation(db) == g0 + 1);
  auto all = store.list();
  REQUIRE(all.size() == 2);
  CHECK(all[0].info.subjectCn == "Example Root CA");
  CHECK(all[1].info.subjectCn == "Other Root CA");
  CHECK_FALSE(all[0].addedAt.empty());
  CHECK(store.find("Example Root CA").sha256 == added[0].sha256);
  std::string bare;
  for (char ch : added[1].sha256)
    if (ch != ':') bare += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  CHECK(store.find(bare).subjectCn == "Other Root CA");

  CHECK_THROWS_WITH_AS(store.add(root.pem(), now),
                       ("already in the trust store as cup-trust/" + added[0].sha256 + ": CN=Example Root CA,O=Example").c_str(),
                       CertError);
  CHECK_THROWS_WITH_AS(store.add("garbage", now), "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)", CertError);
  Key leafKey(EVP_EC_gen("P-256"));
  auto leaf = certPem({.cn = "leaf.example.com"}, leafKey.k, root.cert, root.key.k);
  CHECK_THROWS_WITH_AS(store.add(leaf, now),
                       doctest::Contains("not a CA certificate (no basicConstraints CA:TRUE): CN=leaf.example.com"), CertError);
  Key oldKey(EVP_EC_gen("P-256"));
  auto expired = certPem({.cn = "Old CA", .ca = true, .notBeforeDays = -800, .notAfterDays = -1}, oldKey.k, nullptr, nullptr);
  CHECK_THROWS_WITH_AS(store.add(expired, now), doctest::Contains("expired on "), CertError);
  TestCa third("Third CA");
  CHECK_THROWS_WITH_AS(store.add(third.pem() + third.pem(), now), doctest::Contains("given twice: CN=Third CA"), CertError);
  // a refused file adds nothing, not even its good certificates
  CHECK_THROWS_AS(store.add(third.pem() + leaf, now), CertError);
  CHECK(store.list().size() == 2);
  CHECK(generation(db) == g0 + 1);

  // the bundle: [tls] ca_file first, then every entry
  auto dir = std::filesystem::temp_directory_path() / ("imp-trust-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "ca.pem") << third.pem();
  auto fps = writeTrustBundle(store.list(), dir / "ca.pem", dir / "bundle.pem");
  CHECK(fps == std::vector<std::string>{added[0].sha256, added[1].sha256});
  std::ifstream in(dir / "bundle.pem");
  std::stringstream ss;
  ss << in.rdbuf();
  auto inBundle = parseCertificates(ss.str());
  REQUIRE(inBundle.size() == 3);
  CHECK(inBundle[0].subjectCn == "Third CA");
  CHECK(inBundle[2].subjectCn == "Other Root CA");
  writeFileAtomically(dir / "key.pem", "secret", 0600);
  struct stat st {};
  REQUIRE(::stat((dir / "key.pem").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::filesystem::remove_all(dir);

  CHECK_THROWS_WITH_AS(store.remove("Nobody"), "no certificate cup-trust/Nobody in the trust store (impctl cert list shows them)",
                       CertError);
  CHECK(store.remove("Example Root CA").sha256 == added[0].sha256);
  CHECK(generation(db) == g0 + 2);
  CHECK(store.remove(added[1].sha256).subjectCn == "Other Root CA");
  CHECK(store.list().empty());
}
