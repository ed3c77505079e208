"""The system troubleshooter (SV-6, TLS-5, TS-1..TS-11, FED-1, RT-8) on a
running impd, against real peers on loopback.

The healthy single-node federation setup: a test CA made here is trusted
(`impctl cert upload-trust`), the node's signing request is signed by it and
uploaded (`impctl cert csr`, `impctl cert upload`), federation is enabled, a
static route for the domain points at a SIP server over mutual TLS that
plays the Lync front end (it asks for the node's certificate and checks it
against the test CA), the ACL covers it, the peer-auth listener is on 5061
and a peer subject is selected by the peer-auth context. Every check passes;
the next hop answers OPTIONS over TLS with its round-trip time.

Then things are broken one at a time — the route, the ACL entry, the
federation connection manager, the next hop, a user enabled on both systems,
an expired node certificate (a second node of the cluster started with one)
— and each check turns FAIL with its fix; `impctl troubleshoot` exits 0
whatever it finds."""
import os
import re
import shutil
import ssl
import sys
import tempfile
import unittest

from harness import Impd, PrivateMariaDB, free_port, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from sippeer import SipResponder, TestCa  # noqa: E402

DOMAIN = "example.com"
NEXT_HOP = "127.0.0.1"
PEER = "lync.example.com"
NODE_CN = "imp-ts.example.com"
CHECKS = ["federation-enabled", "routing-mode", "static-routes", "next-hops", "acl-covers-next-hops",
          "peer-reverse-dns", "node-names", "peer-auth-listener", "peer-subjects", "microsoft-certificate", "node-certificate", "federation-services",
          "single-system-users", "contact-limits"]


def lync_context(ca, cert):
    """A TLS server that, like Lync, wants a client certificate from the CA."""
    ctx = ca.server_context(cert)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ca.cert)
    return ctx


