// The XML stream parser on expat (RFC 6120 §4, §11). Restricted XML is
// enforced by handlers that stop expat at the first forbidden construct;
// the size limit by handing expat the input in slices sized so that a
// pending element never exceeds limit + 1 bytes before the check runs.
#include <imp/xmpp/jid.h>
#include <imp/xmpp/ns.h>
#include <imp/xmpp/stream_parser.h>

#include <expat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <tuple>
#include <utility>

namespace imp::xmpp {
namespace {

constexpr char kSep = '\x01';            // not an XML character: never inside a name or URI
constexpr std::size_t kMaxSlice = 4096;  // largest piece handed to expat at once
// Nesting below the stream element. Deeper stanzas are refused so that
// the recursive walks of an Element (copy, destroy, serialize) stay shallow.
constexpr int kMaxDepth = 100;

// Expat's allocations, counted per parser. Each block carries a header
// with its size and the parser it belongs to; the owner of new blocks is
// the parser currently calling into expat on this thread.
struct alignas(std::max_align_t) BlockHeader {
  std::size_t size;
  StreamParser::Impl* owner;
};
thread_local StreamParser::Impl* tCurrentOwner = nullptr;

struct Split {
  std::string_view ns, local, prefix;
};

Split splitName(const XML_Char* name) {
  std::string_view s(name);
  auto a = s.find(kSep);
  if (a == std::string_view::npos) return {{}, s, {}};
  Split out;
  out.ns = s.substr(0, a);
  auto rest = s.substr(a + 1);
  auto b = rest.find(kSep);
  if (b == std::string_view::npos) {
    out.local = rest;
  } else {
    out.local = rest.substr(0, b);
    out.prefix = rest.substr(b + 1);
  }
  return out;
}

bool isXmlWhitespace(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

// "1.0", "1.1", "01.0": major 1 (RFC 6120 §4.7.5; leading zeros ignored).
bool versionIsOne(std::string_view v) {
  auto dot = v.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == v.size()) return false;
  auto digits = [](std::string_view d) { return std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; }); };
  auto major = v.substr(0, dot), minor = v.substr(dot + 1);
  if (!digits(major) || !digits(minor)) return false;
  while (major.size() > 1 && major.front() == '0') major.remove_prefix(1);
  return major == "1";
}

}  // namespace

struct StreamParser::Impl {
  StreamParser& owner;
  XML_Parser p = nullptr;
  std::vector<StreamEvent>* out = nullptr;
  int depth = 0;                 // 0 before the header, 1 inside the stream
  std::uint64_t mark = 0;        // where the pending top-level unit starts
  std::uint64_t stanzaStart = 0;
  std::optional<Element> stanza; // the top-level element being built
  std::vector<Element*> stack;   // open elements of `stanza`
  std::vector<std::pair<std::string, std::string>> headerNs;
  bool stopped = false;          // a handler failed or the stream closed
  // Non-whitespace text between top-level elements. Refused when the next
  // markup arrives, not when the text does: expat reports a run of text in
  // pieces that depend on how the input was split, and drops the whole run
  // if it holds an error further on, so deciding early would make the
  // reported condition depend on the split.
  bool strayText = false;
  std::size_t memNow = 0, memPeak = 0;
  // A parser started by StreamParser::resume() first parses a copy of the
  // stream header (`priming`); expat's offsets and positions then count
  // from that copy. shift maps expat's byte index to the stream's offset;
  // the stream position of the octet after the copy is lineBase:columnBase,
  // expat's is 1:primeColumns.
  bool priming = false;
  std::int64_t shift = 0;
  std::uint64_t lineBase = 1, columnBase = 0, primeColumns = 0;
  // UTF-8 decoding state carried across feeds (RFC 3629 §4): octets still
  // expected for the current character and the range of the next one.
  int u8need = 0;
  unsigned char u8lo = 0x80, u8hi = 0xBF;

  explicit Impl(StreamParser& o) : owner(o) {}

