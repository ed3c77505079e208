#pragma once
// An in-process DNS server on 127.0.0.1 for the DNS client and resolver
// tests: UDP and TCP on the same port, answers from a table, and on demand
// the misbehaviour the client must survive — silence, stalls released by the
// test, SERVFAIL, NXDOMAIN with an SOA, truncation (with or without a TCP
// answer), garbage, replies with a wrong id, question or source, and TCP
// replies with a wrong id or a connection closed early.
//
// Threads: one server thread; set()/release()/queries() from the test thread.
#include <doctest/doctest.h>
#include <imp/net/dns_client.h>
#include <imp/net/dns_wire.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace imp::testing {

inline constexpr auto kDnsWait = std::chrono::seconds(10);  // upper bound for anything that should happen

inline void dnsPut16(std::string& s, std::uint16_t v) {
  s += static_cast<char>(v >> 8);
  s += static_cast<char>(v & 0xFF);
}
inline void dnsPut32(std::string& s, std::uint32_t v) {
  dnsPut16(s, static_cast<std::uint16_t>(v >> 16));
  dnsPut16(s, static_cast<std::uint16_t>(v & 0xFFFF));
}

inline std::string dnsEncodeName(const std::string& name) {
  std::string out;
  std::size_t start = 0;
  while (start < name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    out += static_cast<char>(dot - start);
    out += name.substr(start, dot - start);
    start = dot + 1;
  }
  out += '\0';
  return out;
}

inline std::string dnsCharString(const std::string& s) { return static_cast<char>(s.size()) + s; }

// Record data in presentation-ish form:
//   A/AAAA "192.0.2.1"; PTR/CNAME "host.example"
//   SRV    "10 60 5061 sip.example.com"   (priority weight port target; "." = root)
//   NAPTR  "10 50 s SIPS+D2T - _sips._tcp.example.com"  (order pref flags services regexp replacement; "-" = empty)
inline std::string dnsRdata(std::uint16_t type, const std::string& value) {
  if (type == net::kDnsTypeA) {
    in_addr a{};
    REQUIRE(inet_pton(AF_INET, value.c_str(), &a) == 1);
    return std::string(reinterpret_cast<const char*>(&a), 4);
  }
  if (type == net::kDnsTypeAaaa) {
    in6_addr a{};
    REQUIRE(inet_pton(AF_INET6, value.c_str(), &a) == 1);
    return std::string(reinterpret_cast<const char*>(&a), 16);
  }
  std::istringstream in(value);
  auto name = [](const std::string& n) { return n == "." ? std::string(1, '\0') : dnsEncodeName(n); };
  auto text = [](const std::string& t) { return dnsCharString(t == "-" ? std::string() : t); };
  if (type == net::kDnsTypeSrv) {
    unsigned prio = 0, weight = 0, port = 0;
    std::string target;
    REQUIRE(static_cast<bool>(in >> prio >> weight >> port >> target));
    std::string r;
    dnsPut16(r, static_cast<std::uint16_t>(prio));
    dnsPut16(r, static_cast<std::uint16_t>(weight));
    dnsPut16(r, static_cast<std::uint16_t>(port));
    return r + name(target);
  }
  if (type == net::kDnsTypeNaptr) {
    unsigned order = 0, pref = 0;
    std::string flags, services, regexp, replacement;
    REQUIRE(static_cast<bool>(in >> order >> pref >> flags >> services >> regexp >> replacement));
    std::string r;
    dnsPut16(r, static_cast<std::uint16_t>(order));
    dnsPut16(r, static_cast<std::uint16_t>(pref));
    return r + text(flags) + text(services) + text(regexp) + name(replacement);
  }
  return dnsEncodeName(value);  // PTR, CNAME
}

struct DnsRr {
  std::string owner;  // "" = compression pointer to the question name
  std::uint16_t type;
  std::string value;
  std::uint32_t ttl = 60;
};

