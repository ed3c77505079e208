#include "imp/sip_proxy/proxy_service.h"

#include <imp/net/loop_group.h>

#include <unistd.h>

#include <imp/core/cert_store.h>
#include <imp/core/cert_tools.h>
#include <imp/core/certificates.h>
#include <imp/core/cluster_settings.h>
#include <imp/core/config.h>
#include <imp/core/database.h>
#include <imp/core/metrics.h>
#include <imp/directory/directory.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "imp/sip_proxy/config_store.h"
#include "imp/sip_proxy/node_options.h"
#include "imp/sip_proxy/routing.h"

namespace imp::sip_proxy {

// ---------------- ProxyHandle ----------------

void ProxyHandle::attach(std::shared_ptr<Proxy> p) {
  std::lock_guard l(mu_);
  proxy_ = std::move(p);
}
void ProxyHandle::detach(const Proxy* p) {
  std::lock_guard l(mu_);
  if (proxy_.get() == p) proxy_.reset();
}
std::shared_ptr<Proxy> ProxyHandle::get() const {
  std::lock_guard l(mu_);
  return proxy_ && proxy_->running() ? proxy_ : nullptr;
}
std::optional<std::vector<Ban>> ProxyHandle::bans() const {
  if (auto p = get()) return p->bans();
  return std::nullopt;
}
std::optional<std::size_t> ProxyHandle::clearBans(const std::string& address) {
  if (auto p = get()) return p->clearBans(address);
  return std::nullopt;
}
std::optional<ProxyStats> ProxyHandle::stats() const {
  if (auto p = get()) return p->stats();
  return std::nullopt;
}
std::optional<std::vector<std::string>> ProxyHandle::downHops() const {
  if (auto p = get()) return p->downHops();
  return std::nullopt;
}

namespace {

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "";
  return buf;
}

// Everything a built OpenSSL context depends on, to rebuild only on change.
std::string contextKey(const TlsContext& c, bool verifyPeer) {
  std::string k = c.name + "|" + c.ciphers + "|" + std::string(nameOf(c.minVersion)) + "|" +
                  std::string(nameOf(c.maxVersion)) + "|" + (c.disableEmptyFragments ? "1" : "0") + "|" +
                  (verifyPeer ? "v" : "-");
  for (const auto& s : c.peerSubjects) k += "|" + s;
  return k;
}


// Throws ConfigError unless `path` names a readable file (not loaded here).
void requireReadable(const std::string& path, std::string_view key) {
  if (!path.empty() && ::access(path.c_str(), R_OK) != 0)
    throw core::ConfigError("tls", std::string(key) + " = " + path + " is not readable by impd");
}

class ProxyService : public core::Service {
 public:
  ProxyService(std::shared_ptr<ProxyHandle> running, std::shared_ptr<DirectoryLookup> directory)
      : handle_(std::move(running)), directoryOverride_(std::move(directory)) {}
  ~ProxyService() override { stop(); }

  std::string_view name() const override { return "sip-proxy"; }
  core::ServiceKind kind() const override { return core::ServiceKind::Feature; }

  // Validates only (service.h): no database, no files loaded.
  void configure(const core::ServiceContext& ctx) override {
    db_ = ctx.database;
    log_ = ctx.logger;
    metrics_ = ctx.metrics;
    node_ = ctx.config ? readNodeOptions(*ctx.config) : NodeOptions{};
    cfg_ = ProxyConfig{};
    cfg_.nodeId = ctx.nodeId.empty() ? "imp" : ctx.nodeId;
    cfg_.advertisedHost = !node_.advertisedHost.empty() ? node_.advertisedHost : hostName();
    cfg_.hopTimeout = node_.hopTimeout;
    cfg_.probeInterval = node_.probeInterval;
    cfg_.connectTimeout = node_.connectTimeout;
    cfg_.flood = node_.flood;
    cfg_.directory = directoryOverride_;
    if (!cfg_.directory && db_) {
      // The lookup refers to the Directory: one pointer keeps both alive.
      auto dir = std::make_shared<directory::Directory>(*db_);
      std::shared_ptr<DirectoryLookup> lookup = directoryLookup(*dir);
      cfg_.directory = std::shared_ptr<DirectoryLookup>(lookup.get(), [dir, lookup](DirectoryLookup*) {});
    }
    cfg_.resolver = ctx.resolver;
    // The node's shared loops (issue 15, deliverable 2); a proxy without one
    // (unit tests) runs its own loop thread.
    cfg_.loop = ctx.loops ? &ctx.loops->next() : nullptr;
    cfg_.log = log_;
    cfg_.traceFlags = ctx.traceFlags;
    certFile_.clear();
    keyFile_.clear();
    caFile_.clear();
    configuredCaFile_.clear();
    trustBundle_.clear();
    filesKey_.clear();
    if (ctx.certificate) {
      certFile_ = ctx.certificate->certFile.string();
      keyFile_ = ctx.certificate->keyFile.string();
      caFile_ = ctx.certificate->caFile.string();
      configuredCaFile_ = caFile_;
      trustBundle_ = ctx.certificate->trustBundle.string();
      requireReadable(certFile_, "cert_file");
      requireReadable(keyFile_, "key_file");
      requireReadable(caFile_, "ca_file");
    }
  }

