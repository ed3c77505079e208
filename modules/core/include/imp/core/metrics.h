#pragma once
// Metrics in the Prometheus text exposition format (/metrics).
// Counters are atomics owned by the registry (stable addresses, lock-free
// increments); collected families are read at scrape time from callbacks.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace imp::core {

class Metrics {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  struct Sample {
    Labels labels;
    double value = 0;
  };
  enum class Type { Counter, Gauge };

  std::atomic<std::uint64_t>& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  // Registers (or replaces, by `owner`) a callback producing samples of one family.
  void collect(const std::string& name, const std::string& help, Type type, std::string owner,
               std::function<std::vector<Sample>()> fn);
  void remove(const std::string& owner);
  std::string render() const;

 private:
  struct Family {
    std::string help;
    Type type = Type::Counter;
    std::map<std::string, std::unique_ptr<std::atomic<std::uint64_t>>> counters;  // rendered labels -> value
    std::vector<std::pair<std::string, std::function<std::vector<Sample>()>>> collectors;
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

std::string renderLabels(const Metrics::Labels& labels);

}  // namespace imp::core
