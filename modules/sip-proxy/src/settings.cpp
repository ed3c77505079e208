#include "imp/sip_proxy/settings.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace imp::sip_proxy {

// ---- shared helpers ----

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

namespace {
// Dotted-quad IPv4 already in canonical form (four decimal parts 0..255, no
// leading zeros): what inet_pton accepts and inet_ntop would print back.
// Every relayed request asks for its Via host and next hop, so the common
// case skips the libc round trip (its sprintf was ~3% of a relayed MESSAGE).
bool isCanonicalIpv4(std::string_view s) {
  int parts = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t start = i;
    unsigned value = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - start < 3) value = value * 10 + unsigned(s[i++] - '0');
    std::size_t len = i - start;
    if (len == 0 || value > 255 || (len > 1 && s[start] == '0')) return false;
    if (++parts == 4) return i == s.size();
    if (i == s.size() || s[i] != '.') return false;
    ++i;
  }
  return false;
}
}  // namespace

std::optional<std::string> canonicalIp(std::string_view s) {
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  if (isCanonicalIpv4(s)) return std::string(s);
  if (s.empty() || s.size() > 45) return std::nullopt;
  std::string text(s);
  char buf[INET6_ADDRSTRLEN] = {};
  if (text.find(':') != std::string::npos) {
    in6_addr a6{};
    if (inet_pton(AF_INET6, text.c_str(), &a6) != 1) return std::nullopt;
    if (!inet_ntop(AF_INET6, &a6, buf, sizeof buf)) return std::nullopt;
    return std::string(buf);
  }
  in_addr a4{};
  if (inet_pton(AF_INET, text.c_str(), &a4) != 1) return std::nullopt;
  if (!inet_ntop(AF_INET, &a4, buf, sizeof buf)) return std::nullopt;
  return std::string(buf);
}

