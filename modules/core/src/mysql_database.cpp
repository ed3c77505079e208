#include "imp/core/mysql_database.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <string>
#include <unordered_map>
#include <thread>

namespace imp::core {

namespace {

// Client errors that mean "the connection is gone, try another one".
bool isConnectionLost(int code) {
  switch (code) {
    case 2002:  // can't connect through socket
    case 2003:  // can't connect to server
    case 2006:  // server has gone away
    case 2013:  // lost connection during query
    case 2055:  // lost connection (system error)
    case 1927:  // connection was killed
    case 4031:  // disconnected for inactivity
    case 1053:  // server shutdown in progress
      return true;
    default:
      return false;
  }
}

DbError translate(const sql::SQLException& e) {
  int code = e.getErrorCode();
  return DbError(std::string(e.what()) + " (error " + std::to_string(code) + ")", code, isConnectionLost(code));
}

sql::mysql::MySQL_Driver* driver() {
  // get_mysql_driver_instance() is not thread-safe on first use.
  static sql::mysql::MySQL_Driver* d = sql::mysql::get_mysql_driver_instance();
  return d;
}

void bind(sql::PreparedStatement& st, const SqlParams& params) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    auto idx = static_cast<unsigned>(i + 1);
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::nullptr_t>) st.setNull(idx, 0);
          else if constexpr (std::is_same_v<V, std::int64_t>) st.setInt64(idx, v);
          else if constexpr (std::is_same_v<V, std::string>) st.setString(idx, v);
          else if constexpr (std::is_same_v<V, bool>) st.setBoolean(idx, v);
          else st.setDouble(idx, v);
        },
        params[i]);
  }
}

}  // namespace

struct MySqlDatabase::Pooled {
  std::unique_ptr<sql::Connection> conn;
  // Declared after conn: destroyed before it.
  std::unordered_map<std::string, std::unique_ptr<sql::PreparedStatement>> statements;

  // The connection's prepared statement for `sqlText`, its parameters
  // cleared; prepared (once) on first use.
  sql::PreparedStatement& prepare(const std::string& sqlText) {
    if (auto it = statements.find(sqlText); it != statements.end()) {
      it->second->clearParameters();
      return *it->second;
    }
    if (statements.size() >= kStatementsPerConnection) statements.clear();
    std::unique_ptr<sql::PreparedStatement> st(conn->prepareStatement(sqlText));
    return *statements.emplace(sqlText, std::move(st)).first->second;
  }
};

namespace {

// One pooled connection seen through the DbSession interface.
class MySqlSession final : public DbSession {
 public:
  explicit MySqlSession(MySqlDatabase::Pooled& c) : c_(c) {}
  Rows query(const std::string& sql, const SqlParams& params) override;
  std::uint64_t exec(const std::string& sql, const SqlParams& params) override;
  void execRaw(const std::string& sql) override;
  std::uint64_t lastInsertId() override;

 private:
  MySqlDatabase::Pooled& c_;
};

Rows MySqlSession::query(const std::string& sqlText, const SqlParams& params) {
  auto& st = c_.prepare(sqlText);
  bind(st, params);
  std::unique_ptr<sql::ResultSet> rs(st.executeQuery());
  Rows out;
  auto* md = rs->getMetaData();
  unsigned n = md->getColumnCount();
  for (unsigned i = 1; i <= n; ++i) out.columns.push_back(md->getColumnLabel(i));
  while (rs->next()) {
    std::vector<std::optional<std::string>> row;
    row.reserve(n);
    for (unsigned i = 1; i <= n; ++i) {
      if (rs->isNull(i)) row.emplace_back(std::nullopt);
      else row.emplace_back(std::string(rs->getString(i)));
    }
    out.rows.push_back(std::move(row));
  }
  return out;
}

std::uint64_t MySqlSession::exec(const std::string& sqlText, const SqlParams& params) {
  auto& st = c_.prepare(sqlText);
  bind(st, params);
  return static_cast<std::uint64_t>(st.executeUpdate());
}

void MySqlSession::execRaw(const std::string& sqlText) {
  std::unique_ptr<sql::Statement> st(c_.conn->createStatement());
  st->execute(sqlText);
  // Drain any result sets so the connection stays usable.
  do {
    std::unique_ptr<sql::ResultSet> rs(st->getResultSet());
  } while (st->getMoreResults());
}

std::uint64_t MySqlSession::lastInsertId() {
  auto r = query("SELECT LAST_INSERT_ID() AS id", {});
  return static_cast<std::uint64_t>(r.num(0, "id"));
}

}  // namespace

MySqlDatabase::MySqlDatabase(DbParams params, std::shared_ptr<spdlog::logger> logger)
    : params_(std::move(params)), log_(std::move(logger)) {
  driver();
}

MySqlDatabase::~MySqlDatabase() = default;

std::unique_ptr<sql::Connection> MySqlDatabase::connect(bool withSchema) const {
  sql::ConnectOptionsMap opts;
  opts["hostName"] = params_.socket.empty() ? sql::SQLString("tcp://" + params_.host + ":" + std::to_string(params_.port))
                                            : sql::SQLString("unix://" + params_.socket);
  opts["userName"] = sql::SQLString(params_.user);
  opts["password"] = sql::SQLString(params_.password);
  if (withSchema) opts["schema"] = sql::SQLString(params_.schema);
  opts["OPT_CONNECT_TIMEOUT"] = static_cast<int>(params_.connectTimeout.count());
  opts["OPT_READ_TIMEOUT"] = 30;
  opts["OPT_WRITE_TIMEOUT"] = 30;
  opts["OPT_RECONNECT"] = false;
  opts["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  try {
    return std::unique_ptr<sql::Connection>(driver()->connect(opts));
  } catch (const sql::SQLException& e) {
    throw translate(e);
  }
}

