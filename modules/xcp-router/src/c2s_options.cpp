#include "imp/xcp_router/c2s_options.h"

#include <imp/core/config.h>
#include <imp/net/socket_address.h>

namespace imp::xcp {

void addC2sOptions(core::ConfigSchema& s) {
  using T = core::OptionType;
  const std::string k = kC2sSection;
  s.add({k, "listen_address", T::String, "0.0.0.0", 0, 0, {}, "IP address the XMPP client listeners bind"});
  s.add({k, "advertised_host", T::String, "", 0, 0, {},
         "host other nodes name in see-other-host for users homed here; default: the host name"});
  s.add({k, "client_port", T::Int, "5222", 0, 65535, {}, "XMPP client port (STARTTLS, RFC 6120); 0 = any free port"});
  s.add({k, "tls_port", T::Int, "5223", -1, 65535, {},
         "XMPP direct-TLS client port (XEP-0368); -1 = none, 0 = any free port"});
  s.add({k, "max_stanza_bytes_preauth", T::Int, "10240", 1024, 1048576, {},
         "largest top-level element accepted before authentication (octets)"});
  s.add({k, "max_stanza_bytes", T::Int, "262144", 10240, 16777216, {},
         "largest stanza accepted after authentication (octets)"});
  s.add({k, "login_timeout_ms", T::Int, "30000", 1000, 600000, {},
         "time from connect to a bound resource; then connection-timeout"});
  s.add({k, "max_unauthenticated", T::Int, "1000", 0, 10000000, {},
         "connections of this node not yet bound to a user; beyond, resource-constraint; 0 = no limit"});
  s.add({k, "max_connections_per_ip", T::Int, "100", 0, 10000000, {},
         "connections from one IP address; beyond, policy-violation; 0 = no limit"});
  s.add({k, "idle_timeout_seconds", T::Int, "900", 0, 86400, {},
         "a stream with no traffic this long is closed (XEP-0478 idle-seconds); 0 = never"});
  s.add({k, "sm_resume_seconds", T::Int, "300", 0, 86400, {},
         "how long a dropped XEP-0198 session waits for <resume/>; then its stanzas go to other resources or "
         "offline storage; 0 = resumption not offered"});
  s.add({k, "sm_max_unacked", T::Int, "1000", 10, 1000000, {},
         "unacknowledged stanzas one XEP-0198 session may hold; beyond, resource-constraint"});
  s.add({k, "max_stanzas_per_second", T::Int, "500", 0, 1000000, {},
         "stanzas per second one session may send (token bucket); beyond, its stream is not read until the rate "
         "is met; 0 = no limit"});
  s.add({k, "stanza_burst", T::Int, "1000", 1, 10000000, {}, "stanzas a session may send at once above the rate"});
  s.add({k, "max_bytes_per_second", T::Int, "524288", 0, 1073741824, {},
         "octets per second one session may send (token bucket); beyond, its stream is not read until the rate "
         "is met; 0 = no limit"});
  s.add({k, "bytes_burst", T::Int, "1048576", 1024, 1073741824, {},
         "octets a session may send at once above the rate"});
  s.add({k, "scram_iterations", T::Int, "4096", 4096, 10000000, {},
         "PBKDF2 iterations the fake SCRAM exchange of an unknown user announces (same as impctl user passwd's)"});
  s.add({k, "allow_scram_sha1", T::Bool, "true", 0, 0, {}, "offer SCRAM-SHA-1(-PLUS) next to SCRAM-SHA-256"});
  s.add({k, "channel_binding", T::Bool, "true", 0, 0, {},
         "offer SCRAM-*-PLUS (tls-exporter, tls-server-end-point); off for clients that know only tls-unique"});
  s.add({k, "fake_credential_secret", T::String, "", 0, 0, {},
         "secret (16+ characters, the same on every node) for the salts shown to unknown users; default: derived "
         "from the node id"});
}

C2sNodeOptions readC2sOptions(const core::Config& cfg) {
  const std::string k = kC2sSection;
  C2sNodeOptions o;
  auto& c = o.c2s;
  c.listenAddress = cfg.getString(k, "listen_address");
  if (!net::SocketAddress::fromIp(c.listenAddress, 0))
    throw core::ConfigError(k, "listen_address = " + c.listenAddress + " is not an IP address");
  o.advertisedHost = cfg.getString(k, "advertised_host");
  c.clientPort = static_cast<int>(cfg.getInt(k, "client_port"));
  c.tlsPort = static_cast<int>(cfg.getInt(k, "tls_port"));
  if (c.clientPort != 0 && c.clientPort == c.tlsPort)
    throw core::ConfigError(k, "client_port and tls_port are both " + std::to_string(c.clientPort) +
                                   ": the direct-TLS listener needs its own port");
  c.preAuthStanzaLimit = static_cast<std::size_t>(cfg.getInt(k, "max_stanza_bytes_preauth"));
  c.postAuthStanzaLimit = static_cast<std::size_t>(cfg.getInt(k, "max_stanza_bytes"));
  if (c.postAuthStanzaLimit < c.preAuthStanzaLimit)
    throw core::ConfigError(k, "max_stanza_bytes (" + std::to_string(c.postAuthStanzaLimit) +
                                   ") is smaller than max_stanza_bytes_preauth (" +
                                   std::to_string(c.preAuthStanzaLimit) + ")");
  c.authTimeout = std::chrono::milliseconds(cfg.getInt(k, "login_timeout_ms"));
  c.maxUnauthenticated = static_cast<std::size_t>(cfg.getInt(k, "max_unauthenticated"));
  c.maxConnectionsPerIp = static_cast<std::size_t>(cfg.getInt(k, "max_connections_per_ip"));
  c.idleTimeout = std::chrono::seconds(cfg.getInt(k, "idle_timeout_seconds"));
  c.smResumeWindow = std::chrono::seconds(cfg.getInt(k, "sm_resume_seconds"));
  c.smMaxUnacked = static_cast<std::size_t>(cfg.getInt(k, "sm_max_unacked"));
  c.maxStanzasPerSecond = static_cast<double>(cfg.getInt(k, "max_stanzas_per_second"));
  c.stanzaBurst = static_cast<double>(cfg.getInt(k, "stanza_burst"));
  c.maxBytesPerSecond = static_cast<double>(cfg.getInt(k, "max_bytes_per_second"));
  c.byteBurst = static_cast<double>(cfg.getInt(k, "bytes_burst"));
  if (c.maxBytesPerSecond > 0 && c.byteBurst < static_cast<double>(c.postAuthStanzaLimit))
    throw core::ConfigError(k, "bytes_burst (" + std::to_string(static_cast<long long>(c.byteBurst)) +
                                   ") is smaller than max_stanza_bytes (" + std::to_string(c.postAuthStanzaLimit) +
                                   "): one stanza of the largest size allowed would already exceed it; raise bytes_burst");
  o.scramIterations = static_cast<std::uint32_t>(cfg.getInt(k, "scram_iterations"));
  o.allowScramSha1 = cfg.getBool(k, "allow_scram_sha1");
  c.channelBinding = cfg.getBool(k, "channel_binding");
  o.fakeCredentialSecret = cfg.getString(k, "fake_credential_secret");
  if (!o.fakeCredentialSecret.empty() && o.fakeCredentialSecret.size() < 16)
    throw core::ConfigError(k, "fake_credential_secret must have at least 16 characters (it has " +
                                   std::to_string(o.fakeCredentialSecret.size()) + ")");
  return o;
}

}  // namespace imp::xcp
