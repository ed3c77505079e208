"""SIP Proxy end to end over TCP with real peers (SIPp from sip-tester, a
fake DNS server, raw SIP clients) against a running impd:

- relay through a static route to a SIPp UAS (RT-2, RT-3; Via, Max-Forwards)
- failover when the primary next hop refuses connections and when it
  accepts but never answers; the failed hop is probed with OPTIONS and used
  again once it answers (RT-3)
- incoming ACL per pattern kind: IP address, DNS domain and FQDN matched by
  reverse DNS, `all`; live changes; refusals answered 403 (RT-7)
- a reverse lookup stalled for 20 s by the DNS server while other requests
  keep flowing, and the slow-ACL report (RT-8)
- the flood limiter for sources not in the ACL, `impctl ban list|clear`
- the routing-mode matrix: federation disabled, basic, advanced with and
  without a Microsoft SIP URI, unknown domain, licensed local user, loop
  (FED-4, FED-6, FED-7)
"""
import os
import re
import shutil
import tempfile
import unittest

from sippeer import (ProxyLog, FakeDns, SippUas, SipResponder, SipStream, final_response, free_port, header, send_from,
                     sip_message, sipp_uac, status_of, wait_applied, wait_for)
from harness import Impd

STALLED = "127.0.0.4"   # its PTR answer takes 20 s
NAMED = "127.0.0.5"     # PTR gw1.lync.example.com  (domain pattern lync.example.com)
FQDN = "127.0.0.6"      # PTR edge.partner.example  (FQDN pattern edge.partner.example)
UNNAMED = "127.0.0.2"   # no PTR record
FLOODER = "127.0.0.3"   # not in the ACL