std::string checkDnsName(std::string_view s, std::size_t minLabels, std::string_view what) {
  std::string w(what);
  std::string q(1, '\'');  // not "'" + std::string: a false -Wrestrict in GCC 12 -O3 (GCC bug 105329)
  q += s;
  q += '\'';
  if (s.empty()) return w + " is empty";
  if (s.size() > 253) return w + " " + q + " is longer than 253 characters";
  std::size_t labels = 0;
  std::size_t start = 0;
  bool lastAllDigits = false;
  while (start <= s.size()) {
    auto dot = s.find('.', start);
    auto label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return w + " " + q + " has an empty label";
    if (label.size() > 63) return w + " " + q + " has a label longer than 63 characters";
    for (unsigned char c : label)
      if (!std::isalnum(c) && c != '-') return w + " " + q + " may hold only letters, digits, '-' and '.'";
    if (label.front() == '-' || label.back() == '-') return w + " " + q + ": a label may not start or end with '-'";
    lastAllDigits = std::all_of(label.begin(), label.end(), [](unsigned char c) { return std::isdigit(c); });
    ++labels;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (lastAllDigits) return w + " " + q + " is not a valid IPv4 address";
  if (labels < minLabels)
    return w + " " + q + " needs at least " + std::to_string(minLabels) + " labels (a fully qualified name such as host.example.com)";
  return "";
}

// ---- federation ----

std::string_view nameOf(RoutingMode m) { return m == RoutingMode::Basic ? "basic" : "advanced"; }

std::optional<RoutingMode> parseRoutingMode(std::string_view s) {
  auto l = lower(s);
  if (l == "basic") return RoutingMode::Basic;
  if (l == "advanced") return RoutingMode::Advanced;
  return std::nullopt;
}

std::string checkFederationChange(const FederationSettings& current, const FederationUpdate& u,
                                  std::size_t interClusterPeers, FederationSettings* after) {
  FederationSettings a = current;
  if (u.enabled) a.enabled = *u.enabled;
  if (u.routingMode) a.routingMode = *u.routingMode;
  if (u.emailForInterdomain) a.emailForInterdomain = *u.emailForInterdomain;
  *after = a;
  bool turnsOnFederation = u.enabled.value_or(false);
  bool turnsOnEmail = u.emailForInterdomain.value_or(false);
  // FED-5. Only a change that switches one of them on is refused, so an
  // inconsistent state left by older data can still be repaired.
  if (a.enabled && a.emailForInterdomain && (turnsOnFederation || turnsOnEmail)) {
    if (turnsOnFederation && turnsOnEmail && !current.enabled && !current.emailForInterdomain)
      return "partitioned intradomain federation and 'email address for inter-domain federation' cannot both be "
             "enabled (FED-5)";
    if (turnsOnFederation && !turnsOnEmail)
      return "partitioned intradomain federation cannot be enabled while 'email address for inter-domain federation' "
             "is on; turn that off first (FED-5)";
    if (turnsOnEmail && !turnsOnFederation)
      return "'email address for inter-domain federation' cannot be turned on while partitioned intradomain "
             "federation is enabled; disable federation first (FED-5)";
    return "partitioned intradomain federation and 'email address for inter-domain federation' cannot both be "
           "enabled (FED-5)";
  }
  // FED-6: advanced mode stores every Microsoft user of one cluster, so it
  // is refused as soon as inter-cluster peers exist.
  bool asksAdvanced = u.routingMode == RoutingMode::Advanced || (turnsOnFederation && a.routingMode == RoutingMode::Advanced);
  if (asksAdvanced && interClusterPeers > 0)
    return "advanced routing mode is only valid for a single cluster, and " + std::to_string(interClusterPeers) +
           " inter-cluster peer(s) are configured; remove them or keep basic mode (FED-6)";
  return "";
}

std::string describeFederationChange(const FederationSettings& before, const FederationSettings& after) {
  std::string out;
  auto onOff = [](bool b) { return b ? std::string("on") : std::string("off"); };
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : "; ") + s; };
  if (before.enabled != after.enabled) add("enabled: " + onOff(before.enabled) + " -> " + onOff(after.enabled));
  if (before.routingMode != after.routingMode)
    add("routing mode: " + std::string(nameOf(before.routingMode)) + " -> " + std::string(nameOf(after.routingMode)));
  if (before.emailForInterdomain != after.emailForInterdomain)
    add("email address for inter-domain federation: " + onOff(before.emailForInterdomain) + " -> " +
        onOff(after.emailForInterdomain));
  return out;
}

std::vector<std::string> federationEnableWarnings(std::size_t domainRoutes) {
  std::vector<std::string> w = {
      "Enabling partitioned intradomain federation: requests for users of local presence domains who are not "
      "licensed IMP users are routed to the Microsoft server through static routes. Make sure static routes to the "
      "Microsoft server exist for those domains (impctl route list). The change applies live on every node; no "
      "restart is needed."};
  if (domainRoutes == 0)
    w.push_back("No static route of type 'domain' is configured yet: such requests are answered 404 until one is "
                "added (impctl route add PATTERN --route-type domain --next-hop HOST).");
  return w;
}

// ---- listeners ----

const std::vector<ListenerInfo>& listenerCatalog() {
  static const std::vector<ListenerInfo> kListeners = {
      {"tcp", "Default Cisco SIP Proxy TCP Listener", "TCP", "none", 5060},
      {"tls-server-auth", "Default Cisco SIP Proxy TLS Listener - Server Auth", "TLS", "server", 5061},
      {"tls-peer-auth", "Default Cisco SIP Proxy TLS Listener - Peer Auth", "TLS", "mutual", 5062},
      {"udp", "Default Cisco SIP Proxy UDP Listener", "UDP", "none", 5060, false},
  };
  return kListeners;
}

const ListenerInfo* findListener(std::string_view name) {
  for (const auto& l : listenerCatalog())
    if (l.name == name) return &l;
  return nullptr;
}

std::string checkPort(std::int64_t port) {
  if (port < 1 || port > 65535) return "port " + std::to_string(port) + " is out of range 1..65535";
  return "";
}

