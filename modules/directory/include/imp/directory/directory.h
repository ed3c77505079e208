#pragma once
// The cluster directory, first part (PS-3, PS-5, FED-6): users with their IM
// address, IM licence, home node and Microsoft SIP URI, and presence
// domains — administrator-managed ones plus system-managed ones derived from
// users' addresses.
//
// Every change is one transaction that also bumps the cluster settings
// generation, so services that cache directory data reload it. Input from
// the admin API is validated here; errors are core::AdminError with the
// field named. Thread-safe (stateless over the database).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace imp::core {
class Database;
}  // namespace imp::core

namespace imp::directory {

struct User {
  std::string userid;
  std::string imAddress;  // user@domain, lower-case domain
  bool licensed = true;   // enabled for IM and Presence on IMP
  std::string homeNode;   // empty = not assigned
  std::string msSipUri;   // msRTCSIP-PrimaryUserAddress, "" if unknown
};

struct Domain {
  std::string name;
  bool adminManaged = false;   // added by an administrator
  std::size_t localUsers = 0;  // users with this IM domain
  std::string description;
  // PS-3 wording: "configured on local cluster" / "in use on local cluster"
  std::string status() const;
};

// Syntax checks shared with the admin API; they return an error message or "".
std::string checkUserId(const std::string& s);
std::string checkDomain(const std::string& s);
std::string checkImAddress(const std::string& s);
std::string checkMsSipUri(const std::string& s);

class Directory {
 public:
  explicit Directory(core::Database& db) : db_(db) {}

  void addUser(const User& u);                     // 409 if userid or IM address exists
  std::optional<User> user(const std::string& userid);
  std::optional<User> userByAddress(const std::string& imAddress);
  std::optional<User> userByMsSipUri(const std::string& uri);
  std::vector<User> users(const std::string& domain = "", std::size_t limit = 1000, std::size_t offset = 0);
  bool deleteUser(const std::string& userid);

  void addDomain(const std::string& domain, const std::string& description = "");
  bool deleteDomain(const std::string& domain);  // refused while users use it
  std::vector<Domain> domains();
  // True if `domain` is a presence domain of this cluster (admin-managed or in use).
  bool isLocalDomain(const std::string& domain);

 private:
  core::Database& db_;
};

}  // namespace imp::directory
