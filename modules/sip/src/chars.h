#pragma once
// Character classes of RFC 3261 §25.1 as lookup tables (internal).
#include <array>
#include <cstdint>
#include <string_view>

namespace imp::sip::chars {

enum : std::uint16_t {
  kAlnum = 1 << 0,
  kToken = 1 << 1,      // token
  kUnreserved = 1 << 2, // alphanum / mark
  kUserUnres = 1 << 3,  // & = + $ , ; ? /
  kPassword = 1 << 4,   // & = + $ ,
  kParamUnres = 1 << 5, // [ ] / : & + $
  kHnvUnres = 1 << 6,   // [ ] / ? : + $
  kHost = 1 << 7,       // alphanum - .
  kReserved = 1 << 8,   // ; / ? : @ & = + $ ,
  kWord = 1 << 9,       // Call-ID word
  kTelChar = 1 << 10,   // tel: number chars (lenient)
  kScheme = 1 << 11,    // alphanum + - .
  kEquals = 1 << 12,    // =
};

constexpr std::array<std::uint16_t, 256> makeTable() {
  std::array<std::uint16_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    std::uint16_t v = 0;
    if (alnum) v |= kAlnum | kToken | kUnreserved | kHost | kWord | kScheme;
    auto in = [c](const char* set) {
      for (const char* p = set; *p; ++p)
        if (*p == c) return true;
      return false;
    };
    if (in("-.!%*_+`'~")) v |= kToken;
    if (in("-_.!~*'()")) v |= kUnreserved;
    if (in("&=+$,;?/")) v |= kUserUnres;
    if (in("&=+$,")) v |= kPassword;
    if (in("[]/:&+$")) v |= kParamUnres;
    if (in("[]/?:+$")) v |= kHnvUnres;
    if (in("-.")) v |= kHost;
    if (in(";/?:@&=+$,")) v |= kReserved;
    if (in("-.!%*_+`'~()<>:\\\"/[]?{}")) v |= kWord;
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || in("*#+-.()pPwW")) v |= kTelChar;
    if (in("+-.")) v |= kScheme;
    if (c == '=') v |= kEquals;
    t[static_cast<std::size_t>(c)] = v;
  }
  return t;
}

inline constexpr std::array<std::uint16_t, 256> kTable = makeTable();

inline bool is(char c, std::uint16_t cls) { return (kTable[static_cast<unsigned char>(c)] & cls) != 0; }

inline bool isHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

inline bool isWs(char c) { return c == ' ' || c == '\t'; }

inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && isWs(s.front())) s.remove_prefix(1);
  while (!s.empty() && isWs(s.back())) s.remove_suffix(1);
  return s;
}

// True if every char of s is in `cls` or is a valid %XX escape.
inline bool allEscaped(std::string_view s, std::uint16_t cls) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return false;
      if (!isHex(s[i + 1]) || !isHex(s[i + 2])) return false;
      i += 2;
    } else if (!is(c, cls)) {
      return false;
    }
  }
  return true;
}

}  // namespace imp::sip::chars
