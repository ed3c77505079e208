#include "imp/xcp_router/service.h"

#include <imp/core/cert_tools.h>
#include <imp/core/certificates.h>
#include <imp/core/config.h>
#include <imp/core/database.h>
#include <imp/core/metrics.h>
#include <imp/directory/directory.h>
#include <imp/directory/routing.h>
#include <imp/net/loop_group.h>
#include <imp/net/tls.h>
#include <imp/net/worker_pool.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include "imp/xcp_router/c2s_options.h"
#include "imp/xcp_router/offline_store.h"
#include "imp/xcp_router/presence_settings.h"
#include "imp/xcp_router/privacy_policy.h"
#include "imp/xcp_router/privacy_store.h"
#include "imp/xcp_router/roster_store.h"
#include "imp/xcp_router/router.h"
#include "imp/xcp_router/session.h"

namespace imp::xcp {

std::shared_ptr<Router> XcpRuntime::router() const {
  std::lock_guard l(mu_);
  return router_;
}
std::shared_ptr<C2sServer> XcpRuntime::c2s() const {
  std::lock_guard l(mu_);
  return c2s_;
}
void XcpRuntime::setRouter(std::shared_ptr<Router> r, std::shared_ptr<SessionManager> sm) {
  std::lock_guard l(mu_);
  router_ = std::move(r);
  sessionManager_ = std::move(sm);
}
void XcpRuntime::setC2s(std::shared_ptr<C2sServer> c) {
  std::lock_guard l(mu_);
  c2s_ = std::move(c);
}
std::optional<std::vector<C2sSessionInfo>> XcpRuntime::sessions(const std::string& userid) const {
  auto c = c2s();
  if (!c) return std::nullopt;
  return c->sessions(userid);
}
bool XcpRuntime::available(const std::string& bareJid) const {
  std::shared_ptr<SessionManager> sm;
  {
    std::lock_guard l(mu_);
    sm = sessionManager_;
  }
  return sm && !sm->availableResources(bareJid).empty();
}
bool XcpRuntime::pushRoster(const std::string& ownerBare, const std::vector<RosterItem>& items, std::uint64_t version) {
  std::shared_ptr<SessionManager> sm;
  {
    std::lock_guard l(mu_);
    sm = sessionManager_;
  }
  return sm && sm->pushRosterChanges(ownerBare, items, version);
}
void XcpRuntime::probe(const std::string& ownerBare, const std::string& contactBare) {
  std::shared_ptr<SessionManager> sm;
  {
    std::lock_guard l(mu_);
    sm = sessionManager_;
  }
  if (sm) sm->probeContact(ownerBare, contactBare);
}
void XcpRuntime::endSubscriptions(const std::string& ownerBare, const RosterItem& was) {
  std::shared_ptr<SessionManager> sm;
  {
    std::lock_guard l(mu_);
    sm = sessionManager_;
  }
  if (sm) sm->endSubscriptions(ownerBare, was);
}
bool XcpRuntime::reloadBlockList(const std::string& ownerBare) {
  auto r = router();
  if (!r || r->resourcesOf(ownerBare).empty()) return false;
  r->blocking().refresh(ownerBare, [](bool) {});
  return true;
}
std::optional<std::size_t> XcpRuntime::kick(const std::string& userid) {
  auto c = c2s();
  if (!c) return std::nullopt;
  return c->kick(userid);
}

namespace {

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
  return buf;
}

// ---------------- xcp-router ----------------

class RouterService : public core::Service {
 public:
  explicit RouterService(std::shared_ptr<XcpRuntime> rt) : runtime_(std::move(rt)) {}
  std::string_view name() const override { return "xcp-router"; }
  core::ServiceKind kind() const override { return core::ServiceKind::Network; }

  void configure(const core::ServiceContext& ctx) override {
    db_ = ctx.database;
    workers_ = ctx.workers;
    nodeId_ = ctx.nodeId;
    log_ = ctx.logger;
    metrics_ = ctx.metrics;
    if (!db_) throw core::ConfigError("database", "xcp-router needs the cluster database (users and domains)");
  }

