#include "imp/core/command_registry.h"

#include <Poco/JSON/Array.h>
#include <Poco/URI.h>

#include <algorithm>
#include <cctype>
#include <iomanip>
#include <limits>
#include <ostream>
#include <set>
#include <sstream>

#include "imp/core/admin_json.h"

namespace imp::core {

using Obj = Poco::JSON::Object;
using Arr = Poco::JSON::Array;

namespace {

std::vector<std::string> splitWords(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// "a", "a or b", "a, b or c".
std::string joinOr(const std::vector<std::string>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += i + 1 == v.size() ? " or " : ", ";
    out += v[i];
  }
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A whole number as impctl and the path/query checks read it.
std::optional<std::int64_t> wholeNumber(const std::string& t) {
  bool ok = !t.empty() && t.size() <= 18;
  for (std::size_t i = 0; i < t.size() && ok; ++i)
    ok = std::isdigit(static_cast<unsigned char>(t[i])) || (i == 0 && t[i] == '-' && t.size() > 1);
  if (!ok) return std::nullopt;
  return static_cast<std::int64_t>(std::stoll(t));
}

std::string pathPart(const std::string& s) {
  std::string enc;
  Poco::URI::encode(s, "/?#&=%", enc);
  return enc;
}

std::string queryPart(const std::string& s) {
  std::string enc;
  Poco::URI::encode(s, "&=?#/+ %", enc);
  return enc;
}

Poco::Dynamic::Var toJson(const ArgValue& v) {
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  if (auto* i = std::get_if<std::int64_t>(&v)) return static_cast<Poco::Int64>(*i);
  if (auto* b = std::get_if<bool>(&v)) return *b;
  Arr::Ptr a = new Arr;
  for (const auto& s : std::get<std::vector<std::string>>(v)) a->add(s);
  return a;
}

// ---- checks shared by every route (deliverable 4.2a) ----

[[noreturn]] void refuseValue(const Arg& a, const std::string& given, const std::string& tail) {
  json::badField(a.field(), a.labelText() + " '" + given + "' " + tail);
}

std::int64_t checkRange(const Arg& a, std::int64_t n) {
  if (n < a.min() || n > a.max())
    json::badField(a.field(), a.labelText() + " " + std::to_string(n) + " is out of range " + std::to_string(a.min()) +
                                  ".." + std::to_string(a.max()));
  return n;
}

std::string checkEnum(const Arg& a, const std::string& given) {
  for (const auto& v : a.values())
    if (lower(v) == lower(given)) return v;
  refuseValue(a, given, a.invalidTail().empty() ? "is not " + joinOr(a.values()) : a.invalidTail());
}

// A path or query value (text on the wire).
ArgValue fromText(const Arg& a, const std::string& text) {
  switch (a.type()) {
    case Arg::Type::String:
      return text;
    case Arg::Type::Int: {
      auto n = wholeNumber(text);
      if (!n) {
        if (!a.invalidTail().empty()) refuseValue(a, text, a.invalidTail());
        json::badField(a.field(), "field '" + a.field() + "' must be a whole number ('" + text + "')");
      }
      return checkRange(a, *n);
    }
    case Arg::Type::Bool:
      if (text != "true" && text != "false") json::badField(a.field(), "field '" + a.field() + "' must be true or false");
      return text == "true";
    case Arg::Type::Enum:
      return checkEnum(a, text);
    case Arg::Type::Strings:
      return std::vector<std::string>{text};
  }
  return text;
}

// A body member; nullopt when absent or null.
std::optional<ArgValue> fromJson(const Arg& a, const Obj::Ptr& body) {
  const auto& f = a.field();
  switch (a.type()) {
    case Arg::Type::String:
      if (auto s = json::optString(body, f)) return ArgValue(*s);
      return std::nullopt;
    case Arg::Type::Int:
      if (auto n = json::optInt(body, f)) return ArgValue(checkRange(a, *n));
      return std::nullopt;
    case Arg::Type::Bool:
      if (auto b = json::optBool(body, f)) return ArgValue(*b);
      return std::nullopt;
    case Arg::Type::Enum:
      if (auto s = json::optString(body, f)) return ArgValue(checkEnum(a, *s));
      return std::nullopt;
    case Arg::Type::Strings: {
      if (!body->has(f) || body->get(f).isEmpty()) return std::nullopt;
      std::string bad = "field '" + f + "' " + (a.invalidTail().empty() ? "must be a list of strings" : a.invalidTail());
      auto arr = body->getArray(f);
      if (!arr) json::badField(f, bad);
      std::vector<std::string> out;
      for (const auto& v : *arr) {
        if (!v.isString()) json::badField(f, bad);
        out.push_back(v.extract<std::string>());
      }
      return ArgValue(out);
    }
  }
  return std::nullopt;
}

[[noreturn]] void unknownField(const std::string& what, const std::string& name, const std::vector<std::string>& valid) {
  Obj::Ptr d = new Obj;
  d->set("field", name);
  throw AdminError(400, "unknown_field",
                   "unknown " + what + " '" + name + "'; valid " + what + "s: " + (valid.empty() ? "none" : join(valid, ", ")),
                   d);
}

struct Route {
  std::string method, path;
  std::vector<Arg> fields;
  std::vector<const Command*> commands;
};

std::vector<Route> routesOf(const std::vector<Command>& commands) {
  std::vector<Route> routes;
  for (const auto& c : commands) {
    auto it = std::find_if(routes.begin(), routes.end(),
                           [&](const Route& r) { return r.method == c.method() && r.path == c.path(); });
    if (it == routes.end()) {
      routes.push_back({c.method(), c.path(), {}, {}});
      it = routes.end() - 1;
    }
    it->commands.push_back(&c);
    for (const auto& a : c.args())
      if (a.in() != Arg::In::Client &&
          std::none_of(it->fields.begin(), it->fields.end(), [&](const Arg& f) { return f.field() == a.field(); }))
        it->fields.push_back(a);
  }
  return routes;
}

// The command words; forms that share them add their selector or positionals.
std::string operationId(const Command& c, const std::vector<Command>& all) {
  std::vector<std::string> parts = c.words();
  bool shared = std::count_if(all.begin(), all.end(), [&](const Command& o) { return o.words() == c.words(); }) > 1;
  if (!c.selector().empty()) parts.push_back(c.selector());
  for (const auto& item : c.cliItems())
    if (shared && item.kind == Command::CliItem::Kind::Positional) parts.push_back(lower(c.args()[item.arg].metavar()));
  return join(parts, "-");
}

// ---- roff ----
std::string roff(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '-') out += "\\-";
    else if (c == '\\') out += "\\e";
    else out += c;
  }
  return out;
}

std::string roffLine(const std::string& s) {
  auto r = roff(s);
  return (!r.empty() && (r[0] == '.' || r[0] == '\'')) ? "\\&" + r : r;
}

std::string bold(const std::string& s) { return "\\fB" + roff(s) + "\\fR"; }
std::string italic(const std::string& s) { return "\\fI" + roff(s) + "\\fR"; }
// The man page's spelling of an option: bold -x, a bar, bold --name.
std::string boldSpelled(const Command::CliItem& i) {
  return (i.shortName ? bold(std::string("-") + i.shortName) + "|" : std::string()) + bold("--" + i.name);
}

}  // namespace

