#include "imp/net/stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace imp::net {

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerEvent = 4;
constexpr int kAcceptBurst = 64;
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);

std::string errnoText(int e) { return std::strerror(e); }

void setNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

std::string_view closeKindName(CloseKind k) {
  switch (k) {
    case CloseKind::PeerClosed: return "peer closed";
    case CloseKind::Local: return "closed locally";
    case CloseKind::SocketError: return "socket error";
    case CloseKind::IdleTimeout: return "idle timeout";
    case CloseKind::Drained: return "drained";
    case CloseKind::ConnectRefused: return "connect refused";
    case CloseKind::ConnectFailed: return "connect failed";
    case CloseKind::ConnectTimeout: return "connect timeout";
    case CloseKind::TlsTimeout: return "TLS handshake timeout";
    case CloseKind::TlsFailed: return "TLS handshake failed";
    case CloseKind::TlsError: return "TLS error";
  }
  return "?";
}

// ---------------- StreamGroup ----------------

std::shared_ptr<StreamGroup> StreamGroup::create(EventLoop& loop, std::size_t maxConnections) {
  return std::make_shared<StreamGroup>(loop, maxConnections);
}

StreamGroup::StreamGroup(EventLoop& loop, std::size_t maxConnections)
    : loop_(loop), max_(maxConnections), rbuf_(kReadChunk) {}

StreamGroup::~StreamGroup() = default;

void StreamGroup::queueFlush(StreamConnection* c) {
  flushQueue_.push_back(c);
  if (flushArmed_) return;
  flushArmed_ = true;
  loop_.atIterationEnd([w = weak_from_this()] {
    if (auto self = w.lock()) self->flushQueued();
  });
}

void StreamGroup::forget(StreamConnection* c) { std::replace(flushQueue_.begin(), flushQueue_.end(), c, static_cast<StreamConnection*>(nullptr)); }

void StreamGroup::flushQueued() {
  flushArmed_ = false;
  // Index loop: a flush may close a connection, whose owner may write to
  // another one, which queues behind.
  for (std::size_t i = 0; i < flushQueue_.size(); ++i) {
    StreamConnection* c = flushQueue_[i];
    if (c == nullptr) continue;
    c->flushQueued_ = false;
    c->flush();
  }
  flushQueue_.clear();  // keeps the capacity
}

// ---------------- StreamConnection ----------------

StreamConnection::StreamConnection(std::shared_ptr<StreamGroup> group, int fd, const SocketAddress& remote,
                                   const StreamOptions& options)
    : group_(std::move(group)), loop_(group_->loop()), fd_(fd), remote_(remote), opt_(options) {
  group_->active_++;
  if (opt_.noDelay) setNoDelay(fd_);
  local_ = SocketAddress::localOf(fd_).value_or(SocketAddress{});
}

std::unique_ptr<StreamConnection> StreamConnection::adopt(std::shared_ptr<StreamGroup> group, int fd,
                                                          const SocketAddress& remote, const StreamOptions& options,
                                                          std::shared_ptr<const TlsContext> tls, PeerCheck acceptPeer) {
  std::unique_ptr<StreamConnection> c(new StreamConnection(std::move(group), fd, remote, options));
  c->state_ = State::Open;
  c->watch(EPOLLIN);
  if (tls) c->beginTls(std::move(tls), std::move(acceptPeer), c->opt_.handshakeTimeout);
  c->armIdle();
  return c;
}

StreamConnection::~StreamConnection() {
  if (flushQueued_) group_->forget(this);
  for (TimerId t : {openTimer_, idleTimer_, lingerTimer_})
    if (t != 0) loop_.cancel(t);
  if (fd_ >= 0) {
    loop_.unwatch(fd_);
    ::close(fd_);
  }
  if (counted_) group_->active_--;
}

void StreamConnection::watch(std::uint32_t events) {
  interest_ = events;
  loop_.watch(fd_, events, [this](std::uint32_t ev) { onEvent(ev); });
}

void StreamConnection::updateInterest() {
  if (state_ == State::Closed || state_ == State::Connecting) return;
  bool wantWrite = outPos_ < out_.size();
  writeWatched_ = wantWrite;
  std::uint32_t want = (reading_ || state_ == State::Draining ? EPOLLIN : 0u) | (wantWrite ? EPOLLOUT : 0u);
  if (want == interest_) return;
  interest_ = want;
  loop_.modify(fd_, want);
}

void StreamConnection::setReading(bool on) {
  if (reading_ == on) return;
  reading_ = on;
  updateInterest();
}

