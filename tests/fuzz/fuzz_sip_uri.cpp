// libFuzzer target: URI parsing and parameter lookup.
#include <imp/sip/uri.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto u = imp::sip::parseUri(text)) {
    (void)u->param("transport");
    (void)u->param("lr");
    (void)imp::sip::unescape(u->user);
    // every view must lie inside the input
    auto inside = [&](std::string_view v) { return v.empty() || (v.data() >= text.data() && v.data() + v.size() <= text.data() + text.size()); };
    if (!inside(u->user) || !inside(u->host) || !inside(u->params) || !inside(u->headers)) abort();
  }
  (void)imp::sip::findParam(text, "tag");
  return 0;
}
