#include "imp/sip_proxy/acl.h"

namespace imp::sip_proxy {

AclMatcher::AclMatcher(const std::vector<AclEntry>& entries) {
  for (const auto& e : entries) {
    std::string canon;
    AclKind kind = AclKind::All;
    if (!normaliseAclPattern(e.pattern, &canon, &kind).empty()) continue;
    switch (kind) {
      case AclKind::All: all_ = true; break;
      case AclKind::Address: addresses_.insert(canon); break;
      case AclKind::Name: names_.insert(canon); break;
    }
  }
}

bool AclMatcher::allowsAddress(std::string_view ip) const {
  auto canon = canonicalIp(ip);
  if (!canon) return false;
  if (all_) return true;
  if (addresses_.count(*canon)) return true;
  // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
  constexpr std::string_view kMapped = "::ffff:";
  if (canon->rfind(kMapped, 0) == 0 && canon->find('.') != std::string::npos)
    return addresses_.count(canon->substr(kMapped.size())) > 0;
  return false;
}

bool AclMatcher::allowsName(std::string_view fqdn) const {
  if (all_) return true;
  auto name = lower(fqdn);
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (name.empty()) return false;
  // The name itself, then each parent domain: ocs1.foo.com, foo.com, com.
  for (std::string_view n = name;;) {
    if (names_.count(n)) return true;
    auto dot = n.find('.');
    if (dot == std::string_view::npos) return false;
    n.remove_prefix(dot + 1);
  }
}

}  // namespace imp::sip_proxy
