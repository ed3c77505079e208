#include "imp/sip_proxy/admin_api.h"

#include <imp/core/admin_http.h>
#include <imp/core/command_registry.h>
#include <imp/directory/directory.h>

#include <Poco/JSON/Array.h>
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
using core::cli::joined;
using core::cli::objects;
using core::cli::str;
using core::cli::table;

namespace {

Arr::Ptr strings(const std::vector<std::string>& v) {
  Arr::Ptr a = new Arr;
  for (const auto& s : v) a->add(s);
  return a;
}

Obj::Ptr federationJson(const FederationSettings& f) {
  Obj::Ptr o = new Obj;
  o->set("enabled", f.enabled);
  o->set("routing_mode", std::string(nameOf(f.routingMode)));
  o->set("email_for_interdomain", f.emailForInterdomain);
  return o;
}

Obj::Ptr listenerJson(const Listener& l) {
  Obj::Ptr o = new Obj;
  const auto* info = findListener(l.name);
  o->set("name", l.name);
  o->set("display_name", info ? std::string(info->displayName) : l.name);
  o->set("transport", info ? std::string(info->transport) : "");
  o->set("auth", info ? std::string(info->auth) : "");
  o->set("enabled", l.enabled);
  o->set("port", l.port);
  o->set("default_port", info ? info->defaultPort : 0);
  return o;
}

Obj::Ptr peerSubjectJson(const PeerSubject& p) {
  Obj::Ptr o = new Obj;
  o->set("subject_cn", p.subjectCn);
  o->set("description", p.description);
  o->set("used_by", strings(p.usedBy));
  return o;
}

Obj::Ptr contextJson(const TlsContext& c) {
  Obj::Ptr o = new Obj;
  o->set("name", c.name);
  o->set("display_name", c.displayName);
  o->set("ciphers", c.ciphers);
  o->set("min_version", std::string(nameOf(c.minVersion)));
  o->set("max_version", std::string(nameOf(c.maxVersion)));
  o->set("disable_empty_fragments", c.disableEmptyFragments);
  o->set("peer_subjects", strings(c.peerSubjects));
  return o;
}

Obj::Ptr aclJson(const AclEntry& e) {
  Obj::Ptr o = new Obj;
  o->set("pattern", e.pattern);
  o->set("kind", std::string(nameOf(e.kind)));
  o->set("description", e.description);
  return o;
}

Obj::Ptr routeJson(const StaticRoute& r) {
  Obj::Ptr o = new Obj;
  o->set("id", r.id);
  o->set("pattern", r.pattern);
  o->set("route_type", std::string(nameOf(r.type)));
  o->set("next_hop", r.nextHop);
  o->set("port", r.port);
  o->set("transport", std::string(nameOf(r.transport)));
  o->set("priority", r.priority);
  o->set("weight", r.weight);
  return o;
}

AdminError notRunning() {
  return AdminError(503, "service_not_running",
                    "the sip-proxy service is not running on this node (impctl service start sip-proxy)");
}

Obj::Ptr bansJson(const std::vector<Ban>& bans) {
  auto now = std::chrono::steady_clock::now();
  Arr::Ptr a = new Arr;
  for (const auto& b : bans) {
    Obj::Ptr o = new Obj;
    o->set("address", b.address);
    o->set("expires_in_s",
           static_cast<std::int64_t>(std::chrono::ceil<std::chrono::seconds>(b.until - now).count()));
    o->set("refused", static_cast<std::uint64_t>(b.refused));
    a->add(o);
  }
  Obj::Ptr o = new Obj;
  o->set("bans", a);
  return o;
}
// ---- impctl's text output ----

bool yes(const Obj::Ptr& o, const std::string& k) { return o->getValue<bool>(k); }

void printWarnings(std::ostream& out, const Obj::Ptr& o) {
  if (!o->has("warnings")) return;
  for (const auto& v : *o->getArray("warnings")) out << "WARNING: " << v.convert<std::string>() << "\n";
}

void printFederation(std::ostream& out, const Obj::Ptr& o) {
  out << "partitioned intradomain federation:         " << (yes(o, "enabled") ? "enabled" : "disabled") << "\n"
      << "routing mode:                               " << str(o, "routing_mode") << "\n"
      << "email address for inter-domain federation:  " << (yes(o, "email_for_interdomain") ? "on" : "off") << "\n";
}

void printFederationChange(std::ostream& out, const Obj::Ptr& o, int) {
  printWarnings(out, o);
  printFederation(out, o);
  out << "applied: " << str(o, "applied") << "\n";
}

void printListeners(std::ostream& out, const std::vector<Obj::Ptr>& ls) {
  std::vector<std::vector<std::string>> rows = {{"NAME", "TRANSPORT", "AUTH", "ENABLED", "PORT", "DEFAULT", "DISPLAY NAME"}};
  for (const auto& l : ls)
    rows.push_back({str(l, "name"), str(l, "transport"), str(l, "auth"), yes(l, "enabled") ? "yes" : "no", str(l, "port"),
                    str(l, "default_port"), str(l, "display_name")});
  table(out, rows);
}

void printPeerSubjects(std::ostream& out, const std::vector<Obj::Ptr>& ps) {
  std::vector<std::vector<std::string>> rows = {{"SUBJECT CN", "USED BY", "DESCRIPTION"}};
  for (const auto& p : ps) rows.push_back({str(p, "subject_cn"), joined(p, "used_by"), str(p, "description")});
  table(out, rows);
}

void printContexts(std::ostream& out, const std::vector<Obj::Ptr>& cs) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "MIN", "MAX", "DISABLE EMPTY FRAGMENTS", "PEER SUBJECTS", "CIPHERS", "DISPLAY NAME"}};
  for (const auto& x : cs)
    rows.push_back({str(x, "name"), str(x, "min_version"), str(x, "max_version"),
                    yes(x, "disable_empty_fragments") ? "yes" : "no", joined(x, "peer_subjects"), str(x, "ciphers"),
                    str(x, "display_name")});
  table(out, rows);
}

