#include "imp/xcp_router/presence_settings.h"

#include <imp/core/admin_http.h>
#include <imp/core/cluster_settings.h>
#include <imp/core/database.h>

#include <string>

namespace imp::xcp {

namespace {

PresenceSettings read(core::DbSession& s) {
  auto r = s.query(
      "SELECT max_contacts, max_watchers, auto_approve, offline_quota FROM xcp_presence_settings WHERE id = 1");
  // The migration inserts the row; its absence means the schema is not ours.
  if (r.empty()) throw core::DbError("xcp_presence_settings has no row 1 (run the schema migrations)", 0, false);
  PresenceSettings p;
  p.maxContacts = static_cast<std::uint32_t>(r.num(0, "max_contacts"));
  p.maxWatchers = static_cast<std::uint32_t>(r.num(0, "max_watchers"));
  p.autoApprove = r.num(0, "auto_approve") != 0;
  p.offlineQuota = static_cast<std::uint32_t>(r.num(0, "offline_quota"));
  return p;
}

void checkRange(const std::optional<std::uint32_t>& v, const char* field) {
  if (v && *v > kMaxSettingValue)
    throw core::AdminError(400, "invalid_argument",
                           std::string(field) + " " + std::to_string(*v) + " is above " + std::to_string(kMaxSettingValue) +
                               " (0 = no limit)");
}

}  // namespace

PresenceSettings PresenceSettingsStore::get() {
  PresenceSettings p;
  db_.run([&](core::DbSession& s) { p = read(s); });
  return p;
}

PresenceSettingsChange PresenceSettingsStore::update(const PresenceSettingsUpdate& u) {
  checkRange(u.maxContacts, "max_contacts");
  checkRange(u.maxWatchers, "max_watchers");
  checkRange(u.offlineQuota, "offline_quota");
  PresenceSettingsChange c;
  db_.transaction([&](core::DbSession& s) {
    c = {};
    auto before = read(s);
    auto after = before;
    if (u.maxContacts) after.maxContacts = *u.maxContacts;
    if (u.maxWatchers) after.maxWatchers = *u.maxWatchers;
    if (u.autoApprove) after.autoApprove = *u.autoApprove;
    if (u.offlineQuota) after.offlineQuota = *u.offlineQuota;
    c.settings = after;
    if (after == before) return;
    s.exec(
        "UPDATE xcp_presence_settings SET max_contacts = ?, max_watchers = ?, auto_approve = ?, offline_quota = ?, "
        "changed_at = CURRENT_TIMESTAMP(3) WHERE id = 1",
        {static_cast<std::int64_t>(after.maxContacts), static_cast<std::int64_t>(after.maxWatchers), after.autoApprove,
         static_cast<std::int64_t>(after.offlineQuota)});
    // Same transaction: the running routers see the change with the generation (live, PS-1).
    c.generation = core::ClusterSettings::bump(s);
    c.changed = true;
  });
  return c;
}

void LivePresenceSettings::reload() {
  auto fresh = store_.get();
  std::lock_guard lock(mu_);
  current_ = fresh;
}

PresenceSettings LivePresenceSettings::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

}  // namespace imp::xcp
