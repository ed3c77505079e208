#include "imp/xcp_router/privacy_policy.h"

#include "imp/xcp_router/presence_settings.h"

namespace imp::xcp {

std::string_view toString(PolicyVerdict v) {
  switch (v) {
    case PolicyVerdict::Approve: return "approve";
    case PolicyVerdict::Ask: return "ask";
    case PolicyVerdict::PoliteBlock: return "polite-block";
  }
  return "?";
}

PolicyVerdict PrivacyPolicy::decide(const std::string& owner, const std::string& watcher) {
  // AV-1: a block (the XEP-0191 list or an earlier "block" answer) wins over
  // everything, and is polite: the owner appears offline, nothing is refused.
  if (blocks_.isBlocked(owner, watcher)) return PolicyVerdict::PoliteBlock;
  auto slash = watcher.find('/');
  auto earlier = decisions_.decision(owner, watcher.substr(0, slash));
  if (earlier) return *earlier == PrivacyDecision::Block ? PolicyVerdict::PoliteBlock : PolicyVerdict::Approve;
  // PS-2: "allow users to view the availability of other users without being
  // prompted for approval" (default on).
  return settings_.current().autoApprove ? PolicyVerdict::Approve : PolicyVerdict::Ask;
}

void PrivacyPolicy::remember(const std::string& owner, const std::string& watcher, PrivacyDecision d) {
  decisions_.remember(owner, watcher.substr(0, watcher.find('/')), d);
}

void PrivacyPolicy::forget(const std::string& owner, const std::string& watcher) {
  const std::string bare = watcher.substr(0, watcher.find('/'));
  if (decisions_.decision(owner, bare) == PrivacyDecision::Allow) decisions_.forget(owner, bare);
}

}  // namespace imp::xcp
