#pragma once
// The command registry (issue 15 deliverable 4): every admin command is
// declared once, next to the module's code, and everything else is derived
// from that declaration:
//
//   - the admin API routes and their field checks (bind(): type, required,
//     enum values, ranges, unknown fields -> 400 naming the field); the
//     handler receives already-validated typed arguments (CommandArgs);
//   - GET /api/v1/commands: an OpenAPI 3.0 document of those routes;
//   - impctl's parsing, dispatch, per-command usage, `impctl help [COMMAND]`,
//     bash completion and the command list of impctl(8).
//
// A command is: its words ("user add"), an HTTP method and path template
// ("/api/v1/users/{userid}"), its arguments (Arg: a JSON field in the path,
// the query or the body, with its type, whether it is required, and how it
// is given on the command line: a positional, an option, or a switch that
// sets a fixed value), one-line help, a longer description, examples, the
// shape of its answer (returns(): the response's JSON fields, declared once in
// imp/core/response_shape.h, which also gives impctl's text output and the
// OpenAPI response schema) and, where the shape's layout cannot express the
// text, a printer that reads the answer through the shape's field handles.
//
// Several commands may share one route (impctl federation enable|disable|set
// all PUT /api/v1/federation): the route accepts the union of their fields
// and exactly one of them carries the handler. Declaring the same JSON field
// twice with different types is refused when the command is added.
//
// Handlers name the objects they work on by type (handler<Directory>(...));
// provide() hands those objects over before bind(), which refuses a handler
// whose object is missing. impctl declares the same commands without
// providing anything: it never binds.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <typeindex>
#include <variant>
#include <vector>

#include <Poco/JSON/Object.h>

#include "imp/core/admin_http.h"
#include "imp/core/response_shape.h"

namespace imp::core {

// A typed, validated argument value.
using ArgValue = std::variant<std::string, std::int64_t, bool, std::vector<std::string>>;

// One JSON field of a command (deliverable 4.1): where it travels, its type
// and its checks, and how impctl takes it.
class Arg {
 public:
  enum class Type { String, Int, Bool, Enum, Strings };
  // Client: impctl takes it (a local file, a wait) but never sends it; the
  // command's client runner reads it from CommandCall::local.
  enum class In { Path, Query, Body, Client };
  enum class Cli { None, Positional, Option };

  static Arg string(std::string field) { return Arg(std::move(field), Type::String); }
  static Arg integer(std::string field, std::int64_t min, std::int64_t max);
  static Arg boolean(std::string field) { return Arg(std::move(field), Type::Bool); }
  static Arg enumeration(std::string field, std::vector<std::string> values);
  static Arg strings(std::string field) { return Arg(std::move(field), Type::Strings); }

  // Where the field travels (default: the body; path fields are required).
  Arg inPath() const;
  Arg inQuery() const;
  Arg onClient() const;
  Arg required() const;
  // How messages name the field ("route type"); default: the field name.
  Arg label(std::string l) const;
  // What follows "<label> '<value>' " when the value is refused ("is not a
  // TLS version; use ..."); default: "is not A, B or C" for enums.
  Arg invalid(std::string tail) const;
  Arg help(std::string h) const;
  // impctl takes it as the next positional word (METAVAR in usage)...
  Arg positional(std::string metavar) const;
  // ...or as --name VALUE (a Bool option takes on|off; Strings repeats).
  Arg option(std::string name, std::string metavar) const;
  // impctl refuses the command without it (usage error) instead of leaving
  // the refusal to impd.
  Arg cliRequired() const;
  // A secret (a password): never on the command line. impctl reads it from
  // the terminal without echo, twice (the two must match), or as one line
  // from stdin when stdin is not a terminal; `prompt` names it ("password").
  // A secret is neither positional nor an option; the OpenAPI document marks
  // it format password, writeOnly.
  Arg secret(std::string prompt) const;

  const std::string& field() const { return field_; }
  Type type() const { return type_; }
  In in() const { return in_; }
  bool isRequired() const { return required_; }
  const std::string& labelText() const { return label_.empty() ? field_ : label_; }
  const std::string& invalidTail() const { return invalid_; }
  const std::string& helpText() const { return help_; }
  Cli cli() const { return cli_; }
  const std::string& cliName() const { return cliName_; }
  const std::string& metavar() const { return metavar_; }
  bool isCliRequired() const { return cliRequired_; }
  bool isSecret() const { return secret_; }
  const std::string& promptText() const { return prompt_; }
  const std::vector<std::string>& values() const { return values_; }
  std::int64_t min() const { return min_; }
  std::int64_t max() const { return max_; }

