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

// Whether the Accept header values of a request (every Accept line, each a
// comma-separated list of media ranges, RFC 3261 §20.1) take `essence`
// ("type/subtype"): the most specific range that matches it (the type
// itself, then type/*, then */*) decides, refused with q=0. A range not
// understood is skipped. No value at all: accepted (§20.1, the default).
bool acceptsMediaType(const std::vector<std::string_view>& acceptValues, std::string_view essence);

}  // namespace imp::fcm
