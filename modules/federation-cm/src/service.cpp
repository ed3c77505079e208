#include "imp/federation_cm/service.h"

#include <imp/core/config.h>
#include <imp/core/database.h>
#include <imp/core/metrics.h>
#include <imp/core/cluster_settings.h>
#include <imp/core/service.h>
#include <imp/core/service_params.h>
#include <imp/net/event_loop.h>
#include <imp/net/loop_group.h>
#include <imp/xcp_router/router.h>
#include <imp/xcp_router/service.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "imp/federation_cm/peer_store.h"
#include "imp/federation_cm/subscription_store.h"

namespace imp::fcm {

void addOptions(core::ConfigSchema& s) {
  using T = core::OptionType;
  s.add({kSection, "listen_address", T::String, "127.0.0.1", 0, 0, {},
         "address of the federation connection manager's SIP endpoint (TCP); the node's SIP proxy forwards to it"});
  s.add({kSection, "port", T::Int, "5080", 0, 65535, {}, "its TCP port; 0 = any free port"});
  s.add({kSection, "proxy_address", T::String, "127.0.0.1", 0, 0, {},
         "address of this node's SIP proxy, where every request goes (its TCP port is read from the database)"});
  s.add({kSection, "proxy_port", T::Int, "0", 0, 65535, {},
         "the SIP proxy's TCP port; 0 = the port the node's sip-proxy service recorded"});
  s.add({kSection, "subscribe_expires", T::Int, "7446", 60, 86400, {},
         "Expires of outgoing SUBSCRIBEs to Microsoft users (AV-2)"});
  s.add({kSection, "min_expires", T::Int, "1200", 1, 86400, {},
         "shortest Expires accepted from the Microsoft server; shorter gets 423 with Min-Expires"});
  s.add({kSection, "max_expires", T::Int, "43200", 60, 604800, {},
         "longest Expires granted to the Microsoft server; longer requests are granted this"});
  s.add({kSection, "im_idle_timeout_s", T::Int, "600", 5, 86400, {},
         "an IM conversation without a message for this long is ended with BYE (IM-2)"});
  s.add({kSection, "keepalive_interval_ms", T::Int, "15000", 100, 3600000, {},
         "OPTIONS keep-alive toward each Microsoft domain with subscriptions (AV-3)"});
  s.add({kSection, "down_probe_interval_ms", T::Int, "3000", 100, 600000, {},
         "OPTIONS interval while the Microsoft side does not answer"});
  s.add({kSection, "recovery_rate", T::Int, std::to_string(GatewayConfig{}.recoveryRate), 1, 100000, {},
         "SUBSCRIBEs and NOTIFYs per second when subscriptions are re-established (AV-3); the service parameter "
         "recovery-rate replaces it once set (impctl service param set federation-cm recovery-rate N)"});
}

GatewayConfig readOptions(const core::Config& cfg) {
  GatewayConfig g;
  g.listenAddress = cfg.getString(kSection, "listen_address");
  g.listenPort = static_cast<std::uint16_t>(cfg.getInt(kSection, "port"));
  g.proxy.address = cfg.getString(kSection, "proxy_address");
  g.proxy.port = static_cast<std::uint16_t>(cfg.getInt(kSection, "proxy_port"));
  g.proxy.transport = sip::Transport::Tcp;
  g.subscribeExpires = static_cast<std::uint32_t>(cfg.getInt(kSection, "subscribe_expires"));
  g.minExpires = static_cast<std::uint32_t>(cfg.getInt(kSection, "min_expires"));
  g.maxExpires = static_cast<std::uint32_t>(cfg.getInt(kSection, "max_expires"));
  if (g.minExpires > g.maxExpires)
    throw core::ConfigError(kSection, "min_expires = " + std::to_string(g.minExpires) + " is above max_expires = " +
                                          std::to_string(g.maxExpires));
  g.imIdleTimeout = std::chrono::seconds(cfg.getInt(kSection, "im_idle_timeout_s"));
  g.keepAliveInterval = std::chrono::milliseconds(cfg.getInt(kSection, "keepalive_interval_ms"));
  g.downProbeInterval = std::chrono::milliseconds(cfg.getInt(kSection, "down_probe_interval_ms"));
  g.recoveryRate = static_cast<unsigned>(cfg.getInt(kSection, "recovery_rate"));
  return g;
}

namespace {

class FcmService : public core::Service {
 public:
  FcmService(std::shared_ptr<xcp::XcpRuntime> xmpp, std::shared_ptr<FcmRuntime> rt)
      : xmpp_(std::move(xmpp)), runtime_(std::move(rt)) {}
  std::string_view name() const override { return kSection; }
  core::ServiceKind kind() const override { return core::ServiceKind::Feature; }
  std::vector<std::string> dependencies() const override { return {"xcp-router"}; }

