#include <doctest/doctest.h>
#include <imp/core/certificates.h>
#include <imp/core/config.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

using namespace imp::core;

namespace {
std::filesystem::path tmpdir(const char* tag) {
  auto d = std::filesystem::temp_directory_path() / ("imp-cert-" + std::string(tag) + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}
}  // namespace

TEST_CASE("a self-signed node certificate is generated once and reused") {
  auto d = tmpdir("gen");
  auto c1 = ensureNodeCertificate(d, "", "", "", "imp1.example.com");
  CHECK(c1.generated);
  CHECK(c1.subjectCn == "imp1.example.com");
  CHECK(certificateCommonName(c1.certFile) == "imp1.example.com");
  CHECK(c1.notAfter.size() == 20);
  struct stat st {};
  REQUIRE(::stat(c1.keyFile.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto c2 = ensureNodeCertificate(d, "", "", "", "other-name");
  CHECK_FALSE(c2.generated);
  CHECK(c2.subjectCn == "imp1.example.com");
  // configured files: the generated pair works; a mismatched key is refused
  auto c3 = ensureNodeCertificate(d, c1.certFile.string(), c1.keyFile.string(), c1.certFile.string(), "x");
  CHECK(c3.caFile == c1.certFile);
  auto e = tmpdir("other");
  auto other = ensureNodeCertificate(e, "", "", "", "imp2.example.com");
  CHECK_THROWS_WITH_AS(ensureNodeCertificate(d, c1.certFile.string(), other.keyFile.string(), "", "x"),
                       ("in [tls]: the private key " + other.keyFile.string() + " does not match " + c1.certFile.string()).c_str(),
                       ConfigError);
  std::filesystem::remove_all(d);
  std::filesystem::remove_all(e);
}

TEST_CASE("bad certificate settings are refused with [tls]") {
  auto d = tmpdir("bad");
  CHECK_THROWS_WITH_AS(ensureNodeCertificate(d, "/x.crt", "", "", "h"), "in [tls]: cert_file and key_file go together: set both or neither",
                       ConfigError);
  CHECK_THROWS_WITH_AS(ensureNodeCertificate(d, "/nonexistent.crt", "/nonexistent.key", "", "h"),
                       "in [tls]: cannot read certificate /nonexistent.crt", ConfigError);
  std::ofstream(d / "junk.pem") << "not a certificate\n";
  CHECK_THROWS_WITH_AS(ensureNodeCertificate(d, (d / "junk.pem").string(), (d / "junk.pem").string(), "", "h"),
                       ("in [tls]: " + (d / "junk.pem").string() + " is not a PEM certificate").c_str(), ConfigError);
  std::filesystem::remove_all(d);
}

TEST_CASE("an upload stopped between its two renames is finished at the next start (TLS-4)") {
  auto a = tmpdir("upl-a");
  auto b = tmpdir("upl-b");
  auto fresh = ensureNodeCertificate(a, "", "", "", "new.example.com");  // the uploaded certificate and its key
  auto old = ensureNodeCertificate(b, "", "", "", "old.example.com");    // the key still in place
  // the state the upload leaves when it stops after writing the certificate
  std::filesystem::copy_file(fresh.keyFile, pendingKeyFile(b));
  std::filesystem::copy_file(fresh.certFile, old.certFile, std::filesystem::copy_options::overwrite_existing);
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  auto c = ensureNodeCertificate(b, "", "", "", "x");
  CHECK(c.uploadFinished);
  CHECK(c.subjectCn == "new.example.com");
  CHECK(slurp(c.keyFile) == slurp(fresh.keyFile));
  CHECK_FALSE(std::filesystem::exists(pendingKeyFile(b)));
  struct stat st {};
  REQUIRE(::stat(c.keyFile.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK_FALSE(ensureNodeCertificate(b, "", "", "", "x").uploadFinished);

  // a pending key that does not match either: still refused
  auto other = tmpdir("upl-c");
  auto third = ensureNodeCertificate(other, "", "", "", "third.example.com");
  std::filesystem::copy_file(third.keyFile, c.keyFile, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(third.keyFile, pendingKeyFile(b));
  CHECK_THROWS_WITH_AS(ensureNodeCertificate(b, "", "", "", "x"),
                       ("in [tls]: the private key " + c.keyFile.string() + " does not match " + c.certFile.string()).c_str(),
                       ConfigError);
  for (const auto& d : {a, b, other}) std::filesystem::remove_all(d);
}
