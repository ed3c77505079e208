#include "imp/core/module_registry.h"

#include <algorithm>
#include <stdexcept>

#include "imp/core/config.h"
#include "imp/core/service_host.h"

namespace imp::core {

void ModuleRegistry::addService(ServiceRegistration s) {
  if (s.name.empty()) throw std::logic_error("a service registration needs a name");
  if (service(s.name)) throw std::logic_error("service '" + s.name + "' is registered twice");
  if (!s.factory) throw std::logic_error("service '" + s.name + "' has no factory");
  for (const auto& r : s.roles)
    if (!findRole(r)) throw std::logic_error("service '" + s.name + "' names unknown role '" + r + "'");
  for (std::size_t i = 0; i < s.traceFlags.size(); ++i)
    for (std::size_t j = i + 1; j < s.traceFlags.size(); ++j)
      if (s.traceFlags[i].id == s.traceFlags[j].id)
        throw std::logic_error("service '" + s.name + "' declares trace flag '" + s.traceFlags[i].id + "' twice");
  if (s.displayName.empty()) s.displayName = s.name;
  services_.push_back(std::move(s));
}

namespace {

// "import-rate": lower-case words of letters and digits joined by single
// hyphens, the spelling impctl and the admin API paths use.
bool kebabCase(const std::string& n) {
  if (n.empty() || n.size() > 64 || !(n.front() >= 'a' && n.front() <= 'z') || n.back() == '-') return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && n[i - 1] != '-');
    if (!ok) return false;
  }
  return true;
}

}  // namespace

void ModuleRegistry::addServiceParam(ServiceParamInfo p) {
  const std::string what = "service parameter '" + p.service + " " + p.name + "'";
  if (!service(p.service))
    throw std::logic_error(what + " names a service that is not registered (addService first)");
  if (!kebabCase(p.name)) throw std::logic_error(what + ": the name must be kebab-case (import-rate)");
  if (serviceParam(p.service, p.name)) throw std::logic_error(what + " is declared twice");
  if (p.help.empty() || p.help.find('\n') != std::string::npos)
    throw std::logic_error(what + " needs a one-line help");
  if (p.type == ServiceParamType::Boolean) {
    if (p.zeroIsUnlimited) throw std::logic_error(what + ": a boolean cannot be unlimited");
    p.min = 0;
    p.max = 1;
  }
  if (p.min > p.max) throw std::logic_error(what + ": min " + std::to_string(p.min) + " is above max " + std::to_string(p.max));
  if (p.zeroIsUnlimited && p.min < 0) throw std::logic_error(what + ": an unlimited parameter cannot take negative values");
  const bool unlimitedDefault = p.zeroIsUnlimited && p.defaultValue == 0;
  if (!unlimitedDefault && (p.defaultValue < p.min || p.defaultValue > p.max))
    throw std::logic_error(what + ": default " + std::to_string(p.defaultValue) + " is outside " + std::to_string(p.min) +
                           ".." + std::to_string(p.max));
  params_.push_back(std::move(p));
}

std::vector<const ServiceParamInfo*> ModuleRegistry::serviceParams(std::string_view service) const {
  std::vector<const ServiceParamInfo*> out;
  for (const auto& p : params_)
    if (p.service == service) out.push_back(&p);
  return out;
}

const ServiceParamInfo* ModuleRegistry::serviceParam(std::string_view service, std::string_view name) const {
  for (const auto& p : params_)
    if (p.service == service && p.name == name) return &p;
  return nullptr;
}

void ModuleRegistry::addConfig(ConfigOptionsFn options, ConfigCheckFn check) {
  if (!options) throw std::logic_error("a config registration needs its options");
  configOptions_.push_back(std::move(options));
  if (check) configChecks_.push_back(std::move(check));
}

void ModuleRegistry::addAdminRoutes(AdminRoutesFn fn) {
  if (!fn) throw std::logic_error("empty admin-route registration");
  adminRoutes_.push_back(std::move(fn));
}

void ModuleRegistry::addCommands(CommandsFn fn) {
  if (!fn) throw std::logic_error("empty command registration");
  commands_.push_back(std::move(fn));
}

void ModuleRegistry::addNodeHooks(std::function<void()> up, std::function<void()> down) {
  if (up) nodeUp_.push_back(std::move(up));
  if (down) nodeDown_.push_back(std::move(down));
}

void ModuleRegistry::setActivation(std::function<std::vector<std::string>(const NodeContext&)> fn) {
  if (!fn) throw std::logic_error("empty activation registration");
  if (activation_) throw std::logic_error("two modules decide which services run");
  activation_ = std::move(fn);
}

void ModuleRegistry::nodeUp() const {
  for (const auto& f : nodeUp_) f();
}

void ModuleRegistry::nodeDown() const noexcept {
  // Reverse order, like services stopping.
  for (auto it = nodeDown_.rbegin(); it != nodeDown_.rend(); ++it) {
    try {
      (*it)();
    } catch (...) {
      // A down hook must not throw; the others still run.
    }
  }
}

std::vector<std::string> ModuleRegistry::activeServices(const NodeContext& node) const {
  return activation_ ? activation_(node) : servicesOf(node.role);
}

const ServiceRegistration* ModuleRegistry::service(std::string_view name) const {
  for (const auto& s : services_)
    if (s.name == name) return &s;
  return nullptr;
}

std::string ModuleRegistry::displayName(std::string_view name) const {
  const auto* s = service(name);
  return s ? s->displayName : std::string(name);
}

const std::vector<TraceFlagInfo>& ModuleRegistry::traceFlags(std::string_view name) const {
  static const std::vector<TraceFlagInfo> none;
  const auto* s = service(name);
  return s ? s->traceFlags : none;
}

std::vector<Role> ModuleRegistry::roleTable() const {
  std::vector<Role> out;
  for (const auto& r : roleNames()) {
    Role role{r.name, r.description, {}};
    for (const auto& s : services_)
      if (std::find(s.roles.begin(), s.roles.end(), r.name) != s.roles.end()) role.services.push_back(s.name);
    out.push_back(std::move(role));
  }
  return out;
}

std::vector<std::string> ModuleRegistry::servicesOf(std::string_view role) const {
  if (!findRole(role)) throw std::invalid_argument("unknown role " + std::string(role));
  std::vector<std::string> out;
  for (const auto& s : services_)
    if (std::find(s.roles.begin(), s.roles.end(), role) != s.roles.end()) out.push_back(s.name);
  return out;
}

ConfigSchema ModuleRegistry::configSchema() const {
  ConfigSchema schema;
  addCoreOptions(schema);
  for (const auto& f : configOptions_) f(schema);
  return schema;
}

void ModuleRegistry::checkConfig(const Config& cfg) const {
  for (const auto& f : configChecks_) f(cfg);
}

void ModuleRegistry::registerServices(ServiceHost& host) const {
  for (const auto& s : services_) host.registerService({s.name, s.displayName, s.kind, s.factory});
}

void ModuleRegistry::registerAdminRoutes(AdminRouter& router, const NodeContext& node) const {
  for (const auto& f : adminRoutes_) f(router, node);
}

void ModuleRegistry::registerCommands(CommandRegistry& commands) const {
  for (const auto& f : commands_) f(commands);
}

}  // namespace imp::core
