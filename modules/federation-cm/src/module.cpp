// The federation-cm module's registration (module.h): the service, its
// impd.conf section and the commands `impctl federation sessions` and
// `impctl federation subscriptions` (issue 17, deliverable 8).
#include "imp/federation_cm/module.h"

#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>
#include <imp/core/module_registry.h>
#include <imp/core/response_shape.h>
#include <Poco/JSON/Object.h>

#include <ostream>
#include <stdexcept>

#include "imp/federation_cm/peer_store.h"
#include "imp/federation_cm/service.h"

namespace imp::fcm {

using core::AdminError;
using core::Arg;
using core::Command;
using core::CommandArgs;
using core::Field;
using core::Reply;
using Obj = Poco::JSON::Object;

namespace {

AdminError notRunning() {
  return AdminError(503, "service_not_running",
                    "federation-cm is not running on this node (impctl service activate federation-cm)");
}

struct SubscriptionShape : core::Shape {
  SubscriptionShape() : Shape("FederatedSubscription", Layout::Table) {}
  const Field<std::string> direction = text("direction").column("DIRECTION");
  const Field<std::string> native = text("native_user").column("NATIVE USER");
  const Field<std::string> microsoft = text("microsoft_user").column("MICROSOFT USER");
  const Field<std::string> state = text("state").column("STATE");
  const Field<std::int64_t> expires = number("expires_in").column("EXPIRES IN");
  const Field<std::string> peer = text("peer").column("PEER").orElse("-");
};
struct SubscriptionsShape : core::Shape {
  SubscriptionsShape() : Shape("FederatedSubscriptions", Layout::Lines) {}
  const core::ListField subscriptions = list("subscriptions", core::shape<SubscriptionShape>());
};

struct ImSessionShape : core::Shape {
  ImSessionShape() : Shape("FederatedImSession", Layout::Table) {}
  const Field<std::string> native = same(core::shape<SubscriptionShape>().native).column("NATIVE USER");
  const Field<std::string> microsoft = same(core::shape<SubscriptionShape>().microsoft).column("MICROSOFT USER");
  const Field<std::string> state = same(core::shape<SubscriptionShape>().state).column("STATE");
  const Field<std::string> started = text("started_by").column("STARTED BY");
  const Field<std::int64_t> idle = number("idle_seconds").column("IDLE S");
  const Field<std::int64_t> out = number("messages_out").column("OUT");
  const Field<std::int64_t> in = number("messages_in").column("IN");
  const Field<std::string> conversation = text("conversation_id").column("MS-CONVERSATION-ID").orElse("-");
};
struct ImSessionsShape : core::Shape {
  ImSessionsShape() : Shape("FederatedImSessions", Layout::Lines) {}
  const core::ListField sessions = list("sessions", core::shape<ImSessionShape>());
};

struct PeerShape : core::Shape {
  PeerShape() : Shape("FederatedDomainPeer", Layout::Table) {}
  const Field<std::string> domain = text("domain").column("DOMAIN");
  const Field<std::string> type = text("peer_type").column("PEER TYPE");
};
struct PeersShape : core::Shape {
  PeersShape() : Shape("FederatedDomainPeers", Layout::Lines) {}
  const core::ListField peers = list("peers", core::shape<PeerShape>());
};
struct PeerChangeShape : core::Shape {
  PeerChangeShape() : Shape("FederatedDomainPeerChange", Layout::Lines) {}
  const Field<std::string> domain = same(core::shape<PeerShape>().domain);
  const Field<std::string> type = same(core::shape<PeerShape>().type);
  const Field<std::string> result = text("result");
};

// `peer set` and `peer delete` answer the same change.
void printPeerChange(std::ostream& out, const Obj::Ptr& o, int) {
  const auto& c = core::shape<PeerChangeShape>();
  out << c.domain.text(o) << ": peer type " << c.type.text(o) << " (" << c.result.text(o) << ")\n";
}

AdminError badDomain(const std::string& d) {
  return AdminError(400, "invalid_domain", "'" + d + "' is not a domain name");
}

void registerPeerCommands(core::CommandRegistry& reg) {
  const char* text =
      "The kind of SIP system serving the other part of a federated presence domain. lync (the default for a "
      "domain not listed): Microsoft Lync / OCS, IM in session mode (one INVITE dialog per pair of users, MESSAGE "
      "and KeyboardActivity INFO in it). simple: a standard SIMPLE presence server such as Kamailio, IM as "
      "page-mode MESSAGE (RFC 3428) and typing as isComposing (RFC 3994). Availability is SUBSCRIBE/NOTIFY with "
      "PIDF for both. Applied live.";
  reg.add(Command("federation peer list", "GET", "/api/v1/federation/peers")
              .help("List the federated domains whose peer is not Lync/OCS.")
              .describe(text)
              .returns(core::shape<PeersShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& list = core::shape<PeersShape>().peers;
                list.print(out, o);
                out << list.get(o).size() << " domain(s) with a peer type of their own; any other: lync\n";
              })
              .handler<PeerStore>([](PeerStore& store, const CommandArgs&) {
                const auto& sh = core::shape<PeerShape>();
                std::vector<Reply> rows;
                for (const auto& [d, t] : store.all()) {
                  Reply r(sh);
                  r.set(sh.domain, d).set(sh.type, std::string(nameOf(t)));
                  rows.push_back(std::move(r));
                }
                const auto& all = core::shape<PeersShape>();
                return Reply(all).set(all.peers, rows).response();
              }));
  reg.add(Command("federation peer set", "PUT", "/api/v1/federation/peers/{domain}")
              .arg(Arg::string("domain").inPath().positional("DOMAIN").help("the federated presence domain"))
              .arg(Arg::enumeration("peer_type", {"lync", "simple"})
                       .label("peer type")
                       .required()
                       .option("type", "lync|simple")
                       .help("lync (session-mode IM) or simple (page-mode MESSAGE, isComposing)"))
              .help("Set the kind of SIP peer of a federated domain.")
              .describe(text)
              .example("federation peer set simple.example --type simple", "a Kamailio-based system serves simple.example")
              .returns(core::shape<PeerChangeShape>())
              .print(printPeerChange)
              .handler<PeerStore>([](PeerStore& store, const CommandArgs& a) {
                const auto& d = a.at("domain");
                auto type = peerTypeOf(a.at("peer_type"));
                auto norm = normaliseDomain(d);
                if (!norm || !type) throw badDomain(d);
                bool changed = store.set(*norm, *type);
                const auto& c = core::shape<PeerChangeShape>();
                return Reply(c)
                    .set(c.domain, *norm)
                    .set(c.type, std::string(nameOf(*type)))
                    .set(c.result, std::string(changed ? "changed" : "unchanged"))
                    .response();
              }));
  reg.add(Command("federation peer delete", "DELETE", "/api/v1/federation/peers/{domain}")
              .arg(Arg::string("domain").inPath().positional("DOMAIN").help("the federated presence domain"))
              .help("Give a federated domain the default peer type (lync) again.")
              .describe(text)
              .returns(core::shape<PeerChangeShape>())
              .print(printPeerChange)
              .handler<PeerStore>([](PeerStore& store, const CommandArgs& a) {
                const auto& d = a.at("domain");
                auto norm = normaliseDomain(d);
                if (!norm) throw badDomain(d);
                if (!store.remove(*norm))
                  throw AdminError(404, "unknown_domain_peer", "'" + *norm + "' has no peer type of its own (it is lync)");
                const auto& c = core::shape<PeerChangeShape>();
                return Reply(c).set(c.domain, *norm).set(c.type, std::string("lync")).set(c.result, std::string("changed")).response();
              }));
}

void registerCommands(core::CommandRegistry& reg) {
  registerPeerCommands(reg);
  reg.add(Command("federation subscriptions", "GET", "/api/v1/federation/subscriptions")
              .arg(Arg::string("user").inQuery().option("user", "JID").help("only subscriptions of this user (either side)"))
              .help("List the federated availability subscriptions this node holds.")
              .describe("outgoing: a native XMPP user watches a Microsoft user (SUBSCRIBE sent, AV-2);\n"
                        "incoming: a Microsoft user watches a native user (SUBSCRIBE received, AV-1). STATE is\n"
                        "subscribing, pending (the Microsoft user is asked), active, down (the Microsoft side does\n"
                        "not answer: made again when it does) or offline-shown (not approved, or politely\n"
                        "blocked: the watcher sees the user Offline). EXPIRES IN is in seconds; PEER is the\n"
                        "Microsoft side's Contact.")
              .example("federation subscriptions", "every federated subscription on this node")
              .example("federation subscriptions --user ann@example.com", "ann's")
              .returns(core::shape<SubscriptionsShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& list = core::shape<SubscriptionsShape>().subscriptions;
                list.print(out, o);
                out << list.get(o).size() << " subscription(s)\n";
              })
              .handler<FcmRuntime>([](FcmRuntime& rt, const CommandArgs& a) {
                auto g = rt.gateway();
                if (!g) throw notRunning();
                const auto& sh = core::shape<SubscriptionShape>();
                std::vector<Reply> rows;
                for (const auto& s : g->subscriptions(a.str("user").value_or(""))) {
                  Reply r(sh);
                  r.set(sh.direction, s.direction).set(sh.native, s.nativeUser).set(sh.microsoft, s.microsoftUser);
                  r.set(sh.state, s.state).set(sh.expires, s.expiresIn).set(sh.peer, s.peer);
                  rows.push_back(std::move(r));
                }
                const auto& all = core::shape<SubscriptionsShape>();
                return Reply(all).set(all.subscriptions, rows).response();
              }));

