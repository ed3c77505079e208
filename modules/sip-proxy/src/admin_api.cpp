#include "imp/sip_proxy/admin_api.h"

#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>
#include <imp/directory/directory.h>

#include <Poco/JSON/Object.h>

#include <limits>
#include <ostream>

#include "imp/sip_proxy/config_store.h"
#include "imp/sip_proxy/proxy_service.h"
#include "imp/sip_proxy/routing.h"

namespace imp::sip_proxy {

using core::AdminError;
using core::AdminRequest;
using core::AdminResponse;
using Obj = Poco::JSON::Object;
using Arr = Poco::JSON::Array;
using core::Arg;
using core::Command;
using core::CommandArgs;
using core::Field;
using core::ListField;
using core::Reply;

namespace {

// ---- the answers' fields, each named once (response shapes) ----

// The federation settings (FED-4..6), as "label:  value" lines.
struct FederationShape : core::Shape {
  explicit FederationShape(std::string name) : Shape(std::move(name), Layout::Lines, true) {}
  const Field<bool> enabled = flag("enabled").line("partitioned intradomain federation").shows("enabled", "disabled");
  const Field<std::string> routingMode = text("routing_mode").line("routing mode");
  const Field<bool> emailForInterdomain =
      flag("email_for_interdomain").line("email address for inter-domain federation").shows("on", "off");
};

struct ChangeShape : core::Shape {
  ChangeShape() : Shape("FederationChange", Layout::Lines) {}
  const Field<std::string> at = text("at");
  const Field<std::string> what = text("what");
};

struct FederationShowShape : FederationShape {
  FederationShowShape() : FederationShape("Federation") {}
  const Field<std::string> changedAt = text("changed_at");
  const ListField recentChanges = list("recent_changes", core::shape<ChangeShape>());
};

struct ListenerShape : core::Shape {
  ListenerShape() : Shape("Listener", Layout::Table) {}
  const Field<std::string> name = text("name").column("NAME");
  const Field<std::string> transport = text("transport").column("TRANSPORT");
  const Field<std::string> auth = text("auth").column("AUTH");
  const Field<bool> enabled = same(core::shape<FederationShowShape>().enabled).column("ENABLED").shows("yes", "no");
  const Field<std::int64_t> port = number("port").column("PORT");
  const Field<std::int64_t> defaultPort = number("default_port").column("DEFAULT");
  const Field<std::string> displayName = text("display_name").column("DISPLAY NAME");
};

struct ListenersShape : core::Shape {
  ListenersShape() : Shape("Listeners", Layout::Lines) {}
  const ListField listeners = list("listeners", core::shape<ListenerShape>());
};

struct TlsContextShape : core::Shape {
  TlsContextShape() : Shape("TlsContext", Layout::Table) {}
  const Field<std::string> name = same(core::shape<ListenerShape>().name).column("NAME");
  const Field<std::string> minVersion = text("min_version").column("MIN");
  const Field<std::string> maxVersion = text("max_version").column("MAX");
  const Field<bool> disableEmptyFragments =
      flag("disable_empty_fragments").column("DISABLE EMPTY FRAGMENTS").shows("yes", "no");
  const Field<std::vector<std::string>> peerSubjects = texts("peer_subjects").column("PEER SUBJECTS");
  const Field<std::string> ciphers = text("ciphers").column("CIPHERS");
  const Field<std::string> displayName = same(core::shape<ListenerShape>().displayName).column("DISPLAY NAME");
  // tls context set: what the administrator must read.
  const Field<std::vector<std::string>> warnings = texts("warnings").optional();
};

struct TlsContextsShape : core::Shape {
  TlsContextsShape() : Shape("TlsContexts", Layout::Lines) {}
  const ListField contexts = list("contexts", core::shape<TlsContextShape>());
};

struct FederationChangeShape : FederationShape {
  FederationChangeShape() : FederationShape("FederationUpdate") {}
  const Field<bool> changed = flag("changed");
  const Field<std::vector<std::string>> warnings = same(core::shape<TlsContextShape>().warnings);
  const Field<std::string> applied = text("applied");
};

struct PeerSubjectShape : core::Shape {
  PeerSubjectShape() : Shape("PeerSubject", Layout::Table) {}
  const Field<std::string> subjectCn = text("subject_cn").column("SUBJECT CN");
  const Field<std::vector<std::string>> usedBy = texts("used_by").column("USED BY");
  const Field<std::string> description = text("description").column("DESCRIPTION");
};

struct PeerSubjectsShape : core::Shape {
  PeerSubjectsShape() : Shape("PeerSubjects", Layout::Lines) {}
  const ListField peerSubjects = list(core::shape<TlsContextShape>().peerSubjects.name(), core::shape<PeerSubjectShape>());
};

struct AclShape : core::Shape {
  AclShape() : Shape("AclEntry", Layout::Table) {}
  const Field<std::string> pattern = text("pattern").column("PATTERN");
  const Field<std::string> kind = text("kind").column("KIND");
  const Field<std::string> description = same(core::shape<PeerSubjectShape>().description).column("DESCRIPTION");
};

struct AclListShape : core::Shape {
  AclListShape() : Shape("Acl", Layout::Lines) {}
  const ListField acl = list("acl", core::shape<AclShape>());
};

struct RouteShape : core::Shape {
  RouteShape() : Shape("StaticRoute", Layout::Table) {}
  const Field<std::int64_t> id = number("id").column("ID");
  const Field<std::string> pattern = same(core::shape<AclShape>().pattern).column("PATTERN");
  const Field<std::string> routeType = text("route_type").column("TYPE");
  const Field<std::string> nextHop = text("next_hop").column("NEXT HOP");
  const Field<std::int64_t> port = same(core::shape<ListenerShape>().port).column("PORT");
  const Field<std::string> transport = same(core::shape<ListenerShape>().transport).column("TRANSPORT");
  const Field<std::int64_t> priority = number("priority").column("PRIORITY");
  const Field<std::int64_t> weight = number("weight").column("WEIGHT");
};

struct RoutesShape : core::Shape {
  RoutesShape() : Shape("StaticRoutes", Layout::Lines) {}
  const ListField routes = list("routes", core::shape<RouteShape>());
};

// The routing decision for a recipient (FED-6, RT-9).
struct DecisionShape : core::Shape {
  DecisionShape() : Shape("RoutingDecision", Layout::Lines) {}
  const Field<std::string> recipient = text("recipient");
  const Field<std::string> decision = text("decision");
  const Field<std::string> homeNode = text("home_node").optional();  // local_user
  const Field<std::int64_t> status = number("status").optional();    // reject
  const Field<std::string> pattern = same(core::shape<AclShape>().pattern).optional();
  const ListField routes = same(core::shape<RoutesShape>().routes);
  const Field<std::string> reason = text("reason");
};

struct DeletedRouteShape : core::Shape {
  DeletedRouteShape() : Shape("DeletedRoute", Layout::Lines) {}
  const Field<std::int64_t> deleted = number(core::shape<core::DeletedShape>().deleted.name());
};

struct BanShape : core::Shape {
  BanShape() : Shape("Ban", Layout::Table) {}
  const Field<std::string> address = text("address").column("ADDRESS");
  const Field<std::int64_t> expiresIn = number("expires_in_s").column("EXPIRES IN").duration();
  const Field<std::int64_t> refused = number("refused").column("REFUSED");
};

struct BansShape : core::Shape {
  BansShape() : Shape("Bans", Layout::Lines) {}
  const ListField bans = list("bans", core::shape<BanShape>()).ifEmpty("no address is banned");
};

struct ClearedShape : core::Shape {
  ClearedShape() : Shape("BansLifted", Layout::Lines) {}
  const Field<std::int64_t> cleared = number("cleared");
};

// proxy stats: one "name: value" line per counter.
struct StatsShape : core::Shape {
  StatsShape() : Shape("ProxyStats", Layout::Lines) {}
  const Field<std::int64_t> requests = number("requests").line();
  const Field<std::int64_t> forwarded = number("forwarded").line();
  const Field<std::int64_t> failovers = number("failovers").line();
  const Field<std::int64_t> aclRefused = number("acl_refused").line();
  const Field<std::int64_t> loops = number("loops").line();
  const Field<std::int64_t> statelessForwards = number("stateless_forwards").line();
  const Field<std::int64_t> floodRefused = number("flood_refused").line();
  const Field<std::int64_t> overloaded = number("overloaded").line();
  const Field<std::int64_t> directoryLookups = number("directory_lookups").line();
  const Field<std::int64_t> directoryCacheHits = number("directory_cache_hits").line();
  const Field<std::int64_t> rejected = number("rejected").line();
  const Field<std::int64_t> responsesUnsent = number("responses_unsent").line();
  const Field<std::int64_t> parseErrors = number("parse_errors").line();
  const Field<std::int64_t> errorResponsesSent = number("error_responses_sent").line();
  const Field<std::int64_t> errorResponsesUnsent = number("error_responses_unsent").line();
  const Field<std::int64_t> malformedResponsesDropped = number("malformed_responses_dropped").line();
  const Field<std::vector<std::string>> nextHopsDown = texts("next_hops_down").line("next hops down").orElse("none");
};

void setFederation(Reply& r, const FederationShape& s, const FederationSettings& f) {
  r.set(s.enabled, f.enabled).set(s.routingMode, std::string(nameOf(f.routingMode)));
  r.set(s.emailForInterdomain, f.emailForInterdomain);
}

Reply listenerReply(const Listener& l) {
  const auto& s = core::shape<ListenerShape>();
  const auto* info = findListener(l.name);
  Reply r(s);
  r.set(s.name, l.name).set(s.displayName, info ? std::string(info->displayName) : l.name);
  r.set(s.transport, info ? std::string(info->transport) : "").set(s.auth, info ? std::string(info->auth) : "");
  r.set(s.enabled, l.enabled).set(s.port, l.port).set(s.defaultPort, info ? info->defaultPort : 0);
  return r;
}

Reply peerSubjectReply(const PeerSubject& p) {
  const auto& s = core::shape<PeerSubjectShape>();
  Reply r(s);
  r.set(s.subjectCn, p.subjectCn).set(s.description, p.description).set(s.usedBy, p.usedBy);
  return r;
}

Reply contextReply(const TlsContext& c) {
  const auto& s = core::shape<TlsContextShape>();
  Reply r(s);
  r.set(s.name, c.name).set(s.displayName, c.displayName).set(s.ciphers, c.ciphers);
  r.set(s.minVersion, std::string(nameOf(c.minVersion))).set(s.maxVersion, std::string(nameOf(c.maxVersion)));
  r.set(s.disableEmptyFragments, c.disableEmptyFragments).set(s.peerSubjects, c.peerSubjects);
  return r;
}

Reply aclReply(const AclEntry& e) {
  const auto& s = core::shape<AclShape>();
  Reply r(s);
  r.set(s.pattern, e.pattern).set(s.kind, std::string(nameOf(e.kind))).set(s.description, e.description);
  return r;
}

Reply routeReply(const StaticRoute& rt) {
  const auto& s = core::shape<RouteShape>();
  Reply r(s);
  r.set(s.id, rt.id).set(s.pattern, rt.pattern).set(s.routeType, std::string(nameOf(rt.type))).set(s.nextHop, rt.nextHop);
  r.set(s.port, rt.port).set(s.transport, std::string(nameOf(rt.transport))).set(s.priority, rt.priority);
  r.set(s.weight, rt.weight);
  return r;
}

Reply deleted(const std::string& what) { return std::move(Reply(core::shape<core::DeletedShape>()).set(core::shape<core::DeletedShape>().deleted, what)); }

AdminError notRunning() {
  return AdminError(503, "service_not_running",
                    "the sip-proxy service is not running on this node (impctl service start sip-proxy)");
}

Reply bansReply(const std::vector<Ban>& bans) {
  auto now = std::chrono::steady_clock::now();
  const auto& b = core::shape<BanShape>();
  std::vector<Reply> list;
  for (const auto& ban : bans) {
    Reply r(b);
    r.set(b.address, ban.address);
    r.set(b.expiresIn, static_cast<std::int64_t>(std::chrono::ceil<std::chrono::seconds>(ban.until - now).count()));
    r.set(b.refused, ban.refused);
    list.push_back(r);
  }
  return std::move(Reply(core::shape<BansShape>()).set(core::shape<BansShape>().bans, list));
}

Reply cleared(std::size_t n) { return std::move(Reply(core::shape<ClearedShape>()).set(core::shape<ClearedShape>().cleared, static_cast<std::uint64_t>(n))); }

// ---- impctl's text output, read through the shapes' field handles ----

void printWarnings(std::ostream& out, const Field<std::vector<std::string>>& warnings, const Obj::Ptr& o) {
  if (!warnings.has(o)) return;
  for (const auto& w : warnings.get(o)) out << "WARNING: " << w << "\n";
}

void printFederationChange(std::ostream& out, const Obj::Ptr& o, int) {
  const auto& s = core::shape<FederationChangeShape>();
  printWarnings(out, s.warnings, o);
  s.lines(out, o);
  out << "applied: " << s.applied.text(o) << "\n";
}

// "deleted static route 3"
core::CommandPrinter printDeleted(std::string what, const core::FieldBase& field) {
  return [what, &field](std::ostream& out, const Obj::Ptr& o, int) { out << "deleted " << what << " " << field.text(o) << "\n"; };
}

}  // namespace

void registerCommands(core::CommandRegistry& reg) {
  // ---- federation (FED-4, FED-5, FED-6): three commands, one route ----
  const auto enabled = Arg::boolean("enabled");
  const auto routingMode = Arg::enumeration("routing_mode", {"basic", "advanced"})
                               .label("routing mode")
                               .option("routing-mode", "basic|advanced")
                               .help("basic, or advanced (single cluster only; needs users' Microsoft SIP URIs)");
  const char* federationText =
      "Partitioned intradomain federation, cluster-wide. Enabling prints the warning the administrator must read. "
      "Advanced mode is refused while inter-cluster peers exist; federation and \"email address for inter-domain "
      "federation\" exclude each other (FED-5).";

  reg.add(Command("federation show", "GET", "/api/v1/federation")
              .help("Partitioned intradomain federation settings and their recent changes.")
              .describe(federationText)
              .returns(core::shape<FederationShowShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& s = core::shape<FederationShowShape>();
                const auto& c = core::shape<ChangeShape>();
                s.lines(out, o);
                auto changes = s.recentChanges.get(o);
                if (changes.empty()) out << "last change:                                never (defaults)\n";
                for (std::size_t i = 0; i < changes.size(); ++i)
                  out << (i == 0 ? "last change:                                "
                                 : "                                            ")
                      << c.at.text(changes[i]) << "  " << c.what.text(changes[i]) << "\n";
              })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs&) {
                auto st = store.federation();
                const auto& s = core::shape<FederationShowShape>();
                const auto& c = core::shape<ChangeShape>();
                Reply r(s);
                setFederation(r, s, st.settings);
                std::vector<Reply> changes;
                for (const auto& x : st.recent) changes.push_back(std::move(Reply(c).set(c.at, x.at).set(c.what, x.what)));
                r.set(s.changedAt, st.changedAt).set(s.recentChanges, changes);
                return r.response();
              }));
  reg.add(Command("federation enable", "PUT", "/api/v1/federation")
              .fixed(enabled, true)
              .arg(routingMode)
              .help("Enable partitioned intradomain federation (prints the warning to read).")
              .returns(core::shape<FederationChangeShape>())
              .print(printFederationChange));
  reg.add(Command("federation disable", "PUT", "/api/v1/federation")
              .fixed(enabled, false)
              .arg(routingMode)
              .help("Disable partitioned intradomain federation.")
              .returns(core::shape<FederationChangeShape>())
              .print(printFederationChange));
  reg.add(Command("federation set", "PUT", "/api/v1/federation")
              .arg(routingMode)
              .arg(Arg::boolean("email_for_interdomain")
                       .option("email-for-interdomain", "on|off")
                       .help("email address for inter-domain federation (FED-5)"))
              .needsOneOption()
              .help("Change the routing mode or the email address for inter-domain federation.")
              .describe(federationText)
              .example("federation set --routing-mode advanced", "route on users' Microsoft SIP URIs")
              .returns(core::shape<FederationChangeShape>())
              .print(printFederationChange)
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                FederationUpdate u;
                u.enabled = a.boolean("enabled");
                u.emailForInterdomain = a.boolean("email_for_interdomain");
                if (auto m = a.str("routing_mode")) u.routingMode = parseRoutingMode(*m);
                auto res = store.updateFederation(u);
                const auto& s = core::shape<FederationChangeShape>();
                Reply r(s);
                setFederation(r, s, res.settings);
                r.set(s.changed, res.changed).set(s.warnings, res.warnings);
                r.set(s.applied, res.changed ? "live on every node (settings generation " + std::to_string(res.generation) +
                                                   "); no restart is needed"
                                             : "nothing changed");
                return r.response();
              }));

  const auto port = Arg::integer("port", 1, 65535).label("port");
  const char* liveText =
      "Changes apply live on every node running sip-proxy within [services] settings_poll_ms of impd.conf(5): "
      "listeners are opened, closed or rebound (connections already open stay), TLS contexts rebuilt; no service "
      "restarts. A node whose [sip-proxy] section overrides a listener port keeps its own port.";

  // ---- application listeners (TLS-1) ----
  reg.add(Command("listener list", "GET", "/api/v1/listeners")
              .help("Application listeners: transport, authentication, enabled, port.")
              .returns(core::shape<ListenersShape>())
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs&) {
                std::vector<Reply> list;
                for (const auto& l : store.listeners()) list.push_back(listenerReply(l));
                return Reply(core::shape<ListenersShape>()).set(core::shape<ListenersShape>().listeners, list).response();
              }));
  reg.add(Command("listener set", "PUT", "/api/v1/listeners/{name}")
              .arg(Arg::string("name").inPath().positional("tcp|tls-server-auth|tls-peer-auth|udp").help("the listener"))
              .arg(port.option("port", "P").help("a port 1..65535"))
              .flag("enable", enabled, true, "enable the listener")
              .flag("disable", enabled, false, "disable the listener")
              .needsOneOption()
              .help("Change an application listener's port or switch it on or off.")
              .describe(
                  "Defaults: TCP 5060, TLS 5061 and 5062, UDP 5060. Conflicting ports are refused (UDP may share a "
                  "port number with TCP). The UDP listener (\"Default Cisco SIP Proxy UDP Listener\") is disabled by "
                  "default, since Lync and OCS do not use UDP; enable it for standard SIMPLE peers. Requests over UDP "
                  "are answered from the listening socket to their source address and port (RFC 3581 rport); a "
                  "request over 1300 bytes forwarded to a UDP next hop goes over TCP instead (RFC 3261 18.1.1), back "
                  "to UDP if the next hop refuses TCP.\n"
                  "\n" +
                  std::string(liveText))
              .example("listener set udp --port 5060 --enable", "accept SIP over UDP")
              .returns(core::shape<ListenerShape>())
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                return listenerReply(store.setListener(a.at("name"), a.integer("port"), a.boolean("enabled"))).response();
              }));

  // ---- TLS peer subjects and contexts (TLS-2, TLS-3) ----
  const auto description = Arg::string("description").option("description", "TEXT").help("a description");
  reg.add(Command("tls peer-subject add", "POST", "/api/v1/tls/peer-subjects")
              .arg(Arg::string("subject_cn").required().positional("CN").help("a certificate subject CN (no wildcard)"))
              .arg(description)
              .help("Accept a certificate subject CN on the peer-authentication listener.")
              .returns(core::shape<PeerSubjectShape>())
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                auto p = store.addPeerSubject(a.at("subject_cn"), a.str("description").value_or(""));
                return peerSubjectReply(p).response(201);
              }));
  reg.add(Command("tls peer-subject list", "GET", "/api/v1/tls/peer-subjects")
              .help("TLS peer subjects and the contexts that select them.")
              .returns(core::shape<PeerSubjectsShape>())
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs&) {
                std::vector<Reply> list;
                for (const auto& p : store.peerSubjects()) list.push_back(peerSubjectReply(p));
                return Reply(core::shape<PeerSubjectsShape>()).set(core::shape<PeerSubjectsShape>().peerSubjects, list).response();
              }));
  reg.add(Command("tls peer-subject delete", "DELETE", "/api/v1/tls/peer-subjects/{cn}")
              .arg(Arg::string("cn").inPath().positional("CN").help("the subject CN"))
              .help("Remove a TLS peer subject (refused while a context selects it).")
              .returns(core::shape<core::DeletedShape>())
              .print(printDeleted("TLS peer subject", core::shape<core::DeletedShape>().deleted))
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                const auto& cn = a.at("cn");
                if (!store.deletePeerSubject(cn)) throw AdminError(404, "unknown_peer_subject", "no TLS peer subject '" + cn + "'");
                return deleted(lower(cn)).response();
              }));
  reg.add(Command("tls context list", "GET", "/api/v1/tls/contexts")
              .help("TLS contexts: versions, empty fragments, peer subjects, ciphers.")
              .returns(core::shape<TlsContextsShape>())
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs&) {
                std::vector<Reply> list;
                for (const auto& c : store.tlsContexts()) list.push_back(contextReply(c));
                return Reply(core::shape<TlsContextsShape>()).set(core::shape<TlsContextsShape>().contexts, list).response();
              }));
  const auto version = [](const char* field) {
    return Arg::enumeration(field, {"1.0", "1.1", "1.2", "1.3"}).invalid("is not a TLS version; use 1.0, 1.1, 1.2 or 1.3");
  };
  const auto disableEmptyFragments = Arg::boolean("disable_empty_fragments");
  const auto peerSubjects = Arg::strings("peer_subjects").invalid("must be a list of subject CNs");
  reg.add(Command("tls context set", "PUT", "/api/v1/tls/contexts/{name}")
              .arg(Arg::string("name").inPath().positional("NAME").help("the TLS context (see tls context list)"))
              .arg(Arg::string("ciphers").option("ciphers", "LIST").help(
                  "OpenSSL cipher list (TLS_* names are TLS 1.3 suites), checked with OpenSSL"))
              .arg(version("min_version").option("min-version", "V").help("lowest TLS version: 1.0, 1.1, 1.2 or 1.3"))
              .arg(version("max_version").option("max-version", "V").help("highest TLS version"))
              .flag("disable-empty-fragments", disableEmptyFragments, true, "disable empty TLS fragments")
              .flag("enable-empty-fragments", disableEmptyFragments, false, "allow empty TLS fragments")
              .arg(peerSubjects.option("peer-subject", "CN").help("a selected peer subject (repeatable)"))
              .flag("clear-peer-subjects", peerSubjects, std::vector<std::string>{}, "select no peer subject")
              .needsOneOption()
              .help("Change a TLS context.")
              .describe("TLS 1.0 and 1.1 are for OCS 2007 R2 only.\n\n" + std::string(liveText))
              .example("tls context set peer-auth --peer-subject lync.example.com", "accept the Lync pool's certificate")
              .returns(core::shape<TlsContextShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                printWarnings(out, core::shape<TlsContextShape>().warnings, o);
                core::shape<TlsContextShape>().table(out, {o});
              })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                TlsContextUpdate u;
                u.ciphers = a.str("ciphers");
                if (auto v = a.str("min_version")) u.minVersion = parseTlsVersion(*v);
                if (auto v = a.str("max_version")) u.maxVersion = parseTlsVersion(*v);
                u.disableEmptyFragments = a.boolean("disable_empty_fragments");
                u.peerSubjects = a.strings("peer_subjects");
                std::vector<std::string> warnings;
                auto c = store.updateTlsContext(a.at("name"), u, &warnings);
                return contextReply(c).set(core::shape<TlsContextShape>().warnings, warnings).response();
              }));

  // ---- incoming ACL (RT-7) ----
  reg.add(Command("acl add", "POST", "/api/v1/acl")
              .arg(Arg::string("pattern").required().positional("all|IP|DOMAIN").help(
                  "all, an IP address, or a DNS domain / FQDN"))
              .arg(description)
              .help("Accept SIP requests from these sources (incoming ACL).")
              .example("acl add 10.0.0.5 --description \"Lync edge\"", "accept one peer by address")
              .returns(core::shape<AclShape>())
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                auto e = store.addAcl(a.at("pattern"), a.str("description").value_or(""));
                return aclReply(e).response(201);
              }));
  reg.add(Command("acl list", "GET", "/api/v1/acl")
              .help("The incoming ACL.")
              .returns(core::shape<AclListShape>())
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs&) {
                std::vector<Reply> list;
                for (const auto& e : store.acl()) list.push_back(aclReply(e));
                return Reply(core::shape<AclListShape>()).set(core::shape<AclListShape>().acl, list).response();
              }));
  reg.add(Command("acl delete", "DELETE", "/api/v1/acl/{pattern}")
              .arg(Arg::string("pattern").inPath().positional("PATTERN").help("the entry"))
              .help("Remove an incoming ACL entry.")
              .returns(core::shape<core::DeletedShape>())
              .print(printDeleted("incoming ACL entry", core::shape<core::DeletedShape>().deleted))
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                const auto& p = a.at("pattern");
                if (!store.deleteAcl(p)) throw AdminError(404, "unknown_acl_entry", "no incoming ACL entry '" + p + "'");
                return deleted(p).response();
              }));

  // ---- static routes (RT-2, RT-3) ----
  const char* routesText =
      "Patterns are in reversed-domain form with a * wildcard (.com.example.* for example.com); lower priority "
      "first, one priority per pattern; the longest pattern wins.";
  reg.add(Command("route add", "POST", "/api/v1/routes")
              .arg(Arg::string("pattern").required().positional("PATTERN").help("reversed-domain pattern or user"))
              .arg(Arg::enumeration("route_type", {"domain", "user"}).required().label("route type").option("route-type", "domain|user").help(
                  "what the pattern matches"))
              .arg(Arg::string("next_hop").required().option("next-hop", "HOST").help("IP address or FQDN"))
              .arg(port.option("port", "P").help("1..65535 (default 5061 for TLS, else 5060)"))
              .arg(Arg::enumeration("transport", {"TCP", "TLS", "UDP"}).option("transport", "TCP|TLS|UDP").help(
                  "TCP, TLS (default) or UDP"))
              .arg(Arg::integer("priority", 1, 65535).option("priority", "N").help("1 (primary, default) .. 65535"))
              .arg(Arg::integer("weight", 1, 65535).option("weight", "N").help("1 (default) .. 65535"))
              .help("Add a static route.")
              .describe(routesText)
              .example("route add .com.example.* --route-type domain --next-hop lyncpool.example.com",
                       "send example.com to the Lync pool")
              .returns(core::shape<RouteShape>())
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                StaticRoute rt;
                rt.pattern = a.at("pattern");
                rt.type = *parseRouteType(a.at("route_type"));
                rt.nextHop = a.at("next_hop");
                if (auto tr = a.str("transport")) rt.transport = *parseTransport(*tr);
                // Lync speaks TLS on 5061, OCS 2007 R2 also TCP on 5060 (FED-2).
                rt.port = static_cast<int>(a.integer("port").value_or(rt.transport == Transport::Tls ? 5061 : 5060));
                rt.priority = static_cast<int>(a.integer("priority").value_or(1));
                rt.weight = static_cast<int>(a.integer("weight").value_or(1));
                return routeReply(store.addRoute(rt)).response(201);
              }));
  reg.add(Command("route list", "GET", "/api/v1/routes")
              .help("Static routes.")
              .returns(core::shape<RoutesShape>())
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs&) {
                std::vector<Reply> list;
                for (const auto& rt : store.routes()) list.push_back(routeReply(rt));
                return Reply(core::shape<RoutesShape>()).set(core::shape<RoutesShape>().routes, list).response();
              }));
  reg.add(Command("route delete", "DELETE", "/api/v1/routes/{id}")
              .arg(Arg::integer("id", 0, std::numeric_limits<std::int64_t>::max())
                       .inPath()
                       .label("route id")
                       .invalid("is not a number (see impctl route list)")
                       .positional("ID")
                       .help("the route's id (see route list)"))
              .help("Delete a static route.")
              .returns(core::shape<DeletedRouteShape>())
              .print(printDeleted("static route", core::shape<DeletedRouteShape>().deleted))
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                auto id = *a.integer("id");
                if (!store.deleteRoute(id)) throw AdminError(404, "unknown_route", "no static route with id " + std::to_string(id));
                return Reply(core::shape<DeletedRouteShape>()).set(core::shape<DeletedRouteShape>().deleted, id).response();
              }));
  // The routing decision on live data (FED-6, RT-9 diagnostics).
  reg.add(Command("route lookup", "GET", "/api/v1/routing/decision")
              .arg(Arg::string("recipient").inQuery().required().positional("USER@DOMAIN").help("the recipient"))
              .help("Show the routing decision for a recipient.")
              .returns(core::shape<DecisionShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& s = core::shape<DecisionShape>();
                std::string d = s.decision.text(o);
                out << s.recipient.text(o) << ": " << d;
                if (d == "local_user") out << " (home node " << s.homeNode.text(o) << ")";
                if (d == "reject") out << " " << s.status.text(o);
                out << "\n" << s.reason.text(o) << "\n";
                auto routes = s.routes.get(o);
                if (!routes.empty()) core::shape<RouteShape>().table(out, routes);
              })
              .handler<ConfigStore, directory::Directory>(
                  [](ConfigStore& store, directory::Directory& dir, const CommandArgs& a) {
                    const auto& recipient = a.at("recipient");
                    auto lookup = directoryLookup(dir);
                    auto d = decideRoute(recipient, store.federation().settings, *lookup, store.routeTable());
                    const auto& s = core::shape<DecisionShape>();
                    Reply r(s);
                    r.set(s.recipient, recipient).set(s.decision, std::string(nameOf(d.kind)));
                    if (d.kind == RoutingDecision::Kind::LocalUser) r.set(s.homeNode, d.homeNode);
                    if (d.kind == RoutingDecision::Kind::Reject) r.set(s.status, d.status);
                    if (!d.pattern.empty()) r.set(s.pattern, d.pattern);
                    std::vector<Reply> routes;
                    for (const auto& rt : d.routes) routes.push_back(routeReply(rt));
                    r.set(s.routes, routes).set(s.reason, d.reason);
                    return r.response();
                  }));

  // ---- the running proxy on this node (RT-7); 503 service_not_running while stopped ----
  const char* thisNode = "This talks to the node at the admin URL only.";
  reg.add(Command("ban list", "GET", "/api/v1/sip-proxy/bans")
              .help("Addresses the flood limiter has banned on this node, with the time left and the requests refused.")
              .describe(std::string("Sources not listed in the incoming ACL by address that sent more than [sip-proxy] "
                                    "flood_max_requests per window are banned. ") +
                        thisNode)
              .returns(core::shape<BansShape>())
              .handler<ProxyHandle>([](ProxyHandle& proxy, const CommandArgs&) {
                auto bans = proxy.bans();
                if (!bans) throw notRunning();
                return bansReply(*bans).response();
              }));
  auto printCleared = [](std::ostream& out, const Obj::Ptr& o, int) {
    out << "lifted " << core::shape<ClearedShape>().cleared.text(o) << " ban(s)\n";
  };
  reg.add(Command("ban clear", "DELETE", "/api/v1/sip-proxy/bans")
              .help("Lift every flood-limiter ban on this node.")
              .returns(core::shape<ClearedShape>())
              .print(printCleared)
              .handler<ProxyHandle>([](ProxyHandle& proxy, const CommandArgs&) {
                auto n = proxy.clearBans("");
                if (!n) throw notRunning();
                return cleared(*n).response();
              }));
  reg.add(Command("ban clear", "DELETE", "/api/v1/sip-proxy/bans/{address}")
              .arg(Arg::string("address").inPath().positional("IP").help("the banned address"))
              .help("Lift the flood-limiter ban of one address on this node.")
              .returns(core::shape<ClearedShape>())
              .print(printCleared)
              .handler<ProxyHandle>([](ProxyHandle& proxy, const CommandArgs& a) {
                const auto& given = a.at("address");
                auto ip = canonicalIp(given);
                if (!ip) throw AdminError(400, "invalid_address", "'" + given + "' is not an IP address");
                auto n = proxy.clearBans(*ip);
                if (!n) throw notRunning();
                if (*n == 0) throw AdminError(404, "not_banned", *ip + " is not banned");
                return cleared(*n).response();
              }));
  reg.add(Command("proxy stats", "GET", "/api/v1/sip-proxy/stats")
              .help("SIP proxy counters on this node and the next hops currently marked down.")
              .describe(
                  "Requests received, forwarded, failed over, refused by the ACL or the flood limiter, loops answered "
                  "482, refused with 503 because directory lookups queued up (overloaded), routing decisions that "
                  "asked the directory and those answered from the recipient cache (kept until the next settings "
                  "generation). " +
                  std::string(thisNode))
              .returns(core::shape<StatsShape>())
              .handler<ProxyHandle>([](ProxyHandle& proxy, const CommandArgs&) {
                auto st = proxy.stats();
                auto down = proxy.downHops();
                if (!st || !down) throw notRunning();
                const auto& s = core::shape<StatsShape>();
                Reply r(s);
                r.set(s.requests, st->requests).set(s.forwarded, st->forwarded).set(s.failovers, st->failovers);
                r.set(s.aclRefused, st->aclRefused).set(s.loops, st->loops).set(s.statelessForwards, st->statelessForwards);
                r.set(s.floodRefused, st->floodRefused).set(s.overloaded, st->overloaded);
                r.set(s.directoryLookups, st->directoryLookups).set(s.directoryCacheHits, st->directoryCacheHits);
                r.set(s.rejected, st->rejected).set(s.responsesUnsent, st->responsesUnsent).set(s.parseErrors, st->parseErrors);
                r.set(s.errorResponsesSent, st->errorResponsesSent).set(s.errorResponsesUnsent, st->errorResponsesUnsent);
                r.set(s.malformedResponsesDropped, st->malformedResponsesDropped).set(s.nextHopsDown, *down);
                return r.response();
              }));
}

}  // namespace imp::sip_proxy
