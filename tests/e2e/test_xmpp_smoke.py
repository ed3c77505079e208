"""XMPP client connections end to end with a real client stack (issue 16):
two slixmpp users log in to a running impd over STARTTLS with SCRAM-SHA-256
(RFC 6120 §5, §6; RFC 7677), bind resources and exchange a chat message
(RFC 6121 §8.5) through the router. Users are created with impctl, their
passwords set with `impctl user passwd` reading stdin.

The full XMPP suite (rosters, subscriptions, hardening, a second client
stack) lives in its own files; this one checks the server's first path.
"""
import asyncio
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import IMPCTL, Impd, wait_for  # noqa: E402

import slixmpp  # noqa: E402  (python3-slixmpp, Debian)

DOMAIN = "e2e.example"


class Client(slixmpp.ClientXMPP):
    """A slixmpp client that records what it receives."""

    def __init__(self, jid, password):
        # SCRAM-SHA-256 only: the test is about that mechanism (RFC 7677).
        super().__init__(jid, password, plugin_config={"feature_mechanisms": {"use_mech": "SCRAM-SHA-256"}})
        # XEP-0092: answers the server's version query (impctl session list).
        self.register_plugin("xep_0092")
        self.register_plugin("xep_0199")
        # impd generated a self-signed node certificate; the TLS checks with a
        # CA are in the C++ integration test (xcp_c2s_tests).
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.ready = asyncio.Event()
        self.failed = asyncio.Event()
        self.messages = asyncio.Queue()
        self.available = asyncio.Event()
        self.mechanism = None
        self.add_event_handler("session_bind", lambda _: self.ready.set())
        self.add_event_handler("failed_auth", lambda _: self.failed.set())
        self.add_event_handler("message", lambda m: self.messages.put_nowait(m))
        # RFC 6121 §4.2.2: the server echoes initial presence to the user's
        # own resources; then the resource is available for bare-JID messages.
        self.add_event_handler("presence_available",
                               lambda p: self.available.set() if p["from"] == self.boundjid else None)


async def login(jid, password, port):
    c = Client(jid, password)
    c.connect(("127.0.0.1", port), force_starttls=True, disable_starttls=False)
    done, _ = await asyncio.wait([asyncio.ensure_future(c.ready.wait()), asyncio.ensure_future(c.failed.wait())],
                                 timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if not c.ready.is_set():
        c.disconnect()
        raise AssertionError("%s did not log in (auth failed: %s)" % (jid, c.failed.is_set()))
    return c


class XmppLogin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="imp-e2e-xmpp-")
        cls.addClassCleanup(shutil.rmtree, cls.work, ignore_errors=True)
        # slixmpp 1.8 knows only the tls-unique channel binding (impd.conf(5)).
        cls.node = Impd("xmpp1", xcp_extra=["channel_binding = false"])
        cls.addClassCleanup(cls.node.cleanup)
        cls.node.start()
        n = cls.node
        n.ctl("domain", "add", DOMAIN)
        # The router reloads the local presence domains with the settings
        # generation; its status counts them.
        wait_for(lambda: any(s["name"] == "xcp-router" and s.get("detail", "").startswith("1 local presence domain")
                             for s in n.ctl_json("service", "list")["services"]), 30,
                 "xcp-router to serve " + DOMAIN)
        for user in ("ann", "bob"):
            n.ctl("user", "add", user, "--im-address", "%s@%s" % (user, DOMAIN), "--home-node", "xmpp1")
            r = subprocess.run([IMPCTL, "-c", n.conf, "--url", n.url, "user", "passwd", user],
                               input="%s-password\n" % user, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=60)
            if r.returncode != 0:
                raise AssertionError("impctl user passwd %s failed: %s%s" % (user, r.stdout, r.stderr))

    def test_two_users_log_in_with_scram_sha_256_and_exchange_a_message(self):
        async def scenario():
            ann = await login("ann@%s/laptop" % DOMAIN, "ann-password", self.node.xmpp_client)
            bob = await login("bob@%s" % DOMAIN, "bob-password", self.node.xmpp_client)
            try:
                self.assertEqual(str(ann.boundjid), "ann@%s/laptop" % DOMAIN)
                self.assertTrue(str(bob.boundjid).startswith("bob@%s/" % DOMAIN))
                # impctl session list: both sessions, over TLS, from loopback.
                sessions = self.node.ctl_json("session", "list")["sessions"]
                self.assertEqual(sorted(s["jid"] for s in sessions), sorted([str(ann.boundjid), str(bob.boundjid)]))
                for s in sessions:
                    self.assertTrue(s["address"].startswith("127.0.0.1:"), s)
                    self.assertTrue(s["tls"].startswith("TLSv1."), s)
                print(self.node.ctl("session", "list").stdout)
                # A message to a bare JID goes to the available resources
                # (RFC 6121 §8.5.2.1.1): bob sends initial presence first.
                bob.send_presence()
                await asyncio.wait_for(bob.available.wait(), 30)
                # The server asked bob's client its version after that presence
                # (no XEP-0115 caps): a ping after it, and the answer is in.
                await bob["xep_0199"].ping(DOMAIN, timeout=30)
                sessions = {s["jid"]: s for s in self.node.ctl_json("session", "list")["sessions"]}
                self.assertEqual(sessions[str(bob.boundjid)]["client"], "Slixmpp " + slixmpp.__version__)
                ann.send_message(mto="bob@%s" % DOMAIN, mbody="hello bob", mtype="chat")
                m = await asyncio.wait_for(bob.messages.get(), 30)
                self.assertEqual(m["body"], "hello bob")
                self.assertEqual(str(m["from"]), "ann@%s/laptop" % DOMAIN)
                bob.send_message(mto=str(ann.boundjid), mbody="hello ann", mtype="chat")
                m = await asyncio.wait_for(ann.messages.get(), 30)
                self.assertEqual(m["body"], "hello ann")
                self.assertEqual(str(m["from"]), str(bob.boundjid))
            finally:
                ann.disconnect()
                bob.disconnect()

        asyncio.run(scenario())

    def test_wrong_password_is_refused(self):
        async def scenario():
            with self.assertRaisesRegex(AssertionError, "auth failed: True"):
                await login("ann@%s" % DOMAIN, "not-the-password", self.node.xmpp_client)

        asyncio.run(scenario())


if __name__ == "__main__":
    unittest.main(verbosity=2)