// ---- Arg ----

Arg Arg::integer(std::string field, std::int64_t min, std::int64_t max) {
  Arg a(std::move(field), Type::Int);
  a.min_ = min;
  a.max_ = max;
  return a;
}

Arg Arg::enumeration(std::string field, std::vector<std::string> values) {
  Arg a(std::move(field), Type::Enum);
  a.values_ = std::move(values);
  return a;
}

Arg Arg::inPath() const {
  Arg a = *this;
  a.in_ = In::Path;
  a.required_ = true;
  return a;
}

Arg Arg::inQuery() const {
  Arg a = *this;
  a.in_ = In::Query;
  return a;
}

Arg Arg::onClient() const {
  Arg a = *this;
  a.in_ = In::Client;
  return a;
}

Arg Arg::required() const {
  Arg a = *this;
  a.required_ = true;
  return a;
}

Arg Arg::label(std::string l) const {
  Arg a = *this;
  a.label_ = std::move(l);
  return a;
}

Arg Arg::invalid(std::string tail) const {
  Arg a = *this;
  a.invalid_ = std::move(tail);
  return a;
}

Arg Arg::help(std::string h) const {
  Arg a = *this;
  a.help_ = std::move(h);
  return a;
}

Arg Arg::positional(std::string metavar) const {
  Arg a = *this;
  a.cli_ = Cli::Positional;
  a.metavar_ = std::move(metavar);
  return a;
}

Arg Arg::option(std::string name, std::string metavar) const {
  Arg a = *this;
  a.cli_ = Cli::Option;
  a.cliName_ = std::move(name);
  a.metavar_ = std::move(metavar);
  return a;
}

Arg Arg::secret(std::string prompt) const {
  Arg a = *this;
  a.secret_ = true;
  a.prompt_ = std::move(prompt);
  return a;
}

Arg Arg::cliRequired() const {
  Arg a = *this;
  a.cliRequired_ = true;
  return a;
}

// ---- CommandArgs ----

namespace {
template <class T>
std::optional<T> typed(const std::map<std::string, ArgValue>& m, const std::string& field) {
  auto it = m.find(field);
  if (it == m.end()) return std::nullopt;
  if (auto* v = std::get_if<T>(&it->second)) return *v;
  throw std::logic_error("command argument '" + field + "' is read with the wrong type");
}
}  // namespace

std::optional<std::string> CommandArgs::str(const std::string& field) const { return typed<std::string>(values_, field); }

const std::string& CommandArgs::at(const std::string& field) const {
  auto it = values_.find(field);
  if (it == values_.end() || !std::holds_alternative<std::string>(it->second))
    throw std::logic_error("command argument '" + field + "' is not a required string");
  return std::get<std::string>(it->second);
}

std::optional<std::int64_t> CommandArgs::integer(const std::string& field) const {
  return typed<std::int64_t>(values_, field);
}

std::optional<bool> CommandArgs::boolean(const std::string& field) const { return typed<bool>(values_, field); }

std::optional<std::vector<std::string>> CommandArgs::strings(const std::string& field) const {
  return typed<std::vector<std::string>>(values_, field);
}

// ---- Command ----

Command::Command(std::string words, std::string method, std::string path)
    : words_(splitWords(words)), method_(std::move(method)), path_(std::move(path)) {
  if (words_.empty()) throw std::logic_error("a command needs words");
}

std::string Command::wordsText() const { return join(words_, " "); }

Command& Command::help(std::string oneLine) {
  help_ = std::move(oneLine);
  return *this;
}

Command& Command::describe(std::string text) {
  description_ = std::move(text);
  return *this;
}

Command& Command::example(std::string commandLine, std::string what) {
  examples_.emplace_back(std::move(commandLine), std::move(what));
  return *this;
}