 private:
  Arg(std::string field, Type t) : field_(std::move(field)), type_(t) {}
  std::string field_;
  Type type_;
  In in_ = In::Body;
  bool required_ = false;
  std::string label_, invalid_, help_;
  Cli cli_ = Cli::None;
  std::string cliName_, metavar_;
  bool cliRequired_ = false;
  bool secret_ = false;
  std::string prompt_;
  std::vector<std::string> values_;
  std::int64_t min_ = 0, max_ = 0;
};

// What a handler receives: the route's arguments, checked and typed.
class CommandArgs {
 public:
  explicit CommandArgs(const AdminRequest& r) : request_(r) {}
  bool has(const std::string& field) const { return values_.count(field) != 0; }
  std::optional<std::string> str(const std::string& field) const;
  // A required field (path parameters, required body fields).
  const std::string& at(const std::string& field) const;
  std::optional<std::int64_t> integer(const std::string& field) const;
  std::optional<bool> boolean(const std::string& field) const;
  std::optional<std::vector<std::string>> strings(const std::string& field) const;
  const AdminRequest& request() const { return request_; }
  void set(const std::string& field, ArgValue v) { values_[field] = std::move(v); }

 private:
  const AdminRequest& request_;
  std::map<std::string, ArgValue> values_;
};

using CommandHandler = std::function<AdminResponse(const CommandArgs&)>;

struct CommandCall;
// What a client runner (Command::client) sends its requests through: impctl's
// admin API client. request() returns the parsed 2xx answer and throws like
// a single-request command for anything else; raw() returns the status and
// the body as they came (a file's bytes).
class CommandClient {
 public:
  virtual ~CommandClient() = default;
  virtual Poco::JSON::Object::Ptr request(const std::string& method, const std::string& target,
                                          const std::string& body, int* status = nullptr) = 0;
  virtual std::pair<int, std::string> raw(const std::string& method, const std::string& target,
                                          const std::string& body, const std::string& contentType) = 0;
  // --json was given: print answers as JSON, not as text.
  virtual bool json() const = 0;
};
// impctl's side of a command that is more than one request (a file sent in
// parts, a job waited for): it gets the resolved call and sends what it
// needs; its return value is impctl's exit code.
using ClientRunner = std::function<int(const CommandCall& call, CommandClient& client, std::ostream& out)>;
// Prints a 2xx answer (status: the HTTP status, e.g. 202 for pending).
using CommandPrinter = std::function<void(std::ostream& out, const Poco::JSON::Object::Ptr& answer, int status)>;

class CommandRegistry;

class Command {
 public:
  Command(std::string words, std::string method, std::string path);

  Command& help(std::string oneLine);
  Command& describe(std::string text);
  Command& example(std::string commandLine, std::string what);
  Command& arg(Arg a);
  // --name sets field `a` to `value` (--on: enabled=true; --clear-flags:
  // flags=[]). Two command-line items that set the same field exclude each
  // other.
  Command& flag(std::string name, const Arg& a, ArgValue value, std::string help);
  // The command always sends field `a` = value (federation enable).
  Command& fixed(const Arg& a, ArgValue value);
  // impctl also takes -c for the option or switch declared last (log tail
  // -f); a global option's letter wins, and one letter names one option
  // name in every command (CommandRegistry::add refuses another).
  Command& alias(char c);
  // This form is chosen by --name among commands with the same words
  // (status --cluster).
  Command& selectedBy(std::string name, std::string help);
  // Refuses the command (usage error) when no option or switch is given.
  Command& needsOneOption();
  // The shape of the 2xx answer: its printer (unless print() gives one) and
  // the response schema of GET /api/v1/commands come from it.
  Command& returns(const Shape& shape);
  Command& print(CommandPrinter p);
  // impctl runs `r` instead of sending the one request (see ClientRunner).
  Command& client(ClientRunner r);
  // The handler, with the objects it needs (see CommandRegistry::provide).
  template <class... Ctx, class F>
  Command& handler(F f);

  struct CliItem {
    enum class Kind { Positional, Option, Flag } kind;
    std::size_t arg;   // index into args()
    ArgValue value;    // Flag: the value it sets
    std::string name;  // option/flag name without dashes
    std::string help;
    char shortName = 0;  // -x as well as --name (alias()); 0 = none
  };
  const std::vector<std::string>& words() const { return words_; }
  std::string wordsText() const;
  const std::string& method() const { return method_; }
  const std::string& path() const { return path_; }
  const std::string& helpText() const { return help_; }
  const std::string& description() const { return description_; }
  const std::vector<std::pair<std::string, std::string>>& examples() const { return examples_; }
  const std::vector<Arg>& args() const { return args_; }
  const std::vector<CliItem>& cliItems() const { return cli_; }
  const std::vector<std::pair<std::size_t, ArgValue>>& fixedValues() const { return fixed_; }
  const std::string& selector() const { return selector_; }
  const std::string& selectorHelp() const { return selectorHelp_; }
  bool needsOne() const { return needsOne_; }
  const CommandPrinter& printer() const { return printer_; }
  const ClientRunner& clientRunner() const { return client_; }
  const Shape* shape() const { return shape_; }
  bool hasHandler() const { return static_cast<bool>(handlerFactory_); }
  std::size_t positionals() const;
  // "user add USERID --im-address ADDR [--unlicensed] ..."
  std::string usage() const;