void printAcl(std::ostream& out, const std::vector<Obj::Ptr>& es) {
  std::vector<std::vector<std::string>> rows = {{"PATTERN", "KIND", "DESCRIPTION"}};
  for (const auto& e : es) rows.push_back({str(e, "pattern"), str(e, "kind"), str(e, "description")});
  table(out, rows);
}

void printRoutes(std::ostream& out, const std::vector<Obj::Ptr>& rs) {
  std::vector<std::vector<std::string>> rows = {{"ID", "PATTERN", "TYPE", "NEXT HOP", "PORT", "TRANSPORT", "PRIORITY", "WEIGHT"}};
  for (const auto& r : rs)
    rows.push_back({str(r, "id"), str(r, "pattern"), str(r, "route_type"), str(r, "next_hop"), str(r, "port"),
                    str(r, "transport"), str(r, "priority"), str(r, "weight")});
  table(out, rows);
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
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                printFederation(out, o);
                auto changes = objects(o, "recent_changes");
                if (changes.empty()) out << "last change:                                never (defaults)\n";
                for (std::size_t i = 0; i < changes.size(); ++i)
                  out << (i == 0 ? "last change:                                "
                                 : "                                            ")
                      << str(changes[i], "at") << "  " << str(changes[i], "what") << "\n";
              })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs&) {
                auto st = store.federation();
                auto o = federationJson(st.settings);
                o->set("changed_at", st.changedAt);
                Arr::Ptr changes = new Arr;
                for (const auto& c : st.recent) {
                  Obj::Ptr x = new Obj;
                  x->set("at", c.at);
                  x->set("what", c.what);
                  changes->add(x);
                }
                o->set("recent_changes", changes);
                return AdminResponse::json(o);
              }));
  reg.add(Command("federation enable", "PUT", "/api/v1/federation")
              .fixed(enabled, true)
              .arg(routingMode)
              .help("Enable partitioned intradomain federation (prints the warning to read).")
              .print(printFederationChange));
  reg.add(Command("federation disable", "PUT", "/api/v1/federation")
              .fixed(enabled, false)
              .arg(routingMode)
              .help("Disable partitioned intradomain federation.")
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
              .print(printFederationChange)
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                FederationUpdate u;
                u.enabled = a.boolean("enabled");
                u.emailForInterdomain = a.boolean("email_for_interdomain");
                if (auto m = a.str("routing_mode")) u.routingMode = parseRoutingMode(*m);
                auto res = store.updateFederation(u);
                auto o = federationJson(res.settings);
                o->set("changed", res.changed);
                o->set("warnings", strings(res.warnings));
                o->set("applied", res.changed ? "live on every node (settings generation " +
                                                    std::to_string(res.generation) + "); no restart is needed"
                                              : "nothing changed");
                return AdminResponse::json(o);
              }));

  const auto port = Arg::integer("port", 1, 65535).label("port");
  const char* liveText =
      "Changes apply live on every node running sip-proxy within [services] settings_poll_ms of impd.conf(5): "
      "listeners are opened, closed or rebound (connections already open stay), TLS contexts rebuilt; no service "
      "restarts. A node whose [sip-proxy] section overrides a listener port keeps its own port.";

  // ---- application listeners (TLS-1) ----
  reg.add(Command("listener list", "GET", "/api/v1/listeners")
              .help("Application listeners: transport, authentication, enabled, port.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printListeners(out, objects(o, "listeners")); })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs&) {
                Arr::Ptr list = new Arr;
                for (const auto& l : store.listeners()) list->add(listenerJson(l));
                Obj::Ptr o = new Obj;
                o->set("listeners", list);
                return AdminResponse::json(o);
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
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printListeners(out, {o}); })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                return AdminResponse::json(listenerJson(store.setListener(a.at("name"), a.integer("port"), a.boolean("enabled"))));
              }));

  // ---- TLS peer subjects and contexts (TLS-2, TLS-3) ----
  const auto description = Arg::string("description").option("description", "TEXT").help("a description");
  reg.add(Command("tls peer-subject add", "POST", "/api/v1/tls/peer-subjects")
              .arg(Arg::string("subject_cn").required().positional("CN").help("a certificate subject CN (no wildcard)"))
              .arg(description)
              .help("Accept a certificate subject CN on the peer-authentication listener.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printPeerSubjects(out, {o}); })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                auto p = store.addPeerSubject(a.at("subject_cn"), a.str("description").value_or(""));
                return AdminResponse::json(peerSubjectJson(p), 201);
              }));
  reg.add(Command("tls peer-subject list", "GET", "/api/v1/tls/peer-subjects")
              .help("TLS peer subjects and the contexts that select them.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printPeerSubjects(out, objects(o, "peer_subjects")); })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs&) {
                Arr::Ptr list = new Arr;
                for (const auto& p : store.peerSubjects()) list->add(peerSubjectJson(p));
                Obj::Ptr o = new Obj;
                o->set("peer_subjects", list);
                return AdminResponse::json(o);
              }));
  reg.add(Command("tls peer-subject delete", "DELETE", "/api/v1/tls/peer-subjects/{cn}")
              .arg(Arg::string("cn").inPath().positional("CN").help("the subject CN"))
              .help("Remove a TLS peer subject (refused while a context selects it).")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                out << "deleted TLS peer subject " << str(o, "deleted") << "\n";
              })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                const auto& cn = a.at("cn");
                if (!store.deletePeerSubject(cn)) throw AdminError(404, "unknown_peer_subject", "no TLS peer subject '" + cn + "'");
                Obj::Ptr o = new Obj;
                o->set("deleted", lower(cn));
                return AdminResponse::json(o);
              }));
  reg.add(Command("tls context list", "GET", "/api/v1/tls/contexts")
              .help("TLS contexts: versions, empty fragments, peer subjects, ciphers.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printContexts(out, objects(o, "contexts")); })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs&) {
                Arr::Ptr list = new Arr;
                for (const auto& c : store.tlsContexts()) list->add(contextJson(c));
                Obj::Ptr o = new Obj;
                o->set("contexts", list);
                return AdminResponse::json(o);
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
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                printWarnings(out, o);
                printContexts(out, {o});
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
                auto o = contextJson(c);
                o->set("warnings", strings(warnings));
                return AdminResponse::json(o);
              }));

  // ---- incoming ACL (RT-7) ----
  reg.add(Command("acl add", "POST", "/api/v1/acl")
              .arg(Arg::string("pattern").required().positional("all|IP|DOMAIN").help(
                  "all, an IP address, or a DNS domain / FQDN"))
              .arg(description)
              .help("Accept SIP requests from these sources (incoming ACL).")
              .example("acl add 10.0.0.5 --description \"Lync edge\"", "accept one peer by address")
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printAcl(out, {o}); })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                auto e = store.addAcl(a.at("pattern"), a.str("description").value_or(""));
                return AdminResponse::json(aclJson(e), 201);
              }));
  reg.add(Command("acl list", "GET", "/api/v1/acl")
              .help("The incoming ACL.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printAcl(out, objects(o, "acl")); })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs&) {
                Arr::Ptr list = new Arr;
                for (const auto& e : store.acl()) list->add(aclJson(e));
                Obj::Ptr o = new Obj;
                o->set("acl", list);
                return AdminResponse::json(o);
              }));
  reg.add(Command("acl delete", "DELETE", "/api/v1/acl/{pattern}")
              .arg(Arg::string("pattern").inPath().positional("PATTERN").help("the entry"))
              .help("Remove an incoming ACL entry.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                out << "deleted incoming ACL entry " << str(o, "deleted") << "\n";
              })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                const auto& p = a.at("pattern");
                if (!store.deleteAcl(p)) throw AdminError(404, "unknown_acl_entry", "no incoming ACL entry '" + p + "'");
                Obj::Ptr o = new Obj;
                o->set("deleted", p);
                return AdminResponse::json(o);
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
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printRoutes(out, {o}); })
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
                return AdminResponse::json(routeJson(store.addRoute(rt)), 201);
              }));
  reg.add(Command("route list", "GET", "/api/v1/routes")
              .help("Static routes.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printRoutes(out, objects(o, "routes")); })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs&) {
                Arr::Ptr list = new Arr;
                for (const auto& rt : store.routes()) list->add(routeJson(rt));
                Obj::Ptr o = new Obj;
                o->set("routes", list);
                return AdminResponse::json(o);
              }));
  reg.add(Command("route delete", "DELETE", "/api/v1/routes/{id}")
              .arg(Arg::integer("id", 0, std::numeric_limits<std::int64_t>::max())
                       .inPath()
                       .label("route id")
                       .invalid("is not a number (see impctl route list)")
                       .positional("ID")
                       .help("the route's id (see route list)"))
              .help("Delete a static route.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                out << "deleted static route " << str(o, "deleted") << "\n";
              })
              .handler<ConfigStore>([](ConfigStore& store, const CommandArgs& a) {
                auto id = *a.integer("id");
                if (!store.deleteRoute(id)) throw AdminError(404, "unknown_route", "no static route with id " + std::to_string(id));
                Obj::Ptr o = new Obj;
                o->set("deleted", id);
                return AdminResponse::json(o);
              }));
  // The routing decision on live data (FED-6, RT-9 diagnostics).
  reg.add(Command("route lookup", "GET", "/api/v1/routing/decision")
              .arg(Arg::string("recipient").inQuery().required().positional("USER@DOMAIN").help("the recipient"))
              .help("Show the routing decision for a recipient.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                std::string d = str(o, "decision");
                out << str(o, "recipient") << ": " << d;
                if (d == "local_user") out << " (home node " << str(o, "home_node") << ")";
                if (d == "reject") out << " " << str(o, "status");
                out << "\n" << str(o, "reason") << "\n";
                auto routes = objects(o, "routes");
                if (!routes.empty()) printRoutes(out, routes);
              })
              .handler<ConfigStore, directory::Directory>(
                  [](ConfigStore& store, directory::Directory& dir, const CommandArgs& a) {
                    const auto& recipient = a.at("recipient");
                    auto lookup = directoryLookup(dir);
                    auto d = decideRoute(recipient, store.federation().settings, *lookup, store.routeTable());
                    Obj::Ptr o = new Obj;
                    o->set("recipient", recipient);
                    o->set("decision", std::string(nameOf(d.kind)));
                    if (d.kind == RoutingDecision::Kind::LocalUser) o->set("home_node", d.homeNode);
                    if (d.kind == RoutingDecision::Kind::Reject) o->set("status", d.status);
                    if (!d.pattern.empty()) o->set("pattern", d.pattern);
                    Arr::Ptr routes = new Arr;
                    for (const auto& rt : d.routes) routes->add(routeJson(rt));
                    o->set("routes", routes);
                    o->set("reason", d.reason);
                    return AdminResponse::json(o);
                  }));

  // ---- the running proxy on this node (RT-7); 503 service_not_running while stopped ----
  const char* thisNode = "This talks to the node at the admin URL only.";
  reg.add(Command("ban list", "GET", "/api/v1/sip-proxy/bans")
              .help("Addresses the flood limiter has banned on this node, with the time left and the requests refused.")
              .describe(std::string("Sources not listed in the incoming ACL by address that sent more than [sip-proxy] "
                                    "flood_max_requests per window are banned. ") +
                        thisNode)
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                auto bans = objects(o, "bans");
                if (bans.empty()) {
                  out << "no address is banned\n";
                  return;
                }
                std::vector<std::vector<std::string>> rows = {{"ADDRESS", "EXPIRES IN", "REFUSED"}};
                for (const auto& b : bans)
                  rows.push_back({str(b, "address"), core::cli::duration(b->getValue<Poco::Int64>("expires_in_s")),
                                  str(b, "refused")});
                table(out, rows);
              })
              .handler<ProxyHandle>([](ProxyHandle& proxy, const CommandArgs&) {
                auto bans = proxy.bans();
                if (!bans) throw notRunning();
                return AdminResponse::json(bansJson(*bans));
              }));
  auto printCleared = [](std::ostream& out, const Obj::Ptr& o, int) { out << "lifted " << str(o, "cleared") << " ban(s)\n"; };
  reg.add(Command("ban clear", "DELETE", "/api/v1/sip-proxy/bans")
              .help("Lift every flood-limiter ban on this node.")
              .print(printCleared)
              .handler<ProxyHandle>([](ProxyHandle& proxy, const CommandArgs&) {
                auto n = proxy.clearBans("");
                if (!n) throw notRunning();
                Obj::Ptr o = new Obj;
                o->set("cleared", static_cast<std::uint64_t>(*n));
                return AdminResponse::json(o);
              }));
  reg.add(Command("ban clear", "DELETE", "/api/v1/sip-proxy/bans/{address}")
              .arg(Arg::string("address").inPath().positional("IP").help("the banned address"))
              .help("Lift the flood-limiter ban of one address on this node.")
              .print(printCleared)
              .handler<ProxyHandle>([](ProxyHandle& proxy, const CommandArgs& a) {
                const auto& given = a.at("address");
                auto ip = canonicalIp(given);
                if (!ip) throw AdminError(400, "invalid_address", "'" + given + "' is not an IP address");
                auto n = proxy.clearBans(*ip);
                if (!n) throw notRunning();
                if (*n == 0) throw AdminError(404, "not_banned", *ip + " is not banned");
                Obj::Ptr o = new Obj;
                o->set("cleared", static_cast<std::uint64_t>(*n));
                return AdminResponse::json(o);
              }));
  reg.add(Command("proxy stats", "GET", "/api/v1/sip-proxy/stats")
              .help("SIP proxy counters on this node and the next hops currently marked down.")
              .describe(
                  "Requests received, forwarded, failed over, refused by the ACL or the flood limiter, loops answered "
                  "482, refused with 503 because directory lookups queued up (overloaded), routing decisions that "
                  "asked the directory and those answered from the recipient cache (kept until the next settings "
                  "generation). " +
                  std::string(thisNode))
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                for (const char* k : {"requests", "forwarded", "failovers", "acl_refused", "loops", "stateless_forwards",
                                      "flood_refused", "overloaded", "directory_lookups", "directory_cache_hits",
                                      "rejected", "responses_unsent", "parse_errors", "error_responses_sent",
                                      "error_responses_unsent", "malformed_responses_dropped"})
                  out << k << ": " << str(o, k) << "\n";
                auto down = joined(o, "next_hops_down");
                out << "next hops down: " << (down == "-" ? "none" : down) << "\n";
              })
              .handler<ProxyHandle>([](ProxyHandle& proxy, const CommandArgs&) {
                auto st = proxy.stats();
                auto down = proxy.downHops();
                if (!st || !down) throw notRunning();
                Obj::Ptr o = new Obj;
                o->set("requests", st->requests);
                o->set("forwarded", st->forwarded);
                o->set("failovers", st->failovers);
                o->set("acl_refused", st->aclRefused);
                o->set("loops", st->loops);
                o->set("stateless_forwards", st->statelessForwards);
                o->set("flood_refused", st->floodRefused);
                o->set("overloaded", st->overloaded);
                o->set("directory_lookups", st->directoryLookups);
                o->set("directory_cache_hits", st->directoryCacheHits);
                o->set("rejected", st->rejected);
                o->set("responses_unsent", st->responsesUnsent);
                o->set("parse_errors", st->parseErrors);
                o->set("error_responses_sent", st->errorResponsesSent);
                o->set("error_responses_unsent", st->errorResponsesUnsent);
                o->set("malformed_responses_dropped", st->malformedResponsesDropped);
                o->set("next_hops_down", strings(*down));
                return AdminResponse::json(o);
              }));
}

}  // namespace imp::sip_proxy
