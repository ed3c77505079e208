#pragma once
// UTF-8 checks shared by every module that takes text from outside (SIP
// bodies, bulk files, roster names): one implementation of RFC 3629.
// Pure, any thread.
#include <cstddef>
#include <string_view>

namespace imp::core {

// The first byte offset in `s` that is not well-formed UTF-8 (RFC 3629: no
// overlong forms, surrogates or code points above U+10FFFF), or npos.
std::size_t firstInvalidUtf8(std::string_view s);

inline bool validUtf8(std::string_view s) { return firstInvalidUtf8(s) == std::string_view::npos; }

// The number of characters (code points) of well-formed UTF-8 text: every
// byte that starts one.
std::size_t utf8Chars(std::string_view s);

}  // namespace imp::core
