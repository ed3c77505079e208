#include <doctest/doctest.h>
#include <imp/core/metrics.h>

TEST_CASE("metrics render in the Prometheus text format") {
  imp::core::Metrics m;
  ++m.counter("imp_test_total", "a test counter", {{"code", "200"}});
  m.counter("imp_test_total", "a test counter", {{"code", "200"}}) += 2;
  m.collect("imp_up", "up", imp::core::Metrics::Type::Gauge, "owner",
            [] { return std::vector<imp::core::Metrics::Sample>{{{{"service", "a\"b"}}, 1}}; });
  auto text = m.render();
  CHECK(text.find("# TYPE imp_test_total counter\nimp_test_total{code=\"200\"} 3\n") != std::string::npos);
  CHECK(text.find("# TYPE imp_up gauge\nimp_up{service=\"a\\\"b\"} 1\n") != std::string::npos);
  m.remove("owner");
  CHECK(m.render().find("imp_up") == std::string::npos);
}
