#pragma once
// Addresses and transport facts shared by the transport and transaction
// layers.
#include <cstdint>
#include <string>
#include <string_view>

namespace imp::sip {

enum class Transport : std::uint8_t { Udp, Tcp, Tls };
std::string_view transportName(Transport t);  // "UDP", "TCP", "TLS"
inline bool isReliable(Transport t) { return t != Transport::Udp; }

struct Endpoint {
  std::string address;  // IP literal (v4 or v6, no brackets)
  std::uint16_t port = 0;
  Transport transport = Transport::Udp;
  bool operator==(const Endpoint&) const = default;
  std::string toString() const;  // "TCP 192.0.2.1:5060", "TLS [::1]:5061"
};

// Where a received message came from.
struct Source {
  Endpoint remote;
  Endpoint local;                // the listener it arrived on
  std::uint64_t connectionId = 0;  // 0 for UDP
  std::string peerCommonName;    // TLS with a client certificate: subject CN (TLS-2)
};

enum class TransportErrorKind : std::uint8_t {
  ConnectionRefused,
  ConnectTimeout,
  TlsHandshakeFailed,
  ConnectionClosed,
  MessageTooLarge,
  NoRoute,
  Other,
};
std::string_view errorKindName(TransportErrorKind k);

struct TransportError {
  TransportErrorKind kind = TransportErrorKind::Other;
  std::string detail;
};

}  // namespace imp::sip
