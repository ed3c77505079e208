#pragma once
// Non-blocking TCP streams on one EventLoop (issue 15, deliverable 1): the
// socket half of the protocol-free runtime under every protocol stack.
//
//   StreamGroup       what the connections of one owner on one loop share:
//                     the read buffer, the end-of-iteration write batch, the
//                     connection count and cap, byte counters.
//   StreamConnection  one TCP connection: read callback with the bytes
//                     received, write queue with a byte cap and high/low
//                     watermarks, flush-then-close with a linger limit, idle
//                     timeout, optional TLS (direct, or startTls() on a
//                     stream that carried plaintext: STARTTLS).
//   Acceptor          a listening socket handing out accepted connections.
//   Connector         outgoing connections, connect + TLS handshake bounded
//                     by one timeout.
//
// Threads: everything here belongs to the group's loop thread; only the
// StreamGroup counters may be read from any thread.
//
// Writes: write() appends to the connection's queue (TLS: encrypts into it)
// and the queue leaves in one send() per connection at the end of the loop
// iteration (EventLoop::atIterationEnd), whatever number of writes the
// iteration made: under load a read brings many requests, and each answer
// would otherwise cost a system call and a TCP segment of its own.
//
// Memory: the read buffer is the group's; the write queue's storage is
// freed once the kernel has taken all of it. An idle connection holds no
// buffer of its own (with TLS see tls_session.h).
//
// Callbacks: run on the loop thread, from inside the loop's I/O, timer and
// end-of-iteration callbacks and from inside write()/close()/startTls().
// They may call any method of the connection, close() included; they must
// not destroy it (close it and drop it later, e.g. from a posted function).
// onClose is called exactly once per connection that was handed out, with
// the reason, and is the last callback; a connection destroyed while open
// closes its socket without calling it.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "imp/net/event_loop.h"
#include "imp/net/socket_address.h"
#include "imp/net/tls_session.h"

namespace imp::net {

class StreamConnection;

enum class CloseKind : std::uint8_t {
  PeerClosed,       // EOF, or the peer closed its TLS session
  Local,            // close() by the owner
  SocketError,      // recv/send failed (sysError says why)
  IdleTimeout,      // nothing read or written for idleTimeout
  Drained,          // closeAfterFlush(): flushed and the peer closed, or the linger expired
  ConnectRefused,   // outgoing: the peer refused the TCP connection
  ConnectFailed,    // outgoing: another connect error (sysError: no route...)
  ConnectTimeout,   // outgoing: no TCP connection within the Connector timeout
  TlsTimeout,       // handshake not finished within its time limit
  TlsFailed,        // handshake failed (detail: the OpenSSL reason)
  TlsError,         // TLS read/write failed after the handshake
};
std::string_view closeKindName(CloseKind k);

struct CloseReason {
  CloseKind kind = CloseKind::Local;
  int sysError = 0;    // errno, when a system call said why
  std::string detail;  // human readable, names the peer
};

struct StreamOptions {
  // write() refuses (QueueFull) what would take the queue beyond this.
  std::size_t maxQueuedBytes = 4 * 1024 * 1024;
  // Back-pressure: onHighWatermark once the queued bytes reach highWatermark,
  // then onLowWatermark once they are back at or below lowWatermark.
  // 0 = no watermark callbacks.
  std::size_t highWatermark = 0;
  std::size_t lowWatermark = 0;
  std::chrono::milliseconds idleTimeout{0};  // 0 = never
  // Accepted TLS and STARTTLS handshakes (outgoing: the Connector timeout).
  std::chrono::milliseconds handshakeTimeout{5000};
  bool noDelay = true;  // TCP_NODELAY
};

struct StreamCallbacks {
  // Bytes received (plaintext once TLS runs). Not called while draining.
  std::function<void(std::string_view data)> onData;
  // Outgoing: the TCP connection is up (before the TLS handshake, if any).
  std::function<void()> onConnected;
  // Outgoing: connected, and the TLS handshake done when TLS was asked for.
  // Accepted TLS: the handshake is done. Never for accepted plain streams
  // (open from the start) nor STARTTLS (onTlsReady).
  std::function<void()> onOpen;
  // A startTls() handshake finished; the stream carries TLS from now on.
  std::function<void()> onTlsReady;
  // TLS 1.3 client: the server proved it accepted our certificate after
  // the connection opened (TlsSession::peerConfirmed()).
  std::function<void()> onTlsConfirmed;
  std::function<void()> onHighWatermark;
  std::function<void()> onLowWatermark;
  std::function<void(const CloseReason& why)> onClose;
};

class StreamGroup : public std::enable_shared_from_this<StreamGroup> {
 public:
  static std::shared_ptr<StreamGroup> create(EventLoop& loop, std::size_t maxConnections = SIZE_MAX);
  StreamGroup(EventLoop& loop, std::size_t maxConnections);
  ~StreamGroup();
  StreamGroup(const StreamGroup&) = delete;
  StreamGroup& operator=(const StreamGroup&) = delete;

