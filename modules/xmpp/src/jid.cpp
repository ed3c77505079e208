// JID preparation and enforcement (RFC 7622; PRECIS: RFC 8264, RFC 8265;
// contextual rules RFC 5892 Appendix A; Bidi Rule RFC 5893 §2). Unicode
// properties, normalisation, case mapping and IDNA come from ICU.
#include <imp/xmpp/jid.h>

#include <unicode/bytestream.h>
#include <unicode/idna.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/uscript.h>
#include <unicode/unistr.h>

#include <arpa/inet.h>

#include <cstdio>
#include <memory>
#include <vector>

namespace imp::xmpp {
namespace {

using icu::UnicodeString;

void setWhy(std::string* why, std::string text) {
  if (why) *why = std::move(text);
}

std::string cpName(char32_t c) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(c));
  std::string out = buf;
  if (c >= 0x21 && c <= 0x7E) {
    out += " '";
    out += static_cast<char>(c);
    out += '\'';
  }
  return out;
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF. On failure *badOffset is the offending byte's offset.
bool decodeUtf8(std::string_view s, std::vector<char32_t>& out, std::size_t* badOffset) {
  out.clear();
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto b0 = static_cast<unsigned char>(s[i]);
    char32_t c;
    std::size_t len;
    if (b0 < 0x80) {
      c = b0;
      len = 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      c = b0 & 0x1F;
      len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      c = b0 & 0x0F;
      len = 3;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      c = b0 & 0x07;
      len = 4;
    } else {
      *badOffset = i;
      return false;
    }
    if (i + len > s.size()) {
      *badOffset = i;
      return false;
    }
    for (std::size_t k = 1; k < len; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) {
        *badOffset = i + k;
        return false;
      }
      c = (c << 6) | (b & 0x3F);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) || (c >= 0xD800 && c <= 0xDFFF)) {
      *badOffset = i;
      return false;
    }
    out.push_back(c);
    i += len;
  }
  return true;
}

const icu::Normalizer2& nfc() {
  static const icu::Normalizer2* n = [] {
    UErrorCode e = U_ZERO_ERROR;
    const icu::Normalizer2* p = icu::Normalizer2::getNFCInstance(e);
    if (U_FAILURE(e) || !p) {
      std::fprintf(stderr, "imp_xmpp: ICU NFC data unavailable: %s\n", u_errorName(e));
      std::abort();
    }
    return p;
  }();
  return *n;
}

const icu::Normalizer2& nfkc() {
  static const icu::Normalizer2* n = [] {
    UErrorCode e = U_ZERO_ERROR;
    const icu::Normalizer2* p = icu::Normalizer2::getNFKCInstance(e);
    if (U_FAILURE(e) || !p) {
      std::fprintf(stderr, "imp_xmpp: ICU NFKC data unavailable: %s\n", u_errorName(e));
      std::abort();
    }
    return p;
  }();
  return *n;
}

const icu::Normalizer2& nfkd() {
  static const icu::Normalizer2* n = [] {
    UErrorCode e = U_ZERO_ERROR;
    const icu::Normalizer2* p = icu::Normalizer2::getNFKDInstance(e);
    if (U_FAILURE(e) || !p) {
      std::fprintf(stderr, "imp_xmpp: ICU NFKD data unavailable: %s\n", u_errorName(e));
      std::abort();
    }
    return p;
  }();
  return *n;
}

const icu::IDNA& uts46() {
  static const std::unique_ptr<icu::IDNA> idna = [] {
    UErrorCode e = U_ZERO_ERROR;
    std::unique_ptr<icu::IDNA> p(icu::IDNA::createUTS46Instance(
        UIDNA_USE_STD3_RULES | UIDNA_CHECK_BIDI | UIDNA_CHECK_CONTEXTJ | UIDNA_CHECK_CONTEXTO |
            UIDNA_NONTRANSITIONAL_TO_ASCII | UIDNA_NONTRANSITIONAL_TO_UNICODE,
        e));
    if (U_FAILURE(e) || !p) {
      std::fprintf(stderr, "imp_xmpp: ICU UTS #46 unavailable: %s\n", u_errorName(e));
      std::abort();
    }
    return p;
  }();
  return *idna;
}

