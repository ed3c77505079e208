#include "imp/serviceability/admin_api.h"

#include <imp/core/admin_http.h>
#include <imp/core/cluster_settings.h>
#include <imp/core/command_registry.h>
#include <imp/core/database.h>
#include <imp/core/metrics.h>
#include <imp/core/migrations.h>
#include <imp/core/module_registry.h>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <iomanip>
#include <ostream>

#include "imp/serviceability/control.h"

namespace imp::serviceability {

using core::AdminError;
using core::AdminRequest;
using core::AdminResponse;
using Obj = Poco::JSON::Object;
using Arr = Poco::JSON::Array;
using core::Arg;
using core::Command;
using core::CommandArgs;
using core::cli::duration;
using core::cli::str;
using core::cli::table;

namespace {

Obj::Ptr serviceJson(const core::ServiceInfo& i) {
  Obj::Ptr o = new Obj;
  o->set("name", i.name);
  o->set("display_name", i.displayName);
  o->set("kind", std::string(core::nameOf(i.kind)));
  o->set("active", i.active);
  o->set("state", std::string(core::nameOf(i.state)));
  o->set("detail", i.detail);
  o->set("uptime_s", i.uptimeSeconds);
  o->set("restarts", i.restarts);
  o->set("failures", i.failures);
  return o;
}

Obj::Ptr traceJson(const core::ModuleRegistry& modules, const TraceView& t) {
  Obj::Ptr o = new Obj;
  o->set("service", t.service);
  o->set("display_name", modules.displayName(t.service));
  o->set("enabled", t.enabled);
  o->set("level", t.level);
  Arr::Ptr flags = new Arr;
  for (const auto& f : t.flags) flags->add(f);
  o->set("flags", flags);
  Arr::Ptr avail = new Arr;
  for (const auto& f : modules.traceFlags(t.service)) {
    Obj::Ptr a = new Obj;
    a->set("id", f.id);
    a->set("label", f.label);
    avail->add(a);
  }
  o->set("available_flags", avail);
  o->set("stored", t.stored);
  return o;
}

Arr::Ptr toArray(const std::vector<std::string>& v) {
  Arr::Ptr a = new Arr;
  for (const auto& s : v) a->add(s);
  return a;
}

// Remote nodes' services as their ris-collector last published them.
Arr::Ptr publishedServices(const core::ModuleRegistry& modules, core::Database& db, const std::string& node) {
  auto rows = db.query(
      "SELECT service, active, state, restarts, uptime_s, detail FROM svc_node_service WHERE node_id = ? ORDER BY service",
      {node});
  Arr::Ptr out = new Arr;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    Obj::Ptr o = new Obj;
    o->set("name", rows.str(i, "service"));
    o->set("display_name", modules.displayName(rows.str(i, "service")));
    o->set("active", rows.num(i, "active") != 0);
    o->set("state", rows.str(i, "state"));
    o->set("restarts", rows.num(i, "restarts"));
    o->set("uptime_s", rows.num(i, "uptime_s"));
    o->set("detail", rows.str(i, "detail"));
    out->add(o);
  }
  return out;
}


// ---- impctl's text output ----

void printServices(std::ostream& out, const Arr::Ptr& services) {
  std::vector<std::vector<std::string>> rows = {
      {"SERVICE", "DISPLAY NAME", "KIND", "ACTIVE", "STATE", "UPTIME", "RESTARTS", "DETAIL"}};
  for (const auto& v : *services) {
    auto s = v.extract<Obj::Ptr>();
    rows.push_back({str(s, "name"), str(s, "display_name"), s->has("kind") ? str(s, "kind") : "-",
                    s->getValue<bool>("active") ? "yes" : "no", str(s, "state"),
                    duration(s->getValue<long long>("uptime_s")), str(s, "restarts"), str(s, "detail")});
  }
  table(out, rows);
}

void printTrace(std::ostream& out, const Obj::Ptr& t) {
  std::string flags;
  for (const auto& f : *t->getArray("flags")) flags += (flags.empty() ? "" : ",") + f.convert<std::string>();
  std::string avail;
  for (const auto& f : *t->getArray("available_flags"))
    avail += (avail.empty() ? "" : ",") + f.extract<Obj::Ptr>()->getValue<std::string>("id");
  out << std::left << std::setw(18) << str(t, "service") << std::setw(5) << (t->getValue<bool>("enabled") ? "on" : "off")
      << std::setw(10) << str(t, "level") << "flags=[" << flags << "]" << (avail.empty() ? "" : " available=[" + avail + "]")
      << "\n";
}

void printStatus(std::ostream& out, const Obj::Ptr& o, int) {
  auto node = o->getObject("node");
  auto db = o->getObject("database");
  out << "node:      " << str(node, "id") << " (role " << str(node, "role") << ", version " << str(node, "version")
      << ", up " << duration(node->getValue<long long>("uptime_s")) << ")\n";
  out << "admin:     " << str(node, "admin_url") << "\n";
  out << "database:  " << str(db, "location") << ", " << (db->getValue<bool>("reachable") ? "reachable" : "UNREACHABLE")
      << ", settings generation " << str(db, "settings_generation") << "\n";
  out << "ready:     " << (o->getValue<bool>("ready") ? "yes" : "no");
  if (o->has("not_ready_reasons"))
    for (const auto& r : *o->getArray("not_ready_reasons")) out << " - " << r.convert<std::string>();
  out << "\n\n";
  printServices(out, o->getArray("services"));
}

void printNodes(std::ostream& out, const Obj::Ptr& o, int) {
  std::vector<std::vector<std::string>> rows = {{"NODE", "ROLE", "STATE", "HEARTBEAT", "ADMIN", "SERVICES"}};
  for (const auto& v : *o->getArray("nodes")) {
    auto n = v.extract<Obj::Ptr>();
    std::string services;
    for (const auto& sv : *n->getArray("services")) {
      auto s = sv.extract<Obj::Ptr>();
      services += (services.empty() ? "" : " ") + str(s, "name") + "=" + str(s, "state");
    }
    rows.push_back({str(n, "id") + (n->getValue<bool>("self") ? " *" : ""), str(n, "role"), str(n, "state"),
                    str(n, "heartbeat_age_s") + "s ago", str(n, "admin_url"), services});
  }
  table(out, rows);
}

void printDbStatus(std::ostream& out, const Obj::Ptr& o, int) {
  out << "database: " << str(o, "location") << " (" << str(o, "mode") << "), "
      << (o->getValue<bool>("reachable") ? "reachable" : "UNREACHABLE") << "\n";
  std::vector<std::vector<std::string>> rows = {{"VERSION", "MIGRATION", "STATE", "APPLIED AT", "BY"}};
  for (const auto& v : *o->getArray("applied")) {
    auto m = v.extract<Obj::Ptr>();
    rows.push_back({str(m, "version"), str(m, "name"), "applied", str(m, "applied_at"), str(m, "applied_by")});
  }
  for (const auto& v : *o->getArray("pending")) {
    auto m = v.extract<Obj::Ptr>();
    rows.push_back({str(m, "version"), str(m, "name"), "PENDING", "-", "-"});
  }
  table(out, rows);
}

}  // namespace

