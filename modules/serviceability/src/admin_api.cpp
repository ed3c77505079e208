#include "imp/serviceability/admin_api.h"

#include <imp/core/admin_http.h>
#include <imp/core/cluster_settings.h>
#include <imp/core/database.h>
#include <imp/core/metrics.h>
#include <imp/core/migrations.h>
#include <imp/core/module_registry.h>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include "imp/serviceability/control.h"

namespace imp::serviceability {

using core::AdminError;
using core::AdminRequest;
using core::AdminResponse;
using Obj = Poco::JSON::Object;
using Arr = Poco::JSON::Array;

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

}  // namespace

void registerAdminRoutes(core::AdminRouter& router, const AdminContext& c) {
  if (!c.control || !c.modules || !c.db) throw std::logic_error("serviceability admin routes need control, modules and db");
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

  router.add("GET", "/api/v1/status", [c](const AdminRequest&) {
    auto& self = c.control->self();
    Obj::Ptr node = new Obj;
    node->set("id", self.id);
    node->set("role", self.role);
    node->set("hostname", self.hostname);
    node->set("admin_url", self.adminUrl);
    node->set("version", self.version);
    node->set("uptime_s",
              std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - self.startedAt).count());
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
  });

  router.add("GET", "/api/v1/cluster/nodes", [c](const AdminRequest&) {
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
      std::string state = rows.str(i, "state") == "down" ? "down" : age > 3 * c.heartbeatInterval ? "stale" : "up";
      n->set("state", state);
      n->set("self", id == c.control->self().id);
      n->set("services", publishedServices(*c.modules, *c.db, id));
      nodes->add(n);
    }
    Obj::Ptr o = new Obj;
    o->set("nodes", nodes);
    return AdminResponse::json(o);
  });

  router.add("GET", "/api/v1/services", [c](const AdminRequest& r) {
    auto node = r.queryOr("node", c.control->self().id);
    Obj::Ptr o = new Obj;
    o->set("node", node);
    if (node == c.control->self().id) {
      Arr::Ptr services = new Arr;
      for (const auto& i : c.control->host().list()) services->add(serviceJson(i));
      o->set("services", services);
    } else {
      c.control->requireNode(node);
      o->set("services", publishedServices(*c.modules, *c.db, node));
      o->set("published", true);
    }
    return AdminResponse::json(o);
  });

  router.add("POST", "/api/v1/services/{name}/{action}", [c](const AdminRequest& r) {
    auto node = r.queryOr("node", c.control->self().id);
    auto res = c.control->control(node, r.params.at("name"), r.params.at("action"));
    Obj::Ptr o = new Obj;
    o->set("node", node);
    o->set("service", r.params.at("name"));
    o->set("action", r.params.at("action"));
    o->set("state", res.state);
    o->set("message", res.result);
    if (node == c.control->self().id) o->set("service_status", serviceJson(c.control->host().info(r.params.at("name"))));
    int status = res.state == "failed" ? 409 : res.state == "pending" ? 202 : 200;
    if (status == 409) return core::errorResponse(409, "remote_action_failed", res.result);
    return AdminResponse::json(o, status);
  });

  router.add("GET", "/api/v1/trace", [c](const AdminRequest& r) {
    auto node = r.queryOr("node", c.control->self().id);
    Arr::Ptr a = new Arr;
    for (const auto& t : c.control->traces(node)) a->add(traceJson(*c.modules, t));
    Obj::Ptr o = new Obj;
    o->set("node", node);
    o->set("traces", a);
    return AdminResponse::json(o);
  });

  router.add("GET", "/api/v1/trace/{service}", [c](const AdminRequest& r) {
    auto node = r.queryOr("node", c.control->self().id);
    c.control->requireService(r.params.at("service"));
    for (const auto& t : c.control->traces(node))
      if (t.service == r.params.at("service")) {
        auto o = traceJson(*c.modules, t);
        o->set("node", node);
        return AdminResponse::json(o);
      }
    throw AdminError(404, "unknown_service", "unknown service '" + r.params.at("service") + "'");
  });

  router.add("PUT", "/api/v1/trace/{service}", [c](const AdminRequest& r) {
    auto node = r.queryOr("node", c.control->self().id);
    auto body = r.json();
    static const std::vector<std::string> allowed = {"enabled", "level", "flags"};
    for (const auto& [k, v] : *body)
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end())
        throw AdminError(400, "unknown_field", "unknown field '" + k + "'; valid fields: enabled, level, flags");
    std::optional<bool> enabled;
    std::optional<std::string> level;
    std::optional<std::vector<std::string>> flags;
    if (body->has("enabled")) {
      auto v = body->get("enabled");
      if (!v.isBoolean()) throw AdminError(400, "bad_field", "'enabled' must be true or false");
      enabled = v.extract<bool>();
    }
    if (body->has("level")) {
      auto v = body->get("level");
      if (!v.isString()) throw AdminError(400, "bad_field", "'level' must be a string");
      level = v.extract<std::string>();
    }
    if (body->has("flags")) {
      if (!body->isArray("flags")) throw AdminError(400, "bad_field", "'flags' must be an array of strings");
      flags.emplace();
      for (const auto& f : *body->getArray("flags")) {
        if (!f.isString()) throw AdminError(400, "bad_field", "'flags' must be an array of strings");
        flags->push_back(f.extract<std::string>());
      }
    }
    auto t = c.control->setTrace(node, r.params.at("service"), enabled, level, flags);
    auto o = traceJson(*c.modules, t);
    o->set("node", node);
    o->set("applied", node == c.control->self().id ? "now" : "when the node sees the change");
    return AdminResponse::json(o);
  });

  router.add("GET", "/api/v1/db/status", [c](const AdminRequest&) {
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
  });

  router.add("POST", "/api/v1/db/migrate", [c](const AdminRequest&) {
    auto done = c.migrator->migrate();
    Arr::Ptr a = new Arr;
    for (const auto& m : done) a->add(m.name);
    Obj::Ptr o = new Obj;
    o->set("applied", a);
    o->set("schema_version", c.migrator->currentVersion());
    return AdminResponse::json(o);
  });
}

}  // namespace imp::serviceability