// PRECIS derived property of a code point (RFC 8264 §8, §9).
enum class Precis { Pvalid, FreeformOnly, ContextJ, ContextO, Disallowed, Unassigned };

bool inCat(int gc, std::initializer_list<int> cats) {
  for (int c : cats)
    if (gc == c) return true;
  return false;
}

Precis precisProperty(char32_t c) {
  // (F) Exceptions (RFC 5892 §2.6).
  switch (c) {
    case 0x00DF: case 0x03C2: case 0x06FD: case 0x06FE: case 0x0F0B: case 0x3007:
      return Precis::Pvalid;
    case 0x00B7: case 0x0375: case 0x05F3: case 0x05F4: case 0x30FB:
      return Precis::ContextO;
    case 0x0640: case 0x07FA: case 0x302E: case 0x302F: case 0x3031: case 0x3032:
    case 0x3033: case 0x3034: case 0x3035: case 0x303B:
      return Precis::Disallowed;
    default: break;
  }
  // (G) BackwardCompatible is empty.
  const auto cp = static_cast<UChar32>(c);
  const int gc = u_charType(cp);
  const bool nonchar = u_hasBinaryProperty(cp, UCHAR_NONCHARACTER_CODE_POINT);
  if (gc == U_UNASSIGNED && !nonchar) return Precis::Unassigned;                           // (J)
  if (c >= 0x21 && c <= 0x7E) return Precis::Pvalid;                                        // (K) ASCII7
  if (u_hasBinaryProperty(cp, UCHAR_JOIN_CONTROL)) return Precis::ContextJ;                 // (H)
  const int hst = u_getIntPropertyValue(cp, UCHAR_HANGUL_SYLLABLE_TYPE);
  if (hst == U_HST_LEADING_JAMO || hst == U_HST_VOWEL_JAMO || hst == U_HST_TRAILING_JAMO)   // (I)
    return Precis::Disallowed;
  if (u_hasBinaryProperty(cp, UCHAR_DEFAULT_IGNORABLE_CODE_POINT) || nonchar)              // (M)
    return Precis::Disallowed;
  if (gc == U_CONTROL_CHAR) return Precis::Disallowed;                                       // (L)
  {                                                                                          // (Q) HasCompat
    UnicodeString one(cp);
    UErrorCode e = U_ZERO_ERROR;
    UnicodeString k = nfkc().normalize(one, e);
    if (U_SUCCESS(e) && k != one) return Precis::FreeformOnly;
  }
  if (inCat(gc, {U_LOWERCASE_LETTER, U_UPPERCASE_LETTER, U_OTHER_LETTER, U_DECIMAL_DIGIT_NUMBER,
                 U_MODIFIER_LETTER, U_NON_SPACING_MARK, U_COMBINING_SPACING_MARK}))
    return Precis::Pvalid;                                                                   // (A)
  if (inCat(gc, {U_TITLECASE_LETTER, U_LETTER_NUMBER, U_OTHER_NUMBER, U_ENCLOSING_MARK}))   // (R)
    return Precis::FreeformOnly;
  if (gc == U_SPACE_SEPARATOR) return Precis::FreeformOnly;                                  // (N)
  if (inCat(gc, {U_MATH_SYMBOL, U_CURRENCY_SYMBOL, U_MODIFIER_SYMBOL, U_OTHER_SYMBOL}))      // (O)
    return Precis::FreeformOnly;
  if (inCat(gc, {U_CONNECTOR_PUNCTUATION, U_DASH_PUNCTUATION, U_START_PUNCTUATION, U_END_PUNCTUATION,
                 U_INITIAL_PUNCTUATION, U_FINAL_PUNCTUATION, U_OTHER_PUNCTUATION}))          // (P)
    return Precis::FreeformOnly;
  return Precis::Disallowed;
}

