#include <doctest/doctest.h>
#include <imp/core/migrations.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using imp::core::loadMigrations;
using imp::core::splitStatements;

TEST_CASE("statements split at line-ending semicolons, comments skipped") {
  auto s = splitStatements("-- header\nCREATE TABLE a (x INT);\n\n  -- note\nINSERT INTO a VALUES (1);\nSELECT ';'\n;\n");
  REQUIRE(s.size() == 3);
  CHECK(s[0] == "CREATE TABLE a (x INT)");
  CHECK(s[1] == "INSERT INTO a VALUES (1)");
  CHECK(s[2] == "SELECT ';'\n");
}

TEST_CASE("the project's migrations are well formed and ordered") {
  auto all = loadMigrations(IMP_SOURCE_SQL_DIR);
  REQUIRE_FALSE(all.empty());
  CHECK(all.front().version == 1);
  for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i].version > all[i - 1].version);
  for (const auto& m : all) CHECK(m.checksum.size() == 64);
}

TEST_CASE("bad migration directories are refused naming the file") {
  auto dir = std::filesystem::temp_directory_path() / ("imp-mig-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "0001_core_a.sql") << "SELECT 1;\n";
  std::ofstream(dir / "0001_core_b.sql") << "SELECT 1;\n";
  CHECK_THROWS_WITH(loadMigrations(dir), doctest::Contains("share version 0001"));
  std::filesystem::remove(dir / "0001_core_b.sql");
  std::ofstream(dir / "2_bad.sql") << "SELECT 1;\n";
  CHECK_THROWS_WITH(loadMigrations(dir), "migration file name 2_bad.sql does not match NNNN_<module>_<what>.sql");
  std::filesystem::remove_all(dir);
  CHECK_THROWS_WITH(loadMigrations(dir), doctest::Contains("does not exist"));
}
