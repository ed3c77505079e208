// The lifecycle contract of service.h, driven through lifecycle-probe.
#include <doctest/doctest.h>
#include <fakes/lifecycle_probe.h>
#include <imp/core/service_host.h>

#include <algorithm>

using imp::core::HostError;
using imp::core::ServiceHost;
using imp::core::ServiceState;
using imp::testing::Act;
using imp::testing::Journal;
using imp::testing::probe;
using imp::testing::ProbeScript;

namespace {

std::unique_ptr<ServiceHost> makeHost(std::chrono::milliseconds stopTimeout = std::chrono::seconds(5)) {
  return std::make_unique<ServiceHost>([](const std::string&) { return imp::core::ServiceContext{}; }, stopTimeout,
                                       nullptr);
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::ptrdiff_t indexOf(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) - v.begin();
}

}  // namespace

TEST_CASE("services configure all, then start in dependency order, then stop in reverse") {
  auto j = std::make_shared<Journal>();
  auto host = makeHost();
  host->registerService(probe("c", {.deps = {"b"}}, j));
  host->registerService(probe("a", {}, j));
  host->registerService(probe("b", {.deps = {"a"}}, j));
  host->startAll({"c", "a", "b"});
  CHECK(host->allRunning());
  host->stopAll();
  auto ev = j->snapshot();
  CHECK(ev == std::vector<std::string>{"a.configure", "b.configure", "c.configure", "a.start", "b.start", "c.start",
                                       "c.stop", "b.stop", "a.stop"});
  for (const auto& i : host->list()) CHECK(i.state == ServiceState::Stopped);
}

TEST_CASE("a configure failure prevents every start") {
  auto j = std::make_shared<Journal>();
  auto host = makeHost();
  host->registerService(probe("a", {}, j));
  host->registerService(probe("b", {.configure = Act::ConfigError}, j));
  host->registerService(probe("c", {}, j));
  try {
    host->startAll({"a", "b", "c"});
    FAIL("startAll should throw");
  } catch (const HostError& e) {
    CHECK(e.service() == "b");
    CHECK(e.exitCode() == 78);
    CHECK(std::string(e.what()) == "in [b]: told to refuse its configuration");
  }
  auto ev = j->snapshot();
  CHECK(contains(ev, "b.configure"));
  for (const auto& e : ev) CHECK(e.find(".start") == std::string::npos);
  CHECK(host->info("b").state == ServiceState::Failed);
  CHECK(host->info("a").state == ServiceState::Stopped);
}

TEST_CASE("a throwing configure is reported as a config error of that service") {
  auto j = std::make_shared<Journal>();
  auto host = makeHost();
  host->registerService(probe("a", {.configure = Act::Throw}, j));
  CHECK_THROWS_WITH_AS(host->startAll({"a"}), "in [a]: configure failed: a told to fail in configure", HostError);
}

TEST_CASE("a start failure stops the already started services in reverse order") {
  auto j = std::make_shared<Journal>();
  auto host = makeHost();
  host->registerService(probe("a", {}, j));
  host->registerService(probe("b", {}, j));
  host->registerService(probe("c", {.start = Act::Throw}, j));
  host->registerService(probe("d", {}, j));
  try {
    host->startAll({"a", "b", "c", "d"});
    FAIL("startAll should throw");
  } catch (const HostError& e) {
    CHECK(e.service() == "c");
    CHECK(e.exitCode() == 70);
    CHECK(std::string(e.what()) == "service c failed to start: c told to fail in start");
  }
  auto ev = j->snapshot();
  CHECK_FALSE(contains(ev, "d.start"));
  // c itself gets stop() (allowed after a failed start), then b, then a.
  CHECK(indexOf(ev, "c.stop") < indexOf(ev, "b.stop"));
  CHECK(indexOf(ev, "b.stop") < indexOf(ev, "a.stop"));
  CHECK(host->info("c").state == ServiceState::Failed);
  CHECK(host->info("a").state == ServiceState::Stopped);
  CHECK(host->info("c").failures == 1);
}

