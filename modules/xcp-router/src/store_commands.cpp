#include "imp/xcp_router/store_commands.h"

#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>
#include <imp/core/response_shape.h>
#include <imp/directory/directory.h>

#include <Poco/JSON/Object.h>

#include <ostream>

#include "imp/xcp_router/credential_store.h"
#include "imp/xcp_router/presence_settings.h"
#include "imp/xcp_router/roster_store.h"
#include "shared_fields.h"

namespace imp::xcp {

using core::AdminError;
using core::AdminResponse;
using core::Arg;
using core::Command;
using core::CommandArgs;
using core::Field;
using core::Reply;
using core::cli::table;
using Obj = Poco::JSON::Object;

StoreCommandsContext::StoreCommandsContext(core::Database& database)
    : db(database),
      settings(std::make_unique<PresenceSettingsStore>(database)),
      rosters(std::make_unique<RosterStore>(database)),
      credentials(std::make_unique<CredentialStore>(database)) {}

StoreCommandsContext::~StoreCommandsContext() = default;

namespace {

// ---- the answers' fields, each named once (response shapes, issue 15) ----

struct SettingsShape : core::Shape {
  SettingsShape() : Shape("PresenceSettings", Layout::Lines) {}
  const Field<std::int64_t> maxContacts = number("max_contacts");
  const Field<std::int64_t> maxWatchers = number("max_watchers");
  const Field<bool> autoApprove = flag("auto_approve");
  const Field<std::int64_t> offlineQuota = number("offline_quota");
  const Field<bool> changed = flag("changed").optional();
  const Field<std::int64_t> generation = number("generation").optional();
};

Reply settingsReply(const PresenceSettings& p) {
  const auto& s = core::shape<SettingsShape>();
  Reply r(s);
  r.set(s.maxContacts, p.maxContacts).set(s.maxWatchers, p.maxWatchers).set(s.autoApprove, p.autoApprove);
  r.set(s.offlineQuota, p.offlineQuota);
  return r;
}

std::string limitText(const Field<std::int64_t>& f, const Obj::Ptr& o) {
  auto v = f.text(o);
  return v == "0" ? "no limit" : v;
}

void printSettings(std::ostream& out, const Obj::Ptr& o) {
  const auto& s = core::shape<SettingsShape>();
  table(out, {{"maximum contacts per user", limitText(s.maxContacts, o)},
              {"maximum watchers per user", limitText(s.maxWatchers, o)},
              {"auto-approve subscriptions", s.autoApprove.get(o) ? "on" : "off"},
              {"offline messages per user", limitText(s.offlineQuota, o)}});
}

struct RosterItemShape : core::Shape {
  RosterItemShape() : Shape("RosterItem", Layout::Table) {}
  const Field<std::string> jid = same(detail::sharedFields().jid);
  const Field<std::string> name = text("name");
  const Field<std::string> subscription = text("subscription");
  const Field<bool> pendingOut = flag("pending_out");
  const Field<bool> pendingIn = flag("pending_in");
  const Field<bool> preApproved = flag("pre_approved");
  const Field<std::vector<std::string>> groups = texts("groups");
};

struct PendingRequestShape : core::Shape {
  PendingRequestShape() : Shape("PendingSubscriptionRequest", Layout::Table) {}
  const Field<std::string> jid = same(core::shape<RosterItemShape>().jid);
  const Field<std::string> status = text("status");
};

struct RosterShape : core::Shape {
  RosterShape() : Shape("Roster", Layout::Lines) {}
  const Field<std::string> userid = same(detail::sharedFields().userid);
  const Field<std::string> version = text("version");
  const core::ListField items = list("items", core::shape<RosterItemShape>());
  const core::ListField pendingRequests = list("pending_requests", core::shape<PendingRequestShape>());
};

struct PasswordSetShape : core::Shape {
  PasswordSetShape() : Shape("PasswordSet", Layout::Lines) {}
  const Field<std::string> userid = same(core::shape<RosterShape>().userid);
  const Field<std::vector<std::string>> mechanisms = texts("mechanisms");
  const Field<std::int64_t> iterations = number("iterations");
};

std::string orDash(std::string v) { return v.empty() ? "-" : v; }

std::uint32_t count(const CommandArgs& a, const std::string& field) {
  return static_cast<std::uint32_t>(*a.integer(field));
}

void requireUser(core::Database& db, const std::string& userid) {
  if (!directory::Directory(db).user(userid)) throw AdminError(404, "unknown_user", "no user '" + userid + "'");
}

std::string pendingText(const Obj::Ptr& item) {
  const auto& s = core::shape<RosterItemShape>();
  std::string p;
  if (s.pendingOut.get(item)) p = "out";
  if (s.pendingIn.get(item)) p += p.empty() ? "in" : "+in";
  if (s.preApproved.get(item)) p += p.empty() ? "pre-approved" : ",pre-approved";
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
              .returns(core::shape<SettingsShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printSettings(out, o); })
              .handler<StoreCommandsContext>([](StoreCommandsContext& ctx, const CommandArgs&) {
                return settingsReply(ctx.settings->get()).response();
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
              .returns(core::shape<SettingsShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& s = core::shape<SettingsShape>();
                printSettings(out, o);
                out << (s.changed.get(o) ? "changed (generation " + s.generation.text(o) + ")" : "unchanged") << "\n";
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
                const auto& s = core::shape<SettingsShape>();
                return settingsReply(c.settings).set(s.changed, c.changed).set(s.generation, c.generation).response();
              }));