  reg.add(Command("federation sessions", "GET", "/api/v1/federation/sessions")
              .help("List the federated IM conversations (session-mode INVITE dialogs, IM-2).")
              .describe("One line per conversation between a native user and a Microsoft user: its state\n"
                        "(inviting, up, closing), which side started it, seconds since its last message (it\n"
                        "ends with BYE after im_idle_timeout_s), messages each way and the Ms-Conversation-ID.")
              .example("federation sessions", "every conversation on this node")
              .returns(core::shape<ImSessionsShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& list = core::shape<ImSessionsShape>().sessions;
                list.print(out, o);
                out << list.get(o).size() << " conversation(s)\n";
              })
              .handler<FcmRuntime>([](FcmRuntime& rt, const CommandArgs&) {
                auto g = rt.gateway();
                if (!g) throw notRunning();
                const auto& sh = core::shape<ImSessionShape>();
                std::vector<Reply> rows;
                for (const auto& s : g->sessions()) {
                  Reply r(sh);
                  r.set(sh.native, s.nativeUser).set(sh.microsoft, s.microsoftUser).set(sh.state, s.state);
                  r.set(sh.started, std::string(s.initiatedHere ? "native" : "microsoft"));
                  r.set(sh.idle, s.idleSeconds).set(sh.out, static_cast<std::int64_t>(s.messagesOut));
                  r.set(sh.in, static_cast<std::int64_t>(s.messagesIn)).set(sh.conversation, s.conversationId);
                  rows.push_back(std::move(r));
                }
                const auto& all = core::shape<ImSessionsShape>();
                return Reply(all).set(all.sessions, rows).response();
              }));
}

}  // namespace

