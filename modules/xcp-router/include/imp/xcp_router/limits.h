#pragma once
// PS-1 limits: the precise error the session manager returns when a roster
// add would exceed the maximum contact-list size, or a subscription approval
// the maximum number of watchers.
//
// Condition: <policy-violation/> (RFC 6120 §8.3.3.12), not
// <resource-constraint/> (§8.3.3.18). The limit is an administrator's policy
// that holds until the user changes the roster or the administrator the
// setting; resource-constraint is type "wait", a temporary shortage that
// tells the client to retry the same request later, which would never
// succeed. Type "modify" for the contact limit (the user can remove a
// contact and retry), "cancel" for the watcher limit (the approving user
// cannot change the request).
#include <cstdint>
#include <string>

namespace imp::xcp {

struct LimitError {
  enum class Limit { Contacts, Watchers };
  Limit limit = Limit::Contacts;
  std::uint32_t value = 0;  // the configured maximum that was reached

  std::string condition() const { return "policy-violation"; }
  std::string type() const { return limit == Limit::Contacts ? "modify" : "cancel"; }
  // "the contact list is full: at most 200 contacts per user (PS-1)"
  std::string text() const;
  friend bool operator==(const LimitError&, const LimitError&) = default;
};

// True when one more would exceed `max` (0 = no limit).
inline bool exceeds(std::uint64_t current, std::uint32_t max) { return max != 0 && current + 1 > max; }

}  // namespace imp::xcp
