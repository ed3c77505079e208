#include "imp/directory/directory.h"

#include <imp/core/admin_http.h>
#include <imp/core/admin_json.h>
#include <imp/core/cluster_settings.h>
#include <imp/core/database.h>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <algorithm>
#include <cctype>
#include <string_view>
#include <map>

namespace imp::directory {

using core::AdminError;
using core::AdminRequest;
using core::AdminResponse;
using core::DbSession;
using Obj = Poco::JSON::Object;
using Arr = Poco::JSON::Array;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// IM addresses are case-insensitive as a whole (XMPP localparts are
// case-folded; Lync and the directory treat them like e-mail addresses).
std::string normaliseAddress(const std::string& a) { return lower(a); }

std::string domainOf(const std::string& address) { return lower(address.substr(address.rfind('@') + 1)); }

using core::json::badField;

User rowUser(const core::Rows& r, std::size_t i) {
  return {r.str(i, "userid"), r.str(i, "im_address"), r.num(i, "licensed") != 0, r.str(i, "home_node"),
          r.str(i, "ms_sip_uri")};
}

const char* kUserCols = "SELECT userid, im_address, licensed, home_node, ms_sip_uri FROM dir_user";

}  // namespace

std::string Domain::status() const {
  return adminManaged ? "configured on local cluster" : "in use on local cluster";
}

std::string checkUserId(const std::string& s) {
  if (s.empty() || s.size() > 128) return "userid must be 1..128 characters";
  for (unsigned char c : s)
    if (!std::isalnum(c) && c != '.' && c != '_' && c != '-') return "userid may hold only letters, digits, '.', '_' and '-'";
  return "";
}

std::string checkDomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return "domain must be 1..253 characters";
  if (s.front() == '.' || s.back() == '.' || s.find("..") != std::string::npos)
    return "domain '" + s + "' has an empty label";
  if (s.find('.') == std::string::npos) return "domain '" + s + "' needs at least two labels (example.com)";
  std::size_t label = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '.') {
      if (s[i - 1] == '-') return "domain label may not end with '-'";
      label = 0;
      continue;
    }
    if (!std::isalnum(c) && c != '-') return "domain '" + s + "' may hold only letters, digits, '-' and '.'";
    if (label == 0 && c == '-') return "domain label may not start with '-'";
    if (++label > 63) return "domain label longer than 63 characters";
  }
  return "";
}

std::string checkImAddress(const std::string& s) {
  auto at = s.rfind('@');
  if (at == std::string::npos || at == 0) return "IM address must be user@domain";
  auto user = s.substr(0, at);
  for (unsigned char c : user)
    if (std::isspace(c) || c == '<' || c == '>' || c == '"' || c == '@' || c == '/' || c == '\'' || c == '&' || c == ':')
      return "IM address '" + s + "' has a character not allowed in the user part";
  if (auto d = checkDomain(lower(s.substr(at + 1))); !d.empty()) return d;
  return "";
}

// A plain sip:user@host check (the directory knows no SIP stack): a scheme,
// then the user part, then a host with nothing after it.
std::string checkMsSipUri(const std::string& s) {
  auto notUri = [&](std::string_view why) { return "Microsoft SIP URI '" + s + "' is not a URI: " + std::string(why); };
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0) return notUri("no scheme");
  if (!std::isalpha(static_cast<unsigned char>(s[0]))) return notUri("the scheme must start with a letter");
  for (std::size_t i = 1; i < colon; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (!std::isalnum(c) && c != '+' && c != '-' && c != '.') return notUri("bad character in the scheme");
  }
  for (unsigned char c : s)
    if (std::iscntrl(c) || std::isspace(c) || c == '<' || c == '>' || c == '"') return notUri("bad character");
  if (lower(s.substr(0, colon)) != "sip") return "Microsoft SIP URI must use the sip: scheme";
  std::string_view rest(s);
  rest.remove_prefix(colon + 1);
  auto at = rest.rfind('@');
  if (at == std::string_view::npos || at == 0) return "Microsoft SIP URI needs a user part (sip:user@domain)";
  std::string_view host = rest.substr(at + 1);
  if (host.empty()) return notUri("no host");
  bool v6 = host.front() == '[';
  auto close = v6 ? host.find(']') : std::string_view::npos;
  if (v6 && close == std::string_view::npos) return notUri("unterminated IPv6 reference");
  std::string_view after = v6 ? host.substr(close + 1) : host;
  if (after.find_first_of(";?:") != std::string_view::npos) return "Microsoft SIP URI must be a plain sip:user@domain";
  if (!v6)
    for (unsigned char c : host)
      if (!std::isalnum(c) && c != '.' && c != '-') return notUri("bad character in the host");
  return "";
}

