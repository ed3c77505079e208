#pragma once
// FakeDatabase: core::Database for unit tests (issue 15, deliverable 5).
//
// An in-memory SQLite database behind the Database interface. Statements are
// the modules' real MySQL-dialect SQL, run through translateMySql() (the
// documented list of constructs this project uses); the schema comes from the
// project's real migrations (sql/*.sql) applied by core::Migrator. What the
// translator does not know is refused with a DbError naming the construct,
// so a new statement outside the list fails loudly instead of behaving like
// MySQL by luck.
//
// Semantics, compared with MySqlDatabase:
// - One SQLite connection; run()/transaction() hold it exclusively, so
//   sessions are serialised (stronger than InnoDB row locks: FOR UPDATE is
//   satisfied trivially). A run()/transaction() nested on the same thread
//   would need a second connection and is refused with a DbError.
// - transaction() is BEGIN IMMEDIATE .. COMMIT, rolled back when fn throws.
// - Constraint failures carry MySQL error numbers: 1062 duplicate key,
//   1451 (DELETE/UPDATE of a referenced row), 1452 (INSERT without parent),
//   1048 NOT NULL. VARCHAR lengths are not enforced.
// - No retries: an injected connection failure stands for one that outlasted
//   MySqlDatabase's retry budget; the caller sees the DbError.
// Thread-safe: operations may come from any thread.
#include <imp/core/database.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

struct sqlite3;

namespace imp::testing {

// Translates one MySQL statement (as this project writes them) to SQLite.
// Throws core::DbError (code 0, connectionLost false) naming the construct
// when the statement holds one it does not translate.
std::string translateMySql(const std::string& mysqlText);

// Holds one database operation at its entry until released (tests of code
// that must not hold its own locks across database calls).
class OperationGate {
 public:
  // True once an operation is waiting on the gate; false if none arrived
  // within `timeout`.
  bool waitBlocked(std::chrono::milliseconds timeout);
  // Lets the waiting (or next) operation through.
  void release();

 private:
  friend class FakeDatabase;
  void pass();
  std::mutex mu_;
  std::condition_variable cv_;
  bool blocked_ = false;
  bool released_ = false;
};

class FakeDatabase final : public core::Database {
 public:
  FakeDatabase();
  ~FakeDatabase() override;

  void run(const std::function<void(core::DbSession&)>& fn) override;
  void transaction(const std::function<void(core::DbSession&)>& fn) override;
  bool ping() noexcept override;
  bool healthy() const override;

  // The project's migrations (sql/ of the source tree).
  static std::filesystem::path projectSqlDir();
  // Applies them with the real core::Migrator; returns how many ran.
  std::size_t migrate(const std::filesystem::path& dir = projectSqlDir());

  // Fault injection. The next `n` operations (run, transaction, query, exec,
  // ping) fail on entry with DbError code 2013, connectionLost() true.
  void failNextOperations(unsigned n);
  // The `n`-th statement from now (1 = the next one) fails the same way,
  // in the middle of its operation; a surrounding transaction is rolled back.
  void failStatement(unsigned n);
  // The next operation waits on the returned gate before it touches the
  // database (it holds none of the fake's locks while it waits).
  std::shared_ptr<OperationGate> blockNextOperation();

  // Operations and statements run so far (for tests of how a caller uses
  // the database, e.g. "one transaction per change").
  std::uint64_t operations() const;
  std::uint64_t statements() const;

 private:
  class Session;
  friend class Session;
  void operation(bool inTransaction, const std::function<void(core::DbSession&)>& fn);
  void beforeStatement();
  void execSql(const std::string& sqliteText);

  sqlite3* db_ = nullptr;
  std::mutex sessionMu_;                // held by the running operation
  std::set<std::string> namedLocks_;    // GET_LOCK names held by the session (under sessionMu_)
  mutable std::mutex stateMu_;          // guards the fields below
  unsigned failOps_ = 0;
  unsigned failAtStatement_ = 0;
  std::shared_ptr<OperationGate> gate_;
  std::uint64_t operations_ = 0;
  std::uint64_t statements_ = 0;
  bool healthy_ = true;
  std::thread::id running_;             // for nested-use detection (under stateMu_)
};

// All-or-nothing check: runs `change` with a lost connection injected at its
// 1st statement, then (after `afterFault(k)` has checked that nothing of it
// was kept) at its 2nd, and so on until it completes without reaching the
// fault. Returns how many statements the complete change ran. Errors other
// than the injected one propagate.
std::size_t failAtEveryStatement(FakeDatabase& db, const std::function<void()>& change,
                                 const std::function<void(std::size_t k)>& afterFault);

}  // namespace imp::testing
