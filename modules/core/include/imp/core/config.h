#pragma once
// Node bootstrap configuration: /etc/imp/impd.conf (INI).
//
// Every option is declared in a ConfigSchema with its type, range and default;
// unknown sections and keys are errors. All errors are ConfigError whose
// message starts with "in [section]: " so an administrator knows where to
// look. Parsing is pure (no I/O besides Config::load reading the file).
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace imp::core {

class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string section, const std::string& message);
  const std::string& section() const { return section_; }

 private:
  std::string section_;
};

enum class OptionType { String, Int, Bool, Enum, Path };

struct OptionSpec {
  std::string section;
  std::string key;
  OptionType type = OptionType::String;
  std::string defaultValue;  // as written in the file; empty = no default
  std::int64_t min = 0;      // Int only
  std::int64_t max = 0;      // Int only
  std::vector<std::string> choices;  // Enum only
  std::string help;          // one line, used by docs and --help-config
};

class ConfigSchema {
 public:
  ConfigSchema& add(OptionSpec spec);
  const OptionSpec* find(std::string_view section, std::string_view key) const;
  std::vector<std::string> sections() const;
  std::vector<std::string> keys(std::string_view section) const;
  const std::vector<OptionSpec>& options() const { return options_; }

 private:
  std::vector<OptionSpec> options_;
};

// The options core itself owns: [node], [database], [admin], [log], [tls], [dns], [services].
void addCoreOptions(ConfigSchema& schema);
// A process-wide schema holding the core options (what impd and impctl read).
const ConfigSchema& coreSchema();

class Config {
 public:
  // Parses INI text. `origin` names the source in messages (a path).
  static Config parse(std::string_view text, const ConfigSchema& schema,
                      std::string_view origin = "impd.conf");
  // Reads and parses a file; a missing file is an error unless allowMissing,
  // in which case all defaults apply.
  static Config load(const std::string& path, const ConfigSchema& schema, bool allowMissing = false);

  std::string getString(std::string_view section, std::string_view key) const;
  std::int64_t getInt(std::string_view section, std::string_view key) const;
  bool getBool(std::string_view section, std::string_view key) const;
  // True when the file set the key explicitly (not a default).
  bool isSet(std::string_view section, std::string_view key) const;
  // Overrides a value after parsing, with the same validation (command line).
  void set(std::string_view section, std::string_view key, std::string_view value);
  const std::string& origin() const { return origin_; }

 private:
  const OptionSpec& spec(std::string_view section, std::string_view key) const;
  std::string validate(const OptionSpec& spec, std::string_view value, int line) const;

  const ConfigSchema* schema_ = nullptr;
  std::string origin_;
  std::map<std::string, std::string, std::less<>> values_;  // "section.key" -> value
};

}  // namespace imp::core
