#!/usr/bin/env python3
"""RFC 4475 on the wire: sends the 49 torture messages of the corpus byte for
byte to a running SIP proxy, each on a fresh TCP connection, TLS connection
or UDP socket, and checks each outcome against what RFC 4475 (and
tests/corpus/sip/rfc4475/verdicts.tsv, column "expected of a proxy") asks of
a stateful proxy. After every message an OPTIONS addressed to the proxy
itself, on a fresh connection, must get 200 (the proxy is still alive).

The same code scores impd (tests/e2e/test_rfc4475_wire.py, ctest
e2e_rfc4475_wire) and any other proxy, e.g. Kamailio:

    python3 tests/e2e/rfc4475_wire.py --kamailio            # starts kamailio with tests/e2e/kamailio/rfc4475.cfg
    python3 tests/e2e/rfc4475_wire.py --target 127.0.0.1:5060 --tls-port 5061 --uas-port 5090 --ca ca.crt

With --target the proxy must already route the domain example.com (and its
subdomains) to 127.0.0.1:<uas-port> over TCP; this script runs that UAS.

The UAS is a small Python SIP UA (class Uas), not SIPp: a SIPp scenario
receives the methods it names, one call flow per scenario, and treats any
other request as an unexpected message, while this corpus holds INVITE,
OPTIONS, REGISTER, MESSAGE, NEWMETHOD, RE%47IST%45R and
"!interesting-Method0123456789_*+`.%indeed'~", and the test must see every
forwarded request byte for byte (binary bodies, request lines). It answers
every request but ACK with 200 and records the raw bytes.

Waiting: every wait is select()/recv() with a deadline. "Nothing comes
back" is a bounded quiet window (QUIET, 1 s by default): no response on the
socket and nothing at the UAS within it.
"""
import argparse
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.normpath(os.path.join(HERE, "..", "corpus", "sip", "rfc4475"))
KAMAILIO_CFG = os.path.join(HERE, "kamailio", "rfc4475.cfg")

QUIET = 1.0      # s: the window in which "nothing comes back" is observed
DEADLINE = 3.0   # s: how long an answer or a forwarded copy may take
PROBE_TIMEOUT = 3.0

# The domain the proxy under test routes to the UAS (a static route
# `.com.example.*` in impd): example.com and every subdomain of it.
ROUTED_DOMAIN = "example.com"

STREAMS = ("tcp", "tls")
TRANSPORTS = ("tcp", "tls", "udp")

# Where the expectation on a transport differs from the single line of
# verdicts.tsv, and why the RFC allows or asks for it. These are the only
# per-transport exceptions; every other message is held to its verdict on
# every transport, and every transport must score 49/49.
TRANSPORT_EXCEPTIONS = {
    ("clerr", "stream"): "Content-Length 9999 is larger than what was sent: on a stream the rest of the body may "
                         "still come (RFC 3261 18.3), so the proxy waits - no answer within the quiet window and "
                         "the connection stays open; on UDP the datagram is the whole message: 400 (RFC 4475 3.1.2.2)",
    ("dblreq", "stream"): "on a stream the octets after the REGISTER's Content-Length: 0 are not noise but the start "
                          "of the next message (RFC 3261 18.3; the CRLF before it is ignored, 7.5): the INVITE to "
                          "joe@example.com framed by its own Content-Length: 150 is a valid request and is forwarded "
                          "as well; the 5 octets after it ('C' CRLF CRLF) begin a third message that never "
                          "completes. On UDP the trailing octets are ignored: only the REGISTER is forwarded "
                          "(RFC 4475 3.1.1.8)",
    ("baddn", "stream"): "the corpus file (the ETSI machine-readable form of RFC 4475 3.1.2.15) ends after 'l: 0' "
                         "CRLF without the empty line that ends the header section (RFC 3261 7.5): on a stream the "
                         "message is not complete yet, so the proxy waits like clerr; on UDP the datagram is the "
                         "message: 400 or accept",
    ("inv2543", "stream"): "the RFC 2543 INVITE has no Content-Length, which RFC 3261 18.3 and 20.14 require on stream "
                           "transports: forwarding it (RFC 4475 3.4.1) or 400 naming Content-Length are both "
                           "correct on TCP/TLS; on UDP it is forwarded",
}

