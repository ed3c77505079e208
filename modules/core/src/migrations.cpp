#include "imp/core/migrations.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "imp/core/database.h"

namespace imp::core {

namespace {

const char* kLockName = "imp.schema_migration";
constexpr int kLockWaitSeconds = 120;

std::string sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

}  // namespace

std::vector<std::string> splitStatements(const std::string& sqlText) {
  std::vector<std::string> out;
  std::string current;
  std::istringstream in(sqlText);
  std::string line;
  while (std::getline(in, line)) {
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    if (line.compare(first, 2, "--") == 0) continue;
    current += line;
    current += '\n';
    auto last = line.find_last_not_of(" \t\r");
    if (line[last] == ';') {
      auto semi = current.rfind(';');
      current.erase(semi);
      if (current.find_first_not_of(" \t\r\n") != std::string::npos) out.push_back(current);
      current.clear();
    }
  }
  if (current.find_first_not_of(" \t\r\n") != std::string::npos) out.push_back(current);
  return out;
}

std::vector<Migration> loadMigrations(const std::filesystem::path& dir) {
  static const std::regex kName(R"(^(\d{4})_[a-z0-9_]+\.sql$)");
  if (!std::filesystem::is_directory(dir)) throw std::runtime_error("migrations directory " + dir.string() + " does not exist");
  std::vector<Migration> out;
  std::map<int, std::string> seen;
  for (const auto& ent : std::filesystem::directory_iterator(dir)) {
    if (!ent.is_regular_file()) continue;
    auto name = ent.path().filename().string();
    if (ent.path().extension() != ".sql") continue;
    std::smatch m;
    if (!std::regex_match(name, m, kName))
      throw std::runtime_error("migration file name " + name + " does not match NNNN_<module>_<what>.sql");
    Migration mg;
    mg.version = std::stoi(m[1]);
    mg.name = name;
    if (auto [it, fresh] = seen.emplace(mg.version, name); !fresh)
      throw std::runtime_error("migrations " + it->second + " and " + name + " share version " + m[1].str());
    std::ifstream f(ent.path());
    std::stringstream ss;
    ss << f.rdbuf();
    mg.sql = ss.str();
    mg.checksum = sha256Hex(mg.sql);
    out.push_back(std::move(mg));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
  return out;
}

Migrator::Migrator(Database& db, std::filesystem::path dir, std::string nodeId, std::shared_ptr<spdlog::logger> log)
    : db_(db), dir_(std::move(dir)), nodeId_(std::move(nodeId)), log_(std::move(log)) {}

void Migrator::ensureTable() {
  db_.run([](DbSession& s) {
    s.execRaw(
        "CREATE TABLE IF NOT EXISTS schema_migration ("
        " version INT NOT NULL PRIMARY KEY,"
        " name VARCHAR(255) NOT NULL,"
        " checksum CHAR(64) NOT NULL,"
        " applied_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
        " applied_by VARCHAR(64) NOT NULL) ENGINE=InnoDB");
  });
}

MigrationStatus Migrator::status() {
  ensureTable();
  auto files = loadMigrations(dir_);
  auto rows = db_.query("SELECT version, name, checksum, applied_at, applied_by FROM schema_migration ORDER BY version");
  MigrationStatus st;
  std::map<int, std::string> appliedSums;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    st.applied.push_back({static_cast<int>(rows.num(i, "version")), rows.str(i, "name"), rows.str(i, "applied_at"),
                          rows.str(i, "applied_by")});
    appliedSums[static_cast<int>(rows.num(i, "version"))] = rows.str(i, "checksum");
  }
  for (auto& f : files)
    if (!appliedSums.count(f.version)) st.pending.push_back(f);
  return st;
}

int Migrator::currentVersion() {
  ensureTable();
  auto r = db_.query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migration");
  return static_cast<int>(r.num(0, "v"));
}

std::vector<Migration> Migrator::migrate() {
  ensureTable();
  auto files = loadMigrations(dir_);
  std::vector<Migration> done;
  // The named lock belongs to one connection: hold it for the whole run.
  db_.run([&](DbSession& s) {
    done.clear();  // run() may call us again after a lost connection
    auto got = s.query("SELECT GET_LOCK(?, ?) AS got", {std::string(kLockName), std::int64_t{kLockWaitSeconds}});
    if (got.num(0, "got") != 1)
      throw std::runtime_error("could not take the migration lock within " + std::to_string(kLockWaitSeconds) + " s");
    struct Unlock {
      DbSession& s;
      ~Unlock() {
        try {
          s.query("SELECT RELEASE_LOCK(?) AS r", {std::string(kLockName)});
        } catch (...) {
        }
      }
    } unlock{s};
    auto rows = s.query("SELECT version, name, checksum FROM schema_migration");
    std::map<int, std::pair<std::string, std::string>> applied;
    for (std::size_t i = 0; i < rows.size(); ++i)
      applied[static_cast<int>(rows.num(i, "version"))] = {rows.str(i, "name"), rows.str(i, "checksum")};
    for (const auto& f : files) {
      auto it = applied.find(f.version);
      if (it != applied.end()) {
        if (it->second.second != f.checksum)
          throw std::runtime_error("migration " + f.name + " was changed after it was applied (checksum differs)");
        continue;
      }
      if (log_) log_->info("applying migration {}", f.name);
      for (const auto& stmt : splitStatements(f.sql)) s.execRaw(stmt);
      s.exec("INSERT INTO schema_migration (version, name, checksum, applied_by) VALUES (?, ?, ?, ?)",
             {std::int64_t{f.version}, f.name, f.checksum, nodeId_});
      done.push_back(f);
    }
  });
  return done;
}

}  // namespace imp::core