void StreamConnection::onEvent(std::uint32_t events) {
  if (state_ == State::Closed) return;
  if (state_ == State::Connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0 && (events & EPOLLOUT) != 0 && (events & (EPOLLERR | EPOLLHUP)) == 0) {
      onConnected();
      return;
    }
    if (err == 0) err = ECONNREFUSED;  // HUP without an error code
    CloseKind kind = err == ECONNREFUSED ? CloseKind::ConnectRefused : CloseKind::ConnectFailed;
    finish({kind, err, "connect to " + remote_.toString() + ": " + errnoText(err)});
    return;
  }
  // A paused reader still reads on a hang-up or error: level-triggered
  // epoll would report it forever.
  if ((events & EPOLLIN) != 0 || (events & (EPOLLHUP | EPOLLERR)) != 0) {
    readSocket();
    if (state_ == State::Closed) return;
  }
  if ((events & EPOLLOUT) != 0) flush();
}

void StreamConnection::onConnected() {
  local_ = SocketAddress::localOf(fd_).value_or(local_);
  lastActivity_ = Clock::now();
  state_ = State::Open;
  interest_ = 0;  // forces the modify
  updateInterest();
  if (cb_.onConnected) {
    cb_.onConnected();
    if (state_ == State::Closed) return;
  }
  if (tls_) {  // set up by the Connector before the connect finished
    state_ = State::Handshaking;
    driveHandshake();
    return;
  }
  if (openTimer_ != 0) loop_.cancel(openTimer_);
  openTimer_ = 0;
  armIdle();
  if (!pendingPlain_.empty()) {
    std::string plain = std::move(pendingPlain_);
    pendingPlain_.clear();
    out_.append(plain);
    queuedTotal_ += plain.size();
    queueFlush();
  }
  if (cb_.onOpen) cb_.onOpen();
}

void StreamConnection::beginTls(std::shared_ptr<const TlsContext> ctx, PeerCheck acceptPeer,
                                std::chrono::milliseconds timeout) {
  tls_ = std::make_unique<TlsSession>(std::move(ctx), std::move(acceptPeer));
  if (state_ == State::Connecting) return;  // started once connected
  state_ = State::Handshaking;
  if (timeout.count() > 0 && openTimer_ == 0) {
    openTimer_ = loop_.schedule(timeout, [this, ms = timeout.count()] {
      openTimer_ = 0;
      if (state_ == State::Handshaking)
        finish({CloseKind::TlsTimeout, 0,
                "TLS handshake with " + remote_.toString() + " not finished within " + std::to_string(ms) + " ms"});
    });
  }
  if (!tls_->isServer()) driveHandshake();  // the client speaks first
}

bool StreamConnection::startTls(std::shared_ptr<const TlsContext> tls, PeerCheck acceptPeer,
                                std::string_view alreadyReceived, std::string* why) {
  auto no = [why](const char* because) {
    if (why != nullptr) *why = because;
    return false;
  };
  if (state_ != State::Open) return no("STARTTLS on a connection that is not open");
  if (tls_) return no("the connection already runs TLS");
  if (!tls) return no("STARTTLS needs a TLS context");
  startTlsPending_ = true;
  beginTls(std::move(tls), std::move(acceptPeer), opt_.handshakeTimeout);
  if (state_ == State::Handshaking && !alreadyReceived.empty()) {
    tls_->receive(alreadyReceived);
    driveHandshake();
  }
  return true;
}

void StreamConnection::driveHandshake() {
  auto st = tls_->handshake();
  takeTlsOutput();
  if (st == TlsSession::Status::InProgress) {
    flush();
    return;
  }
  if (st == TlsSession::Status::Done) {
    flush();
    if (state_ == State::Closed) return;
    handshakeDone();
    return;
  }
  tlsError_ = tls_->error();
  flush();  // best effort: let the peer see our alert
  if (state_ == State::Closed) return;
  finish({CloseKind::TlsFailed, 0, tlsError_});
}

void StreamConnection::handshakeDone() {
  if (openTimer_ != 0) loop_.cancel(openTimer_);
  openTimer_ = 0;
  state_ = State::Open;
  confirmReported_ = tls_->peerConfirmed();
  armIdle();
  if (!pendingPlain_.empty()) {
    std::string plain = std::move(pendingPlain_);
    pendingPlain_.clear();
    if (write(plain) != WriteResult::Queued) return;
  }
  bool starttls = startTlsPending_;
  startTlsPending_ = false;
  if (starttls) {
    if (cb_.onTlsReady) cb_.onTlsReady();
  } else if (cb_.onOpen) {
    cb_.onOpen();
  }
  if (state_ == State::Open) readTls();  // records that came with the last flight
}

