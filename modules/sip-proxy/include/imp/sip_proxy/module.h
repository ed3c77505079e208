#pragma once
// The SIP Proxy module's registration (issue 15, deliverable 2):
//  service  sip-proxy ("Cisco SIP Proxy", every role, SV-2) with the seed's
//           six SIP Proxy trace filters (SV-4);
//  config   impd.conf [sip-proxy] (node_options.h);
//  routes   the proxy settings (admin_api.h registerAdminRoutes) and the
//           running proxy (registerRuntimeRoutes).
// The running proxy, shared by the service and its runtime routes, is owned
// by this registration.
namespace imp::core {
class ModuleRegistry;
}

namespace imp::sip_proxy {

void registerModule(core::ModuleRegistry& registry);

}  // namespace imp::sip_proxy
