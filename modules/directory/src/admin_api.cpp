#include "imp/directory/admin_api.h"

#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>

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
using core::Field;
using core::Reply;
using Obj = Poco::JSON::Object;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// ---- the answers' fields, each named once (response shapes) ----

struct UserShape : core::Shape {
  UserShape() : Shape("User", Layout::Table) {}
  const Field<std::string> userid = text("userid").column("USERID");
  const Field<std::string> imAddress = text("im_address").column("IM ADDRESS");
  const Field<bool> licensed = flag("licensed").column("LICENSED").shows("yes", "no");
  const Field<std::string> homeNode = text("home_node").column("HOME NODE").orElse("-");
  const Field<std::string> msSipUri = text("ms_sip_uri").column("MICROSOFT SIP URI").orElse("-");
};

struct UsersShape : core::Shape {
  UsersShape() : Shape("Users", Layout::Lines) {}
  const core::ListField users = list("users", core::shape<UserShape>());
};

struct DomainShape : core::Shape {
  DomainShape() : Shape("Domain", Layout::Table) {}
  const Field<std::string> domain = text("domain").column("DOMAIN");
  const Field<std::string> managedBy = text("managed_by").column("MANAGED BY");
  const Field<std::string> status = text("status").column("STATUS");
  const Field<std::int64_t> localUsers = number("local_users").column("LOCAL USERS");
  const Field<std::string> description = text("description").column("DESCRIPTION");
};

struct DomainsShape : core::Shape {
  DomainsShape() : Shape("Domains", Layout::Lines) {}
  const core::ListField domains = list("domains", core::shape<DomainShape>());
};

// domain add: "example.com: configured on local cluster".
struct DomainAddedShape : core::Shape {
  DomainAddedShape() : Shape("DomainAdded", Layout::Lines) {}
  const Field<std::string> domain = same(core::shape<DomainShape>().domain);
  const Field<std::string> status = same(core::shape<DomainShape>().status);
};

Reply userReply(const User& u) {
  const auto& s = core::shape<UserShape>();
  Reply r(s);
  r.set(s.userid, u.userid).set(s.imAddress, u.imAddress).set(s.licensed, u.licensed);
  r.set(s.homeNode, u.homeNode).set(s.msSipUri, u.msSipUri);
  return r;
}

Reply deleted(const std::string& what) {
  Reply r(core::shape<core::DeletedShape>());
  r.set(core::shape<core::DeletedShape>().deleted, what);
  return r;
}

// "deleted user ann"
core::CommandPrinter printDeleted(std::string what) {
  return [what](std::ostream& out, const Obj::Ptr& o, int) {
    out << "deleted " << what << " " << core::shape<core::DeletedShape>().deleted.text(o) << "\n";
  };
}

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
              .returns(core::shape<UserShape>())
              .handler<Directory>([](Directory& dir, const CommandArgs& a) {
                User u;
                u.userid = a.at("userid");
                u.imAddress = a.at("im_address");
                u.homeNode = a.str("home_node").value_or("");
                u.msSipUri = a.str("ms_sip_uri").value_or("");
                u.licensed = a.boolean("licensed").value_or(true);
                dir.addUser(u);
                return userReply(*dir.user(u.userid)).response(201);
              }));

  reg.add(Command("user list", "GET", "/api/v1/users")
              .arg(Arg::string("domain").inQuery().option("domain", "DOMAIN").help("only users of this IM domain"))
              .arg(Arg::integer("limit", 0, 100000).inQuery().help("at most this many users (default 1000)"))
              .arg(Arg::integer("offset", 0, 1 << 30).inQuery().help("skip this many users"))
              .help("List users.")
              .returns(core::shape<UsersShape>())
              .handler<Directory>([](Directory& dir, const CommandArgs& a) {
                std::vector<Reply> list;
                for (const auto& u : dir.users(a.str("domain").value_or(""), static_cast<std::size_t>(a.integer("limit").value_or(1000)),
                                               static_cast<std::size_t>(a.integer("offset").value_or(0))))
                  list.push_back(userReply(u));
                return Reply(core::shape<UsersShape>()).set(core::shape<UsersShape>().users, list).response();
              }));

  reg.add(Command("user show", "GET", "/api/v1/users/{userid}")
              .arg(userid)
              .help("Show one user.")
              .returns(core::shape<UserShape>())
              .handler<Directory>([](Directory& dir, const CommandArgs& a) {
                auto u = dir.user(a.at("userid"));
                if (!u) throw AdminError(404, "unknown_user", "no user '" + a.at("userid") + "'");
                return userReply(*u).response();
              }));

  reg.add(Command("user delete", "DELETE", "/api/v1/users/{userid}")
              .arg(userid)
              .help("Delete a user.")
              .returns(core::shape<core::DeletedShape>())
              .print(printDeleted("user"))
              .handler<Directory>([](Directory& dir, const CommandArgs& a) {
                if (!dir.deleteUser(a.at("userid"))) throw AdminError(404, "unknown_user", "no user '" + a.at("userid") + "'");
                return deleted(a.at("userid")).response();
              }));

  reg.add(Command("domain add", "POST", "/api/v1/domains")
              .arg(Arg::string("domain").required().positional("DOMAIN").help("the presence domain"))
              .arg(Arg::string("description").option("description", "TEXT").help("a description"))
              .help("Add an administrator-managed presence domain.")
              .returns(core::shape<DomainAddedShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& s = core::shape<DomainAddedShape>();
                out << s.domain.text(o) << ": " << s.status.text(o) << "\n";
              })
              .handler<Directory>([](Directory& dir, const CommandArgs& a) {
                const auto& d = a.at("domain");
                dir.addDomain(d, a.str("description").value_or(""));
                const auto& s = core::shape<DomainAddedShape>();
                return Reply(s).set(s.domain, lower(d)).set(s.status, "configured on local cluster").response(201);
              }));

  reg.add(Command("domain list", "GET", "/api/v1/domains")
              .help("Administrator-managed presence domains, and the system-managed ones derived from users' addresses.")
              .describe("The status is \"configured on local cluster\" or \"in use on local cluster\".")
              .returns(core::shape<DomainsShape>())
              .handler<Directory>([](Directory& dir, const CommandArgs&) {
                const auto& s = core::shape<DomainShape>();
                std::vector<Reply> list;
                for (const auto& d : dir.domains()) {
                  Reply r(s);
                  r.set(s.domain, d.name).set(s.managedBy, d.adminManaged ? "administrator" : "system");
                  r.set(s.status, d.status()).set(s.localUsers, d.localUsers).set(s.description, d.description);
                  list.push_back(r);
                }
                return Reply(core::shape<DomainsShape>()).set(core::shape<DomainsShape>().domains, list).response();
              }));

  reg.add(Command("domain delete", "DELETE", "/api/v1/domains/{domain}")
              .arg(domainPath)
              .help("Delete an administrator-managed presence domain; a domain in use by users cannot be deleted.")
              .returns(core::shape<core::DeletedShape>())
              .print(printDeleted("domain"))
              .handler<Directory>([](Directory& dir, const CommandArgs& a) {
                if (!dir.deleteDomain(a.at("domain")))
                  throw AdminError(404, "unknown_domain", "domain '" + a.at("domain") + "' is not administrator-managed");
                return deleted(lower(a.at("domain"))).response();
              }));
}

}  // namespace imp::directory
