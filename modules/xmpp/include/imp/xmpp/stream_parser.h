#pragma once
// Incremental parser of one XML stream (RFC 6120 §4, §11) on expat.
//
// feed() takes bytes as they arrive, in any split, and returns what they
// completed: the stream header, whole top-level elements (stanzas and the
// other first-level elements: features, SASL, SM, ...), the closing tag, or
// one error. Feeding byte by byte gives the same events as feeding all at
// once.
//
// Restricted XML (RFC 6120 §11.1) is enforced: a DOCTYPE/DTD, entity
// declarations, references to entities other than the five predefined
// ones, comments and processing instructions give `restricted-xml` (the
// XML declaration at the very start is allowed; character references are
// fine); malformed XML or invalid UTF-8 gives `not-well-formed`; a
// declared encoding other than UTF-8 `unsupported-encoding` (§11.6); a
// header that is not <stream:stream> in the streams namespace with the
// expected content namespace `invalid-namespace`; a version other than 1.x,
// or none, `unsupported-version` (§4.7.5); a top-level element (or a
// header, or anything between elements other than whitespace) longer than
// the stanza limit `policy-violation`. Bytes are handed to expat in slices
// that never take a pending element past limit + 1 bytes, so the parser
// holds O(limit) memory whatever arrives (a 1 MB stanza, billion laughs).
//
// Memory: an open stream between top-level elements can give its expat
// parser back (compact()); the next feed() builds a new one, primed with the
// stream header's namespace declarations, and parsing goes on as if nothing
// happened (same events, same limits, same error positions). An idle client
// connection then holds no parser state beyond this object.
//
// After an Error event the parser is dead: feed() returns nothing until
// reset(). Threads: one parser belongs to one connection; not thread-safe.
#include <imp/xmpp/stream_error.h>
#include <imp/xmpp/xml.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

namespace imp::xmpp {

// The attributes of the peer's <stream:stream> (RFC 6120 §4.7).
struct StreamHeader {
  std::string to;
  std::string from;
  std::string id;
  std::string version;    // "1.0"
  std::string lang;       // xml:lang
  std::string contentNs;  // the default namespace: jabber:client / jabber:server
  std::string toDomain;   // `to` prepared as a domainpart (RFC 7622 §3.2); empty if absent or invalid
  // Every namespace declared on the header: (prefix, uri), prefix "" for
  // the default namespace, in document order.
  std::vector<std::pair<std::string, std::string>> namespaces;
};

struct StreamEvent {
  enum class Kind : std::uint8_t { Opened, Stanza, Closed, Error };
  Kind kind = Kind::Error;
  StreamHeader header;  // Opened
  Element stanza;       // Stanza: one complete top-level element
  StreamErrorCondition error = StreamErrorCondition::UndefinedCondition;  // Error
  std::string text;     // Error: what was wrong, for the log and <text/>
};

inline constexpr std::size_t kDefaultPreAuthStanzaLimit = 10 * 1024;    // before SASL success
inline constexpr std::size_t kDefaultPostAuthStanzaLimit = 256 * 1024;  // after

class StreamParser {
 public:
  // `contentNs` is the default namespace the header must declare
  // (ns::kClient for client streams, ns::kServer for server-to-server).
  explicit StreamParser(std::size_t stanzaLimit = kDefaultPreAuthStanzaLimit,
                        std::string contentNs = "jabber:client");
  ~StreamParser();
  StreamParser(const StreamParser&) = delete;
  StreamParser& operator=(const StreamParser&) = delete;

  std::vector<StreamEvent> feed(const char* data, std::size_t size);
  std::vector<StreamEvent> feed(std::string_view data) { return feed(data.data(), data.size()); }

  // Starts a new stream on the same connection (after STARTTLS, RFC 6120
  // §5.4.3.3, and after SASL success, §6.4.6): a fresh expat parser; the
  // limit stays. Also the way out of the dead state.
  void reset();

  // Frees the expat parser and the element builder when the stream is open
  // and nothing is pending (between top-level elements, no partial element,
  // character or stray text); the next feed() starts a new expat parser
  // primed with the header's namespace declarations. True when the parser
  // holds no expat state afterwards. Cheap to call; costs one parser
  // creation on the next feed(), so call it on streams gone quiet, not after
  // every read.
  bool compact();
  bool compacted() const { return !impl_; }

  // The limit on one top-level element, in octets. Takes effect at once,
  // also for an element already in progress (raise it after SASL success).
  void setStanzaLimit(std::size_t octets) { limit_ = octets; }
  std::size_t stanzaLimit() const { return limit_; }

  // Which domains this side serves (RFC 6120 §4.9.3.6): when set, a header
  // whose 'to' is missing, is not a valid domainpart, or names a domain the
  // check refuses ends the stream with `host-unknown`. The check gets the
  // prepared domain (lower case, U-labels) and is called on the thread that
  // calls feed(); it survives reset().
  using HostCheck = std::function<bool(std::string_view domain)>;
  void setHostCheck(HostCheck check) { hostCheck_ = std::move(check); }

  bool opened() const { return state_ == State::Open; }
  bool failed() const { return state_ == State::Failed; }
  bool closed() const { return state_ == State::Closed; }

  // What the parser holds now: bytes handed to expat since the start of
  // the pending top-level element (or of the idle gap), and the bytes expat
  // has allocated (current: 0 when compacted; peak since the last reset()).
  std::size_t pendingBytes() const;
  std::size_t expatBytes() const;
  std::size_t expatPeakBytes() const;
  // Octets consumed since the stream started (for metrics).
  std::uint64_t totalBytes() const { return fed_; }

  struct Impl;  // expat glue (stream_parser.cpp)

 private:
  enum class State : std::uint8_t { Start, Open, Closed, Failed };
  void create();
  void destroy();
  void resume();
  friend struct Impl;

  std::unique_ptr<Impl> impl_;  // null while compacted
  std::size_t limit_;
  std::string contentNs_;
  HostCheck hostCheck_;
  State state_ = State::Start;
  std::uint64_t fed_ = 0;  // octets of this stream handed to expat
  // Kept over compact(): the header's namespace declarations other than the
  // default and 'stream' ones (as attribute text, usually empty), the
  // position where the next octet starts (for error messages) and expat's
  // peak.
  std::string extraNs_;
  std::uint64_t line_ = 1, column_ = 0;
  std::size_t peak_ = 0;
};

}  // namespace imp::xmpp
