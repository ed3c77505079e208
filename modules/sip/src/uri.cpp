#include "imp/sip/uri.h"

#include <cctype>
#include <charconv>

#include "chars.h"

namespace imp::sip {

using namespace chars;

namespace {

bool fail(std::string* error, const char* why) {
  if (error) *error = why;
  return false;
}

bool parseHostPort(std::string_view hp, Uri& u, std::string* error) {
  if (hp.empty()) return fail(error, "empty host");
  std::string_view portText;
  if (hp.front() == '[') {
    auto close = hp.find(']');
    if (close == std::string_view::npos) return fail(error, "unterminated IPv6 reference");
    u.host = hp.substr(1, close - 1);
    for (char c : u.host)
      if (!isHex(c) && c != ':' && c != '.') return fail(error, "bad IPv6 reference");
    if (u.host.find(':') == std::string_view::npos) return fail(error, "bad IPv6 reference");
    u.ipv6 = true;
    auto rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail(error, "junk after IPv6 reference");
      portText = rest.substr(1);
      if (portText.empty()) return fail(error, "empty port");
    }
  } else {
    auto colon = hp.find(':');
    u.host = hp.substr(0, colon);
    if (colon != std::string_view::npos) {
      portText = hp.substr(colon + 1);
      if (portText.empty()) return fail(error, "empty port");
    }
    if (u.host.empty()) return fail(error, "empty host");
    for (char c : u.host)
      if (!is(c, kHost)) return fail(error, "bad character in host");
  }
  if (!portText.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), v);
    if (ec != std::errc() || p != portText.data() + portText.size() || v > 65535)
      return fail(error, "bad port");
    u.port = static_cast<std::uint16_t>(v);
  }
  return true;
}

// ";name[=value]" repeated; name and value may hold escapes.
bool validParams(std::string_view params, std::string* error) {
  std::size_t i = 0;
  while (i < params.size()) {
    if (params[i] != ';') return fail(error, "bad uri parameter");
    ++i;
    auto end = params.find(';', i);
    auto p = params.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    auto eq = p.find('=');
    auto name = p.substr(0, eq);
    if (name.empty() || !allEscaped(name, kUnreserved | kParamUnres)) return fail(error, "bad uri parameter name");
    if (eq != std::string_view::npos) {
      // '=' inside a value is beyond RFC 3261's paramchar, but Lync's signed
      // Record-Route parameters can carry base64 padding: accept it.
      auto value = p.substr(eq + 1);
      if (value.empty() || !allEscaped(value, kUnreserved | kParamUnres | kEquals)) return fail(error, "bad uri parameter value");
    }
    i = end == std::string_view::npos ? params.size() : end;
  }
  return true;
}

bool validHeaders(std::string_view headers, std::string* error) {
  // "?h=v&h=v"
  auto body = headers.substr(1);
  if (body.empty()) return fail(error, "empty uri headers");
  std::size_t i = 0;
  while (i <= body.size()) {
    auto end = body.find('&', i);
    auto h = body.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    auto eq = h.find('=');
    if (eq == std::string_view::npos) return fail(error, "uri header without '='");
    auto name = h.substr(0, eq), value = h.substr(eq + 1);
    if (name.empty() || !allEscaped(name, kUnreserved | kHnvUnres)) return fail(error, "bad uri header name");
    if (!allEscaped(value, kUnreserved | kHnvUnres)) return fail(error, "bad uri header value");
    if (end == std::string_view::npos) break;
    i = end + 1;
  }
  return true;
}

