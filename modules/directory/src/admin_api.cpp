#include "imp/directory/admin_api.h"

#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <algorithm>
#include <cctype>
#include <ostream>

#include "imp/directory/directory.h"

namespace imp::directory {

using core::AdminError;
using core::AdminResponse;
using core::Arg;
using core::Command;
using core::CommandArgs;
using core::cli::str;
using core::cli::table;
using Obj = Poco::JSON::Object;
using Arr = Poco::JSON::Array;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

Obj::Ptr userJson(const User& u) {
  Obj::Ptr o = new Obj;
  o->set("userid", u.userid);
  o->set("im_address", u.imAddress);
  o->set("licensed", u.licensed);
  o->set("home_node", u.homeNode);
  o->set("ms_sip_uri", u.msSipUri);
  return o;
}

void printUsers(std::ostream& out, const std::vector<Obj::Ptr>& users) {
  std::vector<std::vector<std::string>> rows = {{"USERID", "IM ADDRESS", "LICENSED", "HOME NODE", "MICROSOFT SIP URI"}};
  for (const auto& u : users)
    rows.push_back({str(u, "userid"), str(u, "im_address"), u->getValue<bool>("licensed") ? "yes" : "no",
                    str(u, "home_node").empty() ? "-" : str(u, "home_node"),
                    str(u, "ms_sip_uri").empty() ? "-" : str(u, "ms_sip_uri")});
  table(out, rows);
}

void printUser(std::ostream& out, const Obj::Ptr& o, int) { printUsers(out, {o}); }

}  // namespace

