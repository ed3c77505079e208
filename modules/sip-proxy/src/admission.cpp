// Admission, the first stage of the Proxy's chain (proxy_impl.h): incoming
// ACL (RT-7, RT-8) with asynchronous reverse DNS, and the flood limiter.
#include <imp/core/dns.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "proxy_impl.h"

namespace imp::sip_proxy {

namespace {
// How long a reverse-DNS ACL match exempts its address from the flood limiter.
constexpr auto kNameTrust = std::chrono::seconds(60);
constexpr std::string_view kAclRefused = "ACL - upstream not trusted - need to authenticate";
}  // namespace

using detail::Clock;
using detail::Stage;

Admission::Admission(Proxy::Impl& p) : p_(p), flood_(p.cfg_.flood) {}

Verdict Admission::process(const CtxPtr& ctx) {
  const auto& acl = p_.policy_->acl;
  const std::string& ip = ctx->source.remote.address;
  if (acl.allowsAll() || acl.allowsAddress(ip)) return Verdict::Continue;
  if (fromOwnFederationCm(ip)) return Verdict::Continue;
  // Not listed by address: the flood limiter applies (RT-7, like pike),
  // except to addresses whose reverse-DNS name the ACL accepted lately.
  const auto& flood = p_.cfg_.flood;
  if (flood.maxRequests > 0 && !trustedByName(ip)) {
    auto now = p_.timers_.now();
    auto issued = flood_.bansIssued();
    if (!flood_.allow(ip, now)) {
      ++p_.floodRefused_;
      if (flood_.bansIssued() != issued && p_.log_)
        p_.log_->warn("flood limit: {} sent over {} requests in {} ms; banned for {} s (impctl ban list)", ip,
                      flood.maxRequests, flood.window.count(), flood.banTime.count());
      auto resp = sip::TransactionLayer::makeResponse(ctx->request, 503, "Service Unavailable - flood limit",
                                                      detail::randomTag());
      resp.appendHeader("Retry-After", std::to_string(flood.banTime.count()));
      p_.txl_->respond(ctx->serverTx, resp);
      return Verdict::Stop;
    }
  }
  auto started = Clock::now();  // wall time: how long DNS takes (RT-8)
  auto poster = p_.poster_;
  p_.resolver_->reverse(ip, [poster, ctx, started](std::optional<std::string> name) {
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    poster->post([ctx, name = std::move(name), took](Proxy::Impl& self) { self.admission_.aclAnswer(ctx, name, took); });
  });
  return Verdict::Wait;
}

// The node's own federation connection manager (ProxyPolicy::federationCm)
// on a loopback address: it is part of this node, not an upstream peer.
bool Admission::fromOwnFederationCm(const std::string& ip) const {
  const auto& fcm = p_.policy_->raw.federationCm;
  auto colon = fcm.rfind(':');
  if (colon == std::string::npos || fcm.compare(0, colon, ip) != 0) return false;
  return ip.rfind("127.", 0) == 0 || ip == "::1";
}

bool Admission::trustedByName(const std::string& ip) {
  auto it = nameTrusted_.find(ip);
  if (it == nameTrusted_.end()) return false;
  if (it->second > p_.timers_.now()) return true;
  nameTrusted_.erase(it);
  return false;
}

void Admission::aclAnswer(const CtxPtr& ctx, const std::optional<std::string>& name, std::chrono::milliseconds took) {
  const auto& log = p_.log_;
  auto threshold = p_.cfg_.slowAclThreshold;
  if (took > threshold && log)
    log->warn("incoming ACL check took over {} seconds – check DNS ({} for {})",
              std::max<long long>(1, std::chrono::duration_cast<std::chrono::seconds>(threshold).count()),
              took.count() >= 0 ? std::to_string(took.count()) + " ms" : "?", ctx->source.remote.address);
  if (name && p_.policy_->acl.allowsName(*name)) {
    nameTrusted_[ctx->source.remote.address] = p_.timers_.now() + kNameTrust;
    p_.resume(ctx, Stage::Validation);
    return;
  }
  ++p_.aclRefused_;
  if (log)
    log->warn("{}: {} from {} ({})", kAclRefused, ctx->request.method(), ctx->source.remote.toString(),
              name ? *name : std::string("no PTR record"));
  p_.answer(ctx->serverTx, ctx->request, 403, kAclRefused);
}

std::vector<Ban> Admission::bans() { return flood_.bans(p_.timers_.now()); }

std::size_t Admission::clearBans(const std::string& address) { return flood_.clear(address); }

}  // namespace imp::sip_proxy
