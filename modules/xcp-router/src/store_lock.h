#pragma once
// Helpers of the stores' write transactions.
//
// lockOwner() serialises one user's writes that check a limit (PS-1 contact
// and watcher limits, the IM-5 offline quota): the first statement of the
// transaction locks the owner's directory row, so a count read afterwards
// (with FOR UPDATE, which reads the latest committed rows) cannot be
// overtaken by a concurrent writer for the same owner. Writers for different
// owners do not wait on each other.
#include <imp/core/database.h>

#include <string>

#include "imp/xcp_router/store_errors.h"

namespace imp::xcp::detail {

inline void lockOwner(core::DbSession& s, const std::string& owner) {
  if (s.query("SELECT userid FROM dir_user WHERE userid = ? FOR UPDATE", {owner}).empty())
    throw StoreInputError("item-not-found", "no user '" + owner + "' in the directory");
}

// Runs `f` in a transaction of `db`; a foreign-key failure on the owner
// (MySQL 1452) means there is no such directory user and becomes
// StoreInputError item-not-found. Other errors propagate unchanged.
template <class F>
void guarded(core::Database& db, const std::string& owner, F&& f) {
  try {
    db.transaction(f);
  } catch (const core::DbError& e) {
    if (e.code() == 1452) throw StoreInputError("item-not-found", "no user '" + owner + "' in the directory");
    throw;
  }
}

}  // namespace imp::xcp::detail
