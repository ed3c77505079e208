#pragma once
// Database access over MySQL Connector/C++ (MariaDB or MySQL).
//
// - A bounded connection pool; connections are created lazily.
// - Parameters are always bound (prepared statements): no SQL is built by
//   concatenating input.
// - Lost connections (server gone, restarted, unreachable) are retried with
//   backoff up to connect_timeout; a transaction is retried as a whole.
// - All methods are thread-safe and blocking: never call them on an event
//   loop thread (ARCHITECTURE.md, Concurrency).
#include <chrono>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace sql {
class Connection;
}
namespace spdlog {
class logger;
}

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

// One pooled connection, handed to callbacks; valid only inside them.
class DbSession {
 public:
  explicit DbSession(sql::Connection& c) : conn_(c) {}
  Rows query(const std::string& sql, const SqlParams& params = {});
  // Returns the affected row count.
  std::uint64_t exec(const std::string& sql, const SqlParams& params = {});
  // Runs one statement without parameters (migrations, DDL).
  void execRaw(const std::string& sql);
  std::uint64_t lastInsertId();

 private:
  sql::Connection& conn_;
};

class Database {
 public:
  Database(DbParams params, std::shared_ptr<spdlog::logger> logger);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs fn with a pooled connection in autocommit mode; retried on a lost
  // connection (fn must be safe to run again).
  void run(const std::function<void(DbSession&)>& fn);
  // Runs fn inside BEGIN/COMMIT; rolled back if fn throws; retried as a
  // whole on a lost connection.
  void transaction(const std::function<void(DbSession&)>& fn);

  Rows query(const std::string& sql, const SqlParams& params = {});
  std::uint64_t exec(const std::string& sql, const SqlParams& params = {});

  // Checks the server with one round trip; never throws.
  bool ping() noexcept;
  // Result of the last operation or ping: false after a connection failure.
  bool healthy() const { return healthy_.load(); }
  const DbParams& params() const { return params_; }

  // Creates the schema named in params if it does not exist (connects
  // without a default schema).
  static void ensureSchema(const DbParams& params);

 private:
  class Lease;
  std::unique_ptr<sql::Connection> connect(bool withSchema = true) const;
  std::unique_ptr<sql::Connection> acquire();
  void release(std::unique_ptr<sql::Connection> c, bool broken);
  void withRetry(const std::function<void(sql::Connection&)>& fn);

  DbParams params_;
  std::shared_ptr<spdlog::logger> log_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<sql::Connection>> idle_;
  unsigned open_ = 0;
  std::atomic<bool> healthy_{false};
};

}  // namespace imp::core
