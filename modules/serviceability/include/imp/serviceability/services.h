#pragma once
// The serviceability module's two services (SV-1, SV-3):
//  serviceability  "Cisco Unified Serviceability": applies serviceability
//                  changes made for this node anywhere in the cluster
//                  (activation, trace, remote start/stop/restart) when the
//                  cluster settings generation moves.
//  ris-collector   "Cisco RIS Data Collector": publishes this node's
//                  heartbeat and service states to the cluster database every
//                  heartbeat_interval, which `impctl status --cluster` reads.
#include <imp/core/service.h>

#include <memory>

namespace imp::serviceability {

class NodeControl;

// Registered by registerModule (module.h); `control` outlives the service.
std::unique_ptr<core::Service> makeServiceabilityService(NodeControl& control);
std::unique_ptr<core::Service> makeRisCollector(NodeControl& control);

}  // namespace imp::serviceability
