#include <doctest/doctest.h>
#include <imp/sip_proxy/flood.h>

using namespace imp::sip_proxy;
using namespace std::chrono_literals;

TEST_CASE("a flooding address is banned for banTime; others are not affected") {
  FloodLimiter f(FloodConfig{5, 1000ms, 60s, 1000});
  auto t = FloodLimiter::Clock::time_point{} + 1h;
  for (int i = 0; i < 5; ++i) CHECK(f.allow("192.0.2.66", t));
  CHECK_FALSE(f.allow("192.0.2.66", t));  // sixth in the window: banned
  CHECK(f.allow("192.0.2.7", t));
  CHECK_FALSE(f.allow("192.0.2.66", t + 30s));  // still banned
  auto bans = f.bans(t + 30s);
  REQUIRE(bans.size() == 1);
  CHECK(bans[0].address == "192.0.2.66");
  CHECK(bans[0].refused == 2);
  CHECK(f.allow("192.0.2.66", t + 61s));  // ban over
  CHECK(f.bansIssued() == 1);
}

TEST_CASE("requests spread over windows are never banned") {
  FloodLimiter f(FloodConfig{3, 1000ms, 60s, 1000});
  auto t = FloodLimiter::Clock::time_point{} + 1h;
  for (int i = 0; i < 30; ++i) CHECK(f.allow("198.51.100.1", t + i * 400ms));
  CHECK(f.bans(t + 20s).empty());
}

TEST_CASE("bans can be lifted one by one or all at once") {
  FloodLimiter f(FloodConfig{1, 1000ms, 60s, 1000});
  auto t = FloodLimiter::Clock::now();
  f.allow("a", t);
  f.allow("a", t);
  f.allow("b", t);
  f.allow("b", t);
  CHECK(f.bans(t).size() == 2);
  CHECK(f.clear("a") == 1);
  CHECK(f.bans(t).size() == 1);
  CHECK(f.allow("a", t));
  CHECK(f.clear() == 1);
  CHECK(f.bans(t).empty());
}

TEST_CASE("memory stays bounded under many source addresses") {
  FloodLimiter f(FloodConfig{100, 1000ms, 60s, 1000});
  auto t = FloodLimiter::Clock::time_point{} + 1h;
  for (int i = 0; i < 50000; ++i) f.allow("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), t + i * 1ms);
  CHECK(f.tracked() <= 1001);  // swept, never 50,000
  CHECK(f.bans(t + 60s).empty());
}
