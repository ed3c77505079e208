// serviceability's commands (SV-1, SV-3, SV-4): impctl's text for each answer
// (issue 15 deliverable 4: the answers' fields are declared once, in
// admin_api.cpp, and the printers read them through that declaration).
// Expected texts are written out by hand.
#include <doctest/doctest.h>
#include <imp/core/command_registry.h>
#include <imp/serviceability/admin_api.h>
#include <imp/testing/printed.h>

using namespace imp;
using testing::command;
using testing::printed;

namespace {

struct Commands {
  core::CommandRegistry reg;
  Commands() { serviceability::registerCommands(reg); }
};

const std::string kServices =
    R"([{"name": "sip-proxy", "display_name": "Cisco SIP Proxy", "kind": "feature", "active": true, "state": "running",)"
    R"( "detail": "", "uptime_s": 90061, "restarts": 1, "failures": 0},)"
    R"( {"name": "ris-collector", "display_name": "Cisco RIS Data Collector", "kind": "network", "active": false,)"
    R"( "state": "stopped", "detail": "deactivated", "uptime_s": 0, "restarts": 0, "failures": 2}])";
const std::string kServicesTable =
    "SERVICE        DISPLAY NAME              KIND     ACTIVE  STATE    UPTIME    RESTARTS  DETAIL\n"
    "sip-proxy      Cisco SIP Proxy           feature  yes     running  1d1h1m1s  1\n"
    "ris-collector  Cisco RIS Data Collector  network  no      stopped  -         0         deactivated\n";

const std::string kTrace =
    R"({"service": "sip-proxy", "display_name": "Cisco SIP Proxy", "enabled": true, "level": "debug",)"
    R"( "flags": ["routing", "sip-tcp"], "available_flags": [{"id": "sip-tcp", "label": "SIP TCP trace"},)"
    R"( {"id": "routing", "label": "routing trace"}], "stored": true)";
const std::string kTraceLine = "sip-proxy         on   debug     flags=[routing,sip-tcp] available=[sip-tcp,routing]\n";

}  // namespace

TEST_CASE("impctl status prints the node, its database, readiness and services (SV-1)") {
  Commands c;
  CHECK(printed(command(c.reg, "status"),
                R"({"node": {"id": "imp1", "role": "single", "hostname": "h1", "admin_url": "http://127.0.0.1:8780",)"
                R"( "version": "1.2.3", "uptime_s": 3725}, "database": {"mode": "managed", "location": "/var/lib/imp/db",)"
                R"( "reachable": true, "settings_generation": 7}, "services": )" +
                    kServices + R"(, "ready": false, "not_ready_reasons": ["database unreachable", "sip-proxy failed"]})") ==
        "node:      imp1 (role single, version 1.2.3, up 1h2m5s)\n"
        "admin:     http://127.0.0.1:8780\n"
        "database:  /var/lib/imp/db, reachable, settings generation 7\n"
        "ready:     no - database unreachable - sip-proxy failed\n"
        "\n" +
            kServicesTable);
  CHECK(printed(command(c.reg, "status"),
                R"({"node": {"id": "imp1", "role": "single", "hostname": "h1", "admin_url": "http://h1:8780",)"
                R"( "version": "1.2.3", "uptime_s": 0}, "database": {"mode": "external", "location": "db.example:3306",)"
                R"( "reachable": false, "settings_generation": 0}, "services": [], "ready": true})") ==
        "node:      imp1 (role single, version 1.2.3, up -)\n"
        "admin:     http://h1:8780\n"
        "database:  db.example:3306, UNREACHABLE, settings generation 0\n"
        "ready:     yes\n"
        "\n"
        "SERVICE  DISPLAY NAME  KIND  ACTIVE  STATE  UPTIME  RESTARTS  DETAIL\n");
}

TEST_CASE("impctl status --cluster prints every node with its published services") {
  Commands c;
  CHECK(printed(command(c.reg, "status", 0, "cluster"),
                R"({"nodes": [{"id": "imp1", "role": "single", "hostname": "a", "admin_url": "http://a:8780", "version": "1",)"
                R"( "last_seen": "2026-12-06T10:00:00", "heartbeat_age_s": 2, "state": "up", "self": true, "services": [)"
                R"({"name": "sip-proxy", "display_name": "Cisco SIP Proxy", "active": true, "state": "running", "restarts": 0,)"
                R"( "uptime_s": 5, "detail": ""}, {"name": "ris-collector", "display_name": "Cisco RIS Data Collector",)"
                R"( "active": false, "state": "stopped", "restarts": 0, "uptime_s": 0, "detail": ""}]},)"
                R"( {"id": "imp2", "role": "im", "hostname": "b", "admin_url": "http://b:8780", "version": "1",)"
                R"( "last_seen": "2026-12-06T09:59:17", "heartbeat_age_s": 45, "state": "stale", "self": false, "services": []}]})") ==
        "NODE    ROLE    STATE  HEARTBEAT  ADMIN          SERVICES\n"
        "imp1 *  single  up     2s ago     http://a:8780  sip-proxy=running ris-collector=stopped\n"
        "imp2    im      stale  45s ago    http://b:8780\n");
}

