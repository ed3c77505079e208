"""Certificate management (TLS-4) on a running impd: a test CA made with the
openssl command line is trusted (`impctl cert upload-trust`), the node makes
a key and a signing request (`impctl cert csr`), the CA signs it, and
`impctl cert upload` installs it: the SIP proxy's server-auth TLS listener
and the XMPP direct-TLS listener then present the new certificate, and the
SIP proxy's outgoing TLS presents it as its client certificate, without a
restart. The refusals: a certificate of another CA, a certificate for
another key, a certificate without clientAuth, garbage, a non-CA or
duplicate trust-store upload."""
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

from harness import Impd, PrivateMariaDB, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from sippeer import SipResponder, tcp_status  # noqa: E402

EXT = "extendedKeyUsage = serverAuth, clientAuth\nsubjectAltName = DNS:imp-cert.example.com\n"
# A SIP next hop on loopback (the node checks its certificate names 127.0.0.1).
PEER_EXT = "extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1\n"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".pem",
            "-days", "30", "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def sign(d, ca, csr, out, ext=EXT):
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write(ext)
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


class ClientCertCheck:
    """The TLS side of a SipResponder that requires a client certificate
    (the server context's verify settings) and records, per connection,
    the client certificate's subject CN or why the handshake failed."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.seen = []

    def wrap_socket(self, sock, server_side):
        try:
            s = self.ctx.wrap_socket(sock, server_side=server_side)
        except (OSError, ssl.SSLError) as e:
            self.seen.append("handshake failed: %s" % e)
            raise
        subject = dict(rdn[0] for rdn in s.getpeercert()["subject"])
        self.seen.append(subject.get("commonName", ""))
        return s


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
        self.assertEqual(presented_fingerprint(self.node.xmpp_tls), before)
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
        # the right key and CA, but only serverAuth: Lync's mutual TLS needs clientAuth too (TLS-5)
        sign(self.tmp, "TestRootCA", "node.csr", "server-only.pem",
             ext="extendedKeyUsage = serverAuth\nsubjectAltName = DNS:imp-cert.example.com\n")
        self.assertIn("the certificate's extended key usage lacks clientAuth (1.3.6.1.5.5.7.3.2): mutual TLS with "
                      "Lync needs both", self.refused("cert", "upload", self.path("server-only.pem")))
        self.assertEqual(presented_fingerprint(self.node.sip_tls), before)
        self.assertEqual(presented_fingerprint(self.node.xmpp_tls), before)

        sign(self.tmp, "TestRootCA", "node.csr", "node.pem")
        installed = self.node.ctl_json("cert", "upload", self.path("node.pem"))
        self.assertEqual(installed["subject_cn"], "imp-cert.example.com")
        self.assertEqual(installed["eku"], ["serverAuth", "clientAuth"])
        self.assertNotEqual(installed["sha256"], before)
        self.assertFalse(os.path.exists(key))
        wait_for(lambda: presented_fingerprint(self.node.sip_tls) == installed["sha256"], 30,
                 "the server-auth listener to present the uploaded certificate")
        wait_for(lambda: presented_fingerprint(self.node.xmpp_tls) == installed["sha256"], 30,
                 "the XMPP direct-TLS listener to present the uploaded certificate")
        changed = "node certificate changed: XMPP client TLS now presents imp-cert.example.com " + installed["sha256"]
        wait_for(lambda: changed in self.node.log("xcp-connection-manager"), 10, "the change logged: " + changed)
        self.assertEqual(self.node.ctl_json("cert", "show", "cup")["sha256"], installed["sha256"])
        # the trust bundle the listeners verify peers with holds the trusted root
        with open(os.path.join(self.node.dir, "state", "tls", "cup-trust.pem")) as f:
            self.assertIn("CN=TestRootCA", f.read())
        # the pending key is used up
        self.assertIn("no pending key", self.refused("cert", "upload", self.path("node.pem")))

    def test_03_outgoing_tls_presents_the_uploaded_certificate_without_restart(self):
        """After test_02's upload, a static route over TLS reaches a next hop
        that only accepts client certificates of TestRootCA: the node's
        outgoing TLS presents the uploaded certificate and verifies the hop
        with the trust store, both changed since the node started."""
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "tlspeer.key", "-out", "tlspeer.csr",
                "-subj", "/CN=tlspeer.com", cwd=self.tmp)
        sign(self.tmp, "TestRootCA", "tlspeer.csr", "tlspeer.pem", ext=PEER_EXT)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.path("tlspeer.pem"), self.path("tlspeer.key"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(self.path("TestRootCA.pem"))
        check = ClientCertCheck(ctx)
        peer = SipResponder(tls_ctx=check)
        try:
            self.node.ctl("acl", "add", "127.0.0.1")
            self.node.ctl("route", "add", ".com.tlspeer.*", "--route-type", "domain", "--next-hop", "127.0.0.1",
                          "--port", str(peer.port), "--transport", "TLS")
            try:
                wait_for(lambda: self._tcp_status("sip:bob@tlspeer.com") == 200, 30,
                         "a MESSAGE relayed over TLS to the next hop")
            except AssertionError as e:
                raise AssertionError("%s; the next hop saw %d handshake(s): %r" %
                                     (e, len(check.seen), sorted(set(check.seen)))) from None
            relayed = peer.wait_requests(1, method="MESSAGE")[-1]
            self.assertTrue(relayed.startswith("MESSAGE sip:bob@tlspeer.com SIP/2.0"), relayed)
            self.assertEqual(check.seen[-1], "imp-cert.example.com", check.seen)
        finally:
            peer.stop()

    def _tcp_status(self, uri):
        return tcp_status(self.node.sip_tcp, uri)


if __name__ == "__main__":
    unittest.main(verbosity=2)
