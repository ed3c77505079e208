"""Partitioned federation with a standard SIMPLE presence server end to end:
a slixmpp user Ann (ann@example.com) on impd and Kim (kim@simple.example), a
user of a Kamailio 5.6 registrar and presence server (tests/e2e/kamailio/
presence.cfg) played by the SIP user agent of tests/peers/simple_ua.py.
impd has both domains; simple.example users who are not IMP users are
routed by static route to Kamailio over TCP, and the domain's peer type is
`simple` (`impctl federation peer set simple.example --type simple`), so
federation-cm speaks RFC 3856 SUBSCRIBE/NOTIFY with PIDF/RPID, RFC 3428
page-mode MESSAGE and RFC 3994 isComposing toward it.

Cases: (a) Ann watches Kim: Kim's PUBLISHed state reaches Ann; (b) Kim
watches Ann: NOTIFYs with Ann's presence; (c) page-mode IM both ways with
non-ASCII text; (d) typing both ways (XEP-0085 <-> isComposing); (e)
unknown users refused both ways (404 through IMP, an XMPP error).

Needs Debian's kamailio and kamailio-presence-modules (scripts/install-deps.sh);
without them it exits 77 (skipped), naming what is missing. IMP_E2E_DUMP=1
prints the agent's ladder, Kamailio's log and federation-cm's log at the end."""
import asyncio
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "peers"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import simple_ua as su  # noqa: E402
from kamailio_presence import Kamailio, missing_kamailio  # noqa: E402
from harness import Impd, wait_for  # noqa: E402
from sippeer import TestCa  # noqa: E402
from xmpp_client import XmppTestCase  # noqa: E402
from xmpp_server import NodeClients, passwd, wait_applied  # noqa: E402

DOMAIN = "example.com"
SIMPLE = "simple.example"


def bare(jid):
    return str(jid).split("/")[0]


