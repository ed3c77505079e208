#pragma once
// The troubleshooter's network probes (RT-1, RT-8, RT-10, TS-2, TS-5, TS-6):
// what the node sees on the wire when it looks at its Microsoft next hops.
//
//  probeNextHops   for each distinct next hop of the static routes (host,
//                  port, transport): the A/AAAA lookup of its host (RT-10)
//                  and a SIP OPTIONS over the route's transport (RFC 3261
//                  §11) with its round-trip time; over TLS the handshake
//                  presents the node certificate and verifies the hop
//                  against the trust store, as the SIP proxy does, so a
//                  failing handshake (TS-2, TS-10) shows up here too.
//  reverseLookups  the PTR lookup of each address, timed: the original
//                  product waited ~20 s per missing PTR record (RT-8, TS-6).
//
// Both block the calling thread (the admin request's) for at most their
// timeouts; hops and addresses are probed concurrently. DNS goes through the
// node's resolver (its configured servers or the system's), never a cache.
// Neither throws except std::bad_alloc: every failure is in the result.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <imp/sip_proxy/routes.h>

namespace imp::core {
class Resolver;
}
namespace imp::net {
class TlsContext;
}

namespace imp::troubleshoot {

struct HopProbe {
  std::string hop;  // "lync.example.com:5061;TLS"
  std::string host;
  int port = 5061;
  sip_proxy::Transport transport = sip_proxy::Transport::Tls;
  std::vector<std::string> addresses;  // the host's A/AAAA answers; empty = it did not resolve
  double resolveMs = 0;
  std::string address;  // the address OPTIONS went to
  int status = 0;       // the final response's status; 0 = none
  std::string reason;   // its reason phrase
  double rttMs = 0;     // OPTIONS sent -> final response
  std::string error;    // why there is no answer ("" when answered)
  // Over TLS, once the handshake is done: the next hop's certificate, which
  // the Microsoft server also presents when it connects to the peer-auth
  // listener (TLS-5). peerCn "" = no handshake.
  std::string peerCn;
  bool peerServerAuth = false, peerClientAuth = false;
};

struct PtrProbe {
  std::string ip;
  std::optional<std::string> name;  // nullopt: no PTR record (or no answer)
  double ms = 0;
  bool timedOut = false;  // no answer within the timeout
};

struct NameProbe {
  std::string name;
  std::vector<std::string> addresses;  // A/AAAA answers; empty = it did not resolve
  double ms = 0;
  bool timedOut = false;
};

struct ProbeConfig {
  std::shared_ptr<core::Resolver> resolver;  // null: nothing resolves
  std::chrono::milliseconds dnsTimeout{5000};
  std::chrono::milliseconds sipTimeout{4000};  // connect + handshake + answer
  // The client context for TLS hops (the node certificate, the trust store);
  // null: TLS hops report that there is none.
  std::shared_ptr<const net::TlsContext> tls;
  std::string tlsError;  // why there is no context, for those hops' errors
  std::string fromHost = "localhost";  // the node's name, for From and Call-ID
};

std::vector<HopProbe> probeNextHops(const std::vector<sip_proxy::StaticRoute>& routes, const ProbeConfig& config);
std::vector<PtrProbe> reverseLookups(const std::vector<std::string>& ips, const ProbeConfig& config);
// The A/AAAA lookup of each name, timed, all at once (RT-10).
std::vector<NameProbe> forwardLookups(const std::vector<std::string>& names, const ProbeConfig& config);

// One OPTIONS to `address`:`port` (an IP literal) over `transport`; fills
// status/reason/rttMs or error of `into`.
void sendOptions(HopProbe& into, const std::string& address, const ProbeConfig& config);

}  // namespace imp::troubleshoot