  void start() override {
    directory_ = std::make_unique<directory::Directory>(*db_);
    lookup_ = directory::directoryLookup(*directory_);
    auto router = std::make_shared<Router>(nodeId_, *lookup_, workers_);
    // The session manager's data (issue 16 deliverables 3-6); its database
    // work runs on the node's worker pool.
    rosters_ = std::make_unique<RosterStore>(*db_);
    decisions_ = std::make_unique<PrivacyStore>(*db_);
    blocks_ = std::make_unique<BlockList>(*db_);
    offline_ = std::make_unique<OfflineStore>(*db_);
    settingsStore_ = std::make_unique<PresenceSettingsStore>(*db_);
    presence_ = std::make_unique<LivePresenceSettings>(*settingsStore_);
    policy_ = std::make_unique<PrivacyPolicy>(*decisions_, *blocks_, *presence_);
    reloadPresenceSettings();
    accounts_ = databaseAccounts(*db_);
    SessionManagerData data;
    data.roster = rosters_.get();
    data.blocks = blocks_.get();
    data.policy = policy_.get();
    data.offline = offline_.get();
    data.settings = presence_.get();
    data.userOf = [accounts = accounts_](const std::string& bare) -> std::optional<std::string> {
      auto a = accounts->account(bare);
      if (!a) return std::nullopt;
      return a->userid;
    };
    try {
      data.offlineQueued = offline_->totalOnNode(nodeId_);
    } catch (const std::exception& e) {
      // The gauge then counts from 0; routing does not depend on it.
      if (log_) log_->error("the offline messages of this node's users cannot be counted: {}", e.what());
    }
    auto sm = std::make_shared<SessionManager>(*router, log_, workers_, std::move(data));
    sm->attach();
    loadDomains(*router);
    {
      std::lock_guard l(mu_);
      router_ = router;
      sm_ = sm;
    }
    runtime_->setRouter(router, sm);
    registerMetrics();
  }

  void stop() noexcept override {
    if (metrics_) metrics_->remove("xcp-router");
    runtime_->setRouter(nullptr, nullptr);
    std::shared_ptr<SessionManager> sm;
    std::shared_ptr<Router> router;
    {
      std::lock_guard l(mu_);
      stopped_ = true;
      sm = sm_;
      router = router_;
    }
    // Presence still waiting for a directory decision (a mass logout's
    // broadcasts) is dropped from here on, counted: the stop is bounded.
    if (router) router->beginStop();
    // The session manager's jobs on the node's workers use the stores this
    // service owns: they finish first (the connection manager, stopped
    // before, has sent its sessions' unavailable presence).
    if (sm && !sm->drain(std::chrono::seconds(5)) && log_)
      log_->error("the session manager's database work did not finish within 5 s of stopping");
    // What is still queued is dropped (and counted); what runs is waited
    // for: no job may outlive the stores.
    if (sm) sm->stop();
  }

  void reload(const core::ConfigChange& change) override {
    std::shared_ptr<Router> r;
    {
      std::lock_guard l(mu_);
      r = router_;
    }
    if (r) loadDomains(*r);
    // PS-1/PS-2: limits and automatic approval apply live.
    if (r) reloadPresenceSettings();
    std::lock_guard l(mu_);
    generation_ = change.toGeneration;
  }

  core::ServiceStatus status() const override {
    std::lock_guard l(mu_);
    if (!router_ || stopped_) return {core::ServiceState::Stopped, ""};
    std::string detail =
        std::to_string(domains_) + " local presence domain(s), " + std::to_string(router_->sessionCount()) + " session(s)";
    // What `impctl service list` shows and the tests wait on: the settings
    // generation whose presence settings (PS-1, PS-2) are live.
    if (generation_ > 0) detail += "; settings generation " + std::to_string(generation_);
    return {core::ServiceState::Running, detail};
  }

 private:
  void loadDomains(Router& r) {
    auto d = lookup_->localDomains();
    if (!d) {
      if (log_) log_->warn("the local presence domains cannot be listed; each domain is asked of the directory");
      return;
    }
    std::lock_guard l(mu_);
    domains_ = d->size();
    r.setLocalDomains(std::move(*d));
  }

  void reloadPresenceSettings() {
    try {
      presence_->reload();
    } catch (const std::exception& e) {
      // LivePresenceSettings keeps the last snapshot; the next generation retries.
      if (log_) log_->error("the presence settings cannot be read, the previous ones stay in force: {}", e.what());
    }
  }

