// sip-proxy's commands (FED-4..6, TLS-1..3, RT-2, RT-3, RT-7, RT-9): impctl's
// text for each answer (issue 15 deliverable 4: the answers' fields are
// declared once, in admin_api.cpp, and the printers read them through that
// declaration). Expected texts are written out by hand.
#include <doctest/doctest.h>
#include <imp/core/command_registry.h>
#include <imp/core/admin_http.h>
#include <imp/directory/directory.h>
#include <imp/sip_proxy/admin_api.h>
#include <imp/sip_proxy/config_store.h>
#include <imp/sip_proxy/proxy_service.h>
#include <imp/testing/fake_database.h>
#include <imp/testing/printed.h>

using namespace imp;
using testing::command;
using testing::FakeDatabase;
using testing::printed;

namespace {

struct Commands {
  core::CommandRegistry reg;
  Commands() { sip_proxy::registerCommands(reg); }
};

const std::string kListener =
    R"({"name": "tcp", "display_name": "Default Cisco SIP Proxy TCP Listener", "transport": "TCP", "auth": "none",)"
    R"( "enabled": true, "port": 5060, "default_port": 5060})";
const std::string kContext =
    R"({"name": "peer-auth", "display_name": "Default Cisco SSL Peer Auth", "ciphers": "HIGH", "min_version": "1.2",)"
    R"( "max_version": "1.3", "disable_empty_fragments": true, "peer_subjects": ["a.example.com", "b.example.com"])";
const std::string kContextTable =
    "NAME       MIN  MAX  DISABLE EMPTY FRAGMENTS  PEER SUBJECTS                CIPHERS  DISPLAY NAME\n"
    "peer-auth  1.2  1.3  yes                      a.example.com,b.example.com  HIGH     Default Cisco SSL Peer Auth\n";
const std::string kRoute =
    R"({"id": 3, "pattern": ".com.example.*", "route_type": "domain", "next_hop": "lync.example.com", "port": 5061,)"
    R"( "transport": "TLS", "priority": 1, "weight": 10})";
const std::string kRouteHeader = "ID  PATTERN         TYPE    NEXT HOP          PORT  TRANSPORT  PRIORITY  WEIGHT\n";

}  // namespace

TEST_CASE("impctl federation show|enable|disable|set print the settings (FED-4, FED-5, FED-6)") {
  Commands c;
  const std::string settings = R"("enabled": true, "routing_mode": "basic", "email_for_interdomain": false)";
  const std::string lines =
      "partitioned intradomain federation:         enabled\n"
      "routing mode:                               basic\n"
      "email address for inter-domain federation:  off\n";
  CHECK(printed(command(c.reg, "federation show"),
                "{" + settings +
                    R"(, "changed_at": "2026-12-06 10:00:00", "recent_changes": [{"at": "2026-12-06 10:00:00", "what": "enabled"},)"
                    R"( {"at": "2026-12-05 09:00:00", "what": "routing mode advanced"}]})") ==
        lines +
            "last change:                                2026-12-06 10:00:00  enabled\n"
            "                                            2026-12-05 09:00:00  routing mode advanced\n");
  CHECK(printed(command(c.reg, "federation show"),
                R"({"enabled": false, "routing_mode": "advanced", "email_for_interdomain": true, "changed_at": "",)"
                R"( "recent_changes": []})") ==
        "partitioned intradomain federation:         disabled\n"
        "routing mode:                               advanced\n"
        "email address for inter-domain federation:  on\n"
        "last change:                                never (defaults)\n");
  const std::string change = "{" + settings +
                             R"(, "changed": true, "warnings": ["read this", "and this"],)"
                             R"( "applied": "live on every node (settings generation 4); no restart is needed"})";
  const std::string text = "WARNING: read this\nWARNING: and this\n" + lines +
                           "applied: live on every node (settings generation 4); no restart is needed\n";
  CHECK(printed(command(c.reg, "federation enable"), change) == text);
  CHECK(printed(command(c.reg, "federation disable"), change) == text);
  CHECK(printed(command(c.reg, "federation set"), change) == text);
}

TEST_CASE("impctl listener list|set print the application listeners (TLS-1)") {
  Commands c;
  CHECK(printed(command(c.reg, "listener list"),
                R"({"listeners": [)" + kListener +
                    R"(, {"name": "udp", "display_name": "Default Cisco SIP Proxy UDP Listener", "transport": "UDP",)"
                    R"( "auth": "none", "enabled": false, "port": 5070, "default_port": 5060}]})") ==
        "NAME  TRANSPORT  AUTH  ENABLED  PORT  DEFAULT  DISPLAY NAME\n"
        "tcp   TCP        none  yes      5060  5060     Default Cisco SIP Proxy TCP Listener\n"
        "udp   UDP        none  no       5070  5060     Default Cisco SIP Proxy UDP Listener\n");
  CHECK(printed(command(c.reg, "listener set", 1), kListener) ==
        "NAME  TRANSPORT  AUTH  ENABLED  PORT  DEFAULT  DISPLAY NAME\n"
        "tcp   TCP        none  yes      5060  5060     Default Cisco SIP Proxy TCP Listener\n");
}