  void configure(const core::ServiceContext& ctx) override {
    if (!ctx.config) throw core::ConfigError(kSection, "no impd.conf given");
    cfg_ = readOptions(*ctx.config);
    cfg_.nodeId = ctx.nodeId;
    cfg_.log = ctx.logger;
    cfg_.trace = ctx.traceFlags;
    db_ = ctx.database;
    params_ = ctx.params;
    confRecoveryRate_ = cfg_.recoveryRate;
    metrics_ = ctx.metrics;
    log_ = ctx.logger;
    loops_ = ctx.loops;
    if (!db_) throw core::ConfigError("database", "federation-cm needs the cluster database (subscriptions, settings)");
  }

  void start() override {
    auto router = xmpp_->router();
    if (!router) throw std::runtime_error("federation-cm: the xcp-router service is not running");
    readSettings();
    {
      std::lock_guard l(mu_);
      cfg_.proxy.port = proxyPort_;
    }
    // The node's shared loop, like the SIP proxy and the client connections
    // (issue 15): a message handed from the proxy to federation-cm and on
    // to the router does not wait for another thread to be scheduled. Its
    // own loop thread only where impd has none (tests).
    net::EventLoop* loop = loops_ ? &loops_->next() : nullptr;
    if (!loop) {
      loop_ = std::make_unique<net::EventLoop>();
      thread_ = std::thread([this] { loop_->run(); });
      loop = loop_.get();
    }
    store_ = std::make_unique<SubscriptionStore>(*db_, cfg_.nodeId, log_);
    cfg_.recoveryRate = readRecoveryRate(confRecoveryRate_);
    auto cfg = cfg_;
    cfg.nativeAvailable = [xmpp = xmpp_](const std::string& bare) { return xmpp->available(bare); };
    auto gw = std::make_shared<Gateway>(std::move(cfg), *loop, *router, store_.get());
    try {
      bound_ = gw->start();
    } catch (...) {
      stopLoop();
      throw;
    }
    gateway_ = gw;
    router_ = router;
    applyPeerTypes();
    router->addPredicateComponent(gw, xcp::microsoftUsers(), [this] {
      std::lock_guard l(mu_);
      return federation_;
    });
    gw->recover();
    runtime_->set(gw);
    publishEndpoint();
    registerMetrics(gw);
  }

  void stop() noexcept override {
    if (!gateway_ && !loop_) return;  // never started (the host's dependency probes)
    if (metrics_) metrics_->remove(kSection);
    runtime_->set(nullptr);
    if (auto r = router_.lock(); r && gateway_) r->removeComponent(*gateway_);
    if (gateway_) {
      gateway_->stop();
      unpublishEndpoint();
    }
    gateway_.reset();
    if (store_) store_->stop();
    stopLoop();
    store_.reset();
  }

  void reload(const core::ConfigChange& change) override {
    readSettings();
    applyPeerTypes();
    if (gateway_) {
      cfg_.recoveryRate = readRecoveryRate(cfg_.recoveryRate);
      gateway_->setRecoveryRate(cfg_.recoveryRate);  // posted to the gateway's loop
    }
    if (gateway_) {
      std::lock_guard l(mu_);
      // The proxy's port, when it is read from the database (proxy_port = 0).
      gateway_->setProxy({cfg_.proxy.address, proxyPort_, sip::Transport::Tcp});
    }
    std::lock_guard l(mu_);
    generation_ = change.toGeneration;
  }

  core::ServiceStatus status() const override {
    if (!gateway_) return {core::ServiceState::Stopped, ""};
    std::lock_guard l(mu_);
    std::string d = "SIP " + bound_.toString() + ", requests via the SIP proxy at " + cfg_.proxy.address + ":" +
                    std::to_string(proxyPort_) + (federation_.enabled ? "" : "; partitioned federation is disabled");
    if (generation_ > 0) d += "; settings generation " + std::to_string(generation_);
    return {core::ServiceState::Running, d};
  }

 private:
  void stopLoop() {
    if (loop_) loop_->stop();
    if (thread_.joinable()) thread_.join();
    loop_.reset();
  }

