// PresenceSettingsStore on the fake database (PS-1, PS-2): defaults, changes
// that bump the cluster settings generation, refused values, live reload.
#include <doctest/doctest.h>
#include <imp/core/admin_http.h>
#include <imp/xcp_router/presence_settings.h>

#include "store_fixture.h"

using namespace imp::xcp;
using xcptest::StoreFixture;

TEST_CASE_FIXTURE(StoreFixture, "PS-1, PS-2: the defaults are 200 contacts, 200 watchers, auto-approval on") {
  PresenceSettingsStore s(db);
  auto p = s.get();
  CHECK(p.maxContacts == 200);
  CHECK(p.maxWatchers == 200);
  CHECK(p.autoApprove);
  CHECK(p.offlineQuota == 1000);
}

TEST_CASE_FIXTURE(StoreFixture, "a change bumps the generation in the same transaction; no change, no bump") {
  PresenceSettingsStore s(db);
  auto gen = generation();
  auto c = s.update({.maxContacts = 0, .autoApprove = false});
  CHECK(c.changed);
  CHECK(c.generation == static_cast<std::uint64_t>(gen + 1));
  CHECK(generation() == gen + 1);
  CHECK(c.settings.maxContacts == 0);
  CHECK(c.settings.maxWatchers == 200);
  CHECK_FALSE(c.settings.autoApprove);
  CHECK(s.get() == c.settings);
  auto same = s.update({.maxContacts = 0});
  CHECK_FALSE(same.changed);
  CHECK(same.generation == 0);
  CHECK(generation() == gen + 1);
  imp::testing::failAtEveryStatement(
      db, [&] { s.update({.maxWatchers = 5, .offlineQuota = 7}); },
      [&](std::size_t) {
        CHECK(s.get().maxWatchers == 200);
        CHECK(generation() == gen + 1);
      });
  CHECK(s.get().maxWatchers == 5);
  CHECK(s.get().offlineQuota == 7);
}

TEST_CASE_FIXTURE(StoreFixture, "values above the range are refused naming the setting, nothing stored") {
  PresenceSettingsStore s(db);
  auto gen = generation();
  CHECK(imp::testing::adminError([&] { s.update({.maxWatchers = kMaxSettingValue + 1}); }) ==
        "400 invalid_argument: max_watchers 1000001 is above 1000000 (0 = no limit)");
  CHECK(generation() == gen);
  CHECK(s.get().maxWatchers == 200);
}

TEST_CASE_FIXTURE(StoreFixture, "LivePresenceSettings applies a change at reload, keeps the last values when the database is gone") {
  PresenceSettingsStore s(db);
  LivePresenceSettings live(s);
  live.reload();
  CHECK(live.current().maxContacts == 200);
  s.update({.maxContacts = 10});
  CHECK(live.current().maxContacts == 200);  // until the generation listener reloads
  live.reload();
  CHECK(live.current().maxContacts == 10);
  s.update({.maxContacts = 20});
  db.failNextOperations(1);
  CHECK_THROWS_AS(live.reload(), imp::core::DbError);
  CHECK(live.current().maxContacts == 10);
}