TEST_CASE("impctl tls peer-subject and tls context commands print their tables (TLS-2, TLS-3)") {
  Commands c;
  const std::string lync = R"({"subject_cn": "lync.example.com", "description": "Lync pool", "used_by": ["peer-auth"]})";
  CHECK(printed(command(c.reg, "tls peer-subject add", 1), lync, 201) ==
        "SUBJECT CN        USED BY    DESCRIPTION\n"
        "lync.example.com  peer-auth  Lync pool\n");
  CHECK(printed(command(c.reg, "tls peer-subject list"),
                R"({"peer_subjects": [)" + lync + R"(, {"subject_cn": "ocs.example.com", "description": "", "used_by": []}]})") ==
        "SUBJECT CN        USED BY    DESCRIPTION\n"
        "lync.example.com  peer-auth  Lync pool\n"
        "ocs.example.com   -\n");
  CHECK(printed(command(c.reg, "tls peer-subject delete", 1), R"({"deleted": "ocs.example.com"})") ==
        "deleted TLS peer subject ocs.example.com\n");
  CHECK(printed(command(c.reg, "tls context list"), R"({"contexts": [)" + kContext + "}]}") == kContextTable);
  CHECK(printed(command(c.reg, "tls context set", 1), kContext + R"(, "warnings": ["TLS 1.0 is for OCS 2007 R2 only"]})") ==
        "WARNING: TLS 1.0 is for OCS 2007 R2 only\n" + kContextTable);
  CHECK(printed(command(c.reg, "tls context set", 1), kContext + R"(, "warnings": []})") == kContextTable);
}

TEST_CASE("impctl acl add|list|delete print the incoming ACL (RT-7)") {
  Commands c;
  const std::string edge = R"({"pattern": "10.0.0.5", "kind": "address", "description": "Lync edge"})";
  CHECK(printed(command(c.reg, "acl add", 1), edge, 201) ==
        "PATTERN   KIND     DESCRIPTION\n"
        "10.0.0.5  address  Lync edge\n");
  CHECK(printed(command(c.reg, "acl list"), R"({"acl": [)" + edge + R"(, {"pattern": "all", "kind": "all", "description": ""}]})") ==
        "PATTERN   KIND     DESCRIPTION\n"
        "10.0.0.5  address  Lync edge\n"
        "all       all\n");
  CHECK(printed(command(c.reg, "acl delete", 1), R"({"deleted": "10.0.0.5"})") == "deleted incoming ACL entry 10.0.0.5\n");
}

TEST_CASE("impctl route add|list|delete|lookup print the static routes and the routing decision (RT-2, RT-3, RT-9)") {
  Commands c;
  CHECK(printed(command(c.reg, "route add", 1), kRoute, 201) ==
        kRouteHeader + "3   .com.example.*  domain  lync.example.com  5061  TLS        1         10\n");
  CHECK(printed(command(c.reg, "route list"),
                R"({"routes": [)" + kRoute +
                    R"(, {"id": 12, "pattern": "bob", "route_type": "user", "next_hop": "10.0.0.9", "port": 5060,)"
                    R"( "transport": "TCP", "priority": 2, "weight": 1}]})") ==
        kRouteHeader +
            "3   .com.example.*  domain  lync.example.com  5061  TLS        1         10\n"
            "12  bob             user    10.0.0.9          5060  TCP        2         1\n");
  CHECK(printed(command(c.reg, "route delete", 1), R"({"deleted": 12})") == "deleted static route 12\n");
  const auto& lookup = command(c.reg, "route lookup", 1);
  CHECK(printed(lookup, R"({"recipient": "ann@example.com", "decision": "local_user", "home_node": "imp1", "routes": [],)"
                        R"( "reason": "ann is homed on this cluster"})") ==
        "ann@example.com: local_user (home node imp1)\nann is homed on this cluster\n");
  CHECK(printed(lookup, R"({"recipient": "x@example.com", "decision": "reject", "status": 404, "routes": [],)"
                        R"( "reason": "no such user"})") == "x@example.com: reject 404\nno such user\n");
  CHECK(printed(lookup, R"({"recipient": "carol@example.com", "decision": "static_route", "pattern": ".com.example.*",)"
                        R"( "routes": [)" + kRoute + R"(], "reason": "carol is not licensed on IMP"})") ==
        "carol@example.com: static_route\ncarol is not licensed on IMP\n" + kRouteHeader +
            "3   .com.example.*  domain  lync.example.com  5061  TLS        1         10\n");
}