class SipProxyTcp(ProxyLog, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # class cleanups also run when setUpClass fails half-way
        cls.work = tempfile.mkdtemp(prefix="imp-e2e-")
        cls.addClassCleanup(shutil.rmtree, cls.work, ignore_errors=True)
        cls.dns = FakeDns({STALLED: "slow.lync.example.com", NAMED: "gw1.lync.example.com",
                           FQDN: "edge.partner.example", "127.0.0.7": "other.partner.example"},
                          delays={STALLED: 20})
        cls.addClassCleanup(cls.dns.stop)
        cls.uas = SippUas(cls.work)
        cls.addClassCleanup(cls.uas.stop)
        cls.node = Impd("e2e1", sip_extra=["hop_timeout_ms = 1000", "probe_interval_ms = 300",
                                           "flood_max_requests = 20", "flood_window_ms = 60000"],
                        extra=["[dns]", "servers = 127.0.0.1:%d" % cls.dns.port, "timeout_ms = 30000",
                               "attempts = 1"])
        cls.addClassCleanup(cls.node.cleanup)
        cls.node.start()
        cls.port = cls.node.sip_tcp
        n = cls.node
        n.ctl("acl", "add", "127.0.0.1", "--description", "SIPp and the proxy itself")
        n.ctl("route", "add", ".com.example.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
              str(cls.uas.port), "--transport", "TCP", "--priority", "1")
        wait_for(lambda: sipp_uac(cls.work, cls.port, "probe", "example.com").returncode == 0, 30,
                 "the route to the SIPp UAS to apply")

    def applied(self, pred, what):
        """Waits until a settings change shows in the proxy's behaviour."""
        wait_for(pred, 30, what)

    # ------------------------------------------------------------ relay

    def test_01_relay_to_sipp_uas(self):
        before = len(self.uas.received())
        r = sipp_uac(self.work, self.port, "bob", "example.com", calls=50, rate=100)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        got = wait_for(lambda: (lambda m: m if len(m) >= before + 50 else None)(self.uas.received()), 10,
                       "50 MESSAGEs at the UAS")
        relayed = got[-1]
        vias = re.findall(r"(?im)^via\s*:\s*(.*)$", relayed)
        self.assertEqual(len(vias), 2, relayed)
        self.assertTrue(vias[0].startswith("SIP/2.0/TCP 127.0.0.1:%d;branch=z9hG4bK" % self.port), vias[0])
        self.assertEqual(header(relayed, "Max-Forwards"), "69")
        stats = self.node.ctl_json("proxy", "stats")
        self.assertGreaterEqual(stats["forwarded"], 50)

    # ------------------------------------------------------------ failover

    def test_02_failover_when_primary_refuses(self):
        closed = free_port()
        n = self.node
        n.ctl("route", "add", ".com.refused.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
              str(closed), "--transport", "TCP", "--priority", "1")
        n.ctl("route", "add", ".com.refused.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
              str(self.uas.port), "--transport", "TCP", "--priority", "2")
        wait_applied(n)
        r = sipp_uac(self.work, self.port, "bob", "refused.com")
        self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        self.logged(r"next hop TCP 127\.0\.0\.1:%d for MESSAGE sip:bob@refused\.com failed "
                                     r"\(connection refused[^)]*\): trying the next one" % closed)
        self.assertIn("TCP 127.0.0.1:%d" % closed, n.ctl_json("proxy", "stats")["next_hops_down"])
        # The hop comes back: a responder starts on that port, answers the
        # OPTIONS probe, and the next request goes to the primary again.
        back = SipResponder(port=closed)
        try:
            back.wait_requests(1, timeout=15, method="OPTIONS")
            wait_for(lambda: "TCP 127.0.0.1:%d" % closed not in n.ctl_json("proxy", "stats")["next_hops_down"], 15,
                     "the primary marked up after answering OPTIONS")
            self.assertEqual(sipp_uac(self.work, self.port, "bob", "refused.com").returncode, 0)
            back.wait_requests(1, timeout=10, method="MESSAGE")
        finally:
            back.stop()

    def test_03_failover_when_primary_is_silent(self):
        silent = SipResponder(silent=True)
        n = self.node
        try:
            n.ctl("route", "add", ".com.silent.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
                  str(silent.port), "--transport", "TCP", "--priority", "1")
            n.ctl("route", "add", ".com.silent.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
                  str(self.uas.port), "--transport", "TCP", "--priority", "2")
            wait_applied(n)
            r = sipp_uac(self.work, self.port, "bob", "silent.com")
            self.assertEqual(r.returncode, 0, r.stdout[-2000:])
            silent.wait_requests(1, method="MESSAGE")  # it did reach the silent hop first
            self.logged(r"next hop TCP 127\.0\.0\.1:%d for MESSAGE sip:bob@silent\.com failed "
                                         r"\(no answer within 1000 ms\): trying the next one" % silent.port)
        finally:
            silent.stop()

    def test_04_every_hop_failing_answers_503(self):
        n = self.node
        n.ctl("route", "add", ".com.dead.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
              str(free_port()), "--transport", "TCP", "--priority", "1")
        self.applied(lambda: sipp_uac(self.work, self.port, "bob", "dead.com", expect=503).returncode == 0,
                     "MESSAGE to dead.com answered 503")

    # ------------------------------------------------------------ ACL

    def test_05_acl_by_address_applies_live(self):
        n = self.node
        r = sipp_uac(self.work, self.port, "bob", "example.com", source=UNNAMED, expect=403)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        self.logged(re.escape("ACL - upstream not trusted - need to authenticate: MESSAGE from TCP %s:" % UNNAMED))
        n.ctl("acl", "add", UNNAMED, "--description", "test peer")
        self.applied(lambda: sipp_uac(self.work, self.port, "bob", "example.com", source=UNNAMED).returncode == 0,
                     "source %s allowed after acl add" % UNNAMED)
        n.ctl("acl", "delete", UNNAMED)
        self.applied(lambda: sipp_uac(self.work, self.port, "bob", "example.com", source=UNNAMED,
                                      expect=403).returncode == 0, "source refused again after acl delete")

    def test_06_acl_by_reverse_dns_domain_and_fqdn(self):
        n = self.node
        n.ctl("acl", "add", "lync.example.com", "--description", "Lync pool (domain)")
        n.ctl("acl", "add", "edge.partner.example", "--description", "edge server (FQDN)")
        self.applied(lambda: sipp_uac(self.work, self.port, "bob", "example.com", source=NAMED).returncode == 0,
                     "%s (gw1.lync.example.com) allowed by the domain pattern" % NAMED)
        r = sipp_uac(self.work, self.port, "bob", "example.com", source=FQDN, calls=3)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        # other.partner.example is in the FQDN's domain but is not that FQDN
        r = sipp_uac(self.work, self.port, "bob", "example.com", source="127.0.0.7", expect=403)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        self.logged(re.escape("(other.partner.example)"))
        # no PTR record at all
        r = sipp_uac(self.work, self.port, "bob", "example.com", source="127.0.0.8", expect=403)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        self.logged(re.escape("(no PTR record)"))

    def test_07_stalled_reverse_dns_does_not_hold_other_requests(self):
        # lync.example.com is in the ACL (test_06); the stalled address's name
        # matches it, but its PTR answer takes 20 s.
        self.node.ctl("acl", "add", "lync.example.com", check=False)
        stalled = sipp_uac(self.work, self.port, "bob", "example.com", source=STALLED, background=True, timeout=60)
        try:
            wait_for(lambda: any(q[0] == "4.0.0.127.in-addr.arpa" for q in self.dns.queries), 20,
                     "the PTR query for %s" % STALLED)
            # While that lookup is pending: 200 requests from an ACL address and
            # 20 from a name-matched one complete.
            r = sipp_uac(self.work, self.port, "bob", "example.com", calls=200, rate=200)
            self.assertEqual(r.returncode, 0, r.stdout[-2000:])
            r = sipp_uac(self.work, self.port, "bob", "example.com", source=NAMED, calls=20, rate=100)
            self.assertEqual(r.returncode, 0, r.stdout[-2000:])
            self.assertIsNone(stalled.poll(), "the stalled request finished before the others: lookups not parallel")
            out, _ = stalled.communicate(timeout=60)
            self.assertEqual(stalled.returncode, 0, out[-2000:])
        finally:
            if stalled.poll() is None:
                stalled.kill()
                stalled.wait()
        self.logged(r"incoming ACL check took over 2 seconds – check DNS \(\d+ ms for %s\)" %
                         re.escape(STALLED))

    def test_08_acl_all(self):
        n = self.node
        n.ctl("acl", "add", "all", "--description", "lab only")
        self.applied(lambda: sipp_uac(self.work, self.port, "bob", "example.com", source="127.0.0.9").returncode == 0,
                     "any source allowed with 'all'")
        n.ctl("acl", "delete", "all")
        self.applied(lambda: sipp_uac(self.work, self.port, "bob", "example.com", source="127.0.0.9",
                                      expect=403).returncode == 0, "refused again without 'all'")

    # ------------------------------------------------------------ flood

    def test_09_flood_limit_bans_and_ban_clear(self):
        n = self.node
        s = send_from(FLOODER, self.port, b"")
        stream = SipStream(s)
        codes = []
        try:
            for i in range(30):
                s.sendall(sip_message("sip:bob@example.com", source_host=FLOODER, call_id="flood-%d" % i))
                codes.append(final_response(stream))
        finally:
            s.close()
        statuses = [status_of(r) for r in codes]
        # 20 requests per window are answered normally (403: not in the ACL),
        # the rest refused while the address is banned.
        self.assertEqual(statuses, [403] * 20 + [503] * 10)
        self.assertEqual(header(codes[-1], "Retry-After"), "300")
        bans = n.ctl_json("ban", "list")["bans"]
        self.assertEqual([b["address"] for b in bans], [FLOODER])
        self.assertEqual(bans[0]["refused"], 10)
        self.assertIn(FLOODER, n.ctl("ban", "list").stdout)
        self.logged(re.escape("flood limit: %s sent over 20 requests" % FLOODER))
        r = n.ctl("ban", "clear", "192.0.2.1", check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("192.0.2.1 is not banned", r.stderr)
        r = n.ctl("ban", "clear", "not-an-ip", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("'not-an-ip' is not an IP address", r.stderr)
        self.assertIn("lifted 1 ban(s)", n.ctl("ban", "clear", FLOODER).stdout)
        self.assertEqual(n.ctl_json("ban", "list")["bans"], [])
        self.assertEqual(n.ctl_json("proxy", "stats")["flood_refused"], 10)

    # ------------------------------------------------------------ routing modes

    def test_10_routing_mode_matrix(self):
        n = self.node
        n.ctl("domain", "add", "corp.example")
        n.ctl("domain", "add", "loop.example")
        n.ctl("user", "add", "carol", "--im-address", "carol@corp.example", "--unlicensed", "--ms-uri",
              "sip:carol@corp.example")
        n.ctl("user", "add", "dave", "--im-address", "dave@corp.example", "--unlicensed")
        n.ctl("user", "add", "alice", "--im-address", "alice@corp.example", "--home-node", "e2e1")
        n.ctl("user", "add", "erin", "--im-address", "erin@loop.example", "--unlicensed", "--ms-uri",
              "sip:erin@loop.example")
        n.ctl("route", "add", ".example.corp.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
              str(self.uas.port), "--transport", "TCP", "--priority", "1")
        # The "Microsoft server" for loop.example is this proxy itself: what it
        # sends there comes straight back (FED-7).
        n.ctl("route", "add", ".example.loop.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
              str(self.port), "--transport", "TCP", "--priority", "1")

        def expect(user, domain, status):
            r = sipp_uac(self.work, self.port, user, domain, expect=status)
            return r.returncode == 0

        def matrix(rows, what):
            for user, domain, status in rows:
                self.applied(lambda: expect(user, domain, status), "%s: %s@%s -> %d" % (what, user, domain, status))

        n.ctl("trace", "set", "sip-proxy", "--on", "--flag", "routing", "--flag", "method-event-routing")
        n.ctl("federation", "disable")
        matrix([("carol", "corp.example", 404), ("dave", "corp.example", 404), ("bob", "nowhere.example", 404),
                ("bob", "example.com", 200)], "federation disabled")
        self.logged(re.escape("Routing: corp.example rejected with 404: carol@corp.example is in local presence domain "
                              "corp.example but is not a licensed IMP user, and partitioned intradomain federation "
                              "is disabled"))

        n.ctl("federation", "enable", "--routing-mode", "basic")
        # alice is homed here: the node's federation connection manager takes
        # her MESSAGE (page mode) and the XMPP side stores it for her (IM-5)
        matrix([("carol", "corp.example", 200), ("dave", "corp.example", 200), ("bob", "nowhere.example", 404),
                ("alice", "corp.example", 200)], "basic")
        # the seed's routing trace lines (RT-9) and the outbound marking (FED-8)
        self.logged(re.escape("Routing: dipping for corp.example"))
        self.logged(re.escape("Found domain route for corp.example: .example.corp.*"))
        self.logged(re.escape("This is an outbound Partitioned federation request"))
        # Repeated recipients are answered from the proxy's recipient cache;
        # a directory change (a new settings generation) is seen at once.
        hits = n.ctl_json("proxy", "stats")["directory_cache_hits"]
        self.assertTrue(expect("dave", "corp.example", 200))
        self.assertGreater(n.ctl_json("proxy", "stats")["directory_cache_hits"], hits)
        n.ctl("user", "delete", "dave")
        n.ctl("user", "add", "dave", "--im-address", "dave@corp.example", "--home-node", "e2e1")
        matrix([("dave", "corp.example", 200)], "dave licensed now")
        n.ctl("user", "delete", "dave")
        n.ctl("user", "add", "dave", "--im-address", "dave@corp.example", "--unlicensed")

        n.ctl("federation", "set", "--routing-mode", "advanced")
        matrix([("carol", "corp.example", 200), ("dave", "corp.example", 404)], "advanced")
        self.logged(re.escape("holds no Microsoft SIP URI for it"))

        before = n.ctl_json("proxy", "stats")["loops"]
        matrix([("erin", "loop.example", 482)], "loop")
        self.assertGreater(n.ctl_json("proxy", "stats")["loops"], before)
        self.logged(re.escape("loop detected (FED-7): MESSAGE sip:erin@loop.example came back"))
        # without a federation connection manager on her node: 480, until it is back
        n.ctl("service", "deactivate", "federation-cm")
        matrix([("alice", "corp.example", 480)], "federation-cm stopped")
        n.ctl("service", "activate", "federation-cm")
        matrix([("alice", "corp.example", 200)], "federation-cm back")
        n.ctl("federation", "disable")
        n.ctl("trace", "set", "sip-proxy", "--off", "--clear-flags")


if __name__ == "__main__":
    unittest.main(verbosity=2)
