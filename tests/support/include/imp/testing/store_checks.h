#pragma once
// Checks shared by the unit tests of the stores on FakeDatabase (ConfigStore,
// Directory, NodeControl; issue 15, deliverable 5).
#include <imp/core/admin_http.h>
#include <imp/core/database.h>

#include <cstdint>
#include <functional>
#include <string>

namespace imp::testing {

// The cluster settings generation (core_settings), bumped by every change.
inline std::int64_t settingsGeneration(core::Database& db) {
  return db.query("SELECT generation FROM core_settings WHERE id = 1").num(0, "generation");
}

// "status code: message" of the AdminError fn throws; "no error" if none.
inline std::string adminError(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const core::AdminError& e) {
    return std::to_string(e.status()) + " " + e.code() + ": " + e.what();
  }
  return "no error";
}

}  // namespace imp::testing
