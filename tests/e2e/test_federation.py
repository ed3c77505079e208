"""Partitioned intradomain federation end to end (issue 17): a slixmpp user
Ann on impd and Lync users (bob, carol, ...) on the scripted Lync pool of
tests/peers/lync_emulator.py, over mutual TLS through impd's SIP proxy and
its federation connection manager (federation-cm).

Covers: availability both ways with every AV-4 row and the third-party AV-5
rows; the approval prompt and polite blocking (AV-1); IM both ways with
typing (IM-1, IM-2), the first text in ms-text-format, group chat refused
(IM-4), an unknown user's 404 as item-not-found (FED-7, IM-5); the idle
timeout's BYE and a new INVITE afterwards; recovery after the Lync pool was
unreachable and after an impd restart (AV-3, within 30 s); bad input from
the Microsoft side answered on the wire (415, 400, 489, 406), counted, and
the node serving on; and the admin commands `impctl federation
subscriptions|sessions|peer`, with bad peer domains and types refused."""
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "peers"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import lync_emulator as ly  # noqa: E402
from harness import Impd, wait_for  # noqa: E402
from sippeer import TestCa  # noqa: E402
from xmpp_client import TIMEOUT, XmppTestCase  # noqa: E402
from xmpp_server import NodeClients, node_metric, passwd, wait_applied  # noqa: E402

DOMAIN = "example.com"
IDLE_S = 6  # im_idle_timeout_s of this node

# AV-4: Lync state -> what an XMPP client sees (None = unavailable).
AV4 = [(ly.AVAILABLE, ""), (ly.AWAY, "away"), (ly.BRB, "away"), (ly.BUSY, "dnd"), (ly.DND, "dnd"),
       (ly.APPEAR_OFFLINE, None), (ly.OFFLINE, None)]
# AV-5, third-party XMPP rows: <show/> -> Lync availability class.
AV5 = [("", "available"), ("away", "away"), ("xa", "away"), ("dnd", "busy")]


def bare(jid):
    return str(jid).split("/")[0]


