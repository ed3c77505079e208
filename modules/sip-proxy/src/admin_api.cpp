#include "imp/sip_proxy/admin_api.h"

#include <imp/core/admin_http.h>
#include <imp/core/admin_json.h>
#include <imp/directory/directory.h>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <initializer_list>
#include <limits>

#include "imp/sip_proxy/config_store.h"
#include "imp/sip_proxy/proxy_service.h"
#include "imp/sip_proxy/routing.h"

namespace imp::sip_proxy {

using core::AdminError;
using core::AdminRequest;
using core::AdminResponse;
using Obj = Poco::JSON::Object;
using Arr = Poco::JSON::Array;
using core::json::onlyFields;
using core::json::optBool;
using core::json::optInt;
using core::json::optString;
using core::json::reqString;

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

std::optional<TlsVersion> optVersion(const Obj::Ptr& body, const std::string& name) {
  auto s = optString(body, name);
  if (!s) return std::nullopt;
  auto v = parseTlsVersion(*s);
  if (!v) core::json::badField(name, name + " '" + *s + "' is not a TLS version; use 1.0, 1.1, 1.2 or 1.3");
  return v;
}

}  // namespace

void registerAdminRoutes(core::AdminRouter& router, ConfigStore& store, directory::Directory& dir) {
  // ---- federation (FED-4, FED-5, FED-6) ----
  router.add("GET", "/api/v1/federation", [&store](const AdminRequest&) {
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
  });
  router.add("PUT", "/api/v1/federation", [&store](const AdminRequest& r) {
    auto body = r.json();
    onlyFields(body, {"enabled", "routing_mode", "email_for_interdomain"});
    FederationUpdate u;
    u.enabled = optBool(body, "enabled");
    u.emailForInterdomain = optBool(body, "email_for_interdomain");
    if (auto m = optString(body, "routing_mode")) {
      u.routingMode = parseRoutingMode(*m);
      if (!u.routingMode) core::json::badField("routing_mode", "routing mode '" + *m + "' is not basic or advanced");
    }
    auto res = store.updateFederation(u);
    auto o = federationJson(res.settings);
    o->set("changed", res.changed);
    o->set("warnings", strings(res.warnings));
    o->set("applied", res.changed ? "live on every node (settings generation " + std::to_string(res.generation) +
                                        "); no restart is needed"
                                  : "nothing changed");
    return AdminResponse::json(o);
  });

  // ---- application listeners (TLS-1) ----
  router.add("GET", "/api/v1/listeners", [&store](const AdminRequest&) {
    Arr::Ptr a = new Arr;
    for (const auto& l : store.listeners()) a->add(listenerJson(l));
    Obj::Ptr o = new Obj;
    o->set("listeners", a);
    return AdminResponse::json(o);
  });
  router.add("PUT", "/api/v1/listeners/{name}", [&store](const AdminRequest& r) {
    auto body = r.json();
    onlyFields(body, {"port", "enabled"});
    return AdminResponse::json(listenerJson(store.setListener(r.params.at("name"), optInt(body, "port"), optBool(body, "enabled"))));
  });

  // ---- TLS peer subjects and contexts (TLS-2, TLS-3) ----
  router.add("GET", "/api/v1/tls/peer-subjects", [&store](const AdminRequest&) {
    Arr::Ptr a = new Arr;
    for (const auto& p : store.peerSubjects()) a->add(peerSubjectJson(p));
    Obj::Ptr o = new Obj;
    o->set("peer_subjects", a);
    return AdminResponse::json(o);
  });
  router.add("POST", "/api/v1/tls/peer-subjects", [&store](const AdminRequest& r) {
    auto body = r.json();
    onlyFields(body, {"subject_cn", "description"});
    auto p = store.addPeerSubject(reqString(body, "subject_cn"), optString(body, "description").value_or(""));
    return AdminResponse::json(peerSubjectJson(p), 201);
  });
  router.add("DELETE", "/api/v1/tls/peer-subjects/{cn}", [&store](const AdminRequest& r) {
    const auto& cn = r.params.at("cn");
    if (!store.deletePeerSubject(cn)) throw AdminError(404, "unknown_peer_subject", "no TLS peer subject '" + cn + "'");
    Obj::Ptr o = new Obj;
    o->set("deleted", lower(cn));
    return AdminResponse::json(o);
  });
  router.add("GET", "/api/v1/tls/contexts", [&store](const AdminRequest&) {
    Arr::Ptr a = new Arr;
    for (const auto& c : store.tlsContexts()) a->add(contextJson(c));
    Obj::Ptr o = new Obj;
    o->set("contexts", a);
    return AdminResponse::json(o);
  });
  router.add("PUT", "/api/v1/tls/contexts/{name}", [&store](const AdminRequest& r) {
    auto body = r.json();
    onlyFields(body, {"ciphers", "min_version", "max_version", "disable_empty_fragments", "peer_subjects"});
    TlsContextUpdate u;
    if (body->has("ciphers")) {
      auto v = body->get("ciphers");
      if (!v.isString()) core::json::badField("ciphers", "field 'ciphers' must be a string");
      u.ciphers = v.extract<std::string>();
    }
    u.minVersion = optVersion(body, "min_version");
    u.maxVersion = optVersion(body, "max_version");
    u.disableEmptyFragments = optBool(body, "disable_empty_fragments");
    if (body->has("peer_subjects")) {
      auto a = body->getArray("peer_subjects");
      if (!a) core::json::badField("peer_subjects", "field 'peer_subjects' must be a list of subject CNs");
      std::vector<std::string> cns;
      for (const auto& v : *a) {
        if (!v.isString()) core::json::badField("peer_subjects", "field 'peer_subjects' must be a list of subject CNs");
        cns.push_back(v.extract<std::string>());
      }
      u.peerSubjects = cns;
    }
    std::vector<std::string> warnings;
    auto c = store.updateTlsContext(r.params.at("name"), u, &warnings);
    auto o = contextJson(c);
    o->set("warnings", strings(warnings));
    return AdminResponse::json(o);
  });

  // ---- incoming ACL (RT-7) ----
  router.add("GET", "/api/v1/acl", [&store](const AdminRequest&) {
    Arr::Ptr a = new Arr;
    for (const auto& e : store.acl()) a->add(aclJson(e));
    Obj::Ptr o = new Obj;
    o->set("acl", a);
    return AdminResponse::json(o);
  });
  router.add("POST", "/api/v1/acl", [&store](const AdminRequest& r) {
    auto body = r.json();
    onlyFields(body, {"pattern", "description"});
    auto e = store.addAcl(reqString(body, "pattern"), optString(body, "description").value_or(""));
    return AdminResponse::json(aclJson(e), 201);
  });
  router.add("DELETE", "/api/v1/acl/{pattern}", [&store](const AdminRequest& r) {
    const auto& p = r.params.at("pattern");
    if (!store.deleteAcl(p)) throw AdminError(404, "unknown_acl_entry", "no incoming ACL entry '" + p + "'");
    Obj::Ptr o = new Obj;
    o->set("deleted", p);
    return AdminResponse::json(o);
  });

  // ---- static routes (RT-2, RT-3) ----
  router.add("GET", "/api/v1/routes", [&store](const AdminRequest&) {
    Arr::Ptr a = new Arr;
    for (const auto& rt : store.routes()) a->add(routeJson(rt));
    Obj::Ptr o = new Obj;
    o->set("routes", a);
    return AdminResponse::json(o);
  });
  router.add("POST", "/api/v1/routes", [&store](const AdminRequest& r) {
    auto body = r.json();
    onlyFields(body, {"pattern", "route_type", "next_hop", "port", "transport", "priority", "weight"});
    StaticRoute rt;
    rt.pattern = reqString(body, "pattern");
    auto type = reqString(body, "route_type");
    auto t = parseRouteType(type);
    if (!t) core::json::badField("route_type", "route type '" + type + "' is not domain or user");
    rt.type = *t;
    rt.nextHop = reqString(body, "next_hop");
    if (auto tr = optString(body, "transport")) {
      auto x = parseTransport(*tr);
      if (!x) core::json::badField("transport", "transport '" + *tr + "' is not TCP, TLS or UDP");
      rt.transport = *x;
    }
    // Lync speaks TLS on 5061, OCS 2007 R2 also TCP on 5060 (FED-2).
    std::int64_t port = optInt(body, "port").value_or(rt.transport == Transport::Tls ? 5061 : 5060);
    if (auto e = checkPort(port); !e.empty()) core::json::badField("port", e);
    std::int64_t priority = optInt(body, "priority").value_or(1);
    if (auto e = checkPriority(priority); !e.empty()) core::json::badField("priority", e);
    std::int64_t weight = optInt(body, "weight").value_or(1);
    if (auto e = checkWeight(weight); !e.empty()) core::json::badField("weight", e);
    rt.port = static_cast<int>(port);
    rt.priority = static_cast<int>(priority);
    rt.weight = static_cast<int>(weight);
    return AdminResponse::json(routeJson(store.addRoute(rt)), 201);
  });
  router.add("DELETE", "/api/v1/routes/{id}", [&store](const AdminRequest& r) {
    const auto& idText = r.params.at("id");
    std::int64_t id = 0;
    bool ok = !idText.empty() && idText.size() <= 18;
    for (char c : idText) {
      ok = ok && c >= '0' && c <= '9';
      if (ok) id = id * 10 + (c - '0');
    }
    if (!ok) core::json::badField("id", "route id '" + idText + "' is not a number (see impctl route list)");
    if (!store.deleteRoute(id)) throw AdminError(404, "unknown_route", "no static route with id " + idText);
    Obj::Ptr o = new Obj;
    o->set("deleted", id);
    return AdminResponse::json(o);
  });

  // ---- the routing decision on live data (FED-6, RT-9 diagnostics) ----
  router.add("GET", "/api/v1/routing/decision", [&store, &dir](const AdminRequest& r) {
    auto recipient = r.queryOr("recipient", "");
    if (recipient.empty()) core::json::badField("recipient", "query parameter 'recipient' (user@domain) is required");
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
  });
}

