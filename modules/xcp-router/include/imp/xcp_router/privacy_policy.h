#pragma once
// The privacy policy (AV-1, PS-2): the one object that decides what happens
// to a subscription request to a local user's presence, for native XMPP
// watchers (the session manager) and for Microsoft watchers (the federation
// connection manager) alike.
//
//   decide(owner, watcher):
//     PoliteBlock  the watcher is on the owner's XEP-0191 block list, or the
//                  owner blocked it earlier: the owner appears offline to it;
//                  the request is never refused visibly (AV-1);
//     Approve      the owner allowed it earlier, or auto-approval is on (PS-2);
//     Ask          auto-approval is off and there is no earlier decision: the
//                  owner's client is prompted.
//   remember(owner, watcher, Allow|Block): the owner's answer to a prompt
//   (or a block), applied to later requests.
//   forget(owner, watcher): the owner took an approval back (revoked the
//   subscription or cancelled a pre-approval): a later request is decided
//   afresh (prompt or auto-approval), not approved on the old answer.
//
// Blocks win over allows and over auto-approval. Thread-safe, blocking
// (database reads): call it off the event loops.
#include <string>
#include <string_view>

#include "imp/xcp_router/privacy_store.h"

namespace imp::xcp {

class LivePresenceSettings;

enum class PolicyVerdict { Approve, Ask, PoliteBlock };
std::string_view toString(PolicyVerdict v);

class PrivacyPolicy {
 public:
  PrivacyPolicy(PrivacyStore& decisions, BlockList& blocks, const LivePresenceSettings& settings)
      : decisions_(decisions), blocks_(blocks), settings_(settings) {}

  // `owner` is a directory user id, `watcher` the watcher's JID (bare for a
  // subscription; a full JID is matched against the block list as XEP-0191 says).
  PolicyVerdict decide(const std::string& owner, const std::string& watcher);
  void remember(const std::string& owner, const std::string& watcher, PrivacyDecision d);
  void forget(const std::string& owner, const std::string& watcher);

 private:
  PrivacyStore& decisions_;
  BlockList& blocks_;
  const LivePresenceSettings& settings_;
};

}  // namespace imp::xcp
