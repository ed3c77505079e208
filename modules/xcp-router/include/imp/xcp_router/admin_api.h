#pragma once
// The XMPP session commands (issue 16, deliverable 8), declared once in the
// command registry:
//   impctl session list [--user USERID]  GET  /api/v1/xmpp/sessions
//   impctl session kick USERID           POST /api/v1/xmpp/sessions/{userid}/kick
// Their handlers work on the XcpRuntime (service.h), which registerModule
// provides; while xcp-connection-manager is not running they answer 503.
namespace imp::core {
class CommandRegistry;
}

namespace imp::xcp {

void registerSessionCommands(core::CommandRegistry& registry);

}  // namespace imp::xcp
