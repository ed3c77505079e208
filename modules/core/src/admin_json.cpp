#include "imp/core/admin_json.h"

#include <limits>

#include "imp/core/admin_http.h"

namespace imp::core::json {

using Obj = Poco::JSON::Object;

void badField(const std::string& field, const std::string& message) {
  Obj::Ptr d = new Obj;
  d->set("field", field);
  throw AdminError(400, "invalid_" + field, message, d);
}

void onlyFields(const Obj::Ptr& body, std::initializer_list<const char*> allowed) {
  for (const auto& [k, v] : *body) {
    bool ok = false;
    std::string list;
    for (const char* a : allowed) {
      ok = ok || k == a;
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    if (!ok) {
      Obj::Ptr d = new Obj;
      d->set("field", k);
      throw AdminError(400, "unknown_field", "unknown field '" + k + "'; valid fields: " + list, d);
    }
  }
}

std::optional<std::string> optString(const Obj::Ptr& body, const std::string& name) {
  if (!body->has(name) || body->get(name).isEmpty()) return std::nullopt;
  auto v = body->get(name);
  if (!v.isString()) badField(name, "field '" + name + "' must be a string");
  return v.extract<std::string>();
}

std::string reqString(const Obj::Ptr& body, const std::string& name) {
  auto v = optString(body, name);
  if (!v) badField(name, "field '" + name + "' is required");
  return *v;
}

std::optional<bool> optBool(const Obj::Ptr& body, const std::string& name) {
  if (!body->has(name) || body->get(name).isEmpty()) return std::nullopt;
  auto v = body->get(name);
  if (!v.isBoolean()) badField(name, "field '" + name + "' must be true or false");
  return v.extract<bool>();
}

std::optional<std::int64_t> optInt(const Obj::Ptr& body, const std::string& name) {
  if (!body->has(name) || body->get(name).isEmpty()) return std::nullopt;
  auto v = body->get(name);
  if (!v.isInteger() || v.isBoolean()) {
    std::string shown = v.isString() ? " ('" + v.extract<std::string>() + "')" : "";
    badField(name, "field '" + name + "' must be a whole number" + shown);
  }
  if (v.isSigned()) return v.convert<std::int64_t>();
  auto u = v.convert<std::uint64_t>();
  return u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ? std::numeric_limits<std::int64_t>::max()
                                                                                   : static_cast<std::int64_t>(u);
}

}  // namespace imp::core::json
