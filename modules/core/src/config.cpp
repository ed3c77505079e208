#include "imp/core/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

namespace imp::core {

namespace {

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

std::string lineRef(int line) { return line > 0 ? " (line " + std::to_string(line) + ")" : ""; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::optional<bool> parseBool(std::string_view v) {
  auto l = lower(v);
  if (l == "true" || l == "yes" || l == "on" || l == "1") return true;
  if (l == "false" || l == "no" || l == "off" || l == "0") return false;
  return std::nullopt;
}

std::string fullKey(std::string_view section, std::string_view key) {
  std::string k(section);
  k += '.';
  k += key;
  return k;
}

}  // namespace

ConfigError::ConfigError(std::string section, const std::string& message)
    : std::runtime_error("in [" + section + "]: " + message), section_(std::move(section)) {}

ConfigSchema& ConfigSchema::add(OptionSpec spec) {
  if (find(spec.section, spec.key)) throw std::logic_error("option declared twice: " + spec.section + "." + spec.key);
  options_.push_back(std::move(spec));
  return *this;
}

const OptionSpec* ConfigSchema::find(std::string_view section, std::string_view key) const {
  for (const auto& o : options_)
    if (o.section == section && o.key == key) return &o;
  return nullptr;
}

std::vector<std::string> ConfigSchema::sections() const {
  std::vector<std::string> out;
  for (const auto& o : options_)
    if (std::find(out.begin(), out.end(), o.section) == out.end()) out.push_back(o.section);
  return out;
}

std::vector<std::string> ConfigSchema::keys(std::string_view section) const {
  std::vector<std::string> out;
  for (const auto& o : options_)
    if (o.section == section) out.push_back(o.key);
  return out;
}

void addCoreOptions(ConfigSchema& s) {
  using T = OptionType;
  s.add({"node", "id", T::String, "", 0, 0, {}, "cluster-unique node id [A-Za-z0-9._-], 1..64 chars; default: the host name"});
  s.add({"node", "role", T::Enum, "single", 0, 0, {"single", "routing", "home", "publisher"}, "which services this node runs by default"});
  s.add({"node", "state_dir", T::Path, "/var/lib/imp", 0, 0, {}, "persistent state: managed database, admin token, certificates"});
  s.add({"node", "log_dir", T::Path, "/var/log/imp", 0, 0, {}, "one log file per service"});
  s.add({"node", "sql_dir", T::Path, "/usr/share/imp/sql", 0, 0, {}, "schema migrations NNNN_*.sql"});

  s.add({"database", "mode", T::Enum, "managed", 0, 0, {"managed", "external"}, "managed: impd runs a private MariaDB; external: use url"});
  s.add({"database", "url", T::String, "", 0, 0, {}, "external only: mysql://user:password@host:port/schema or mysql://user@localhost/schema?socket=/path"});
  s.add({"database", "pool_size", T::Int, "8", 1, 256, {}, "connections kept in the pool"});
  s.add({"database", "connect_timeout", T::Int, "5", 1, 300, {}, "seconds to wait for a connection"});
  s.add({"database", "mariadbd", T::Path, "/usr/sbin/mariadbd", 0, 0, {}, "managed only: the server binary"});
  s.add({"database", "install_db", T::Path, "/usr/bin/mariadb-install-db", 0, 0, {}, "managed only: the datadir initialiser"});
  s.add({"database", "buffer_pool_mb", T::Int, "128", 16, 65536, {}, "managed only: InnoDB buffer pool size in MiB"});

  s.add({"admin", "address", T::String, "127.0.0.1", 0, 0, {}, "admin HTTP API listen address"});
  s.add({"admin", "port", T::Int, "8780", 0, 65535, {}, "admin HTTP API port (0 = any free port, printed at start)"});
  s.add({"admin", "token_file", T::Path, "", 0, 0, {}, "bearer token file (mode 0600); default: <state_dir>/admin.token"});
  s.add({"admin", "threads", T::Int, "4", 1, 64, {}, "admin API worker threads"});

  s.add({"log", "level", T::Enum, "info", 0, 0, {"trace", "debug", "info", "warn", "error", "critical", "off"}, "level of the core logger and of services with no trace setting"});
  s.add({"log", "max_size", T::Int, "10485760", 65536, 1073741824, {}, "bytes per log file before rotation"});
  s.add({"log", "max_files", T::Int, "5", 1, 100, {}, "rotated files kept per service"});
  s.add({"log", "console", T::Bool, "false", 0, 0, {}, "also write the log to standard error"});

  s.add({"tls", "cert_file", T::Path, "", 0, 0, {}, "node certificate chain (PEM); empty = self-signed, generated under <state_dir>/tls"});
  s.add({"tls", "key_file", T::Path, "", 0, 0, {}, "private key of cert_file (PEM, unencrypted, readable by impd only)"});
  s.add({"tls", "ca_file", T::Path, "", 0, 0, {}, "trust store (PEM bundle) for verifying TLS peers such as the Microsoft server"});

  s.add({"dns", "servers", T::String, "", 0, 0, {}, "DNS servers for next hops and the incoming ACL's reverse lookups, e.g. 10.0.0.2, 10.0.0.3:53; empty = the system resolver (/etc/resolv.conf)"});
  s.add({"dns", "timeout_ms", T::Int, "2000", 100, 60000, {}, "servers only: how long one query attempt may take"});
  s.add({"dns", "attempts", T::Int, "2", 1, 5, {}, "servers only: attempts per server before the next one"});
  s.add({"dns", "positive_ttl", T::Int, "300", 0, 86400, {}, "seconds an answer is cached"});
  s.add({"dns", "negative_ttl", T::Int, "60", 0, 86400, {}, "seconds a missing answer (no PTR, no address) is cached"});

  s.add({"services", "stop_timeout", T::Int, "10", 1, 600, {}, "seconds a service may take to stop before it is reported and abandoned"});
  s.add({"services", "settings_poll_ms", T::Int, "1000", 50, 60000, {}, "how often the cluster settings generation is checked"});
  s.add({"services", "heartbeat_interval", T::Int, "5", 1, 3600, {}, "seconds between node heartbeats (ris-collector)"});
  s.add({"services", "loops", T::Int, "1", 1, 64, {}, "event-loop threads the node's network services share (sip-proxy)"});
  s.add({"services", "workers", T::Int, "4", 1, 256, {}, "worker threads for blocking work (name resolution); their queue holds 1024 jobs per thread"});
}

const ConfigSchema& coreSchema() {
  static const ConfigSchema schema = [] {
    ConfigSchema s;
    addCoreOptions(s);
    return s;
  }();
  return schema;
}

Config Config::parse(std::string_view text, const ConfigSchema& schema, std::string_view origin) {
  Config cfg;
  cfg.schema_ = &schema;
  cfg.origin_ = std::string(origin);
  std::string section;
  std::set<std::string> seen;
  int lineNo = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view raw = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++lineNo;
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']')
        throw ConfigError(section.empty() ? "?" : section, "malformed section header '" + line + "'" + lineRef(lineNo));
      section = trim(std::string_view(line).substr(1, line.size() - 2));
      auto known = schema.sections();
      if (std::find(known.begin(), known.end(), section) == known.end())
        throw ConfigError(section, "unknown section" + lineRef(lineNo) + "; valid sections: " + joined(known));
      continue;
    }
    auto eq = line.find('=');
    if (section.empty())
      throw ConfigError("?", "key outside of any section" + lineRef(lineNo) + ": '" + line + "'");
    if (eq == std::string::npos)
      throw ConfigError(section, "expected 'key = value'" + lineRef(lineNo) + ", got '" + line + "'");
    std::string key = trim(std::string_view(line).substr(0, eq));
    std::string value = trim(std::string_view(line).substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    const OptionSpec* spec = schema.find(section, key);
    if (!spec)
      throw ConfigError(section, "unknown key '" + key + "'" + lineRef(lineNo) + "; valid keys: " + joined(schema.keys(section)));
    std::string fk = fullKey(section, key);
    if (!seen.insert(fk).second) throw ConfigError(section, "key '" + key + "' set twice" + lineRef(lineNo));
    cfg.values_[fk] = cfg.validate(*spec, value, lineNo);
  }
  return cfg;
}

