#pragma once
// The serviceability module's registration (issue 15, deliverable 2):
//  services   serviceability ("Cisco Unified Serviceability") and
//             ris-collector ("Cisco RIS Data Collector"), every role;
//  routes     /health, /metrics, status, services, trace, db (admin_api.h);
//  node hooks registers the node at start-up, applies its stored trace
//             settings, marks it down at shutdown;
//  activation which services this node runs: the role's defaults overridden
//             by activation rows (SV-3).
// The module owns the node's NodeControl, shared by its services and routes;
// it is built when the admin routes are registered.
namespace imp::core {
class ModuleRegistry;
}

namespace imp::serviceability {

void registerModule(core::ModuleRegistry& registry);

}  // namespace imp::serviceability