  // Length of the longest prefix of [p, p+n) that continues valid UTF-8
  // (overlong forms, surrogates and code points above U+10FFFF refused);
  // advances the decoding state over that prefix.
  std::size_t validUtf8(const char* p, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) {
      const auto c = static_cast<unsigned char>(p[k]);
      if (u8need > 0) {
        if (c < u8lo || c > u8hi) return k;
        u8lo = 0x80;
        u8hi = 0xBF;
        --u8need;
        continue;
      }
      if (c < 0x80) continue;
      if (c >= 0xC2 && c <= 0xDF) {
        u8need = 1;
      } else if (c >= 0xE0 && c <= 0xEF) {
        u8need = 2;
        if (c == 0xE0) u8lo = 0xA0;  // no overlong 3-octet forms
        if (c == 0xED) u8hi = 0x9F;  // no UTF-16 surrogates
      } else if (c >= 0xF0 && c <= 0xF4) {
        u8need = 3;
        if (c == 0xF0) u8lo = 0x90;  // no overlong 4-octet forms
        if (c == 0xF4) u8hi = 0x8F;  // nothing above U+10FFFF
      } else {
        return k;  // 0x80-0xC1 (continuation or overlong lead), 0xF5-0xFF
      }
    }
    return n;
  }

  void fail(StreamErrorCondition c, std::string text) {
    if (stopped) return;
    stopped = true;
    owner.state_ = State::Failed;
    StreamEvent ev;
    ev.kind = StreamEvent::Kind::Error;
    ev.error = c;
    ev.text = std::move(text);
    out->push_back(std::move(ev));
    XML_StopParser(p, XML_FALSE);
  }

  std::uint64_t index() const {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(XML_GetCurrentByteIndex(p)) + shift);
  }
  std::uint64_t indexAfter() const { return index() + static_cast<std::uint64_t>(XML_GetCurrentByteCount(p)); }

  // Line (1-based) and column (0-based) in the stream of expat's current
  // position.
  std::pair<std::uint64_t, std::uint64_t> position() const {
    const auto line = static_cast<std::uint64_t>(XML_GetCurrentLineNumber(p));
    const auto column = static_cast<std::uint64_t>(XML_GetCurrentColumnNumber(p));
    if (line > 1) return {lineBase + line - 1, column};
    return {lineBase, columnBase + (column > primeColumns ? column - primeColumns : 0)};
  }

  void openStream(const XML_Char* name, const XML_Char** atts) {
    Split n = splitName(name);
    if (n.ns != ns::kStreams || n.local != "stream") {
      fail(StreamErrorCondition::InvalidNamespace,
           "the stream must open with <stream:stream> in the namespace http://etherx.jabber.org/streams "
           "(RFC 6120 §4.8.1)");
      return;
    }
    if (n.prefix != "stream") {
      fail(StreamErrorCondition::BadNamespacePrefix,
           "the stream element must use the prefix 'stream' (RFC 6120 §4.8.5)");
      return;
    }
    StreamHeader h;
    bool haveDefault = false;
    for (const auto& [prefix, uri] : headerNs)
      if (prefix.empty()) {
        h.contentNs = uri;
        haveDefault = true;
      }
    if (!haveDefault || h.contentNs != owner.contentNs_) {
      fail(StreamErrorCondition::InvalidNamespace,
           "the content namespace must be declared as the default namespace: xmlns='" + owner.contentNs_ +
               "' (RFC 6120 §4.8.2)");
      return;
    }
    bool haveVersion = false;
    for (const XML_Char** a = atts; a && *a; a += 2) {
      Split an = splitName(a[0]);
      std::string_view v(a[1]);
      if (an.ns.empty()) {
        if (an.local == "to") h.to = v;
        else if (an.local == "from") h.from = v;
        else if (an.local == "id") h.id = v;
        else if (an.local == "version") {
          h.version = v;
          haveVersion = true;
        }
      } else if (an.ns == ns::kXml && an.local == "lang") {
        h.lang = v;
      }
    }
    if (!haveVersion || !versionIsOne(h.version)) {
      fail(StreamErrorCondition::UnsupportedVersion,
           haveVersion ? "stream version '" + h.version + "' is not supported: only 1.x (RFC 6120 §4.7.5)"
                       : std::string("the stream header has no version: pre-1.0 streams are not supported (RFC 6120 §4.7.5)"));
      return;
    }
    if (!h.to.empty()) {
      if (auto d = normaliseDomainpart(h.to)) h.toDomain = std::move(*d);
    }
    if (owner.hostCheck_) {
      if (h.to.empty()) {
        fail(StreamErrorCondition::HostUnknown, "the stream header has no 'to' naming the domain to serve (RFC 6120 §4.7.2)");
        return;
      }
      std::string why;
      if (h.toDomain.empty()) {
        (void)normaliseDomainpart(h.to, &why);
        fail(StreamErrorCondition::HostUnknown, "'to' is not a domain: " + why);
        return;
      }
      if (!owner.hostCheck_(h.toDomain)) {
        fail(StreamErrorCondition::HostUnknown, "domain '" + h.toDomain + "' is not served here (RFC 6120 §4.9.3.6)");
        return;
      }
    }
    // What compact() must declare again when it puts a header back.
    owner.extraNs_.clear();
    for (const auto& [prefix, uri] : headerNs)
      if (!prefix.empty() && prefix != "stream") {
        owner.extraNs_ += " xmlns:" + prefix + "='";
        appendEscapedAttr(owner.extraNs_, uri);
        owner.extraNs_ += '\'';
      }
    h.namespaces = std::move(headerNs);
    headerNs.clear();
    depth = 1;
    mark = indexAfter();
    owner.state_ = State::Open;
    StreamEvent ev;
    ev.kind = StreamEvent::Kind::Opened;
    ev.header = std::move(h);
    out->push_back(std::move(ev));
  }

  // True (and the stream failed) if text between elements was pending.
  bool refuseStrayText() {
    if (!strayText) return false;
    fail(StreamErrorCondition::BadFormat, "character data between top-level elements (only whitespace may appear there)");
    return true;
  }

  void startElement(const XML_Char* name, const XML_Char** atts) {
    if (priming) {  // the header was checked when it first arrived
      depth = 1;
      return;
    }
    if (stopped || refuseStrayText()) return;
    if (depth == 0) {
      openStream(name, atts);
      return;
    }
    if (depth > kMaxDepth) {
      fail(StreamErrorCondition::PolicyViolation,
           "elements nested deeper than " + std::to_string(kMaxDepth) + " levels");
      return;
    }
    Split n = splitName(name);
    Element e{std::string(n.local), std::string(n.ns)};
    for (const XML_Char** a = atts; *a; a += 2) {
      Split an = splitName(a[0]);
      if (an.ns.empty())
        e.setAttr(an.local, a[1]);
      else
        e.setAttrNs(an.local, an.ns, an.prefix, a[1]);
    }
    if (depth == 1) {
      stanzaStart = index();
      stanza.emplace(std::move(e));
      stack.assign(1, &*stanza);
    } else {
      stack.push_back(&stack.back()->addChild(std::move(e)));
    }
    ++depth;
  }

  void endElement() {
    if (stopped || refuseStrayText()) return;
    --depth;
    if (depth == 0) {  // </stream:stream> (RFC 6120 §4.4)
      stopped = true;
      owner.state_ = State::Closed;
      StreamEvent ev;
      ev.kind = StreamEvent::Kind::Closed;
      out->push_back(std::move(ev));
      XML_StopParser(p, XML_FALSE);
      return;
    }
    stack.pop_back();
    if (depth == 1) {
      const std::uint64_t end = indexAfter();
      const std::uint64_t size = end - stanzaStart;
      if (size > owner.limit_) {
        fail(StreamErrorCondition::PolicyViolation, "top-level element of " + std::to_string(size) +
                                                        " octets exceeds the limit of " + std::to_string(owner.limit_));
        return;
      }
      StreamEvent ev;
      ev.kind = StreamEvent::Kind::Stanza;
      ev.stanza = std::move(*stanza);
      stanza.reset();
      out->push_back(std::move(ev));
      mark = end;
    }
  }

  void text(const XML_Char* s, int len) {
    if (stopped) return;
    std::string_view t(s, static_cast<std::size_t>(len));
    if (depth >= 2) {
      stack.back()->addText(t);
      return;
    }
    if (depth == 1) {
      if (!isXmlWhitespace(t)) {
        strayText = true;  // refused at the next markup; counts against the limit meanwhile
        return;
      }
      if (!strayText) mark = indexAfter();  // whitespace keepalives (RFC 6120 §4.6.1)
    }
  }

  // Which stream error an expat error is (RFC 6120 §4.9.3.13, §4.9.3.18, §11.6).
  void expatError() {
    const XML_Error code = XML_GetErrorCode(p);
    const auto [line, column] = position();
    std::string where = " at line " + std::to_string(line) + ", column " + std::to_string(column);
    std::string what = XML_ErrorString(code);
    switch (code) {
      case XML_ERROR_UNDEFINED_ENTITY:
      case XML_ERROR_RECURSIVE_ENTITY_REF:
      case XML_ERROR_ASYNC_ENTITY:
      case XML_ERROR_BINARY_ENTITY_REF:
      case XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF:
      case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
      case XML_ERROR_ENTITY_DECLARED_IN_PE:
      case XML_ERROR_AMPLIFICATION_LIMIT_BREACH:
        fail(StreamErrorCondition::RestrictedXml,
             "entity reference other than the five predefined ones (RFC 6120 §11.1): " + what + where);
        return;
      case XML_ERROR_MISPLACED_XML_PI:
        fail(StreamErrorCondition::RestrictedXml,
             "processing instruction or XML declaration after the start of the stream (RFC 6120 §11.1)" + where);
        return;
      case XML_ERROR_UNKNOWN_ENCODING:
      case XML_ERROR_INCORRECT_ENCODING:
        fail(StreamErrorCondition::UnsupportedEncoding, "only UTF-8 is supported (RFC 6120 §11.6): " + what + where);
        return;
      default:
        fail(StreamErrorCondition::NotWellFormed, what + where);
        return;
    }
  }
};