bool isVirama(char32_t c) { return u_getCombiningClass(static_cast<UChar32>(c)) == 9; }

int joiningType(char32_t c) { return u_getIntPropertyValue(static_cast<UChar32>(c), UCHAR_JOINING_TYPE); }

UScriptCode scriptOf(char32_t c) {
  UErrorCode e = U_ZERO_ERROR;
  UScriptCode s = uscript_getScript(static_cast<UChar32>(c), &e);
  return U_SUCCESS(e) ? s : USCRIPT_INVALID_CODE;
}

// RFC 5892 Appendix A rules for the CONTEXTJ/CONTEXTO code point at i.
bool contextRuleHolds(const std::vector<char32_t>& s, std::size_t i) {
  const char32_t c = s[i];
  const bool hasBefore = i > 0, hasAfter = i + 1 < s.size();
  switch (c) {
    case 0x200C: {  // A.1 ZERO WIDTH NON-JOINER
      if (hasBefore && isVirama(s[i - 1])) return true;
      // (Joining_Type:{L,D})(Joining_Type:T)*\u200C(Joining_Type:T)*(Joining_Type:{R,D})
      bool left = false;
      for (std::size_t k = i; k-- > 0;) {
        int jt = joiningType(s[k]);
        if (jt == U_JT_TRANSPARENT) continue;
        left = jt == U_JT_LEFT_JOINING || jt == U_JT_DUAL_JOINING;
        break;
      }
      if (!left) return false;
      for (std::size_t k = i + 1; k < s.size(); ++k) {
        int jt = joiningType(s[k]);
        if (jt == U_JT_TRANSPARENT) continue;
        return jt == U_JT_RIGHT_JOINING || jt == U_JT_DUAL_JOINING;
      }
      return false;
    }
    case 0x200D:  // A.2 ZERO WIDTH JOINER
      return hasBefore && isVirama(s[i - 1]);
    case 0x00B7:  // A.3 MIDDLE DOT: between two 'l'
      return hasBefore && hasAfter && s[i - 1] == 0x006C && s[i + 1] == 0x006C;
    case 0x0375:  // A.4 GREEK LOWER NUMERAL SIGN (KERAIA)
      return hasAfter && scriptOf(s[i + 1]) == USCRIPT_GREEK;
    case 0x05F3:  // A.5 HEBREW PUNCTUATION GERESH
    case 0x05F4:  // A.6 HEBREW PUNCTUATION GERSHAYIM
      return hasBefore && scriptOf(s[i - 1]) == USCRIPT_HEBREW;
    case 0x30FB:  // A.7 KATAKANA MIDDLE DOT
      for (char32_t o : s) {
        if (o == 0x30FB) continue;
        auto sc = scriptOf(o);
        if (sc == USCRIPT_HIRAGANA || sc == USCRIPT_KATAKANA || sc == USCRIPT_HAN) return true;
      }
      return false;
    default:
      return false;
  }
}