  void registerMetrics() {
    if (!metrics_) return;
    using T = core::Metrics::Type;
    std::weak_ptr<Router> w = router_;
    std::weak_ptr<SessionManager> wsm = sm_;
    metrics_->collect("imp_xmpp_sessions", "bound XMPP client sessions", T::Gauge, "xcp-router", [w] {
      std::vector<core::Metrics::Sample> v;
      if (auto r = w.lock()) v.push_back({{}, static_cast<double>(r->sessionCount())});
      return v;
    });
    metrics_->collect("imp_xmpp_offline_messages", "offline messages stored for the users homed on this node (IM-5)",
                      T::Gauge, "xcp-router", [wsm] {
                        std::vector<core::Metrics::Sample> v;
                        if (auto sm = wsm.lock())
                          v.push_back({{}, static_cast<double>(std::max<std::int64_t>(0, sm->stats().offlineQueued))});
                        return v;
                      });
    // The session manager's work and its failures, by event (storeErrors:
    // database failures; failed_job: a job that threw, its stanza answered
    // internal-server-error; refused_job: the worker pool refused it).
    metrics_->collect("imp_xmpp_session_manager_total", "session manager events, by event", T::Counter, "xcp-router",
                      [wsm] {
                        std::vector<core::Metrics::Sample> v;
                        if (auto sm = wsm.lock()) {
                          const auto& st = sm->stats();
                          for (auto [event, n] : {std::pair{"to_resource", st.toResources.load()},
                                                  {"bounced", st.bounced.load()},
                                                  {"dropped_by_rule", st.droppedByRule.load()},
                                                  {"broadcast", st.broadcasts.load()},
                                                  {"probe", st.probes.load()},
                                                  {"roster_push", st.rosterPushes.load()},
                                                  {"subscription", st.subscriptions.load()},
                                                  {"polite_block", st.politeBlocks.load()},
                                                  {"blocked", st.blocked.load()},
                                                  {"offline_stored", st.offlineStored.load()},
                                                  {"offline_delivered", st.offlineDelivered.load()},
                                                  {"store_error", st.storeErrors.load()},
                                                  {"failed_job", st.failedJobs.load()},
                                                  {"refused_job", st.refusedJobs.load()}})
                            v.push_back({{{"event", event}}, static_cast<double>(n)});
                        }
                        return v;
                      });
    metrics_->collect("imp_xmpp_routed_total", "stanzas routed, by destination", T::Counter, "xcp-router", [w] {
      std::vector<core::Metrics::Sample> v;
      if (auto r = w.lock()) {
        auto s = r->stats();
        v.push_back({{{"to", "session"}}, static_cast<double>(s.toSessions)});
        v.push_back({{{"to", "session_manager"}}, static_cast<double>(s.toLocal)});
        v.push_back({{{"to", "component"}}, static_cast<double>(s.toComponents)});
        v.push_back({{{"to", "bounced"}}, static_cast<double>(s.bounced)});
        v.push_back({{{"to", "dropped_at_stop"}}, static_cast<double>(s.droppedAtStop)});
      }
      return v;
    });
    metrics_->collect("imp_xmpp_directory_decisions_total",
                      "routing decisions for recipients not online here, by source (directory: asked the database; "
                      "cache: the recipient cache of this settings generation)",
                      T::Counter, "xcp-router", [w] {
                        std::vector<core::Metrics::Sample> v;
                        if (auto r = w.lock()) {
                          auto s = r->stats();
                          v.push_back({{{"source", "cache"}}, static_cast<double>(s.directoryCacheHits)});
                          // stats() reads the counters one by one: never below zero.
                          const double asked = static_cast<double>(s.directoryLookups) -
                                               static_cast<double>(s.directoryCacheHits + s.droppedAtStop);
                          v.push_back({{{"source", "directory"}}, asked > 0 ? asked : 0.0});
                        }
                        return v;
                      });
  }