void StreamConnection::takeTlsOutput() {
  std::size_t n = tls_->takeOutput(out_);
  if (n == 0) return;
  queuedTotal_ += n;
}

StreamConnection::WriteResult StreamConnection::write(std::string_view bytes) {
  if (state_ == State::Closed || state_ == State::Draining) return WriteResult::Closed;
  if (queuedBytes() + bytes.size() > opt_.maxQueuedBytes) return WriteResult::QueueFull;
  if (state_ != State::Open) {
    pendingPlain_.append(bytes);
  } else if (!tls_) {
    out_.append(bytes);
    queuedTotal_ += bytes.size();
  } else {
    if (!tls_->write(bytes)) {
      tlsError_ = tls_->error();
      finish({CloseKind::TlsError, 0, "TLS write to " + remote_.toString() + " failed: " + tlsError_});
      return WriteResult::Failed;
    }
    takeTlsOutput();
  }
  if (state_ == State::Open) queueFlush();
  if (opt_.highWatermark > 0 && !aboveHigh_ && queuedBytes() >= opt_.highWatermark) {
    aboveHigh_ = true;
    if (cb_.onHighWatermark) cb_.onHighWatermark();
  }
  return state_ == State::Closed ? WriteResult::Closed : WriteResult::Queued;
}

void StreamConnection::queueFlush() {
  if (flushQueued_) return;
  flushQueued_ = true;
  group_->queueFlush(this);
}

void StreamConnection::flush() {
  if (state_ == State::Closed || state_ == State::Connecting) return;
  while (outPos_ < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + outPos_, out_.size() - outPos_, MSG_NOSIGNAL);
    if (n > 0) {
      outPos_ += static_cast<std::size_t>(n);
      sentTotal_ += static_cast<std::uint64_t>(n);
      group_->bytesOut_ += static_cast<std::uint64_t>(n);
      lastActivity_ = Clock::now();
      continue;
    }
    int e = errno;
    if (n < 0 && e == EINTR) continue;
    if (n < 0 && (e == EAGAIN || e == EWOULDBLOCK)) break;
    finish({CloseKind::SocketError, e, "send to " + remote_.toString() + ": " + errnoText(e)});
    return;
  }
  if (outPos_ == out_.size()) {
    std::string().swap(out_);  // an idle connection keeps no room for its largest burst
    outPos_ = 0;
  } else if (outPos_ > kReadChunk && outPos_ * 2 > out_.size()) {
    out_.erase(0, outPos_);
    outPos_ = 0;
  }
  updateInterest();
  checkWatermarks();
  if (state_ == State::Draining && out_.empty() && !shutdownSent_) {
    ::shutdown(fd_, SHUT_WR);
    shutdownSent_ = true;
  }
}

std::size_t StreamConnection::bufferedBytes() const {
  static const std::size_t inlineCapacity = std::string().capacity();
  auto heap = [](const std::string& s) { return s.capacity() > inlineCapacity ? s.capacity() : 0; };
  return heap(out_) + heap(pendingPlain_) + (tls_ ? tls_->bufferedBytes() : 0);
}

void StreamConnection::checkWatermarks() {
  if (!aboveHigh_ || queuedBytes() > opt_.lowWatermark) return;
  aboveHigh_ = false;
  if (cb_.onLowWatermark && state_ != State::Closed) cb_.onLowWatermark();
}

void StreamConnection::readSocket() {
  std::vector<char>& buf = group_->rbuf_;
  for (int i = 0; i < kReadsPerEvent; ++i) {
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n > 0) {
      auto size = static_cast<std::size_t>(n);
      group_->bytesIn_ += size;
      lastActivity_ = Clock::now();
      if (state_ != State::Draining) {
        if (tls_) {
          tls_->receive(std::string_view(buf.data(), size));
          if (state_ == State::Handshaking)
            driveHandshake();
          else
            readTls();
        } else if (cb_.onData) {
          cb_.onData(std::string_view(buf.data(), size));
        }
        if (state_ == State::Closed) return;
        // The owner paused reading, or switched to TLS (the rest of this
        // event's bytes are then read through the TLS session).
        if (!reading_ && state_ != State::Draining) return;
      }
      if (size < buf.size()) return;
      continue;
    }
    if (n == 0) {
      if (state_ == State::Draining) {
        finish({CloseKind::Drained, 0, drainReason_});
      } else {
        finish({CloseKind::PeerClosed, 0, "closed by " + remote_.toString()});
      }
      return;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) return;
    finish({CloseKind::SocketError, e, "recv from " + remote_.toString() + ": " + errnoText(e)});
    return;
  }
}

