// HA-2 capacity planner: every row of the seed's tables 9, 10 and 11
// ("maximum users" with and without high availability by average
// contact-list size), typed in from the seed, against the planner.
#include <doctest/doctest.h>

#include "imp/serviceability/capacity.h"

using namespace imp::serviceability;

namespace {

struct Row {
  std::uint64_t avg, withHa, withoutHa;
};

void checkTable(const std::string& templateName, const std::vector<Row>& seed) {
  auto t = capacityTemplate(templateName);
  REQUIRE(t);
  CHECK(tableAverages(*t).size() == seed.size());
  for (const auto& r : seed) {
    INFO("template ", templateName, ", average ", r.avg);
    CHECK(maxUsers(t->threshold, t->maxUsers, r.avg, true) == r.withHa);
    CHECK(maxUsers(t->threshold, t->maxUsers, r.avg, false) == r.withoutHa);
  }
  for (std::size_t i = 0; i < seed.size() && i < tableAverages(*t).size(); ++i) CHECK(tableAverages(*t)[i] == seed[i].avg);
}

}  // namespace

TEST_CASE("HA-2: seed table 9, 130,000 federated contacts per node") {
  checkTable("default", {{200, 325, 650}, {150, 433, 866}, {100, 650, 1300}, {75, 866, 1733}, {50, 1300, 2600},
                         {25, 2500, 5000}});
}

TEST_CASE("HA-2: seed table 10, the 1,000-user template (18,000 contacts)") {
  checkTable("1000", {{200, 45, 90}, {150, 60, 120}, {100, 90, 180}, {75, 120, 240}, {50, 180, 360}, {25, 360, 720},
                      {18, 500, 1000}});
}

TEST_CASE("HA-2: seed table 11, the 5,000-user template (90,000 contacts)") {
  checkTable("5000", {{200, 225, 450}, {150, 300, 600}, {100, 450, 900}, {75, 600, 1200}, {50, 900, 1800},
                      {25, 1800, 3600}, {18, 2500, 5000}});
}

TEST_CASE("HA-2: the 15,000-user template, other averages and refusals") {
  auto t = capacityTemplate("15000");
  REQUIRE(t);
  CHECK(maxUsers(t->threshold, t->maxUsers, 25, false) == 5200);  // not capped at 5,000
  CHECK(maxUsers(t->threshold, t->maxUsers, 1, false) == 15000);
  CHECK(maxUsers(t->threshold, t->maxUsers, 1, true) == 7500);
  CHECK(maxUsers(130000, 5000, 120, true) == 541);
  CHECK(maxUsers(130000, 5000, 0, false) == 0);
  CHECK_FALSE(capacityTemplate("2000"));
  CHECK(maxUsers(kImpMeasuredContacts, kImpMeasuredContacts, 200, false) == 6484);
}