std::size_t Command::addArg(const Arg& a) {
  for (std::size_t i = 0; i < args_.size(); ++i)
    if (args_[i].field() == a.field()) {
      if (args_[i].type() != a.type() || args_[i].in() != a.in())
        throw std::logic_error("command '" + wordsText() + "': field '" + a.field() + "' declared twice differently");
      return i;
    }
  if (a.in() == Arg::In::Path && path_.find("{" + a.field() + "}") == std::string::npos)
    throw std::logic_error("command '" + wordsText() + "': path " + path_ + " has no {" + a.field() + "}");
  args_.push_back(a);
  return args_.size() - 1;
}

Command& Command::arg(Arg a) {
  if (a.isSecret() && a.cli() != Arg::Cli::None)
    throw std::logic_error("command '" + wordsText() + "': the secret " + a.field() +
                           " cannot be a command-line positional or option");
  auto i = addArg(a);
  if (a.cli() == Arg::Cli::Positional) cli_.push_back({CliItem::Kind::Positional, i, {}, "", a.helpText()});
  if (a.cli() == Arg::Cli::Option) cli_.push_back({CliItem::Kind::Option, i, {}, a.cliName(), a.helpText()});
  return *this;
}

Command& Command::flag(std::string name, const Arg& a, ArgValue value, std::string help) {
  auto i = addArg(a);
  cli_.push_back({CliItem::Kind::Flag, i, std::move(value), std::move(name), std::move(help)});
  return *this;
}

Command& Command::alias(char c) {
  if (cli_.empty() || cli_.back().kind == CliItem::Kind::Positional)
    throw std::logic_error("command '" + wordsText() + "': alias() follows an option or a switch");
  cli_.back().shortName = c;
  return *this;
}

Command& Command::fixed(const Arg& a, ArgValue value) {
  fixed_.emplace_back(addArg(a), std::move(value));
  return *this;
}

Command& Command::selectedBy(std::string name, std::string help) {
  selector_ = std::move(name);
  selectorHelp_ = std::move(help);
  return *this;
}

Command& Command::needsOneOption() {
  needsOne_ = true;
  return *this;
}

Command& Command::client(ClientRunner r) {
  client_ = std::move(r);
  return *this;
}

Command& Command::print(CommandPrinter p) {
  printer_ = std::move(p);
  return *this;
}

Command& Command::returns(const Shape& shape) {
  shape_ = &shape;
  if (!printer_) printer_ = [s = &shape](std::ostream& out, const Obj::Ptr& answer, int) { s->print(out, answer); };
  return *this;
}

std::size_t Command::positionals() const {
  return static_cast<std::size_t>(
      std::count_if(cli_.begin(), cli_.end(), [](const CliItem& i) { return i.kind == CliItem::Kind::Positional; }));
}

namespace {
// How impctl takes a secret, for help and impctl(8).
std::string secretHelp(const Arg& a) {
  return (a.helpText().empty() ? "" : a.helpText() + "; ") + "read from the terminal without echo, twice, or as one line "
         "from stdin when it is not a terminal; never from the command line";
}

// "--name", or "-x|--name" with an alias.
std::string spelled(const Command::CliItem& i) {
  return i.shortName ? std::string("-") + i.shortName + "|--" + i.name : "--" + i.name;
}

std::string metavarOf(const Arg& a) {
  if (!a.metavar().empty()) return a.metavar();
  if (a.type() == Arg::Type::Enum) return join(a.values(), "|");
  if (a.type() == Arg::Type::Bool) return "on|off";
  return "VALUE";
}
}  // namespace

std::string Command::usage() const {
  std::string u = wordsText();
  if (!selector_.empty()) u += " --" + selector_;
  for (const auto& i : cli_)
    if (i.kind == CliItem::Kind::Positional) u += " " + metavarOf(args_[i.arg]);
  for (std::size_t k = 0; k < cli_.size(); ++k) {
    const auto& i = cli_[k];
    const auto& a = args_[i.arg];
    if (i.kind == CliItem::Kind::Option) {
      std::string o = spelled(i) + " " + metavarOf(a);
      u += a.isCliRequired() || a.isRequired() ? " " + o : " [" + o + "]";
      if (a.type() == Arg::Type::Strings) u += "...";
    } else if (i.kind == CliItem::Kind::Flag) {
      // Consecutive switches on one field read as alternatives: [--on|--off].
      std::string alt = spelled(i);
      while (k + 1 < cli_.size() && cli_[k + 1].kind == CliItem::Kind::Flag && cli_[k + 1].arg == i.arg)
        alt += "|" + spelled(cli_[++k]);
      u += " [" + alt + "]";
    }
  }
  return u;
}

// ---- CommandRegistry: declarations ----

void CommandRegistry::add(Command c) {
  std::map<std::string, bool> takesValue;
  for (const auto& other : commands_) {
    if (other.words() == c.words() && other.selector() == c.selector() && other.positionals() == c.positionals())
      throw std::logic_error("command '" + c.wordsText() + "' is declared twice");
    for (const auto& i : other.cliItems())
      if (i.kind != Command::CliItem::Kind::Positional) takesValue[i.name] = i.kind == Command::CliItem::Kind::Option;
    if (!other.selector().empty()) takesValue[other.selector()] = false;
    if (other.method() == c.method() && other.path() == c.path())
      for (const auto& a : c.args())
        for (const auto& b : other.args())
          if (a.field() == b.field() && (a.type() != b.type() || a.in() != b.in()))
            throw std::logic_error("field '" + a.field() + "' of " + c.method() + " " + c.path() +
                                   " is declared with two types");
  }
  for (const auto& i : c.cliItems()) {
    if (i.kind == Command::CliItem::Kind::Positional) continue;
    auto it = takesValue.find(i.name);
    if (it != takesValue.end() && it->second != (i.kind == Command::CliItem::Kind::Option))
      throw std::logic_error("option --" + i.name + " takes a value in one command and not in another");
    if (!i.shortName) continue;
    for (const auto& other : commands_)
      for (const auto& j : other.cliItems())
        if (j.shortName == i.shortName && j.name != i.name)
          throw std::logic_error(std::string("-") + i.shortName + " is --" + j.name + " in '" + other.wordsText() +
                                 "', not --" + i.name);
  }
  commands_.push_back(std::move(c));
}