// The Bidi Rule (RFC 5893 §2), applied to strings that hold right-to-left
// characters (RFC 8265 §3.3.3 step 5).
bool bidiRuleHolds(const std::vector<char32_t>& s, std::string* detail) {
  bool rtl = false;
  for (char32_t c : s) {
    auto d = u_charDirection(static_cast<UChar32>(c));
    if (d == U_RIGHT_TO_LEFT || d == U_RIGHT_TO_LEFT_ARABIC || d == U_ARABIC_NUMBER) rtl = true;
  }
  if (!rtl || s.empty()) return true;
  auto dir = [](char32_t c) { return u_charDirection(static_cast<UChar32>(c)); };
  const auto first = dir(s.front());
  if (first == U_RIGHT_TO_LEFT || first == U_RIGHT_TO_LEFT_ARABIC) {
    bool en = false, an = false;
    for (char32_t c : s) {
      auto d = dir(c);
      if (!(d == U_RIGHT_TO_LEFT || d == U_RIGHT_TO_LEFT_ARABIC || d == U_ARABIC_NUMBER || d == U_EUROPEAN_NUMBER ||
            d == U_EUROPEAN_NUMBER_SEPARATOR || d == U_COMMON_NUMBER_SEPARATOR || d == U_EUROPEAN_NUMBER_TERMINATOR ||
            d == U_OTHER_NEUTRAL || d == U_BOUNDARY_NEUTRAL || d == U_DIR_NON_SPACING_MARK)) {
        *detail = "bidi rule 2: " + cpName(c) + " may not appear in a right-to-left string";
        return false;
      }
      en |= d == U_EUROPEAN_NUMBER;
      an |= d == U_ARABIC_NUMBER;
    }
    if (en && an) {
      *detail = "bidi rule 4: European and Arabic-Indic digits are mixed";
      return false;
    }
    for (std::size_t k = s.size(); k-- > 0;) {
      auto d = dir(s[k]);
      if (d == U_DIR_NON_SPACING_MARK) continue;
      if (d == U_RIGHT_TO_LEFT || d == U_RIGHT_TO_LEFT_ARABIC || d == U_EUROPEAN_NUMBER || d == U_ARABIC_NUMBER)
        return true;
      break;
    }
    *detail = "bidi rule 3: a right-to-left string must end with a right-to-left character or a digit";
    return false;
  }
  if (first == U_LEFT_TO_RIGHT) {
    // Rule 5 admits no R, AL or AN: a left-to-right string that holds them fails.
    for (char32_t c : s) {
      auto d = dir(c);
      if (!(d == U_LEFT_TO_RIGHT || d == U_EUROPEAN_NUMBER || d == U_EUROPEAN_NUMBER_SEPARATOR ||
            d == U_COMMON_NUMBER_SEPARATOR || d == U_EUROPEAN_NUMBER_TERMINATOR || d == U_OTHER_NEUTRAL ||
            d == U_BOUNDARY_NEUTRAL || d == U_DIR_NON_SPACING_MARK)) {
        *detail = "bidi rule 5: " + cpName(c) + " may not appear in a left-to-right string";
        return false;
      }
    }
    return true;  // unreachable in practice: rtl was true, so rule 5 failed above
  }
  *detail = "bidi rule 1: a string with right-to-left characters must start with a letter";
  return false;
}

enum class Profile { UsernameCaseMapped, OpaqueString };

std::vector<char32_t> toCodePoints(const UnicodeString& u) {
  std::vector<char32_t> out;
  out.reserve(static_cast<std::size_t>(u.length()));
  for (int32_t i = 0; i < u.length();) {
    UChar32 c = u.char32At(i);
    out.push_back(static_cast<char32_t>(c));
    i += U16_LENGTH(c);
  }
  return out;
}

UnicodeString fromCodePoints(const std::vector<char32_t>& cps) {
  UnicodeString u;
  for (char32_t c : cps) u.append(static_cast<UChar32>(c));
  return u;
}

// Checks every code point against the profile's class and the contextual
// rules; `part` names the JID part in the reason.
bool enforceClass(const std::vector<char32_t>& s, Profile p, std::string_view part, std::string* why) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    switch (precisProperty(c)) {
      case Precis::Pvalid:
        break;
      case Precis::FreeformOnly:
        if (p == Profile::OpaqueString) break;
        setWhy(why, std::string(part) + ": " + cpName(c) +
                        " is not allowed by the PRECIS IdentifierClass (RFC 8264 §9: spaces, symbols, punctuation "
                        "and compatibility characters are Freeform-only)");
        return false;
      case Precis::ContextJ:
      case Precis::ContextO:
        if (contextRuleHolds(s, i)) break;
        setWhy(why, std::string(part) + ": " + cpName(c) + " is not allowed here by its contextual rule (RFC 5892 Appendix A)");
        return false;
      case Precis::Disallowed:
        setWhy(why, std::string(part) + ": " + cpName(c) +
                        " is disallowed by PRECIS (RFC 8264 §9: control, ignorable, old Hangul jamo or other "
                        "disallowed code point)");
        return false;
      case Precis::Unassigned:
        setWhy(why, std::string(part) + ": " + cpName(c) + " is unassigned in Unicode and so not allowed (RFC 8264 §9.4)");
        return false;
    }
  }
  return true;
}

