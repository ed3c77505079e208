#include "imp/xcp_router/admin_api.h"

#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>
#include <imp/core/response_shape.h>
#include <Poco/JSON/Object.h>

#include <ostream>

#include "imp/xcp_router/service.h"
#include "shared_fields.h"

namespace imp::xcp {

using core::AdminError;
using core::AdminResponse;
using core::Arg;
using core::Command;
using core::CommandArgs;
using core::Field;
using core::Reply;
using Obj = Poco::JSON::Object;

namespace {

AdminError notRunning() {
  return AdminError(503, "service_not_running",
                    "xcp-connection-manager is not running on this node: it has no client sessions to show");
}

// ---- the answers' fields, each named once (response shapes, issue 15) ----

struct SessionShape : core::Shape {
  SessionShape() : Shape("XmppSession", Layout::Table) {}
  const Field<std::string> userid = same(detail::sharedFields().userid).column("USER");
  const Field<std::string> jid = same(detail::sharedFields().jid).column("JID");
  const Field<std::string> client = text("client").column("CLIENT").orElse("-");
  const Field<std::string> address = text("address").column("ADDRESS");
  const Field<std::string> tls = text("tls").column("TLS").orElse("-");
  const Field<std::string> since = text("since").column("SINCE");
};

struct SessionsShape : core::Shape {
  SessionsShape() : Shape("XmppSessions", Layout::Lines) {}
  const core::ListField sessions = list("sessions", core::shape<SessionShape>());
};

// session kick: "2 session(s) of ann closed".
struct KickedShape : core::Shape {
  KickedShape() : Shape("XmppSessionsClosed", Layout::Lines) {}
  const Field<std::string> userid = same(core::shape<SessionShape>().userid);
  const Field<std::int64_t> closed = number("closed");
};

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
              .returns(core::shape<SessionsShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& list = core::shape<SessionsShape>().sessions;
                list.print(out, o);
                out << list.get(o).size() << " session(s)\n";
              })
              .handler<XcpRuntime>([](XcpRuntime& rt, const CommandArgs& a) {
                auto list = rt.sessions(a.str("user").value_or(""));
                if (!list) throw notRunning();
                const auto& sh = core::shape<SessionShape>();
                std::vector<Reply> rows;
                for (const auto& x : *list) {
                  Reply r(sh);
                  r.set(sh.userid, x.userid).set(sh.jid, x.jid).set(sh.client, x.client).set(sh.address, x.remote);
                  r.set(sh.tls, x.tlsVersion).set(sh.since, x.since);
                  rows.push_back(std::move(r));
                }
                return Reply(core::shape<SessionsShape>()).set(core::shape<SessionsShape>().sessions, rows).response();
              }));

  reg.add(Command("session kick", "POST", "/api/v1/xmpp/sessions/{userid}/kick")
              .arg(Arg::string("userid").inPath().positional("USERID").help("the user's id"))
              .help("End every XMPP session of a user on this node.")
              .describe("Each of the user's streams is closed with the policy-violation stream error and the text\n"
                        "\"the administrator ended this session\". The user may log in again.")
              .example("session kick ann", "ends ann's sessions")
              .returns(core::shape<KickedShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& k = core::shape<KickedShape>();
                out << k.closed.text(o) << " session(s) of " << k.userid.text(o) << " closed\n";
              })
              .handler<XcpRuntime>([](XcpRuntime& rt, const CommandArgs& a) {
                const auto& id = a.at("userid");
                auto n = rt.kick(id);
                if (!n) throw notRunning();
                const auto& k = core::shape<KickedShape>();
                return Reply(k).set(k.userid, id).set(k.closed, static_cast<std::int64_t>(*n)).response();
              }));
}

}  // namespace imp::xcp
