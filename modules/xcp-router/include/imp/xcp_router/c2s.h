#pragma once
// Client-to-server XMPP streams (issue 16, deliverable 2): the XCP
// Connection Manager's listeners and the state machine of each stream.
//
// A stream, per RFC 6120:
//   header -> features <starttls required/> (§5: TLS is mandatory; on the
//   direct-TLS port, XEP-0368, the stream starts inside TLS) -> <proceed/>,
//   TLS, stream restart -> features <mechanisms/> (SCRAM-SHA-256(-PLUS),
//   SCRAM-SHA-1(-PLUS), PLAIN: modules/xmpp sasl.h) -> SASL -> stream
//   restart with the post-authentication stanza limit -> features <bind/>
//   (with <sm/>, the RFC 6121 §3.4 pre-approval <sub/> and the XEP-0478
//   limits) -> resource binding (a server-generated resource when none is asked; a
//   new session for a full JID already bound replaces the old one, which
//   gets `conflict`, RFC 6120 §7.7.2.2) -> stanzas.
// The header's `to` must be a local presence domain (host-unknown
// otherwise). Only licensed directory users log in; a user homed on another
// node gets `see-other-host` naming that node's client address once it has
// authenticated (before, the answer would reveal that the account exists).
// The server itself answers XEP-0199 ping, XEP-0030 disco#info and XEP-0092
// version; other stanzas go through the Router with `from` stamped.
//
// XEP-0198 stream management (stream_management.h): <enable/> after binding
// (with resume when the window is not 0), <r/>/<a/> both ways, the server
// asking for an ack at the end of each loop iteration that wrote stanzas
// while none is outstanding. A resumable session whose connection drops
// without </stream:stream> hibernates for `smResumeWindow`: stanzas for it
// are queued; <resume previd h/> on a new authenticated stream (any loop)
// takes it over and gets the unacknowledged stanzas again. When the window
// ends, or a session ends any other way, its unacknowledged stanzas (without
// stream management: those queued but not yet written to the socket) go
// back through Router::deliverToSession, so the session manager delivers
// them to another resource or stores them offline (IM-5); error stanzas,
// the server's own iq answers and carbon copies are not re-routed.
// XEP-0191 (blocking.h): a binding completes once the user's block list is
// loaded; a stanza the user sends to a JID it blocked is answered
// not-acceptable with <blocked xmlns='urn:xmpp:blocking:errors'/>, one
// from such a JID is not delivered (message, iq get/set: service-unavailable
// back; the rest dropped), XEP-0191 §3.3.
// XEP-0280 carbons (carbons.h): <enable/>/<disable/> iq; copies of eligible
// messages this session receives at its full JID or sends go to the user's
// other carbons-enabled resources.
// Abuse limits per session after authentication (XEP-0205 in spirit):
// stanzas and bytes per second, each a token bucket with a burst; a
// session in debt stops being read until the debt is paid (TCP then slows
// the client down) rather than being closed: a burst (roster fetch, a
// reconnecting client flushing its own queue) must not cost the session,
// nothing is lost, and a closed client would only reconnect and resend.
//
// Threads: a C2sServer owns one listener pair per loop it was given; each
// stream lives on the loop that accepted it. Credential and directory
// lookups (C2sAccounts) run on the WorkerPool and come back to the loop.
// start()/stop() are called from the service's thread and wait for the
// loops.
//
// Memory (issue 16, B-XMPP-CONN): every `compactIdleAfter` a sweep on each
// loop visits its streams; one that received nothing since the previous
// sweep gives its XML parser back (StreamParser::compact(), rebuilt on the
// next read) and drops from its unacknowledged-stanza bookkeeping what the
// kernel has sent (without XEP-0198; with it, entries wait for <a/> as
// before). Buffers of the connection and its TLS session are freed as they
// run empty (modules/net). SASL state is dropped at SASL success.
//
// Errors: every protocol error ends the stream with the RFC 6120 §4.9.3
// condition (counted by condition in C2sStats, logged with the stream id);
// SASL failures are answered per §6.5 and the client may try again.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <imp/xmpp/sasl.h>

namespace spdlog {
class logger;
}

namespace imp::core {
class Database;
}

namespace imp::net {
class EventLoop;
class LoopGroup;
class TlsContext;
class WorkerPool;
}  // namespace imp::net

