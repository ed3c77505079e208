// impctl user ... / impctl domain ... (directory, PS-3, PS-5).
#include <Poco/URI.h>

#include <iostream>

#include "cli.h"

namespace impctl {

namespace {
void printUsers(const std::vector<Obj::Ptr>& users) {
  std::vector<std::vector<std::string>> rows = {{"USERID", "IM ADDRESS", "LICENSED", "HOME NODE", "MICROSOFT SIP URI"}};
  for (const auto& u : users)
    rows.push_back({str(u, "userid"), str(u, "im_address"), u->getValue<bool>("licensed") ? "yes" : "no",
                    str(u, "home_node").empty() ? "-" : str(u, "home_node"),
                    str(u, "ms_sip_uri").empty() ? "-" : str(u, "ms_sip_uri")});
  table(rows);
}

}  // namespace

int userCommand(const Args& a, const LazyClient& c) {
  const auto& w = a.words;
  const char* usage = "usage: impctl user add|list|show|delete ...";
  if (w.size() < 2) throw Exit{kUsage, usage};
  if (w[1] == "add") {
    if (w.size() != 3 || a.imAddress.empty())
      throw Exit{kUsage, "usage: impctl user add USERID --im-address ADDR [--unlicensed] [--home-node ID] [--ms-uri URI]"};
    Obj body;
    body.set("userid", w[2]);
    body.set("im_address", a.imAddress);
    body.set("licensed", !a.unlicensed);
    if (!a.homeNode.empty()) body.set("home_node", a.homeNode);
    if (!a.msUri.empty()) body.set("ms_sip_uri", a.msUri);
    auto o = c.request("POST", "/api/v1/users", jsonBody(body), a.json);
    if (!a.json) printUsers({o});
    return kOk;
  }
  if (w[1] == "list") {
    if (w.size() != 2) throw Exit{kUsage, "usage: impctl user list [--domain DOMAIN]"};
    std::string q;
    if (!a.domain.empty()) Poco::URI::encode(a.domain, "&=?#/", q);
    auto o = c.request("GET", "/api/v1/users" + (q.empty() ? "" : "?domain=" + q), "", a.json);
    if (a.json) return kOk;
    std::vector<Obj::Ptr> users;
    for (const auto& v : *o->getArray("users")) users.push_back(v.extract<Obj::Ptr>());
    printUsers(users);
    return kOk;
  }
  if (w[1] == "show" || w[1] == "delete") {
    if (w.size() != 3) throw Exit{kUsage, "usage: impctl user " + w[1] + " USERID"};
    auto o = c.request(w[1] == "show" ? "GET" : "DELETE", "/api/v1/users/" + pathPart(w[2]), "", a.json);
    if (a.json) return kOk;
    if (w[1] == "show") printUsers({o});
    else std::cout << "deleted user " << str(o, "deleted") << "\n";
    return kOk;
  }
  throw Exit{kUsage, usage};
}

int domainCommand(const Args& a, const LazyClient& c) {
  const auto& w = a.words;
  if (w.size() == 2 && w[1] == "list") {
    auto o = c.request("GET", "/api/v1/domains", "", a.json);
    if (a.json) return kOk;
    std::vector<std::vector<std::string>> rows = {{"DOMAIN", "MANAGED BY", "STATUS", "LOCAL USERS", "DESCRIPTION"}};
    for (const auto& v : *o->getArray("domains")) {
      auto d = v.extract<Obj::Ptr>();
      rows.push_back({str(d, "domain"), str(d, "managed_by"), str(d, "status"), str(d, "local_users"), str(d, "description")});
    }
    table(rows);
    return kOk;
  }
  if (w.size() == 3 && w[1] == "add") {
    Obj body;
    body.set("domain", w[2]);
    if (!a.description.empty()) body.set("description", a.description);
    auto o = c.request("POST", "/api/v1/domains", jsonBody(body), a.json);
    if (!a.json) std::cout << str(o, "domain") << ": " << str(o, "status") << "\n";
    return kOk;
  }
  if (w.size() == 3 && w[1] == "delete") {
    auto o = c.request("DELETE", "/api/v1/domains/" + pathPart(w[2]), "", a.json);
    if (!a.json) std::cout << "deleted domain " << str(o, "deleted") << "\n";
    return kOk;
  }
  throw Exit{kUsage, "usage: impctl domain add DOMAIN [--description TEXT] | domain list | domain delete DOMAIN"};
}

}  // namespace impctl
