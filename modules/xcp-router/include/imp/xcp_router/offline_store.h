#pragma once
// Offline messages (IM-5): a message accepted for a local user who has no
// available resource is appended here and delivered, in order, at the next
// login. Delivery is two steps, fetch() then remove() of what was delivered,
// so a crash between them delivers a message twice rather than never.
//
// Owners are directory user ids. Stateless over the database: thread-safe,
// blocking. Errors: StoreInputError for refused input, core::DbError.
#include <cstdint>
#include <string>
#include <vector>

#include "imp/xcp_router/store_errors.h"

namespace imp::core {
class Database;
}

namespace imp::xcp {

struct OfflineMessage {
  std::uint64_t id = 0;  // increasing: the delivery order
  std::string from;      // the sender's full JID
  std::string stanza;    // the message stanza, serialized XML
  std::string stamp;     // when it was stored, UTC "YYYY-MM-DDTHH:MM:SSZ" (XEP-0203)
  std::uint64_t bytes = 0;
};

struct OfflineAppend {
  enum class Status { Stored, StorageFull };
  Status status = Status::Stored;
  std::uint64_t id = 0;      // of the stored message
  std::uint64_t queued = 0;  // messages of the owner after the call
  std::uint32_t quota = 0;   // the quota applied (0 = no limit)
  // "offline storage of ann is full: 1000 messages (IM-5)" for StorageFull:
  // the caller answers the sender with <resource-constraint/> type "wait"
  // (RFC 6120 §8.3.3.18: the recipient's storage frees up when it logs in).
  std::string text;
};

// Longest stanza (bytes) the store keeps: MEDIUMTEXT holds 16 MB; the XMPP
// stanza limit after authentication (256 KB by default) is far below.
inline constexpr std::size_t kMaxOfflineStanzaBytes = 16u * 1024 * 1024 - 1;

class OfflineStore {
 public:
  explicit OfflineStore(core::Database& db) : db_(db) {}

  // Appends unless the owner already has `quota` messages (0 = no limit).
  OfflineAppend append(const std::string& owner, const std::string& from, const std::string& stanza,
                       std::uint32_t quota);
  // The owner's oldest `limit` messages, oldest first (0 = all).
  std::vector<OfflineMessage> fetch(const std::string& owner, std::size_t limit = 0);
  // Deletes the owner's messages with these ids (after delivery); returns
  // how many were deleted (ids already gone are not an error).
  std::uint64_t remove(const std::string& owner, const std::vector<std::uint64_t>& ids);
  std::uint64_t count(const std::string& owner);
  // Messages queued for all users.
  std::uint64_t total();
  // Messages queued for the users homed on `nodeId` (the base of the
  // node's offline queue gauge).
  std::uint64_t totalOnNode(const std::string& nodeId);

 private:
  core::Database& db_;
};

}  // namespace imp::xcp
