#pragma once
// The module registry (issue 15, deliverable 2): the one place a module
// declares everything the node needs to know about it. Each module exposes
// ONE function,
//
//     void registerModule(core::ModuleRegistry& registry);
//
// which declares:
//  - its services (addService): stable name, the seed's display name (SV-1),
//    kind, the roles that run it by default (SV-2), its extra trace flags
//    (SV-4) and a factory;
//  - its impd.conf section(s) (addConfig): the schema options plus a check
//    of what the schema alone cannot validate;
//  - its service parameters (addServiceParam, MG-3): cluster-wide values
//    per service, typed and range-checked, changed live with `impctl service
//    param set` (stored by core::ServiceParams, service_params.h);
//  - its admin routes (addAdminRoutes): a function given the AdminRouter and
//    the node's shared objects (NodeContext), called once per process;
//  - its commands (addCommands): a function given the CommandRegistry
//    (core/command_registry.h) that declares each impctl command once, with
//    its admin route; the admin-route function provides their objects;
//  - node hooks (addNodeHooks), run once the admin routes are registered:
//    `up` before any service starts, `down` after every service stopped;
//  - at most one module decides which services this node runs
//    (setActivation; serviceability does, SV-3); without it a node runs its
//    role's defaults.
//
// State shared between a module's services and its admin routes (e.g. the
// running proxy behind `proxy stats`) is owned by the closures the module
// registers, so the registry must outlive the router and the service host.
// The role table (roles.h) is derived from the registrations; the admin API
// and impctl read display names and trace flags from here.
//
// Registration happens once, single-threaded, before the node starts; every
// const member is then safe to call from any thread.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "imp/core/roles.h"
#include "imp/core/service.h"

namespace imp::core {

class AdminRouter;
class CommandRegistry;
class Config;
class ConfigSchema;
class LogRegistry;
class Migrator;
class ServiceHost;
class ServiceParams;

// One extra trace flag of a service (SV-4).
struct TraceFlagInfo {
  std::string id;     // "sip-tcp"
  std::string label;  // "Enable SIP TCP Trace"
};

// A service parameter (Cisco's "Service Parameters"; MG-3): one cluster-wide
// value of a service, declared by its module, stored in core_service_param
// when an administrator sets it, read by the service in start() and reload()
// through ServiceContext::params (service_params.h).
enum class ServiceParamType {
  Integer,  // a whole number in [min, max]
  Boolean,  // on / off, stored as 1 / 0 (min and max are ignored)
};

struct ServiceParamInfo {
  std::string service;  // a registered service: "bulk-provisioning"
  std::string name;     // kebab-case: "import-rate"
  ServiceParamType type = ServiceParamType::Integer;
  std::int64_t defaultValue = 0;
  std::int64_t min = 0;  // Integer: the smallest and largest value accepted
  std::int64_t max = 0;
  std::string unit;  // "rows/s"; may be empty
  std::string help;  // one line, shown by `impctl service param show`
  // Integer only: 0 means "no limit"; accepted and shown as "unlimited" and
  // allowed besides [min, max] (which then names the limited values, e.g. 1..).
  bool zeroIsUnlimited = false;
};

struct ServiceRegistration {
  std::string name;                 // stable id: "sip-proxy"
  std::string displayName;          // the seed's name: "Cisco SIP Proxy"
  ServiceKind kind = ServiceKind::Feature;
  std::vector<std::string> roles;   // roles that run it unless activation says otherwise
  std::vector<TraceFlagInfo> traceFlags;
  // Builds a fresh service object; everything else it needs arrives in
  // configure() through the ServiceContext.
  std::function<std::unique_ptr<Service>()> factory;
};

// The node's shared objects, built by impd and handed to every module's
// admin-route function. Pointers are owned by the node and outlive the
// router; any of them may be null in unit tests.
struct NodeContext {
  const Config* config = nullptr;
  std::string nodeId;
  std::string role;
  std::string hostname;
  std::string version;
  std::string adminUrl;
  Database* database = nullptr;
  std::string databaseMode;      // "managed" | "external"
  std::string databaseLocation;  // redacted URL or socket
  Migrator* migrator = nullptr;
  ClusterSettings* settings = nullptr;
  ServiceParams* params = nullptr;  // service parameters (MG-3): show, set, reset
  Metrics* metrics = nullptr;
  LogRegistry* logs = nullptr;
  ServiceHost* host = nullptr;
  std::shared_ptr<Resolver> resolver;
  const NodeCertificate* certificate = nullptr;
  const ModuleRegistry* modules = nullptr;
  // The admin-route functions provide() the objects their commands'
  // handlers work on (issue 15, deliverable 4); impd binds the commands
  // after every module's routes are registered.
  CommandRegistry* commands = nullptr;
  net::LoopGroup* loops = nullptr;
  net::WorkerPool* workers = nullptr;
};

class ModuleRegistry {
 public:
  using AdminRoutesFn = std::function<void(AdminRouter&, const NodeContext&)>;
  using CommandsFn = std::function<void(CommandRegistry&)>;
  using ConfigOptionsFn = std::function<void(ConfigSchema&)>;
  using ConfigCheckFn = std::function<void(const Config&)>;

