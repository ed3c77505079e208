"""simple_ua.py against the Kamailio presence server of
tests/e2e/kamailio/presence.cfg, without IMP: two users of simple.example
register, publish, watch each other and exchange page-mode messages. Exit
code 77 when Kamailio or its presence module is not installed."""
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simple_ua as su  # noqa: E402
from kamailio_presence import Kamailio, missing_kamailio  # noqa: E402


class SimpleUaSelfTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = missing_kamailio()
        if why:
            raise unittest.SkipTest(why)
        cls.work = tempfile.mkdtemp(prefix="imp-simple-ua-")
        cls.addClassCleanup(shutil.rmtree, cls.work, ignore_errors=True)
        # nothing here goes to another domain: the IMP port is never used
        cls.kamailio = Kamailio(cls.work, 9).start()
        cls.addClassCleanup(cls.kamailio.stop)
        cls.ua = su.SimpleUA("127.0.0.1", cls.kamailio.port, "simple.example")
        cls.addClassCleanup(cls.ua.stop)
        for u in ("kim", "lee"):
            assert cls.ua.register(u) == 200

    def test_presence(self):
        self.assertEqual(self.ua.publish("kim", "open", note="hello ü", activity="busy"), 200)
        sub = self.ua.subscribe("lee", "kim")
        self.assertEqual(sub.status, 200)
        n = self.ua.wait_notify(sub, lambda n: n.pidf is not None, 10)
        self.assertEqual((n.state, n.pidf.basic, n.pidf.note, n.pidf.activities), ("active", "open", "hello ü", ["busy"]))
        # a refresh of the same publication (SIP-If-Match)
        self.assertEqual(self.ua.publish("kim", "closed", note="bye"), 200)
        n = self.ua.wait_notify(sub, lambda n: n.pidf is not None and n.pidf.basic == "closed", 10)
        self.assertEqual(n.pidf.note, "bye")
        self.assertEqual(self.ua.unsubscribe(sub), 200)
        self.ua.wait_notify(sub, lambda n: n.state == "terminated", 10)

    def test_messages(self):
        self.assertEqual(self.ua.send_message("lee", "kim@simple.example", "héllo ✓"), 200)
        m = self.ua.wait_message("kim", lambda m: m.text == "héllo ✓", 10)
        self.assertEqual((m.sender, m.content_type, m.composing), ("lee@simple.example", "text/plain", None))
        self.assertEqual(self.ua.send_composing("lee", "kim@simple.example", "active"), 200)
        m = self.ua.wait_message("kim", lambda m: m.composing is not None, 10)
        self.assertEqual((m.composing, m.content_type), ("active", "application/im-iscomposing+xml"))
        self.assertEqual(self.ua.send_message("lee", "nobody@simple.example", "anyone?"), 404)
        self.assertTrue(any("<- MESSAGE sip:kim@127.0.0.1" in line for line in self.ua.ladder()))


if __name__ == "__main__":
    why = missing_kamailio()
    if why:
        print("SKIP: " + why)
        sys.exit(77)
    unittest.main(verbosity=2)