  void start() override {
    std::lock_guard work(work_);
    contexts_.clear();
    refreshCertificates();
    std::string notes;  // listeners that cannot be opened
    cfg_.listeners = desiredListeners(&notes);
    cfg_.tlsClient = clientContext();
    if (cfg_.listeners.empty()) throw std::runtime_error("in [sip-proxy]: no listener can be opened" + notes);
    auto policy = readPolicy();
    auto p = std::make_shared<Proxy>(cfg_, policy);
    {
      std::lock_guard l(mu_);
      proxy_ = p;  // stop() stops it even if start() throws below
    }
    p->start();
    listenersNow_ = cfg_.listeners;
    publishEndpoint(*p);
    if (handle_) handle_->attach(p);
    registerMetrics(p);
    auto detail = describe(*p, notes);
    {
      std::lock_guard l(mu_);
      detail_ = detail;
      running_ = true;
    }
    if (log_) log_->info("SIP proxy {}", detail);
  }

  void stop() noexcept override {
    // Waits for a reload in progress, so it cannot publish after the stop.
    std::lock_guard work(work_);
    std::shared_ptr<Proxy> p;
    {
      std::lock_guard l(mu_);
      running_ = false;
      p = proxy_;
    }
    if (metrics_) metrics_->remove("sip-proxy");
    if (handle_ && p) handle_->detach(p.get());
    if (p) p->stop();
  }

  // Computes without mu_ (database, directory, loop waits), publishes under it
  // (issue 15, deliverable 2): status() never waits for a reload.
  void reload(const core::ConfigChange& change) override {
    std::lock_guard work(work_);
    std::shared_ptr<Proxy> p;
    {
      std::lock_guard l(mu_);
      if (!proxy_ || !running_) return;
      p = proxy_;
    }
    p->updatePolicy(readPolicy());
    refreshCertificates();
    std::string notes;
    auto wanted = desiredListeners(&notes);
    if (!sameListeners(wanted, listenersNow_)) {
      auto errors = p->setListeners(wanted);
      listenersNow_ = wanted;
      for (const auto& e : errors) notes += "; " + e;
      publishEndpoint(*p);
    }
    // TLS-4: outgoing TLS presents the node certificate and verifies next
    // hops with the trust bundle as they are now (context() rebuilds the
    // client context when either changed, and returns the same one
    // otherwise). One that cannot be built (logged) leaves the last one.
    auto client = clientContext();
    if (client && client != cfg_.tlsClient) {
      if (p->setTlsClient(client))
        cfg_.tlsClient = client;
      else
        notes += "; outgoing TLS context not applied (the SIP proxy loop did not answer)";
    }
    generation_ = change.toGeneration;
    auto detail = describe(*p, notes);
    {
      std::lock_guard l(mu_);
      detail_ = detail;
    }
    if (log_) log_->info("settings generation {} applied: {}", change.toGeneration, detail);
  }

  core::ServiceStatus status() const override {
    std::lock_guard l(mu_);
    return {running_ ? core::ServiceState::Running : core::ServiceState::Stopped, running_ ? detail_ : ""};
  }

 private:
  static bool sameListeners(const std::vector<ProxyListener>& a, const std::vector<ProxyListener>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (a[i].transport != b[i].transport || a[i].address != b[i].address || a[i].port != b[i].port ||
          a[i].tls != b[i].tls || a[i].acceptPeerKey != b[i].acceptPeerKey)
        return false;
    return true;
  }

  std::string describe(const Proxy& p, const std::string& notes) const {
    std::string where;
    for (const auto& e : p.endpoints()) where += (where.empty() ? "" : ", ") + e.toString();
    std::string detail = "listening on " + (where.empty() ? std::string("nothing") : where) + notes;
    if (generation_ > 0) detail += "; settings generation " + std::to_string(generation_);
    return detail;
  }