void registerModule(core::ModuleRegistry& registry, std::shared_ptr<xcp::XcpRuntime> xmpp) {
  auto runtime = std::make_shared<FcmRuntime>();
  // Where users are homed: the SIP proxy forwards their federated requests
  // to the node's own federation connection manager.
  registry.addService({"federation-cm",
                       "Cisco XCP SIP Federation Connection Manager",
                       core::ServiceKind::Feature,
                       {"single", "home", "publisher"},
                       {{"translation", "Enable SIP <-> XMPP translation trace (each stanza and SIP message pair)"}},
                       [xmpp, runtime] { return makeService(xmpp, runtime); }});
  registry.addConfig(addOptions, [](const core::Config& cfg) { readOptions(cfg); });
  // MG-3: cluster-wide and live, where impd.conf's recovery_rate is per node
  // and read at start.
  registry.addServiceParam({.service = kSection,
                            .name = kRecoveryRateParam,
                            .defaultValue = GatewayConfig{}.recoveryRate,
                            .min = 1,
                            .max = 100000,
                            .unit = "requests/s",
                            .help = "SUBSCRIBEs and NOTIFYs per second when federated subscriptions are re-established "
                                    "(AV-3); not set: each node's impd.conf [federation-cm] recovery_rate"});
  registry.addCommands([](core::CommandRegistry& r) { registerCommands(r); });
  auto peers = std::make_shared<std::unique_ptr<PeerStore>>();
  registry.addAdminRoutes([runtime, peers](core::AdminRouter&, const core::NodeContext& node) {
    if (!node.commands || !node.database)
      throw std::logic_error("the federation-cm commands need the node's command registry and database");
    *peers = std::make_unique<PeerStore>(*node.database);
    node.commands->provide(*runtime);
    node.commands->provide(**peers);
  });
}

}  // namespace imp::fcm
