#pragma once
// The production Database: MySQL Connector/C++ (MariaDB or MySQL).
//
// - A bounded connection pool; connections are created lazily.
// - Parameters are always bound (prepared statements): no SQL is built by
//   concatenating input. Each connection keeps its prepared statements
//   (up to kStatementsPerConnection, by SQL text): a statement the node
//   runs again is not parsed and prepared by the server again.
// - Lost connections (server gone, restarted, unreachable) are retried with
//   backoff up to connect_timeout; a transaction is retried as a whole.
// - All methods are thread-safe and blocking: never call them on an event
//   loop thread (ARCHITECTURE.md, Concurrency).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "imp/core/database.h"

namespace sql {
class Connection;
}
namespace spdlog {
class logger;
}

namespace imp::core {

class MySqlDatabase final : public Database {
 public:
  MySqlDatabase(DbParams params, std::shared_ptr<spdlog::logger> logger);
  ~MySqlDatabase() override;

  void run(const std::function<void(DbSession&)>& fn) override;
  void transaction(const std::function<void(DbSession&)>& fn) override;
  bool ping() noexcept override;
  bool healthy() const override { return healthy_.load(); }
  const DbParams& params() const { return params_; }
  // Transactions run again because the server gave them up for another
  // (deadlock, lock wait timeout).
  std::uint64_t conflictRetries() const { return conflictRetries_.load(); }

  // Creates the schema named in params if it does not exist (connects
  // without a default schema).
  static void ensureSchema(const DbParams& params);

  // Prepared statements a connection keeps (then it starts afresh).
  static constexpr std::size_t kStatementsPerConnection = 256;
  // A pooled connection with its prepared statements (mysql_database.cpp).
  struct Pooled;

 private:
  std::unique_ptr<sql::Connection> connect(bool withSchema = true) const;
  std::unique_ptr<Pooled> acquire();
  void release(std::unique_ptr<Pooled> c, bool broken);
  void withRetry(const std::function<void(Pooled&)>& fn);
  void transactionOnce(const std::function<void(DbSession&)>& fn);
  void retryConflicts(const std::function<void()>& once);

  DbParams params_;
  std::shared_ptr<spdlog::logger> log_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Pooled>> idle_;
  unsigned open_ = 0;
  std::atomic<bool> healthy_{false};
  std::atomic<std::uint64_t> conflictRetries_{0};
};

}  // namespace imp::core