bool parseSip(std::string_view rest, Uri& u, std::string* error) {
  // userinfo: up to '@' (user may contain ';' and '?', never a raw '@')
  auto at = rest.find('@');
  std::string_view hostAndMore = rest;
  if (at != std::string_view::npos) {
    auto userinfo = rest.substr(0, at);
    hostAndMore = rest.substr(at + 1);
    auto colon = userinfo.find(':');
    u.user = userinfo.substr(0, colon);
    if (u.user.empty()) return fail(error, "empty user part");
    if (!allEscaped(u.user, kUnreserved | kUserUnres)) return fail(error, "bad character in user part");
    if (colon != std::string_view::npos) {
      u.password = userinfo.substr(colon + 1);
      if (!allEscaped(u.password, kUnreserved | kPassword)) return fail(error, "bad character in password");
    }
  }
  auto q = hostAndMore.find('?');
  if (q != std::string_view::npos) {
    u.headers = hostAndMore.substr(q);
    hostAndMore = hostAndMore.substr(0, q);
    if (!validHeaders(u.headers, error)) return false;
  }
  // parameters start at the first ';' after the host (IPv6 has no ';')
  auto semi = hostAndMore.find(';');
  if (semi != std::string_view::npos) {
    u.params = hostAndMore.substr(semi);
    hostAndMore = hostAndMore.substr(0, semi);
    if (!validParams(u.params, error)) return false;
  }
  return parseHostPort(hostAndMore, u, error);
}

}  // namespace

std::optional<std::string_view> findParam(std::string_view params, std::string_view name) {
  std::size_t i = 0;
  while (i < params.size()) {
    auto semi = params.find(';', i);
    if (semi == std::string_view::npos) return std::nullopt;
    i = semi + 1;
    // the parameter runs to the next ';' outside a quoted string
    std::size_t end = i;
    bool quoted = false;
    for (; end < params.size(); ++end) {
      char c = params[end];
      if (quoted && c == '\\') {
        ++end;
        continue;
      }
      if (c == '"') quoted = !quoted;
      if (!quoted && c == ';') break;
    }
    auto p = params.substr(i, end - i);
    auto eq = p.find('=');
    auto pname = trim(p.substr(0, eq));
    if (iequals(pname, name)) return eq == std::string_view::npos ? std::string_view{} : trim(p.substr(eq + 1));
    i = end;
  }
  return std::nullopt;
}

std::optional<std::string_view> Uri::param(std::string_view name) const { return findParam(params, name); }

std::optional<std::string> unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || !isHex(s[i + 1]) || !isHex(s[i + 2])) return std::nullopt;
    auto hex = [](char c) { return c <= '9' ? c - '0' : (lower(c) - 'a' + 10); };
    out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
    i += 2;
  }
  return out;
}

std::optional<Uri> parseUri(std::string_view text, std::string* error) {
  Uri u;
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    fail(error, "no scheme");
    return std::nullopt;
  }
  u.schemeText = text.substr(0, colon);
  if (!std::isalpha(static_cast<unsigned char>(u.schemeText[0]))) {
    fail(error, "bad scheme");
    return std::nullopt;
  }
  for (char c : u.schemeText)
    if (!is(c, kScheme)) {
      fail(error, "bad scheme");
      return std::nullopt;
    }
  auto rest = text.substr(colon + 1);
  if (iequals(u.schemeText, "sip") || iequals(u.schemeText, "sips")) {
    u.scheme = iequals(u.schemeText, "sip") ? UriScheme::Sip : UriScheme::Sips;
    if (!parseSip(rest, u, error)) return std::nullopt;
    return u;
  }
  u.opaque = rest;
  if (iequals(u.schemeText, "tel")) {
    u.scheme = UriScheme::Tel;
    auto semi = rest.find(';');
    auto number = rest.substr(0, semi);
    if (number.empty()) {
      fail(error, "empty tel number");
      return std::nullopt;
    }
    for (char c : number)
      if (!is(c, kTelChar)) {
        fail(error, "bad character in tel number");
        return std::nullopt;
      }
    u.opaque = number;
    if (semi != std::string_view::npos) {
      u.params = rest.substr(semi);
      if (!validParams(u.params, error)) return std::nullopt;
    }
    return u;
  }
  // absoluteURI (RFC 2396): reserved / unreserved / escaped, at least one.
  if (rest.empty() || !allEscaped(rest, kReserved | kUnreserved)) {
    fail(error, "bad character in URI");
    return std::nullopt;
  }
  return u;
}

}  // namespace imp::sip
