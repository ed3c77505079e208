#pragma once
// The cluster-wide presence settings (PS-1, PS-2) and the offline quota
// (IM-5), stored in xcp_presence_settings. Every change bumps the cluster
// settings generation in the same transaction (core/cluster_settings.h), so
// the running router re-reads them (LivePresenceSettings::reload()) and
// applies them without a restart.
#include <cstdint>
#include <mutex>
#include <optional>

namespace imp::core {
class Database;
}

namespace imp::xcp {

struct PresenceSettings {
  std::uint32_t maxContacts = 200;   // PS-1: roster items per user; 0 = no limit
  std::uint32_t maxWatchers = 200;   // PS-1: users subscribed to one user's presence; 0 = no limit
  bool autoApprove = true;           // PS-2 / AV-1: approve subscriptions without asking
  std::uint32_t offlineQuota = 1000; // IM-5: offline messages kept per user; 0 = no limit
  friend bool operator==(const PresenceSettings&, const PresenceSettings&) = default;
};

// Upper bound of the three counts (admin input is checked against it).
inline constexpr std::uint32_t kMaxSettingValue = 1000000;

struct PresenceSettingsUpdate {
  std::optional<std::uint32_t> maxContacts;
  std::optional<std::uint32_t> maxWatchers;
  std::optional<bool> autoApprove;
  std::optional<std::uint32_t> offlineQuota;
  bool empty() const { return !maxContacts && !maxWatchers && !autoApprove && !offlineQuota; }
};

struct PresenceSettingsChange {
  PresenceSettings settings;     // as stored after the change
  bool changed = false;          // false when every value was already so
  std::uint64_t generation = 0;  // the bumped generation; 0 when nothing changed
};

// Stateless over the database: thread-safe, blocking (not on a loop thread).
class PresenceSettingsStore {
 public:
  explicit PresenceSettingsStore(core::Database& db) : db_(db) {}
  PresenceSettings get();
  // Values above kMaxSettingValue are refused with core::AdminError 400
  // naming the setting; nothing is stored then.
  PresenceSettingsChange update(const PresenceSettingsUpdate& u);

 private:
  core::Database& db_;
};

// The settings the running router uses: a snapshot replaced by reload() on
// every cluster settings generation change. Thread-safe.
class LivePresenceSettings {
 public:
  explicit LivePresenceSettings(PresenceSettingsStore& store) : store_(store) {}
  // Re-reads the store; on a database error keeps the last snapshot and
  // rethrows (the caller logs it and retries at the next generation).
  void reload();
  PresenceSettings current() const;

 private:
  PresenceSettingsStore& store_;
  mutable std::mutex mu_;
  PresenceSettings current_;
};

}  // namespace imp::xcp