std::string checkListenerPorts(const std::vector<Listener>& all, const std::string& changed) {
  // A UDP socket and a TCP socket (TCP or TLS listener) do not share a port.
  auto udp = [](const Listener& l) {
    const ListenerInfo* info = findListener(l.name);
    return info != nullptr && info->transport == "UDP";
  };
  auto conflict = [&](const Listener& a, const Listener& b) {
    return a.enabled && b.enabled && a.port == b.port && udp(a) == udp(b);
  };
  auto clash = [](const Listener& mine, const Listener& other) {
    return "port " + std::to_string(mine.port) + " is already used by the enabled listener '" + other.name +
           "'; choose another port for '" + mine.name + "' or move that listener first (TLS-1)";
  };
  for (const auto& l : all)
    if (l.name == changed && l.enabled)
      for (const auto& o : all)
        if (&o != &l && conflict(l, o)) return clash(l, o);
  for (std::size_t i = 0; i < all.size(); ++i)
    for (std::size_t j = i + 1; j < all.size(); ++j)
      if (conflict(all[i], all[j])) return clash(all[j], all[i]);
  return "";
}

// ---- TLS ----

std::string normalisePeerSubject(const std::string& in, std::string* out) {
  if (in.empty()) return "subject CN is empty";
  if (auto ip = canonicalIp(in)) {
    *out = *ip;
    return "";
  }
  if (in.find('*') != std::string::npos)
    return "subject CN '" + in + "' may not be a wildcard: add the CN of each server and pool certificate (TLS-2)";
  if (in.find('=') != std::string::npos || in.find(',') != std::string::npos)
    return "subject CN '" + in + "' must be the common name only (for example lync-fe1.example.com), not a whole subject";
  auto l = lower(in);
  if (auto e = checkDnsName(l, 1, "subject CN"); !e.empty()) return e + " (a subject CN is a DNS name or an IP address)";
  *out = l;
  return "";
}

std::string_view nameOf(TlsVersion v) {
  switch (v) {
    case TlsVersion::V1_0: return "1.0";
    case TlsVersion::V1_1: return "1.1";
    case TlsVersion::V1_2: return "1.2";
    case TlsVersion::V1_3: return "1.3";
  }
  return "?";
}

std::optional<TlsVersion> parseTlsVersion(std::string_view s) {
  auto l = lower(s);
  if (l.rfind("tlsv", 0) == 0) l = l.substr(4);
  if (l == "1.0" || l == "1") return TlsVersion::V1_0;
  if (l == "1.1") return TlsVersion::V1_1;
  if (l == "1.2") return TlsVersion::V1_2;
  if (l == "1.3") return TlsVersion::V1_3;
  return std::nullopt;
}

std::string checkTlsVersions(TlsVersion min, TlsVersion max) {
  if (min > max)
    return "min-version " + std::string(nameOf(min)) + " is higher than max-version " + std::string(nameOf(max));
  return "";
}

std::vector<std::string> tlsVersionWarnings(TlsVersion min) {
  if (min > TlsVersion::V1_1) return {};
  return {"min-version " + std::string(nameOf(min)) +
          " is only for OCS 2007 R2 peers, which speak nothing newer (FED-2); TLS 1.0/1.1 are weak, and OpenSSL 3 "
          "negotiates them only with '@SECLEVEL=0' in the cipher list"};
}

namespace {

std::vector<std::string> cipherElements(std::string_view list) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : list) {
    if (c == ':' || c == ',' || c == ' ') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

std::string opensslReason() {
  unsigned long e = ERR_peek_last_error();
  const char* r = e ? ERR_reason_error_string(e) : nullptr;
  ERR_clear_error();
  return r ? r : "refused";
}

}  // namespace

CipherLists splitCipherList(std::string_view list) {
  CipherLists out;
  for (const auto& e : cipherElements(list)) {
    auto& target = e.rfind("TLS_", 0) == 0 ? out.tls13 : out.tls12;
    target += (target.empty() ? "" : ":") + e;
  }
  return out;
}

