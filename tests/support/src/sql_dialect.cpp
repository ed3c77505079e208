// MySQL -> SQLite translation for FakeDatabase (issue 15, deliverable 5).
//
// Translated, exactly these constructs (the ones the project's migrations
// and module SQL use):
//   ENGINE=InnoDB                         dropped
//   BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY
//                                         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT
//   UNSIGNED (column types)               dropped (SQLite integers are 64-bit)
//   UNIQUE KEY name (cols)                CONSTRAINT name UNIQUE (cols)
//   KEY name (cols) in CREATE TABLE       CREATE INDEX IF NOT EXISTS name ON table (cols)
//   DEFAULT CURRENT_TIMESTAMP(3)          DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now'))
//   CURRENT_TIMESTAMP(3), NOW(3)          strftime('%Y-%m-%d %H:%M:%f','now')  (UTC, like the server's)
//   INSERT IGNORE INTO                    INSERT OR IGNORE INTO
//   UPDATE IGNORE t                       UPDATE OR IGNORE t  (rows that would break a unique key stay as they are)
//   a STRAIGHT_JOIN b ON ...              a CROSS JOIN b ON ...  (an inner join read in the order written, in both)
//   DROP TEMPORARY TABLE IF EXISTS t      DROP TABLE IF EXISTS temp.t  (never a table of the schema)
//   DROP INDEX IF EXISTS i ON t           DROP INDEX IF EXISTS i  (SQLite's index names are the schema's)
//   ON DUPLICATE KEY UPDATE c = VALUES(c) ON CONFLICT DO UPDATE SET c = excluded.c
//   ... FOR UPDATE (at the end)           dropped: the fake runs one session at a time
//   TIMESTAMPDIFF(SECOND, a, b)           whole seconds from a to b, truncated like MySQL
//   DATE_FORMAT(x, '%Y-%m-%dT%H:%i:%s')   strftime with the same fields (%Y %m %d %H %i %s %T)
//   GET_LOCK(name, timeout), RELEASE_LOCK(name)
//                                         SQL functions of the fake (fake_database.cpp)
// Refused (DbError naming the construct), because SQLite would accept them
// with another meaning or MySQL code should not need them: || , / , DIV,
// '#' and '/* */' comments, double-quoted strings, backslash escapes in
// literals, REPLACE INTO, LOCK IN SHARE MODE, FOR UPDATE NOWAIT/SKIP LOCKED or
// not at the end, ON UPDATE CURRENT_TIMESTAMP, other ENGINEs, character set
// and collation clauses, any other AUTO_INCREMENT, UNSIGNED outside CREATE
// TABLE, LAST_INSERT_ID() in SQL, FOUND_ROWS, INTERVAL, DATE_ADD/DATE_SUB,
// UNIX_TIMESTAMP, IF(), CONCAT(), GROUP_CONCAT, other TIMESTAMPDIFF units and
// DATE_FORMAT fields. Anything else SQLite does not know (a MySQL-only
// function or syntax) fails in sqlite3_prepare with SQLite's message.
#include <imp/testing/fake_database.h>

#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace imp::testing {

namespace {

using core::DbError;

const char* kNow3 = "strftime('%Y-%m-%d %H:%M:%f','now')";
const char* kNow0 = "strftime('%Y-%m-%d %H:%M:%S','now')";

[[noreturn]] void refuse(const std::string& construct, const std::string& sql) {
  throw DbError("fake database: " + construct + " is not translated to SQLite (statement: " + sql + ")", 0, false);
}

std::regex re(const char* pattern) { return std::regex(pattern, std::regex::ECMAScript | std::regex::icase); }

// String literals are replaced by \x01<index>\x02 while the statement is
// rewritten, so no rule ever looks inside one.
struct Masked {
  std::string text;
  std::vector<std::string> literals;  // with their quotes
};

Masked mask(const std::string& sql) {
  Masked m;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    char c = sql[i];
    if (c == '"') refuse("a double-quoted string (an identifier in SQLite)", sql);
    if (c == '#') refuse("a '#' comment", sql);
    if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') refuse("a /* */ comment", sql);
    if (c != '\'') {
      m.text += c;
      continue;
    }
    std::size_t j = i + 1;
    for (;;) {
      if (j >= sql.size()) refuse("an unterminated string literal", sql);
      if (sql[j] == '\\') refuse("a backslash escape in a string literal (MySQL and SQLite read it differently)", sql);
      if (sql[j] == '\'') {
        if (j + 1 < sql.size() && sql[j + 1] == '\'') {
          j += 2;
          continue;
        }
        break;
      }
      ++j;
    }
    m.text += '\x01' + std::to_string(m.literals.size()) + '\x02';
    m.literals.push_back(sql.substr(i, j - i + 1));
    i = j;
  }
  return m;
}

