#pragma once
// impctl's text for a command's answer, for the modules' output tests (issue
// 15 deliverable 4): the command is found by its words, its number of
// positionals and its selector, as impctl finds it; its printer gets `json`.
#include <imp/core/command_registry.h>

#include <Poco/JSON/Parser.h>

#include <sstream>
#include <stdexcept>
#include <string>

namespace imp::testing {

inline const core::Command& command(const core::CommandRegistry& reg, const std::string& words, std::size_t positionals = 0,
                                    const std::string& selector = {}) {
  for (const auto& c : reg.commands())
    if (c.wordsText() == words && c.selector() == selector && c.positionals() == positionals) return c;
  throw std::logic_error("no command '" + words + "'");
}

inline std::string printed(const core::Command& c, const std::string& json, int status = 200) {
  auto answer = Poco::JSON::Parser().parse(json).extract<Poco::JSON::Object::Ptr>();
  std::ostringstream out;
  c.printer()(out, answer, status);
  return out.str();
}

}  // namespace imp::testing
