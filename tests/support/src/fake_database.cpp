#include <imp/testing/fake_database.h>

#include <imp/core/migrations.h>
#include <sqlite3.h>

#include <cctype>
#include <regex>

namespace imp::testing {

using core::DbError;
using core::DbSession;
using core::Rows;
using core::SqlParams;

namespace {

constexpr int kLostConnection = 2013;  // CR_SERVER_LOST, as MySqlDatabase reports it

std::string firstWord(const std::string& s) {
  std::string w;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (w.empty()) continue;
      break;
    }
    w += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return w;
}

// SQLite's failure as the DbError MySqlDatabase would have thrown.
DbError sqliteError(sqlite3* db, const std::string& sql) {
  int ext = sqlite3_extended_errcode(db);
  std::string msg = sqlite3_errmsg(db);
  int code = 0;
  std::string what;
  switch (ext) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
      code = 1062;
      what = "Duplicate entry (" + msg + ")";
      break;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      if (firstWord(sql) == "INSERT") {
        code = 1452;
        what = "Cannot add or update a child row: a foreign key constraint fails (" + msg + ")";
      } else {
        code = 1451;
        what = "Cannot delete or update a parent row: a foreign key constraint fails (" + msg + ")";
      }
      break;
    case SQLITE_CONSTRAINT_NOTNULL:
      code = 1048;
      what = "Column cannot be null (" + msg + ")";
      break;
    default:
      what = "fake database: " + msg + " (statement: " + sql + ")";
  }
  return DbError(what + " (error " + std::to_string(code) + ")", code, false);
}

struct Stmt {
  sqlite3_stmt* st = nullptr;
  ~Stmt() { sqlite3_finalize(st); }
};

void prepare(sqlite3* db, const std::string& sql, const SqlParams& params, Stmt& out) {
  const char* tail = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &out.st, &tail) != SQLITE_OK) throw sqliteError(db, sql);
  if (!out.st) throw DbError("fake database: empty statement", 0, false);
  for (const char* p = tail; p && *p; ++p)
    if (!std::isspace(static_cast<unsigned char>(*p)))
      throw DbError("fake database: more than one statement in one call (statement: " + sql + ")", 0, false);
  auto expected = sqlite3_bind_parameter_count(out.st);
  if (expected != static_cast<int>(params.size()))
    throw DbError("fake database: statement has " + std::to_string(expected) + " placeholders but " +
                      std::to_string(params.size()) + " parameters were given (statement: " + sql + ")",
                  0, false);
  for (std::size_t i = 0; i < params.size(); ++i) {
    int idx = static_cast<int>(i + 1);
    int rc = std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::nullptr_t>) return sqlite3_bind_null(out.st, idx);
          else if constexpr (std::is_same_v<V, std::int64_t>) return sqlite3_bind_int64(out.st, idx, v);
          else if constexpr (std::is_same_v<V, std::string>)
            return sqlite3_bind_text(out.st, idx, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
          else if constexpr (std::is_same_v<V, bool>) return sqlite3_bind_int(out.st, idx, v ? 1 : 0);
          else return sqlite3_bind_double(out.st, idx, v);
        },
        params[i]);
    if (rc != SQLITE_OK) throw sqliteError(db, sql);
  }
}

}  // namespace

// ---- OperationGate ----

bool OperationGate::waitBlocked(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return blocked_; });
}

void OperationGate::release() {
  std::lock_guard lock(mu_);
  released_ = true;
  cv_.notify_all();
}

void OperationGate::pass() {
  std::unique_lock lock(mu_);
  blocked_ = true;
  cv_.notify_all();
  cv_.wait(lock, [&] { return released_; });
}

// ---- the session ----

class FakeDatabase::Session final : public DbSession {
 public:
  explicit Session(FakeDatabase& f) : f_(f) {}

