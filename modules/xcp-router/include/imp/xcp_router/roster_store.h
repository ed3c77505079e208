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
  friend bool operator==(const RosterItem&, const RosterItem&) = default;
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

// ---- Bulk provisioning (MG-7 contact list import, MG-9 contact ID rename) ----
// For the Bulk Provisioning Service, which owns the job (CSV, checkpoints,
// log) and calls these inside its own transaction; the pushes and probes
// for online users go through XcpRuntime (service.h) after its commit.

// One contact of an imported contact list (MG-7).
struct BulkContact {
  std::string owner;        // directory user id of the list's owner
  std::string ownerJid;     // the owner's bare JID (IM address), normalised
  std::string contact;      // the contact's bare JID, normalised by the caller
  std::string contactUser;  // the contact's user id when it is a local user (its roster gets the reverse side), "" else
  std::string name;         // nickname, "" = none
  std::vector<std::string> groups;  // distinct (stored sorted)
};

enum class BulkOutcome {
  Imported,          // written (or already so on the contact's side)
  AlreadyPresent,    // the owner already had the contact with subscription to/both: nothing written
  ContactLimit,      // the owner's contact list is full (PS-1 maxContacts)
  WatcherLimit,      // the contact has maxWatchers watchers already (PS-1)
  ContactSideLimit,  // the contact's list is full for the owner's item (PS-1 maxContacts)
};

struct BulkResult {
  BulkOutcome outcome = BulkOutcome::Imported;
  std::uint32_t limit = 0;                // the PS-1 limit that refused the row
  std::optional<RosterItem> ownerItem;    // as stored (for the roster push), when Imported
  std::uint64_t ownerVersion = 0;         // the owner's roster version after the row
  std::optional<RosterItem> contactItem;  // the reverse item in contactUser's roster, when one was written
  std::uint64_t contactVersion = 0;       // contactUser's roster version after the row (when written)
};

// One contact list changed by a rename (MG-9): the old item's removal and
// the new item, both stamped with `version`.
struct RenameChange {
  std::string owner;       // directory user id
  RosterItem removedOld;   // the old item as it was, removed = true (push subscription='remove')
  RosterItem added;        // the new item, same name, groups and subscription state
  std::uint64_t version = 0;
};

struct RenameResult {
  std::vector<RenameChange> changed;       // contact lists updated (one per owner), by owner
  std::vector<std::string> alreadyHadNew;  // owners whose list already holds the new ID: not changed
  std::uint64_t privacyRows = 0;           // xcp_privacy_decision rows rewritten (AV-1 decisions)
  std::uint64_t blockRows = 0;             // xcp_block rows rewritten (XEP-0191)
  // Owners whose block list changed: the in-memory copy of an online owner
  // is stale until reloaded (XcpRuntime::reloadBlockList).
  std::vector<std::string> blockOwners;
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

  // MG-7: imports contacts into the owners' rosters, row by row in batch
  // order; later rows see the effects of earlier ones (the contact of one
  // row is often the owner of another). Runs inside the caller's
  // transaction `tx` (its job checkpoint commits with it: exactly once);
  // a few statements per batch, not per row.
  //  - The owner's live item for the contact already has "to" (to/both):
  //    AlreadyPresent, nothing written.
  //  - A new item (none, a tombstone, or a pendingOnly item made real)
  //    beyond limits.maxContacts: ContactLimit.
  //  - contactUser set: the reverse item (contactUser's roster, contact
  //    ownerJid) gains "from" with the checks RosterStore::setSubscription
  //    makes for that state, in its order: a new item beyond the contact's
  //    maxContacts is ContactSideLimit, then gaining "from" beyond
  //    maxWatchers is WatcherLimit. A refused row writes nothing, neither
  //    side.
  //  - Else the owner's item gets the row's name and groups (a live item
  //    without "to" keeps its own where the row has none) and gains "to"
  //    (none->to, from->both), ask cleared, a pending request kept. The
  //    reverse item gains "from" (none->from, to->both), created without
  //    name or groups when missing; its pending request and pre-approval
  //    end (approved, RFC 6121 §3.1.5, §3.4). It is written only when it
  //    changes.
  // Every write bumps that roster's version and stamps the item with it
  // (RFC 6121 §2.6), so versioned gets and the pushes stay exact.
  // Refused input is StoreInputError "row N: ..." (0-based) and nothing
  // is written: an empty or over-long JID, name or group, a group given
  // twice (checked before any statement), or a user missing from the
  // directory (item-not-found, found by the first statement, which has
  // locked the batch's other users then). core::DbError from the database
  // (a deadlock, 1213, aborts `tx`: run the caller's transaction again).
  std::vector<BulkResult> importContacts(core::DbSession& tx, const std::vector<BulkContact>& batch,
                                         const PresenceSettings& limits);

  // MG-9: every live item (not removed, not pendingOnly) for `oldJid`, in
  // any owner's roster, becomes a tombstone and an item for `newJid` is
  // created (or revived from a tombstone, or a pendingOnly one made real,
  // keeping its pending request when the subscription has no "from") with
  // the same name, groups and subscription state; both carry the owner's
  // bumped version. Owners holding a live item for `newJid` already are
  // left alone and listed. Remembered privacy decisions (watcher) and block
  // list items (blocked) equal to `oldJid` become `newJid`, except where
  // the owner has one for `newJid` already (that row stays). Pending
  // requests from `oldJid` (pendingOnly items) stay. Inside the caller's
  // transaction; StoreInputError for an empty, over-long or unchanged JID.
  RenameResult renameContact(core::DbSession& tx, const std::string& oldJid, const std::string& newJid);

 private:
  core::Database& db_;
};

}  // namespace imp::xcp
