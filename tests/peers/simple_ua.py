"""A small standard SIP user agent (SIMPLE) for IMP's federation tests: the
users of a presence domain hosted on a standard presence server such as
Kamailio (tests/e2e/kamailio/presence.cfg). Python 3 standard library only.

What it does, for any number of users on one UDP socket:
  register(user)                       REGISTER (RFC 3261 §10)
  publish(user, basic, note, activity) PUBLISH of PIDF (RFC 3863) with RPID
                                       activities (RFC 4480), Event: presence,
                                       refreshed with SIP-If-Match (RFC 3903)
  subscribe(watcher, target)           SUBSCRIBE Event: presence (RFC 3856);
                                       every NOTIFY is answered 200 and kept,
                                       its PIDF parsed: wait_notify()
  unsubscribe(handle)                  SUBSCRIBE Expires: 0 in the dialog
  send_message(from, to, text)         page-mode MESSAGE (RFC 3428)
  send_composing(from, to, state)      isComposing MESSAGE (RFC 3994)
  incoming MESSAGE                     200, kept: wait_message(); an
                                       application/im-iscomposing+xml body is
                                       parsed into .composing (active/idle)
  incoming OPTIONS                     200
  ladder()                             what went each way, in order

Every request goes to the outbound proxy given to the constructor (the
presence server), which routes it on. Threads: one receiver thread answers
requests and matches responses; the test's threads call the API. Every wait
is on a condition with a deadline, never a bare sleep; lost UDP requests are
sent again with RFC 3261's doubling interval until the deadline.
"""
import dataclasses
import itertools
import socket
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

PIDF_NS = "urn:ietf:params:xml:ns:pidf"
RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid"
DM_NS = "urn:ietf:params:xml:ns:pidf:data-model"
ISCOMPOSING_NS = "urn:ietf:params:xml:ns:im-iscomposing"
USER_AGENT = "imp-test-simple-ua/1.0"
T1 = 0.5
T2 = 4.0

_COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact", "l": "content-length",
            "c": "content-type", "o": "event", "k": "supported", "e": "content-encoding", "s": "subject",
            "x": "session-expires", "u": "allow-events", "r": "refer-to", "b": "referred-by"}


# ---------------------------------------------------------------- SIP messages

class SipMessage:
    """A parsed request or response. Header names are kept as sent; get()
    and get_all() match them case-insensitively, compact forms included."""

    def __init__(self, first_line, headers, body):
        self.first_line = first_line
        self.headers = headers  # [(name, value)]
        self.body = body  # bytes
        parts = first_line.split(" ", 2)
        if parts[0].startswith("SIP/"):
            self.is_request = False
            self.status = int(parts[1])
            self.reason = parts[2] if len(parts) > 2 else ""
            self.method, self.uri = None, None
        else:
            self.is_request = True
            self.method, self.uri = parts[0], parts[1]
            self.status, self.reason = None, None

    @staticmethod
    def parse(data):
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:  # folded line
                n, v = headers[-1]
                headers[-1] = (n, v + " " + line.strip())
                continue
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        msg = SipMessage(lines[0], headers, body)
        cl = msg.get("Content-Length")
        if cl is not None and cl.isdigit():
            msg.body = body[:int(cl)]
        return msg

    @staticmethod
    def _norm(name):
        n = name.lower()
        return _COMPACT.get(n, n)

    def get_all(self, name):
        n = self._norm(name)
        out = []
        for k, v in self.headers:
            if self._norm(k) == n:
                # Via, Route and Record-Route may carry several values in one header
                if n in ("via", "route", "record-route"):
                    out.extend(split_commas(v))
                else:
                    out.append(v)
        return out

    def get(self, name, default=None):
        v = self.get_all(name)
        return v[0] if v else default

    def cseq(self):
        n, _, m = (self.get("CSeq") or "0 X").partition(" ")
        return int(n), m.strip()

    def branch(self):
        return param(self.get("Via") or "", "branch")

    def content_type(self):
        return (self.get("Content-Type") or "").split(";")[0].strip().lower()

    def text(self):
        return self.body.decode("utf-8", "replace")

    def summary(self):
        if self.is_request:
            return "%s %s" % (self.method, self.uri)
        return "%d %s (%s)" % (self.status, self.reason, self.cseq()[1])