void MySqlDatabase::ensureSchema(const DbParams& params) {
  MySqlDatabase bootstrap(params, nullptr);
  auto c = bootstrap.connect(false);
  std::unique_ptr<sql::Statement> st(c->createStatement());
  try {
    // The schema name was validated to [A-Za-z0-9_] by parseDbUrl / config.
    st->execute("CREATE DATABASE IF NOT EXISTS `" + params.schema + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin");
  } catch (const sql::SQLException& e) {
    throw translate(e);
  }
}

std::unique_ptr<MySqlDatabase::Pooled> MySqlDatabase::acquire() {
  {
    std::unique_lock lock(mu_);
    auto deadline = std::chrono::steady_clock::now() + params_.connectTimeout;
    while (idle_.empty() && open_ >= params_.poolSize) {
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() && open_ >= params_.poolSize)
        throw DbError("database pool exhausted (" + std::to_string(params_.poolSize) + " connections busy)", 0, false);
    }
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    ++open_;
  }
  try {
    auto p = std::make_unique<Pooled>();
    p->conn = connect();
    return p;
  } catch (...) {
    std::lock_guard lock(mu_);
    --open_;
    cv_.notify_one();
    throw;
  }
}

void MySqlDatabase::release(std::unique_ptr<Pooled> c, bool broken) {
  if (!c) return;  // never acquired: acquire() already fixed the count
  std::lock_guard lock(mu_);
  if (broken) {
    --open_;
  } else {
    idle_.push_back(std::move(c));
  }
  cv_.notify_one();
}

void MySqlDatabase::withRetry(const std::function<void(Pooled&)>& fn) {
  auto deadline = std::chrono::steady_clock::now() + params_.connectTimeout;
  std::chrono::milliseconds backoff{50};
  for (;;) {
    std::unique_ptr<Pooled> c;
    try {
      c = acquire();
      fn(*c);
      release(std::move(c), false);
      healthy_ = true;
      return;
    } catch (const sql::SQLException& e) {
      auto err = translate(e);
      release(std::move(c), err.connectionLost());
      if (!err.connectionLost()) {
        healthy_ = true;
        throw err;
      }
      healthy_ = false;
      if (std::chrono::steady_clock::now() + backoff > deadline) throw err;
      if (log_) log_->warn("database connection lost ({}), retrying in {} ms", err.what(), backoff.count());
    } catch (const DbError& err) {
      release(std::move(c), err.connectionLost());
      if (!err.connectionLost()) throw;
      healthy_ = false;
      if (std::chrono::steady_clock::now() + backoff > deadline) throw;
      if (log_) log_->warn("database unreachable ({}), retrying in {} ms", err.what(), backoff.count());
    } catch (...) {
      // Not a database error: the connection is still fine.
      release(std::move(c), false);
      throw;
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

// A statement or transaction the server gave up for a concurrent one
// (deadlock victim, rolled back; or a lock wait that timed out) is run again
// from the start, a few times, after a short random pause so the two
// contenders do not meet again at once; any other error is the caller's.
void MySqlDatabase::retryConflicts(const std::function<void()>& once) {
  constexpr int kAttempts = 30;
  thread_local std::minstd_rand jitter(std::random_device{}());
  for (int attempt = 1;; ++attempt) {
    try {
      once();
      return;
    } catch (const DbError& e) {
      if (!e.transactionConflict() || attempt == kAttempts) throw;
      ++conflictRetries_;
      if (log_) log_->debug("given up by the server ({}), attempt {} of {}", e.what(), attempt + 1, kAttempts);
      // Exponential with jitter, at most 64 ms a pause (about 1.5 s in all).
      const unsigned ceilingUs = 1000u << std::min(attempt, 6);
      std::this_thread::sleep_for(std::chrono::microseconds(200 + jitter() % ceilingUs));
    }
  }
}

void MySqlDatabase::run(const std::function<void(DbSession&)>& fn) {
  retryConflicts([&] {
    withRetry([&](Pooled& c) {
      MySqlSession s(c);
      fn(s);
    });
  });
}

void MySqlDatabase::transaction(const std::function<void(DbSession&)>& fn) {
  retryConflicts([&] { transactionOnce(fn); });
}

void MySqlDatabase::transactionOnce(const std::function<void(DbSession&)>& fn) {
  withRetry([&](Pooled& p) {
    auto& c = *p.conn;
    c.setAutoCommit(false);
    MySqlSession s(p);
    try {
      fn(s);
      c.commit();
    } catch (...) {
      try {
        c.rollback();
      } catch (...) {
      }
      try {
        c.setAutoCommit(true);
      } catch (...) {
      }
      throw;
    }
    c.setAutoCommit(true);
  });
}

bool MySqlDatabase::ping() noexcept {
  std::unique_ptr<Pooled> c;
  try {
    c = acquire();
    std::unique_ptr<sql::Statement> st(c->conn->createStatement());
    std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT 1"));
    release(std::move(c), false);
    healthy_ = true;
  } catch (...) {
    release(std::move(c), true);
    healthy_ = false;
  }
  return healthy_;
}

}  // namespace imp::core
