// The admin commands of the xcp-router data through the command registry and
// the admin router, on the fake database: presence settings show|set, user
// roster, user passwd (a secret argument).
#include <Poco/JSON/Parser.h>
#include <doctest/doctest.h>
#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>
#include <imp/xcp_router/credential_store.h>
#include <imp/xcp_router/roster_store.h>
#include <imp/xcp_router/store_commands.h>

#include <sstream>

#include "store_fixture.h"

using namespace imp;
using namespace imp::xcp;
using Obj = Poco::JSON::Object;

namespace {

struct Node : xcptest::StoreFixture {
  StoreCommandsContext ctx{db};
  core::CommandRegistry commands;
  core::AdminRouter router;
  Node() {
    registerStoreCommands(commands);
    commands.provide(ctx);
    commands.bind(router, "9.9.9");
  }
  core::AdminResponse send(const std::string& method, const std::string& path, const std::string& body = "") {
    core::AdminRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    return router.dispatch(r, true);
  }
  // impctl's side: the request a command line makes.
  core::CommandCall resolve(const std::vector<std::string>& argv, const core::CommandRegistry::SecretReader& read = {}) {
    auto line = commands.lex(argv, {});
    return read ? commands.resolve(line, read) : commands.resolve(line);
  }
  std::string printed(const core::CommandCall& call, const core::AdminResponse& resp) {
    std::ostringstream out;
    call.command->printer()(out, Poco::JSON::Parser().parse(resp.body).extract<Obj::Ptr>(), resp.status);
    return out.str();
  }
};

Obj::Ptr parse(const std::string& s) { return Poco::JSON::Parser().parse(s).extract<Obj::Ptr>(); }

}  // namespace

TEST_CASE_FIXTURE(Node, "impctl presence settings show|set: PS-1, PS-2 changed live through the generation") {
  auto show = resolve({"presence", "settings", "show"});
  CHECK(show.method == "GET");
  CHECK(show.target == "/api/v1/presence/settings");
  auto r = send(show.method, show.target);
  REQUIRE(r.status == 200);
  CHECK(printed(show, r) ==
        "maximum contacts per user   200\nmaximum watchers per user   200\nauto-approve subscriptions  on\n"
        "offline messages per user   1000\n");

  auto set = resolve({"presence", "settings", "set", "--max-contacts", "0", "--auto-approve", "off", "--offline-quota", "50"});
  CHECK(set.method == "PUT");
  CHECK(parse(set.body)->getValue<Poco::Int64>("max_contacts") == 0);
  CHECK_FALSE(parse(set.body)->getValue<bool>("auto_approve"));
  auto gen = generation();
  r = send(set.method, set.target, set.body);
  REQUIRE(r.status == 200);
  CHECK(generation() == gen + 1);
  CHECK(printed(set, r) ==
        "maximum contacts per user   no limit\nmaximum watchers per user   200\nauto-approve subscriptions  off\n"
        "offline messages per user   50\nchanged (generation " + std::to_string(gen + 1) + ")\n");
  CHECK_FALSE(ctx.settings->get().autoApprove);

  CHECK_THROWS_AS(resolve({"presence", "settings", "set"}), core::CommandUsageError);
  r = send("PUT", "/api/v1/presence/settings", R"({"max_watchers": -1})");
  CHECK(r.status == 400);
  CHECK(r.body.find("max_watchers") != std::string::npos);
  r = send("PUT", "/api/v1/presence/settings", R"({"max_watchers": 1000001})");
  CHECK(r.status == 400);
  CHECK(generation() == gen + 1);
}

TEST_CASE_FIXTURE(Node, "impctl user roster: items, subscription, groups, pending") {
  RosterStore rosters(db);
  rosters.setItem("ann", "carol@example.org", "Carol", {"Work", "Friends"}, 0);
  SubscriptionState s;
  s.subscription = Subscription::To;
  s.pendingIn = true;
  rosters.setSubscription("ann", "carol@example.org", s, std::string("hello"), PresenceSettings{});
  rosters.setItem("ann", "dave@example.org", "", {}, 0);
  SubscriptionState stranger;
  stranger.pendingIn = true;
  rosters.setSubscription("ann", "eve@example.org", stranger, std::string("please add me"), PresenceSettings{});

  auto call = resolve({"user", "roster", "ann"});
  CHECK(call.target == "/api/v1/users/ann/roster");
  auto r = send(call.method, call.target);
  REQUIRE(r.status == 200);
  CHECK(printed(call, r) ==
        "CONTACT            NAME   SUBSCRIPTION  PENDING  GROUPS\n"
        "carol@example.org  Carol  to            in       Friends,Work\n"
        "dave@example.org   -      none          -        -\n"
        "roster version 4, 2 contact(s)\n"
        "Pending requests:\n"
        "FROM             STATUS\n"
        "eve@example.org  please add me\n");
  r = send("GET", "/api/v1/users/nobody/roster");
  CHECK(r.status == 404);
  CHECK(r.body.find("no user 'nobody'") != std::string::npos);
}

