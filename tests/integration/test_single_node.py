"""Single node on the embedded default (managed MariaDB): first start from no
state, status, runtime restart of one service, live trace level, persisted
activation, admin API errors, clean stop. (SV-1, SV-3, SV-4, SV-5)"""
import json
import os
import re
import subprocess
import unittest

from harness import Impd, migration_files, wait_for


def services(node):
    return {s["name"]: s for s in node.ctl_json("service", "list")["services"]}


class SingleNode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Impd("solo")
        cls.node.start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def test_01_first_start_initialised_everything(self):
        state = os.path.join(self.node.dir, "state")
        self.assertTrue(os.path.isdir(os.path.join(state, "mariadb", "data", "imp")), "schema created in managed datadir")
        st = os.stat(os.path.join(state, "admin.token"))
        self.assertEqual(st.st_mode & 0o777, 0o600)
        db = self.node.ctl_json("db", "status")
        self.assertEqual(db["mode"], "managed")
        self.assertEqual([m["name"] for m in db["applied"]], migration_files())
        self.assertEqual(db["applied"][0]["name"], "0001_core_schema.sql")
        self.assertEqual(db["pending"], [])

    def test_02_status_shows_node_role_services(self):
        out = self.node.ctl("status").stdout
        self.assertIn("node:      solo (role single", out)
        self.assertRegex(out, r"serviceability\s+Cisco Unified Serviceability\s+network\s+yes\s+running")
        self.assertRegex(out, r"ris-collector\s+Cisco RIS Data Collector\s+network\s+yes\s+running")
        self.assertIn("ready:     yes", out)

    def test_03_restart_touches_only_that_service(self):
        before = services(self.node)
        # let the other service accumulate visible uptime
        wait_for(lambda: services(self.node)["serviceability"]["uptime_s"] >= 1, 30, "uptime to tick")
        before = services(self.node)
        r = self.node.ctl("service", "restart", "ris-collector")
        self.assertIn("ris-collector: restart done on solo", r.stdout)
        after = services(self.node)
        self.assertEqual(after["ris-collector"]["restarts"], before["ris-collector"]["restarts"] + 1)
        self.assertEqual(after["ris-collector"]["state"], "running")
        self.assertEqual(after["serviceability"]["restarts"], before["serviceability"]["restarts"])
        self.assertGreaterEqual(after["serviceability"]["uptime_s"], before["serviceability"]["uptime_s"])
        metrics = self.node.http("GET", "/metrics", token=False)[1]
        self.assertRegex(metrics, r'imp_service_restarts_total\{service="ris-collector"\} [1-9]')
        self.assertIn('imp_service_up{service="serviceability"} 1', metrics)

    def test_04_trace_level_applies_live(self):
        debug_line = re.compile(r" debug \[ris-collector\]")
        self.assertIsNone(debug_line.search(self.node.log("ris-collector")), "no debug lines before")
        self.node.ctl("trace", "set", "ris-collector", "--level", "debug")
        wait_for(lambda: debug_line.search(self.node.log("ris-collector")), 30, "a debug line in ris-collector.log")
        shown = self.node.ctl_json("trace", "show", "ris-collector")
        self.assertEqual((shown["enabled"], shown["level"]), (True, "debug"))
        # trace off: back to warnings and errors only
        self.node.ctl("trace", "set", "ris-collector", "--off")
        size = len(self.node.log("ris-collector"))
        self.node.ctl("service", "restart", "ris-collector")  # would log at info
        self.assertEqual(self.node.log("ris-collector")[size:].count(" info  [ris-collector]"), 0)
        self.node.ctl("trace", "set", "ris-collector", "--on", "--level", "info")

    def test_05_bad_requests_are_answered_precisely(self):
        r = self.node.ctl("service", "restart", "nope", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown service 'nope'; valid services: bulk-provisioning, federation-cm, ris-collector, serviceability", r.stderr)
        r = self.node.ctl("trace", "set", "ris-collector", "--level", "loud", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown trace level 'loud'", r.stderr)
        r = self.node.ctl("trace", "set", "ris-collector", "--flag", "sip-tcp", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("service 'ris-collector' has no trace flag 'sip-tcp'; it has no extra flags", r.stderr)
        r = self.node.ctl("service", "list", "--node", "ghost", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown node 'ghost'; nodes: solo", r.stderr)
        code, body = self.node.http("GET", "/api/v1/status", token=False)
        self.assertEqual(code, 401)
        self.assertEqual(json.loads(body)["error"]["code"], "unauthorized")
        code, body = self.node.http("PUT", "/api/v1/trace/ris-collector", body=b"{\"level\": 5}")
        self.assertEqual(code, 400)
        self.assertIn("'level' must be a string", body)
        code, body = self.node.http("PUT", "/api/v1/trace/ris-collector", body=b"{\"colour\": 1}")
        self.assertEqual(code, 400)
        self.assertIn("unknown field 'colour'", body)
        code, body = self.node.http("POST", "/api/v1/services/ris-collector/explode")
        self.assertEqual(code, 400)
        self.assertIn("valid actions: activate, deactivate, start, stop, restart", body)
        self.assertEqual(self.node.http("GET", "/health/live", token=False)[0], 200)
        self.assertEqual(self.node.http("GET", "/health/ready", token=False), (200, '{"status":"ready"}\n'))
        # nothing was stored by the refused requests
        shown = self.node.ctl_json("trace", "show", "ris-collector")
        self.assertEqual(shown["flags"], [])

    def test_06_deactivation_persists_across_restart(self):
        self.node.ctl("service", "deactivate", "ris-collector")
        self.assertEqual(services(self.node)["ris-collector"]["state"], "stopped")
        ready = self.node.http("GET", "/health/ready", token=False)
        self.assertEqual(ready[0], 200, "a deactivated service does not make the node unready")
        self.assertEqual(self.node.stop(), 0)
        self.node.start()
        svc = services(self.node)
        self.assertFalse(svc["ris-collector"]["active"])
        self.assertEqual(svc["ris-collector"]["state"], "stopped")
        self.assertEqual(svc["serviceability"]["state"], "running")
        # the datadir was reused and no migration ran twice
        self.assertEqual(len(self.node.ctl_json("db", "status")["applied"]), len(migration_files()))
        self.node.ctl("service", "activate", "ris-collector")
        self.assertEqual(services(self.node)["ris-collector"]["state"], "running")

    def test_07_clean_stop_takes_mariadb_down(self):
        pid_file = os.path.join(self.node.dir, "state", "mariadb", "mysqld.pid")
        with open(pid_file) as f:
            pid = int(f.read())
        self.assertEqual(self.node.stop(), 0)
        self.assertFalse(os.path.exists("/proc/%d" % pid) and "mariadbd" in open("/proc/%d/comm" % pid).read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
