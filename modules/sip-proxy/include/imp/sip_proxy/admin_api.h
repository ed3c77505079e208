#pragma once
// Admin API routes of the SIP Proxy settings (impctl federation / listener /
// tls / acl / route):
//
//   GET  /api/v1/federation                 PUT /api/v1/federation
//   GET  /api/v1/listeners                  PUT /api/v1/listeners/{name}
//   GET  /api/v1/tls/peer-subjects          POST /api/v1/tls/peer-subjects
//   DELETE /api/v1/tls/peer-subjects/{cn}
//   GET  /api/v1/tls/contexts               PUT /api/v1/tls/contexts/{name}
//   GET  /api/v1/acl     POST /api/v1/acl   DELETE /api/v1/acl/{pattern}
//   GET  /api/v1/routes  POST /api/v1/routes  DELETE /api/v1/routes/{id}
//   GET  /api/v1/routing/decision?recipient=ADDR   (what the proxy would do)
//
// Bodies are JSON objects; unknown fields are refused. The store and the
// directory must outlive the router.
namespace imp::core {
class AdminRouter;
}
namespace imp::directory {
class Directory;
}

namespace imp::sip_proxy {

class ConfigStore;
class ProxyHandle;

void registerAdminRoutes(core::AdminRouter& router, ConfigStore& store, directory::Directory& dir);

// The running proxy on this node (503 service_not_running while stopped):
//
//   GET    /api/v1/sip-proxy/bans             flood-limiter bans (RT-7)
//   DELETE /api/v1/sip-proxy/bans             lift every ban
//   DELETE /api/v1/sip-proxy/bans/{address}   lift one (404 if not banned)
//   GET    /api/v1/sip-proxy/stats            counters and next hops marked down
void registerRuntimeRoutes(core::AdminRouter& router, ProxyHandle& proxy);

}  // namespace imp::sip_proxy
