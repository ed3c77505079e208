#include "imp/core/dns_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <system_error>

namespace imp::core {

namespace {

constexpr std::uint16_t kClassIn = 1;
constexpr std::size_t kHeaderSize = 12;
constexpr std::size_t kMaxNameOctets = 255;  // RFC 1035 2.3.4, wire form
constexpr std::size_t kMaxNameText = 253;    // the same without length octets and root
constexpr std::size_t kMaxLabel = 63;
constexpr int kMaxPointers = 64;  // belt and braces: pointers must go backwards anyway
constexpr int kMaxCnameHops = 8;
// Enough for any real host; bounds the duplicate check on a 64 KiB datagram
// full of records.
constexpr std::size_t kMaxValues = 32;
// Ids are drawn at random among the free ones; keeping the table at most a
// quarter full keeps that cheap and leaves spoofers little to hit. Requests
// beyond it wait in a backlog.
constexpr std::size_t kMaxOutstanding = 16384;

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

char lowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// The form names are compared in: lower-case, without the root dot.
std::string normalName(std::string name) {
  if (!name.empty() && name.back() == '.') name.pop_back();
  std::transform(name.begin(), name.end(), name.begin(), lowerAscii);
  return name;
}

int ipFamily(const std::string& s) {
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) return AF_INET;
  if (inet_pton(AF_INET6, s.c_str(), &a6) == 1) return AF_INET6;
  return 0;
}

// ---- reading the wire format ----

bool readU16(std::string_view w, std::size_t& pos, std::uint16_t& out) {
  if (pos > w.size() || w.size() - pos < 2) return false;
  out = static_cast<std::uint16_t>((static_cast<unsigned char>(w[pos]) << 8) | static_cast<unsigned char>(w[pos + 1]));
  pos += 2;
  return true;
}

// Appends one label byte in zone-file presentation form, so that a label
// holding '.' or a NUL can never compare equal to a different name.
void appendLabelByte(std::string& out, unsigned char c) {
  if (c == '.' || c == '\\') {
    out += '\\';
    out += static_cast<char>(c);
  } else if (c > 0x20 && c < 0x7f) {
    out += lowerAscii(static_cast<char>(c));
  } else {
    char esc[5];
    std::snprintf(esc, sizeof esc, "\\%03u", static_cast<unsigned>(c));
    out += esc;
  }
}

// Decodes the (possibly compressed) name at `pos` into `out`; on success
// `pos` is just past the name as stored there. Every pointer must point into
// the message body before the run of labels that contains it, so each jump
// goes strictly backwards and a loop is impossible; the pointer count and the
// 255-octet limit bound the work further.
bool readName(std::string_view w, std::size_t& pos, std::string& out) {
  out.clear();
  std::size_t p = pos;
  std::size_t runStart = pos;  // where the current run of labels began
  std::size_t resume = 0;      // position after the first pointer
  bool jumped = false;
  std::size_t octets = 0;
  int pointers = 0;
  for (;;) {
    if (p >= w.size()) return false;
    auto len = static_cast<unsigned char>(w[p]);
    if ((len & 0xC0) == 0xC0) {
      if (w.size() - p < 2) return false;
      std::size_t target = (static_cast<std::size_t>(len & 0x3F) << 8) | static_cast<unsigned char>(w[p + 1]);
      if (target < kHeaderSize || target >= runStart || ++pointers > kMaxPointers) return false;
      if (!jumped) resume = p + 2;
      jumped = true;
      p = runStart = target;
      continue;
    }
    if (len & 0xC0) return false;  // 01/10: extended and binary labels, never deployed
    ++p;
    octets += len + 1u;
    if (octets > kMaxNameOctets) return false;
    if (len == 0) break;
    if (w.size() - p < len) return false;
    if (!out.empty()) out += '.';
    for (std::size_t i = 0; i < len; ++i) appendLabelByte(out, static_cast<unsigned char>(w[p + i]));
    p += len;
  }
  pos = jumped ? resume : p;
  return true;
}

// What we hand out as a PTR answer ends up in ACL checks and logs: only host
// names (glibc's res_hnok does the same for getnameinfo).
bool isHostName(const std::string& name) {
  if (name.empty()) return false;
  bool labelStart = true;
  for (char c : name) {
    if (c == '.') {
      if (labelStart) return false;
      labelStart = true;
      continue;
    }
    labelStart = false;
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
  }
  return !labelStart;
}

struct Record {
  std::string owner;
  std::uint16_t type;
  std::string value;  // address text or target name
};

// ---- the resolver thread's view of a request ----

using Clock = std::chrono::steady_clock;

struct Request {
  std::string name;  // normalName() form
  std::uint16_t qtype;
  ReverseCallback reverseCb;  // exactly one of the two is set
  ForwardCallback forwardCb;
};

enum class Outcome { Answer, Negative, NoAnswer };

struct Query {
  Request req;
  std::string wire;
  std::size_t step = 0;  // try number: server step % servers, round step / servers
  Clock::time_point deadline{};
};

struct Server {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int fd = -1;
  std::string label;  // "addr:port" for messages
  bool failing = false;  // the last send to it failed (log once per outage)
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
  if (ipFamily(addr) == 0) throw bad("not an IP address");
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

}  // namespace

// ---- pure functions ----

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

std::string buildDnsQuery(std::uint16_t id, const std::string& name, std::uint16_t qtype) {
  std::string n = name;
  if (!n.empty() && n.back() == '.') n.pop_back();
  if (n.empty() || n.size() > kMaxNameText) return {};
  std::string out;
  out.reserve(kHeaderSize + n.size() + 6);
  auto put16 = [&](std::uint16_t v) {
    out += static_cast<char>(v >> 8);
    out += static_cast<char>(v & 0xFF);
  };
  put16(id);
  put16(0x0100);  // standard query, RD
  put16(1);       // QDCOUNT
  put16(0);
  put16(0);
  put16(0);
  std::size_t start = 0;
  for (;;) {
    auto dot = n.find('.', start);
    auto label = std::string_view(n).substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty() || label.size() > kMaxLabel) return {};
    for (char c : label) {
      auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u >= 0x7f || c == '\\') return {};
    }
    out += static_cast<char>(label.size());
    out += label;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  out += '\0';
  put16(qtype);
  put16(kClassIn);
  return out;
}