  // A context, reused while its settings are unchanged so unchanged
  // listeners are not rebound. nullptr (with *why) when it cannot be built.
  std::shared_ptr<const net::TlsContext> context(const TlsContext& c, net::TlsRole role, bool verifyPeer,
                                                 std::string* why) {
    std::string key = contextKey(c, verifyPeer) + "|" + filesKey_ + (role == net::TlsRole::Server ? "|s" : "|c");
    if (auto it = contexts_.find(key); it != contexts_.end()) return it->second;
    if (certFile_.empty()) {
      *why = "no node certificate";
      return nullptr;
    }
    if (verifyPeer && caFile_.empty()) {
      *why = "no trust store to verify peers ([tls] ca_file)";
      return nullptr;
    }
    net::TlsContextConfig tc = tlsConfigOf(c);
    tc.certFile = certFile_;
    tc.keyFile = keyFile_;
    tc.caFile = caFile_;
    tc.verifyPeer = verifyPeer;
    try {
      auto ctx = std::make_shared<const net::TlsContext>(tc, role);
      // Drop the superseded build of this context (same name and role).
      std::erase_if(contexts_, [&](const auto& kv) {
        return kv.first.starts_with(c.name + "|") && kv.first.back() == key.back();
      });
      contexts_[key] = ctx;
      return ctx;
    } catch (const std::exception& e) {
      *why = std::string("TLS context ") + c.name + ": " + e.what();
      if (log_) log_->error("{}", *why);
      return nullptr;
    }
  }

  // Certificate management (TLS-4): writes the trust bundle ([tls] ca_file
  // and the trust store cup-trust) and keys the TLS contexts by the node
  // certificate's fingerprint, its key and the trusted certificates, so an
  // uploaded certificate or a changed trust store rebuilds the contexts and
  // rebinds the TLS listeners on the next reload.
  void refreshCertificates() {
    if (certFile_.empty()) return;
    std::string k;
    try {
      k = core::certificateFilesKey(certFile_, keyFile_);
    } catch (const std::exception& e) {
      if (log_) log_->error("node certificate {}: {}", certFile_, e.what());
      return;  // keep the contexts built from the last good files
    }
    if (db_ && !trustBundle_.empty()) {
      try {
        auto entries = core::TrustStore(*db_).list();
        if (entries.empty()) {
          caFile_ = configuredCaFile_;
        } else {
          for (const auto& fp : core::writeTrustBundle(entries, configuredCaFile_, trustBundle_)) k += "|" + fp;
          caFile_ = trustBundle_;
        }
      } catch (const std::exception& e) {
        if (log_) log_->error("trust store cup-trust not applied: {}", e.what());
        return;
      }
    }
    filesKey_ = k;
  }

  std::optional<TlsContext> storedContext(std::string_view name) {
    if (db_) return ConfigStore(*db_).tlsContext(std::string(name));
    TlsContext c;
    c.name = std::string(name);
    c.ciphers = "HIGH:!aNULL:!MD5";
    return c;
  }

  // Outgoing TLS (static routes with transport TLS): the default context's
  // settings, presenting the node certificate, verifying the next hop when
  // a trust store is configured. start() and every reload() apply it.
  std::shared_ptr<const net::TlsContext> clientContext() {
    auto c = storedContext(kServerContext);
    if (!c || certFile_.empty()) return nullptr;
    c->peerSubjects.clear();
    std::string why;
    auto ctx = context(*c, net::TlsRole::Client, !caFile_.empty(), &why);
    if (!ctx && log_) log_->warn("outgoing TLS unavailable: {}", why);
    return ctx;
  }

  // The listeners this node should have now: cluster settings, this node's
  // port overrides, TLS contexts. *notes gets "; X not opened (why)".
  std::vector<ProxyListener> desiredListeners(std::string* notes) {
    std::vector<Listener> cluster =
        db_ ? ConfigStore(*db_).listeners() : std::vector<Listener>{{"tcp", true, 5060}};
    std::vector<ProxyListener> out;
    for (const auto& l : cluster) {
      if (!l.enabled) continue;
      const ListenerInfo* info = findListener(l.name);
      if (!info) continue;  // the catalog and the table come from the same release
      int port = l.port;
      if (auto it = node_.portOverrides.find(l.name); it != node_.portOverrides.end()) port = it->second;
      ProxyListener pl;
      pl.address = node_.listenAddress;
      pl.port = static_cast<std::uint16_t>(port);
      if (info->transport == "TLS") {
        bool mutual = info->auth == "mutual";
        auto stored = storedContext(mutual ? kPeerAuthContext : kServerContext);
        std::string why = "no TLS context";
        std::shared_ptr<const net::TlsContext> ctx;
        if (stored) ctx = context(*stored, net::TlsRole::Server, mutual, &why);
        if (!ctx) {
          *notes += "; " + std::string(info->displayName) + " not opened (" + why + ")";
          continue;
        }
        pl.transport = sip::Transport::Tls;
        pl.tls = ctx;
        if (mutual) {
          // TLS-2: only peers whose subject CN the context selects.
          auto subjects = std::make_shared<std::vector<std::string>>(stored->peerSubjects);
          pl.acceptPeer = [subjects](std::string_view cn) {
            std::string key = lower(cn);
            return std::find(subjects->begin(), subjects->end(), key) != subjects->end();
          };
          for (const auto& s : *subjects) pl.acceptPeerKey += s + ",";
        }
      } else {
        pl.transport = info->transport == "UDP" ? sip::Transport::Udp : sip::Transport::Tcp;
      }
      out.push_back(std::move(pl));
    }
    return out;
  }

