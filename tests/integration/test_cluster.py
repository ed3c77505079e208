"""Two impd nodes on one external MariaDB: migrations applied once, each sees
both nodes, remote service control and trace, database outage and recovery."""
import json
import os
import socket
import subprocess
import threading
import unittest

from harness import Impd, PrivateMariaDB, migration_files, wait_for


class Cluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = PrivateMariaDB()
        cls.db.start()
        url = cls.db.create_app_user()
        cls.n1 = Impd("node-a", db_url=url)
        cls.n2 = Impd("node-b", db_url=url, role="routing")
        # start both at once so they race for the migration lock
        errors = []

        def start(n):
            try:
                n.start()
            except Exception as e:  # surfaced below
                errors.append(e)
        threads = [threading.Thread(target=start, args=(n,)) for n in (cls.n1, cls.n2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    @classmethod
    def tearDownClass(cls):
        for n in (cls.n1, cls.n2):
            n.cleanup()
        cls.db.cleanup()

    def test_01_migrations_applied_once(self):
        rows = self.db.sql("SELECT version, applied_by FROM schema_migration ORDER BY version", database="imp")
        self.assertEqual([r[0] for r in rows], [str(int(f[:4])) for f in migration_files()])
        self.assertEqual(len({r[1] for r in rows}), 1, "one node applied all migrations: %r" % rows)
        self.assertEqual(self.db.sql("SELECT COUNT(*) FROM core_settings", database="imp"), [["1"]])

    def test_02_each_node_sees_both(self):
        for n in (self.n1, self.n2):
            wait_for(lambda: len(n.ctl_json("status", "--cluster")["nodes"]) == 2, 30, "two nodes")
            nodes = {x["id"]: x for x in n.ctl_json("status", "--cluster")["nodes"]}
            self.assertEqual(set(nodes), {"node-a", "node-b"})
            self.assertEqual(nodes["node-b"]["role"], "routing")
            wait_for(lambda: all(x["state"] == "up" and x["services"] for x in n.ctl_json("status", "--cluster")["nodes"]),
                     30, "both nodes up with published services")
            out = n.ctl("status", "--cluster").stdout
            self.assertRegex(out, r"node-a( \*)?\s+single\s+up")
            self.assertRegex(out, r"node-b( \*)?\s+routing\s+up")

    def test_03_remote_restart_and_trace(self):
        r = self.n1.ctl("service", "restart", "ris-collector", "--node", "node-b")
        self.assertIn("ris-collector: restart done on node-b", r.stdout)
        local = {s["name"]: s for s in self.n2.ctl_json("service", "list")["services"]}
        self.assertEqual(local["ris-collector"]["restarts"], 1)
        self.n1.ctl("trace", "set", "serviceability", "--level", "debug", "--node", "node-b")
        wait_for(lambda: " debug [serviceability]" in self.n2.log("serviceability"), 30,
                 "node-b to apply a trace change made on node-a")
        shown = self.n2.ctl_json("trace", "show", "serviceability")
        self.assertEqual(shown["level"], "debug")
        # deactivation made on node-a for node-b is applied by node-b
        self.n1.ctl("service", "deactivate", "ris-collector", "--node", "node-b")
        wait_for(lambda: {s["name"]: s for s in self.n2.ctl_json("service", "list")["services"]}["ris-collector"]["state"]
                 == "stopped", 30, "node-b to stop ris-collector")
        self.n1.ctl("service", "activate", "ris-collector", "--node", "node-b")
        wait_for(lambda: {s["name"]: s for s in self.n2.ctl_json("service", "list")["services"]}["ris-collector"]["state"]
                 == "running", 30, "node-b to start ris-collector")

    def test_04_wrong_token_is_refused(self):
        bad = os.path.join(self.n1.dir, "bad.token")
        with open(bad, "w") as f:
            f.write("ffffffffffffffffffffffffffffffff\n")
        r = subprocess.run([__import__("harness").IMPCTL, "--url", self.n1.url, "--token-file", bad, "status"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 77)
        self.assertIn("missing or invalid bearer token", r.stderr)

    def test_045_request_for_a_user_homed_elsewhere_goes_to_that_node(self):
        """FED-6: node-a's proxy forwards to the SIP proxy of the user's home
        node, found in the node endpoints each proxy publishes; node-b has no
        federation connection manager yet and answers 480."""
        a, b = self.n1, self.n2
        a.ctl("acl", "add", "127.0.0.1", "--description", "cluster nodes and the test client")
        a.ctl("domain", "add", "cluster.example")
        a.ctl("user", "add", "bea", "--im-address", "bea@cluster.example", "--home-node", "node-b")

        def ask():
            s = socket.create_connection(("127.0.0.1", a.sip_tcp), timeout=10)
            try:
                s.sendall(("MESSAGE sip:bea@cluster.example SIP/2.0\r\n"
                           "Via: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK-cluster-%s\r\n"
                           "From: <sip:ann@client.example>;tag=1\r\nTo: <sip:bea@cluster.example>\r\n"
                           "Call-ID: cluster-%s\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n"
                           "Content-Length: 0\r\n\r\n" % (os.urandom(4).hex(), os.urandom(4).hex())).encode())
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                return data.decode(errors="replace")
            finally:
                s.close()
        wait_for(lambda: ask().startswith("SIP/2.0 480 "), 30, "480 from node-b relayed by node-a")
        wait_for(lambda: "recipient homed on node 'node-b'" in b.log("sip-proxy"), 10,
                 "node-b's proxy got the request")
        self.assertNotIn("recipient homed on node 'node-b'", a.log("sip-proxy"))

    def test_05_database_outage_and_recovery(self):
        self.db.stop()
        for n in (self.n1, self.n2):
            wait_for(lambda: n.http("GET", "/health/ready", token=False)[0] == 503, 30, "not ready")
            code, body = n.http("GET", "/health/ready", token=False)
            self.assertIn("database unreachable", json.loads(body)["reasons"])
            self.assertIsNone(n.proc.poll(), "impd keeps running")
            self.assertEqual(n.http("GET", "/health/live", token=False)[0], 200)
            code, body = n.http("GET", "/api/v1/cluster/nodes")
            self.assertEqual(code, 503)
            self.assertEqual(json.loads(body)["error"]["code"], "database_unavailable")
        self.db.start()
        for n in (self.n1, self.n2):
            wait_for(lambda: n.http("GET", "/health/ready", token=False)[0] == 200, 60, "ready again")
        # and it is really usable again
        self.n1.ctl("trace", "set", "ris-collector", "--level", "info")
        self.assertEqual(len(self.n1.ctl_json("status", "--cluster")["nodes"]), 2)

    def test_06_clean_stop_marks_node_down(self):
        self.assertEqual(self.n2.stop(), 0)
        nodes = {x["id"]: x for x in self.n1.ctl_json("status", "--cluster")["nodes"]}
        self.assertEqual(nodes["node-b"]["state"], "down")
        r = self.n1.ctl("service", "restart", "ris-collector", "--node", "node-b", check=False)
        self.assertEqual(r.returncode, 0)
        self.assertIn("(pending)", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
