"""xcp-router data on a real MariaDB (issue 16): impctl presence settings
show|set (PS-1, PS-2), impctl user passwd from stdin and from a terminal
(no echo, twice), impctl user roster; then the stores' own test binary on the
same server (utf8mb4, key lengths, limits under concurrent writers)."""
import base64
import hashlib
import hmac
import os
import pty
import select
import subprocess
import time
import unittest

from harness import BIN, IMPCTL, Impd, PrivateMariaDB

STORE_TESTS = os.path.join(BIN, "modules/xcp-router/xcp_router_mariadb_tests")


def scram_keys(hash_name, password, salt, iterations):
    """RFC 5802 §3 with Python's own hashlib: an independent check of the stored keys."""
    salted = hashlib.pbkdf2_hmac(hash_name, password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hash_name).digest()
    stored_key = hashlib.new(hash_name, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hash_name).digest()
    return stored_key, server_key


class XcpStore(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = PrivateMariaDB()
        cls.db.start()
        cls.url = cls.db.create_app_user()
        cls.node = Impd("xcp1", db_url=cls.url)
        cls.node.start()
        cls.node.ctl("user", "add", "ann", "--im-address", "ann@example.com")

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()
        cls.db.cleanup()

    def credentials(self, userid):
        rows = self.db.sql("SELECT mechanism, salt, iterations, stored_key, server_key FROM xcp_user_credential "
                           "WHERE userid = '%s' ORDER BY mechanism" % userid, database="imp")
        return {r[0]: r[1:] for r in rows}

    def check_password(self, userid, password, iterations, prepared=None):
        """The stored keys are those of `prepared` (the SASLprep'd password, spelled out) or `password`."""
        creds = self.credentials(userid)
        self.assertEqual(sorted(creds), ["SCRAM-SHA-1", "SCRAM-SHA-256"])
        for mech, hash_name in (("SCRAM-SHA-1", "sha1"), ("SCRAM-SHA-256", "sha256")):
            salt, iters, stored, server = creds[mech]
            self.assertEqual(int(iters), iterations)
            want = scram_keys(hash_name, (prepared or password).encode(), base64.b64decode(salt), iterations)
            self.assertEqual(base64.b64decode(stored), want[0], mech)
            self.assertEqual(base64.b64decode(server), want[1], mech)
            self.assertNotIn(password, "".join(creds[mech]))

    def test_01_presence_settings(self):
        n = self.node
        out = n.ctl("presence", "settings", "show").stdout
        self.assertRegex(out, r"maximum contacts per user\s+200\n")
        self.assertRegex(out, r"auto-approve subscriptions\s+on\n")
        gen = int(self.db.sql("SELECT generation FROM core_settings", database="imp")[0][0])
        out = n.ctl("presence", "settings", "set", "--max-contacts", "0", "--max-watchers", "3",
                    "--auto-approve", "off").stdout
        self.assertRegex(out, r"maximum contacts per user\s+no limit\n")
        self.assertIn("changed (generation %d)" % (gen + 1), out)
        got = n.ctl_json("presence", "settings", "show")
        self.assertEqual(got, {"max_contacts": 0, "max_watchers": 3, "auto_approve": False, "offline_quota": 1000})
        r = n.ctl("presence", "settings", "set", "--max-watchers", "1000001", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("max_watchers", r.stderr)
        r = n.ctl("presence", "settings", "set", check=False)
        self.assertEqual(r.returncode, 64)

    def test_02_passwd_from_stdin(self):
        r = subprocess.run([IMPCTL, "-c", self.node.conf, "--url", self.node.url, "user", "passwd", "ann"],
                           input="pencil word\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "password of ann set (SCRAM-SHA-1,SCRAM-SHA-256, 4096 iterations)\n")
        self.check_password("ann", "pencil word", 4096)
        # Non-ASCII: SASLprep (RFC 4013) maps the no-break space to a space and keeps "ö".
        r = subprocess.run([IMPCTL, "-c", self.node.conf, "--url", self.node.url, "user", "passwd", "ann"],
                           input="pencil\u00a0w\u00f6rd\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           encoding="utf-8", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_password("ann", "pencil\u00a0w\u00f6rd", 4096, prepared="pencil w\u00f6rd")
        # What SASLprep refuses (here a private-use character) is refused with its reason; nothing changes.
        r = subprocess.run([IMPCTL, "-c", self.node.conf, "--url", self.node.url, "user", "passwd", "ann"],
                           input="pencil\ue000\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           encoding="utf-8", timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("SASLprep", r.stderr)
        self.check_password("ann", "pencil\u00a0w\u00f6rd", 4096, prepared="pencil w\u00f6rd")
        # Never from the command line.
        r = self.node.ctl("user", "passwd", "ann", "--password", "x", check=False)
        self.assertEqual(r.returncode, 64)
        r = subprocess.run([IMPCTL, "-c", self.node.conf, "--url", self.node.url, "user", "passwd", "nobody"],
                           input="pencil\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no user 'nobody'", r.stderr)

    def run_on_terminal(self, args, lines):
        """impctl with a pseudo-terminal as stdin: answers each prompt (on stderr) with the next line."""
        master, slave = pty.openpty()
        p = subprocess.Popen([IMPCTL, "-c", self.node.conf, "--url", self.node.url] + args, stdin=slave,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(slave)
        err, echoed = b"", b""
        deadline = time.monotonic() + 60
        pending = list(lines)
        prompts = 0
        while time.monotonic() < deadline and p.poll() is None:
            ready, _, _ = select.select([p.stderr, master], [], [], 0.5)
            if master in ready:
                try:
                    echoed += os.read(master, 4096)
                except OSError:
                    pass
            if p.stderr in ready:
                chunk = os.read(p.stderr.fileno(), 4096)
                err += chunk
                if err.count(b"password: ") > prompts and pending:
                    prompts += 1
                    os.write(master, pending.pop(0).encode() + b"\n")
        out, rest = p.communicate(timeout=60)
        os.close(master)
        return p.returncode, out.decode(), (err + rest).decode(), echoed.decode()

    def test_03_passwd_from_terminal(self):
        rc, out, err, echoed = self.run_on_terminal(["user", "passwd", "ann", "--iterations", "4500"],
                                                    ["s3cret tty", "s3cret tty"])
        self.assertEqual(rc, 0, err)
        self.assertIn("New password: ", err)
        self.assertIn("Retype new password: ", err)
        self.assertNotIn("s3cret", echoed)  # no echo
        self.assertEqual(out, "password of ann set (SCRAM-SHA-1,SCRAM-SHA-256, 4500 iterations)\n")
        self.check_password("ann", "s3cret tty", 4500)
        # Two different entries: refused, nothing changed.
        rc, out, err, _ = self.run_on_terminal(["user", "passwd", "ann"], ["one", "two"])
        self.assertEqual(rc, 64)
        self.assertIn("the two passwords do not match; nothing was changed", err)
        self.check_password("ann", "s3cret tty", 4500)

    def test_04_user_roster(self):
        n = self.node
        out = n.ctl("user", "roster", "ann").stdout
        self.assertEqual(out, "CONTACT  NAME  SUBSCRIPTION  PENDING  GROUPS\nroster version 0, 0 contact(s)\n")
        r = n.ctl("user", "roster", "nobody", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no user 'nobody'", r.stderr)

    def test_05_stores_on_mariadb(self):
        env = dict(os.environ, IMP_TEST_DB_URL=self.url)
        r = subprocess.run([STORE_TESTS], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("Status: SUCCESS", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
