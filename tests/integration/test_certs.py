"""Certificate management (TLS-4) on a running impd: a test CA made with the
openssl command line is trusted (`impctl cert upload-trust`), the node makes
a key and a signing request (`impctl cert csr`), the CA signs it, and
`impctl cert upload` installs it: the SIP proxy's server-auth TLS listener
then presents the new certificate without a restart. The refusals: a
certificate of another CA, a certificate for another key, garbage, a
non-CA or duplicate trust-store upload."""
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest

from harness import Impd, PrivateMariaDB, wait_for

EXT = "extendedKeyUsage = serverAuth, clientAuth\nsubjectAltName = DNS:imp-cert.example.com\n"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".pem",
            "-days", "30", "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def sign(d, ca, csr, out):
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write(EXT)
    openssl("x509", "-req", "-in", csr, "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial", "-out", out,
            "-days", "10", "-sha256", "-extfile", "ext.cnf", cwd=d)


def presented_fingerprint(port):
    """SHA-256 of the certificate the TLS listener presents, AB:CD:.. form."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            der = s.getpeercert(binary_form=True)
    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


class Certs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="imp-certs-")
        make_ca(cls.tmp, "TestRootCA")
        make_ca(cls.tmp, "OtherCA")
        cls.db = PrivateMariaDB()
        cls.db.start()
        cls.node = Impd("cert1", db_url=cls.db.create_app_user())
        cls.node.start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()
        cls.db.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def refused(self, *args):
        r = self.node.ctl(*args, check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        return r.stdout + r.stderr

    def test_01_trust_store_upload_list_and_refusals(self):
        out = self.node.ctl_json("cert", "upload-trust", self.path("TestRootCA.pem"))
        self.assertEqual([c["subject_cn"] for c in out["certs"]], ["TestRootCA"])
        self.assertTrue(out["certs"][0]["cert"].startswith("cup-trust/"))
        names = {c["cert"]: c for c in self.node.ctl_json("cert", "list")["certs"]}
        self.assertIn("cup", names)
        self.assertIn(out["certs"][0]["cert"], names)
        detail = self.node.ctl_json("cert", "show", "cup-trust/TestRootCA")
        self.assertTrue(detail["is_ca"])
        self.assertEqual(detail["subject"], "CN=TestRootCA")
        self.assertIn("already in the trust store", self.refused("cert", "upload-trust", self.path("TestRootCA.pem")))
        with open(self.path("garbage.pem"), "w") as f:
            f.write("this is not a certificate\n")
        self.assertIn("no PEM certificate found", self.refused("cert", "upload-trust", self.path("garbage.pem")))
        # a leaf certificate is not a CA
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.pem", "-days",
                "5", "-subj", "/CN=leaf.example.com", "-addext", "basicConstraints=critical,CA:FALSE", cwd=self.tmp)
        self.assertIn("not a CA certificate", self.refused("cert", "upload-trust", self.path("leaf.pem")))
        # the other CA in and out again
        self.node.ctl("cert", "upload-trust", self.path("OtherCA.pem"))
        self.assertEqual(self.node.ctl_json("cert", "delete", "cup-trust/OtherCA")["deleted"][:10], "cup-trust/")
        self.assertIn("no certificate cup-trust/OtherCA", self.refused("cert", "show", "cup-trust/OtherCA"))

    def test_02_csr_signed_and_uploaded_is_presented_without_restart(self):
        before = presented_fingerprint(self.node.sip_tls)
        self.assertEqual(before, self.node.ctl_json("cert", "show", "cup")["sha256"])
        out = self.node.ctl("cert", "csr", "--cn", "imp-cert.example.com", "--out", self.path("node.csr")).stdout
        self.assertIn("wrote the request for imp-cert.example.com", out)
        key = os.path.join(self.node.dir, "state", "tls", "cup-pending.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        text = subprocess.run(["openssl", "req", "-in", self.path("node.csr"), "-noout", "-text"], check=True,
                              stdout=subprocess.PIPE, text=True).stdout
        self.assertIn("CN = imp-cert.example.com", text)
        self.assertIn("Public-Key: (2048 bit)", text)
        self.assertIn("sha256WithRSAEncryption", text)

        # refusals: another CA; another key; garbage
        sign(self.tmp, "OtherCA", "node.csr", "other-ca.pem")
        self.assertIn("does not chain to a CA in cup-trust: unable to get local issuer certificate",
                      self.refused("cert", "upload", self.path("other-ca.pem")))
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "stranger.key", "-out", "stranger.csr",
                "-subj", "/CN=imp-cert.example.com", cwd=self.tmp)
        sign(self.tmp, "TestRootCA", "stranger.csr", "stranger.pem")
        self.assertIn("is not for the pending key", self.refused("cert", "upload", self.path("stranger.pem")))
        self.assertIn("no PEM certificate found", self.refused("cert", "upload", self.path("garbage.pem")))
        self.assertEqual(presented_fingerprint(self.node.sip_tls), before)

        sign(self.tmp, "TestRootCA", "node.csr", "node.pem")
        installed = self.node.ctl_json("cert", "upload", self.path("node.pem"))
        self.assertEqual(installed["subject_cn"], "imp-cert.example.com")
        self.assertEqual(installed["eku"], ["serverAuth", "clientAuth"])
        self.assertNotEqual(installed["sha256"], before)
        self.assertFalse(os.path.exists(key))
        wait_for(lambda: presented_fingerprint(self.node.sip_tls) == installed["sha256"], 30,
                 "the server-auth listener to present the uploaded certificate")
        self.assertEqual(self.node.ctl_json("cert", "show", "cup")["sha256"], installed["sha256"])
        # the trust bundle the listeners verify peers with holds the trusted root
        with open(os.path.join(self.node.dir, "state", "tls", "cup-trust.pem")) as f:
            self.assertIn("CN=TestRootCA", f.read())
        # the pending key is used up
        self.assertIn("no pending key", self.refused("cert", "upload", self.path("node.pem")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
