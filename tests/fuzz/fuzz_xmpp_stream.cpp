// libFuzzer target: the XMPP stream parser (RFC 6120 §4, §11). The last
// byte picks the stanza limit and a split point; the input fed in two pieces
// (with a compact() between them, which does nothing unless the stream is
// between stanzas) must give the same events as fed whole, and every element
// produced must serialize and parse back to the same element.
#include <imp/xmpp/ns.h>
#include <imp/xmpp/stream_parser.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using imp::xmpp::StreamEvent;
using imp::xmpp::StreamParser;

const std::string kHeader =
    "<stream:stream version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t sel = data[size - 1];
  const std::size_t limit = (sel & 3) == 3 ? 256 : 65536;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::size_t cut = (sel * 131u + size) % (text.size() + 1);

  StreamParser whole(limit);
  StreamParser split(limit);
  if (sel & 4) {
    auto served = [](std::string_view d) { return d == "example.com"; };
    whole.setHostCheck(served);
    split.setHostCheck(served);
  }
  auto a = whole.feed(text);
  auto b = split.feed(text.substr(0, cut));
  split.compact();
  auto b2 = split.feed(text.substr(cut));
  b.insert(b.end(), std::make_move_iterator(b2.begin()), std::make_move_iterator(b2.end()));
  if (a.size() != b.size()) abort();
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].kind != b[i].kind) abort();
    if (a[i].kind == StreamEvent::Kind::Error && a[i].error != b[i].error) abort();
    if (a[i].kind == StreamEvent::Kind::Stanza) {
      if (!(a[i].stanza == b[i].stanza)) abort();
      // Round trip through the serializer on a fresh stream.
      StreamParser again(1 << 20);
      auto c = again.feed(kHeader + a[i].stanza.serialize(imp::xmpp::ns::kClient));
      if (c.size() != 2 || c[1].kind != StreamEvent::Kind::Stanza || !(c[1].stanza == a[i].stanza)) abort();
    }
  }
  if (whole.pendingBytes() > limit + 1 && !whole.failed()) abort();
  return 0;
}
