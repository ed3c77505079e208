#include "imp/xcp_router/offline_store.h"

#include <imp/core/database.h>

#include "store_lock.h"

namespace imp::xcp {

using core::DbSession;

OfflineAppend OfflineStore::append(const std::string& owner, const std::string& from, const std::string& stanza,
                                   std::uint32_t quota) {
  if (stanza.empty()) throw StoreInputError("bad-request", "the offline message is empty");
  if (stanza.size() > kMaxOfflineStanzaBytes)
    throw StoreInputError("policy-violation", "the message is larger than " + std::to_string(kMaxOfflineStanzaBytes) +
                                                  " bytes, the most the offline store keeps");
  OfflineAppend a;
  detail::guarded(db_, owner, [&](DbSession& s) {
    a = {};
    a.quota = quota;
    // Under the owner's lock, so two appends cannot both take the last place.
    detail::lockOwner(s, owner);
    auto n = static_cast<std::uint64_t>(
        s.query("SELECT COUNT(*) AS n FROM xcp_offline_message WHERE owner = ? FOR UPDATE", {owner}).num(0, "n"));
    if (quota != 0 && n >= quota) {
      a.status = OfflineAppend::Status::StorageFull;
      a.queued = n;
      a.text = "offline storage of " + owner + " is full: " + std::to_string(quota) + " messages (IM-5)";
      return;
    }
    s.exec("INSERT INTO xcp_offline_message (owner, sender, stanza, bytes) VALUES (?, ?, ?, ?)",
           {owner, from, stanza, static_cast<std::int64_t>(stanza.size())});
    a.id = s.lastInsertId();
    a.queued = n + 1;
  });
  return a;
}

std::vector<OfflineMessage> OfflineStore::fetch(const std::string& owner, std::size_t limit) {
  std::vector<OfflineMessage> out;
  db_.run([&](DbSession& s) {
    out.clear();
    const std::string sql =
        "SELECT id, sender, stanza, bytes, DATE_FORMAT(stamp, '%Y-%m-%dT%H:%i:%s') AS stamp FROM xcp_offline_message "
        "WHERE owner = ? ORDER BY id";
    auto r = limit == 0 ? s.query(sql, {owner}) : s.query(sql + " LIMIT ?", {owner, static_cast<std::int64_t>(limit)});
    for (std::size_t i = 0; i < r.size(); ++i)
      out.push_back({static_cast<std::uint64_t>(r.num(i, "id")), r.str(i, "sender"), r.str(i, "stanza"),
                     r.str(i, "stamp") + "Z", static_cast<std::uint64_t>(r.num(i, "bytes"))});
  });
  return out;
}

std::uint64_t OfflineStore::remove(const std::string& owner, const std::vector<std::uint64_t>& ids) {
  std::uint64_t n = 0;
  if (ids.empty()) return 0;
  db_.transaction([&](DbSession& s) {
    n = 0;
    // One statement per id: no SQL is built from the list.
    for (auto id : ids)
      n += s.exec("DELETE FROM xcp_offline_message WHERE owner = ? AND id = ?", {owner, static_cast<std::int64_t>(id)});
  });
  return n;
}

std::uint64_t OfflineStore::count(const std::string& owner) {
  return static_cast<std::uint64_t>(
      db_.query("SELECT COUNT(*) AS n FROM xcp_offline_message WHERE owner = ?", {owner}).num(0, "n"));
}

std::uint64_t OfflineStore::total() {
  return static_cast<std::uint64_t>(db_.query("SELECT COUNT(*) AS n FROM xcp_offline_message").num(0, "n"));
}

std::uint64_t OfflineStore::totalOnNode(const std::string& nodeId) {
  return static_cast<std::uint64_t>(
      db_.query("SELECT COUNT(*) AS n FROM xcp_offline_message m JOIN dir_user u ON u.userid = m.owner "
                "WHERE u.home_node = ?",
                {nodeId})
          .num(0, "n"));
}

}  // namespace imp::xcp
