"""RFC 4475 torture messages on the wire against a running impd: each of
the 49 messages of tests/corpus/sip/rfc4475, byte for byte, on a fresh TCP
connection, a fresh TLS connection to the server-auth listener (the client
trusts the test CA) and from a fresh UDP socket, checked against the
verdicts' "expected of a proxy" column; after every message an OPTIONS to
impd's own address must get 200. impd runs with `impctl acl add all` and a
static route .com.example.* to a Python UAS on loopback over TCP (why not
SIPp: see rfc4475_wire.py). The checks, the per-transport exceptions the RFC
allows (clerr, dblreq, baddn, inv2543 on streams) and their reasons live in
rfc4475_wire.py, which also scores other proxies (docs/INTEROP.md).

Prints "TCP n/49", "TLS n/49", "UDP n/49" and a line per message that
differs; each transport below 49/49 fails its test.

UDP: the `udp` cluster listener (disabled by default) is enabled with
`impctl listener set udp --port P --enable` and the node's port set with
`[sip-proxy] udp_port`.
"""
import os
import shutil
import socket
import sys
import tempfile
import unittest

import rfc4475_wire as wire
from sippeer import FakeDns, TestCa, wait_applied, wait_for
from harness import Impd, free_port

EXPECTED_NAMES = 49


def free_udp_port():
    return free_port(socket.SOCK_DGRAM)


class Rfc4475Wire(unittest.TestCase):
    used = False

    @classmethod
    def setUpClass(cls):
        # class cleanups also run when setUpClass fails half-way
        cls.work = tempfile.mkdtemp(prefix="imp-e2e-4475-")
        cls.addClassCleanup(shutil.rmtree, cls.work, ignore_errors=True)
        cls.cases = wire.load_corpus()
        cls.ca = TestCa(cls.work)
        cert = cls.ca.issue("imp-node.test", ip="127.0.0.1")
        # Every name is NXDOMAIN: wsinv's Route sip:services.example.com
        # fails at once instead of waiting on the machine's resolver.
        cls.dns = FakeDns({})
        cls.addClassCleanup(cls.dns.stop)
        cls.uas = wire.Uas()
        cls.addClassCleanup(cls.uas.stop)
        cls.udp_port = free_udp_port()
        sip_extra = ["hop_timeout_ms = 1000"]
        extra = ["[tls]", "cert_file = " + cert[0], "key_file = " + cert[1], "ca_file = " + cls.ca.cert,
                 "[dns]", "servers = 127.0.0.1:%d" % cls.dns.port, "timeout_ms = 1000", "attempts = 1"]
        sip_extra.append("udp_port = %d" % cls.udp_port)
        cls.node = Impd("rfc4475", sip_extra=sip_extra, extra=extra)
        cls.node.start()
        cls.addClassCleanup(cls.node.cleanup)
        n = cls.node
        n.ctl("acl", "add", "all", "--description", "RFC 4475 wire test")
        n.ctl("route", "add", ".com.example.*", "--route-type", "domain", "--next-hop", "127.0.0.1", "--port",
              str(cls.uas.port), "--transport", "TCP", "--priority", "1")
        n.ctl("listener", "set", "udp", "--port", str(cls.udp_port), "--enable")
        wait_applied(n)
        cls.target = wire.Target("127.0.0.1", {"tcp": n.sip_tcp, "tls": n.sip_tls, "udp": cls.udp_port},
                                 cls.ca.client_context())
        wait_for(lambda: wire.probe(cls.target, "tcp", timeout=2)[0], 30, "impd answering OPTIONS over TCP")
        wait_for(lambda: wire.probe(cls.target, "tls", timeout=2)[0], 30, "impd answering OPTIONS over TLS")

    def test_00_corpus(self):
        """The corpus is the 49 messages of RFC 4475 with a verdict each."""
        names = [c.name for c in self.cases]
        self.assertEqual(len(names), EXPECTED_NAMES, names)
        dats = sorted(f[:-4] for f in os.listdir(wire.CORPUS) if f.endswith(".dat"))
        self.assertEqual(sorted(names), dats)
        for c in self.cases:
            wire.expectations(c, "tcp")   # every message has its expectation
            wire.expectations(c, "udp")

    @classmethod
    def fresh_impd(cls, transport):
        """Each transport's run starts on a fresh impd process: the 49
        messages are the same bytes on every transport, so the server
        transactions of one run (an INVITE answered 404 or 400 lives 32 s
        in Completed, Timer H) would take the next run's copies for
        retransmissions (RFC 3261 17.2.3 matches branch, sent-by and
        method, not the connection) and answer them on the old connection."""
        if not cls.used:
            cls.used = True
            return
        cls.restart("tcp")

    @classmethod
    def restart(cls, transport):
        """A new impd process on the same state and ports, answering on
        `transport`; an impd that exited on its own is reported, not restarted."""
        rc = cls.node.proc.poll()
        if rc is not None:
            raise AssertionError("impd exited (rc %s) during the run; sip-proxy.log ends with:\n%s" %
                                 (rc, cls.node.log("sip-proxy")[-3000:]))
        cls.node.stop()
        cls.node.start()
        wait_for(lambda: wire.probe(cls.target, transport, timeout=2)[0], 30,
                 "impd answering OPTIONS over %s after the restart" % transport.upper())
        return cls.target

    def _transport(self, transport):
        self.fresh_impd(transport)
        verbose = bool(os.environ.get("RFC4475_VERBOSE"))
        results = wire.run_transport(self.target, self.uas, self.cases, transport, verbose=verbose,
                                     fresh=lambda: self.restart(transport),
                                     log=(lambda l: print(l, file=sys.stderr, flush=True)) if verbose else None)
        ok, total = wire.score(results)
        lines = ["%s %d/%d (impd)" % (transport.upper(), ok, total)] + wire.difference_lines(results)
        print("\n".join(lines), file=sys.stderr, flush=True)
        self.assertIsNone(self.node.proc.poll(), "impd exited during the %s run" % transport.upper())
        self.assertEqual(ok, total, "\n".join(lines))

    def test_01_tcp(self):
        self._transport("tcp")

    def test_02_tls(self):
        self._transport("tls")

    def test_03_udp(self):
        self._transport("udp")


if __name__ == "__main__":
    unittest.main(verbosity=2)
