#pragma once
// A directory for routing tests (FED-6..8): what decideRoute asks, answered
// from plain sets the test fills, each question counted.
#include <imp/directory/routing.h>

#include <map>
#include <optional>
#include <set>
#include <string>

namespace imp::testing {

class FakeDirectory : public directory::DirectoryLookup {
 public:
  std::set<std::string> domains;                // local presence domains
  std::map<std::string, std::string> licensed;  // address -> home node ("" = none)
  std::set<std::string> microsoftUris;          // addresses with a Microsoft SIP URI
  int calls = 0;

  bool isLocalDomain(const std::string& d) override {
    ++calls;
    return domains.count(d) > 0;
  }
  std::optional<std::string> licensedUserHome(const std::string& a) override {
    ++calls;
    auto it = licensed.find(a);
    if (it == licensed.end()) return std::nullopt;
    return it->second;
  }
  bool hasMicrosoftSipUri(const std::string& a) override {
    ++calls;
    return microsoftUris.count(a) > 0;
  }
};

}  // namespace imp::testing
