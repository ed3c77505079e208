#pragma once
// A DNS client that asks configured servers over UDP instead of the system
// resolver (RT-8): administrators point impd at specific DNS servers, and the
// end-to-end tests point it at a fake server that stalls chosen lookups.
//
// DnsClientResolver owns ONE background thread that multiplexes every query
// on non-blocking UDP sockets (one per address family in use). Each query
// has its own deadline, so a server that never answers one name delays only
// the callers waiting for that name.
//
// Contract (same as Resolver): every callback is called exactly once — on the
// resolver thread, or synchronously from the caller when the answer needs no
// query (forward() of an IP literal, reverse() of something that is not an IP
// address, a name that cannot be encoded). Callbacks must not block for long:
// they delay every other answer. Exceptions thrown by a callback are caught
// and logged; they never leave the resolver thread.
//
// Retries: servers are tried in configuration order, `attempts` rounds over
// all servers (like glibc: s1, s2, s1, s2), each try waiting `timeout`. A
// query that exhausts its tries completes with "no answer" (reverse: nullopt,
// forward: empty). NXDOMAIN or NOERROR completes at once; SERVFAIL, REFUSED
// and other errors, and truncated (TC) replies, move on to the next try at
// once. There is no TCP fallback: PTR and A/AAAA answers fit in 512 bytes in
// practice, and a truncated one counts as no answer for that try.
//
// Replies are accepted only from the address and port the current try was
// sent to, with an id of an outstanding query and the exact question asked
// (name compared case-insensitively, type, class IN); anything else is
// dropped and counted (DnsClientStats::ignored).
//
// Destruction stops the thread; callbacks still outstanding are completed
// with "no answer" before the destructor returns (or, if the last reference
// is dropped from inside a callback, as the thread winds down).
#include "imp/core/dns.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace spdlog {
class logger;
}

namespace imp::core {

struct DnsServer {
  std::string address;  // IPv4 or IPv6 literal, no brackets
  std::uint16_t port = 53;
};

// "10.0.0.2, 10.0.0.3:5353, [2001:db8::1]:53, 2001:db8::2" -> servers, in
// order. A blank list gives no servers. Throws std::invalid_argument naming
// the bad element: "dns server 'x': not an IP address", "dns server
// '10.0.0.3:0': port out of range 1..65535", "dns server '[::1': missing ']'",
// "dns server '[::1]x': expected ':port' after ']'", "dns server list
// 'a,,b': empty element".
std::vector<DnsServer> parseDnsServers(const std::string& list);

struct DnsClientConfig {
  std::vector<DnsServer> servers;           // tried in order; at least one
  std::chrono::milliseconds timeout{2000};  // per try
  unsigned attempts = 2;                    // per server
};

struct DnsClientStats {
  std::uint64_t sent = 0;      // datagrams sent (first tries and retries)
  std::uint64_t timeouts = 0;  // tries that ran out of time
  std::uint64_t ignored = 0;   // received datagrams dropped (malformed, wrong source/id/question)
};

class DnsClientResolver : public Resolver {
 public:
  // Throws std::invalid_argument for a bad configuration (no servers, an
  // address that is not an IP literal, port 0, zero timeout or attempts) and
  // std::system_error if a socket cannot be created.
  explicit DnsClientResolver(DnsClientConfig config, std::shared_ptr<spdlog::logger> log = nullptr);
  ~DnsClientResolver() override;
  DnsClientResolver(const DnsClientResolver&) = delete;
  DnsClientResolver& operator=(const DnsClientResolver&) = delete;

  // PTR of reverseName(ip); the first usable PTR name (lower-case, no
  // trailing dot). Not an IP literal: nullopt at once.
  void reverse(const std::string& ip, ReverseCallback cb) override;
  // An IP literal answers itself at once; otherwise A, and AAAA when the A
  // query was answered without A records. Addresses as text.
  void forward(const std::string& host, ForwardCallback cb) override;

  DnsClientStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with the thread, which may outlive us (see above)
  std::thread thread_;
};

// ---- Wire format, exposed for tests and the fuzzer -------------------------

inline constexpr std::uint16_t kDnsTypeA = 1;
inline constexpr std::uint16_t kDnsTypeCname = 5;
inline constexpr std::uint16_t kDnsTypePtr = 12;
inline constexpr std::uint16_t kDnsTypeAaaa = 28;
inline constexpr int kDnsRcodeNoError = 0;
inline constexpr int kDnsRcodeServFail = 2;
inline constexpr int kDnsRcodeNxDomain = 3;

// A query (RD set, one question, class IN) for `name` (one trailing dot
// allowed). Empty string if the name cannot be encoded: empty, an empty
// label, a label over 63 or a name over 253 characters, or a character that
// is a control character, space, backslash or not ASCII.
std::string buildDnsQuery(std::uint16_t id, const std::string& name, std::uint16_t qtype);

struct DnsReply {
  std::uint16_t id = 0;
  int rcode = 0;
  // PTR names (lower-case, no trailing dot) or A/AAAA addresses as text, from
  // the answer records of type qtype owned by the question name or by a name
  // it is a CNAME of (chains of up to 8 followed within the reply), in reply
  // order, duplicates removed, at most 32. PTR names that are not host names
  // (letters, digits, '-', '_' in non-empty labels; cf. glibc's res_hnok) are
  // skipped.
  std::vector<std::string> values;
  std::string question;    // the question name: lower-case, no trailing dot,
                           // unusual bytes escaped as in zone files (\. \\ \DDD)
  bool truncated = false;  // TC set: values left empty
};

// Parses a reply to a question of type `qtype` (class IN). nullopt when the
// datagram is not a well-formed reply to such a question: shorter than a
// header, QR clear, opcode not QUERY, not exactly one question, another type
// or class, a bad name (label types 01/10, a compression pointer into the
// header or not before the labels it follows — so no loops —, more than 64
// pointers, name over 255 octets) or an answer record that runs past the end,
// an A/AAAA record of qtype whose length is not 4/16, a PTR/CNAME whose name
// does not fill its data exactly. Only the answer section is read. Never
// throws (except std::bad_alloc), never reads outside `wire`.
std::optional<DnsReply> parseDnsReply(std::string_view wire, std::uint16_t qtype);

// "192.0.2.1" -> "1.2.0.192.in-addr.arpa"; IPv6 -> nibbles under ip6.arpa;
// an IPv4-mapped IPv6 address (::ffff:192.0.2.1) -> its in-addr.arpa name,
// as glibc's getnameinfo does. "" if `ip` is not an IP literal.
std::string reverseName(const std::string& ip);

}  // namespace imp::core