namespace {
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
}  // namespace

void registerRuntimeRoutes(core::AdminRouter& router, ProxyHandle& proxy) {
  router.add("GET", "/api/v1/sip-proxy/bans", [&proxy](const AdminRequest&) {
    auto bans = proxy.bans();
    if (!bans) throw notRunning();
    return AdminResponse::json(bansJson(*bans));
  });
  router.add("DELETE", "/api/v1/sip-proxy/bans", [&proxy](const AdminRequest&) {
    auto n = proxy.clearBans("");
    if (!n) throw notRunning();
    Obj::Ptr o = new Obj;
    o->set("cleared", static_cast<std::uint64_t>(*n));
    return AdminResponse::json(o);
  });
  router.add("DELETE", "/api/v1/sip-proxy/bans/{address}", [&proxy](const AdminRequest& r) {
    const auto& given = r.params.at("address");
    auto ip = canonicalIp(given);
    if (!ip) throw AdminError(400, "invalid_address", "'" + given + "' is not an IP address");
    auto n = proxy.clearBans(*ip);
    if (!n) throw notRunning();
    if (*n == 0) throw AdminError(404, "not_banned", *ip + " is not banned");
    Obj::Ptr o = new Obj;
    o->set("cleared", static_cast<std::uint64_t>(*n));
    return AdminResponse::json(o);
  });
  router.add("GET", "/api/v1/sip-proxy/stats", [&proxy](const AdminRequest&) {
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
  });
}

}  // namespace imp::sip_proxy
