#include "imp/sip_proxy/flood.h"

#include <algorithm>

namespace imp::sip_proxy {

bool FloodLimiter::allow(const std::string& address, Clock::time_point now) {
  if (now - lastSweep_ > config_.window * 8 || entries_.size() > config_.maxTracked) sweep(now);
  auto& e = entries_[address];
  if (e.bannedUntil > now) {
    ++e.refused;
    return false;
  }
  if (now - e.windowStart >= config_.window) {
    e.windowStart = now;
    e.count = 0;
  }
  if (++e.count > config_.maxRequests) {
    e.bannedUntil = now + config_.banTime;
    e.refused = 1;
    ++bansIssued_;
    return false;
  }
  return true;
}

void FloodLimiter::sweep(Clock::time_point now) {
  lastSweep_ = now;
  std::erase_if(entries_, [&](const auto& kv) {
    return kv.second.bannedUntil <= now && now - kv.second.windowStart >= config_.window;
  });
  if (entries_.size() > config_.maxTracked)
    std::erase_if(entries_, [&](const auto& kv) { return kv.second.bannedUntil <= now; });
}

std::vector<Ban> FloodLimiter::bans(Clock::time_point now) const {
  std::vector<Ban> out;
  for (const auto& [addr, e] : entries_)
    if (e.bannedUntil > now) out.push_back({addr, e.bannedUntil, e.refused});
  std::sort(out.begin(), out.end(), [](const Ban& a, const Ban& b) { return a.address < b.address; });
  return out;
}

std::size_t FloodLimiter::clear(const std::string& address) {
  std::size_t n = 0;
  const auto now = Clock::now();
  for (auto& [addr, e] : entries_)
    if ((address.empty() || addr == address) && e.bannedUntil != Clock::time_point{}) {
      n += e.bannedUntil > now ? 1 : 0;
      e.bannedUntil = {};
      e.count = 0;
    }
  return n;
}

}  // namespace imp::sip_proxy
