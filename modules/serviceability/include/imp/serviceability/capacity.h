#pragma once
// The capacity planner (HA-2, issue 19): how many users a node can hold
// while the SIP intradomain-federated contacts stay under the node's
// threshold. The original product's rule: maximum users = threshold /
// average contact-list size (an unknown average counts as 200), halved with
// high availability (a node of a two-node sub-cluster must carry its peer's
// users too, HA-1), and never more than the users the node's template
// holds. Its thresholds: 130,000 contacts per node (the seed's table 9,
// computed on the 5,000-user template), 90,000 on the 5,000-user template
// (table 11), 18,000 on the 1,000-user template (table 10). IMP's own
// threshold is what a node was measured to hold (B-FED-SUBS in
// docs/BENCHMARKS.md), with no template cap.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace imp::serviceability {

struct CapacityTemplate {
  std::string name;            // "default", "1000", "5000", "15000"
  std::uint64_t threshold;     // SIP intradomain-federated contacts per node
  std::uint64_t maxUsers;      // users the template holds
  std::string source;          // where the figures come from
};

// The templates `impctl capacity --template` takes; nullopt for another name.
std::optional<CapacityTemplate> capacityTemplate(const std::string& name);
const std::vector<std::string>& capacityTemplateNames();

// IMP's measured threshold: outgoing and incoming availability
// subscriptions one node held (B-FED-SUBS, 2026-12-07: 1,296,849 in
// 1,555 MB of the 2 GB goal).
inline constexpr std::uint64_t kImpMeasuredContacts = 1296849;

// Maximum users for `avgContacts` (> 0): threshold / avg, halved with HA,
// at most the template's users (halved with HA), rounded down.
std::uint64_t maxUsers(std::uint64_t threshold, std::uint64_t templateUsers, std::uint64_t avgContacts, bool ha);

// The average sizes of the seed's tables: 200, 150, 100, 75, 50, 25, and 18
// for the templates whose table has it.
std::vector<std::uint64_t> tableAverages(const CapacityTemplate& t);

}  // namespace imp::serviceability
