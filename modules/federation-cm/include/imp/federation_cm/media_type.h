#pragma once
// Content-Type values of SIP bodies (RFC 3261 §20.15, RFC 2045 §5.1):
// "type/subtype *( ; name=value )", values as tokens or quoted strings.
// Pure functions, any thread.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imp::fcm {

struct MediaType {
  std::string type;     // lower-cased: "text"
  std::string subtype;  // lower-cased: "plain"
  // In order; names lower-cased, values as written (quotes and \-escapes removed).
  std::vector<std::pair<std::string, std::string>> params;

  // "text/plain"
  std::string essence() const { return type + '/' + subtype; }
  bool is(std::string_view essence) const;  // case-insensitive compare with "type/subtype"
  // The first parameter called `name` (lower-case), or nullptr.
  const std::string* param(std::string_view name) const;
};

// nullopt when `value` is not type/subtype with well-formed parameters.
// Lenient where peers are: white space around ';' and '=', a trailing ';'.
std::optional<MediaType> parseMediaType(std::string_view value);

}  // namespace imp::fcm
