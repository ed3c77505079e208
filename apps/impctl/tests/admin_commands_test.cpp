// The admin API that the modules' command declarations bind (issue 15
// deliverable 4): bad fields are refused with 400 naming the field before any
// handler runs, so no database is needed; GET /api/v1/commands describes
// every command.
#include <Poco/JSON/Parser.h>
#include <doctest/doctest.h>
#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>
#include <imp/core/database.h>
#include <imp/directory/admin_api.h>
#include <imp/directory/directory.h>
#include <imp/serviceability/admin_api.h>
#include <imp/sip_proxy/admin_api.h>
#include <imp/sip_proxy/config_store.h>
#include <imp/sip_proxy/proxy_service.h>
#include <imp/testing/fake_database.h>
#include <spdlog/spdlog.h>

#include <set>

using namespace imp;
using Obj = Poco::JSON::Object;

namespace {

struct Node {
  // Every request below is refused before a handler runs; the in-memory
  // database (tests/support) only gives the stores something to hold.
  testing::FakeDatabase db;
  directory::Directory dir{db};
  sip_proxy::ConfigStore store{db};
  sip_proxy::ProxyHandle proxy;
  serviceability::AdminContext ctx;
  core::CommandRegistry commands;
  core::AdminRouter router;
  Node() {
    serviceability::registerCommands(commands);
    directory::registerCommands(commands);
    sip_proxy::registerCommands(commands);
    commands.provide(ctx);
    commands.provide(dir);
    commands.provide(store);
    commands.provide(proxy);
    commands.bind(router, "9.9.9");
  }
  core::AdminResponse send(const std::string& method, const std::string& path, const std::string& body) {
    core::AdminRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    return router.dispatch(r, true);
  }
};

Obj::Ptr parse(const std::string& s) { return Poco::JSON::Parser().parse(s).extract<Obj::Ptr>(); }

}  // namespace

TEST_CASE("the admin API refuses a bad field with 400 naming it") {
  Node n;
  struct Case {
    std::string method, path, body, field, message;
  };
  const std::string route = R"("pattern": ".com.x.*", "route_type": "domain", "next_hop": "10.0.0.7")";
  for (const auto& c : std::vector<Case>{
           {"POST", "/api/v1/routes", "{" + route + R"(, "colour": "red"})", "colour", "unknown field 'colour'"},
           {"POST", "/api/v1/routes", "{" + route + R"(, "port": "50six"})", "port",
            "field 'port' must be a whole number ('50six')"},
           {"POST", "/api/v1/routes", "{" + route + R"(, "port": 0})", "port", "port 0 is out of range 1..65535"},
           {"POST", "/api/v1/routes", "{" + route + R"(, "transport": "SCTP"})", "transport",
            "transport 'SCTP' is not TCP, TLS or UDP"},
           {"POST", "/api/v1/routes", R"({"pattern": ".com.x.*", "next_hop": "h"})", "route_type",
            "field 'route_type' is required"},
           {"DELETE", "/api/v1/routes/first", "", "id", "route id 'first' is not a number (see impctl route list)"},
           {"PUT", "/api/v1/federation", R"({"routing_mode": "fast"})", "routing_mode",
            "routing mode 'fast' is not basic or advanced"},
           {"PUT", "/api/v1/federation", R"({"enabled": "yes"})", "enabled", "field 'enabled' must be true or false"},
           {"PUT", "/api/v1/tls/contexts/peer-auth", R"({"min_version": "1.4"})", "min_version",
            "min_version '1.4' is not a TLS version; use 1.0, 1.1, 1.2 or 1.3"},
           {"PUT", "/api/v1/tls/contexts/peer-auth", R"({"peer_subjects": "a.example.com"})", "peer_subjects",
            "field 'peer_subjects' must be a list of subject CNs"},
           {"POST", "/api/v1/users", R"({"userid": "eve", "im_address": "eve@example.com", "licensed": "yes"})",
            "licensed", "field 'licensed' must be true or false"},
           {"POST", "/api/v1/domains", R"({"description": "x"})", "domain", "field 'domain' is required"},
           {"PUT", "/api/v1/trace/sip-proxy", R"({"flags": "routing"})", "flags", "field 'flags' must be a list of strings"},
           {"POST", "/api/v1/services/sip-proxy/explode", "", "action",
            "action 'explode' is unknown; valid actions: activate, deactivate, start, stop, restart"},
           {"DELETE", "/api/v1/sip-proxy/bans", R"({"all": true})", "all", "unknown field 'all'"},
       }) {
    INFO(c.method, " ", c.path, " ", c.body);
    auto r = n.send(c.method, c.path, c.body);
    CHECK(r.status == 400);
    auto err = parse(r.body)->getObject("error");
    CHECK(err->getValue<std::string>("field") == c.field);
    CHECK(err->getValue<std::string>("message").find(c.message) == 0);
  }
  // A valid request reaches its handler: the proxy is not running here.
  auto r = n.send("DELETE", "/api/v1/sip-proxy/bans", "");
  CHECK(r.status == 503);
  CHECK(parse(r.body)->getObject("error")->getValue<std::string>("code") == "service_not_running");
}

