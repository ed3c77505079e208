#pragma once
// The [sip-proxy] section of impd.conf: what differs per node. Listener
// ports are cluster settings (TLS-1, `impctl listener set`); a node may
// override them here, e.g. to run several nodes on one machine or to keep a
// port another local program holds.
#include <chrono>
#include <map>
#include <string>

#include "imp/sip_proxy/flood.h"

namespace imp::core {
class Config;
class ConfigSchema;
}  // namespace imp::core

namespace imp::sip_proxy {

void addNodeOptions(core::ConfigSchema& schema);

struct NodeOptions {
  std::string listenAddress = "0.0.0.0";
  std::string advertisedHost;  // "" = the host name
  // listener name -> port for this node; absent = the cluster setting.
  // 0 = any free port (tests).
  std::map<std::string, int> portOverrides;
  std::chrono::milliseconds hopTimeout{5000};
  std::chrono::milliseconds probeInterval{30000};
  std::chrono::milliseconds connectTimeout{5000};
  FloodConfig flood;
};

// Reads the section (the schema has already checked types and ranges);
// throws core::ConfigError for what the schema cannot check.
NodeOptions readNodeOptions(const core::Config& cfg);

}  // namespace imp::sip_proxy