Config Config::load(const std::string& path, const ConfigSchema& schema, bool allowMissing) {
  std::ifstream in(path);
  if (!in) {
    if (allowMissing) return parse("", schema, path);
    throw ConfigError("file", "cannot read " + path);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), schema, path);
}

std::string Config::validate(const OptionSpec& spec, std::string_view value, int line) const {
  std::string v(value);
  switch (spec.type) {
    case OptionType::String:
    case OptionType::Path:
      if (spec.type == OptionType::Path && !v.empty() && v[0] != '/')
        throw ConfigError(spec.section, spec.key + " = " + v + " must be an absolute path" + lineRef(line));
      return v;
    case OptionType::Bool: {
      auto b = parseBool(v);
      if (!b) throw ConfigError(spec.section, spec.key + " = " + v + " is not a boolean (true/false)" + lineRef(line));
      return *b ? "true" : "false";
    }
    case OptionType::Enum:
      if (std::find(spec.choices.begin(), spec.choices.end(), v) == spec.choices.end())
        throw ConfigError(spec.section, spec.key + " = " + v + " is not one of: " + joined(spec.choices) + lineRef(line));
      return v;
    case OptionType::Int: {
      std::int64_t n = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (v.empty() || ec == std::errc::result_out_of_range || (ec == std::errc() && p == v.data() + v.size() && (n < spec.min || n > spec.max)))
        throw ConfigError(spec.section, spec.key + " = " + v + " is out of range " + std::to_string(spec.min) + ".." +
                                            std::to_string(spec.max) + lineRef(line));
      if (ec != std::errc() || p != v.data() + v.size())
        throw ConfigError(spec.section, spec.key + " = " + v + " is not an integer" + lineRef(line));
      return v;
    }
  }
  return v;
}

