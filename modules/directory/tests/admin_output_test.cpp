// The directory's commands (PS-3, PS-5): impctl's text for each answer, and
// the JSON answers themselves, byte for byte (issue 15 deliverable 4: the
// admin API is public; the fields are declared once, in admin_api.cpp).
// Expected texts are written out by hand.
#include <doctest/doctest.h>
#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>
#include <imp/directory/admin_api.h>
#include <imp/directory/directory.h>
#include <imp/testing/fake_database.h>
#include <imp/testing/printed.h>

using namespace imp;
using testing::command;
using testing::printed;

namespace {

struct Commands {
  core::CommandRegistry reg;
  Commands() { directory::registerCommands(reg); }
};

}  // namespace

TEST_CASE("impctl user add|show|list|delete print the users as a table (PS-5)") {
  Commands c;
  const std::string ann =
      R"({"userid": "ann", "im_address": "ann@example.com", "licensed": true, "home_node": "imp1", "ms_sip_uri": ""})";
  const std::string one =
      "USERID  IM ADDRESS       LICENSED  HOME NODE  MICROSOFT SIP URI\n"
      "ann     ann@example.com  yes       imp1       -\n";
  CHECK(printed(command(c.reg, "user add", 1), ann, 201) == one);
  CHECK(printed(command(c.reg, "user show", 1), ann) == one);
  CHECK(printed(command(c.reg, "user list"),
                R"({"users": [)" + ann +
                    R"(, {"userid": "bob", "im_address": "bob@example.com", "licensed": false, "home_node": "",)"
                    R"( "ms_sip_uri": "sip:bob@example.com"}]})") ==
        "USERID  IM ADDRESS       LICENSED  HOME NODE  MICROSOFT SIP URI\n"
        "ann     ann@example.com  yes       imp1       -\n"
        "bob     bob@example.com  no        -          sip:bob@example.com\n");
  CHECK(printed(command(c.reg, "user list"), R"({"users": []})") ==
        "USERID  IM ADDRESS  LICENSED  HOME NODE  MICROSOFT SIP URI\n");
  CHECK(printed(command(c.reg, "user delete", 1), R"({"deleted": "ann"})") == "deleted user ann\n");
}

TEST_CASE("impctl domain add|list|delete print the presence domains (PS-3)") {
  Commands c;
  CHECK(printed(command(c.reg, "domain add", 1), R"({"domain": "example.com", "status": "configured on local cluster"})",
                201) == "example.com: configured on local cluster\n");
  CHECK(printed(command(c.reg, "domain list"),
                R"({"domains": [{"domain": "example.com", "managed_by": "administrator", "status": "configured on local cluster",)"
                R"( "local_users": 2, "description": "shared with Lync"}, {"domain": "other.org", "managed_by": "system",)"
                R"( "status": "in use on local cluster", "local_users": 1, "description": ""}]})") ==
        "DOMAIN       MANAGED BY     STATUS                       LOCAL USERS  DESCRIPTION\n"
        "example.com  administrator  configured on local cluster  2            shared with Lync\n"
        "other.org    system         in use on local cluster      1\n");
  CHECK(printed(command(c.reg, "domain delete", 1), R"({"deleted": "example.com"})") == "deleted domain example.com\n");
}

TEST_CASE("the directory's JSON answers keep their field names and types") {
  testing::FakeDatabase db;
  db.migrate();
  db.exec("INSERT INTO core_node (node_id, role, hostname, admin_url, version) VALUES ('imp1', 'single', 'a', '', '0')");
  directory::Directory dir{db};
  Commands c;
  c.reg.provide(dir);
  core::AdminRouter router;
  c.reg.bind(router, "9.9.9");
  auto send = [&](const std::string& method, const std::string& path, const std::string& body = {}) {
    core::AdminRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    auto resp = router.dispatch(r, true);
    REQUIRE(resp.body.back() == '\n');
    resp.body.pop_back();
    return resp;
  };
  auto added = send("POST", "/api/v1/users",
                    R"({"userid": "ann", "im_address": "ann@Example.COM", "home_node": "imp1", "licensed": false})");
  CHECK(added.status == 201);
  CHECK(added.body ==
        R"({"home_node":"imp1","im_address":"ann@example.com","licensed":false,"ms_sip_uri":"","userid":"ann"})");
  CHECK(send("GET", "/api/v1/users/ann").body == added.body);
  CHECK(send("GET", "/api/v1/users").body == R"({"users":[)" + added.body + "]}");
  auto domain = send("POST", "/api/v1/domains", R"({"domain": "Shared.example", "description": "with Lync"})");
  CHECK(domain.status == 201);
  CHECK(domain.body == R"({"domain":"shared.example","status":"configured on local cluster"})");
  CHECK(send("GET", "/api/v1/domains").body ==
        R"({"domains":[{"description":"","domain":"example.com","local_users":1,"managed_by":"system",)"
        R"("status":"in use on local cluster"},{"description":"with Lync","domain":"shared.example","local_users":0,)"
        R"("managed_by":"administrator","status":"configured on local cluster"}]})");
  CHECK(send("DELETE", "/api/v1/domains/Shared.example").body == R"({"deleted":"shared.example"})");
  CHECK(send("DELETE", "/api/v1/users/ann").body == R"({"deleted":"ann"})");
}
