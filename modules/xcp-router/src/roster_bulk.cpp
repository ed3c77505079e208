// The roster store's bulk paths for the Bulk Provisioning Service: MG-7
// contact list import and MG-9 contact ID rename. They make the same
// changes as the single-item paths (roster_store.cpp), but for a batch at
// a time in a few set-based statements inside the caller's transaction:
// the rows of the batch are read once, the batch is applied in memory row
// by row (so a row sees the rows before it), and what changed is written
// back with multi-row statements.
#include <imp/core/database.h>

#include <iterator>
#include <map>
#include <set>
#include <utility>

#include "imp/xcp_router/roster_store.h"
#include "roster_rows.h"

namespace imp::xcp {

namespace {

using core::DbSession;
using core::SqlParams;
using detail::checkedGroups;
using detail::kItemColumns;

// Rows per statement. MySqlDatabase prepares each SQL text once per
// connection and keeps it (by text), so every statement kind has one text
// per size. A statement takes the rows left when one of these sizes holds
// them (the smallest that does), the last row repeated up to the size:
// every statement here means the same with a row twice (an IN list, an
// upsert writing the same values again), the repeats costing the server
// nearly what a row does (powers of 2: fewer than half the rows are
// repeats). Else the largest size that is not more than what is left.
constexpr std::size_t kChunkRows[] = {1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1};
// Parameter bytes per statement: a 1024-row chunk of the longest JIDs and
// names allowed would be tens of MB (max_allowed_packet is 16 MB by default).
constexpr std::size_t kMaxStatementBytes = std::size_t{1} << 20;

// Calls fn(begin, end, rows) for consecutive chunks [begin, end) of [0, n),
// `rows` (>= end - begin) being the size of the statement; bytes(i) is the
// size of row i's parameters.
// `padding` false: statements that must not see a row twice (a plain
// INSERT) take only whole sizes, several of them for what is left.
template <class Bytes, class Fn>
void inChunks(std::size_t n, Bytes&& bytes, Fn&& fn, bool padding = true) {
  std::vector<std::size_t> prefix(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + bytes(i) + 16;  // + the numbers and flags
  for (std::size_t i = 0; i < n;) {
    const std::size_t left = n - i;
    const std::size_t last = prefix[n] - prefix[n - 1];
    std::size_t end = i + 1, rows = 1;
    bool padded = false;
    for (auto it = std::rbegin(kChunkRows); padding && it != std::rend(kChunkRows); ++it)  // smallest size holding the rest
      if (*it >= left) {
        if (prefix[n] - prefix[i] + (*it - left) * last <= kMaxStatementBytes) {
          end = n;
          rows = *it;
          padded = true;
        }
        break;
      }
    if (!padded)
      for (auto c : kChunkRows)
        if (c <= left && prefix[i + c] - prefix[i] <= kMaxStatementBytes) {
          end = i + c;
          rows = c;
          break;
        }
    fn(i, end, rows);
    i = end;
  }
}

// Repeats the last `perRow` parameters of `p` until it holds `rows` rows.
void pad(SqlParams& p, std::size_t perRow, std::size_t rows) {
  const std::size_t have = p.size() / perRow;
  p.reserve(rows * perRow);
  for (std::size_t r = have; r < rows; ++r)
    for (std::size_t k = 0; k < perRow; ++k) p.push_back(p[(have - 1) * perRow + k]);
}

// `k` copies of `one`, separated by `sep`.
std::string repeated(std::size_t k, const char* one, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < k; ++i) {
    if (i) out += sep;
    out += one;
  }
  return out;
}

Subscription withTo(Subscription s) {
  return s == Subscription::From || s == Subscription::Both ? Subscription::Both : Subscription::To;
}
Subscription withFrom(Subscription s) {
  return s == Subscription::To || s == Subscription::Both ? Subscription::Both : Subscription::From;
}

void checkJid(const std::string& jid, const char* what) {
  if (jid.empty()) throw StoreInputError("jid-malformed", std::string("the ") + what + " JID is empty");
  if (utf8Length(jid) > kMaxIndexedJidChars)
    throw StoreInputError("not-acceptable", std::string("the ") + what + " JID is longer than " +
                                                std::to_string(kMaxIndexedJidChars) + " characters");
}

using Pair = std::pair<std::string, std::string>;  // (owner, contact)

// One (owner, contact) item of the batch.
struct Entry {
  std::int64_t id = 0;                    // its row; 0 while it has none
  bool present = false;                   // a row exists, or the batch writes one
  RosterItem item;                        // as the batch has made it so far (groups included)
  std::vector<std::string> storedGroups;  // the row's groups in the database
  bool dirty = false;                     // to be written
};

// One user whose roster the batch reads or changes.
struct Owner {
  std::uint64_t version = 0;  // as the batch has made it so far
  std::uint64_t storedVersion = 0;
  std::uint64_t contacts = 0;  // PS-1 counts (read only when a limit is set)
  std::uint64_t watchers = 0;
};

// Locks the users' directory rows, as lockOwner() does for one (the lock
// every writer of a roster takes before it counts for a PS-1 limit), in
// key order, and reads their roster versions. Users not in the directory
// are missing from the result.
std::map<std::string, Owner> lockUsers(DbSession& s, const std::set<std::string>& users) {
  std::vector<const std::string*> v;
  for (const auto& u : users) v.push_back(&u);
  std::map<std::string, Owner> out;
  inChunks(v.size(), [&](std::size_t i) { return v[i]->size(); }, [&](std::size_t b, std::size_t e, std::size_t k) {
    SqlParams p;
    for (auto i = b; i < e; ++i) p.push_back(*v[i]);
    pad(p, 1, k);
    auto r = s.query("SELECT u.userid, v.version FROM dir_user u LEFT JOIN xcp_roster_version v ON v.owner = u.userid "
                     "WHERE u.userid IN (" + repeated(k, "?", ", ") + ") FOR UPDATE",
                     p);
    for (std::size_t i = 0; i < r.size(); ++i) {
      auto& o = out[r.str(i, "userid")];
      o.version = o.storedVersion = static_cast<std::uint64_t>(r.num(i, "version"));
    }
  });
  return out;
}

// The groups of the items `ids`, sorted (binary order, as checkedGroups()).
std::map<std::int64_t, std::vector<std::string>> loadGroups(DbSession& s, const std::vector<std::int64_t>& ids) {
  std::map<std::int64_t, std::vector<std::string>> out;
  inChunks(ids.size(), [](std::size_t) { return std::size_t{8}; }, [&](std::size_t b, std::size_t e, std::size_t k) {
    SqlParams p(ids.begin() + static_cast<std::ptrdiff_t>(b), ids.begin() + static_cast<std::ptrdiff_t>(e));
    pad(p, 1, k);
    auto r = s.query("SELECT item_id, group_name FROM xcp_roster_group WHERE item_id IN (" + repeated(k, "?", ", ") +
                         ") ORDER BY item_id, group_name",
                     p);
    for (std::size_t i = 0; i < r.size(); ++i) out[r.num(i, "item_id")].push_back(r.str(i, "group_name"));
  });
  return out;
}

// The (owner, contact) pairs of the batch's users with long rosters
// (loadBatchItems), in a temporary table of the connection joined to the
// items' (owner, contact) key: one index lookup per pair, the pairs read
// first (STRAIGHT_JOIN: the optimizer has no
// statistics for a temporary table filled in the same transaction, and
// chose to scan the items instead). MariaDB 10.11 has no cheaper form for
// a set of pairs: its range optimizer takes quadratic time over a list of
// row values or of ORs (1024 pairs: 1.3 s and 0.7 s to plan), a table
// value constructor loses its bound parameters in a prepared statement, a
// UNION of SELECTs becomes a dependent subquery. The table is made anew
// for each batch (the last batch's stays until the connection's next one):
// emptying it with DELETE cost more than the rest of the batch's reads,
// its delete-marked rows slowing every later scan of it until purged.
// Neither DROP nor CREATE of a TEMPORARY table ends the transaction.
void storePairs(DbSession& s, const std::set<Pair>& pairs) {
  s.exec("DROP TEMPORARY TABLE IF EXISTS xcp_bulk_pair");
  s.exec("CREATE TEMPORARY TABLE xcp_bulk_pair (owner VARCHAR(128) NOT NULL, contact VARCHAR(640) NOT NULL, "
         "PRIMARY KEY (owner, contact))");
  std::vector<const Pair*> v;
  for (const auto& p : pairs) v.push_back(&p);
  inChunks(v.size(), [&](std::size_t i) { return v[i]->first.size() + v[i]->second.size(); },
           [&](std::size_t b, std::size_t e, std::size_t k) {
             SqlParams p;
             for (auto i = b; i < e; ++i) p.insert(p.end(), {v[i]->first, v[i]->second});
             pad(p, 2, k);
             s.exec("INSERT INTO xcp_bulk_pair (owner, contact) VALUES " + repeated(k, "(?, ?)", ", ") +
                        " ON DUPLICATE KEY UPDATE owner = VALUES(owner)",
                    p);
           });
}

constexpr const char* kPairItemColumns =
    "i.owner, i.id, i.contact, i.name, i.subscription, i.ask, i.pending_in, i.pending_in_status, i.approved, "
    "i.pending_only, i.removed, i.version";

// Row `i` of a query that selected kPairItemColumns, as the batch's entry.
void takeRow(const core::Rows& r, std::size_t i, std::map<Pair, Entry>& out, std::vector<std::int64_t>& ids) {
  auto& en = out[{r.str(i, "owner"), r.str(i, "contact")}];
  en.id = r.num(i, "id");
  en.present = true;
  en.item = detail::itemFromRow(r, i);
  ids.push_back(en.id);
}

void attachGroups(DbSession& s, std::map<Pair, Entry>& entries, const std::vector<std::int64_t>& ids) {
  auto groups = loadGroups(s, ids);
  for (auto& [key, en] : entries)
    if (auto g = groups.find(en.id); g != groups.end()) en.item.groups = en.storedGroups = g->second;
}

// The rows of the stored pairs that exist (tombstones and pendingOnly ones
// too), locked, into `out` (groups not read).
void loadPairItems(DbSession& s, std::map<Pair, Entry>& out, std::vector<std::int64_t>& ids) {
  auto r = s.query(std::string("SELECT ") + kPairItemColumns +
                   " FROM xcp_bulk_pair p STRAIGHT_JOIN xcp_roster_item i "
                   "ON i.owner = p.owner AND i.contact = p.contact FOR UPDATE");
  for (std::size_t i = 0; i < r.size(); ++i) takeRow(r, i, out, ids);
}

// PS-1 counts of `users` (RosterStore::contacts() and watchers()), latest
// committed rows (locking read, as countContacts() does after lockOwner()).
void loadCounts(DbSession& s, const std::set<std::string>& users, std::map<std::string, Owner>& owners) {
  std::vector<const std::string*> v;
  for (const auto& u : users) v.push_back(&u);
  inChunks(v.size(), [&](std::size_t i) { return v[i]->size(); }, [&](std::size_t b, std::size_t e, std::size_t k) {
    SqlParams p;
    for (auto i = b; i < e; ++i) p.push_back(*v[i]);
    pad(p, 1, k);
    auto r = s.query(
        "SELECT owner, SUM(CASE WHEN pending_only = FALSE THEN 1 ELSE 0 END) AS contacts, "
        "SUM(CASE WHEN subscription IN ('from', 'both') THEN 1 ELSE 0 END) AS watchers FROM xcp_roster_item "
        "WHERE owner IN (" + repeated(k, "?", ", ") + ") AND removed = FALSE GROUP BY owner FOR UPDATE",
        p);
    for (std::size_t i = 0; i < r.size(); ++i) {
      auto& o = owners.at(r.str(i, "owner"));
      o.contacts = static_cast<std::uint64_t>(r.num(i, "contacts"));
      o.watchers = static_cast<std::uint64_t>(r.num(i, "watchers"));
    }
  });
}

// A user whose roster version is at most 2 per pair of the batch plus
// this has the whole roster read (one index range, the PS-1 counts on the
// way): the version counts the roster's changes, each new row among them,
// so the roster is no longer than that, and a row read costs less than
// half of a pair looked up. Other users (a long roster or a long history
// next to their pairs) have only the batch's pairs looked up, in the pair
// table.
constexpr std::uint64_t kWholeRosterSlack = 16;

// The existing rows (tombstones and pendingOnly ones too) of the batch's
// pairs, locked, with their groups; with `counts`, the PS-1 counts of every
// user of the pairs into `owners`.
std::map<Pair, Entry> loadBatchItems(DbSession& s, const std::set<Pair>& pairs, std::map<std::string, Owner>& owners,
                                     bool counts) {
  std::map<std::string, std::uint64_t> wanted;  // pairs per user
  for (const auto& p : pairs) ++wanted[p.first];
  std::vector<const std::string*> whole;
  std::set<std::string> others;
  for (const auto& [u, n] : wanted)
    if (owners.at(u).storedVersion <= kWholeRosterSlack + 2 * n) whole.push_back(&u);
    else others.insert(u);

  std::map<Pair, Entry> out;
  std::vector<std::int64_t> ids;
  inChunks(whole.size(), [&](std::size_t i) { return whole[i]->size(); }, [&](std::size_t b, std::size_t e, std::size_t k) {
    SqlParams p;
    for (auto i = b; i < e; ++i) p.push_back(*whole[i]);
    pad(p, 1, k);
    auto r = s.query(std::string("SELECT ") + kPairItemColumns + " FROM xcp_roster_item i WHERE i.owner IN (" +
                         repeated(k, "?", ", ") + ") FOR UPDATE",
                     p);
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (counts && r.num(i, "removed") == 0) {  // as loadCounts()
        auto& o = owners.at(r.str(i, "owner"));
        if (r.num(i, "pending_only") == 0) ++o.contacts;
        const auto sub = r.str(i, "subscription");
        if (sub == "from" || sub == "both") ++o.watchers;
      }
      if (pairs.count({r.str(i, "owner"), r.str(i, "contact")})) takeRow(r, i, out, ids);
    }
  });
  if (!others.empty()) {
    std::set<Pair> rest;
    for (const auto& p : pairs)
      if (others.count(p.first)) rest.insert(p);
    storePairs(s, rest);
    loadPairItems(s, out, ids);
    if (counts) loadCounts(s, others, owners);
  }
  attachGroups(s, out, ids);
  return out;
}

std::size_t itemBytes(const std::string& owner, const RosterItem& it) {
  return owner.size() + it.contact.size() + it.name.size() + it.pendingInStatus.size() + 64;
}

constexpr const char* kItemWriteColumns =
    "owner, contact, name, subscription, ask, pending_in, pending_in_status, approved, pending_only, removed, version";
constexpr const char* kItemWriteRow = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
// A new item in the plain state (no pending request either way, not
// pre-approved, listed): the other columns keep their defaults.
constexpr const char* kPlainItemColumns = "owner, contact, name, subscription, version";
constexpr const char* kPlainItemRow = "(?, ?, ?, ?, ?)";

bool plainItem(const RosterItem& it) {
  return !it.state.pendingOut && !it.state.pendingIn && it.pendingInStatus.empty() && !it.state.preApproved &&
         !it.pendingOnly && !it.removed;
}

void itemParams(SqlParams& p, const std::pair<const Pair, Entry>& kv, bool plain) {
  const auto& it = kv.second.item;
  if (plain) {
    p.insert(p.end(), {kv.first.first, it.contact, it.name, std::string(toString(it.state.subscription)),
                       static_cast<std::int64_t>(it.version)});
    return;
  }
  p.insert(p.end(), {kv.first.first, it.contact, it.name, std::string(toString(it.state.subscription)),
                     it.state.pendingOut, it.state.pendingIn, it.pendingInStatus, it.state.preApproved, it.pendingOnly,
                     it.removed, static_cast<std::int64_t>(it.version)});
}

// Writes the dirty entries back: the rows that exist by one upsert per
// chunk on their primary key, the new ones by plain multi-row INSERTs (the
// cheapest write InnoDB has short of LOAD DATA), their groups where they
// changed, and the versions of `owners` that moved.
void writeBack(DbSession& s, std::map<Pair, Entry>& entries, const std::map<std::string, Owner>& owners) {
  using KV = std::pair<const Pair, Entry>;
  std::vector<KV*> stored, fresh, freshPlain;
  for (auto& kv : entries)
    if (kv.second.dirty) (kv.second.id != 0 ? stored : plainItem(kv.second.item) ? freshPlain : fresh).push_back(&kv);
  // By id: the row is found on the primary key at once (keyed on (owner,
  // contact), InnoDB would first insert a new clustered row and take it
  // back). A rename moves a row to the new contact in place (contact
  // changes); the rows are written before the new ones, so the old
  // (owner, contact) key is free for its tombstone.
  inChunks(stored.size(), [&](std::size_t i) { return itemBytes(stored[i]->first.first, stored[i]->second.item); },
           [&](std::size_t b, std::size_t e, std::size_t k) {
             SqlParams p;
             p.reserve(k * 12);
             for (auto i = b; i < e; ++i) {
               p.push_back(stored[i]->second.id);
               itemParams(p, *stored[i], false);
             }
             pad(p, 12, k);
             s.exec(std::string("INSERT INTO xcp_roster_item (id, ") + kItemWriteColumns + ") VALUES " +
                        repeated(k, "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ", ") +
                        " ON DUPLICATE KEY UPDATE contact = VALUES(contact), name = VALUES(name), "
                        "subscription = VALUES(subscription), ask = VALUES(ask), pending_in = VALUES(pending_in), "
                        "pending_in_status = VALUES(pending_in_status), approved = VALUES(approved), "
                        "pending_only = VALUES(pending_only), removed = VALUES(removed), version = VALUES(version)",
                    p);
           });
  // New rows (no row had the pair: the batch read them locked, under the
  // users' locks every roster writer takes). A multi-row INSERT's ids
  // follow its rows' order, LAST_INSERT_ID() being the first; they are
  // consecutive unless the server interleaves (innodb_autoinc_lock_mode 2)
  // or steps (auto_increment_increment > 1). One read of the id each
  // statement's last row should have tells, for all of them; a statement
  // whose id is not its last row's has its rows read back from its range.
  // Only rows with groups need their id.
  struct Written {
    const std::vector<KV*>* rows;
    std::size_t b, e;
    std::int64_t first;
  };
  std::vector<Written> written;
  for (const auto* list : {&freshPlain, &fresh}) {
    const bool plain = list == &freshPlain;
    const auto& rows = *list;
    inChunks(rows.size(), [&](std::size_t i) { return itemBytes(rows[i]->first.first, rows[i]->second.item); },
             [&](std::size_t b, std::size_t e, std::size_t k) {
               SqlParams p;
               p.reserve(k * 11);
               for (auto i = b; i < e; ++i) itemParams(p, *rows[i], plain);
               s.exec(std::string("INSERT INTO xcp_roster_item (") + (plain ? kPlainItemColumns : kItemWriteColumns) +
                          ") VALUES " + repeated(k, plain ? kPlainItemRow : kItemWriteRow, ", "),
                      p);
               bool needIds = false;
               for (auto i = b; i < e && !needIds; ++i) needIds = !rows[i]->second.item.groups.empty();
               if (needIds) written.push_back({list, b, e, static_cast<std::int64_t>(s.lastInsertId())});
             },
             false);
  }
  std::map<std::int64_t, Pair> atLastId;  // the id a statement's last row should have -> that row
  inChunks(written.size(), [](std::size_t) { return std::size_t{8}; }, [&](std::size_t b, std::size_t e, std::size_t k) {
    SqlParams p;
    for (auto i = b; i < e; ++i) p.push_back(written[i].first + static_cast<std::int64_t>(written[i].e - written[i].b) - 1);
    pad(p, 1, k);
    auto r = s.query("SELECT id, owner, contact FROM xcp_roster_item WHERE id IN (" + repeated(k, "?", ", ") + ")", p);
    for (std::size_t i = 0; i < r.size(); ++i) atLastId[r.num(i, "id")] = {r.str(i, "owner"), r.str(i, "contact")};
  });
  for (const auto& w : written) {
    const auto& rows = *w.rows;
    const auto lastId = w.first + static_cast<std::int64_t>(w.e - w.b) - 1;
    if (auto at = atLastId.find(lastId); at != atLastId.end() && at->second == rows[w.e - 1]->first) {
      for (auto i = w.b; i < w.e; ++i) rows[i]->second.id = w.first + static_cast<std::int64_t>(i - w.b);
      continue;
    }
    const auto& last = rows[w.e - 1]->first;
    auto r = s.query("SELECT id FROM xcp_roster_item WHERE owner = ? AND contact = ?", {last.first, last.second});
    if (r.empty()) throw core::DbError("xcp_roster_item: the row just inserted for " + last.first + " / " + last.second +
                                           " is not there",
                                       0, false);
    auto back = s.query("SELECT id, owner, contact FROM xcp_roster_item WHERE id BETWEEN ? AND ?",
                        {w.first, r.num(0, "id")});
    for (std::size_t i = 0; i < back.size(); ++i)
      if (auto en = entries.find({back.str(i, "owner"), back.str(i, "contact")});
          en != entries.end() && en->second.dirty && en->second.id == 0)
        en->second.id = back.num(i, "id");
  }

  // Groups (RFC 6121 §2.1.2.3): replaced where they changed.
  std::vector<std::int64_t> clear;
  std::vector<KV*> regroup;
  for (auto* list : {&stored, &freshPlain, &fresh})
    for (auto* kv : *list) {
      auto& en = kv->second;
      if (en.item.groups == en.storedGroups) continue;
      if (!en.storedGroups.empty()) clear.push_back(en.id);
      if (!en.item.groups.empty()) regroup.push_back(kv);
    }
  inChunks(clear.size(), [](std::size_t) { return std::size_t{8}; }, [&](std::size_t b, std::size_t e, std::size_t k) {
    SqlParams p(clear.begin() + static_cast<std::ptrdiff_t>(b), clear.begin() + static_cast<std::ptrdiff_t>(e));
    pad(p, 1, k);
    s.exec("DELETE FROM xcp_roster_group WHERE item_id IN (" + repeated(k, "?", ", ") + ")", p);
  });
  std::vector<std::pair<std::int64_t, const std::string*>> rows;
  for (auto* kv : regroup)
    for (const auto& g : kv->second.item.groups) rows.emplace_back(kv->second.id, &g);
  inChunks(rows.size(), [&](std::size_t i) { return rows[i].second->size(); },
           [&](std::size_t b, std::size_t e, std::size_t k) {
             SqlParams p;
             for (auto i = b; i < e; ++i) p.insert(p.end(), {rows[i].first, *rows[i].second});
             pad(p, 2, k);
             // The upsert only so that a repeated (padding) row is no error.
             s.exec("INSERT INTO xcp_roster_group (item_id, group_name) VALUES " + repeated(k, "(?, ?)", ", ") +
                        " ON DUPLICATE KEY UPDATE group_name = VALUES(group_name)",
                    p);
           });
  for (auto* list : {&stored, &freshPlain, &fresh})
    for (auto* kv : *list) {
      kv->second.storedGroups = kv->second.item.groups;
      kv->second.dirty = false;
    }

  // Roster versions (RFC 6121 §2.6), created where missing.
  std::vector<std::pair<const std::string*, std::uint64_t>> moved;
  for (const auto& [u, o] : owners)
    if (o.version != o.storedVersion) moved.emplace_back(&u, o.version);
  inChunks(moved.size(), [&](std::size_t i) { return moved[i].first->size(); },
           [&](std::size_t b, std::size_t e, std::size_t k) {
             SqlParams p;
             for (auto i = b; i < e; ++i)
               p.insert(p.end(), {*moved[i].first, static_cast<std::int64_t>(moved[i].second)});
             pad(p, 2, k);
             s.exec("INSERT INTO xcp_roster_version (owner, version) VALUES " + repeated(k, "(?, ?)", ", ") +
                        " ON DUPLICATE KEY UPDATE version = VALUES(version)",
                    p);
           });
}

}  // namespace

std::vector<BulkResult> RosterStore::importContacts(DbSession& s, const std::vector<BulkContact>& batch,
                                                    const PresenceSettings& limits) {
  // Every row is checked before the first statement: a refused row leaves
  // the caller's transaction as it was.
  std::vector<std::vector<std::string>> groups(batch.size());
  std::set<std::string> users;
  std::set<Pair> pairs;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& c = batch[i];
    try {
      if (c.owner.empty()) throw StoreInputError("item-not-found", "the owner's user id is empty");
      checkJid(c.contact, "contact");
      if (!c.contactUser.empty()) checkJid(c.ownerJid, "owner's");
      groups[i] = checkedGroups(c.name, c.groups);
    } catch (const StoreInputError& e) {
      throw StoreInputError(e.condition(), "row " + std::to_string(i) + ": " + e.what());
    }
    users.insert(c.owner);
    pairs.emplace(c.owner, c.contact);
    if (!c.contactUser.empty()) {
      users.insert(c.contactUser);
      pairs.emplace(c.contactUser, c.ownerJid);
    }
  }
  if (batch.empty()) return {};

