#include "imp/xcp_router/privacy_store.h"

#include <imp/core/database.h>

#include <set>

#include "store_lock.h"

namespace imp::xcp {

using core::DbSession;

namespace {

void checkJid(const std::string& jid, const char* what) {
  if (jid.empty()) throw StoreInputError("jid-malformed", std::string("the ") + what + " JID is empty");
  if (utf8Length(jid) > kMaxIndexedJidChars)
    throw StoreInputError("not-acceptable", std::string("the ") + what + " JID is longer than " +
                                                std::to_string(kMaxIndexedJidChars) + " characters");
}

}  // namespace

std::string_view toString(PrivacyDecision d) { return d == PrivacyDecision::Allow ? "allow" : "block"; }

void PrivacyStore::remember(const std::string& owner, const std::string& watcher, PrivacyDecision d) {
  checkJid(watcher, "watcher");
  detail::guarded(db_, owner, [&](DbSession& s) {
    s.exec("INSERT INTO xcp_privacy_decision (owner, watcher, decision) VALUES (?, ?, ?) "
           "ON DUPLICATE KEY UPDATE decision = VALUES(decision), decided_at = CURRENT_TIMESTAMP(3)",
           {owner, watcher, std::string(toString(d))});
  });
}

std::optional<PrivacyDecision> PrivacyStore::decision(const std::string& owner, const std::string& watcher) {
  auto r = db_.query("SELECT decision FROM xcp_privacy_decision WHERE owner = ? AND watcher = ?", {owner, watcher});
  if (r.empty()) return std::nullopt;
  auto d = r.str(0, "decision");
  if (d == "allow") return PrivacyDecision::Allow;
  if (d == "block") return PrivacyDecision::Block;
  throw core::DbError("xcp_privacy_decision.decision holds '" + d + "'", 0, false);
}

bool PrivacyStore::forget(const std::string& owner, const std::string& watcher) {
  return db_.exec("DELETE FROM xcp_privacy_decision WHERE owner = ? AND watcher = ?", {owner, watcher}) != 0;
}

std::vector<RememberedDecision> PrivacyStore::list(const std::string& owner) {
  auto r = db_.query(
      "SELECT watcher, decision, DATE_FORMAT(decided_at, '%Y-%m-%dT%H:%i:%s') AS decided_at FROM xcp_privacy_decision "
      "WHERE owner = ? ORDER BY watcher",
      {owner});
  std::vector<RememberedDecision> out;
  for (std::size_t i = 0; i < r.size(); ++i)
    out.push_back({r.str(i, "watcher"), r.str(i, "decision") == "block" ? PrivacyDecision::Block : PrivacyDecision::Allow,
                   r.str(i, "decided_at")});
  return out;
}

std::vector<std::string> blockMatchForms(const std::string& jid) {
  // XEP-0016 §2.1 order: <user@domain/resource>, <user@domain>,
  // <domain/resource>, <domain>. The '@' of the localpart is the first one
  // before any '/' (a resource may hold '@' and '/', RFC 7622 §3.4).
  auto slash = jid.find('/');
  std::string bare = jid.substr(0, slash);
  std::string resource = slash == std::string::npos ? std::string() : jid.substr(slash);
  auto at = bare.find('@');
  std::string domain = at == std::string::npos ? bare : bare.substr(at + 1);
  std::vector<std::string> forms;
  auto add = [&](const std::string& f) {
    for (const auto& x : forms)
      if (x == f) return;
    forms.push_back(f);
  };
  add(jid);
  add(bare);
  if (!resource.empty()) add(domain + resource);
  add(domain);
  return forms;
}

std::size_t BlockList::block(const std::string& owner, const std::vector<std::string>& jids) {
  for (const auto& j : jids) checkJid(j, "blocked");
  std::size_t added = 0;
  detail::guarded(db_, owner, [&](DbSession& s) {
    added = 0;
    for (const auto& j : std::set<std::string>(jids.begin(), jids.end()))
      added += s.exec("INSERT IGNORE INTO xcp_block (owner, blocked) VALUES (?, ?)", {owner, j});
  });
  return added;
}

std::size_t BlockList::unblock(const std::string& owner, const std::vector<std::string>& jids) {
  std::size_t removed = 0;
  db_.transaction([&](DbSession& s) {
    removed = 0;
    if (jids.empty()) {
      removed = s.exec("DELETE FROM xcp_block WHERE owner = ?", {owner});  // XEP-0191 §3.4
      return;
    }
    for (const auto& j : std::set<std::string>(jids.begin(), jids.end()))
      removed += s.exec("DELETE FROM xcp_block WHERE owner = ? AND blocked = ?", {owner, j});
  });
  return removed;
}

std::vector<std::string> BlockList::list(const std::string& owner) {
  auto r = db_.query("SELECT blocked FROM xcp_block WHERE owner = ? ORDER BY blocked", {owner});
  std::vector<std::string> out;
  for (std::size_t i = 0; i < r.size(); ++i) out.push_back(r.str(i, "blocked"));
  return out;
}

bool BlockList::isBlocked(const std::string& owner, const std::string& jid) {
  if (jid.empty()) return false;
  auto forms = blockMatchForms(jid);
  // Up to four forms; one statement each keeps the SQL fixed.
  bool hit = false;
  db_.run([&](DbSession& s) {
    hit = false;
    for (const auto& f : forms)
      if (!s.query("SELECT 1 AS x FROM xcp_block WHERE owner = ? AND blocked = ?", {owner, f}).empty()) {
        hit = true;
        return;
      }
  });
  return hit;
}

}  // namespace imp::xcp