std::string unmask(const std::string& text, const std::vector<std::string>& literals) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\x01') {
      out += text[i];
      continue;
    }
    auto end = text.find('\x02', i);
    out += literals.at(std::stoul(text.substr(i + 1, end - i - 1)));
    i = end;
  }
  return out;
}

// The literal's content if `arg` is exactly one masked literal.
std::optional<std::string> literalArg(const std::string& arg, const std::vector<std::string>& literals) {
  static const std::regex kOne("^\\s*\\x01(\\d+)\\x02\\s*$");
  std::smatch m;
  if (!std::regex_match(arg, m, kOne)) return std::nullopt;
  const auto& lit = literals.at(std::stoul(m[1].str()));
  return lit.substr(1, lit.size() - 2);
}

// Rewrites every call NAME(args) with fn(args split at top-level commas).
template <class Fn>
std::string rewriteCalls(const std::string& text, const char* name, const std::string& sql, Fn fn) {
  std::regex call(std::string("\\b") + name + "\\s*\\(", std::regex::ECMAScript | std::regex::icase);
  std::string out = text;
  std::smatch m;
  std::size_t from = 0;
  while (std::regex_search(out.cbegin() + static_cast<std::ptrdiff_t>(from), out.cend(), m, call)) {
    std::size_t start = from + static_cast<std::size_t>(m.position(0));
    std::size_t open = start + static_cast<std::size_t>(m.length(0));
    std::vector<std::string> args(1);
    int depth = 1;
    std::size_t i = open;
    for (; i < out.size() && depth > 0; ++i) {
      char c = out[i];
      if (c == '(') ++depth;
      if (c == ')' && --depth == 0) break;
      if (c == ',' && depth == 1) {
        args.emplace_back();
        continue;
      }
      args.back() += c;
    }
    if (depth != 0) refuse(std::string("an unbalanced ") + name + "(", sql);
    std::string repl = fn(args);
    out.replace(start, i + 1 - start, repl);
    from = start + repl.size();
  }
  return out;
}

std::string timestampDiff(const std::vector<std::string>& a, const std::string& sql) {
  static const std::regex kSecond("^\\s*SECOND\\s*$", std::regex::ECMAScript | std::regex::icase);
  if (a.size() != 3 || !std::regex_match(a[0], kSecond)) refuse("TIMESTAMPDIFF with a unit other than SECOND", sql);
  // Milliseconds rounded to an integer first, so 0.1 s steps do not drift,
  // then integer division truncates toward zero like MySQL.
  return "(CAST(ROUND((julianday(" + a[2] + ") - julianday(" + a[1] + ")) * 86400000) AS INTEGER) / 1000)";
}

std::string dateFormat(const std::vector<std::string>& a, const std::vector<std::string>& literals, const std::string& sql) {
  if (a.size() != 2) refuse("DATE_FORMAT without exactly two arguments", sql);
  auto fmt = literalArg(a[1], literals);
  if (!fmt) refuse("DATE_FORMAT with a format that is not a string literal", sql);
  std::string out;
  for (std::size_t i = 0; i < fmt->size(); ++i) {
    char c = (*fmt)[i];
    if (c != '%') {
      if (c == '\'') out += "''";
      else out += c;
      continue;
    }
    if (++i >= fmt->size()) refuse("DATE_FORMAT with a trailing %", sql);
    switch ((*fmt)[i]) {
      case 'Y': out += "%Y"; break;
      case 'm': out += "%m"; break;
      case 'd': out += "%d"; break;
      case 'H': out += "%H"; break;
      case 'i': out += "%M"; break;
      case 's': out += "%S"; break;
      case 'T': out += "%H:%M:%S"; break;
      case '%': out += "%%"; break;
      default: refuse(std::string("DATE_FORMAT field %") + (*fmt)[i], sql);
    }
  }
  return "strftime('" + out + "', " + a[0] + ")";
}

}  // namespace

