"""The system troubleshooter (SV-6, TLS-5, TS-1..TS-11) on a running impd:
on a healthy single-node federation setup (federation enabled, a static
route for the domain, an ACL entry covering its next hop, the peer-auth
listener on 5061 and a peer subject selected by the peer-auth context)
every check passes, except node-certificate, which warns because the node's
generated certificate has no trust store to chain to. Then things are broken
one at a time (the route, the ACL entry, the federation connection manager)
and each check turns FAIL with its fix; `impctl troubleshoot` exits 0
whatever it finds."""
import unittest

from harness import Impd, PrivateMariaDB, wait_for

DOMAIN = "example.com"
NEXT_HOP = "10.0.0.5"
PEER = "lync.example.com"


class Troubleshoot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = PrivateMariaDB()
        cls.db.start()
        cls.node = Impd("ts1", db_url=cls.db.create_app_user())
        cls.node.start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()
        cls.db.cleanup()

    def report(self):
        out = self.node.ctl_json("troubleshoot")
        return {c["id"]: c for c in out["checks"]}, out

    def assertResult(self, checks, check_id, result):
        self.assertEqual(checks[check_id]["result"], result, checks[check_id])

    def test_01_healthy_setup(self):
        n = self.node
        n.ctl("domain", "add", DOMAIN)
        n.ctl("user", "add", "alice", "--im-address", "alice@" + DOMAIN, "--home-node", "ts1")
        n.ctl("federation", "enable")
        n.ctl("route", "add", ".com.example.*", "--route-type", "domain", "--next-hop", NEXT_HOP)
        n.ctl("acl", "add", NEXT_HOP, "--description", "Lync front end")
        n.ctl("listener", "set", "tls-server-auth", "--port", "5063")
        n.ctl("listener", "set", "tls-peer-auth", "--port", "5061")
        n.ctl("tls", "peer-subject", "add", PEER)
        n.ctl("tls", "context", "set", "peer-auth", "--peer-subject", PEER)

        checks, out = self.report()
        self.assertEqual(list(checks), ["federation-enabled", "routing-mode", "static-routes", "acl-covers-next-hops",
                                        "peer-auth-listener", "peer-subjects", "node-certificate",
                                        "federation-services", "contact-limits"])
        for check_id, c in checks.items():
            if check_id == "node-certificate":
                continue
            self.assertEqual(c["result"], "PASS", c)
            self.assertEqual(c["fix"], "", c)
        # the generated self-signed certificate is fine, but there is no trust store to chain to
        cert = checks["node-certificate"]
        self.assertEqual(cert["result"], "WARN", cert)
        self.assertIn("no trust store is configured", cert["detail"])
        self.assertEqual(checks["static-routes"]["requirement"], "RT-1/TS-2")
        self.assertEqual((out["pass"], out["warn"], out["fail"]), (8, 1, 0))
        self.assertEqual(out["summary"], "9 checks: 8 pass, 1 warn, 0 fail")

        r = n.ctl("troubleshoot")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"CHECK\s+RESULT\s+REQUIREMENT\s+DETAIL")
        self.assertRegex(r.stdout, r"federation-enabled\s+PASS\s+FED-1/TS-2")
        self.assertIn("fix node-certificate: ", r.stdout)
        self.assertNotIn("fix federation-enabled", r.stdout)
        self.assertIn("9 checks: 8 pass, 1 warn, 0 fail", r.stdout)

        code, body = n.http("GET", "/api/v1/troubleshoot")
        self.assertEqual(code, 200)
        self.assertIn('"summary":"9 checks: 8 pass, 1 warn, 0 fail"', body)

    def test_02_missing_route_fails(self):
        n = self.node
        route_id = n.ctl_json("route", "list")["routes"][0]["id"]
        n.ctl("route", "delete", str(route_id))
        checks, _ = self.report()
        c = checks["static-routes"]
        self.assertEqual(c["result"], "FAIL")
        self.assertIn("no static route for " + DOMAIN, c["detail"])
        self.assertEqual(c["fix"], "impctl route add .com.example.* --route-type domain --next-hop MICROSOFT-SERVER")
        r = n.ctl("troubleshoot")
        self.assertEqual(r.returncode, 0, "the report is the answer")
        self.assertIn("fix static-routes: impctl route add .com.example.*", r.stdout)
        n.ctl("route", "add", ".com.example.*", "--route-type", "domain", "--next-hop", NEXT_HOP)
        self.assertResult(self.report()[0], "static-routes", "PASS")

    def test_03_missing_acl_entry_fails(self):
        n = self.node
        n.ctl("acl", "delete", NEXT_HOP)
        checks, _ = self.report()
        c = checks["acl-covers-next-hops"]
        self.assertEqual(c["result"], "FAIL")
        self.assertIn("does not cover " + NEXT_HOP, c["detail"])
        self.assertEqual(c["fix"], "impctl acl add " + NEXT_HOP)
        n.ctl("acl", "add", NEXT_HOP)
        self.assertResult(self.report()[0], "acl-covers-next-hops", "PASS")

    def test_04_stopped_federation_cm_fails(self):
        n = self.node
        n.ctl("service", "stop", "federation-cm")
        c = wait_for(lambda: (lambda c: c if c["result"] == "FAIL" else None)(self.report()[0]["federation-services"]),
                     30, "federation-services to fail")
        self.assertEqual(c["result"], "FAIL")
        self.assertEqual(c["detail"], "not running on this node: federation-cm")
        self.assertEqual(c["fix"], "impctl service start federation-cm")
        n.ctl("service", "start", "federation-cm")
        wait_for(lambda: self.report()[0]["federation-services"]["result"] == "PASS", 30, "federation-services to pass")

    def test_05_federation_disabled_fails(self):
        n = self.node
        n.ctl("federation", "disable")
        c = self.report()[0]["federation-enabled"]
        self.assertEqual((c["result"], c["fix"]), ("FAIL", "impctl federation enable"))
        n.ctl("federation", "enable")
        self.assertResult(self.report()[0], "federation-enabled", "PASS")


if __name__ == "__main__":
    unittest.main(verbosity=2)
