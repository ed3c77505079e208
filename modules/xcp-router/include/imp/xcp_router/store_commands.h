#pragma once
// The admin commands of the xcp-router data (issue 16): presence settings
// show|set (PS-1, PS-2), user roster, user passwd. Declared once in the
// command registry; their handlers work on StoreCommandsContext.
#include <memory>

namespace imp::core {
class CommandRegistry;
class Database;
}

namespace imp::xcp {

class CredentialStore;
class PresenceSettingsStore;
class RosterStore;

// What the handlers need; provided to the registry by the module's
// admin-route function.
struct StoreCommandsContext {
  explicit StoreCommandsContext(core::Database& db);
  ~StoreCommandsContext();
  core::Database& db;
  std::unique_ptr<PresenceSettingsStore> settings;
  std::unique_ptr<RosterStore> rosters;
  std::unique_ptr<CredentialStore> credentials;
};

void registerStoreCommands(core::CommandRegistry& reg);

}  // namespace imp::xcp
