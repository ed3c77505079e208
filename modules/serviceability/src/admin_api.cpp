#include "imp/serviceability/admin_api.h"

#include <imp/core/admin_http.h>
#include <imp/core/cluster_settings.h>
#include <imp/core/command_registry.h>
#include <imp/core/database.h>
#include <imp/core/metrics.h>
#include <imp/core/migrations.h>
#include <imp/core/module_registry.h>
#include <imp/core/service_params.h>

#include <Poco/JSON/Object.h>

#include <iomanip>
#include <ostream>

#include "imp/serviceability/control.h"
#include "shared_fields.h"

namespace imp::serviceability {

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
using core::ObjectField;
using core::Reply;
using core::cli::duration;
using core::cli::table;

namespace {

// ---- the answers' fields, each named once (response shapes) ----

struct ServiceShape : core::Shape {
  ServiceShape() : Shape("Service", Layout::Table) {}
  const Field<std::string> name = text("name").column("SERVICE");
  const Field<std::string> displayName = text("display_name").column("DISPLAY NAME");
  // Not published by ris-collector for other nodes.
  const Field<std::string> kind = text("kind").optional().column("KIND").orElse("-");
  const Field<bool> active = flag("active").column("ACTIVE").shows("yes", "no");
  const Field<std::string> state = text("state").column("STATE");
  const Field<std::int64_t> uptime = number("uptime_s").column("UPTIME").duration();
  const Field<std::int64_t> restarts = number("restarts").column("RESTARTS");
  const Field<std::string> detail = text("detail").column("DETAIL");
  const Field<std::int64_t> failures = number("failures").optional();
};

struct NodeShape : core::Shape {
  NodeShape() : Shape("Node", Layout::Lines) {}
  const Field<std::string> id = text("id");
  const Field<std::string> role = text("role");
  const Field<std::string> hostname = text("hostname");
  const Field<std::string> adminUrl = text("admin_url");
  const Field<std::string> version = text("version");
  const Field<std::int64_t> uptime = same(core::shape<ServiceShape>().uptime);
};

struct DatabaseShape : core::Shape {
  DatabaseShape() : Shape("Database", Layout::Lines) {}
  const Field<std::string> mode = text("mode");
  const Field<std::string> location = text("location");
  const Field<bool> reachable = flag("reachable");
  const Field<std::int64_t> settingsGeneration = number("settings_generation");
};

struct StatusShape : core::Shape {
  StatusShape() : Shape("Status", Layout::Lines) {}
  const ObjectField node = object("node", core::shape<NodeShape>());
  const ObjectField database = object("database", core::shape<DatabaseShape>());
  const ListField services = list("services", core::shape<ServiceShape>());
  const Field<bool> ready = flag("ready");
  const Field<std::vector<std::string>> notReadyReasons = texts("not_ready_reasons").optional();
};

// GET /health/ready and /health/live (not commands; the same declaration).
struct HealthShape : core::Shape {
  HealthShape() : Shape("Health", Layout::Lines) {}
  const Field<std::string> status = text("status");
  const Field<std::vector<std::string>> reasons = texts("reasons").optional();
};

struct ClusterNodeShape : core::Shape {
  ClusterNodeShape() : Shape("ClusterNode", Layout::Lines) {}
  const Field<std::string> id = same(core::shape<NodeShape>().id);
  const Field<std::string> role = same(core::shape<NodeShape>().role);
  const Field<std::string> hostname = same(core::shape<NodeShape>().hostname);
  const Field<std::string> adminUrl = same(core::shape<NodeShape>().adminUrl);
  const Field<std::string> version = same(core::shape<NodeShape>().version);
  const Field<std::string> lastSeen = text("last_seen");
  const Field<std::int64_t> heartbeatAge = number("heartbeat_age_s");
  const Field<std::string> state = same(core::shape<ServiceShape>().state);
  const Field<bool> self = flag("self");
  const ListField services = same(core::shape<StatusShape>().services);
};

struct ClusterShape : core::Shape {
  ClusterShape() : Shape("Cluster", Layout::Lines) {}
  const ListField nodes = list("nodes", core::shape<ClusterNodeShape>());
};

struct ServiceListShape : core::Shape {
  ServiceListShape() : Shape("ServiceList", Layout::Lines) {}
  const Field<std::string> node = text(core::shape<StatusShape>().node.name());
  const ListField services = same(core::shape<StatusShape>().services);
  const Field<bool> published = flag("published").optional();
};

struct ServiceActionShape : core::Shape {
  ServiceActionShape() : Shape("ServiceAction", Layout::Lines) {}
  const Field<std::string> node = same(core::shape<ServiceListShape>().node);
  const Field<std::string> service = same(detail::sharedFields().service);
  const Field<std::string> action = text("action");
  const Field<std::string> state = same(core::shape<ServiceShape>().state);
  const Field<std::string> message = text("message");
  // The service's state after the action, when it ran on this node.
  const ObjectField serviceStatus = object("service_status", core::shape<ServiceShape>()).optional();
};

struct TraceFlagShape : core::Shape {
  TraceFlagShape() : Shape("TraceFlag", Layout::Table) {}
  const Field<std::string> id = same(core::shape<NodeShape>().id);
  const Field<std::string> label = text("label");
};

struct TraceShape : core::Shape {
  TraceShape() : Shape("Trace", Layout::Lines) {}
  const Field<std::string> service = same(core::shape<ServiceActionShape>().service);
  const Field<std::string> displayName = same(core::shape<ServiceShape>().displayName);
  const Field<bool> enabled = flag("enabled");
  const Field<std::string> level = text("level");
  const Field<std::vector<std::string>> flags = texts("flags");
  const ListField availableFlags = list("available_flags", core::shape<TraceFlagShape>());
  const Field<bool> stored = flag("stored");
  // trace show SERVICE and trace set; not in the items of trace show.
  const Field<std::string> node = same(core::shape<ServiceListShape>().node).optional();
  // trace set: "now", or "when the node sees the change".
  const Field<std::string> applied = text("applied").optional();
};

struct TracesShape : core::Shape {
  TracesShape() : Shape("Traces", Layout::Lines) {}
  const Field<std::string> node = same(core::shape<ServiceListShape>().node);
  const ListField traces = list("traces", core::shape<TraceShape>());
};

struct MigrationShape : core::Shape {
  MigrationShape() : Shape("Migration", Layout::Lines) {}
  const Field<std::int64_t> version = number(core::shape<NodeShape>().version.name());
  const Field<std::string> name = same(core::shape<ServiceShape>().name);
  // Applied migrations only.
  const Field<std::string> appliedAt = text("applied_at").optional();
  const Field<std::string> appliedBy = text("applied_by").optional();
};

struct DbStatusShape : core::Shape {
  DbStatusShape() : Shape("DbStatus", Layout::Lines) {}
  const Field<std::string> mode = same(core::shape<DatabaseShape>().mode);
  const Field<std::string> location = same(core::shape<DatabaseShape>().location);
  const Field<bool> reachable = same(core::shape<DatabaseShape>().reachable);
  const ListField applied = list(core::shape<TraceShape>().applied.name(), core::shape<MigrationShape>());
  const ListField pending = list("pending", core::shape<MigrationShape>());
};

struct DbMigrateShape : core::Shape {
  DbMigrateShape() : Shape("DbMigrate", Layout::Lines) {}
  // The names of the migrations applied now.
  const Field<std::vector<std::string>> applied = texts(core::shape<DbStatusShape>().applied.name());
  const Field<std::int64_t> schemaVersion = number("schema_version");
};

// Service parameters (MG-3): values as impctl shows and takes them
// ("unlimited", "on", "200").
struct ServiceParamShape : core::Shape {
  ServiceParamShape() : Shape("ServiceParam", Layout::Table) {}
  const Field<std::string> name = same(core::shape<ServiceShape>().name).column("NAME");
  const Field<std::string> value = text("value").column("VALUE");
  const Field<std::string> defaultValue = text("default").column("DEFAULT");
  const Field<std::string> range = text("range").column("RANGE");
  const Field<std::string> unit = text("unit").column("UNIT").orElse("-");
  const Field<std::string> description = text("description").column("DESCRIPTION");
  const Field<std::string> type = text("type").describe("integer or boolean");
  // Set by an administrator (false: the default applies).
  const Field<bool> stored = same(core::shape<TraceShape>().stored);
  const Field<std::string> changedAt = text("changed_at").optional();
};

struct ServiceParamsShape : core::Shape {
  ServiceParamsShape() : Shape("ServiceParams", Layout::Lines) {}
  const Field<std::string> service = same(core::shape<ServiceActionShape>().service);
  const Field<std::string> displayName = same(core::shape<ServiceShape>().displayName);
  const ListField params = list("params", core::shape<ServiceParamShape>()).ifEmpty("(no service parameters)");
};

struct ServiceParamChangeShape : core::Shape {
  ServiceParamChangeShape() : Shape("ServiceParamChange", Layout::Lines) {}
  const Field<std::string> service = same(core::shape<ServiceActionShape>().service);
  const Field<std::string> name = same(core::shape<ServiceShape>().name);
  const Field<std::string> oldValue = text("old_value");
  const Field<std::string> newValue = text("new_value");
  const Field<bool> changed = flag("changed");
  const Field<std::int64_t> generation = same(core::shape<DatabaseShape>().settingsGeneration).optional();
  // "live": this node's services have reloaded it (the other nodes follow
  // at their next settings check); "at the next settings check"; "unchanged".
  const Field<std::string> applied = same(core::shape<TraceShape>().applied);
};

Reply serviceReply(const core::ServiceInfo& i) {
  const auto& s = core::shape<ServiceShape>();
  Reply r(s);
  r.set(s.name, i.name).set(s.displayName, i.displayName).set(s.kind, std::string(core::nameOf(i.kind)));
  r.set(s.active, i.active).set(s.state, std::string(core::nameOf(i.state))).set(s.detail, i.detail);
  r.set(s.uptime, i.uptimeSeconds).set(s.restarts, i.restarts).set(s.failures, i.failures);
  return r;
}

// The trace settings of a service, as `shape` (TraceShape) declares them.
Reply traceReply(const core::ModuleRegistry& modules, const TraceView& t) {
  const auto& s = core::shape<TraceShape>();
  Reply r(s);
  r.set(s.service, t.service).set(s.displayName, modules.displayName(t.service)).set(s.enabled, t.enabled);
  r.set(s.level, t.level).set(s.flags, t.flags).set(s.stored, t.stored);
  std::vector<Reply> avail;
  for (const auto& f : modules.traceFlags(t.service)) {
    Reply a(core::shape<TraceFlagShape>());
    a.set(core::shape<TraceFlagShape>().id, f.id).set(core::shape<TraceFlagShape>().label, f.label);
    avail.push_back(a);
  }
  r.set(s.availableFlags, avail);
  return r;
}

std::vector<Reply> localServices(const AdminContext& c) {
  std::vector<Reply> out;
  for (const auto& i : c.control->host().list()) out.push_back(serviceReply(i));
  return out;
}

// Remote nodes' services as their ris-collector last published them.
std::vector<Reply> publishedServices(const core::ModuleRegistry& modules, core::Database& db, const std::string& node) {
  auto rows = db.query(
      "SELECT service, active, state, restarts, uptime_s, detail FROM svc_node_service WHERE node_id = ? ORDER BY service",
      {node});
  const auto& s = core::shape<ServiceShape>();
  std::vector<Reply> out;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    Reply r(s);
    r.set(s.name, rows.str(i, "service")).set(s.displayName, modules.displayName(rows.str(i, "service")));
    r.set(s.active, rows.num(i, "active") != 0).set(s.state, rows.str(i, "state"));
    r.set(s.restarts, rows.num(i, "restarts")).set(s.uptime, rows.num(i, "uptime_s")).set(s.detail, rows.str(i, "detail"));
    out.push_back(r);
  }
  return out;
}

Reply paramReply(const core::ServiceParams::Entry& e) {
  const auto& s = core::shape<ServiceParamShape>();
  const auto& p = *e.info;
  Reply r(s);
  r.set(s.name, p.name).set(s.value, core::formatParamValue(p, e.value));
  r.set(s.defaultValue, core::formatParamValue(p, p.defaultValue)).set(s.range, core::paramRange(p));
  r.set(s.unit, p.unit).set(s.description, p.help);
  r.set(s.type, std::string(p.type == core::ServiceParamType::Boolean ? "boolean" : "integer")).set(s.stored, e.stored);
  if (e.stored) r.set(s.changedAt, e.changedAt);
  return r;
}

// The answer of `service param set|reset`. A change is applied on this node
// before the answer (the settings watcher runs every service's reload());
// the other nodes apply it at their next settings check.
AdminResponse paramChange(const AdminContext& c, const core::ServiceParamInfo& p, const core::ServiceParams::Change& ch) {
  std::string applied = "unchanged";
  if (ch.changed)
    applied = c.settings && c.settings->applyNow(ch.generation, std::chrono::seconds(10)) ? "live"
                                                                                           : "at the next settings check";
  const auto& s = core::shape<ServiceParamChangeShape>();
  Reply r(s);
  r.set(s.service, p.service).set(s.name, p.name).set(s.oldValue, core::formatParamValue(p, ch.oldValue));
  r.set(s.newValue, core::formatParamValue(p, ch.newValue)).set(s.changed, ch.changed).set(s.applied, applied);
  if (ch.changed) r.set(s.generation, static_cast<std::int64_t>(ch.generation));
  return r.response();
}

// ---- impctl's text output, read through the shapes' field handles ----

void printTrace(std::ostream& out, const Obj::Ptr& t) {
  const auto& s = core::shape<TraceShape>();
  std::string avail;
  for (const auto& f : s.availableFlags.get(t)) avail += (avail.empty() ? "" : ",") + core::shape<TraceFlagShape>().id.text(f);
  std::string flags;
  for (const auto& f : s.flags.get(t)) flags += (flags.empty() ? "" : ",") + f;
  out << std::left << std::setw(18) << s.service.text(t) << std::setw(5) << (s.enabled.get(t) ? "on" : "off")
      << std::setw(10) << s.level.text(t) << "flags=[" << flags << "]" << (avail.empty() ? "" : " available=[" + avail + "]")
      << "\n";
}

// "federation-cm recovery-rate: 5000 -> 200, applied live"
void printParamChange(std::ostream& out, const Obj::Ptr& o, int) {
  const auto& s = core::shape<ServiceParamChangeShape>();
  out << s.service.text(o) << " " << s.name.text(o) << ": ";
  if (!s.changed.get(o)) {
    out << s.newValue.text(o) << ", unchanged\n";
    return;
  }
  out << s.oldValue.text(o) << " -> " << s.newValue.text(o);
  const auto applied = s.applied.text(o);
  out << (applied == "live" ? ", applied live (other nodes: at their next settings check)"
                            : ", stored; applied " + applied)
      << "\n";
}

void printStatus(std::ostream& out, const Obj::Ptr& o, int) {
  const auto& s = core::shape<StatusShape>();
  const auto& ns = core::shape<NodeShape>();
  const auto& ds = core::shape<DatabaseShape>();
  auto node = s.node.get(o);
  auto db = s.database.get(o);
  out << "node:      " << ns.id.text(node) << " (role " << ns.role.text(node) << ", version " << ns.version.text(node)
      << ", up " << duration(ns.uptime.get(node)) << ")\n";
  out << "admin:     " << ns.adminUrl.text(node) << "\n";
  out << "database:  " << ds.location.text(db) << ", " << (ds.reachable.get(db) ? "reachable" : "UNREACHABLE")
      << ", settings generation " << ds.settingsGeneration.text(db) << "\n";
  out << "ready:     " << (s.ready.get(o) ? "yes" : "no");
  if (s.notReadyReasons.has(o))
    for (const auto& r : s.notReadyReasons.get(o)) out << " - " << r;
  out << "\n\n";
  s.services.print(out, o);
}

void printNodes(std::ostream& out, const Obj::Ptr& o, int) {
  const auto& n = core::shape<ClusterNodeShape>();
  std::vector<std::vector<std::string>> rows = {{"NODE", "ROLE", "STATE", "HEARTBEAT", "ADMIN", "SERVICES"}};
  for (const auto& node : core::shape<ClusterShape>().nodes.get(o)) {
    std::string services;
    for (const auto& sv : n.services.get(node))
      services += (services.empty() ? "" : " ") + core::shape<ServiceShape>().name.text(sv) + "=" + core::shape<ServiceShape>().state.text(sv);
    rows.push_back({n.id.text(node) + (n.self.get(node) ? " *" : ""), n.role.text(node), n.state.text(node),
                    n.heartbeatAge.text(node) + "s ago", n.adminUrl.text(node), services});
  }
  table(out, rows);
}

void printDbStatus(std::ostream& out, const Obj::Ptr& o, int) {
  const auto& s = core::shape<DbStatusShape>();
  const auto& m = core::shape<MigrationShape>();
  out << "database: " << s.location.text(o) << " (" << s.mode.text(o) << "), "
      << (s.reachable.get(o) ? "reachable" : "UNREACHABLE") << "\n";
  std::vector<std::vector<std::string>> rows = {{"VERSION", "MIGRATION", "STATE", "APPLIED AT", "BY"}};
  for (const auto& x : s.applied.get(o))
    rows.push_back({m.version.text(x), m.name.text(x), "applied", m.appliedAt.text(x), m.appliedBy.text(x)});
  for (const auto& x : s.pending.get(o)) rows.push_back({m.version.text(x), m.name.text(x), "PENDING", "-", "-"});
  table(out, rows);
}

}  // namespace

