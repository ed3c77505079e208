#include "imp/serviceability/capacity.h"

#include <algorithm>
#include <limits>

namespace imp::serviceability {

const std::vector<std::string>& capacityTemplateNames() {
  static const std::vector<std::string> names = {"default", "1000", "5000", "15000"};
  return names;
}

std::optional<CapacityTemplate> capacityTemplate(const std::string& name) {
  if (name == "default")
    return CapacityTemplate{name, 130000, 5000, "130,000 contacts per node, on the 5,000-user template (seed table 9)"};
  if (name == "1000") return CapacityTemplate{name, 18000, 1000, "1,000-user template: 18,000 contacts (seed table 10)"};
  if (name == "5000") return CapacityTemplate{name, 90000, 5000, "5,000-user template: 90,000 contacts (seed table 11)"};
  if (name == "15000") return CapacityTemplate{name, 130000, 15000, "15,000-user template: 130,000 contacts per node"};
  return std::nullopt;
}

std::uint64_t maxUsers(std::uint64_t threshold, std::uint64_t templateUsers, std::uint64_t avgContacts, bool ha) {
  if (avgContacts == 0) return 0;
  const std::uint64_t div = ha ? 2 : 1;
  return std::min(threshold / avgContacts / div, templateUsers / div);
}

std::vector<std::uint64_t> tableAverages(const CapacityTemplate& t) {
  std::vector<std::uint64_t> out = {200, 150, 100, 75, 50, 25};
  if (t.name == "1000" || t.name == "5000") out.push_back(18);
  return out;
}

}  // namespace imp::serviceability
