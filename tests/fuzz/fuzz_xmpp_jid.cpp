// libFuzzer target: JID preparation (RFC 7622). A prepared address parses
// again to itself (PRECIS preparation is idempotent, RFC 8264 §7), and a
// refusal always says why.
#include <imp/xmpp/jid.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string why;
  auto j = imp::xmpp::Jid::parse(text, &why);
  if (!j) {
    if (why.empty()) abort();
    return 0;
  }
  if (j->domain().empty()) abort();
  if (j->local().size() > 1023 || j->domain().size() > 1023 || j->resource().size() > 1023) abort();
  std::string why2;
  auto again = imp::xmpp::Jid::parse(j->full(), &why2);
  if (!again || !(*again == *j)) abort();
  if (j->hasLocal()) {
    auto l = imp::xmpp::normaliseLocalpart(j->local());
    if (!l || *l != j->local()) abort();
  }
  return 0;
}
