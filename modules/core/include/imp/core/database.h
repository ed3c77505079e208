#pragma once
// Database access: connection parameters, values and rows, errors, and the
// Database / DbSession interfaces every module talks to.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace imp::core {

struct DbParams {
  std::string host;    // empty when socket is set
  unsigned port = 3306;
  std::string socket;  // unix socket path
  std::string user;
  std::string password;
  std::string schema;
  unsigned poolSize = 8;
  std::chrono::seconds connectTimeout{5};
  // A URL without the password, for logs and the admin API.
  std::string redacted() const;
};

// mysql://user[:password]@host[:port]/schema[?socket=/path]
// Throws std::invalid_argument with a precise message.
DbParams parseDbUrl(const std::string& url);

using SqlValue = std::variant<std::nullptr_t, std::int64_t, std::string, bool, double>;
using SqlParams = std::vector<SqlValue>;

class DbError : public std::runtime_error {
 public:
  DbError(const std::string& what, int code, bool connectionLost)
      : std::runtime_error(what), code_(code), connectionLost_(connectionLost) {}
  int code() const { return code_; }
  bool connectionLost() const { return connectionLost_; }
  // InnoDB gave up the transaction for another one: 1213 deadlock (rolled
  // back by the server) or 1205 lock wait timeout. Running it again is the
  // documented answer (MySQL reference, "How to Minimize and Handle
  // Deadlocks").
  bool transactionConflict() const { return code_ == 1213 || code_ == 1205; }

 private:
  int code_;
  bool connectionLost_;
};

struct Rows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::size_t size() const { return rows.size(); }
  bool empty() const { return rows.empty(); }
  // Cell by column name; nullopt for SQL NULL. Throws on unknown column.
  std::optional<std::string> get(std::size_t row, const std::string& column) const;
  std::string str(std::size_t row, const std::string& column) const;  // NULL -> ""
  std::int64_t num(std::size_t row, const std::string& column) const; // NULL -> 0
};

// The database seam (issue 15, deliverable 5). Modules take `Database&` and
// never know which implementation they talk to: MySqlDatabase in impd
// (imp/core/mysql_database.h), an in-memory fake in unit tests
// (tests/support, imp_test_support).
//
// Contract, for every implementation:
// - SQL is MySQL/MariaDB dialect with `?` placeholders; parameters are always
//   bound, never concatenated.
// - Errors are DbError: code() is the MySQL error number (1062 duplicate key,
//   1451/1452 foreign key), connectionLost() marks a failure worth retrying.
// - Thread-safe and blocking: never call on an event loop thread.

// A connection handed to run()/transaction() callbacks; valid only inside them.
class DbSession {
 public:
  virtual ~DbSession() = default;
  virtual Rows query(const std::string& sql, const SqlParams& params = {}) = 0;
  // Returns the affected row count.
  virtual std::uint64_t exec(const std::string& sql, const SqlParams& params = {}) = 0;
  // Runs one statement without parameters (migrations, DDL).
  virtual void execRaw(const std::string& sql) = 0;
  // The AUTO_INCREMENT id of this session's last INSERT.
  virtual std::uint64_t lastInsertId() = 0;

 protected:
  DbSession() = default;
  DbSession(const DbSession&) = default;
  DbSession& operator=(const DbSession&) = default;
};

class Database {
 public:
  virtual ~Database() = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs fn with one session in autocommit mode; a lost connection or a
  // statement the server gave up for a concurrent one may make the
  // implementation run fn again (fn must be safe to run again).
  virtual void run(const std::function<void(DbSession&)>& fn) = 0;
  // Runs fn inside BEGIN/COMMIT; rolled back if fn throws (nothing of it is
  // kept); may be retried as a whole on a lost connection or when the server
  // gave it up for a concurrent one (DbError::transactionConflict), so fn
  // must start from scratch each time.
  virtual void transaction(const std::function<void(DbSession&)>& fn) = 0;

  // One statement in its own run().
  Rows query(const std::string& sql, const SqlParams& params = {});
  std::uint64_t exec(const std::string& sql, const SqlParams& params = {});

  // Checks the server with one round trip; never throws.
  virtual bool ping() noexcept = 0;
  // Result of the last operation or ping: false after a connection failure.
  virtual bool healthy() const = 0;

 protected:
  Database() = default;
};

}  // namespace imp::core
