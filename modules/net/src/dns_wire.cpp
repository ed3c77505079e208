#include "imp/net/dns_wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace imp::net {

namespace {

constexpr std::uint16_t kClassIn = 1;
constexpr std::size_t kHeaderSize = 12;
constexpr std::size_t kMaxNameOctets = 255;  // RFC 1035 2.3.4, wire form
constexpr std::size_t kMaxNameText = 253;    // the same without length octets and root
constexpr std::size_t kMaxLabel = 63;
constexpr int kMaxPointers = 64;  // belt and braces: pointers must go backwards anyway
constexpr int kMaxCnameHops = 8;
// Enough for any real host or service; bounds the duplicate checks on a
// 64 KiB message full of records.
constexpr std::size_t kMaxValues = 32;

char lowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool readU16(std::string_view w, std::size_t& pos, std::uint16_t& out) {
  if (pos > w.size() || w.size() - pos < 2) return false;
  out = static_cast<std::uint16_t>((static_cast<unsigned char>(w[pos]) << 8) | static_cast<unsigned char>(w[pos + 1]));
  pos += 2;
  return true;
}

bool readU32(std::string_view w, std::size_t& pos, std::uint32_t& out) {
  std::uint16_t hi = 0, lo = 0;
  if (!readU16(w, pos, hi) || !readU16(w, pos, lo)) return false;
  out = (static_cast<std::uint32_t>(hi) << 16) | lo;
  return true;
}

// RFC 2181 §8: a TTL with the most significant bit set is read as zero.
std::uint32_t clampTtl(std::uint32_t ttl) { return (ttl & 0x80000000u) ? 0 : ttl; }

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

// A <character-string> (RFC 1035 3.3): one length octet, then the bytes.
bool readCharString(std::string_view w, std::size_t& pos, std::size_t end, std::string& out) {
  if (pos >= end) return false;
  auto len = static_cast<unsigned char>(w[pos]);
  if (end - pos - 1 < len) return false;
  out.assign(w.substr(pos + 1, len));
  pos += 1u + len;
  return true;
}

// What we hand out as a name ends up in ACL checks, next hops and logs: only
// host names (glibc's res_hnok does the same for getnameinfo); '_' for the
// service labels of SRV owners (RFC 2782) that NAPTR replacements name.
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

bool isAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// RFC 3403 §4.1: flags are single characters A-Z, 0-9.
bool validNaptrFlags(const std::string& s) { return std::all_of(s.begin(), s.end(), isAlnum); }
// RFC 3403 §4.1 service field (protocol and resolution services joined by
// '+'), with ENUM's ':' subtypes (RFC 6116) and the '-', '.', '_' seen in
// registered services.
bool validNaptrServices(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return isAlnum(c) || c == '+' || c == ':' || c == '-' || c == '.' || c == '_'; });
}
// A substitution expression (RFC 3402 §3.2); printable ASCII only, as it
// is logged and applied to addresses.
bool validNaptrRegexp(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

std::string lowered(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), lowerAscii);
  return s;
}

// One record of the answer section, as far as the question needs it.
struct Record {
  std::string owner;
  std::uint16_t type = 0;
  std::uint32_t ttl = 0;
  std::string value;  // A/AAAA text, PTR/CNAME target
  SrvRecord srv;
  NaptrRecord naptr;
  bool usable = true;  // false: well-formed but skipped (DnsReply::skipped)
};

// Reads the rdata of a record of interest, which must fill [pos, end)
// exactly. false: malformed (the whole reply is refused).
bool readRdata(std::string_view w, std::size_t pos, std::size_t end, Record& rec) {
  switch (rec.type) {
    case kDnsTypeA:
    case kDnsTypeAaaa: {
      bool v4 = rec.type == kDnsTypeA;
      if (end - pos != (v4 ? 4u : 16u)) return false;
      unsigned char raw[16];
      std::memcpy(raw, w.data() + pos, end - pos);
      char text[INET6_ADDRSTRLEN];
      if (!inet_ntop(v4 ? AF_INET : AF_INET6, raw, text, sizeof text)) return false;
      rec.value = text;
      return true;
    }
    case kDnsTypePtr:
    case kDnsTypeCname: {
      std::size_t p = pos;
      if (!readName(w, p, rec.value) || p != end) return false;
      if (rec.type == kDnsTypePtr) rec.usable = isHostName(rec.value);
      return true;
    }
    case kDnsTypeSrv: {
      std::size_t p = pos;
      auto& s = rec.srv;
      if (!readU16(w, p, s.priority) || !readU16(w, p, s.weight) || !readU16(w, p, s.port) || p > end) return false;
      // The target should not be compressed (RFC 2782), but resolvers
      // accept it when it is, as we do.
      if (!readName(w, p, s.target) || p != end) return false;
      s.ttl = rec.ttl;
      rec.usable = s.target.empty() || isHostName(s.target);
      return true;
    }
    case kDnsTypeNaptr: {
      std::size_t p = pos;
      auto& n = rec.naptr;
      if (!readU16(w, p, n.order) || !readU16(w, p, n.preference) || p > end) return false;
      if (!readCharString(w, p, end, n.flags) || !readCharString(w, p, end, n.services) ||
          !readCharString(w, p, end, n.regexp))
        return false;
      if (!readName(w, p, n.replacement) || p != end) return false;
      n.ttl = rec.ttl;
      rec.usable = validNaptrFlags(n.flags) && validNaptrServices(n.services) && validNaptrRegexp(n.regexp) &&
                   (n.replacement.empty() || isHostName(n.replacement)) &&
                   (n.regexp.empty() != n.replacement.empty());
      n.flags = lowered(std::move(n.flags));
      n.services = lowered(std::move(n.services));
      return true;
    }
    default:
      return true;
  }
}

