// libFuzzer target: the SIP parser, serializer and stream framer.
// Invariants: no crash/leak/UB; whatever parses serialises to text that
// parses again with the same start line, header count and body; typed
// accessors work on every accepted message.
#include <imp/sip/parser.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  imp::sip::Parser parser;
  auto r = parser.parseDatagram(text);
  if (auto* m = std::get_if<imp::sip::Message>(&r)) {
    (void)m->vias();
    (void)m->from();
    (void)m->to();
    (void)m->contacts();
    (void)m->routes();
    (void)m->recordRoutes();
    (void)m->cseq();
    (void)m->maxForwards();
    (void)m->expires();
    if (m->isRequest()) (void)imp::sip::parseUri(m->requestUri());
    auto out = m->serialize();
    // Serialising may add one Content-Length line: allow for it.
    imp::sip::Parser reparser(imp::sip::ParseLimits{parser.limits().maxMessageSize + 32, parser.limits().maxHeaders + 1});
    auto again = reparser.parseDatagram(out);
    auto* m2 = std::get_if<imp::sip::Message>(&again);
    if (!m2) abort();
    if (m2->body() != m->body() || m2->isRequest() != m->isRequest()) abort();
    if (m->isRequest() && (m2->method() != m->method() || m2->requestUri() != m->requestUri())) abort();
    imp::sip::Message copy = *m;
    copy.removeFirstValue(imp::sip::HeaderId::Via);
    (void)copy.serialize();
  }
  // The same bytes as a stream, fed in two pieces.
  imp::sip::StreamFramer framer(imp::sip::ParseLimits{8192, 64});
  std::size_t cut = size ? data[0] % (size + 1) : 0;
  framer.feed(text.substr(0, cut));
  imp::sip::Message msg;
  imp::sip::ParseError err;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 64; ++i) {
      auto ev = framer.next(&msg, &err);
      if (ev == imp::sip::StreamFramer::Event::NeedMore || framer.dead()) break;
    }
    if (round == 0) framer.feed(text.substr(cut));
  }
  return 0;
}