void Directory::addUser(const User& in) {
  User u = in;
  if (auto e = checkUserId(u.userid); !e.empty()) badField("userid", e);
  if (auto e = checkImAddress(u.imAddress); !e.empty()) badField("im_address", e);
  u.imAddress = normaliseAddress(u.imAddress);
  if (!u.msSipUri.empty())
    if (auto e = checkMsSipUri(u.msSipUri); !e.empty()) badField("ms_sip_uri", e);
  db_.transaction([&](DbSession& s) {
    if (!u.homeNode.empty() && s.query("SELECT 1 FROM core_node WHERE node_id = ?", {u.homeNode}).empty())
      badField("home_node", "home node '" + u.homeNode + "' is not a node of this cluster");
    if (!s.query("SELECT 1 FROM dir_user WHERE userid = ?", {u.userid}).empty())
      throw AdminError(409, "user_exists", "user '" + u.userid + "' already exists");
    auto clash = s.query("SELECT userid FROM dir_user WHERE im_address = ?", {u.imAddress});
    if (!clash.empty())
      throw AdminError(409, "im_address_in_use",
                       "IM address '" + u.imAddress + "' already belongs to user '" + clash.str(0, "userid") + "'");
    s.exec("INSERT INTO dir_user (userid, im_address, im_domain, licensed, home_node, ms_sip_uri) VALUES (?, ?, ?, ?, ?, ?)",
           {u.userid, u.imAddress, domainOf(u.imAddress), u.licensed,
            u.homeNode.empty() ? core::SqlValue(nullptr) : core::SqlValue(u.homeNode),
            u.msSipUri.empty() ? core::SqlValue(nullptr) : core::SqlValue(u.msSipUri)});
    core::ClusterSettings::bump(s);
  });
}

std::optional<User> Directory::user(const std::string& userid) {
  auto r = db_.query(std::string(kUserCols) + " WHERE userid = ?", {userid});
  if (r.empty()) return std::nullopt;
  return rowUser(r, 0);
}

std::optional<User> Directory::userByAddress(const std::string& imAddress) {
  if (imAddress.find('@') == std::string::npos) return std::nullopt;
  auto r = db_.query(std::string(kUserCols) + " WHERE im_address = ?", {normaliseAddress(imAddress)});
  if (r.empty()) return std::nullopt;
  return rowUser(r, 0);
}

std::optional<User> Directory::userByMsSipUri(const std::string& uri) {
  auto r = db_.query(std::string(kUserCols) + " WHERE ms_sip_uri = ?", {uri});
  if (r.empty()) return std::nullopt;
  return rowUser(r, 0);
}

std::vector<User> Directory::users(const std::string& domain, std::size_t limit, std::size_t offset) {
  auto r = domain.empty()
               ? db_.query(std::string(kUserCols) + " ORDER BY userid LIMIT ? OFFSET ?",
                           {static_cast<std::int64_t>(limit), static_cast<std::int64_t>(offset)})
               : db_.query(std::string(kUserCols) + " WHERE im_domain = ? ORDER BY userid LIMIT ? OFFSET ?",
                           {lower(domain), static_cast<std::int64_t>(limit), static_cast<std::int64_t>(offset)});
  std::vector<User> out;
  for (std::size_t i = 0; i < r.size(); ++i) out.push_back(rowUser(r, i));
  return out;
}

bool Directory::deleteUser(const std::string& userid) {
  bool gone = false;
  db_.transaction([&](DbSession& s) {
    gone = s.exec("DELETE FROM dir_user WHERE userid = ?", {userid}) > 0;
    if (gone) core::ClusterSettings::bump(s);
  });
  return gone;
}

void Directory::addDomain(const std::string& domainIn, const std::string& description) {
  auto domain = lower(domainIn);
  if (auto e = checkDomain(domain); !e.empty()) badField("domain", e);
  if (description.size() > 255) badField("description", "description is longer than 255 characters");
  db_.transaction([&](DbSession& s) {
    if (!s.query("SELECT 1 FROM dir_domain WHERE domain = ?", {domain}).empty())
      throw AdminError(409, "domain_exists", "domain '" + domain + "' is already configured");
    s.exec("INSERT INTO dir_domain (domain, description) VALUES (?, ?)", {domain, description});
    core::ClusterSettings::bump(s);
  });
}

bool Directory::deleteDomain(const std::string& domainIn) {
  auto domain = lower(domainIn);
  bool gone = false;
  db_.transaction([&](DbSession& s) {
    auto n = s.query("SELECT COUNT(*) AS n FROM dir_user WHERE im_domain = ?", {domain}).num(0, "n");
    if (n > 0)
      throw AdminError(409, "domain_in_use",
                       "domain '" + domain + "' is in use by " + std::to_string(n) + " user(s); move or delete them first");
    gone = s.exec("DELETE FROM dir_domain WHERE domain = ?", {domain}) > 0;
    if (gone) core::ClusterSettings::bump(s);
  });
  return gone;
}

std::vector<Domain> Directory::domains() {
  std::map<std::string, Domain> all;
  auto admin = db_.query("SELECT domain, description FROM dir_domain");
  for (std::size_t i = 0; i < admin.size(); ++i) {
    auto& d = all[admin.str(i, "domain")];
    d.name = admin.str(i, "domain");
    d.adminManaged = true;
    d.description = admin.str(i, "description");
  }
  auto used = db_.query("SELECT im_domain, COUNT(*) AS n FROM dir_user GROUP BY im_domain");
  for (std::size_t i = 0; i < used.size(); ++i) {
    auto& d = all[used.str(i, "im_domain")];
    d.name = used.str(i, "im_domain");
    d.localUsers = static_cast<std::size_t>(used.num(i, "n"));
  }
  std::vector<Domain> out;
  for (auto& [n, d] : all) out.push_back(d);
  return out;
}

bool Directory::isLocalDomain(const std::string& domain) {
  auto d = lower(domain);
  // EXISTS stops at the first row; a UNION would read every user of the
  // domain (to remove duplicates) before its LIMIT applies.
  auto r = db_.query(
      "SELECT EXISTS(SELECT 1 FROM dir_domain WHERE domain = ?) OR EXISTS(SELECT 1 FROM dir_user WHERE im_domain = ?)"
      " AS local_domain",
      {d, d});
  return !r.empty() && r.num(0, "local_domain") != 0;
}

}  // namespace imp::directory