# Messages whose own Route header sends them elsewhere than the UAS: a proxy
# following RFC 3261 16.6 step 6/7 forwards toward that Route (wsinv: loose
# route sip:services.example.com;lr, in a dialog - To has a tag; mpart01:
# strict route sip:127.0.0.1:5080). Neither is reachable in the test, so
# a final answer telling that the next hop failed is the forwarding outcome,
# as is the UAS receiving it (a local policy that overrides the Route,
# RFC 3261 16.6 step 7) or a precise 404/403 for the unrouted domain.
ROUTE_HEADER = {"wsinv", "mpart01"}
NEXT_HOP_FAILED = {408, 478, 480, 500, 502, 503, 504}

# Messages that may differ from their verdict without failing the score,
# each with the RFC's reason. None today: every difference counts.
ALLOWED_DIFFERENCES = {}


# ---------------------------------------------------------------- corpus


class Case:
    def __init__(self, name, data, section, title, parser, verdict):
        self.name, self.data, self.section, self.title, self.parser, self.verdict = \
            name, data, section, title, parser, verdict
        head = data.split(b"\r\n\r\n", 1)[0]
        self.headers = parse_headers(head)
        first = data.split(b"\r\n", 1)[0]
        self.is_response = first.startswith(b"SIP/")
        self.method = None if self.is_response else first.split(b" ", 1)[0].decode("latin-1")
        m = re.match(rb"^\S+\s+(\S+)", first)
        self.ruri = m.group(1).decode("latin-1") if m and not self.is_response else None
        self.call_id = header_value(self.headers, "call-id")
        # a token to find the forwarded copy by: the Call-ID, else the branch
        if self.call_id:
            self.token = self.call_id.encode("latin-1")
        else:
            self.token = re.search(rb"branch=([^;,\s]+)", data).group(1)

    def domain(self):
        m = re.match(r"(?i)^<?sips?:(?:[^@]*@)?([^:;?>]+)", self.ruri or "")
        return m.group(1).lower() if m else None

    def body(self):
        return self.data.split(b"\r\n\r\n", 1)[1]


def load_corpus(path=CORPUS):
    with open(os.path.join(path, "verdicts.tsv"), encoding="utf-8") as f:
        rows = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    cases = []
    for row in rows[1:]:
        fname, section, title, parser, verdict = row
        with open(os.path.join(path, fname), "rb") as f:
            cases.append(Case(fname[:-4], f.read(), section, title, parser, verdict))
    return cases


# ---------------------------------------------------------------- SIP helpers

COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "l": "content-length", "m": "contact",
           "c": "content-type", "s": "subject", "k": "supported", "e": "content-encoding"}


def parse_headers(head):
    """[(lowercase long name, value)] of a header section (bytes), folded
    lines unfolded; the start line is skipped."""
    lines = head.split(b"\r\n")[1:]
    out = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and out:
            out[-1][1] += b" " + line.strip()
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        n = name.strip().decode("latin-1").lower()
        out.append([COMPACT.get(n, n), value.strip()])
    return [(n, v.decode("latin-1")) for n, v in out]


def header_value(headers, name):
    for n, v in headers:
        if n == name:
            return v
    return None


def header_values(headers, name):
    return [v for n, v in headers if n == name]


class Msg:
    """One SIP message as received (bytes)."""

    def __init__(self, raw, where=""):
        self.raw = raw
        self.where = where
        head, _, self.body = raw.partition(b"\r\n\r\n")
        self.first = head.split(b"\r\n", 1)[0].decode("latin-1")
        self.headers = parse_headers(head)
        m = re.match(r"^SIP/2\.0 (\d{3})(?: (.*))?$", self.first)
        self.status = int(m.group(1)) if m else None
        self.reason = (m.group(2) or "") if m else None

    def __repr__(self):
        return self.first


def frame(buf):
    """Splits one message off a stream buffer: (message bytes or None, rest).
    CRLFs before a start line are skipped (RFC 3261 7.5)."""
    while buf.startswith(b"\r\n"):
        buf = buf[2:]
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None, buf
    n = 0
    for name, value in parse_headers(buf[:end]):
        if name == "content-length" and value.isdigit():
            n = int(value)
    if len(buf) < end + 4 + n:
        return None, buf
    return buf[:end + 4 + n], buf[end + 4 + n:]