void registerAdminRoutes(core::AdminRouter& router, const AdminContext& c) {
  router.add("GET", "/health/live", [](const AdminRequest&) {
    return Reply(core::shape<HealthShape>()).set(core::shape<HealthShape>().status, "live").response();
  }, false);

  router.add("GET", "/health/ready", [c](const AdminRequest&) {
    auto reasons = c.notReadyReasons();
    const auto& s = core::shape<HealthShape>();
    Reply r(s);
    r.set(s.status, reasons.empty() ? "ready" : "not-ready");
    if (!reasons.empty()) r.set(s.reasons, reasons);
    return r.response(reasons.empty() ? 200 : 503);
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
              .returns(core::shape<StatusShape>())
              .print(printStatus)
              .handler<AdminContext>([](AdminContext& c, const CommandArgs&) {
                auto& self = c.control->self();
                const auto& ns = core::shape<NodeShape>();
                Reply node(ns);
                node.set(ns.id, self.id).set(ns.role, self.role).set(ns.hostname, self.hostname);
                node.set(ns.adminUrl, self.adminUrl).set(ns.version, self.version);
                node.set(ns.uptime, std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() -
                                                                                     self.startedAt)
                                        .count());
                const auto& ds = core::shape<DatabaseShape>();
                Reply db(ds);
                db.set(ds.mode, c.dbMode).set(ds.location, c.dbLocation).set(ds.reachable, c.settings->databaseReachable());
                db.set(ds.settingsGeneration, c.settings->appliedGeneration());
                auto reasons = c.notReadyReasons();
                const auto& s = core::shape<StatusShape>();
                Reply r(s);
                r.set(s.node, node).set(s.database, db).set(s.services, localServices(c)).set(s.ready, reasons.empty());
                if (!reasons.empty()) r.set(s.notReadyReasons, reasons);
                return r.response();
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
              .returns(core::shape<ClusterShape>())
              .print(printNodes)
              .handler<AdminContext>([](AdminContext& c, const CommandArgs&) {
                auto rows = c.db->query(
                    "SELECT node_id, role, hostname, admin_url, version, state,"
                    " DATE_FORMAT(last_seen, '%Y-%m-%dT%H:%i:%s') AS last_seen,"
                    " TIMESTAMPDIFF(SECOND, last_seen, CURRENT_TIMESTAMP(3)) AS age_s FROM core_node ORDER BY node_id");
                const auto& s = core::shape<ClusterNodeShape>();
                std::vector<Reply> nodes;
                for (std::size_t i = 0; i < rows.size(); ++i) {
                  Reply n(s);
                  auto id = rows.str(i, "node_id");
                  auto age = rows.num(i, "age_s");
                  n.set(s.id, id).set(s.role, rows.str(i, "role")).set(s.hostname, rows.str(i, "hostname"));
                  n.set(s.adminUrl, rows.str(i, "admin_url")).set(s.version, rows.str(i, "version"));
                  n.set(s.lastSeen, rows.str(i, "last_seen")).set(s.heartbeatAge, age);
                  // A node that missed three heartbeats is "stale" (down without saying so).
                  std::string state =
                      rows.str(i, "state") == "down" ? "down" : age > 3 * c.heartbeatInterval ? "stale" : "up";
                  n.set(s.state, state).set(s.self, id == c.control->self().id);
                  n.set(s.services, publishedServices(*c.modules, *c.db, id));
                  nodes.push_back(n);
                }
                return Reply(core::shape<ClusterShape>()).set(core::shape<ClusterShape>().nodes, nodes).response();
              }));

  reg.add(Command("service list", "GET", "/api/v1/services")
              .arg(nodeArg)
              .help("The services of a node: name, display name, kind, activation, state, uptime, restarts.")
              .describe("With --node, the services of another node as its ris-collector service last published them.")
              .returns(core::shape<ServiceListShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& s = core::shape<ServiceListShape>();
                out << "node: " << s.node.text(o) << (s.published.has(o) ? " (as last published by its ris-collector)" : "")
                    << "\n";
                s.services.print(out, o);
              })
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                auto nodeId = a.str("node").value_or(c.control->self().id);
                const auto& s = core::shape<ServiceListShape>();
                Reply r(s);
                r.set(s.node, nodeId);
                if (nodeId == c.control->self().id) {
                  r.set(s.services, localServices(c));
                } else {
                  c.control->requireNode(nodeId);
                  r.set(s.services, publishedServices(*c.modules, *c.db, nodeId)).set(s.published, true);
                }
                return r.response();
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
          .returns(core::shape<ServiceActionShape>())
          .print([](std::ostream& out, const Obj::Ptr& o, int status) {
            out << core::shape<ServiceActionShape>().message.text(o) << (status == 202 ? " (pending)" : "") << "\n";
          })
          .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
            auto nodeId = a.str("node").value_or(c.control->self().id);
            const auto& name = a.at("name");
            const auto& action = a.at("action");
            auto res = c.control->control(nodeId, name, action);
            const auto& s = core::shape<ServiceActionShape>();
            Reply r(s);
            r.set(s.node, nodeId).set(s.service, name).set(s.action, action).set(s.state, res.state).set(s.message, res.result);
            if (nodeId == c.control->self().id) r.set(s.serviceStatus, serviceReply(c.control->host().info(name)));
            int status = res.state == "failed" ? 409 : res.state == "pending" ? 202 : 200;
            if (status == 409) return core::errorResponse(409, "remote_action_failed", res.result);
            return r.response(status);
          }));

  // Service parameters (MG-3): cluster-wide, declared by the services' modules.
  const auto paramService =
      Arg::string("name").inPath().positional("SERVICE").help("the service's stable name (federation-cm, ...)");
  const auto paramName = Arg::string("param").inPath().positional("NAME").help("the parameter's name (recovery-rate, ...)");
  const char* paramsText =
      "Service parameters are cluster-wide settings of a service, like the original product's Service Parameters: "
      "each has a type, a default, a range and a unit, declared by the service. A change is stored in the cluster "
      "database and applied live, without restarting anything: the services of this node have applied it when "
      "impctl answers, the other nodes apply it at their next settings check ([services] settings_poll_ms). A "
      "parameter never set has its default; a parameter that allows it takes \"unlimited\" for no limit.";
  reg.add(Command("service param show", "GET", "/api/v1/services/{name}/params")
              .arg(paramService)
              .help("The service parameters of a service: value, default, range, unit and description.")
              .describe(paramsText)
              .example("service param show federation-cm", "the federation connection manager's parameters")
              .returns(core::shape<ServiceParamsShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& s = core::shape<ServiceParamsShape>();
                out << s.service.text(o) << " (" << s.displayName.text(o) << ")\n";
                s.params.print(out, o);
              })
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                const auto& name = a.at("name");
                std::vector<Reply> rows;
                for (const auto& e : c.params->list(name)) rows.push_back(paramReply(e));
                const auto& s = core::shape<ServiceParamsShape>();
                return Reply(s)
                    .set(s.service, name)
                    .set(s.displayName, c.modules->displayName(name))
                    .set(s.params, rows)
                    .response();
              }));
  reg.add(Command("service param set", "PUT", "/api/v1/services/{name}/params/{param}")
              .arg(paramService)
              .arg(paramName)
              .arg(Arg::string("value").required().positional("VALUE").help(
                  "a whole number in the parameter's range, unlimited where the parameter allows it, on or off for "
                  "a switch"))
              .help("Change a service parameter, cluster-wide and live.")
              .describe(paramsText)
              .example("service param set federation-cm recovery-rate 200",
                       "re-establish federated subscriptions at 200 requests per second")
              .returns(core::shape<ServiceParamChangeShape>())
              .print(printParamChange)
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                const auto& p = c.params->info(a.at("name"), a.at("param"));
                return paramChange(c, p, c.params->set(p.service, p.name, a.at("value")));
              }));
  reg.add(Command("service param reset", "DELETE", "/api/v1/services/{name}/params/{param}")
              .arg(paramService)
              .arg(paramName)
              .help("Give a service parameter its default value again, cluster-wide and live.")
              .describe(paramsText)
              .example("service param reset federation-cm recovery-rate", "back to the default")
              .returns(core::shape<ServiceParamChangeShape>())
              .print(printParamChange)
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                const auto& p = c.params->info(a.at("name"), a.at("param"));
                return paramChange(c, p, c.params->reset(p.service, p.name));
              }));

  reg.add(Command("trace show", "GET", "/api/v1/trace")
              .arg(nodeArg)
              .help("The trace settings of every service of a node.")
              .describe("For each service: on/off, level, the flags that are on, and the flags the service has.")
              .returns(core::shape<TracesShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                out << "node: " << core::shape<TracesShape>().node.text(o) << "\n";
                for (const auto& t : core::shape<TracesShape>().traces.get(o)) printTrace(out, t);
              })
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                auto nodeId = a.str("node").value_or(c.control->self().id);
                std::vector<Reply> list;
                for (const auto& t : c.control->traces(nodeId)) list.push_back(traceReply(*c.modules, t));
                const auto& s = core::shape<TracesShape>();
                return Reply(s).set(s.node, nodeId).set(s.traces, list).response();
              }));

  const auto service = Arg::string("service").inPath().positional("SERVICE").help("the service's stable name");
  reg.add(Command("trace show", "GET", "/api/v1/trace/{service}")
              .arg(service)
              .arg(nodeArg)
              .help("The trace setting of one service.")
              .returns(core::shape<TraceShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) { printTrace(out, o); })
              .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
                auto nodeId = a.str("node").value_or(c.control->self().id);
                const auto& name = a.at("service");
                c.control->requireService(name);
                for (const auto& t : c.control->traces(nodeId))
                  if (t.service == name) {
                    return traceReply(*c.modules, t).set(core::shape<TraceShape>().node, nodeId).response();
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
          .returns(core::shape<TraceShape>())
          .print([](std::ostream& out, const Obj::Ptr& o, int) {
            printTrace(out, o);
            out << "applied " << core::shape<TraceShape>().applied.text(o) << " on " << core::shape<TraceShape>().node.text(o) << "\n";
          })
          .handler<AdminContext>([](AdminContext& c, const CommandArgs& a) {
            auto nodeId = a.str("node").value_or(c.control->self().id);
            auto t = c.control->setTrace(nodeId, a.at("service"), a.boolean("enabled"), a.str("level"), a.strings("flags"));
            const auto& s = core::shape<TraceShape>();
            return traceReply(*c.modules, t)
                .set(s.node, nodeId)
                .set(s.applied, nodeId == c.control->self().id ? "now" : "when the node sees the change")
                .response();
          }));

  reg.add(Command("db status", "GET", "/api/v1/db/status")
              .help("Schema migrations: those applied (when and by which node) and those pending in [node] sql_dir.")
              .example("db status", "check for pending migrations")
              .returns(core::shape<DbStatusShape>())
              .print(printDbStatus)
              .handler<AdminContext>([](AdminContext& c, const CommandArgs&) {
                auto st = c.migrator->status();
                const auto& m = core::shape<MigrationShape>();
                std::vector<Reply> applied, pending;
                for (const auto& x : st.applied) {
                  Reply r(m);
                  r.set(m.version, x.version).set(m.name, x.name).set(m.appliedAt, x.appliedAt).set(m.appliedBy, x.appliedBy);
                  applied.push_back(r);
                }
                for (const auto& x : st.pending) {
                  Reply r(m);
                  r.set(m.version, x.version).set(m.name, x.name);
                  pending.push_back(r);
                }
                const auto& s = core::shape<DbStatusShape>();
                Reply r(s);
                r.set(s.mode, c.dbMode).set(s.location, c.dbLocation).set(s.reachable, c.settings->databaseReachable());
                r.set(s.applied, applied).set(s.pending, pending);
                return r.response();
              }));

  reg.add(Command("db migrate", "POST", "/api/v1/db/migrate")
              .help("Apply the pending migrations now, under the cluster-wide lock impd takes at start-up.")
              .returns(core::shape<DbMigrateShape>())
              .print([](std::ostream& out, const Obj::Ptr& o, int) {
                const auto& s = core::shape<DbMigrateShape>();
                auto applied = s.applied.get(o);
                if (applied.empty()) out << "schema is up to date (version " << s.schemaVersion.text(o) << ")\n";
                for (const auto& m : applied) out << "applied " << m << "\n";
              })
              .handler<AdminContext>([](AdminContext& c, const CommandArgs&) {
                auto done = c.migrator->migrate();
                std::vector<std::string> names;
                for (const auto& m : done) names.push_back(m.name);
                const auto& s = core::shape<DbMigrateShape>();
                return Reply(s).set(s.applied, names).set(s.schemaVersion, c.migrator->currentVersion()).response();
              }));
}

}  // namespace imp::serviceability
