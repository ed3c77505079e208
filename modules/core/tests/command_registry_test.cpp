// The command registry (issue 15 deliverable 4): command-line parsing, the
// typed checks of the routes it binds, its errors and its OpenAPI document.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <doctest/doctest.h>
#include <imp/core/command_registry.h>

#include <sstream>

using namespace imp::core;
using Obj = Poco::JSON::Object;

namespace {

// What the handlers saw.
struct Shelf {
  std::vector<std::string> calls;
};

void declare(CommandRegistry& reg) {
  const auto enabled = Arg::boolean("enabled");
  const auto tags = Arg::strings("tags").invalid("must be a list of tags");
  const auto node = Arg::string("node").inQuery().option("node", "ID").help("another node");
  reg.add(Command("thing add", "POST", "/api/v1/things")
              .arg(Arg::string("name").required().positional("NAME").help("the thing"))
              .arg(Arg::integer("size", 1, 10).option("size", "N").help("1..10"))
              .arg(Arg::enumeration("colour", {"red", "GREEN"}).label("colour").option("colour", "").help("its colour"))
              .flag("on", enabled, true, "switch it on")
              .flag("off", enabled, false, "switch it off")
              .arg(tags.option("tag", "T").help("a tag (repeatable)"))
              .flag("clear-tags", tags, std::vector<std::string>{}, "no tags")
              .arg(Arg::boolean("shiny").option("shiny", "on|off").help("shiny or not"))
              .arg(Arg::string("owner").required().cliRequired().option("owner", "WHO").help("who owns it"))
              .help("Add a thing.")
              .describe("A longer text.\n\nIn two paragraphs.")
              .example("thing add box --owner ann", "a box")
              .print([](std::ostream& out, const Obj::Ptr& o, int status) { out << o->getValue<std::string>("name") << " " << status; })
              .handler<Shelf>([](Shelf& s, const CommandArgs& a) {
                std::ostringstream call;
                call << a.at("name") << " size=" << a.integer("size").value_or(0) << " colour=" << a.str("colour").value_or("-")
                     << " enabled=" << (a.boolean("enabled") ? (*a.boolean("enabled") ? "true" : "false") : "-")
                     << " tags=" << (a.strings("tags") ? a.strings("tags")->size() : 99);
                s.calls.push_back(call.str());
                Obj::Ptr o = new Obj;
                o->set("name", a.at("name"));
                return AdminResponse::json(o, 201);
              }));
  reg.add(Command("thing set", "PUT", "/api/v1/things/{id}")
              .arg(Arg::integer("id", 0, 1000).inPath().label("thing id").invalid("is not a number").positional("ID"))
              .arg(Arg::integer("size", 1, 10).option("size", "N"))
              .arg(node)
              .needsOneOption()
              .help("Change a thing.")
              .handler<Shelf>([](Shelf& s, const CommandArgs& a) {
                s.calls.push_back("set " + std::to_string(*a.integer("id")) + " node=" + a.str("node").value_or("-"));
                return AdminResponse::json(new Obj);
              }));
  reg.add(Command("thing enable", "PUT", "/api/v1/things/{id}")
              .arg(Arg::integer("id", 0, 1000).inPath().label("thing id").invalid("is not a number").positional("ID"))
              .fixed(enabled, true)
              .help("Enable a thing."));
  reg.add(Command("thing list", "GET", "/api/v1/things").arg(node).help("List things.").handler<Shelf>([](Shelf&, const CommandArgs&) {
    return AdminResponse::json(new Obj);
  }));
  reg.add(Command("thing list", "GET", "/api/v1/all-things")
              .selectedBy("everywhere", "on every node")
              .help("List things everywhere.")
              .handler<Shelf>([](Shelf&, const CommandArgs&) { return AdminResponse::json(new Obj); }));
}

const std::vector<GlobalOption> kGlobals = {{"json", 0, false, "", "raw"}, {"config", 'c', true, "PATH", "conf"}};

CommandCall resolve(const CommandRegistry& reg, std::vector<std::string> argv) {
  return reg.resolve(reg.lex(argv, kGlobals));
}

std::string usageError(const CommandRegistry& reg, std::vector<std::string> argv) {
  try {
    resolve(reg, argv);
  } catch (const CommandUsageError& e) {
    return e.what();
  }
  return "(accepted)";
}

Obj::Ptr parse(const std::string& s) { return Poco::JSON::Parser().parse(s).extract<Obj::Ptr>(); }

AdminResponse send(const AdminRouter& router, const std::string& method, const std::string& path, const std::string& body,
                   std::map<std::string, std::string> query = {}) {
  AdminRequest r;
  r.method = method;
  r.path = path;
  r.body = body;
  r.query = std::move(query);
  return router.dispatch(r, true);
}

}  // namespace