// RFC 2308 §5: min(SOA TTL, MINIMUM) of an SOA whose rdata fills [pos, end).
bool readSoaNegativeTtl(std::string_view w, std::size_t pos, std::size_t end, std::uint32_t rrTtl,
                        std::uint32_t& out) {
  std::string mname, rname;
  std::uint32_t serial = 0, refresh = 0, retry = 0, expire = 0, minimum = 0;
  std::size_t p = pos;
  if (!readName(w, p, mname) || !readName(w, p, rname) || !readU32(w, p, serial) || !readU32(w, p, refresh) ||
      !readU32(w, p, retry) || !readU32(w, p, expire) || !readU32(w, p, minimum) || p != end)
    return false;
  out = std::min(rrTtl, clampTtl(minimum));
  return true;
}

template <class T>
bool pushUnique(std::vector<T>& out, T v) {
  if (std::find(out.begin(), out.end(), v) != out.end()) return false;
  out.push_back(std::move(v));
  return true;
}

}  // namespace

std::string dnsTypeName(std::uint16_t qtype) {
  switch (qtype) {
    case kDnsTypeA:
      return "A";
    case kDnsTypeAaaa:
      return "AAAA";
    case kDnsTypePtr:
      return "PTR";
    case kDnsTypeSrv:
      return "SRV";
    case kDnsTypeNaptr:
      return "NAPTR";
    case kDnsTypeCname:
      return "CNAME";
    case kDnsTypeSoa:
      return "SOA";
    default:
      return "TYPE" + std::to_string(qtype);
  }
}

std::string normalDnsName(std::string name) {
  if (!name.empty() && name.back() == '.') name.pop_back();
  std::transform(name.begin(), name.end(), name.begin(), lowerAscii);
  return name;
}

int ipLiteralFamily(const std::string& s) {
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) return AF_INET;
  if (inet_pton(AF_INET6, s.c_str(), &a6) == 1) return AF_INET6;
  return 0;
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
  if (r.truncated) return r;  // the sections may be cut anywhere; callers retry (over TCP)

  std::vector<Record> records;
  std::optional<std::uint32_t> negativeTtl;
  for (unsigned i = 0; i < static_cast<unsigned>(an) + ns; ++i) {
    bool answer = i < an;
    Record rec;
    std::uint16_t cls = 0, rdlen = 0;
    if (!readName(w, pos, rec.owner) || !readU16(w, pos, rec.type) || !readU16(w, pos, cls) ||
        !readU32(w, pos, rec.ttl) || !readU16(w, pos, rdlen))
      return std::nullopt;
    rec.ttl = clampTtl(rec.ttl);
    if (w.size() - pos < rdlen) return std::nullopt;
    std::size_t end = pos + rdlen;
    if (cls == kClassIn && answer && (rec.type == qtype || rec.type == kDnsTypeCname)) {
      if (!readRdata(w, pos, end, rec)) return std::nullopt;
      records.push_back(std::move(rec));
    } else if (cls == kClassIn && !answer && rec.type == kDnsTypeSoa) {
      std::uint32_t t = 0;
      if (!readSoaNegativeTtl(w, pos, end, rec.ttl, t)) return std::nullopt;
      if (!negativeTtl) negativeTtl = t;
    }
    pos = end;
  }

  // Names that stand for the question: itself and its CNAME chain.
  std::vector<std::string> aliases{r.question};
  std::optional<std::uint32_t> chainTtl;
  for (int hop = 0; hop < kMaxCnameHops && qtype != kDnsTypeCname; ++hop) {
    auto it = std::find_if(records.begin(), records.end(),
                           [&](const Record& x) { return x.type == kDnsTypeCname && x.owner == aliases.back(); });
    if (it == records.end() || std::find(aliases.begin(), aliases.end(), it->value) != aliases.end()) break;
    aliases.push_back(it->value);
    chainTtl = std::min(chainTtl.value_or(it->ttl), it->ttl);
  }
  std::optional<std::uint32_t> ttl;
  std::size_t taken = 0;
  for (auto& rec : records) {
    if (rec.type != qtype || std::find(aliases.begin(), aliases.end(), rec.owner) == aliases.end()) continue;
    if (!rec.usable) {
      ++r.skipped;
      continue;
    }
    bool added = false;
    if (qtype == kDnsTypeSrv)
      added = pushUnique(r.srv, std::move(rec.srv));
    else if (qtype == kDnsTypeNaptr)
      added = pushUnique(r.naptr, std::move(rec.naptr));
    else
      added = pushUnique(r.values, std::move(rec.value));
    if (!added) continue;
    ttl = std::min(ttl.value_or(rec.ttl), rec.ttl);
    if (++taken == kMaxValues) break;
  }
  if (taken > 0) {
    r.ttl = chainTtl ? std::min(*ttl, *chainTtl) : ttl;
    // Every record handed out carries the TTL it may be kept for.
    for (auto& s : r.srv) s.ttl = std::min(s.ttl, *r.ttl);
    for (auto& n : r.naptr) n.ttl = std::min(n.ttl, *r.ttl);
  } else {
    r.ttl = negativeTtl;
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

}  // namespace imp::net
