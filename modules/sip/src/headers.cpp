// Header names and the typed header-value grammars of RFC 3261 §25.1
// (Via, name-addr / addr-spec with header params, CSeq), LWS-tolerant as the
// torture tests require (RFC 4475 §3.1.1.1).
#include <cctype>
#include <charconv>

#include "chars.h"
#include "imp/sip/message.h"

namespace imp::sip {

using namespace chars;

namespace {

struct NameEntry {
  std::string_view name;
  HeaderId id;
};

constexpr NameEntry kNames[] = {
    {"Accept", HeaderId::Accept},
    {"Accept-Encoding", HeaderId::AcceptEncoding},
    {"Allow", HeaderId::Allow},
    {"Authorization", HeaderId::Authorization},
    {"Call-ID", HeaderId::CallId},
    {"Contact", HeaderId::Contact},
    {"Content-Encoding", HeaderId::ContentEncoding},
    {"Content-Length", HeaderId::ContentLength},
    {"Content-Type", HeaderId::ContentType},
    {"CSeq", HeaderId::CSeq},
    {"Date", HeaderId::Date},
    {"Event", HeaderId::Event},
    {"Expires", HeaderId::Expires},
    {"From", HeaderId::From},
    {"Max-Forwards", HeaderId::MaxForwards},
    {"Min-Expires", HeaderId::MinExpires},
    {"Proxy-Authenticate", HeaderId::ProxyAuthenticate},
    {"Proxy-Authorization", HeaderId::ProxyAuthorization},
    {"Proxy-Require", HeaderId::ProxyRequire},
    {"Record-Route", HeaderId::RecordRoute},
    {"Refer-To", HeaderId::ReferTo},
    {"Require", HeaderId::Require},
    {"Retry-After", HeaderId::RetryAfter},
    {"Route", HeaderId::Route},
    {"Server", HeaderId::Server},
    {"Subject", HeaderId::Subject},
    {"Subscription-State", HeaderId::SubscriptionState},
    {"Supported", HeaderId::Supported},
    {"To", HeaderId::To},
    {"Unsupported", HeaderId::Unsupported},
    {"User-Agent", HeaderId::UserAgent},
    {"Via", HeaderId::Via},
    {"Warning", HeaderId::Warning},
    {"WWW-Authenticate", HeaderId::WwwAuthenticate},
};

bool fail(std::string* error, const char* why) {
  if (error) *error = why;
  return false;
}

// A cursor over one header value; skips SP/HTAB (values are unfolded).
struct Scan {
  std::string_view s;
  std::size_t i = 0;
  bool end() const { return i >= s.size(); }
  char peek() const { return i < s.size() ? s[i] : '\0'; }
  void ws() {
    while (i < s.size() && isWs(s[i])) ++i;
  }
  std::string_view token() {
    auto b = i;
    while (i < s.size() && is(s[i], kToken)) ++i;
    return s.substr(b, i - b);
  }
  // quoted-string; returns the inside (escapes kept); false if unterminated
  bool quoted(std::string_view& out) {
    if (peek() != '"') return false;
    auto b = ++i;
    while (i < s.size()) {
      if (s[i] == '\\') {
        if (i + 1 >= s.size()) return false;
        i += 2;
        continue;
      }
      if (s[i] == '"') {
        out = s.substr(b, i - b);
        ++i;
        return true;
      }
      ++i;
    }
    return false;
  }
};

// *( SEMI generic-param ), generic-param = token [ EQUAL gen-value ],
// gen-value = token / host / quoted-string. Stops at end; anything else fails.
bool params(Scan& sc, std::string_view& out, std::string* error) {
  auto begin = sc.i;
  for (;;) {
    sc.ws();
    if (sc.end()) break;
    if (sc.peek() != ';') return fail(error, "expected ';' before a parameter");
    ++sc.i;
    sc.ws();
    if (sc.token().empty()) return fail(error, "empty parameter");
    sc.ws();
    if (sc.peek() == '=') {
      ++sc.i;
      sc.ws();
      if (sc.peek() == '"') {
        std::string_view q;
        if (!sc.quoted(q)) return fail(error, "unterminated quoted parameter value");
      } else if (sc.peek() == '[') {
        auto close = sc.s.find(']', sc.i);
        if (close == std::string_view::npos) return fail(error, "unterminated IPv6 parameter value");
        sc.i = close + 1;
      } else {
        auto b = sc.i;
        while (!sc.end() && (is(sc.peek(), kToken) || sc.peek() == ':')) ++sc.i;
        if (sc.i == b) return fail(error, "empty parameter value");
      }
    }
  }
  out = trim(sc.s.substr(begin));
  return true;
}

}  // namespace

HeaderId headerIdOf(std::string_view name) {
  if (name.size() == 1) {
    switch (lower(name[0])) {
      case 'i': return HeaderId::CallId;
      case 'f': return HeaderId::From;
      case 't': return HeaderId::To;
      case 'v': return HeaderId::Via;
      case 'm': return HeaderId::Contact;
      case 'l': return HeaderId::ContentLength;
      case 'c': return HeaderId::ContentType;
      case 'k': return HeaderId::Supported;
      case 'e': return HeaderId::ContentEncoding;
      case 's': return HeaderId::Subject;
      case 'o': return HeaderId::Event;
      case 'r': return HeaderId::ReferTo;
      default: return HeaderId::Other;
    }
  }
  for (const auto& e : kNames)
    if (e.name.size() == name.size() && iequals(e.name, name)) return e.id;
  return HeaderId::Other;
}

std::string_view canonicalName(HeaderId id) {
  for (const auto& e : kNames)
    if (e.id == id) return e.name;
  return {};
}

bool nextListElement(std::string_view value, std::size_t& pos, std::string_view& element) {
  if (pos > value.size()) return false;
  // An element ends at a comma outside quotes and <>, so each one starts
  // with both states clear.
  bool quoted = false;
  bool angle = false;
  std::size_t i = pos;
  for (; i < value.size(); ++i) {
    char c = value[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
      continue;
    }
    if (c == '"') quoted = true;
    else if (c == '<') angle = true;
    else if (c == '>') angle = false;
    else if (c == ',' && !angle) break;
  }
  if (i > value.size()) i = value.size();  // a backslash as the last character
  element = trim(value.substr(pos, i - pos));
  pos = i + 1;
  return true;
}

std::vector<std::string_view> splitList(std::string_view value) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  std::string_view e;
  while (nextListElement(value, pos, e)) out.push_back(e);
  return out;
}