TEST_CASE("impctl command lines become one typed request") {
  CommandRegistry reg;
  declare(reg);
  auto c = resolve(reg, {"--json", "thing", "add", "box", "--owner", "ann", "--size", "3", "--colour", "red", "--on",
                         "--tag", "a", "--tag=b", "-c", "/x.conf", "--shiny", "off"});
  CHECK(c.command->wordsText() == "thing add");
  CHECK(c.method == "POST");
  CHECK(c.target == "/api/v1/things");
  auto body = parse(c.body);
  CHECK(body->getValue<std::string>("name") == "box");
  CHECK(body->getValue<std::string>("owner") == "ann");
  CHECK(body->getValue<int>("size") == 3);
  CHECK(body->getValue<std::string>("colour") == "red");
  CHECK(body->getValue<bool>("enabled"));
  CHECK(body->getValue<bool>("shiny") == false);
  CHECK(body->getArray("tags")->size() == 2);
  auto line = reg.lex({"--json", "thing", "add", "-c", "/x.conf"}, kGlobals);
  CHECK(line.globals.at("config") == "/x.conf");
  CHECK(line.globals.count("json") == 1);

  // A number that is not one travels as text, so the server names it.
  CHECK(parse(resolve(reg, {"thing", "add", "b", "--owner", "x", "--size", "3x"}).body)->getValue<std::string>("size") == "3x");
  // Path and query fields, encoded; fixed values; the selector picks the form.
  c = resolve(reg, {"thing", "set", "7", "--size", "2", "--node", "a b&c"});
  CHECK(c.method == "PUT");
  CHECK(c.target == "/api/v1/things/7?node=a%20b%26c");
  c = resolve(reg, {"thing", "enable", "7"});
  CHECK(parse(c.body)->getValue<bool>("enabled"));
  CHECK(resolve(reg, {"thing", "list"}).target == "/api/v1/things");
  CHECK(resolve(reg, {"thing", "list", "--everywhere"}).target == "/api/v1/all-things");
  // Unique prefixes of option names are accepted.
  CHECK(parse(resolve(reg, {"thing", "add", "b", "--own", "x"}).body)->getValue<std::string>("owner") == "x");
}

TEST_CASE("impctl usage errors name what is wrong") {
  CommandRegistry reg;
  declare(reg);
  CHECK(usageError(reg, {"frobnicate"}) == "unknown command 'frobnicate'");
  CHECK(usageError(reg, {"thing", "nope"}).find("usage: impctl thing add NAME") == 0);
  CHECK(usageError(reg, {"thing", "add", "--owner", "x"}).find("usage: impctl thing add NAME [--size N]") == 0);
  CHECK(usageError(reg, {"thing", "list", "--size", "2"}) == "--size does not apply to 'thing'");
  CHECK(usageError(reg, {"thing", "add", "b", "--owner", "x", "--on", "--off"}) == "--on and --off exclude each other");
  CHECK(usageError(reg, {"thing", "add", "b", "--owner", "x", "--clear-tags", "--tag", "t"}) ==
        "--tag and --clear-tags exclude each other");
  CHECK(usageError(reg, {"thing", "add", "b", "--owner", "x", "--shiny", "maybe"}) == "--shiny takes on or off");
  CHECK(usageError(reg, {"thing", "add", "b"}) == "thing add needs --owner");
  CHECK(usageError(reg, {"thing", "set", "1", "--node", "n"}) == "thing set needs --size");
  CHECK(usageError(reg, {"thing", "add", "b", "--frob"}) == "unrecognised option '--frob'");
  CHECK(usageError(reg, {"thing", "add", "b", "--size"}) == "the required argument for option '--size' is missing");
  CHECK(usageError(reg, {"thing", "add", "b", "--owner", "x", "--owner", "y"}) ==
        "option '--owner' cannot be specified more than once");
  CHECK(usageError(reg, {"thing", "add", "b", "--on=yes"}) == "option '--on' does not take any arguments");
}