  auto owners = lockUsers(s, users);
  for (std::size_t i = 0; i < batch.size(); ++i)
    for (const auto* u : {&batch[i].owner, &batch[i].contactUser})
      if (!u->empty() && !owners.count(*u))
        throw StoreInputError("item-not-found", "row " + std::to_string(i) + ": no user '" + *u + "' in the directory");
  auto entries = loadBatchItems(s, pairs, owners, limits.maxContacts != 0 || limits.maxWatchers != 0);

  std::vector<BulkResult> out;
  out.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& c = batch[i];
    BulkResult res;
    Owner& own = owners.at(c.owner);
    Entry& oe = entries[{c.owner, c.contact}];
    const bool listed = oe.present && !oe.item.removed && !oe.item.pendingOnly;
    if (listed && oe.item.state.hasTo()) {
      res.outcome = BulkOutcome::AlreadyPresent;
      res.ownerVersion = own.version;
      out.push_back(std::move(res));
      continue;
    }
    if (!listed && exceeds(own.contacts, limits.maxContacts)) {  // PS-1, as setItem()
      res.outcome = BulkOutcome::ContactLimit;
      res.limit = limits.maxContacts;
      res.ownerVersion = own.version;
      out.push_back(std::move(res));
      continue;
    }
    Entry* re = c.contactUser.empty() ? nullptr : &entries[{c.contactUser, c.ownerJid}];
    Owner* ro = re ? &owners.at(c.contactUser) : nullptr;
    // The row is all or nothing: what it changes is kept to be put back if
    // the contact's side refuses it. (Both sides may be the same item: a
    // user importing the own JID.)
    const Entry oeBefore = oe;
    const Owner ownBefore = own;
    const Entry reBefore = re ? *re : Entry{};
    const Owner roBefore = ro ? *ro : Owner{};