std::optional<std::string> checkLength(std::string out, std::string_view part, std::string* why) {
  if (out.empty()) {
    setWhy(why, std::string(part) + ": empty");
    return std::nullopt;
  }
  if (out.size() > kMaxJidPartOctets) {
    setWhy(why, std::string(part) + ": " + std::to_string(out.size()) + " octets, more than 1023 (RFC 7622 §3.1)");
    return std::nullopt;
  }
  return out;
}

bool isLocalpartExcluded(char32_t c) {
  switch (c) {
    case '"': case '&': case '\'': case '/': case ':': case '<': case '>': case '@':
      return true;
    default:
      return false;
  }
}

}  // namespace

std::optional<std::string> normaliseLocalpart(std::string_view in, std::string* why) {
  if (in.empty()) {
    setWhy(why, "localpart: empty");
    return std::nullopt;
  }
  // Fast path: ASCII. Width mapping, NFC and the bidi rule leave it as it
  // is, toLowerCase() is the ASCII one, and the IdentifierClass admits
  // exactly 0x21..0x7E of it.
  bool ascii = true;
  for (char ch : in) ascii &= static_cast<unsigned char>(ch) < 0x80;
  if (ascii) {
    std::string out(in);
    for (char& ch : out) {
      auto c = static_cast<char32_t>(static_cast<unsigned char>(ch));
      if (isLocalpartExcluded(c)) {
        setWhy(why, "localpart: " + cpName(c) + " is not allowed (RFC 7622 §3.3.1)");
        return std::nullopt;
      }
      if (c < 0x21 || c > 0x7E) {
        setWhy(why, "localpart: " + cpName(c) +
                        (c == 0x20 ? std::string(" (space) is not allowed by the PRECIS IdentifierClass (RFC 8264 §9.14)")
                                   : std::string(" (control character) is disallowed by PRECIS (RFC 8264 §9.12)")));
        return std::nullopt;
      }
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    }
    return checkLength(std::move(out), "localpart", why);
  }
  std::vector<char32_t> cps;
  std::size_t bad = 0;
  if (!decodeUtf8(in, cps, &bad)) {
    setWhy(why, "localpart: invalid UTF-8 at octet " + std::to_string(bad));
    return std::nullopt;
  }
  // 1. Width mapping (RFC 8265 §3.3.2 step 1): fullwidth and halfwidth
  // characters to their decomposition.
  UnicodeString mapped;
  for (char32_t c : cps) {
    auto dt = u_getIntPropertyValue(static_cast<UChar32>(c), UCHAR_DECOMPOSITION_TYPE);
    UnicodeString dec;
    if ((dt == U_DT_WIDE || dt == U_DT_NARROW) && nfkd().getDecomposition(static_cast<UChar32>(c), dec))
      mapped.append(dec);
    else
      mapped.append(static_cast<UChar32>(c));
  }
  // Preparation (RFC 8265 §3.3.2 step 2): only IdentifierClass code points.
  auto prepared = toCodePoints(mapped);
  for (char32_t c : prepared)
    if (isLocalpartExcluded(c)) {
      setWhy(why, "localpart: " + cpName(c) + " is not allowed (RFC 7622 §3.3.1)");
      return std::nullopt;
    }
  if (!enforceClass(prepared, Profile::UsernameCaseMapped, "localpart", why)) return std::nullopt;
  // 3. Case mapping: toLowerCase(); 4. NFC.
  mapped.toLower(icu::Locale::getRoot());
  UErrorCode e = U_ZERO_ERROR;
  UnicodeString normal = nfc().normalize(mapped, e);
  if (U_FAILURE(e)) {
    setWhy(why, std::string("localpart: normalisation failed: ") + u_errorName(e));
    return std::nullopt;
  }
  auto final = toCodePoints(normal);
  // 5. Directionality, then the class again on the result (RFC 8264 §7).
  std::string detail;
  if (!bidiRuleHolds(final, &detail)) {
    setWhy(why, "localpart: " + detail + " (RFC 5893 §2)");
    return std::nullopt;
  }
  for (char32_t c : final)
    if (isLocalpartExcluded(c)) {
      setWhy(why, "localpart: " + cpName(c) + " is not allowed (RFC 7622 §3.3.1)");
      return std::nullopt;
    }
  if (!enforceClass(final, Profile::UsernameCaseMapped, "localpart", why)) return std::nullopt;
  std::string out;
  normal.toUTF8String(out);
  return checkLength(std::move(out), "localpart", why);
}