  // Throws std::logic_error for an empty or duplicate name, a role that
  // roles.h does not define, or a missing factory.
  void addService(ServiceRegistration s);
  // `check` may be empty; it throws ConfigError "in [section]: ...".
  void addConfig(ConfigOptionsFn options, ConfigCheckFn check = {});
  void addAdminRoutes(AdminRoutesFn fn);
  // Command hook for the core::CommandRegistry (impctl's verbs): stored here
  // and run by registerCommands().
  void addCommands(CommandsFn fn);
  // `up` throws to refuse to start the node; `down` must not throw. Either may be empty.
  void addNodeHooks(std::function<void()> up, std::function<void()> down);
  // Throws std::logic_error for a service not registered (yet), a name that
  // is not kebab-case, a duplicate, min > max, a default the declaration
  // itself would refuse, an empty or multi-line help, or "unlimited" on a
  // Boolean.
  void addServiceParam(ServiceParamInfo p);
  // Throws std::logic_error if a module already set it.
  void setActivation(std::function<std::vector<std::string>(const NodeContext&)> fn);

  // Registration order.
  const std::vector<ServiceRegistration>& services() const { return services_; }
  const ServiceRegistration* service(std::string_view name) const;
  // The seed's display name, or the id itself for a service this build
  // does not know (e.g. one another node published).
  std::string displayName(std::string_view service) const;
  // Extra trace flags (empty for an unknown service or one without).
  const std::vector<TraceFlagInfo>& traceFlags(std::string_view service) const;

  // Service parameters in declaration order: all of them, one service's, or
  // one (null when not declared).
  const std::vector<ServiceParamInfo>& serviceParams() const { return params_; }
  std::vector<const ServiceParamInfo*> serviceParams(std::string_view service) const;
  const ServiceParamInfo* serviceParam(std::string_view service, std::string_view name) const;

  // Every role of roles.h with the services that declared it, in
  // registration order (SV-2).
  std::vector<Role> roleTable() const;
  // Default services of a role; throws std::invalid_argument for an unknown role.
  std::vector<std::string> servicesOf(std::string_view role) const;

  // impd.conf: the core options plus every module's section(s).
  ConfigSchema configSchema() const;
  // Runs every module's config check.
  void checkConfig(const Config& cfg) const;

  // Hands every service to the host, as ServiceDescriptors.
  void registerServices(ServiceHost& host) const;
  void registerAdminRoutes(AdminRouter& router, const NodeContext& node) const;
  void registerCommands(CommandRegistry& commands) const;
  // Node lifecycle, in the order impd calls them: registerAdminRoutes,
  // nodeUp, activeServices, (services run), nodeDown.
  void nodeUp() const;
  void nodeDown() const noexcept;
  std::vector<std::string> activeServices(const NodeContext& node) const;

 private:
  std::vector<ServiceRegistration> services_;
  std::vector<ServiceParamInfo> params_;
  std::vector<ConfigOptionsFn> configOptions_;
  std::vector<ConfigCheckFn> configChecks_;
  std::vector<AdminRoutesFn> adminRoutes_;
  std::vector<CommandsFn> commands_;
  std::vector<std::function<void()>> nodeUp_;
  std::vector<std::function<void()>> nodeDown_;
  std::function<std::vector<std::string>(const NodeContext&)> activation_;
};

}  // namespace imp::core
