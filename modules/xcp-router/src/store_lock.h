#pragma once
// Serialises one user's writes that check a limit (PS-1 contact and watcher
// limits, the IM-5 offline quota): the first statement of the transaction
// locks the owner's directory row, so a count read afterwards (with FOR
// UPDATE, which reads the latest committed rows) cannot be overtaken by a
// concurrent writer for the same owner. Writers for different owners do not
// wait on each other.
#include <imp/core/database.h>

#include <string>

#include "imp/xcp_router/store_errors.h"

namespace imp::xcp::detail {

inline void lockOwner(core::DbSession& s, const std::string& owner) {
  if (s.query("SELECT userid FROM dir_user WHERE userid = ? FOR UPDATE", {owner}).empty())
    throw StoreInputError("item-not-found", "no user '" + owner + "' in the directory");
}

}  // namespace imp::xcp::detail
