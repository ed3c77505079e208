// The fake database itself (issue 15, deliverable 5): the real migrations
// run on it, the dialect translation and its refusals, MySQL error numbers,
// transactions, and fault injection.
#include <doctest/doctest.h>
#include <imp/testing/fake_database.h>

#include <atomic>
#include <thread>

using imp::core::DbError;
using imp::core::DbSession;
using imp::testing::FakeDatabase;
using imp::testing::translateMySql;

namespace {

int errorCode(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const DbError& e) {
    return e.code();
  }
  return -1;
}

std::string refusal(const std::string& sql) {
  try {
    translateMySql(sql);
  } catch (const DbError& e) {
    return e.what();
  }
  return "";
}

std::int64_t generation(FakeDatabase& db) { return db.query("SELECT generation FROM core_settings WHERE id = 1").num(0, "generation"); }

}  // namespace

TEST_CASE("the project's migrations run on the fake, once") {
  FakeDatabase db;
  auto applied = db.migrate();
  CHECK(applied >= 6);
  CHECK(db.migrate() == 0);
  CHECK(generation(db) == 1);
  auto listeners = db.query("SELECT name, enabled, port FROM sip_listener ORDER BY name");
  REQUIRE(listeners.size() == 4);
  CHECK(listeners.str(3, "name") == "udp");
  CHECK(listeners.num(3, "enabled") == 0);
  auto versions = db.query("SELECT COUNT(*) AS n FROM schema_migration");
  CHECK(versions.num(0, "n") == static_cast<std::int64_t>(applied));
  // TIMESTAMP(3) defaults look like MySQL's.
  auto at = db.query("SELECT applied_at FROM schema_migration WHERE version = 1").str(0, "applied_at");
  CHECK(at.size() == 23);
  CHECK(at[10] == ' ');
  CHECK(at[19] == '.');
}

TEST_CASE("translation of the constructs the project uses") {
  CHECK(translateMySql("INSERT IGNORE INTO t (a) VALUES (1)") == "INSERT OR IGNORE INTO t (a) VALUES (1)");
  CHECK(translateMySql("UPDATE IGNORE t SET a = ? WHERE a = ?") == "UPDATE OR IGNORE t SET a = ? WHERE a = ?");
  CHECK(translateMySql("SELECT b.c FROM a STRAIGHT_JOIN b ON b.k = a.k") == "SELECT b.c FROM a CROSS JOIN b ON b.k = a.k");
  CHECK(translateMySql("DROP TEMPORARY TABLE IF EXISTS t") == "DROP TABLE IF EXISTS temp.t");
  CHECK(translateMySql("INSERT INTO t (a, b) VALUES (?, ?) ON DUPLICATE KEY UPDATE b = VALUES(b), c = 'x'") ==
        "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT DO UPDATE SET b = excluded.b, c = 'x'");
  CHECK(translateMySql("SELECT a FROM t WHERE id = ? FOR UPDATE") == "SELECT a FROM t WHERE id = ?");
  CHECK(translateMySql("UPDATE t SET at = CURRENT_TIMESTAMP(3)") == "UPDATE t SET at = strftime('%Y-%m-%d %H:%M:%f','now')");
  auto ddl = translateMySql(
      "CREATE TABLE IF NOT EXISTS t (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, a INT UNSIGNED NOT NULL,"
      " at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), UNIQUE KEY t_a (a), KEY t_at (at, a)) ENGINE=InnoDB");
  CHECK(ddl ==
        "CREATE TABLE IF NOT EXISTS t (id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, a INT NOT NULL,"
        " at TIMESTAMP(3) NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')), CONSTRAINT t_a UNIQUE (a));\n"
        "CREATE INDEX IF NOT EXISTS t_at ON t (at, a)");
  // Literals are never rewritten.
  CHECK(translateMySql("SELECT 'FOR UPDATE' AS x") == "SELECT 'FOR UPDATE' AS x");
  CHECK(translateMySql("SELECT 'it''s ENGINE=MyISAM' AS x") == "SELECT 'it''s ENGINE=MyISAM' AS x");
}