 private:
  friend class CommandRegistry;
  std::size_t addArg(const Arg& a);
  std::vector<std::string> words_;
  std::string method_, path_, help_, description_, selector_, selectorHelp_;
  std::vector<std::pair<std::string, std::string>> examples_;
  std::vector<Arg> args_;
  std::vector<CliItem> cli_;
  std::vector<std::pair<std::size_t, ArgValue>> fixed_;
  bool needsOne_ = false;
  CommandPrinter printer_;
  ClientRunner client_;
  const Shape* shape_ = nullptr;
  std::function<CommandHandler(const CommandRegistry&)> handlerFactory_;
};

// A mistake on impctl's command line (exit 64); `command` is set when the
// words named a command, so its usage can be shown.
struct CommandUsageError : std::runtime_error {
  CommandUsageError(const std::string& m, std::string usageText = {}) : std::runtime_error(m), usage(std::move(usageText)) {}
  std::string usage;
};

// impctl's own options (--config, --url, --json, ...), not tied to a command.
struct GlobalOption {
  std::string name;   // long name without dashes
  char shortName;     // 0 for none
  bool takesValue;
  std::string metavar;
  std::string help;
};

struct CommandLine {
  std::map<std::string, std::string> globals;  // given global options ("" for switches)
  std::vector<std::string> words;
  std::vector<std::pair<std::string, std::string>> options;  // command options in order; flags have ""
};

// The request impctl sends for one command line.
struct CommandCall {
  const Command* command = nullptr;
  std::string method;
  std::string target;  // path and query, encoded
  std::string body;    // JSON text, or empty
  std::map<std::string, std::string> local;  // Arg::onClient() values given, by field
};

class CommandRegistry {
 public:
  CommandRegistry() = default;
  CommandRegistry(const CommandRegistry&) = delete;
  CommandRegistry& operator=(const CommandRegistry&) = delete;

  // Adds a command; throws std::logic_error if its words and arity or its
  // selector clash with another command's, if a field is declared twice with
  // different types, or if a command-line option takes a value in one command
  // and not in another.
  void add(Command c);
  const std::vector<Command>& commands() const { return commands_; }

  // Server side -----------------------------------------------------------
  template <class T>
  void provide(T& object) {
    contexts_[std::type_index(typeid(T))] = &object;
  }
  template <class T>
  T& context() const {
    auto it = contexts_.find(std::type_index(typeid(T)));
    if (it == contexts_.end())
      throw std::logic_error(std::string("command registry: no object of type ") + typeid(T).name() +
                             " was provided for a command handler");
    return *static_cast<T*>(it->second);
  }
  // Adds one route per (method, path) with its field checks, and
  // GET /api/v1/commands (the OpenAPI document). Throws std::logic_error if a
  // route has no handler or two, or if a handler's object was not provided.
  void bind(AdminRouter& router, std::string version) const;
  Poco::JSON::Object::Ptr openApi(const std::string& version) const;

  // impctl side ----------------------------------------------------------
  // Splits argv (without argv[0]) into global options, words and command
  // options. Throws CommandUsageError for an option no command knows.
  CommandLine lex(const std::vector<std::string>& argv, const std::vector<GlobalOption>& globals) const;
  // Finds the command the words name and builds its request. Throws
  // CommandUsageError (with the command's usage when one was found).
  CommandCall resolve(const CommandLine& line) const;
  // The same, reading the command's secret arguments (Arg::secret) with
  // `readSecret`; without one, a command that has a secret is refused with
  // a CommandUsageError.
  using SecretReader = std::function<std::string(const Arg&)>;
  CommandCall resolve(const CommandLine& line, const SecretReader& readSecret) const;
  // Commands whose words start with `prefix` (for help).
  std::vector<const Command*> matching(const std::vector<std::string>& prefix) const;
  // "Commands:" list, one usage line per command.
  std::string usageList() const;
  std::string helpFor(const Command& c) const;
  // The COMMANDS section of impctl(8), in roff.
  std::string manCommands() const;
  std::string bashCompletion(const std::vector<GlobalOption>& globals) const;

 private:
  std::vector<Command> commands_;
  std::map<std::type_index, void*> contexts_;
};

template <class... Ctx, class F>
Command& Command::handler(F f) {
  handlerFactory_ = [f](const CommandRegistry& reg) -> CommandHandler {
    return [f, ctx = std::make_tuple(&reg.template context<Ctx>()...)](const CommandArgs& a) {
      return std::apply([&](auto*... c) { return f(*c..., a); }, ctx);
    };
  };
  return *this;
}

// Output helpers for printers.
namespace cli {
// o[k] as text, "" if absent or null.
std::string str(const Poco::JSON::Object::Ptr& o, const std::string& k);
// 90061 -> "1d1h1m1s"; <= 0 -> "-".
std::string duration(long long seconds);
// Aligned columns; the last column is not padded.
void table(std::ostream& out, const std::vector<std::vector<std::string>>& rows);
// The objects of array o[k].
std::vector<Poco::JSON::Object::Ptr> objects(const Poco::JSON::Object::Ptr& o, const std::string& k);
// The strings of array o[k] joined with ",", "-" if empty.
std::string joined(const Poco::JSON::Object::Ptr& o, const std::string& k);
}  // namespace cli

}  // namespace imp::core
