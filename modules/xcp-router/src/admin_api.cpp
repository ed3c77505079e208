#include "imp/xcp_router/admin_api.h"

#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <ostream>

#include "imp/xcp_router/service.h"

namespace imp::xcp {

using core::AdminError;
using core::AdminResponse;
using core::Arg;
using core::Command;
using core::CommandArgs;
using core::cli::str;
using Obj = Poco::JSON::Object;
using Arr = Poco::JSON::Array;

namespace {

AdminError notRunning() {
  return AdminError(503, "service_not_running",
                    "xcp-connection-manager is not running on this node: it has no client sessions to show");
}

std::string orDash(const std::string& s) { return s.empty() ? "-" : s; }

}  // namespace

void registerSessionCommands(core::CommandRegistry& reg) {
  reg.add(Command("session list", "GET", "/api/v1/xmpp/sessions")
              .arg(Arg::string("user").inQuery().option("user", "USERID").help("only this user's sessions"))
              .help("List the XMPP client sessions bound on this node.")
              .describe("One line per bound resource: the user, the full JID, the client software (its XEP-0115\n"
                        "caps node when it announced one), the client's address, the TLS version and when it\n"
                        "logged in (UTC).")
              .example("session list", "every session on this node")
              .example("session list --user ann", "ann's sessions")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                std::vector<std::vector<std::string>> rows = {{"USER", "JID", "CLIENT", "ADDRESS", "TLS", "SINCE"}};
                auto sessions = core::cli::objects(o, "sessions");
                for (const auto& s : sessions)
                  rows.push_back({str(s, "userid"), str(s, "jid"), orDash(str(s, "client")), str(s, "address"),
                                  orDash(str(s, "tls")), str(s, "since")});
                core::cli::table(out, rows);
                out << sessions.size() << " session(s)\n";
              })
              .handler<XcpRuntime>([](XcpRuntime& rt, const CommandArgs& a) {
                auto list = rt.sessions(a.str("user").value_or(""));
                if (!list) throw notRunning();
                Arr::Ptr arr = new Arr;
                for (const auto& s : *list) {
                  Obj::Ptr o = new Obj;
                  o->set("userid", s.userid);
                  o->set("jid", s.jid);
                  o->set("client", s.client);
                  o->set("address", s.remote);
                  o->set("tls", s.tlsVersion);
                  o->set("since", s.since);
                  arr->add(o);
                }
                Obj::Ptr out = new Obj;
                out->set("sessions", arr);
                return AdminResponse::json(out);
              }));

  reg.add(Command("session kick", "POST", "/api/v1/xmpp/sessions/{userid}/kick")
              .arg(Arg::string("userid").inPath().positional("USERID").help("the user's id"))
              .help("End every XMPP session of a user on this node.")
              .describe("Each of the user's streams is closed with the policy-violation stream error and the text\n"
                        "\"the administrator ended this session\". The user may log in again.")
              .example("session kick ann", "ends ann's sessions")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                out << str(o, "closed") << " session(s) of " << str(o, "userid") << " closed\n";
              })
              .handler<XcpRuntime>([](XcpRuntime& rt, const CommandArgs& a) {
                const auto& id = a.at("userid");
                auto n = rt.kick(id);
                if (!n) throw notRunning();
                Obj::Ptr o = new Obj;
                o->set("userid", id);
                o->set("closed", static_cast<Poco::Int64>(*n));
                return AdminResponse::json(o);
              }));
}

}  // namespace imp::xcp