  ProxyPolicy readPolicy() const {
    ProxyPolicy p;
    p.clusterNodes = {cfg_.nodeId};
    if (cfg_.directory)
      if (auto domains = cfg_.directory->localDomains()) p.localDomains.emplace(domains->begin(), domains->end());
    if (!db_) return p;
    ConfigStore store(*db_);
    p.acl = store.acl();
    p.routes = store.routes();
    p.federation = store.federation().settings;
    auto rows = db_->query("SELECT n.node_id, e.host, e.tcp_port FROM core_node n"
                           " LEFT JOIN sip_node_endpoint e ON e.node_id = n.node_id");
    for (std::size_t i = 0; i < rows.size(); ++i) {
      auto node = rows.str(i, "node_id");
      if (node != cfg_.nodeId) p.clusterNodes.push_back(node);
      auto port = rows.num(i, "tcp_port");
      if (node != cfg_.nodeId && port > 0) p.nodeAddresses[node] = rows.str(i, "host") + ":" + std::to_string(port);
    }
    auto fcm = db_->query("SELECT host, port FROM fcm_node_endpoint WHERE node_id = ?", {cfg_.nodeId});
    if (!fcm.empty() && fcm.num(0, "port") > 0) p.federationCm = fcm.str(0, "host") + ":" + std::to_string(fcm.num(0, "port"));
    return p;
  }

  // Records where this node's proxy listens, for the other nodes.
  void publishEndpoint(const Proxy& proxy) {
    if (!db_) return;
    core::SqlValue tcp = nullptr, tls = nullptr;
    for (const auto& e : proxy.endpoints()) {
      if (e.transport == sip::Transport::Tcp && std::holds_alternative<std::nullptr_t>(tcp))
        tcp = static_cast<std::int64_t>(e.port);
      if (e.transport == sip::Transport::Tls && std::holds_alternative<std::nullptr_t>(tls))
        tls = static_cast<std::int64_t>(e.port);
    }
    auto num = [](const core::SqlValue& v) { return v.index() == 1 ? std::get<std::int64_t>(v) : 0; };
    try {
      auto rows = db_->query("SELECT host, tcp_port, tls_port FROM sip_node_endpoint WHERE node_id = ?", {cfg_.nodeId});
      if (rows.size() == 1 && rows.str(0, "host") == cfg_.advertisedHost && rows.num(0, "tcp_port") == num(tcp) &&
          rows.num(0, "tls_port") == num(tls))
        return;
      // A new generation makes the other nodes re-read where to reach us.
      db_->transaction([&](core::DbSession& s) {
        s.exec("INSERT INTO sip_node_endpoint (node_id, host, tcp_port, tls_port) VALUES (?, ?, ?, ?)"
               " ON DUPLICATE KEY UPDATE host = VALUES(host), tcp_port = VALUES(tcp_port),"
               " tls_port = VALUES(tls_port), updated_at = CURRENT_TIMESTAMP(3)",
               {cfg_.nodeId, cfg_.advertisedHost, tcp, tls});
        core::ClusterSettings::bump(s);
      });
    } catch (const std::exception& e) {
      if (log_) log_->error("cannot record this node's SIP endpoint for the other nodes: {}", e.what());
    }
  }