namespace {

StreamParser::Impl* impl(void* ud) { return static_cast<StreamParser::Impl*>(ud); }

void* countedMalloc(std::size_t n) {
  auto* h = static_cast<BlockHeader*>(std::malloc(sizeof(BlockHeader) + n));
  if (!h) return nullptr;
  h->size = n;
  h->owner = tCurrentOwner;
  if (h->owner) {
    h->owner->memNow += n;
    h->owner->memPeak = std::max(h->owner->memPeak, h->owner->memNow);
  }
  return h + 1;
}

void countedFree(void* ptr) {
  if (!ptr) return;
  auto* h = static_cast<BlockHeader*>(ptr) - 1;
  if (h->owner) h->owner->memNow -= h->size;
  std::free(h);
}

void* countedRealloc(void* ptr, std::size_t n) {
  if (!ptr) return countedMalloc(n);
  auto* h = static_cast<BlockHeader*>(ptr) - 1;
  const std::size_t old = h->size;
  auto* owner = h->owner;
  auto* nh = static_cast<BlockHeader*>(std::realloc(h, sizeof(BlockHeader) + n));
  if (!nh) return nullptr;
  nh->size = n;
  if (owner) {
    owner->memNow = owner->memNow - old + n;
    owner->memPeak = std::max(owner->memPeak, owner->memNow);
  }
  return nh + 1;
}

const XML_Memory_Handling_Suite kMemSuite = {countedMalloc, countedRealloc, countedFree};

struct OwnerScope {
  StreamParser::Impl* saved;
  explicit OwnerScope(StreamParser::Impl* i) : saved(tCurrentOwner) { tCurrentOwner = i; }
  ~OwnerScope() { tCurrentOwner = saved; }
};

void XMLCALL onStart(void* ud, const XML_Char* name, const XML_Char** atts) { impl(ud)->startElement(name, atts); }
void XMLCALL onEnd(void* ud, const XML_Char*) { impl(ud)->endElement(); }
void XMLCALL onText(void* ud, const XML_Char* s, int len) { impl(ud)->text(s, len); }

void XMLCALL onNsDecl(void* ud, const XML_Char* prefix, const XML_Char* uri) {
  auto* i = impl(ud);
  if (i->depth == 0) i->headerNs.emplace_back(prefix ? prefix : "", uri ? uri : "");
}

void XMLCALL onXmlDecl(void* ud, const XML_Char*, const XML_Char* encoding, int) {
  if (!encoding) return;
  std::string e(encoding);
  for (char& c : e) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  if (e != "UTF-8")
    impl(ud)->fail(StreamErrorCondition::UnsupportedEncoding,
                   "the XML declaration names encoding '" + std::string(encoding) + "': only UTF-8 (RFC 6120 §11.6)");
}

void XMLCALL onDoctype(void* ud, const XML_Char*, const XML_Char*, const XML_Char*, int) {
  impl(ud)->fail(StreamErrorCondition::RestrictedXml, "document type declaration (DTD) (RFC 6120 §11.1)");
}

void XMLCALL onEntityDecl(void* ud, const XML_Char* name, int, const XML_Char*, int, const XML_Char*, const XML_Char*,
                          const XML_Char*, const XML_Char*) {
  impl(ud)->fail(StreamErrorCondition::RestrictedXml,
                 "entity declaration '" + std::string(name ? name : "") + "' (RFC 6120 §11.1)");
}

void XMLCALL onSkippedEntity(void* ud, const XML_Char* name, int) {
  impl(ud)->fail(StreamErrorCondition::RestrictedXml,
                 "reference to entity '" + std::string(name ? name : "") + "' (RFC 6120 §11.1)");
}

void XMLCALL onComment(void* ud, const XML_Char*) {
  if (impl(ud)->refuseStrayText()) return;
  impl(ud)->fail(StreamErrorCondition::RestrictedXml, "comment (RFC 6120 §11.1)");
}

void XMLCALL onPi(void* ud, const XML_Char* target, const XML_Char*) {
  if (impl(ud)->refuseStrayText()) return;
  impl(ud)->fail(StreamErrorCondition::RestrictedXml,
                 "processing instruction '" + std::string(target ? target : "") + "' (RFC 6120 §11.1)");
}

}  // namespace