std::optional<std::string_view> Via::param(std::string_view name) const { return findParam(params, name); }
std::optional<std::string_view> NameAddr::param(std::string_view name) const { return findParam(params, name); }

std::optional<Via> parseVia(std::string_view value, std::string* error) {
  Via v;
  v.raw = value;
  Scan sc{value};
  sc.ws();
  auto protoBegin = sc.i;
  if (sc.token().empty()) return fail(error, "missing protocol name"), std::nullopt;
  for (int k = 0; k < 2; ++k) {
    sc.ws();
    if (sc.peek() != '/') return fail(error, "expected '/' in sent-protocol"), std::nullopt;
    ++sc.i;
    sc.ws();
    auto t = sc.token();
    if (t.empty()) return fail(error, "empty sent-protocol element"), std::nullopt;
    if (k == 1) v.transport = t;
  }
  v.protocol = value.substr(protoBegin, sc.i - protoBegin - v.transport.size());
  // protocol as written, trimmed of its trailing '/' and spaces
  while (!v.protocol.empty() && (v.protocol.back() == '/' || isWs(v.protocol.back()))) v.protocol.remove_suffix(1);
  auto before = sc.i;
  sc.ws();
  if (sc.i == before) return fail(error, "expected whitespace before sent-by"), std::nullopt;
  // sent-by = host [ COLON port ]
  if (sc.peek() == '[') {
    auto close = value.find(']', sc.i);
    if (close == std::string_view::npos) return fail(error, "unterminated IPv6 sent-by"), std::nullopt;
    v.host = value.substr(sc.i + 1, close - sc.i - 1);
    sc.i = close + 1;
  } else {
    auto b = sc.i;
    while (!sc.end() && is(sc.peek(), kHost)) ++sc.i;
    v.host = value.substr(b, sc.i - b);
  }
  if (v.host.empty()) return fail(error, "missing sent-by host"), std::nullopt;
  sc.ws();
  if (sc.peek() == ':') {
    ++sc.i;
    sc.ws();
    auto b = sc.i;
    while (!sc.end() && std::isdigit(static_cast<unsigned char>(sc.peek()))) ++sc.i;
    unsigned port = 0;
    auto [p, ec] = std::from_chars(value.data() + b, value.data() + sc.i, port);
    if (sc.i == b || ec != std::errc() || port == 0 || port > 65535) return fail(error, "bad sent-by port"), std::nullopt;
    v.port = static_cast<std::uint16_t>(port);
  }
  if (!params(sc, v.params, error)) return std::nullopt;
  return v;
}

