#include "imp/sip/message.h"

#include <charconv>

#include "chars.h"

namespace imp::sip {

using namespace chars;

std::string_view Message::keep(std::string s) {
  auto node = std::make_shared<Owned>(Owned{std::move(s), std::move(owned_)});
  std::string_view v = node->text;
  owned_ = std::move(node);
  return v;
}

// Copies share the received bytes and the edited text (both immutable); room
// for two more headers, as a copy is usually made to be edited (a Via, a
// Record-Route on top).
Message::Message(const Message& other) { *this = other; }

Message& Message::operator=(const Message& other) {
  if (this == &other) return *this;
  raw_ = other.raw_;
  request_ = other.request_;
  status_ = other.status_;
  contentLengthSeen_ = other.contentLengthSeen_;
  method_ = other.method_;
  requestUri_ = other.requestUri_;
  reason_ = other.reason_;
  headers_.clear();
  headers_.reserve(other.headers_.size() + 2);
  headers_.insert(headers_.end(), other.headers_.begin(), other.headers_.end());
  body_ = other.body_;
  owned_ = other.owned_;
  return *this;
}

Message Message::request(std::string_view method, std::string_view requestUri) {
  Message m;
  m.request_ = true;
  m.method_ = m.keep(std::string(method));
  m.requestUri_ = m.keep(std::string(requestUri));
  return m;
}

Message Message::response(int status, std::string_view reason) {
  Message m;
  m.request_ = false;
  m.status_ = status;
  m.reason_ = m.keep(std::string(reason));
  return m;
}

std::optional<std::string_view> Message::header(HeaderId id) const {
  for (const auto& h : headers_)
    if (h.id == id) return h.value;
  return std::nullopt;
}

std::optional<std::string_view> Message::header(std::string_view name) const {
  auto id = headerIdOf(name);
  if (id != HeaderId::Other) return header(id);
  for (const auto& h : headers_)
    if (h.id == HeaderId::Other && iequals(h.name, name)) return h.value;
  return std::nullopt;
}

std::size_t Message::count(HeaderId id) const {
  std::size_t n = 0;
  for (const auto& h : headers_) n += h.id == id;
  return n;
}

std::vector<Via> Message::vias() const {
  std::vector<Via> out;
  for (const auto& h : headers_)
    if (h.id == HeaderId::Via) {
      std::size_t pos = 0;
      std::string_view v;
      while (nextListElement(h.value, pos, v))
        if (auto via = parseVia(v)) out.push_back(*via);
    }
  return out;
}

std::optional<Via> Message::topVia() const {
  auto v = header(HeaderId::Via);
  if (!v) return std::nullopt;
  std::size_t pos = 0;
  std::string_view first;
  nextListElement(*v, pos, first);
  return parseVia(first);
}

std::optional<NameAddr> Message::from() const {
  auto v = header(HeaderId::From);
  return v ? parseNameAddr(*v) : std::nullopt;
}

std::optional<NameAddr> Message::to() const {
  auto v = header(HeaderId::To);
  return v ? parseNameAddr(*v) : std::nullopt;
}

namespace {
std::vector<NameAddr> nameAddrs(const std::vector<HeaderField>& headers, HeaderId id) {
  std::vector<NameAddr> out;
  for (const auto& h : headers)
    if (h.id == id) {
      if (id == HeaderId::Contact && trim(h.value) == "*") continue;
      std::size_t pos = 0;
      std::string_view v;
      while (nextListElement(h.value, pos, v))
        if (auto na = parseNameAddr(v)) out.push_back(*na);
    }
  return out;
}
}  // namespace

std::vector<NameAddr> Message::contacts() const { return nameAddrs(headers_, HeaderId::Contact); }
std::vector<NameAddr> Message::routes() const { return nameAddrs(headers_, HeaderId::Route); }
std::vector<NameAddr> Message::recordRoutes() const { return nameAddrs(headers_, HeaderId::RecordRoute); }

std::optional<CSeq> Message::cseq() const {
  auto v = header(HeaderId::CSeq);
  return v ? parseCSeq(*v) : std::nullopt;
}

namespace {
template <typename T>
std::optional<T> number(std::optional<std::string_view> v, T max) {
  if (!v) return std::nullopt;
  auto s = trim(*v);
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || n > static_cast<std::uint64_t>(max)) return std::nullopt;
  return static_cast<T>(n);
}
}  // namespace

