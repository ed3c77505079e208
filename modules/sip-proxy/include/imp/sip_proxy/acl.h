#pragma once
// Incoming ACL matching (RT-7, RT-8). Built from the stored entries; the
// proxy asks it about a request's source address and, when the address alone
// is not allowed, about the names reverse DNS gave for it (resolved
// asynchronously elsewhere: this class never resolves anything).
//
// - `all` allows every address and every name.
// - An address entry allows exactly that address; an IPv4 entry also
//   matches the IPv4-mapped IPv6 form (::ffff:a.b.c.d) a dual-stack socket
//   reports.
// - A name entry allows that name and every name below it (`foo.com` allows
//   `ocs1.foo.com`), case-insensitively; a trailing dot is ignored.
//
// Immutable after construction; safe to share between threads.
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "imp/sip_proxy/settings.h"

namespace imp::sip_proxy {

class AclMatcher {
 public:
  AclMatcher() = default;
  // Entries that are not canonical (see normaliseAclPattern) are ignored.
  explicit AclMatcher(const std::vector<AclEntry>& entries);

  bool allowsAll() const { return all_; }
  // `ip`: an IP literal; anything else is not allowed.
  bool allowsAddress(std::string_view ip) const;
  // `fqdn`: a DNS name as reverse DNS returns it.
  bool allowsName(std::string_view fqdn) const;
  bool empty() const { return !all_ && addresses_.empty() && names_.empty(); }

 private:
  bool all_ = false;
  std::set<std::string, std::less<>> addresses_;
  std::set<std::string, std::less<>> names_;
};

}  // namespace imp::sip_proxy
