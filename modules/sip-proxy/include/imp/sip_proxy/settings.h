#pragma once
// Cluster-wide SIP Proxy settings as values, and the pure checks applied to
// them before anything is stored: partitioned intradomain federation
// (FED-4..6), application listeners (TLS-1), TLS peer subjects and contexts
// (TLS-2, TLS-3) and incoming ACL patterns (RT-7). Static routes are in
// routes.h.
//
// Every check returns "" when the input is acceptable, otherwise one
// sentence an administrator can act on. No function here touches the
// database, so the admin API, the proxy and tests share them. Thread-safe.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <imp/net/tls.h>

namespace imp::sip_proxy {

// ---- Partitioned intradomain federation (FED-4, FED-5, FED-6) ----

enum class RoutingMode { Basic, Advanced };
std::string_view nameOf(RoutingMode m);                      // "basic", "advanced"
std::optional<RoutingMode> parseRoutingMode(std::string_view s);  // case-insensitive

struct FederationSettings {
  bool enabled = false;
  RoutingMode routingMode = RoutingMode::Basic;
  // "Email address for inter-domain federation" (FED-5).
  bool emailForInterdomain = false;
  bool operator==(const FederationSettings&) const = default;
};

// A partial change: absent fields keep their value.
struct FederationUpdate {
  std::optional<bool> enabled;
  std::optional<RoutingMode> routingMode;
  std::optional<bool> emailForInterdomain;
  bool empty() const { return !enabled && !routingMode && !emailForInterdomain; }
};

// Applies `u` to `current` into *after and checks the result: FED-5 (email
// address for inter-domain federation excludes partitioned federation) and
// FED-6 (advanced mode only without inter-cluster peers). Returns "" or why
// the change is refused; *after is set either way.
std::string checkFederationChange(const FederationSettings& current, const FederationUpdate& u,
                                  std::size_t interClusterPeers, FederationSettings* after);

// "enabled: off -> on; routing mode: basic -> advanced"; "" when equal.
std::string describeFederationChange(const FederationSettings& before, const FederationSettings& after);

// What the administrator must read when enabling federation (FED-4). The
// first line is always the same; a second one is added when no domain
// static route exists yet.
std::vector<std::string> federationEnableWarnings(std::size_t domainRoutes);

// ---- Application listeners (TLS-1) ----

struct ListenerInfo {
  std::string_view name;         // "tcp", "tls-server-auth", "tls-peer-auth", "udp"
  std::string_view displayName;  // as the administrator knows it
  std::string_view transport;    // "TCP", "TLS" or "UDP"
  std::string_view auth;         // "none", "server", "mutual"
  int defaultPort;
  bool enabledByDefault = true;  // UDP is off: Lync and OCS do not use it
};
const std::vector<ListenerInfo>& listenerCatalog();
const ListenerInfo* findListener(std::string_view name);

struct Listener {
  std::string name;
  bool enabled = true;
  int port = 0;
  bool operator==(const Listener&) const = default;
};

std::string checkPort(std::int64_t port);  // 1..65535
// Two enabled listeners on one port are refused (a disabled one binds
// nothing); UDP and a stream listener (TCP, TLS) may share a port number. Names the listener that already holds the port, as seen from
// `changed` (the one being set).
std::string checkListenerPorts(const std::vector<Listener>& all, const std::string& changed);

// ---- TLS peer subjects and contexts (TLS-2, TLS-3) ----

// A certificate subject CN: a DNS name (one or more labels) or an IP address.
// *out receives the lower-case / canonical form.
std::string normalisePeerSubject(const std::string& in, std::string* out);

// The TLS contexts the listeners use (TLS-1..3): the server-auth listener
// and outgoing TLS take the first, the peer-auth listener the second.
inline constexpr std::string_view kServerContext = "default-server";
inline constexpr std::string_view kPeerAuthContext = "peer-auth";

enum class TlsVersion { V1_0, V1_1, V1_2, V1_3 };
std::string_view nameOf(TlsVersion v);                     // "1.0" .. "1.3"
std::optional<TlsVersion> parseTlsVersion(std::string_view s);  // "1.2", also "TLSv1.2"
std::string checkTlsVersions(TlsVersion min, TlsVersion max);
// TLS 1.0/1.1 are accepted as minimum only for OCS 2007 R2 peers (FED-2).
std::vector<std::string> tlsVersionWarnings(TlsVersion min);

// One OpenSSL cipher string. Elements named TLS_* are TLS 1.3 suites
// (SSL_CTX_set_ciphersuites); the others form the TLS <= 1.2 cipher list
// (SSL_CTX_set_cipher_list). Separators: ':' ',' ' ' (as OpenSSL).
struct CipherLists {
  std::string tls12;  // "" = none given
  std::string tls13;  // "" = OpenSSL's default TLS 1.3 suites
};
CipherLists splitCipherList(std::string_view list);
// Checks the list with OpenSSL on a throwaway SSL_CTX and returns OpenSSL's
// reason when it is refused. A positive element that matches no cipher is
// refused too (OpenSSL would silently skip it, hiding a typo); removals
// ('!', '-'), reorderings ('+') and '@' commands are not checked alone.
// `min` says whether a TLS <= 1.2 list is needed.
std::string checkCipherList(const std::string& list, TlsVersion min);

struct TlsContext {
  std::string name;
  std::string displayName;
  std::string ciphers;
  TlsVersion minVersion = TlsVersion::V1_2;
  TlsVersion maxVersion = TlsVersion::V1_3;
  bool disableEmptyFragments = true;
  std::vector<std::string> peerSubjects;  // selected subject CNs, sorted
};

// The OpenSSL settings of a stored TLS context (TLS-3): cipher lists,
// protocol versions (TLS 1.0/1.1 allowed when the context asks for them),
// empty fragments. Files and peer verification are the caller's.
net::TlsContextConfig tlsConfigOf(const TlsContext& c);

struct PeerSubject {
  std::string subjectCn;
  std::string description;
  std::vector<std::string> usedBy;  // contexts selecting it
};

// ---- Incoming ACL (RT-7) ----

enum class AclKind { All, Address, Name };
std::string_view nameOf(AclKind k);  // "all", "address", "name"

struct AclEntry {
  std::string pattern;  // canonical: "all", an IP address, a lower-case DNS name
  AclKind kind = AclKind::All;
  std::string description;
};

// `all`, an IPv4/IPv6 address, or a DNS domain / FQDN (at least two
// labels). Sets *out to the canonical pattern and *kind.
std::string normaliseAclPattern(const std::string& in, std::string* out, AclKind* kind);

// ---- Shared syntax helpers ----

std::string lower(std::string_view s);
// Canonical text of an IP literal (IPv6 compressed, lower-case; brackets
// allowed on input); nullopt if `s` is not one.
std::optional<std::string> canonicalIp(std::string_view s);
// A DNS name: labels of letters, digits and '-' (not at either end), each
// 1..63, total <= 253, at least `minLabels`. A name whose last label is all
// digits is taken for a mistyped IPv4 address. `what` names the field.
std::string checkDnsName(std::string_view s, std::size_t minLabels, std::string_view what);

}  // namespace imp::sip_proxy
