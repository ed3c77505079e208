#include "imp/core/service_params.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <algorithm>
#include <charconv>

#include "imp/core/admin_http.h"
#include "imp/core/admin_json.h"
#include "imp/core/cluster_settings.h"
#include "imp/core/database.h"

namespace imp::core {

namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The row of a declared parameter, if an administrator set it.
std::optional<std::int64_t> storedIn(DbSession& s, const ServiceParamInfo& p, bool forUpdate) {
  auto r = s.query(std::string("SELECT value FROM core_service_param WHERE service = ? AND name = ?") +
                       (forUpdate ? " FOR UPDATE" : ""),
                   {p.service, p.name});
  if (r.empty()) return std::nullopt;
  return r.num(0, "value");
}

// The limited values: with "unlimited", 0 is no limit, so they start at 1.
std::string bounds(const ServiceParamInfo& p) {
  const auto low = p.zeroIsUnlimited ? std::max<std::int64_t>(p.min, 1) : p.min;
  return std::to_string(low) + ".." + std::to_string(p.max);
}

// For messages: "1..100000 requests/s", "1..1000000 rows/s or unlimited", "on or off".
std::string accepted(const ServiceParamInfo& p) {
  if (p.type == ServiceParamType::Boolean) return "on or off";
  return bounds(p) + (p.unit.empty() ? "" : " " + p.unit) + (p.zeroIsUnlimited ? " or unlimited" : "");
}

// AdminError 404 unless the service is registered.
void requireService(const ModuleRegistry& modules, std::string_view service) {
  if (modules.service(service)) return;
  std::vector<std::string> withParams;
  for (const auto& p : modules.serviceParams())
    if (std::find(withParams.begin(), withParams.end(), p.service) == withParams.end()) withParams.push_back(p.service);
  std::sort(withParams.begin(), withParams.end());
  Poco::JSON::Object::Ptr d = new Poco::JSON::Object;
  Poco::JSON::Array::Ptr valid = new Poco::JSON::Array;
  for (const auto& n : withParams) valid->add(n);
  d->set("valid", valid);
  throw AdminError(404, "unknown_service",
                   "unknown service '" + std::string(service) + "'; services with parameters: " +
                       (withParams.empty() ? std::string("none") : joined(withParams)),
                   d);
}

}  // namespace

bool paramAccepts(const ServiceParamInfo& p, std::int64_t v) {
  return (v >= p.min && v <= p.max) || (p.zeroIsUnlimited && v == 0);
}

std::string formatParamValue(const ServiceParamInfo& p, std::int64_t v) {
  if (p.type == ServiceParamType::Boolean) return v ? "on" : "off";
  if (p.zeroIsUnlimited && v == 0) return "unlimited";
  return std::to_string(v);
}

std::string paramRange(const ServiceParamInfo& p) {
  if (p.type == ServiceParamType::Boolean) return "on|off";
  return bounds(p) + (p.zeroIsUnlimited ? " or unlimited" : "");
}

std::int64_t parseParamValue(const ServiceParamInfo& p, std::string_view text) {
  auto refuse = [&]() -> std::int64_t {
    json::badField("value", "service parameter " + p.name + " of " + p.service + " must be " + accepted(p) + ", not '" +
                                std::string(text) + "'");
  };
  if (p.type == ServiceParamType::Boolean) {
    if (text == "on" || text == "true") return 1;
    if (text == "off" || text == "false") return 0;
    return refuse();
  }
  if (text == "unlimited") return p.zeroIsUnlimited ? 0 : refuse();
  std::int64_t v = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [end, ec] = std::from_chars(first, last, v);
  if (text.empty() || ec != std::errc() || end != last || !paramAccepts(p, v)) return refuse();
  return v;
}

ServiceParams::ServiceParams(Database& db, const ModuleRegistry& modules) : db_(db), modules_(modules) {}

