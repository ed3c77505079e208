#pragma once
// modules/xcp-router: the XMPP router and session manager (issue 16). One
// registration adds its services (xcp-router "Cisco XCP Router",
// xcp-connection-manager "Cisco XCP Connection Manager", service.h), its
// impd.conf section [xcp-connection-manager] (c2s_options.h), its admin
// routes and commands.
#include <memory>

namespace imp::core {
class ModuleRegistry;
}

namespace imp::xcp {

class XcpRuntime;

// Returns the runtime the XMPP services share, for modules that plug into
// the router (the federation connection manager).
std::shared_ptr<XcpRuntime> registerModule(core::ModuleRegistry& registry);

}  // namespace imp::xcp
