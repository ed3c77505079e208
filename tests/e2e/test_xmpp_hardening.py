"""Hardening of the client port against hostile input (issue 16
deliverables 1 and 2; RFC 6120 §4.9, §11; RFC 5802 §9; XEP-0205), with raw
sockets and Python's ssl. Each case checks the exact stream error (or SASL
failure), that the server closes the stream, and that a real client
(slixmpp) logs in right after."""
import base64
import re
import resource
import select
import selectors
import socket
import time

import xmpp_server
from xmpp_client import XmppTestCase
from xmpp_raw import RawStream, ScramExchange, header

BILLION_LAUGHS = (
    "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>" +
    "".join("<!ENTITY lol%d '%s'>" % (i, ("&lol%s;" % (i - 1 if i > 1 else "")) * 10) for i in range(1, 10)) +
    "]>").encode()


class XmppHardening(XmppTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = xmpp_server.start_server(cls)
        cls.server.add_user("ann", "ann-Right-Password")

    def raw(self, **kw):
        s = RawStream(self.server, **kw)
        self.addCleanup(s.close)
        return s

    async def assert_client_logs_in(self):
        c = await self.client("ann", "after")
        self.assertEqual(await c.login(), "started", "a real client logs in right after")
        await c.logout()

    async def check_stream_error(self, data, condition, prolog=b""):
        """Sends `prolog` + stream header + `data` and expects the stream error."""
        s = self.raw()
        s.send(prolog + header(self.server.domain, decl=not prolog))  # the prolog has the declaration
        if not prolog:
            s.read_until(r"</stream:features>|<stream:features[^>]*/>")
        if data:
            s.send(data)
        got, err = s.stream_error()
        self.assertEqual(got, condition, err)
        await self.assert_client_logs_in()
        return err

    async def test_01_dtd_is_restricted_xml(self):
        """RFC 6120 §11.1: no document type declaration."""
        await self.check_stream_error(b"", "restricted-xml", prolog=b"<?xml version='1.0'?><!DOCTYPE stream:stream [<!ELEMENT stream:stream ANY>]>")

    async def test_02_billion_laughs_entities_are_restricted_xml(self):
        """RFC 6120 §11.1: no entity declarations (the billion laughs never expand)."""
        await self.check_stream_error(b"<message to='ann@example.com'><body>&lol9;</body></message>", "restricted-xml",
                                      prolog=BILLION_LAUGHS)

    async def test_03_comment_is_restricted_xml(self):
        await self.check_stream_error(b"<!-- a comment -->", "restricted-xml")

    async def test_04_processing_instruction_is_restricted_xml(self):
        await self.check_stream_error(b"<?evil data?>", "restricted-xml")

    async def test_05_invalid_utf8_is_unsupported_encoding(self):
        """RFC 6120 §4.9.3.22 and §11.6: a stream that violates the rules of
        UTF-8 gets unsupported-encoding."""
        await self.check_stream_error(b"<message to='ann@example.com'><body>\xc3\x28\xff\xfe</body></message>",
                                      "unsupported-encoding")

    async def test_06_one_megabyte_stanza_before_authentication_is_policy_violation(self):
        """Issue 16: 10 KB before authentication; the 1 MB stanza gets
        policy-violation (RFC 6120 §4.9.3.14). The answer is read while the
        stanza is sent, so an early close loses nothing."""
        s = self.raw()
        s.open()
        total, chunk = 1 << 20, b"x" * 16384
        s.send(b"<message to='ann@example.com'><body>")
        sent, seen = 0, b""
        s.sock.setblocking(False)
        while sent < total and b"</stream:error>" not in seen:  # waits on the socket, both ways
            readable, writable, _ = select.select([s.sock], [s.sock], [], 20)
            self.assertTrue(readable or writable, "the server neither read nor answered for 20 s")
            try:
                sent += s.sock.send(chunk)
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                seen += s.sock.recv(65536)
            except BlockingIOError:
                pass
            except ConnectionResetError:
                break
        s.sock.setblocking(True)
        s.buf = seen
        got, err = s.stream_error()
        self.assertEqual(got, "policy-violation", err)
        await self.assert_client_logs_in()

    async def test_07_unknown_domain_is_host_unknown(self):
        """RFC 6120 §4.9.3.6."""
        s = self.raw()
        s.send(header("unknown.example.net"))
        got, err = s.stream_error()
        self.assertEqual(got, "host-unknown", err)
        await self.assert_client_logs_in()

    def scram_first(self, user):
        s = self.raw()
        s.open()
        s.starttls()
        s.open()
        x = ScramExchange(s, user)
        return x, x.first()

    async def test_08_wrong_credentials_do_not_reveal_which_part_was_wrong_RFC_5802_s9(self):
        """A wrong password and an unknown user get the same SCRAM-SHA-256
        exchange (salt of the same length, same iteration count, a salt
        stable across attempts for the unknown user) and the same failure,
        not-authorized (RFC 6120 §6.5.10)."""
        known, attrs = self.scram_first("ann")
        self.assertIsInstance(attrs, dict, "server-first for a known user: %s" % attrs)
        fail_known = known.final("not-the-password", attrs)
        self.assertRegex(fail_known, r"<failure[^>]*>\s*<not-authorized\s*/>")
        unknown1, u1 = self.scram_first("nobody")
        self.assertIsInstance(u1, dict, "an unknown user got an immediate failure, which reveals that the account "
                                        "does not exist: %s" % u1)
        unknown2, u2 = self.scram_first("nobody")
        self.assertIsInstance(u2, dict, "second attempt: %s" % u2)
        self.assertEqual(len(base64.b64decode(u1["s"])), len(base64.b64decode(attrs["s"])), "salt length")
        self.assertEqual(u1["i"], attrs["i"], "iteration count")
        self.assertEqual(u1["s"], u2["s"], "the unknown user's salt is stable across attempts")
        self.assertEqual(u1["i"], u2["i"])
        fail_unknown = unknown1.final("not-the-password", u1)
        norm = lambda f: re.sub(r"\s+", "", f.replace('"', "'"))  # noqa: E731
        self.assertEqual(norm(fail_unknown), norm(fail_known))
        await self.assert_client_logs_in()

    async def test_09_a_thousand_idle_unauthenticated_connections_XEP_0205(self):
        """1,000 connections open a stream and go idle. The server keeps
        serving: connections beyond its unauthenticated limit get
        resource-constraint, the others connection-timeout when their
        lifetime ends, and a real client then logs in."""
        n = 1000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < n + 200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
        sel = selectors.DefaultSelector()
        conns = {}
        try:
            for _ in range(n):
                try:
                    c = socket.create_connection((self.server.host, self.server.port), timeout=10)
                except OSError as e:
                    conns[object()] = [None, b"connect refused: %s" % str(e).encode(), True]
                    continue
                c.sendall(header(self.server.domain))
                c.setblocking(False)
                conns[c] = [c, b"", False]
                sel.register(c, selectors.EVENT_READ)
            deadline = time.monotonic() + xmpp_server.UNAUTH_LIFETIME_S + 60
            open_ = sum(1 for v in conns.values() if not v[2])
            while open_ and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=1):
                    c = key.fileobj
                    try:
                        data = c.recv(65536)
                    except (ConnectionResetError, BlockingIOError):
                        data = b""
                    if data:
                        conns[c][1] += data
                    else:
                        conns[c][2] = True
                        sel.unregister(c)
                        open_ -= 1
            self.assertEqual(open_, 0, "%d connections still open %d s after their lifetime ended" %
                             (open_, 60))
            conditions = {}
            for _, buf, _ in conns.values():
                m = re.search(rb"<stream:error[^>]*>\s*<([a-z-]+)", buf)
                k = m.group(1).decode() if m else "no stream error: " + buf[-120:].decode(errors="replace")
                conditions[k] = conditions.get(k, 0) + 1
            print("\n1,000 idle connections ended with: %s" % conditions, flush=True)
            limit = self.server.unauth_limit
            self.assertLessEqual(set(conditions), {"connection-timeout", "resource-constraint"}, conditions)
            if limit is not None:
                # more than `limit` at once: the limit refused some (XEP-0205)
                self.assertGreater(conditions.get("resource-constraint", 0), 0, conditions)
        finally:
            for v in conns.values():
                if v[0] is not None:
                    v[0].close()
            sel.close()
        self.assertTrue(self.server.alive())
        await self.assert_client_logs_in()


if __name__ == "__main__":
    xmpp_server.main()