class Federation(XmppTestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="imp-e2e-fed-")
        cls.addClassCleanup(shutil.rmtree, cls.work, ignore_errors=True)
        cls.ca = TestCa(cls.work)
        # one node certificate for the XMPP domain and the SIP proxy (IP SAN)
        node_cert = cls.ca.issue(DOMAIN, ip="127.0.0.1")
        lync_cert = cls.lync_cert = cls.ca.issue("lync.example.com", ip="127.0.0.1")
        cls.node = Impd("fed1", extra=[
            "[tls]", "cert_file = " + node_cert[0], "key_file = " + node_cert[1], "ca_file = " + cls.ca.cert],
            xcp_extra=["max_connections_per_ip = 0", "channel_binding = false"],
            sip_extra=["probe_interval_ms = 1000"],
            fcm_extra=["im_idle_timeout_s = %d" % IDLE_S, "keepalive_interval_ms = 1000", "down_probe_interval_ms = 500"])
        cls.addClassCleanup(cls.node.cleanup)
        cls.addClassCleanup(cls.dump)
        cls.node.start()
        n = cls.node
        # The Lync pool: every user of the domain that is not on IMP exists there
        # except "nobody" (404 with ms-diagnostics 4005).
        cls.lync = ly.LyncEmulator(cls.ca, lync_cert, "127.0.0.1", n.sip_mtls, domain=DOMAIN,
                                   users=["bob", "carol", "carol.new", "dave", "erin", "frank", "gina", "hal"])
        cls.lync.start()
        cls.addClassCleanup(cls.lync.stop)
        n.ctl("domain", "add", DOMAIN)
        cls.server = NodeClients(n, cls.ca.cert)
        for u in ("ann", "amy", "abe"):
            n.ctl("user", "add", u, "--im-address", "%s@%s" % (u, DOMAIN), "--home-node", "fed1")
            passwd(n, u, "pw-" + u)
            cls.server.users[u] = "pw-" + u
        n.ctl("acl", "add", "127.0.0.1")
        n.ctl("tls", "peer-subject", "add", "lync.example.com", "--description", "Lync pool")
        n.ctl("tls", "context", "set", "peer-auth", "--peer-subject", "lync.example.com")
        n.ctl("route", "add", ".com.example.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
              str(cls.lync.port), "--transport", "TLS", "--priority", "1")
        n.ctl("federation", "enable")
        n.ctl("service", "activate", "federation-cm")
        # the SIP <-> XMPP translation trace: every stanza and SIP message pair
        n.ctl("trace", "set", "federation-cm", "--on", "--level", "info", "--flag", "translation")
        wait_for(lambda: any(s["name"] == "federation-cm" and s.get("state") == "running"
                             for s in n.ctl_json("service", "list")["services"]), 60, "federation-cm running")
        wait_applied(n, "federation-cm")
        wait_applied(n, "sip-proxy")

    @classmethod
    def dump(cls):
        """With IMP_E2E_DUMP=1: the Lync pool's ladder and federation-cm's log."""
        if not os.environ.get("IMP_E2E_DUMP"):
            return
        sys.stderr.write("---- ladder\n" + "\n".join(cls.lync.ladder()[-300:]) + "\n")
        for svc in ("federation-cm", "sip-proxy"):
            sys.stderr.write("---- %s.log\n%s\n" % (svc, cls.node.log(svc)[-20000:]))

    def conversation_up(self, native, microsoft, timeout=15):
        """Waits until `impctl federation sessions` shows the conversation up."""
        wait_for(lambda: any(x["native_user"] == native and x["microsoft_user"] == "sip:" + microsoft and
                             x["state"] == "up"
                             for x in self.node.ctl_json("federation", "sessions")["sessions"]),
                 timeout, "the conversation %s <-> %s up" % (native, microsoft))


    def refused(self):
        """federation-cm's count of requests it refused (imp_fcm_events_total)."""
        return node_metric(self.node, "imp_fcm_events_total", 'event="refused"') or 0

    def sip_in(self, method):
        """federation-cm's count of `method` requests received (imp_fcm_sip_total)."""
        return node_metric(self.node, "imp_fcm_sip_total", 'method="%s",direction="in"' % method) or 0

    def watchers(self, native, microsoft):
        """The incoming subscriptions (AV-1) of Microsoft user `microsoft` to `native`."""
        return [x for x in self.node.ctl_json("federation", "subscriptions", "--user", native)["subscriptions"]
                if x["direction"] == "incoming" and x["microsoft_user"] == "sip:" + microsoft]

    def session_of(self, native, microsoft):
        """The row of `impctl federation sessions` for the pair, or None."""
        return next((x for x in self.node.ctl_json("federation", "sessions")["sessions"]
                     if x["native_user"] == native and x["microsoft_user"] == "sip:" + microsoft), None)

    # ------------------------------------------------------------ AV-2, AV-4

    async def test_01_native_watches_lync_user_every_av4_row(self):
        ann = await self.logged_in("ann")
        self.lync.set_presence("bob", ly.AVAILABLE, note="at my desk")
        ann.send_presence(pto="bob@example.com", ptype="subscribe")
        sub = await self.blocking(self.lync.wait_subscription, "ann@example.com", "bob@example.com", 15)
        self.assertEqual(sub.expires, 7446)
        req = self.lync.requests("SUBSCRIBE")[-1]
        self.assertEqual(req.get("Event"), "presence")
        self.assertEqual(req.get("Accept"), "application/pidf+xml")
        await ann.expect("subscribed", lambda p: bare(p["from"]) == "bob@example.com", what="subscribed from bob")
        for availability, show in AV4:
            self.lync.set_presence("bob", availability, note="state %d" % availability)
            if show is None:
                p = await ann.expect("presence", lambda p: bare(p["from"]) == "bob@example.com" and
                                     p["type"] == "unavailable", what="bob unavailable for %d" % availability)
            else:
                p = await ann.expect("presence", lambda p, show=show, a=availability: bare(p["from"]) == "bob@example.com"
                                     and p["type"] != "unavailable" and p["show"] == show
                                     and p["status"] == "state %d" % a, what="bob '%s' for %d" % (show, availability))
        out = self.node.ctl("federation", "subscriptions", "--user", "ann@example.com").stdout
        self.assertRegex(out, r"outgoing\s+ann@example.com\s+sip:bob@example.com\s+active")

    # ------------------------------------------------------------ AV-1, AV-5

    async def test_02_lync_user_watches_native_av5_third_party_rows(self):
        self.node.ctl("presence", "settings", "set", "--auto-approve", "on")
        wait_applied(self.node)
        amy = await self.logged_in("amy")
        h = await self.blocking(self.lync.subscribe, "carol", "amy@example.com")
        self.assertEqual(self.lync.final_status(h), 200)
        # approved automatically (PS-2): Amy's presence follows
        n = await self.blocking(self.lync.wait_notify, h, lambda n: n.state == "active" and n.pidf and
                                n.pidf.basic == "open", 15)
        self.assertEqual(n.content_type.split(";")[0], "application/pidf+xml")
        for show, klass in AV5:
            seen = len(self.lync.notifies(h))
            amy.send_presence(pshow=show or None, pstatus="now " + (show or "available"))
            n = await self.blocking(self.lync.wait_notify, h, lambda n, s="now " + (show or "available"):
                                    n.pidf is not None and n.pidf.note == s, 15, seen)
            self.assertEqual(n.pidf.basic, "open")
            self.assertEqual(ly.availability_class(n.pidf.availability) if n.pidf.availability is not None
                             else ("away" if "away" in n.pidf.activities else
                                   "busy" if "busy" in n.pidf.activities else "available"), klass)
        seen = len(self.lync.notifies(h))
        amy.send_presence(ptype="unavailable")
        n = await self.blocking(self.lync.wait_notify, h, lambda n: n.pidf is not None and n.pidf.basic == "closed",
                                15, seen)
        # Amy's roster holds carol with subscription from (RFC 6121)
        amy2 = await self.logged_in("amy", "r2")
        items = await amy2.roster_items()
        self.assertIn(items.get("carol@example.com", {}).get("subscription"), ("from", "both"))
        out = self.node.ctl("federation", "subscriptions", "--user", "amy@example.com").stdout
        self.assertRegex(out, r"incoming\s+amy@example.com\s+sip:carol@example.com\s+active")

    async def test_03_prompt_approved_and_polite_block(self):
        self.node.ctl("presence", "settings", "set", "--auto-approve", "off")
        wait_applied(self.node)
        try:
            abe = await self.logged_in("abe")
            h = await self.blocking(self.lync.subscribe, "dave", "abe@example.com")
            self.assertEqual(self.lync.final_status(h), 200)
            # until Abe answers, Dave sees him offline
            n = await self.blocking(self.lync.wait_notify, h, lambda n: n.pidf is not None, 15)
            self.assertEqual(n.pidf.basic, "closed")
            await abe.expect("subscribe", lambda p: bare(p["from"]) == "dave@example.com", what="the prompt")
            seen = len(self.lync.notifies(h))
            abe.send_presence(pto="dave@example.com", ptype="subscribed")
            n = await self.blocking(self.lync.wait_notify, h, lambda n: n.pidf is not None and n.pidf.basic == "open",
                                    15, seen)
            # Erin is denied: she keeps seeing Abe offline, never an error (AV-1)
            h2 = await self.blocking(self.lync.subscribe, "erin", "abe@example.com")
            await abe.expect("subscribe", lambda p: bare(p["from"]) == "erin@example.com", what="erin's prompt")
            abe.send_presence(pto="erin@example.com", ptype="unsubscribed")
            abe.send_presence(pstatus="still here")
            await self.blocking(self.lync.wait_notify, h, lambda n: n.pidf is not None and n.pidf.note == "still here", 15)
            for n in self.lync.notifies(h2):
                self.assertNotEqual(n.state, "terminated")
                if n.pidf is not None:
                    self.assertEqual(n.pidf.basic, "closed")
        finally:
            self.node.ctl("presence", "settings", "set", "--auto-approve", "on")
            wait_applied(self.node)

    async def test_04_unsupported_expires(self):
        h = await self.blocking(self.lync.subscribe, "frank", "ann@example.com", expires=60)
        self.assertEqual(self.lync.final_status(h), 423)
        resp = self.lync.last_response("SUBSCRIBE")
        self.assertEqual(resp.get("Min-Expires"), "1200")

    # ------------------------------------------------------------ IM

    async def test_05_im_both_ways_with_typing(self):
        ann = await self.logged_in("ann", "im")
        ann.send_message(mto="gina@example.com", mbody="Hello Gina 😀 こんにちは :-)", mtype="chat")
        m = await self.blocking(self.lync.wait_im, "gina", "Hello Gina 😀 こんにちは :-)", 15)
        self.assertEqual(m.sender, "ann@example.com")
        invite = self.lync.requests("INVITE")[-1]
        self.assertIn("m=message", invite.text())
        self.assertTrue(invite.get("Ms-Conversation-ID"))
        # Lync user answers, with typing first
        await self.blocking(self.lync.send_typing, "gina", "ann@example.com", True)
        await ann.expect("chatstate", lambda m: bare(m["from"]) == "gina@example.com" and
                         m["chat_state"] == "composing", what="composing from gina")
        status = await self.blocking(self.lync.send_im, "gina", "ann@example.com", "Hi Ann ✓")
        self.assertEqual(status, 200)
        await ann.expect("message", lambda m: bare(m["from"]) == "gina@example.com" and m["body"] == "Hi Ann ✓",
                         what="gina's text")
        # XEP-0085 composing -> KeyboardActivity INFO
        msg = ann.make_message(mto="gina@example.com", mtype="chat")
        msg["chat_state"] = "composing"
        msg.send()
        ev = await self.blocking(self.lync.wait_typing, "gina", 15)
        self.assertEqual(ev.kind, "keyboard")
        out = self.node.ctl("federation", "sessions").stdout
        self.assertRegex(out, r"ann@example.com\s+sip:gina@example.com\s+up")
        # the Lync user starts a new conversation, first text in ms-text-format
        await self.blocking(self.lync.bye, "gina", "ann@example.com")
        status = await self.blocking(self.lync.send_im, "hal", "ann@example.com", "first in INVITE", True)
        self.assertEqual(status, 200)
        await ann.expect("message", lambda m: bare(m["from"]) == "hal@example.com" and m["body"] == "first in INVITE")

    async def test_06_group_chat_and_unknown_user_refused(self):
        ann = await self.logged_in("ann", "gc")
        ann.send_message(mto="bob@example.com", mbody="group?", mtype="groupchat")
        e = await ann.expect("message", lambda m: m["type"] == "error" and bare(m["from"]) == "bob@example.com",
                             what="IM-4 error")
        self.assertEqual(e["error"]["condition"], "not-acceptable")
        status = await self.blocking(self.lync.invite_multiparty, "bob", "ann@example.com")
        self.assertEqual(status, 488)
        ann.send_message(mto="nobody@example.com", mbody="anyone?", mtype="chat")
        e = await ann.expect("message", lambda m: m["type"] == "error" and bare(m["from"]) == "nobody@example.com",
                             what="FED-7 error")
        self.assertEqual(e["error"]["condition"], "item-not-found")
        self.assertIn("4005", e["error"]["text"])

    async def test_07_idle_timeout_bye_then_new_invite(self):
        ann = await self.logged_in("ann", "idle")
        ann.send_message(mto="carol@example.com", mbody="before idle", mtype="chat")
        await self.blocking(self.lync.wait_im, "carol", "before idle", 15)
        invites = len(self.lync.requests("INVITE"))
        await self.blocking(self.lync.wait_bye, "carol", "ann@example.com", IDLE_S + 15)
        ann.send_message(mto="carol@example.com", mbody="after idle", mtype="chat")
        await self.blocking(self.lync.wait_im, "carol", "after idle", 15)
        self.assertEqual(len(self.lync.requests("INVITE")), invites + 1)

    # ------------------------------------------------------------ AV-3

    async def test_08_lync_pool_unreachable_then_back(self):
        abe = await self.logged_in("abe", "rec")
        self.lync.set_presence("hal", ly.BUSY)
        abe.send_presence(pto="hal@example.com", ptype="subscribe")
        await self.blocking(self.lync.wait_subscription, "abe@example.com", "hal@example.com", 15)
        await abe.expect("presence", lambda p: bare(p["from"]) == "hal@example.com" and p["show"] == "dnd")
        self.lync.set_reachable(False, close_connections=True)
        wait_for(lambda: "does not answer" in self.node.log("federation-cm"), 30, "federation-cm noticing the pool down")
        self.lync.restart()  # comes back having forgotten every dialog
        back = time.monotonic()
        self.lync.set_presence("hal", ly.AWAY)
        await self.blocking(self.lync.wait_subscription, "abe@example.com", "hal@example.com", 30, 0, "active")
        await abe.expect("presence", lambda p: bare(p["from"]) == "hal@example.com" and p["show"] == "away",
                         timeout=30)
        self.assertLess(time.monotonic() - back, 30)

    async def test_08b_watcher_gets_what_changed_while_pool_away(self):
        # AV-3: a Microsoft watcher whose NOTIFY could not be delivered while
        # its pool was unreachable gets the current state when the pool
        # answers again; watchers that missed nothing are not NOTIFYed again.
        self.node.ctl("presence", "settings", "set", "--auto-approve", "on")
        wait_applied(self.node)
        amy = await self.logged_in("amy", "away")
        abe = await self.logged_in("abe", "away")
        h = await self.blocking(self.lync.subscribe, "gina", "amy@example.com")
        h2 = await self.blocking(self.lync.subscribe, "gina", "abe@example.com")
        for x in (h, h2):
            await self.blocking(self.lync.wait_notify, x, lambda n: n.pidf is not None and n.pidf.basic == "open", 15)
        downs = self.node.log("federation-cm").count("does not answer")
        self.lync.set_reachable(False)
        seen, seen2 = len(self.lync.notifies(h)), len(self.lync.notifies(h2))
        amy.send_presence(pshow="dnd", pstatus="in a meeting while the pool was away")
        await self.blocking(wait_for, lambda: self.node.log("federation-cm").count("does not answer") > downs, 30,
                            "federation-cm noticing the pool away")
        self.lync.set_reachable(True)
        n = await self.blocking(self.lync.wait_notify, h, lambda n: n.pidf is not None and
                                n.pidf.note == "in a meeting while the pool was away", 30, seen)
        self.assertIn("busy", n.pidf.activities)
        await self.blocking(wait_for, lambda: "whose NOTIFY failed notified again" in self.node.log("federation-cm"),
                            15, "federation-cm noticing the pool back")
        # Abe's watcher missed nothing: no NOTIFY again after the pool's return
        self.assertEqual(len(self.lync.notifies(h2)), seen2)
        for x in (h, h2):
            self.assertEqual(await self.blocking(self.lync.unsubscribe, x), 200)

    async def test_09_impd_restart_recovery(self):
        # hold one subscription each way, then restart impd
        ann = await self.logged_in("ann", "rs")
        self.lync.set_presence("erin", ly.AVAILABLE)
        ann.send_presence(pto="erin@example.com", ptype="subscribe")
        await self.blocking(self.lync.wait_subscription, "ann@example.com", "erin@example.com", 15)
        h = await self.blocking(self.lync.subscribe, "frank", "ann@example.com")
        await self.blocking(self.lync.wait_notify, h, lambda n: n.pidf is not None and n.pidf.basic == "open", 15)
        await ann.logout()
        refreshes = [s.refreshes for s in self.lync.subscriptions()
                     if s.watcher == "ann@example.com" and s.target == "erin@example.com"][-1]
        seen = len(self.lync.notifies(h))
        self.node.stop()
        self.node.start()
        started = time.monotonic()
        # the outgoing subscription is refreshed, the watcher gets a fresh NOTIFY:
        # Ann's session ended with the old impd, so she is Offline
        await self.blocking(self.lync.wait_subscription, "ann@example.com", "erin@example.com", 30, refreshes + 1)
        n = await self.blocking(self.lync.wait_notify, h, lambda n: n.pidf is not None, 30, seen)
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(n.pidf.basic, "closed")
        # Only federation-cm restarts while Ann is online: Frank's fresh NOTIFY
        # carries her presence, asked of the session manager (a probe through
        # its privacy rules), not Offline.
        ann = await self.logged_in("ann", "rs2")
        seen = len(self.lync.notifies(h))
        ann.send_presence(pshow="away", pstatus="back after the restart")
        await self.blocking(self.lync.wait_notify, h, lambda n: n.pidf is not None and
                            n.pidf.note == "back after the restart", 15, seen)
        probes = node_metric(self.node, "imp_fcm_events_total", 'event="recovery_probe"') or 0
        seen = len(self.lync.notifies(h))
        self.node.ctl("service", "restart", "federation-cm")
        n = await self.blocking(self.lync.wait_notify, h, lambda n: n.pidf is not None, 30, seen)
        self.assertEqual((n.pidf.basic, n.pidf.note), ("open", "back after the restart"))
        self.assertIn("away", n.pidf.activities)
        self.assertEqual(node_metric(self.node, "imp_fcm_events_total", 'event="recovery_probe"'), probes + 1)

    # ------------------------------------------------------------ more IM and presence paths

    async def test_10_dead_dialog_reinvite(self):
        ann = await self.logged_in("ann", "dd")
        ann.send_message(mto="dave@example.com", mbody="one", mtype="chat")
        await self.blocking(self.lync.wait_im, "dave", "one", 15)
        # the conversation is up on IMP's side (the 200 to the INVITE arrived)
        # before the pool restarts: a pool dying before it answers is another case
        await self.blocking(self.conversation_up, "ann@example.com", "dave@example.com")
        invites = len(self.lync.requests("INVITE"))
        # the pool forgets every dialog: the next MESSAGE gets 481, and IMP
        # sends it again in a new conversation, the sender sees no error
        self.lync.restart()
        ann.send_message(mto="dave@example.com", mbody="two", mtype="chat")
        m = await self.blocking(self.lync.wait_im, "dave", "two", 15)
        self.assertEqual(m.sender, "ann@example.com")
        self.assertEqual(len(self.lync.requests("INVITE")), invites + 1)
        self.assertEqual([x for x in ann.queues["message"]._queue if x["type"] == "error"], [])

    async def test_11_page_mode_and_no_media_invite(self):
        ann = await self.logged_in("ann", "pm")
        # RFC 3428 page mode, as standard SIP peers send it
        status = await self.blocking(self.lync.send_page_message, "erin", "ann@example.com", "paged ✉")
        self.assertEqual(status, 200)
        await ann.expect("message", lambda m: bare(m["from"]) == "erin@example.com" and m["body"] == "paged ✉")
        # an INVITE without a message media line is refused
        status = await self.blocking(self.lync.send_raw_invite, "erin", "ann@example.com",
                                     "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                                     "m=audio 4000 RTP/AVP 0\r\n")
        self.assertEqual(status, 488)

    async def test_12_client_probe_makes_no_subscribe(self):
        ann = await self.logged_in("ann", "tmp")
        # a client's own probe (a directory search's temporary presence) must
        # not become a SUBSCRIBE; the message after it is the barrier: what
        # the gateway does with the probe happens before the message's INVITE
        ann.send_presence(pto="gina@example.com", ptype="probe")
        ann.send_message(mto="gina@example.com", mbody="after the probe", mtype="chat")
        await self.blocking(self.lync.wait_im, "gina", "after the probe", 15)
        self.assertFalse([s for s in self.lync.subscriptions()
                          if s.watcher == "ann@example.com" and s.target == "gina@example.com"])

    async def test_13_unsubscribe_both_ways(self):
        amy = await self.logged_in("amy", "un")
        amy.send_presence(pto="frank@example.com", ptype="subscribe")
        await self.blocking(self.lync.wait_subscription, "amy@example.com", "frank@example.com", 15, 0, "active")
        amy.send_presence(pto="frank@example.com", ptype="unsubscribe")
        await self.blocking(self.lync.wait_subscription_ended, "amy@example.com", "frank@example.com", 15)
        # the Lync user ends the watch: Expires 0, and Amy's roster follows (RFC 6121 §3.3)
        h = await self.blocking(self.lync.subscribe, "hal", "amy@example.com")
        await self.blocking(self.lync.wait_notify, h, lambda n: n.pidf is not None and n.pidf.basic == "open", 15)
        self.assertEqual(await self.blocking(self.lync.unsubscribe, h), 200)
        await self.blocking(self.lync.wait_notify, h, lambda n: n.state == "terminated", 15)

        def hal_gone():
            out = self.node.ctl("federation", "subscriptions", "--user", "amy@example.com").stdout
            return "sip:hal@example.com" not in out
        wait_for(hal_gone, 15, "hal's incoming subscription removed")

    async def test_14_failover_to_backup_route_during_conversation(self):
        backup = ly.LyncEmulator(self.ca, self.lync_cert, "127.0.0.1", self.node.sip_mtls, domain=DOMAIN,
                                 users=["carol"])
        backup.start()
        self.addCleanup(backup.stop)
        self.node.ctl("route", "add", ".com.example.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
                      str(backup.port), "--transport", "TLS", "--priority", "2")
        wait_applied(self.node, "sip-proxy")
        # the primary must not be marked down by the proxy from an earlier
        # case (the pool restarts of test_08 and test_10): probed every second here
        await self.blocking(wait_for, lambda: not any(
            str(self.lync.port) in h for h in self.node.ctl_json("proxy", "stats").get("next_hops_down", [])),
            30, "the primary pool marked up by the SIP proxy")
        ann = await self.logged_in("ann", "fo")
        ann.send_message(mto="carol@example.com", mbody="via the primary", mtype="chat")
        await self.blocking(self.lync.wait_im, "carol", "via the primary", 15)
        self.lync.set_reachable(False, close_connections=True)
        try:
            ann.send_message(mto="carol@example.com", mbody="via the backup", mtype="chat")
            m = await self.blocking(backup.wait_im, "carol", "via the backup", 20)
            self.assertEqual(m.sender, "ann@example.com")
        finally:
            self.lync.set_reachable(True)

    # ------------------------------------------------------------ bad input from the Microsoft side

    async def test_15_unsupported_body_type_415(self):
        ann = await self.logged_in("ann", "ct")
        octets = b"\x00\x01\xfe\xff binary"
        # in a conversation: one text through first, so that the dialog is up
        self.assertEqual(await self.blocking(self.lync.send_im, "bob", "ann@example.com", "before"), 200)
        await ann.expect("message", lambda m: bare(m["from"]) == "bob@example.com" and m["body"] == "before")
        refused, messages = self.refused(), self.sip_in("MESSAGE")
        # [MS IM] "Also accept text/html, multipart/alternative; reply 415 to anything else."
        r = await self.blocking(self.lync.send_request, "bob", "ann@example.com", "MESSAGE",
                                content_type="application/octet-stream", body=octets, in_dialog=True)
        self.assertEqual((r.status, r.get("Accept")), (415, "text/plain;charset=UTF-8, text/html;charset=UTF-8, multipart/alternative"))
        self.assertEqual(self.refused(), refused + 1)
        self.assertEqual(self.sip_in("MESSAGE"), messages + 1)
        await self.blocking(wait_for, lambda: "MESSAGE from bob@example.com refused with 415" in
                            self.node.log("federation-cm"), 15, "the 415 in federation-cm's log")
        # the conversation goes on: the next text is the next message Ann gets,
        # and the refused one was not counted as delivered
        self.assertEqual(await self.blocking(self.lync.send_im, "bob", "ann@example.com", "after"), 200)
        m = await ann.expect("message", lambda m: bare(m["from"]) == "bob@example.com", what="bob's next text")
        self.assertEqual(m["body"], "after")
        s = self.session_of("ann@example.com", "bob@example.com")
        self.assertEqual((s["state"], s["messages_in"]), ("up", 2))

        # page mode (RFC 3428), no dialog
        refused = self.refused()
        r = await self.blocking(self.lync.send_request, "erin", "ann@example.com", "MESSAGE",
                                content_type="application/octet-stream", body=octets)
        self.assertEqual((r.status, r.get("Accept")), (415, "text/plain;charset=UTF-8, text/html;charset=UTF-8, multipart/alternative"))
        self.assertEqual(self.refused(), refused + 1)
        self.assertEqual(await self.blocking(self.lync.send_page_message, "erin", "ann@example.com", "paged after"),
                         200)
        m = await ann.expect("message", lambda m: bare(m["from"]) == "erin@example.com", what="erin's page")
        self.assertEqual(m["body"], "paged after")
        self.assertEqual([x for x in ann.queues["message"]._queue if x["type"] == "error"], [])

    async def test_16_malformed_typing_400(self):
        ann = await self.logged_in("ann", "ty")
        refused, infos = self.refused(), self.sip_in("INFO")
        isc = '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>%s</state></isComposing>'
        bad = [  # the first opens the conversation (INVITE, no text)
            ("INFO", "application/xml", '<?xml version="1.0"?><KeyboardActivity><status /></KeyboardActivity>'),
            ("INFO", "application/xml", '<?xml version="1.0"?><KeyboardActivity><status status="type" />'),
            ("INFO", "application/xml", '<KeyboardActivity><status status="dancing" /></KeyboardActivity>'),
            ("INFO", "application/im-iscomposing+xml", isc % "thinking"),
            ("INFO", "application/im-iscomposing+xml", "<isComposing><state>active</state></isComposing>"),
        ]
        for method, ctype, body in bad:
            r = await self.blocking(self.lync.send_request, "dave", "ann@example.com", method, content_type=ctype,
                                    body=body, in_dialog=True)
            self.assertEqual((r.status, r.start), (400, "SIP/2.0 400 Bad Request - typing indication not understood"),
                             body)
            self.assertIsNone(r.get("Accept"))
        # an isComposing MESSAGE (RFC 3994) in the conversation, not understood either
        r = await self.blocking(self.lync.send_request, "dave", "ann@example.com", "MESSAGE",
                                content_type="application/im-iscomposing+xml", body=isc % "", in_dialog=True)
        self.assertEqual((r.status, r.start), (400, "SIP/2.0 400 Bad Request - isComposing not understood"))
        # INFO with a body that is no typing indication at all
        r = await self.blocking(self.lync.send_request, "dave", "ann@example.com", "INFO", content_type="text/plain",
                                body="typing", in_dialog=True)
        self.assertEqual((r.status, r.get("Accept")), (415, "application/xml, application/im-iscomposing+xml"))
        self.assertEqual(self.sip_in("INFO"), infos + len(bad) + 1)
        self.assertEqual(self.refused(), refused + len(bad) + 2)
        # nothing reached Ann: the first chat state she gets from Dave is the
        # valid indication sent after them ([MS IM] "status="idle" = stopped")
        self.assertEqual(await self.blocking(self.lync.send_typing, "dave", "ann@example.com", False), 200)
        m = await ann.expect("chatstate", lambda m: bare(m["from"]) == "dave@example.com", what="dave's chat state")
        self.assertEqual(m["chat_state"], "paused")
        self.assertEqual(await self.blocking(self.lync.send_im, "dave", "ann@example.com", "still here"), 200)
        m = await ann.expect("message", lambda m: bare(m["from"]) == "dave@example.com", what="dave's text")
        self.assertEqual(m["body"], "still here")
        self.assertEqual(self.session_of("ann@example.com", "dave@example.com")["state"], "up")

    def subscribe_headers(self, event="presence", accept=", ".join(ly.LYNC_ACCEPT)):
        return [("Event", event), ("Accept", accept), ("Expires", str(ly.LYNC_EXPIRES))]

    async def test_17_subscribe_bad_event_489(self):
        refused, subscribes = self.refused(), self.sip_in("SUBSCRIBE")
        # the package is the whole token (RFC 6665 §8.2.1): presence.winfo is another
        events = ("dialog", "message-summary", "conference", "presence.winfo", "presencex")
        for event in events:
            r = await self.blocking(self.lync.send_request, "gina", "amy@example.com", "SUBSCRIBE",
                                    self.subscribe_headers(event=event))
            self.assertEqual((r.status, r.get("Allow-Events")), (489, "presence"), event)
        self.assertEqual(self.sip_in("SUBSCRIBE"), subscribes + len(events))
        self.assertEqual(self.refused(), refused + len(events))
        self.assertIn("SUBSCRIBE from gina@example.com refused with 489: Event 'presence.winfo' is not presence",
                      self.node.log("federation-cm"))
        self.assertEqual(self.watchers("amy@example.com", "gina@example.com"), [])
        # the same watcher's presence subscription works
        self.node.ctl("presence", "settings", "set", "--auto-approve", "on")
        wait_applied(self.node)
        amy = await self.logged_in("amy", "ev")
        h = await self.blocking(self.lync.subscribe, "gina", "amy@example.com")
        self.assertEqual(self.lync.final_status(h), 200)
        await self.blocking(self.lync.wait_notify, h, lambda n: n.pidf is not None and n.pidf.basic == "open", 15)
        self.assertEqual(len(self.watchers("amy@example.com", "gina@example.com")), 1)
        self.assertEqual(await self.blocking(self.lync.unsubscribe, h), 200)
        await self.blocking(self.lync.wait_notify, h, lambda n: n.state == "terminated", 15)
        await amy.logout()

    async def test_18_subscribe_without_pidf_406(self):
        refused = self.refused()
        # [MS Presence] "Lync's incoming SUBSCRIBEs may offer application/xpidf+xml, text/xml+msrtc.pidf,
        # application/pidf+xml, application/msrtc-event-categories+xml. Answer with application/pidf+xml."
        # Without application/pidf+xml there is nothing to answer with.
        # q=0 refuses (RFC 3261 §20.1), also under a wider range that takes it
        refusing = ("application/xpidf+xml, text/xml+msrtc.pidf, application/msrtc-event-categories+xml",
                    "application/cpim-pidf+xml", "text/plain", "application/pidf+xml;q=0",
                    "application/*, application/pidf+xml;q=0.0")
        for accept in refusing:
            r = await self.blocking(self.lync.send_request, "hal", "abe@example.com", "SUBSCRIBE",
                                    self.subscribe_headers(accept=accept))
            self.assertEqual((r.status, r.get("Accept")), (406, "application/pidf+xml"), accept)
        self.assertEqual(self.refused(), refused + len(refusing))
        self.assertEqual(self.watchers("abe@example.com", "hal@example.com"), [])
        # a wildcard is acceptable, and so is Lync's own list, on one line or
        # one Accept line each (RFC 3261 §7.3.1), from the same watcher
        for accept, lines in ((("application/*",), False), (ly.LYNC_ACCEPT, False), (ly.LYNC_ACCEPT, True)):
            h = await self.blocking(self.lync.subscribe, "hal", "abe@example.com", accept=accept, accept_lines=lines)
            self.assertEqual(self.lync.final_status(h), 200, accept)
            n = await self.blocking(self.lync.wait_notify, h, lambda n: n.pidf is not None, 15)
            self.assertEqual(n.content_type.split(";")[0], "application/pidf+xml")
            self.assertEqual(len(self.watchers("abe@example.com", "hal@example.com")), 1)
            self.assertEqual(await self.blocking(self.lync.unsubscribe, h), 200)
            await self.blocking(self.lync.wait_notify, h, lambda n: n.state == "terminated", 15)
        self.assertEqual(self.refused(), refused + len(refusing))

    # ------------------------------------------------------------ admin: federated domain peers

    def test_19_peer_set_bad_domain_and_type_refused(self):
        before = self.node.ctl_json("federation", "peer", "list")
        for domain in ("BAD..DOMAIN", "-bad.example", "bad_domain.example", "bad.example."):
            status, body = self.node.http("PUT", "/api/v1/federation/peers/" + urllib.parse.quote(domain),
                                          body=json.dumps({"peer_type": "simple"}).encode())
            self.assertEqual((status, json.loads(body)["error"]),
                             (400, {"code": "invalid_domain", "message": "'%s' is not a domain name" % domain}))
            if domain.startswith("-"):
                continue  # impctl takes it for an option (usage error): impd never sees it
            r = self.node.ctl("federation", "peer", "set", domain, "--type", "simple", check=False)
            self.assertEqual((r.returncode, r.stdout), (1, ""), domain)
            self.assertEqual(r.stderr, "impctl: '%s' is not a domain name\n" % domain)
            r = self.node.ctl("--json", "federation", "peer", "set", domain, "--type", "simple", check=False)
            # --json: impd's error document on stderr, then the message
            err, end = json.JSONDecoder().raw_decode(r.stderr)
            self.assertEqual((r.returncode, err["error"]["code"], r.stderr[end:].strip()),
                             (1, "invalid_domain", "impctl: '%s' is not a domain name" % domain))
        # an unknown peer type, for a good domain and a bad one
        for domain in ("good.example", "BAD..DOMAIN"):
            r = self.node.ctl("federation", "peer", "set", domain, "--type", "xmpp", check=False)
            self.assertEqual((r.returncode, r.stderr), (1, "impctl: peer type 'xmpp' is not lync or simple\n"))
            status, body = self.node.http("PUT", "/api/v1/federation/peers/" + domain,
                                          body=json.dumps({"peer_type": "xmpp"}).encode())
            self.assertEqual(status, 400)
            self.assertEqual(json.loads(body)["error"]["code"], "invalid_peer_type")
        r = self.node.ctl("federation", "peer", "delete", "BAD..DOMAIN", check=False)
        self.assertEqual((r.returncode, r.stderr), (1, "impctl: 'BAD..DOMAIN' is not a domain name\n"))
        self.assertEqual(self.node.ctl_json("federation", "peer", "list"), before)
        # the commands still work, and name the domain normalised
        self.assertEqual(self.node.ctl("federation", "peer", "set", "Good.Example", "--type", "simple").stdout,
                         "good.example: peer type simple (changed)\n")
        self.assertIn({"domain": "good.example", "peer_type": "simple"},
                      self.node.ctl_json("federation", "peer", "list")["peers"])
        self.assertEqual(self.node.ctl("federation", "peer", "delete", "good.example").stdout,
                         "good.example: peer type lync (changed)\n")
        self.assertEqual(self.node.ctl_json("federation", "peer", "list"), before)

    async def test_20_bulk_import_pushes_rosters_and_subscribes(self):
        # Issue 18 (MG-7) on the wire: a contact-list import for Amy, who is
        # online, with a Microsoft contact and a local one. Her client gets
        # the roster pushes; the Microsoft contact's availability subscription
        # reaches the Lync pool through the federation connection manager,
        # and the pool's NOTIFY reaches her as presence.
        amy = await self.logged_in("amy", "bulk")
        pushes = asyncio.Queue()
        amy.add_event_handler("roster_update", lambda iq: pushes.put_nowait(iq))
        self.lync.set_presence("carol", ly.AWAY)
        path = os.path.join(self.work, "amy-contacts.csv")
        with open(path, "w") as f:
            f.write("User ID,User Domain,Contact ID,Contact Domain,Nickname,Group Name\n"
                    "amy,example.com,carol,example.com,Carol (Lync),Migrated\n"
                    "amy,example.com,abe,example.com,Abe,Migrated\n")
        job = re.search(r"^job (\d+) ", self.node.ctl("bat", "import", path).stdout, re.M).group(1)
        r = await self.blocking(self.node.ctl, "bat", "job", "wait", job, "--timeout", "60", check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        got = {}
        while len(got) < 2:
            iq = await asyncio.wait_for(pushes.get(), 15)
            for jid, item in iq["roster"]["items"].items():
                got[str(jid)] = item
        # Amy now watches Carol: "to", or "both" where Carol watched her already
        # (earlier tests of this class)
        self.assertEqual(got["carol@example.com"]["name"], "Carol (Lync)")
        self.assertIn(got["carol@example.com"]["subscription"], ("to", "both"))
        self.assertEqual(list(got["abe@example.com"]["groups"]), ["Migrated"])
        await self.blocking(self.lync.wait_subscription, "amy@example.com", "carol@example.com", 15)
        await amy.expect("presence", lambda p: bare(p["from"]) == "carol@example.com" and p["show"] == "away")
        shown = self.node.ctl_json("bat", "job", "show", job)
        self.assertEqual((shown["applied"], shown["users_notified"], shown["users_not_notified"]), (2, 1, 1))

    async def test_21_bulk_rename_moves_the_subscription(self):
        # Issue 18 (MG-9) on the wire: Carol's Lync ID changes. Amy (online,
        # Carol in her roster since test_20) gets the removal and the new
        # item pushed; her subscription to the old ID ends on the Lync pool
        # (SUBSCRIBE with Expires 0) and one to the new ID starts.
        amy = await self.logged_in("amy", "rename")
        await self.blocking(self.lync.wait_subscription, "amy@example.com", "carol@example.com", 15)
        pushes = asyncio.Queue()
        amy.add_event_handler("roster_update", lambda iq: pushes.put_nowait(iq))
        self.lync.set_presence("carol.new", ly.BUSY)
        path = os.path.join(self.work, "carol-rename.csv")
        with open(path, "w") as f:
            f.write("Contact ID,New Contact ID\ncarol@example.com,carol.new@example.com\n")
        job = re.search(r"^job (\d+) ", self.node.ctl("bat", "rename", path).stdout, re.M).group(1)
        r = await self.blocking(self.node.ctl, "bat", "job", "wait", job, "--timeout", "60", check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        got = {}
        while "carol.new@example.com" not in got or "carol@example.com" not in got:
            iq = await asyncio.wait_for(pushes.get(), 15)
            for jid, item in iq["roster"]["items"].items():
                got[str(jid)] = item
        self.assertEqual(got["carol@example.com"]["subscription"], "remove")
        self.assertEqual(got["carol.new@example.com"]["name"], "Carol (Lync)")
        await self.blocking(self.lync.wait_subscription_ended, "amy@example.com", "carol@example.com", 15)
        await self.blocking(self.lync.wait_subscription, "amy@example.com", "carol.new@example.com", 15)
        await amy.expect("presence", lambda p: bare(p["from"]) == "carol.new@example.com" and p["show"] == "dnd")
        shown = self.node.ctl_json("bat", "job", "show", job)
        self.assertGreaterEqual(shown["applied"], 1)

    async def test_99_lync_record_route_kept_byte_exact(self):
        # [MS Transport] Lync's Record-Route carries ms-key-info / ms-route-sig:
        # every in-dialog request IMP sent in the tests above (NOTIFY, refresh,
        # MESSAGE, INFO, BYE) named it byte-exact as its top Route
        in_dialog = [r for r in self.lync.requests() if ";tag=" in (r.get("To") or "") and r.method != "ACK"]
        self.assertGreater(len(in_dialog), 20)
        self.assertEqual(self.lync.route_errors, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