const ServiceParamInfo& ServiceParams::info(std::string_view service, std::string_view name) const {
  if (const auto* p = modules_.serviceParam(service, name)) return *p;
  requireService(modules_, service);
  std::vector<std::string> names;
  for (const auto* p : modules_.serviceParams(service)) names.push_back(p->name);
  Poco::JSON::Object::Ptr d = new Poco::JSON::Object;
  Poco::JSON::Array::Ptr valid = new Poco::JSON::Array;
  for (const auto& n : names) valid->add(n);
  d->set("valid", valid);
  throw AdminError(404, "unknown_service_param",
                   std::string(service) + " has no service parameter '" + std::string(name) + "'" +
                       (names.empty() ? std::string("; it has none") : "; its parameters: " + joined(names)),
                   d);
}

std::optional<std::int64_t> ServiceParams::stored(std::string_view service, std::string_view name) const {
  const auto& p = info(service, name);
  std::optional<std::int64_t> v;
  db_.run([&](DbSession& s) { v = storedIn(s, p, false); });
  if (v && !paramAccepts(p, *v)) return std::nullopt;
  return v;
}

std::int64_t ServiceParams::get(std::string_view service, std::string_view name) const {
  return stored(service, name).value_or(info(service, name).defaultValue);
}

std::vector<ServiceParams::Entry> ServiceParams::list(std::string_view service) const {
  requireService(modules_, service);
  std::vector<Entry> out;
  for (const auto* p : modules_.serviceParams(service)) out.push_back({p, p->defaultValue, false, {}});
  if (out.empty()) return out;
  auto rows = db_.query(
      "SELECT name, value, DATE_FORMAT(changed_at, '%Y-%m-%dT%H:%i:%s') AS changed_at FROM core_service_param"
      " WHERE service = ?",
      {std::string(service)});
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (auto& e : out)
      if (e.info->name == rows.str(i, "name") && paramAccepts(*e.info, rows.num(i, "value"))) {
        e.value = rows.num(i, "value");
        e.stored = true;
        e.changedAt = rows.str(i, "changed_at");
      }
  return out;
}

ServiceParams::Change ServiceParams::set(std::string_view service, std::string_view name, std::int64_t value) {
  const auto& p = info(service, name);
  if (!paramAccepts(p, value)) parseParamValue(p, std::to_string(value));  // throws with the range
  Change c;
  db_.transaction([&](DbSession& s) {
    c = {};  // the transaction may run again
    // Read-modify-write under the row lock: the answer's old value is the
    // one this change replaced, even with two administrators at once.
    auto before = storedIn(s, p, true);
    c.oldValue = before && paramAccepts(p, *before) ? *before : p.defaultValue;
    c.newValue = value;
    if (before && *before == value) return;
    s.exec(
        "INSERT INTO core_service_param (service, name, value) VALUES (?, ?, ?)"
        " ON DUPLICATE KEY UPDATE value = VALUES(value), changed_at = CURRENT_TIMESTAMP(3)",
        {p.service, p.name, value});
    // Same transaction: running services see the value with the generation.
    c.generation = ClusterSettings::bump(s);
    c.changed = true;
  });
  return c;
}

ServiceParams::Change ServiceParams::set(std::string_view service, std::string_view name, std::string_view text) {
  const auto& p = info(service, name);
  return set(service, name, parseParamValue(p, text));
}

ServiceParams::Change ServiceParams::reset(std::string_view service, std::string_view name) {
  const auto& p = info(service, name);
  Change c;
  db_.transaction([&](DbSession& s) {
    c = {};
    auto before = storedIn(s, p, true);
    c.oldValue = before && paramAccepts(p, *before) ? *before : p.defaultValue;
    c.newValue = p.defaultValue;
    if (!before) return;
    s.exec("DELETE FROM core_service_param WHERE service = ? AND name = ?", {p.service, p.name});
    c.generation = ClusterSettings::bump(s);
    c.changed = true;
  });
  return c;
}

}  // namespace imp::core
