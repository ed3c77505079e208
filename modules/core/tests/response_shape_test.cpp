// Response shapes (issue 15 deliverable 4): an answer's JSON fields declared
// once; the server's Reply, impctl's text and the OpenAPI response schema all
// come from the declaration. Expected texts and JSON below are written out by
// hand.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <doctest/doctest.h>
#include <imp/core/command_registry.h>
#include <imp/core/response_shape.h>

#include <sstream>

using namespace imp::core;
using Obj = Poco::JSON::Object;

namespace {

struct FlagShape : Shape {
  FlagShape() : Shape("Flag", Layout::Table) {}
  const Field<std::string> id = text("id").column("ID");
  const Field<std::string> label = text("label").column("LABEL").orElse("-");
};

struct ThingShape : Shape {
  ThingShape() : Shape("Thing", Layout::Table) {}
  const Field<std::string> name = text("name").column("NAME").describe("the thing's name");
  const Field<bool> shiny = flag("shiny").column("SHINY").shows("yes", "no");
  const Field<std::int64_t> age = number("age_s").column("AGE").duration();
  const Field<std::int64_t> size = number("size").column("SIZE");
  const Field<std::vector<std::string>> tags = texts("tags").column("TAGS");
  const Field<std::string> owner = text("owner").optional().column("OWNER").orElse("-");
  const ListField flags = list("flags", shape<FlagShape>());
};

struct ShelfShape : Shape {
  ShelfShape() : Shape("Shelf", Layout::Lines, true) {}
  const Field<std::string> room = text("room").line("room");
  const Field<bool> open = flag("open").line("open to the public").shows("on", "off");
  const Field<std::vector<std::string>> keys = texts("keys").line("keys").orElse("none");
  const ListField things = list("things", shape<ThingShape>()).ifEmpty("no thing");
  const ObjectField best = object("best", shape<FlagShape>()).optional();
};

struct StatsShape : Shape {
  StatsShape() : Shape("Stats", Layout::Lines) {}
  const Field<std::int64_t> requests = number("requests").line();
  const Field<std::int64_t> loops = number("loops").line();
};

std::string text(const Obj::Ptr& o) {
  std::ostringstream s;
  o->stringify(s);
  return s.str();
}

Obj::Ptr parse(const std::string& s) { return Poco::JSON::Parser().parse(s).extract<Obj::Ptr>(); }

Reply thing(const std::string& name, bool shiny, long long age, std::vector<std::string> tags) {
  const auto& s = shape<ThingShape>();
  Reply r(s);
  r.set(s.name, name).set(s.shiny, shiny).set(s.age, age).set(s.size, std::uint64_t{3}).set(s.tags, tags);
  Reply f(shape<FlagShape>());
  f.set(shape<FlagShape>().id, "sip-tcp").set(shape<FlagShape>().label, "SIP TCP trace");
  r.set(s.flags, std::vector<Reply>{f});
  return r;
}

}  // namespace

TEST_CASE("a reply holds the declared fields with their JSON types") {
  auto o = thing("box", true, 90061, {"a", "b"}).json();
  // Poco orders the keys of an object by name.
  CHECK(text(o) ==
        R"({"age_s":90061,"flags":[{"id":"sip-tcp","label":"SIP TCP trace"}],"name":"box","shiny":true,"size":3,"tags":["a","b"]})");
  const auto& s = shape<ThingShape>();
  CHECK(s.name.get(o) == "box");
  CHECK(s.age.get(o) == 90061);
  CHECK(s.shiny.get(o));
  CHECK(s.tags.get(o) == std::vector<std::string>{"a", "b"});
  CHECK(s.flags.get(o).size() == 1);
  CHECK_FALSE(s.owner.has(o));
  CHECK_THROWS_AS(s.owner.get(o), std::logic_error);
  CHECK(s.owner.shown(o) == "-");
  CHECK(s.age.shown(o) == "1d1h1m1s");
  CHECK(s.shiny.shown(o) == "yes");
  CHECK(s.size.text(o) == "3");
}

