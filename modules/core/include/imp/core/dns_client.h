#pragma once
// A Resolver that asks configured DNS servers instead of the system resolver
// (RT-8): administrators point impd at specific DNS servers ([dns] servers),
// and the end-to-end tests point it at a fake server that stalls chosen
// lookups.
//
// DnsClientResolver adapts net::DnsClient (imp/net/dns_client.h: UDP with
// TCP fallback, retries on loop timers, replies checked for source, id and
// question) to the Resolver interface (issue 15, deliverable 1). Until the
// services hand it the node's loop, it owns ONE event loop run by one thread
// ("imp-dns-loop") on which the client lives; callers on any thread post
// their lookups to it. Each query has its own deadline, so a server that
// never answers one name delays only the callers waiting for that name.
//
// Contract (same as Resolver): every callback is called exactly once — on the
// loop thread, or synchronously from the caller when the answer needs no
// query (forward() of an IP literal, reverse() of something that is not an IP
// address, a name that cannot be encoded) or the resolver is shutting down.
// Callbacks must not block for long: they delay every other answer.
// Exceptions thrown by a callback are caught and logged; they never leave
// the loop thread.
//
// Answers: reverse() gives the first PTR host name (lower-case, no trailing
// dot); forward() asks A, then AAAA when the A query was answered without A
// records (addresses as text); srv() and naptr() give the records with their
// TTLs and the status. Retries, timeouts and what counts as no answer are
// net::DnsClient's.
//
// Destruction stops the loop thread; callbacks still outstanding are
// completed with "no answer" before the destructor returns (or, if the last
// reference is dropped from inside a callback, as the thread winds down).
#include "imp/core/dns.h"

#include <memory>
#include <string>
#include <thread>

#include <imp/net/dns_client.h>

namespace spdlog {
class logger;
}

namespace imp::core {

// The configuration types and the [dns] servers parser are net's.
using net::DnsClientConfig;
using net::DnsClientStats;
using net::DnsServer;
using net::parseDnsServers;
using net::reverseName;

class DnsClientResolver : public Resolver {
 public:
  // Throws std::invalid_argument for a bad configuration (no servers, an
  // address that is not an IP literal, port 0, zero timeout or attempts) and
  // std::system_error if a socket, the loop or its thread cannot be created.
  explicit DnsClientResolver(DnsClientConfig config, std::shared_ptr<spdlog::logger> log = nullptr);
  // On a loop the caller owns, e.g. one of the node's net::LoopGroup
  // (issue 15, deliverable 1): no thread of its own; callbacks run on that
  // loop's thread. The loop must outlive the resolver and keep running
  // until the destructor, which waits for the shutdown to run on it (unless
  // the resolver is dropped on the loop thread itself, or while nobody runs
  // the loop: then outstanding lookups fail once the loop runs again).
  DnsClientResolver(net::EventLoop& loop, DnsClientConfig config, std::shared_ptr<spdlog::logger> log = nullptr);
  ~DnsClientResolver() override;
  DnsClientResolver(const DnsClientResolver&) = delete;
  DnsClientResolver& operator=(const DnsClientResolver&) = delete;

  // PTR of reverseName(ip). Not an IP literal: nullopt at once.
  void reverse(const std::string& ip, ReverseCallback cb) override;
  // An IP literal answers itself at once; otherwise A, then AAAA (above).
  void forward(const std::string& host, ForwardCallback cb) override;
  void srv(const std::string& name, SrvCallback cb) override;
  void naptr(const std::string& name, NaptrCallback cb) override;

  DnsClientStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with the thread, which may outlive us (see above)
  std::thread thread_;  // only with a loop of our own
};

}  // namespace imp::core
