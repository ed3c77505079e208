#include "imp/core/metrics.h"

#include <cmath>
#include <sstream>

namespace imp::core {

std::string renderLabels(const Metrics::Labels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"";
    for (char c : v) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::atomic<std::uint64_t>& Metrics::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& f = families_[name];
  f.help = help;
  f.type = Type::Counter;
  auto& slot = f.counters[renderLabels(labels)];
  if (!slot) slot = std::make_unique<std::atomic<std::uint64_t>>(0);
  return *slot;
}

void Metrics::collect(const std::string& name, const std::string& help, Type type, std::string owner,
                      std::function<std::vector<Sample>()> fn) {
  std::lock_guard lock(mu_);
  auto& f = families_[name];
  f.help = help;
  f.type = type;
  for (auto& c : f.collectors)
    if (c.first == owner) {
      c.second = std::move(fn);
      return;
    }
  f.collectors.emplace_back(std::move(owner), std::move(fn));
}

void Metrics::remove(const std::string& owner) {
  std::lock_guard lock(mu_);
  for (auto& [name, f] : families_)
    std::erase_if(f.collectors, [&](const auto& c) { return c.first == owner; });
}

std::string Metrics::render() const {
  std::ostringstream out;
  std::lock_guard lock(mu_);
  for (const auto& [name, f] : families_) {
    if (f.counters.empty() && f.collectors.empty()) continue;
    out << "# HELP " << name << ' ' << f.help << '\n';
    out << "# TYPE " << name << ' ' << (f.type == Type::Counter ? "counter" : "gauge") << '\n';
    for (const auto& [labels, v] : f.counters) out << name << labels << ' ' << v->load() << '\n';
    for (const auto& [owner, fn] : f.collectors)
      for (const auto& s : fn()) {
        out << name << renderLabels(s.labels) << ' ';
        if (s.value == std::floor(s.value) && std::fabs(s.value) < 1e15) out << static_cast<long long>(s.value);
        else out << s.value;
        out << '\n';
      }
  }
  return out.str();
}

}  // namespace imp::core
