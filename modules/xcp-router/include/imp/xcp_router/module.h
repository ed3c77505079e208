#pragma once
// modules/xcp-router: the XMPP router and session manager (issue 16). One
// registration adds its admin routes and commands (and its services).
namespace imp::core {
class ModuleRegistry;
}

namespace imp::xcp {

void registerModule(core::ModuleRegistry& registry);

}  // namespace imp::xcp