TEST_CASE("impctl service list|ACTION print the services and the outcome (SV-3)") {
  Commands c;
  CHECK(printed(command(c.reg, "service list"), R"({"node": "imp1", "services": )" + kServices + "}") ==
        "node: imp1\n" + kServicesTable);
  CHECK(printed(command(c.reg, "service list"),
                R"({"node": "imp2", "published": true, "services": [{"name": "sip-proxy", "display_name": "Cisco SIP Proxy",)"
                R"( "active": true, "state": "running", "restarts": 2, "uptime_s": 60, "detail": ""}]})") ==
        "node: imp2 (as last published by its ris-collector)\n"
        "SERVICE    DISPLAY NAME     KIND  ACTIVE  STATE    UPTIME  RESTARTS  DETAIL\n"
        "sip-proxy  Cisco SIP Proxy  -     yes     running  1m0s    2\n");
  const auto& action = command(c.reg, "service", 2);
  const std::string done =
      R"({"node": "imp2", "service": "ris-collector", "action": "restart", "state": "done", "message": "restarted ris-collector"})";
  CHECK(printed(action, done) == "restarted ris-collector\n");
  CHECK(printed(action, done, 202) == "restarted ris-collector (pending)\n");
}

TEST_CASE("impctl trace show|set print one line per service (SV-4)") {
  Commands c;
  CHECK(printed(command(c.reg, "trace show"),
                R"({"node": "imp1", "traces": [)" + kTrace +
                    R"(}, {"service": "ris-collector", "display_name": "Cisco RIS Data Collector", "enabled": false,)"
                    R"( "level": "info", "flags": [], "available_flags": [], "stored": false}]})") ==
        "node: imp1\n" + kTraceLine + "ris-collector     off  info      flags=[]\n");
  CHECK(printed(command(c.reg, "trace show", 1), kTrace + R"(, "node": "imp1"})") == kTraceLine);
  CHECK(printed(command(c.reg, "trace set", 1), kTrace + R"(, "node": "imp2", "applied": "when the node sees the change"})") ==
        kTraceLine + "applied when the node sees the change on imp2\n");
}

TEST_CASE("impctl db status|migrate print the schema migrations") {
  Commands c;
  CHECK(printed(command(c.reg, "db status"),
                R"({"mode": "managed", "location": "/var/lib/imp/db", "reachable": false, "applied": [{"version": 1,)"
                R"( "name": "001_core", "applied_at": "2026-12-01 10:00:00", "applied_by": "imp1"}],)"
                R"( "pending": [{"version": 2, "name": "002_sip"}]})") ==
        "database: /var/lib/imp/db (managed), UNREACHABLE\n"
        "VERSION  MIGRATION  STATE    APPLIED AT           BY\n"
        "1        001_core   applied  2026-12-01 10:00:00  imp1\n"
        "2        002_sip    PENDING  -                    -\n");
  CHECK(printed(command(c.reg, "db migrate"), R"({"applied": [], "schema_version": 5})") ==
        "schema is up to date (version 5)\n");
  CHECK(printed(command(c.reg, "db migrate"), R"({"applied": ["003_x", "004_y"], "schema_version": 4})") ==
        "applied 003_x\napplied 004_y\n");
}

TEST_CASE("impctl service param show|set|reset print the parameters and the change (MG-3)") {
  Commands c;
  CHECK(printed(command(c.reg, "service param show", 1),
                R"({"service": "bulk-provisioning", "display_name": "Cisco Bulk Provisioning Service", "params": [)"
                R"({"name": "import-rate", "value": "22", "default": "unlimited", "range": "1..1000000 or unlimited",)"
                R"( "unit": "rows/s", "description": "contact rows imported per second", "type": "integer",)"
                R"( "stored": true, "changed_at": "2026-12-07T10:00:00"},)"
                R"( {"name": "debug-trace", "value": "off", "default": "off", "range": "on|off", "unit": "",)"
                R"( "description": "its own debug trace", "type": "boolean", "stored": false}]})") ==
        "bulk-provisioning (Cisco Bulk Provisioning Service)\n"
        "NAME         VALUE  DEFAULT    RANGE                    UNIT    DESCRIPTION\n"
        "import-rate  22     unlimited  1..1000000 or unlimited  rows/s  contact rows imported per second\n"
        "debug-trace  off    off        on|off                   -       its own debug trace\n");
  CHECK(printed(command(c.reg, "service param show", 1),
                R"({"service": "ris-collector", "display_name": "Cisco RIS Data Collector", "params": []})") ==
        "ris-collector (Cisco RIS Data Collector)\n(no service parameters)\n");
  const std::string change =
      R"({"service": "federation-cm", "name": "recovery-rate", "old_value": "5000", "new_value": "200", "changed": true,)"
      R"( "settings_generation": 12, "applied": ")";
  for (const char* words : {"service param set", "service param reset"}) {
    const auto& cmd = command(c.reg, words, std::string(words) == "service param set" ? 3 : 2);
    CHECK(printed(cmd, change + R"(live"})") ==
          "federation-cm recovery-rate: 5000 -> 200, applied live (other nodes: at their next settings check)\n");
    CHECK(printed(cmd, change + R"(at the next settings check"})") ==
          "federation-cm recovery-rate: 5000 -> 200, stored; applied at the next settings check\n");
    CHECK(printed(cmd, R"({"service": "federation-cm", "name": "recovery-rate", "old_value": "200", "new_value": "200",)"
                       R"( "changed": false, "applied": "unchanged"})") ==
          "federation-cm recovery-rate: 200, unchanged\n");
  }
}