// ---- server side ----

void CommandRegistry::bind(AdminRouter& router, std::string version) const {
  for (auto& route : routesOf(commands_)) {
    CommandHandler handler;
    for (const auto* c : route.commands) {
      if (!c->hasHandler()) continue;
      if (handler) throw std::logic_error(route.method + " " + route.path + " has two handlers");
      handler = c->handlerFactory_(*this);
    }
    if (!handler) throw std::logic_error(route.method + " " + route.path + " has no handler");
    router.add(route.method, route.path, [fields = route.fields, handler](const AdminRequest& r) {
      CommandArgs args(r);
      std::vector<std::string> queryNames, bodyNames;
      for (const auto& f : fields) {
        if (f.in() == Arg::In::Query) queryNames.push_back(f.field());
        if (f.in() == Arg::In::Body) bodyNames.push_back(f.field());
      }
      for (const auto& [k, v] : r.query)
        if (std::find(queryNames.begin(), queryNames.end(), k) == queryNames.end())
          unknownField("query parameter", k, queryNames);
      Obj::Ptr body;
      if (!bodyNames.empty() || !r.body.empty()) {
        body = r.json();
        for (const auto& [k, v] : *body)
          if (std::find(bodyNames.begin(), bodyNames.end(), k) == bodyNames.end()) unknownField("field", k, bodyNames);
      }
      for (const auto& f : fields) {
        std::optional<ArgValue> v;
        if (f.in() == Arg::In::Path) {
          v = fromText(f, r.params.at(f.field()));
        } else if (f.in() == Arg::In::Query) {
          auto it = r.query.find(f.field());
          if (it != r.query.end()) v = fromText(f, it->second);
        } else {
          v = fromJson(f, body);
        }
        if (!v && f.isRequired()) json::badField(f.field(), "field '" + f.field() + "' is required");
        if (v) args.set(f.field(), std::move(*v));
      }
      return handler(args);
    });
  }
  router.add("GET", "/api/v1/commands",
             [doc = openApi(version)](const AdminRequest&) { return AdminResponse::json(doc); });
}

Poco::JSON::Object::Ptr CommandRegistry::openApi(const std::string& version) const {
  auto schemaOf = [](const Arg& a) {
    Obj::Ptr s = new Obj;
    switch (a.type()) {
      case Arg::Type::String:
        s->set("type", "string");
        break;
      case Arg::Type::Int:
        s->set("type", "integer");
        s->set("format", "int64");
        s->set("minimum", static_cast<Poco::Int64>(a.min()));
        s->set("maximum", static_cast<Poco::Int64>(a.max()));
        break;
      case Arg::Type::Bool:
        s->set("type", "boolean");
        break;
      case Arg::Type::Enum: {
        s->set("type", "string");
        Arr::Ptr e = new Arr;
        for (const auto& v : a.values()) e->add(v);
        s->set("enum", e);
        break;
      }
      case Arg::Type::Strings: {
        s->set("type", "array");
        Obj::Ptr items = new Obj;
        items->set("type", "string");
        s->set("items", items);
        break;
      }
    }
    if (a.isSecret()) {
      s->set("format", "password");
      s->set("writeOnly", true);
    }
    if (!a.helpText().empty()) s->set("description", a.helpText());
    return s;
  };
  Obj::Ptr paths = new Obj;
  for (const auto& route : routesOf(commands_)) {
    const Command* owner = route.commands.front();
    for (const auto* c : route.commands)
      if (c->hasHandler()) owner = c;
    Obj::Ptr op = new Obj;
    op->set("operationId", operationId(*owner, commands_));
    Arr::Ptr words = new Arr;
    std::string summary;
    for (const auto* c : route.commands) {
      words->add(c->wordsText());
      summary += (summary.empty() ? "" : " / ") + c->helpText();
    }
    op->set("x-impctl-words", words);
    op->set("summary", summary);
    if (!owner->description().empty()) op->set("description", owner->description());
    Arr::Ptr params = new Arr;
    Obj::Ptr props = new Obj;
    Arr::Ptr required = new Arr;
    for (const auto& f : route.fields) {
      if (f.in() == Arg::In::Body) {
        props->set(f.field(), schemaOf(f));
        if (f.isRequired()) required->add(f.field());
        continue;
      }
      Obj::Ptr p = new Obj;
      p->set("name", f.field());
      p->set("in", f.in() == Arg::In::Path ? "path" : "query");
      p->set("required", f.isRequired());
      if (!f.helpText().empty()) p->set("description", f.helpText());
      p->set("schema", schemaOf(f));
      params->add(p);
    }
    if (params->size() > 0) op->set("parameters", params);
    if (props->size() > 0) {
      Obj::Ptr schema = new Obj;
      schema->set("type", "object");
      schema->set("additionalProperties", false);
      schema->set("properties", props);
      if (required->size() > 0) schema->set("required", required);
      Obj::Ptr media = new Obj;
      media->set("schema", schema);
      Obj::Ptr content = new Obj;
      content->set("application/json", media);
      Obj::Ptr rb = new Obj;
      rb->set("required", required->size() > 0);
      rb->set("content", content);
      op->set("requestBody", rb);
    }
    Obj::Ptr responses = new Obj;
    Obj::Ptr ok = new Obj;
    ok->set("description", "the answer, a JSON object");
    // The route's answer is the shape its commands declare (returns()).
    for (const auto* c : route.commands)
      if (c->shape()) {
        Obj::Ptr media = new Obj;
        media->set("schema", c->shape()->schema());
        Obj::Ptr content = new Obj;
        content->set("application/json", media);
        ok->set("content", content);
        break;
      }
    responses->set("2XX", ok);
    Obj::Ptr bad = new Obj;
    bad->set("description", "a refused field: {\"error\": {\"code\", \"message\", \"field\"}}");
    responses->set("400", bad);
    op->set("responses", responses);
    Obj::Ptr item = paths->has(route.path) ? paths->getObject(route.path) : Obj::Ptr(new Obj);
    item->set(lower(route.method), op);
    paths->set(route.path, item);
  }
  Obj::Ptr info = new Obj;
  info->set("title", "IMP admin API");
  info->set("version", version);
  Obj::Ptr scheme = new Obj;
  scheme->set("type", "http");
  scheme->set("scheme", "bearer");
  Obj::Ptr schemes = new Obj;
  schemes->set("bearer", scheme);
  Obj::Ptr components = new Obj;
  components->set("securitySchemes", schemes);
  Arr::Ptr security = new Arr;
  Obj::Ptr bearer = new Obj;
  bearer->set("bearer", Arr::Ptr(new Arr));
  security->add(bearer);
  Obj::Ptr doc = new Obj;
  doc->set("openapi", "3.0.3");
  doc->set("info", info);
  doc->set("paths", paths);
  doc->set("components", components);
  doc->set("security", security);
  return doc;
}