  void registerMetrics(const std::shared_ptr<Proxy>& proxy) {
    if (!metrics_) return;
    std::weak_ptr<Proxy> w = proxy;
    auto stat = [w](std::uint64_t ProxyStats::*field) {
      return [w, field] {
        auto p = w.lock();
        double v = p ? static_cast<double>(p->stats().*field) : 0.0;
        return std::vector<core::Metrics::Sample>{{{}, v}};
      };
    };
    using T = core::Metrics::Type;
    metrics_->collect("imp_sip_proxy_requests_total", "SIP requests received by the proxy", T::Counter, "sip-proxy",
                      stat(&ProxyStats::requests));
    metrics_->collect("imp_sip_proxy_forwarded_total", "SIP requests forwarded statefully", T::Counter, "sip-proxy",
                      stat(&ProxyStats::forwarded));
    metrics_->collect("imp_sip_proxy_failovers_total", "requests re-sent to the next route after a failure (RT-3)",
                      T::Counter, "sip-proxy", stat(&ProxyStats::failovers));
    metrics_->collect("imp_sip_proxy_acl_refused_total", "requests refused by the incoming ACL (RT-7)", T::Counter,
                      "sip-proxy", stat(&ProxyStats::aclRefused));
    metrics_->collect("imp_sip_proxy_loops_total", "partitioned-federation loops answered 482 (FED-7)", T::Counter,
                      "sip-proxy", stat(&ProxyStats::loops));
    metrics_->collect("imp_sip_proxy_flood_refused_total", "requests refused while their source was banned",
                      T::Counter, "sip-proxy", stat(&ProxyStats::floodRefused));
    metrics_->collect("imp_sip_proxy_overloaded_total", "requests refused with 503 because directory lookups queued up",
                      T::Counter, "sip-proxy", stat(&ProxyStats::overloaded));
    metrics_->collect("imp_sip_proxy_directory_lookups_total", "routing decisions that asked the directory", T::Counter,
                      "sip-proxy", stat(&ProxyStats::directoryLookups));
    metrics_->collect("imp_sip_proxy_directory_cache_hits_total",
                      "routing decisions answered from the recipient cache (cleared on every settings generation)",
                      T::Counter, "sip-proxy", stat(&ProxyStats::directoryCacheHits));
    metrics_->collect("imp_sip_proxy_rejected_total",
                      "requests refused by validation before routing (400/416/420, RFC 3261 16.3)", T::Counter,
                      "sip-proxy", stat(&ProxyStats::rejected));
    metrics_->collect("imp_sip_proxy_responses_unsent_total",
                      "responses that could not be written back to the client (connection gone; logged)", T::Counter,
                      "sip-proxy", stat(&ProxyStats::responsesUnsent));
    metrics_->collect("imp_sip_proxy_parse_errors_total", "SIP messages that failed to parse", T::Counter, "sip-proxy",
                      stat(&ProxyStats::parseErrors));
    metrics_->collect("imp_sip_proxy_error_responses_total", "4xx/5xx answers sent for requests that failed to parse",
                      T::Counter, "sip-proxy", stat(&ProxyStats::errorResponsesSent));
    metrics_->collect("imp_sip_proxy_error_responses_unsent_total",
                      "bad requests no answer could be formed or sent for (the reason is logged)", T::Counter,
                      "sip-proxy", stat(&ProxyStats::errorResponsesUnsent));
    metrics_->collect("imp_sip_proxy_malformed_responses_dropped_total", "malformed SIP responses dropped",
                      T::Counter, "sip-proxy", stat(&ProxyStats::malformedResponsesDropped));
  }

  const std::shared_ptr<ProxyHandle> handle_;                 // may be null
  const std::shared_ptr<DirectoryLookup> directoryOverride_;  // tests; null = ctx.database
  // Set by configure(), read by start()/reload().
  core::Database* db_ = nullptr;
  core::Metrics* metrics_ = nullptr;
  std::shared_ptr<spdlog::logger> log_;
  NodeOptions node_;
  std::string certFile_, keyFile_, caFile_;  // empty certFile_ = no TLS
  std::string configuredCaFile_, trustBundle_;  // [tls] ca_file; <state_dir>/tls/cup-trust.pem
  std::string filesKey_;  // the certificate files and trusted roots the contexts were built from
  // work_ serialises start/reload/stop and guards what they compute.
  std::mutex work_;
  ProxyConfig cfg_;
  std::vector<ProxyListener> listenersNow_;
  std::map<std::string, std::shared_ptr<const net::TlsContext>> contexts_;
  std::uint64_t generation_ = 0;  // last settings generation applied
  // mu_ guards what status() reads; never held across a query or a wait.
  mutable std::mutex mu_;
  std::shared_ptr<Proxy> proxy_;
  bool running_ = false;
  std::string detail_;
};

}  // namespace

std::unique_ptr<core::Service> makeSipProxyService(std::shared_ptr<ProxyHandle> running,
                                                   std::shared_ptr<DirectoryLookup> directory) {
  return std::make_unique<ProxyService>(std::move(running), std::move(directory));
}

}  // namespace imp::sip_proxy
