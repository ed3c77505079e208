"""Subscriptions and the privacy policy with real clients (issue 16; PS-2,
AV-1; RFC 6121 §3, XEP-0191): automatic approval on; off with the prompt
approved and denied; blocking a watcher, who then sees the user offline
(polite blocking: no error, no visible change of subscription)."""
import xmpp_server
from xmpp_client import TIMEOUT, XmppTestCase


def avail(jid, status=None):
    """Predicate: available presence from jid (bare), with status if given."""
    return lambda p: (p["from"].bare == jid and p["type"] not in ("unavailable", "error")
                      and (status is None or p["status"] == status))


class XmppSubscriptions(XmppTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = xmpp_server.start_server(cls)
        for u in ("ann", "bob", "carol", "dave", "erin", "frank", "grace", "henry", "ivan", "judy"):
            cls.server.add_user(u, "pw-%s-0" % u)

    async def pair(self, a, b):
        ca, cb = await self.client(a, "r1"), await self.client(b, "r1")
        await ca.login()
        await cb.login()
        return ca, cb

    async def subscribe_approved(self, watcher, user):
        """watcher subscribes to user, who approves by hand (PS-2 off)."""
        watcher.send_presence(pto=user.boundjid.bare, ptype="subscribe")
        await user.expect("subscribe", lambda p: p["from"].bare == watcher.boundjid.bare)
        user.send_presence(pto=watcher.boundjid.bare, ptype="subscribed")
        await watcher.expect("subscribed", lambda p: p["from"].bare == user.boundjid.bare)
        await watcher.expect("presence", avail(user.boundjid.bare))

    async def test_01_auto_approval_on_PS_2(self):
        self.server.set_auto_approve(True)
        ann, bob = await self.pair("ann", "bob")
        ann.send_presence(pto="bob@example.com", ptype="subscribe")
        await ann.expect("subscribed", lambda p: p["from"].bare == "bob@example.com", what="automatic approval")
        # RFC 6121 §3.1.5: the contact's available resources' presence follows
        await ann.expect("presence", avail("bob@example.com"))
        items = await ann.roster_items()
        self.assertIn("bob@example.com", items)
        self.assertIn(items["bob@example.com"]["subscription"], ("to", "both"))

    async def test_02_auto_approval_off_prompt_approved(self):
        self.server.set_auto_approve(False)
        carol, dave = await self.pair("carol", "dave")
        carol.send_presence(pto="dave@example.com", ptype="subscribe")
        p = await dave.expect("subscribe", lambda p: p["from"].bare == "carol@example.com", what="prompt")
        self.assertEqual(p["from"].bare, "carol@example.com")
        dave.send_presence(pto="carol@example.com", ptype="subscribed")
        await carol.expect("subscribed", lambda p: p["from"].bare == "dave@example.com")
        await carol.expect("presence", avail("dave@example.com"))
        items = (await carol.roster_items())
        self.assertEqual(items["dave@example.com"]["subscription"], "to")
        items = (await dave.roster_items())
        self.assertEqual(items["carol@example.com"]["subscription"], "from")

    async def test_03_auto_approval_off_prompt_denied(self):
        self.server.set_auto_approve(False)
        erin, frank = await self.pair("erin", "frank")
        erin.send_presence(pto="frank@example.com", ptype="subscribe")
        await frank.expect("subscribe", lambda p: p["from"].bare == "erin@example.com", what="prompt")
        frank.send_presence(pto="erin@example.com", ptype="unsubscribed")
        await erin.expect("unsubscribed", lambda p: p["from"].bare == "frank@example.com", what="denial")
        # RFC 6121 §3.2.2: the subscription stays none and the pending-out state ends
        item = (await erin.roster_items()).get("frank@example.com")
        self.assertIsNotNone(item)
        self.assertEqual(item["subscription"], "none")
        self.assertFalse(item["ask"])

    async def test_04_blocked_watcher_sees_user_offline_XEP_0191(self):
        self.server.set_auto_approve(False)
        grace, henry = await self.pair("grace", "henry")
        ivan = await self.client("ivan", "r1")
        await ivan.login()
        await self.subscribe_approved(henry, grace)
        await self.subscribe_approved(ivan, grace)
        await grace["xep_0191"].block("henry@example.com")
        blocked = await grace["xep_0191"].get_blocked()
        self.assertIn("henry@example.com", {str(j) for j in blocked["blocklist"]["items"]})
        # polite blocking: the watcher sees the user go offline
        await henry.expect("presence", lambda p: p["from"].bare == "grace@example.com" and p["type"] == "unavailable",
                           what="unavailable from the user who blocked him")
        grace.send_presence(pstatus="after block")
        await ivan.expect("presence", avail("grace@example.com", "after block"))
        # grace's broadcast is done (ivan has it); a round trip on henry's stream
        # comes after anything the server wrote to henry for it
        await henry["xep_0199"].ping(henry.boundjid.domain)
        while not henry.queues["presence"].empty():
            p = henry.queues["presence"].get_nowait()
            self.assertFalse(avail("grace@example.com")(p), "blocked watcher got %s" % p)
        self.assertTrue(henry.queues["message"].empty(), "no error to the blocked watcher")
        item = (await henry.roster_items())["grace@example.com"]
        self.assertEqual(item["subscription"], "to")

    async def test_05_roster_versioning_RFC_6121_2_6(self):
        judy = await self.client("judy", "r1")
        await judy.login()
        self.assertIn("rosterver", judy.features, "the stream feature urn:xmpp:features:rosterver (§2.6.1)")

        async def roster_get(ver):
            iq = judy.Iq()
            iq["type"] = "get"
            iq.enable("roster")
            iq["roster"]["ver"] = ver
            return await iq.send(timeout=TIMEOUT)

        first = await roster_get("")  # §2.6.2: an empty ver asks for the whole roster and its version
        v1 = first["roster"]["ver"]
        self.assertTrue(v1, first)
        same = await roster_get(v1)   # §2.6.3: unchanged: an empty result, no roster
        self.assertEqual(same["type"], "result")
        self.assertIsNone(same.xml.find("{jabber:iq:roster}query"), same)
        add = judy.Iq()
        add["type"] = "set"
        add["roster"]["items"] = {"ann@example.com": {"name": "Ann", "subscription": "none", "groups": []}}
        await add.send(timeout=TIMEOUT)
        after = await roster_get(v1)  # changed since v1: the roster (or pushes) and a new version
        self.assertEqual(after["type"], "result")
        query = after.xml.find("{jabber:iq:roster}query")
        if query is not None:
            self.assertNotEqual(query.get("ver"), v1)
            self.assertIn("ann@example.com", [i.get("jid") for i in query])


if __name__ == "__main__":
    xmpp_server.main()
