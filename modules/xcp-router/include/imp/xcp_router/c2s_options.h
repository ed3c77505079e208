#pragma once
// The [xcp-connection-manager] section of impd.conf (issue 16, deliverable
// 2): this node's client listeners and the abuse limits of its streams
// (XEP-0205 in spirit, advertised with XEP-0478). Every key is documented in
// impd.conf(5) and etc/impd.conf.example.
#include <string>

#include "imp/xcp_router/c2s.h"

namespace imp::core {
class Config;
class ConfigSchema;
}  // namespace imp::core

namespace imp::xcp {

inline constexpr const char* kC2sSection = "xcp-connection-manager";

void addC2sOptions(core::ConfigSchema& schema);

struct C2sNodeOptions {
  C2sConfig c2s;               // listeners and limits (nodeId and sasl are left to the service)
  std::string advertisedHost;  // "" = the host name: what see-other-host names
  std::uint32_t scramIterations = 4096;
  bool allowScramSha1 = true;
  std::string fakeCredentialSecret;  // "" = derived from the node certificate's key file path and node id
};

// Reads the section (the schema has checked types and ranges); throws
// core::ConfigError "in [xcp-connection-manager]: ..." for the rest.
C2sNodeOptions readC2sOptions(const core::Config& cfg);

}  // namespace imp::xcp
