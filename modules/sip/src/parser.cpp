#include "imp/sip/parser.h"

#include <charconv>
#include <cstring>

#include "chars.h"

namespace imp::sip {

using namespace chars;

namespace {

ParseError error(int status, std::string reason, bool canRespond = false) {
  return ParseError{status, std::move(reason), canRespond};
}

// Next line starting at pos (without its CRLF or LF); advances pos past it.
// Returns false when no line terminator is left.
bool nextLine(std::string_view d, std::size_t& pos, std::string_view& line) {
  auto nl = d.find('\n', pos);
  if (nl == std::string_view::npos) return false;
  auto end = nl;
  if (end > pos && d[end - 1] == '\r') --end;
  line = d.substr(pos, end - pos);
  pos = nl + 1;
  return true;
}

bool parseUnsigned(std::string_view s, std::uint64_t max, std::uint64_t& out) {
  s = trim(s);
  if (s.empty() || s.size() > 20) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && out <= max;
}

bool validCallId(std::string_view v) {
  auto at = v.find('@');
  auto word = [](std::string_view w) {
    if (w.empty()) return false;
    for (char c : w)
      if (!is(c, kWord)) return false;
    return true;
  };
  if (at == std::string_view::npos) return word(v);
  return word(v.substr(0, at)) && word(v.substr(at + 1));
}

std::optional<ParseError> parseStartLine(std::string_view line, Message& m, bool& isRequest, std::string_view& method,
                                         std::string_view& uri, int& status, std::string_view& reason) {
  if (line.size() >= 4 && iequals(line.substr(0, 4), "SIP/")) {
    isRequest = false;
    // SIP-Version SP Status-Code SP Reason-Phrase
    auto sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return error(400, "Malformed Status-Line");
    if (!iequals(line.substr(0, sp1), "SIP/2.0")) return error(505, "Version Not Supported");
    auto rest = line.substr(sp1 + 1);
    if (rest.size() < 3) return error(400, "Malformed Status-Line");
    auto code = rest.substr(0, 3);
    for (char c : code)
      if (c < '0' || c > '9') return error(400, "Malformed Status-Code");
    if (rest.size() > 3 && rest[3] != ' ') return error(400, "Status-Code is not 3 digits");
    status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    if (status < 100 || status > 699) return error(400, "Status-Code out of range");
    reason = rest.size() > 4 ? rest.substr(4) : std::string_view{};
    return std::nullopt;
  }
  isRequest = true;
  (void)m;
  // Method SP Request-URI SP SIP-Version: exactly one SP between elements.
  auto sp1 = line.find(' ');
  auto sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp1 == sp2) return error(400, "Malformed Request-Line");
  method = line.substr(0, sp1);
  if (method.empty()) return error(400, "Malformed Request-Line");
  for (char c : method)
    if (!is(c, kToken)) return error(400, "Malformed Method");
  uri = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto version = line.substr(sp2 + 1);
  if (version.size() < 5 || !iequals(version.substr(0, 4), "SIP/")) return error(400, "Malformed SIP-Version");
  if (!iequals(version, "SIP/2.0")) return error(505, "Version Not Supported");
  std::string why;
  if (uri.empty() || !parseUri(uri, &why)) return error(400, "Malformed Request-URI: " + why);
  return std::nullopt;
}

// Whether the header lines from `pos` on name Via, From, To, Call-ID and
// CSeq: a request with a bad start line can still be answered (the transport
// copies them into its 400/505).
bool hasIdentityHeaders(std::string_view d, std::size_t pos) {
  bool via = false, from = false, to = false, callId = false, cseq = false;
  std::string_view line;
  while (nextLine(d, pos, line) && !line.empty()) {
    auto colon = line.find(':');
    if (colon == std::string_view::npos || isWs(line.front())) continue;
    switch (headerIdOf(trim(line.substr(0, colon)))) {
      case HeaderId::Via: via = true; break;
      case HeaderId::From: from = true; break;
      case HeaderId::To: to = true; break;
      case HeaderId::CallId: callId = true; break;
      case HeaderId::CSeq: cseq = true; break;
      default: break;
    }
  }
  return via && from && to && callId && cseq;
}

}  // namespace

ParseResult Parser::parseDatagram(std::string_view data) const { return parse(data, true); }
ParseResult Parser::parseFramed(std::string_view message) const { return parse(message, false); }