std::optional<std::string> normaliseResourcepart(std::string_view in, std::string* why) {
  if (in.empty()) {
    setWhy(why, "resourcepart: empty");
    return std::nullopt;
  }
  bool ascii = true;
  for (char ch : in) ascii &= static_cast<unsigned char>(ch) < 0x80;
  if (ascii) {
    // OpaqueString admits all of printable ASCII and the space.
    for (char ch : in) {
      auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c == 0x7F) {
        setWhy(why, "resourcepart: " + cpName(c) + " (control character) is disallowed by PRECIS (RFC 8264 §9.12)");
        return std::nullopt;
      }
    }
    return checkLength(std::string(in), "resourcepart", why);
  }
  std::vector<char32_t> cps;
  std::size_t bad = 0;
  if (!decodeUtf8(in, cps, &bad)) {
    setWhy(why, "resourcepart: invalid UTF-8 at octet " + std::to_string(bad));
    return std::nullopt;
  }
  if (!enforceClass(cps, Profile::OpaqueString, "resourcepart", why)) return std::nullopt;
  // Additional mapping (RFC 8265 §4.2.2 step 2): non-ASCII spaces to U+0020.
  for (char32_t& c : cps)
    if (c != 0x20 && u_charType(static_cast<UChar32>(c)) == U_SPACE_SEPARATOR) c = 0x20;
  UErrorCode e = U_ZERO_ERROR;
  UnicodeString normal = nfc().normalize(fromCodePoints(cps), e);
  if (U_FAILURE(e)) {
    setWhy(why, std::string("resourcepart: normalisation failed: ") + u_errorName(e));
    return std::nullopt;
  }
  if (!enforceClass(toCodePoints(normal), Profile::OpaqueString, "resourcepart", why)) return std::nullopt;
  std::string out;
  normal.toUTF8String(out);
  return checkLength(std::move(out), "resourcepart", why);
}

