#include <doctest/doctest.h>
#include <imp/core/dns_client.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

using namespace imp::core;
using namespace std::chrono_literals;

namespace {

constexpr auto kWait = 10s;  // upper bound for anything that should happen

void put16(std::string& s, std::uint16_t v) {
  s += static_cast<char>(v >> 8);
  s += static_cast<char>(v & 0xFF);
}

std::string encodeName(const std::string& name) {
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

std::string rdataFor(std::uint16_t type, const std::string& value) {
  if (type == kDnsTypeA) {
    in_addr a{};
    REQUIRE(inet_pton(AF_INET, value.c_str(), &a) == 1);
    return std::string(reinterpret_cast<const char*>(&a), 4);
  }
  if (type == kDnsTypeAaaa) {
    in6_addr a{};
    REQUIRE(inet_pton(AF_INET6, value.c_str(), &a) == 1);
    return std::string(reinterpret_cast<const char*>(&a), 16);
  }
  return encodeName(value);  // PTR, CNAME
}

struct Rr {
  std::string owner;  // "" = compression pointer to the question name
  std::uint16_t type;
  std::string value;
};

// A reply to `question` (name as asked, already encoded, + type + class),
// with answer records built from `answers`.
std::string makeReply(std::uint16_t id, int rcode, const std::string& question, const std::vector<Rr>& answers,
                      std::uint16_t extraFlags = 0) {
  std::string m;
  put16(m, id);
  put16(m, static_cast<std::uint16_t>(0x8180 | extraFlags | rcode));  // QR RD RA
  put16(m, 1);
  put16(m, static_cast<std::uint16_t>(answers.size()));
  put16(m, 0);
  put16(m, 0);
  m += question;
  for (const auto& a : answers) {
    if (a.owner.empty()) {
      put16(m, 0xC00C);
    } else {
      m += encodeName(a.owner);
    }
    put16(m, a.type);
    put16(m, 1);
    put16(m, 0);
    put16(m, 60);
    auto rd = rdataFor(a.type, a.value);
    put16(m, static_cast<std::uint16_t>(rd.size()));
    m += rd;
  }
  return m;
}

std::string questionOf(const std::string& name, std::uint16_t type) {
  std::string q = encodeName(name);
  put16(q, type);
  put16(q, 1);
  return q;
}

// An in-process DNS server on 127.0.0.1 for the resolver tests.
class FakeDns {
 public:
  enum class Mode { Answer, NxDomain, ServFail, Silent, Hold, Garbage, Truncated, UpperCase };
  struct Entry {
    Mode mode = Mode::Answer;
    std::vector<std::string> values;  // PTR names or addresses, type as asked
  };

  explicit FakeDns(Mode fallback = Mode::NxDomain) : fallback_(fallback) {
    fd_ = bound();
    spoof_ = bound();
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    REQUIRE(stop_ >= 0);
    sockaddr_in a{};
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeDns() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_, &one, sizeof one);
    thread_.join();
    ::close(fd_);
    ::close(spoof_);
    ::close(stop_);
  }
  FakeDns(const FakeDns&) = delete;
  FakeDns& operator=(const FakeDns&) = delete;

  DnsServer server() const { return {"127.0.0.1", port_}; }

  void set(const std::string& name, std::uint16_t type, Entry e) {
    std::lock_guard l(mu_);
    entries_[{name, type}] = std::move(e);
  }
  int queries(const std::string& name) {
    std::lock_guard l(mu_);
    return static_cast<int>(std::count(seen_.begin(), seen_.end(), name));
  }
  // Waits (with a deadline) until `name` was asked at least `n` times; the count.
  int queriesAtLeast(const std::string& name, int n) {
    std::unique_lock l(mu_);
    cv_.wait_for(l, kWait, [&] { return std::count(seen_.begin(), seen_.end(), name) >= n; });
    return static_cast<int>(std::count(seen_.begin(), seen_.end(), name));
  }
  int totalQueries() {
    std::lock_guard l(mu_);
    return static_cast<int>(seen_.size());
  }
  bool waitForQuery(const std::string& name) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, kWait, [&] { return std::count(seen_.begin(), seen_.end(), name) > 0; });
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

