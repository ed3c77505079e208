"""Two impd nodes of one cluster on one MariaDB (issue 16 deliverable 2): a
user homed on node-b who logs in at node-a gets the see-other-host stream
error naming node-b's client address (RFC 6120 §4.9.3.19), after SASL and
on the restarted stream after SASL, before binding; the client that follows
it gets its session on node-b, where `impctl session list` shows it (and
node-a shows none). A user homed on node-a logs in there as usual.

impd only: the Prosody run has no cluster."""
import os
import sys
import unittest

import xmpp_server
from xmpp_client import TIMEOUT, Client, XmppTestCase

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Impd, PrivateMariaDB, short_tmpdir, wait_for  # noqa: E402

DOMAIN = xmpp_server.DOMAIN


class Node(xmpp_server.XmppServer):
    """One impd of the cluster with the face the test clients need (host,
    port, tls_port, ca_file, jid(), password()); the test CA is shared."""

    def __init__(self, ca, cert, key, node_id, db_url, users):
        self.ca, self.cert, self.key, self.ca_file = ca, cert, key, ca.cert
        self.users = users
        self.node = Impd(node_id, db_url=db_url, extra=["[tls]", "cert_file = " + cert, "key_file = " + key,
                                                        "ca_file = " + ca.cert],
                         xcp_extra=["channel_binding = false"])
        self.port, self.tls_port = self.node.xmpp_client, self.node.xmpp_tls


class Redirected:
    """The server face of `node` at another client address."""

    def __init__(self, node, host, port):
        self.node_face = node
        self.host, self.port, self.tls_port = host, port, None
        self.ca_file = node.ca_file

    def jid(self, user, resource=None):
        return self.node_face.jid(user, resource)

    def password(self, user):
        return self.node_face.password(user)


class XmppCluster(XmppTestCase):
    @classmethod
    def setUpClass(cls):
        if xmpp_server.kind() != "impd":
            raise unittest.SkipTest("a cluster of two nodes is impd's; %s has none here" % xmpp_server.kind())
        cls.work = short_tmpdir("imp-xmpp-cluster-")
        cls.db = PrivateMariaDB()
        cls.db.start()
        cls.nodes = []
        try:
            url = cls.db.create_app_user()
            ca = xmpp_server.TestCa(cls.work)
            cert, key = ca.issue(DOMAIN, ip="127.0.0.1")
            users = {}
            cls.a = Node(ca, cert, key, "node-a", url, users)
            cls.nodes.append(cls.a)
            cls.a.node.start()
            cls.b = Node(ca, cert, key, "node-b", url, users)
            cls.nodes.append(cls.b)
            cls.b.node.start()
            cls.a.node.ctl("domain", "add", DOMAIN)
            for user, home in (("anna", "node-a"), ("bert", "node-b")):
                users[user] = "pw-%s-cluster" % user
                cls.a.node.ctl("user", "add", user, "--im-address", "%s@%s" % (user, DOMAIN), "--home-node", home)
                xmpp_server.passwd(cls.a.node, user, users[user])
            # Each node's router learns the domain with the settings generation,
            # and node-b's client address must be published for node-a.
            want = int(cls.db.sql("SELECT generation FROM core_settings WHERE id = 1", database="imp")[0][0])
            for n in cls.nodes:
                xmpp_server.wait_applied(n.node, want=want)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for n in cls.nodes:
            n.node.cleanup()
        cls.db.cleanup()

    def sessions(self, node):
        return sorted(x["jid"] for x in node.node.ctl_json("session", "list")["sessions"])

    async def test_01_user_homed_on_the_other_node_is_sent_there_with_see_other_host(self):
        bert = Client(self.a, "bert", "laptop", stream_errors_fail=False)
        self.addAsyncCleanup(bert.logout)
        # slixmpp 1.8 would follow the redirect itself but then resolves the
        # JID's domain again instead of the named host: the test follows it.
        bert.max_redirects = -1
        errors = []
        bert.add_event_handler("stream_error", lambda e: errors.append(e))
        bert.add_event_handler("stream_error", lambda e: bert.session.done() or bert.session.set_result("error"))
        self.assertEqual(await bert.login(), "error")
        self.assertEqual(len(errors), 1, errors)
        self.assertEqual(errors[0]["condition"], "see-other-host")
        other = errors[0]["see_other_host"]
        self.assertEqual(other, "127.0.0.1:%d" % self.b.port)
        host, port = other.rsplit(":", 1)
        redirected = Client(Redirected(self.a, host, int(port)), "bert", "laptop")
        self.addAsyncCleanup(redirected.logout)
        self.assertEqual(await redirected.login(), "started")
        self.assertEqual(redirected.boundjid.full, "bert@%s/laptop" % DOMAIN)
        wait_for(lambda: self.sessions(self.b) == ["bert@%s/laptop" % DOMAIN], TIMEOUT, "bert's session on node-b")
        self.assertEqual(self.sessions(self.a), [])

    async def test_02_user_homed_here_logs_in_here(self):
        anna = Client(self.a, "anna", "desk")
        self.addAsyncCleanup(anna.logout)
        self.assertEqual(await anna.login(), "started")
        wait_for(lambda: self.sessions(self.a) == ["anna@%s/desk" % DOMAIN], TIMEOUT, "anna's session on node-a")
        self.assertNotIn("anna@%s/desk" % DOMAIN, self.sessions(self.b))


if __name__ == "__main__":
    xmpp_server.main()