std::optional<DnsReply> parseDnsReply(std::string_view w, std::uint16_t qtype) {
  std::size_t pos = 0;
  std::uint16_t id = 0, flags = 0, qd = 0, an = 0, ns = 0, ar = 0;
  if (!readU16(w, pos, id) || !readU16(w, pos, flags) || !readU16(w, pos, qd) || !readU16(w, pos, an) ||
      !readU16(w, pos, ns) || !readU16(w, pos, ar))
    return std::nullopt;
  if (!(flags & 0x8000) || ((flags >> 11) & 0xF) != 0 || qd != 1) return std::nullopt;
  DnsReply r;
  r.id = id;
  r.rcode = flags & 0xF;
  r.truncated = (flags & 0x0200) != 0;
  std::uint16_t qt = 0, qc = 0;
  if (!readName(w, pos, r.question) || !readU16(w, pos, qt) || !readU16(w, pos, qc)) return std::nullopt;
  if (qt != qtype || qc != kClassIn) return std::nullopt;
  if (r.truncated) return r;  // the answer section may be cut anywhere; callers retry

  std::vector<Record> records;
  for (std::uint16_t i = 0; i < an; ++i) {
    Record rec;
    std::uint16_t cls = 0, ttlHi = 0, ttlLo = 0, rdlen = 0;
    if (!readName(w, pos, rec.owner) || !readU16(w, pos, rec.type) || !readU16(w, pos, cls) ||
        !readU16(w, pos, ttlHi) || !readU16(w, pos, ttlLo) || !readU16(w, pos, rdlen))
      return std::nullopt;
    if (w.size() - pos < rdlen) return std::nullopt;
    auto rdata = w.substr(pos, rdlen);
    std::size_t end = pos + rdlen;
    if (cls == kClassIn && (rec.type == qtype || rec.type == kDnsTypeCname)) {
      if (rec.type == kDnsTypeA || rec.type == kDnsTypeAaaa) {
        bool v4 = rec.type == kDnsTypeA;
        if (rdlen != (v4 ? 4u : 16u)) return std::nullopt;
        unsigned char raw[16];
        std::memcpy(raw, rdata.data(), rdlen);
        char text[INET6_ADDRSTRLEN];
        if (!inet_ntop(v4 ? AF_INET : AF_INET6, raw, text, sizeof text)) return std::nullopt;
        rec.value = text;
        records.push_back(std::move(rec));
      } else if (rec.type == kDnsTypePtr || rec.type == kDnsTypeCname) {
        std::size_t p = pos;
        if (!readName(w, p, rec.value) || p != end) return std::nullopt;
        records.push_back(std::move(rec));
      }
    }
    pos = end;
  }

  // Names that stand for the question: itself and its CNAME chain.
  std::vector<std::string> aliases{r.question};
  for (int hop = 0; hop < kMaxCnameHops && qtype != kDnsTypeCname; ++hop) {
    auto it = std::find_if(records.begin(), records.end(),
                           [&](const Record& x) { return x.type == kDnsTypeCname && x.owner == aliases.back(); });
    if (it == records.end() || std::find(aliases.begin(), aliases.end(), it->value) != aliases.end()) break;
    aliases.push_back(it->value);
  }
  for (const auto& rec : records) {
    if (rec.type != qtype || std::find(aliases.begin(), aliases.end(), rec.owner) == aliases.end()) continue;
    if (qtype == kDnsTypePtr && !isHostName(rec.value)) continue;
    if (std::find(r.values.begin(), r.values.end(), rec.value) == r.values.end()) r.values.push_back(rec.value);
    if (r.values.size() == kMaxValues) break;
  }
  return r;
}

