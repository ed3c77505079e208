// impctl: a thin client of impd's admin API (SV-1, SV-3, SV-4). Every command
// maps to one HTTP request; what the server answers is shown as text, or as
// raw JSON with --json. Exit codes are documented in impctl(8).
//
// The commands are not described here: the modules declare them once in the
// command registry (issue 15 deliverable 4), next to their admin routes, and
// impctl takes its parsing, usage, help, output, bash completion and the
// command list of its man page from there.

#include <imp/core/command_registry.h>

#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include "../impd/modules.h"
#include "cli.h"

using namespace impctl;
using imp::core::CommandRegistry;
using imp::core::CommandUsageError;
using imp::core::GlobalOption;

namespace {

const std::string kDefaultConfig = "/etc/imp/impd.conf";

const std::vector<GlobalOption>& globalOptions() {
  static const std::vector<GlobalOption> g = {
      {"config", 'c', true, "PATH", "impd.conf to read the admin address and token from (default " + kDefaultConfig + ")"},
      {"url", 0, true, "URL", "admin API URL (overrides impd.conf)"},
      {"token-file", 0, true, "PATH", "file holding the admin token (overrides impd.conf)"},
      {"json", 0, false, "", "print the server's JSON answer as is"},
      {"help", 'h', false, "", "show this help, or the help of the commands named"},
      {"version", 0, false, "", "print the version"},
      {"man-commands", 0, false, "", "print the COMMANDS section of impctl(8) (roff)"},
  };
  return g;
}

std::string usageText(const CommandRegistry& reg) {
  return "Usage: impctl [global options] COMMAND\n\nCommands:\n" + reg.usageList() +
         "  help [COMMAND]\n  completion bash\n\nSee impctl help COMMAND, and impctl(8).\n";
}

void printGlobalOptions() {
  std::cout << "Global options (before or after the command words):\n";
  for (const auto& g : globalOptions()) {
    std::string name = (g.shortName ? std::string("-") + g.shortName + ", " : "    ") + "--" + g.name +
                       (g.takesValue ? " " + g.metavar : "");
    std::cout << "  " << std::left << std::setw(22) << name << g.help << "\n";
  }
}

// impctl help [WORDS...]: every command whose words start with WORDS.
int help(const CommandRegistry& reg, const std::vector<std::string>& words) {
  if (words.empty()) {
    std::cout << usageText(reg) << "\n";
    printGlobalOptions();
    return kOk;
  }
  auto found = reg.matching(words);
  if (found.empty()) throw CommandUsageError("unknown command '" + words[0] + (words.size() > 1 ? " " + words[1] : "") + "'");
  for (std::size_t i = 0; i < found.size(); ++i) std::cout << (i ? "\n" : "") << reg.helpFor(*found[i]);
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  CommandRegistry reg;
  {
    imp::core::ModuleRegistry modules;
    imp::apps::registerModules(modules);
    modules.registerCommands(reg);
  }

  try {
    auto line = reg.lex(std::vector<std::string>(argv + 1, argv + argc), globalOptions());
    auto given = [&](const char* name) { return line.globals.count(name) != 0; };
    auto global = [&](const char* name) { return given(name) ? line.globals.at(name) : std::string(); };
    if (given("help")) return help(reg, line.words);
    if (given("version")) {
      std::cout << "impctl " << IMP_VERSION << "\n";
      return kOk;
    }
    if (given("man-commands")) {
      std::cout << reg.manCommands();
      return kOk;
    }
    if (line.words.empty()) {
      std::cerr << usageText(reg);
      return kUsage;
    }
    if (line.words[0] == "help") return help(reg, {line.words.begin() + 1, line.words.end()});
    if (line.words[0] == "completion") {
      if (line.words.size() != 2 || line.words[1] != "bash") throw CommandUsageError("usage: impctl completion bash");
      std::cout << reg.bashCompletion(globalOptions());
      return kOk;
    }
    auto call = reg.resolve(line, [](const imp::core::Arg& a) { return readSecret(a.promptText()); });
    bool json = given("json");
    auto client = makeClient(given("config") ? global("config") : kDefaultConfig, !given("config"), global("url"),
                             global("token-file"));
    if (const auto& runner = call.command->clientRunner()) {
      struct Adapter : imp::core::CommandClient {
        const impctl::Client& c;
        bool asJson;
        Adapter(const impctl::Client& cl, bool j) : c(cl), asJson(j) {}
        Obj::Ptr request(const std::string& m, const std::string& t, const std::string& b, int* st) override {
          int ignored = 0;
          return c.request(m, t, b, false, st ? st : &ignored);
        }
        std::pair<int, std::string> raw(const std::string& m, const std::string& t, const std::string& b,
                                        const std::string& type) override {
          return c.call(m, t, b, type);
        }
        bool json() const override { return asJson; }
      } adapter(client, json);
      return runner(call, adapter, std::cout);
    }
    int status = 0;
    auto answer = client.request(call.method, call.target, call.body, json, &status);
    if (!json && call.command->printer()) call.command->printer()(std::cout, answer, status);
    return kOk;
  } catch (const CommandUsageError& e) {
    std::cerr << "impctl: " << e.what() << "\n\n" << (e.usage.empty() ? usageText(reg) : e.usage + "\n");
    return kUsage;
  } catch (const Exit& e) {
    std::cerr << "impctl: " << e.message << "\n";
    return e.code;
  } catch (const std::exception& e) {
    std::cerr << "impctl: " << e.what() << "\n";
    return kServerError;
  }
}