net::TlsContextConfig tlsConfigOf(const TlsContext& c) {
  auto version = [](TlsVersion v) {
    switch (v) {
      case TlsVersion::V1_0: return net::TlsVersion::Tls10;
      case TlsVersion::V1_1: return net::TlsVersion::Tls11;
      case TlsVersion::V1_2: return net::TlsVersion::Tls12;
      case TlsVersion::V1_3: return net::TlsVersion::Tls13;
    }
    return net::TlsVersion::Tls12;
  };
  net::TlsContextConfig tc;
  auto lists = splitCipherList(c.ciphers);
  tc.cipherList = lists.tls12;
  tc.tls13CipherSuites = lists.tls13;
  tc.minVersion = version(c.minVersion);
  tc.maxVersion = version(c.maxVersion);
  tc.allowTls10 = c.minVersion < TlsVersion::V1_2;
  tc.disableEmptyFragments = c.disableEmptyFragments;
  return tc;
}

std::string checkCipherList(const std::string& list, TlsVersion min) {
  if (list.size() > 2048) return "cipher list is longer than 2048 characters";
  auto elements = cipherElements(list);
  if (elements.empty()) return "cipher list is empty";
  for (unsigned char c : list)
    if (!std::isgraph(c) && c != ' ') return "cipher list holds a control or non-ASCII character";
  std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return "OpenSSL could not create a context to check the cipher list: " + opensslReason();
  ERR_clear_error();
  auto lists = splitCipherList(list);
  if (!lists.tls13.empty()) {
    for (const auto& e : cipherElements(lists.tls13))
      if (SSL_CTX_set_ciphersuites(ctx.get(), e.c_str()) != 1)
        return "cipher list '" + list + "' is invalid: '" + e + "' is not a TLS 1.3 suite OpenSSL knows (" +
               opensslReason() + ")";
  }
  if (lists.tls12.empty()) {
    if (min < TlsVersion::V1_3)
      return "cipher list '" + list + "' holds only TLS 1.3 suites, but min-version " + std::string(nameOf(min)) +
             " allows older protocols that need a TLS 1.2 cipher list too";
    return "";
  }
  if (SSL_CTX_set_cipher_list(ctx.get(), lists.tls12.c_str()) != 1)
    return "cipher list '" + list + "' is invalid: " + opensslReason() + " (OpenSSL)";
  for (const auto& e : cipherElements(lists.tls12)) {
    char first = e.front();
    if (first == '!' || first == '-' || first == '+' || first == '@') continue;
    if (SSL_CTX_set_cipher_list(ctx.get(), e.c_str()) != 1)
      return "cipher list '" + list + "' is invalid: '" + e + "': " + opensslReason() + " (OpenSSL)";
  }
  return "";
}

// ---- ACL ----

std::string_view nameOf(AclKind k) {
  switch (k) {
    case AclKind::All: return "all";
    case AclKind::Address: return "address";
    case AclKind::Name: return "name";
  }
  return "?";
}

std::string normaliseAclPattern(const std::string& in, std::string* out, AclKind* kind) {
  const std::string hint = " (an ACL pattern is 'all', an IP address, or a DNS domain / FQDN)";
  if (in.empty()) return "address pattern is empty" + hint;
  auto l = lower(in);
  if (l == "all") {
    *out = "all";
    *kind = AclKind::All;
    return "";
  }
  if (auto ip = canonicalIp(l)) {
    *out = *ip;
    *kind = AclKind::Address;
    return "";
  }
  if (l.find('/') != std::string::npos)
    return "address pattern '" + in + "': address ranges are not supported; add each address, or a DNS domain";
  if (l.find(':') != std::string::npos) return "address pattern '" + in + "' is not a valid IPv6 address";
  if (l.size() > 1 && l.back() == '.') l.pop_back();
  if (auto e = checkDnsName(l, 2, "address pattern"); !e.empty()) return e + hint;
  *out = l;
  *kind = AclKind::Name;
  return "";
}

}  // namespace imp::sip_proxy