  // FED-4, FED-6: the partitioned-federation settings (sip_federation, the
  // SIP proxy's table) and where this node's proxy listens.
  void readSettings() {
    try {
      auto f = db_->query("SELECT enabled, routing_mode FROM sip_federation WHERE id = 1");
      std::uint16_t port = cfg_.proxy.port;
      if (port == 0) {
        auto e = db_->query("SELECT tcp_port FROM sip_node_endpoint WHERE node_id = ?", {cfg_.nodeId});
        port = e.empty() || e.num(0, "tcp_port") <= 0 ? 5060 : static_cast<std::uint16_t>(e.num(0, "tcp_port"));
      }
      std::lock_guard l(mu_);
      if (!f.empty()) {
        federation_.enabled = f.num(0, "enabled") != 0;
        federation_.advanced = f.str(0, "routing_mode") == "advanced";
      }
      proxyPort_ = port;
    } catch (const std::exception& e) {
      if (log_) log_->error("federation settings cannot be read, the previous ones stay in force: {}", e.what());
    }
  }

  // MG-3: the service parameter recovery-rate once an administrator set it
  // (cluster-wide, live), else this node's impd.conf recovery_rate; `keep`
  // when the database cannot be read.
  unsigned readRecoveryRate(unsigned keep) const {
    if (!params_) return confRecoveryRate_;
    try {
      return static_cast<unsigned>(params_->stored(kSection, kRecoveryRateParam).value_or(confRecoveryRate_));
    } catch (const std::exception& e) {
      if (log_)
        log_->error("the service parameter {} cannot be read, {} per second stays: {}", kRecoveryRateParam, keep,
                    e.what());
      return keep;
    }
  }

  // Deliverable 6: Lync or standard SIMPLE, per domain (fcm_domain_peer).
  void applyPeerTypes() {
    if (!gateway_) return;
    try {
      PeerStore peers(*db_);
      gateway_->setPeerTypes(peers.all());
    } catch (const std::exception& e) {
      if (log_) log_->error("the federated domains' peer types cannot be read, the previous ones stay: {}", e.what());
    }
  }

  void publishEndpoint() {
    try {
      auto rows = db_->query("SELECT host, port FROM fcm_node_endpoint WHERE node_id = ?", {cfg_.nodeId});
      if (rows.size() == 1 && rows.str(0, "host") == bound_.address && rows.num(0, "port") == bound_.port) return;
      db_->transaction([&](core::DbSession& s) {
        s.exec("INSERT INTO fcm_node_endpoint (node_id, host, port) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE"
               " host = VALUES(host), port = VALUES(port), updated_at = CURRENT_TIMESTAMP(3)",
               {cfg_.nodeId, bound_.address, static_cast<std::int64_t>(bound_.port)});
        core::ClusterSettings::bump(s);  // the SIP proxy re-reads where to forward
      });
    } catch (const std::exception& e) {
      if (log_) log_->error("cannot record this node's federation connection manager address: {}", e.what());
    }
  }

  // Stopped: the node's SIP proxy answers 480 for users homed here again,
  // instead of forwarding to a closed port.
  void unpublishEndpoint() noexcept {
    try {
      db_->transaction([&](core::DbSession& s) {
        if (s.exec("DELETE FROM fcm_node_endpoint WHERE node_id = ?", {cfg_.nodeId}) > 0) core::ClusterSettings::bump(s);
      });
    } catch (const std::exception& e) {
      if (log_) log_->error("cannot remove this node's federation connection manager address: {}", e.what());
    }
  }

