"""The administrator's toolkit of issue 19 on a running impd: the capacity
planner (HA-2) reproducing every row of the seed's tables 9, 10 and 11
through `impctl capacity`, and log access (SV-5): `impctl log list` with
each service's file, `impctl log tail` against the file's own last lines,
`-f` printing a line the service writes afterwards, and the
refusals (unknown service, bad numbers, unknown template)."""
import json
import os
import select
import subprocess
import time
import unittest

from harness import IMPCTL, Impd, PrivateMariaDB

# The seed's tables: average contact-list size -> (max users with HA, without HA).
TABLE_9 = {200: (325, 650), 150: (433, 866), 100: (650, 1300), 75: (866, 1733), 50: (1300, 2600), 25: (2500, 5000)}
TABLE_10 = {200: (45, 90), 150: (60, 120), 100: (90, 180), 75: (120, 240), 50: (180, 360), 25: (360, 720),
            18: (500, 1000)}
TABLE_11 = {200: (225, 450), 150: (300, 600), 100: (450, 900), 75: (600, 1200), 50: (900, 1800), 25: (1800, 3600),
            18: (2500, 5000)}


class Toolkit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = PrivateMariaDB()
        cls.db.start()
        cls.node = Impd("tk1", db_url=cls.db.create_app_user())
        cls.node.start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()
        cls.db.cleanup()

    # ------------------------------------------------------------ capacity

    def capacity(self, *args):
        return self.node.ctl_json("capacity", *args)

    def test_01_capacity_reproduces_the_seed_tables(self):
        for template, table in ((None, TABLE_9), ("1000", TABLE_10), ("5000", TABLE_11)):
            extra = ("--template", template) if template else ()
            with_ha = {r["avg_contacts"]: r["max_users"] for r in self.capacity("--ha", *extra)["rows"]}
            without = {r["avg_contacts"]: r["max_users"] for r in self.capacity(*extra)["rows"]}
            self.assertEqual(with_ha, {avg: v[0] for avg, v in table.items()}, template)
            self.assertEqual(without, {avg: v[1] for avg, v in table.items()}, template)

    def test_02_capacity_for_one_deployment_with_the_imp_column(self):
        out = self.capacity("--avg-contacts", "120", "--ha", "--template", "5000")
        self.assertEqual(len(out["rows"]), 1)
        row = out["rows"][0]
        self.assertEqual(row["max_users"], 90000 // 120 // 2)
        # IMP's own column: the subscriptions one node held (docs/BENCHMARKS.md, B-FED-SUBS)
        self.assertEqual(out["imp_threshold_contacts"], 1296849)
        self.assertEqual(row["imp_max_users"], 1296849 // 120 // 2)
        text = self.node.ctl("capacity", "--avg-contacts", "120", "--ha", "--template", "5000").stdout
        self.assertIn("MAX USERS (IMP MEASURED)", text)
        self.assertIn("375", text)

    def test_03_capacity_refusals(self):
        r = self.node.ctl("capacity", "--avg-contacts", "0", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("avg_contacts", r.stderr)
        r = self.node.ctl("capacity", "--template", "2000", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("2000", r.stderr)

    # ------------------------------------------------------------ logs

    def test_04_log_list_names_each_service_file(self):
        out = self.node.ctl_json("log", "list")
        self.assertEqual(os.path.realpath(out["log_dir"]), os.path.realpath(self.node.log_dir))
        files = {f["file"]: f for f in out["files"]}
        for name in ("sip-proxy.log", "serviceability.log", "xcp-router.log"):
            self.assertIn(name, files)
            f = files[name]
            self.assertEqual(f["service"], name[:-4])
            self.assertEqual(f["size_bytes"], os.path.getsize(f["path"]))
        text = self.node.ctl("log", "list").stdout
        self.assertIn("sip-proxy.log", text)

    def test_05_log_tail_is_the_file_last_lines(self):
        # a line of our own in the serviceability log, then the tail
        self.node.ctl("trace", "set", "sip-proxy", "--on", "--level", "debug")
        path = os.path.join(self.node.log_dir, "serviceability.log")
        deadline = time.monotonic() + 30
        def logged():
            with open(path) as f:
                return "trace for sip-proxy set: on" in f.read()
        while not logged():
            self.assertLess(time.monotonic(), deadline, "the trace change was not logged")
            time.sleep(0.1)
        out = self.node.ctl_json("log", "tail", "serviceability", "--lines", "3")
        with open(path, "rb") as f:
            data = f.read(out["next_offset"])
        self.assertEqual(out["text"].encode(), b"".join(data.splitlines(keepends=True)[-3:]))
        self.assertIn("trace for sip-proxy set: on", out["text"])
        text = self.node.ctl("log", "tail", "serviceability", "--lines", "1").stdout
        self.assertEqual(text.count("\n"), 1)

    def test_06_log_tail_follow_prints_what_comes_next(self):
        p = subprocess.Popen([IMPCTL, "-c", self.node.conf, "--url", self.node.url, "log", "tail", "serviceability",
                              "--lines", "1", "-f"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            seen = b""
            marker = b"trace for federation-cm set: on level warn"
            self.node.ctl("trace", "set", "federation-cm", "--on", "--level", "warn")
            deadline = time.monotonic() + 30
            while marker not in seen:
                left = deadline - time.monotonic()
                self.assertGreater(left, 0, "the follower did not print the new line: %r" % seen[-500:])
                ready, _, _ = select.select([p.stdout], [], [], left)
                if ready:
                    chunk = os.read(p.stdout.fileno(), 65536)
                    if not chunk:
                        self.fail("impctl log tail --follow ended: %s" % p.stderr.read().decode())
                    seen += chunk
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()

    def test_07_log_tail_refusals(self):
        r = self.node.ctl("log", "tail", "no-such-service", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no log file for 'no-such-service'", r.stderr)
        self.assertIn("sip-proxy", r.stderr)  # the message lists those there are
        r = self.node.ctl("log", "tail", "sip-proxy", "--lines", "0", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("lines", r.stderr)
        # a path is not a service
        r = self.node.ctl("log", "tail", "../../etc/passwd", check=False)
        self.assertNotEqual(r.returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
