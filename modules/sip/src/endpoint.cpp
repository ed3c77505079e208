#include "imp/sip/endpoint.h"

namespace imp::sip {

std::string_view transportName(Transport t) {
  switch (t) {
    case Transport::Udp: return "UDP";
    case Transport::Tcp: return "TCP";
    case Transport::Tls: return "TLS";
  }
  return "?";
}

std::string Endpoint::toString() const {
  std::string host = address.find(':') != std::string::npos ? "[" + address + "]" : address;
  return std::string(transportName(transport)) + " " + host + ":" + std::to_string(port);
}

std::string_view errorKindName(TransportErrorKind k) {
  switch (k) {
    case TransportErrorKind::ConnectionRefused: return "connection refused";
    case TransportErrorKind::ConnectTimeout: return "connect timeout";
    case TransportErrorKind::TlsHandshakeFailed: return "TLS handshake failed";
    case TransportErrorKind::ConnectionClosed: return "connection closed";
    case TransportErrorKind::MessageTooLarge: return "message too large";
    case TransportErrorKind::NoRoute: return "no route";
    case TransportErrorKind::Other: return "transport error";
  }
  return "transport error";
}

}  // namespace imp::sip
