#pragma once
// Parsing SIP from the wire (RFC 3261 §7, §18.3, §25).
//
// parseDatagram(): one UDP datagram = one message. A Content-Length smaller
// than the rest is honoured (trailing octets ignored), a larger one is an
// error; without Content-Length the body is the rest of the datagram.
//
// StreamFramer: TCP/TLS byte stream -> messages. Leading CRLFs are keep-alive
// pings (RFC 5626 §3.5.1: a CRLFCRLF ping is reported so the transport can
// answer with CRLF). Content-Length is mandatory on streams; a message over
// the size limit, a header flood, or a missing / malformed Content-Length
// make the stream unframeable: the framer reports the error and the
// transport answers 400 when it can, then closes the connection.
//
// Errors carry the status a server should answer with (400, 505, 413, 513)
// and a reason phrase naming the problem, and whether a response can be
// formed (the message had the headers a response needs).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "imp/sip/message.h"

namespace imp::sip {

struct ParseLimits {
  std::size_t maxMessageSize = 64 * 1024;  // start line + headers + body
  std::size_t maxHeaders = 128;            // header lines
};

struct ParseError {
  int status = 400;        // what to answer a request with
  std::string reason;      // e.g. "Bad Request - Malformed Via"
  bool canRespond = false; // the request had Via, From, To, Call-ID, CSeq
};

using ParseResult = std::variant<Message, ParseError>;

class Parser {
 public:
  explicit Parser(ParseLimits limits = {}) : limits_(limits) {}
  // One complete message in `data` (datagram semantics, see above).
  ParseResult parseDatagram(std::string_view data) const;
  // One message already cut to size by a stream framer: the body is exactly
  // what follows the empty line, and Content-Length must say so.
  ParseResult parseFramed(std::string_view message) const;
  const ParseLimits& limits() const { return limits_; }

 private:
  ParseResult parse(std::string_view data, bool datagram) const;
  ParseLimits limits_;
};

class StreamFramer {
 public:
  enum class Event { NeedMore, Message, KeepAlivePing, Error };
  explicit StreamFramer(ParseLimits limits = {}) : parser_(limits) {}

  // Appends received bytes.
  void feed(std::string_view bytes) { buf_.append(bytes); }
  // Takes the next event: Message -> *msg set. Error -> *err set; if the
  // message was framed but invalid, *resynced is true and the stream goes
  // on (answer 400, keep reading); otherwise the framer is dead() and the
  // transport must close the connection.
  Event next(Message* msg, ParseError* err, bool* resynced = nullptr);
  std::size_t buffered() const { return buf_.size() - pos_; }
  // True after an unrecoverable error: the transport must close the stream.
  bool dead() const { return dead_; }

 private:
  Event die(ParseError* err, int status, const char* reason);
  void compact();
  Parser parser_;
  std::string buf_;
  std::size_t pos_ = 0;
  bool dead_ = false;
};

}  // namespace imp::sip
