#pragma once
// The DNS wire format (RFC 1035), protocol-free: query encoding and strict
// reply decoding for the record types IMP asks for — A, AAAA, PTR (RT-8,
// RT-10), SRV (RFC 2782) and NAPTR (RFC 3403), the last two needed by
// RFC 3263 and XMPP (issue 15, deliverable 1). Used by net::DnsClient (UDP
// and TCP on an event loop) and by core::SystemResolver (libresolv), so both
// hand out exactly the same answers.
//
// Everything here is a pure function of its arguments: any thread, no state.
// The decoder reads untrusted datagrams: it never throws (except
// std::bad_alloc), never reads outside its input, and returns nullopt for
// anything that is not a well-formed reply (see parseDnsReply).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace imp::net {

inline constexpr std::uint16_t kDnsTypeA = 1;
inline constexpr std::uint16_t kDnsTypeCname = 5;
inline constexpr std::uint16_t kDnsTypeSoa = 6;
inline constexpr std::uint16_t kDnsTypePtr = 12;
inline constexpr std::uint16_t kDnsTypeAaaa = 28;
inline constexpr std::uint16_t kDnsTypeSrv = 33;
inline constexpr std::uint16_t kDnsTypeNaptr = 35;
inline constexpr int kDnsRcodeNoError = 0;
inline constexpr int kDnsRcodeServFail = 2;
inline constexpr int kDnsRcodeNxDomain = 3;

// "A", "AAAA", "PTR", "SRV", "NAPTR", "CNAME", "SOA", else "TYPEnnn"
// (RFC 3597 form): for log lines and cache keys.
std::string dnsTypeName(std::uint16_t qtype);

// RFC 2782. `target` is lower-case without the root dot; "" is the root
// ("."), which means the service is decidedly not available at this domain.
struct SrvRecord {
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
  std::uint16_t port = 0;
  std::string target;
  std::uint32_t ttl = 0;  // seconds
  bool operator==(const SrvRecord&) const = default;
};

// RFC 3403 §4.1. `flags` and `services` are lower-cased (both are
// case-insensitive: "s", "sip+d2t"); `regexp` is as received (printable
// ASCII); `replacement` is a lower-case name without the root dot, "" for
// the root. Exactly one of regexp and replacement is set (RFC 3403 §4.1:
// using both is an error; such records are skipped).
struct NaptrRecord {
  std::uint16_t order = 0;
  std::uint16_t preference = 0;
  std::string flags;
  std::string services;
  std::string regexp;
  std::string replacement;
  std::uint32_t ttl = 0;  // seconds
  bool operator==(const NaptrRecord&) const = default;
};

// A query (RD set, one question, class IN) for `name` (one trailing dot
// allowed). Empty string if the name cannot be encoded: empty, an empty
// label, a label over 63 or a name over 253 characters, or a character that
// is a control character, space, backslash or not ASCII.
std::string buildDnsQuery(std::uint16_t id, const std::string& name, std::uint16_t qtype);

struct DnsReply {
  std::uint16_t id = 0;
  int rcode = 0;
  // The question name: lower-case, no trailing dot, unusual bytes escaped as
  // in zone files (\. \\ \DDD), so a label holding a dot never equals a
  // dotted name.
  std::string question;
  bool truncated = false;  // TC set: no records are read (the section may be cut anywhere)

  // Records of the question's type owned by the question name or by a name
  // it is a CNAME of (chains of up to 8 followed within the reply), in reply
  // order, duplicates removed, at most 32 per reply. Only the member for the
  // question's type is filled:
  //   A / AAAA  -> values: addresses as text
  //   PTR       -> values: host names (lower-case, no trailing dot)
  //   SRV       -> srv
  //   NAPTR     -> naptr
  std::vector<std::string> values;
  std::vector<SrvRecord> srv;
  std::vector<NaptrRecord> naptr;
  // Records of the question's type that were well-formed but left out
  // because what they name cannot be used (cf. glibc's res_hnok): a PTR or
  // SRV target or a NAPTR replacement that is not a host name (letters,
  // digits, '-', '_' in non-empty labels), NAPTR flags/services/regexp with
  // characters outside their grammar, a NAPTR with both or neither of
  // regexp and replacement.
  unsigned skipped = 0;
  // With records: the smallest TTL among them and the CNAMEs that led to
  // them. Without: the negative-caching TTL of RFC 2308 §5, min(SOA TTL, SOA
  // MINIMUM) of the first SOA in the authority section, when there is one.
  // TTLs with the top bit set count as 0 (RFC 2181 §8).
  std::optional<std::uint32_t> ttl;

  bool empty() const { return values.empty() && srv.empty() && naptr.empty(); }
};

// Parses a reply to a question of type `qtype` (class IN). nullopt when the
// datagram is not a well-formed reply to such a question: shorter than a
// header, QR clear, opcode not QUERY, not exactly one question, another type
// or class, a bad name (label types 01/10, a compression pointer into the
// header or not before the labels it follows — so no loops —, more than 64
// pointers, name over 255 octets), an answer or authority record that runs
// past the end, an A/AAAA record of qtype whose length is not 4/16, a
// PTR/CNAME whose name does not fill its data exactly, an SRV, NAPTR or SOA
// whose fields do not fill their data exactly. The additional section is not
// read. Never throws (except std::bad_alloc), never reads outside `wire`.
std::optional<DnsReply> parseDnsReply(std::string_view wire, std::uint16_t qtype);

// "192.0.2.1" -> "1.2.0.192.in-addr.arpa"; IPv6 -> nibbles under ip6.arpa;
// an IPv4-mapped IPv6 address (::ffff:192.0.2.1) -> its in-addr.arpa name,
// as glibc's getnameinfo does. "" if `ip` is not an IP literal.
std::string reverseName(const std::string& ip);

// The form names are compared in: ASCII lower-case, without the root dot.
std::string normalDnsName(std::string name);

// IPv4 / IPv6 literal (no brackets): AF_INET / AF_INET6, else 0.
int ipLiteralFamily(const std::string& s);

}  // namespace imp::net
