#include "imp/sip_proxy/node_options.h"

#include <imp/core/config.h>

#include "imp/sip_proxy/settings.h"

namespace imp::sip_proxy {

namespace {
constexpr const char* kSection = "sip-proxy";

// impd.conf key of a listener's per-node port.
std::string portKey(std::string_view listener) {
  std::string k(listener);
  for (auto& c : k)
    if (c == '-') c = '_';
  return k + "_port";
}
}  // namespace

void addNodeOptions(core::ConfigSchema& s) {
  using T = core::OptionType;
  s.add({kSection, "listen_address", T::String, "0.0.0.0", 0, 0, {},
         "IP address the SIP listeners bind (0.0.0.0 = all IPv4, :: = all IPv6)"});
  s.add({kSection, "advertised_host", T::String, "", 0, 0, {},
         "host written in Via and Record-Route and given to other nodes; default: the host name"});
  for (const auto& l : listenerCatalog())
    s.add({kSection, portKey(l.name), T::Int, "-1", -1, 65535, {},
           "this node's port for the " + std::string(l.displayName) +
               " listener; -1 = the cluster setting (impctl listener set), 0 = any free port"});
  s.add({kSection, "hop_timeout_ms", T::Int, "5000", 100, 31000, {},
         "how long a next hop may stay silent before the request fails over to the next route (RT-3)"});
  s.add({kSection, "connect_timeout_ms", T::Int, "5000", 100, 60000, {},
         "TCP connect plus TLS handshake limit toward a next hop"});
  s.add({kSection, "probe_interval_ms", T::Int, "30000", 100, 3600000, {},
         "how often a next hop marked down is probed with OPTIONS"});
  s.add({kSection, "flood_max_requests", T::Int, "200", 0, 1000000, {},
         "requests one address not listed in the incoming ACL may send per window; 0 = no flood limit"});
  s.add({kSection, "flood_window_ms", T::Int, "2000", 100, 600000, {}, "flood limiter sampling window"});
  s.add({kSection, "flood_ban_seconds", T::Int, "300", 1, 86400, {},
         "how long an address over the flood limit is refused (impctl ban list|clear)"});
}

NodeOptions readNodeOptions(const core::Config& cfg) {
  NodeOptions o;
  o.listenAddress = cfg.getString(kSection, "listen_address");
  auto ip = canonicalIp(o.listenAddress);
  if (!ip) throw core::ConfigError(kSection, "listen_address = " + o.listenAddress + " is not an IP address");
  o.listenAddress = *ip;
  o.advertisedHost = cfg.getString(kSection, "advertised_host");
  if (!o.advertisedHost.empty() && !canonicalIp(o.advertisedHost)) {
    if (auto e = checkDnsName(o.advertisedHost, 1, "advertised_host"); !e.empty()) throw core::ConfigError(kSection, e);
  }
  for (const auto& l : listenerCatalog()) {
    auto port = cfg.getInt(kSection, portKey(l.name));
    if (port >= 0) o.portOverrides[std::string(l.name)] = static_cast<int>(port);
  }
  for (auto a = o.portOverrides.begin(); a != o.portOverrides.end(); ++a)
    for (auto b = std::next(a); b != o.portOverrides.end(); ++b)
      if (a->second != 0 && a->second == b->second && (a->first == "udp") == (b->first == "udp"))
        throw core::ConfigError(kSection, portKey(a->first) + " and " + portKey(b->first) + " are both " +
                                              std::to_string(a->second) + ": each listener needs its own port");
  o.hopTimeout = std::chrono::milliseconds(cfg.getInt(kSection, "hop_timeout_ms"));
  o.connectTimeout = std::chrono::milliseconds(cfg.getInt(kSection, "connect_timeout_ms"));
  o.probeInterval = std::chrono::milliseconds(cfg.getInt(kSection, "probe_interval_ms"));
  o.flood.maxRequests = static_cast<std::uint32_t>(cfg.getInt(kSection, "flood_max_requests"));
  o.flood.window = std::chrono::milliseconds(cfg.getInt(kSection, "flood_window_ms"));
  o.flood.banTime = std::chrono::seconds(cfg.getInt(kSection, "flood_ban_seconds"));
  return o;
}

}  // namespace imp::sip_proxy
