"""Tests of the Lync emulator itself: two emulators with certificates from
one test CA play against each other, one as the Lync pool (example.com),
the other in IMP's place (imp.example). Every wait is on an event.

    cd tests/peers && /usr/bin/python3 test_lync_emulator.py
"""
import os
import shutil
import socket
import ssl
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import free_port  # noqa: E402
from lync_emulator import (APPEAR_OFFLINE, AVAILABLE, AVAILABLE_IDLE, AWAY, BRB, BUSY, DND, OFFLINE,  # noqa: E402
                           LyncEmulator, Pidf, availability_class, lync_pidf)
from sippeer import TestCa  # noqa: E402


class PidfDocument(unittest.TestCase):
    def test_availability_numbers_and_activities(self):
        cases = [(AVAILABLE, None, "open", [], "available"),
                 (AVAILABLE_IDLE, None, "open", [], "available-idle"),
                 (BUSY, "on-the-phone", "open", ["busy", "on-the-phone"], "busy"),
                 (DND, "urgent-interruptions-only", "open", ["busy", "other:urgent-interruptions-only"],
                  "do-not-disturb"),
                 (BRB, None, "open", ["away"], "be-right-back"),
                 (AWAY, "in-a-meeting", "open", ["away", "meeting"], "away"),
                 (APPEAR_OFFLINE, None, "closed", [], "offline"),
                 (OFFLINE, "on-the-phone", "closed", [], "offline")]
        for availability, activity, basic, activities, cls in cases:
            p = Pidf.parse(lync_pidf("bob@example.com", availability, activity, "at <lunch> & back"))
            self.assertIsNone(p.error)
            self.assertEqual((p.basic, p.activities, p.availability, p.note),
                             (basic, activities, availability, "at <lunch> & back"), availability)
            self.assertEqual(availability_class(availability), cls)

    def test_defensive_parse(self):
        self.assertEqual(Pidf.parse("<presence").error is not None, True)
        p = Pidf.parse('<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><x:y xmlns:x="urn:x"/>'
                       '<tuple id="a"><status><basic> OPEN </basic></status></tuple></presence>')
        self.assertEqual((p.basic, p.activities, p.note, p.availability), ("open", [], None, None))