// A reply to `question` (name as asked, already encoded, + type + class),
// with answer records built from `answers` and, when soaTtl is set, an SOA
// (TTL soaTtl, MINIMUM soaMinimum) in the authority section.
inline std::string dnsMakeReply(std::uint16_t id, int rcode, const std::string& question, const std::vector<DnsRr>& answers,
                                std::uint16_t extraFlags = 0, std::optional<std::uint32_t> soaTtl = std::nullopt,
                                std::uint32_t soaMinimum = 0) {
  std::string m;
  dnsPut16(m, id);
  dnsPut16(m, static_cast<std::uint16_t>(0x8180 | extraFlags | rcode));  // QR RD RA
  dnsPut16(m, 1);
  dnsPut16(m, static_cast<std::uint16_t>(answers.size()));
  dnsPut16(m, soaTtl ? 1 : 0);
  dnsPut16(m, 0);
  m += question;
  for (const auto& a : answers) {
    if (a.owner.empty())
      dnsPut16(m, 0xC00C);
    else
      m += dnsEncodeName(a.owner);
    dnsPut16(m, a.type);
    dnsPut16(m, 1);
    dnsPut32(m, a.ttl);
    auto rd = dnsRdata(a.type, a.value);
    dnsPut16(m, static_cast<std::uint16_t>(rd.size()));
    m += rd;
  }
  if (soaTtl) {
    dnsPut16(m, 0xC00C);
    dnsPut16(m, net::kDnsTypeSoa);
    dnsPut16(m, 1);
    dnsPut32(m, *soaTtl);
    std::string rd = dnsEncodeName("ns.example") + dnsEncodeName("admin.example");
    for (std::uint32_t v : {1u, 3600u, 600u, 86400u}) dnsPut32(rd, v);
    dnsPut32(rd, soaMinimum);
    dnsPut16(m, static_cast<std::uint16_t>(rd.size()));
    m += rd;
  }
  return m;
}

inline std::string dnsQuestionOf(const std::string& name, std::uint16_t type) {
  std::string q = dnsEncodeName(name);
  dnsPut16(q, type);
  dnsPut16(q, 1);
  return q;
}

class FakeDns {
 public:
  enum class Mode {
    Answer,
    NxDomain,      // with an SOA when Entry::soaTtl is set
    ServFail,
    Silent,
    Hold,          // UDP: kept until release()
    Garbage,       // six bad replies, then the good one
    Truncated,     // TC over UDP; TCP answers the same way (TC)
    TcOverUdp,     // TC over UDP; the full answer over TCP
    TcTcpWrongId,  // TC over UDP; over TCP a reply with another id
    TcTcpClose,    // TC over UDP; TCP closes without a reply
    UpperCase,
  };
  struct Entry {
    Mode mode = Mode::Answer;
    std::vector<std::string> values;  // record data as dnsRdata() reads it, type as asked
    std::uint32_t ttl = 60;
    std::optional<std::uint32_t> soaTtl;
    std::uint32_t soaMinimum = 0;
  };

