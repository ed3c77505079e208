#include <doctest/doctest.h>
#include <imp/core/database.h>

using imp::core::parseDbUrl;

TEST_CASE("database urls: tcp, socket, ipv6, escapes") {
  auto p = parseDbUrl("mysql://imp:s%40cret@db.example.com:3307/imp_prod");
  CHECK(p.user == "imp");
  CHECK(p.password == "s@cret");
  CHECK(p.host == "db.example.com");
  CHECK(p.port == 3307);
  CHECK(p.schema == "imp_prod");
  CHECK(p.redacted() == "mysql://imp:***@db.example.com:3307/imp_prod");

  auto s = parseDbUrl("mysql://root@localhost/imp?socket=/run/mysqld/mysqld.sock");
  CHECK(s.socket == "/run/mysqld/mysqld.sock");
  CHECK(s.port == 3306);

  auto v6 = parseDbUrl("mysql://u@[::1]:3310/imp");
  CHECK(v6.host == "::1");
  CHECK(v6.port == 3310);
}

TEST_CASE("bad database urls are refused with the reason") {
  CHECK_THROWS_WITH(parseDbUrl("postgres://u@h/db"), "url must start with mysql://, got 'postgres://u@h/db'");
  CHECK_THROWS_WITH(parseDbUrl("mysql://h/db"), "url needs a user: mysql://user@host/schema");
  CHECK_THROWS_WITH(parseDbUrl("mysql://u@h"), "url needs a schema name: mysql://user@host/schema");
  CHECK_THROWS_WITH(parseDbUrl("mysql://u@h:70000/db"), "port '70000' in url is not 1..65535");
  CHECK_THROWS_WITH(parseDbUrl("mysql://u@h/db;drop"), "schema name 'db;drop' may hold only letters, digits and _");
  CHECK_THROWS_WITH(parseDbUrl("mysql://u@h/db?sock=/x"), "the only url parameter is socket=/path, got 'sock=/x'");
  CHECK_THROWS_WITH(parseDbUrl("mysql://u%4@h/db"), "truncated percent-escape in database url");
}
