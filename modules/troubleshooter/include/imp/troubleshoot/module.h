#pragma once
// The troubleshooter module's registration (SV-6, TLS-5, TS-1..TS-11):
//  commands  impctl troubleshoot (GET /api/v1/troubleshoot): the checks of
//            checks.h over the node's configuration, gathered by gather.h.
// It runs no service.
namespace imp::core {
class ModuleRegistry;
}

namespace imp::troubleshoot {

void registerModule(core::ModuleRegistry& registry);

}  // namespace imp::troubleshoot