  static int bound() {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
  }
  static void sendTo(int fd, const std::string& m, const sockaddr_in& to) {
    ::sendto(fd, m.data(), m.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }

  std::string answer(const std::string& query, const std::string& name, std::uint16_t type, Mode mode) {
    std::vector<std::string> values;
    {
      std::lock_guard l(mu_);
      auto it = entries_.find({name, type});
      if (it != entries_.end()) values = it->second.values;
    }
    auto id = static_cast<std::uint16_t>((static_cast<unsigned char>(query[0]) << 8) | static_cast<unsigned char>(query[1]));
    std::string question = query.substr(12);
    if (mode == Mode::NxDomain) return makeReply(id, kDnsRcodeNxDomain, question, {});
    if (mode == Mode::ServFail) return makeReply(id, kDnsRcodeServFail, question, {});
    if (mode == Mode::Truncated) return makeReply(id, 0, question, {}, 0x0200);
    if (mode == Mode::UpperCase)
      std::transform(question.begin(), question.end(), question.begin(), [](unsigned char c) { return std::toupper(c); });
    std::vector<Rr> rrs;
    for (const auto& v : values) rrs.push_back({"", type, v});
    return makeReply(id, 0, question, rrs);
  }

  void run() {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_, POLLIN, 0}};
    char buf[1500];
    for (;;) {
      if (::poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents) return;
      sockaddr_in from{};
      socklen_t len = sizeof from;
      auto n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 17) continue;
      std::string query(buf, static_cast<std::size_t>(n));
      // The resolver sends uncompressed lower-case names.
      std::string name;
      std::size_t p = 12;
      while (p < query.size() && query[p] != 0) {
        auto l = static_cast<unsigned char>(query[p]);
        if (!name.empty()) name += '.';
        name += query.substr(p + 1, l);
        p += l + 1u;
      }
      if (p + 3 > query.size()) continue;
      auto type = static_cast<std::uint16_t>((static_cast<unsigned char>(query[p + 1]) << 8) | static_cast<unsigned char>(query[p + 2]));
      Mode mode = fallback_;
      {
        std::lock_guard l(mu_);
        seen_.push_back(name);
        auto it = entries_.find({name, type});
        if (it != entries_.end()) mode = it->second.mode;
        if (mode == Mode::Hold) held_.push_back({query, name, type, from});
      }
      cv_.notify_all();
      if (mode == Mode::Silent || mode == Mode::Hold) continue;
      if (mode == Mode::Garbage) {
        auto good = answer(query, name, type, Mode::Answer);
        sendTo(fd_, std::string(1, '\x01'), from);                               // too short
        sendTo(fd_, good.substr(0, 2) + std::string(30, '\xff'), from);         // right id, junk
        auto wrongId = good;
        wrongId[1] = static_cast<char>(wrongId[1] ^ 0x5a);
        sendTo(fd_, wrongId, from);                                              // id nobody asked
        std::vector<Rr> evil;
        if (type == kDnsTypePtr) evil.push_back({"", type, "evil.example"});
        auto wrongName = good.substr(0, 2) + makeReply(0, 0, questionOf("evil.example", type), evil).substr(2);
        sendTo(fd_, wrongName, from);                                            // another question
        auto wrongType = good.substr(0, 2) + makeReply(0, 0, questionOf(name, kDnsTypeCname), {}).substr(2);
        sendTo(fd_, wrongType, from);                                            // another type
        sendTo(spoof_, good, from);                                              // another source port
        sendTo(fd_, good, from);
        continue;
      }
      sendTo(fd_, answer(query, name, type, mode), from);
    }
  }

  Mode fallback_;
  int fd_ = -1, spoof_ = -1, stop_ = -1;
  std::uint16_t port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::pair<std::string, std::uint16_t>, Entry> entries_;
  std::vector<std::string> seen_;
  std::vector<Held> held_;
  std::thread thread_;
};