class FederationSimple(XmppTestCase):
    @classmethod
    def setUpClass(cls):
        why = missing_kamailio()
        if why:
            raise unittest.SkipTest(why)
        cls.work = tempfile.mkdtemp(prefix="imp-e2e-fedsimple-")
        cls.addClassCleanup(shutil.rmtree, cls.work, ignore_errors=True)
        cls.ca = TestCa(cls.work)
        node_cert = cls.ca.issue(DOMAIN, ip="127.0.0.1")
        cls.node = Impd("fs1", extra=[
            "[tls]", "cert_file = " + node_cert[0], "key_file = " + node_cert[1], "ca_file = " + cls.ca.cert],
            xcp_extra=["max_connections_per_ip = 0", "channel_binding = false"],
            fcm_extra=["keepalive_interval_ms = 1000", "down_probe_interval_ms = 500"])
        cls.addClassCleanup(cls.node.cleanup)
        cls.node.start()
        n = cls.node
        cls.kamailio = Kamailio(cls.work, n.sip_tcp)
        cls.addClassCleanup(cls.kamailio.stop)
        cls.kamailio.start()
        cls.ua = su.SimpleUA("127.0.0.1", cls.kamailio.port, SIMPLE)
        cls.addClassCleanup(cls.ua.stop)
        cls.addClassCleanup(cls.dump)
        n.ctl("domain", "add", DOMAIN)
        n.ctl("domain", "add", SIMPLE)
        cls.server = NodeClients(n, cls.ca.cert)
        n.ctl("user", "add", "ann", "--im-address", "ann@" + DOMAIN, "--home-node", "fs1")
        passwd(n, "ann", "pw-ann")
        cls.server.users["ann"] = "pw-ann"
        # Kamailio reaches the proxy over plain TCP from loopback
        n.ctl("acl", "add", "127.0.0.1")
        n.ctl("route", "add", ".example.simple.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
              str(cls.kamailio.port), "--transport", "TCP", "--priority", "1")
        n.ctl("federation", "enable")
        # the standard SIMPLE dialect toward simple.example (page mode, isComposing)
        n.ctl("federation", "peer", "set", SIMPLE, "--type", "simple")
        n.ctl("service", "activate", "federation-cm")
        n.ctl("trace", "set", "federation-cm", "--on", "--level", "info", "--flag", "translation")
        wait_for(lambda: any(s["name"] == "federation-cm" and s.get("state") == "running"
                             for s in n.ctl_json("service", "list")["services"]), 60, "federation-cm running")
        wait_applied(n, "federation-cm")
        wait_applied(n, "sip-proxy")
        status = cls.ua.register("kim")
        assert status == 200, "Kamailio refused Kim's REGISTER: %d" % status

    @classmethod
    def dump(cls):
        """With IMP_E2E_DUMP=1: the agent's ladder, Kamailio's and federation-cm's logs."""
        if not os.environ.get("IMP_E2E_DUMP"):
            return
        sys.stderr.write("---- simple_ua ladder\n" + "\n".join(cls.ua.ladder()[-300:]) + "\n")
        sys.stderr.write("---- kamailio.log\n" + cls.kamailio.read_log()[-20000:] + "\n")
        for svc in ("federation-cm", "sip-proxy"):
            sys.stderr.write("---- %s.log\n%s\n" % (svc, cls.node.log(svc)[-20000:]))


    # ------------------------------------------------------------ presence

    async def test_a_ann_watches_kim(self):
        self.assertEqual(await self.blocking(self.ua.publish, "kim", "open", note="am Schreibtisch ☕"), 200)
        ann = await self.logged_in("ann", "a")
        ann.send_presence(pto="kim@" + SIMPLE, ptype="subscribe")
        await ann.expect("subscribed", lambda p: bare(p["from"]) == "kim@" + SIMPLE, what="subscribed from kim")
        await ann.expect("presence", lambda p: bare(p["from"]) == "kim@" + SIMPLE and p["type"] != "unavailable"
                         and p["show"] == "" and p["status"] == "am Schreibtisch ☕", what="kim available")
        out = self.node.ctl("federation", "subscriptions", "--user", "ann@" + DOMAIN).stdout
        self.assertRegex(out, r"outgoing\s+ann@example.com\s+sip:kim@simple.example\s+active")
        # Kamailio grants at most its max_expires (3600), not the 7446 asked for:
        # the subscription lives, and is refreshed, by what was granted
        subs = self.node.ctl_json("federation", "subscriptions", "--user", "ann@" + DOMAIN)["subscriptions"]
        mine = [x for x in subs if x["direction"] == "outgoing" and x["microsoft_user"] == "sip:kim@" + SIMPLE]
        self.assertEqual(len(mine), 1, subs)
        self.assertLessEqual(mine[0]["expires_in"], 3600)
        self.assertGreater(mine[0]["expires_in"], 3000)
        # an RPID activity (RFC 4480) is the XMPP <show/>
        self.assertEqual(await self.blocking(self.ua.publish, "kim", "open", note="back soon", activity="away"), 200)
        await ann.expect("presence", lambda p: bare(p["from"]) == "kim@" + SIMPLE and p["show"] == "away"
                         and p["status"] == "back soon", what="kim away")
        self.assertEqual(await self.blocking(self.ua.publish, "kim", "closed"), 200)
        await ann.expect("presence", lambda p: bare(p["from"]) == "kim@" + SIMPLE and p["type"] == "unavailable",
                         what="kim unavailable")

    async def test_b_kim_watches_ann(self):
        ann = await self.logged_in("ann", "b")
        ann.send_presence(pstatus="in the office")
        sub = await self.blocking(self.ua.subscribe, "kim", "ann@" + DOMAIN)
        self.assertEqual(sub.status, 200)
        # auto-approval is on by default: Ann's presence follows
        n = await self.blocking(self.ua.wait_notify, sub, lambda n: n.state == "active" and n.pidf is not None
                                and n.pidf.basic == "open", 15)
        self.assertEqual(n.content_type.split(";")[0].strip().lower(), "application/pidf+xml")
        seen = len(self.ua.notifies(sub))
        ann.send_presence(pshow="away", pstatus="lunch")
        n = await self.blocking(self.ua.wait_notify, sub, lambda n: n.pidf is not None and n.pidf.note == "lunch",
                                15, seen)
        self.assertEqual(n.pidf.basic, "open")
        self.assertIn("away", n.pidf.activities)
        seen = len(self.ua.notifies(sub))
        ann.send_presence(ptype="unavailable")
        await self.blocking(self.ua.wait_notify, sub, lambda n: n.pidf is not None and n.pidf.basic == "closed",
                            15, seen)
        out = self.node.ctl("federation", "subscriptions", "--user", "ann@" + DOMAIN).stdout
        self.assertRegex(out, r"incoming\s+ann@example.com\s+sip:kim@simple.example\s+active")
        self.assertEqual(await self.blocking(self.ua.unsubscribe, sub), 200)
        await self.blocking(self.ua.wait_notify, sub, lambda n: n.state == "terminated", 15)

    # ------------------------------------------------------------ IM

    async def test_c_page_mode_im_both_ways(self):
        ann = await self.logged_in("ann", "c")
        # Kim -> Ann: RFC 3428 page mode through Kamailio and IMP's proxy
        text = "Grüße aus Köln — 你好 😀"
        status = await self.blocking(self.ua.send_message, "kim", "ann@" + DOMAIN, text)
        self.assertEqual(status, 200)
        await ann.expect("message", lambda m: bare(m["from"]) == "kim@" + SIMPLE and m["body"] == text,
                         what="kim's text")
        # Ann -> Kim
        reply = "Привет, Kim ✓ こんにちは"
        ann.send_message(mto="kim@" + SIMPLE, mbody=reply, mtype="chat")
        m = await self.blocking(self.ua.wait_message, "kim", lambda m: m.content_type == "text/plain", 15)
        self.assertEqual(m.text, reply)
        self.assertEqual(m.sender, "ann@" + DOMAIN)
        self.assertEqual(m.request.get("Content-Type").replace(" ", "").lower(), "text/plain;charset=utf-8")
        # page mode: no INVITE reached Kim
        self.assertFalse([line for line in self.ua.ladder() if "<- INVITE" in line])

    async def test_d_typing_both_ways(self):
        ann = await self.logged_in("ann", "d")
        # Kim's isComposing (RFC 3994) -> XEP-0085 composing
        status = await self.blocking(self.ua.send_composing, "kim", "ann@" + DOMAIN, "active", 60)
        self.assertEqual(status, 200)
        await ann.expect("chatstate", lambda m: bare(m["from"]) == "kim@" + SIMPLE and
                         m["chat_state"] == "composing", what="composing from kim")
        # Ann's composing -> isComposing MESSAGE
        start = len(self.ua.messages("kim"))
        msg = ann.make_message(mto="kim@" + SIMPLE, mtype="chat")
        msg["chat_state"] = "composing"
        msg.send()
        m = await self.blocking(self.ua.wait_message, "kim", lambda m: m.composing is not None, 15, start)
        self.assertEqual(m.content_type, "application/im-iscomposing+xml")
        self.assertEqual(m.composing, "active")
        self.assertEqual(m.sender, "ann@" + DOMAIN)

    # ------------------------------------------------------------ errors

    async def test_e_unknown_users_refused(self):
        status = await self.blocking(self.ua.send_message, "kim", "nobody@" + DOMAIN, "anyone there?")
        self.assertEqual(status, 404)
        ann = await self.logged_in("ann", "e")
        ann.send_message(mto="nobody@" + SIMPLE, mbody="anyone?", mtype="chat")
        e = await ann.expect("message", lambda m: m["type"] == "error" and bare(m["from"]) == "nobody@" + SIMPLE,
                             what="an error for nobody@simple.example")
        self.assertEqual(e["error"]["condition"], "item-not-found")


if __name__ == "__main__":
    why = missing_kamailio()
    if why:
        print("SKIP: " + why)
        sys.exit(77)
    unittest.main(verbosity=2)