void registerAdminRoutes(core::AdminRouter& router, const AdminContext& c) {
  router.add("GET", "/health/live", [](const AdminRequest&) {
    Obj::Ptr o = new Obj;
    o->set("status", "live");
    return AdminResponse::json(o);
  }, false);

  router.add("GET", "/health/ready", [c](const AdminRequest&) {
    auto reasons = c.notReadyReasons();
    Obj::Ptr o = new Obj;
    o->set("status", reasons.empty() ? "ready" : "not-ready");
    if (!reasons.empty()) o->set("reasons", toArray(reasons));
    return AdminResponse::json(o, reasons.empty() ? 200 : 503);
  }, false);

  router.add("GET", "/metrics", [c](const AdminRequest&) {
    return AdminResponse::text(c.metrics->render(), "text/plain; version=0.0.4");
  }, false);
}

void registerCommands(core::CommandRegistry& reg) {
  // Fields shared by several commands, each named once.
  const auto nodeArg = Arg::string("node").inQuery().option("node", "ID").help(
      "act on another node of the cluster (default: this node)");
  const auto enabled = Arg::boolean("enabled");
  const auto flags = Arg::strings("flags");

  reg.add(Command("status", "GET", "/api/v1/status")
              .help("This node: id, role, uptime, database state, readiness and every service with its state.")
              .describe("Service states are stopped, starting, running, stopping, failed and stop-timeout.")
              .example("status", "state of this node")
              .print(printStatus)
              .handler<AdminContext>([](AdminContext& c, const CommandArgs&) {
                auto& self = c.control->self();
                Obj::Ptr node = new Obj;
                node->set("id", self.id);
                node->set("role", self.role);
                node->set("hostname", self.hostname);
                node->set("admin_url", self.adminUrl);
                node->set("version", self.version);
                node->set("uptime_s", std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() -
                                                                                         self.startedAt)
                                          .count());
                Obj::Ptr db = new Obj;
                db->set("mode", c.dbMode);
                db->set("location", c.dbLocation);
                db->set("reachable", c.settings->databaseReachable());
                db->set("settings_generation", c.settings->appliedGeneration());
                Arr::Ptr services = new Arr;
                for (const auto& i : c.control->host().list()) services->add(serviceJson(i));
                auto reasons = c.notReadyReasons();
                Obj::Ptr o = new Obj;
                o->set("node", node);
                o->set("database", db);
                o->set("services", services);
                o->set("ready", reasons.empty());
                if (!reasons.empty()) o->set("not_ready_reasons", toArray(reasons));
                return AdminResponse::json(o);
              }));

  reg.add(Command("status", "GET", "/api/v1/cluster/nodes")
              .selectedBy("cluster", "every node of the cluster")
              .help("Every node of the cluster, from the cluster database.")
              .describe(
                  "Shows each node's id (this node is marked *), role, state, the age of its last heartbeat, its admin "
                  "URL, and its services with their state as last published by its ris-collector service.\n"
                  "The state is up, stale (no heartbeat for three [services] heartbeat_interval periods: the node "
                  "stopped without saying so, or cannot reach the database) or down (stopped cleanly).")
              .example("status --cluster", "state of the whole cluster")
              .print(printNodes)
              .handler<AdminContext>([](AdminContext& c, const CommandArgs&) {
                auto rows = c.db->query(
                    "SELECT node_id, role, hostname, admin_url, version, state,"
                    " DATE_FORMAT(last_seen, '%Y-%m-%dT%H:%i:%s') AS last_seen,"
                    " TIMESTAMPDIFF(SECOND, last_seen, CURRENT_TIMESTAMP(3)) AS age_s FROM core_node ORDER BY node_id");
                Arr::Ptr nodes = new Arr;
                for (std::size_t i = 0; i < rows.size(); ++i) {
                  Obj::Ptr n = new Obj;
                  auto id = rows.str(i, "node_id");
                  auto age = rows.num(i, "age_s");
                  n->set("id", id);
                  n->set("role", rows.str(i, "role"));
                  n->set("hostname", rows.str(i, "hostname"));
                  n->set("admin_url", rows.str(i, "admin_url"));
                  n->set("version", rows.str(i, "version"));
                  n->set("last_seen", rows.str(i, "last_seen"));
                  n->set("heartbeat_age_s", age);
                  // A node that missed three heartbeats is "stale" (down without saying so).
                  std::string state =
                      rows.str(i, "state") == "down" ? "down" : age > 3 * c.heartbeatInterval ? "stale" : "up";
                  n->set("state", state);
                  n->set("self", id == c.control->self().id);
                  n->set("services", publishedServices(*c.modules, *c.db, id));
                  nodes->add(n);
                }
                Obj::Ptr o = new Obj;
                o->set("nodes", nodes);
                return AdminResponse::json(o);
              }));

  reg.add(Command("service list", "GET", "/api/v1/services")
              .arg(nodeArg)
              .help("The services of a node: name, display name, kind, activation, state, uptime, restarts.")
              .describe("With --node, the services of another node as its ris-collector service last published them.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                out << "node: " << str(o, "node")
                    << (o->has("published") ? " (as last published by its ris-collector)" : "") << "\n";
                printServices(out, o->getArray("services"));
              })
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                auto nodeId = a.str("node").value_or(c.control->self().id);
                Obj::Ptr o = new Obj;
                o->set("node", nodeId);
                if (nodeId == c.control->self().id) {
                  Arr::Ptr services = new Arr;
                  for (const auto& i : c.control->host().list()) services->add(serviceJson(i));
                  o->set("services", services);
                } else {
                  c.control->requireNode(nodeId);
                  o->set("services", publishedServices(*c.modules, *c.db, nodeId));
                  o->set("published", true);
                }
                return AdminResponse::json(o);
              }));

  reg.add(
      Command("service", "POST", "/api/v1/services/{name}/{action}")
          .arg(Arg::enumeration("action", {"activate", "deactivate", "start", "stop", "restart"})
                   .inPath()
                   .invalid("is unknown; valid actions: activate, deactivate, start, stop, restart")
                   .positional("")
                   .help("what to do"))
          .arg(Arg::string("name").inPath().positional("NAME").help("the service's stable name (ris-collector, ...)"))
          .arg(nodeArg)
          .help("Activate, deactivate, start, stop or restart a service on a node.")
          .describe(
              "Activation is stored per node in the cluster database: it overrides the node's role and survives "
              "restarts. Activating starts the service, deactivating stops it. Start, stop and restart act at run "
              "time: they do not restart impd, do not touch the other services and do not change the activation.\n"
              "\n"
              "Without --node, or with the local node's id, the local impd carries the request out at once. With "
              "--node naming another node, the request is stored in the cluster database and carried out by that "
              "node's serviceability service: an activation change at its next settings check ([services] "
              "settings_poll_ms); for start, stop and restart impctl waits up to 15 seconds for the result. A request "
              "not carried out yet is shown as (pending), exit status 0; one that failed on the other node exits "
              "with status 1. An unknown service or node name is refused; the message lists the valid names.")
          .example("service restart ris-collector", "restart one service without touching the others")
          .example("service restart ris-collector --node imp2", "restart a service on another node of the cluster")
          .print([](std::ostream& out, const Obj::Ptr& o, int status) {
            out << str(o, "message") << (status == 202 ? " (pending)" : "") << "\n";
          })
          .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
            auto nodeId = a.str("node").value_or(c.control->self().id);
            const auto& name = a.at("name");
            const auto& action = a.at("action");
            auto res = c.control->control(nodeId, name, action);
            Obj::Ptr o = new Obj;
            o->set("node", nodeId);
            o->set("service", name);
            o->set("action", action);
            o->set("state", res.state);
            o->set("message", res.result);
            if (nodeId == c.control->self().id) o->set("service_status", serviceJson(c.control->host().info(name)));
            int status = res.state == "failed" ? 409 : res.state == "pending" ? 202 : 200;
            if (status == 409) return core::errorResponse(409, "remote_action_failed", res.result);
            return AdminResponse::json(o, status);
          }));

  reg.add(Command("trace show", "GET", "/api/v1/trace")
              .arg(nodeArg)
              .help("The trace settings of every service of a node.")
              .describe("For each service: on/off, level, the flags that are on, and the flags the service has.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                out << "node: " << str(o, "node") << "\n";
                for (const auto& v : *o->getArray("traces")) printTrace(out, v.extract<Obj::Ptr>());
              })
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                auto nodeId = a.str("node").value_or(c.control->self().id);
                Arr::Ptr list = new Arr;
                for (const auto& t : c.control->traces(nodeId)) list->add(traceJson(*c.modules, t));
                Obj::Ptr o = new Obj;
                o->set("node", nodeId);
                o->set("traces", list);
                return AdminResponse::json(o);
              }));

  const auto service = Arg::string("service").inPath().positional("SERVICE").help("the service's stable name");
  reg.add(Command("trace show", "GET", "/api/v1/trace/{service}")
              .arg(service)
              .arg(nodeArg)
              .help("The trace setting of one service.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printTrace(out, o); })
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                auto nodeId = a.str("node").value_or(c.control->self().id);
                const auto& name = a.at("service");
                c.control->requireService(name);
                for (const auto& t : c.control->traces(nodeId))
                  if (t.service == name) {
                    auto o = traceJson(*c.modules, t);
                    o->set("node", nodeId);
                    return AdminResponse::json(o);
                  }
                throw AdminError(404, "unknown_service", "unknown service '" + name + "'");
              }));

  reg.add(
      Command("trace set", "PUT", "/api/v1/trace/{service}")
          .arg(service)
          .arg(Arg::string("level").option("level", "L").help("trace, debug, info, warn, error or critical"))
          .flag("on", enabled, true, "switch the trace on: everything from the trace level up is written")
          .flag("off", enabled, false, "switch the trace off: only warnings and errors are written")
          .arg(flags.option("flag", "F").help(
              "a trace flag of the service (repeatable): the flags given are on, all others off; a flag the "
              "service does not have is refused, the message lists its flags"))
          .flag("clear-flags", flags, std::vector<std::string>{}, "turn every trace flag of the service off")
          .arg(nodeArg)
          .needsOneOption()
          .help("Change the trace setting of a service; options not given keep their current value.")
          .describe(
              "Every service logs to its own file (see impd(8), LOGGING). Trace settings are stored per node and per "
              "service in the cluster database and applied live: no service restart is needed. With --node the "
              "setting of another node is stored and applied by that node at its next settings check.\n"
              "\n"
              "Debug and trace levels cost performance: switch them on while investigating and off again "
              "afterwards. Flags are specific to a service; those of sip-proxy are sip-tcp (SIP TCP trace), "
              "sip-tls (SIP TLS trace), server (server trace), sip-message-state (SIP message and state machine "
              "trace), method-event-routing (method/event routing trace) and routing (routing trace).")
          .example("trace set sip-proxy --on --level debug --flag routing --flag method-event-routing",
                   "turn on the routing traces of the SIP proxy at debug level")
          .example("trace set sip-proxy --off --clear-flags", "and back off")
          .print([](std::ostream& out, const Obj::Ptr& o, int) {
            printTrace(out, o);
            out << "applied " << str(o, "applied") << " on " << str(o, "node") << "\n";
          })
          .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
            auto nodeId = a.str("node").value_or(c.control->self().id);
            auto t = c.control->setTrace(nodeId, a.at("service"), a.boolean("enabled"), a.str("level"), a.strings("flags"));
            auto o = traceJson(*c.modules, t);
            o->set("node", nodeId);
            o->set("applied", nodeId == c.control->self().id ? "now" : "when the node sees the change");
            return AdminResponse::json(o);
          }));

  reg.add(Command("db status", "GET", "/api/v1/db/status")
              .help("Schema migrations: those applied (when and by which node) and those pending in [node] sql_dir.")
              .example("db status", "check for pending migrations")
              .print(printDbStatus)
              .handler<AdminContext>([](AdminContext& c, const CommandArgs&) {
                auto st = c.migrator->status();
                Arr::Ptr applied = new Arr;
                for (const auto& m : st.applied) {
                  Obj::Ptr o = new Obj;
                  o->set("version", m.version);
                  o->set("name", m.name);
                  o->set("applied_at", m.appliedAt);
                  o->set("applied_by", m.appliedBy);
                  applied->add(o);
                }
                Arr::Ptr pending = new Arr;
                for (const auto& m : st.pending) {
                  Obj::Ptr o = new Obj;
                  o->set("version", m.version);
                  o->set("name", m.name);
                  pending->add(o);
                }
                Obj::Ptr o = new Obj;
                o->set("mode", c.dbMode);
                o->set("location", c.dbLocation);
                o->set("reachable", c.settings->databaseReachable());
                o->set("applied", applied);
                o->set("pending", pending);
                return AdminResponse::json(o);
              }));

  reg.add(Command("db migrate", "POST", "/api/v1/db/migrate")
              .help("Apply the pending migrations now, under the cluster-wide lock impd takes at start-up.")
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                auto applied = o->getArray("applied");
                if (applied->size() == 0) out << "schema is up to date (version " << str(o, "schema_version") << ")\n";
                for (const auto& m : *applied) out << "applied " << m.convert<std::string>() << "\n";
              })
              .handler<AdminContext>([](AdminContext& c, const CommandArgs&) {
                auto done = c.migrator->migrate();
                Arr::Ptr list = new Arr;
                for (const auto& m : done) list->add(m.name);
                Obj::Ptr o = new Obj;
                o->set("applied", list);
                o->set("schema_version", c.migrator->currentVersion());
                return AdminResponse::json(o);
              }));
}

}  // namespace imp::serviceability
