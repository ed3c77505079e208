#pragma once
// What the roster store's single-item paths (roster_store.cpp) and its bulk
// paths (roster_bulk.cpp) share: the item columns, reading a row into a
// RosterItem, and the input checks (RFC 6121 §2.3.3, the indexed JID length).
#include <imp/core/database.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "imp/xcp_router/roster_store.h"

namespace imp::xcp::detail {

inline constexpr const char* kItemColumns =
    "id, contact, name, subscription, ask, pending_in, pending_in_status, approved, pending_only, removed, version";

inline void checkContact(const std::string& contact) {
  if (contact.empty()) throw StoreInputError("jid-malformed", "the contact JID is empty");
  if (utf8Length(contact) > kMaxIndexedJidChars)
    throw StoreInputError("not-acceptable", "the contact JID is longer than " + std::to_string(kMaxIndexedJidChars) +
                                                " characters");
}

// RFC 6121 §2.3.3: over-long name or group and an empty group are
// <not-acceptable/>; the same group twice is <bad-request/>. Returns the
// groups sorted.
inline std::vector<std::string> checkedGroups(const std::string& name, const std::vector<std::string>& groups) {
  if (utf8Length(name) > kMaxRosterNameChars)
    throw StoreInputError("not-acceptable", "the item name is longer than " + std::to_string(kMaxRosterNameChars) +
                                                " characters");
  std::set<std::string> seen;
  for (const auto& g : groups) {
    if (g.empty()) throw StoreInputError("not-acceptable", "a group name is empty");
    if (utf8Length(g) > kMaxRosterGroupChars)
      throw StoreInputError("not-acceptable", "the group name is longer than " + std::to_string(kMaxRosterGroupChars) +
                                                  " characters");
    if (!seen.insert(g).second) throw StoreInputError("bad-request", "the group '" + g + "' is given twice");
  }
  return {seen.begin(), seen.end()};
}

// Row `i` of a query that selected kItemColumns (groups not included).
inline RosterItem itemFromRow(const core::Rows& r, std::size_t i) {
  RosterItem it;
  it.contact = r.str(i, "contact");
  it.name = r.str(i, "name");
  if (!parseSubscription(r.str(i, "subscription"), it.state.subscription))
    throw core::DbError("xcp_roster_item.subscription holds '" + r.str(i, "subscription") + "'", 0, false);
  it.state.pendingOut = r.num(i, "ask") != 0;
  it.state.pendingIn = r.num(i, "pending_in") != 0;
  it.state.preApproved = r.num(i, "approved") != 0;
  it.pendingInStatus = r.str(i, "pending_in_status");
  it.pendingOnly = r.num(i, "pending_only") != 0;
  it.removed = r.num(i, "removed") != 0;
  it.version = static_cast<std::uint64_t>(r.num(i, "version"));
  return it;
}

inline bool isPendingInOnly(const SubscriptionState& st) {
  return st.subscription == Subscription::None && !st.pendingOut && st.pendingIn && !st.preApproved;
}

}  // namespace imp::xcp::detail
