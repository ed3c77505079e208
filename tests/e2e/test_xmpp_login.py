"""XMPP log-in with a real client (issue 16, "Tests with real clients"; AV-1
native side): two users log in over STARTTLS (RFC 6120 §5) with
SCRAM-SHA-256 (RFC 7677) — the mechanism actually used is checked — and over
direct TLS (XEP-0368); the certificate is verified against the test CA and
the domain. Runs against IMP_XMPP_SERVER (impd by default, or prosody)."""
import xmpp_server
from xmpp_client import XmppTestCase
from xmpp_raw import RawStream


class XmppLogin(XmppTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = xmpp_server.start_server(cls)
        cls.server.add_user("ann", "ann-Secret-1")
        cls.server.add_user("bob", "bob-Secret-2")

    async def test_01_two_users_starttls_scram_sha_256(self):
        ann = await self.client("ann", "laptop")
        bob = await self.client("bob", "phone")
        self.assertEqual(await ann.login(), "started")
        self.assertEqual(await bob.login(), "started")
        for c in (ann, bob):
            self.assertIn("SCRAM-SHA-256", c.offered_mechanisms)
            self.assertEqual(c.mechanism, "SCRAM-SHA-256")
            self.assertIn(c.tls_version, ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(str(ann.boundjid), "ann@example.com/laptop")
        # both sessions are live: one message each way
        ann.send_message(mto="bob@example.com/phone", mbody="hello bob", mtype="chat")
        m = await bob.expect("message", lambda m: m["body"] == "hello bob")
        self.assertEqual(m["from"], ann.boundjid)
        bob.send_message(mto="ann@example.com/laptop", mbody="hello ann", mtype="chat")
        m = await ann.expect("message", lambda m: m["body"] == "hello ann")
        self.assertEqual(m["from"], bob.boundjid)

    async def test_02_direct_tls_xep_0368(self):
        ann = await self.client("ann", "direct")
        self.assertEqual(await ann.login(direct_tls=True), "started")
        self.assertEqual(ann.mechanism, "SCRAM-SHA-256")

    async def test_03_server_generated_resource(self):
        """RFC 6120 §7.6: a client that asks for no resource gets one."""
        bob = await self.client("bob", None)
        self.assertEqual(await bob.login(), "started")
        self.assertEqual(bob.boundjid.bare, "bob@example.com")
        self.assertTrue(bob.boundjid.resource)

    def test_04_starttls_required_and_no_sasl_before_tls(self):
        """RFC 6120 §5.3.1: the first features offer STARTTLS as required and
        no SASL mechanism (PLAIN only over TLS)."""
        s = RawStream(self.server)
        try:
            features = s.open()
            self.assertIn("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'", s.norm(features))
            self.assertIn("<required", features)
            self.assertNotIn("mechanism", features)
            s.starttls()
            features = s.open()
            self.assertIn(">SCRAM-SHA-256<", features)
        finally:
            s.close()


if __name__ == "__main__":
    xmpp_server.main()
