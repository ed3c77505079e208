#pragma once
// The kind of SIP system on the other side of each federated domain (issue
// 17, deliverable 6), table fcm_domain_peer: Lync/OCS (the default) or a
// standard SIMPLE presence server (Kamailio and the like), for which IM is
// page-mode MESSAGE (RFC 3428) and typing RFC 3994 isComposing instead of
// session-mode INVITE dialogs with KeyboardActivity INFO. Presence is the
// same SUBSCRIBE/NOTIFY with PIDF for both (RFC 3856, RFC 3863).
//
// Thread-safe, blocking (database): admin commands and the service's
// start/reload, never an event loop.
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace imp::core {
class Database;
}

namespace imp::fcm {

enum class PeerType { Lync, Simple };
std::string_view nameOf(PeerType t);                      // "lync", "simple"
std::optional<PeerType> peerTypeOf(std::string_view name);  // case-insensitive

class PeerStore {
 public:
  explicit PeerStore(core::Database& db) : db_(db) {}
  // Every domain with a type of its own (lower-case domain -> type).
  std::map<std::string, PeerType> all();
  // Sets a domain's type and bumps the settings generation; the domain must
  // be a DNS name (throws std::invalid_argument naming the fault). Returns
  // false when it already had that type (nothing changed).
  bool set(const std::string& domain, PeerType type);
  // Back to the default (Lync); false if the domain had no type of its own.
  bool remove(const std::string& domain);

 private:
  core::Database& db_;
};

// Lower-case `domain` if it is a domain name as the directory takes one
// (directory::checkDomain); nullopt otherwise.
std::optional<std::string> normaliseDomain(std::string_view domain);

}  // namespace imp::fcm