def response_to(raw, status=200, reason="OK"):
    """A response to a request (bytes), copying Via/From/To/Call-ID/CSeq."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    out = [b"SIP/2.0 %d %s" % (status, reason.encode())]
    for name, value in parse_headers(head):
        if name in ("via", "from", "to", "call-id", "cseq"):
            v = value.encode("latin-1")
            if name == "to" and not re.search(rb"(?i);\s*tag\s*=", v):
                v += b";tag=uas" + uuid.uuid4().hex[:8].encode()
            out.append(name.title().encode() + b": " + v)
    out.append(b"Content-Length: 0")
    return b"\r\n".join(out) + b"\r\n\r\n"


# ---------------------------------------------------------------- the UAS


class Uas:
    """A SIP UAS on 127.0.0.1, TCP and UDP on one port: answers every request
    but ACK with 200 and records every message it gets, raw."""

    def __init__(self, host="127.0.0.1", port=0):
        self.host = host
        self.records = []   # (transport, bytes)
        self.lock = threading.Lock()
        self.grew = threading.Condition(self.lock)
        self.stopping = False
        for _ in range(1 if port else 20):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind((host, port))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket()
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.tcp.bind((host, self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
                if port:
                    raise
        self.tcp.listen(64)
        self.conns = []
        self.threads = [threading.Thread(target=self._accept, daemon=True),
                        threading.Thread(target=self._udp, daemon=True)]
        for t in self.threads:
            t.start()

    def _record(self, transport, raw):
        with self.lock:
            self.records.append((transport, raw))
            self.grew.notify_all()

    def _answer(self, raw):
        if raw.startswith(b"SIP/") or raw.startswith(b"ACK "):
            return None
        return response_to(raw)

    def _accept(self):
        while not self.stopping:
            r, _, _ = select.select([self.tcp], [], [], 0.2)
            if not r:
                continue
            try:
                c, _ = self.tcp.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        try:
            while not self.stopping:
                r, _, _ = select.select([c], [], [], 0.2)
                if not r:
                    continue
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while True:
                    msg, buf = frame(buf)
                    if msg is None:
                        break
                    self._record("tcp", msg)
                    out = self._answer(msg)
                    if out:
                        c.sendall(out)
        except OSError:
            pass

    def _udp(self):
        while not self.stopping:
            r, _, _ = select.select([self.udp], [], [], 0.2)
            if not r:
                continue
            try:
                data, addr = self.udp.recvfrom(65536)
            except OSError:
                return
            self._record("udp", data)
            out = self._answer(data)
            if out:
                self.udp.sendto(out, addr)

    def mark(self):
        with self.lock:
            return len(self.records)

    def wait_beyond(self, count, timeout):
        """Waits until more than `count` messages are recorded, or timeout."""
        with self.lock:
            self.grew.wait_for(lambda: len(self.records) > count, timeout)

    def since(self, mark, token):
        """Messages received after `mark` that carry `token`."""
        with self.lock:
            return [Msg(raw, "UAS/" + t) for t, raw in self.records[mark:] if token in raw]

    def stop(self):
        self.stopping = True
        for s in [self.tcp, self.udp] + self.conns:
            try:
                s.close()
            except OSError:
                pass


# ---------------------------------------------------------------- the client side


class Target:
    """The proxy under test: its address, a port per transport, and the TLS
    client context (trusting the proxy's CA)."""

    def __init__(self, host, ports, tls_ctx=None):
        self.host = host
        self.ports = ports   # {"tcp": p, "tls": p, "udp": p}
        self.tls_ctx = tls_ctx


class Conn:
    """A fresh connection (TCP, TLS) or a fresh UDP socket to the target."""

    def __init__(self, target, transport, timeout=5):
        self.transport = transport
        self.addr = (target.host, target.ports[transport])
        self.closed = False
        self.buf = b""
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((target.host, 0))
        else:
            raw = socket.create_connection(self.addr, timeout=timeout)
            if transport == "tls":
                try:
                    raw = target.tls_ctx.wrap_socket(raw)
                except Exception:
                    raw.close()
                    raise
            self.sock = raw
        self.local = self.sock.getsockname()

    def send(self, data):
        if self.transport == "udp":
            self.sock.sendto(data, self.addr)
        else:
            self.sock.sendall(data)

    def _readable(self, timeout):
        if self.transport == "tls" and self.sock.pending():
            return True
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        return bool(r)

    def poll(self, timeout):
        """Messages that arrive within `timeout` (at most one read's worth)."""
        if self.closed:
            return []
        if not self._readable(timeout):
            return []
        if self.transport == "udp":
            data, src = self.sock.recvfrom(65536)
            return [Msg(data, "UDP from %s:%d" % src)]
        try:
            # readable may be a TLS record without application data (a
            # session ticket): then recv times out, the stream is still open
            self.sock.settimeout(0.2)
            chunk = self.sock.recv(65536)
        except (ssl.SSLWantReadError, socket.timeout):
            return []
        except (ConnectionResetError, ssl.SSLError, OSError):
            chunk = b""
        if not chunk:
            self.closed = True
            return []
        self.buf += chunk
        out = []
        while True:
            msg, self.buf = frame(self.buf)
            if msg is None:
                break
            out.append(Msg(msg, self.transport.upper()))
        return out

    def still_open(self):
        """True when the peer has not closed the stream (non-blocking check)."""
        if self.transport == "udp":
            return True
        if self.closed:
            return False
        self.poll(0.05)
        return not self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def probe(target, transport, timeout=PROBE_TIMEOUT):
    """OPTIONS addressed to the proxy itself on a fresh connection: (True,
    what) when it answers 200."""
    port = target.ports[transport]
    try:
        c = Conn(target, transport, timeout=timeout)
    except (OSError, ssl.SSLError) as e:
        return False, "probe: cannot connect (%s)" % e
    try:
        lhost, lport = c.local[:2]
        tag = uuid.uuid4().hex
        msg = ("OPTIONS sip:%s:%d;transport=%s SIP/2.0\r\n"
               "Via: SIP/2.0/%s %s:%d;rport;branch=z9hG4bK%s\r\n"
               "Max-Forwards: 70\r\n"
               "From: <sip:probe@%s>;tag=%s\r\n"
               "To: <sip:%s:%d>\r\n"
               "Call-ID: probe-%s\r\n"
               "CSeq: 1 OPTIONS\r\n"
               "Content-Length: 0\r\n\r\n" % (target.host, port, transport, transport.upper(), lhost, lport,
                                              tag[:16], lhost, tag[16:24], target.host, port, tag)).encode()
        c.send(msg)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not c.closed:
            for m in c.poll(deadline - time.monotonic()):
                if m.status and m.status >= 200:
                    return m.status == 200, "probe: %d %s" % (m.status, m.reason)
        return False, "probe: no answer within %.0f s" % timeout
    except (OSError, ssl.SSLError) as e:
        return False, "probe: %s" % e
    finally:
        c.close()


class Observation:
    def __init__(self):
        self.responses = []      # Msg, in order
        self.forwarded = {}      # token -> [Msg] seen at the UAS
        self.closed = False
        self.open_at_end = None
        self.waited = 0.0
        self.error = None

    def finals(self):
        return [r for r in self.responses if r.status and r.status >= 200]

    def describe(self):
        if self.error:
            return self.error
        parts = []
        for r in self.responses:
            parts.append('%d "%s"' % (r.status, r.reason) if r.status else "non-SIP %r" % r.raw[:40])
        fw = sum(len(v) for v in self.forwarded.values())
        if fw:
            parts.append("forwarded to the UAS" + (" (%d messages)" % fw if fw > 1 else ""))
        if not parts:
            parts.append("nothing within %.1f s" % self.waited)
        if self.closed:
            parts.append("connection closed")
        elif self.open_at_end:
            parts.append("connection open")
        return "; ".join(parts)


def exchange(target, uas, transport, data, tokens, quiet_only, deadline=DEADLINE, quiet=QUIET):
    """Sends `data` on a fresh connection and watches the socket and the UAS.
    quiet_only: watch the whole quiet window (an answer or a forwarded copy
    ends it early, as a failure). Otherwise stop at the first final response
    or when every token has reached the UAS, or at the deadline."""
    obs = Observation()
    mark = uas.mark()
    try:
        c = Conn(target, transport)
    except (OSError, ssl.SSLError) as e:
        obs.error = "cannot connect (%s)" % e
        return obs
    start = time.monotonic()
    try:
        c.send(data)
        end = start + (quiet if quiet_only else deadline)
        while True:
            for t in tokens:
                got = uas.since(mark, t)
                if got:
                    obs.forwarded[t] = got
            if quiet_only and (obs.responses or obs.forwarded):
                break
            if not quiet_only and (obs.finals() or (tokens and all(t in obs.forwarded for t in tokens))):
                # what else is already on its way (a 100 and a 400, two copies)
                obs.responses += c.poll(0.05)
                break
            left = end - time.monotonic()
            if left <= 0:
                break
            if c.closed:
                # nothing more can come on this connection; the UAS may still get a copy
                uas.wait_beyond(uas.mark(), min(0.05, left))
                continue
            obs.responses += c.poll(min(0.05, left))
        obs.waited = time.monotonic() - start
        obs.closed = c.closed
        obs.open_at_end = c.still_open() if transport != "udp" else None
        obs.closed = c.closed
    except (OSError, ssl.SSLError) as e:
        obs.error = "send/receive failed: %s" % e
    finally:
        c.close()
    return obs


# ---------------------------------------------------------------- expectations


def domain_routed(domain):
    return domain == ROUTED_DOMAIN or (domain or "").endswith("." + ROUTED_DOMAIN)


class Expect:
    """One acceptable outcome. check(case, obs) -> (ok, why-not)."""

    def __init__(self, kind, status=None, reason_re=None, unsupported=None, content=None, tokens=None,
                 forbid=None, register=False, route_header=False, text=None):
        self.kind = kind                  # forward | status | silent | wait
        self.status = status
        self.reason_re = reason_re
        self.unsupported = unsupported
        self.content = content            # fn(case, Msg) -> None or what is wrong with the forwarded copy
        self.tokens = tokens              # tokens that must reach the UAS (forward)
        self.forbid = forbid or []        # tokens that must not reach the UAS
        self.register = register
        self.route_header = route_header
        self.text = text

    def describe(self):
        if self.text:
            return self.text
        if self.kind == "status":
            return str(self.status)
        return self.kind

    def check(self, case, obs):
        if obs.error:
            return False, obs.error
        finals = obs.finals()
        fw = obs.forwarded
        if self.kind in ("silent", "wait"):
            if obs.responses:
                return False, "answered"
            if fw:
                return False, "forwarded"
            if self.kind == "wait" and not obs.open_at_end:
                return False, "connection closed"
            return True, None
        if self.kind == "status":
            if case.token in fw:
                return False, "forwarded to the UAS"
            if not finals:
                return False, "no final response"
            r = finals[0]
            if r.status != self.status:
                return False, "got %d" % r.status
            if self.reason_re and not re.search(self.reason_re, r.reason):
                return False, 'reason "%s" does not name the fault (/%s/)' % (r.reason, self.reason_re)
            if self.unsupported:
                listed = [t.strip().lower() for v in header_values(r.headers, "unsupported") for t in v.split(",")]
                missing = [o for o in self.unsupported if o.lower() not in listed]
                if missing:
                    return False, "Unsupported lists %s, not %s" % (listed or "nothing", ", ".join(missing))
            return True, None
        # forward
        tokens = self.tokens or [case.token]
        for t in self.forbid:
            if t in fw:
                return False, "forwarded %s too" % t.decode("latin-1")
        if all(t in fw for t in tokens):
            if self.content:
                for t in tokens:
                    for m in fw[t]:
                        bad = self.content(case, m)
                        if bad:
                            return False, "forwarded, but " + bad
            return True, None
        if finals:
            r = finals[0]
            dom = case.domain()
            if r.status in (403, 404, 405) and dom and not domain_routed(dom) and dom in r.reason.lower():
                return True, None
            if self.route_header and r.status in NEXT_HOP_FAILED:
                return True, None
            if self.register and (r.status == 200 or (r.status == 401 and case.name == "regaut01")):
                return True, None
            return False, "answered %d instead of forwarding" % r.status
        return False, "not forwarded"


def request_line_is(line):
    def check(case, m):
        if m.first != line:
            return 'request line "%s", not "%s"' % (m.first, line)
        return None
    return check


def no_route_header(case, m):
    if header_values(m.headers, "route"):
        return "it carries Route: %s (the escaped URI header became a real one)" % header_values(m.headers, "route")
    return None


def body_untouched(case, m):
    if m.body != case.body():
        return "the body changed (%d octets, sent %d)" % (len(m.body), len(case.body()))
    return None


MISSING_HDR = r"(?i:from|call-id|max-forwards|cseq)|\bTo\b"
CL = r"(?i)content-length"
CSEQ = r"(?i)cseq"
DBLREQ_INVITE = b"dblreq.0ha0isnda977644900765@192.0.2.15"
DBLREQ_REGISTER = b"dblreq.0ha0isndaksdj99sdfafnl3lk233412"


def expectations(case, transport):
    """The acceptable outcomes of `case` on `transport`, from the verdict."""
    n = case.name
    stream = transport in STREAMS
    fwd = Expect("forward", route_header=n in ROUTE_HEADER)
    reg = Expect("forward", register=True, text="forward (or registrar semantics)")

    def s(code, reason_re=None, **kw):
        return Expect("status", status=code, reason_re=reason_re, **kw)

    silent = Expect("silent", text="no answer, nothing forwarded")
    wait = Expect("wait", text="waits (no answer, connection open)")
    table = {
        "wsinv": [fwd], "intmeth": [fwd], "esc01": [fwd], "escnull": [reg], "esc02": [fwd], "lwsdisp": [fwd],
        "longreq": [fwd], "semiuri": [fwd], "transports": [fwd],
        "mpart01": [Expect("forward", route_header=True, content=body_untouched, text="forward, binary body untouched")],
        "unreason": [silent], "noreason": [silent], "scalarlg": [silent], "bigcode": [silent], "bcast": [silent],
        "badinv01": [s(400)],
        "clerr": [wait] if stream else [s(400, CL, text="400 naming Content-Length")],
        "ncl": [s(400, CL, text="400 naming Content-Length")],
        "scalar02": [s(400)], "quotbal": [s(400)], "ltgtruri": [s(400)], "lwsruri": [s(400)],
        "lwsstart": [s(400), Expect("forward", content=request_line_is("INVITE sip:user@example.com SIP/2.0"),
                                    text="forward without the extra SP")],
        "trws": [s(400), Expect("forward", content=request_line_is("OPTIONS sip:remote-target@example.com SIP/2.0"),
                                text="forward without the trailing SP")],
        "escruri": [s(400), Expect("forward", content=no_route_header, text="forward, no Route header made")],
        "baddate": [s(400), fwd], "regbadct": [s(400), reg], "badaspec": [s(400), fwd],
        "baddn": [wait] if stream else [s(400), fwd],
        "badvers": [s(505)],
        "mismatch01": [s(400, CSEQ, text="400 naming CSeq")], "mismatch02": [s(400, CSEQ, text="400 naming CSeq")],
        "badbranch": [fwd],
        "insuf": [s(400, MISSING_HDR, text="400 naming a missing header")],
        "unkscm": [s(416)], "novelsc": [s(416), s(404)], "unksm2": [reg],
        "bext01": [s(420, unsupported=["noProxiesSupportThis", "norDoAnyProxiesSupportThis"],
                     text="420, Unsupported: noProxiesSupportThis, norDoAnyProxiesSupportThis")],
        "invut": [fwd], "regaut01": [reg],
        "multi01": [s(400, MISSING_HDR, text="400 naming the header with several values")],
        "mcl01": [s(400, CL, text="400 naming Content-Length")],
        "zeromf": [s(483)], "cparam01": [reg], "cparam02": [reg], "regescrt": [reg], "sdp01": [fwd],
        "dblreq": ([Expect("forward", tokens=[DBLREQ_REGISTER, DBLREQ_INVITE], register=True,
                           text="forward the REGISTER and the INVITE after it")] if stream else
                   [Expect("forward", tokens=[DBLREQ_REGISTER], forbid=[DBLREQ_INVITE], register=True,
                           content=lambda c, m: "the trailing octets went along" if b"INVITE sip:joe" in m.raw else
                           None, text="forward the REGISTER only")]),
        "inv2543": [fwd, s(400, CL)] if stream else [fwd],
    }
    return table[n]


def tokens_of(case, exps):
    t = []
    for e in exps:
        for x in (e.tokens or [case.token]) + e.forbid:
            if x not in t:
                t.append(x)
    return t


class Result:
    def __init__(self, case, transport, ok, expected, observed, why, allowed=False, unreachable=False):
        self.case, self.transport, self.ok, self.expected, self.observed, self.why, self.allowed = \
            case, transport, ok, expected, observed, why, allowed
        self.unreachable = unreachable

    def line(self):
        return "%-4s %-10s expected %s; got %s%s%s" % (
            self.transport.upper(), self.case.name, self.expected, self.observed,
            " (%s)" % self.why if self.why else "", " [allowed: %s]" % ALLOWED_DIFFERENCES.get(self.case.name)
            if self.allowed else "")


def run_case(target, uas, case, transport, quiet=QUIET, deadline=DEADLINE):
    exps = expectations(case, transport)
    quiet_only = all(e.kind in ("silent", "wait") for e in exps)
    obs = exchange(target, uas, transport, case.data, tokens_of(case, exps), quiet_only, deadline, quiet)
    ok, whys = False, []
    for e in exps:
        good, why = e.check(case, obs)
        if good:
            ok = True
            break
        whys.append(why)
    alive, what = probe(target, transport)
    expected = " or ".join(e.describe() for e in exps)
    why = None if ok else "; ".join(dict.fromkeys(w for w in whys if w))
    if not alive:
        ok = False
        why = (why + "; " if why else "") + "afterwards " + what
    return Result(case, transport, ok, expected, obs.describe(), why, allowed=not ok and case.name in
                  ALLOWED_DIFFERENCES)


def transaction_key(case):
    """What a server transaction is matched by (RFC 3261 17.2.3): the top
    Via's branch and sent-by, and the method (an ACK matches its INVITE)."""
    via = header_value(case.headers, "via") or ""
    m = re.match(r"(?i)SIP\s*/\s*2\.0\s*/\s*\S+\s+([^;,\s]+(?:\s*:\s*\d+)?)", via)
    b = re.search(r"(?i)branch\s*=\s*([^;,\s]+)", via)
    return (b.group(1) if b else None, m.group(1).lower() if m else None,
            "INVITE" if case.method == "ACK" else case.method)


def lingers(case, transport):
    """Whether the proxy keeps the server transaction of `case` after its
    final response: INVITE (Timer H, any transport) and every request on UDP
    (Timer J = 64*T1); non-INVITE transactions over TCP/TLS end at once."""
    return transport == "udp" or case.method == "INVITE"


def run_transport(target, uas, cases, transport, log=None, quiet=QUIET, deadline=DEADLINE, verbose=False,
                  fresh=None, between=33.0):
    """All cases on one transport; a transport that does not answer the
    OPTIONS probe at all fails every case at once (one line in the report).

    Three pairs of corpus messages carry the same transaction key (unkscm
    and novelsc, cparam01 and cparam02, escnull and regescrt: same branch,
    sent-by and method): a stateful proxy rightly takes the second for a
    retransmission of the first while that transaction lives (RFC 3261
    17.2.3) and answers it where the first came from. Before the second of
    such a pair the proxy is restarted with `fresh()` (which returns the
    Target), or, for a proxy this code does not run, given `between` seconds
    (64*T1 = 32 s, its transaction lifetime, not observable from outside)."""
    alive, what = probe(target, transport)
    if not alive:
        why = "%s at %s:%s before the first message" % (what, target.host, target.ports[transport])
        return [Result(c, transport, False, "-", "-", why, unreachable=True) for c in cases]
    results = []
    keys = set()
    for c in cases:
        key = transaction_key(c)
        if not c.is_response and key in keys and lingers(c, transport):
            if fresh:
                target = fresh()
            else:
                if log:
                    log("  (%s: waiting %.0f s for the transaction of an earlier message with the same branch to end)"
                        % (c.name, between))
                threading.Event().wait(between)
            keys = set()
        if not c.is_response:
            keys.add(key)
        r = run_case(target, uas, c, transport, quiet, deadline)
        results.append(r)
        if log and verbose:
            log(("  ok " if r.ok else "  ") + r.line())
    return results


def difference_lines(results):
    """A line per message that differs; one line for an unreachable transport."""
    bad = [r for r in results if not r.ok]
    if bad and all(r.unreachable for r in bad):
        return ["  %s all %d messages: %s" % (bad[0].transport.upper(), len(bad), bad[0].why)]
    return ["  " + r.line() for r in bad]


def score(results):
    ok = sum(1 for r in results if r.ok or r.allowed)
    return ok, len(results)


def report(all_results, log=print):
    """Prints the score per transport and a line per message that differs;
    True when every transport scores 49/49."""
    good = True
    for transport, results in all_results.items():
        ok, total = score(results)
        log("%s %d/%d" % (transport.upper(), ok, total))
        good = good and ok == total
    for transport, results in all_results.items():
        for line in difference_lines(results):
            log(line)
    return good


# ---------------------------------------------------------------- Kamailio runner


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def both_free_port():
    """A port free on TCP and UDP (kamailio listens on both)."""
    for _ in range(50):
        p = free_port()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            u.close()
    raise RuntimeError("no port free on both TCP and UDP")


class Kamailio:
    """kamailio -f tests/e2e/kamailio/rfc4475.cfg on loopback, foreground."""

    def __init__(self, workdir, uas_port, cert, key, cfg=KAMAILIO_CFG):
        self.port = both_free_port()
        self.tls_port = free_port()
        self.dir = workdir
        self.log_path = os.path.join(workdir, "kamailio.log")
        args = ["kamailio", "-f", cfg, "-DD", "-E", "-m", "64", "-M", "8", "-w", workdir, "-Y", workdir,
                "-P", os.path.join(workdir, "kamailio.pid"),
                "-l", "udp:127.0.0.1:%d" % self.port, "-l", "tcp:127.0.0.1:%d" % self.port,
                "-l", "tls:127.0.0.1:%d" % self.tls_port,
                "-A", "UAS_PORT=%d" % uas_port, "-A", "WITH_TLS",
                "-A", 'TLS_CERT="%s"' % cert, "-A", 'TLS_KEY="%s"' % key]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir)

    def version(self):
        r = subprocess.run(["kamailio", "-v"], stdout=subprocess.PIPE, text=True)
        return r.stdout.splitlines()[0] if r.stdout else "kamailio"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_alive(target, transport, timeout, proc=None):
    deadline = time.monotonic() + timeout
    what = "not tried"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("the proxy exited with %s" % proc.returncode)
        ok, what = probe(target, transport, timeout=1)
        if ok:
            return
        # a refused connection returns at once: wait on the process a moment
        if proc is not None:
            try:
                proc.wait(0.2)
            except subprocess.TimeoutExpired:
                pass
    raise RuntimeError("the proxy did not answer OPTIONS over %s within %.0f s (%s)" % (transport, timeout, what))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kamailio", action="store_true", help="start kamailio with tests/e2e/kamailio/rfc4475.cfg")
    ap.add_argument("--kamailio-cfg", default=KAMAILIO_CFG)
    ap.add_argument("--target", help="HOST:PORT of a running proxy (TCP and UDP port)")
    ap.add_argument("--tls-port", type=int, help="its TLS port (server-auth)")
    ap.add_argument("--udp-port", type=int, help="its UDP port, when not the --target port")
    ap.add_argument("--ca", help="CA file the TLS client trusts")
    ap.add_argument("--uas-port", type=int, help="run the UAS on this port (the proxy routes example.com there)")
    ap.add_argument("--transports", default="tcp,tls,udp")
    ap.add_argument("--corpus", default=CORPUS)
    ap.add_argument("--only", help="comma-separated message names")
    ap.add_argument("--quiet", type=float, default=QUIET)
    ap.add_argument("--deadline", type=float, default=DEADLINE)
    ap.add_argument("--between", type=float, default=33.0,
                    help="with --target: seconds between transports (the proxy's Timer H, default 33)")
    ap.add_argument("--verbose", action="store_true", help="a line per message, as it runs")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (kamailio.log)")
    a = ap.parse_args(argv)
    transports = [t for t in a.transports.split(",") if t]
    cases = load_corpus(a.corpus)
    if a.only:
        cases = [c for c in cases if c.name in a.only.split(",")]
    work = tempfile.mkdtemp(prefix="rfc4475-")
    kam = None
    uas = None
    try:
        if a.kamailio:
            sys.dont_write_bytecode = True   # no __pycache__ in the source tree
            sys.path.insert(0, HERE)
            from sippeer import TestCa
            ca = TestCa(work)
            cert, key = ca.issue("kamailio.test", ip="127.0.0.1")
            uas = Uas()

            def fresh():
                nonlocal kam
                if kam:
                    kam.stop()
                kam = Kamailio(work, uas.port, cert, key, a.kamailio_cfg)
                t = Target("127.0.0.1", {"tcp": kam.port, "udp": kam.port, "tls": kam.tls_port}, ca.client_context())
                wait_alive(t, "tcp", 30, kam.proc)
                return t
            target = fresh()
            print("target: %s, UAS on 127.0.0.1:%d" % (kam.version(), uas.port))
        else:
            if not a.target or not a.uas_port:
                ap.error("--target HOST:PORT and --uas-port N (or --kamailio)")
            host, port = a.target.rsplit(":", 1)
            ctx = None
            if a.ca:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.load_verify_locations(a.ca)
                ctx.check_hostname = False
            target = Target(host, {"tcp": int(port), "udp": a.udp_port or int(port), "tls": a.tls_port}, ctx)
            uas = Uas(host, a.uas_port)
            fresh = None
        results = {}
        for i, t in enumerate(transports):
            if i:
                # The same bytes again on another transport: a server
                # transaction of the previous run (same branch, sent-by and
                # method, RFC 3261 17.2.3) would take them for a
                # retransmission. Kamailio is restarted; a proxy we do not
                # run is given its transaction lifetime (64*T1 = 32 s,
                # Timer H), which cannot be observed from outside.
                if fresh:
                    target = fresh()
                else:
                    print("waiting %.0f s for the proxy's transactions to end (Timer H)" % a.between, flush=True)
                    threading.Event().wait(a.between)
            holder = {}

            def fresh_target():
                holder["t"] = fresh()
                return holder["t"]
            results[t] = run_transport(target, uas, cases, t, log=print, quiet=a.quiet, deadline=a.deadline,
                                       verbose=a.verbose, fresh=fresh_target if fresh else None, between=a.between)
            target = holder.get("t", target)
        good = report(results)
        return 0 if good else 1
    finally:
        if kam:
            kam.stop()
            if kam.proc.returncode not in (0, -15, None):
                print("kamailio exited with %s; log: %s" % (kam.proc.returncode, kam.log_path))
        if uas:
            uas.stop()
        if a.keep:
            print("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
