#include <imp/federation_cm/media_type.h>

namespace imp::fcm {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// RFC 2045 token characters: printable ASCII except SP and tspecials.
bool tokenChar(char c) {
  if (c <= ' ' || c >= 127) return false;
  switch (c) {
    case '(': case ')': case '<': case '>': case '@': case ',': case ';': case ':':
    case '\\': case '"': case '/': case '[': case ']': case '?': case '=':
      return false;
    default:
      return true;
  }
}

void skipSpace(std::string_view s, std::size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

std::string token(std::string_view s, std::size_t& i) {
  std::string out;
  while (i < s.size() && tokenChar(s[i])) out += lower(s[i++]);
  return out;
}

}  // namespace

bool MediaType::is(std::string_view want) const {
  const std::string have = essence();
  if (have.size() != want.size()) return false;
  for (std::size_t i = 0; i < have.size(); ++i)
    if (have[i] != lower(want[i])) return false;
  return true;
}

const std::string* MediaType::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return &v;
  return nullptr;
}

std::optional<MediaType> parseMediaType(std::string_view s) {
  MediaType m;
  std::size_t i = 0;
  skipSpace(s, i);
  m.type = token(s, i);
  if (m.type.empty() || i >= s.size() || s[i] != '/') return std::nullopt;
  ++i;
  m.subtype = token(s, i);
  if (m.subtype.empty()) return std::nullopt;
  for (;;) {
    skipSpace(s, i);
    if (i == s.size()) return m;
    if (s[i] != ';') return std::nullopt;
    ++i;
    skipSpace(s, i);
    if (i == s.size()) return m;  // trailing ';'
    std::string name = token(s, i);
    if (name.empty()) return std::nullopt;
    skipSpace(s, i);
    if (i == s.size() || s[i] != '=') return std::nullopt;
    ++i;
    skipSpace(s, i);
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        char c = s[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < s.size()) c = s[i++];
        value += c;
      }
      if (!closed) return std::nullopt;
    } else {
      // Tokens, but Lync's base64 values (msgr=, ms-body=) end in '=' —
      // a tspecial — so a bare value runs to the next ';' or white space.
      while (i < s.size() && s[i] != ';' && s[i] != ' ' && s[i] != '\t' && s[i] != '"') value += s[i++];
      if (value.empty()) return std::nullopt;
    }
    m.params.emplace_back(std::move(name), std::move(value));
  }
}

}  // namespace imp::fcm
