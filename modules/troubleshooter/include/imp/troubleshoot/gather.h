#pragma once
// Fills the troubleshooter's Facts (checks.h) from the node: the SIP Proxy's
// cluster settings (federation, inter-cluster peers, routes, ACL, listeners,
// peer subjects, TLS contexts), the directory's presence domains and the
// users homed on this node, the presence settings (PS-1), the node
// certificate and the services running here; then probes the network
// (probe.h): the next hops of the static routes and the reverse DNS of the
// peers' addresses. A store that cannot be read
// never throws out of gather(): the checks that need it are marked
// unavailable (Facts::unavailable) and report a FAIL naming the error.
#include <memory>
#include <string>

#include "imp/troubleshoot/checks.h"
#include "imp/troubleshoot/probe.h"

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
  // For the probes: the resolver (null: next-hops and peer-reverse-dns are
  // unavailable), the timeouts and the node's name. Without a TLS context
  // gather() builds one as the SIP proxy does: the node certificate, the
  // trust bundle (or [tls] ca_file), the default-server context's versions.
  ProbeConfig probe;
};

Facts gather(const NodeSources& node);

}  // namespace imp::troubleshoot