  std::shared_ptr<XcpRuntime> runtime_;
  core::Database* db_ = nullptr;
  net::WorkerPool* workers_ = nullptr;
  std::string nodeId_;
  std::shared_ptr<spdlog::logger> log_;
  core::Metrics* metrics_ = nullptr;
  std::unique_ptr<directory::Directory> directory_;
  std::unique_ptr<directory::DirectoryLookup> lookup_;
  std::unique_ptr<RosterStore> rosters_;
  std::unique_ptr<PrivacyStore> decisions_;
  std::unique_ptr<BlockList> blocks_;
  std::unique_ptr<OfflineStore> offline_;
  std::unique_ptr<PresenceSettingsStore> settingsStore_;
  std::unique_ptr<LivePresenceSettings> presence_;
  std::unique_ptr<PrivacyPolicy> policy_;
  std::shared_ptr<C2sAccounts> accounts_;
  mutable std::mutex mu_;
  std::shared_ptr<Router> router_;
  std::shared_ptr<SessionManager> sm_;
  std::size_t domains_ = 0;
  std::uint64_t generation_ = 0;  // last settings generation applied
  bool stopped_ = false;
};

// ---------------- xcp-connection-manager ----------------

class ConnectionManagerService : public core::Service {
 public:
  explicit ConnectionManagerService(std::shared_ptr<XcpRuntime> rt) : runtime_(std::move(rt)) {}
  std::string_view name() const override { return "xcp-connection-manager"; }
  core::ServiceKind kind() const override { return core::ServiceKind::Network; }
  std::vector<std::string> dependencies() const override { return {"xcp-router"}; }

  void configure(const core::ServiceContext& ctx) override {
    if (!ctx.config) throw core::ConfigError(kC2sSection, "no impd.conf given");
    opts_ = readC2sOptions(*ctx.config);
    if (!ctx.certificate)
      throw core::ConfigError(kC2sSection, "TLS is mandatory for XMPP clients (RFC 6120 §5) and there is no node "
                                           "certificate ([tls])");
    certFile_ = ctx.certificate->certFile.string();
    keyFile_ = ctx.certificate->keyFile.string();
    db_ = ctx.database;
    loops_ = ctx.loops;
    workers_ = ctx.workers;
    nodeId_ = ctx.nodeId;
    log_ = ctx.logger;
    metrics_ = ctx.metrics;
    if (!db_) throw core::ConfigError("database", "xcp-connection-manager needs the cluster database (credentials)");
  }

  void start() override {
    auto router = runtime_->router();
    if (!router) throw std::runtime_error("xcp-connection-manager: the xcp-router service is not running");
    std::string certKey;
    auto tls = serverContext(&certKey);
    if (!loops_) {
      ownLoops_ = std::make_unique<net::LoopGroup>(net::LoopGroupConfig{"xcp-c2s", 1});
      ownLoops_->start();
      loops_ = ownLoops_.get();
    }
    if (!workers_) {
      ownWorkers_ = std::make_unique<net::WorkerPool>(net::WorkerPoolConfig{"xcp-auth", 2, 1024});
      workers_ = ownWorkers_.get();
    }
    C2sConfig cfg = opts_.c2s;
    cfg.nodeId = nodeId_;
    cfg.serverVersion = IMP_XCP_VERSION;
    auto sasl = std::make_shared<xmpp::SaslConfig>();
    sasl->domain = "template";  // C2sServer sets each stream's domain (authzid check, RFC 6120 §6.3.8)
    sasl->iterations = opts_.scramIterations;
    sasl->allowSha1 = opts_.allowScramSha1;
    sasl->fakeCredentialSecret =
        !opts_.fakeCredentialSecret.empty() ? opts_.fakeCredentialSecret : "imp-fake-scram-" + nodeId_ + "-salt";
    cfg.sasl = sasl;
    auto server = std::make_shared<C2sServer>(cfg, tls, *router, databaseAccounts(*db_), *loops_, *workers_, log_);
    server->start();
    {
      std::lock_guard l(mu_);
      server_ = server;
      certKey_ = certKey;
      detail_ = "client port " + std::to_string(server->clientPort()) +
                (server->tlsPort() >= 0 ? ", direct-TLS port " + std::to_string(server->tlsPort()) : "");
    }
    runtime_->setC2s(server);
    publishEndpoint(*server);
    registerMetrics(server);
  }

  void stop() noexcept override {
    if (metrics_) metrics_->remove("xcp-connection-manager");
    runtime_->setC2s(nullptr);
    std::shared_ptr<C2sServer> s;
    {
      std::lock_guard l(mu_);
      s = std::move(server_);
    }
    if (s) s->stop();
    if (ownLoops_) ownLoops_->stop();
  }

