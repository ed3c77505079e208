// impd: one daemon per cluster node; the role and per-node activation pick
// the services it runs (ARCHITECTURE.md, SV-1..SV-3).
//
// Start-up order: configuration -> logs -> database (managed or external) ->
// migrations -> admin socket -> node registration -> trace settings ->
// services (configure all, start in order) -> settings watcher -> admin API
// serving -> "impd: ready ..." on stdout. Shutdown reverses it.
// Exit codes follow sysexits: 78 configuration (incl. unreachable database),
// 70 a service failed to start, 71 OS error.
#include <imp/core/admin_http.h>
#include <imp/core/certificates.h>
#include <imp/core/cluster_settings.h>
#include <imp/core/command_registry.h>
#include <imp/core/config.h>
#include <imp/core/mysql_database.h>
#include <imp/core/dns.h>
#include <imp/core/dns_client.h>
#include <imp/core/logging.h>
#include <imp/core/managed_db.h>
#include <imp/core/metrics.h>
#include <imp/core/migrations.h>
#include <imp/core/module_registry.h>
#include <imp/core/service_host.h>
#include <imp/core/service_params.h>
#include <imp/core/sysexits.h>
#include <imp/net/loop_group.h>
#include <imp/net/worker_pool.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <regex>

#include "modules.h"

namespace po = boost::program_options;
using namespace imp;

