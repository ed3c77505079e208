#include "imp/net/dns_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <random>
#include <stdexcept>
#include <system_error>
#include <unordered_map>

namespace imp::net {

namespace {

// Ids are drawn at random among the free ones; keeping the table at most a
// quarter full keeps that cheap and leaves spoofers little to hit.
constexpr std::size_t kMaxOutstanding = 16384;
constexpr std::size_t kMaxTcpMessage = 65535;

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

DnsServer parseServer(const std::string& e) {
  auto bad = [&](const std::string& what) { return std::invalid_argument("dns server '" + e + "': " + what); };
  std::string addr;
  std::optional<std::string> port;
  if (e.front() == '[') {
    auto close = e.find(']');
    if (close == std::string::npos) throw bad("missing ']'");
    addr = e.substr(1, close - 1);
    auto rest = e.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') throw bad("expected ':port' after ']'");
      port = rest.substr(1);
    }
  } else if (std::count(e.begin(), e.end(), ':') == 1) {
    auto colon = e.find(':');
    addr = e.substr(0, colon);
    port = e.substr(colon + 1);
  } else {
    addr = e;  // IPv4 without port, or a bare IPv6 address (port 53)
  }
  if (ipLiteralFamily(addr) == 0) throw bad("not an IP address");
  DnsServer s{addr, 53};
  if (port) {
    if (port->empty()) throw bad("missing port after ':'");
    if (!std::all_of(port->begin(), port->end(), [](char c) { return c >= '0' && c <= '9'; }))
      throw bad("port '" + *port + "' is not a number");
    unsigned long v = 0;
    auto [p, ec] = std::from_chars(port->data(), port->data() + port->size(), v);
    if (ec != std::errc() || v < 1 || v > 65535) throw bad("port out of range 1..65535");
    s.port = static_cast<std::uint16_t>(v);
  }
  return s;
}

struct Server {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int fd = -1;  // the UDP socket of its family
  std::string label;     // "addr:port" for messages
  bool failing = false;  // the last send to it failed (reported once per outage)
};

bool sameEndpoint(const sockaddr_storage& a, socklen_t alen, const Server& s) {
  if (a.ss_family != s.addr.ss_family) return false;
  if (a.ss_family == AF_INET) {
    if (alen < static_cast<socklen_t>(sizeof(sockaddr_in))) return false;
    const auto& x = reinterpret_cast<const sockaddr_in&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in&>(s.addr);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  if (alen < static_cast<socklen_t>(sizeof(sockaddr_in6))) return false;
  const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
  const auto& y = reinterpret_cast<const sockaddr_in6&>(s.addr);
  return x.sin6_port == y.sin6_port && std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
}

std::uint16_t idOf(std::string_view m) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(m[0]) << 8) | static_cast<unsigned char>(m[1]));
}

}  // namespace

