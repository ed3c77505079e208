#include "imp/net/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace imp::net {

namespace {
bool fail(std::string* why, std::string text) {
  if (why != nullptr) *why = std::move(text);
  return false;
}
}  // namespace

std::optional<SocketAddress> SocketAddress::fromIp(std::string_view ip, std::uint16_t port, std::string* why) {
  if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN) {
    fail(why, "not an IP literal: '" + std::string(ip) + "'");
    return std::nullopt;
  }
  char text[INET6_ADDRSTRLEN] = {};
  std::memcpy(text, ip.data(), ip.size());
  SocketAddress a;
  auto* v4 = &a.ss_.v4;
  if (::inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return a;
  }
  a = SocketAddress{};
  auto* v6 = &a.ss_.v6;
  if (::inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return a;
  }
  fail(why, "not an IP literal: '" + std::string(ip) + "'");
  return std::nullopt;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view hostPort, std::string* why) {
  std::string_view host, port;
  if (!hostPort.empty() && hostPort.front() == '[') {
    auto close = hostPort.find(']');
    if (close == std::string_view::npos || close + 1 >= hostPort.size() || hostPort[close + 1] != ':') {
      fail(why, "expected [IPv6]:port: '" + std::string(hostPort) + "'");
      return std::nullopt;
    }
    host = hostPort.substr(1, close - 1);
    port = hostPort.substr(close + 2);
    if (host.find(':') == std::string_view::npos) {
      fail(why, "brackets hold an IPv6 literal only: '" + std::string(hostPort) + "'");
      return std::nullopt;
    }
  } else {
    auto colon = hostPort.rfind(':');
    if (colon == std::string_view::npos) {
      fail(why, "no port in '" + std::string(hostPort) + "'");
      return std::nullopt;
    }
    host = hostPort.substr(0, colon);
    port = hostPort.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      fail(why, "an IPv6 literal with a port needs brackets: '" + std::string(hostPort) + "'");
      return std::nullopt;
    }
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535) {
    fail(why, "bad port '" + std::string(port) + "' in '" + std::string(hostPort) + "'");
    return std::nullopt;
  }
  return fromIp(host, static_cast<std::uint16_t>(value), why);
}

SocketAddress SocketAddress::fromSockaddr(const sockaddr_storage& ss) {
  SocketAddress a;
  if (ss.ss_family == AF_INET)
    std::memcpy(&a.ss_.v4, &ss, sizeof(sockaddr_in));
  else if (ss.ss_family == AF_INET6)
    std::memcpy(&a.ss_.v6, &ss, sizeof(sockaddr_in6));
  return a;
}

std::optional<SocketAddress> SocketAddress::localOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return std::nullopt;
  return fromSockaddr(ss);
}

std::optional<SocketAddress> SocketAddress::peerOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return std::nullopt;
  return fromSockaddr(ss);
}

std::string SocketAddress::ip() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss_.sa.sa_family == AF_INET)
    ::inet_ntop(AF_INET, &ss_.v4.sin_addr, buf, sizeof buf);
  else if (ss_.sa.sa_family == AF_INET6)
    ::inet_ntop(AF_INET6, &ss_.v6.sin6_addr, buf, sizeof buf);
  return buf;
}

std::uint16_t SocketAddress::port() const {
  if (ss_.sa.sa_family == AF_INET) return ntohs(ss_.v4.sin_port);
  if (ss_.sa.sa_family == AF_INET6) return ntohs(ss_.v6.sin6_port);
  return 0;
}

std::string SocketAddress::toString() const {
  if (!valid()) return "(no address)";
  std::string s = isV6() ? "[" + ip() + "]" : ip();
  s += ':';
  s += std::to_string(port());
  return s;
}

socklen_t SocketAddress::length() const {
  if (ss_.sa.sa_family == AF_INET) return sizeof(sockaddr_in);
  if (ss_.sa.sa_family == AF_INET6) return sizeof(sockaddr_in6);
  return 0;
}

bool operator==(const SocketAddress& a, const SocketAddress& b) {
  if (a.family() != b.family()) return false;
  if (a.family() == AF_INET) {
    const auto* x = &a.ss_.v4;
    const auto* y = &b.ss_.v4;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a.family() == AF_INET6) {
    const auto* x = &a.ss_.v6;
    const auto* y = &b.ss_.v6;
    return x->sin6_port == y->sin6_port && std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0 &&
           x->sin6_scope_id == y->sin6_scope_id;
  }
  return true;
}

}  // namespace imp::net