namespace {

using namespace core::exitcode;

const core::ConfigSchema& schema() { return apps::nodeSchema(); }

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

void printDefaults() {
  std::string section;
  for (const auto& o : schema().options()) {
    if (o.section != section) {
      std::cout << (section.empty() ? "" : "\n") << "[" << o.section << "]\n";
      section = o.section;
    }
    std::cout << "# " << o.help << "\n" << "#" << o.key << " = " << o.defaultValue << "\n";
  }
}

struct Options {
  std::string configPath = "/etc/imp/impd.conf";
  bool checkOnly = false;
};

int fail(int code, const std::string& message, const std::shared_ptr<spdlog::logger>& log = nullptr) {
  std::cerr << "impd: " << message << std::endl;
  if (log) {
    log->critical("{}", message);
    log->flush();
  }
  return code;
}

// Validates what the schema alone cannot (core sections, then each module's).
void checkSemantics(const core::Config& cfg, const core::ModuleRegistry& modules) {
  static const std::regex kNodeId(R"(^[A-Za-z0-9._-]{1,64}$)");
  auto id = cfg.getString("node", "id");
  if (!id.empty() && !std::regex_match(id, kNodeId))
    throw core::ConfigError("node", "id = " + id + " may hold only letters, digits, '.', '_' and '-' (1..64 chars)");
  if (cfg.getString("database", "mode") == "external") {
    if (cfg.getString("database", "url").empty())
      throw core::ConfigError("database", "mode = external needs url = mysql://user:password@host:port/schema");
    try {
      core::parseDbUrl(cfg.getString("database", "url"));
    } catch (const std::invalid_argument& e) {
      throw core::ConfigError("database", e.what());
    }
  } else if (!cfg.getString("database", "url").empty()) {
    throw core::ConfigError("database", "url is only used with mode = external (mode is managed)");
  }
  try {
    core::parseDnsServers(cfg.getString("dns", "servers"));
  } catch (const std::invalid_argument& e) {
    throw core::ConfigError("dns", e.what());
  }
  modules.checkConfig(cfg);
}

// Name resolution for next hops and the incoming ACL (RT-8, RT-10): the
// configured DNS servers (the DNS client on one of the node's loops) or the
// system resolver (on the node's workers), cached either way.
std::shared_ptr<core::Resolver> makeResolver(const core::Config& cfg, net::LoopGroup& loops, net::WorkerPool& workers) {
  std::shared_ptr<core::Resolver> inner;
  auto servers = core::parseDnsServers(cfg.getString("dns", "servers"));
  if (servers.empty()) {
    inner = std::make_shared<core::SystemResolver>(workers);
  } else {
    core::DnsClientConfig dc;
    dc.servers = std::move(servers);
    dc.timeout = std::chrono::milliseconds(cfg.getInt("dns", "timeout_ms"));
    dc.attempts = static_cast<unsigned>(cfg.getInt("dns", "attempts"));
    inner = std::make_shared<core::DnsClientResolver>(loops.next(), dc);
  }
  core::DnsCacheConfig cc;
  cc.positiveTtl = std::chrono::seconds(cfg.getInt("dns", "positive_ttl"));
  cc.negativeTtl = std::chrono::seconds(cfg.getInt("dns", "negative_ttl"));
  return std::make_shared<core::CachingResolver>(inner, cc);
}

int run(const Options& opts) {
  // Signals are taken synchronously by the main thread; block them before any
  // thread exists so every thread inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Every module of this build (services, config sections, admin routes).
  core::ModuleRegistry modules;
  apps::registerModules(modules);

  core::Config cfg;
  try {
    cfg = core::Config::load(opts.configPath, schema());
    checkSemantics(cfg, modules);
  } catch (const core::ConfigError& e) {
    return fail(kConfig, std::string(e.what()) + " (" + opts.configPath + ")");
  }
  if (opts.checkOnly) {
    std::cout << "configuration OK: " << opts.configPath << std::endl;
    return kOk;
  }

  const std::string nodeId = cfg.getString("node", "id").empty() ? hostName() : cfg.getString("node", "id");
  const std::string role = cfg.getString("node", "role");
  const std::filesystem::path stateDir = cfg.getString("node", "state_dir");
  const std::filesystem::path logDir = cfg.getString("node", "log_dir");
  try {
    std::filesystem::create_directories(stateDir);
    std::filesystem::create_directories(logDir);
  } catch (const std::exception& e) {
    return fail(kConfig, std::string("in [node]: cannot create state_dir/log_dir: ") + e.what());
  }

  core::LogSettings ls;
  ls.dir = logDir;
  ls.maxSize = static_cast<std::size_t>(cfg.getInt("log", "max_size"));
  ls.maxFiles = static_cast<std::size_t>(cfg.getInt("log", "max_files"));
  ls.defaultLevel = *core::parseLevel(cfg.getString("log", "level"));
  ls.console = cfg.getBool("log", "console");
  core::LogRegistry logs(ls);
  auto log = logs.get("impd");
  log->info("impd {} starting: node {} role {} config {}", IMP_VERSION, nodeId, role, opts.configPath);

  // Database: managed (private MariaDB on a unix socket) or external.
  const auto poolSize = static_cast<unsigned>(cfg.getInt("database", "pool_size"));
  const std::chrono::seconds timeout(cfg.getInt("database", "connect_timeout"));
  std::unique_ptr<core::ManagedMariaDb> managed;
  core::DbParams dbParams;
  std::string dbLocation;
  const std::string dbMode = cfg.getString("database", "mode");
  try {
    if (dbMode == "managed") {
      core::ManagedDbOptions mo;
      mo.mariadbd = cfg.getString("database", "mariadbd");
      mo.installDb = cfg.getString("database", "install_db");
      mo.dir = stateDir / "mariadb";
      mo.errorLog = logDir / "mariadb.log";
      mo.bufferPoolMb = static_cast<std::size_t>(cfg.getInt("database", "buffer_pool_mb"));
      managed = std::make_unique<core::ManagedMariaDb>(mo, logs.get("mariadb-supervisor"));
      managed->start();
      dbParams = managed->params("imp", poolSize, timeout);
      dbLocation = "managed, socket " + managed->socketPath().string();
    } else {
      dbParams = core::parseDbUrl(cfg.getString("database", "url"));
      dbParams.poolSize = poolSize;
      dbParams.connectTimeout = timeout;
      dbLocation = dbParams.redacted();
    }
    core::MySqlDatabase::ensureSchema(dbParams);
  } catch (const std::exception& e) {
    return fail(kConfig, "in [database]: cannot reach the " + dbMode + " database (" +
                               (dbLocation.empty() ? cfg.getString("database", "url") : dbLocation) + "): " + e.what(),
                log);
  }
  core::MySqlDatabase db(dbParams, logs.get("database"));

  core::Migrator migrator(db, cfg.getString("node", "sql_dir"), nodeId, log);
  try {
    auto applied = migrator.migrate();
    log->info("schema at version {} ({} migrations applied now)", migrator.currentVersion(), applied.size());
  } catch (const core::DbError& e) {
    return fail(kConfig, std::string("in [database]: ") + e.what(), log);
  } catch (const std::exception& e) {
    return fail(kSoftware, std::string("schema migration failed: ") + e.what(), log);
  }

  core::Metrics metrics;
  core::ClusterSettings settings(db, std::chrono::milliseconds(cfg.getInt("services", "settings_poll_ms")),
                                 logs.get("impd"));
  // Service parameters (MG-3): the modules' declarations over the cluster database.
  core::ServiceParams params(db, modules);
  // Admin API socket first, so the node registers its real address.
  std::string tokenFile = cfg.getString("admin", "token_file");
  if (tokenFile.empty()) tokenFile = (stateDir / "admin.token").string();
  std::string token;
  try {
    token = core::loadOrCreateToken(tokenFile);
  } catch (const std::exception& e) {
    return fail(kConfig, std::string("in [admin]: ") + e.what(), log);
  }
  core::AdminRouter router;
  core::AdminServer admin(router, cfg.getString("admin", "address"), static_cast<unsigned>(cfg.getInt("admin", "port")),
                          token, static_cast<unsigned>(cfg.getInt("admin", "threads")), logs.get("admin"), &metrics);
  try {
    admin.bind();
  } catch (const std::exception& e) {
    return fail(kConfig, std::string("in [admin]: ") + e.what(), log);
  }

  // The node certificate for the SIP TLS listeners (TLS-1..3).
  core::NodeCertificate cert;
  try {
    cert = core::ensureNodeCertificate(stateDir, cfg.getString("tls", "cert_file"), cfg.getString("tls", "key_file"),
                                       cfg.getString("tls", "ca_file"), hostName());
    log->info("node certificate {} (CN {}, valid until {}{})", cert.certFile.string(), cert.subjectCn, cert.notAfter,
              cert.generated ? ", self-signed" : "");
    if (cert.uploadFinished)
      log->warn("the last impctl cert upload stopped before writing {}: its pending key is installed now (TLS-4)",
                cert.keyFile.string());
  } catch (const std::exception& e) {
    return fail(kConfig, e.what(), log);
  }

  // The node's shared runtime (issue 15, deliverables 1 and 2): event loops
  // for the network services and a bounded worker pool for blocking work.
  std::unique_ptr<net::LoopGroup> loops;
  std::unique_ptr<net::WorkerPool> workers;
  try {
    loops = std::make_unique<net::LoopGroup>(
        net::LoopGroupConfig{"imp-loop", static_cast<unsigned>(cfg.getInt("services", "loops"))});
    const auto nWorkers = static_cast<unsigned>(cfg.getInt("services", "workers"));
    workers = std::make_unique<net::WorkerPool>(net::WorkerPoolConfig{"imp-work", nWorkers, 1024u * nWorkers});
    loops->start();
  } catch (const std::exception& e) {
    return fail(kOsErr, std::string("in [services]: cannot start the loops and workers: ") + e.what(), log);
  }
  std::shared_ptr<core::Resolver> resolver;
  try {
    resolver = makeResolver(cfg, *loops, *workers);
  } catch (const std::exception& e) {
    return fail(kOsErr, std::string("in [dns]: ") + e.what(), log);
  }
  core::ServiceHost host(
      [&](const std::string& name) {
        core::ServiceContext ctx;
        ctx.config = &cfg;
        ctx.nodeId = nodeId;
        ctx.database = &db;
        ctx.settings = &settings;
        ctx.params = &params;
        ctx.metrics = &metrics;
        ctx.logger = logs.get(name);
        ctx.traceFlags = logs.flags(name);
        ctx.resolver = resolver;
        ctx.certificate = &cert;
        ctx.router = &router;
        ctx.modules = &modules;
        ctx.loops = loops.get();
        ctx.workers = workers.get();
        return ctx;
      },
      std::chrono::seconds(cfg.getInt("services", "stop_timeout")), log, &metrics);

  core::NodeContext node;
  node.config = &cfg;
  node.nodeId = nodeId;
  node.role = role;
  node.hostname = hostName();
  node.version = IMP_VERSION;
  node.adminUrl = admin.url();
  node.database = &db;
  node.databaseMode = dbMode;
  node.databaseLocation = dbLocation;
  node.migrator = &migrator;
  node.settings = &settings;
  node.params = &params;
  node.metrics = &metrics;
  node.logs = &logs;
  node.host = &host;
  node.resolver = resolver;
  node.certificate = &cert;
  node.modules = &modules;
  node.loops = loops.get();
  node.workers = workers.get();
  modules.registerServices(host);
  // Commands (issue 15, deliverable 4): declared by the modules, their
  // objects provided by the modules' admin-route functions, then bound.
  core::CommandRegistry commands;
  modules.registerCommands(commands);
  node.commands = &commands;
  modules.registerAdminRoutes(router, node);
  try {
    commands.bind(router, IMP_VERSION);
  } catch (const std::logic_error& e) {
    return fail(kSoftware, std::string("admin commands: ") + e.what(), log);
  }

  metrics.collect("imp_database_ready", "1 if the cluster database answered the last check", core::Metrics::Type::Gauge,
                  "impd", [&] { return std::vector<core::Metrics::Sample>{{{}, settings.databaseReachable() ? 1.0 : 0.0}}; });
  if (managed)
    metrics.collect("imp_managed_database_restarts_total", "restarts of the managed MariaDB by impd",
                    core::Metrics::Type::Counter, "impd",
                    [&] { return std::vector<core::Metrics::Sample>{{{}, static_cast<double>(managed->restarts())}}; });

  std::vector<std::string> wanted;
  try {
    modules.nodeUp();
    wanted = modules.activeServices(node);
  } catch (const std::exception& e) {
    return fail(kConfig, std::string("in [database]: ") + e.what(), log);
  }
  settings.subscribe([&](const core::ConfigChange& change) { host.reloadAll(change); });

  try {
    host.startAll(wanted);
  } catch (const core::HostError& e) {
    modules.nodeDown();
    return fail(e.exitCode(), std::string(e.what()), log);
  }
  settings.start();
  try {
    admin.start();
  } catch (const std::exception& e) {
    settings.stop();
    host.stopAll();
    modules.nodeDown();
    return fail(kOsErr, std::string("in [admin]: ") + e.what(), log);
  }

  std::string services;
  for (const auto& n : wanted) services += (services.empty() ? "" : ",") + n;
  log->info("ready: admin API {} services {}", admin.url(), services);
  std::cout << "impd: ready node=" << nodeId << " role=" << role << " admin=" << admin.url() << std::endl;

  for (;;) {
    int sig = 0;
    if (sigwait(&sigs, &sig) != 0) continue;
    if (sig == SIGHUP) {
      log->info("SIGHUP: flushing logs");
      logs.flushAll();
      continue;
    }
    log->info("signal {}: stopping", sig);
    break;
  }

  admin.stop();
  settings.stop();
  host.stopAll();
  modules.nodeDown();
  auto abandoned = host.abandoned();
  if (managed) managed->stop();
  log->info("impd stopped");
  logs.flushAll();
  if (!abandoned.empty()) {
    // A service thread is still inside stop(): do not run destructors under it.
    std::cerr << "impd: services did not stop in time: ";
    for (const auto& n : abandoned) std::cerr << n << ' ';
    std::cerr << std::endl;
    std::_Exit(kSoftware);
  }
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  po::options_description desc("Usage: impd [options]\nOptions");
  desc.add_options()("help,h", "show this help")("version", "print the version")(
      "config,c", po::value<std::string>(&opts.configPath)->default_value(opts.configPath), "node configuration file")(
      "check-config", po::bool_switch(&opts.checkOnly), "validate the configuration and exit")(
      "print-defaults", "print a configuration file with every default");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "impd: " << e.what() << "\n" << desc << std::endl;
    return kUsage;
  }
  if (vm.count("help")) {
    std::cout << desc << "\nSee impd(8) and impd.conf(5).\n";
    return kOk;
  }
  if (vm.count("version")) {
    std::cout << "impd " << IMP_VERSION << std::endl;
    return kOk;
  }
  if (vm.count("print-defaults")) {
    printDefaults();
    return kOk;
  }
  try {
    return run(opts);
  } catch (const std::exception& e) {
    // Only reached for a bug: everything expected is handled in run().
    std::cerr << "impd: fatal: " << e.what() << std::endl;
    return kSoftware;
  }
}