std::vector<DnsServer> parseDnsServers(const std::string& list) {
  std::vector<DnsServer> out;
  if (trim(list).empty()) return out;
  std::size_t start = 0;
  for (;;) {
    auto comma = list.find(',', start);
    auto elem = trim(std::string_view(list).substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (elem.empty()) throw std::invalid_argument("dns server list '" + list + "': empty element");
    out.push_back(parseServer(elem));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string_view dnsStatusName(DnsStatus s) {
  switch (s) {
    case DnsStatus::Ok:
      return "ok";
    case DnsStatus::NxDomain:
      return "nxdomain";
    case DnsStatus::Failed:
      break;
  }
  return "failed";
}

// Everything below runs on the loop thread; only the counters are atomic.
struct DnsClient::Impl {
  struct Tcp {
    int fd = -1;
    std::string out;  // length-prefixed query (RFC 1035 4.2.2)
    std::size_t written = 0;
    std::string in;
    bool connected = false;
  };
  struct Query {
    std::string name;  // normalDnsName() form
    std::uint16_t qtype = 0;
    Callback cb;
    std::string wire;
    std::size_t step = 0;  // try number: server step % servers, round step / servers
    std::uint64_t serial = 0;  // tells a stale timer or socket event from this query's
    TimerId timer = 0;
    std::unique_ptr<Tcp> tcp;  // set while the try runs over TCP
  };
  struct Waiting {
    std::string name;
    std::uint16_t qtype;
    Callback cb;
  };
  struct Ready {
    Callback cb;
    DnsAnswer answer;
  };

  EventLoop& loop;
  DnsClientConfig config;
  Report report;
  std::vector<Server> servers;
  int fd4 = -1, fd6 = -1;
  std::atomic<std::uint64_t> sent{0}, timeouts{0}, ignored{0}, tcpStarted{0};

  std::unordered_map<std::uint16_t, Query> outstanding;
  std::deque<Waiting> backlog;
  std::uint64_t nextSerial = 0;
  std::vector<Ready> ready, running;
  std::size_t runIndex = 0;
  bool flushing = false, flushScheduled = false, dying = false, draining = false;
  // Expires with the client: a flush queued on the loop, or a callback that
  // destroyed the client, can tell.
  std::shared_ptr<char> alive = std::make_shared<char>(0);
  std::mt19937 fallbackRng{std::random_device{}()};
  std::vector<char> buf = std::vector<char>(65536);

  Impl(EventLoop& l, DnsClientConfig c, Report r) : loop(l), config(std::move(c)), report(std::move(r)) {}

  std::size_t tries() const { return servers.size() * config.attempts; }

  void say(bool warning, const std::string& m) const {
    if (report) report(warning, m);
  }

  std::uint16_t randomId() {
    std::uint16_t v = 0;
    if (::getrandom(&v, sizeof v, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof v)) return v;
    return static_cast<std::uint16_t>(fallbackRng());
  }

  void deliver(Callback cb, DnsAnswer a) {
    ready.push_back(Ready{std::move(cb), std::move(a)});
    if (dying || flushScheduled || flushing) return;
    flushScheduled = true;
    loop.atIterationEnd([this, life = std::weak_ptr<char>(alive)] {
      if (!life.expired()) flush();
    });
  }

  void flush() {
    flushScheduled = false;
    flushing = true;
    std::weak_ptr<char> life = alive;
    while (!ready.empty()) {
      running.swap(ready);
      for (runIndex = 0; runIndex < running.size(); ++runIndex) {
        auto item = std::move(running[runIndex]);
        item.cb(std::move(item.answer));
        if (life.expired()) return;  // the callback destroyed the client: it ran the rest
      }
      running.clear();
    }
    flushing = false;
  }

  void submit(std::string name, std::uint16_t qtype, Callback cb) {
    if (dying) {
      deliver(std::move(cb), {});
      return;
    }
    if (!backlog.empty() || outstanding.size() >= kMaxOutstanding) {
      backlog.push_back(Waiting{std::move(name), qtype, std::move(cb)});
      return;
    }
    launch(std::move(name), qtype, std::move(cb));
  }

  void launch(std::string name, std::uint16_t qtype, Callback cb) {
    std::uint16_t id;
    do id = randomId();
    while (outstanding.count(id));
    Query q;
    q.wire = buildDnsQuery(id, name, qtype);
    q.name = std::move(name);
    q.qtype = qtype;
    q.cb = std::move(cb);
    q.serial = ++nextSerial;
    outstanding.emplace(id, std::move(q));
    sendUdp(id);
  }

  void arm(std::uint16_t id, Query& q) {
    q.timer = loop.schedule(config.timeout, [this, id, serial = q.serial] { onTimeout(id, serial); });
  }

  void disarm(Query& q) {
    if (q.timer) loop.cancel(q.timer);
    q.timer = 0;
  }

  void closeTcp(Query& q) {
    if (!q.tcp) return;
    loop.unwatch(q.tcp->fd);
    ::close(q.tcp->fd);
    q.tcp.reset();
  }

  // Sends the current try of query `id` over UDP. A try that cannot even be
  // sent (no route, say) moves on to the next one at once; when none is left
  // the query fails.
  void sendUdp(std::uint16_t id) {
    auto& q = outstanding.at(id);
    while (q.step < tries()) {
      auto& s = servers[q.step % servers.size()];
      auto n = ::sendto(s.fd, q.wire.data(), q.wire.size(), 0, reinterpret_cast<const sockaddr*>(&s.addr), s.len);
      int err = errno;
      // A full socket buffer loses the datagram as the network might: wait.
      if (n >= 0 || err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == EINTR) {
        if (n >= 0) ++sent;
        if (s.failing) say(false, "dns client: sending to " + s.label + " works again");
        s.failing = false;
        arm(id, q);
        return;
      }
      if (!s.failing) say(true, "dns client: sending to " + s.label + " fails: " + std::strerror(err));
      s.failing = true;
      ++q.step;
    }
    complete(id, DnsStatus::Failed, nullptr);
  }

  void nextTry(std::uint16_t id) {
    auto& q = outstanding.at(id);
    disarm(q);
    closeTcp(q);
    ++q.step;
    sendUdp(id);
  }

  void complete(std::uint16_t id, DnsStatus status, DnsReply* reply) {
    auto node = outstanding.extract(id);
    Query& q = node.mapped();
    disarm(q);
    closeTcp(q);
    DnsAnswer a;
    a.status = status;
    if (reply) {
      a.values = std::move(reply->values);
      a.srv = std::move(reply->srv);
      a.naptr = std::move(reply->naptr);
      a.ttl = reply->ttl;
    }
    deliver(std::move(q.cb), std::move(a));
    // A launch can complete at once (no server reachable) and come back
    // here: only the outermost call drains, so the stack stays flat.
    if (draining) return;
    draining = true;
    while (!backlog.empty() && outstanding.size() < kMaxOutstanding) {
      auto w = std::move(backlog.front());
      backlog.pop_front();
      launch(std::move(w.name), w.qtype, std::move(w.cb));
    }
    draining = false;
  }

  void onTimeout(std::uint16_t id, std::uint64_t serial) {
    auto it = outstanding.find(id);
    if (it == outstanding.end() || it->second.serial != serial) return;
    it->second.timer = 0;  // fired
    ++timeouts;
    nextTry(id);
  }

  // A reply that passed the source, id and question checks.
  void onReply(std::uint16_t id, DnsReply& reply, bool viaTcp) {
    if (reply.truncated) {
      if (viaTcp)
        nextTry(id);  // TC over TCP is a broken server
      else
        startTcp(id);
    } else if (reply.rcode == kDnsRcodeNoError) {
      complete(id, DnsStatus::Ok, &reply);
    } else if (reply.rcode == kDnsRcodeNxDomain) {
      complete(id, DnsStatus::NxDomain, &reply);
    } else {
      nextTry(id);  // SERVFAIL, REFUSED, ...: another server may do better
    }
  }

  void onUdpReadable(int fd) {
    // Bounded, so a flood on one socket cannot starve timers and callers.
    for (int i = 0; i < 256; ++i) {
      sockaddr_storage from{};
      socklen_t fromLen = sizeof from;
      auto n = ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fromLen);
      if (n < 0) {
        if (errno == EINTR) continue;
        // EAGAIN: drained. Anything else (a queued ICMP error) says nothing
        // about a particular query; the timeout covers it.
        return;
      }
      onDatagram(std::string_view(buf.data(), static_cast<std::size_t>(n)), from, fromLen);
    }
  }

  void onDatagram(std::string_view dgram, const sockaddr_storage& from, socklen_t fromLen) {
    if (dgram.size() < 2) {
      ++ignored;
      return;
    }
    auto id = idOf(dgram);
    auto it = outstanding.find(id);
    // While a try runs over TCP, a UDP copy of the truncated reply is stale.
    if (it == outstanding.end() || it->second.tcp ||
        !sameEndpoint(from, fromLen, servers[it->second.step % servers.size()])) {
      ++ignored;
      return;
    }
    auto reply = parseDnsReply(dgram, it->second.qtype);
    if (!reply || reply->question != it->second.name) {
      ++ignored;
      return;
    }
    onReply(id, *reply, false);
  }

  // RFC 7766 §5: the same question to the same server over TCP.
  void startTcp(std::uint16_t id) {
    auto& q = outstanding.at(id);
    disarm(q);
    ++tcpStarted;
    const auto& s = servers[q.step % servers.size()];
    int fd = ::socket(s.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      say(true, std::string("dns client: cannot create a TCP socket for ") + s.label + ": " + std::strerror(errno));
      nextTry(id);
      return;
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&s.addr), s.len) < 0 && errno != EINPROGRESS) {
      ::close(fd);  // refused at once (no listener, no route): the next try
      nextTry(id);
      return;
    }
    auto tcp = std::make_unique<Tcp>();
    tcp->fd = fd;
    tcp->out.reserve(q.wire.size() + 2);
    tcp->out += static_cast<char>(q.wire.size() >> 8);
    tcp->out += static_cast<char>(q.wire.size() & 0xFF);
    tcp->out += q.wire;
    loop.watch(fd, EPOLLOUT, [this, id, serial = q.serial](std::uint32_t ev) { onTcpEvent(id, serial, ev); });
    q.tcp = std::move(tcp);
    arm(id, q);
  }

  void onTcpEvent(std::uint16_t id, std::uint64_t serial, std::uint32_t ev) {
    auto it = outstanding.find(id);
    if (it == outstanding.end() || it->second.serial != serial || !it->second.tcp) return;
    auto& q = it->second;
    auto& t = *q.tcp;
    if (!t.connected) {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(t.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
      if (err != 0) {
        nextTry(id);  // refused or reset: the next server
        return;
      }
      if (!(ev & (EPOLLOUT | EPOLLIN))) return;
      t.connected = true;
    }
    while (t.written < t.out.size()) {
      auto n = ::send(t.fd, t.out.data() + t.written, t.out.size() - t.written, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        nextTry(id);
        return;
      }
      t.written += static_cast<std::size_t>(n);
      if (t.written == t.out.size()) loop.modify(t.fd, EPOLLIN);
    }
    for (;;) {
      auto n = ::recv(t.fd, buf.data(), buf.size(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        nextTry(id);
        return;
      }
      if (n == 0) {
        // Closed before a whole message arrived.
        if (t.in.size() < 2 || t.in.size() < 2u + idOf(t.in)) {
          nextTry(id);
          return;
        }
        break;
      }
      t.in.append(buf.data(), static_cast<std::size_t>(n));
      if (t.in.size() > 2 + kMaxTcpMessage) break;
    }
    if (t.in.size() < 2) return;
    std::size_t need = idOf(t.in);  // the length prefix has the same layout as an id
    if (t.in.size() < 2 + need) return;
    std::string_view message(t.in.data() + 2, need);
    std::optional<DnsReply> reply;
    if (message.size() >= 2 && idOf(message) == id) reply = parseDnsReply(message, q.qtype);
    if (!reply || reply->question != q.name) {
      ++ignored;  // a server that answers another question on our connection
      nextTry(id);
      return;
    }
    onReply(id, *reply, true);
  }

  void shutdown() {
    dying = true;
    alive.reset();
    std::vector<Ready> left;
    if (flushing)
      for (std::size_t i = runIndex + 1; i < running.size(); ++i) left.push_back(std::move(running[i]));
    running.clear();
    for (auto& r : ready) left.push_back(std::move(r));
    ready.clear();
    for (auto& [id, q] : outstanding) {
      disarm(q);
      closeTcp(q);
      left.push_back(Ready{std::move(q.cb), {}});
    }
    outstanding.clear();
    for (auto& w : backlog) left.push_back(Ready{std::move(w.cb), {}});
    backlog.clear();
    for (int fd : {fd4, fd6})
      if (fd >= 0) {
        loop.unwatch(fd);
        ::close(fd);
      }
    fd4 = fd6 = -1;
    for (auto& r : left) r.cb(std::move(r.answer));
    // Queries made by those callbacks fail at once (dying).
    while (!ready.empty()) {
      auto more = std::move(ready);
      ready.clear();
      for (auto& r : more) r.cb(std::move(r.answer));
    }
  }
};

DnsClient::DnsClient(EventLoop& loop, DnsClientConfig config, Report report) {
  if (config.servers.empty()) throw std::invalid_argument("dns client: no servers configured");
  if (config.timeout.count() <= 0) throw std::invalid_argument("dns client: timeout must be positive");
  if (config.attempts == 0) throw std::invalid_argument("dns client: attempts must be at least 1");
  auto im = std::make_unique<Impl>(loop, config, std::move(report));
  // Sockets are closed by the guard if anything below throws.
  struct Closer {
    Impl& im;
    bool armed = true;
    ~Closer() {
      if (!armed) return;
      for (int fd : {im.fd4, im.fd6})
        if (fd >= 0) ::close(fd);
    }
  } closer{*im};
  for (const auto& s : config.servers) {
    Server srv;
    srv.label = (s.address.find(':') != std::string::npos ? "[" + s.address + "]" : s.address) + ":" + std::to_string(s.port);
    if (s.port == 0) throw std::invalid_argument("dns server '" + srv.label + "': port out of range 1..65535");
    auto* v4 = reinterpret_cast<sockaddr_in*>(&srv.addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&srv.addr);
    int* fd = nullptr;
    if (inet_pton(AF_INET, s.address.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(s.port);
      srv.len = sizeof(sockaddr_in);
      fd = &im->fd4;
    } else if (inet_pton(AF_INET6, s.address.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(s.port);
      srv.len = sizeof(sockaddr_in6);
      fd = &im->fd6;
    } else {
      throw std::invalid_argument("dns server '" + s.address + "': not an IP address");
    }
    if (*fd < 0) {
      *fd = ::socket(srv.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (*fd < 0)
        throw std::system_error(errno, std::generic_category(),
                                std::string("dns client: cannot create an ") +
                                    (srv.addr.ss_family == AF_INET ? "IPv4" : "IPv6") + " UDP socket for " + srv.label);
    }
    srv.fd = *fd;
    im->servers.push_back(std::move(srv));
  }
  Impl* raw = im.get();
  if (im->fd4 >= 0) loop.watch(im->fd4, EPOLLIN, [raw, fd = im->fd4](std::uint32_t) { raw->onUdpReadable(fd); });
  if (im->fd6 >= 0) {
    try {
      loop.watch(im->fd6, EPOLLIN, [raw, fd = im->fd6](std::uint32_t) { raw->onUdpReadable(fd); });
    } catch (...) {
      if (im->fd4 >= 0) loop.unwatch(im->fd4);
      throw;
    }
  }
  closer.armed = false;
  impl_ = std::move(im);
}

DnsClient::~DnsClient() { impl_->shutdown(); }

void DnsClient::query(const std::string& name, std::uint16_t qtype, Callback cb) {
  auto n = normalDnsName(name);
  // "a.." is not a name with a root dot; buildDnsQuery would take one off.
  if (n.empty() || n.back() == '.' || buildDnsQuery(0, n, qtype).empty()) {
    impl_->deliver(std::move(cb), {});
    return;
  }
  impl_->submit(std::move(n), qtype, std::move(cb));
}

DnsClientStats DnsClient::stats() const {
  return DnsClientStats{impl_->sent.load(), impl_->timeouts.load(), impl_->ignored.load(), impl_->tcpStarted.load()};
}

std::size_t DnsClient::outstanding() const { return impl_->outstanding.size() + impl_->backlog.size(); }

}  // namespace imp::net
