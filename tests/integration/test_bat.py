"""Bulk Provisioning Service (issue 18) on a running impd with a real
MariaDB: files (upload in parts, list, download byte for byte, wrong type,
delete), contact-list import (MG-7) with every bad-input row of the issue
reported with its reason while the job goes on, a file without its header
failing at once, contact-ID rename (MG-9) counting contact lists, the
import-rate service parameter (MG-3) applied live, cancel, scheduling, and
`kill -9` of impd in the middle of a large import: the job resumes from its
checkpoint and the counts and roster contents are exact."""
import csv
import hashlib
import io
import os
import re
import subprocess
import tempfile
import time
import unittest

from harness import Impd, PrivateMariaDB, wait_for

DOMAIN = "example.com"
HEADER = "User ID,User Domain,Contact ID,Contact Domain,Nickname,Group Name"
# impd kill test: the million rows when run by hand; ctest sets
# fewer (tests/integration/CMakeLists.txt) to keep the suite's time.
KILL_ROWS = int(os.environ.get("IMP_BAT_KILL_ROWS", "1000000"))


class Bat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="imp-bat-")
        cls.db = PrivateMariaDB()
        cls.db.start()
        cls.url = cls.db.create_app_user()
        cls.node = Impd("bat1", db_url=cls.url)
        cls.node.start()
        n = cls.node
        n.ctl("domain", "add", DOMAIN)
        for u in ("ann", "bob", "carol", "dave", "erin"):
            n.ctl("user", "add", u, "--im-address", "%s@%s" % (u, DOMAIN), "--home-node", "bat1")
        n.ctl("user", "add", "nolicence", "--im-address", "nolicence@" + DOMAIN, "--home-node", "bat1",
              "--unlicensed")
        n.ctl("user", "add", "homeless", "--im-address", "homeless@" + DOMAIN)

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()
        cls.db.cleanup()

    # ------------------------------------------------------------ helpers

    def write(self, name, data):
        path = os.path.join(self.work, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    @staticmethod
    def job_of(out):
        """The id impctl bat import|rename printed ("job 12 (import ...) runs now")."""
        return re.search(r"^job (\d+) ", out, re.M).group(1)

    def run_job(self, kind, path, *extra):
        """Creates a job from a local file and waits for its end; returns the job."""
        job_id = self.job_of(self.node.ctl("bat", kind, path, *extra).stdout)
        self.node.ctl("bat", "job", "wait", job_id, "--timeout", "600", check=False)
        return self.node.ctl_json("bat", "job", "show", job_id)

    def roster(self, user):
        return {i["jid"]: i for i in self.node.ctl_json("user", "roster", user)["items"]}

    def log(self, job):
        return self.node.ctl("bat", "job", "log", str(job["id"])).stdout

    # ------------------------------------------------------------ files

    def test_01_files_in_parts_byte_exact_and_typed(self):
        # over 1 MiB: three parts; non-ASCII nicknames kept byte for byte
        rows = [HEADER] + ["ann,%s,c%05d,%s,Nick ✓ %d,Grüppe" % (DOMAIN, i, DOMAIN, i) for i in range(40000)]
        data = ("\r\n".join(rows) + "\r\n").encode()
        self.assertGreater(len(data), 2 * 1024 * 1024)
        path = self.write("big.csv", data)
        up = self.node.ctl_json("bat", "file", "upload", path)
        self.assertEqual((up["name"], up["type"], up["size"], up["complete"]), ("big.csv", "import", len(data), True))
        self.assertEqual(up["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(up["target"], "Contact Lists")
        listed = {f["name"]: f for f in self.node.ctl_json("bat", "file", "list")["files"]}
        self.assertEqual(listed["big.csv"]["transaction"], "Import Users' Contacts – Custom File")
        back = os.path.join(self.work, "back.csv")
        self.node.ctl("bat", "file", "download", "big.csv", "--output", back)
        with open(back, "rb") as f:
            self.assertEqual(f.read(), data)
        # the same name again is refused unless replaced
        r = self.node.ctl("bat", "file", "upload", path, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exists", r.stderr)
        # a rename job on an import file is refused, naming both kinds
        r = self.node.ctl("bat", "rename", "big.csv", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Import Users' Contacts", r.stderr)
        self.assertIn("Rename Contacts", r.stderr)
        # a part out of order is refused precisely, over the API
        status, body = self.node.http("POST", "/api/v1/bat/files", body=(
            b'{"name":"x.csv","type":"rename","size":10,"sha256":"' + b"0" * 64 + b'"}'))
        self.assertEqual(status, 201, body)
        status, body = self.node.http("PUT", "/api/v1/bat/files/x.csv/parts/1", body=b"abc")
        self.assertEqual(status, 409)
        self.assertIn("part 0 was expected", body)
        status, body = self.node.http("PUT", "/api/v1/bat/files/x.csv/parts/0", body=b"0123456789")
        self.assertEqual(status, 200, body)
        status, body = self.node.http("POST", "/api/v1/bat/files/x.csv/complete")
        self.assertEqual(status, 400)
        self.assertIn("SHA-256", body)
        self.node.ctl("bat", "file", "delete", "big.csv")
        self.assertNotIn("big.csv", {f["name"] for f in self.node.ctl_json("bat", "file", "list")["files"]})

    # ------------------------------------------------------------ import

    def test_02_import_with_every_kind_of_bad_row(self):
        lines = [
            b"\xef\xbb\xbf" + HEADER.encode(),                           # 1 byte order mark
            b"bob,example.com,ann,example.com,Ann,Friends",               # 2 imported
            b"bob,example.com,carol,example.com,\"Carol, C.\",Friends",   # 3 imported, quoted comma
            b"",                                                          # 4 empty line
            b"bob,example.com,dave,example.com,Dave",                     # 5 five columns
            b"bob,example.com,\"erin,example.com,Erin,Friends",           # 6 quote never closed
            b"bob,example.com,erin,example.com,Er\xffin,Friends",         # 7 not UTF-8
            b"bob,example.com,ann,example.com,Ann again,Friends",         # 8 duplicate of line 2
            b"nobody,example.com,ann,example.com,,",                      # 9 owner unknown
            b"nolicence,example.com,ann,example.com,,",                   # 10 owner not licensed
            b"homeless,example.com,ann,example.com,,",                    # 11 owner not on a node
            b"bob,other.org,ann,example.com,,",                           # 12 wrong user domain
            b"bob,example.com,bob,example.com,,",                         # 13 own contact
            b"bob,example.com,zed,nowhere.test,,",                        # 14 domain not federated
            b"bob,example.com,x y,example.com,,",                         # 15 invalid contact id
            b"carol,example.com,bob,example.com,Bob,",                    # 16 imported: mutual with line 3
        ]
        # CRLF and LF mixed
        data = b"\r\n".join(lines[:8]) + b"\n" + b"\n".join(lines[8:]) + b"\r\n"
        job = self.run_job("import", self.write("mixed.csv", data))
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual((job["rows_total"], job["rows_done"]), (15, 15))
        # an ended job's rate is over its whole run, however short
        self.assertGreater(job["rows_per_second"], 0, job)
        self.assertEqual((job["applied"], job["ignored"], job["internal_errors"], job["not_processed"]), (3, 12, 0, 0),
                         self.log(job))
        log = self.log(job)
        for line, reason in ((4, "empty line"), (5, "expected 6 columns, found 5"), (6, "quote"),
                             (7, "UTF-8"), (8, "duplicate of line 2"), (9, "'nobody' is not a user"),
                             (10, "not licensed"), (11, "not assigned to a node"), (12, "not one in other.org"),
                             (13, "own"), (14, "nowhere.test"), (15, "not a valid user part")):
            self.assertRegex(log, r"line %d: [^\n]*%s" % (line, reason), "line %d" % line)
        self.assertIn("Contacts imported:", log)
        bob = self.roster("bob")
        self.assertEqual(bob["ann@example.com"]["name"], "Ann")
        self.assertEqual(bob["ann@example.com"]["groups"], ["Friends"])
        self.assertEqual(bob["ann@example.com"]["subscription"], "to")
        self.assertEqual(bob["carol@example.com"]["name"], "Carol, C.")
        # carol imported bob as well: both ways now
        self.assertEqual(bob["carol@example.com"]["subscription"], "both")
        self.assertEqual(self.roster("carol")["bob@example.com"]["subscription"], "both")
        # ann gained bob as a watcher
        self.assertEqual(self.roster("ann")["bob@example.com"]["subscription"], "from")
        self.assertNotIn("dave@example.com", bob)
        # running it again imports nothing twice
        again = self.run_job("import", "mixed.csv")
        self.assertEqual((again["applied"], again["ignored"]), (0, 15))
        self.assertIn("already in the contact list", self.log(again))

    def test_03_file_without_header_fails_at_once(self):
        job = self.run_job("import", self.write("noheader.csv", "dave,example.com,ann,example.com,Ann,\n"
                                                                "dave,example.com,bob,example.com,Bob,\n"))
        self.assertEqual(job["status"], "failed")
        self.assertIn("the first line must be the header", job["detail"])
        self.assertEqual(job["applied"], 0)
        self.assertEqual(job["not_processed"], 1)
        self.assertEqual(self.roster("dave"), {})

    def test_04_contact_list_limit_reported_per_row(self):
        for u in ("lim", "l1", "l2", "l3", "l4"):
            self.node.ctl("user", "add", u, "--im-address", "%s@%s" % (u, DOMAIN), "--home-node", "bat1")
        self.node.ctl("presence", "settings", "set", "--max-contacts", "2")
        try:
            rows = [HEADER] + ["lim,%s,%s,%s,," % (DOMAIN, c, DOMAIN) for c in ("l1", "l2", "l3", "l4")]
            job = self.run_job("import", self.write("limit.csv", "\n".join(rows) + "\n"))
        finally:
            self.node.ctl("presence", "settings", "set", "--max-contacts", "200")
        self.assertEqual((job["applied"], job["ignored"]), (2, 2))
        log = self.log(job)
        self.assertRegex(log, r"line 4: the contact list of lim is full \(2 contacts, PS-1\)")
        self.assertRegex(log, r"line 5: the contact list of lim is full")
        self.assertEqual(sorted(self.roster("lim")), ["l1@example.com", "l2@example.com"])

    # ------------------------------------------------------------ rename

    def test_05_rename_counts_contact_lists(self):
        n = self.node
        n.ctl("user", "add", "john.smith", "--im-address", "john.smith@" + DOMAIN, "--home-node", "bat1")
        n.ctl("user", "add", "jsmith", "--im-address", "jsmith@" + DOMAIN, "--home-node", "bat1")
        imp = [HEADER] + ["%s,%s,john.smith,%s,John,Team" % (o, DOMAIN, DOMAIN) for o in ("ann", "dave")] + \
              ["erin,%s,jsmith,%s,J,Team" % (DOMAIN, DOMAIN), "erin,%s,john.smith,%s,John,Team" % (DOMAIN, DOMAIN)]
        self.assertEqual(self.run_job("import", self.write("team.csv", "\n".join(imp) + "\n"))["applied"], 4)
        ren = "Contact ID, New Contact ID\njohn.smith@example.com, jsmith@example.com\nnobody@example.com,x@example.com\n" \
              "bad id@example.com,y@example.com\n"
        job = self.run_job("rename", self.write("ren.csv", ren))
        self.assertEqual(job["status"], "completed", job)
        # ann's and dave's lists changed; erin's already held jsmith
        self.assertEqual((job["applied"], job["lists_failed"], job["retrieved"], job["ignored"]), (2, 1, 3, 2))
        log = self.log(job)
        self.assertIn("Records processed (contact lists updated):          2", log)
        self.assertRegex(log, r"line 3: unknown ID: no contact list holds nobody@example.com")
        self.assertRegex(log, r"line 4: [^\n]*not a valid user part")
        self.assertRegex(log, r"line 2: the contact list of erin already holds jsmith@example.com")
        ann = self.roster("ann")
        self.assertNotIn("john.smith@example.com", ann)
        self.assertEqual((ann["jsmith@example.com"]["name"], ann["jsmith@example.com"]["groups"]), ("John", ["Team"]))
        self.assertIn("john.smith@example.com", self.roster("erin"))
        # MG-10: the job and its log from another node of the cluster (a home
        # node, which runs no bulk job), the same text as on the publisher
        other = Impd("bat2", db_url=self.url, role="home")
        try:
            other.start()
            self.assertEqual(other.ctl("bat", "job", "log", str(job["id"])).stdout, log)
            there = other.ctl_json("bat", "job", "show", str(job["id"]))
            self.assertEqual((there["node"], there["applied"], there["status"]), ("bat1", 2, "completed"))
        finally:
            other.cleanup()

    # ------------------------------------------------------------ rate, cancel, schedule

    def test_06_import_rate_applies_live_and_cancel(self):
        n = self.node
        n.ctl("service", "param", "set", "bulk-provisioning", "import-rate", "50")
        try:
            rows = [HEADER] + ["ann,%s,m%04d,%s,,Slow" % (DOMAIN, i, DOMAIN) for i in range(400)]
            n.ctl("federation", "enable")  # m0000@example.com ... are Microsoft users: routes needed
            n.ctl("route", "add", ".com.example.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port", "9",
                  "--transport", "TCP")
            job_id = self.job_of(n.ctl("bat", "import", self.write("slow.csv", "\n".join(rows) + "\n")).stdout)
            wait_for(lambda: n.ctl_json("bat", "job", "show", job_id)["rows_done"] >= 60, 30, "60 rows done")
            shown = n.ctl_json("bat", "job", "show", job_id)
            self.assertEqual(shown["status"], "running")
            self.assertLessEqual(shown["rows_per_second"], 80)
            self.assertGreater(shown["eta_seconds"], 0)
            n.ctl("bat", "job", "cancel", job_id)
            r = n.ctl("bat", "job", "wait", job_id, "--timeout", "60", check=False)
            self.assertEqual(r.returncode, 1)
            job = n.ctl_json("bat", "job", "show", job_id)
            self.assertEqual(job["status"], "cancelled")
            self.assertEqual(job["applied"] + job["not_processed"], 400)
            self.assertEqual(len([j for j in self.roster("ann") if j.startswith("m")]), job["applied"])
        finally:
            n.ctl("service", "param", "reset", "bulk-provisioning", "import-rate")
            n.ctl("federation", "disable")

    def test_07_scheduled_job_waits_for_its_time(self):
        at = time.strftime("%Y-%m-%d %H:%M", time.gmtime(time.time() + 3600))
        rows = [HEADER, "dave,%s,erin,%s,," % (DOMAIN, DOMAIN)]
        job_id = self.job_of(self.node.ctl("bat", "import", self.write("later.csv", "\n".join(rows) + "\n"),
                                           "--at", at).stdout)
        job = self.node.ctl_json("bat", "job", "show", job_id)
        self.assertEqual((job["status"], job["run_at"][:16]), ("pending", at))
        listed = {str(j["id"]): j for j in self.node.ctl_json("bat", "job", "list")["jobs"]}
        self.assertEqual(listed[job_id]["status"], "pending")
        self.node.ctl("bat", "job", "cancel", job_id)
        self.assertEqual(self.node.ctl_json("bat", "job", "show", job_id)["status"], "cancelled")
        self.assertNotIn("erin@example.com", self.roster("dave"))
        r = self.node.ctl("bat", "import", "later.csv", "--at", "2001-01-01 00:00", check=False)
        self.assertIn("in the past", r.stderr)

    # ------------------------------------------------------------ kill -9

    def test_08_kill_9_during_a_large_import_resumes_exactly(self):
        n = self.node
        users = max(KILL_ROWS // 100, 2)
        per = KILL_ROWS // users
        # the users straight into the directory's table: 10,000 impctl calls
        # would take minutes and test nothing of this issue
        stmts = []
        for start in range(0, users, 1000):
            values = ",".join("('k%05d','k%05d@%s','%s',TRUE,'bat1')" % (i, i, DOMAIN, DOMAIN)
                              for i in range(start, min(users, start + 1000)))
            stmts.append("INSERT INTO dir_user (userid, im_address, im_domain, licensed, home_node) VALUES %s;" % values)
        subprocess.run(["mariadb", "--no-defaults", "-S", self.db.sock, "-u", self.db.user, "imp"],
                       input="\n".join(stmts), text=True, check=True)
        n.ctl("presence", "settings", "set", "--max-contacts", "0", "--max-watchers", "0")
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(HEADER.split(","))
        for i in range(users):
            for k in range(1, per + 1):
                w.writerow(["k%05d" % i, DOMAIN, "k%05d" % ((i + k) % users), DOMAIN, "K %d" % k, "Group %d" % (k % 7)])
        path = self.write("million.csv", buf.getvalue())
        job_id = self.job_of(n.ctl("bat", "import", path).stdout)
        # killed once a fair part is in, not at a batch boundary of our choosing
        wait_for(lambda: n.ctl_json("bat", "job", "show", job_id)["rows_done"] >= KILL_ROWS // 3, 600,
                 "a third of the rows imported")
        n.proc.kill()
        n.proc.wait()
        n._close()
        before = int(self.db.sql("SELECT rows_done FROM bat_job WHERE id = %s" % job_id, database="imp")[0][0])
        self.assertLess(before, KILL_ROWS)
        n.start()
        job = wait_for(lambda: (lambda j: j if j["status"] != "running" else None)(
            n.ctl_json("bat", "job", "show", job_id)), 1200, "the resumed job's end")
        self.assertEqual(job["status"], "completed", job)
        self.assertEqual((job["rows_done"], job["applied"], job["ignored"], job["internal_errors"]),
                         (KILL_ROWS, KILL_ROWS, 0, 0))
        self.assertIn("resumes at line", n.log("bulk-provisioning"))
        # exactly one item per row each way, no more, no less
        counts = dict(self.db.sql(
            "SELECT subscription, COUNT(*) FROM xcp_roster_item WHERE owner LIKE 'k%' AND removed = FALSE "
            "GROUP BY subscription", database="imp"))
        self.assertEqual({k: int(v) for k, v in counts.items()}, {"to": KILL_ROWS, "from": KILL_ROWS})
        sample = self.roster("k00007")
        self.assertEqual(sample["k%05d@%s" % ((7 + 3) % users, DOMAIN)]["name"], "K 3")
        self.assertEqual(sample["k%05d@%s" % ((7 + 3) % users, DOMAIN)]["groups"], ["Group 3"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
