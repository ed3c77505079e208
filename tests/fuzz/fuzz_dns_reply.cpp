// libFuzzer target: DNS reply parsing (untrusted datagrams from the network)
// must never crash, loop or read out of bounds, and what it returns must be
// what the resolver is allowed to hand out.
#include <imp/core/dns_client.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view wire(reinterpret_cast<const char*>(data), size);
  for (std::uint16_t qtype : {imp::core::kDnsTypePtr, imp::core::kDnsTypeA, imp::core::kDnsTypeAaaa}) {
    auto r = imp::core::parseDnsReply(wire, qtype);
    if (!r) continue;
    if (r->question.size() > 4 * 255) abort();  // escapes at most quadruple a 255-octet name
    if (r->truncated && !r->values.empty()) abort();
    for (const auto& v : r->values) {
      if (qtype == imp::core::kDnsTypePtr) {
        if (v.empty() || v.size() > 253 || v.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") != std::string::npos)
          abort();
      } else {
        unsigned char buf[16];
        if (inet_pton(qtype == imp::core::kDnsTypeA ? AF_INET : AF_INET6, v.c_str(), buf) != 1) abort();
      }
    }
    // A question without escapes holds only bytes a query may carry.
    if (!r->question.empty() && r->question.find('\\') == std::string::npos &&
        imp::core::buildDnsQuery(r->id, r->question, qtype).empty())
      abort();
  }
  return 0;
}