  reg.add(Command("user roster", "GET", "/api/v1/users/{userid}/roster")
              .arg(userid)
              .help("Show a user's roster: contacts, names, subscriptions, groups and pending requests.")
              .describe("PENDING: out = the user asked the contact (ask), in = the contact asked the user and waits\n"
                        "for an answer, pre-approved = the user approved before being asked (RFC 6121 3.4).\n"
                        "Requests from people not on the roster are listed under \"Pending requests\".")
              .example("user roster ann", "ann's contacts")
              .returns(core::shape<RosterShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& r = core::shape<RosterShape>();
                const auto& i = core::shape<RosterItemShape>();
                const auto items = r.items.get(o);
                std::vector<std::vector<std::string>> rows = {{"CONTACT", "NAME", "SUBSCRIPTION", "PENDING", "GROUPS"}};
                for (const auto& it : items)
                  rows.push_back({i.jid.text(it), orDash(i.name.text(it)), i.subscription.text(it), pendingText(it),
                                  i.groups.shown(it)});
                table(out, rows);
                out << "roster version " << r.version.text(o) << ", " << items.size() << " contact(s)\n";
                auto pending = r.pendingRequests.get(o);
                if (!pending.empty()) {
                  const auto& q = core::shape<PendingRequestShape>();
                  out << "Pending requests:\n";
                  std::vector<std::vector<std::string>> p = {{"FROM", "STATUS"}};
                  for (const auto& req : pending) p.push_back({q.jid.text(req), orDash(q.status.text(req))});
                  table(out, p);
                }
              })
              .handler<StoreCommandsContext>([](StoreCommandsContext& ctx, const CommandArgs& a) {
                const auto& id = a.at("userid");
                requireUser(ctx.db, id);
                auto roster = ctx.rosters->get(id);
                const auto& i = core::shape<RosterItemShape>();
                std::vector<Reply> items;
                for (const auto& it : roster.items) {
                  Reply r(i);
                  r.set(i.jid, it.contact).set(i.name, it.name).set(i.subscription, std::string(toString(it.state.subscription)));
                  r.set(i.pendingOut, it.state.pendingOut).set(i.pendingIn, it.state.pendingIn);
                  r.set(i.preApproved, it.state.preApproved).set(i.groups, it.groups);
                  items.push_back(std::move(r));
                }
                const auto& q = core::shape<PendingRequestShape>();
                std::vector<Reply> pending;
                for (const auto& it : ctx.rosters->pendingIn(id)) {
                  if (!it.pendingOnly) continue;  // listed above with PENDING in
                  Reply r(q);
                  r.set(q.jid, it.contact).set(q.status, it.pendingInStatus);
                  pending.push_back(std::move(r));
                }
                const auto& sh = core::shape<RosterShape>();
                Reply out(sh);
                out.set(sh.userid, id).set(sh.version, std::to_string(roster.version));
                out.set(sh.items, items).set(sh.pendingRequests, pending);
                return out.response();
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
              .returns(core::shape<PasswordSetShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& p = core::shape<PasswordSetShape>();
                out << "password of " << p.userid.text(o) << " set (" << p.mechanisms.shown(o) << ", "
                    << p.iterations.text(o) << " iterations)\n";
              })
              .handler<StoreCommandsContext>([](StoreCommandsContext& ctx, const CommandArgs& a) {
                const auto& id = a.at("userid");
                auto iterations =
                    static_cast<std::uint32_t>(a.integer("iterations").value_or(xmpp::kScramMinIterations));
                ctx.credentials->setPassword(id, a.at("password"), iterations);
                const auto& p = core::shape<PasswordSetShape>();
                std::vector<std::string> mechanisms;
                for (auto h : ctx.credentials->mechanisms(id)) mechanisms.emplace_back(mechanismName(h));
                return Reply(p).set(p.userid, id).set(p.mechanisms, mechanisms).set(p.iterations, iterations).response();
              }));
}

}  // namespace imp::xcp
