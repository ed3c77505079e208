#include "imp/xcp_router/store_errors.h"

#include <imp/core/utf8.h>

#include "imp/xcp_router/limits.h"

namespace imp::xcp {

std::size_t utf8Length(const std::string& s) { return core::utf8Chars(s); }

std::string LimitError::text() const {
  // PS-1: name the limit and its value so the user knows what to change.
  if (limit == Limit::Contacts)
    return "the contact list is full: at most " + std::to_string(value) + " contacts per user (PS-1)";
  return "too many watchers: at most " + std::to_string(value) + " users may see one user's presence (PS-1)";
}

}  // namespace imp::xcp