ParseResult Parser::parse(std::string_view data, bool datagram) const {
  if (data.size() > limits_.maxMessageSize) return error(513, "Message Too Large");
  Message m;
  // One allocation for the bytes and their count (the views point into it).
  auto raw = std::make_shared_for_overwrite<char[]>(data.size() + 1);
  if (!data.empty()) std::memcpy(raw.get(), data.data(), data.size());
  raw[data.size()] = '\0';
  std::string_view d(raw.get(), data.size());
  m.raw_ = std::move(raw);

  std::size_t pos = 0;
  std::string_view line;
  // RFC 3261 §7.5: ignore CRLFs before the start line.
  while (pos < d.size() && (d[pos] == '\r' || d[pos] == '\n')) ++pos;
  if (!nextLine(d, pos, line)) return error(400, "Incomplete message");
  if (auto err = parseStartLine(line, m, m.request_, m.method_, m.requestUri_, m.status_, m.reason_)) {
    if (m.request_) err->canRespond = hasIdentityHeaders(d, pos);
    return *err;
  }

  m.headers_.reserve(16);
  bool ended = false;
  while (pos < d.size()) {
    auto lineStart = pos;
    if (!nextLine(d, pos, line)) break;
    if (line.empty()) {
      ended = true;
      break;
    }
    if (isWs(line.front())) return error(400, "Continuation line before any header field");
    // Folded continuation lines belong to this header (RFC 3261 §7.3.1).
    std::string_view field = line;
    bool folded = false;
    while (pos < d.size() && isWs(d[pos])) {
      std::string_view cont;
      if (!nextLine(d, pos, cont)) break;
      folded = true;
    }
    if (folded) {
      std::string unfolded;
      unfolded.reserve(pos - lineStart);
      for (std::size_t i = lineStart; i < pos; ++i)
        if (d[i] != '\r' && d[i] != '\n') unfolded += d[i];
      field = m.keep(std::move(unfolded));
    }
    auto colon = field.find(':');
    if (colon == std::string_view::npos) return error(400, "Header field without ':'");
    auto name = trim(field.substr(0, colon));
    if (name.empty()) return error(400, "Empty header field name");
    for (char c : name)
      if (!is(c, kToken)) return error(400, "Malformed header field name");
    if (m.headers_.size() >= limits_.maxHeaders) return error(400, "Too many header fields");
    m.headers_.push_back({name, trim(field.substr(colon + 1)), headerIdOf(name)});
  }
  if (!ended) return error(400, "Message ends inside the header section");

  // From here on the request's identity headers are known: a response can
  // be formed when all of them are present.
  const bool canRespond = m.request_ && m.count(HeaderId::Via) && m.count(HeaderId::From) && m.count(HeaderId::To) &&
                          m.count(HeaderId::CallId) && m.count(HeaderId::CSeq);
  auto fail = [canRespond](int status, std::string reason) { return error(status, std::move(reason), canRespond); };

  // Content-Length and body (RFC 3261 §18.3, §20.14).
  std::optional<std::uint64_t> length;
  bool conflicting = false;
  for (const auto& h : m.headers_) {
    if (h.id != HeaderId::ContentLength) continue;
    std::uint64_t n = 0;
    if (!parseUnsigned(h.value, 0x7FFFFFFF, n)) return fail(400, "Malformed Content-Length");
    if (length && *length != n) conflicting = true;
    length = n;
  }
  auto rest = d.substr(pos);
  if (!datagram) {
    if (!length) return fail(400, "Content-Length required on stream transports");
    if (conflicting) return fail(400, "Conflicting Content-Length values");
    if (*length != rest.size()) return fail(400, "Content-Length does not match the body");
    m.body_ = rest;
  } else if (length && !conflicting) {
    if (*length > rest.size()) return fail(400, "Content-Length larger than the message");
    m.body_ = rest.substr(0, *length);  // trailing octets of a datagram are ignored
  } else {
    m.body_ = rest;
  }
  m.contentLengthSeen_ = length.has_value();

  // Syntax of the headers a proxy or UA relies on.
  bool via = false, from = false, to = false, callId = false, cseq = false;
  std::string why;
  for (const auto& h : m.headers_) {
    switch (h.id) {
      case HeaderId::Via: {
        std::size_t at = 0;
        std::string_view v;
        while (nextListElement(h.value, at, v))
          if (!parseVia(v, &why)) return fail(400, "Malformed Via: " + why);
        via = true;
        break;
      }
      case HeaderId::From:
      case HeaderId::To:
        if (!parseNameAddr(h.value, &why))
          return fail(400, std::string(h.id == HeaderId::From ? "Malformed From: " : "Malformed To: ") + why);
        (h.id == HeaderId::From ? from : to) = true;
        break;
      case HeaderId::Contact:
        if (trim(h.value) == "*") break;
        [[fallthrough]];
      case HeaderId::Route:
      case HeaderId::RecordRoute: {
        std::size_t at = 0;
        std::string_view v;
        while (nextListElement(h.value, at, v))
          if (!parseNameAddr(v, &why)) return fail(400, "Malformed " + std::string(canonicalName(h.id)) + ": " + why);
        break;
      }
      case HeaderId::CSeq: {
        auto c = parseCSeq(h.value, &why);
        if (!c) return fail(400, "Malformed CSeq: " + why);
        if (m.request_ && c->method != m.method_ && !(m.method_ == "ACK" && c->method == "INVITE") &&
            !(m.method_ == "CANCEL" && c->method == "INVITE"))
          return fail(400, "CSeq method does not match the request method");
        if (m.request_ && (m.method_ == "ACK" || m.method_ == "CANCEL") && c->method != m.method_)
          return fail(400, "CSeq method does not match the request method");
        cseq = true;
        break;
      }
      case HeaderId::MaxForwards: {
        std::uint64_t n = 0;
        if (!parseUnsigned(h.value, 255, n)) return fail(400, "Malformed Max-Forwards");
        break;
      }
      case HeaderId::CallId:
        if (!validCallId(h.value)) return fail(400, "Malformed Call-ID");
        callId = true;
        break;
      default:
        break;
    }
  }
  (void)via;
  (void)from;
  (void)to;
  (void)callId;
  (void)cseq;
  return m;
}

