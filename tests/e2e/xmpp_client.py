"""A slixmpp (python3-slixmpp, Debian) client for the XMPP end-to-end tests.

Everything the server sends lands in per-kind asyncio queues; a test waits
for the stanza it expects with expect(), bounded by a timeout that fails the
test and names what arrived instead. No sleeps: every wait is on an event.
The client never answers subscription requests on its own (the tests decide),
and logs in with SCRAM-SHA-256 only, so a server that cannot do it fails.
"""
import asyncio
import ssl
import unittest

import slixmpp

TIMEOUT = 20  # seconds; a bound on each wait, never a delay


class Client(slixmpp.ClientXMPP):
    def __init__(self, server, user, resource, mechanisms=("SCRAM-SHA-256",), password=None, sm=False,
                 stream_errors_fail=True):
        super().__init__(server.jid(user, resource), password if password is not None else server.password(user),
                         sasl_mech=None)
        self.xs = server
        self.user = user
        self.ca_certs = server.ca_file
        ctx = ssl.create_default_context(cafile=server.ca_file)
        ctx.check_hostname = True  # the certificate must name the domain
        self.ssl_context = ctx
        self["feature_mechanisms"].use_mechs = set(mechanisms)
        for p in ("xep_0030", "xep_0085", "xep_0191", "xep_0199", "xep_0280"):
            self.register_plugin(p)
        if sm:
            self.register_plugin("xep_0198")
            self["xep_0198"].allow_resume = True
        self.roster.auto_authorize = None   # subscription requests wait for the test's answer
        self.roster.auto_subscribe = False
        self.queues = {k: asyncio.Queue() for k in ("message", "chatstate", "presence", "subscribe", "subscribed",
                                                      "unsubscribed", "carbon_received", "carbon_sent")}
        self.session = asyncio.get_event_loop().create_future()
        self.mechanism = None
        self.offered_mechanisms = None
        self.tls_version = None
        self.add_event_handler("session_start", self._started)
        self.add_event_handler("session_resumed", self._resumed)
        self.add_event_handler("failed_auth", lambda e: self._fail("failed_auth: %s" % e))
        self.add_event_handler("failed_all_auth", lambda e: self._fail("failed_all_auth"))
        if stream_errors_fail:  # else the test handles them (e.g. see-other-host, which slixmpp follows)
            self.add_event_handler("stream_error", lambda e: self._fail("stream error: %s" % e))
        self.add_event_handler("connection_failed", lambda e: self._fail("connection failed: %s" % e))
        self.add_event_handler("ssl_invalid_chain", lambda e: self._fail("TLS chain not trusted: %s" % e))
        self.add_event_handler("auth_success", self._auth_success)
        self.add_event_handler("message", lambda m: self._put_message(m))
        self.add_event_handler("carbon_received", lambda m: self.queues["carbon_received"].put_nowait(m))
        self.add_event_handler("carbon_sent", lambda m: self.queues["carbon_sent"].put_nowait(m))
        for k in ("subscribe", "subscribed", "unsubscribed"):
            self.add_event_handler("presence_" + k, lambda p, k=k: self.queues[k].put_nowait(p))
        # slixmpp names the event of an available presence after its <show/>
        # (presence_away, presence_dnd, ...): every one goes to "presence".
        for k in ("available", "unavailable", "chat", "away", "xa", "dnd"):
            self.add_event_handler("presence_" + k, lambda p: self.queues["presence"].put_nowait(p))
        self.add_event_handler("chatstate", lambda m: self.queues["chatstate"].put_nowait(m))
        self.register_handler(slixmpp.xmlstream.handler.Callback(
            "sasl mechanisms", slixmpp.xmlstream.matcher.MatchXPath(
                "{http://etherx.jabber.org/streams}features/{urn:ietf:params:xml:ns:xmpp-sasl}mechanisms"),
            self._mechs))

    def _mechs(self, features):
        self.offered_mechanisms = [m.text for m in features.xml.iter("{urn:ietf:params:xml:ns:xmpp-sasl}mechanism")]

    def _put_message(self, m):
        if m["body"] or m["type"] == "error":
            self.queues["message"].put_nowait(m)

    def _fail(self, why):
        if not self.session.done():
            self.session.set_exception(AssertionError("%s could not log in: %s" % (self.boundjid, why)))

    def _auth_success(self, _):
        self.mechanism = self["feature_mechanisms"].mech.name
        if self.socket is not None and hasattr(self.socket, "version"):
            self.tls_version = self.socket.version()

    async def _started(self, _):
        await self.get_roster(timeout=TIMEOUT)
        if not self.session.done():
            self.session.set_result("started")

    def _resumed(self, _):
        if not self.session.done():
            self.session.set_result("resumed")

    async def login(self, direct_tls=False, presence=True, timeout=TIMEOUT):
        """Connects (STARTTLS, or direct TLS), waits for the session; sends
        initial presence unless told not to. Returns how the session began."""
        if self.session.done():
            self.session = asyncio.get_event_loop().create_future()
        port = self.xs.tls_port if direct_tls else self.xs.port
        self.connect((self.xs.host, port), use_ssl=direct_tls, force_starttls=not direct_tls)
        how = await asyncio.wait_for(self.session, timeout)
        if presence and how == "started":
            self.send_presence()
        return how

    async def drop(self):
        """Cuts the TCP connection as a client losing its network would, with
        no closing </stream:stream>."""
        fut = self.disconnected
        self.transport.abort()
        await asyncio.wait_for(fut, TIMEOUT)

    async def roster_items(self):
        """The whole roster from the server (RFC 6121 §2.1.3, no 'ver' so
        never the empty versioned answer): {bare JID: item attributes}."""
        iq = self.Iq()
        iq["type"] = "get"
        iq.enable("roster")
        result = await iq.send(timeout=TIMEOUT)
        return {str(j): v for j, v in result["roster"]["items"].items()}

    async def logout(self):
        if self.transport is not None:
            self.disconnect()
            await asyncio.wait_for(self.disconnected, TIMEOUT)

    async def expect(self, kind, pred=lambda s: True, timeout=TIMEOUT, what=None):
        """The next stanza of `kind` matching pred; stanzas that do not match are
        kept in `skipped`. Fails the test when none comes within `timeout`."""
        q = self.queues[kind]
        skipped = []
        loop = asyncio.get_event_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            try:
                s = await asyncio.wait_for(q.get(), max(left, 0))
            except asyncio.TimeoutError:
                raise AssertionError("%s: no %s %s within %d s; got instead: %s" % (
                    self.boundjid, kind, what or "", timeout, [str(x) for x in skipped])) from None
            if pred(s):
                return s
            skipped.append(s)

    def presence_of(self, jid):
        """Predicate: presence stanzas from jid's bare JID."""
        bare = slixmpp.JID(jid).bare
        return lambda p: p["from"].bare == bare


class XmppTestCase(unittest.IsolatedAsyncioTestCase):
    """Test case base: `server` is set by setUpClass (xmpp_server.start_server);
    client() makes a Client logged out at the end of the test."""

    async def asyncSetUp(self):
        asyncio.get_running_loop().set_debug(False)  # TLS handshakes are slow callbacks, not faults

    async def client(self, user, resource, **kw):
        c = Client(self.server, user, resource, **kw)
        self.addAsyncCleanup(c.logout)
        return c

    async def logged_in(self, user, resource="r1", **kw):
        """client(), logged in (available presence sent)."""
        c = await self.client(user, resource, **kw)
        await c.login()
        return c

    async def blocking(self, fn, *a, **kw):
        """fn(*a, **kw) on a thread (a test peer's waits block)."""
        return await asyncio.to_thread(fn, *a, **kw)
