#include "imp/serviceability/control.h"

#include <imp/core/admin_http.h>
#include <imp/core/cluster_settings.h>
#include <imp/core/database.h>
#include <imp/core/module_registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>
#include <thread>


namespace imp::serviceability {

using core::AdminError;
using core::DbSession;
using core::SqlParams;

namespace {

std::string joined(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::vector<std::string> splitFlags(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string f;
  while (std::getline(in, f, ','))
    if (!f.empty()) out.push_back(f);
  return out;
}

const std::vector<std::string> kActions = {"activate", "deactivate", "start", "stop", "restart"};

}  // namespace

NodeControl::NodeControl(NodeIdentity self, core::Database& db, core::ServiceHost& host, core::LogRegistry& logs,
                         const core::ModuleRegistry& modules, std::shared_ptr<spdlog::logger> log)
    : self_(std::move(self)), db_(db), host_(host), logs_(logs), modules_(modules), log_(std::move(log)) {}

std::vector<std::string> NodeControl::desiredServices() {
  if (!core::findRole(self_.role)) throw std::logic_error("unknown role " + self_.role);
  std::vector<std::string> out = modules_.servicesOf(self_.role);
  auto rows = db_.query("SELECT service, active FROM svc_activation WHERE node_id = ?", {self_.id});
  auto known = host_.knownNames();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    auto svc = rows.str(i, "service");
    if (std::find(known.begin(), known.end(), svc) == known.end()) {
      if (log_) log_->warn("activation row for unknown service '{}' ignored", svc);
      continue;
    }
    bool active = rows.num(i, "active") != 0;
    auto it = std::find(out.begin(), out.end(), svc);
    if (active && it == out.end()) out.push_back(svc);
    if (!active && it != out.end()) out.erase(it);
  }
  return out;
}

void NodeControl::registerNode() {
  db_.exec(
      "INSERT INTO core_node (node_id, role, hostname, admin_url, version, started_at, last_seen, state)"
      " VALUES (?, ?, ?, ?, ?, CURRENT_TIMESTAMP(3), CURRENT_TIMESTAMP(3), 'up')"
      " ON DUPLICATE KEY UPDATE role = VALUES(role), hostname = VALUES(hostname), admin_url = VALUES(admin_url),"
      " version = VALUES(version), started_at = VALUES(started_at), last_seen = VALUES(last_seen), state = 'up'",
      {self_.id, self_.role, self_.hostname, self_.adminUrl, self_.version});
}

void NodeControl::markNodeDown() noexcept {
  try {
    db_.exec("UPDATE core_node SET state = 'down', last_seen = CURRENT_TIMESTAMP(3) WHERE node_id = ?", {self_.id});
    db_.exec("UPDATE svc_node_service SET state = 'stopped', uptime_s = 0 WHERE node_id = ?", {self_.id});
  } catch (const std::exception& e) {
    if (log_) log_->warn("could not mark node {} down: {}", self_.id, e.what());
  }
}

void NodeControl::publishState() {
  auto services = host_.list();
  db_.transaction([&](DbSession& s) {
    s.exec("UPDATE core_node SET last_seen = CURRENT_TIMESTAMP(3), state = 'up' WHERE node_id = ?", {self_.id});
    for (const auto& i : services) {
      s.exec(
          "INSERT INTO svc_node_service (node_id, service, active, state, restarts, uptime_s, detail, reported_at)"
          " VALUES (?, ?, ?, ?, ?, ?, ?, CURRENT_TIMESTAMP(3))"
          " ON DUPLICATE KEY UPDATE active = VALUES(active), state = VALUES(state), restarts = VALUES(restarts),"
          " uptime_s = VALUES(uptime_s), detail = VALUES(detail), reported_at = VALUES(reported_at)",
          {self_.id, i.name, i.active, std::string(core::nameOf(i.state)), static_cast<std::int64_t>(i.restarts),
           i.uptimeSeconds, i.detail.substr(0, 512)});
    }
  });
}

std::vector<std::string> NodeControl::knownNodes() {
  auto rows = db_.query("SELECT node_id FROM core_node ORDER BY node_id");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < rows.size(); ++i) out.push_back(rows.str(i, "node_id"));
  return out;
}

