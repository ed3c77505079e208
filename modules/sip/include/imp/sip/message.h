#pragma once
// The SIP message model (RFC 3261 §7, §20, §25).
//
// A Message owns one copy of its bytes; headers are (name, value) views into
// it, in wire order, so reading a header never copies the message. Edits
// (a new Via, a decremented Max-Forwards, a rewritten Request-URI) store the
// new text beside the buffer and re-point one view: every header that was
// not edited is serialised byte for byte as received, so Route and
// Record-Route values signed by Lync stay intact (MICROSOFT-SIP.md).
// Folded header lines are unfolded once at parse time (the CRLF is dropped,
// the following whitespace kept), which RFC 3261 §7.3.1 makes equivalent.
//
// Typed accessors parse on demand from the views; they return nullopt (or
// an empty list) when the header is absent. The parser has already checked
// the syntax of Via, From, To, Contact, Route, Record-Route, CSeq,
// Max-Forwards, Content-Length and Call-ID, so on a parsed Message they only
// fail for headers added later by the application.
//
// Thread model: a Message is a value; no internal locking. Copies share
// immutable text (the received bytes, the text of edits) through
// reference counts, so a copy may go to another thread.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imp/sip/uri.h"

namespace imp::sip {

enum class HeaderId : std::uint8_t {
  Other,
  Accept,
  AcceptEncoding,
  Allow,
  Authorization,
  CallId,
  Contact,
  ContentEncoding,
  ContentLength,
  ContentType,
  CSeq,
  Date,
  Event,
  Expires,
  From,
  MaxForwards,
  MinExpires,
  ProxyAuthenticate,
  ProxyAuthorization,
  ProxyRequire,
  RecordRoute,
  ReferTo,
  Require,
  RetryAfter,
  Route,
  Server,
  Subject,
  SubscriptionState,
  Supported,
  To,
  Unsupported,
  UserAgent,
  Via,
  Warning,
  WwwAuthenticate,
};

// Header name (full or compact form: i f t v m l c k e s o u r b x y)
// to id; Other for unknown names. Case-insensitive.
HeaderId headerIdOf(std::string_view name);
// The canonical full name ("Call-ID"); "" for Other.
std::string_view canonicalName(HeaderId id);

struct HeaderField {
  std::string_view name;   // as received ("v", "VIA", "Via")
  std::string_view value;  // trimmed, unfolded
  HeaderId id = HeaderId::Other;
};

struct Via {
  std::string_view protocol;   // "SIP/2.0"
  std::string_view transport;  // "UDP", "TCP", "TLS", ...
  std::string_view host;       // IPv6 without brackets
  std::uint16_t port = 0;      // 0 = not given
  std::string_view params;     // ";branch=...;received=..." (leading ';')
  std::string_view raw;        // the whole via-parm as in the message
  std::optional<std::string_view> param(std::string_view name) const;
  std::string_view branch() const { return param("branch").value_or(std::string_view{}); }
};

struct NameAddr {
  std::string_view display;  // without quotes; may contain escapes
  std::string_view uri;      // the URI text (inside <> when angle)
  bool angle = false;        // written as name-addr with <>
  std::string_view params;   // header params after the URI (leading ';')
  std::string_view raw;      // the whole value, byte-exact
  std::optional<std::string_view> param(std::string_view name) const;
  std::string_view tag() const { return param("tag").value_or(std::string_view{}); }
};

struct CSeq {
  std::uint32_t seq = 0;
  std::string_view method;
};

class Message {
 public:
  Message() = default;
  Message(Message&&) noexcept = default;
  Message& operator=(Message&&) noexcept = default;
  Message(const Message& other);
  Message& operator=(const Message& other);

  // Builders for messages the stack originates (responses, OPTIONS probes).
  static Message request(std::string_view method, std::string_view requestUri);
  static Message response(int status, std::string_view reason);

  bool isRequest() const { return request_; }
  bool isResponse() const { return !request_; }
  std::string_view method() const { return method_; }          // requests
  std::string_view requestUri() const { return requestUri_; }  // requests
  int statusCode() const { return status_; }                   // responses
  std::string_view reason() const { return reason_; }          // responses

  const std::vector<HeaderField>& headers() const { return headers_; }
  // First value of the header, or nullopt.
  std::optional<std::string_view> header(HeaderId id) const;
  std::optional<std::string_view> header(std::string_view name) const;
  std::size_t count(HeaderId id) const;
  std::string_view body() const { return body_; }

  // Typed access. List headers (Via, Route, Record-Route, Contact) combine
  // every header line and every comma-separated value, in order.
  std::vector<Via> vias() const;
  std::optional<Via> topVia() const;
  std::optional<NameAddr> from() const;
  std::optional<NameAddr> to() const;
  std::vector<NameAddr> contacts() const;  // empty for "Contact: *"
  std::vector<NameAddr> routes() const;
  std::vector<NameAddr> recordRoutes() const;
  std::optional<CSeq> cseq() const;
  std::optional<std::string_view> callId() const { return header(HeaderId::CallId); }
  std::optional<int> maxForwards() const;
  std::optional<std::uint32_t> expires() const;

  // Edits. Each keeps every other header byte-exact.
  void setRequestUri(std::string_view uri);
  void setStatus(int status, std::string_view reason);
  // Inserts before the first header with the same id, or at the top if none
  // (a proxy's new Via / Record-Route goes on top).
  void prependHeader(HeaderId id, std::string_view value);
  void appendHeader(std::string_view name, std::string_view value);
  // Replaces the first header of that id (appends if absent).
  void setHeader(HeaderId id, std::string_view value);
  // Removes the first comma-separated value of the first header of that id
  // (the top Via, the top Route); drops the header line when it was the only
  // value. Returns false if there was none.
  bool removeFirstValue(HeaderId id);
  std::size_t removeAll(HeaderId id);
  void setBody(std::string_view body, std::string_view contentType);

  // Wire form: start line, headers in order ("Name: value"), a
  // Content-Length matching the body, CRLF, body.
  std::string serialize() const;
  void serializeTo(std::string& out) const;

 private:
  friend class Parser;
  std::string_view keep(std::string s);

  std::shared_ptr<const char[]> raw_;  // received bytes (shared: copies are cheap; one allocation)
  // Text of edits and unfolded values: an immutable list shared by copies
  // (each edit puts a node in front), so copying a Message copies no text
  // and re-points no view, and an empty one allocates nothing. Nodes never
  // move or change, so views into them (short strings included) stay valid.
  struct Owned {
    std::string text;
    std::shared_ptr<const Owned> next;
  };
  std::shared_ptr<const Owned> owned_;
  bool request_ = true;
  std::string_view method_, requestUri_, reason_;
  int status_ = 0;
  std::vector<HeaderField> headers_;
  std::string_view body_;
  bool contentLengthSeen_ = false;
};

// Splits a header value at top-level commas (not inside quotes or <>),
// trimming whitespace. Empty elements are kept so callers can reject them.
std::vector<std::string_view> splitList(std::string_view value);
// The same elements one at a time, without a vector: start with pos = 0;
// each call sets `element` and moves pos on; false once none is left.
bool nextListElement(std::string_view value, std::size_t& pos, std::string_view& element);
// Parses one Via value / name-addr / CSeq; nullopt + *error when invalid.
std::optional<Via> parseVia(std::string_view value, std::string* error = nullptr);
std::optional<NameAddr> parseNameAddr(std::string_view value, std::string* error = nullptr);
std::optional<CSeq> parseCSeq(std::string_view value, std::string* error = nullptr);

}  // namespace imp::sip