    // The owner's side: subscription gains "to" (RFC 6121 §3.1.5 for the
    // owner's request, approved at once).
    RosterItem it;
    if (oe.present && !oe.item.removed) it = oe.item;  // keeps a pending request and its text
    it.contact = c.contact;
    if (!listed || !c.name.empty()) it.name = c.name;
    if (!listed || !groups[i].empty()) it.groups = groups[i];
    it.state.subscription = withTo(it.state.subscription);
    it.state.pendingOut = false;
    it.removed = false;
    it.pendingOnly = false;
    it.version = ++own.version;
    if (!listed) ++own.contacts;
    oe.item = it;
    oe.present = oe.dirty = true;
    res.ownerItem = it;
    res.ownerVersion = it.version;

    if (re) {
      // The contact's side gains "from": what setSubscription() stores for
      // the approval of the owner's request (OutSubscribed with Pending In,
      // RFC 6121 A.2.3), with its checks in its order.
      const bool exists = re->present && !re->item.removed;
      RosterItem r;
      if (exists) r = re->item;
      else r.contact = c.ownerJid;
      SubscriptionState st = r.state;
      st.subscription = withFrom(st.subscription);
      st.pendingIn = false;
      st.preApproved = false;
      if (!exists || st != r.state || !r.pendingInStatus.empty() || r.pendingOnly) {
        const bool wasListed = exists && !r.pendingOnly;
        const bool hadFrom = exists && r.state.hasFrom();
        std::optional<BulkOutcome> refused;
        if (!wasListed && exceeds(ro->contacts, limits.maxContacts)) {
          refused = BulkOutcome::ContactSideLimit;  // PS-1
          res.limit = limits.maxContacts;
        } else if (!hadFrom && exceeds(ro->watchers, limits.maxWatchers)) {
          refused = BulkOutcome::WatcherLimit;  // PS-1
          res.limit = limits.maxWatchers;
        }
        if (refused) {
          *re = reBefore;
          *ro = roBefore;
          oe = oeBefore;
          own = ownBefore;
          res.outcome = *refused;
          res.ownerItem.reset();
          res.ownerVersion = own.version;
          out.push_back(std::move(res));
          continue;
        }
        r.state = st;
        r.pendingInStatus.clear();
        r.pendingOnly = false;
        r.removed = false;
        r.version = ++ro->version;
        if (!wasListed) ++ro->contacts;
        if (!hadFrom) ++ro->watchers;
        re->item = r;
        re->present = re->dirty = true;
        res.contactItem = r;
        res.contactVersion = r.version;
        if (re == &oe) {  // the own JID: one item, now "both"
          res.ownerItem = r;
          res.ownerVersion = r.version;
        }
      }
    }
    out.push_back(std::move(res));
  }
  writeBack(s, entries, owners);
  return out;
}