void StreamConnection::readTls() {
  char buf[16 * 1024];
  for (;;) {
    if (state_ != State::Open) return;
    std::size_t n = 0;
    auto st = tls_->read(buf, sizeof buf, &n);
    if (st == TlsSession::ReadStatus::Data) {
      if (cb_.onData) cb_.onData(std::string_view(buf, n));
      continue;
    }
    if (st == TlsSession::ReadStatus::WantMore) break;
    takeTlsOutput();
    if (st == TlsSession::ReadStatus::PeerClosed) {
      finish({CloseKind::PeerClosed, 0, remote_.toString() + " closed the TLS session"});
      return;
    }
    tlsError_ = tls_->error();
    flush();
    if (state_ == State::Closed) return;
    finish({CloseKind::TlsError, 0, "TLS error from " + remote_.toString() + ": " + tlsError_});
    return;
  }
  if (!confirmReported_ && tls_->peerConfirmed()) {
    confirmReported_ = true;
    if (cb_.onTlsConfirmed) cb_.onTlsConfirmed();
    if (state_ == State::Closed) return;
  }
  takeTlsOutput();
  flush();
}

void StreamConnection::closeAfterFlush(std::chrono::milliseconds linger, std::string why) {
  if (state_ == State::Closed || state_ == State::Draining) return;
  if (state_ == State::Connecting) {
    finish({CloseKind::Drained, 0, std::move(why)});
    return;
  }
  state_ = State::Draining;
  drainReason_ = std::move(why);
  pendingPlain_.clear();
  if (idleTimer_ != 0) loop_.cancel(idleTimer_);
  idleTimer_ = 0;
  if (openTimer_ != 0) loop_.cancel(openTimer_);
  openTimer_ = 0;
  if (tls_ && tls_->handshakeDone()) {
    tls_->shutdown();  // queues close_notify
    takeTlsOutput();
  }
  lingerTimer_ = loop_.schedule(linger, [this] {
    lingerTimer_ = 0;
    finish({CloseKind::Drained, 0, drainReason_});
  });
  flush();
}

void StreamConnection::armIdle() {
  if (opt_.idleTimeout.count() <= 0 || idleTimer_ != 0) return;
  idleTimer_ = loop_.schedule(opt_.idleTimeout, [this] { onIdle(); });
}

void StreamConnection::onIdle() {
  idleTimer_ = 0;
  auto idle = Clock::now() - lastActivity_;
  if (idle >= opt_.idleTimeout) {
    finish({CloseKind::IdleTimeout, 0, "idle for " + std::to_string(opt_.idleTimeout.count()) + " ms, closed"});
    return;
  }
  idleTimer_ = loop_.schedule(opt_.idleTimeout - idle, [this] { onIdle(); });
}

void StreamConnection::close(CloseReason why) { finish(std::move(why)); }

void StreamConnection::finish(CloseReason why) {
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  for (TimerId* t : {&openTimer_, &idleTimer_, &lingerTimer_}) {
    if (*t != 0) loop_.cancel(*t);
    *t = 0;
  }
  if (flushQueued_) {
    group_->forget(this);
    flushQueued_ = false;
  }
  loop_.unwatch(fd_);
  ::close(fd_);
  fd_ = -1;
  if (counted_) {
    counted_ = false;
    group_->active_--;
  }
  std::string().swap(out_);
  outPos_ = 0;
  std::string().swap(pendingPlain_);
  if (cb_.onClose) cb_.onClose(why);
}

// ---------------- Acceptor ----------------