class LyncAgainstLync(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="lync-emu-")
        cls.addClassCleanup(shutil.rmtree, cls.work, ignore_errors=True)
        cls.ca = TestCa(cls.work)
        cls.lync_cert = cls.ca.issue("lync.example.com")
        cls.imp_cert = cls.ca.issue("imp.example")

    def setUp(self):
        lync_port, imp_port = free_port(), free_port()
        self.lync = LyncEmulator(self.ca, self.lync_cert, "127.0.0.1", imp_port, port=lync_port,
                                 users=["bob", "carol", "dave"]).start()
        self.addCleanup(self.lync.stop)
        self.imp = LyncEmulator(self.ca, self.imp_cert, "127.0.0.1", lync_port, domain="imp.example",
                                port=imp_port).start()
        self.addCleanup(self.imp.stop)

    def tearDown(self):
        if any(o for o in self._outcome.result.errors + self._outcome.result.failures if o[0] is self):
            print("\n--- lync ladder:\n" + "\n".join(self.lync.ladder()) +
                  "\n--- imp ladder:\n" + "\n".join(self.imp.ladder()))

    def test_subscribe_notify_refresh_unsubscribe(self):
        self.lync.set_presence("bob", AVAILABLE, note="in the office")
        sub = self.imp.subscribe("alice", "bob@example.com", accept=("application/pidf+xml",))
        self.assertEqual(self.imp.final_status(sub), 200)
        n = self.imp.wait_notify(sub, lambda n: n.state == "active")
        self.assertEqual((n.pidf.basic, n.pidf.availability, n.pidf.note, n.expires),
                         ("open", AVAILABLE, "in the office", 7446))
        self.assertEqual(n.content_type, "application/pidf+xml")
        s = self.lync.wait_subscription("alice@imp.example", "bob", state="active")
        self.assertEqual((s.expires, s.refreshes), (7446, 0))
        subscribe = self.lync.requests("SUBSCRIBE")[0]
        self.assertEqual((subscribe.get("Event"), subscribe.get("Expires")), ("presence", "7446"))

        seen = len(self.imp.notifies(sub))
        self.lync.set_presence("bob", BUSY, activity="on-the-phone")
        n = self.imp.wait_notify(sub, lambda n: n.pidf.availability == BUSY, since=seen)
        self.assertEqual(n.pidf.activities, ["busy", "on-the-phone"])

        self.assertEqual(self.imp.refresh(sub), 200)
        self.lync.wait_subscription("alice@imp.example", "bob", min_refreshes=1)
        self.assertEqual(self.imp.unsubscribe(sub), 200)
        n = self.imp.wait_notify(sub, lambda n: n.state == "terminated")
        self.assertIsNone(n.reason)
        self.assertEqual(sub.state, "terminated")
        ended = self.lync.wait_subscription_ended("alice@imp.example", "bob")
        self.assertEqual((ended.state, ended.refreshes), ("terminated", 1))
        ladder = self.lync.ladder()
        self.assertIn("← SUBSCRIBE sip:bob@example.com", ladder)
        self.assertIn("← 200 OK (NOTIFY)", ladder)

    def test_every_watcher_gets_the_change_and_appear_offline_is_offline(self):
        self.lync.set_presence("carol", AWAY)
        subs = [self.imp.subscribe(w, "carol@example.com") for w in ("alice", "eve")]
        for sub in subs:
            self.imp.wait_notify(sub, lambda n: n.pidf.availability == AWAY and n.pidf.activities == ["away"])
        self.lync.set_presence("carol", APPEAR_OFFLINE)
        for sub in subs:
            n = self.imp.wait_notify(sub, lambda n: n.pidf.availability == APPEAR_OFFLINE)
            self.assertEqual((n.pidf.basic, n.state), ("closed", "active"))

    def test_refused_subscriptions(self):
        sub = self.imp.subscribe("alice", "bob@example.com", expires=60)
        self.assertEqual(self.imp.final_status(sub), 423)
        self.assertEqual(self.imp.last_response("SUBSCRIBE").get("Min-Expires"), "1200")
        self.assertEqual(self.imp.final_status(self.imp.subscribe("alice", "bob@example.com", expires=50000)), 423)
        sub = self.imp.subscribe("alice", "nobody@example.com")
        self.assertEqual(self.imp.final_status(sub), 404)
        self.assertIn('4005;reason="Destination URI either not enabled for SIP or does not exist";'
                      'source="lync.example.com"', self.imp.last_response("SUBSCRIBE").get("ms-diagnostics"))
        self.lync.set_policy("dave", "reject")
        self.assertEqual(self.imp.final_status(self.imp.subscribe("alice", "dave@example.com")), 403)
        self.assertEqual(self.lync.subscriptions(), [])

    def test_pending_then_approve_and_polite_block(self):
        self.lync.set_presence("bob", DND)
        self.lync.set_policy("bob", "pending")
        sub = self.imp.subscribe("alice", "bob@example.com")
        n = self.imp.wait_notify(sub, lambda n: n.state == "pending")
        self.assertEqual(n.pidf.raw, "")
        self.lync.approve("bob", "alice@imp.example")
        n = self.imp.wait_notify(sub, lambda n: n.state == "active")
        self.assertEqual((n.pidf.availability, n.pidf.activities), (DND, ["busy"]))
        # the approval is permanent: a new subscription is active at once
        again = self.imp.subscribe("alice", "bob@example.com")
        self.imp.wait_notify(again, lambda n: n.state == "active")

        self.lync.set_policy("bob", "block", watcher="mallory@imp.example")
        blocked = self.imp.subscribe("mallory", "bob@example.com")
        n = self.imp.wait_notify(blocked, lambda n: n.state == "active")
        self.assertEqual((n.pidf.basic, n.pidf.availability), ("closed", OFFLINE))

    def test_expiry_without_refresh(self):
        self.lync.min_expires = 1
        sub = self.imp.subscribe("alice", "bob@example.com", expires=1)
        self.imp.wait_notify(sub, lambda n: n.state == "active" and n.expires == 1)
        n = self.imp.wait_notify(sub, lambda n: n.state == "terminated", timeout=5)
        self.assertEqual(n.reason, "timeout")
        self.assertEqual(self.lync.wait_subscription_ended("alice@imp.example", "bob").reason, "timeout")

    def test_terminated_with_reason(self):
        sub = self.imp.subscribe("alice", "bob@example.com")
        self.imp.wait_notify(sub, lambda n: n.state == "active")
        self.assertEqual(self.lync.terminate_subscriptions("bob", reason="deactivated"), 1)
        n = self.imp.wait_notify(sub, lambda n: n.state == "terminated")
        self.assertEqual(n.reason, "deactivated")
        self.assertEqual(self.lync.wait_subscription_ended("alice@imp.example", "bob").reason, "deactivated")

    def test_lync_user_watches_imp_user(self):
        """The other direction: the pool's user subscribes, the peer's users answer."""
        self.imp.set_presence("alice", BUSY, note="coding")
        sub = self.lync.subscribe("bob", "alice@imp.example", supported=("ms-piggyback-first-notify",))
        self.assertEqual(self.lync.final_status(sub), 200)
        n = self.lync.wait_notify(sub, lambda n: n.state == "active")
        self.assertEqual((n.pidf.basic, n.pidf.note), ("open", "coding"))
        subscribe = self.imp.requests("SUBSCRIBE")[0]
        self.assertEqual(subscribe.get("Accept"), "application/xpidf+xml, text/xml+msrtc.pidf, "
                         "application/pidf+xml, application/msrtc-event-categories+xml")
        self.assertRegex(subscribe.get("From"), r"^<sip:bob@example\.com>;tag=\w+;epid=\w+$")
        self.assertEqual(subscribe.get("User-Agent"), "UCCAPI/15.0.4569.1503 OC/15.0.4569.1503 (Microsoft Lync)")

    def test_im_session_both_ways_with_typing_and_bye(self):
        self.assertEqual(self.imp.send_im("alice", "bob@example.com", "hello :)"), 200)
        im = self.lync.wait_im("bob", "hello :)")
        self.assertEqual((im.sender, im.mode), ("alice@imp.example", "session"))
        invite = self.lync.requests("INVITE")[0]
        self.assertIn("m=message 5060 sip null", invite.text())
        self.assertIn("ms-sender", invite.tokens("Supported"))
        self.assertTrue(invite.get("Ms-Conversation-ID"))
        self.assertRegex(im.message.get("Content-Type"), r"^text/plain; charset=UTF-8;msgr=")
        [d] = self.lync.dialogs()
        self.assertEqual((d.local, d.remote, d.initiator), ("bob@example.com", "alice@imp.example", "remote"))

        self.assertEqual(self.imp.send_typing("alice", "bob@example.com"), 200)
        self.assertEqual(self.lync.wait_typing("bob").kind, "keyboard")
        self.assertEqual(self.imp.send_typing("alice", "bob@example.com", typing=False), 200)
        self.lync.wait_typing("bob", typing=False)
        self.assertEqual(self.imp.send_iscomposing("alice", "bob@example.com", method="INFO"), 200)
        self.assertEqual(self.lync.typing_events("bob")[-1].kind, "iscomposing")

        # the answer travels in the same dialog, no second INVITE
        self.assertEqual(self.lync.send_im("bob", "alice@imp.example", "hi alice"), 200)
        self.assertEqual(self.imp.wait_im("alice", "hi alice").call_id, d.call_id)
        self.assertEqual(len(self.imp.requests("INVITE")) + len(self.lync.requests("INVITE")), 1)
        self.assertEqual(self.lync.received_messages("bob")[0].text, "hello :)")

        self.assertEqual(self.imp.bye("alice", "bob@example.com"), 200)
        self.lync.wait_bye("bob", "alice@imp.example")
        self.assertEqual((self.lync.dialogs(), self.imp.dialogs()), ([], []))
        # [MS Transport] both pools record-routed with signed parameters, and
        # every in-dialog request carried the other's entry byte-exact
        self.assertIn("ms-route-sig=", invite.get("Record-Route"))
        self.assertIn(self.lync.record_route(), self.imp.last_response("INVITE").get_all("Record-Route"))
        self.assertEqual((self.lync.route_errors, self.imp.route_errors), ([], []))

    def test_text_in_the_invite(self):
        self.assertEqual(self.imp.send_im("alice", "carol@example.com", "über", with_text_format=True), 200)
        self.assertEqual(self.lync.wait_im("carol", "über").mode, "invite")
        self.assertEqual(self.lync.requests("MESSAGE"), [])
        # without Supported: ms-text-format in the 200 the text goes again as MESSAGE
        self.lync.set_im_behaviour("dave", ms_text_format=False)
        self.assertEqual(self.imp.send_im("alice", "dave@example.com", "twice?", with_text_format=True), 200)
        self.assertEqual([m.mode for m in self.lync.received_messages("dave")], ["session"])

    def test_dead_dialog_refused_invite_and_group_chat(self):
        self.assertEqual(self.imp.send_im("alice", "carol@example.com", "one"), 200)
        self.lync.set_im_behaviour("carol", message_status=481)
        self.assertEqual(self.imp.send_im("alice", "carol@example.com", "two"), 481)
        self.assertEqual((self.imp.dialogs(), self.lync.dialogs()), ([], []))
        self.lync.set_im_behaviour("carol")
        self.assertEqual(self.imp.send_im("alice", "carol@example.com", "three"), 200)
        self.assertEqual(len(self.lync.requests("INVITE")), 2)
        self.assertEqual([m.text for m in self.lync.received_messages("carol")], ["one", "three"])

        self.lync.set_im_behaviour("dave", invite_status=480, diagnostics='15;reason="user offline"')
        self.assertEqual(self.imp.send_im("alice", "dave@example.com", "anyone?"), 480)
        self.assertEqual(self.imp.last_response("INVITE").get("ms-diagnostics"), '15;reason="user offline"')
        self.lync.wait_request("ACK")
        self.assertEqual(self.imp.send_im("alice", "zed@example.com", "?"), 404)
        self.assertEqual(self.imp.invite_multiparty("alice", "bob@example.com"), 420)

    def test_page_mode_and_unsupported_content(self):
        self.assertEqual(self.imp.send_page_message("alice", "bob@example.com", "paged"), 200)
        self.assertEqual(self.lync.wait_im("bob", "paged").mode, "page")
        self.assertEqual(self.imp.send_im("alice", "bob@example.com", "x"), 200)
        self.assertEqual(self.imp.send_in_dialog("alice", "bob@example.com", "MESSAGE", "application/octet-stream",
                                                 b"\0"), 415)
        self.assertEqual(self.lync.last_response("MESSAGE"), None)
        self.assertEqual(self.imp.last_response("MESSAGE").get("Accept"),
                         "text/plain, text/html, multipart/alternative, application/im-iscomposing+xml")
        self.assertEqual(self.imp.send_in_dialog("alice", "bob@example.com", "MESSAGE", "text/html", "<b>bold</b>"),
                         200)
        self.assertEqual(self.lync.wait_im("bob", "<b>bold</b>").content_type, "text/html")

    def test_send_request_gives_the_whole_answer(self):
        r = self.imp.send_request("alice", "bob@example.com", "SUBSCRIBE",
                                  [("Event", "dialog"), ("Accept", "application/dialog-info+xml"), ("Expires", "60")])
        self.assertEqual((r.status, r.get("Allow-Events")), (489, "presence"))
        sub = self.lync.requests("SUBSCRIBE")[-1]
        self.assertEqual((sub.get("Event"), sub.get("Expires"), sub.get("Content-Type")), ("dialog", "60", None))
        self.assertTrue(sub.get("Record-Route") and "epid=" in sub.get("From"))
        r = self.imp.send_request("alice", "bob@example.com", "MESSAGE", content_type="application/octet-stream",
                                  body=b"\0", in_dialog=True)
        self.assertEqual((r.status, r.get("Accept")),
                         (415, "text/plain, text/html, multipart/alternative, application/im-iscomposing+xml"))
        self.assertEqual(len(self.lync.requests("INVITE")), 1)
        self.assertEqual(self.imp.send_request("alice", "bob@example.com", "MESSAGE", [("Subject", "x")],
                                               "text/plain", "in the dialog", in_dialog=True).status, 200)
        m = self.lync.wait_im("bob", "in the dialog")
        self.assertEqual((m.mode, m.message.get("Subject")), ("session", "x"))
        self.assertEqual(self.imp.send_request("alice", "bob@example.com", "MESSAGE", (), "text/plain", "paged").status,
                         200)
        self.assertEqual(self.lync.wait_im("bob", "paged").mode, "page")

    def test_options(self):
        self.assertEqual(self.imp.send_options(), 200)
        self.assertEqual(self.lync.send_options(), 200)

    def test_restart_drops_dialogs_and_subscriptions(self):
        sub = self.imp.subscribe("alice", "bob@example.com")
        self.imp.wait_notify(sub, lambda n: n.state == "active")
        self.assertEqual(self.imp.send_im("alice", "bob@example.com", "before"), 200)
        self.lync.restart()
        self.imp.wait_no_connections()
        self.assertEqual(self.imp.refresh(sub), 481)
        self.assertEqual(sub.state, "terminated")
        self.assertEqual(self.imp.send_im("alice", "bob@example.com", "lost"), 481)
        self.assertEqual(self.imp.send_im("alice", "bob@example.com", "after"), 200)
        self.lync.wait_im("bob", "after")
        again = self.imp.subscribe("alice", "bob@example.com")
        self.imp.wait_notify(again, lambda n: n.state == "active")
        self.assertIn("-- restart --", self.lync.ladder())

    def test_unreachable(self):
        self.assertEqual(self.imp.send_options(), 200)
        self.lync.set_reachable(False)
        self.assertIsNone(self.imp.send_options(timeout=0.5))  # on the open connection: no answer
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.lync.port), timeout=2).close()
        self.assertIsNone(self.lync.send_options())  # and the pool sends nothing
        self.lync.set_reachable(True)
        self.assertEqual(self.imp.send_options(), 200)
        self.lync.set_reachable(False, close_connections=True)
        self.imp.wait_no_connections()
        self.assertIsNone(self.imp.send_options(timeout=0.5))  # refused
        self.lync.set_reachable(True)
        self.assertEqual(self.imp.send_options(), 200)

    def test_mutual_tls(self):
        self.assertEqual(self.imp.send_options(), 200)
        self.assertEqual([(d, cn) for d, _, cn in self.lync.connections()], [("in", "imp.example")])
        self.assertEqual([(d, cn) for d, _, cn in self.imp.connections()], [("out", "lync.example.com")])
        # a client without a certificate does not get through the handshake
        s = socket.create_connection(("127.0.0.1", self.lync.port), timeout=5)
        try:
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                s = self.ca.client_context().wrap_socket(s)  # TLS 1.3: the server's refusal comes after
                s.sendall(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n")
                if not s.recv(100):
                    raise ConnectionError("closed")
        finally:
            s.close()
        self.assertTrue(any("TLS handshake from" in line and "failed" in line for line in self.lync.ladder()))

    def test_requests_from_the_pool_use_the_peer_listener_when_asked(self):
        """reuse_incoming=False: requests go over a connection the pool opens."""
        self.lync.reuse_incoming = False
        sub = self.imp.subscribe("alice", "bob@example.com")
        self.imp.wait_notify(sub, lambda n: n.state == "active")
        self.assertEqual(sorted(d for d, _, _ in self.lync.connections()), ["in", "out"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