// Collects one callback's result and counts the calls (exactly once).
template <class T>
struct Result {
  std::shared_ptr<std::promise<T>> promise = std::make_shared<std::promise<T>>();
  std::shared_future<T> future = promise->get_future().share();
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  auto callback() {
    return [p = promise, c = calls](T v) {
      if (c->fetch_add(1) == 0) p->set_value(std::move(v));
    };
  }
  T get() {
    REQUIRE(future.wait_for(kWait) == std::future_status::ready);
    return future.get();
  }
  bool done() const { return future.wait_for(0s) == std::future_status::ready; }
};
using ReverseResult = Result<std::optional<std::string>>;
using ForwardResult = Result<std::vector<std::string>>;

DnsClientConfig configFor(std::vector<DnsServer> servers, std::chrono::milliseconds timeout = 5000ms, unsigned attempts = 1) {
  return DnsClientConfig{std::move(servers), timeout, attempts};
}

}  // namespace

TEST_CASE("buildDnsQuery: wire format with RD set, refuses names it cannot encode") {
  auto q = buildDnsQuery(0x1234, "Ab.c.", kDnsTypePtr);
  CHECK(q == std::string("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x02"
                         "Ab\x01"
                         "c\x00\x00\x0c\x00\x01",
                         12 + 6 + 4));
  CHECK(buildDnsQuery(1, "", kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, ".", kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, "a..b", kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, ".a", kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, std::string(63, 'a') + ".b", kDnsTypeA).size() == 12 + 1 + 63 + 2 + 1 + 4);
  CHECK(buildDnsQuery(1, std::string(64, 'a') + ".b", kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, "a b.c", kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, "a\\.b", kDnsTypeA).empty());
  std::string longName;
  while (longName.size() < 260) longName += "abcdefghi.";
  longName.resize(253);
  CHECK_FALSE(buildDnsQuery(1, longName, kDnsTypeA).empty());
  CHECK(buildDnsQuery(1, longName + "x", kDnsTypeA).empty());
}