TEST_CASE("usage lines, help and the man page come from the declaration") {
  CommandRegistry reg;
  declare(reg);
  const auto& add = reg.commands().front();
  CHECK(add.usage() ==
        "thing add NAME [--size N] [--colour red|GREEN] [--on|--off] [--tag T]... [--clear-tags] [--shiny on|off] "
        "--owner WHO");
  CHECK(reg.commands()[4].usage() == "thing list --everywhere");
  auto help = reg.helpFor(add);
  CHECK(help.find("Add a thing.") != std::string::npos);
  CHECK(help.find("--owner WHO") != std::string::npos);
  CHECK(help.find("impctl thing add box --owner ann") != std::string::npos);
  CHECK(help.find("HTTP: POST /api/v1/things") != std::string::npos);
  auto man = reg.manCommands();
  CHECK(man.find(".SS thing\n") != std::string::npos);
  CHECK(man.find(".TP\n\\fBthing add\\fR \\fINAME\\fR") != std::string::npos);
  CHECK(man.find("\\fB\\-\\-owner\\fR \\fIWHO\\fR") != std::string::npos);
  auto bash = reg.bashCompletion(kGlobals);
  CHECK(bash.find("complete -F _impctl impctl") != std::string::npos);
  CHECK(bash.find("--colour) COMPREPLY=($(compgen -W 'GREEN red'") != std::string::npos);
  CHECK(bash.find("'thing') next='add enable list set'") != std::string::npos);
}

TEST_CASE("bound routes check every field before the handler runs") {
  CommandRegistry reg;
  declare(reg);
  Shelf shelf;
  reg.provide(shelf);
  AdminRouter router;
  reg.bind(router, "1.2.3");

  auto r = send(router, "POST", "/api/v1/things", R"({"name":"box","owner":"ann","size":4,"colour":"green","tags":[]})");
  CHECK(r.status == 201);
  REQUIRE(shelf.calls.size() == 1);
  CHECK(shelf.calls[0] == "box size=4 colour=GREEN enabled=- tags=0");

  struct Bad {
    std::string body, field, message;
  };
  for (const auto& b : std::vector<Bad>{
           {R"({"name":"b","owner":"a","colour":"blue"})", "colour", "colour 'blue' is not red or GREEN"},
           {R"({"name":"b","owner":"a","size":11})", "size", "size 11 is out of range 1..10"},
           {R"({"name":"b","owner":"a","size":"4"})", "size", "field 'size' must be a whole number ('4')"},
           {R"({"name":"b","owner":"a","enabled":"yes"})", "enabled", "field 'enabled' must be true or false"},
           {R"({"name":"b","owner":"a","tags":"x"})", "tags", "field 'tags' must be a list of tags"},
           {R"({"name":"b","owner":"a","tags":[1]})", "tags", "field 'tags' must be a list of tags"},
           {R"({"owner":"a"})", "name", "field 'name' is required"},
           {R"({"name":"b","owner":"a","weight":1})", "weight", "unknown field 'weight'; valid fields: name, size, "
                                                               "colour, enabled, tags, shiny, owner"},
       }) {
    auto res = send(router, "POST", "/api/v1/things", b.body);
    CHECK_MESSAGE(res.status == 400, b.body);
    auto err = parse(res.body)->getObject("error");
    CHECK(err->getValue<std::string>("field") == b.field);
    CHECK(err->getValue<std::string>("message") == b.message);
  }
  CHECK(send(router, "POST", "/api/v1/things", "[1]").status == 400);
  CHECK(shelf.calls.size() == 1);

  // Path and query values are typed as well; unknown query parameters are refused.
  r = send(router, "PUT", "/api/v1/things/12", R"({"enabled":true})", {{"node", "n2"}});
  CHECK(r.status == 200);
  CHECK(shelf.calls.back() == "set 12 node=n2");
  r = send(router, "PUT", "/api/v1/things/twelve", "{}");
  CHECK(r.status == 400);
  CHECK(parse(r.body)->getObject("error")->getValue<std::string>("message") == "thing id 'twelve' is not a number");
  r = send(router, "GET", "/api/v1/things", "", {{"nod", "x"}});
  CHECK(r.status == 400);
  CHECK(parse(r.body)->getObject("error")->getValue<std::string>("field") == "nod");
  CHECK(shelf.calls.size() == 2);
}

