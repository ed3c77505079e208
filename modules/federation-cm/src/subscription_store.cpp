#include "imp/federation_cm/subscription_store.h"

#include <imp/core/database.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace imp::fcm {

std::string joinRouteSet(const std::vector<std::string>& routes) {
  std::string out;
  for (const auto& r : routes) {
    if (!out.empty()) out += '\n';
    out += r;
  }
  return out;
}

std::vector<std::string> splitRouteSet(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    if (nl > pos) out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

SubscriptionStore::SubscriptionStore(core::Database& db, std::string nodeId, std::shared_ptr<spdlog::logger> log)
    : db_(db), nodeId_(std::move(nodeId)), log_(std::move(log)) {
  thread_ = std::thread([this] { run(); });
}

SubscriptionStore::~SubscriptionStore() { stop(); }

std::vector<StoredSubscription> SubscriptionStore::load() {
  auto rows = db_.query(
      "SELECT direction, native_jid, remote_uri, state, call_id, local_tag, remote_tag, remote_target, route_set,"
      " local_cseq, remote_cseq, expires_at FROM fcm_subscription WHERE node_id = ?",
      {nodeId_});
  std::vector<StoredSubscription> out;
  out.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    StoredSubscription s;
    s.outgoing = rows.str(i, "direction") == "out";
    s.nativeJid = rows.str(i, "native_jid");
    s.remoteUri = rows.str(i, "remote_uri");
    s.state = rows.str(i, "state");
    s.callId = rows.str(i, "call_id");
    s.localTag = rows.str(i, "local_tag");
    s.remoteTag = rows.str(i, "remote_tag");
    s.remoteTarget = rows.str(i, "remote_target");
    s.routeSet = splitRouteSet(rows.str(i, "route_set"));
    s.localCseq = static_cast<std::uint32_t>(rows.num(i, "local_cseq"));
    s.remoteCseq = static_cast<std::uint32_t>(rows.num(i, "remote_cseq"));
    s.expiresAt = rows.num(i, "expires_at");
    out.push_back(std::move(s));
  }
  return out;
}

void SubscriptionStore::save(StoredSubscription s) {
  auto key = s.key();
  {
    std::lock_guard l(mu_);
    if (stopping_) return;
    pending_[key] = std::move(s);
    if (!wakeWriter()) return;
  }
  cv_.notify_one();
}

void SubscriptionStore::remove(bool outgoing, const std::string& nativeJid, const std::string& remoteUri) {
  StoredSubscription k;
  k.outgoing = outgoing;
  k.nativeJid = nativeJid;
  k.remoteUri = remoteUri;
  {
    std::lock_guard l(mu_);
    if (stopping_) return;
    pending_[k.key()] = std::nullopt;
    if (!wakeWriter()) return;
  }
  cv_.notify_one();
}