std::string translateMySql(const std::string& sql) {
  Masked m = mask(sql);
  std::string t = m.text;

  struct Refusal {
    const char* pattern;
    const char* construct;
  };
  static const std::vector<std::pair<std::regex, std::string>> kRefused = [] {
    std::vector<Refusal> list = {
        {"\\|\\|", "|| (OR in MySQL, concatenation in SQLite)"},
        {"/", "/ (decimal division in MySQL, integer division in SQLite)"},
        {"\\bDIV\\b", "DIV"},
        {"\\bREPLACE\\s+INTO\\b", "REPLACE INTO"},
        {"\\bLOCK\\s+IN\\s+SHARE\\s+MODE\\b", "LOCK IN SHARE MODE"},
        {"\\bON\\s+UPDATE\\s+CURRENT_TIMESTAMP\\b", "ON UPDATE CURRENT_TIMESTAMP"},
        {"\\bENGINE\\s*=\\s*(?!InnoDB\\b)", "an ENGINE other than InnoDB"},
        {"\\b(CHARACTER\\s+SET|CHARSET|COLLATE)\\b", "a character set or collation clause"},
        {"\\bLAST_INSERT_ID\\b", "LAST_INSERT_ID() in SQL (use DbSession::lastInsertId())"},
        {"\\b(SQL_CALC_FOUND_ROWS|FOUND_ROWS)\\b", "FOUND_ROWS"},
        {"\\bINTERVAL\\b", "INTERVAL"},
        {"\\b(DATE_ADD|DATE_SUB|ADDDATE|SUBDATE)\\b", "DATE_ADD/DATE_SUB"},
        {"\\bUNIX_TIMESTAMP\\b", "UNIX_TIMESTAMP"},
        {"\\bIF\\s*\\(", "IF()"},
        {"\\bCONCAT(_WS)?\\s*\\(", "CONCAT()"},
        {"\\bGROUP_CONCAT\\b", "GROUP_CONCAT"},
    };
    std::vector<std::pair<std::regex, std::string>> out;
    for (const auto& r : list) out.emplace_back(re(r.pattern), r.construct);
    return out;
  }();
  for (const auto& [pattern, construct] : kRefused)
    if (std::regex_search(t, pattern)) refuse(construct, sql);

  static const std::regex kCreateTable = re("^\\s*CREATE\\s+TABLE\\s+(IF\\s+NOT\\s+EXISTS\\s+)?(\\w+)");
  std::smatch ct;
  const bool createTable = std::regex_search(t, ct, kCreateTable);
  std::string indexes;
  if (createTable) {
    const std::string table = ct[2].str();
    t = std::regex_replace(t, re("\\s*\\bENGINE\\s*=\\s*InnoDB\\b"), "");
    t = std::regex_replace(t, re("\\bBIGINT\\s+UNSIGNED\\s+NOT\\s+NULL\\s+AUTO_INCREMENT\\s+PRIMARY\\s+KEY\\b"),
                           "INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT");
    if (std::regex_search(t, re("\\bAUTO_INCREMENT\\b")))
      refuse("AUTO_INCREMENT other than BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY", sql);
    t = std::regex_replace(t, re("\\s+UNSIGNED\\b"), "");
    t = std::regex_replace(t, re("\\bUNIQUE\\s+KEY\\s+(\\w+)\\s*\\("), "CONSTRAINT $1 UNIQUE (");
    static const std::regex kKey = re(",\\s*(?:KEY|INDEX)\\s+(\\w+)\\s*\\(([^)]*)\\)");
    for (std::sregex_iterator it(t.begin(), t.end(), kKey), end; it != end; ++it)
      indexes += ";\nCREATE INDEX IF NOT EXISTS " + (*it)[1].str() + " ON " + table + " (" + (*it)[2].str() + ")";
    t = std::regex_replace(t, kKey, "");
    t = std::regex_replace(t, re("\\bDEFAULT\\s+CURRENT_TIMESTAMP\\s*\\(\\s*3\\s*\\)"), std::string("DEFAULT (") + kNow3 + ")");
  } else {
    if (std::regex_search(t, re("\\bAUTO_INCREMENT\\b"))) refuse("AUTO_INCREMENT outside CREATE TABLE", sql);
    if (std::regex_search(t, re("\\bUNSIGNED\\b"))) refuse("UNSIGNED outside CREATE TABLE", sql);
    if (std::regex_search(t, re("\\bENGINE\\b"))) refuse("ENGINE outside CREATE TABLE", sql);
  }

  t = std::regex_replace(t, re("\\b(CURRENT_TIMESTAMP|NOW)\\s*\\(\\s*3\\s*\\)"), kNow3);
  t = std::regex_replace(t, re("\\b(CURRENT_TIMESTAMP|NOW)\\s*\\(\\s*\\)"), kNow0);
  t = std::regex_replace(t, re("^(\\s*)INSERT\\s+IGNORE\\s+INTO\\b"), "$1INSERT OR IGNORE INTO");
  t = std::regex_replace(t, re("^(\\s*)UPDATE\\s+IGNORE\\b"), "$1UPDATE OR IGNORE");
  t = std::regex_replace(t, re("\\bSTRAIGHT_JOIN\\b"), "CROSS JOIN");
  t = std::regex_replace(t, re("^(\\s*)DROP\\s+TEMPORARY\\s+TABLE\\s+IF\\s+EXISTS\\s+(\\w+)"),
                         "$1DROP TABLE IF EXISTS temp.$2");
  t = std::regex_replace(t, re("^(\\s*)DROP\\s+INDEX\\s+IF\\s+EXISTS\\s+(\\w+)\\s+ON\\s+\\w+\\s*$"),
                         "$1DROP INDEX IF EXISTS $2");

  static const std::regex kUpsert = re("\\bON\\s+DUPLICATE\\s+KEY\\s+UPDATE\\b");
  std::smatch up;
  if (std::regex_search(t, up, kUpsert)) {
    std::string head = t.substr(0, static_cast<std::size_t>(up.position(0)));
    std::string tail = up.suffix().str();
    if (std::regex_search(tail, kUpsert)) refuse("a second ON DUPLICATE KEY UPDATE", sql);
    tail = std::regex_replace(tail, re("\\bVALUES\\s*\\(\\s*(\\w+)\\s*\\)"), "excluded.$1");
    if (std::regex_search(tail, re("\\bVALUES\\b"))) refuse("VALUES() of an expression in ON DUPLICATE KEY UPDATE", sql);
    // SQLite needs a conflict target when the INSERT reads from a SELECT.
    if (std::regex_search(head, re("\\bSELECT\\b"))) refuse("INSERT ... SELECT ... ON DUPLICATE KEY UPDATE", sql);
    t = head + "ON CONFLICT DO UPDATE SET" + tail;
  }

  t = std::regex_replace(t, re("\\s+FOR\\s+UPDATE\\s*$"), "");
  if (std::regex_search(t, re("\\bFOR\\s+UPDATE\\b"))) refuse("FOR UPDATE other than at the end of a SELECT", sql);

  t = rewriteCalls(t, "TIMESTAMPDIFF", sql, [&](const std::vector<std::string>& a) { return timestampDiff(a, sql); });
  t = rewriteCalls(t, "DATE_FORMAT", sql, [&](const std::vector<std::string>& a) { return dateFormat(a, m.literals, sql); });

  return unmask(t, m.literals) + indexes;
}

}  // namespace imp::testing
