#pragma once
// The modules impd runs (issue 15, deliverable 2). Adding a module is one
// call below: its services, impd.conf section(s), admin routes and commands
// come with it. impd runs the node from this registry; impctl includes this
// file only to read impd.conf with the same schema.
#include <imp/core/config.h>
#include <imp/core/module_registry.h>
#include <imp/bulk_provisioning/module.h>
#include <imp/directory/module.h>
#include <imp/federation_cm/module.h>
#include <imp/serviceability/module.h>
#include <imp/sip_proxy/module.h>
#include <imp/troubleshoot/module.h>
#include <imp/xcp_router/module.h>

namespace imp::apps {

inline void registerModules(core::ModuleRegistry& registry) {
  serviceability::registerModule(registry);
  directory::registerModule(registry);
  sip_proxy::registerModule(registry);
  troubleshoot::registerModule(registry);
  auto xmpp = xcp::registerModule(registry);
  fcm::registerModule(registry, xmpp);
  bat::registerModule(registry, std::move(xmpp));
}

// The impd.conf schema: core options plus every module's section(s).
inline const core::ConfigSchema& nodeSchema() {
  static const core::ConfigSchema s = [] {
    core::ModuleRegistry r;
    registerModules(r);
    return r.configSchema();
  }();
  return s;
}

}  // namespace imp::apps