void NodeControl::requireNode(const std::string& node) {
  if (node == self_.id) return;
  auto nodes = knownNodes();
  if (std::find(nodes.begin(), nodes.end(), node) == nodes.end())
    throw AdminError(404, "unknown_node", "unknown node '" + node + "'; nodes: " + joined(nodes));
}

void NodeControl::requireService(const std::string& service) const {
  auto known = host_.knownNames();
  if (std::find(known.begin(), known.end(), service) == known.end()) {
    Poco::JSON::Object::Ptr d = new Poco::JSON::Object;
    Poco::JSON::Array::Ptr valid = new Poco::JSON::Array;
    for (const auto& k : known) valid->add(k);
    d->set("valid", valid);
    throw AdminError(404, "unknown_service", "unknown service '" + service + "'; valid services: " + joined(known), d);
  }
}

void NodeControl::runLocal(const std::string& service, const std::string& action) {
  if (action == "activate") host_.activate(service);
  else if (action == "deactivate") host_.deactivate(service);
  else if (action == "start") host_.start(service);
  else if (action == "stop") host_.stop(service);
  else host_.restart(service);
}

CommandResult NodeControl::control(const std::string& node, const std::string& service, const std::string& action) {
  if (std::find(kActions.begin(), kActions.end(), action) == kActions.end())
    throw AdminError(400, "unknown_action", "unknown action '" + action + "'; valid actions: " + joined(kActions));
  requireService(service);
  requireNode(node);
  bool isActivation = action == "activate" || action == "deactivate";
  std::int64_t commandId = 0;
  db_.transaction([&](DbSession& s) {
    if (isActivation) {
      // SV-3: activation is persisted per node and survives restarts.
      s.exec(
          "INSERT INTO svc_activation (node_id, service, active) VALUES (?, ?, ?)"
          " ON DUPLICATE KEY UPDATE active = VALUES(active), changed_at = CURRENT_TIMESTAMP(3)",
          {node, service, action == "activate"});
    } else if (node != self_.id) {
      s.exec("INSERT INTO svc_command (node_id, service, action) VALUES (?, ?, ?)", {node, service, action});
      commandId = static_cast<std::int64_t>(s.lastInsertId());
    }
    core::ClusterSettings::bump(s);
  });
  if (node == self_.id) {
    try {
      runLocal(service, action);
    } catch (const core::HostError& e) {
      throw AdminError(e.exitCode() == 70 ? 500 : 409, "service_" + action + "_failed", e.what());
    }
    if (log_) log_->info("service {}: {} done on this node", service, action);
    return {"done", service + ": " + action + " done on " + node};
  }
  if (isActivation) return {"pending", service + ": " + action + " stored; node " + node + " applies it on its next settings check"};
  // Wait for the other node's serviceability service to carry it out.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = db_.query("SELECT state, result FROM svc_command WHERE id = ?", {commandId});
    if (!r.empty() && r.str(0, "state") != "pending") return {r.str(0, "state"), r.str(0, "result")};
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return {"pending", "node " + node + " has not carried out the request yet (is its serviceability service running?)"};
}

TraceView NodeControl::traceOf(const std::string& node, const std::string& service) {
  auto r = db_.query("SELECT enabled, level, flags FROM svc_trace WHERE node_id = ? AND service = ?", {node, service});
  TraceView v;
  v.service = service;
  if (r.empty()) {
    v.enabled = true;
    v.level = core::levelName(logs_.settings().defaultLevel);
    return v;
  }
  v.stored = true;
  v.enabled = r.num(0, "enabled") != 0;
  v.level = r.str(0, "level");
  v.flags = splitFlags(r.str(0, "flags"));
  return v;
}

std::vector<TraceView> NodeControl::traces(const std::string& node) {
  requireNode(node);
  std::vector<TraceView> out;
  for (const auto& n : host_.knownNames()) out.push_back(traceOf(node, n));
  return out;
}