  EventLoop& loop() const { return loop_; }
  std::size_t maxConnections() const { return max_; }
  bool atCapacity() const { return active_.load(std::memory_order_relaxed) >= max_; }
  // Any thread.
  std::uint64_t active() const { return active_.load(std::memory_order_relaxed); }
  std::uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
  std::uint64_t bytesIn() const { return bytesIn_.load(std::memory_order_relaxed); }
  std::uint64_t bytesOut() const { return bytesOut_.load(std::memory_order_relaxed); }

 private:
  friend class StreamConnection;
  friend class Acceptor;
  friend class Connector;
  void queueFlush(StreamConnection* c);
  void forget(StreamConnection* c);
  void flushQueued();

  EventLoop& loop_;
  std::size_t max_;
  std::vector<char> rbuf_;
  std::vector<StreamConnection*> flushQueue_;
  bool flushArmed_ = false;
  std::atomic<std::uint64_t> active_{0}, rejected_{0}, bytesIn_{0}, bytesOut_{0};
};

class StreamConnection {
 public:
  enum class State { Connecting, Handshaking, Open, Draining, Closed };
  enum class WriteResult { Queued, QueueFull, Closed, Failed };

  // Takes a connected non-blocking socket (an Acceptor or a test's). With
  // `tls` the connection starts in Handshaking and opens after the
  // handshake (server or client, by the context's role).
  static std::unique_ptr<StreamConnection> adopt(std::shared_ptr<StreamGroup> group, int fd, const SocketAddress& remote,
                                                 const StreamOptions& options,
                                                 std::shared_ptr<const TlsContext> tls = nullptr, PeerCheck acceptPeer = {});
  ~StreamConnection();
  StreamConnection(const StreamConnection&) = delete;
  StreamConnection& operator=(const StreamConnection&) = delete;

  void setCallbacks(StreamCallbacks callbacks) { cb_ = std::move(callbacks); }
  StreamCallbacks& callbacks() { return cb_; }

  // Queues bytes (before the connection is open they wait, as plaintext,
  // and go out once it is). Failed: a TLS write error, which also closed
  // the connection (tlsError() says why).
  WriteResult write(std::string_view bytes);
  // Stops or resumes reading from the socket (back-pressure towards the
  // peer); the kernel's buffers then fill and TCP slows the peer down.
  void setReading(bool on);
  bool reading() const { return reading_; }
  // STARTTLS (deliverable 1): the stream carries TLS from here on, in the
  // context's role. Bytes written before the call leave as plaintext ahead
  // of the handshake. `alreadyReceived`: bytes the owner read past the
  // STARTTLS point (they belong to the TLS stream, e.g. a ClientHello that
  // came in the same segment as the STARTTLS command). False, with
  // *why, when the connection is not open or already runs TLS.
  bool startTls(std::shared_ptr<const TlsContext> tls, PeerCheck acceptPeer = {}, std::string_view alreadyReceived = {},
                std::string* why = nullptr);
  // Closes now (queued bytes are dropped); onClose gets `why`.
  void close(CloseReason why = {CloseKind::Local, 0, "closed locally"});
  // Stops reading, flushes what is queued (TLS: then close_notify), shuts
  // down the sending side and closes when the peer closes or after
  // `linger`, whichever comes first; onClose then gets `why` with kind Drained.
  void closeAfterFlush(std::chrono::milliseconds linger, std::string why);

  State state() const { return state_; }
  bool isOpen() const { return state_ == State::Open; }
  const SocketAddress& remote() const { return remote_; }
  const SocketAddress& local() const { return local_; }
  // Null before TLS starts.
  const TlsSession* tls() const { return tls_.get(); }
  const std::string& tlsError() const { return tlsError_; }
  std::size_t queuedBytes() const { return (out_.size() - outPos_) + pendingPlain_.size(); }
  // Heap bytes held by the connection's buffers, TLS included (0 when idle).
  std::size_t bufferedBytes() const;
  // Stream offsets: bytes ever queued into the socket buffer (ciphertext
  // with TLS) and bytes the kernel accepted. A message written when
  // bytesQueuedTotal() was M has left once bytesSentTotal() >= M.
  std::uint64_t bytesQueuedTotal() const { return queuedTotal_; }
  std::uint64_t bytesSentTotal() const { return sentTotal_; }
  bool outgoing() const { return outgoing_; }
  // The socket, for options (buffer sizes, TOS); -1 once closed. The
  // connection owns it: never close or read it.
  int fd() const { return fd_; }