void SubscriptionStore::stop() {
  {
    std::lock_guard l(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t SubscriptionStore::writeFailures() const {
  std::lock_guard l(mu_);
  return failures_;
}

std::size_t SubscriptionStore::queued() const {
  std::lock_guard l(mu_);
  return pending_.size();
}

void SubscriptionStore::run() {
  // Up to kBatch queued changes per transaction: one commit (one log flush)
  // for the lot instead of one per row, so that the writer keeps up with
  // subscriptions arriving by the thousand per second.

  std::unique_lock l(mu_);
  for (;;) {
    cv_.wait(l, [this] { return stopping_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping, everything written
    // A moment for more changes to join (kGather): at thousands per second
    // a commit (a log flush) for a few hundred rows, not for a few.
    cv_.wait_for(l, kGather, [this] { return stopping_ || pending_.size() >= kBatch; });
    std::vector<decltype(pending_)::node_type> batch;
    while (!pending_.empty() && batch.size() < kBatch) batch.push_back(pending_.extract(pending_.begin()));
    l.unlock();
    bool ok = true;
    try {
      db_.transaction([&](core::DbSession& db) { write(db, batch); });
    } catch (const std::exception& e) {
      ok = false;
      if (log_)
        log_->error("{} federated subscription change(s) cannot be written (retried): {}", batch.size(), e.what());
    }
    l.lock();
    if (!ok) {
      ++failures_;
      // A newer change for a key wins; else this one is tried again,
      // after a pause (the database may be restarting). At stop, once more.
      for (auto& n : batch)
        if (!pending_.count(n.key())) pending_.insert(std::move(n));
      if (stopping_ && failures_ > 1000) return;
      cv_.wait_for(l, std::chrono::milliseconds(stopping_ ? 10 : 500));
    }
  }
}

void SubscriptionStore::write(core::DbSession& db, const std::vector<Pending::node_type>& batch) {
  // A few statements for the batch, not one per change, so that a recovery
  // that refreshes 100,000 subscriptions does not spend its core in
  // MariaDB's statement handling. Statements of 128, 64, ... 1 rows: eight
  // texts at most, each prepared once per connection (MySqlDatabase keeps
  // them).
  std::vector<const Pending::node_type*> upserts, deletes;
  for (const auto& n : batch) (n.mapped() ? upserts : deletes).push_back(&n);
  auto chunk = [](std::size_t left) {
    std::size_t n = 128;
    while (n > left) n /= 2;
    return n;
  };
  for (std::size_t i = 0; i < upserts.size();) {
    const auto end = i + chunk(upserts.size() - i);
    std::string sql =
        "INSERT INTO fcm_subscription (node_id, direction, native_jid, remote_uri, state, call_id, local_tag,"
        " remote_tag, remote_target, route_set, local_cseq, remote_cseq, expires_at) VALUES ";
    core::SqlParams params;
    params.reserve((end - i) * 13);
    for (auto j = i; j < end; ++j) {
      const auto& st = *upserts[j]->mapped();
      sql += j == i ? "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
      params.insert(params.end(), {nodeId_, std::string(st.outgoing ? "out" : "in"), st.nativeJid, st.remoteUri,
                                   st.state, st.callId, st.localTag, st.remoteTag, st.remoteTarget,
                                   joinRouteSet(st.routeSet), static_cast<std::int64_t>(st.localCseq),
                                   static_cast<std::int64_t>(st.remoteCseq), st.expiresAt});
    }
    sql +=
        " ON DUPLICATE KEY UPDATE state = VALUES(state), call_id = VALUES(call_id), local_tag = VALUES(local_tag),"
        " remote_tag = VALUES(remote_tag), remote_target = VALUES(remote_target), route_set = VALUES(route_set),"
        " local_cseq = VALUES(local_cseq), remote_cseq = VALUES(remote_cseq), expires_at = VALUES(expires_at),"
        " updated_at = CURRENT_TIMESTAMP(3)";
    db.exec(sql, params);
    i = end;
  }
  for (std::size_t i = 0; i < deletes.size();) {
    const auto end = i + chunk(deletes.size() - i);
    std::string sql = "DELETE FROM fcm_subscription WHERE node_id = ? AND (";
    core::SqlParams params{nodeId_};
    for (auto j = i; j < end; ++j) {
      // key(): "o\n<native>\n<remote>" / "i\n..."
      const auto& key = deletes[j]->key();
      auto a = key.find('\n'), b = key.find('\n', a + 1);
      if (a == std::string::npos || b == std::string::npos) continue;
      if (params.size() > 1) sql += " OR ";
      sql += "(direction = ? AND native_jid = ? AND remote_uri = ?)";
      params.insert(params.end(), {std::string(key[0] == 'o' ? "out" : "in"), key.substr(a + 1, b - a - 1),
                                   key.substr(b + 1)});
    }
    if (params.size() > 1) db.exec(sql + ")", params);
    i = end;
  }
}

}  // namespace imp::fcm