// ---- impctl side ----

CommandLine CommandRegistry::lex(const std::vector<std::string>& argv, const std::vector<GlobalOption>& globals) const {
  struct Known {
    bool global, takesValue, repeats;
  };
  std::map<std::string, Known> known;
  for (const auto& c : commands_) {
    for (const auto& i : c.cliItems())
      if (i.kind != Command::CliItem::Kind::Positional)
        known[i.name] = {false, i.kind == Command::CliItem::Kind::Option,
                         i.kind == Command::CliItem::Kind::Option && c.args()[i.arg].type() == Arg::Type::Strings};
    if (!c.selector().empty()) known[c.selector()] = {false, false, false};
  }
  for (const auto& g : globals) known[g.name] = {true, g.takesValue, false};
  std::map<char, std::string> shorts;  // a command's -x -> its option name
  for (const auto& c : commands_)
    for (const auto& i : c.cliItems())
      if (i.shortName) shorts[i.shortName] = i.name;

  CommandLine line;
  std::set<std::string> seen;
  auto take = [&](const std::string& name, const Known& k, std::optional<std::string> value, std::size_t& i) {
    if (k.takesValue && !value) {
      if (i + 1 >= argv.size()) throw CommandUsageError("the required argument for option '--" + name + "' is missing");
      value = argv[++i];
    }
    if (!k.takesValue && value) throw CommandUsageError("option '--" + name + "' does not take any arguments");
    if (!k.repeats && !seen.insert(name).second)
      throw CommandUsageError("option '--" + name + "' cannot be specified more than once");
    if (k.global) line.globals[name] = value.value_or("");
    else line.options.emplace_back(name, value.value_or(""));
  };
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const auto& a = argv[i];
    if (a == "--") {
      line.words.insert(line.words.end(), argv.begin() + static_cast<std::ptrdiff_t>(i) + 1, argv.end());
      break;
    }
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      auto eq = a.find('=');
      std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      std::optional<std::string> value;
      if (eq != std::string::npos) value = a.substr(eq + 1);
      auto it = known.find(name);
      if (it == known.end()) {  // a unique prefix names the option
        std::vector<std::string> hits;
        for (const auto& [n, k] : known)
          if (n.compare(0, name.size(), name) == 0) hits.push_back(n);
        if (hits.size() != 1) throw CommandUsageError("unrecognised option '--" + name + "'");
        it = known.find(hits.front());
        name = hits.front();
      }
      take(name, it->second, value, i);
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      auto g = std::find_if(globals.begin(), globals.end(), [&](const GlobalOption& o) { return o.shortName == a[1]; });
      if (g == globals.end()) {
        auto s = shorts.find(a[1]);
        if (s == shorts.end() || (a.size() > 2 && !known.at(s->second).takesValue))
          throw CommandUsageError("unrecognised option '" + a + "'");
        std::optional<std::string> value;
        if (a.size() > 2) value = a.substr(2);
        take(s->second, known.at(s->second), value, i);
        continue;
      }
      std::optional<std::string> value;
      if (a.size() > 2) {
        if (!g->takesValue) throw CommandUsageError("unrecognised option '" + a + "'");
        value = a.substr(2);
      }
      take(g->name, known.at(g->name), value, i);
      continue;
    }
    line.words.push_back(a);
  }
  return line;
}

std::vector<const Command*> CommandRegistry::matching(const std::vector<std::string>& prefix) const {
  std::vector<const Command*> out;
  for (const auto& c : commands_) {
    bool match = true;
    for (std::size_t i = 0; i < prefix.size() && match; ++i) match = i < c.words().size() && c.words()[i] == prefix[i];
    if (match) out.push_back(&c);
  }
  return out;
}

namespace {
std::string usageOf(const std::vector<const Command*>& cs) {
  std::string u;
  for (const auto* c : cs) u += (u.empty() ? "usage: impctl " : "\n       impctl ") + c->usage();
  return u;
}
}  // namespace

CommandCall CommandRegistry::resolve(const CommandLine& line) const { return resolve(line, SecretReader()); }

