#pragma once
// Rosters in the database (RFC 6121 §2): items with names, groups and the
// subscription state of Appendix A, and roster versioning (§2.6).
//
// Owners are directory user ids; contacts are bare JIDs normalised by the
// caller (RFC 7622). Every change runs in one transaction that bumps the
// owner's roster version and stamps the changed item with it; a removed item
// stays as a tombstone so a client holding an older version gets the removal
// as a push. Limits (PS-1) are checked inside the same transaction, so two
// concurrent adds cannot both pass the last free place.
//
// Errors: StoreInputError for refused input (nothing stored), core::DbError
// from the database. Stateless over the database: thread-safe, blocking.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "imp/xcp_router/limits.h"
#include "imp/xcp_router/presence_settings.h"
#include "imp/xcp_router/store_errors.h"
#include "imp/xcp_router/subscription.h"

namespace imp::core {
class Database;
class DbSession;
}

namespace imp::xcp {

// Longest item name and group name (characters) the store accepts; longer
// ones are <not-acceptable/> (RFC 6121 §2.3.3).
inline constexpr std::size_t kMaxRosterNameChars = 1023;
inline constexpr std::size_t kMaxRosterGroupChars = kMaxIndexedJidChars;

struct RosterItem {
  std::string contact;              // bare JID
  std::string name;                 // "" = no name
  std::vector<std::string> groups;  // sorted, distinct
  SubscriptionState state;
  std::string pendingInStatus;      // status text of the unanswered inbound subscribe
  std::uint64_t version = 0;        // the roster version that last changed it
  bool removed = false;             // only in deltas and remove(): push subscription='remove'
  // Exists only because the contact asked to subscribe (None + Pending In)
  // and the user has not acted on it: not in roster gets, not pushed, not
  // counted against the contact limit; kept for the answer and for
  // redelivery of the request at login (RFC 6121 §3.1.3).
  bool pendingOnly = false;
};

struct Roster {
  std::uint64_t version = 0;  // 0 before the first change
  std::vector<RosterItem> items;  // by contact
};

// The answer to a roster get with a version (RFC 6121 §2.6.3).
struct RosterDelta {
  // true: `items` is the whole roster (the client's version is unknown or
  // empty); false: `items` are the changes after the client's version, in
  // version order, removals included; empty when the client is up to date.
  bool full = true;
  std::uint64_t version = 0;
  std::vector<RosterItem> items;
};

struct RosterWrite {
  std::optional<RosterItem> item;     // as stored; empty when refused
  std::optional<LimitError> refused;  // PS-1 limit reached: nothing stored
  bool changed = false;               // false when the item already was so (no push needed)
  std::uint64_t version = 0;          // the roster version after the call
};

class RosterStore {
 public:
  explicit RosterStore(core::Database& db) : db_(db) {}

  Roster get(const std::string& owner);
  std::uint64_t version(const std::string& owner);
  // `clientVersion` is the 'ver' the client sent ("" = none kept).
  RosterDelta since(const std::string& owner, const std::string& clientVersion);
  std::optional<RosterItem> item(const std::string& owner, const std::string& contact);

  // Roster set (RFC 6121 §2.3): creates the item (subscription none) or
  // replaces its name and groups; the subscription state is not touched.
  // A new item beyond `maxContacts` (0 = no limit) is refused (PS-1).
  RosterWrite setItem(const std::string& owner, const std::string& contact, const std::string& name,
                      const std::vector<std::string>& groups, std::uint32_t maxContacts);

  // Stores a state from applySubscriptionEvent(). Creates the item when
  // missing: as pendingOnly when the state is None + Pending In, else as a
  // roster item (PS-1 contact limit applies). Gaining "from" is refused beyond
  // limits.maxWatchers (PS-1 watcher limit). `pendingInStatus` replaces the
  // kept status text when given; it is cleared when pendingIn is false. A
  // plain None for a contact without an item stores nothing (item empty); a
  // pendingOnly item that falls back to None is dropped (item has removed).
  RosterWrite setSubscription(const std::string& owner, const std::string& contact, const SubscriptionState& state,
                              const std::optional<std::string>& pendingInStatus, const PresenceSettings& limits);

  // Roster remove (RFC 6121 §2.5): returns the item as it was (its state,
  // so the caller sends unsubscribe/unsubscribed as §2.5.2 says) with
  // removed = true and the new roster version; nullopt when absent.
  std::optional<RosterItem> remove(const std::string& owner, const std::string& contact);

  // Unanswered inbound subscription requests, pendingOnly ones included
  // (redelivered at login, RFC 6121 §3.1.3), by contact.
  std::vector<RosterItem> pendingIn(const std::string& owner);

  // Items of the contact list, and those with "from" or "both" (PS-1 watchers).
  std::uint64_t contacts(const std::string& owner);
  std::uint64_t watchers(const std::string& owner);

 private:
  core::Database& db_;
};

}  // namespace imp::xcp
