// Every registered command has help text and an entry in the generated
// impctl(8) (issue 15 deliverable 4): the page is built from the registry,
// so a command missing there means the build did not regenerate it.
#include <doctest/doctest.h>
#include <imp/core/command_registry.h>
#include <imp/core/module_registry.h>

#include <fstream>
#include <sstream>

#include "../../impd/modules.h"

namespace {

std::string roffEscaped(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '-' ? std::string("\\-") : std::string(1, c);
  return out;
}

}  // namespace

TEST_CASE("every impctl command has help and an entry in impctl(8)") {
  // Every module impd runs, as impctl builds its registry.
  imp::core::ModuleRegistry modules;
  imp::apps::registerModules(modules);
  imp::core::CommandRegistry reg;
  modules.registerCommands(reg);
  std::ifstream in(IMPCTL_MAN_PAGE);
  REQUIRE_MESSAGE(in, "cannot read " IMPCTL_MAN_PAGE);
  std::stringstream page;
  page << in.rdbuf();
  const auto man = page.str();
  CHECK(man.find("@IMPCTL_COMMANDS@") == std::string::npos);
  CHECK(man.find(".SH EXIT STATUS") != std::string::npos);
  REQUIRE(reg.commands().size() >= 30);
  for (const auto& c : reg.commands()) {
    INFO("command: ", c.usage());
    CHECK(c.helpText().size() > 10);
    CHECK(c.helpText().back() == '.');
    CHECK(man.find(".TP\n\\fB" + roffEscaped(c.wordsText()) + "\\fR") != std::string::npos);
    for (const auto& item : c.cliItems()) {
      if (item.kind == imp::core::Command::CliItem::Kind::Positional) continue;
      INFO("option: --", item.name);
      CHECK(!item.help.empty());
      CHECK(man.find("\\fB\\-\\-" + roffEscaped(item.name) + "\\fR") != std::string::npos);
    }
    for (const auto& a : c.args()) {
      if (!a.isSecret()) continue;
      INFO("secret: ", a.field());
      CHECK(man.find("\\fI(" + roffEscaped(a.promptText()) + ")\\fR") != std::string::npos);
    }
  }
}