namespace {

std::string idnaErrors(uint32_t errors) {
  struct Bit {
    uint32_t bit;
    const char* text;
  };
  static const Bit kBits[] = {
      {UIDNA_ERROR_EMPTY_LABEL, "empty label"},
      {UIDNA_ERROR_LABEL_TOO_LONG, "a label is longer than 63 octets"},
      {UIDNA_ERROR_LEADING_HYPHEN, "a label starts with '-'"},
      {UIDNA_ERROR_TRAILING_HYPHEN, "a label ends with '-'"},
      {UIDNA_ERROR_HYPHEN_3_4, "a label has '--' in the third and fourth positions"},
      {UIDNA_ERROR_LEADING_COMBINING_MARK, "a label starts with a combining mark"},
      {UIDNA_ERROR_DISALLOWED, "disallowed character"},
      {UIDNA_ERROR_PUNYCODE, "an xn-- label is not valid Punycode"},
      {UIDNA_ERROR_LABEL_HAS_DOT, "a label contains a dot"},
      {UIDNA_ERROR_INVALID_ACE_LABEL, "an xn-- label decodes to an invalid label"},
      {UIDNA_ERROR_BIDI, "the bidi rule fails"},
      {UIDNA_ERROR_CONTEXTJ, "a joiner is out of context"},
      {UIDNA_ERROR_CONTEXTO_PUNCTUATION, "a contextual punctuation character is out of context"},
      {UIDNA_ERROR_CONTEXTO_DIGITS, "Arabic-Indic digit sets are mixed"},
  };
  std::string out;
  for (const auto& b : kBits)
    if (errors & b.bit) {
      if (!out.empty()) out += ", ";
      out += b.text;
    }
  return out.empty() ? std::string("invalid") : out;
}

}  // namespace

