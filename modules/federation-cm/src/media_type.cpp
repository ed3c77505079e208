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

bool acceptsMediaType(const std::vector<std::string_view>& acceptValues, std::string_view essence) {
  if (acceptValues.empty()) return true;
  auto slash = essence.find('/');
  if (slash == std::string_view::npos) return false;
  MediaType want;
  want.type = std::string(essence.substr(0, slash));
  want.subtype = std::string(essence.substr(slash + 1));
  for (auto& c : want.type) c = lower(c);
  for (auto& c : want.subtype) c = lower(c);
  int best = -1;  // specificity of the best match: 2 exact, 1 type/*, 0 */*
  bool accepted = false;
  for (auto value : acceptValues) {
    // Ranges split at commas outside quoted strings.
    std::size_t start = 0;
    bool quoted = false;
    for (std::size_t i = 0; i <= value.size(); ++i) {
      if (i < value.size()) {
        if (value[i] == '"') quoted = !quoted;
        if (value[i] == '\\' && quoted) {
          ++i;
          continue;
        }
        if (value[i] != ',' || quoted) continue;
      }
      auto range = parseMediaType(value.substr(start, i - start));
      start = i + 1;
      if (!range) continue;
      int spec = -1;
      if (range->type == "*" && range->subtype == "*") spec = 0;
      else if (range->type == want.type && range->subtype == "*") spec = 1;
      else if (range->type == want.type && range->subtype == want.subtype) spec = 2;
      if (spec <= best) continue;
      best = spec;
      accepted = true;
      if (const auto* q = range->param("q")) {
        // qvalue: 0, 0.0.., 1, 1.0..: zero only when every digit is 0.
        accepted = q->find_first_not_of("0.") != std::string::npos;
      }
    }
  }
  return accepted;
}

}  // namespace imp::fcm
