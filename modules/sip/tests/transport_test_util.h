#pragma once
// Helpers shared by transport_test.cpp and tls_test.cpp: raw SIP text, a raw
// TCP peer driven by the event loop, and waiting with deadlines.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "imp/net/event_loop.h"
#include "imp/sip/parser.h"
#include "imp/sip/transport.h"

namespace imp::sip::testing {

using namespace std::chrono_literals;
constexpr auto kDeadline = 5s;

inline std::string request(std::string_view method, Transport t, std::string_view callId, std::string_view body = {},
                           std::string_view extraHeaders = {}) {
  std::string s;
  s += std::string(method) + " sip:proxy.test SIP/2.0\r\n";
  s += "Via: SIP/2.0/" + std::string(transportName(t)) + " 127.0.0.1:5060;branch=z9hG4bK-" + std::string(callId) + "\r\n";
  s += "Max-Forwards: 70\r\n";
  s += "From: <sip:alice@example.com>;tag=a1\r\n";
  s += "To: <sip:bob@proxy.test>\r\n";
  s += "Call-ID: " + std::string(callId) + "\r\n";
  s += "CSeq: 1 " + std::string(method) + "\r\n";
  s += extraHeaders;
  s += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  s += body;
  return s;
}

inline Message parse(std::string_view raw) {
  auto r = Parser().parseDatagram(raw);
  if (auto* e = std::get_if<ParseError>(&r)) FAIL("test message does not parse: " << e->reason);
  return std::get<Message>(std::move(r));
}

inline Message responseTo(const Message& req, int status, std::string_view reason) {
  Message r = Message::response(status, reason);
  for (const auto& h : req.headers())
    if (h.id == HeaderId::Via || h.id == HeaderId::From || h.id == HeaderId::To || h.id == HeaderId::CallId ||
        h.id == HeaderId::CSeq)
      r.appendHeader(canonicalName(h.id), h.value);
  return r;
}

// A port on 127.0.0.1 nobody listens on (bound, read back, released).
inline std::uint16_t closedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A plain TCP client whose reads run on the event loop. Writes block (the
// tests write little), reads never do.
class RawPeer {
 public:
  RawPeer(net::EventLoop& loop, const Endpoint& to) : loop_(loop) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(to.port);
    ::inet_pton(AF_INET, to.address.c_str(), &a.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    loop_.watch(fd_, EPOLLIN, [this](std::uint32_t) { onReadable(); });
    watched_ = true;
  }
  ~RawPeer() {
    if (watched_) loop_.unwatch(fd_);
    ::close(fd_);
  }
  RawPeer(const RawPeer&) = delete;
  RawPeer& operator=(const RawPeer&) = delete;

  bool connected() const { return connected_; }
  void write(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // peer closed: the test looks at closed()
      s.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  const std::string& received() const { return received_; }
  bool closed() const { return closed_; }

 private:
  void onReadable() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        received_.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      closed_ = true;  // EOF or reset: answer with our FIN, like a real peer
      ::shutdown(fd_, SHUT_WR);
      loop_.unwatch(fd_);
      watched_ = false;
      return;
    }
  }

  net::EventLoop& loop_;
  int fd_ = -1;
  bool connected_ = false;
  bool watched_ = false;
  bool closed_ = false;
  std::string received_;
};

// Records what the transport hands up.
struct Inbox {
  std::vector<Message> messages;
  std::vector<Source> sources;
  std::vector<ParseError> parseErrors;
  void attach(TransportLayer& t) {
    t.setMessageHandler([this](Message m, const Source& s) {
      messages.push_back(std::move(m));
      sources.push_back(s);
    });
    t.setParseErrorHandler([this](const ParseError& e, const Source&) { parseErrors.push_back(e); });
  }
};

struct ErrorLog {
  std::vector<TransportError> errors;
  SendErrorHandler handler() {
    return [this](const TransportError& e) { errors.push_back(e); };
  }
};

}  // namespace imp::sip::testing