  void registerMetrics(const std::shared_ptr<Gateway>& gw) {
    if (!metrics_) return;
    using T = core::Metrics::Type;
    std::weak_ptr<Gateway> w = gw;
    metrics_->collect("imp_fcm_subscriptions", "federated availability subscriptions, by direction and state",
                      T::Gauge, kSection, [w] {
                        std::vector<core::Metrics::Sample> v;
                        if (auto g = w.lock()) {
                          auto s = g->stats();
                          v.push_back({{{"direction", "outgoing"}, {"state", "active"}}, double(s.outgoingActive)});
                          v.push_back({{{"direction", "outgoing"}, {"state", "pending"}}, double(s.outgoingPending)});
                          v.push_back({{{"direction", "incoming"}, {"state", "active"}}, double(s.incomingActive)});
                          v.push_back({{{"direction", "incoming"}, {"state", "pending"}}, double(s.incomingPending)});
                        }
                        return v;
                      });
    metrics_->collect("imp_fcm_im_dialogs", "federated IM conversations (INVITE dialogs)", T::Gauge, kSection, [w] {
      std::vector<core::Metrics::Sample> v;
      if (auto g = w.lock()) v.push_back({{}, double(g->stats().imDialogs)});
      return v;
    });
    metrics_->collect("imp_fcm_sip_total", "SIP requests of the federation connection manager, by method and direction",
                      T::Counter, kSection, [w] {
                        std::vector<core::Metrics::Sample> v;
                        if (auto g = w.lock()) {
                          auto s = g->stats();
                          for (auto [m, d, n] : {std::tuple{"SUBSCRIBE", "out", s.subscribesSent},
                                                 {"SUBSCRIBE", "in", s.subscribesReceived},
                                                 {"NOTIFY", "out", s.notifiesSent},
                                                 {"NOTIFY", "in", s.notifiesReceived},
                                                 {"INVITE", "out", s.invitesSent},
                                                 {"INVITE", "in", s.invitesReceived},
                                                 {"MESSAGE", "out", s.messagesSent},
                                                 {"MESSAGE", "in", s.messagesReceived},
                                                 {"INFO", "out", s.infosSent},
                                                 {"INFO", "in", s.infosReceived},
                                                 {"BYE", "out", s.byesSent},
                                                 {"BYE", "in", s.byesReceived}})
                            v.push_back({{{"method", m}, {"direction", d}}, double(n)});
                        }
                        return v;
                      });
    metrics_->collect("imp_fcm_failures_total",
                      "failed requests toward the Microsoft side, by SIP code (0: timeout or transport)", T::Counter,
                      kSection, [w] {
                        std::vector<core::Metrics::Sample> v;
                        if (auto g = w.lock())
                          for (auto [code, n] : g->stats().failuresByCode)
                            v.push_back({{{"code", std::to_string(code)}}, double(n)});
                        return v;
                      });
    metrics_->collect("imp_fcm_ms_diagnostics_total", "ms-diagnostics ids in the Microsoft side's failure answers",
                      T::Counter, kSection, [w] {
                        std::vector<core::Metrics::Sample> v;
                        if (auto g = w.lock())
                          for (auto [id, n] : g->stats().failuresByDiagnostic) v.push_back({{{"id", id}}, double(n)});
                        return v;
                      });
    metrics_->collect("imp_fcm_events_total", "federation connection manager events, by event", T::Counter, kSection,
                      [w] {
                        std::vector<core::Metrics::Sample> v;
                        if (auto g = w.lock()) {
                          auto s = g->stats();
                          for (auto [e, n] : {std::pair{"xmpp_error", s.xmppErrors},
                                              {"refused", s.refused},
                                              {"recovery", s.recoveries},
                                              {"recovery_probe", s.recoveryProbes},
                                              {"keepalive_failure", s.keepAliveFailures},
                                              {"stanza_ignored", s.stanzasIgnored}})
                            v.push_back({{{"event", e}}, double(n)});
                        }
                        return v;
                      });
  }

  std::shared_ptr<xcp::XcpRuntime> xmpp_;
  std::shared_ptr<FcmRuntime> runtime_;
  GatewayConfig cfg_;
  core::Database* db_ = nullptr;
  const core::ServiceParams* params_ = nullptr;
  unsigned confRecoveryRate_ = 0;  // impd.conf's recovery_rate
  core::Metrics* metrics_ = nullptr;
  std::shared_ptr<spdlog::logger> log_;
  net::LoopGroup* loops_ = nullptr;         // the node's shared loops, if any
  std::unique_ptr<net::EventLoop> loop_;  // else its own, run by thread_
  std::thread thread_;
  std::unique_ptr<SubscriptionStore> store_;
  std::shared_ptr<Gateway> gateway_;
  std::weak_ptr<xcp::Router> router_;
  sip::Endpoint bound_;
  mutable std::mutex mu_;
  directory::FederationRouting federation_;
  std::uint16_t proxyPort_ = 5060;
  std::uint64_t generation_ = 0;
};

}  // namespace

std::unique_ptr<core::Service> makeService(std::shared_ptr<xcp::XcpRuntime> xmpp, std::shared_ptr<FcmRuntime> rt) {
  return std::make_unique<FcmService>(std::move(xmpp), std::move(rt));
}

}  // namespace imp::fcm
