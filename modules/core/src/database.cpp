#include "imp/core/database.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>
#include <spdlog/spdlog.h>

#include <charconv>
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

std::string percentDecode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) throw std::invalid_argument("truncated percent-escape in database url");
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec != std::errc() || p != s.data() + i + 3) throw std::invalid_argument("bad percent-escape in database url");
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::string DbParams::redacted() const {
  std::string u = "mysql://" + user + (password.empty() ? "" : ":***") + "@";
  u += socket.empty() ? host + ":" + std::to_string(port) : "localhost";
  u += "/" + schema;
  if (!socket.empty()) u += "?socket=" + socket;
  return u;
}

DbParams parseDbUrl(const std::string& url) {
  const std::string scheme = "mysql://";
  if (url.rfind(scheme, 0) != 0) throw std::invalid_argument("url must start with mysql://, got '" + url + "'");
  std::string rest = url.substr(scheme.size());
  DbParams p;
  auto q = rest.find('?');
  std::string query = q == std::string::npos ? "" : rest.substr(q + 1);
  rest = rest.substr(0, q);
  auto at = rest.rfind('@');
  if (at == std::string::npos) throw std::invalid_argument("url needs a user: mysql://user@host/schema");
  std::string cred = rest.substr(0, at);
  std::string hostpart = rest.substr(at + 1);
  auto colon = cred.find(':');
  p.user = percentDecode(cred.substr(0, colon));
  if (colon != std::string::npos) p.password = percentDecode(cred.substr(colon + 1));
  if (p.user.empty()) throw std::invalid_argument("url has an empty user name");
  auto slash = hostpart.find('/');
  if (slash == std::string::npos || slash + 1 >= hostpart.size())
    throw std::invalid_argument("url needs a schema name: mysql://user@host/schema");
  p.schema = hostpart.substr(slash + 1);
  for (char c : p.schema)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
      throw std::invalid_argument("schema name '" + p.schema + "' may hold only letters, digits and _");
  std::string hp = hostpart.substr(0, slash);
  if (!hp.empty() && hp[0] == '[') {
    auto close = hp.find(']');
    if (close == std::string::npos) throw std::invalid_argument("unterminated IPv6 address in url");
    p.host = hp.substr(1, close - 1);
    hp = hp.substr(close + 1);
    if (!hp.empty() && hp[0] != ':') throw std::invalid_argument("junk after IPv6 address in url");
    hp = hp.empty() ? "" : hp.substr(1);
    if (!hp.empty()) hp = ":" + hp;
    hp = p.host + hp;
  }
  auto pc = hp.rfind(':');
  if (pc != std::string::npos && p.host.empty()) {
    p.host = hp.substr(0, pc);
  } else if (p.host.empty()) {
    p.host = hp;
  }
  if (pc != std::string::npos) {
    std::string port = hp.substr(pc + 1);
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || ptr != port.data() + port.size() || v == 0 || v > 65535)
      throw std::invalid_argument("port '" + port + "' in url is not 1..65535");
    p.port = v;
  }
  if (p.host.empty()) throw std::invalid_argument("url has an empty host");
  if (!query.empty()) {
    if (query.rfind("socket=", 0) != 0 || query.find('&') != std::string::npos)
      throw std::invalid_argument("the only url parameter is socket=/path, got '" + query + "'");
    p.socket = percentDecode(query.substr(7));
    if (p.socket.empty() || p.socket[0] != '/') throw std::invalid_argument("socket must be an absolute path");
  }
  return p;
}

std::optional<std::string> Rows::get(std::size_t row, const std::string& column) const {
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == column) return rows.at(row).at(i);
  throw std::out_of_range("no column '" + column + "' in result");
}

std::string Rows::str(std::size_t row, const std::string& column) const { return get(row, column).value_or(""); }

std::int64_t Rows::num(std::size_t row, const std::string& column) const {
  auto v = get(row, column);
  if (!v) return 0;
  std::int64_t n = 0;
  std::from_chars(v->data(), v->data() + v->size(), n);
  return n;
}

namespace {

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

Rows DbSession::query(const std::string& sqlText, const SqlParams& params) {
  std::unique_ptr<sql::PreparedStatement> st(conn_.prepareStatement(sqlText));
  bind(*st, params);
  std::unique_ptr<sql::ResultSet> rs(st->executeQuery());
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

std::uint64_t DbSession::exec(const std::string& sqlText, const SqlParams& params) {
  std::unique_ptr<sql::PreparedStatement> st(conn_.prepareStatement(sqlText));
  bind(*st, params);
  return static_cast<std::uint64_t>(st->executeUpdate());
}

void DbSession::execRaw(const std::string& sqlText) {
  std::unique_ptr<sql::Statement> st(conn_.createStatement());
  st->execute(sqlText);
  // Drain any result sets so the connection stays usable.
  do {
    std::unique_ptr<sql::ResultSet> rs(st->getResultSet());
  } while (st->getMoreResults());
}

std::uint64_t DbSession::lastInsertId() {
  auto r = query("SELECT LAST_INSERT_ID() AS id");
  return static_cast<std::uint64_t>(r.num(0, "id"));
}

Database::Database(DbParams params, std::shared_ptr<spdlog::logger> logger)
    : params_(std::move(params)), log_(std::move(logger)) {
  driver();
}

Database::~Database() = default;

std::unique_ptr<sql::Connection> Database::connect(bool withSchema) const {
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

void Database::ensureSchema(const DbParams& params) {
  Database bootstrap(params, nullptr);
  auto c = bootstrap.connect(false);
  std::unique_ptr<sql::Statement> st(c->createStatement());
  try {
    // The schema name was validated to [A-Za-z0-9_] by parseDbUrl / config.
    st->execute("CREATE DATABASE IF NOT EXISTS `" + params.schema + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin");
  } catch (const sql::SQLException& e) {
    throw translate(e);
  }
}

std::unique_ptr<sql::Connection> Database::acquire() {
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
    return connect();
  } catch (...) {
    std::lock_guard lock(mu_);
    --open_;
    cv_.notify_one();
    throw;
  }
}

void Database::release(std::unique_ptr<sql::Connection> c, bool broken) {
  if (!c) return;  // never acquired: acquire() already fixed the count
  std::lock_guard lock(mu_);
  if (broken) {
    --open_;
  } else {
    idle_.push_back(std::move(c));
  }
  cv_.notify_one();
}

void Database::withRetry(const std::function<void(sql::Connection&)>& fn) {
  auto deadline = std::chrono::steady_clock::now() + params_.connectTimeout;
  std::chrono::milliseconds backoff{50};
  for (;;) {
    std::unique_ptr<sql::Connection> c;
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

void Database::run(const std::function<void(DbSession&)>& fn) {
  withRetry([&](sql::Connection& c) {
    DbSession s(c);
    fn(s);
  });
}

void Database::transaction(const std::function<void(DbSession&)>& fn) {
  withRetry([&](sql::Connection& c) {
    c.setAutoCommit(false);
    DbSession s(c);
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

Rows Database::query(const std::string& sqlText, const SqlParams& params) {
  Rows out;
  run([&](DbSession& s) { out = s.query(sqlText, params); });
  return out;
}

std::uint64_t Database::exec(const std::string& sqlText, const SqlParams& params) {
  std::uint64_t n = 0;
  run([&](DbSession& s) { n = s.exec(sqlText, params); });
  return n;
}

bool Database::ping() noexcept {
  std::unique_ptr<sql::Connection> c;
  try {
    c = acquire();
    std::unique_ptr<sql::Statement> st(c->createStatement());
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