std::optional<NameAddr> parseNameAddr(std::string_view value, std::string* error) {
  NameAddr na;
  na.raw = value;
  Scan sc{value};
  sc.ws();
  auto lt = std::string_view::npos;
  if (sc.peek() == '"') {
    if (!sc.quoted(na.display)) return fail(error, "unterminated quoted display name"), std::nullopt;
    sc.ws();
    if (sc.peek() != '<') return fail(error, "expected '<' after the display name"), std::nullopt;
    lt = sc.i;
  } else {
    // display-name as tokens, or an addr-spec; a '<' decides
    auto b = sc.i;
    while (!sc.end()) {
      if (sc.token().empty()) break;
      sc.ws();
    }
    if (sc.peek() == '<') {
      na.display = trim(value.substr(b, sc.i - b));
      lt = sc.i;
    } else {
      sc.i = b;
    }
  }
  if (lt != std::string_view::npos) {
    auto gt = value.find('>', lt);
    if (gt == std::string_view::npos) return fail(error, "missing '>'"), std::nullopt;
    na.uri = value.substr(lt + 1, gt - lt - 1);
    na.angle = true;
    sc.i = gt + 1;
  } else {
    // addr-spec: the URI ends at whitespace or ';' (its params are header params)
    auto b = sc.i;
    while (!sc.end() && !isWs(sc.peek()) && sc.peek() != ';') ++sc.i;
    na.uri = value.substr(b, sc.i - b);
  }
  std::string uriError;
  if (!parseUri(na.uri, &uriError)) {
    if (error) *error = "bad URI: " + uriError;
    return std::nullopt;
  }
  if (!params(sc, na.params, error)) return std::nullopt;
  return na;
}

std::optional<CSeq> parseCSeq(std::string_view value, std::string* error) {
  Scan sc{value};
  sc.ws();
  auto b = sc.i;
  while (!sc.end() && std::isdigit(static_cast<unsigned char>(sc.peek()))) ++sc.i;
  if (sc.i == b) return fail(error, "CSeq without a number"), std::nullopt;
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(value.data() + b, value.data() + sc.i, n);
  // RFC 3261 §8.1.1.5: the sequence number MUST be less than 2**31.
  if (ec != std::errc() || n >= (1ULL << 31)) return fail(error, "CSeq number too large"), std::nullopt;
  auto before = sc.i;
  sc.ws();
  if (sc.i == before) return fail(error, "CSeq needs whitespace before the method"), std::nullopt;
  CSeq c;
  c.seq = static_cast<std::uint32_t>(n);
  c.method = sc.token();
  sc.ws();
  if (c.method.empty() || !sc.end()) return fail(error, "bad CSeq method"), std::nullopt;
  return c;
}

}  // namespace imp::sip