TEST_CASE("impctl ban list|clear and proxy stats print the running proxy's state (RT-7)") {
  Commands c;
  CHECK(printed(command(c.reg, "ban list"), R"({"bans": []})") == "no address is banned\n");
  CHECK(printed(command(c.reg, "ban list"), R"({"bans": [{"address": "192.0.2.7", "expires_in_s": 90, "refused": 41},)"
                                            R"( {"address": "2001:db8::1", "expires_in_s": 5, "refused": 1}]})") ==
        "ADDRESS      EXPIRES IN  REFUSED\n"
        "192.0.2.7    1m30s       41\n"
        "2001:db8::1  5s          1\n");
  CHECK(printed(command(c.reg, "ban clear"), R"({"cleared": 2})") == "lifted 2 ban(s)\n");
  CHECK(printed(command(c.reg, "ban clear", 1), R"({"cleared": 1})") == "lifted 1 ban(s)\n");
  const std::string counters =
      R"({"requests": 100, "forwarded": 90, "failovers": 1, "acl_refused": 2, "loops": 3, "stateless_forwards": 4,)"
      R"( "flood_refused": 5, "overloaded": 6, "directory_lookups": 7, "directory_cache_hits": 8, "rejected": 9,)"
      R"( "responses_unsent": 10, "parse_errors": 11, "error_responses_sent": 12, "error_responses_unsent": 13,)"
      R"( "malformed_responses_dropped": 14, "next_hops_down": )";
  const std::string lines =
      "requests: 100\nforwarded: 90\nfailovers: 1\nacl_refused: 2\nloops: 3\nstateless_forwards: 4\nflood_refused: 5\n"
      "overloaded: 6\ndirectory_lookups: 7\ndirectory_cache_hits: 8\nrejected: 9\nresponses_unsent: 10\n"
      "parse_errors: 11\nerror_responses_sent: 12\nerror_responses_unsent: 13\nmalformed_responses_dropped: 14\n";
  CHECK(printed(command(c.reg, "proxy stats"), counters + "[]}") == lines + "next hops down: none\n");
  CHECK(printed(command(c.reg, "proxy stats"), counters + R"(["10.0.0.1:5061/TLS", "lync.example.com:5061/TLS"]})") ==
        lines + "next hops down: 10.0.0.1:5061/TLS,lync.example.com:5061/TLS\n");
}

TEST_CASE("sip-proxy's JSON answers keep their field names and types") {
  FakeDatabase db;
  db.migrate();
  sip_proxy::ConfigStore store{db};
  Commands c;
  c.reg.provide(store);
  directory::Directory dir{db};
  c.reg.provide(dir);
  sip_proxy::ProxyHandle proxy;
  c.reg.provide(proxy);
  core::AdminRouter router;
  c.reg.bind(router, "9.9.9");
  auto send = [&](const std::string& method, const std::string& path, const std::string& body = {}) {
    core::AdminRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    auto resp = router.dispatch(r, true);
    REQUIRE(resp.body.back() == '\n');
    resp.body.pop_back();
    return resp;
  };
  CHECK(send("POST", "/api/v1/acl", R"({"pattern": "10.0.0.5", "description": "Lync edge"})").body ==
        R"({"description":"Lync edge","kind":"address","pattern":"10.0.0.5"})");
  CHECK(send("GET", "/api/v1/acl").body == R"({"acl":[{"description":"Lync edge","kind":"address","pattern":"10.0.0.5"}]})");
  CHECK(send("DELETE", "/api/v1/acl/10.0.0.5").body == R"({"deleted":"10.0.0.5"})");

  const std::string route =
      R"({"id":1,"next_hop":"lync.example.com","pattern":".com.example.*","port":5061,"priority":1,)"
      R"("route_type":"domain","transport":"TLS","weight":1})";
  auto added = send("POST", "/api/v1/routes", R"({"pattern": ".com.example.*", "route_type": "domain", "next_hop": "lync.example.com"})");
  CHECK(added.status == 201);
  CHECK(added.body == route);
  CHECK(send("GET", "/api/v1/routes").body == R"({"routes":[)" + route + "]}");

  CHECK(send("POST", "/api/v1/tls/peer-subjects", R"({"subject_cn": "Lync.Example.com"})").body ==
        R"({"description":"","subject_cn":"lync.example.com","used_by":[]})");
  CHECK(send("PUT", "/api/v1/tls/contexts/peer-auth", R"({"peer_subjects": ["lync.example.com"]})").status == 200);
  CHECK(send("GET", "/api/v1/tls/peer-subjects").body ==
        R"({"peer_subjects":[{"description":"","subject_cn":"lync.example.com","used_by":["peer-auth"]}]})");

  CHECK(send("DELETE", "/api/v1/routes/1").body == R"({"deleted":1})");
  CHECK(send("GET", "/api/v1/sip-proxy/stats").status == 503);
}