StreamParser::StreamParser(std::size_t stanzaLimit, std::string contentNs)
    : limit_(stanzaLimit), contentNs_(std::move(contentNs)) {
  create();
}

StreamParser::~StreamParser() { destroy(); }

void StreamParser::create() {
  impl_ = std::make_unique<Impl>(*this);
  OwnerScope scope(impl_.get());
  const XML_Char sep[2] = {kSep, 0};
  impl_->p = XML_ParserCreate_MM("UTF-8", &kMemSuite, sep);
  if (!impl_->p) throw std::bad_alloc();
  XML_Parser p = impl_->p;
  XML_SetUserData(p, impl_.get());
  XML_SetReturnNSTriplet(p, 1);
  XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
  XML_SetElementHandler(p, onStart, onEnd);
  XML_SetCharacterDataHandler(p, onText);
  XML_SetStartNamespaceDeclHandler(p, onNsDecl);
  XML_SetXmlDeclHandler(p, onXmlDecl);
  XML_SetStartDoctypeDeclHandler(p, onDoctype);
  XML_SetEntityDeclHandler(p, onEntityDecl);
  XML_SetSkippedEntityHandler(p, onSkippedEntity);
  XML_SetCommentHandler(p, onComment);
  XML_SetProcessingInstructionHandler(p, onPi);
}

