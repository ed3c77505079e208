// libFuzzer target: DNS reply decoding (untrusted datagrams and TCP messages
// from the network) must never crash, loop or read out of bounds, and what
// it returns must be what the resolvers are allowed to hand out — for every
// record type IMP asks for: A, AAAA, PTR, SRV (RFC 2782), NAPTR (RFC 3403).
#include <imp/net/dns_wire.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace imp::net;

bool hostName(const std::string& v) {
  return !v.empty() && v.size() <= 253 && v.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") == std::string::npos &&
         v.front() != '.' && v.back() != '.' && v.find("..") == std::string::npos;
}

bool printable(const std::string& v) {
  for (char c : v)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view wire(reinterpret_cast<const char*>(data), size);
  for (std::uint16_t qtype : {kDnsTypePtr, kDnsTypeA, kDnsTypeAaaa, kDnsTypeSrv, kDnsTypeNaptr}) {
    auto r = parseDnsReply(wire, qtype);
    if (!r) continue;
    if (r->question.size() > 4 * 255) abort();  // escapes at most quadruple a 255-octet name
    if (r->truncated && (!r->empty() || r->ttl)) abort();
    std::size_t count = r->values.size() + r->srv.size() + r->naptr.size();
    if (count > 32) abort();
    // Only the member for the question's type is filled.
    if (qtype == kDnsTypeSrv && count != r->srv.size()) abort();
    if (qtype == kDnsTypeNaptr && count != r->naptr.size()) abort();
    if (qtype != kDnsTypeSrv && qtype != kDnsTypeNaptr && count != r->values.size()) abort();
    if (r->ttl && *r->ttl > 0x7fffffffu) abort();  // RFC 2181 §8
    for (const auto& v : r->values) {
      if (qtype == kDnsTypePtr) {
        if (!hostName(v)) abort();
      } else {
        unsigned char buf[16];
        if (inet_pton(qtype == kDnsTypeA ? AF_INET : AF_INET6, v.c_str(), buf) != 1) abort();
      }
    }
    for (const auto& s : r->srv) {
      if (!s.target.empty() && !hostName(s.target)) abort();
      if (!r->ttl || s.ttl > *r->ttl) abort();
    }
    for (const auto& n : r->naptr) {
      if (n.regexp.empty() == n.replacement.empty()) abort();
      if (!n.replacement.empty() && !hostName(n.replacement)) abort();
      if (!printable(n.regexp) || n.flags.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") != std::string::npos)
        abort();
      if (n.services.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789+:-._") != std::string::npos) abort();
      if (!r->ttl || n.ttl > *r->ttl) abort();
    }
    // A question without escapes holds only bytes a query may carry.
    if (!r->question.empty() && r->question.find('\\') == std::string::npos && buildDnsQuery(r->id, r->question, qtype).empty())
      abort();
  }
  return 0;
}
