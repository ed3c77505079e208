#include "imp/core/database.h"

#include <cctype>
#include <charconv>

namespace imp::core {

namespace {

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

}  // namespace imp::core