std::string reverseName(const std::string& ip) {
  in_addr a4{};
  in6_addr a6{};
  auto v4name = [](const unsigned char* b) {
    return std::to_string(b[3]) + '.' + std::to_string(b[2]) + '.' + std::to_string(b[1]) + '.' + std::to_string(b[0]) +
           ".in-addr.arpa";
  };
  if (inet_pton(AF_INET, ip.c_str(), &a4) == 1) return v4name(reinterpret_cast<const unsigned char*>(&a4));
  if (inet_pton(AF_INET6, ip.c_str(), &a6) != 1) return {};
  const auto* b = reinterpret_cast<const unsigned char*>(&a6);
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  // A v4-mapped peer (dual-stack socket) has its PTR under in-addr.arpa.
  if (std::memcmp(b, kMapped, sizeof kMapped) == 0) return v4name(b + 12);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(72);
  for (int i = 15; i >= 0; --i) {
    out += kHex[b[i] & 0xF];
    out += '.';
    out += kHex[b[i] >> 4];
    out += '.';
  }
  out += "ip6.arpa";
  return out;
}

// ---- the resolver ----
//
// Threads: callers only touch `mu`-guarded `incoming`/`stopping` and wake the
// thread through an eventfd; everything else (sockets, the query table,
// timers) belongs to the resolver thread, so no query ever waits for a lock
// held across I/O.
//
// Known limits: one UDP socket per family, so the source port is fixed for
// the resolver's lifetime and a spoofer must guess only the 16-bit id (plus
// the question); replies are checked as the header says, but there is no
// DNSSEC or 0x20 case randomisation.

struct DnsClientResolver::Impl {
  DnsClientConfig config;
  std::shared_ptr<spdlog::logger> log;
  std::vector<Server> servers;
  int fd4 = -1, fd6 = -1, wake = -1;

  std::mutex mu;
  std::vector<Request> incoming;
  bool stopping = false;

  std::atomic<std::uint64_t> sent{0}, timeouts{0}, ignored{0};

  // resolver thread only
  std::map<std::uint16_t, Query> outstanding;
  std::set<std::pair<Clock::time_point, std::uint16_t>> timers;
  std::deque<Request> backlog;
  std::vector<std::function<void()>> ready;  // callbacks to run outside any bookkeeping
  std::mt19937 fallbackRng{std::random_device{}()};
  std::vector<char> buf = std::vector<char>(65536);

  ~Impl() {
    for (int fd : {fd4, fd6, wake})
      if (fd >= 0) ::close(fd);
  }

  std::size_t tries() const { return servers.size() * config.attempts; }

  // Caller side: hands a request to the thread, or fails it at once when the
  // resolver is shutting down.
  void post(Request r) {
    {
      std::lock_guard lock(mu);
      if (!stopping) {
        incoming.push_back(std::move(r));
        signal();
        return;
      }
    }
    fail(std::move(r))();
  }

  void stop() {
    std::lock_guard lock(mu);
    stopping = true;
    signal();
  }

  void signal() const {
    std::uint64_t one = 1;
    // Can only fail when the counter is about to overflow, and then the
    // thread is already due to wake.
    [[maybe_unused]] auto n = ::write(wake, &one, sizeof one);
  }

  static std::function<void()> deliver(Request r, std::vector<std::string> values) {
    if (r.reverseCb)
      return [cb = std::move(r.reverseCb), v = std::move(values)] {
        cb(v.empty() ? std::nullopt : std::optional<std::string>(v.front()));
      };
    return [cb = std::move(r.forwardCb), v = std::move(values)]() mutable { cb(std::move(v)); };
  }
  static std::function<void()> fail(Request r) { return deliver(std::move(r), {}); }

