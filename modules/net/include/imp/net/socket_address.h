#pragma once
// An IPv4 or IPv6 socket address (issue 15, deliverable 1: the protocol-free
// runtime). Only IP literals: name resolution happens before, off the loop.
//
// Text forms: "192.0.2.1:5060" and "[2001:db8::1]:5060" (parse/toString);
// ip() gives the bare literal ("2001:db8::1"). parse() and fromIp() return
// nullopt, with the reason in *why, for anything else (a host name, a port
// out of 0..65535, a missing port, stray characters).
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace imp::net {

class SocketAddress {
 public:
  SocketAddress() = default;  // family AF_UNSPEC: not an address

  static std::optional<SocketAddress> fromIp(std::string_view ip, std::uint16_t port, std::string* why = nullptr);
  static std::optional<SocketAddress> parse(std::string_view hostPort, std::string* why = nullptr);
  // From what accept()/recvfrom()/getsockname() filled in; an unsupported
  // family gives an AF_UNSPEC address.
  static SocketAddress fromSockaddr(const sockaddr_storage& ss);
  // The local (getsockname) or remote (getpeername) address of `fd`.
  static std::optional<SocketAddress> localOf(int fd);
  static std::optional<SocketAddress> peerOf(int fd);

  bool valid() const { return ss_.sa.sa_family == AF_INET || ss_.sa.sa_family == AF_INET6; }
  int family() const { return ss_.sa.sa_family; }
  bool isV6() const { return ss_.sa.sa_family == AF_INET6; }
  std::string ip() const;
  std::uint16_t port() const;
  std::string toString() const;  // "ip:port", "[v6]:port"

  const sockaddr* sockaddrPtr() const { return &ss_.sa; }
  socklen_t length() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b);

 private:
  // Room for IPv4 and IPv6 only (28 octets, not sockaddr_storage's 128):
  // every connection holds two of these.
  union Storage {
    sockaddr_in6 v6;  // first: {} zeroes the whole union
    sockaddr_in v4;
    sockaddr sa;
  };
  Storage ss_{};
};

}  // namespace imp::net