namespace imp::xcp {

class Router;

// What a stream needs to know about users, nodes and domains. The calls
// block (database): they run on the worker pool.
class C2sAccounts {
 public:
  virtual ~C2sAccounts() = default;
  struct Account {
    std::string userid;   // the directory's user id
    std::string address;  // user@domain, normalised
    bool licensed = false;
    std::string homeNode;  // "" = not assigned
  };
  // The directory user with this IM address (localpart normalised, domain
  // lower-case), if any.
  virtual std::optional<Account> account(const std::string& address) = 0;
  virtual std::optional<xmpp::ScramCredential> credential(const std::string& userid, xmpp::ScramHash hash) = 0;
  // host:port of another node's client listener (see-other-host), if known.
  virtual std::optional<std::string> clientAddressOf(const std::string& nodeId) = 0;
};

// The accounts of the cluster database (directory users, the credential
// store, xcp_node_endpoint). Thread-safe.
std::shared_ptr<C2sAccounts> databaseAccounts(core::Database& db);

struct C2sConfig {
  std::string nodeId;
  std::string listenAddress = "0.0.0.0";
  int clientPort = 5222;  // STARTTLS; 0 = any free port
  int tlsPort = 5223;     // direct TLS (XEP-0368); -1 = none, 0 = any free port
  std::size_t preAuthStanzaLimit = 10 * 1024;    // octets, RFC 6120 §13.12 ¶4
  std::size_t postAuthStanzaLimit = 256 * 1024;
  std::chrono::milliseconds authTimeout{30000};  // from accept to bound resource
  std::size_t maxUnauthenticated = 1000;         // per node; 0 = no limit
  std::size_t maxConnectionsPerIp = 100;         // 0 = no limit
  std::string serverVersion;                     // XEP-0092 <version/>
  // Offer SCRAM-*-PLUS with the TLS session's channel bindings. Off for
  // clients that know only tls-unique (slixmpp 1.8): they see the -PLUS
  // offer, cannot use it, and their plain SCRAM then carries the 'y' flag,
  // which RFC 5802 §6 makes a downgrade failure.
  bool channelBinding = true;
  std::shared_ptr<const xmpp::SaslConfig> sasl;  // domain is set per stream
  // XEP-0198: how long a dropped resumable session waits for <resume/>
  // (0 = resumption not offered), and how many unacknowledged stanzas one
  // session may hold (beyond: resource-constraint; a hibernating session
  // ends early and hands its stanzas back).
  std::chrono::seconds smResumeWindow{300};
  std::size_t smMaxUnacked = 1000;
  // Per-session rates after authentication; 0 = no limit. Bursts are at
  // least one second's worth.
  double maxStanzasPerSecond = 500, stanzaBurst = 1000;
  double maxBytesPerSecond = 512 * 1024, byteBurst = 1024 * 1024;
  // Idle streams are closed (XEP-0478 idle-seconds after authentication);
  // 0 = never.
  std::chrono::seconds idleTimeout{900};
  // Period of the sweep that compacts streams which received nothing for a
  // whole period (see "Memory" above); 0 = no sweep. Not an impd.conf
  // setting: a stream that wakes up pays one parser creation, which an idle
  // period of seconds makes negligible.
  std::chrono::milliseconds compactIdleAfter{10000};
};

struct C2sStats {
  std::atomic<std::uint64_t> accepted{0}, refusedPerIp{0}, refusedUnauthenticated{0}, tlsStarted{0},
      authenticated{0}, authFailures{0}, bound{0}, replaced{0}, seeOtherHost{0}, stanzasIn{0}, stanzasOut{0},
      closed{0};
  std::atomic<std::int64_t> open{0}, unauthenticated{0};
  // XEP-0198, XEP-0280, rate limits.
  std::atomic<std::uint64_t> smEnabled{0}, smResumed{0}, smResumeFailed{0}, smHibernated{0}, smExpired{0},
      smAckRequests{0}, rerouted{0}, notRerouted{0}, carbonCopies{0}, carbonCopiesLost{0}, throttled{0};
  // Idle streams whose parser the sweep gave back.
  std::atomic<std::uint64_t> compacted{0};
  // XEP-0191: stanzas from a JID the user blocked (answered or dropped),
  // stanzas to one (not routed).
  std::atomic<std::uint64_t> blockedIn{0}, blockedOut{0};
  std::atomic<std::int64_t> hibernating{0};
  // Stream errors sent, by condition name (mutex-guarded).
  std::map<std::string, std::uint64_t> streamErrors() const;
  void countStreamError(std::string_view condition);

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::uint64_t, std::less<>> streamErrors_;
};

// One bound session as `impctl session list` shows it.
struct C2sSessionInfo {
  std::string jid;       // full JID
  std::string userid;
  // "name version" of the XEP-0092 answer, or the XEP-0115 caps node, when
  // known: a client whose available presence has no caps node is asked
  // once per session (jabber:iq:version); its answer is not routed.
  std::string client;
  std::string remote;    // ip:port
  std::string tlsVersion;
  std::string since;     // ISO 8601 UTC
};

class C2sServer {
 public:
  // `loops` and `workers` must outlive the server; `tls` is the node
  // certificate's server context (setTls() replaces it).
  C2sServer(C2sConfig config, std::shared_ptr<const net::TlsContext> tls, Router& router,
            std::shared_ptr<C2sAccounts> accounts, net::LoopGroup& loops, net::WorkerPool& workers,
            std::shared_ptr<spdlog::logger> log);
  ~C2sServer();
  C2sServer(const C2sServer&) = delete;
  C2sServer& operator=(const C2sServer&) = delete;

  // Binds the listeners (every loop with SO_REUSEPORT); throws
  // std::runtime_error naming the address when a bind fails.
  void start();
  // Closes the listeners and every stream with `system-shutdown`.
  void stop() noexcept;

  // Certificate management (TLS-4): the server context new connections use
  // from now on, on the direct-TLS port and for STARTTLS; streams already
  // in TLS keep their session. Any thread; waits for the loops. Throws
  // std::invalid_argument for a null context.
  void setTls(std::shared_ptr<const net::TlsContext> tls);
  std::shared_ptr<const net::TlsContext> tls() const;

  int clientPort() const { return boundClientPort_; }
  int tlsPort() const { return boundTlsPort_; }
  const C2sStats& stats() const { return *stats_; }
  std::vector<C2sSessionInfo> sessions(const std::string& userid = {}) const;
  // Closes every session of the user with `policy-violation` ("kicked by
  // the administrator"); returns how many.
  std::size_t kick(const std::string& userid);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  std::shared_ptr<C2sStats> stats_;
  int boundClientPort_ = 0, boundTlsPort_ = -1;
};

}  // namespace imp::xcp