  std::uint16_t randomId() {
    std::uint16_t v = 0;
    if (::getrandom(&v, sizeof v, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof v)) return v;
    return static_cast<std::uint16_t>(fallbackRng());
  }

  void admit(Request r) {
    if (!backlog.empty() || outstanding.size() >= kMaxOutstanding) {
      backlog.push_back(std::move(r));
      return;
    }
    launch(std::move(r));
  }

  void launch(Request r) {
    std::uint16_t id;
    do id = randomId();
    while (outstanding.count(id));
    auto wire = buildDnsQuery(id, r.name, r.qtype);
    if (wire.empty()) {  // reverse()/forward() checked the name; keep the promise anyway
      ready.push_back(fail(std::move(r)));
      return;
    }
    outstanding.emplace(id, Query{std::move(r), std::move(wire)});
    send(id);
  }

  // Sends the current try of query `id`. A try that cannot even be sent
  // (no route, say) moves on to the next one at once; when none is left the
  // query completes with no answer.
  void send(std::uint16_t id) {
    auto& q = outstanding.at(id);
    while (q.step < tries()) {
      auto& s = servers[q.step % servers.size()];
      auto n = ::sendto(s.fd, q.wire.data(), q.wire.size(), 0, reinterpret_cast<const sockaddr*>(&s.addr), s.len);
      int err = errno;
      // A full socket buffer loses the datagram as the network might: wait.
      if (n >= 0 || err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == EINTR) {
        if (n >= 0) ++sent;
        if (s.failing && log) log->info("dns client: sending to {} works again", s.label);
        s.failing = false;
        q.deadline = Clock::now() + config.timeout;
        timers.emplace(q.deadline, id);
        return;
      }
      // Once per outage, not once per query.
      if (!s.failing && log) log->warn("dns client: sending to {} fails: {}", s.label, std::strerror(err));
      s.failing = true;
      ++q.step;
    }
    complete(id, Outcome::NoAnswer, {});
  }

  void nextTry(std::uint16_t id) {
    auto& q = outstanding.at(id);
    timers.erase({q.deadline, id});
    ++q.step;
    send(id);
  }

  void complete(std::uint16_t id, Outcome outcome, std::vector<std::string> values) {
    auto node = outstanding.extract(id);
    Query& q = node.mapped();
    timers.erase({q.deadline, id});
    if (q.req.qtype == kDnsTypeA && outcome == Outcome::Answer && values.empty()) {
      // The name exists without IPv4 addresses: it may have IPv6 ones.
      q.req.qtype = kDnsTypeAaaa;
      launch(std::move(q.req));  // the id just freed makes room
      return;
    }
    ready.push_back(deliver(std::move(q.req), std::move(values)));
  }

  void expire() {
    auto now = Clock::now();
    while (!timers.empty() && timers.begin()->first <= now) {
      auto id = timers.begin()->second;
      ++timeouts;
      nextTry(id);  // re-arms with a deadline after `now`, or completes
    }
  }

