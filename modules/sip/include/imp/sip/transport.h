#pragma once
// SIP transports (RFC 3261 §18): UDP, TCP and TLS listeners and connections
// on one EventLoop.
//
// Threads: a TransportLayer belongs to one EventLoop. Every socket operation,
// every handler and every onError callback runs on that loop's thread.
// send()/sendBytes(), stats() and localEndpoints() may be called from any
// thread (send posts to the loop unless already on it). listen(), the
// handler setters, connectionTo() and closeConnection() are for the loop
// thread, or any thread while the loop is not running (set-up). Construct
// and destroy the TransportLayer on the loop thread or while the loop is not
// running, never from inside one of its handlers; sends posted after
// destruction report Other "transport shut down". Handlers may call send()
// and closeConnection(); a std::exception they throw is logged and dropped so
// one peer's message cannot stop the loop.
//
// Connections (§18 connection reuse): one connection per (transport, remote
// address, port), whether we opened it or accepted it, so a response goes
// back on the request's connection. Outgoing connects are non-blocking and
// bounded by connectTimeout (TCP connect + TLS handshake); a refused connect
// is reported as soon as the kernel reports it. Idle connections (no byte
// read or written for idleTimeout) are closed.
//
// Errors: onError is called at most once per send, on the loop thread, never
// from inside send(). It is called while the message can still be known
// undelivered: connect refused/timed out, TLS handshake failed (including a
// TLS 1.3 server that rejects our certificate right after the handshake),
// connection closed before the bytes reached the kernel, message too large,
// send queue full, no route. UDP reports only local failures (no ICMP).
// Sends still pending when the TransportLayer is destroyed are dropped
// without a callback. Untrusted input is never fatal: parse errors are
// counted, reported to the parse-error handler, answered with 4xx/5xx when
// the request carried the headers a response needs, and an unframeable
// stream is closed after the answer is flushed (STYLE.md error policy).
//
// Listeners: port 0 binds an ephemeral port; listen() returns the bound
// endpoint. listen() throws std::runtime_error naming the address when the
// socket cannot be bound (EADDRINUSE...) and for a TLS listener without a
// server TlsContext. reusePort lets several loops share one port.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imp/sip/endpoint.h"
#include "imp/net/event_loop.h"
#include "imp/sip/message.h"
#include "imp/sip/parser.h"
#include "imp/net/tls.h"

namespace spdlog {
class logger;
}

