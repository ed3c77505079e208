#pragma once
// The federation-cm service (issue 17): a thin adapter over Gateway.
//   configure() reads [federation-cm] (listen address and port, the local SIP
//               proxy, subscription expiries, IM idle timeout, keep-alive
//               and recovery pacing);
//   start()     runs the gateway on its own event loop, registers it with the
//               XMPP router as the component for Microsoft users, recovers
//               the stored subscriptions (AV-3) and records its address in
//               fcm_node_endpoint for the node's SIP proxy;
//   reload()    applies the partitioned-federation settings (FED-4) and the
//               proxy's port live;
//   stop()      removes the component, ends IM dialogs, keeps subscriptions.
#include <memory>
#include <mutex>

#include "imp/federation_cm/gateway.h"

namespace imp::core {
class Service;
class Config;
class ConfigSchema;
}  // namespace imp::core
namespace imp::xcp {
class XcpRuntime;
}

namespace imp::fcm {

// What the service shares with the admin commands; thread-safe.
class FcmRuntime {
 public:
  std::shared_ptr<Gateway> gateway() const {
    std::lock_guard l(mu_);
    return gateway_;
  }
  void set(std::shared_ptr<Gateway> g) {
    std::lock_guard l(mu_);
    gateway_ = std::move(g);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<Gateway> gateway_;
};

inline constexpr const char* kSection = "federation-cm";
// The service parameter (MG-3) that, once an administrator sets it, replaces
// impd.conf's recovery_rate on every node, live (GatewayConfig::recoveryRate).
inline constexpr const char* kRecoveryRateParam = "recovery-rate";
void addOptions(core::ConfigSchema& s);
// The options as a GatewayConfig (nodeId, proxy, log and trace are the
// service's); throws core::ConfigError for a value out of range.
GatewayConfig readOptions(const core::Config& cfg);

std::unique_ptr<core::Service> makeService(std::shared_ptr<xcp::XcpRuntime> xmpp, std::shared_ptr<FcmRuntime> rt);

}  // namespace imp::fcm
