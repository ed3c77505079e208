#pragma once
// modules/federation-cm (issue 17): one registration adds the service
// federation-cm ("Cisco XCP SIP Federation Connection Manager", a feature
// service: activate it with `impctl service activate federation-cm`), its
// impd.conf section [federation-cm] and the commands `impctl federation
// sessions|subscriptions`. It plugs into the XMPP router of the xcp-router
// module, whose runtime it is given.
#include <memory>

namespace imp::core {
class ModuleRegistry;
}
namespace imp::xcp {
class XcpRuntime;
}

namespace imp::fcm {

void registerModule(core::ModuleRegistry& registry, std::shared_ptr<xcp::XcpRuntime> xmpp);

}  // namespace imp::fcm
