"""impd stopped (SIGTERM) while clients are connected (issue 16: a stop with
1,000 connected clients crashed impd with "double free or corruption": the
connection manager was destroyed while its loop still drained the streams
it had told to close).

Hundreds of streams in every state at once: plain streams that only sent a
header, streams that did STARTTLS, and logged-in sessions of a real client
(one of them resumable, XEP-0198). Half of the plain streams close their
end as soon as the stream error arrives (as a client does), from another
thread, while impd stops; the others neither read nor close, so they are
still draining when the service stops. Each stream must receive the
`system-shutdown` stream error (RFC 6120 §4.9.3.17) and be closed, and impd
must exit 0 with no crash report (the sanitizer build reports a use after
free here).

impd only: it is impd's process that is stopped."""
import re
import selectors
import signal
import threading
import time
import unittest

import xmpp_server
from xmpp_client import XmppTestCase
from xmpp_raw import RawStream

PLAIN_STREAMS = 300
TLS_STREAMS = 100


def close_on_stream_end(streams, seen, timeout=60):
    """Reads each raw stream until its end tag or EOF, then closes it at once;
    seen[stream] = the text received."""
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in streams:
        s.sock.setblocking(False)
        sel.register(s.sock, selectors.EVENT_READ, s)
        bufs[s] = s.buf
    deadline = time.monotonic() + timeout
    while bufs and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.data
            try:
                chunk = s.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            bufs[s] += chunk
            if not chunk or b"</stream:stream>" in bufs[s]:
                sel.unregister(s.sock)
                s.sock.close()
                seen[s] = bufs.pop(s).decode(errors="replace")


class XmppShutdown(XmppTestCase):
    @classmethod
    def setUpClass(cls):
        if xmpp_server.kind() != "impd":
            raise unittest.SkipTest("stopping the server process is impd's test; %s is not stopped here" %
                                    xmpp_server.kind())
        cls.server = xmpp_server.start_server(cls)
        cls.server.add_user("ann", "ann-Right-Password")

    async def test_stop_with_connected_clients(self):
        node = self.server.node
        sessions = []
        for resource, sm in (("desk", False), ("phone", True)):
            c = await self.client("ann", resource, sm=sm, stream_errors_fail=False)
            self.assertEqual(await c.login(), "started")
            sessions.append(c)
        listed = node.ctl_json("session", "list", "--user", "ann")
        self.assertEqual(len(listed["sessions"]), 2, listed)

        raw = []
        try:
            for i in range(PLAIN_STREAMS + TLS_STREAMS):
                s = RawStream(self.server)
                raw.append(s)
                features = s.open()
                self.assertIn("starttls", features)
                if i >= PLAIN_STREAMS:
                    s.starttls()
                    s.open()
            polite = raw[:PLAIN_STREAMS // 2]
            seen = {}
            closer = threading.Thread(target=close_on_stream_end, args=(polite, seen))
            closer.start()
            # Every stream is open and idle: stop impd now.
            node.proc.send_signal(signal.SIGTERM)
            rc = node.proc.wait(timeout=60)
            closer.join(timeout=60)
            self.assertFalse(closer.is_alive(), "the polite clients did not all see their stream end")
            stderr = node.proc.stderr.read().decode(errors="replace")
            self.assertEqual(rc, 0, "impd exit status on SIGTERM with %d streams open; stderr:\n%s" %
                             (len(raw), stderr[-3000:]))
            self.assertIsNone(re.search(r"double free|corrupted|AddressSanitizer|runtime error", stderr),
                              stderr[-3000:])
            conditions = {}
            for s in raw:
                if s in seen:
                    m = re.search(r"<stream:error><([a-z-]+)", seen[s])
                    cond = m.group(1) if m else "none in %r" % seen[s][-300:]
                else:
                    cond, _ = s.stream_error()
                conditions[cond] = conditions.get(cond, 0) + 1
            self.assertEqual(conditions, {"system-shutdown": PLAIN_STREAMS + TLS_STREAMS})
        finally:
            for s in raw:
                s.close()


if __name__ == "__main__":
    xmpp_server.main()
