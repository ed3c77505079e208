#pragma once
// The SIP Proxy's impctl commands and admin API routes, declared once in the
// command registry (issue 15 deliverable 4). Settings (their handlers use the
// ConfigStore, and route lookup also the directory::Directory, provided to
// the registry):
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
// The running proxy on this node (the ProxyHandle provided to the registry;
// 503 service_not_running while stopped):
//
//   GET    /api/v1/sip-proxy/bans             flood-limiter bans (RT-7)
//   DELETE /api/v1/sip-proxy/bans             lift every ban
//   DELETE /api/v1/sip-proxy/bans/{address}   lift one (404 if not banned)
//   GET    /api/v1/sip-proxy/stats            counters and next hops marked down
//
// Bodies are JSON objects; unknown fields are refused.
namespace imp::core {
class CommandRegistry;
}

namespace imp::sip_proxy {

void registerCommands(core::CommandRegistry& registry);

}  // namespace imp::sip_proxy
