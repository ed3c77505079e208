#pragma once
// Schema migrations: plain SQL files sql/NNNN_<module>_<what>.sql applied in
// order, each recorded in `schema_migration` with its checksum. A MySQL named
// lock (GET_LOCK) guards the whole run, so nodes starting together never race:
// the second waits, then finds nothing left to do.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace imp::core {

class Database;

struct Migration {
  int version = 0;
  std::string name;      // file name
  std::string checksum;  // SHA-256 of the file, hex
  std::string sql;
};

struct MigrationRecord {
  int version = 0;
  std::string name;
  std::string appliedAt;
  std::string appliedBy;
};

struct MigrationStatus {
  std::vector<MigrationRecord> applied;
  std::vector<Migration> pending;
};

// Reads and validates the directory: names must be NNNN_[a-z0-9_]+.sql with
// unique versions. Throws std::runtime_error naming the offending file.
std::vector<Migration> loadMigrations(const std::filesystem::path& dir);

// Splits a file into statements at ';' that ends a line, skipping comments.
std::vector<std::string> splitStatements(const std::string& sql);

class Migrator {
 public:
  Migrator(Database& db, std::filesystem::path dir, std::string nodeId, std::shared_ptr<spdlog::logger> log);
  MigrationStatus status();
  // Applies pending migrations; returns the ones this call applied. Throws
  // std::runtime_error if an applied file was changed since.
  std::vector<Migration> migrate();
  // Highest applied version, 0 if none.
  int currentVersion();

 private:
  void ensureTable();
  Database& db_;
  std::filesystem::path dir_;
  std::string nodeId_;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace imp::core
