"""Service parameters (MG-3) on a running impd (managed MariaDB): impctl
service param show|set|reset for a parameter a module declares
(federation-cm's recovery-rate), the running federation connection manager
applying a change live, the value kept across an impd restart, reset back
to impd.conf's recovery_rate, refusals, and the HTTP routes behind them."""
import json
import re
import unittest

from harness import Impd, wait_for

# impd.conf's per-node value, different from the declared default (5000), so
# the test sees which one the running service uses.
CONF_RATE = 4000


def params(node, service="federation-cm"):
    return {p["name"]: p for p in node.ctl_json("service", "param", "show", service)["params"]}


class ServiceParams(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Impd("params", fcm_extra=["recovery_rate = %d" % CONF_RATE])
        cls.node.start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def fcm_log_line(self, since, text):
        """Waits for `text` in federation-cm.log after offset `since`."""
        return wait_for(lambda: text in self.node.log("federation-cm")[since:], 30,
                        "'%s' in federation-cm.log" % text)

    def test_01_show_lists_the_declared_parameter_with_its_default(self):
        out = self.node.ctl("service", "param", "show", "federation-cm").stdout
        lines = out.splitlines()
        self.assertEqual(lines[0], "federation-cm (Cisco XCP SIP Federation Connection Manager)")
        self.assertRegex(lines[1], r"^NAME\s+VALUE\s+DEFAULT\s+RANGE\s+UNIT\s+DESCRIPTION$")
        self.assertRegex(lines[2], r"^recovery-rate\s+5000\s+5000\s+1\.\.100000\s+requests/s\s+SUBSCRIBEs and NOTIFYs "
                                   r"per second when federated subscriptions are re-established")
        self.assertEqual(len(lines), 3)
        p = params(self.node)["recovery-rate"]
        self.assertEqual((p["value"], p["default"], p["range"], p["unit"], p["type"], p["stored"]),
                         ("5000", "5000", "1..100000", "requests/s", "integer", False))
        self.assertNotIn("changed_at", p)
        # Not set: the running service uses this node's impd.conf value.
        self.fcm_log_line(0, "recovery at %d per second" % CONF_RATE)
        # A service without parameters.
        out = self.node.ctl("service", "param", "show", "ris-collector").stdout
        self.assertEqual(out, "ris-collector (Cisco RIS Data Collector)\n(no service parameters)\n")

    def test_02_set_is_applied_live_by_the_running_service(self):
        mark = len(self.node.log("federation-cm"))
        r = self.node.ctl("service", "param", "set", "federation-cm", "recovery-rate", "200")
        self.assertEqual(r.stdout, "federation-cm recovery-rate: 5000 -> 200, applied live "
                                   "(other nodes: at their next settings check)\n")
        p = params(self.node)["recovery-rate"]
        self.assertEqual((p["value"], p["default"], p["stored"]), ("200", "5000", True))
        self.assertRegex(p["changed_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
        self.assertRegex(self.node.ctl("service", "param", "show", "federation-cm").stdout,
                         r"\nrecovery-rate\s+200\s+5000\s+1\.\.100000\s+requests/s\s")
        # The gateway took the new pace on its loop, without a restart.
        self.fcm_log_line(mark, "recovery rate now 200 per second")
        svc = {s["name"]: s for s in self.node.ctl_json("service", "list")["services"]}
        self.assertEqual(svc["federation-cm"]["restarts"], 0)
        # The same value again writes nothing.
        r = self.node.ctl("service", "param", "set", "federation-cm", "recovery-rate", "200")
        self.assertEqual(r.stdout, "federation-cm recovery-rate: 200, unchanged\n")
        answer = self.node.ctl_json("service", "param", "set", "federation-cm", "recovery-rate", "200")
        self.assertEqual((answer["changed"], answer["applied"]), (False, "unchanged"))

    def test_03_refusals_name_what_is_accepted_and_store_nothing(self):
        for value in ("0", "100001", "unlimited", "fast"):
            r = self.node.ctl("service", "param", "set", "federation-cm", "recovery-rate", value, check=False)
            self.assertEqual(r.returncode, 1, value)
            self.assertIn("service parameter recovery-rate of federation-cm must be 1..100000 requests/s, not '%s'"
                          % value, r.stderr)
        r = self.node.ctl("service", "param", "set", "federation-cm", "recovery_rate", "5", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("federation-cm has no service parameter 'recovery_rate'; its parameters: recovery-rate", r.stderr)
        r = self.node.ctl("service", "param", "show", "fcm", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown service 'fcm'; services with parameters: bulk-provisioning, federation-cm", r.stderr)
        r = self.node.ctl("service", "param", "set", "federation-cm", "recovery-rate", check=False)
        self.assertEqual(r.returncode, 64, "a missing VALUE is a usage error")
        self.assertIn("impctl service param set SERVICE NAME VALUE", r.stderr)

        path = "/api/v1/services/federation-cm/params/recovery-rate"
        code, body = self.node.http("PUT", path, body=b'{"value": 300}')
        self.assertEqual(code, 400)
        self.assertIn("'value' must be a string", body)
        code, body = self.node.http("PUT", path, body=b"{}")
        self.assertEqual(code, 400)
        self.assertIn("field 'value' is required", body)
        code, body = self.node.http("PUT", path, body=b'{"value": "-3"}')
        self.assertEqual((code, json.loads(body)["error"]["code"]), (400, "invalid_value"))
        code, body = self.node.http("GET", "/api/v1/services/federation-cm/params/recovery-rate")
        self.assertEqual(code, 405)
        self.assertEqual(params(self.node)["recovery-rate"]["value"], "200")

        # The HTTP route itself, as any client would use it.
        code, body = self.node.http("PUT", path, body=b'{"value": "300"}')
        self.assertEqual(code, 200, body)
        answer = json.loads(body)
        self.assertEqual((answer["service"], answer["name"], answer["old_value"], answer["new_value"],
                          answer["changed"], answer["applied"]),
                         ("federation-cm", "recovery-rate", "200", "300", True, "live"))
        self.assertGreater(answer["settings_generation"], 1)
        code, body = self.node.http("PUT", path, body=b'{"value": "200"}')
        self.assertEqual((code, json.loads(body)["new_value"]), (200, "200"))

    def test_04_the_value_survives_an_impd_restart(self):
        mark = len(self.node.log("federation-cm"))
        self.assertEqual(self.node.stop(), 0)
        self.node.start()
        p = params(self.node)["recovery-rate"]
        self.assertEqual((p["value"], p["stored"]), ("200", True))
        # The restarted service started with it, not with impd.conf's.
        self.fcm_log_line(mark, "recovery at 200 per second")
        self.assertNotIn("recovery at %d per second" % CONF_RATE, self.node.log("federation-cm")[mark:])

    def test_05_reset_gives_back_the_default_and_impd_conf_value(self):
        mark = len(self.node.log("federation-cm"))
        r = self.node.ctl("service", "param", "reset", "federation-cm", "recovery-rate")
        self.assertEqual(r.stdout, "federation-cm recovery-rate: 200 -> 5000, applied live "
                                   "(other nodes: at their next settings check)\n")
        p = params(self.node)["recovery-rate"]
        self.assertEqual((p["value"], p["stored"]), ("5000", False))
        # Not set any more: the running service is back to this node's impd.conf value.
        self.fcm_log_line(mark, "recovery rate now %d per second" % CONF_RATE)
        r = self.node.ctl("service", "param", "reset", "federation-cm", "recovery-rate")
        self.assertEqual(r.stdout, "federation-cm recovery-rate: 5000, unchanged\n")
        code, body = self.node.http("DELETE", "/api/v1/services/federation-cm/params/nope")
        self.assertEqual((code, json.loads(body)["error"]["code"]), (404, "unknown_service_param"))

    def test_06_help_lists_the_commands(self):
        out = self.node.ctl("help", "service", "param").stdout
        for usage in ("service param show SERVICE", "service param set SERVICE NAME VALUE",
                      "service param reset SERVICE NAME"):
            self.assertIn(usage, out)
        self.assertTrue(re.search(r"unlimited", self.node.ctl("help", "service", "param", "set").stdout))


if __name__ == "__main__":
    unittest.main(verbosity=2)
