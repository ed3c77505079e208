#include "imp/sip_proxy/proxy_service.h"

#include <unistd.h>

#include <imp/core/config.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>

#include "imp/sip_proxy/config_store.h"

namespace imp::sip_proxy {

namespace {

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "";
  return buf;
}

class ProxyService : public core::Service {
 public:
  explicit ProxyService(ProxyServiceOptions o) : opts_(std::move(o)) {}
  ~ProxyService() override { stop(); }

  std::string_view name() const override { return "sip-proxy"; }
  core::ServiceKind kind() const override { return core::ServiceKind::Feature; }

  void configure(const core::ServiceContext& ctx) override {
    db_ = ctx.database;
    log_ = ctx.logger;
    cfg_ = ProxyConfig{};
    cfg_.nodeId = ctx.nodeId.empty() ? "imp" : ctx.nodeId;
    cfg_.advertisedHost = !opts_.advertisedHost.empty() ? opts_.advertisedHost : hostName();
    cfg_.tlsClient = opts_.tlsClient;
    cfg_.directory = opts_.directory;
    cfg_.log = log_;
    cfg_.traceFlags = opts_.traceFlags;
    notes_.clear();
    listeners_ = db_ ? ConfigStore(*db_).listeners() : std::vector<Listener>{{"tcp", true, 5060}};
    for (const auto& l : listeners_) {
      if (!l.enabled) continue;
      const ListenerInfo* info = findListener(l.name);
      if (!info) throw std::runtime_error("in [sip-proxy]: unknown listener '" + l.name + "'");
      if (auto e = checkPort(l.port); !e.empty()) throw std::runtime_error("in [sip-proxy]: listener " + l.name + ": " + e);
      ProxyListener pl;
      pl.address = opts_.listenAddress;
      pl.port = static_cast<std::uint16_t>(l.port);
      if (info->transport == "TLS") {
        auto it = opts_.tlsServer.find(l.name);
        if (it == opts_.tlsServer.end() || !it->second) {
          notes_ += "; " + std::string(info->displayName) + " not opened (no TLS context)";
          continue;
        }
        pl.transport = sip::Transport::Tls;
        pl.tls = it->second;
      } else {
        pl.transport = sip::Transport::Tcp;
      }
      cfg_.listeners.push_back(std::move(pl));
    }
    if (cfg_.listeners.empty()) throw std::runtime_error("in [sip-proxy]: no listener enabled");
    policy_ = readPolicy();
  }

  void start() override {
    std::lock_guard l(mu_);
    proxy_ = std::make_unique<Proxy>(cfg_, policy_);
    proxy_->start();
    std::string where;
    for (const auto& e : proxy_->endpoints()) where += (where.empty() ? "" : ", ") + e.toString();
    detail_ = "listening on " + where + notes_;
    if (log_) log_->info("SIP proxy {}", detail_);
    running_ = true;
  }

  void stop() noexcept override {
    std::lock_guard l(mu_);
    running_ = false;
    if (proxy_) proxy_->stop();
  }

  void reload(const core::ConfigChange& change) override {
    std::lock_guard l(mu_);
    if (!proxy_ || !running_) return;
    auto p = readPolicy();
    proxy_->updatePolicy(p);
    if (db_ && ConfigStore(*db_).listeners() != listeners_ && log_)
      log_->warn("listener settings changed: restart the sip-proxy service to apply them");
    if (log_) log_->info("settings generation {} applied (ACL, static routes, federation)", change.toGeneration);
  }

  core::ServiceStatus status() const override {
    std::lock_guard l(mu_);
    return {running_ ? core::ServiceState::Running : core::ServiceState::Stopped, running_ ? detail_ : ""};
  }

 private:
  ProxyPolicy readPolicy() const {
    ProxyPolicy p;
    p.clusterNodes = {cfg_.nodeId};
    p.nodeAddresses = opts_.nodeAddresses;
    for (const auto& [node, addr] : p.nodeAddresses) p.clusterNodes.push_back(node);
    if (!db_) return p;
    ConfigStore store(*db_);
    p.acl = store.acl();
    p.routes = store.routes();
    p.federation = store.federation().settings;
    return p;
  }

  ProxyServiceOptions opts_;
  core::Database* db_ = nullptr;
  std::shared_ptr<spdlog::logger> log_;
  ProxyConfig cfg_;
  ProxyPolicy policy_;
  std::vector<Listener> listeners_;
  std::string notes_;
  mutable std::mutex mu_;
  std::unique_ptr<Proxy> proxy_;
  std::atomic<bool> running_{false};
  std::string detail_;
};

}  // namespace

std::unique_ptr<core::Service> makeSipProxyService(ProxyServiceOptions options) {
  return std::make_unique<ProxyService>(std::move(options));
}

core::ServiceDescriptor sipProxyService(ProxyServiceOptions options) {
  return {"sip-proxy", "Cisco SIP Proxy", core::ServiceKind::Feature,
          [options] { return makeSipProxyService(options); }};
}

}  // namespace imp::sip_proxy
