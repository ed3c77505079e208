#pragma once
// A non-blocking UDP socket on one EventLoop (issue 15, deliverable 1).
//
// Receiving: when the socket is readable the loop calls onReadable; the
// owner then calls readBurst(), which reads up to `burst` datagrams in one
// go and hands each to its visitor with the source address (a template, so
// a datagram costs no indirect call). A datagram larger than the buffer
// (maxDatagram) is reported truncated, with the bytes that fit.
//
// Sending: sendTo() sends one datagram at once (MSG_DONTWAIT); it returns 0
// or the errno (EAGAIN: socket buffer full, EMSGSIZE...). A socket opened
// unbound (ephemeral()) is bound by its first send; local() then says where.
//
// Errors: the constructor throws std::runtime_error naming the address and
// the failing call (socket, SO_REUSEPORT, bind).
//
// Threads: the loop thread (or any one thread before the loop runs).
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "imp/net/event_loop.h"
#include "imp/net/socket_address.h"

namespace imp::net {

class UdpSocket {
 public:
  struct Options {
    bool reusePort = false;
    std::size_t maxDatagram = 64 * 1024;  // receive buffer
    int burst = 64;                       // datagrams per readBurst()
    // What error messages call the socket; "" = "UDP socket on <address>".
    std::string name;
  };

  UdpSocket(EventLoop& loop, const SocketAddress& bind, std::function<void()> onReadable, Options options);
  UdpSocket(EventLoop& loop, const SocketAddress& bind, std::function<void()> onReadable)
      : UdpSocket(loop, bind, std::move(onReadable), Options{}) {}
  // Not bound yet: the first sendTo() picks an ephemeral port.
  static std::unique_ptr<UdpSocket> ephemeral(EventLoop& loop, int family, std::function<void()> onReadable);
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  const SocketAddress& local() const { return local_; }
  int fd() const { return fd_; }

  // 0, or the errno of the failed send.
  int sendTo(std::string_view bytes, const SocketAddress& to);

  // fn(std::string_view data, const SocketAddress& from, bool truncated) per
  // datagram. Returns the number read; a receive error other than "nothing
  // more" (and ICMP port-unreachable reports, ECONNREFUSED) is left in
  // *error (0 when none).
  template <class Fn>
  int readBurst(Fn&& fn, int* error = nullptr) {
    if (error != nullptr) *error = 0;
    int got = 0;
    for (int i = 0; i < opt_.burst; ++i) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      ssize_t n = ::recvfrom(fd_, buf_.data(), buf_.size(), MSG_TRUNC, reinterpret_cast<sockaddr*>(&ss), &len);
      if (n < 0) {
        int e = errno;
        if (e == EINTR) continue;
        if (e != EAGAIN && e != EWOULDBLOCK && e != ECONNREFUSED && error != nullptr) *error = e;
        return got;
      }
      ++got;
      auto size = static_cast<std::size_t>(n);
      bool truncated = size > buf_.size();
      fn(std::string_view(buf_.data(), truncated ? buf_.size() : size), SocketAddress::fromSockaddr(ss), truncated);
    }
    return got;
  }

 private:
  UdpSocket(EventLoop& loop, int fd, std::function<void()> onReadable, Options options);

  EventLoop& loop_;
  int fd_ = -1;
  SocketAddress local_;
  Options opt_;
  std::vector<char> buf_;
  std::function<void()> onReadable_;
};

}  // namespace imp::net