  // Certificate management (TLS-4): `impctl cert upload` rewrites the node
  // certificate files and bumps the settings generation; new client
  // connections (direct TLS and STARTTLS) then present the new certificate,
  // those in TLS already keep their session. A certificate or key that
  // cannot be read or loaded is logged and the previous one stays.
  void reload(const core::ConfigChange&) override {
    std::shared_ptr<C2sServer> server;
    std::string was;
    {
      std::lock_guard l(mu_);
      server = server_;
      was = certKey_;
    }
    if (!server) return;
    try {
      std::string now;
      core::CertInfo cert;
      if (!certificateKey(&now, &cert) || now == was) return;
      std::string key;
      auto tls = serverContext(&key);
      server->setTls(std::move(tls));
      {
        std::lock_guard l(mu_);
        certKey_ = key;
      }
      if (log_) log_->info("node certificate changed: XMPP client TLS now presents {} {}", cert.subjectCn, cert.sha256);
    } catch (const std::exception& e) {
      if (log_) log_->error("node certificate {} not applied to XMPP client TLS, the previous one stays: {}", certFile_,
                            e.what());
    }
  }

  core::ServiceStatus status() const override {
    std::lock_guard l(mu_);
    if (!server_) return {core::ServiceState::Stopped, ""};
    return {core::ServiceState::Running, detail_};
  }

 private:
  // What identifies the node certificate files: the certificate's SHA-256
  // fingerprint and a hash of the key file (as the SIP proxy keys its
  // contexts). False, logged, when the files cannot be read.
  bool certificateKey(std::string* key, core::CertInfo* info) const {
    try {
      *key = core::certificateFilesKey(certFile_, keyFile_);
      if (info) {
        info->subjectCn = core::certificateCommonName(certFile_);
        info->sha256 = key->substr(0, key->find('|'));
      }
      return true;
    } catch (const std::exception& e) {
      if (log_) log_->error("node certificate {}: {}", certFile_, e.what());
      return false;
    }
  }

  // The server context of the node certificate; *key: certificateKey() of
  // the files it was built from ("" when they could not be read, which
  // makes the next reload try again). Throws when OpenSSL refuses them.
  std::shared_ptr<const net::TlsContext> serverContext(std::string* key) const {
    if (!certificateKey(key, nullptr)) key->clear();
    net::TlsContextConfig tc;
    tc.certFile = certFile_;
    tc.keyFile = keyFile_;
    return net::TlsContext::server(tc);
  }

  void publishEndpoint(const C2sServer& s) {
    std::string host = !opts_.advertisedHost.empty() ? opts_.advertisedHost : hostName();
    try {
      db_->exec("INSERT INTO xcp_node_endpoint (node_id, host, client_port, tls_port) VALUES (?, ?, ?, ?)"
                " ON DUPLICATE KEY UPDATE host = VALUES(host), client_port = VALUES(client_port),"
                " tls_port = VALUES(tls_port), updated_at = CURRENT_TIMESTAMP(3)",
                {nodeId_, host, static_cast<std::int64_t>(s.clientPort()),
                 s.tlsPort() >= 0 ? core::SqlValue(static_cast<std::int64_t>(s.tlsPort())) : core::SqlValue(nullptr)});
    } catch (const std::exception& e) {
      if (log_) log_->error("cannot record this node's XMPP client address for the other nodes: {}", e.what());
    }
  }