std::optional<std::string> normaliseDomainpart(std::string_view in, std::string* why) {
  if (in.empty()) {
    setWhy(why, "domainpart: empty");
    return std::nullopt;
  }
  // IP literal (RFC 7622 §3.2: IP-literal of RFC 3986 §3.2.2).
  if (in.front() == '[') {
    if (in.size() < 3 || in.back() != ']') {
      setWhy(why, "domainpart: an IP literal must be enclosed in '[' and ']'");
      return std::nullopt;
    }
    std::string inner(in.substr(1, in.size() - 2));
    unsigned char buf[16];
    if (inet_pton(AF_INET6, inner.c_str(), buf) != 1) {
      setWhy(why, "domainpart: '" + inner + "' is not an IPv6 address");
      return std::nullopt;
    }
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, buf, text, sizeof text);  // canonical form (RFC 5952)
    return "[" + std::string(text) + "]";
  }
  std::vector<char32_t> cps;
  std::size_t bad = 0;
  if (!decodeUtf8(in, cps, &bad)) {
    setWhy(why, "domainpart: invalid UTF-8 at octet " + std::to_string(bad));
    return std::nullopt;
  }
  std::string_view name = in;
  // A final label separator is dropped (RFC 7622 §3.2); UTS #46 maps the
  // other dots (U+3002, U+FF0E, U+FF61) to '.' first, handled below.
  if (name.back() == '.') name.remove_suffix(1);
  if (name.empty()) {
    setWhy(why, "domainpart: empty");
    return std::nullopt;
  }
  UErrorCode e = U_ZERO_ERROR;
  icu::IDNAInfo info;
  std::string unicode;
  icu::StringByteSink<std::string> sink(&unicode);
  uts46().nameToUnicodeUTF8(icu::StringPiece(name.data(), static_cast<int32_t>(name.size())), sink, info, e);
  if (U_FAILURE(e)) {
    setWhy(why, std::string("domainpart: IDNA processing failed: ") + u_errorName(e));
    return std::nullopt;
  }
  if (!unicode.empty() && unicode.back() == '.') {
    unicode.pop_back();
    // "example.com.." still has an empty label.
    if (!unicode.empty() && unicode.back() == '.') {
      setWhy(why, "domainpart: empty label (IDNA2008, UTS #46)");
      return std::nullopt;
    }
  }
  uint32_t errors = info.getErrors();
  if (errors != 0) {
    setWhy(why, "domainpart: " + idnaErrors(errors) + " (IDNA2008, UTS #46)");
    return std::nullopt;
  }
  // Label lengths are DNS's: at most 63 octets each in the ACE form.
  std::string ascii;
  icu::StringByteSink<std::string> asink(&ascii);
  icu::IDNAInfo ainfo;
  e = U_ZERO_ERROR;
  uts46().nameToASCII_UTF8(icu::StringPiece(unicode.data(), static_cast<int32_t>(unicode.size())), asink, ainfo, e);
  if (U_FAILURE(e) || (ainfo.getErrors() & ~static_cast<uint32_t>(UIDNA_ERROR_DOMAIN_NAME_TOO_LONG)) != 0) {
    setWhy(why, "domainpart: " + idnaErrors(ainfo.getErrors() & ~static_cast<uint32_t>(UIDNA_ERROR_DOMAIN_NAME_TOO_LONG)) +
                    " (IDNA2008, UTS #46)");
    return std::nullopt;
  }
  std::size_t start = 0;
  while (start <= ascii.size()) {
    std::size_t dot = ascii.find('.', start);
    std::size_t len = (dot == std::string::npos ? ascii.size() : dot) - start;
    if (len == 0 || len > 63) {
      setWhy(why, len == 0 ? std::string("domainpart: empty label")
                           : "domainpart: label of " + std::to_string(len) + " octets, more than 63 (RFC 7622 §3.2, RFC 1034 §3.1)");
      return std::nullopt;
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return checkLength(std::move(unicode), "domainpart", why);
}

std::optional<Jid> Jid::fromParts(std::string_view local, std::string_view domain, std::string_view resource,
                                  std::string* why) {
  Jid j;
  if (!local.empty()) {
    auto l = normaliseLocalpart(local, why);
    if (!l) return std::nullopt;
    j.local_ = std::move(*l);
  }
  auto d = normaliseDomainpart(domain, why);
  if (!d) return std::nullopt;
  j.domain_ = std::move(*d);
  if (!resource.empty()) {
    auto r = normaliseResourcepart(resource, why);
    if (!r) return std::nullopt;
    j.resource_ = std::move(*r);
  }
  return j;
}

std::optional<Jid> Jid::parse(std::string_view text, std::string* why) {
  if (text.empty()) {
    setWhy(why, "empty address");
    return std::nullopt;
  }
  // RFC 7622 §3.1: the resourcepart starts at the first '/', the localpart
  // ends at the first '@' before it.
  std::string_view rest = text, resource;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    resource = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (resource.empty()) {
      setWhy(why, "resourcepart: empty after '/' (RFC 7622 §3.1)");
      return std::nullopt;
    }
  }
  std::string_view local, domain = rest;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    local = rest.substr(0, at);
    domain = rest.substr(at + 1);
    if (local.empty()) {
      setWhy(why, "localpart: empty before '@' (RFC 7622 §3.1)");
      return std::nullopt;
    }
  }
  if (domain.empty()) {
    setWhy(why, "domainpart: empty (RFC 7622 §3.2)");
    return std::nullopt;
  }
  return fromParts(local, domain, resource, why);
}

Jid Jid::bare() const {
  Jid j = *this;
  j.resource_.clear();
  return j;
}

std::string Jid::bareString() const {
  if (local_.empty()) return domain_;
  std::string out;
  out.reserve(local_.size() + 1 + domain_.size());
  out += local_;
  out += '@';
  out += domain_;
  return out;
}

std::string Jid::full() const {
  std::string out = bareString();
  if (!resource_.empty()) {
    out += '/';
    out += resource_;
  }
  return out;
}

std::optional<Jid> Jid::withResource(std::string_view resource, std::string* why) const {
  if (resource.empty()) return bare();
  auto r = normaliseResourcepart(resource, why);
  if (!r) return std::nullopt;
  Jid j = *this;
  j.resource_ = std::move(*r);
  return j;
}

}  // namespace imp::xmpp

std::size_t std::hash<imp::xmpp::Jid>::operator()(const imp::xmpp::Jid& j) const noexcept {
  std::hash<std::string> h;
  std::size_t v = h(j.local());
  v ^= h(j.domain()) + 0x9e3779b97f4a7c15ULL + (v << 6) + (v >> 2);
  v ^= h(j.resource()) + 0x9e3779b97f4a7c15ULL + (v << 6) + (v >> 2);
  return v;
}
