#pragma once
// Service parameters (MG-3; Cisco IM&P's "Service Parameters"): cluster-wide
// values per service, declared by the service's module
// (ModuleRegistry::addServiceParam: type, default, range, unit, help) and
// stored in `core_service_param` (sql/0010_core_service_param.sql) only once
// an administrator sets one; until then the declared default applies.
//
// Changing one (set, reset) bumps the cluster settings generation in the
// same transaction, so every running service on every node gets reload()
// and re-reads its parameters live (cluster_settings.h).
//
// How a service uses one: keep ServiceContext::params in configure(), read
// it in start() and again in reload():
//
//     params_ = ctx.params;                                    // configure()
//     rate_ = params_ ? params_->get("bulk-provisioning", "import-rate") : 0;  // start(), reload()
//
// get() reads the database: call it where blocking is allowed (start(),
// reload(), a worker), never on an event loop thread, and post the value to
// the loop that uses it.
//
// Errors: an undeclared service or parameter is AdminError 404
// (unknown_service, unknown_service_param); a value the declaration refuses
// is AdminError 400 (invalid_param_value) naming the parameter and its
// range; a database failure is DbError. Thread-safe: no state of its own
// beyond the database and the (immutable) declarations.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imp/core/module_registry.h"

namespace imp::core {

class Database;

// Whether the declaration accepts v: [min, max], or 0 when zeroIsUnlimited.
bool paramAccepts(const ServiceParamInfo& p, std::int64_t v);
// How impctl shows a value: "unlimited" (0 of an unlimited parameter), "on" /
// "off" (Boolean), else the number.
std::string formatParamValue(const ServiceParamInfo& p, std::int64_t v);
// What it accepts: "1..100000", "1..1000000 or unlimited", "on|off".
std::string paramRange(const ServiceParamInfo& p);
// A value as an administrator writes it: a whole number, "unlimited" where
// the parameter allows it, on/off for a Boolean. Throws AdminError 400
// (invalid_param_value) naming the parameter and what it accepts.
std::int64_t parseParamValue(const ServiceParamInfo& p, std::string_view text);

class ServiceParams {
 public:
  // Both must outlive this object.
  ServiceParams(Database& db, const ModuleRegistry& modules);

  // The declaration; AdminError 404 for an unknown service or parameter.
  const ServiceParamInfo& info(std::string_view service, std::string_view name) const;

  // The value an administrator set, if any. A stored value the declaration
  // no longer accepts (its range changed in an upgrade) counts as not set.
  std::optional<std::int64_t> stored(std::string_view service, std::string_view name) const;
  // stored(), else the declared default.
  std::int64_t get(std::string_view service, std::string_view name) const;

  struct Entry {
    const ServiceParamInfo* info = nullptr;
    std::int64_t value = 0;  // what the service uses: stored, else the default
    bool stored = false;
    std::string changedAt;   // "2026-12-07T10:00:00" (UTC) when stored
  };
  // Every parameter the service declares, in declaration order (empty for a
  // registered service without any); AdminError 404 for an unknown service.
  std::vector<Entry> list(std::string_view service) const;

  struct Change {
    std::int64_t oldValue = 0;  // in force before (stored, else the default)
    std::int64_t newValue = 0;  // in force after
    bool changed = false;       // false: nothing was written (the same value was stored, or none to reset)
    std::uint64_t generation = 0;  // the settings generation of the change; 0 when unchanged
  };
  // Validates against the declaration, stores the value and bumps the
  // settings generation, in one transaction.
  Change set(std::string_view service, std::string_view name, std::int64_t value);
  // The same with the value as text (parseParamValue).
  Change set(std::string_view service, std::string_view name, std::string_view text);
  // Back to the declared default: the stored value is removed (and the
  // generation bumped, in one transaction, when there was one).
  Change reset(std::string_view service, std::string_view name);

 private:
  Database& db_;
  const ModuleRegistry& modules_;
};

}  // namespace imp::core
