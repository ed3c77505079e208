// IM-1 bodies. Everything that is not plainly text is refused with a reason
// rather than guessed at: the caller answers 415 and the sender learns the
// message was not delivered (IM-5), instead of a mangled message arriving.
#include <imp/federation_cm/im_content.h>
#include <imp/core/utf8.h>

#include <imp/federation_cm/media_type.h>
#include <imp/xmpp/sasl.h>  // base64Encode / base64Decode (RFC 4648, canonical)

#include <array>
#include <cstdint>
#include <vector>

namespace imp::fcm {

namespace {

constexpr int kMaxMultipartDepth = 3;
constexpr std::size_t kMaxParts = 32;

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

bool startsWithNoCase(std::string_view s, std::size_t at, std::string_view prefix) {
  if (at > s.size() || s.size() - at < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (lower(s[at + i]) != lower(prefix[i])) return false;
  return true;
}

std::size_t findNoCase(std::string_view s, std::size_t from, std::string_view needle) {
  for (std::size_t i = from; i + needle.size() <= s.size(); ++i)
    if (startsWithNoCase(s, i, needle)) return i;
  return std::string_view::npos;
}

Unsupported unsupported(std::string why) { return Unsupported{std::move(why)}; }

void appendUtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// "&...;" at s[i]: the decoded text and the length consumed, or 0.
std::size_t decodeEntity(std::string_view s, std::size_t i, std::string& out) {
  const std::size_t semi = s.find(';', i + 1);
  if (semi == std::string_view::npos || semi - i > 12) return 0;
  const std::string_view name = s.substr(i + 1, semi - i - 1);
  struct Named {
    std::string_view name;
    std::string_view text;
  };
  static constexpr std::array<Named, 6> kNamed{{
      {"lt", "<"}, {"gt", ">"}, {"amp", "&"}, {"quot", "\""}, {"apos", "'"}, {"nbsp", " "}}};
  for (const auto& n : kNamed)
    if (name == n.name) {
      out += n.text;
      return semi - i + 1;
    }
  if (name.size() < 2 || name[0] != '#') return 0;
  const bool hex = name[1] == 'x' || name[1] == 'X';
  const std::string_view digits = name.substr(hex ? 2 : 1);
  if (digits.empty()) return 0;
  std::uint32_t cp = 0;
  for (char c : digits) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (hex && lower(c) >= 'a' && lower(c) <= 'f') d = lower(c) - 'a' + 10;
    else return 0;
    cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(d);
    if (cp > 0x10FFFF) return 0;
  }
  if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  appendUtf8(out, cp);
  return semi - i + 1;
}

// nullopt when the charset parameter allows the body as UTF-8, else why not.
std::optional<std::string> charsetProblem(const MediaType& m, std::string_view body) {
  const std::string* cs = m.param("charset");
  const std::string charset = cs ? lowered(*cs) : std::string("utf-8");
  if (charset == "utf-8" || charset == "utf8") {
    if (!validUtf8(body)) return "the " + m.essence() + " body is not valid UTF-8";
    return std::nullopt;
  }
  if (charset == "us-ascii") {
    for (char c : body)
      if (static_cast<unsigned char>(c) >= 0x80) return "the us-ascii body has non-ASCII bytes";
    return std::nullopt;
  }
  return "charset '" + *cs + "' is not supported (UTF-8 only)";
}

struct Part {
  std::string contentType = "text/plain";  // RFC 2046 §5.1: the default
  std::string encoding;                    // Content-Transfer-Encoding, lower-cased
  std::string_view body;
};

// A MIME part: header lines, an empty line, the body. nullopt when the
// headers are not terminated by an empty line.
std::optional<Part> parsePart(std::string_view raw) {
  Part p;
  std::size_t i = 0;
  std::string* last = nullptr;
  for (;;) {
    std::size_t eol = raw.find('\n', i);
    if (eol == std::string_view::npos) return std::nullopt;
    std::string_view line = raw.substr(i, eol - i);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    i = eol + 1;
    if (line.empty()) break;
    if ((line.front() == ' ' || line.front() == '\t')) {  // folded continuation
      if (last) *last += std::string(line);
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const std::string name = lowered(line.substr(0, colon));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    last = nullptr;
    if (name == "content-type") {
      p.contentType = value;
      last = &p.contentType;
    } else if (name == "content-transfer-encoding") {
      p.encoding = lowered(value);
      while (!p.encoding.empty() && (p.encoding.back() == ' ' || p.encoding.back() == '\t')) p.encoding.pop_back();
      last = &p.encoding;
    }
  }
  p.body = raw.substr(i);
  return p;
}

DecodedBody decodeAt(std::string_view contentType, std::string_view body, int depth);

// RFC 2046 §5.1.1. The delimiter is "--boundary" at the start of the body or
// of a line, followed by "--" (close), white space or the end of the line.
DecodedBody decodeMultipart(const MediaType& m, std::string_view body, int depth) {
  const std::string* boundary = m.param("boundary");
  if (!boundary || boundary->empty() || boundary->size() > 70)
    return unsupported("multipart/alternative without a valid boundary parameter (1..70 characters)");
  if (depth >= kMaxMultipartDepth) return unsupported("multipart nested too deep");
  const std::string delim = "--" + *boundary;
  auto nextDelim = [&](std::size_t from) {
    for (std::size_t pos = body.find(delim, from); pos != std::string_view::npos; pos = body.find(delim, pos + 1)) {
      if (pos != 0 && body[pos - 1] != '\n') continue;
      const std::size_t after = pos + delim.size();
      if (after == body.size() || body[after] == '-' || body[after] == ' ' || body[after] == '\t' ||
          body[after] == '\r' || body[after] == '\n')
        return pos;
    }
    return std::string_view::npos;
  };
  std::vector<std::string_view> parts;
  std::size_t pos = nextDelim(0);
  if (pos == std::string_view::npos) return unsupported("multipart body without its boundary delimiter");
  for (;;) {
    std::size_t after = pos + delim.size();
    if (body.substr(after, 2) == "--") break;  // close delimiter
    while (after < body.size() && (body[after] == ' ' || body[after] == '\t')) ++after;
    if (body.substr(after, 2) == "\r\n") after += 2;
    else if (body.substr(after, 1) == "\n") after += 1;
    else return unsupported("multipart delimiter line not ended by a line break");
    const std::size_t next = nextDelim(after);
    if (next == std::string_view::npos) return unsupported("multipart body without its close delimiter (truncated?)");
    std::size_t end = next;
    // The line break before a delimiter belongs to the delimiter.
    if (end > after && body[end - 1] == '\n') --end;
    if (end > after && body[end - 1] == '\r') --end;
    if (parts.size() == kMaxParts) return unsupported("more than 32 multipart parts");
    parts.push_back(body.substr(after, end - after));
    pos = next;
  }
  // First text/plain that decodes, else first text/html that decodes.
  std::string lastWhy = "multipart/alternative without a text/plain or text/html part";
  for (std::string_view want : {std::string_view("text/plain"), std::string_view("text/html"),
                                std::string_view("multipart/alternative")}) {
    for (std::string_view raw : parts) {
      auto part = parsePart(raw);
      if (!part) continue;
      auto pm = parseMediaType(part->contentType);
      if (!pm || !pm->is(want)) continue;
      std::string decoded;
      std::string_view content = part->body;
      if (part->encoding == "base64") {
        std::string compact;
        for (char c : content)
          if (c != '\r' && c != '\n' && c != ' ' && c != '\t') compact += c;
        auto bytes = imp::xmpp::base64Decode(compact);
        if (!bytes) {
          lastWhy = "a " + std::string(want) + " part has invalid base64";
          continue;
        }
        decoded = std::move(*bytes);
        content = decoded;
      } else if (!part->encoding.empty() && part->encoding != "7bit" && part->encoding != "8bit" &&
                 part->encoding != "binary") {
        lastWhy = "Content-Transfer-Encoding '" + part->encoding + "' is not supported";
        continue;
      }
      auto r = decodeAt(part->contentType, content, depth + 1);
      if (std::holds_alternative<ImText>(r)) return r;
      lastWhy = std::get<Unsupported>(r).why;
    }
  }
  return unsupported(std::move(lastWhy));
}

DecodedBody decodeAt(std::string_view contentType, std::string_view body, int depth) {
  if (body.size() > kMaxImBodyBytes) return unsupported("IM body over " + std::to_string(kMaxImBodyBytes) + " bytes");
  auto m = parseMediaType(contentType);
  if (!m) return unsupported("unparsable Content-Type '" + std::string(contentType) + "'");
  if (m->is("text/plain")) {
    if (auto why = charsetProblem(*m, body)) return unsupported(std::move(*why));
    return ImText{std::string(body)};
  }
  if (m->is("text/html")) {
    if (auto why = charsetProblem(*m, body)) return unsupported(std::move(*why));
    return ImText{htmlToText(body)};
  }
  if (m->is("multipart/alternative")) return decodeMultipart(*m, body, depth);
  return unsupported("Content-Type " + m->essence() + " is not supported for IM");
}

bool tokenOrBase64(std::string_view v) {
  for (char c : v) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("!#$%&'*+-.^_`|~=/").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return !v.empty();
}

}  // namespace

bool validUtf8(std::string_view s) { return core::validUtf8(s); }

std::string htmlToText(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t blockBreakAt = std::string::npos;  // out.size() right after the last block-end newline
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '&') {
      if (std::size_t used = decodeEntity(s, i, out)) {
        i += used;
      } else {
        out += '&';
        ++i;
      }
      continue;
    }
    if (c != '<') {
      out += c;
      ++i;
      continue;
    }
    if (s.substr(i, 4) == "<!--") {
      const std::size_t end = s.find("-->", i + 4);
      i = end == std::string_view::npos ? s.size() : end + 3;
      continue;
    }
    std::size_t j = i + 1;
    const bool closing = j < s.size() && s[j] == '/';
    if (closing) ++j;
    std::string name;
    while (j < s.size() && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') ||
                            (s[j] >= '0' && s[j] <= '9')))
      name += lower(s[j++]);
    const bool markup = !name.empty() || (!closing && j < s.size() && (s[j] == '!' || s[j] == '?'));
    if (!markup) {  // a '<' that starts no tag is text ("a < b")
      out += '<';
      ++i;
      continue;
    }
    char quote = 0;
    std::size_t k = j;
    for (; k < s.size(); ++k) {
      if (quote) {
        if (s[k] == quote) quote = 0;
      } else if (s[k] == '"' || s[k] == '\'') {
        quote = s[k];
      } else if (s[k] == '>') {
        break;
      }
    }
    if (k == s.size()) break;  // an unterminated tag ends the text
    i = k + 1;
    if (name == "br") {
      out += '\n';
    } else if (closing && (name == "p" || name == "div" || name == "li")) {
      out += '\n';
      blockBreakAt = out.size();
    } else if (!closing && (name == "script" || name == "style" || name == "head")) {
      const std::size_t end = findNoCase(s, i, "</" + name);
      i = end == std::string_view::npos ? s.size() : end;
    }
  }
  if (blockBreakAt == out.size() && !out.empty()) out.pop_back();
  return out;
}

DecodedBody decodeBody(std::string_view contentType, std::string_view body) { return decodeAt(contentType, body, 0); }

std::optional<std::pair<std::string, std::string>> parseMsTextFormat(std::string_view headerValue) {
  auto m = parseMediaType(headerValue);
  if (!m) return std::nullopt;
  const std::string* b64 = m->param("ms-body");
  if (!b64) return std::nullopt;
  auto body = imp::xmpp::base64Decode(*b64);
  if (!body) return std::nullopt;
  std::string type = m->essence();
  for (const auto& [name, value] : m->params) {
    if (name == "ms-body") continue;
    type += "; " + name + '=';
    if (tokenOrBase64(value)) {
      type += value;
    } else {
      type += '"';
      for (char c : value) {
        if (c == '"' || c == '\\') type += '\\';
        type += c;
      }
      type += '"';
    }
  }
  return std::make_pair(std::move(type), std::move(*body));
}

std::string buildMsTextFormat(std::string_view text) {
  return "text/plain; charset=UTF-8;ms-body=" + imp::xmpp::base64Encode(text);
}

}  // namespace imp::fcm
