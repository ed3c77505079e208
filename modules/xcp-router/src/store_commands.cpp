#include "imp/xcp_router/store_commands.h"

#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>
#include <imp/directory/directory.h>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <ostream>

#include "imp/xcp_router/credential_store.h"
#include "imp/xcp_router/presence_settings.h"
#include "imp/xcp_router/roster_store.h"

namespace imp::xcp {

using core::AdminError;
using core::AdminResponse;
using core::Arg;
using core::Command;
using core::CommandArgs;
using core::cli::str;
using core::cli::table;
using Obj = Poco::JSON::Object;
using Arr = Poco::JSON::Array;

StoreCommandsContext::StoreCommandsContext(core::Database& database)
    : db(database),
      settings(std::make_unique<PresenceSettingsStore>(database)),
      rosters(std::make_unique<RosterStore>(database)),
      credentials(std::make_unique<CredentialStore>(database)) {}

StoreCommandsContext::~StoreCommandsContext() = default;

namespace {

Obj::Ptr settingsJson(const PresenceSettings& p) {
  Obj::Ptr o = new Obj;
  o->set("max_contacts", static_cast<Poco::Int64>(p.maxContacts));
  o->set("max_watchers", static_cast<Poco::Int64>(p.maxWatchers));
  o->set("auto_approve", p.autoApprove);
  o->set("offline_quota", static_cast<Poco::Int64>(p.offlineQuota));
  return o;
}

std::string limitText(const Obj::Ptr& o, const std::string& k) {
  auto v = str(o, k);
  return v == "0" ? "no limit" : v;
}

void printSettings(std::ostream& out, const Obj::Ptr& o) {
  table(out, {{"maximum contacts per user", limitText(o, "max_contacts")},
              {"maximum watchers per user", limitText(o, "max_watchers")},
              {"auto-approve subscriptions", o->getValue<bool>("auto_approve") ? "on" : "off"},
              {"offline messages per user", limitText(o, "offline_quota")}});
}

std::uint32_t count(const CommandArgs& a, const std::string& field) {
  return static_cast<std::uint32_t>(*a.integer(field));
}

void requireUser(core::Database& db, const std::string& userid) {
  if (!directory::Directory(db).user(userid)) throw AdminError(404, "unknown_user", "no user '" + userid + "'");
}

std::string pendingText(const Obj::Ptr& item) {
  std::string p;
  if (item->getValue<bool>("pending_out")) p = "out";
  if (item->getValue<bool>("pending_in")) p += p.empty() ? "in" : "+in";
  if (item->getValue<bool>("pre_approved")) p += p.empty() ? "pre-approved" : ",pre-approved";
  return p.empty() ? "-" : p;
}

}  // namespace

void registerStoreCommands(core::CommandRegistry& reg) {
  const auto userid = Arg::string("userid").inPath().positional("USERID").help("the user's id");
  const auto limit = [](const char* field, const char* option, const char* what) {
    return Arg::integer(field, 0, kMaxSettingValue).option(option, "N").help(std::string(what) + "; 0 = no limit");
  };

  reg.add(Command("presence settings show", "GET", "/api/v1/presence/settings")
              .help("Show the cluster's presence settings: contact and watcher limits, auto-approval, offline quota.")
              .describe("PS-1: maximum contact-list size and maximum watchers per user (default 200, 0 = no limit).\n"
                        "PS-2: whether subscription requests are approved without prompting the user (default on).\n"
                        "The offline quota is how many messages are kept for a user who is offline (IM-5).")
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printSettings(out, o); })
              .handler<StoreCommandsContext>([](StoreCommandsContext& ctx, const CommandArgs&) {
                return AdminResponse::json(settingsJson(ctx.settings->get()));
              }));

  reg.add(Command("presence settings set", "PUT", "/api/v1/presence/settings")
              .arg(limit("max_contacts", "max-contacts", "maximum contacts per user (PS-1)"))
              .arg(limit("max_watchers", "max-watchers", "maximum watchers per user (PS-1)"))
              .arg(Arg::boolean("auto_approve").option("auto-approve", "on|off").help(
                  "approve subscription requests without prompting the user (PS-2)"))
              .arg(limit("offline_quota", "offline-quota", "offline messages kept per user (IM-5)"))
              .needsOneOption()
              .help("Change the cluster's presence settings; running routers apply them at once, without a restart.")
              .describe("A lower limit does not remove contacts or watchers a user already has; it refuses new ones.")
              .example("presence settings set --max-contacts 500 --auto-approve off", "a larger contact list, and prompt for every request")
              .example("presence settings set --max-watchers 0", "no watcher limit")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                printSettings(out, o);
                out << (o->getValue<bool>("changed") ? "changed (generation " + str(o, "generation") + ")" : "unchanged") << "\n";
              })
              .handler<StoreCommandsContext>([](StoreCommandsContext& ctx, const CommandArgs& a) {
                PresenceSettingsUpdate u;
                if (a.has("max_contacts")) u.maxContacts = count(a, "max_contacts");
                if (a.has("max_watchers")) u.maxWatchers = count(a, "max_watchers");
                if (a.has("auto_approve")) u.autoApprove = a.boolean("auto_approve");
                if (a.has("offline_quota")) u.offlineQuota = count(a, "offline_quota");
                if (u.empty())
                  throw AdminError(400, "invalid_argument",
                                   "give at least one of max_contacts, max_watchers, auto_approve, offline_quota");
                auto c = ctx.settings->update(u);
                auto o = settingsJson(c.settings);
                o->set("changed", c.changed);
                o->set("generation", static_cast<Poco::Int64>(c.generation));
                return AdminResponse::json(o);
              }));

  reg.add(Command("user roster", "GET", "/api/v1/users/{userid}/roster")
              .arg(userid)
              .help("Show a user's roster: contacts, names, subscriptions, groups and pending requests.")
              .describe("PENDING: out = the user asked the contact (ask), in = the contact asked the user and waits\n"
                        "for an answer, pre-approved = the user approved before being asked (RFC 6121 3.4).\n"
                        "Requests from people not on the roster are listed under \"Pending requests\".")
              .example("user roster ann", "ann's contacts")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                std::vector<std::vector<std::string>> rows = {{"CONTACT", "NAME", "SUBSCRIPTION", "PENDING", "GROUPS"}};
                for (const auto& i : core::cli::objects(o, "items"))
                  rows.push_back({str(i, "jid"), str(i, "name").empty() ? "-" : str(i, "name"), str(i, "subscription"),
                                  pendingText(i), core::cli::joined(i, "groups")});
                table(out, rows);
                out << "roster version " << str(o, "version") << ", " << core::cli::objects(o, "items").size()
                    << " contact(s)\n";
                auto pending = core::cli::objects(o, "pending_requests");
                if (!pending.empty()) {
                  out << "Pending requests:\n";
                  std::vector<std::vector<std::string>> p = {{"FROM", "STATUS"}};
                  for (const auto& r : pending) p.push_back({str(r, "jid"), str(r, "status").empty() ? "-" : str(r, "status")});
                  table(out, p);
                }
              })
              .handler<StoreCommandsContext>([](StoreCommandsContext& ctx, const CommandArgs& a) {
                const auto& id = a.at("userid");
                requireUser(ctx.db, id);
                auto roster = ctx.rosters->get(id);
                Arr::Ptr items = new Arr;
                for (const auto& it : roster.items) {
                  Obj::Ptr o = new Obj;
                  o->set("jid", it.contact);
                  o->set("name", it.name);
                  o->set("subscription", std::string(toString(it.state.subscription)));
                  o->set("pending_out", it.state.pendingOut);
                  o->set("pending_in", it.state.pendingIn);
                  o->set("pre_approved", it.state.preApproved);
                  Arr::Ptr g = new Arr;
                  for (const auto& name : it.groups) g->add(name);
                  o->set("groups", g);
                  items->add(o);
                }
                Arr::Ptr pending = new Arr;
                for (const auto& it : ctx.rosters->pendingIn(id)) {
                  if (!it.pendingOnly) continue;  // listed above with PENDING in
                  Obj::Ptr o = new Obj;
                  o->set("jid", it.contact);
                  o->set("status", it.pendingInStatus);
                  pending->add(o);
                }
                Obj::Ptr o = new Obj;
                o->set("userid", id);
                o->set("version", std::to_string(roster.version));
                o->set("items", items);
                o->set("pending_requests", pending);
                return AdminResponse::json(o);
              }));

  reg.add(Command("user passwd", "PUT", "/api/v1/users/{userid}/password")
              .arg(userid)
              .arg(Arg::string("password")
                       .required()
                       .secret("password")
                       .help("the new XMPP password, UTF-8 (prepared with SASLprep, RFC 4013)"))
              .arg(Arg::integer("iterations", xmpp::kScramMinIterations, xmpp::kScramMaxIterations)
                       .option("iterations", "N")
                       .help("SCRAM iteration count (default 4096, at least 4096 per RFC 7677)"))
              .help("Set a user's XMPP password, stored as SCRAM-SHA-1 and SCRAM-SHA-256 keys only.")
              .describe("The password is never stored: only a random salt, the iteration count and the SCRAM\n"
                        "StoredKey and ServerKey (RFC 5802 section 3). It is never taken from the command line.")
              .example("user passwd ann", "prompts twice for ann's new password")
              .example("user passwd ann < /root/ann.pw", "reads it from a file (one line)")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                out << "password of " << str(o, "userid") << " set (" << core::cli::joined(o, "mechanisms") << ", "
                    << str(o, "iterations") << " iterations)\n";
              })
              .handler<StoreCommandsContext>([](StoreCommandsContext& ctx, const CommandArgs& a) {
                const auto& id = a.at("userid");
                auto iterations =
                    static_cast<std::uint32_t>(a.integer("iterations").value_or(xmpp::kScramMinIterations));
                ctx.credentials->setPassword(id, a.at("password"), iterations);
                Obj::Ptr o = new Obj;
                o->set("userid", id);
                Arr::Ptr m = new Arr;
                for (auto h : ctx.credentials->mechanisms(id)) m->add(std::string(mechanismName(h)));
                o->set("mechanisms", m);
                o->set("iterations", static_cast<Poco::Int64>(iterations));
                return AdminResponse::json(o);
              }));
}

}  // namespace imp::xcp
