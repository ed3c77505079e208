#include "imp/xcp_router/carbons.h"

#include <imp/xmpp/ns.h>

#include <algorithm>

namespace imp::xcp {

namespace ns = xmpp::ns;

namespace {
constexpr std::string_view kChatMarkers = "urn:xmpp:chat-markers:0";  // XEP-0333
}

bool isCarbon(const xmpp::Element& m) {
  return m.child("received", ns::kCarbons) != nullptr || m.child("sent", ns::kCarbons) != nullptr;
}

bool carbonEligible(const xmpp::Element& m) {
  if (m.name() != "message") return false;
  if (m.child("private", ns::kCarbons) || m.child("no-copy", ns::kHints) || isCarbon(m)) return false;
  auto type = m.attrOr("type", "normal");
  if (type == "chat") return true;
  if (type != "normal") return false;  // groupchat, headline, error (XEP-0280 §6)
  if (m.child("body", ns::kClient)) return true;
  for (const auto& n : m.nodes())
    if (n.isElement()) {
      const auto& payload = n.element().ns();
      if (payload == ns::kChatStates || payload == ns::kReceipts || payload == kChatMarkers) return true;
    }
  return false;
}

xmpp::Element carbonCopy(const xmpp::Element& original, std::string_view direction, const std::string& userBare,
                         const std::string& toFull) {
  xmpp::Element m("message", std::string(ns::kClient));
  m.setAttr("from", userBare).setAttr("to", toFull).setAttr("type", original.attrOr("type", "normal"));
  m.addChild(std::string(direction), std::string(ns::kCarbons))
      .addChild("forwarded", std::string(ns::kForward))
      .addChild(original);
  return m;
}

void CarbonsRegistry::enable(const std::string& bare, const std::string& resource, Deliver deliver) {
  std::lock_guard lock(mu_);
  byUser_[bare][resource] = std::move(deliver);
}

void CarbonsRegistry::disable(const std::string& bare, const std::string& resource) {
  std::lock_guard lock(mu_);
  auto u = byUser_.find(bare);
  if (u == byUser_.end()) return;
  u->second.erase(resource);
  if (u->second.empty()) byUser_.erase(u);
}

bool CarbonsRegistry::enabled(const std::string& bare, const std::string& resource) const {
  std::lock_guard lock(mu_);
  auto u = byUser_.find(bare);
  return u != byUser_.end() && u->second.count(resource) > 0;
}

std::size_t CarbonsRegistry::copy(const xmpp::Element& original, std::string_view direction, const std::string& bare,
                                  const std::vector<std::string>& except) {
  std::vector<std::pair<std::string, Deliver>> targets;
  {
    std::lock_guard lock(mu_);
    auto u = byUser_.find(bare);
    if (u == byUser_.end()) return 0;
    for (const auto& [resource, fn] : u->second)
      if (std::find(except.begin(), except.end(), resource) == except.end()) targets.emplace_back(resource, fn);
  }
  std::size_t n = 0;
  // The deliver functions post to the sessions' loops: called without the lock.
  for (auto& [resource, fn] : targets)
    if (fn(std::make_shared<const xmpp::Element>(carbonCopy(original, direction, bare, bare + "/" + resource)))) ++n;
  return n;
}

std::size_t CarbonsRegistry::enabledCount() const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& [b, r] : byUser_) n += r.size();
  return n;
}

}  // namespace imp::xcp
