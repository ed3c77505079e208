#pragma once
// URIs as SIP carries them (RFC 3261 §19.1, §25.1; RFC 3966 tel; RFC 2396
// absoluteURI for any other scheme). Parsing never allocates: every field is
// a view into the text given to parseUri(), which must outlive the Uri.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace imp::sip {

enum class UriScheme : std::uint8_t { Sip, Sips, Tel, Other };

struct Uri {
  UriScheme scheme = UriScheme::Other;
  std::string_view schemeText;  // as written ("sip", "SIP", "soap.beep")
  // sip/sips
  std::string_view user;        // escaped form, as written; may be empty
  std::string_view password;
  std::string_view host;        // IPv6 without the brackets
  bool ipv6 = false;
  std::uint16_t port = 0;       // 0 = not given
  std::string_view params;      // ";a=b;lr" including the leading ';', or empty
  std::string_view headers;     // "?a=b&c=d" including the '?', or empty
  // tel: the number; other schemes: everything after "scheme:"
  std::string_view opaque;

  bool isSip() const { return scheme == UriScheme::Sip || scheme == UriScheme::Sips; }
  // Value of a uri-parameter: nullopt if absent, "" for a flag like ";lr".
  // Names compare case-insensitively.
  std::optional<std::string_view> param(std::string_view name) const;
};

// Parses one URI that must span all of `text` (no surrounding whitespace).
// Returns nullopt and sets *error (if given) to a short reason when invalid.
std::optional<Uri> parseUri(std::string_view text, std::string* error = nullptr);

// Decodes %XX escapes; nullopt on a malformed escape.
std::optional<std::string> unescape(std::string_view s);

// Finds ";name[=value]" in a parameter list (generic-param syntax, values
// may be quoted strings); case-insensitive names.
std::optional<std::string_view> findParam(std::string_view params, std::string_view name);

}  // namespace imp::sip