def split_commas(value):
    """Splits a header value on commas outside <> and quotes."""
    out, cur, depth, quoted = [], "", 0, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def param(value, name):
    """A ;name=value parameter of a header value (outside its <URI>)."""
    rest = value.split(">", 1)[1] if ">" in value else value
    for p in rest.split(";")[1:]:
        k, _, v = p.partition("=")
        if k.strip().lower() == name:
            return v.strip().strip('"')
    return None


def uri_of(value):
    """The URI of a name-addr or addr-spec header value."""
    if "<" in value:
        return value.split("<", 1)[1].split(">", 1)[0]
    return value.split(";", 1)[0].strip()


def user_of(uri):
    """The user part of a SIP URI ("" without one)."""
    u = uri.split(":", 1)[1] if ":" in uri else uri
    return u.split("@", 1)[0] if "@" in u else ""


def aor_of(value):
    """user@host of a header value or URI, without scheme or parameters."""
    u = uri_of(value)
    u = u.split(":", 1)[1] if u.lower().startswith(("sip:", "sips:")) else u
    return u.split(";", 1)[0].split("?", 1)[0]


# ---------------------------------------------------------------- bodies

def pidf(entity, basic, note=None, activity=None, tuple_id="t1"):
    """A PIDF document (RFC 3863) with an RPID person (RFC 4480) when there
    is an activity or a note."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<presence xmlns="%s" xmlns:dm="%s" xmlns:rpid="%s" entity="%s">' % (
                 PIDF_NS, DM_NS, RPID_NS, escape(entity)),
             '<tuple id="%s"><status><basic>%s</basic></status>' % (tuple_id, basic)]
    if note is not None:
        parts.append("<note>%s</note>" % escape(note))
    parts.append("</tuple>")
    if activity is not None or note is not None:
        parts.append('<dm:person id="p1">')
        if activity is not None:
            parts.append("<rpid:activities><rpid:%s/></rpid:activities>" % activity)
        if note is not None:
            parts.append("<dm:note>%s</dm:note>" % escape(note))
        parts.append("</dm:person>")
    parts.append("</presence>")
    return "\n".join(parts)


@dataclasses.dataclass
class Pidf:
    basic: str = None  # "open" if any tuple is open, else the first basic seen
    note: str = None  # the first note (tuple or person)
    activities: list = dataclasses.field(default_factory=list)  # RPID activity names


def parse_pidf(body):
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    p = Pidf()
    for el in root.iter():
        local = el.tag.rsplit("}", 1)[-1]
        if local == "basic" and el.text:
            b = el.text.strip()
            if p.basic is None or b == "open":
                p.basic = b
        elif local == "note" and el.text and p.note is None:
            p.note = el.text.strip()
        elif local == "activities":
            for a in el:
                name = a.tag.rsplit("}", 1)[-1]
                if name == "other" and a.text:
                    name = a.text.strip()
                if name not in p.activities:
                    p.activities.append(name)
    return p


def iscomposing(state, content_type="text/plain", refresh=None):
    parts = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<isComposing xmlns="%s">' % ISCOMPOSING_NS,
             "<state>%s</state>" % state, "<contenttype>%s</contenttype>" % content_type]
    if refresh is not None:
        parts.append("<refresh>%d</refresh>" % refresh)
    parts.append("</isComposing>")
    return "\n".join(parts)


def parse_iscomposing(body):
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "state" and el.text:
            return el.text.strip()
    return None


# ---------------------------------------------------------------- records

@dataclasses.dataclass
class Notify:
    state: str  # Subscription-State value: active, pending, terminated
    reason: str
    content_type: str
    body: str
    pidf: Pidf  # None without a PIDF body
    at: float


@dataclasses.dataclass
class Message:
    user: str  # the recipient here
    sender: str  # user@host of From
    content_type: str
    text: str
    composing: str  # "active"/"idle" for an isComposing body, else None
    request: SipMessage
    at: float


class Subscription:
    """The handle subscribe() returns: one dialog and its NOTIFYs."""

    def __init__(self, watcher, target, call_id, from_tag, expires):
        self.watcher, self.target = watcher, target
        self.call_id, self.from_tag = call_id, from_tag
        self.to_tag = None
        self.remote_target = None
        self.route_set = []
        self.cseq = 1
        self.expires = expires
        self.status = None  # final answer to the initial SUBSCRIBE
        self.notifies = []

    def __repr__(self):
        return "<Subscription %s -> %s status=%s notifies=%d>" % (self.watcher, self.target, self.status,
                                                                 len(self.notifies))


class _ClientTx:
    def __init__(self, branch, method):
        self.branch, self.method = branch, method
        self.provisional = False
        self.final = None


# ---------------------------------------------------------------- the agent

class SimpleUA:
    def __init__(self, proxy_host, proxy_port, domain, host="127.0.0.1", request_timeout=16.0):
        self.proxy = (proxy_host, proxy_port)
        self.domain = domain
        self.host = host
        self.request_timeout = request_timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self._cv = threading.Condition()
        self._tx = {}  # (branch, method) -> _ClientTx
        self._answered = {}  # (branch, cseq) of requests received -> response bytes (retransmissions)
        self._subs = {}  # (call-id, our tag) -> Subscription
        self._etags = {}  # user -> SIP-ETag of the last PUBLISH
        self._messages = []
        self._ladder = []
        self._counter = itertools.count(1)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="simple-ua", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ plumbing

    def stop(self):
        self._stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        self._thread.join(timeout=5)

    def aor(self, user):
        return "%s@%s" % (user, self.domain)

    def contact(self, user):
        return "<sip:%s@%s:%d;transport=udp>" % (user, self.host, self.port)

    def _log(self, direction, msg):
        with self._cv:
            self._ladder.append("%.3f %s %s" % (time.time(), direction, msg.summary() if isinstance(msg, SipMessage)
                                                else msg))

    def ladder(self):
        """Every message sent (->) and received (<-), in order."""
        with self._cv:
            return list(self._ladder)

    def _send(self, data, addr=None):
        try:
            self.sock.sendto(data, addr or self.proxy)
        except OSError:
            if not self._stopping:  # after stop() the socket is closed: nothing goes out any more
                raise

    def _new_tag(self):
        return uuid.uuid4().hex[:10]

    def _request(self, method, ruri, from_uri, from_tag, to_uri, to_tag, call_id, cseq, extra=(), body=b"",
                 content_type=None, routes=()):
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        lines = ["%s %s SIP/2.0" % (method, ruri),
                 "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (self.host, self.port, branch),
                 "Max-Forwards: 70"]
        lines += ["Route: %s" % r for r in routes]
        lines += ["From: <%s>;tag=%s" % (from_uri, from_tag),
                  "To: <%s>%s" % (to_uri, ";tag=" + to_tag if to_tag else ""),
                  "Call-ID: %s" % call_id, "CSeq: %d %s" % (cseq, method), "User-Agent: " + USER_AGENT]
        lines += list(extra)
        if isinstance(body, str):
            body = body.encode("utf-8")
        if content_type:
            lines.append("Content-Type: " + content_type)
        lines.append("Content-Length: %d" % len(body))
        return branch, ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body

    def _transact(self, branch, method, data, timeout=None):
        """Sends a request and waits for its final response (None = timeout),
        sending it again at T1, 2*T1, ... up to T2 while nothing came."""
        tx = _ClientTx(branch, method)
        with self._cv:
            self._tx[(branch, method)] = tx
        self._log("->", SipMessage.parse(data))
        self._send(data)
        deadline = time.monotonic() + (timeout or self.request_timeout)
        interval = T1
        try:
            with self._cv:
                while tx.final is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    if not self._cv.wait_for(lambda: tx.final is not None, min(interval, left)):
                        if tx.final is None and time.monotonic() < deadline:
                            self._send(data)
                            interval = T2 if tx.provisional else min(interval * 2, T2)
                return tx.final
        finally:
            with self._cv:
                self._tx.pop((branch, method), None)

    # ------------------------------------------------------------ receiving

    def _run(self):
        while not self._stopping:
            try:
                data, addr = self.sock.recvfrom(65535)
            except OSError:
                return
            if not data.strip():
                continue  # keep-alive
            try:
                msg = SipMessage.parse(data)
            except Exception:  # noqa: BLE001 - a peer's garbage must not end the agent
                continue
            self._log("<-", msg)
            try:
                if msg.is_request:
                    self._on_request(msg, addr)
                else:
                    self._on_response(msg)
            except OSError:
                if self._stopping:
                    return
                raise

    def _on_response(self, msg):
        key = (msg.branch(), msg.cseq()[1])
        with self._cv:
            tx = self._tx.get(key)
            if tx is None:
                return
            if msg.status < 200:
                tx.provisional = True
            elif tx.final is None:
                tx.final = msg
            self._cv.notify_all()

    def _respond(self, req, addr, status, reason, extra=(), to_tag=None):
        via = req.get_all("Via")
        lines = ["SIP/2.0 %d %s" % (status, reason)]
        lines += ["Via: %s" % v for v in via]
        to = req.get("To") or ""
        if to_tag and param(to, "tag") is None:
            to += ";tag=" + to_tag
        lines += ["From: %s" % req.get("From"), "To: %s" % to, "Call-ID: %s" % req.get("Call-ID"),
                  "CSeq: %s" % req.get("CSeq"), "Server: " + USER_AGENT]
        lines += list(extra)
        lines.append("Content-Length: 0")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        self._log("->", SipMessage.parse(data))
        # RFC 3581: to the source of the request; the proxy's Via says where too,
        # but every request here comes straight from it
        self._send(data, addr)
        return data

    def _on_request(self, req, addr):
        key = (req.branch(), req.get("CSeq"))
        with self._cv:
            again = self._answered.get(key)
        if again is not None:  # a retransmission: the same answer
            self._send(again, addr)
            return
        if req.method == "ACK":
            return
        handler = {"MESSAGE": self._on_message, "NOTIFY": self._on_notify, "OPTIONS": self._on_options}.get(
            req.method)
        if handler is None:
            data = self._respond(req, addr, 405, "Method Not Allowed",
                                 ["Allow: MESSAGE, NOTIFY, OPTIONS"], self._new_tag())
        else:
            data = handler(req, addr)
        with self._cv:
            self._answered[key] = data

    def _on_options(self, req, addr):
        return self._respond(req, addr, 200, "OK", ["Allow: MESSAGE, NOTIFY, OPTIONS, SUBSCRIBE",
                                                    "Accept: text/plain, application/im-iscomposing+xml"],
                             self._new_tag())

    def _on_message(self, req, addr):
        user = user_of(uri_of(req.uri))
        ct = req.content_type()
        composing = parse_iscomposing(req.body) if ct == "application/im-iscomposing+xml" else None
        m = Message(user=user, sender=aor_of(req.get("From") or ""), content_type=ct, text=req.text(),
                    composing=composing, request=req, at=time.monotonic())
        data = self._respond(req, addr, 200, "OK", (), self._new_tag())
        with self._cv:
            self._messages.append(m)
            self._cv.notify_all()
        return data

    def _on_notify(self, req, addr):
        call_id = req.get("Call-ID")
        our_tag = param(req.get("To") or "", "tag")
        with self._cv:
            sub = self._subs.get((call_id, our_tag))
        if sub is None:
            return self._respond(req, addr, 481, "Subscription Does Not Exist")
        ss = req.get("Subscription-State") or ""
        state = ss.split(";")[0].strip().lower()
        ct = req.content_type()
        n = Notify(state=state, reason=param(";" + ss.split(";", 1)[1] if ";" in ss else "", "reason"),
                   content_type=req.get("Content-Type") or "", body=req.text(),
                   pidf=parse_pidf(req.body) if ct == "application/pidf+xml" and req.body else None,
                   at=time.monotonic())
        data = self._respond(req, addr, 200, "OK")
        with self._cv:
            # the dialog may be known from the NOTIFY before the 200 arrives (RFC 6665 §4.1.2.4)
            if sub.to_tag is None:
                sub.to_tag = param(req.get("From") or "", "tag")
            if sub.remote_target is None and req.get("Contact"):
                sub.remote_target = uri_of(req.get("Contact"))
                sub.route_set = req.get_all("Record-Route")
            sub.notifies.append(n)
            self._cv.notify_all()
        return data

    # ------------------------------------------------------------ API

    def register(self, user, expires=3600):
        """REGISTER user@domain at this agent's address; returns the status."""
        call_id = uuid.uuid4().hex
        aor = "sip:" + self.aor(user)
        cseq = next(self._counter)
        branch, data = self._request("REGISTER", "sip:" + self.domain, aor, self._new_tag(), aor, None, call_id, cseq,
                                     ["Contact: %s;expires=%d" % (self.contact(user), expires),
                                      "Expires: %d" % expires])
        r = self._transact(branch, "REGISTER", data)
        return r.status if r else 408

    def publish(self, user, basic="open", note=None, activity=None, expires=3600):
        """PUBLISHes user's state (a refresh of the last one via SIP-If-Match;
        after a 412 a new one). Returns the status."""
        body = pidf("sip:" + self.aor(user), basic, note, activity)
        aor = "sip:" + self.aor(user)
        for _ in range(2):
            with self._cv:
                etag = self._etags.get(user)
            extra = ["Event: presence", "Expires: %d" % expires]
            if etag:
                extra.append("SIP-If-Match: " + etag)
            branch, data = self._request("PUBLISH", aor, aor, self._new_tag(), aor, None, uuid.uuid4().hex,
                                         next(self._counter), extra, body, "application/pidf+xml")
            r = self._transact(branch, "PUBLISH", data)
            if r is None:
                return 408
            if r.status == 412 and etag:
                with self._cv:
                    self._etags.pop(user, None)
                continue
            if 200 <= r.status < 300 and r.get("SIP-ETag"):
                with self._cv:
                    self._etags[user] = r.get("SIP-ETag")
            return r.status
        return 412

    def subscribe(self, watcher, target, expires=3600, wait=True):
        """SUBSCRIBE (Event: presence) from watcher (a user of this domain) to
        target (user@host); returns the handle, whose .status is the final
        answer (None while none came, with wait=False)."""
        target = target if "@" in target else self.aor(target)
        call_id = uuid.uuid4().hex
        tag = self._new_tag()
        sub = Subscription(watcher, target, call_id, tag, expires)
        with self._cv:
            self._subs[(call_id, tag)] = sub
        branch, data = self._request(
            "SUBSCRIBE", "sip:" + target, "sip:" + self.aor(watcher), tag, "sip:" + target, None, call_id, sub.cseq,
            ["Contact: " + self.contact(watcher), "Event: presence", "Accept: application/pidf+xml",
             "Expires: %d" % expires, "Allow: MESSAGE, NOTIFY, OPTIONS"])
        if not wait:
            threading.Thread(target=self._finish_subscribe, args=(sub, branch, data), daemon=True).start()
            return sub
        self._finish_subscribe(sub, branch, data)
        return sub

    def _finish_subscribe(self, sub, branch, data):
        r = self._transact(branch, "SUBSCRIBE", data)
        with self._cv:
            sub.status = r.status if r else 408
            if r is not None and 200 <= r.status < 300:
                sub.to_tag = param(r.get("To") or "", "tag")
                if r.get("Contact"):
                    sub.remote_target = uri_of(r.get("Contact"))
                sub.route_set = list(reversed(r.get_all("Record-Route")))
                if r.get("Expires", "").isdigit():
                    sub.expires = int(r.get("Expires"))
            self._cv.notify_all()

    def final_status(self, sub, timeout=15):
        with self._cv:
            self._cv.wait_for(lambda: sub.status is not None, timeout)
            return sub.status

    def notifies(self, sub):
        with self._cv:
            return list(sub.notifies)

    def wait_notify(self, sub, predicate=lambda n: True, timeout=15, start=0):
        """The first NOTIFY of sub from index `start` on that matches."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for n in sub.notifies[start:]:
                    if predicate(n):
                        return n
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no matching NOTIFY for %s -> %s within %.0f s; got: %s" % (
                        sub.watcher, sub.target, timeout, [(n.state, n.pidf) for n in sub.notifies]))
                self._cv.wait(left)

    def unsubscribe(self, sub):
        """SUBSCRIBE Expires: 0 in the dialog; returns the status."""
        with self._cv:
            sub.cseq += 1
            cseq = sub.cseq
            target = sub.remote_target or "sip:" + sub.target
            routes = list(sub.route_set)
            to_tag = sub.to_tag
        branch, data = self._request(
            "SUBSCRIBE", target, "sip:" + self.aor(sub.watcher), sub.from_tag, "sip:" + sub.target, to_tag,
            sub.call_id, cseq, ["Contact: " + self.contact(sub.watcher), "Event: presence",
                                "Accept: application/pidf+xml", "Expires: 0"], routes=routes)
        r = self._transact(branch, "SUBSCRIBE", data)
        return r.status if r else 408

    def send_message(self, from_user, to_uri, text, content_type="text/plain;charset=UTF-8"):
        """A page-mode MESSAGE (RFC 3428) from from_user to to_uri
        (user@host); returns the final status (408 when none came)."""
        r = self.send_message_full(from_user, to_uri, text, content_type)
        return r.status if r else 408

    def send_message_full(self, from_user, to_uri, text, content_type="text/plain;charset=UTF-8"):
        """As send_message, returning the final response (None on timeout)."""
        to_uri = to_uri[4:] if to_uri.startswith("sip:") else to_uri
        branch, data = self._request("MESSAGE", "sip:" + to_uri, "sip:" + self.aor(from_user), self._new_tag(),
                                     "sip:" + to_uri, None, uuid.uuid4().hex, next(self._counter), (), text,
                                     content_type)
        return self._transact(branch, "MESSAGE", data)

    def send_composing(self, from_user, to_uri, state="active", refresh=None):
        """An isComposing MESSAGE (RFC 3994); returns the status."""
        return self.send_message(from_user, to_uri, iscomposing(state, refresh=refresh),
                                 "application/im-iscomposing+xml")

    def messages(self, user=None):
        with self._cv:
            return [m for m in self._messages if user is None or m.user == user]

    def wait_message(self, user, predicate=lambda m: True, timeout=15, start=0):
        """The first MESSAGE received for user (from index `start` of that
        user's messages on) that matches predicate."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                mine = [m for m in self._messages if m.user == user]
                for m in mine[start:]:
                    if predicate(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no matching MESSAGE for %s within %.0f s; got: %s" % (
                        user, timeout, [(m.sender, m.content_type, m.composing or m.text) for m in mine]))
                self._cv.wait(left)