CommandCall CommandRegistry::resolve(const CommandLine& line, const SecretReader& readSecret) const {
  const auto& w = line.words;
  if (w.empty()) throw CommandUsageError("no command given");
  std::size_t k = 0;
  for (const auto& c : commands_) {
    const auto& cw = c.words();
    if (cw.size() <= w.size() && cw.size() > k && std::equal(cw.begin(), cw.end(), w.begin())) k = cw.size();
  }
  if (k == 0) {
    auto group = matching({w[0]});
    if (group.empty()) throw CommandUsageError("unknown command '" + w[0] + "'");
    throw CommandUsageError(usageOf(group));
  }
  std::vector<const Command*> sameWords;
  for (const auto& c : commands_)
    if (c.words().size() == k && std::equal(c.words().begin(), c.words().end(), w.begin())) sameWords.push_back(&c);
  auto given = [&](const std::string& name) {
    return std::any_of(line.options.begin(), line.options.end(), [&](const auto& o) { return o.first == name; });
  };
  std::string selector;
  for (const auto* c : sameWords)
    if (!c->selector().empty() && given(c->selector())) selector = c->selector();
  std::vector<const Command*> forms;
  for (const auto* c : sameWords)
    if (c->selector() == selector) forms.push_back(c);
  const Command* cmd = nullptr;
  for (const auto* c : forms)
    if (c->positionals() == w.size() - k) cmd = c;
  // A longer command may start with these words ("service start x" is "service" with its action).
  if (!cmd) {
    auto group = matching({w.begin(), w.begin() + static_cast<std::ptrdiff_t>(k)});
    throw CommandUsageError(usageOf(group.size() > sameWords.size() ? group : sameWords));
  }
  const auto& c = *cmd;
  auto usage = "usage: impctl " + c.usage();

  // Which command-line item each option is, in declaration order.
  std::vector<std::pair<std::size_t, std::string>> items;  // cli index, value
  for (const auto& [name, value] : line.options) {
    if (name == c.selector()) continue;
    auto it = std::find_if(c.cliItems().begin(), c.cliItems().end(), [&, n = name](const Command::CliItem& i) {
      return i.kind != Command::CliItem::Kind::Positional && i.name == n;
    });
    if (it == c.cliItems().end()) throw CommandUsageError("--" + name + " does not apply to '" + w[0] + "'", usage);
    items.emplace_back(static_cast<std::size_t>(it - c.cliItems().begin()), value);
  }
  // Two items that set one field exclude each other.
  for (std::size_t a = 0; a < items.size(); ++a)
    for (std::size_t b = 0; b < items.size(); ++b) {
      const auto& x = c.cliItems()[items[a].first];
      const auto& y = c.cliItems()[items[b].first];
      if (items[a].first < items[b].first && x.arg == y.arg)
        throw CommandUsageError("--" + x.name + " and --" + y.name + " exclude each other", usage);
    }

  std::map<std::size_t, Poco::Dynamic::Var> values;  // by arg index
  std::map<std::size_t, std::vector<std::string>> lists;
  std::size_t pos = k;
  for (const auto& i : c.cliItems())
    if (i.kind == Command::CliItem::Kind::Positional) values[i.arg] = w[pos++];
  for (const auto& [index, text] : items) {
    const auto& i = c.cliItems()[index];
    const auto& a = c.args()[i.arg];
    if (i.kind == Command::CliItem::Kind::Flag) {
      values[i.arg] = toJson(i.value);
      continue;
    }
    switch (a.type()) {
      case Arg::Type::String:
      case Arg::Type::Enum:
        values[i.arg] = text;
        break;
      case Arg::Type::Int:
        // Not a number: sent as typed, so impd names the field and the value.
        if (auto n = wholeNumber(text)) values[i.arg] = static_cast<Poco::Int64>(*n);
        else values[i.arg] = text;
        break;
      case Arg::Type::Bool:
        if (text != "on" && text != "off") throw CommandUsageError("--" + i.name + " takes on or off", usage);
        values[i.arg] = text == "on";
        break;
      case Arg::Type::Strings:
        lists[i.arg].push_back(text);
        break;
    }
  }
  for (const auto& [i, list] : lists) values[i] = toJson(list);
  for (const auto& i : c.cliItems())
    if (i.kind == Command::CliItem::Kind::Option && c.args()[i.arg].isCliRequired() && !values.count(i.arg))
      throw CommandUsageError(c.wordsText() + " needs --" + i.name, usage);
  // needsOneOption(): at least one option that goes into the body.
  if (c.needsOne() && std::none_of(items.begin(), items.end(), [&](const auto& it) {
        return c.args()[c.cliItems()[it.first].arg].in() == Arg::In::Body;
      })) {
    std::vector<std::string> names;
    for (const auto& i : c.cliItems())
      if (i.kind != Command::CliItem::Kind::Positional && c.args()[i.arg].in() == Arg::In::Body)
        names.push_back("--" + i.name);
    throw CommandUsageError(c.wordsText() + " needs " + joinOr(names), usage);
  }
  for (const auto& [i, v] : c.fixedValues()) values[i] = toJson(v);
  // Secrets last: the command line is checked before anyone is prompted.
  for (std::size_t i = 0; i < c.args().size(); ++i) {
    const auto& a = c.args()[i];
    if (!a.isSecret()) continue;
    if (!readSecret) throw CommandUsageError(c.wordsText() + " reads the " + a.promptText() + " from the terminal or stdin, which this client cannot do", usage);
    values[i] = readSecret(a);
  }

  CommandCall call;
  call.command = &c;
  call.method = c.method();
  call.target = c.path();
  std::string query;
  Obj body;
  for (const auto& [i, v] : values) {
    const auto& a = c.args()[i];
    if (a.in() == Arg::In::Client) {
      call.local[a.field()] = v.convert<std::string>();
    } else if (a.in() == Arg::In::Path) {
      auto at = call.target.find("{" + a.field() + "}");
      call.target.replace(at, a.field().size() + 2, pathPart(v.convert<std::string>()));
    } else if (a.in() == Arg::In::Query) {
      query += (query.empty() ? "?" : "&") + a.field() + "=" + queryPart(v.convert<std::string>());
    } else {
      body.set(a.field(), v);
    }
  }
  call.target += query;
  if (body.size() > 0) {
    std::ostringstream b;
    body.stringify(b);
    call.body = b.str();
  }
  return call;
}