TraceView NodeControl::setTrace(const std::string& node, const std::string& service, std::optional<bool> enabled,
                                std::optional<std::string> level, std::optional<std::vector<std::string>> flags) {
  requireService(service);
  requireNode(node);
  if (level && !core::parseLevel(*level))
    throw AdminError(400, "bad_level", "unknown trace level '" + *level + "'; valid levels: trace, debug, info, warn, error, critical");
  if (flags) {
    const auto& allowed = modules_.traceFlags(service);
    std::vector<std::string> names;
    for (const auto& a : allowed) names.push_back(a.id);
    for (const auto& f : *flags)
      if (std::find(names.begin(), names.end(), f) == names.end())
        throw AdminError(400, "bad_flag",
                         "service '" + service + "' has no trace flag '" + f + "'" +
                             (names.empty() ? std::string("; it has no extra flags") : "; valid flags: " + joined(names)));
  }
  TraceView v;
  db_.transaction([&](DbSession& s) {
    // Read-modify-write under the row lock so concurrent edits do not mix.
    auto r = s.query("SELECT enabled, level, flags FROM svc_trace WHERE node_id = ? AND service = ? FOR UPDATE",
                     {node, service});
    v.service = service;
    v.stored = true;
    v.enabled = r.empty() ? true : r.num(0, "enabled") != 0;
    v.level = r.empty() ? core::levelName(logs_.settings().defaultLevel) : r.str(0, "level");
    v.flags = r.empty() ? std::vector<std::string>{} : splitFlags(r.str(0, "flags"));
    if (enabled) v.enabled = *enabled;
    if (level) v.level = core::levelName(*core::parseLevel(*level));
    if (flags) v.flags = *flags;
    s.exec(
        "INSERT INTO svc_trace (node_id, service, enabled, level, flags) VALUES (?, ?, ?, ?, ?)"
        " ON DUPLICATE KEY UPDATE enabled = VALUES(enabled), level = VALUES(level), flags = VALUES(flags),"
        " changed_at = CURRENT_TIMESTAMP(3)",
        {node, service, v.enabled, v.level, joined(v.flags, ",")});
    core::ClusterSettings::bump(s);
  });
  if (node == self_.id) {
    core::TraceSetting t{v.enabled, *core::parseLevel(v.level), {v.flags.begin(), v.flags.end()}};
    logs_.setTrace(service, t);
    if (log_) log_->info("trace for {} set: {} level {} flags [{}]", service, v.enabled ? "on" : "off", v.level, joined(v.flags));
  }
  return v;
}

void NodeControl::applyTraces() {
  auto rows = db_.query("SELECT service, enabled, level, flags FROM svc_trace WHERE node_id = ?", {self_.id});
  for (std::size_t i = 0; i < rows.size(); ++i) {
    auto lvl = core::parseLevel(rows.str(i, "level"));
    if (!lvl) continue;
    auto flags = splitFlags(rows.str(i, "flags"));
    core::TraceSetting t{rows.num(i, "enabled") != 0, *lvl, {flags.begin(), flags.end()}};
    auto current = logs_.trace(rows.str(i, "service"));
    if (current.enabled != t.enabled || current.level != t.level || current.flags != t.flags)
      logs_.setTrace(rows.str(i, "service"), t);
  }
}

void NodeControl::applyActivation() {
  auto desired = desiredServices();
  for (const auto& i : host_.list()) {
    bool want = std::find(desired.begin(), desired.end(), i.name) != desired.end();
    try {
      if (want && !i.active) host_.activate(i.name);
      else if (!want && i.active) host_.deactivate(i.name);
    } catch (const std::exception& e) {
      if (log_) log_->error("applying activation of {}: {}", i.name, e.what());
    }
  }
}

void NodeControl::runCommands() {
  auto rows = db_.query("SELECT id, service, action FROM svc_command WHERE node_id = ? AND state = 'pending' ORDER BY id",
                        {self_.id});
  for (std::size_t i = 0; i < rows.size(); ++i) {
    auto service = rows.str(i, "service");
    auto action = rows.str(i, "action");
    std::string state = "done", result = service + ": " + action + " done on " + self_.id;
    try {
      runLocal(service, action);
    } catch (const std::exception& e) {
      state = "failed";
      result = e.what();
    }
    if (log_) log_->info("remote request #{}: {} {} -> {}", rows.str(i, "id"), action, service, state);
    db_.exec("UPDATE svc_command SET state = ?, result = ?, done_at = CURRENT_TIMESTAMP(3) WHERE id = ?",
             {state, result.substr(0, 1024), rows.num(i, "id")});
  }
}

void NodeControl::applyPending() {
  std::lock_guard<std::recursive_mutex> lock(applyMu_);
  applyTraces();
  applyActivation();
  runCommands();
}

}  // namespace imp::serviceability