RenameResult RosterStore::renameContact(DbSession& s, const std::string& oldJid, const std::string& newJid) {
  checkJid(oldJid, "old contact");
  checkJid(newJid, "new contact");
  if (oldJid == newJid) throw StoreInputError("bad-request", "the new contact ID " + newJid + " is the old one");
  RenameResult out;

  // Both contacts' rows in every roster (xcp_roster_item_by_contact), locked.
  auto r = s.query(std::string("SELECT owner, ") + kItemColumns +
                       " FROM xcp_roster_item WHERE contact IN (?, ?) ORDER BY owner FOR UPDATE",
                   {oldJid, newJid});
  std::map<Pair, Entry> entries;
  std::set<std::string> movers;
  std::vector<std::int64_t> ids;
  for (std::size_t i = 0; i < r.size(); ++i) {
    auto& en = entries[{r.str(i, "owner"), r.str(i, "contact")}];
    en.id = r.num(i, "id");
    en.present = true;
    en.item = detail::itemFromRow(r, i);
    ids.push_back(en.id);
    if (en.item.contact == oldJid && !en.item.removed && !en.item.pendingOnly) movers.insert(r.str(i, "owner"));
  }
  for (auto it = movers.begin(); it != movers.end();) {
    auto n = entries.find({*it, newJid});
    if (n != entries.end() && !n->second.item.removed && !n->second.item.pendingOnly) {
      out.alreadyHadNew.push_back(*it);
      it = movers.erase(it);
    } else {
      ++it;
    }
  }
  if (!movers.empty()) {
    auto groups = loadGroups(s, ids);
    for (auto& [key, en] : entries)
      if (auto g = groups.find(en.id); g != groups.end()) en.item.groups = en.storedGroups = g->second;
    // The movers' roster versions, locked (bumpVersion() for each).
    std::map<std::string, Owner> owners;
    std::vector<const std::string*> v;
    for (const auto& u : movers) v.push_back(&u);
    inChunks(v.size(), [&](std::size_t i) { return v[i]->size(); }, [&](std::size_t b, std::size_t e, std::size_t k) {
      SqlParams p;
      for (auto i = b; i < e; ++i) p.push_back(*v[i]);
      pad(p, 1, k);
      auto vr = s.query("SELECT owner, version FROM xcp_roster_version WHERE owner IN (" + repeated(k, "?", ", ") +
                            ") FOR UPDATE",
                        p);
      for (std::size_t i = 0; i < vr.size(); ++i)
        owners[vr.str(i, "owner")].version = static_cast<std::uint64_t>(vr.num(i, "version"));
    });
    for (const auto& owner : movers) {
      auto& o = owners[owner];
      o.storedVersion = o.version;
      const std::uint64_t version = ++o.version;
      auto& old = entries.at({owner, oldJid});
      auto& neu = entries[{owner, newJid}];
      RosterItem added = old.item;
      added.contact = newJid;
      added.version = version;
      if (neu.present && !neu.item.removed && neu.item.state.pendingIn && !added.state.hasFrom() &&
          !added.state.pendingIn) {
        // The new ID's own unanswered request (pendingOnly) stays pending.
        added.state.pendingIn = true;
        added.pendingInStatus = neu.item.pendingInStatus;
      }
      RosterItem removedOld = old.item;
      removedOld.removed = true;
      removedOld.version = version;
      RosterItem tomb;  // as remove() leaves it (RFC 6121 §2.6.3: the removal in later deltas)
      tomb.contact = oldJid;
      tomb.removed = true;
      tomb.version = version;
      if (!neu.present) {
        // In place: the old row becomes the new ID's item (its id, and so
        // its groups, kept) and the tombstone is a new row: no group is
        // deleted or written again.
        neu.id = old.id;
        neu.storedGroups = std::move(old.storedGroups);
        old.id = 0;
        old.storedGroups.clear();
      }
      old.item = tomb;
      old.dirty = true;
      neu.item = added;
      neu.present = neu.dirty = true;
      out.changed.push_back({owner, std::move(removedOld), std::move(added), version});
    }
    writeBack(s, entries, owners);
  }

  // AV-1 decisions and XEP-0191 items about the old ID now name the new one.
  out.privacyRows = s.exec("UPDATE IGNORE xcp_privacy_decision SET watcher = ? WHERE watcher = ?", {newJid, oldJid});
  auto b = s.query("SELECT owner, blocked FROM xcp_block WHERE blocked IN (?, ?) ORDER BY owner FOR UPDATE",
                   {oldJid, newJid});
  std::map<std::string, int> blocked;  // owner -> 1 old, 2 new, 3 both
  for (std::size_t i = 0; i < b.size(); ++i) blocked[b.str(i, "owner")] |= b.str(i, "blocked") == oldJid ? 1 : 2;
  for (const auto& [owner, which] : blocked)
    if (which == 1) out.blockOwners.push_back(owner);
  out.blockRows = out.blockOwners.empty() ? 0 : s.exec("UPDATE IGNORE xcp_block SET blocked = ? WHERE blocked = ?",
                                                       {newJid, oldJid});
  return out;
}

}  // namespace imp::xcp