Acceptor::Acceptor(std::shared_ptr<StreamGroup> group, AcceptorOptions options, AcceptHandler onAccept)
    : group_(std::move(group)), opt_(std::move(options)), onAccept_(std::move(onAccept)) {
  std::string what = opt_.name.empty() ? "TCP listener on " + opt_.address.toString() : opt_.name;
  if (!opt_.address.valid()) throw std::runtime_error(what + ": no address");
  if (opt_.tls && opt_.tls->role() != TlsRole::Server) throw std::runtime_error(what + ": needs a server TLS context");
  int fd = ::socket(opt_.address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(what + ": socket: " + errnoText(errno));
  auto fail = [&](const char* call) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error(what + ": " + call + ": " + errnoText(e));
  };
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (opt_.reusePort && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) fail("SO_REUSEPORT");
  if (opt_.address.isV6()) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, opt_.address.sockaddrPtr(), opt_.address.length()) != 0) fail("bind");
  if (::listen(fd, opt_.backlog) != 0) fail("listen");
  auto local = SocketAddress::localOf(fd);
  if (!local) fail("getsockname");
  local_ = *local;
  fd_ = fd;
  try {
    group_->loop().watch(fd_, EPOLLIN, [this](std::uint32_t) { acceptAll(); });
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

Acceptor::~Acceptor() {
  if (retryTimer_ != 0) group_->loop().cancel(retryTimer_);
  group_->loop().unwatch(fd_);
  ::close(fd_);
}

void Acceptor::setTls(std::shared_ptr<const TlsContext> tls) {
  std::string what = opt_.name.empty() ? "TCP listener on " + local_.toString() : opt_.name;
  if (!opt_.tls) throw std::runtime_error(what + ": has no TLS context to replace");
  if (!tls || tls->role() != TlsRole::Server) throw std::runtime_error(what + ": needs a server TLS context");
  opt_.tls = std::move(tls);
}

void Acceptor::acceptAll() {
  EventLoop& loop = group_->loop();
  for (int i = 0; i < kAcceptBurst; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EINTR || e == ECONNABORTED) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) return;
      // Out of descriptors or memory: the pending connection stays queued and
      // a level-triggered listener would spin; pause it briefly.
      if (retryTimer_ == 0) {
        loop.modify(fd_, 0);
        retryTimer_ = loop.schedule(kAcceptRetry, [this] {
          retryTimer_ = 0;
          group_->loop().modify(fd_, EPOLLIN);
        });
      }
      return;
    }
    if (group_->atCapacity()) {
      ::close(fd);
      rejected_++;
      group_->rejected_++;
      continue;
    }
    accepted_++;
    onAccept_(StreamConnection::adopt(group_, fd, SocketAddress::fromSockaddr(ss), opt_.stream, opt_.tls,
                                      opt_.acceptPeer));
  }
}

// ---------------- Connector ----------------

Connector::Connector(std::shared_ptr<StreamGroup> group, ConnectorOptions options)
    : group_(std::move(group)), opt_(std::move(options)) {}

std::unique_ptr<StreamConnection> Connector::connect(const SocketAddress& to, CloseReason* error) {
  auto no = [error](CloseKind kind, int e, std::string detail) -> std::unique_ptr<StreamConnection> {
    if (error != nullptr) *error = {kind, e, std::move(detail)};
    return nullptr;
  };
  if (!to.valid() || to.port() == 0) return no(CloseKind::ConnectFailed, 0, "not an address to connect to: " + to.toString());
  if (opt_.tls && opt_.tls->role() != TlsRole::Client)
    return no(CloseKind::ConnectFailed, 0, "connecting to " + to.toString() + " needs a client TLS context");
  if (group_->atCapacity()) return no(CloseKind::ConnectFailed, 0, "connection limit reached");
  int fd = ::socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    return no(CloseKind::ConnectFailed, e, "socket: " + errnoText(e));
  }
  int r;
  do {
    r = ::connect(fd, to.sockaddrPtr(), to.length());
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EINPROGRESS) {
    int e = errno;
    ::close(fd);
    return no(e == ECONNREFUSED ? CloseKind::ConnectRefused : CloseKind::ConnectFailed, e,
              "connect to " + to.toString() + ": " + errnoText(e));
  }
  std::unique_ptr<StreamConnection> c(new StreamConnection(group_, fd, to, opt_.stream));
  c->outgoing_ = true;
  c->state_ = StreamConnection::State::Connecting;
  // Connected at once (loopback) or not: the callbacks are set after this
  // returns, so the connection opens on the loop's next writable event.
  c->watch(EPOLLOUT);
  if (opt_.tls) c->beginTls(opt_.tls, {}, std::chrono::milliseconds(0));
  StreamConnection* raw = c.get();
  auto ms = opt_.timeout.count();
  raw->openTimer_ = group_->loop().schedule(opt_.timeout, [raw, ms] {
    raw->openTimer_ = 0;
    if (raw->state_ == StreamConnection::State::Connecting)
      raw->finish({CloseKind::ConnectTimeout, ETIMEDOUT,
                   "no TCP connection to " + raw->remote_.toString() + " within " + std::to_string(ms) + " ms"});
    else if (raw->state_ == StreamConnection::State::Handshaking)
      raw->finish({CloseKind::TlsTimeout, ETIMEDOUT,
                   "TLS handshake with " + raw->remote_.toString() + " not finished within " + std::to_string(ms) + " ms"});
  });
  return c;
}

}  // namespace imp::net
