#pragma once
// Federated availability subscriptions in the cluster database (AV-3), table
// fcm_subscription (sql/0009_federation_cm.sql, owned by this module): one
// row per (node, direction, native user, Microsoft user) with the SIP dialog
// that carries it, so a restarted node refreshes its outgoing subscriptions
// in their dialogs and keeps NOTIFYing its Microsoft watchers.
//
// Writes come from the gateway's event loop, which must not block: save()
// and remove() queue the change and return; one writer thread applies the
// queued changes in order, the latest change per key winning (a refresh
// that is superseded before it is written is not written), several
// hundred per transaction. A batch that fails is retried (with a pause)
// until it succeeds or the store stops, and counted; stop() writes what is
// queued before it returns. load() blocks (called once, at start).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace spdlog {
class logger;
}
namespace imp::core {
class Database;
class DbSession;
}

namespace imp::fcm {

struct StoredSubscription {
  bool outgoing = true;          // native watcher -> Microsoft user
  std::string nativeJid;         // bare JID
  std::string remoteUri;         // sip:bob@example.com
  std::string state;             // gateway's state name
  // The dialog (empty call id: none yet).
  std::string callId, localTag, remoteTag, remoteTarget;
  std::vector<std::string> routeSet;
  std::uint32_t localCseq = 0, remoteCseq = 0;
  std::int64_t expiresAt = 0;    // unix seconds
  std::string key() const { return std::string(outgoing ? "o\n" : "i\n") + nativeJid + "\n" + remoteUri; }
};

class SubscriptionStore {
 public:
  SubscriptionStore(core::Database& db, std::string nodeId, std::shared_ptr<spdlog::logger> log);
  ~SubscriptionStore();
  SubscriptionStore(const SubscriptionStore&) = delete;
  SubscriptionStore& operator=(const SubscriptionStore&) = delete;

  // Every subscription this node holds. Blocking.
  std::vector<StoredSubscription> load();
  // Queued; any thread.
  void save(StoredSubscription s);
  void remove(bool outgoing, const std::string& nativeJid, const std::string& remoteUri);
  // Writes what is queued, then stops the writer. Idempotent.
  void stop();

  std::uint64_t writeFailures() const;
  std::size_t queued() const;

 private:
  using Pending = std::map<std::string, std::optional<StoredSubscription>>;  // key -> row (nullopt = delete)
  // Up to kBatch queued changes per transaction, gathered for up to kGather.
  static constexpr std::size_t kBatch = 512;
  static constexpr std::chrono::milliseconds kGather{20};
  // With mu_ held, after queueing: whether the writer waits for this (the
  // first change queued, or a full batch), not every change.
  bool wakeWriter() const { return pending_.size() == 1 || pending_.size() == kBatch; }
  void run();
  void write(core::DbSession& db, const std::vector<Pending::node_type>& batch);

  core::Database& db_;
  std::string nodeId_;
  std::shared_ptr<spdlog::logger> log_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Pending pending_;
  bool stopping_ = false;
  std::uint64_t failures_ = 0;
  std::thread thread_;
};

// Route sets are stored one value per line.
std::string joinRouteSet(const std::vector<std::string>& routes);
std::vector<std::string> splitRouteSet(const std::string& text);

}  // namespace imp::fcm