const OptionSpec& Config::spec(std::string_view section, std::string_view key) const {
  const OptionSpec* s = schema_ ? schema_->find(section, key) : nullptr;
  if (!s) throw std::logic_error("undeclared option " + fullKey(section, key));
  return *s;
}

std::string Config::getString(std::string_view section, std::string_view key) const {
  const auto& s = spec(section, key);
  auto it = values_.find(fullKey(section, key));
  return it != values_.end() ? it->second : s.defaultValue;
}

std::int64_t Config::getInt(std::string_view section, std::string_view key) const {
  const auto& s = spec(section, key);
  if (s.type != OptionType::Int) throw std::logic_error("not an int option: " + fullKey(section, key));
  auto v = getString(section, key);
  std::int64_t n = 0;
  std::from_chars(v.data(), v.data() + v.size(), n);
  return n;
}

bool Config::getBool(std::string_view section, std::string_view key) const {
  const auto& s = spec(section, key);
  if (s.type != OptionType::Bool) throw std::logic_error("not a bool option: " + fullKey(section, key));
  return getString(section, key) == "true";
}

bool Config::isSet(std::string_view section, std::string_view key) const {
  spec(section, key);
  return values_.count(fullKey(section, key)) > 0;
}

void Config::set(std::string_view section, std::string_view key, std::string_view value) {
  const auto* s = schema_ ? schema_->find(section, key) : nullptr;
  if (!s) throw ConfigError(std::string(section), "unknown key '" + std::string(key) + "'");
  values_[fullKey(section, key)] = validate(*s, value, 0);
}

}  // namespace imp::core