  void registerMetrics(const std::shared_ptr<C2sServer>& server) {
    if (!metrics_) return;
    using T = core::Metrics::Type;
    std::weak_ptr<C2sServer> w = server;
    auto counter = [w](std::atomic<std::uint64_t> C2sStats::*f) {
      return [w, f] {
        std::vector<core::Metrics::Sample> v;
        if (auto s = w.lock()) v.push_back({{}, static_cast<double>((s->stats().*f).load())});
        return v;
      };
    };
    metrics_->collect("imp_xmpp_connections", "open XMPP client connections, by state", T::Gauge,
                      "xcp-connection-manager", [w] {
                        std::vector<core::Metrics::Sample> v;
                        if (auto s = w.lock()) {
                          auto open = s->stats().open.load(), unauth = s->stats().unauthenticated.load();
                          v.push_back({{{"state", "authenticating"}}, static_cast<double>(unauth)});
                          v.push_back({{{"state", "bound"}}, static_cast<double>(open - unauth)});
                        }
                        return v;
                      });
    metrics_->collect("imp_xmpp_stanzas_in_total", "stanzas received from clients", T::Counter,
                      "xcp-connection-manager", counter(&C2sStats::stanzasIn));
    metrics_->collect("imp_xmpp_stanzas_out_total", "stanzas delivered to clients", T::Counter,
                      "xcp-connection-manager", counter(&C2sStats::stanzasOut));
    metrics_->collect("imp_xmpp_auth_failures_total", "failed SASL exchanges", T::Counter, "xcp-connection-manager",
                      counter(&C2sStats::authFailures));
    // XEP-0198, IM-5 hand-backs, XEP-0280, rate limits.
    metrics_->collect("imp_xmpp_sm_total", "XEP-0198 stream management, by event", T::Counter,
                      "xcp-connection-manager", [w] {
                        std::vector<core::Metrics::Sample> v;
                        if (auto s = w.lock()) {
                          const auto& st = s->stats();
                          for (auto [event, n] : {std::pair{"enabled", st.smEnabled.load()},
                                                  {"hibernated", st.smHibernated.load()},
                                                  {"resumed", st.smResumed.load()},
                                                  {"resume_failed", st.smResumeFailed.load()},
                                                  {"expired", st.smExpired.load()},
                                                  {"ack_requested", st.smAckRequests.load()}})
                            v.push_back({{{"event", event}}, static_cast<double>(n)});
                        }
                        return v;
                      });
    metrics_->collect("imp_xmpp_sm_hibernating", "dropped XEP-0198 sessions waiting to be resumed", T::Gauge,
                      "xcp-connection-manager", [w] {
                        std::vector<core::Metrics::Sample> v;
                        if (auto s = w.lock()) v.push_back({{}, static_cast<double>(s->stats().hibernating.load())});
                        return v;
                      });
    metrics_->collect("imp_xmpp_handed_back_total",
                      "stanzas an ended session had not delivered, by outcome (rerouted: to the session manager; "
                      "not_rerouted: errors, own answers, carbon copies)",
                      T::Counter, "xcp-connection-manager", [w] {
                        std::vector<core::Metrics::Sample> v;
                        if (auto s = w.lock()) {
                          v.push_back({{{"outcome", "rerouted"}}, static_cast<double>(s->stats().rerouted.load())});
                          v.push_back(
                              {{{"outcome", "not_rerouted"}}, static_cast<double>(s->stats().notRerouted.load())});
                        }
                        return v;
                      });
    metrics_->collect("imp_xmpp_carbon_copies_total", "XEP-0280 copies handed to resources", T::Counter,
                      "xcp-connection-manager", counter(&C2sStats::carbonCopies));
    metrics_->collect("imp_xmpp_throttled_total", "times a session over its stanza or byte rate was paused",
                      T::Counter, "xcp-connection-manager", counter(&C2sStats::throttled));
    metrics_->collect("imp_xmpp_streams_compacted_total",
                      "times an idle client stream gave its XML parser back (rebuilt when it reads again)",
                      T::Counter, "xcp-connection-manager", counter(&C2sStats::compacted));
    metrics_->collect("imp_xmpp_stream_errors_total", "stream errors sent, by condition", T::Counter,
                      "xcp-connection-manager", [w] {
                        std::vector<core::Metrics::Sample> v;
                        if (auto s = w.lock())
                          for (const auto& [cond, n] : s->stats().streamErrors())
                            v.push_back({{{"condition", cond}}, static_cast<double>(n)});
                        return v;
                      });
  }

  std::shared_ptr<XcpRuntime> runtime_;
  C2sNodeOptions opts_;
  std::string certFile_, keyFile_, nodeId_;
  core::Database* db_ = nullptr;
  net::LoopGroup* loops_ = nullptr;
  net::WorkerPool* workers_ = nullptr;
  std::unique_ptr<net::LoopGroup> ownLoops_;
  std::unique_ptr<net::WorkerPool> ownWorkers_;
  std::shared_ptr<spdlog::logger> log_;
  core::Metrics* metrics_ = nullptr;
  mutable std::mutex mu_;
  std::shared_ptr<C2sServer> server_;
  std::string certKey_;  // certificateKey() of the files server_'s context was built from
  std::string detail_;
};

}  // namespace

std::unique_ptr<core::Service> makeRouterService(std::shared_ptr<XcpRuntime> runtime) {
  return std::make_unique<RouterService>(std::move(runtime));
}
std::unique_ptr<core::Service> makeConnectionManagerService(std::shared_ptr<XcpRuntime> runtime) {
  return std::make_unique<ConnectionManagerService>(std::move(runtime));
}

}  // namespace imp::xcp
