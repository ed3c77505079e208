#pragma once
// Reading JSON request bodies in admin API handlers: every problem becomes
// an AdminError 400 naming the field ({"error":{"code":"invalid_<field>",
// "field":"<field>",...}}), so clients can point at what to fix.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include <Poco/JSON/Object.h>

namespace imp::core::json {

[[noreturn]] void badField(const std::string& field, const std::string& message);
// Refuses any member not in `allowed` (the message lists the valid ones).
void onlyFields(const Poco::JSON::Object::Ptr& body, std::initializer_list<const char*> allowed);
// Absent or null -> nullopt; present with the wrong type -> badField.
std::optional<std::string> optString(const Poco::JSON::Object::Ptr& body, const std::string& name);
std::string reqString(const Poco::JSON::Object::Ptr& body, const std::string& name);
std::optional<bool> optBool(const Poco::JSON::Object::Ptr& body, const std::string& name);
std::optional<std::int64_t> optInt(const Poco::JSON::Object::Ptr& body, const std::string& name);

}  // namespace imp::core::json
