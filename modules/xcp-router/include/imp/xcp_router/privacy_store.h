#pragma once
// The privacy data of a user (AV-1, PS-2): remembered allow/block decisions
// per watcher (PrivacyStore) and the XEP-0191 block list (BlockList).
// Owners are directory user ids; watchers and blocked items are JIDs
// normalised by the caller. Stateless over the database: thread-safe,
// blocking. Errors: StoreInputError for refused input, core::DbError.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imp/xcp_router/store_errors.h"

namespace imp::core {
class Database;
}

namespace imp::xcp {

enum class PrivacyDecision { Allow, Block };
std::string_view toString(PrivacyDecision d);

struct RememberedDecision {
  std::string watcher;
  PrivacyDecision decision = PrivacyDecision::Allow;
  std::string decidedAt;  // UTC "YYYY-MM-DDTHH:MM:SS"
};

class PrivacyStore {
 public:
  explicit PrivacyStore(core::Database& db) : db_(db) {}
  // Replaces any earlier decision about the watcher.
  void remember(const std::string& owner, const std::string& watcher, PrivacyDecision d);
  std::optional<PrivacyDecision> decision(const std::string& owner, const std::string& watcher);
  bool forget(const std::string& owner, const std::string& watcher);
  std::vector<RememberedDecision> list(const std::string& owner);  // by watcher

 private:
  core::Database& db_;
};

// XEP-0191 blocking command. Items are JIDs of any form (domain, bare, full,
// domain/resource); a JID is blocked when one of its forms is on the list,
// matched as XEP-0016 §2.1 orders them (full, bare, domain/resource, domain).
class BlockList {
 public:
  explicit BlockList(core::Database& db) : db_(db) {}
  // Adds the items (those already present are kept); returns how many were new.
  std::size_t block(const std::string& owner, const std::vector<std::string>& jids);
  // Removes the items; an empty list unblocks everything (XEP-0191 §3.4).
  // Returns how many were removed.
  std::size_t unblock(const std::string& owner, const std::vector<std::string>& jids);
  std::vector<std::string> list(const std::string& owner);  // sorted
  bool isBlocked(const std::string& owner, const std::string& jid);

 private:
  core::Database& db_;
};

// The forms of a JID checked against a block list, most specific first:
// "u@d/r" -> {"u@d/r", "u@d", "d/r", "d"}; "d" -> {"d"}.
std::vector<std::string> blockMatchForms(const std::string& jid);

}  // namespace imp::xcp