TEST_CASE("a hanging stop is cut off by its timeout and reported") {
  auto j = std::make_shared<Journal>();
  auto host = makeHost(std::chrono::milliseconds(200));
  host->registerService(probe("a", {}, j));
  host->registerService(probe("hangs", {.stop = Act::Hang}, j));
  host->registerService(probe("z", {}, j));
  host->startAll({"a", "hangs", "z"});
  auto t0 = std::chrono::steady_clock::now();
  host->stopAll();
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < std::chrono::seconds(30));  // not the probe's own 60 s bound
  auto ev = j->snapshot();
  // The hang did not prevent a (stopped after it) from stopping.
  CHECK(indexOf(ev, "z.stop") < indexOf(ev, "hangs.stop"));
  CHECK(indexOf(ev, "hangs.stop") < indexOf(ev, "a.stop"));
  auto info = host->info("hangs");
  CHECK(info.state == ServiceState::StopTimeout);
  CHECK(info.detail == "stop did not finish within 200 ms; abandoned");
  CHECK(host->abandoned() == std::vector<std::string>{"hangs"});
  j->release();
}

TEST_CASE("runtime restart touches only that service and counts it") {
  auto j = std::make_shared<Journal>();
  auto host = makeHost();
  host->registerService(probe("a", {}, j));
  host->registerService(probe("b", {}, j));
  host->startAll({"a", "b"});
  auto before = j->snapshot().size();
  host->restart("b");
  auto ev = j->snapshot();
  std::vector<std::string> tail(ev.begin() + static_cast<std::ptrdiff_t>(before), ev.end());
  CHECK(tail == std::vector<std::string>{"b.stop", "b.configure", "b.start"});
  CHECK(host->info("b").restarts == 1);
  CHECK(host->info("a").restarts == 0);
  CHECK(host->info("a").state == ServiceState::Running);
  CHECK(host->info("b").state == ServiceState::Running);
}

TEST_CASE("a runtime start failure marks only that service failed") {
  auto j = std::make_shared<Journal>();
  auto host = makeHost();
  host->registerService(probe("a", {}, j));
  host->startAll({"a"});
  host->registerService(probe("late", {.start = Act::Throw}, j));
  CHECK_THROWS_AS(host->activate("late"), HostError);
  CHECK(host->info("late").state == ServiceState::Failed);
  CHECK(host->info("a").state == ServiceState::Running);
  CHECK_FALSE(host->allRunning());
}

TEST_CASE("unknown names list the valid ones; deactivated services do not start") {
  auto j = std::make_shared<Journal>();
  auto host = makeHost();
  host->registerService(probe("a", {}, j));
  host->registerService(probe("b", {}, j));
  host->startAll({"a"});
  CHECK_THROWS_WITH_AS(host->restart("nope"), "unknown service 'nope'; valid services: a, b", HostError);
  CHECK_THROWS_WITH_AS(host->start("b"), "service 'b' is deactivated on this node; activate it first", HostError);
  host->activate("b");
  CHECK(host->info("b").state == ServiceState::Running);
  host->deactivate("b");
  CHECK(host->info("b").state == ServiceState::Stopped);
  CHECK_FALSE(host->info("b").active);
}

TEST_CASE("dependencies: missing ones refuse start-up; dependents block a stop") {
  auto j = std::make_shared<Journal>();
  auto host = makeHost();
  host->registerService(probe("a", {}, j));
  host->registerService(probe("b", {.deps = {"a"}}, j));
  CHECK_THROWS_WITH_AS(host->startAll({"b"}), "service 'b' requires 'a', which is not active on this node", HostError);
  CHECK(j->snapshot().empty());
  host->startAll({"a", "b"});
  CHECK_THROWS_WITH_AS(host->stop("a"), "service 'a' is required by running services: b; stop them first", HostError);
  host->stop("b");
  host->stop("a");
  CHECK(host->info("a").state == ServiceState::Stopped);
}

TEST_CASE("a dependency cycle is refused") {
  auto j = std::make_shared<Journal>();
  auto host = makeHost();
  host->registerService(probe("a", {.deps = {"b"}}, j));
  host->registerService(probe("b", {.deps = {"a"}}, j));
  CHECK_THROWS_WITH_AS(host->startAll({"a", "b"}), doctest::Contains("dependency cycle"), HostError);
}