std::string CommandRegistry::usageList() const {
  std::string out;
  for (const auto& c : commands_) out += "  " + c.usage() + "\n";
  return out;
}

std::string CommandRegistry::helpFor(const Command& c) const {
  std::ostringstream out;
  out << "usage: impctl " << c.usage() << "\n\n" << c.helpText() << "\n";
  if (!c.description().empty()) out << "\n" << c.description() << "\n";
  std::vector<std::pair<std::string, std::string>> rows;
  if (!c.selector().empty()) rows.emplace_back("--" + c.selector(), c.selectorHelp());
  for (const auto& i : c.cliItems()) {
    const auto& a = c.args()[i.arg];
    if (i.kind == Command::CliItem::Kind::Positional) rows.emplace_back(metavarOf(a), i.help);
    else if (i.kind == Command::CliItem::Kind::Option) rows.emplace_back(spelled(i) + " " + metavarOf(a), i.help);
    else rows.emplace_back(spelled(i), i.help);
  }
  for (const auto& a : c.args())
    if (a.isSecret()) rows.emplace_back("(" + a.promptText() + ")", secretHelp(a));
  if (!rows.empty()) {
    std::size_t w = 0;
    for (const auto& r : rows) w = std::max(w, r.first.size());
    out << "\nArguments and options:\n";
    for (const auto& r : rows) out << "  " << std::left << std::setw(static_cast<int>(w) + 2) << r.first << r.second << "\n";
  }
  if (!c.examples().empty()) {
    out << "\nExamples:\n";
    for (const auto& [line, what] : c.examples()) out << "  # " << what << "\n  impctl " << line << "\n";
  }
  out << "\nHTTP: " << c.method() << " " << c.path() << "\n";
  return out.str();
}

std::string CommandRegistry::manCommands() const {
  std::ostringstream out;
  std::string group;
  for (const auto& c : commands_) {
    if (c.words().front() != group) {
      group = c.words().front();
      out << ".SS " << roffLine(group) << "\n";
    }
    // The tag line: words in bold, then the usage of the arguments.
    std::string tag = bold(c.wordsText());
    if (!c.selector().empty()) tag += " " + bold("--" + c.selector());
    for (const auto& i : c.cliItems())
      if (i.kind == Command::CliItem::Kind::Positional) tag += " " + italic(metavarOf(c.args()[i.arg]));
    for (std::size_t k = 0; k < c.cliItems().size(); ++k) {
      const auto& i = c.cliItems()[k];
      const auto& a = c.args()[i.arg];
      if (i.kind == Command::CliItem::Kind::Option) {
        std::string o = boldSpelled(i) + " " + italic(metavarOf(a));
        tag += a.isCliRequired() || a.isRequired() ? " " + o : " [" + o + "]";
        if (a.type() == Arg::Type::Strings) tag += "\\|.\\|.\\|.";
      } else if (i.kind == Command::CliItem::Kind::Flag) {
        std::string alt = boldSpelled(i);
        while (k + 1 < c.cliItems().size() && c.cliItems()[k + 1].kind == Command::CliItem::Kind::Flag &&
               c.cliItems()[k + 1].arg == i.arg)
          alt += "|" + boldSpelled(c.cliItems()[++k]);
        tag += " [" + alt + "]";
      }
    }
    out << ".TP\n" << tag << "\n" << roffLine(c.helpText()) << "\n";
    std::istringstream desc(c.description());
    bool first = true;
    for (std::string l; std::getline(desc, l);) {
      if (l.empty()) {
        first = false;
        out << ".IP\n";
        continue;
      }
      if (first) out << ".IP\n", first = false;
      out << roffLine(l) << "\n";
    }
    bool any = !c.selector().empty();
    for (const auto& i : c.cliItems()) any = any || !i.help.empty();
    for (const auto& a : c.args()) any = any || a.isSecret();
    if (any) {
      out << ".RS\n";
      if (!c.selector().empty()) out << ".TP\n" << bold("--" + c.selector()) << "\n" << roffLine(c.selectorHelp()) << "\n";
      for (const auto& i : c.cliItems()) {
        if (i.help.empty()) continue;
        const auto& a = c.args()[i.arg];
        if (i.kind == Command::CliItem::Kind::Positional) out << ".TP\n" << italic(metavarOf(a)) << "\n";
        else if (i.kind == Command::CliItem::Kind::Option)
          out << ".TP\n" << boldSpelled(i) << " " << italic(metavarOf(a)) << "\n";
        else out << ".TP\n" << boldSpelled(i) << "\n";
        out << roffLine(i.help) << "\n";
      }
      for (const auto& a : c.args())
        if (a.isSecret()) out << ".TP\n" << italic("(" + a.promptText() + ")") << "\n" << roffLine(secretHelp(a)) << "\n";
      out << ".RE\n";
    }
    for (const auto& [line, what] : c.examples())
      out << ".IP\n" << roffLine(what) << ":\n.RS\n.EX\n# impctl " << roff(line) << "\n.EE\n.RE\n";
  }
  return out.str();
}