StreamFramer::Event StreamFramer::next(Message* msg, ParseError* err, bool* resynced) {
  if (resynced) *resynced = false;
  if (dead_) {
    if (err) *err = error(400, "Stream is no longer framed");
    return Event::Error;
  }
  // Keep-alive: CRLFCRLF is a ping, a lone CRLF a pong (RFC 5626 §3.5.1).
  std::size_t crlfs = 0;
  while (pos_ + 1 < buf_.size() && buf_[pos_] == '\r' && buf_[pos_ + 1] == '\n') {
    pos_ += 2;
    ++crlfs;
    if (crlfs == 2) {
      compact();
      return Event::KeepAlivePing;
    }
  }
  if (pos_ < buf_.size() && buf_[pos_] == '\r' && pos_ + 1 == buf_.size()) return Event::NeedMore;
  const auto& limits = parser_.limits();
  std::string_view view(buf_);
  view.remove_prefix(pos_);
  auto headEnd = view.find("\r\n\r\n");
  if (headEnd == std::string_view::npos) {
    if (view.size() > limits.maxMessageSize) return die(err, 513, "Message Too Large");
    // A header flood shows before the end of the head arrives.
    std::size_t lines = 0;
    for (char c : view) lines += c == '\n';
    if (lines > limits.maxHeaders + 1) return die(err, 400, "Too many header fields");
    return Event::NeedMore;
  }
  auto head = view.substr(0, headEnd + 4);
  // Content-Length from the head (compact form 'l' too).
  std::optional<std::uint64_t> length;
  std::size_t lines = 0;
  std::size_t p = 0;
  std::string_view line;
  nextLine(head, p, line);  // start line
  while (nextLine(head, p, line) && !line.empty()) {
    if (++lines > limits.maxHeaders) return die(err, 400, "Too many header fields");
    auto colon = line.find(':');
    if (colon == std::string_view::npos || isWs(line.front())) continue;
    auto id = headerIdOf(trim(line.substr(0, colon)));
    if (id != HeaderId::ContentLength) continue;
    std::uint64_t n = 0;
    if (!parseUnsigned(line.substr(colon + 1), 0x7FFFFFFF, n)) return die(err, 400, "Malformed Content-Length");
    if (length && *length != n) return die(err, 400, "Conflicting Content-Length values");
    length = n;
  }
  if (!length) return die(err, 400, "Content-Length required on stream transports");
  if (head.size() + *length > limits.maxMessageSize) return die(err, 513, "Message Too Large");
  if (view.size() < head.size() + *length) return Event::NeedMore;
  auto whole = view.substr(0, head.size() + *length);
  auto result = parser_.parseFramed(whole);
  pos_ += whole.size();
  compact();
  if (auto* m = std::get_if<Message>(&result)) {
    if (msg) *msg = std::move(*m);
    return Event::Message;
  }
  // Framed correctly but invalid: report it; the stream goes on.
  if (err) *err = std::get<ParseError>(std::move(result));
  if (resynced) *resynced = true;
  return Event::Error;
}

StreamFramer::Event StreamFramer::die(ParseError* err, int status, const char* reason) {
  dead_ = true;
  if (err) *err = error(status, reason);
  return Event::Error;
}

void StreamFramer::compact() {
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 4096 && pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

}  // namespace imp::sip
