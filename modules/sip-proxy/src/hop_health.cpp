// HopHealth, the fourth stage of the Proxy's chain (proxy_impl.h): hops
// marked down go last; a failed hop is probed with OPTIONS until it answers.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "proxy_impl.h"

namespace imp::sip_proxy {

using detail::Hop;

Verdict HopHealth::process(const CtxPtr& ctx) {
  // Hops marked down go last: tried only when nothing else is left.
  std::stable_partition(ctx->hops.begin(), ctx->hops.end(), [&](const Hop& h) { return !isDown(h.key()); });
  return Verdict::Continue;
}

bool HopHealth::isDown(const std::string& key) const {
  std::lock_guard l(mu_);
  return down_.count(key) != 0;
}

std::vector<std::string> HopHealth::downHops() const {
  std::lock_guard l(mu_);
  return {down_.begin(), down_.end()};
}

void HopHealth::markDown(const Hop& hop, const sip::Endpoint& ep) {
  auto key = hop.key();
  {
    std::lock_guard l(mu_);
    if (!down_.insert(key).second) return;
  }
  if (p_.log_)
    p_.log_->warn("next hop {} marked down; probing with OPTIONS every {} ms", key, p_.cfg_.probeInterval.count());
  scheduleProbe(key, ep);
}

void HopHealth::scheduleProbe(const std::string& key, const sip::Endpoint& ep) {
  probes_[key] = p_.timers_.schedule(p_.cfg_.probeInterval, [this, key, ep] { probe(key, ep); });
}

void HopHealth::shutdown() {
  for (const auto& [key, id] : probes_) p_.timers_.cancel(id);
  probes_.clear();
}

void HopHealth::probe(const std::string& key, const sip::Endpoint& ep) {
  probes_.erase(key);
  if (!isDown(key)) return;
  const auto& advertised = p_.advertised_;
  auto o = sip::Message::request("OPTIONS", "sip:" + detail::hostPort(ep.address, ep.port));
  o.appendHeader("Via", p_.viaFor(ep.transport));
  o.appendHeader("Max-Forwards", "70");
  o.appendHeader("From", "<sip:ping@" + detail::hostPort(advertised, p_.ownPort(ep.transport)) +
                             ">;tag=" + detail::randomTag());
  o.appendHeader("To", "<sip:" + detail::hostPort(ep.address, ep.port) + ">");
  o.appendHeader("Call-ID", detail::randomTag() + "@" + advertised);
  o.appendHeader("CSeq", "1 OPTIONS");
  sip::ClientCallbacks cb;
  cb.onFinal = [this, key](const sip::Message&) {
    {
      std::lock_guard l(mu_);
      down_.erase(key);
    }
    if (p_.log_) p_.log_->info("next hop {} answers OPTIONS again: marked up", key);
  };
  cb.onTimeout = [this, key, ep] { scheduleProbe(key, ep); };
  cb.onTransportError = [this, key, ep](const sip::TransportError&) { scheduleProbe(key, ep); };
  p_.txl_->sendRequest(std::move(o), ep, std::move(cb));
}

}  // namespace imp::sip_proxy