TEST_CASE("reverseName: in-addr.arpa, nibbles under ip6.arpa, v4-mapped as IPv4") {
  CHECK(reverseName("192.0.2.1") == "1.2.0.192.in-addr.arpa");
  CHECK(reverseName("2001:db8::567:89ab") == "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  CHECK(reverseName("::ffff:192.0.2.7") == "7.2.0.192.in-addr.arpa");
  CHECK(reverseName("example.com").empty());
  CHECK(reverseName("192.0.2.256").empty());
  CHECK(reverseName("").empty());
}

TEST_CASE("parseDnsServers: accepted forms") {
  auto s = parseDnsServers(" 10.0.0.2, 10.0.0.3:5353,[2001:db8::1]:53 , 2001:db8::2,[::1]");
  REQUIRE(s.size() == 5);
  CHECK(s[0].address == "10.0.0.2");
  CHECK(s[0].port == 53);
  CHECK(s[1].address == "10.0.0.3");
  CHECK(s[1].port == 5353);
  CHECK(s[2].address == "2001:db8::1");
  CHECK(s[2].port == 53);
  CHECK(s[3].address == "2001:db8::2");
  CHECK(s[3].port == 53);
  CHECK(s[4].address == "::1");
  CHECK(s[4].port == 53);
  CHECK(parseDnsServers("").empty());
  CHECK(parseDnsServers("  ").empty());
  CHECK(parseDnsServers("127.0.0.1:65535").at(0).port == 65535);
}

TEST_CASE("parseDnsServers: refused elements are named in the message") {
  auto message = [](const std::string& list) -> std::string {
    try {
      parseDnsServers(list);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  CHECK(message("10.0.0.2, dns.example") == "dns server 'dns.example': not an IP address");
  CHECK(message("10.0.0.3:0") == "dns server '10.0.0.3:0': port out of range 1..65535");
  CHECK(message("10.0.0.3:65536") == "dns server '10.0.0.3:65536': port out of range 1..65535");
  CHECK(message("10.0.0.3:99999999999999999999999") ==
        "dns server '10.0.0.3:99999999999999999999999': port out of range 1..65535");
  CHECK(message("10.0.0.3:dns") == "dns server '10.0.0.3:dns': port 'dns' is not a number");
  CHECK(message("10.0.0.3:") == "dns server '10.0.0.3:': missing port after ':'");
  CHECK(message("[2001:db8::1") == "dns server '[2001:db8::1': missing ']'");
  CHECK(message("[2001:db8::1]53") == "dns server '[2001:db8::1]53': expected ':port' after ']'");
  CHECK(message("[dns.example]:53") == "dns server '[dns.example]:53': not an IP address");
  CHECK(message("10.0.0.256") == "dns server '10.0.0.256': not an IP address");
  CHECK(message("10.0.0.2,,10.0.0.3") == "dns server list '10.0.0.2,,10.0.0.3': empty element");
  CHECK(message("10.0.0.2,") == "dns server list '10.0.0.2,': empty element");
}

TEST_CASE("parseDnsReply: answers, compression, CNAME chains") {
  auto q = questionOf("1.2.0.192.in-addr.arpa", kDnsTypePtr);
  auto r = parseDnsReply(makeReply(7, 0, q, {{"", kDnsTypePtr, "Lync.Example.COM"}, {"", kDnsTypePtr, "lync.example.com"},
                                             {"", kDnsTypePtr, "bad name.example"}, {"other.arpa", kDnsTypePtr, "x.example"}}),
                         kDnsTypePtr);
  REQUIRE(r);
  CHECK(r->id == 7);
  CHECK(r->rcode == 0);
  CHECK(r->question == "1.2.0.192.in-addr.arpa");
  CHECK(r->values == std::vector<std::string>{"lync.example.com"});  // deduplicated; not a host name; not the owner
  CHECK_FALSE(r->truncated);

  // RFC 2317 style: the PTR hangs off a CNAME target.
  r = parseDnsReply(makeReply(1, 0, q, {{"", kDnsTypeCname, "1.0/25.2.0.192.in-addr.arpa"},
                                        {"1.0/25.2.0.192.in-addr.arpa", kDnsTypePtr, "h.example"}}),
                    kDnsTypePtr);
  REQUIRE(r);
  CHECK(r->values == std::vector<std::string>{"h.example"});

  auto qa = questionOf("www.example.com", kDnsTypeA);
  r = parseDnsReply(makeReply(2, 0, qa, {{"", kDnsTypeCname, "web.example.net"}, {"web.example.net", kDnsTypeA, "192.0.2.5"},
                                         {"web.example.net", kDnsTypeA, "192.0.2.6"}, {"x.example", kDnsTypeA, "192.0.2.66"}}),
                    kDnsTypeA);
  REQUIRE(r);
  CHECK(r->values == std::vector<std::string>{"192.0.2.5", "192.0.2.6"});

  auto q6 = questionOf("www.example.com", kDnsTypeAaaa);
  r = parseDnsReply(makeReply(3, 0, q6, {{"", kDnsTypeAaaa, "2001:db8::5"}}), kDnsTypeAaaa);
  REQUIRE(r);
  CHECK(r->values == std::vector<std::string>{"2001:db8::5"});

  r = parseDnsReply(makeReply(4, kDnsRcodeNxDomain, qa, {}), kDnsTypeA);
  REQUIRE(r);
  CHECK(r->rcode == kDnsRcodeNxDomain);
  CHECK(r->values.empty());

  r = parseDnsReply(makeReply(5, 0, qa, {}, 0x0200), kDnsTypeA);
  REQUIRE(r);
  CHECK(r->truncated);

  // A question label holding a dot cannot pass for the dotted name.
  std::string oq("\x03" "a.b\x07" "example", 12);
  oq += '\0';
  put16(oq, kDnsTypeA);
  put16(oq, 1);
  r = parseDnsReply(makeReply(6, 0, oq, {}), kDnsTypeA);
  REQUIRE(r);
  CHECK(r->question == "a\\.b.example");
}

TEST_CASE("parseDnsReply: truncated and malicious input gives nullopt") {
  auto qa = questionOf("www.example.com", kDnsTypeA);
  auto good = makeReply(9, 0, qa, {{"", kDnsTypeA, "192.0.2.1"}});
  REQUIRE(parseDnsReply(good, kDnsTypeA));
  for (std::size_t n = 0; n < good.size(); ++n) CHECK_FALSE(parseDnsReply(std::string_view(good).substr(0, n), kDnsTypeA));

  CHECK_FALSE(parseDnsReply(good, kDnsTypeAaaa));  // another question type
  auto notReply = good;
  notReply[2] = static_cast<char>(notReply[2] & 0x7f);
  CHECK_FALSE(parseDnsReply(notReply, kDnsTypeA));
  auto twoQuestions = good;
  twoQuestions[5] = 2;
  CHECK_FALSE(parseDnsReply(twoQuestions, kDnsTypeA));

  auto header = good.substr(0, 12);
  header[7] = 0;  // no answers: only the question is at stake
  auto withName = [&](const std::string& name) { return header + name + std::string("\x00\x01\x00\x01", 4); };
  REQUIRE(parseDnsReply(withName(encodeName("www.example.com")), kDnsTypeA));
  // pointer to itself (offset 12)
  CHECK_FALSE(parseDnsReply(withName(std::string("\xc0\x0c", 2)), kDnsTypeA));
  // two pointers pointing at each other: label run at 12 ends in a pointer to 14, 14 points to 12
  CHECK_FALSE(parseDnsReply(withName(std::string("\xc0\x0e\xc0\x0c", 4)), kDnsTypeA));
  // label then pointer back to the start of the same run: a loop
  CHECK_FALSE(parseDnsReply(withName(std::string("\x01" "a\xc0\x0c", 4)), kDnsTypeA));
  // pointer out of range, into the header, forwards
  CHECK_FALSE(parseDnsReply(withName(std::string("\xff\xff", 2)), kDnsTypeA));
  CHECK_FALSE(parseDnsReply(withName(std::string("\xc0\x02", 2)), kDnsTypeA));
  CHECK_FALSE(parseDnsReply(withName(std::string("\xc0\x10", 2)), kDnsTypeA));
  // pointer cut in half
  CHECK_FALSE(parseDnsReply(header + std::string("\xc0", 1), kDnsTypeA));
  // label types 01 and 10
  CHECK_FALSE(parseDnsReply(withName(std::string("\x41" "a\x00", 3)), kDnsTypeA));
  CHECK_FALSE(parseDnsReply(withName(std::string("\x81" "a\x00", 3)), kDnsTypeA));
  // label longer than the message
  CHECK_FALSE(parseDnsReply(withName(std::string("\x3f" "abc", 4)), kDnsTypeA));
  // name over 255 octets: five labels of 63
  std::string longName;
  for (int i = 0; i < 5; ++i) longName += static_cast<char>(63) + std::string(63, 'a');
  longName += '\0';
  CHECK_FALSE(parseDnsReply(withName(longName), kDnsTypeA));

  // answer record: pointer loop in its owner, rdata past the end, bad A length
  auto q = header + qa;
  q[7] = 1;  // ANCOUNT
  auto rec = [&](const std::string& owner, std::uint16_t type, std::uint16_t rdlen, const std::string& rdata) {
    std::string m = q + owner;
    put16(m, type);
    put16(m, 1);
    put16(m, 0);
    put16(m, 60);
    put16(m, rdlen);
    return m + rdata;
  };
  auto loopAt = static_cast<char>(q.size());
  CHECK_FALSE(parseDnsReply(rec(std::string("\xc0", 1) + loopAt, kDnsTypeA, 4, std::string(4, 'x')), kDnsTypeA));
  CHECK_FALSE(parseDnsReply(rec(std::string("\xc0\x0c", 2), kDnsTypeA, 400, std::string(4, 'x')), kDnsTypeA));
  CHECK_FALSE(parseDnsReply(rec(std::string("\xc0\x0c", 2), kDnsTypeA, 3, std::string(3, 'x')), kDnsTypeA));
  CHECK(parseDnsReply(rec(std::string("\xc0\x0c", 2), kDnsTypeA, 4, std::string(4, 'x')), kDnsTypeA));
  // PTR rdata whose name runs past its rdlength, or ends early
  auto qp = header + questionOf("1.2.0.192.in-addr.arpa", kDnsTypePtr);
  qp[7] = 1;
  auto ptrRec = [&](std::uint16_t rdlen, const std::string& rdata) {
    std::string m = qp + std::string("\xc0\x0c", 2);
    put16(m, kDnsTypePtr);
    put16(m, 1);
    put16(m, 0);
    put16(m, 60);
    put16(m, rdlen);
    return m + rdata;
  };
  CHECK(parseDnsReply(ptrRec(3, std::string("\x01" "a\x00", 3)), kDnsTypePtr));
  CHECK_FALSE(parseDnsReply(ptrRec(2, std::string("\x01" "a\x00", 3)), kDnsTypePtr));
  CHECK_FALSE(parseDnsReply(ptrRec(4, std::string("\x01" "a\x00\x00", 4)), kDnsTypePtr));
  // PTR pointing at itself
  auto selfAt = static_cast<char>(qp.size() + 12);
  CHECK_FALSE(parseDnsReply(ptrRec(2, std::string("\xc0", 1) + selfAt), kDnsTypePtr));
}

TEST_CASE("DnsClientResolver: PTR answer") {
  FakeDns dns;
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Answer, {"Lync.Example.com."}});
  DnsClientResolver r(configFor({dns.server()}));
  ReverseResult res;
  r.reverse("192.0.2.1", res.callback());
  CHECK(res.get() == "lync.example.com");
  CHECK(*res.calls == 1);
  CHECK(r.stats().sent == 1);
  CHECK(r.stats().ignored == 0);
}

TEST_CASE("DnsClientResolver: A answer, AAAA when there is no A, IP literals answer themselves") {
  FakeDns dns;
  dns.set("sip.example.com", kDnsTypeA, {FakeDns::Mode::Answer, {"192.0.2.10", "192.0.2.11"}});
  dns.set("v6only.example.com", kDnsTypeA, {FakeDns::Mode::Answer, {}});
  dns.set("v6only.example.com", kDnsTypeAaaa, {FakeDns::Mode::Answer, {"2001:db8::10"}});
  DnsClientResolver r(configFor({dns.server()}));

  ForwardResult a, six, literal, invalid;
  r.forward("SIP.example.com.", a.callback());
  r.forward("v6only.example.com", six.callback());
  r.forward("192.0.2.99", literal.callback());
  CHECK(literal.done());  // synchronously
  CHECK(literal.get() == std::vector<std::string>{"192.0.2.99"});
  r.forward("bad..name", invalid.callback());
  CHECK(invalid.done());
  CHECK(invalid.get().empty());
  CHECK(a.get() == std::vector<std::string>{"192.0.2.10", "192.0.2.11"});
  CHECK(six.get() == std::vector<std::string>{"2001:db8::10"});
  CHECK(dns.queries("sip.example.com") == 1);     // A only
  CHECK(dns.queries("v6only.example.com") == 2);  // A, then AAAA
}

TEST_CASE("DnsClientResolver: NXDOMAIN completes negative at once, without retries") {
  FakeDns first(FakeDns::Mode::NxDomain), second(FakeDns::Mode::Silent);
  DnsClientResolver r(configFor({first.server(), second.server()}, 5000ms, 3));
  ReverseResult res;
  ForwardResult fwd;
  r.reverse("192.0.2.1", res.callback());
  r.forward("nowhere.example", fwd.callback());
  CHECK_FALSE(res.get());
  CHECK(fwd.get().empty());
  CHECK(first.queries("1.2.0.192.in-addr.arpa") == 1);
  CHECK(first.queries("nowhere.example") == 1);  // no AAAA after NXDOMAIN
  CHECK(second.totalQueries() == 0);
}

TEST_CASE("DnsClientResolver: a silent server gives no answer after attempts x timeout") {
  FakeDns dns(FakeDns::Mode::Silent);
  DnsClientResolver r(configFor({dns.server()}, 100ms, 2));
  auto started = std::chrono::steady_clock::now();
  ReverseResult res;
  r.reverse("192.0.2.1", res.callback());
  CHECK_FALSE(res.get());
  CHECK(std::chrono::steady_clock::now() - started >= 200ms);
  CHECK(*res.calls == 1);
  CHECK(dns.queriesAtLeast("1.2.0.192.in-addr.arpa", 2) == 2);
  CHECK(r.stats().sent == 2);
  CHECK(r.stats().timeouts == 2);
}

TEST_CASE("DnsClientResolver: the next server is used when one is silent, fails or truncates") {
  FakeDns silent(FakeDns::Mode::Silent), servfail(FakeDns::Mode::ServFail), truncating(FakeDns::Mode::Truncated), good;
  good.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Answer, {"a.example"}});

  SUBCASE("silent") {
    DnsClientResolver r(configFor({silent.server(), good.server()}, 100ms, 2));
    ReverseResult res;
    r.reverse("192.0.2.1", res.callback());
    CHECK(res.get() == "a.example");
    CHECK(silent.queriesAtLeast("1.2.0.192.in-addr.arpa", 1) == 1);
    CHECK(r.stats().timeouts == 1);
  }
  SUBCASE("SERVFAIL and TC move on without waiting for the timeout") {
    // A timeout this long would fail the test's wait if it were waited for.
    DnsClientResolver r(configFor({servfail.server(), truncating.server(), good.server()}, 60000ms, 1));
    ReverseResult res;
    r.reverse("192.0.2.1", res.callback());
    CHECK(res.get() == "a.example");
    CHECK(servfail.totalQueries() == 1);
    CHECK(truncating.totalQueries() == 1);
    CHECK(r.stats().timeouts == 0);
  }
}