  explicit FakeDns(Mode fallback = Mode::NxDomain) : fallback_(fallback) {
    // UDP and TCP on one port number: retry until both binds succeed.
    for (int i = 0; i < 20 && tcp_ < 0; ++i) {
      fd_ = bound(SOCK_DGRAM, 0);
      port_ = portOf(fd_);
      tcp_ = bound(SOCK_STREAM, port_);
      if (tcp_ < 0) ::close(fd_);
    }
    REQUIRE(tcp_ >= 0);
    REQUIRE(::listen(tcp_, 16) == 0);
    spoof_ = bound(SOCK_DGRAM, 0);
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    REQUIRE(stop_ >= 0);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeDns() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_, &one, sizeof one);
    thread_.join();
    for (int fd : {fd_, tcp_, spoof_, stop_}) ::close(fd);
  }
  FakeDns(const FakeDns&) = delete;
  FakeDns& operator=(const FakeDns&) = delete;

  net::DnsServer server() const { return {"127.0.0.1", port_}; }

  void set(const std::string& name, std::uint16_t type, Entry e) {
    std::lock_guard l(mu_);
    entries_[{name, type}] = std::move(e);
  }
  int queries(const std::string& name) {
    std::lock_guard l(mu_);
    return static_cast<int>(std::count(seen_.begin(), seen_.end(), name));
  }
  int tcpQueries(const std::string& name) {
    std::lock_guard l(mu_);
    return static_cast<int>(std::count(seenTcp_.begin(), seenTcp_.end(), name));
  }
  // Waits (with a deadline) until `name` was asked at least `n` times over UDP; the count.
  int queriesAtLeast(const std::string& name, int n) {
    std::unique_lock l(mu_);
    cv_.wait_for(l, kDnsWait, [&] { return std::count(seen_.begin(), seen_.end(), name) >= n; });
    return static_cast<int>(std::count(seen_.begin(), seen_.end(), name));
  }
  int totalQueries() {
    std::lock_guard l(mu_);
    return static_cast<int>(seen_.size() + seenTcp_.size());
  }
  bool waitForQuery(const std::string& name) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, kDnsWait, [&] { return std::count(seen_.begin(), seen_.end(), name) > 0; });
  }
  // Answers the queries held for `name` (Mode::Hold) as Mode::Answer.
  void release(const std::string& name) {
    std::vector<Held> held;
    {
      std::lock_guard l(mu_);
      auto it = std::stable_partition(held_.begin(), held_.end(), [&](const Held& h) { return h.name != name; });
      held.assign(std::make_move_iterator(it), std::make_move_iterator(held_.end()));
      held_.erase(it, held_.end());
    }
    for (const auto& h : held) sendTo(fd_, answer(h.query, h.name, h.type, Mode::Answer), h.from);
  }

 private:
  struct Held {
    std::string query, name;
    std::uint16_t type;
    sockaddr_in from;
  };

  static int bound(int type, std::uint16_t port) {
    int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    int one = 1;
    if (type == SOCK_STREAM) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  static std::uint16_t portOf(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    return ntohs(a.sin_port);
  }
  static void sendTo(int fd, const std::string& m, const sockaddr_in& to) {
    ::sendto(fd, m.data(), m.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }

  std::string answer(const std::string& query, const std::string& name, std::uint16_t type, Mode mode) {
    Entry e;
    {
      std::lock_guard l(mu_);
      auto it = entries_.find({name, type});
      if (it != entries_.end()) e = it->second;
    }
    auto id = static_cast<std::uint16_t>((static_cast<unsigned char>(query[0]) << 8) | static_cast<unsigned char>(query[1]));
    std::string question = query.substr(12);
    if (mode == Mode::NxDomain) return dnsMakeReply(id, net::kDnsRcodeNxDomain, question, {}, 0, e.soaTtl, e.soaMinimum);
    if (mode == Mode::ServFail) return dnsMakeReply(id, net::kDnsRcodeServFail, question, {});
    if (mode == Mode::Truncated) return dnsMakeReply(id, 0, question, {}, 0x0200);
    if (mode == Mode::UpperCase)
      std::transform(question.begin(), question.end(), question.begin(), [](unsigned char c) { return std::toupper(c); });
    std::vector<DnsRr> rrs;
    for (const auto& v : e.values) rrs.push_back({"", type, v, e.ttl});
    return dnsMakeReply(id, 0, question, rrs, 0, rrs.empty() ? e.soaTtl : std::nullopt, e.soaMinimum);
  }

  // Parses a query: the name (the client sends uncompressed lower-case names) and type.
  static bool readQuestion(const std::string& query, std::string& name, std::uint16_t& type) {
    if (query.size() < 17) return false;
    std::size_t p = 12;
    while (p < query.size() && query[p] != 0) {
      auto l = static_cast<unsigned char>(query[p]);
      if (!name.empty()) name += '.';
      name += query.substr(p + 1, l);
      p += l + 1u;
    }
    if (p + 3 > query.size()) return false;
    type = static_cast<std::uint16_t>((static_cast<unsigned char>(query[p + 1]) << 8) | static_cast<unsigned char>(query[p + 2]));
    return true;
  }

  Mode modeFor(const std::string& name, std::uint16_t type) {
    auto it = entries_.find({name, type});
    return it != entries_.end() ? it->second.mode : fallback_;
  }

  void serveTcp(int conn) {
    timeval tv{5, 0};
    ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string in;
    char buf[4096];
    while (in.size() < 2 || in.size() < 2u + ((static_cast<unsigned char>(in[0]) << 8) | static_cast<unsigned char>(in[1]))) {
      auto n = ::recv(conn, buf, sizeof buf, 0);
      if (n <= 0) return;
      in.append(buf, static_cast<std::size_t>(n));
    }
    std::string query = in.substr(2);
    std::string name;
    std::uint16_t type = 0;
    if (!readQuestion(query, name, type)) return;
    Mode mode;
    {
      std::lock_guard l(mu_);
      seenTcp_.push_back(name);
      mode = modeFor(name, type);
    }
    cv_.notify_all();
    if (mode == Mode::TcTcpClose) return;
    std::string reply = answer(query, name, type, mode == Mode::Truncated ? Mode::Truncated : Mode::Answer);
    if (mode == Mode::TcTcpWrongId) reply[1] = static_cast<char>(reply[1] ^ 0x5a);
    std::string framed;
    dnsPut16(framed, static_cast<std::uint16_t>(reply.size()));
    framed += reply;
    // Two writes: the client must reassemble.
    ::send(conn, framed.data(), 3, MSG_NOSIGNAL);
    ::send(conn, framed.data() + 3, framed.size() - 3, MSG_NOSIGNAL);
  }

  void run() {
    pollfd fds[3] = {{fd_, POLLIN, 0}, {tcp_, POLLIN, 0}, {stop_, POLLIN, 0}};
    char buf[1500];
    for (;;) {
      if (::poll(fds, 3, -1) < 0) continue;
      if (fds[2].revents) return;
      if (fds[1].revents) {
        int conn = ::accept4(tcp_, nullptr, nullptr, SOCK_CLOEXEC);
        if (conn >= 0) {
          serveTcp(conn);
          ::close(conn);
        }
      }
      if (!fds[0].revents) continue;
      sockaddr_in from{};
      socklen_t len = sizeof from;
      auto n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) continue;
      std::string query(buf, static_cast<std::size_t>(n));
      std::string name;
      std::uint16_t type = 0;
      if (!readQuestion(query, name, type)) continue;
      Mode mode;
      {
        std::lock_guard l(mu_);
        seen_.push_back(name);
        mode = modeFor(name, type);
        if (mode == Mode::Hold) held_.push_back({query, name, type, from});
      }
      cv_.notify_all();
      if (mode == Mode::Silent || mode == Mode::Hold) continue;
      if (mode == Mode::TcOverUdp || mode == Mode::TcTcpWrongId || mode == Mode::TcTcpClose) mode = Mode::Truncated;
      if (mode == Mode::Garbage) {
        auto good = answer(query, name, type, Mode::Answer);
        sendTo(fd_, std::string(1, '\x01'), from);                        // too short
        sendTo(fd_, good.substr(0, 2) + std::string(30, '\xff'), from);  // right id, junk
        auto wrongId = good;
        wrongId[1] = static_cast<char>(wrongId[1] ^ 0x5a);
        sendTo(fd_, wrongId, from);  // id nobody asked
        std::vector<DnsRr> evil;
        if (type == net::kDnsTypePtr) evil.push_back({"", type, "evil.example"});
        auto wrongName = good.substr(0, 2) + dnsMakeReply(0, 0, dnsQuestionOf("evil.example", type), evil).substr(2);
        sendTo(fd_, wrongName, from);  // another question
        auto wrongType = good.substr(0, 2) + dnsMakeReply(0, 0, dnsQuestionOf(name, net::kDnsTypeCname), {}).substr(2);
        sendTo(fd_, wrongType, from);  // another type
        sendTo(spoof_, good, from);    // another source port
        sendTo(fd_, good, from);
        continue;
      }
      sendTo(fd_, answer(query, name, type, mode), from);
    }
  }

  Mode fallback_;
  int fd_ = -1, tcp_ = -1, spoof_ = -1, stop_ = -1;
  std::uint16_t port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::pair<std::string, std::uint16_t>, Entry> entries_;
  std::vector<std::string> seen_, seenTcp_;
  std::vector<Held> held_;
  std::thread thread_;
};

}  // namespace imp::testing