void StreamParser::destroy() {
  if (!impl_) return;
  OwnerScope scope(impl_.get());
  if (impl_->p) XML_ParserFree(impl_->p);
  impl_->p = nullptr;
  impl_.reset();
}

void StreamParser::reset() {
  destroy();
  create();
  state_ = State::Start;
  fed_ = 0;
  extraNs_.clear();
  line_ = 1;
  column_ = 0;
  peak_ = 0;
}

bool StreamParser::compact() {
  if (!impl_) return true;
  const Impl& i = *impl_;
  if (state_ != State::Open || i.depth != 1 || fed_ != i.mark || i.strayText || i.u8need != 0) return false;
  // Every octet fed is consumed: expat's position is where the next starts.
  std::tie(line_, column_) = i.position();
  peak_ = std::max(peak_, i.memPeak);
  destroy();
  return true;
}

// A new expat parser that continues the stream: it parses a start tag
// declaring the same namespaces as the header (the names in the stream's
// stanzas resolve the same way) and then takes the next octets.
void StreamParser::resume() {
  create();
  Impl& i = *impl_;
  OwnerScope scope(&i);
  std::string head = "<stream:stream xmlns='";
  appendEscapedAttr(head, contentNs_);
  head += "' xmlns:stream='";
  head += ns::kStreams;
  head += '\'';
  head += extraNs_;
  head += '>';
  std::vector<StreamEvent> none;
  i.out = &none;
  i.priming = true;
  const auto rc = XML_Parse(i.p, head.data(), static_cast<int>(head.size()), XML_FALSE);
  i.priming = false;
  i.out = nullptr;
  if (rc != XML_STATUS_OK || i.depth != 1) {
    if (XML_GetErrorCode(i.p) == XML_ERROR_NO_MEMORY) throw std::bad_alloc();
    // The text is made of what expat accepted in the stream's own header.
    std::fprintf(stderr, "imp::xmpp::StreamParser: the stream header put back after compact() did not parse: %s\n",
                 XML_ErrorString(XML_GetErrorCode(i.p)));
    std::abort();
  }
  i.headerNs.clear();
  i.shift = static_cast<std::int64_t>(fed_) - static_cast<std::int64_t>(head.size());
  i.mark = fed_;
  i.lineBase = line_;
  i.columnBase = column_;
  i.primeColumns = static_cast<std::uint64_t>(XML_GetCurrentColumnNumber(i.p));
}