TEST_CASE("DnsClientResolver: a stalled lookup does not delay a later one (RT-8)") {
  FakeDns dns;
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Hold, {"slow.example"}});
  dns.set("2.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Answer, {"fast.example"}});
  DnsClientResolver r(configFor({dns.server()}, 60000ms, 1));
  std::mutex mu;
  std::vector<std::string> order;
  ReverseResult slow, fast;
  r.reverse("192.0.2.1", [&, cb = slow.callback()](std::optional<std::string> n) {
    {
      std::lock_guard l(mu);
      order.push_back("slow");
    }
    cb(std::move(n));
  });
  REQUIRE(dns.waitForQuery("1.2.0.192.in-addr.arpa"));  // the slow one is out and stalled
  r.reverse("192.0.2.2", [&, cb = fast.callback()](std::optional<std::string> n) {
    {
      std::lock_guard l(mu);
      order.push_back("fast");
    }
    cb(std::move(n));
  });
  CHECK(fast.get() == "fast.example");
  CHECK_FALSE(slow.done());
  dns.release("1.2.0.192.in-addr.arpa");
  CHECK(slow.get() == "slow.example");
  std::lock_guard l(mu);
  CHECK(order == std::vector<std::string>{"fast", "slow"});
}

TEST_CASE("DnsClientResolver: garbage, wrong id, wrong question and wrong source are ignored") {
  FakeDns dns;
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Garbage, {"real.example"}});
  dns.set("www.example.com", kDnsTypeA, {FakeDns::Mode::Garbage, {"192.0.2.80"}});
  DnsClientResolver r(configFor({dns.server()}));
  ReverseResult res;
  r.reverse("192.0.2.1", res.callback());
  CHECK(res.get() == "real.example");
  CHECK(r.stats().ignored == 6);
  ForwardResult fwd;
  r.forward("www.example.com", fwd.callback());
  CHECK(fwd.get() == std::vector<std::string>{"192.0.2.80"});
  CHECK(r.stats().ignored == 12);
  CHECK(r.stats().sent == 2);
}