TEST_CASE("GET /api/v1/commands lists every command of every module") {
  Node n;
  auto r = n.send("GET", "/api/v1/commands", "");
  REQUIRE(r.status == 200);
  auto doc = parse(r.body);
  CHECK(doc->getValue<std::string>("openapi") == "3.0.3");
  std::set<std::string> words;
  for (const auto& [path, item] : *doc->getObject("paths"))
    for (const auto& [method, op] : *item.extract<Obj::Ptr>())
      for (const auto& w : *op.extract<Obj::Ptr>()->getArray("x-impctl-words")) words.insert(w.convert<std::string>());
  for (const auto& c : n.commands.commands()) CHECK_MESSAGE(words.count(c.wordsText()) == 1, c.wordsText());
  auto users = doc->getObject("paths")->getObject("/api/v1/users")->getObject("post");
  CHECK(users->getValue<std::string>("operationId") == "user-add");
  auto props = users->getObject("requestBody")->getObject("content")->getObject("application/json")->getObject("schema")->getObject(
      "properties");
  CHECK(props->has("im_address"));
  CHECK(props->getObject("licensed")->getValue<std::string>("type") == "boolean");
}

TEST_CASE("every command declares its answer, and GET /api/v1/commands describes it (issue 15 deliverable 4)") {
  Node n;
  for (const auto& c : n.commands.commands()) {
    CHECK_MESSAGE(c.shape() != nullptr, c.wordsText(), " declares no response shape (returns())");
    CHECK_MESSAGE(static_cast<bool>(c.printer()), c.wordsText(), " has no printer");
  }
  auto doc = parse(n.send("GET", "/api/v1/commands", "").body);
  auto ok = doc->getObject("paths")->getObject("/api/v1/users/{userid}")->getObject("get")->getObject("responses")->getObject(
      "2XX");
  auto schema = ok->getObject("content")->getObject("application/json")->getObject("schema");
  CHECK(schema->getValue<std::string>("type") == "object");
  auto props = schema->getObject("properties");
  // PS-5: a user as GET /api/v1/users/{userid} answers it.
  CHECK(props->size() == 5);
  CHECK(props->getObject("userid")->getValue<std::string>("type") == "string");
  CHECK(props->getObject("im_address")->getValue<std::string>("type") == "string");
  CHECK(props->getObject("licensed")->getValue<std::string>("type") == "boolean");
  CHECK(props->getObject("home_node")->getValue<std::string>("type") == "string");
  CHECK(props->getObject("ms_sip_uri")->getValue<std::string>("type") == "string");
  std::set<std::string> required;
  for (const auto& f : *schema->getArray("required")) required.insert(f.convert<std::string>());
  CHECK(required == std::set<std::string>{"userid", "im_address", "licensed", "home_node", "ms_sip_uri"});
  // A list of objects of another shape, inline.
  auto list = doc->getObject("paths")->getObject("/api/v1/users")->getObject("get")->getObject("responses")->getObject("2XX");
  auto users = list->getObject("content")->getObject("application/json")->getObject("schema")->getObject("properties")->getObject(
      "users");
  CHECK(users->getValue<std::string>("type") == "array");
  CHECK(users->getObject("items")->getObject("properties")->getObject("licensed")->getValue<std::string>("type") == "boolean");
}