std::vector<StreamEvent> StreamParser::feed(const char* data, std::size_t size) {
  std::vector<StreamEvent> events;
  if (state_ == State::Failed || state_ == State::Closed || size == 0) return events;
  if (!impl_) resume();
  Impl& i = *impl_;
  OwnerScope scope(&i);
  i.out = &events;
  // Expat honours a UTF-16 byte order mark even when told the input is
  // UTF-8; 0xFE and 0xFF never occur in UTF-8, so the first octet decides.
  if (fed_ == 0 && size > 0 && (static_cast<unsigned char>(data[0]) == 0xFE || static_cast<unsigned char>(data[0]) == 0xFF)) {
    i.fail(StreamErrorCondition::UnsupportedEncoding, "UTF-16 byte order mark: only UTF-8 is supported (RFC 6120 §11.6)");
    i.out = nullptr;
    return events;
  }
  std::size_t off = 0;
  while (off < size && !i.stopped) {
    const std::uint64_t pending = fed_ - i.mark;
    if (pending > limit_) break;
    // Never let the pending unit pass limit + 1 octets unchecked.
    const std::size_t budget = static_cast<std::size_t>(limit_ - pending) + 1;
    std::size_t n = std::min({size - off, budget, kMaxSlice});
    // A NUL octet is U+0000 in UTF-8, which XML never allows. Expat is not
    // shown it: at the start of a stream it would guess UTF-16 from it.
    const void* nul = std::memchr(data + off, 0, n);
    if (nul) n = static_cast<std::size_t>(static_cast<const char*>(nul) - (data + off));
    // RFC 6120 §4.9.3.22: a stream that violates the rules of UTF-8 is
    // unsupported-encoding (not the not-well-formed expat would report);
    // expat sees only the valid prefix.
    const std::size_t valid = i.validUtf8(data + off, n);
    const bool badUtf8 = valid < n;
    if (badUtf8) {
      n = valid;
      nul = nullptr;
    }
    if (n > 0) {
      const auto rc = XML_Parse(i.p, data + off, static_cast<int>(n), XML_FALSE);
      fed_ += n;
      off += n;
      if (rc == XML_STATUS_ERROR && !i.stopped) i.expatError();
    }
    if (nul && !i.stopped)
      i.fail(StreamErrorCondition::NotWellFormed, "NUL octet at offset " + std::to_string(fed_) +
                                                      ": U+0000 is not an XML character");
    if (badUtf8 && !i.stopped)
      i.fail(StreamErrorCondition::UnsupportedEncoding,
             "invalid UTF-8 at offset " + std::to_string(fed_) + " (RFC 6120 §11.6, RFC 3629)");
  }
  if (!i.stopped && fed_ - i.mark > limit_) {
    i.fail(StreamErrorCondition::PolicyViolation,
           std::string(i.depth == 0 ? "stream header" : "top-level element") + " exceeds the limit of " +
               std::to_string(limit_) + " octets");
  }
  i.out = nullptr;
  return events;
}

std::size_t StreamParser::pendingBytes() const { return impl_ ? static_cast<std::size_t>(fed_ - impl_->mark) : 0; }
std::size_t StreamParser::expatBytes() const { return impl_ ? impl_->memNow : 0; }
std::size_t StreamParser::expatPeakBytes() const { return std::max(peak_, impl_ ? impl_->memPeak : 0); }

}  // namespace imp::xmpp