TEST_CASE("DnsClientResolver: the question is compared case-insensitively") {
  FakeDns dns;
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::UpperCase, {"x.example"}});
  DnsClientResolver r(configFor({dns.server()}));
  ReverseResult res;
  r.reverse("192.0.2.1", res.callback());
  CHECK(res.get() == "x.example");
}

TEST_CASE("DnsClientResolver: many concurrent lookups") {
  FakeDns dns;
  constexpr int kCount = 300;
  for (int i = 0; i < kCount; ++i)
    dns.set(reverseName("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256)), kDnsTypePtr,
            {FakeDns::Mode::Answer, {"h" + std::to_string(i) + ".example"}});
  // Short timeout, several tries: a datagram dropped by a full socket buffer is retried.
  DnsClientResolver r(configFor({dns.server()}, 300ms, 5));
  std::vector<ReverseResult> results(kCount);
  for (int i = 0; i < kCount; ++i)
    r.reverse("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), results[static_cast<std::size_t>(i)].callback());
  for (int i = 0; i < kCount; ++i) {
    auto& res = results[static_cast<std::size_t>(i)];
    CHECK(res.get() == "h" + std::to_string(i) + ".example");
    CHECK(*res.calls == 1);
  }
  CHECK(r.stats().sent >= kCount);
}

TEST_CASE("DnsClientResolver: destruction completes outstanding lookups with no answer, once") {
  FakeDns dns(FakeDns::Mode::Silent);
  ReverseResult rev;
  ForwardResult fwd;
  {
    DnsClientResolver r(configFor({dns.server()}, 60000ms, 1));
    r.reverse("192.0.2.1", rev.callback());
    r.forward("www.example.com", fwd.callback());
    REQUIRE(dns.waitForQuery("www.example.com"));
  }
  CHECK(rev.done());
  CHECK(fwd.done());
  CHECK_FALSE(rev.get());
  CHECK(fwd.get().empty());
  CHECK(*rev.calls == 1);
  CHECK(*fwd.calls == 1);
}

TEST_CASE("DnsClientResolver: the last reference may be dropped inside a callback") {
  FakeDns dns;
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Hold, {}});
  dns.set("2.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Hold, {"b.example"}});
  auto r = std::make_shared<DnsClientResolver>(configFor({dns.server()}, 60000ms, 1));
  ReverseResult pending, last;
  r->reverse("192.0.2.1", pending.callback());
  REQUIRE(dns.waitForQuery("1.2.0.192.in-addr.arpa"));
  r->reverse("192.0.2.2", [keep = r, cb = last.callback()](std::optional<std::string> n) { cb(std::move(n)); });
  REQUIRE(dns.waitForQuery("2.2.0.192.in-addr.arpa"));
  r.reset();  // now only the callback holds the resolver
  dns.release("2.2.0.192.in-addr.arpa");
  CHECK(last.get() == "b.example");
  CHECK_FALSE(pending.get());  // failed by the thread winding down after the resolver went away
  CHECK(*pending.calls == 1);
}

TEST_CASE("DnsClientResolver: a throwing callback does not stop the resolver") {
  FakeDns dns;
  dns.set("1.2.0.192.in-addr.arpa", kDnsTypePtr, {FakeDns::Mode::Answer, {"a.example"}});
  DnsClientResolver r(configFor({dns.server()}));
  r.reverse("192.0.2.1", [](std::optional<std::string>) { throw std::runtime_error("caller bug"); });
  ReverseResult res;
  r.reverse("192.0.2.1", res.callback());
  CHECK(res.get() == "a.example");
}

TEST_CASE("DnsClientResolver: bad configuration is refused") {
  auto message = [](DnsClientConfig c) -> std::string {
    try {
      DnsClientResolver r(std::move(c));
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  CHECK(message({}) == "dns client: no servers configured");
  CHECK(message({{{"dns.example", 53}}}) == "dns server 'dns.example': not an IP address");
  CHECK(message({{{"::1", 0}}}) == "dns server '[::1]:0': port out of range 1..65535");
  CHECK(message({{{"127.0.0.1", 53}}, 0ms}) == "dns client: timeout must be positive");
  CHECK(message({{{"127.0.0.1", 53}}, 100ms, 0}) == "dns client: attempts must be at least 1");
  // reverse() of something that is not an address answers at once
  DnsClientResolver r(configFor({{"127.0.0.1", 9}}));
  ReverseResult res;
  r.reverse("not-an-ip", res.callback());
  CHECK(res.done());
  CHECK_FALSE(res.get());
}
