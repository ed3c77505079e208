"""SIP Proxy settings through impctl and the admin API: federation (FED-4..6),
application listeners (TLS-1), TLS peer subjects and contexts (TLS-2/3),
incoming ACL (RT-7), static routes and the routing decision (RT-2/3, FED-6),
with a bad-input sweep in which every refusal is clear and stores nothing."""
import json
import os
import pwd
import subprocess
import unittest

from harness import Impd


class ProxyConfig(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Impd("px1")
        cls.node.start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    # -- helpers --------------------------------------------------------------

    def sql(self, statement):
        """Runs SQL on the node's managed MariaDB (what another module would
        write: the inter-cluster peer table is filled by a later issue)."""
        sock = os.path.join(self.node.dir, "state", "mariadb", "mysqld.sock")
        r = subprocess.run(["mariadb", "--no-defaults", "-S", sock, "-u", pwd.getpwuid(os.geteuid()).pw_name,
                            "-N", "-B", "imp", "-e", statement], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [line.split("\t") for line in r.stdout.splitlines()]

    def generation(self):
        return int(self.sql("SELECT generation FROM core_settings WHERE id = 1")[0][0])

    def snapshot(self):
        n = self.node
        return {
            "federation": n.ctl_json("federation", "show"),
            "listeners": n.ctl_json("listener", "list"),
            "peer_subjects": n.ctl_json("tls", "peer-subject", "list"),
            "contexts": n.ctl_json("tls", "context", "list"),
            "acl": n.ctl_json("acl", "list"),
            "routes": n.ctl_json("route", "list"),
        }

    def refused(self, args, message, code=1):
        r = self.node.ctl(*args, check=False)
        self.assertEqual(r.returncode, code, (args, r.stdout, r.stderr))
        self.assertIn(message, r.stderr, args)
        return r

    def routes(self):
        return self.node.ctl_json("route", "list")["routes"]

    def decision(self, recipient):
        return self.node.ctl_json("route", "lookup", recipient)

    # -- tests, in order --------------------------------------------------------

    def test_01_federation_enable_shows_the_warning(self):
        n = self.node
        f = n.ctl_json("federation", "show")
        self.assertEqual((f["enabled"], f["routing_mode"], f["email_for_interdomain"]), (False, "basic", False))
        self.assertEqual(f["recent_changes"], [])
        self.assertIn("last change:", n.ctl("federation", "show").stdout)
        before = self.generation()
        out = n.ctl("federation", "enable").stdout
        self.assertIn("WARNING: Enabling partitioned intradomain federation: requests for users of local presence "
                      "domains who are not licensed IMP users are routed to the Microsoft server through static "
                      "routes. Make sure static routes to the Microsoft server exist", out)
        self.assertIn("WARNING: No static route of type 'domain' is configured yet", out)
        self.assertIn("no restart is needed", out)
        self.assertGreater(self.generation(), before, "the change bumps the settings generation")
        f = n.ctl_json("federation", "show")
        self.assertTrue(f["enabled"])
        self.assertEqual(f["recent_changes"][0]["what"], "enabled: off -> on")
        self.assertTrue(f["changed_at"])
        # The same warning reaches any API client.
        code, body = n.http("PUT", "/api/v1/federation", body=b'{"enabled": true}')
        self.assertEqual(code, 200, body)
        self.assertIn("Make sure static routes to the Microsoft server exist", json.loads(body)["warnings"][0])
        self.assertFalse(json.loads(body)["changed"])
        out = n.ctl("federation", "disable", "--routing-mode", "advanced").stdout
        self.assertNotIn("WARNING", out)
        f = n.ctl_json("federation", "show")
        self.assertEqual((f["enabled"], f["routing_mode"]), (False, "advanced"))
        self.assertEqual(f["recent_changes"][0]["what"], "enabled: on -> off; routing mode: basic -> advanced")
        n.ctl("federation", "set", "--routing-mode", "basic")
        self.assertEqual(n.ctl_json("federation", "show")["routing_mode"], "basic")

    def test_02_listeners_swap_for_lync(self):
        n = self.node
        ls = {l["name"]: l for l in n.ctl_json("listener", "list")["listeners"]}
        self.assertEqual({k: (v["port"], v["enabled"]) for k, v in ls.items()},
                         {"tcp": (5060, True), "tls-server-auth": (5061, True), "tls-peer-auth": (5062, True),
                          "udp": (5060, False)})
        self.assertEqual(ls["tls-peer-auth"]["auth"], "mutual")
        # UDP is off by default (Lync and OCS do not use it) and may share 5060 with TCP.
        self.assertEqual((ls["udp"]["transport"], ls["udp"]["display_name"]),
                         ("UDP", "Default Cisco SIP Proxy UDP Listener"))
        # TLS-1: Lync needs Peer Auth on 5061, so Server Auth moves away first.
        n.ctl("listener", "set", "tls-server-auth", "--port", "5063")
        n.ctl("listener", "set", "tls-peer-auth", "--port", "5061")
        out = n.ctl("listener", "set", "tls-server-auth", "--port", "5062").stdout
        self.assertRegex(out, r"tls-server-auth\s+TLS\s+server\s+yes\s+5062\s+5061")
        n.ctl("listener", "set", "tcp", "--disable")
        ls = {l["name"]: l for l in n.ctl_json("listener", "list")["listeners"]}
        self.assertEqual({k: (v["port"], v["enabled"]) for k, v in ls.items()},
                         {"tcp": (5060, False), "tls-server-auth": (5062, True), "tls-peer-auth": (5061, True),
                          "udp": (5060, False)})
        n.ctl("listener", "set", "tcp", "--enable", "--port", "5060")
        self.assertIn("tcp", n.ctl("listener", "list").stdout)

    def test_03_tls_peer_subjects_and_contexts(self):
        n = self.node
        n.ctl("tls", "peer-subject", "add", "Lync-FE1.Example.com", "--description", "Lync front end")
        n.ctl("tls", "peer-subject", "add", "lyncpool.example.com")
        n.ctl("tls", "peer-subject", "add", "old-ocs.example.com")
        subjects = {p["subject_cn"]: p for p in n.ctl_json("tls", "peer-subject", "list")["peer_subjects"]}
        self.assertEqual(set(subjects), {"lync-fe1.example.com", "lyncpool.example.com", "old-ocs.example.com"})
        self.assertEqual(subjects["lync-fe1.example.com"]["description"], "Lync front end")
        contexts = {c["name"]: c for c in n.ctl_json("tls", "context", "list")["contexts"]}
        self.assertEqual(set(contexts), {"default-server", "peer-auth"})
        self.assertEqual(contexts["peer-auth"]["display_name"], "Default Cisco UP SIP Proxy Peer Auth TLS Context")
        self.assertTrue(contexts["peer-auth"]["disable_empty_fragments"])
        out = n.ctl("tls", "context", "set", "peer-auth", "--peer-subject", "lync-fe1.example.com", "--peer-subject",
                    "LYNCPOOL.example.com", "--min-version", "1.0", "--ciphers", "ALL:!aNULL:@SECLEVEL=0",
                    "--disable-empty-fragments").stdout
        self.assertIn("WARNING: min-version 1.0 is only for OCS 2007 R2", out)
        c = {c["name"]: c for c in n.ctl_json("tls", "context", "list")["contexts"]}["peer-auth"]
        self.assertEqual(c["peer_subjects"], ["lync-fe1.example.com", "lyncpool.example.com"])
        self.assertEqual((c["min_version"], c["max_version"], c["ciphers"]), ("1.0", "1.3", "ALL:!aNULL:@SECLEVEL=0"))
        out = n.ctl("tls", "context", "set", "peer-auth", "--min-version", "1.2").stdout
        self.assertNotIn("WARNING", out)
        self.assertRegex(n.ctl("tls", "context", "list").stdout,
                         r"peer-auth\s+1\.2\s+1\.3\s+yes\s+lync-fe1\.example\.com,lyncpool\.example\.com\s+ALL:")
        used = {p["subject_cn"]: p["used_by"] for p in n.ctl_json("tls", "peer-subject", "list")["peer_subjects"]}
        self.assertEqual(used["lyncpool.example.com"], ["peer-auth"])
        n.ctl("tls", "peer-subject", "delete", "old-ocs.example.com")
        self.assertNotIn("old-ocs.example.com", n.ctl("tls", "peer-subject", "list").stdout)

    def test_04_incoming_acl(self):
        n = self.node
        n.ctl("acl", "add", "10.1.10.100", "--description", "ocs1 by address")
        n.ctl("acl", "add", "OCS1.Foo.com", "--description", "ocs1 by name")
        n.ctl("acl", "add", "foo.com")
        n.ctl("acl", "add", "2001:DB8:0::1")
        n.ctl("acl", "add", "all")
        acl = {e["pattern"]: e for e in n.ctl_json("acl", "list")["acl"]}
        self.assertEqual(set(acl), {"10.1.10.100", "ocs1.foo.com", "foo.com", "2001:db8::1", "all"})
        self.assertEqual(acl["10.1.10.100"]["kind"], "address")
        self.assertEqual(acl["foo.com"]["kind"], "name")
        self.assertEqual(acl["all"]["kind"], "all")
        self.assertEqual(acl["ocs1.foo.com"]["description"], "ocs1 by name")
        n.ctl("acl", "delete", "2001:db8::1")
        n.ctl("acl", "delete", "all")
        self.assertEqual(len(n.ctl_json("acl", "list")["acl"]), 3)

    def test_05_static_routes_and_routing_decision(self):
        n = self.node
        n.ctl("route", "add", ".com.example.*", "--route-type", "domain", "--next-hop", "10.0.0.1", "--port", "5061",
              "--transport", "TLS")
        n.ctl("route", "add", ".com.example.*", "--route-type", "domain", "--next-hop", "LyncPool.example.com",
              "--transport", "tcp", "--priority", "2", "--weight", "5")
        n.ctl("route", "add", ".com.example.lyncserver", "--route-type", "domain", "--next-hop", "10.0.0.9")
        n.ctl("route", "add", "com.partner", "--route-type", "domain", "--next-hop", "2001:db8::9", "--transport", "udp")
        routes = self.routes()
        self.assertEqual([(r["pattern"], r["next_hop"], r["port"], r["transport"], r["priority"], r["weight"])
                          for r in routes],
                         [(".com.example.*", "10.0.0.1", 5061, "TLS", 1, 1),
                          (".com.example.*", "lyncpool.example.com", 5060, "TCP", 2, 5),
                          (".com.example.lyncserver", "10.0.0.9", 5061, "TLS", 1, 1),
                          (".com.partner", "2001:db8::9", 5060, "UDP", 1, 1)])
        self.assertRegex(n.ctl("route", "list").stdout, r"\.com\.example\.\*\s+domain\s+lyncpool\.example\.com\s+5060\s+TCP\s+2\s+5")

        n.ctl("domain", "add", "example.com")
        n.ctl("user", "add", "ann", "--im-address", "ann@example.com", "--home-node", "px1")
        n.ctl("user", "add", "bob", "--im-address", "bob@example.com", "--unlicensed", "--ms-uri", "sip:bob@example.com")
        n.ctl("user", "add", "carol", "--im-address", "carol@example.com", "--unlicensed")

        # Federation disabled: not licensed -> 404, routes not consulted.
        d = self.decision("carol@example.com")
        self.assertEqual((d["decision"], d["status"], d["routes"]), ("reject", 404, []))
        self.assertIn("partitioned intradomain federation is disabled", d["reason"])
        self.assertEqual(self.decision("sip:ann@example.com")["home_node"], "px1")

        out = n.ctl("federation", "enable").stdout
        self.assertEqual(out.count("WARNING"), 1, "a domain route exists now")
        # Basic: everyone of example.com not licensed goes to the Microsoft server, primary first.
        for who in ("carol@example.com", "bob@example.com", "dave@example.com"):
            d = self.decision(who)
            self.assertEqual(d["decision"], "microsoft_server", d)
            self.assertEqual([r["next_hop"] for r in d["routes"]], ["10.0.0.1", "lyncpool.example.com"])
            self.assertEqual(d["pattern"], ".com.example.*")
        self.assertEqual(self.decision("ann@example.com")["decision"], "local_user")
        # Advanced: only with a Microsoft SIP URI.
        n.ctl("federation", "set", "--routing-mode", "advanced")
        self.assertEqual(self.decision("bob@example.com")["decision"], "microsoft_server")
        d = self.decision("carol@example.com")
        self.assertEqual((d["decision"], d["status"]), ("reject", 404))
        self.assertIn("holds no Microsoft SIP URI", d["reason"])
        n.ctl("federation", "set", "--routing-mode", "basic")
        # Other domains: ordinary static routing; the exact FQDN pattern; unknown everywhere.
        self.assertEqual(self.decision("x@lyncserver.example.com")["routes"][0]["next_hop"], "10.0.0.9")
        d = self.decision("pat@partner.com")
        self.assertEqual((d["decision"], d["pattern"]), ("static_route", ".com.partner"))
        d = self.decision("nobody@unknown.example.org")
        self.assertEqual((d["decision"], d["status"]), ("reject", 404))
        out = n.ctl("route", "lookup", "carol@example.com").stdout
        self.assertIn("carol@example.com: microsoft_server", out)
        self.assertIn("found domain route .com.example.*", out)

        gone = [r["id"] for r in self.routes() if r["pattern"] == ".com.partner"][0]
        self.assertIn("deleted static route %d" % gone, n.ctl("route", "delete", str(gone)).stdout)
        self.assertNotIn(gone, [r["id"] for r in self.routes()])

    def test_06_bad_input_is_refused_and_stores_nothing(self):
        n = self.node
        self.assertTrue(n.ctl_json("federation", "show")["enabled"])
        self.sql("INSERT INTO sip_intercluster_peer (address) VALUES ('imp.other-cluster.example.com')")
        try:
            before = self.snapshot()
            gen = self.generation()
            route = ["route", "add", ".com.example.*", "--route-type", "domain"]
            cases = [
                # static routes (RT-2, RT-3)
                (["route", "add", "example.com", "--route-type", "domain", "--next-hop", "10.0.0.5"],
                 "destination pattern 'example.com' looks like a domain written forwards; write it reversed: "
                 "'.com.example.*'"),
                (["route", "add", ".com.*.example", "--route-type", "domain", "--next-hop", "10.0.0.5"],
                 "'*' is allowed only as the last label"),
                (["route", "add", ".com.exa*", "--route-type", "domain", "--next-hop", "10.0.0.5"],
                 "'*' must be a whole label"),
                (["route", "add", ".com..example", "--route-type", "domain", "--next-hop", "10.0.0.5"],
                 "has an empty label"),
                (["route", "add", ".com.example.*", "--route-type", "user", "--next-hop", "10.0.0.5"],
                 "cannot start with '.'; a reversed domain pattern needs --route-type domain"),
                (route + ["--next-hop", "10.0.0.7"],
                 "pattern '.com.example.*' already has a route with priority 1 (id"),
                (route + ["--next-hop", "10.0.0.7", "--priority", "2"],
                 "pattern '.com.example.*' already has a route with priority 2"),
                (route + ["--next-hop", "10.0.0.1", "--priority", "3"],
                 "a domain route for pattern '.com.example.*' to 10.0.0.1:5061;TLS priority 1 weight 1 already exists"),
                (route + ["--next-hop", "10.0.0.300", "--priority", "3"], "next hop '10.0.0.300' is not a valid IPv4 address"),
                (route + ["--next-hop", "2001:db8:::1", "--priority", "3"], "next hop '2001:db8:::1' is not a valid IPv6 address"),
                (route + ["--next-hop", "lync", "--priority", "3"], "next hop 'lync' needs at least 2 labels"),
                (route + ["--next-hop", "10.0.0.7", "--priority", "3", "--port", "0"], "port 0 is out of range 1..65535"),
                (route + ["--next-hop", "10.0.0.7", "--priority", "3", "--port", "65536"], "port 65536 is out of range 1..65535"),
                (route + ["--next-hop", "10.0.0.7", "--priority", "3", "--port", "50six"],
                 "field 'port' must be a whole number ('50six')"),
                (route + ["--next-hop", "10.0.0.7", "--priority", "0"], "priority 0 is out of range 1..65535"),
                (route + ["--next-hop", "10.0.0.7", "--priority", "3", "--weight", "70000"], "weight 70000 is out of range"),
                (route + ["--next-hop", "10.0.0.7", "--priority", "3", "--transport", "SCTP"],
                 "transport 'SCTP' is not TCP, TLS or UDP"),
                (["route", "add", ".com.x.*", "--next-hop", "10.0.0.7"], "field 'route_type' is required"),
                (["route", "add", ".com.x.*", "--route-type", "host", "--next-hop", "10.0.0.7"],
                 "route type 'host' is not domain or user"),
                (["route", "add", ".com.x.*", "--route-type", "domain"], "field 'next_hop' is required"),
                (["route", "delete", "99999"], "no static route with id 99999"),
                (["route", "delete", "first"], "route id 'first' is not a number"),
                # incoming ACL (RT-7)
                (["acl", "add", "10.1.10.300"], "address pattern '10.1.10.300' is not a valid IPv4 address"),
                (["acl", "add", "2001:db8::zz"], "address pattern '2001:db8::zz' is not a valid IPv6 address"),
                (["acl", "add", "foo_bar.com"], "may hold only letters, digits, '-' and '.'"),
                (["acl", "add", "10.0.0.0/8"], "address ranges are not supported"),
                (["acl", "add", "lync"], "needs at least 2 labels"),
                (["acl", "add", "FOO.com"], "incoming ACL entry 'foo.com' already exists"),
                (["acl", "add", "10.1.10.100"], "incoming ACL entry '10.1.10.100' already exists"),
                (["acl", "delete", "192.0.2.1"], "no incoming ACL entry '192.0.2.1'"),
                # listeners (TLS-1)
                (["listener", "set", "tls-peer-auth", "--port", "5060"],
                 "port 5060 is already used by the enabled listener 'tcp'; choose another port for 'tls-peer-auth'"),
                (["listener", "set", "tcp", "--port", "5062"], "already used by the enabled listener 'tls-server-auth'"),
                (["listener", "set", "tcp", "--port", "0"], "port 0 is out of range 1..65535"),
                (["listener", "set", "tcp", "--port", "99999"], "port 99999 is out of range 1..65535"),
                (["listener", "set", "tcp", "--port", "sip"], "field 'port' must be a whole number ('sip')"),
                (["listener", "set", "sctp", "--port", "5070"],
                 "no listener 'sctp'; listeners: tcp, tls-server-auth, tls-peer-auth, udp"),
                # TLS peer subjects and contexts (TLS-2, TLS-3)
                (["tls", "peer-subject", "add", "*.example.com"], "may not be a wildcard"),
                (["tls", "peer-subject", "add", "bad_cn.example.com"], "may hold only letters, digits"),
                (["tls", "peer-subject", "add", "LYNCPOOL.example.com"], "TLS peer subject 'lyncpool.example.com' already exists"),
                (["tls", "peer-subject", "delete", "lyncpool.example.com"],
                 "TLS peer subject 'lyncpool.example.com' is selected by TLS context 'peer-auth'; remove it from the "
                 "context first"),
                (["tls", "peer-subject", "delete", "ghost.example.com"], "no TLS peer subject 'ghost.example.com'"),
                (["tls", "context", "set", "peer-auth", "--ciphers", "NOPE:NADA"],
                 "cipher list 'NOPE:NADA' is invalid: no cipher match (OpenSSL)"),
                (["tls", "context", "set", "peer-auth", "--ciphers", "AES128-SHA:AES129-SHA"],
                 "'AES129-SHA': no cipher match (OpenSSL)"),
                (["tls", "context", "set", "peer-auth", "--ciphers", ""], "cipher list is empty"),
                (["tls", "context", "set", "peer-auth", "--min-version", "1.3", "--max-version", "1.2"],
                 "min-version 1.3 is higher than max-version 1.2"),
                (["tls", "context", "set", "default-server", "--max-version", "1.1"],
                 "min-version 1.2 is higher than max-version 1.1"),
                (["tls", "context", "set", "peer-auth", "--min-version", "1.4"],
                 "min_version '1.4' is not a TLS version; use 1.0, 1.1, 1.2 or 1.3"),
                (["tls", "context", "set", "peer-auth", "--peer-subject", "lyncpool.example.com", "--peer-subject",
                  "ghost.example.com"],
                 "TLS peer subject 'ghost.example.com' does not exist; add it first"),
                (["tls", "context", "set", "nosuch", "--min-version", "1.2"],
                 "no TLS context 'nosuch'; contexts: default-server, peer-auth"),
                # federation (FED-5, FED-6)
                (["federation", "set", "--email-for-interdomain", "on"],
                 "'email address for inter-domain federation' cannot be turned on while partitioned intradomain "
                 "federation is enabled; disable federation first (FED-5)"),
                (["federation", "set", "--routing-mode", "advanced"],
                 "advanced routing mode is only valid for a single cluster, and 1 inter-cluster peer(s) are "
                 "configured; remove them or keep basic mode (FED-6)"),
                (["federation", "enable", "--routing-mode", "fast"], "routing mode 'fast' is not basic or advanced"),
            ]
            for args, message in cases:
                self.refused(args, message)
            # Mistakes impctl itself catches: usage errors (64), nothing sent.
            for args, message in [
                (["acl", "list", "--port", "5"], "--port does not apply to 'acl'"),
                (["listener", "set", "tcp", "--enable", "--disable"], "--enable and --disable exclude each other"),
                (["route", "list", "--next-hop", "10.0.0.1"], "does not apply to 'route'"),
                (["federation", "set", "--email-for-interdomain", "maybe"], "--email-for-interdomain takes on or off"),
                (["tls", "context", "set", "peer-auth", "--peer-subject", "a.example.com", "--clear-peer-subjects"],
                 "--peer-subject and --clear-peer-subjects exclude each other"),
                (["federation", "show", "--routing-mode", "basic"], "--routing-mode does not apply"),
            ]:
                self.refused(args, message, code=64)
            # The API itself: unknown fields and wrong types.
            for method, path, body, message in [
                ("POST", "/api/v1/routes", {"pattern": ".com.x.*", "route_type": "domain", "next_hop": "10.0.0.7",
                                            "colour": "red"}, "unknown field 'colour'"),
                ("POST", "/api/v1/routes", {"pattern": ".com.x.*", "route_type": "domain", "next_hop": "10.0.0.7",
                                            "port": 50.5}, "field 'port' must be a whole number"),
                ("PUT", "/api/v1/federation", {"enabled": False, "mode": "basic"}, "unknown field 'mode'"),
                ("PUT", "/api/v1/federation", {"enabled": "yes"}, "field 'enabled' must be true or false"),
                ("PUT", "/api/v1/federation", {}, "nothing to change"),
                ("PUT", "/api/v1/listeners/tcp", {"port": "5070"}, "field 'port' must be a whole number ('5070')"),
                ("PUT", "/api/v1/tls/contexts/peer-auth", {"ciphers": "HIGH", "fragments": True}, "unknown field 'fragments'"),
                ("PUT", "/api/v1/tls/contexts/peer-auth", {"peer_subjects": "lyncpool.example.com"},
                 "field 'peer_subjects' must be a list of subject CNs"),
                ("POST", "/api/v1/acl", {"pattern": "all", "comment": "x"}, "unknown field 'comment'"),
                ("POST", "/api/v1/tls/peer-subjects", {"cn": "x.example.com"}, "unknown field 'cn'"),
            ]:
                code, text = n.http(method, path, body=json.dumps(body).encode())
                self.assertEqual(code, 400, (path, body, text))
                self.assertIn(message, json.loads(text)["error"]["message"], (path, body))
            self.assertEqual(self.snapshot(), before)
            self.assertEqual(self.generation(), gen, "a refused change does not bump the settings generation")
        finally:
            self.sql("DELETE FROM sip_intercluster_peer")
        # Without inter-cluster peers the same change is accepted.
        n.ctl("federation", "set", "--routing-mode", "advanced")
        n.ctl("federation", "set", "--routing-mode", "basic")

    def test_07_fed5_email_for_interdomain_federation(self):
        n = self.node
        n.ctl("federation", "disable")
        n.ctl("federation", "set", "--email-for-interdomain", "on")
        before = self.snapshot()
        self.refused(["federation", "enable"],
                     "partitioned intradomain federation cannot be enabled while 'email address for inter-domain "
                     "federation' is on; turn that off first (FED-5)")
        code, text = n.http("PUT", "/api/v1/federation", body=b'{"enabled": true, "email_for_interdomain": true}')
        self.assertEqual(code, 409, text)
        self.assertEqual(self.snapshot(), before)
        n.ctl("federation", "set", "--email-for-interdomain", "off")
        n.ctl("federation", "enable")
        f = n.ctl_json("federation", "show")
        self.assertEqual((f["enabled"], f["email_for_interdomain"]), (True, False))
        self.assertEqual([c["what"] for c in f["recent_changes"][:3]],
                         ["enabled: off -> on", "email address for inter-domain federation: on -> off",
                          "email address for inter-domain federation: off -> on"])

    def test_08_clean_up_in_dependency_order(self):
        n = self.node
        n.ctl("tls", "context", "set", "peer-auth", "--clear-peer-subjects")
        n.ctl("tls", "peer-subject", "delete", "lyncpool.example.com")
        self.assertEqual(n.ctl_json("tls", "peer-subject", "list")["peer_subjects"][0]["subject_cn"], "lync-fe1.example.com")
        for r in self.routes():
            n.ctl("route", "delete", str(r["id"]))
        self.assertEqual(self.routes(), [])
        self.assertEqual(n.ctl_json("route", "lookup", "carol@example.com")["status"], 404)
        out = n.ctl("route", "lookup", "carol@example.com").stdout
        self.assertIn("reject 404", out)
        self.assertIn("no static route for example.com", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