 private:
  friend class StreamGroup;
  friend class Connector;
  StreamConnection(std::shared_ptr<StreamGroup> group, int fd, const SocketAddress& remote, const StreamOptions& options);

  void watch(std::uint32_t events);
  void onEvent(std::uint32_t events);
  void onConnected();
  void beginTls(std::shared_ptr<const TlsContext> ctx, PeerCheck acceptPeer, std::chrono::milliseconds timeout);
  void driveHandshake();
  void handshakeDone();
  void readSocket();
  void readTls();
  void takeTlsOutput();
  void flush();
  void queueFlush();
  void updateInterest();
  void armIdle();
  void onIdle();
  void checkWatermarks();
  void finish(CloseReason why);

  std::shared_ptr<StreamGroup> group_;
  EventLoop& loop_;
  int fd_ = -1;
  SocketAddress remote_, local_;
  StreamOptions opt_;
  StreamCallbacks cb_;
  State state_ = State::Open;
  bool outgoing_ = false;
  bool reading_ = true;
  bool writeWatched_ = false;
  std::uint32_t interest_ = 0;
  bool flushQueued_ = false;
  bool shutdownSent_ = false;
  bool aboveHigh_ = false;
  bool startTlsPending_ = false;  // the handshake running is a STARTTLS one
  bool confirmReported_ = true;
  bool counted_ = true;           // counts in the group's active connections
  std::unique_ptr<TlsSession> tls_;
  std::string tlsError_;
  std::string out_;
  std::size_t outPos_ = 0;
  std::string pendingPlain_;  // written before the connection opened
  std::uint64_t queuedTotal_ = 0, sentTotal_ = 0;
  std::string drainReason_;
  TimerId openTimer_ = 0, idleTimer_ = 0, lingerTimer_ = 0;
  Clock::time_point lastActivity_ = Clock::now();
};

struct AcceptorOptions {
  SocketAddress address;  // port 0 = ephemeral
  bool reusePort = false;  // SO_REUSEPORT: several loops share the port
  int backlog = 511;
  std::shared_ptr<const TlsContext> tls;  // direct TLS: a Server context
  PeerCheck acceptPeer;                   // TLS-2 check for tls
  StreamOptions stream;
  // What error messages call the listener; "" = "TCP listener on <address>".
  std::string name;
};

class Acceptor {
 public:
  using AcceptHandler = std::function<void(std::unique_ptr<StreamConnection> connection)>;
  // Throws std::runtime_error naming the address and the failing call
  // (socket, SO_REUSEPORT, bind, listen), or for a tls context that is not
  // a server's.
  Acceptor(std::shared_ptr<StreamGroup> group, AcceptorOptions options, AcceptHandler onAccept);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  const SocketAddress& local() const { return local_; }
  // Certificate management (TLS-4): replaces the direct-TLS context, e.g.
  // after a new node certificate. Connections accepted from now on
  // handshake with `tls`; those already accepted keep their session. On the
  // group's loop thread. Throws std::runtime_error naming the listener for
  // a null context, one that is not a server's, or a listener built without
  // TLS (a plain listener stays plain).
  void setTls(std::shared_ptr<const TlsContext> tls);
  const std::shared_ptr<const TlsContext>& tls() const { return opt_.tls; }
  std::uint64_t accepted() const { return accepted_; }
  // Closed at once because the group was at its connection cap.
  std::uint64_t rejected() const { return rejected_; }

 private:
  void acceptAll();

  std::shared_ptr<StreamGroup> group_;
  AcceptorOptions opt_;
  AcceptHandler onAccept_;
  int fd_ = -1;
  SocketAddress local_;
  TimerId retryTimer_ = 0;  // accept paused after EMFILE/ENOMEM
  std::uint64_t accepted_ = 0, rejected_ = 0;
};

struct ConnectorOptions {
  // TCP connect + TLS handshake.
  std::chrono::milliseconds timeout{5000};
  std::shared_ptr<const TlsContext> tls;  // a Client context; null = plain TCP
  StreamOptions stream;
};

class Connector {
 public:
  Connector(std::shared_ptr<StreamGroup> group, ConnectorOptions options);
  // A connection in state Connecting; its callbacks must be set before the
  // loop runs again. onOpen when connected (and TLS done); onClose with
  // ConnectRefused as soon as the kernel reports the refusal, ConnectTimeout
  // or TlsTimeout after the timeout, TlsFailed... Null, with *error, when
  // the connect fails at once (no route, refused on the spot, the group's
  // cap reached, a tls context that is not a client's).
  std::unique_ptr<StreamConnection> connect(const SocketAddress& to, CloseReason* error);

 private:
  std::shared_ptr<StreamGroup> group_;
  ConnectorOptions opt_;
};

}  // namespace imp::net