namespace imp::sip {

struct TransportConfig {
  ParseLimits limits;  // max message size (64 KiB) and header lines, every transport
  std::chrono::milliseconds connectTimeout{5000};  // TCP connect + TLS handshake
  std::chrono::milliseconds idleTimeout{std::chrono::minutes(5)};  // 0 = never
  // After answering an unframeable stream: time to flush before closing.
  std::chrono::milliseconds closeLinger{2000};
  std::size_t maxSendQueue = 4 * 1024 * 1024;  // bytes queued per connection
  std::size_t maxConnections = 10000;          // accepted beyond this are closed
  // For outgoing TLS; null = TLS sends fail. TransportLayer::setTlsClient() replaces it.
  std::shared_ptr<const net::TlsContext> tlsClient;
  std::shared_ptr<spdlog::logger> log;          // null = silent
};

struct ListenerConfig {
  Transport transport = Transport::Udp;
  std::string address = "0.0.0.0";  // IP literal
  std::uint16_t port = 0;           // 0 = ephemeral
  std::shared_ptr<const net::TlsContext> tls;  // TLS listeners: a Server context
  // TLS-2: called during the handshake with the verified client
  // certificate's subject CN ("" when the context does not verify peers);
  // false fails the handshake. Empty = accept every verified peer.
  std::function<bool(std::string_view peerCommonName)> acceptPeer;
  bool reusePort = false;
  int backlog = 511;
};

struct TransportStats {
  std::uint64_t messagesIn = 0;
  std::uint64_t messagesOut = 0;
  std::uint64_t bytesIn = 0;   // socket bytes (TLS: ciphertext)
  std::uint64_t bytesOut = 0;
  std::uint64_t parseErrors = 0;
  std::uint64_t errorResponsesSent = 0;  // 400/413/505/513 answers to bad input
  // Bad input no answer could be formed or sent for (logged with the reason):
  // no Via, an unframeable head, a socket error.
  std::uint64_t errorResponsesUnsent = 0;
  std::uint64_t malformedResponsesDropped = 0;  // RFC 3261 §18.1.2
  std::uint64_t unframeableStreams = 0;  // connections closed for bad framing
  std::uint64_t keepAlivePings = 0;      // CRLFCRLF answered with CRLF
  std::uint64_t connectionsAccepted = 0;
  std::uint64_t connectionsOpened = 0;   // outgoing, connected
  std::uint64_t connectionsClosed = 0;
  std::uint64_t connectionsActive = 0;
  std::uint64_t connectionsRejected = 0;  // over maxConnections
  std::uint64_t connectFailures = 0;
  std::uint64_t tlsHandshakeFailures = 0;
  std::uint64_t tlsPeersRefused = 0;  // acceptPeer said no (TLS-2)
  std::uint64_t idleClosed = 0;
  std::uint64_t sendErrors = 0;
};

using MessageHandler = std::function<void(Message msg, const Source& source)>;
using ParseErrorHandler = std::function<void(const ParseError& error, const Source& source)>;
using SendErrorHandler = std::function<void(const TransportError& error)>;

class TransportLayer {
 public:
  TransportLayer(net::EventLoop& loop, TransportConfig config = {});
  ~TransportLayer();
  TransportLayer(const TransportLayer&) = delete;
  TransportLayer& operator=(const TransportLayer&) = delete;

  void setMessageHandler(MessageHandler h);
  void setParseErrorHandler(ParseErrorHandler h);

  Endpoint listen(const ListenerConfig& config);
  // Stops accepting on the listener bound to `local` (as listen() returned
  // it); connections it accepted stay open. False if there is none. Loop
  // thread (live listener changes, TLS-1).
  bool closeListener(const Endpoint& local);
  // Bound listener endpoints, in listen() order. Any thread.
  std::vector<Endpoint> localEndpoints() const;
  std::optional<Endpoint> localEndpoint(Transport t) const;

  // Serialises on the calling thread, then sends on the loop. `dest` must be
  // an IP literal (name resolution happens before, off the loop).
  void send(const Message& msg, const Endpoint& dest, SendErrorHandler onError = {});
  // An already serialised message (or, for tests and keep-alives, any bytes).
  void sendBytes(std::string bytes, const Endpoint& dest, SendErrorHandler onError = {});

  // Replaces the outgoing TLS context (certificate management, TLS-4: a new
  // node certificate or trust store): connections opened from now on use
  // it, open ones keep their session. Null = TLS sends fail. Loop thread.
  // Throws std::invalid_argument for a context that is not a client's.
  void setTlsClient(std::shared_ptr<const net::TlsContext> tls);

  // The open (or opening) connection to `remote`, 0 if none. Loop thread.
  std::uint64_t connectionTo(const Endpoint& remote) const;
  // Closes a connection now; pending sends get ConnectionClosed. Loop thread.
  void closeConnection(std::uint64_t connectionId);

  TransportStats stats() const;
  net::EventLoop& loop() const { return loop_; }

  class Impl;

 private:
  net::EventLoop& loop_;
  std::shared_ptr<Impl> impl_;
};

// Minimal answer to a request that failed to parse: copies the Via lines
// and, where present, From, To (adding a tag), Call-ID and CSeq out of the
// raw bytes (RFC 4475 §3.3.1: a request missing some still gets its 400).
// nullopt, with the reason in *why, when there is no Via, the message is a
// response (RFC 3261 §18.1.2: discarded) or an ACK, or no complete start
// line arrived. Exposed for tests.
std::optional<std::string> errorResponseFor(std::string_view raw, int status, std::string_view reason,
                                            std::string* why = nullptr);

}  // namespace imp::sip
