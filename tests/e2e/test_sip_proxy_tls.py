"""SIP Proxy over TLS with a test CA made here and Python's ssl as the TLS
peer (Debian's SIPp has no TLS): the server-auth listener, the peer-auth
(mutual TLS) listener accepting only selected certificate subject CNs
(TLS-1..3), live TLS context and listener changes, outgoing TLS to a next
hop with failover when its certificate is not trusted (RT-3), and the SIP
TLS message dump trace flag."""
import os
import re
import shutil
import socket
import ssl
import tempfile
import unittest

from sippeer import (ProxyLog, SipResponder, SipStream, TestCa, final_response, header, sip_message, status_of, tcp_status,
                     wait_applied, wait_for)
from harness import Impd


class SipProxyTls(ProxyLog, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # class cleanups also run when setUpClass fails half-way
        cls.work = tempfile.mkdtemp(prefix="imp-e2e-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.work, ignore_errors=True)
        cls.ca = TestCa(cls.work)
        cls.node_cert = cls.ca.issue("imp-node.test", ip="127.0.0.1")
        cls.lync = cls.ca.issue("lync.example.com")
        cls.rogue = cls.ca.issue("rogue.example.com")
        cls.hop_cert = cls.ca.issue("pool.example.com", ip="127.0.0.1")
        cls.uas = SipResponder()
        cls.addClassCleanup(cls.uas.stop)
        cls.node = Impd("tls1", sip_extra=["hop_timeout_ms = 2000"],
                        extra=["[tls]", "cert_file = " + cls.node_cert[0], "key_file = " + cls.node_cert[1],
                               "ca_file = " + cls.ca.cert])
        cls.addClassCleanup(cls.node.cleanup)
        cls.node.start()
        n = cls.node
        n.ctl("acl", "add", "127.0.0.1")
        n.ctl("route", "add", ".com.example.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
              str(cls.uas.port), "--transport", "TCP", "--priority", "1")
        wait_for(lambda: cls._status(cls.node.sip_tls, cls.ca.client_context(), "sip:bob@example.com") == 200, 30,
                 "a MESSAGE over the server-auth listener answered 200")

    @staticmethod
    def _connect(port, ctx):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            s = ctx.wrap_socket(raw)
            s.settimeout(10)
            return s
        except Exception:
            raw.close()
            raise

    @classmethod
    def _status(cls, port, ctx, uri):
        """Status of a MESSAGE sent over a new TLS connection; None when the
        handshake or the connection was refused."""
        try:
            s = cls._connect(port, ctx)
        except (ssl.SSLError, OSError):
            return None
        try:
            s.sendall(sip_message(uri, transport="TLS"))
            return status_of(final_response(SipStream(s)))
        except (ssl.SSLError, OSError, ConnectionError):
            return None
        finally:
            s.close()

    def test_01_server_auth_listener_presents_node_certificate(self):
        s = self._connect(self.node.sip_tls, self.ca.client_context())
        try:
            cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
            self.assertEqual(cn, "imp-node.test")
            self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))
            s.sendall(sip_message("sip:bob@example.com", transport="TLS"))
            self.assertEqual(status_of(final_response(SipStream(s))), 200)
        finally:
            s.close()
        relayed = self.uas.wait_requests(1, method="MESSAGE")[-1]
        self.assertTrue(header(relayed, "Via").startswith("SIP/2.0/TCP 127.0.0.1:%d;" % self.node.sip_tcp), relayed)

    def test_02_tls_1_1_client_refused(self):
        ctx = self.ca.client_context(maximum=ssl.TLSVersion.TLSv1_1)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        self.assertIsNone(self._status(self.node.sip_tls, ctx, "sip:bob@example.com"))

    def test_03_peer_auth_accepts_only_selected_subjects(self):
        n = self.node
        port = self.node.sip_mtls
        lync = self.ca.client_context(cert=self.lync)
        # nothing selected yet: every peer refused
        self.assertIsNone(self._status(port, lync, "sip:bob@example.com"))
        wait_for(lambda: "peer certificate CN 'lync.example.com' is not an accepted peer subject" in self.log(), 10,
                 "the refusal logged")
        n.ctl("tls", "peer-subject", "add", "lync.example.com", "--description", "Lync pool")
        n.ctl("tls", "context", "set", "peer-auth", "--peer-subject", "lync.example.com")
        wait_for(lambda: self._status(port, lync, "sip:bob@example.com") == 200, 30,
                 "lync.example.com accepted on the peer-auth listener after the change")
        self.assertIsNone(self._status(port, self.ca.client_context(cert=self.rogue), "sip:bob@example.com"))
        self.assertIsNone(self._status(port, self.ca.client_context(), "sip:bob@example.com"))  # no certificate
        # a certificate from another CA with an accepted CN is refused too
        other = TestCa(self.work)
        self.assertIsNone(self._status(port, other.client_context(cert=other.issue("lync.example.com")),
                                       "sip:bob@example.com"))

    def test_04_context_change_applies_live(self):
        n = self.node
        tls12 = self.ca.client_context(maximum=ssl.TLSVersion.TLSv1_2)
        self.assertEqual(self._status(self.node.sip_tls, tls12, "sip:bob@example.com"), 200)
        n.ctl("tls", "context", "set", "default-server", "--min-version", "1.3")
        try:
            wait_for(lambda: self._status(self.node.sip_tls, tls12, "sip:bob@example.com") is None, 30,
                     "TLS 1.2 refused once the context requires 1.3")
            self.assertEqual(self._status(self.node.sip_tls, self.ca.client_context(), "sip:bob@example.com"), 200)
        finally:
            n.ctl("tls", "context", "set", "default-server", "--min-version", "1.2")
        wait_for(lambda: self._status(self.node.sip_tls, tls12, "sip:bob@example.com") == 200, 30,
                 "TLS 1.2 accepted again")

    def test_05_listener_disable_and_enable_apply_live(self):
        n = self.node
        ctx = self.ca.client_context()
        n.ctl("listener", "set", "tls-server-auth", "--disable")
        wait_for(lambda: self._refused(self.node.sip_tls), 30, "the server-auth listener closed")
        # the other listeners stay open
        self.assertEqual(self._tcp_status("sip:bob@example.com"), 200)
        n.ctl("listener", "set", "tls-server-auth", "--enable")
        wait_for(lambda: self._status(self.node.sip_tls, ctx, "sip:bob@example.com") == 200, 30,
                 "the server-auth listener open again")

    @staticmethod
    def _refused(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return False
        except ConnectionRefusedError:
            return True

    def test_06_outgoing_tls_and_failover_on_untrusted_certificate(self):
        n = self.node
        good = SipResponder(tls_ctx=self.ca.server_context(self.hop_cert))
        other = TestCa(self.work)
        bad = SipResponder(tls_ctx=other.server_context(other.issue("pool.example.com", ip="127.0.0.1")))
        try:
            n.ctl("route", "add", ".com.tlshop.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
                  str(good.port), "--transport", "TLS", "--priority", "1")
            wait_for(lambda: self._tcp_status("sip:bob@tlshop.com") == 200, 30, "MESSAGE relayed over TLS")
            relayed = good.wait_requests(1, method="MESSAGE")[-1]
            self.assertTrue(header(relayed, "Via").startswith("SIP/2.0/TLS 127.0.0.1:%d;" % self.node.sip_tls),
                            relayed)
            n.ctl("route", "add", ".com.untrusted.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
                  str(bad.port), "--transport", "TLS", "--priority", "1")
            n.ctl("route", "add", ".com.untrusted.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
                  str(self.uas.port), "--transport", "TCP", "--priority", "2")
            wait_applied(n)
            self.assertEqual(self._tcp_status("sip:bob@untrusted.com"), 200)
            self.logged(r"next hop TLS 127\.0\.0\.1:%d for MESSAGE sip:bob@untrusted\.com failed "
                                         r"\(TLS handshake failed: .*certificate verify failed.*\): trying the next one" % bad.port)
            self.assertEqual(bad.requests, [])
        finally:
            good.stop()
            bad.stop()

    def _tcp_status(self, uri):
        return tcp_status(self.node.sip_tcp, uri)

    def test_07_tls_message_dump_trace_flag(self):
        n = self.node
        marker = "dump-check-" + os.urandom(4).hex()
        n.ctl("trace", "set", "sip-proxy", "--on", "--flag", "sip-tls")
        wait_for(lambda: "sip-tls" in n.ctl("trace", "show", "sip-proxy").stdout, 30, "trace flag stored")

        s = self._connect(self.node.sip_tls, self.ca.client_context())
        try:
            s.sendall(sip_message("sip:bob@example.com", transport="TLS", call_id=marker))
            final_response(SipStream(s))
        finally:
            s.close()
        self.logged(r"Received from TLS 127\.0\.0\.1:\d+:\r?\nMESSAGE sip:bob@example\.com SIP/2\.0\r?\n(.*\n)*?"
                    r"Call-ID: %s" % marker)
        n.ctl("trace", "set", "sip-proxy", "--off", "--clear-flags")

    def test_08_invite_changing_transport_is_double_record_routed(self):
        """RFC 5658: in over TLS, out over TCP -> one Record-Route per side."""
        s = self._connect(self.node.sip_tls, self.ca.client_context())
        try:
            invite = sip_message("sip:bob@example.com", transport="TLS", call_id="rr-" + os.urandom(4).hex())
            invite = invite.replace(b"MESSAGE sip:", b"INVITE sip:", 1).replace(b"CSeq: 1 MESSAGE", b"CSeq: 1 INVITE")
            s.sendall(invite)
            self.assertEqual(status_of(final_response(SipStream(s))), 200)
        finally:
            s.close()
        got = [r for r in self.uas.wait_requests(1, method="INVITE") if r.startswith("INVITE ")][-1]
        rrs = [v.strip() for v in re.findall(r"(?im)^record-route\s*:\s*(.*)$", got)]
        self.assertEqual(rrs, ["<sip:127.0.0.1:%d;transport=tcp;lr>" % self.node.sip_tcp,
                               "<sip:127.0.0.1:%d;transport=tls;lr>" % self.node.sip_tls], got)


if __name__ == "__main__":
    unittest.main(verbosity=2)