TEST_CASE("a reply refuses a field it does not declare, a nested reply of another shape and a missing field") {
  const auto& s = shape<ThingShape>();
  Reply other(shape<FlagShape>());
  CHECK_THROWS_WITH_AS(other.set(s.name, "x"), "field 'name' of shape Thing set on a reply of shape Flag",
                       std::logic_error);
  Reply r(s);
  r.set(s.name, "box");
  CHECK_THROWS_WITH_AS(r.json(), "reply of shape Thing lacks field 'shiny'", std::logic_error);
  CHECK_THROWS_WITH_AS(r.set(s.flags, std::vector<Reply>{Reply(s)}), "field 'flags' lists Flag, not Thing",
                       std::logic_error);
  Reply shelf(shape<ShelfShape>());
  CHECK_THROWS_WITH_AS(shelf.set(shape<ShelfShape>().best, Reply(s)), "field 'best' holds a Flag, not a Thing", std::logic_error);
}

TEST_CASE("a shape refuses a field declared twice") {
  struct Twice : Shape {
    Twice() : Shape("Twice", Layout::Table) {}
    const Field<std::string> a = text("a");
    const Field<std::int64_t> b = number("a");
  };
  CHECK_THROWS_WITH_AS(Twice(), "shape Twice declares field 'a' twice", std::logic_error);
}

TEST_CASE("the Table layout prints the answer as one row under the declared column headers") {
  std::ostringstream out;
  shape<ThingShape>().print(out, thing("box", false, 61, {}).json());
  CHECK(out.str() ==
        "NAME  SHINY  AGE   SIZE  TAGS  OWNER\n"
        "box   no     1m1s  3     -     -\n");
}

TEST_CASE("the Lines layout prints aligned labels, then each list as its element's table") {
  const auto& s = shape<ShelfShape>();
  Reply r(s);
  r.set(s.room, "hall").set(s.open, false).set(s.keys, std::vector<std::string>{});
  r.set(s.things, std::vector<Reply>{thing("box", true, 0, {"x"}), thing("crate", false, 3600, {"y", "z"})});
  std::ostringstream out;
  s.print(out, r.json());
  CHECK(out.str() ==
        "room:                hall\n"
        "open to the public:  off\n"
        "keys:                none\n"
        "NAME   SHINY  AGE     SIZE  TAGS  OWNER\n"
        "box    yes    -       3     x     -\n"
        "crate  no     1h0m0s  3     y,z   -\n");

  r.set(s.things, std::vector<Reply>{});
  std::ostringstream empty;
  s.print(empty, r.json());
  CHECK(empty.str() ==
        "room:                hall\n"
        "open to the public:  off\n"
        "keys:                none\n"
        "no thing\n");

  Reply st(shape<StatsShape>());
  st.set(shape<StatsShape>().requests, 12).set(shape<StatsShape>().loops, 0);
  std::ostringstream plain;
  shape<StatsShape>().print(plain, st.json());
  CHECK(plain.str() == "requests: 12\nloops: 0\n");
}

TEST_CASE("a command's printer and its OpenAPI response schema come from returns()") {
  CommandRegistry reg;
  reg.add(Command("shelf show", "GET", "/api/v1/shelf").help("Show the shelf.").returns(shape<StatsShape>()));
  std::ostringstream out;
  reg.commands().front().printer()(out, parse(R"({"requests": 7, "loops": 1})"), 200);
  CHECK(out.str() == "requests: 7\nloops: 1\n");

  reg.add(Command("thing show", "GET", "/api/v1/things/{name}")
              .arg(Arg::string("name").inPath().positional("NAME"))
              .help("Show a thing.")
              .returns(shape<ThingShape>()));
  auto doc = reg.openApi("1.0");
  auto schema = doc->getObject("paths")
                    ->getObject("/api/v1/things/{name}")
                    ->getObject("get")
                    ->getObject("responses")
                    ->getObject("2XX")
                    ->getObject("content")
                    ->getObject("application/json")
                    ->getObject("schema");
  CHECK(text(schema) ==
        R"({"properties":{"age_s":{"format":"int64","type":"integer"},)"
        R"("flags":{"items":{"properties":{"id":{"type":"string"},"label":{"type":"string"}},)"
        R"("required":["id","label"],"title":"Flag","type":"object"},"type":"array"},)"
        R"("name":{"description":"the thing's name","type":"string"},"owner":{"type":"string"},)"
        R"("shiny":{"type":"boolean"},"size":{"format":"int64","type":"integer"},)"
        R"("tags":{"items":{"type":"string"},"type":"array"}},)"
        R"("required":["name","shiny","age_s","size","tags","flags"],"title":"Thing","type":"object"})");
}
