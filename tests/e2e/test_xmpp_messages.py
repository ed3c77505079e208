"""Messages with real clients (issue 16 deliverable 5; IM-5; RFC 6121 §8):
chat messages and XEP-0085 chat states both ways, XEP-0280 carbons to a
second resource, and messages to an offline user stored and delivered at
the next login, in the order they were sent (with impd, counted by the
node's offline queue gauge on /metrics)."""
import xmpp_server
from xmpp_client import XmppTestCase


class XmppMessages(XmppTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = xmpp_server.start_server(cls)
        for u in ("ann", "bob", "carol", "dave", "erin", "frank"):
            cls.server.add_user(u, "pw-%s-1" % u)

    async def test_01_messages_and_chat_states_both_ways_XEP_0085(self):
        ann, bob = await self.client("ann", "pc"), await self.client("bob", "pc")
        await ann.login()
        await bob.login()
        for a, b in ((ann, bob), (bob, ann)):
            m = a.make_message(mto=b.boundjid, mtype="chat")
            m["chat_state"] = "composing"
            m.send()
            cs = await b.expect("chatstate", lambda m: m["from"] == a.boundjid, what="composing")
            self.assertEqual(cs["chat_state"], "composing")
            m = a.make_message(mto=b.boundjid, mbody="hi from %s" % a.user, mtype="chat")
            m["chat_state"] = "active"
            m.send()
            got = await b.expect("message", lambda m: m["body"] == "hi from %s" % a.user)
            self.assertEqual(got["from"], a.boundjid)
            self.assertEqual(got["type"], "chat")
            self.assertEqual(got["chat_state"], "active")
            m = a.make_message(mto=b.boundjid, mtype="chat")
            m["chat_state"] = "paused"
            m.send()
            cs = await b.expect("chatstate", lambda m: m["chat_state"] == "paused", what="paused")
            self.assertEqual(cs["from"], a.boundjid)

    async def test_02_carbons_to_a_second_resource_XEP_0280(self):
        carol_pc, carol_phone = await self.client("carol", "pc"), await self.client("carol", "phone")
        dave = await self.client("dave", "pc")
        for c in (carol_pc, carol_phone, dave):
            await c.login()
        await carol_pc["xep_0280"].enable(timeout=20)
        await carol_phone["xep_0280"].enable(timeout=20)
        # received: dave -> carol/pc, a copy to carol/phone (XEP-0280 §6)
        dave.send_message(mto="carol@example.com/pc", mbody="to your pc", mtype="chat")
        got = await carol_pc.expect("message", lambda m: m["body"] == "to your pc")
        self.assertEqual(got["from"], dave.boundjid)
        c = await carol_phone.expect("carbon_received", what="copy of the received message")
        fwd = c["carbon_received"]
        self.assertEqual(fwd["body"], "to your pc")
        self.assertEqual(fwd["from"], dave.boundjid)
        self.assertEqual(c["from"].full, "carol@example.com")  # RFC: from the user's bare JID
        # sent: carol/pc -> dave, a copy to carol/phone (XEP-0280 §7)
        carol_pc.send_message(mto="dave@example.com/pc", mbody="sent from pc", mtype="chat")
        await dave.expect("message", lambda m: m["body"] == "sent from pc")
        c = await carol_phone.expect("carbon_sent", what="copy of the sent message")
        fwd = c["carbon_sent"]
        self.assertEqual(fwd["body"], "sent from pc")
        self.assertEqual(fwd["to"].bare, "dave@example.com")
        self.assertEqual(fwd["from"], carol_pc.boundjid)

    async def test_03_offline_messages_delivered_in_order_at_next_login_IM_5(self):
        erin = await self.client("erin", "pc")
        await erin.login()
        texts = ["offline %d" % i for i in range(1, 6)]
        for t in texts:
            erin.send_message(mto="frank@example.com", mbody=t, mtype="chat")
        # a round trip on erin's stream: the server has taken the five messages
        await erin["xep_0199"].ping(erin.boundjid.domain)
        if self.server.name == "impd":  # the node's offline queue gauge
            xmpp_server.wait_for(lambda: self.server.metric("imp_xmpp_offline_messages") == len(texts), 30,
                                 "imp_xmpp_offline_messages %d" % len(texts))
        frank = await self.client("frank", "pc")
        await frank.login()
        got = []
        for _ in texts:
            m = await frank.expect("message", lambda m: m["body"].startswith("offline "), what="stored message")
            self.assertEqual(m["from"].bare, "erin@example.com")
            self.assertEqual(m["type"], "chat")
            got.append(m["body"])
        self.assertEqual(got, texts)
        if self.server.name == "impd":  # delivered: removed from the store, and from the gauge
            xmpp_server.wait_for(lambda: self.server.metric("imp_xmpp_offline_messages") == 0, 30,
                                 "imp_xmpp_offline_messages 0")
            for event in ("offline_stored", "offline_delivered"):
                n = self.server.metric("imp_xmpp_session_manager_total", 'event="%s"' % event)
                self.assertGreaterEqual(n or 0, len(texts), "imp_xmpp_session_manager_total{event=%s}" % event)
            self.assertEqual(self.server.metric("imp_xmpp_session_manager_total", 'event="failed_job"'), 0)


if __name__ == "__main__":
    xmpp_server.main()
