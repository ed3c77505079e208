"""impd refuses bad configuration with 'in [section]:' and exit 78; impctl
maps failures to its documented exit codes."""
import subprocess
import unittest

from harness import IMPCTL, Impd, free_port, run_impd_expecting_failure, SQL_DIR


def base(extra):
    return ["[node]", "id = bad", "state_dir = /tmp/imp-bad-state", "log_dir = /tmp/imp-bad-log", "sql_dir = " + SQL_DIR] + extra


class BadConfig(unittest.TestCase):
    def assertRefused(self, lines, prefix):
        r = run_impd_expecting_failure(lines)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertTrue(r.stderr.startswith("impd: " + prefix), r.stderr)
        return r.stderr

    def test_unknown_key(self):
        err = self.assertRefused(["[node]", "colour = blue"], "in [node]: unknown key 'colour' (line 2); valid keys:")
        self.assertIn("id, role, state_dir", err)

    def test_port_out_of_range(self):
        self.assertRefused(["[admin]", "port = 70000"], "in [admin]: port = 70000 is out of range 0..65535 (line 2)")

    def test_unreachable_database(self):
        port = free_port()  # nothing listens there
        err = self.assertRefused(base(["[database]", "mode = external", "connect_timeout = 1",
                                       "url = mysql://imp:pw@127.0.0.1:%d/imp" % port]),
                                 "in [database]: cannot reach the external database (mysql://imp:***@127.0.0.1:%d/imp)" % port)
        self.assertNotIn(":pw@", err, "the password is never printed")

    def test_external_without_url(self):
        self.assertRefused(base(["[database]", "mode = external"]), "in [database]: mode = external needs url =")

    def test_bad_node_id(self):
        self.assertRefused(["[node]", "id = has space"], "in [node]: id = has space may hold only letters")

    def test_admin_port_in_use(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        node = Impd("portclash")
        node.write_conf(open(node.conf).read().replace("port = 0", "port = %d" % s.getsockname()[1]).splitlines())
        try:
            r = subprocess.run(["%s" % __import__("harness").IMPD, "-c", node.conf], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=120)
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn("impd: in [admin]: cannot listen on 127.0.0.1:%d" % s.getsockname()[1], r.stderr)
        finally:
            s.close()
            node.cleanup()

    def test_check_config(self):
        import os, tempfile
        fd, path = tempfile.mkstemp()
        os.write(fd, b"[node]\nrole = routing\n")
        os.close(fd)
        r = subprocess.run([__import__("harness").IMPD, "--check-config", "-c", path], stdout=subprocess.PIPE, text=True)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "configuration OK: " + path))
        os.unlink(path)


class ImpctlExitCodes(unittest.TestCase):
    def run_ctl(self, *args):
        return subprocess.run([IMPCTL] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)

    def test_usage(self):
        r = self.run_ctl("frobnicate")
        self.assertEqual(r.returncode, 64)
        self.assertIn("unknown command 'frobnicate'", r.stderr)
        r = self.run_ctl("status", "--level", "debug")
        self.assertEqual(r.returncode, 64)
        r = self.run_ctl("trace", "set", "x")
        self.assertEqual(r.returncode, 64)
        self.assertIn("trace set needs --level, --on, --off, --flag or --clear-flags", r.stderr)

    def test_missing_config(self):
        r = self.run_ctl("-c", "/nonexistent/impd.conf", "status")
        self.assertEqual(r.returncode, 78)
        self.assertIn("in [file]: cannot read /nonexistent/impd.conf", r.stderr)

    def test_unreachable(self):
        import tempfile, os
        fd, tok = tempfile.mkstemp()
        os.write(fd, b"0123456789abcdef0123\n")
        os.close(fd)
        r = self.run_ctl("--url", "http://127.0.0.1:%d" % free_port(), "--token-file", tok, "status")
        os.unlink(tok)
        self.assertEqual(r.returncode, 69)
        self.assertIn("cannot reach impd's admin API", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