TEST_CASE("the OpenAPI document describes every route") {
  CommandRegistry reg;
  declare(reg);
  auto doc = reg.openApi("1.2.3");
  CHECK(doc->getValue<std::string>("openapi") == "3.0.3");
  CHECK(doc->getObject("info")->getValue<std::string>("version") == "1.2.3");
  auto paths = doc->getObject("paths");
  auto post = paths->getObject("/api/v1/things")->getObject("post");
  CHECK(post->getValue<std::string>("operationId") == "thing-add");
  CHECK(post->getArray("x-impctl-words")->getElement<std::string>(0) == "thing add");
  auto schema = post->getObject("requestBody")->getObject("content")->getObject("application/json")->getObject("schema");
  CHECK(schema->getValue<bool>("additionalProperties") == false);
  CHECK(schema->getObject("properties")->getObject("colour")->getArray("enum")->size() == 2);
  CHECK(schema->getObject("properties")->getObject("size")->getValue<int>("maximum") == 10);
  CHECK(schema->getArray("required")->size() == 2);
  // Two commands on one route: one operation naming both.
  auto put = paths->getObject("/api/v1/things/{id}")->getObject("put");
  CHECK(put->getArray("x-impctl-words")->size() == 2);
  auto params = put->getArray("parameters");
  REQUIRE(params->size() == 2);
  CHECK(params->getObject(0)->getValue<std::string>("in") == "path");
  CHECK(params->getObject(1)->getValue<std::string>("in") == "query");
  CHECK(paths->getObject("/api/v1/things")->has("get"));
  CHECK(paths->getObject("/api/v1/all-things")->getObject("get")->getValue<std::string>("operationId") ==
        "thing-list-everywhere");

  // The document is served by the bound router.
  Shelf shelf;
  reg.provide(shelf);
  AdminRouter router;
  reg.bind(router, "1.2.3");
  auto r = send(router, "GET", "/api/v1/commands", "");
  CHECK(r.status == 200);
  CHECK(parse(r.body)->getObject("paths")->size() == 3);
}

TEST_CASE("a command's one-letter alias: -f as --follow, in usage, help and the man page") {
  CommandRegistry reg;
  declare(reg);
  reg.add(Command("thing watch", "GET", "/api/v1/things/{id}/watch")
              .arg(Arg::string("id").inPath().positional("ID"))
              .arg(Arg::integer("lines", 1, 100).inQuery().option("lines", "N").help("how many"))
              .alias('n')
              .flag("follow", Arg::boolean("follow").onClient(), true, "keep going")
              .alias('f')
              .help("Watch a thing."));
  auto c = resolve(reg, {"thing", "watch", "7", "-f", "-n", "5"});
  CHECK(c.target == "/api/v1/things/7/watch?lines=5");
  CHECK(c.local.at("follow") == "true");
  CHECK(resolve(reg, {"thing", "watch", "7", "-n5"}).target == "/api/v1/things/7/watch?lines=5");
  CHECK(resolve(reg, {"thing", "watch", "7", "--follow"}).local.at("follow") == "true");
  CHECK(resolve(reg, {"thing", "watch", "7"}).local.count("follow") == 0);
  // the global -c is still the global; an unknown letter and a value given to a switch are refused
  CHECK(reg.lex({"-c", "/x.conf", "thing", "watch", "7", "-f"}, kGlobals).globals.at("config") == "/x.conf");
  CHECK_THROWS_AS(reg.lex({"thing", "watch", "7", "-q"}, kGlobals), CommandUsageError);
  CHECK_THROWS_AS(reg.lex({"thing", "watch", "7", "-fx"}, kGlobals), CommandUsageError);
  auto found = reg.matching({"thing", "watch"});
  REQUIRE(found.size() == 1);
  const auto* w = found.front();
  CHECK(w->usage() == "thing watch ID [-n|--lines N] [-f|--follow]");
  CHECK(reg.helpFor(*w).find("-f|--follow") != std::string::npos);
  // one letter, one option name across the commands
  CHECK_THROWS_AS(reg.add(Command("thing peek", "GET", "/api/v1/peek")
                              .flag("fast", Arg::boolean("fast").onClient(), true, "quickly")
                              .alias('f')),
                  std::logic_error);
  CHECK_THROWS_AS(Command("x", "GET", "/x").arg(Arg::string("id").inPath().positional("ID")).alias('i'), std::logic_error);
}

TEST_CASE("declaration mistakes are refused") {
  CommandRegistry reg;
  declare(reg);
  CHECK_THROWS_AS(reg.add(Command("thing add", "POST", "/api/v1/x").arg(Arg::string("name").required().positional("N"))),
                  std::logic_error);
  CHECK_THROWS_AS(reg.add(Command("thing other", "PUT", "/api/v1/things/{id}").arg(Arg::string("size"))), std::logic_error);
  CHECK_THROWS_AS(reg.add(Command("other", "GET", "/o").arg(Arg::string("x").option("on", "V"))), std::logic_error);
  CHECK_THROWS_AS(Command("x", "GET", "/x").arg(Arg::string("id").inPath()), std::logic_error);
  // A handler whose object was not provided, and a route without a handler.
  AdminRouter router;
  CHECK_THROWS_AS(reg.bind(router, "1"), std::logic_error);
  CommandRegistry bare;
  bare.add(Command("lonely", "GET", "/api/v1/lonely").help("no handler"));
  CHECK_THROWS_AS(bare.bind(router, "1"), std::logic_error);
}