  Rows query(const std::string& mysqlText, const SqlParams& params) override {
    auto sql = translateMySql(mysqlText);
    f_.beforeStatement();
    Stmt st;
    prepare(f_.db_, sql, params, st);
    Rows out;
    int n = sqlite3_column_count(st.st);
    for (int i = 0; i < n; ++i) out.columns.emplace_back(sqlite3_column_name(st.st, i));
    for (;;) {
      int rc = sqlite3_step(st.st);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) throw sqliteError(f_.db_, sql);
      std::vector<std::optional<std::string>> row;
      row.reserve(static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) {
        if (sqlite3_column_type(st.st, i) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
        } else {
          auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st.st, i));
          row.emplace_back(std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st.st, i))));
        }
      }
      out.rows.push_back(std::move(row));
    }
    return out;
  }

  std::uint64_t exec(const std::string& mysqlText, const SqlParams& params) override {
    auto sql = translateMySql(mysqlText);
    f_.beforeStatement();
    Stmt st;
    prepare(f_.db_, sql, params, st);
    int rc;
    while ((rc = sqlite3_step(st.st)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) throw sqliteError(f_.db_, sql);
    const auto changes = sqlite3_changes64(f_.db_);
    const auto rowid = sqlite3_last_insert_rowid(f_.db_);
    static const std::regex insert(R"(^\s*INSERT\b)", std::regex::icase);
    static const std::regex plainInsert(R"(^\s*INSERT\s+INTO\b)", std::regex::icase);
    static const std::regex upsert(R"(\bON\s+CONFLICT\b)", std::regex::icase);
    if (changes > 0 && std::regex_search(sql, insert)) {
      // MySQL's LAST_INSERT_ID() is the first id of a multi-row INSERT
      // (SQLite's, the last); a plain INSERT's rows get consecutive ids.
      const bool plain = std::regex_search(sql, plainInsert) && !std::regex_search(sql, upsert);
      insertRowid_ = rowid;
      firstInsertId_ = plain ? rowid - changes + 1 : rowid;
    }
    return static_cast<std::uint64_t>(changes);
  }

  void execRaw(const std::string& mysqlText) override {
    auto sql = translateMySql(mysqlText);
    f_.beforeStatement();
    f_.execSql(sql);
  }

  std::uint64_t lastInsertId() override {
    const auto rowid = sqlite3_last_insert_rowid(f_.db_);
    return static_cast<std::uint64_t>(rowid == insertRowid_ ? firstInsertId_ : rowid);
  }

 private:
  FakeDatabase& f_;
  sqlite3_int64 insertRowid_ = -1;  // SQLite's last rowid after this session's last INSERT by exec()
  sqlite3_int64 firstInsertId_ = 0; // that INSERT's first id
};

// ---- FakeDatabase ----

namespace {

// GET_LOCK(name, timeout): sessions of the fake never overlap, so the lock
// is always free (and re-entrant, as in MySQL 5.7+/MariaDB); it is released
// by RELEASE_LOCK or when the session ends.
void getLock(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  auto* locks = static_cast<std::set<std::string>*>(sqlite3_user_data(ctx));
  if (argc != 2 || sqlite3_value_type(argv[0]) == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  locks->insert(reinterpret_cast<const char*>(sqlite3_value_text(argv[0])));
  sqlite3_result_int(ctx, 1);
}

// RELEASE_LOCK(name): 1 if this session held it, NULL if nobody did.
void releaseLock(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  auto* locks = static_cast<std::set<std::string>*>(sqlite3_user_data(ctx));
  if (argc != 1 || sqlite3_value_type(argv[0]) == SQLITE_NULL ||
      locks->erase(reinterpret_cast<const char*>(sqlite3_value_text(argv[0]))) == 0) {
    sqlite3_result_null(ctx);
    return;
  }
  sqlite3_result_int(ctx, 1);
}

}  // namespace

FakeDatabase::FakeDatabase() {
  if (sqlite3_open_v2(":memory:", &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw DbError("fake database: cannot open SQLite in memory: " + msg, 0, false);
  }
  // MySQL checks foreign keys (InnoDB) and compares with utf8mb4_bin (the
  // schema's collation): LIKE must be case-sensitive too.
  execSql("PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON");
  sqlite3_create_function_v2(db_, "GET_LOCK", 2, SQLITE_UTF8, &namedLocks_, getLock, nullptr, nullptr, nullptr);
  sqlite3_create_function_v2(db_, "RELEASE_LOCK", 1, SQLITE_UTF8, &namedLocks_, releaseLock, nullptr, nullptr, nullptr);
}

FakeDatabase::~FakeDatabase() { sqlite3_close(db_); }

std::filesystem::path FakeDatabase::projectSqlDir() { return IMP_TEST_SQL_DIR; }

std::size_t FakeDatabase::migrate(const std::filesystem::path& dir) {
  core::Migrator m(*this, dir, "unit-test", nullptr);
  return m.migrate().size();
}

void FakeDatabase::execSql(const std::string& sqliteText) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sqliteText.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    auto e = sqliteError(db_, sqliteText);
    throw DbError(e.code() ? e.what() : "fake database: " + msg + " (statement: " + sqliteText + ")", e.code(), false);
  }
}

