"""A second, independent client stack (issue 16, "Tests with real clients"):
@xmpp/client (npm, vendored by tests/e2e/node/package-lock.json, run by
Node) exchanges presence subscriptions, presence and messages with a
slixmpp user, both over STARTTLS with certificates checked against the
test CA. @xmpp/client 0.14 has SCRAM-SHA-1 and PLAIN (no SCRAM-SHA-256):
the mechanism it used is checked to be one of those, over TLS."""
import asyncio
import json
import os
import shutil
import subprocess

import xmpp_server
from xmpp_client import TIMEOUT, XmppTestCase

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
NODE = shutil.which("node") or "/usr/bin/node"


def ensure_node_modules():
    """npm ci from the lock file unless the same install is already there
    (offline-safe: no network when node_modules matches the lock)."""
    lock = os.path.join(NODE_DIR, "package-lock.json")
    installed = os.path.join(NODE_DIR, "node_modules", ".package-lock.json")
    if os.path.exists(installed) and os.path.exists(os.path.join(NODE_DIR, "node_modules", "@xmpp", "client")):
        with open(lock) as a, open(installed) as b:
            if json.load(a).get("packages", {}).get("node_modules/@xmpp/client") == \
                    json.load(b).get("packages", {}).get("node_modules/@xmpp/client"):
                return
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=600)
    if r.returncode != 0:
        raise AssertionError("npm ci in %s failed: %s" % (NODE_DIR, r.stdout[-2000:]))


class NodePeer:
    """peer.mjs as a subprocess; its JSON events land in a queue."""

    def __init__(self, proc):
        self.proc = proc
        self.events = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, server, user, resource):
        env = dict(os.environ, XMPP_SERVICE="xmpp://%s:%d" % (server.host, server.port), XMPP_DOMAIN=server.domain,
                   XMPP_USER=user, XMPP_PASSWORD=server.password(user), XMPP_RESOURCE=resource,
                   NODE_EXTRA_CA_CERTS=server.ca_file)
        proc = await asyncio.create_subprocess_exec(NODE, os.path.join(NODE_DIR, "peer.mjs"), cwd=NODE_DIR, env=env,
                                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return cls(proc)

    async def _read(self):
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                self.events.put_nowait({"event": "exit"})
                return
            self.events.put_nowait(json.loads(line))

    def command(self, **c):
        self.proc.stdin.write((json.dumps(c) + "\n").encode())

    async def expect(self, event, pred=lambda e: True, what=""):
        seen = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:
            try:
                e = await asyncio.wait_for(self.events.get(), max(deadline - loop.time(), 0))
            except asyncio.TimeoutError:
                raise AssertionError("@xmpp/client: no %s %s within %d s; got %s" % (event, what, TIMEOUT, seen)) \
                    from None
            if e["event"] == "error" or e["event"] == "exit":
                raise AssertionError("@xmpp/client: %s (before that: %s)" % (e, seen))
            if e["event"] == event and pred(e):
                return e
            seen.append(e)

    async def stop(self):
        if self.proc.returncode is None:
            self.command(cmd="stop")
            try:
                await asyncio.wait_for(self.proc.wait(), TIMEOUT)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.reader.cancel()


class XmppInteropNode(XmppTestCase):
    @classmethod
    def setUpClass(cls):
        ensure_node_modules()
        cls.server = xmpp_server.start_server(cls)
        cls.server.add_user("nina", "nina-Node-Secret")
        cls.server.add_user("sam", "sam-Slix-Secret")

    async def test_01_xmpp_client_and_slixmpp_exchange_presence_and_messages(self):
        self.server.set_auto_approve(False)
        sam = await self.client("sam", "slix")
        await sam.login()
        nina = await NodePeer.start(self.server, "nina", "node")
        self.addAsyncCleanup(nina.stop)
        online = await nina.expect("online")
        self.assertEqual(online["jid"], "nina@example.com/node")
        print("\n@xmpp/client logged in with %s over %s" % (online["mechanism"], online["tls"]), flush=True)
        self.assertIn(online["mechanism"], ("SCRAM-SHA-1", "PLAIN"))
        self.assertIn(online["tls"], ("TLSv1.2", "TLSv1.3"))
        nina.command(cmd="presence")  # initial presence
        # nina subscribes to sam; sam approves (RFC 6121 §3.1)
        nina.command(cmd="presence", to="sam@example.com", type="subscribe")
        await sam.expect("subscribe", lambda p: p["from"].bare == "nina@example.com")
        sam.send_presence(pto="nina@example.com", ptype="subscribed")
        await nina.expect("presence", lambda e: e["type"] == "subscribed" and e["from"].startswith("sam@example.com"))
        await nina.expect("presence", lambda e: e["from"] == "sam@example.com/slix" and e["type"] == "available")
        # sam subscribes to nina; nina approves
        sam.send_presence(pto="nina@example.com", ptype="subscribe")
        await nina.expect("presence", lambda e: e["type"] == "subscribe" and e["from"].startswith("sam@example.com"))
        nina.command(cmd="presence", to="sam@example.com", type="subscribed")
        await sam.expect("subscribed", lambda p: p["from"].bare == "nina@example.com")
        await sam.expect("presence", lambda p: str(p["from"]) == "nina@example.com/node" and p["type"] != "unavailable")
        # presence changes both ways
        sam.send_presence(pstatus="slixmpp here")
        await nina.expect("presence", lambda e: e["from"] == "sam@example.com/slix" and e["status"] == "slixmpp here")
        nina.command(cmd="presence", status="node here")
        p = await sam.expect("presence", lambda p: p["status"] == "node here")
        self.assertEqual(str(p["from"]), "nina@example.com/node")
        # messages both ways
        sam.send_message(mto="nina@example.com/node", mbody="hello from slixmpp", mtype="chat")
        m = await nina.expect("message", lambda e: e["body"] == "hello from slixmpp")
        self.assertEqual(m["from"], "sam@example.com/slix")
        self.assertEqual(m["type"], "chat")
        nina.command(cmd="message", to="sam@example.com/slix", body="hello from @xmpp/client")
        m = await sam.expect("message", lambda m: m["body"] == "hello from @xmpp/client")
        self.assertEqual(str(m["from"]), "nina@example.com/node")
        # Issue 16 deliverable 8: both client stacks in `impctl session list`
        # (impd only: the Prosody run has no impctl).
        if xmpp_server.kind() == "impd":
            self.check_session_list()
        # nina leaves: sam sees her unavailable (RFC 6121 §4.5.2)
        await nina.stop()
        await sam.expect("presence", lambda p: str(p["from"]) == "nina@example.com/node" and p["type"] == "unavailable")

    def check_session_list(self):
        text = self.server.node.ctl("session", "list").stdout
        print("\nimpctl session list:\n" + text, flush=True)
        sessions = {x["jid"]: x for x in self.server.node.ctl_json("session", "list")["sessions"]}
        self.assertEqual(set(sessions), {"nina@example.com/node", "sam@example.com/slix"}, text)
        for jid, user in (("nina@example.com/node", "nina"), ("sam@example.com/slix", "sam")):
            x = sessions[jid]
            self.assertEqual(x["userid"], user)
            self.assertTrue(x["address"].startswith("127.0.0.1:"), x)
            self.assertIn(x["tls"], ("TLSv1.2", "TLSv1.3"), x)
            self.assertIn(jid, text)
        only = self.server.node.ctl_json("session", "list", "--user", "nina")["sessions"]
        self.assertEqual([x["jid"] for x in only], ["nina@example.com/node"])


if __name__ == "__main__":
    xmpp_server.main()