TEST_CASE("constructs without a translation are refused, naming them") {
  CHECK(refusal("SELECT a || b FROM t").find("||") != std::string::npos);
  CHECK(refusal("REPLACE INTO t (a) VALUES (1)").find("REPLACE INTO") != std::string::npos);
  CHECK(refusal("SELECT a FROM t FOR UPDATE NOWAIT").find("FOR UPDATE") != std::string::npos);
  CHECK(refusal("SELECT a FROM t LOCK IN SHARE MODE").find("LOCK IN SHARE MODE") != std::string::npos);
  CHECK(refusal("CREATE TABLE t (a INT) ENGINE=MyISAM").find("ENGINE") != std::string::npos);
  CHECK(refusal("SELECT TIMESTAMPDIFF(MINUTE, a, b) FROM t").find("SECOND") != std::string::npos);
  CHECK(refusal("SELECT DATE_FORMAT(a, '%W') FROM t").find("%W") != std::string::npos);
  CHECK(refusal("SELECT a FROM t WHERE a > NOW() - INTERVAL 1 DAY").find("INTERVAL") != std::string::npos);
  CHECK(refusal("SELECT \"a\" FROM t").find("double-quoted") != std::string::npos);
  CHECK(refusal("SELECT 'a\\'b'").find("backslash") != std::string::npos);
  CHECK(refusal("SELECT LAST_INSERT_ID()").find("lastInsertId") != std::string::npos);
  CHECK(refusal("SELECT a / 2 FROM t").find("division") != std::string::npos);
  // A MySQL-only function the list does not name fails in SQLite, loudly.
  FakeDatabase db;
  CHECK_THROWS_WITH_AS(db.query("SELECT SHA2('x', 256) AS h"), doctest::Contains("no such function"), DbError);
}

TEST_CASE("TIMESTAMPDIFF and DATE_FORMAT mean what they mean in MySQL") {
  FakeDatabase db;
  auto r = db.query(
      "SELECT TIMESTAMPDIFF(SECOND, '2026-01-01 00:00:00.900', '2026-01-01 00:00:02.100') AS d,"
      " TIMESTAMPDIFF(SECOND, '2026-01-01 00:00:02.100', '2026-01-01 00:00:00.900') AS n,"
      " DATE_FORMAT('2026-01-02 03:04:05.678', '%Y-%m-%dT%H:%i:%s') AS f");
  CHECK(r.num(0, "d") == 1);
  CHECK(r.num(0, "n") == -1);
  CHECK(r.str(0, "f") == "2026-01-02T03:04:05");
}

TEST_CASE("constraint failures carry MySQL error numbers") {
  FakeDatabase db;
  db.migrate();
  db.exec("INSERT INTO sip_tls_peer_subject (subject_cn) VALUES (?)", {std::string("a.example.com")});
  CHECK(errorCode([&] { db.exec("INSERT INTO sip_tls_peer_subject (subject_cn) VALUES (?)", {std::string("a.example.com")}); }) ==
        1062);
  CHECK(errorCode([&] {
          db.exec("INSERT INTO sip_tls_context_peer (context_name, subject_cn) VALUES ('peer-auth', 'nobody.example.com')");
        }) == 1452);
  db.exec("INSERT INTO sip_tls_context_peer (context_name, subject_cn) VALUES ('peer-auth', 'a.example.com')");
  CHECK(errorCode([&] { db.exec("DELETE FROM sip_tls_peer_subject WHERE subject_cn = 'a.example.com'"); }) == 1451);
  CHECK(errorCode([&] { db.exec("INSERT INTO dir_domain (domain) VALUES (NULL)"); }) == 1048);
  CHECK(errorCode([&] { db.exec("INSERT INTO dir_domain (domain) VALUES (?)", {}); }) == 0);
}

TEST_CASE("AUTO_INCREMENT ids and upserts") {
  FakeDatabase db;
  db.migrate();
  std::uint64_t first = 0, second = 0;
  db.run([&](DbSession& s) {
    s.exec("INSERT INTO sip_acl (pattern, kind) VALUES ('all', 'all')");
    first = s.lastInsertId();
    s.exec("INSERT INTO sip_acl (pattern, kind) VALUES ('10.0.0.1', 'address')");
    second = s.lastInsertId();
  });
  CHECK(first >= 1);
  CHECK(second == first + 1);
  std::uint64_t multi = 0;
  db.run([&](DbSession& s) {
    // MySQL: the first id of a multi-row INSERT (the rows get consecutive ids)
    s.exec("INSERT INTO sip_acl (pattern, kind) VALUES ('10.0.0.2', 'address'), ('10.0.0.3', 'address'), "
           "('10.0.0.4', 'address')");
    multi = s.lastInsertId();
  });
  CHECK(multi == second + 1);
  CHECK(db.query("SELECT pattern FROM sip_acl WHERE id = ?", {static_cast<std::int64_t>(multi)}).str(0, "pattern") ==
        "10.0.0.2");
  db.exec("INSERT INTO sip_listener (name, enabled, port) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE enabled = VALUES(enabled),"
          " port = VALUES(port), changed_at = CURRENT_TIMESTAMP(3)",
          {std::string("tcp"), false, std::int64_t{5070}});
  auto r = db.query("SELECT enabled, port FROM sip_listener WHERE name = 'tcp'");
  CHECK(r.num(0, "enabled") == 0);
  CHECK(r.num(0, "port") == 5070);
  CHECK(db.query("SELECT COUNT(*) AS n FROM sip_listener").num(0, "n") == 4);
}

