#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <doctest/doctest.h>
#include <imp/core/admin_http.h>
#include <imp/core/metrics.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

using namespace imp::core;

namespace {

struct Reply {
  int status;
  std::string body;
  std::string wwwAuth;
};

Reply call(unsigned port, const std::string& method, const std::string& path, const std::string& token = "",
           const std::string& body = "") {
  Poco::Net::HTTPClientSession s("127.0.0.1", static_cast<Poco::UInt16>(port));
  Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  if (!token.empty()) req.set("Authorization", "Bearer " + token);
  req.setContentLength(static_cast<std::streamsize>(body.size()));
  s.sendRequest(req) << body;
  Poco::Net::HTTPResponse resp;
  auto& in = s.receiveResponse(resp);
  std::stringstream ss;
  ss << in.rdbuf();
  return {static_cast<int>(resp.getStatus()), ss.str(), resp.get("WWW-Authenticate", "")};
}

}  // namespace

TEST_CASE("admin API: auth, routing, JSON errors") {
  AdminRouter router;
  Metrics metrics;
  router.add("GET", "/health/live", [](const AdminRequest&) { return AdminResponse::text("live\n", "text/plain"); }, false);
  router.add("GET", "/api/v1/things/{id}", [](const AdminRequest& r) {
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object;
    o->set("id", r.params.at("id"));
    return AdminResponse::json(o);
  });
  router.add("POST", "/api/v1/things", [](const AdminRequest& r) {
    auto body = r.json();
    if (!body->has("name")) throw AdminError(400, "missing_field", "field 'name' is required");
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object;
    o->set("created", body->getValue<std::string>("name"));
    return AdminResponse::json(o, 201);
  });
  router.add("GET", "/api/v1/boom", [](const AdminRequest&) -> AdminResponse { throw std::runtime_error("kaput"); });
  const std::string token = "0123456789abcdef0123456789abcdef";
  AdminServer server(router, "127.0.0.1", 0, token, 2, nullptr, &metrics);
  server.start();
  auto port = server.port();
  REQUIRE(port != 0);

  CHECK(call(port, "GET", "/health/live").status == 200);

  auto noToken = call(port, "GET", "/api/v1/things/7");
  CHECK(noToken.status == 401);
  CHECK(noToken.body.find("\"code\":\"unauthorized\"") != std::string::npos);
  CHECK(noToken.wwwAuth.find("Bearer") == 0);
  CHECK(call(port, "GET", "/api/v1/things/7", "0123456789abcdef0123456789abcdeX").status == 401);

  auto ok = call(port, "GET", "/api/v1/things/7", token);
  CHECK(ok.status == 200);
  CHECK(ok.body == "{\"id\":\"7\"}\n");

  auto missing = call(port, "POST", "/api/v1/things", token, "{}");
  CHECK(missing.status == 400);
  CHECK(missing.body.find("\"code\":\"missing_field\"") != std::string::npos);
  auto bad = call(port, "POST", "/api/v1/things", token, "{not json");
  CHECK(bad.status == 400);
  CHECK(bad.body.find("\"code\":\"bad_json\"") != std::string::npos);
  auto arr = call(port, "POST", "/api/v1/things", token, "[1,2]");
  CHECK(arr.status == 400);
  CHECK(call(port, "POST", "/api/v1/things", token, "{\"name\":\"x\"}").status == 201);

  auto wrongMethod = call(port, "DELETE", "/api/v1/things/7", token);
  CHECK(wrongMethod.status == 405);
  CHECK(wrongMethod.body.find("use GET") != std::string::npos);
  CHECK(call(port, "GET", "/api/v1/nothing", token).status == 404);
  auto boom = call(port, "GET", "/api/v1/boom", token);
  CHECK(boom.status == 500);
  CHECK(boom.body.find("kaput") != std::string::npos);

  auto text = metrics.render();
  CHECK(text.find("imp_admin_requests_total{code=\"401\"} 2") != std::string::npos);
  server.stop();
}

TEST_CASE("the admin token is created once with mode 0600") {
  auto path = std::filesystem::temp_directory_path() / ("imp-token-" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  auto t1 = loadOrCreateToken(path.string());
  CHECK(t1.size() == 64);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(loadOrCreateToken(path.string()) == t1);
  std::filesystem::remove(path);
}
