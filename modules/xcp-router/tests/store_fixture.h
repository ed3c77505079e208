#pragma once
// The xcp-router stores on the fake database (tests/support): the real
// migrations and the real SQL, with two directory users.
#include <imp/directory/directory.h>
#include <imp/testing/fake_database.h>
#include <imp/testing/store_checks.h>

namespace xcptest {

struct StoreFixture {
  imp::testing::FakeDatabase db;
  StoreFixture() {
    db.migrate();
    imp::directory::Directory dir(db);
    for (const char* id : {"ann", "bob"}) {
      imp::directory::User u;
      u.userid = id;
      u.imAddress = std::string(id) + "@example.com";
      dir.addUser(u);
    }
  }
  std::int64_t generation() { return imp::testing::settingsGeneration(db); }
};

}  // namespace xcptest