TEST_CASE_FIXTURE(Node, "impctl user passwd: the password is a secret read by the client, never a command-line word") {
  // Without a reader (a client that cannot prompt) the command is refused.
  CHECK_THROWS_AS(resolve({"user", "passwd", "ann"}), core::CommandUsageError);
  // On the command line it is an unknown option.
  CHECK_THROWS_AS(resolve({"user", "passwd", "ann", "--password", "pencil"}, [](const core::Arg&) { return "x"; }),
                  core::CommandUsageError);
  std::string asked;
  auto call = resolve({"user", "passwd", "ann", "--iterations", "5000"}, [&](const core::Arg& a) {
    asked = a.promptText();
    return std::string("pencil");
  });
  CHECK(asked == "password");
  CHECK(call.method == "PUT");
  CHECK(call.target == "/api/v1/users/ann/password");
  CHECK(parse(call.body)->getValue<std::string>("password") == "pencil");
  auto r = send(call.method, call.target, call.body);
  REQUIRE(r.status == 200);
  CHECK(printed(call, r) == "password of ann set (SCRAM-SHA-1,SCRAM-SHA-256, 5000 iterations)\n");
  CHECK(r.body.find("pencil") == std::string::npos);

  // Only salted keys are stored, and they verify the password.
  CredentialStore creds(db);
  for (auto h : {xmpp::ScramHash::Sha1, xmpp::ScramHash::Sha256}) {
    auto c = creds.get("ann", h);
    REQUIRE(c);
    CHECK(c->iterations == 5000);
    CHECK(c->salt.size() == 16);
    CHECK(xmpp::deriveScramCredential(h, "pencil", 5000, c->salt) == *c);
    CHECK_FALSE(xmpp::deriveScramCredential(h, "pencil2", 5000, c->salt) == *c);
  }
  CHECK(creds.get("ann", xmpp::ScramHash::Sha1)->salt != creds.get("ann", xmpp::ScramHash::Sha256)->salt);
  auto rows = db.query("SELECT * FROM xcp_user_credential");
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (const auto& col : rows.columns) CHECK(rows.str(i, col).find("pencil") == std::string::npos);

  // Refusals: weak iteration count, bad password, unknown user.
  r = send("PUT", "/api/v1/users/ann/password", R"({"password": "pencil", "iterations": 1000})");
  CHECK(r.status == 400);
  r = send("PUT", "/api/v1/users/ann/password", R"({"password": "bell\u0007"})");
  CHECK(r.status == 400);
  CHECK(r.body.find("SASLprep") != std::string::npos);
  r = send("PUT", "/api/v1/users/ann/password", R"({})");
  CHECK(r.status == 400);
  r = send("PUT", "/api/v1/users/nobody/password", R"({"password": "pencil"})");
  CHECK(r.status == 404);
  CHECK(creds.get("ann", xmpp::ScramHash::Sha1)->iterations == 5000);  // unchanged by the refusals
}

TEST_CASE_FIXTURE(Node, "the OpenAPI document marks the password as a write-only secret; help and impctl(8) say how it is read") {
  auto doc = commands.openApi("9.9.9");
  std::ostringstream s;
  doc->stringify(s);
  CHECK(s.str().find(R"("format":"password")") != std::string::npos);
  CHECK(s.str().find(R"("writeOnly":true)") != std::string::npos);
  const core::Command* passwd = nullptr;
  for (const auto& c : commands.commands())
    if (c.wordsText() == "user passwd") passwd = &c;
  REQUIRE(passwd);
  auto help = commands.helpFor(*passwd);
  CHECK(help.find("(password)") != std::string::npos);
  CHECK(help.find("read from the terminal without echo, twice") != std::string::npos);
  CHECK(commands.manCommands().find("never from the command line") != std::string::npos);
  // A secret cannot also be a command-line option.
  core::Command bad("x y", "PUT", "/x");
  CHECK_THROWS_AS(bad.arg(core::Arg::string("secret").option("secret", "S").secret("secret")), std::logic_error);
}
