#pragma once
// The bulk-provisioning module's registration (core/module_registry.h): the
// service `bulk-provisioning` ("Cisco Bulk Provisioning Service", publisher
// role and single node), its service parameter import-rate (MG-3) and the
// `impctl bat ...` commands (issue 18).
#include <memory>

namespace imp::core {
class ModuleRegistry;
}
namespace imp::xcp {
class XcpRuntime;
}

namespace imp::bat {

void registerModule(core::ModuleRegistry& registry, std::shared_ptr<xcp::XcpRuntime> xmpp);

}  // namespace imp::bat
