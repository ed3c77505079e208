#include <doctest/doctest.h>
#include <imp/core/config.h>

using imp::core::Config;
using imp::core::ConfigError;
using imp::core::ConfigSchema;

namespace {
const ConfigSchema& schema() { return imp::core::coreSchema(); }

std::string errorOf(const std::string& text) {
  try {
    Config::parse(text, schema());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("defaults apply when the file is empty") {
  auto c = Config::parse("", schema());
  CHECK(c.getString("node", "role") == "single");
  CHECK(c.getString("database", "mode") == "managed");
  CHECK(c.getInt("admin", "port") == 8780);
  CHECK_FALSE(c.getBool("log", "console"));
  CHECK_FALSE(c.isSet("admin", "port"));
}

TEST_CASE("values are typed and trimmed; comments and quotes are handled") {
  auto c = Config::parse(
      "# comment\n[node]\n id = n1 \nrole=routing\n; other comment\n[admin]\nport = 9000\n[log]\nconsole = yes\n"
      "[database]\nurl = \"mysql://u@h/imp\"\n",
      schema());
  CHECK(c.getString("node", "id") == "n1");
  CHECK(c.getString("node", "role") == "routing");
  CHECK(c.getInt("admin", "port") == 9000);
  CHECK(c.getBool("log", "console"));
  CHECK(c.getString("database", "url") == "mysql://u@h/imp");
  CHECK(c.isSet("admin", "port"));
}

TEST_CASE("an unknown key is refused with the section and the valid keys") {
  auto e = errorOf("[node]\nid = a\ncolour = blue\n");
  CHECK(e.rfind("in [node]: unknown key 'colour' (line 3); valid keys: id, role,", 0) == 0);
}

TEST_CASE("an unknown section is refused") {
  CHECK(errorOf("[nodes]\n").rfind("in [nodes]: unknown section (line 1); valid sections: node, database", 0) == 0);
}

TEST_CASE("port 70000 is out of range") {
  CHECK(errorOf("[admin]\nport = 70000\n") == "in [admin]: port = 70000 is out of range 0..65535 (line 2)");
  CHECK(errorOf("[admin]\nport = -1\n") == "in [admin]: port = -1 is out of range 0..65535 (line 2)");
  CHECK(errorOf("[admin]\nport = 99999999999999999999\n").rfind("in [admin]: port = 99999999999999999999 is out of range", 0) == 0);
  CHECK(errorOf("[admin]\nport = 80x\n") == "in [admin]: port = 80x is not an integer (line 2)");
  CHECK(errorOf("[admin]\nport =\n") == "in [admin]: port =  is out of range 0..65535 (line 2)");
}

TEST_CASE("enums, booleans and paths are checked") {
  CHECK(errorOf("[node]\nrole = edge\n") == "in [node]: role = edge is not one of: single, routing, home, publisher (line 2)");
  CHECK(errorOf("[log]\nconsole = maybe\n") == "in [log]: console = maybe is not a boolean (true/false) (line 2)");
  CHECK(errorOf("[node]\nstate_dir = var/lib\n") == "in [node]: state_dir = var/lib must be an absolute path (line 2)");
}

TEST_CASE("malformed lines are refused precisely") {
  CHECK(errorOf("id = x\n") == "in [?]: key outside of any section (line 1): 'id = x'");
  CHECK(errorOf("[node]\njust words\n") == "in [node]: expected 'key = value' (line 2), got 'just words'");
  CHECK(errorOf("[node\n") == "in [?]: malformed section header '[node' (line 1)");
  CHECK(errorOf("[node]\nid = a\nid = b\n") == "in [node]: key 'id' set twice (line 3)");
}

TEST_CASE("set() validates like the file does") {
  auto c = Config::parse("", schema());
  c.set("admin", "port", "0");
  CHECK(c.getInt("admin", "port") == 0);
  CHECK_THROWS_WITH_AS(c.set("admin", "port", "70000"), "in [admin]: port = 70000 is out of range 0..65535", ConfigError);
  CHECK_THROWS_AS(c.set("admin", "nope", "1"), ConfigError);
}

TEST_CASE("a missing file is an error unless allowed") {
  CHECK_THROWS_WITH_AS(Config::load("/nonexistent/impd.conf", schema()), "in [file]: cannot read /nonexistent/impd.conf",
                       ConfigError);
  auto c = Config::load("/nonexistent/impd.conf", schema(), true);
  CHECK(c.getString("node", "role") == "single");
}
