#include "imp/net/udp_socket.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <string>

namespace imp::net {

UdpSocket::UdpSocket(EventLoop& loop, int fd, std::function<void()> onReadable, Options options)
    : loop_(loop), fd_(fd), opt_(options), buf_(options.maxDatagram), onReadable_(std::move(onReadable)) {
  local_ = SocketAddress::localOf(fd_).value_or(SocketAddress{});
  try {
    loop_.watch(fd_, EPOLLIN, [this](std::uint32_t) {
      if (onReadable_) onReadable_();
    });
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

namespace {
int openBound(const SocketAddress& bind, bool reusePort, const std::string& name) {
  std::string what = name.empty() ? "UDP socket on " + bind.toString() : name;
  if (!bind.valid()) throw std::runtime_error(what + ": no address");
  int fd = ::socket(bind.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(what + ": socket: " + std::strerror(errno));
  auto fail = [&](const char* call) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error(what + ": " + call + ": " + std::strerror(e));
  };
  int one = 1;
  if (reusePort && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) fail("SO_REUSEPORT");
  if (bind.isV6()) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, bind.sockaddrPtr(), bind.length()) != 0) fail("bind");
  return fd;
}
}  // namespace

UdpSocket::UdpSocket(EventLoop& loop, const SocketAddress& bind, std::function<void()> onReadable, Options options)
    : UdpSocket(loop, openBound(bind, options.reusePort, options.name), std::move(onReadable), options) {}

std::unique_ptr<UdpSocket> UdpSocket::ephemeral(EventLoop& loop, int family, std::function<void()> onReadable) {
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("UDP socket: ") + std::strerror(errno));
  return std::unique_ptr<UdpSocket>(new UdpSocket(loop, fd, std::move(onReadable), Options{}));
}

UdpSocket::~UdpSocket() {
  loop_.unwatch(fd_);
  ::close(fd_);
}

int UdpSocket::sendTo(std::string_view bytes, const SocketAddress& to) {
  for (;;) {
    ssize_t n = ::sendto(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT, to.sockaddrPtr(), to.length());
    if (n >= 0) {
      if (local_.port() == 0)
        if (auto l = SocketAddress::localOf(fd_)) local_ = *l;  // bound by the first send
      return 0;
    }
    if (errno == EINTR) continue;
    return errno;
  }
}

}  // namespace imp::net