TEST_CASE("a transaction that throws leaves nothing behind") {
  FakeDatabase db;
  db.migrate();
  CHECK_THROWS_AS(db.transaction([](DbSession& s) {
    s.exec("UPDATE core_settings SET generation = generation + 1 WHERE id = 1");
    s.exec("INSERT INTO dir_domain (domain) VALUES ('example.com')");
    throw std::runtime_error("check failed");
  }),
                  std::runtime_error);
  CHECK(generation(db) == 1);
  CHECK(db.query("SELECT domain FROM dir_domain").empty());
  // In autocommit mode, statements before the failure stay (as in MySQL).
  CHECK_THROWS(db.run([](DbSession& s) {
    s.exec("INSERT INTO dir_domain (domain) VALUES ('example.com')");
    throw std::runtime_error("later failure");
  }));
  CHECK(db.query("SELECT domain FROM dir_domain").size() == 1);
}

TEST_CASE("fault injection: lost connections") {
  FakeDatabase db;
  db.migrate();
  CHECK(db.ping());
  db.failNextOperations(2);
  try {
    db.query("SELECT 1 AS one");
    FAIL("no fault");
  } catch (const DbError& e) {
    CHECK(e.connectionLost());
    CHECK(e.code() == 2013);
  }
  CHECK_FALSE(db.healthy());
  CHECK_FALSE(db.ping());
  CHECK(db.ping());
  CHECK(db.healthy());

  // The second statement of a transaction fails: the first is rolled back.
  db.failStatement(2);
  try {
    db.transaction([](DbSession& s) {
      s.exec("INSERT INTO dir_domain (domain) VALUES ('example.com')");
      s.exec("UPDATE core_settings SET generation = generation + 1 WHERE id = 1");
    });
    FAIL("no fault");
  } catch (const DbError& e) {
    CHECK(e.connectionLost());
  }
  CHECK(db.query("SELECT domain FROM dir_domain").empty());
  CHECK(generation(db) == 1);
}

TEST_CASE("a blocked operation holds none of the fake's locks") {
  FakeDatabase db;
  db.migrate();
  auto gate = db.blockNextOperation();
  std::atomic<std::int64_t> seen{-1};
  std::thread t([&] { seen = generation(db); });
  REQUIRE(gate->waitBlocked(std::chrono::seconds(10)));
  // Another operation runs while the first one waits.
  db.exec("UPDATE core_settings SET generation = 7 WHERE id = 1");
  CHECK(seen.load() == -1);
  gate->release();
  t.join();
  CHECK(seen.load() == 7);
}

TEST_CASE("a run() nested on the same thread is refused") {
  FakeDatabase db;
  CHECK_THROWS_WITH_AS(db.run([&](DbSession&) { db.query("SELECT 1 AS one"); }), doctest::Contains("nested"), DbError);
  CHECK(db.query("SELECT 1 AS one").num(0, "one") == 1);
}

TEST_CASE("UPDATE IGNORE leaves the rows that would break a unique key, as MySQL does") {
  FakeDatabase db;
  db.migrate();
  for (const char* cn : {"a.example.com", "b.example.com", "c.example.com"})
    db.exec("INSERT INTO sip_tls_peer_subject (subject_cn) VALUES (?)", {std::string(cn)});
  // b -> c collides with the existing c: that row stays; a -> d goes through.
  CHECK(db.exec("UPDATE IGNORE sip_tls_peer_subject SET subject_cn = ? WHERE subject_cn = ?",
                {std::string("c.example.com"), std::string("b.example.com")}) == 0);
  CHECK(db.exec("UPDATE IGNORE sip_tls_peer_subject SET subject_cn = ? WHERE subject_cn = ?",
                {std::string("d.example.com"), std::string("a.example.com")}) == 1);
  auto r = db.query("SELECT subject_cn FROM sip_tls_peer_subject ORDER BY subject_cn");
  REQUIRE(r.size() == 3);
  CHECK(r.str(0, "subject_cn") == "b.example.com");
  CHECK(r.str(1, "subject_cn") == "c.example.com");
  CHECK(r.str(2, "subject_cn") == "d.example.com");
}

TEST_CASE("a temporary table is the session's; dropping it never drops a table of the schema") {
  FakeDatabase db;
  db.migrate();
  db.transaction([](DbSession& s) {
    s.exec("DROP TEMPORARY TABLE IF EXISTS sip_listener");  // no temporary one: nothing happens
    s.exec("CREATE TEMPORARY TABLE t (a VARCHAR(8) NOT NULL, b VARCHAR(8) NOT NULL, PRIMARY KEY (a, b))");
    s.exec("INSERT INTO t (a, b) VALUES (?, ?), (?, ?)", {std::string("x"), std::string("y"), std::string("tcp"), std::string("z")});
    auto r = s.query("SELECT l.name FROM t STRAIGHT_JOIN sip_listener l ON l.name = t.a");
    REQUIRE(r.size() == 1);
    CHECK(r.str(0, "name") == "tcp");
    s.exec("DROP TEMPORARY TABLE IF EXISTS t");
  });
  CHECK(db.query("SELECT COUNT(*) AS n FROM sip_listener").num(0, "n") == 4);
}