void FakeDatabase::beforeStatement() {
  std::lock_guard lock(stateMu_);
  ++statements_;
  if (failAtStatement_ > 0 && --failAtStatement_ == 0) {
    healthy_ = false;
    throw DbError("fake database: connection lost in the middle of an operation (injected fault) (error 2013)",
                  kLostConnection, true);
  }
}

void FakeDatabase::operation(bool inTransaction, const std::function<void(DbSession&)>& fn) {
  std::shared_ptr<OperationGate> gate;
  {
    std::lock_guard lock(stateMu_);
    if (running_ == std::this_thread::get_id())
      throw DbError("fake database: a run()/transaction() nested inside another on the same thread would need a "
                    "second connection; the fake has one",
                    0, false);
    gate = std::move(gate_);
  }
  if (gate) gate->pass();
  std::lock_guard session(sessionMu_);
  {
    std::lock_guard lock(stateMu_);
    ++operations_;
    if (failOps_ > 0) {
      --failOps_;
      healthy_ = false;
      throw DbError("fake database: connection lost (injected fault) (error 2013)", kLostConnection, true);
    }
    running_ = std::this_thread::get_id();
  }
  struct End {
    FakeDatabase& f;
    ~End() {
      f.namedLocks_.clear();
      std::lock_guard lock(f.stateMu_);
      f.running_ = {};
    }
  } end{*this};
  Session s(*this);
  auto ok = [&] {
    std::lock_guard lock(stateMu_);
    healthy_ = true;
  };
  if (!inTransaction) {
    try {
      fn(s);
    } catch (const DbError& e) {
      if (!e.connectionLost()) ok();
      throw;
    }
    ok();
    return;
  }
  execSql("BEGIN IMMEDIATE");
  try {
    fn(s);
    execSql("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    try {
      throw;
    } catch (const DbError& e) {
      if (!e.connectionLost()) ok();
    } catch (...) {
      ok();
    }
    throw;
  }
  ok();
}

void FakeDatabase::run(const std::function<void(DbSession&)>& fn) { operation(false, fn); }

void FakeDatabase::transaction(const std::function<void(DbSession&)>& fn) { operation(true, fn); }

bool FakeDatabase::ping() noexcept {
  try {
    run([](DbSession& s) { s.query("SELECT 1", {}); });
    return true;
  } catch (...) {
    return false;
  }
}

bool FakeDatabase::healthy() const {
  std::lock_guard lock(stateMu_);
  return healthy_;
}

void FakeDatabase::failNextOperations(unsigned n) {
  std::lock_guard lock(stateMu_);
  failOps_ = n;
}

void FakeDatabase::failStatement(unsigned n) {
  std::lock_guard lock(stateMu_);
  failAtStatement_ = n;
}

std::shared_ptr<OperationGate> FakeDatabase::blockNextOperation() {
  std::lock_guard lock(stateMu_);
  gate_ = std::make_shared<OperationGate>();
  return gate_;
}

std::uint64_t FakeDatabase::operations() const {
  std::lock_guard lock(stateMu_);
  return operations_;
}

std::uint64_t FakeDatabase::statements() const {
  std::lock_guard lock(stateMu_);
  return statements_;
}

std::size_t failAtEveryStatement(FakeDatabase& db, const std::function<void()>& change,
                                 const std::function<void(std::size_t k)>& afterFault) {
  constexpr std::size_t kMax = 10000;
  for (std::size_t k = 1; k <= kMax; ++k) {
    auto before = db.statements();
    db.failStatement(static_cast<unsigned>(k));
    try {
      change();
    } catch (const DbError& e) {
      db.failStatement(0);
      if (!e.connectionLost()) throw;
      afterFault(k);
      continue;
    } catch (...) {
      db.failStatement(0);
      throw;
    }
    db.failStatement(0);
    return static_cast<std::size_t>(db.statements() - before);
  }
  throw std::logic_error("failAtEveryStatement: the change ran more than " + std::to_string(kMax) + " statements");
}

}  // namespace imp::testing