  void receive(int fd) {
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
      handle(std::string_view(buf.data(), static_cast<std::size_t>(n)), from, fromLen);
    }
  }

  void handle(std::string_view dgram, const sockaddr_storage& from, socklen_t fromLen) {
    if (dgram.size() < 2) {
      ++ignored;
      return;
    }
    auto id = static_cast<std::uint16_t>((static_cast<unsigned char>(dgram[0]) << 8) | static_cast<unsigned char>(dgram[1]));
    auto it = outstanding.find(id);
    if (it == outstanding.end() || !sameEndpoint(from, fromLen, servers[it->second.step % servers.size()])) {
      ++ignored;
      return;
    }
    auto reply = parseDnsReply(dgram, it->second.req.qtype);
    if (!reply || reply->question != it->second.req.name) {
      ++ignored;
      return;
    }
    if (reply->truncated) {
      nextTry(id);  // no TCP fallback (see the header)
    } else if (reply->rcode == kDnsRcodeNoError) {
      complete(id, Outcome::Answer, std::move(reply->values));
    } else if (reply->rcode == kDnsRcodeNxDomain) {
      complete(id, Outcome::Negative, {});
    } else {
      nextTry(id);  // SERVFAIL, REFUSED, ...: another server may do better
    }
  }

  void runReady() {
    auto batch = std::move(ready);
    ready.clear();
    for (auto& f : batch) {
      try {
        f();
      } catch (const std::exception& e) {
        if (log) log->error("dns client: a lookup callback threw: {}", e.what());
      } catch (...) {
        if (log) log->error("dns client: a lookup callback threw a non-standard exception");
      }
    }
  }

  void shutdown(std::vector<Request> fresh) {
    for (auto& r : fresh) ready.push_back(fail(std::move(r)));
    for (auto& r : backlog) ready.push_back(fail(std::move(r)));
    backlog.clear();
    for (auto& [id, q] : outstanding) ready.push_back(fail(std::move(q.req)));
    outstanding.clear();
    timers.clear();
    runReady();
  }

  int pollTimeout() const {
    if (timers.empty()) return -1;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(timers.begin()->first - Clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
  }

  void run() {
    std::vector<pollfd> fds{{wake, POLLIN, 0}};
    for (int fd : {fd4, fd6})
      if (fd >= 0) fds.push_back({fd, POLLIN, 0});
    for (;;) {
      std::vector<Request> fresh;
      bool stop = false;
      {
        std::lock_guard lock(mu);
        fresh.swap(incoming);
        stop = stopping;
      }
      if (stop) {
        shutdown(std::move(fresh));
        return;
      }
      for (auto& r : fresh) admit(std::move(r));
      while (!backlog.empty() && outstanding.size() < kMaxOutstanding) {
        auto r = std::move(backlog.front());
        backlog.pop_front();
        launch(std::move(r));
      }
      expire();
      runReady();

      for (auto& p : fds) p.revents = 0;
      if (::poll(fds.data(), fds.size(), pollTimeout()) < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), "dns client: poll failed");
      }
      if (fds[0].revents) {
        std::uint64_t count = 0;
        [[maybe_unused]] auto n = ::read(wake, &count, sizeof count);
      }
      for (std::size_t i = 1; i < fds.size(); ++i)
        if (fds[i].revents) receive(fds[i].fd);
    }
  }
};

DnsClientResolver::DnsClientResolver(DnsClientConfig config, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_shared<Impl>()) {
  if (config.servers.empty()) throw std::invalid_argument("dns client: no servers configured");
  if (config.timeout.count() <= 0) throw std::invalid_argument("dns client: timeout must be positive");
  if (config.attempts == 0) throw std::invalid_argument("dns client: attempts must be at least 1");
  auto& im = *impl_;
  im.log = std::move(log);
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
      fd = &im.fd4;
    } else if (inet_pton(AF_INET6, s.address.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(s.port);
      srv.len = sizeof(sockaddr_in6);
      fd = &im.fd6;
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
    im.servers.push_back(std::move(srv));
  }
  im.wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (im.wake < 0) throw std::system_error(errno, std::generic_category(), "dns client: cannot create an eventfd");
  im.config = std::move(config);
  thread_ = std::thread([impl = impl_] {
    try {
      impl->run();
    } catch (const std::exception& e) {
      // Only poll() failing or memory running out get here; callers would
      // wait forever for their callbacks, so stop loudly instead.
      if (impl->log) impl->log->critical("dns client: resolver thread failed: {}", e.what());
      std::fprintf(stderr, "dns client: resolver thread failed: %s\n", e.what());
      std::abort();
    }
  });
}

DnsClientResolver::~DnsClientResolver() {
  impl_->stop();
  if (!thread_.joinable()) return;
  // Dropped from inside one of our own callbacks: the thread cannot join
  // itself; it fails what is left and ends on its own, holding `impl_`.
  if (thread_.get_id() == std::this_thread::get_id())
    thread_.detach();
  else
    thread_.join();
}

void DnsClientResolver::reverse(const std::string& ip, ReverseCallback cb) {
  auto name = reverseName(ip);
  if (name.empty()) {
    cb(std::nullopt);
    return;
  }
  impl_->post(Request{std::move(name), kDnsTypePtr, std::move(cb), {}});
}

void DnsClientResolver::forward(const std::string& host, ForwardCallback cb) {
  if (ipFamily(host) != 0) {
    cb({host});
    return;
  }
  auto name = normalName(host);
  if (name.empty() || name.back() == '.' || buildDnsQuery(0, name, kDnsTypeA).empty()) {
    cb({});
    return;
  }
  impl_->post(Request{std::move(name), kDnsTypeA, {}, std::move(cb)});
}

DnsClientStats DnsClientResolver::stats() const {
  return DnsClientStats{impl_->sent.load(), impl_->timeouts.load(), impl_->ignored.load()};
}

}  // namespace imp::core
