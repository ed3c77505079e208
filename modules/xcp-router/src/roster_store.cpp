#include "imp/xcp_router/roster_store.h"

#include <imp/core/database.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "roster_rows.h"
#include "store_lock.h"

namespace imp::xcp {

namespace {

using core::DbSession;
using core::Rows;

using detail::checkContact;
using detail::checkedGroups;
using detail::isPendingInOnly;
using detail::kItemColumns;

struct Stored {
  std::int64_t id = 0;
  RosterItem item;
};

RosterItem fromRow(const Rows& r, std::size_t i) { return detail::itemFromRow(r, i); }

std::vector<std::string> groupsOf(DbSession& s, std::int64_t id) {
  auto r = s.query("SELECT group_name FROM xcp_roster_group WHERE item_id = ? ORDER BY group_name", {id});
  std::vector<std::string> g;
  for (std::size_t i = 0; i < r.size(); ++i) g.push_back(r.str(i, "group_name"));
  return g;
}

std::optional<Stored> load(DbSession& s, const std::string& owner, const std::string& contact, bool forUpdate) {
  auto r = s.query(std::string("SELECT ") + kItemColumns + " FROM xcp_roster_item WHERE owner = ? AND contact = ?" +
                       (forUpdate ? " FOR UPDATE" : ""),
                   {owner, contact});
  if (r.empty()) return std::nullopt;
  Stored st{r.num(0, "id"), fromRow(r, 0)};
  st.item.groups = groupsOf(s, st.id);
  return st;
}

// Items with their groups, in the order of `r`.
std::vector<RosterItem> withGroups(DbSession& s, const std::string& owner, const Rows& r) {
  std::map<std::int64_t, std::vector<std::string>> groups;
  auto g = s.query(
      "SELECT g.item_id, g.group_name FROM xcp_roster_group g JOIN xcp_roster_item i ON i.id = g.item_id "
      "WHERE i.owner = ? ORDER BY g.group_name",
      {owner});
  for (std::size_t i = 0; i < g.size(); ++i) groups[g.num(i, "item_id")].push_back(g.str(i, "group_name"));
  std::vector<RosterItem> items;
  for (std::size_t i = 0; i < r.size(); ++i) {
    items.push_back(fromRow(r, i));
    auto it = groups.find(r.num(i, "id"));
    if (it != groups.end()) items.back().groups = it->second;
  }
  return items;
}

std::uint64_t currentVersion(DbSession& s, const std::string& owner, bool forUpdate) {
  auto r = s.query(std::string("SELECT version FROM xcp_roster_version WHERE owner = ?") + (forUpdate ? " FOR UPDATE" : ""),
                   {owner});
  return r.empty() ? 0 : static_cast<std::uint64_t>(r.num(0, "version"));
}

// The next roster version of the owner (RFC 6121 §2.6), inside the caller's transaction.
std::uint64_t bumpVersion(DbSession& s, const std::string& owner) {
  auto r = s.query("SELECT version FROM xcp_roster_version WHERE owner = ? FOR UPDATE", {owner});
  if (r.empty()) {
    s.exec("INSERT INTO xcp_roster_version (owner, version) VALUES (?, 1)", {owner});
    return 1;
  }
  auto v = static_cast<std::uint64_t>(r.num(0, "version")) + 1;
  s.exec("UPDATE xcp_roster_version SET version = ? WHERE owner = ?", {static_cast<std::int64_t>(v), owner});
  return v;
}

// `locking`: inside a write transaction, after lockOwner(): read the latest
// committed rows, not the transaction's snapshot.
std::uint64_t countContacts(DbSession& s, const std::string& owner, bool locking) {
  return static_cast<std::uint64_t>(
      s.query(std::string("SELECT COUNT(*) AS n FROM xcp_roster_item WHERE owner = ? AND removed = FALSE AND "
                          "pending_only = FALSE") +
                  (locking ? " FOR UPDATE" : ""),
              {owner})
          .num(0, "n"));
}

std::uint64_t countWatchers(DbSession& s, const std::string& owner, bool locking) {
  return static_cast<std::uint64_t>(
      s.query(std::string("SELECT COUNT(*) AS n FROM xcp_roster_item WHERE owner = ? AND removed = FALSE AND "
                          "subscription IN ('from', 'both')") +
                  (locking ? " FOR UPDATE" : ""),
              {owner})
          .num(0, "n"));
}

// Writes the item (insert or update of the row, groups replaced when given).
std::int64_t write(DbSession& s, const std::string& owner, const std::optional<Stored>& old, const RosterItem& it,
                   const std::vector<std::string>* groups) {
  core::SqlParams p = {it.name,
                       std::string(toString(it.state.subscription)),
                       it.state.pendingOut,
                       it.state.pendingIn,
                       it.pendingInStatus,
                       it.state.preApproved,
                       it.pendingOnly,
                       it.removed,
                       static_cast<std::int64_t>(it.version)};
  std::int64_t id;
  if (old) {
    id = old->id;
    p.push_back(id);
    s.exec("UPDATE xcp_roster_item SET name = ?, subscription = ?, ask = ?, pending_in = ?, pending_in_status = ?, "
           "approved = ?, pending_only = ?, removed = ?, version = ? WHERE id = ?",
           p);
  } else {
    p.insert(p.begin(), {owner, it.contact});
    s.exec("INSERT INTO xcp_roster_item (owner, contact, name, subscription, ask, pending_in, pending_in_status, "
           "approved, pending_only, removed, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
           p);
    id = static_cast<std::int64_t>(s.lastInsertId());
  }
  if (groups) {
    s.exec("DELETE FROM xcp_roster_group WHERE item_id = ?", {id});
    for (const auto& g : *groups) s.exec("INSERT INTO xcp_roster_group (item_id, group_name) VALUES (?, ?)", {id, g});
  }
  return id;
}

}  // namespace

Roster RosterStore::get(const std::string& owner) {
  Roster out;
  db_.run([&](DbSession& s) {
    out.version = currentVersion(s, owner, false);
    auto r = s.query(std::string("SELECT ") + kItemColumns +
                         " FROM xcp_roster_item WHERE owner = ? AND removed = FALSE AND pending_only = FALSE ORDER BY contact",
                     {owner});
    out.items = withGroups(s, owner, r);
  });
  return out;
}

std::uint64_t RosterStore::version(const std::string& owner) {
  std::uint64_t v = 0;
  db_.run([&](DbSession& s) { v = currentVersion(s, owner, false); });
  return v;
}

RosterDelta RosterStore::since(const std::string& owner, const std::string& clientVersion) {
  // Our versions are decimal counters; anything else (another server's
  // token, a future value) gets the full roster, as RFC 6121 §2.6.3 allows.
  std::optional<std::uint64_t> known;
  std::uint64_t v = 0;
  const char* b = clientVersion.data();
  const char* e = b + clientVersion.size();
  if (!clientVersion.empty() && (clientVersion.size() == 1 || clientVersion[0] != '0')) {
    auto [ptr, ec] = std::from_chars(b, e, v);
    if (ec == std::errc() && ptr == e) known = v;
  }
  RosterDelta d;
  db_.run([&](DbSession& s) {
    d = {};
    d.version = currentVersion(s, owner, false);
    if (!known || *known > d.version) {
      d.full = true;
      auto r = s.query(std::string("SELECT ") + kItemColumns +
                           " FROM xcp_roster_item WHERE owner = ? AND removed = FALSE AND pending_only = FALSE "
                           "ORDER BY contact",
                       {owner});
      d.items = withGroups(s, owner, r);
      return;
    }
    d.full = false;
    if (*known == d.version) return;
    auto r = s.query(std::string("SELECT ") + kItemColumns +
                         " FROM xcp_roster_item WHERE owner = ? AND version > ? AND pending_only = FALSE "
                         "ORDER BY version, contact",
                     {owner, static_cast<std::int64_t>(*known)});
    d.items = withGroups(s, owner, r);
  });
  return d;
}

std::optional<RosterItem> RosterStore::item(const std::string& owner, const std::string& contact) {
  std::optional<RosterItem> out;
  db_.run([&](DbSession& s) {
    auto st = load(s, owner, contact, false);
    out = st && !st->item.removed ? std::optional<RosterItem>(st->item) : std::nullopt;
  });
  return out;
}

RosterWrite RosterStore::setItem(const std::string& owner, const std::string& contact, const std::string& name,
                                 const std::vector<std::string>& groups, std::uint32_t maxContacts) {
  checkContact(contact);
  auto gs = checkedGroups(name, groups);
  RosterWrite w;
  detail::guarded(db_, owner, [&](DbSession& s) {
    w = {};
    detail::lockOwner(s, owner);
    auto old = load(s, owner, contact, true);
    bool listed = old && !old->item.removed && !old->item.pendingOnly;
    if (listed && old->item.name == name && old->item.groups == gs) {
      w.item = old->item;
      w.version = currentVersion(s, owner, false);
      return;
    }
    if (!listed && exceeds(countContacts(s, owner, true), maxContacts)) {  // PS-1
      w.refused = LimitError{LimitError::Limit::Contacts, maxContacts};
      w.version = currentVersion(s, owner, false);
      return;
    }
    RosterItem it;
    if (old && !old->item.removed) it = old->item;  // keeps a pending request's state
    it.contact = contact;
    it.name = name;
    it.groups = gs;
    it.removed = false;
    it.pendingOnly = false;
    it.version = bumpVersion(s, owner);
    write(s, owner, old, it, &gs);
    w.item = it;
    w.changed = true;
    w.version = it.version;
  });
  return w;
}

RosterWrite RosterStore::setSubscription(const std::string& owner, const std::string& contact,
                                         const SubscriptionState& state, const std::optional<std::string>& pendingInStatus,
                                         const PresenceSettings& limits) {
  checkContact(contact);
  RosterWrite w;
  detail::guarded(db_, owner, [&](DbSession& s) {
    w = {};
    detail::lockOwner(s, owner);
    auto old = load(s, owner, contact, true);
    bool exists = old && !old->item.removed;
    w.version = currentVersion(s, owner, false);
    if (!exists && state == SubscriptionState{}) return;  // nothing to keep for a stranger

    RosterItem it;
    if (exists) it = old->item;
    else it.contact = contact;
    if (exists) it.groups = old->item.groups;
    it.state = state;
    it.pendingInStatus = !state.pendingIn ? std::string() : pendingInStatus ? *pendingInStatus : it.pendingInStatus;
    if (!exists) it.pendingOnly = isPendingInOnly(state);
    else if (!isPendingInOnly(state) && state != SubscriptionState{}) it.pendingOnly = false;
    bool dropped = exists && old->item.pendingOnly && state == SubscriptionState{};
    it.removed = dropped;

    if (exists && !dropped && it.state == old->item.state && it.pendingInStatus == old->item.pendingInStatus &&
        it.pendingOnly == old->item.pendingOnly) {
      w.item = old->item;
      return;
    }
    bool wasListed = exists && !old->item.pendingOnly;
    if (!wasListed && !it.pendingOnly && !it.removed && exceeds(countContacts(s, owner, true), limits.maxContacts)) {
      w.refused = LimitError{LimitError::Limit::Contacts, limits.maxContacts};  // PS-1
      return;
    }
    bool hadFrom = exists && old->item.state.hasFrom();
    if (state.hasFrom() && !hadFrom && exceeds(countWatchers(s, owner, true), limits.maxWatchers)) {
      w.refused = LimitError{LimitError::Limit::Watchers, limits.maxWatchers};  // PS-1
      return;
    }
    it.version = bumpVersion(s, owner);
    write(s, owner, old, it, nullptr);
    w.item = it;
    w.changed = true;
    w.version = it.version;
  });
  return w;
}

std::optional<RosterItem> RosterStore::remove(const std::string& owner, const std::string& contact) {
  checkContact(contact);
  std::optional<RosterItem> out;
  detail::guarded(db_, owner, [&](DbSession& s) {
    out.reset();
    detail::lockOwner(s, owner);
    auto old = load(s, owner, contact, true);
    if (!old || old->item.removed || old->item.pendingOnly) return;
    RosterItem tomb;
    tomb.contact = contact;
    tomb.removed = true;
    tomb.version = bumpVersion(s, owner);
    std::vector<std::string> none;
    write(s, owner, old, tomb, &none);
    out = old->item;
    out->removed = true;
    out->version = tomb.version;
  });
  return out;
}

std::vector<RosterItem> RosterStore::pendingIn(const std::string& owner) {
  std::vector<RosterItem> out;
  db_.run([&](DbSession& s) {
    auto r = s.query(std::string("SELECT ") + kItemColumns +
                         " FROM xcp_roster_item WHERE owner = ? AND removed = FALSE AND pending_in = TRUE ORDER BY contact",
                     {owner});
    out = withGroups(s, owner, r);
  });
  return out;
}

std::uint64_t RosterStore::contacts(const std::string& owner) {
  std::uint64_t n = 0;
  db_.run([&](DbSession& s) { n = countContacts(s, owner, false); });
  return n;
}

std::uint64_t RosterStore::watchers(const std::string& owner) {
  std::uint64_t n = 0;
  db_.run([&](DbSession& s) { n = countWatchers(s, owner, false); });
  return n;
}

}  // namespace imp::xcp