std::optional<int> Message::maxForwards() const { return number<int>(header(HeaderId::MaxForwards), 255); }
std::optional<std::uint32_t> Message::expires() const {
  return number<std::uint32_t>(header(HeaderId::Expires), 0xFFFFFFFFu);
}

void Message::setRequestUri(std::string_view uri) { requestUri_ = keep(std::string(uri)); }

void Message::setStatus(int status, std::string_view reason) {
  status_ = status;
  reason_ = keep(std::string(reason));
}

void Message::prependHeader(HeaderId id, std::string_view value) {
  HeaderField f{canonicalName(id), keep(std::string(value)), id};
  for (auto it = headers_.begin(); it != headers_.end(); ++it)
    if (it->id == id) {
      headers_.insert(it, f);
      return;
    }
  headers_.insert(headers_.begin(), f);
}

void Message::appendHeader(std::string_view name, std::string_view value) {
  auto id = headerIdOf(name);
  headers_.push_back({keep(std::string(name)), keep(std::string(value)), id});
}

void Message::setHeader(HeaderId id, std::string_view value) {
  for (auto& h : headers_)
    if (h.id == id) {
      h.value = keep(std::string(value));
      return;
    }
  headers_.push_back({canonicalName(id), keep(std::string(value)), id});
}

bool Message::removeFirstValue(HeaderId id) {
  for (auto it = headers_.begin(); it != headers_.end(); ++it) {
    if (it->id != id) continue;
    std::size_t pos = 0;
    std::string_view first, second;
    nextListElement(it->value, pos, first);
    if (!nextListElement(it->value, pos, second)) {
      headers_.erase(it);
    } else {
      // Keep the rest of the line byte-exact: cut after the first comma at top level.
      it->value = std::string_view(second.data(), it->value.data() + it->value.size() - second.data());
    }
    return true;
  }
  return false;
}

std::size_t Message::removeAll(HeaderId id) {
  return std::erase_if(headers_, [id](const HeaderField& h) { return h.id == id; });
}

void Message::setBody(std::string_view body, std::string_view contentType) {
  body_ = keep(std::string(body));
  if (body.empty()) removeAll(HeaderId::ContentType);
  else setHeader(HeaderId::ContentType, contentType);
}

void Message::serializeTo(std::string& out) const {
  std::size_t need = 64 + body_.size();
  for (const auto& h : headers_) need += h.name.size() + h.value.size() + 4;
  out.reserve(out.size() + need);
  if (request_) {
    out.append(method_).append(" ").append(requestUri_).append(" SIP/2.0\r\n");
  } else {
    char code[8];
    auto [p, ec] = std::to_chars(code, code + sizeof code, status_);
    (void)ec;
    out.append("SIP/2.0 ").append(code, p).append(" ").append(reason_).append("\r\n");
  }
  bool wroteLength = false;
  for (const auto& h : headers_) {
    if (h.id == HeaderId::ContentLength) {
      // One Content-Length, always matching the body we send.
      if (wroteLength) continue;
      wroteLength = true;
      char len[24];
      auto [p, ec] = std::to_chars(len, len + sizeof len, body_.size());
      (void)ec;
      out.append(h.name).append(": ").append(len, p).append("\r\n");
      continue;
    }
    out.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  if (!wroteLength) {
    char len[24];
    auto [p, ec] = std::to_chars(len, len + sizeof len, body_.size());
    (void)ec;
    out.append("Content-Length: ").append(len, p).append("\r\n");
  }
  out.append("\r\n").append(body_);
}

std::string Message::serialize() const {
  std::string out;
  serializeTo(out);
  return out;
}

}  // namespace imp::sip
