#pragma once
// Fills the troubleshooter's Facts (checks.h) from the node: the SIP Proxy's
// cluster settings (federation, inter-cluster peers, routes, ACL, listeners,
// peer subjects, TLS contexts), the directory's presence domains and the
// users homed on this node, the presence settings (PS-1), the node
// certificate and the services running here. A store that cannot be read
// never throws out of gather(): the checks that need it are marked
// unavailable (Facts::unavailable) and report a FAIL naming the error.
#include <string>

#include "imp/troubleshoot/checks.h"

namespace imp::core {
class Database;
class ServiceHost;
struct NodeCertificate;
}  // namespace imp::core

namespace imp::troubleshoot {

struct NodeSources {
  core::Database* database = nullptr;
  core::ServiceHost* host = nullptr;
  const core::NodeCertificate* certificate = nullptr;
  std::string nodeId;
};

Facts gather(const NodeSources& node);

}  // namespace imp::troubleshoot
