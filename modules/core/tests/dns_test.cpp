#include <doctest/doctest.h>
#include <imp/core/dns.h>

#include <atomic>
#include <future>

using namespace imp::core;

namespace {

// Answers only when the test says so: a stalled DNS server on demand.
class ScriptedResolver : public Resolver {
 public:
  void reverse(const std::string& ip, ReverseCallback cb) override {
    std::lock_guard l(mu);
    ++calls;
    reverses.emplace_back(ip, std::move(cb));
  }
  void forward(const std::string& host, ForwardCallback cb) override {
    std::lock_guard l(mu);
    ++calls;
    forwards.emplace_back(host, std::move(cb));
  }
  void answerReverse(const std::string& ip, std::optional<std::string> name) {
    ReverseCallback cb;
    {
      std::lock_guard l(mu);
      for (auto it = reverses.begin(); it != reverses.end(); ++it)
        if (it->first == ip) {
          cb = std::move(it->second);
          reverses.erase(it);
          break;
        }
    }
    REQUIRE(cb);
    cb(std::move(name));
  }
  std::mutex mu;
  int calls = 0;
  std::vector<std::pair<std::string, ReverseCallback>> reverses;
  std::vector<std::pair<std::string, ForwardCallback>> forwards;
};

}  // namespace

TEST_CASE("a stalled lookup does not delay others; concurrent lookups coalesce") {
  auto inner = std::make_shared<ScriptedResolver>();
  auto cache = std::make_shared<CachingResolver>(inner);
  std::optional<std::string> a1, a2, b;
  int aCalls = 0, bCalls = 0;
  cache->reverse("192.0.2.1", [&](std::optional<std::string> n) { a1 = n, ++aCalls; });  // stalls
  cache->reverse("192.0.2.1", [&](std::optional<std::string> n) { a2 = n, ++aCalls; });
  cache->reverse("192.0.2.2", [&](std::optional<std::string> n) { b = n, ++bCalls; });
  CHECK(inner->calls == 2);  // one lookup per address
  inner->answerReverse("192.0.2.2", "lync.example.com");
  CHECK(bCalls == 1);
  CHECK(b == "lync.example.com");
  CHECK(aCalls == 0);  // still waiting for the stalled server
  inner->answerReverse("192.0.2.1", std::nullopt);
  CHECK(aCalls == 2);
  CHECK_FALSE(a1);
  CHECK_FALSE(a2);
}

TEST_CASE("positive and negative answers are cached") {
  auto inner = std::make_shared<ScriptedResolver>();
  auto cache = std::make_shared<CachingResolver>(inner);
  cache->reverse("192.0.2.1", [](auto) {});
  inner->answerReverse("192.0.2.1", "a.example.com");
  cache->reverse("192.0.2.9", [](auto) {});
  inner->answerReverse("192.0.2.9", std::nullopt);
  std::optional<std::string> again;
  cache->reverse("192.0.2.1", [&](auto n) { again = n; });
  CHECK(again == "a.example.com");
  CHECK(inner->calls == 2);
  CHECK(cache->cachedReverse("192.0.2.1") == std::optional<std::optional<std::string>>(std::optional<std::string>("a.example.com")));
  auto neg = cache->cachedReverse("192.0.2.9");
  REQUIRE(neg.has_value());
  CHECK_FALSE(neg->has_value());
  CHECK_FALSE(cache->cachedReverse("192.0.2.7").has_value());
  CHECK(cache->hits() == 1);
  cache->clear();
  CHECK_FALSE(cache->cachedReverse("192.0.2.1").has_value());
}

TEST_CASE("expired entries are looked up again; slow lookups are reported") {
  auto inner = std::make_shared<ScriptedResolver>();
  std::vector<std::string> slow;
  DnsCacheConfig cfg;
  cfg.positiveTtl = std::chrono::seconds(0);
  cfg.slowThreshold = std::chrono::milliseconds(0);  // every lookup counts as slow
  auto cache = std::make_shared<CachingResolver>(inner, cfg, [&](const std::string& k, auto) { slow.push_back(k); });
  cache->reverse("192.0.2.1", [](auto) {});
  inner->answerReverse("192.0.2.1", "a.example.com");
  std::optional<std::string> second;
  cache->reverse("192.0.2.1", [&](auto n) { second = n; });
  CHECK(inner->calls == 2);
  CHECK(slow == std::vector<std::string>{"192.0.2.1"});
  inner->answerReverse("192.0.2.1", "b.example.com");  // a lookup in flight holds the cache: finish it
  CHECK(second == "b.example.com");
}

TEST_CASE("the system resolver answers IP literals and runs off the caller's thread") {
  SystemResolver r(1);
  std::promise<std::vector<std::string>> p;
  r.forward("192.0.2.44", [&](std::vector<std::string> a) { p.set_value(a); });
  auto f = p.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(f.get() == std::vector<std::string>{"192.0.2.44"});
  std::promise<std::optional<std::string>> bad;
  r.reverse("not-an-ip", [&](std::optional<std::string> n) { bad.set_value(n); });
  auto fb = bad.get_future();
  REQUIRE(fb.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK_FALSE(fb.get());
}
