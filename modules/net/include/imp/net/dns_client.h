#pragma once
// A DNS stub client on an EventLoop (issue 15, deliverable 1): it asks the
// configured servers itself instead of the system resolver (RT-8), with no
// thread of its own — its sockets and retry timers live on the loop it is
// given, beside the protocol stack that needs the answers.
//
// Threads: everything — construction, query(), destruction — happens on the
// loop's thread (or on any single thread while no thread runs the loop, as
// for EventLoop::watch()). stats() may be read from any thread. Callbacks run
// on the loop thread, at the end of the loop iteration in which the outcome
// was decided, never inside query(); every callback is called exactly once.
// A callback may call query() again; it must not destroy the client (post
// the destruction to the loop instead).
//
// Transport: UDP, one non-blocking socket per address family in use. A reply
// with TC set (truncated) is asked again over TCP to the same server
// (RFC 7766 §5), within the same try: the TCP exchange gets its own timeout.
// A TCP connection carries one query and is closed after its reply.
//
// Retries: servers are tried in configuration order, `attempts` rounds over
// all servers (like glibc: s1, s2, s1, s2), each try waiting `timeout` (on a
// loop timer). NXDOMAIN or NOERROR completes at once; SERVFAIL, REFUSED and
// other errors, a failed or malformed TCP exchange, and a datagram that
// cannot be sent move on to the next try at once. A query that exhausts its
// tries completes with DnsStatus::Failed.
//
// Spoofing: replies are accepted only from the address and port (UDP) or the
// connection (TCP) the current try was sent to, with the id of an
// outstanding query and the exact question asked (name compared
// case-insensitively, type, class IN); anything else is dropped and counted
// (DnsClientStats::ignored). Ids are random (getrandom) among the free ones.
// Known limits: one UDP socket per family, so the source port is fixed for
// the client's lifetime; no DNSSEC, no 0x20 case randomisation.
//
// Bounds: at most 16384 queries are outstanding; more wait in a FIFO
// backlog (they start as others complete).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "imp/net/dns_wire.h"
#include "imp/net/event_loop.h"

namespace imp::net {

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
  std::chrono::milliseconds timeout{2000};  // per try (and per TCP exchange)
  unsigned attempts = 2;                    // per server
};

struct DnsClientStats {
  std::uint64_t sent = 0;      // UDP datagrams sent (first tries and retries)
  std::uint64_t timeouts = 0;  // tries that ran out of time (UDP or TCP)
  std::uint64_t ignored = 0;   // replies dropped (malformed, wrong source/id/question)
  std::uint64_t tcp = 0;       // TCP exchanges started after a truncated reply
};

enum class DnsStatus : std::uint8_t {
  Ok,        // NOERROR; no records = the name exists without records of that type
  NxDomain,  // the name does not exist
  Failed,    // no usable answer: every try timed out or failed, the name
             // cannot be encoded, or the client was destroyed first
};
std::string_view dnsStatusName(DnsStatus s);  // "ok", "nxdomain", "failed"

// What a query completes with: the status and, for Ok, the reply's records
// (see DnsReply: only the member for the question's type is filled).
struct DnsAnswer {
  DnsStatus status = DnsStatus::Failed;
  std::vector<std::string> values;  // A/AAAA addresses, PTR names
  std::vector<SrvRecord> srv;
  std::vector<NaptrRecord> naptr;
  // DnsReply::ttl: the records' TTL, or the negative TTL of RFC 2308 for
  // Ok-without-records and NxDomain when the server sent an SOA; nullopt
  // when the server said nothing (and always for Failed).
  std::optional<std::uint32_t> ttl;
};

class DnsClient {
 public:
  using Callback = std::function<void(DnsAnswer)>;
  // Warnings worth an operator's attention ("sending to 10.0.0.2:53 fails:
  // Network is unreachable", once per outage; "... works again"). net has no
  // logger: the owner forwards them to its own. May be empty.
  using Report = std::function<void(bool warning, const std::string& message)>;

  // Throws std::invalid_argument for a bad configuration ("dns client: no
  // servers configured", "dns server 'x': not an IP address", "dns server
  // '[::1]:0': port out of range 1..65535", "dns client: timeout must be
  // positive", "dns client: attempts must be at least 1") and
  // std::system_error if a socket cannot be created or watched.
  DnsClient(EventLoop& loop, DnsClientConfig config, Report report = {});
  // Completes every outstanding and waiting query with Failed (their
  // callbacks run inside the destructor), cancels its timers, unwatches and
  // closes its sockets.
  ~DnsClient();
  DnsClient(const DnsClient&) = delete;
  DnsClient& operator=(const DnsClient&) = delete;

  // Asks for records of `qtype` (class IN) owned by `name` (compared and
  // sent lower-case, one trailing dot allowed). A name buildDnsQuery cannot
  // encode completes with Failed.
  void query(const std::string& name, std::uint16_t qtype, Callback cb);

  DnsClientStats stats() const;
  std::size_t outstanding() const;  // loop thread: queries out or waiting

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imp::net