class Troubleshoot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="imp-ts-")
        cls.addClassCleanup(shutil.rmtree, cls.work, ignore_errors=True)
        cls.ca = TestCa(cls.work)
        cls.lync = SipResponder(tls_ctx=lync_context(cls.ca, cls.ca.issue(PEER, ip=NEXT_HOP)))
        cls.addClassCleanup(cls.lync.stop)
        cls.db = PrivateMariaDB()
        cls.db.start()
        cls.addClassCleanup(cls.db.cleanup)
        cls.db_url = cls.db.create_app_user()
        cls.node = Impd("ts1", db_url=cls.db_url)
        cls.addClassCleanup(cls.node.cleanup)
        cls.node.start()

    def report(self, node=None):
        out = (node or self.node).ctl_json("troubleshoot")
        return {c["id"]: c for c in out["checks"]}, out

    def check(self, check_id, node=None):
        return self.report(node)[0][check_id]

    def assertResult(self, check_id, result):
        c = self.check(check_id)
        self.assertEqual(c["result"], result, c)
        return c

    def route(self, port=None):
        self.node.ctl("route", "add", ".com.example.*", "--route-type", "domain", "--next-hop", NEXT_HOP, "--port",
                      str(port or self.lync.port), "--transport", "TLS")

    def test_01_healthy_setup_passes_every_check(self):
        n = self.node
        # the node certificate from the test CA (TLS-4)
        n.ctl("cert", "upload-trust", self.ca.cert)
        csr = os.path.join(self.work, "node.csr")
        n.ctl("cert", "csr", "--cn", NODE_CN, "--out", csr)
        n.ctl("cert", "upload", self.ca.sign(csr, os.path.join(self.work, "node.crt"), NODE_CN, days=400))
        # the federation setup
        n.ctl("domain", "add", DOMAIN)
        n.ctl("user", "add", "alice", "--im-address", "alice@" + DOMAIN, "--home-node", "ts1")
        n.ctl("user", "add", "carol", "--im-address", "carol@" + DOMAIN, "--unlicensed", "--ms-uri",
              "sip:carol@" + DOMAIN)
        n.ctl("federation", "enable")
        self.route()
        n.ctl("acl", "add", NEXT_HOP, "--description", "Lync front end")
        n.ctl("listener", "set", "tls-server-auth", "--port", "5063")
        n.ctl("listener", "set", "tls-peer-auth", "--port", "5061")
        n.ctl("tls", "peer-subject", "add", PEER)
        n.ctl("tls", "context", "set", "peer-auth", "--peer-subject", PEER)

        checks, out = self.report()
        self.assertEqual(list(checks), CHECKS)
        for c in checks.values():
            self.assertEqual((c["result"], c["fix"]), ("PASS", ""), c)
        self.assertEqual((out["pass"], out["warn"], out["fail"]), (14, 0, 0))
        self.assertEqual(out["summary"], "14 checks: 14 pass, 0 warn, 0 fail")
        # the next hop answered OPTIONS over mutual TLS, presented the node's uploaded certificate
        self.assertRegex(checks["next-hops"]["detail"],
                         r"^127\.0\.0\.1:%d;TLS answered 200 OK in \d+\.\d ms$" % self.lync.port)
        options = self.lync.wait_requests(1, method="OPTIONS")[-1]
        self.assertIn("CSeq: 1 OPTIONS", options)
        self.assertRegex(options, r"Via: SIP/2.0/TLS 127\.0\.0\.1:\d+;branch=z9hG4bK")
        self.assertIn("127.0.0.1 -> ", checks["peer-reverse-dns"]["detail"])
        self.assertIn("chains to the trust store", checks["node-certificate"]["detail"])
        self.assertEqual(checks["microsoft-certificate"]["detail"],
                         "127.0.0.1:%d;TLS presents %s (serverAuth, clientAuth, a selected peer subject)"
                         % (self.lync.port, PEER))
        self.assertEqual(checks["static-routes"]["requirement"], "RT-1/TS-2")
        self.assertEqual(checks["single-system-users"]["requirement"], "FED-1")

        r = n.ctl("troubleshoot")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"CHECK\s+RESULT\s+REQUIREMENT\s+DETAIL")
        self.assertRegex(r.stdout, r"next-hops\s+PASS\s+RT-1/RT-10/TS-2/TS-5\s+127\.0\.0\.1:")
        self.assertNotIn("fix ", r.stdout)
        self.assertIn("14 checks: 14 pass, 0 warn, 0 fail", r.stdout)
        code, body = n.http("GET", "/api/v1/troubleshoot")
        self.assertEqual(code, 200)
        self.assertIn('"summary":"14 checks: 14 pass, 0 warn, 0 fail"', body)

    def test_02_missing_route_fails(self):
        n = self.node
        route_id = n.ctl_json("route", "list")["routes"][0]["id"]
        n.ctl("route", "delete", str(route_id))
        c = self.check("static-routes")
        self.assertEqual(c["result"], "FAIL")
        self.assertIn("no static route for " + DOMAIN, c["detail"])
        self.assertEqual(c["fix"], "impctl route add .com.example.* --route-type domain --next-hop MICROSOFT-SERVER")
        r = n.ctl("troubleshoot")
        self.assertEqual(r.returncode, 0, "the report is the answer")
        self.assertIn("fix static-routes: impctl route add .com.example.*", r.stdout)
        self.route()
        self.assertResult("static-routes", "PASS")

    def test_03_missing_acl_entry_fails(self):
        n = self.node
        n.ctl("acl", "delete", NEXT_HOP)
        c = self.check("acl-covers-next-hops")
        self.assertEqual(c["result"], "FAIL")
        self.assertIn("does not cover " + NEXT_HOP, c["detail"])
        self.assertEqual(c["fix"], "impctl acl add " + NEXT_HOP)
        n.ctl("acl", "add", NEXT_HOP)
        self.assertResult("acl-covers-next-hops", "PASS")

    def test_04_stopped_federation_cm_fails(self):
        n = self.node
        n.ctl("service", "stop", "federation-cm")
        c = wait_for(lambda: (lambda c: c if c["result"] == "FAIL" else None)(self.check("federation-services")),
                     30, "federation-services to fail")
        self.assertEqual(c["detail"], "not running on this node: federation-cm")
        self.assertEqual(c["fix"], "impctl service start federation-cm")
        n.ctl("service", "start", "federation-cm")
        wait_for(lambda: self.check("federation-services")["result"] == "PASS", 30, "federation-services to pass")

    def test_05_federation_disabled_fails(self):
        n = self.node
        n.ctl("federation", "disable")
        c = self.check("federation-enabled")
        self.assertEqual((c["result"], c["fix"]), ("FAIL", "impctl federation enable"))
        n.ctl("federation", "enable")
        self.assertResult("federation-enabled", "PASS")

    def test_06_next_hop_down_or_untrusted_fails(self):
        n = self.node
        route_id = n.ctl_json("route", "list")["routes"][0]["id"]
        # a hop whose certificate comes from a CA the node does not trust
        other = TestCa(self.work)
        rogue = SipResponder(tls_ctx=other.server_context(other.issue(PEER, ip=NEXT_HOP)))
        try:
            n.ctl("route", "delete", str(route_id))
            self.route(rogue.port)
            c = self.check("next-hops")
            self.assertEqual(c["result"], "FAIL", c)
            self.assertRegex(c["detail"], r"no answer to OPTIONS: TLS handshake failed: certificate verify failed")
            self.assertIn("impctl cert upload-trust", c["fix"])
            self.assertEqual(rogue.requests, [])
        finally:
            rogue.stop()
        # a port nothing listens on
        n.ctl("route", "delete", str(n.ctl_json("route", "list")["routes"][0]["id"]))
        closed = free_port()
        self.route(closed)
        c = self.check("next-hops")
        self.assertEqual(c["result"], "FAIL", c)
        self.assertIn("no answer to OPTIONS: connect: Connection refused", c["detail"])
        self.assertIn("listens on %d over TLS" % closed, c["fix"])
        n.ctl("route", "delete", str(n.ctl_json("route", "list")["routes"][0]["id"]))
        self.route()
        self.assertResult("next-hops", "PASS")

    def test_07_microsoft_certificate_without_client_auth_fails(self):
        n = self.node
        server_only = SipResponder(tls_ctx=self.ca.server_context(self.ca.issue(PEER, ip=NEXT_HOP, eku="serverAuth")))
        try:
            n.ctl("route", "delete", str(n.ctl_json("route", "list")["routes"][0]["id"]))
            self.route(server_only.port)
            c = self.check("microsoft-certificate")
            self.assertEqual(c["result"], "FAIL", c)
            self.assertEqual(c["detail"], "127.0.0.1:%d;TLS presents %s, whose extended key usage lacks clientAuth "
                                          "(1.3.6.1.5.5.7.3.2)" % (server_only.port, PEER))
            self.assertIn("serverAuth and clientAuth", c["fix"])
        finally:
            server_only.stop()
        n.ctl("route", "delete", str(n.ctl_json("route", "list")["routes"][0]["id"]))
        self.route()
        self.assertResult("microsoft-certificate", "PASS")

    def test_08_user_enabled_on_both_systems_fails(self):
        n = self.node
        n.ctl("user", "add", "dan", "--im-address", "dan@" + DOMAIN, "--home-node", "ts1", "--ms-uri",
              "sip:dan@" + DOMAIN)
        c = self.check("single-system-users")
        self.assertEqual(c["result"], "FAIL", c)
        self.assertIn("1 user(s) licensed on IMP also carry a Microsoft SIP URI", c["detail"])
        self.assertTrue(c["detail"].endswith(": dan"), c["detail"])
        self.assertIn("Disable-CsUser", c["fix"])
        n.ctl("user", "delete", "dan")
        self.assertResult("single-system-users", "PASS")

    def test_09_expired_node_certificate_fails(self):
        # a second node of the cluster, started with a certificate that expired yesterday
        cert, key = self.ca.issue("imp-ts2.example.com", days=-1)
        node = Impd("ts2", db_url=self.db_url, extra=["[tls]", "cert_file = " + cert, "key_file = " + key,
                                                      "ca_file = " + self.ca.cert])
        self.addCleanup(node.cleanup)
        node.start()
        c = self.check("node-certificate", node)
        self.assertEqual(c["result"], "FAIL", c)
        self.assertEqual(c["detail"], "node certificate %s: it has expired" % cert)
        self.assertTrue(c["fix"].startswith("impctl cert csr --out node.csr"), c["fix"])
        self.assertIn("fix node-certificate: impctl cert csr", node.ctl("troubleshoot").stdout)
        # the first node's certificate is still fine
        self.assertResult("node-certificate", "PASS")


if __name__ == "__main__":
    unittest.main(verbosity=2)