void registerCommands(core::CommandRegistry& reg) {
  const auto userid = Arg::string("userid").inPath().positional("USERID").help("the user's id");
  const auto domainPath = Arg::string("domain").inPath().positional("DOMAIN").help("the presence domain");

  reg.add(Command("user add", "POST", "/api/v1/users")
              .arg(Arg::string("userid").required().positional("USERID").help(
                  "letters, digits and . _ - (the user's id in the directory)"))
              .arg(Arg::string("im_address").required().cliRequired().option("im-address", "ADDR").help(
                  "the user's IM address, user@domain (case-insensitive)"))
              .flag("unlicensed", Arg::boolean("licensed"), false, "not licensed for IM on IMP (default: licensed)")
              .arg(Arg::string("home_node").option("home-node", "ID").help("the user's home node, a node of this cluster"))
              .arg(Arg::string("ms_sip_uri").option("ms-uri", "sip:USER@DOMAIN").help(
                  "the Microsoft SIP URI that advanced routing needs (FED-6)"))
              .help("Add a user.")
              .example("user add ann --im-address ann@example.com --home-node imp1", "a user homed on node imp1")
              .print(printUser)
              .handler<Directory>([](Directory& dir, const CommandArgs& a) {
                User u;
                u.userid = a.at("userid");
                u.imAddress = a.at("im_address");
                u.homeNode = a.str("home_node").value_or("");
                u.msSipUri = a.str("ms_sip_uri").value_or("");
                u.licensed = a.boolean("licensed").value_or(true);
                dir.addUser(u);
                return AdminResponse::json(userJson(*dir.user(u.userid)), 201);
              }));

  reg.add(Command("user list", "GET", "/api/v1/users")
              .arg(Arg::string("domain").inQuery().option("domain", "DOMAIN").help("only users of this IM domain"))
              .arg(Arg::integer("limit", 0, 100000).inQuery().help("at most this many users (default 1000)"))
              .arg(Arg::integer("offset", 0, 1 << 30).inQuery().help("skip this many users"))
              .help("List users.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printUsers(out, core::cli::objects(o, "users")); })
              .handler<Directory>([](Directory& dir, const CommandArgs& a) {
                Arr::Ptr list = new Arr;
                for (const auto& u : dir.users(a.str("domain").value_or(""), static_cast<std::size_t>(a.integer("limit").value_or(1000)),
                                               static_cast<std::size_t>(a.integer("offset").value_or(0))))
                  list->add(userJson(u));
                Obj::Ptr o = new Obj;
                o->set("users", list);
                return AdminResponse::json(o);
              }));

  reg.add(Command("user show", "GET", "/api/v1/users/{userid}")
              .arg(userid)
              .help("Show one user.")
              .print(printUser)
              .handler<Directory>([](Directory& dir, const CommandArgs& a) {
                auto u = dir.user(a.at("userid"));
                if (!u) throw AdminError(404, "unknown_user", "no user '" + a.at("userid") + "'");
                return AdminResponse::json(userJson(*u));
              }));

  reg.add(Command("user delete", "DELETE", "/api/v1/users/{userid}")
              .arg(userid)
              .help("Delete a user.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) { out << "deleted user " << str(o, "deleted") << "\n"; })
              .handler<Directory>([](Directory& dir, const CommandArgs& a) {
                if (!dir.deleteUser(a.at("userid"))) throw AdminError(404, "unknown_user", "no user '" + a.at("userid") + "'");
                Obj::Ptr o = new Obj;
                o->set("deleted", a.at("userid"));
                return AdminResponse::json(o);
              }));

  reg.add(Command("domain add", "POST", "/api/v1/domains")
              .arg(Arg::string("domain").required().positional("DOMAIN").help("the presence domain"))
              .arg(Arg::string("description").option("description", "TEXT").help("a description"))
              .help("Add an administrator-managed presence domain.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                out << str(o, "domain") << ": " << str(o, "status") << "\n";
              })
              .handler<Directory>([](Directory& dir, const CommandArgs& a) {
                const auto& d = a.at("domain");
                dir.addDomain(d, a.str("description").value_or(""));
                Obj::Ptr o = new Obj;
                o->set("domain", lower(d));
                o->set("status", "configured on local cluster");
                return AdminResponse::json(o, 201);
              }));

  reg.add(Command("domain list", "GET", "/api/v1/domains")
              .help("Administrator-managed presence domains, and the system-managed ones derived from users' addresses.")
              .describe("The status is \"configured on local cluster\" or \"in use on local cluster\".")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                std::vector<std::vector<std::string>> rows = {{"DOMAIN", "MANAGED BY", "STATUS", "LOCAL USERS", "DESCRIPTION"}};
                for (const auto& d : core::cli::objects(o, "domains"))
                  rows.push_back({str(d, "domain"), str(d, "managed_by"), str(d, "status"), str(d, "local_users"),
                                  str(d, "description")});
                table(out, rows);
              })
              .handler<Directory>([](Directory& dir, const CommandArgs&) {
                Arr::Ptr list = new Arr;
                for (const auto& d : dir.domains()) {
                  Obj::Ptr o = new Obj;
                  o->set("domain", d.name);
                  o->set("managed_by", d.adminManaged ? "administrator" : "system");
                  o->set("status", d.status());
                  o->set("local_users", d.localUsers);
                  o->set("description", d.description);
                  list->add(o);
                }
                Obj::Ptr o = new Obj;
                o->set("domains", list);
                return AdminResponse::json(o);
              }));

  reg.add(Command("domain delete", "DELETE", "/api/v1/domains/{domain}")
              .arg(domainPath)
              .help("Delete an administrator-managed presence domain; a domain in use by users cannot be deleted.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) { out << "deleted domain " << str(o, "deleted") << "\n"; })
              .handler<Directory>([](Directory& dir, const CommandArgs& a) {
                if (!dir.deleteDomain(a.at("domain")))
                  throw AdminError(404, "unknown_domain", "domain '" + a.at("domain") + "' is not administrator-managed");
                Obj::Ptr o = new Obj;
                o->set("deleted", lower(a.at("domain")));
                return AdminResponse::json(o);
              }));
}

}  // namespace imp::directory