std::string CommandRegistry::bashCompletion(const std::vector<GlobalOption>& globals) const {
  auto quote = [](const std::set<std::string>& s) { return "'" + join({s.begin(), s.end()}, " ") + "'"; };
  std::map<std::string, std::set<std::string>> next;  // words so far -> next words
  std::map<std::string, std::set<std::string>> opts;  // command words -> its options
  std::map<std::string, std::set<std::string>> valuesOf;  // option -> values it takes
  std::set<std::string> valueOpts, fileOpts, globalNames;
  for (const auto& g : globals) {
    globalNames.insert("--" + g.name);
    if (g.shortName) globalNames.insert(std::string("-") + g.shortName);
    if (g.takesValue) {
      valueOpts.insert("--" + g.name);
      if (g.shortName) valueOpts.insert(std::string("-") + g.shortName);
      if (g.metavar == "PATH") {
        fileOpts.insert("--" + g.name);
        if (g.shortName) fileOpts.insert(std::string("-") + g.shortName);
      }
    }
  }
  next[""].insert({"help", "completion"});
  next["completion"].insert("bash");
  for (const auto& c : commands_) {
    const auto& w = c.words();
    for (std::size_t i = 0; i < w.size(); ++i) next[join({w.begin(), w.begin() + static_cast<std::ptrdiff_t>(i)}, " ")].insert(w[i]);
    next["help"].insert(w.front());
    // An enum first positional completes too (service start|stop|...).
    for (const auto& i : c.cliItems())
      if (i.kind == Command::CliItem::Kind::Positional) {
        if (c.args()[i.arg].type() == Arg::Type::Enum)
          for (const auto& v : c.args()[i.arg].values()) next[c.wordsText()].insert(v);
        break;
      }
    auto& o = opts[c.wordsText()];
    if (!c.selector().empty()) o.insert("--" + c.selector());
    for (const auto& i : c.cliItems()) {
      if (i.kind == Command::CliItem::Kind::Positional) continue;
      o.insert("--" + i.name);
      if (i.shortName) o.insert(std::string("-") + i.shortName);
      if (i.kind != Command::CliItem::Kind::Option) continue;
      valueOpts.insert("--" + i.name);
      const auto& a = c.args()[i.arg];
      if (a.type() == Arg::Type::Enum) valuesOf["--" + i.name].insert(a.values().begin(), a.values().end());
      if (a.type() == Arg::Type::Bool) valuesOf["--" + i.name].insert({"on", "off"});
    }
  }
  std::ostringstream s;
  s << "# bash completion for impctl(8); generated by `impctl completion bash` from impctl's command registry.\n"
       "_impctl()\n{\n"
       "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} words='' w i skip=0\n"
       "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
       "        w=${COMP_WORDS[i]}\n"
       "        if ((skip)); then skip=0; continue; fi\n"
       "        case $w in\n"
       "            "
    << join({valueOpts.begin(), valueOpts.end()}, "|")
    << ") skip=1; continue ;;\n"
       "            -*) continue ;;\n"
       "        esac\n"
       "        words+=${words:+ }$w\n"
       "    done\n"
       "    case $prev in\n";
  for (const auto& [o, vs] : valuesOf) s << "        " << o << ") COMPREPLY=($(compgen -W " << quote(vs) << " -- \"$cur\")); return ;;\n";
  if (!fileOpts.empty())
    s << "        " << join({fileOpts.begin(), fileOpts.end()}, "|") << ") COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n";
  s << "        " << join({valueOpts.begin(), valueOpts.end()}, "|") << ") COMPREPLY=(); return ;;\n"
    << "    esac\n"
    << "    local next='' opts=" << quote(globalNames) << "\n"
    << "    case $words in\n";
  for (const auto& [prefix, ws] : next) s << "        '" << prefix << "') next=" << quote(ws) << " ;;\n";
  s << "    esac\n    case $words in\n";
  std::vector<std::pair<std::string, std::set<std::string>>> byLength(opts.begin(), opts.end());
  std::stable_sort(byLength.begin(), byLength.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [words, os] : byLength)
    if (!os.empty()) s << "        '" << words << "'|'" << words << " '*) opts+=' '" << quote(os) << " ;;\n";
  s << "    esac\n"
       "    if [[ $cur == -* ]]; then\n"
       "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
       "    else\n"
       "        COMPREPLY=($(compgen -W \"$next\" -- \"$cur\"))\n"
       "    fi\n"
       "}\n"
       "complete -F _impctl impctl\n";
  return s.str();
}

// ---- output helpers ----

namespace cli {

std::string str(const Obj::Ptr& o, const std::string& k) {
  if (!o->has(k) || o->get(k).isEmpty()) return "";
  return o->get(k).convert<std::string>();
}

std::string duration(long long s) {
  if (s <= 0) return "-";
  std::ostringstream out;
  if (s >= 86400) out << s / 86400 << "d";
  if (s >= 3600) out << (s % 86400) / 3600 << "h";
  if (s >= 60) out << (s % 3600) / 60 << "m";
  out << s % 60 << "s";
  return out.str();
}

void table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> w;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(w[i] - r[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

std::vector<Obj::Ptr> objects(const Obj::Ptr& o, const std::string& k) {
  std::vector<Obj::Ptr> out;
  for (const auto& v : *o->getArray(k)) out.push_back(v.extract<Obj::Ptr>());
  return out;
}

std::string joined(const Obj::Ptr& o, const std::string& k) {
  std::string s;
  for (const auto& v : *o->getArray(k)) {
    if (!s.empty()) s += ',';  // not "," + std::string: GCC 12 -O3 false -Wrestrict (GCC bug 105329)
    s += v.convert<std::string>();
  }
  return s.empty() ? "-" : s;
}

}  // namespace cli

}  // namespace imp::core
