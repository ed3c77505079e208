"""A scripted Microsoft Lync 2013 pool and the users homed on it, for IMP's
end-to-end tests of partitioned intradomain federation.

It plays the Microsoft side: the pool that IMP's SIP proxy reaches by static
route, and Lync users such as bob@example.com who watch IMP users, are
watched by them, and exchange instant messages with them. Python 3 standard
library only (Debian's /usr/bin/python3).

Every behaviour cites the line of the dialect page it implements, as
`[MS <section>] "<quote>"`, where MS is /work/shared/spec/MICROSOFT-SIP.md and
<section> one of its headings (Transport, Presence, IM, Standard, Emulating).

Threads: one I/O thread runs a selector over the TLS listener and every
connection (non-blocking TLS, so that no SSL object is ever used by two
threads at once); one dispatcher thread handles the parsed messages in order
and runs the timers (subscription expiry); the test's threads call the public
API. Every wait waits on a condition with a deadline, never on a bare sleep.

Connections follow RFC 3261 §18: a response goes back on the connection its
request came on; a request reuses a live connection to IMP (the only peer of
this pool) or opens one to IMP's peer-auth listener, presenting the pool's
certificate.
"""
import base64
import dataclasses
import heapq
import itertools
import os
import queue
import re
import selectors
import socket
import ssl
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

# ---------------------------------------------------------------- Lync vocabulary

# [MS Presence] "Lync availability numbers: 0-4499 Available, 4500-5999
# Available-Idle, 6000-7499 Busy, 7500-8999 Busy-Idle, 9000-11999 Do Not
# Disturb, 12000-14999 Be Right Back, 15000-17999 Away, >=18000 Offline.
# Typical values: 3500, 6500, 9500, 12500, 15500, 18500."
AVAILABLE = 3500
AVAILABLE_IDLE = 4500
BUSY = 6500
BUSY_IDLE = 7500
DND = 9500
BRB = 12500
AWAY = 15500
APPEAR_OFFLINE = 18000  # what a user who chose "Appear Offline" publishes: watchers see Offline
OFFLINE = 18500  # signed out

_CLASSES = [(4500, "available"), (6000, "available-idle"), (7500, "busy"), (9000, "busy-idle"),
            (12000, "do-not-disturb"), (15000, "be-right-back"), (18000, "away")]


def availability_class(availability):
    """The Lync state a number stands for: available, available-idle, busy,
    busy-idle, do-not-disturb, be-right-back, away or offline."""
    for bound, name in _CLASSES:
        if availability < bound:
            return name
    return "offline"


# [MS Presence] "Activity tokens: on-the-phone, in-a-conference, in-a-meeting,
# out-of-office, urgent-interruptions-only." Mapped onto RFC 4480 activities
# where RPID has one; the others travel as <rpid:other>token</rpid:other>.
_RPID_OF_TOKEN = {"on-the-phone": "on-the-phone", "in-a-meeting": "meeting", "in-a-conference": "meeting"}
_RPID_OF_CLASS = {"busy": "busy", "busy-idle": "busy", "do-not-disturb": "busy", "be-right-back": "away",
                  "away": "away"}

USER_AGENT = "UCCAPI/15.0.4569.1503 OC/15.0.4569.1503 (Microsoft Lync)"  # a Lync 2013 client
SERVER = "RTC/5.0"  # the Lync 2013 front end, for what the pool itself originates

# [MS IM] "a=accept-types:text/plain text/html multipart/alternative
# application/im-iscomposing+xml application/ms-imdn+xml"
ACCEPT_TYPES = "text/plain text/html multipart/alternative application/im-iscomposing+xml application/ms-imdn+xml"
# [MS IM] "Text: MESSAGE in the dialog, Content-Type: text/plain; charset=UTF-8 (possibly with a msgr=
# parameter carrying base64 UTF-16LE formatting hints ...)": what a Lync 2013 client puts there.
MSGR = base64.b64encode("X-MMS-IM-Format: FN=Segoe%20UI; EF=; CO=0; CS=0; PF=0\r\n\r\n"
                        .encode("utf-16-le")).decode()
# [MS IM] "Also accept text/html, multipart/alternative; reply 415 to anything else."
TEXT_TYPES = ("text/plain", "text/html", "multipart/alternative")
# [MS Presence] "Lync's incoming SUBSCRIBEs may offer application/xpidf+xml, text/xml+msrtc.pidf,
# application/pidf+xml, application/msrtc-event-categories+xml."
LYNC_ACCEPT = ("application/xpidf+xml", "text/xml+msrtc.pidf", "application/pidf+xml",
               "application/msrtc-event-categories+xml")
# [MS Presence] "OCS accepted 1200..43200 s by default"
MIN_EXPIRES, MAX_EXPIRES = 1200, 43200
# [MS Presence] "Refresh: Lync re-subscribes about every 1 h 45 min" (REQUIREMENTS AV-3: Expires: 7446)
LYNC_EXPIRES = 7446
# [MS Transport] "Responses may carry ms-diagnostics: <id>;source="...";reason="..."" (id 4005 is what
# a pool answers for an unknown user)
DIAG_UNKNOWN_USER = '4005;reason="Destination URI either not enabled for SIP or does not exist"'

REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout",
           415: "Unsupported Media Type", 420: "Bad Extension", 423: "Interval Too Brief",
           480: "Temporarily Unavailable", 481: "Call Leg/Transaction Does Not Exist", 486: "Busy Here",
           488: "Not Acceptable Here", 489: "Bad Event", 500: "Server Internal Error", 501: "Not Implemented",
           503: "Service Unavailable", 504: "Server Time-out"}

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, INFO, SUBSCRIBE, NOTIFY, BENOTIFY"

# ---------------------------------------------------------------- SIP messages

_COMPACT = {"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length", "c": "content-type",
            "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via", "o": "event",
            "u": "allow-events", "r": "refer-to", "x": "session-expires"}


def _canon(name):
    n = name.strip().lower()
    return _COMPACT.get(n, n)


class SipMessage:
    """A SIP request or response: start line, ordered headers, body bytes."""

    def __init__(self, start, headers=(), body=b""):
        self.start = start
        self.headers = list(headers)
        self.body = body

    @classmethod
    def parse(cls, raw):
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", errors="replace").split("\r\n")
        headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:  # folded line (RFC 3261 §7.3.1)
                name, value = headers[-1]
                headers[-1] = (name, value + " " + line.strip())
            elif ":" in line:
                name, value = line.split(":", 1)
                headers.append((name.strip(), value.strip()))
        return cls(lines[0], headers, body)

    @property
    def is_request(self):
        return not self.start.startswith("SIP/2.0 ")

    @property
    def method(self):
        if self.is_request:
            return self.start.split(" ", 1)[0]
        return (self.get("CSeq") or " ").split()[-1]

    @property
    def uri(self):
        return self.start.split(" ")[1]

    @property
    def status(self):
        return int(self.start.split(" ")[1])

    @property
    def cseq(self):
        return int((self.get("CSeq") or "0").split()[0])

    def get(self, name, default=None):
        c = _canon(name)
        for n, v in self.headers:
            if _canon(n) == c:
                return v
        return default

    def get_all(self, name):
        c = _canon(name)
        return [v for n, v in self.headers if _canon(n) == c]

    def tokens(self, name):
        """The comma-separated tokens of every `name` header, lower-cased,
        parameters dropped (Supported, Require, Accept, Allow)."""
        return [t.split(";")[0].strip().lower() for v in self.get_all(name) for t in v.split(",") if t.strip()]

    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def to_bytes(self):
        lines = [self.start] + ["%s: %s" % (n, v) for n, v in self.headers if _canon(n) != "content-length"]
        lines.append("Content-Length: %d" % len(self.body))
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    def summary(self):
        """One ladder line: the request line, or the status line and its method."""
        if self.is_request:
            return "%s %s" % (self.method, self.uri)
        return "%s (%s)" % (self.start[8:], self.method)


def _uri_of(value):
    """The URI of a name-addr or addr-spec header value."""
    m = re.search(r"<([^>]*)>", value)
    return m.group(1) if m else value.split(";")[0].strip()


def _param(value, name):
    """A header parameter (after the name-addr), e.g. tag."""
    rest = value[value.index(">") + 1:] if "<" in value else value
    m = re.search(r";\s*%s\s*=\s*\"?([^;\",\s]+)" % re.escape(name), rest, re.I)
    return m.group(1) if m else None


def _aor_of_uri(uri):
    """user@host of a SIP URI, lower-cased, parameters and port dropped."""
    u = re.sub(r"^sips?:", "", uri.strip(), flags=re.I).split(";")[0].split("?")[0]
    if "@" in u:
        user, host = u.rsplit("@", 1)
        return "%s@%s" % (user.lower(), host.split(":")[0].lower())
    return u.split(":")[0].lower()


def _new_tag():
    return uuid.uuid4().hex[:10]


def _token_list(value):
    return [t.strip() for t in value.split(",") if t.strip()]


# ---------------------------------------------------------------- presence documents

PIDF_NS = "urn:ietf:params:xml:ns:pidf"
STATE_NS = "http://schemas.microsoft.com/2006/09/sip/state"


def lync_pidf(aor, availability, activity=None, note=None):
    """The plain PIDF the pool sends for `aor`.

    [MS Presence] "Offering only application/pidf+xml makes Lync answer with
    plain PIDF (one tuple plus a few RPID/CIPID elements) instead of its own
    category format." The Lync availability number rides in the person
    element as Lync's own state category element (namespace
    http://schemas.microsoft.com/2006/09/sip/state), so that the mapping of
    AV-4 can be checked against the exact number; the RFC 3863/4480 parts
    alone must be enough to map it too."""
    cls = availability_class(availability)
    basic = "closed" if cls == "offline" else "open"
    acts = []
    if cls in _RPID_OF_CLASS:
        acts.append("<rpid:%s/>" % _RPID_OF_CLASS[cls])
    if activity and cls != "offline":
        rpid = _RPID_OF_TOKEN.get(activity)
        if rpid and "<rpid:%s/>" % rpid not in acts:
            acts.append("<rpid:%s/>" % rpid)
        elif not rpid:
            acts.append("<rpid:other>%s</rpid:other>" % escape(activity))
    person = []
    if acts:
        person.append("<rpid:activities>%s</rpid:activities>" % "".join(acts))
    if cls in ("available-idle", "busy-idle"):
        person.append("<rpid:user-input>idle</rpid:user-input>")
    person.append('<st:state type="aggregateState"><st:availability>%d</st:availability>%s</st:state>' %
                  (availability, '<st:activity token="%s"/>' % escape(activity, {'"': "&quot;"}) if activity else ""))
    return ('<?xml version="1.0" encoding="UTF-8"?>\r\n'
            '<presence xmlns="%s" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
            'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:st="%s" entity="sip:%s">'
            '<tuple id="t0"><status><basic>%s</basic></status><contact priority="1">sip:%s</contact></tuple>'
            '%s<dm:person id="p0">%s</dm:person></presence>' %
            (PIDF_NS, STATE_NS, escape(aor), basic, escape(aor),
             '<note xml:lang="en">%s</note>' % escape(note) if note else "", "".join(person)))


@dataclasses.dataclass
class Pidf:
    """A presence document, parsed defensively ([MS Presence] "Parse PIDF
    <basic>, RPID <activities> and <note> defensively; unknown content must
    not break the mapping."): basic is "open"/"closed"/None, activities the
    local names of the RPID activity elements (an <other> element gives
    "other:<text>"), note the first note anywhere, availability the Lync
    number when present, error the XML error if the body did not parse."""
    raw: str
    basic: str = None
    activities: list = dataclasses.field(default_factory=list)
    note: str = None
    availability: int = None
    error: str = None

    @classmethod
    def parse(cls, raw):
        p = cls(raw)
        if not raw.strip():
            return p
        try:
            root = ET.fromstring(raw.encode())
        except ET.ParseError as e:
            p.error = str(e)
            return p
        for el in root.iter():
            local = el.tag.rsplit("}", 1)[-1]
            if local == "basic" and p.basic is None:
                p.basic = (el.text or "").strip().lower()
            elif local == "activities":
                for a in el:
                    name = a.tag.rsplit("}", 1)[-1]
                    p.activities.append("other:" + (a.text or "").strip() if name == "other" else name)
            elif local == "note" and p.note is None:
                p.note = (el.text or "").strip()
            elif local == "availability" and p.availability is None:
                try:
                    p.availability = int((el.text or el.get("aggregate") or "").strip())
                except ValueError:
                    pass
        return p


# ---------------------------------------------------------------- records handed to tests


@dataclasses.dataclass
class Notify:
    """A NOTIFY received for an outgoing subscription."""
    state: str  # active, pending, terminated
    expires: int
    reason: str
    content_type: str
    pidf: Pidf
    message: SipMessage


class Subscription:
    """An outgoing subscription (a Lync user watching an IMP user); the
    handle subscribe() returns. Read its fields through the emulator's
    methods, or after a wait_* returned."""

    def __init__(self, watcher, target, expires, accept):
        self.watcher, self.target, self.expires, self.accept = watcher, target, expires, accept
        self.call_id = uuid.uuid4().hex + "@lync"
        self.dialog = None
        self.state = "init"  # init, pending, active, terminating (un-SUBSCRIBE sent), terminated
        self.notifies = []
        self.responses = []  # final responses to each SUBSCRIBE, in order
        self.final_status = None  # of the first SUBSCRIBE

    def __repr__(self):
        return "<Subscription %s -> %s %s>" % (self.watcher, self.target, self.state)


@dataclasses.dataclass
class IncomingSubscription:
    """A snapshot of a subscription IMP holds on a Lync user."""
    watcher: str
    target: str
    expires: int
    state: str  # active, pending, terminated
    refreshes: int
    call_id: str
    reason: str = None


@dataclasses.dataclass
class ReceivedIm:
    """A text received by a Lync user. mode: "session" (MESSAGE in a
    dialog), "invite" (ms-text-format in the INVITE) or "page" (RFC 3428)."""
    sender: str
    recipient: str
    text: str
    content_type: str
    mode: str
    call_id: str
    message: SipMessage


@dataclasses.dataclass
class TypingEvent:
    """A typing indication received by a Lync user; kind is "keyboard"
    (INFO KeyboardActivity) or "iscomposing" (RFC 3994)."""
    sender: str
    recipient: str
    typing: bool
    kind: str
    method: str


@dataclasses.dataclass
class ImDialog:
    """A snapshot of an IM session."""
    local: str
    remote: str
    call_id: str
    conversation_id: str
    initiator: str  # "local" (the Lync user) or "remote"
    state: str  # confirmed, terminated
    peer_text_format: bool


@dataclasses.dataclass
class ByeEvent:
    local: str
    remote: str
    call_id: str


class _Dialog:
    """RFC 3261 §12 dialog state, from the Lync side."""

    def __init__(self, call_id, local_aor, local_tag, remote_aor, remote_tag=None):
        self.call_id = call_id
        self.local_aor, self.local_tag = local_aor, local_tag
        self.remote_aor, self.remote_tag = remote_aor, remote_tag
        self.local_seq = 1
        self.remote_target = "sip:" + remote_aor
        self.route_set = []

    def learn_target(self, msg):
        contact = msg.get("Contact")
        if contact:
            self.remote_target = _uri_of(contact)


class _ImSession:
    def __init__(self, dialog, conversation_id, initiator):
        self.dialog = dialog
        self.conversation_id = conversation_id
        self.initiator = initiator
        self.state = "confirmed"
        self.peer_text_format = False

    def snapshot(self):
        d = self.dialog
        return ImDialog(d.local_aor, d.remote_aor, d.call_id, self.conversation_id, self.initiator, self.state,
                        self.peer_text_format)


class _InSub:
    def __init__(self, dialog, expires):
        self.dialog = dialog
        self.expires = expires
        self.deadline = time.monotonic() + expires
        self.state = "active"
        self.refreshes = 0
        self.reason = None

    def snapshot(self):
        d = self.dialog
        return IncomingSubscription(d.remote_aor, d.local_aor, self.expires, self.state, self.refreshes, d.call_id,
                                    self.reason)


class _ClientTransaction:
    def __init__(self, request, branch):
        self.request = request
        self.branch = branch
        self.conn = None
        self.response = None  # the final response
        self.error = None  # a transport failure: no response will come
        self.on_final = None  # called by the dispatcher with (tx) once final


class _Conn:
    """One TLS connection, owned by the I/O thread (buffers under _io_lock)."""

    def __init__(self, sock, direction, peer, epoch):
        self.sock = sock
        self.direction = direction  # "in" (accepted) or "out" (opened to IMP)
        self.peer = peer
        self.epoch = epoch
        self.handshaken = direction == "out"  # outgoing ones complete their handshake before registration
        self.peer_cn = None
        self.inbuf = b""
        self.outbuf = b""
        self.want_write = False
        self.closed = False
        self.last_used = time.monotonic()


class LyncEmulator:
    """The Lync pool for `domain` and its users. `ca` is a TestCa, `cert` a
    (cert_path, key_path) pair it issued (the pool's certificate, used as
    server and client certificate); IMP's peer-auth listener is at
    imp_host:imp_port.

    Users exist when listed in `users` or given to add_user/set_presence;
    with users=None every user of `domain` exists. reuse_incoming=False keeps
    the pool's requests off the connections IMP opened (they then always go
    to IMP's listener). gruu_contact=True gives Contacts in Lync's GRUU form
    (sip:bob@example.com;opaque=user:epid:...;gruu) instead of the emulator's
    host:port. expires_range is the SUBSCRIBE expiry the pool accepts
    (a test of expiry may allow a few seconds)."""

    def __init__(self, ca, cert, imp_host, imp_port, domain="example.com", users=None, host="127.0.0.1", port=0,
                 reuse_incoming=True, gruu_contact=False, request_timeout=10.0, connect_timeout=5.0,
                 expires_range=(MIN_EXPIRES, MAX_EXPIRES)):
        self.domain = domain.lower()
        self.imp = (imp_host, imp_port)
        self.host = host
        self._wanted_port = port
        self.port = None
        self._rr = None          # the pool's Record-Route value (record_route())
        self.route_errors = []   # in-dialog requests that lost it (_check_route)
        self.reuse_incoming = reuse_incoming
        self.gruu_contact = gruu_contact
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.min_expires, self.max_expires = expires_range
        # [MS Transport] "Lync: TLS only (mutual TLS on 5061)." Both directions present the pool's
        # certificate; a peer without a certificate from the test CA fails the handshake.
        self._server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_ctx.load_cert_chain(*cert)
        self._server_ctx.load_verify_locations(ca.cert)
        self._server_ctx.verify_mode = ssl.CERT_REQUIRED
        self._client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._client_ctx.load_cert_chain(*cert)
        self._client_ctx.load_verify_locations(ca.cert)
        self._client_ctx.check_hostname = False

        self._lock = threading.RLock()  # SIP state and records
        self._changed = threading.Condition(self._lock)
        self._users = None if users is None else {self._aor(u) for u in users}
        self._presence = {}  # aor -> (availability, activity, note)
        self._policy = {}  # aor -> allow | pending | block | reject
        self._watcher_policy = {}  # (aor, watcher) -> policy; approvals land here
        self._im_behaviour = {}  # aor -> dict
        self._epids = {}
        self._txs = {}  # branch -> _ClientTransaction
        self._in_subs = {}  # (call_id, local_tag) -> _InSub
        self._out_subs = {}  # (call_id, local_tag) -> Subscription
        self._sessions = {}  # (call_id, local_tag) -> _ImSession
        self._pair = {}  # (local aor, remote aor) -> _ImSession, the current conversation
        self._ended_subs = []  # snapshots of incoming subscriptions that ended
        self._received_ims = []
        self._typing = []
        self._byes = []
        self._requests = []  # every request received
        self._last_final = {}  # method -> last final response received
        self._ladder = []
        self._ladder_lock = threading.Lock()  # a leaf: taken under any other lock
        self._reachable = True
        self._epoch = 0

        self._io_lock = threading.Lock()  # connections and their buffers; never taken before _lock
        self._io_changed = threading.Condition(self._io_lock)
        self._conns = []
        self._commands = []
        self._connect_lock = threading.Lock()
        # numbering a dialog's CSeq and queueing the request happen together, so that requests of one
        # dialog leave in CSeq order (RFC 3261 §12.2.2 lets the peer refuse a lower CSeq)
        self._order_lock = threading.RLock()
        self._listener = None
        self._selector = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._inbox = queue.Queue()
        self._timers = []  # heap of (when, seq, fn), dispatcher only
        self._timer_seq = itertools.count()
        self._io_thread = None
        self._dispatch_thread = None

    # ------------------------------------------------------------ life cycle

    def start(self):
        """Listens on host:<free port> (or the port given) and starts the threads."""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._listen()
        self._io_thread = threading.Thread(target=self._io_loop, name="lync-io-%d" % self.port, daemon=True)
        self._dispatch_thread = threading.Thread(target=self._dispatch_loop, name="lync-sip-%d" % self.port,
                                                 daemon=True)
        self._io_thread.start()
        self._dispatch_thread.start()
        return self

    def stop(self):
        """Closes every connection and the listener and ends the threads."""
        if not self._io_thread:
            return
        self._command("stop", wait=False)
        self._io_thread.join(10)
        self._inbox.put(None)
        self._dispatch_thread.join(10)
        self._io_thread = None
        self._wake_r.close()
        self._wake_w.close()
        self._fail_transactions("emulator stopped")

    def restart(self):
        """The Microsoft server restarts: every connection, dialog,
        subscription and pending transaction is dropped and the pool listens
        again on the same port. Users, presence, policies and the records
        (ladder, received messages) stay."""
        with self._lock:
            self._epoch += 1
            self._reachable = True
            self._in_subs.clear()
            for sub in self._out_subs.values():
                sub.state = "terminated"
            self._out_subs.clear()
            for s in self._sessions.values():
                s.state = "terminated"
            self._sessions.clear()
            self._pair.clear()
            self._trace("-- restart --")
            self._changed.notify_all()
        self._command("restart")
        self._fail_transactions("the pool restarted")

    def set_reachable(self, reachable, close_connections=False):
        """While unreachable the pool refuses new connections (its listener is
        closed), answers nothing it receives on the connections it keeps
        (close_connections=True drops them too) and sends nothing, so IMP's
        OPTIONS keep-alive fails."""
        with self._lock:
            self._reachable = reachable
            self._trace("-- reachable --" if reachable else "-- unreachable --")
        if reachable:
            self._command("listen")
        else:
            self._command("unlisten")
            if close_connections:
                self._command("close_all")

    # ------------------------------------------------------------ users, presence, policy

    def _aor(self, user):
        u = re.sub(r"^sips?:", "", user.strip(), flags=re.I).lower()
        return u if "@" in u else "%s@%s" % (u, self.domain)

    def _epid(self, aor):
        with self._lock:
            return self._epids.setdefault(aor, uuid.uuid4().hex[:10])

    def add_user(self, user):
        with self._lock:
            if self._users is not None:
                self._users.add(self._aor(user))

    def _exists(self, aor):
        if self._users is None:
            return aor.endswith("@" + self.domain)
        return aor in self._users

    def set_presence(self, user, availability, activity=None, note=None):
        """Stores the user's state and sends a NOTIFY with it to every active
        subscription on that user (blocked watchers keep seeing Offline)."""
        aor = self._aor(user)
        with self._lock:
            if self._users is not None:
                self._users.add(aor)
            self._presence[aor] = (int(availability), activity, note)
            subs = [s for s in self._in_subs.values() if s.dialog.local_aor == aor and s.state == "active"
                    and self._policy_for(aor, s.dialog.remote_aor) != "block"]
        for s in subs:
            self._notify_watcher(s)

    def presence(self, user):
        """(availability, activity, note) of a user; signed out (18500) until set."""
        with self._lock:
            return self._presence.get(self._aor(user), (OFFLINE, None, None))

    def set_policy(self, user, policy, watcher=None):
        """How the user answers new watchers ([REQUIREMENTS AV-2] "the
        Microsoft server ... applies its own policy"): "allow" (active at
        once), "pending" (NOTIFY pending until approve()), "block" (polite
        blocking: accepted, the user always appears Offline), "reject" (403).
        With `watcher`, for that watcher only."""
        if policy not in ("allow", "pending", "block", "reject"):
            raise ValueError(policy)
        with self._lock:
            if watcher:
                self._watcher_policy[(self._aor(user), _aor_of_uri(watcher))] = policy
            else:
                self._policy[self._aor(user)] = policy

    def _policy_for(self, aor, watcher):
        return self._watcher_policy.get((aor, watcher), self._policy.get(aor, "allow"))

    def approve(self, user, watcher):
        """The Lync user approves `watcher`: pending subscriptions turn active
        (NOTIFY with the state). [REQUIREMENTS AV-2] "Microsoft approvals are
        permanent": later subscriptions from that watcher are active at once."""
        aor, w = self._aor(user), _aor_of_uri(watcher)
        with self._lock:
            self._watcher_policy[(aor, w)] = "allow"
            subs = [s for s in self._in_subs.values()
                    if s.dialog.local_aor == aor and s.dialog.remote_aor == w and s.state == "pending"]
            for s in subs:
                s.state = "active"
        for s in subs:
            self._notify_watcher(s)

    def terminate_subscriptions(self, user, reason=None, watcher=None):
        """Ends the subscriptions on `user` (of `watcher` only, if given) with
        NOTIFY Subscription-State: terminated[;reason=...]; returns how many."""
        aor = self._aor(user)
        w = _aor_of_uri(watcher) if watcher else None
        with self._lock:
            subs = [s for s in self._in_subs.values() if s.dialog.local_aor == aor and w in (None, s.dialog.remote_aor)]
        for s in subs:
            self._end_in_sub(s, reason)
        return len(subs)

    def set_im_behaviour(self, user, invite_status=200, message_status=200, ms_text_format=True, diagnostics=None):
        """How the user's client answers IMP: invite_status to INVITE,
        message_status to MESSAGE (481/408/480 = the dialog is dead, the
        session is dropped), whether its 200 to INVITE carries Supported:
        ms-text-format; diagnostics is the ms-diagnostics value of those
        failure responses."""
        with self._lock:
            self._im_behaviour[self._aor(user)] = dict(invite_status=invite_status, message_status=message_status,
                                                       ms_text_format=ms_text_format, diagnostics=diagnostics)

    def _behaviour(self, aor):
        return self._im_behaviour.get(aor, dict(invite_status=200, message_status=200, ms_text_format=True,
                                                diagnostics=None))

    # ------------------------------------------------------------ records

    def ladder(self):
        """Every message sent (→) and received (←), one line each."""
        with self._ladder_lock:
            return list(self._ladder)

    def subscriptions(self):
        """Snapshots of the incoming subscriptions, live ones and ended ones."""
        with self._lock:
            return list(self._ended_subs) + [s.snapshot() for s in self._in_subs.values()]

    def wait_subscription(self, watcher, target, timeout=10, min_refreshes=0, state=None):
        """Waits until IMP's `watcher` holds a live subscription on `target`
        refreshed at least min_refreshes times (and in `state`, if given)."""
        w, t = _aor_of_uri(watcher), self._aor(target)

        def found():
            for s in self._in_subs.values():
                if (s.dialog.remote_aor == w and s.dialog.local_aor == t and s.refreshes >= min_refreshes
                        and (state is None or s.state == state)):
                    return s.snapshot()
            return None
        return self._wait(found, timeout, "a subscription of %s on %s" % (w, t))

    def wait_subscription_ended(self, watcher, target, timeout=10):
        """Waits until a subscription of `watcher` on `target` has ended."""
        w, t = _aor_of_uri(watcher), self._aor(target)
        return self._wait(lambda: next((s for s in self._ended_subs if s.watcher == w and s.target == t), None),
                          timeout, "the end of the subscription of %s on %s" % (w, t))

    def received_messages(self, user=None):
        with self._lock:
            return [m for m in self._received_ims if user is None or m.recipient == self._aor(user)]

    def typing_events(self, user=None):
        with self._lock:
            return [e for e in self._typing if user is None or e.recipient == self._aor(user)]

    def dialogs(self):
        """Snapshots of the live IM sessions."""
        with self._lock:
            return [s.snapshot() for s in self._sessions.values()]

    def requests(self, method=None):
        """Every request received (SipMessage), or those of one method."""
        with self._lock:
            return [r for r in self._requests if method is None or r.method == method]

    def last_response(self, method):
        """The last final response received to a request of `method`."""
        with self._lock:
            return self._last_final.get(method)

    def connections(self):
        """(direction, peer, peer certificate CN) of every open connection."""
        with self._io_lock:
            return [(c.direction, c.peer, c.peer_cn) for c in self._conns if not c.closed]

    def wait_no_connections(self, timeout=10):
        """Waits until every connection is closed (e.g. the peer restarted)."""
        deadline = time.monotonic() + timeout
        with self._io_lock:
            while any(not c.closed for c in self._conns):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("connections still open after %.0f s" % timeout)
                self._io_changed.wait(left)

    def wait_im(self, to_user, match=None, timeout=10, from_user=None):
        """Waits for a text to `to_user`; `match` is the exact text or a
        predicate on ReceivedIm. Returns the ReceivedIm."""
        to, frm = self._aor(to_user), _aor_of_uri(from_user) if from_user else None

        def ok(m):
            if m.recipient != to or (frm and m.sender != frm):
                return False
            return match is None or (m.text == match if isinstance(match, str) else match(m))
        return self._wait(lambda: next((m for m in self._received_ims if ok(m)), None), timeout,
                          "an IM to %s matching %r" % (to, match))

    def wait_typing(self, to_user, timeout=10, typing=True, from_user=None):
        """Waits for a typing indication (typing or stopped) to `to_user`."""
        to, frm = self._aor(to_user), _aor_of_uri(from_user) if from_user else None
        return self._wait(lambda: next((e for e in self._typing if e.recipient == to and e.typing == typing
                                        and (frm is None or e.sender == frm)), None),
                          timeout, "a typing=%s indication to %s" % (typing, to))

    def wait_bye(self, local_user, remote_user=None, timeout=10):
        """Waits for a BYE received in a conversation of `local_user`."""
        loc, rem = self._aor(local_user), _aor_of_uri(remote_user) if remote_user else None
        return self._wait(lambda: next((b for b in self._byes if b.local == loc and rem in (None, b.remote)), None),
                          timeout, "a BYE to %s" % loc)

    def wait_request(self, method, predicate=None, timeout=10):
        """Waits for a received request of `method` matching predicate(SipMessage)."""
        return self._wait(lambda: next((r for r in self._requests if r.method == method
                                        and (predicate is None or predicate(r))), None),
                          timeout, "a %s request" % method)

    def _wait(self, found, timeout, what):
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                v = found()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("Lync emulator %s: waited %.1f s for %s in vain; its ladder ends with:\n  %s" %
                                         (self.domain, timeout, what, "\n  ".join(self.ladder()[-15:])))
                self._changed.wait(left)

    def _trace(self, line):
        with self._ladder_lock:
            self._ladder.append(line)

    # ------------------------------------------------------------ outgoing subscriptions

    def subscribe(self, watcher, target, expires=LYNC_EXPIRES, accept=LYNC_ACCEPT, supported=(), timeout=None,
                  accept_lines=False):
        """A Lync user subscribes to an IMP user's presence; returns the
        Subscription handle once the SUBSCRIBE has its final answer (or
        timed out: final_status None). `accept_lines`: each Accept value
        on a line of its own (RFC 3261 §7.3.1 allows either form)."""
        sub = Subscription(self._aor(watcher), _aor_of_uri(target), expires, tuple(accept))
        sub.accept_lines = accept_lines
        d = _Dialog(sub.call_id, sub.watcher, _new_tag(), sub.target)
        sub.dialog = d
        with self._lock:
            self._out_subs[(d.call_id, d.local_tag)] = sub
        self._subscribe_request(sub, expires, supported, timeout)
        return sub

    def _subscribe_request(self, sub, expires, supported=(), timeout=None):
        d = sub.dialog
        accept = ([("Accept", a) for a in sub.accept] if getattr(sub, "accept_lines", False)
                  else [("Accept", ", ".join(sub.accept))])
        extra = [("Event", "presence")] + accept + [("Expires", str(expires)),
                                                     ("Contact", self._contact(d.local_aor)), ("User-Agent", USER_AGENT)]
        if supported:
            extra.append(("Supported", ", ".join(supported)))
        resp = self._wait_final(self._start(d, "SUBSCRIBE", extra, from_epid=True), timeout)
        with self._lock:
            status = resp.status if resp else None
            sub.responses.append(status)
            if sub.final_status is None:
                sub.final_status = status
            if resp and 200 <= resp.status < 300:
                if d.remote_tag is None:
                    d.remote_tag = _param(resp.get("To", ""), "tag")
                    d.route_set = self._route_set(reversed(resp.get_all("Record-Route")))
                d.learn_target(resp)
                sub.expires = int(resp.get("Expires", expires))
                if expires == 0 and sub.state != "terminated":
                    sub.state = "terminating"  # until the NOTIFY terminated, which must find the dialog
                elif sub.state == "init":
                    sub.state = "pending" if resp.status == 202 else "active"
                if resp.body:  # a piggy-backed first state (ms-piggyback-first-notify)
                    sub.notifies.append(Notify(sub.state, sub.expires, None, resp.get("Content-Type", ""),
                                               Pidf.parse(resp.text()), resp))
            elif resp is None or resp.status >= 300:
                # 481 to a refresh: the notifier forgot us; other failures end it too (RFC 6665 §4.1.2.2)
                sub.state = "terminated"
            if sub.state == "terminated":
                self._out_subs.pop((d.call_id, d.local_tag), None)
            self._changed.notify_all()
        return status

    def refresh(self, sub, expires=None, timeout=None):
        """Re-SUBSCRIBEs in the dialog; returns the status (None: no answer)."""
        return self._subscribe_request(sub, sub.expires if expires is None else expires, timeout=timeout)

    def unsubscribe(self, sub, timeout=None):
        """SUBSCRIBE Expires: 0 in the dialog; returns the status."""
        return self._subscribe_request(sub, 0, timeout=timeout)

    def final_status(self, sub):
        """The status of the subscription's first SUBSCRIBE (None: no answer)."""
        with self._lock:
            return sub.final_status

    def notifies(self, sub):
        with self._lock:
            return list(sub.notifies)

    def wait_notify(self, sub, predicate=None, timeout=10, since=0):
        """Waits for a NOTIFY on `sub` (from index `since` on) matching
        predicate(Notify); returns the Notify."""
        return self._wait(lambda: next((n for n in sub.notifies[since:] if predicate is None or predicate(n)), None),
                          timeout, "a NOTIFY for %s on %s" % (sub.watcher, sub.target))

    # ------------------------------------------------------------ instant messages

    def send_im(self, from_user, to_user, text, with_text_format=False, timeout=None):
        """A Lync user's IM: INVITE first when the two have no conversation
        (with the text in ms-text-format if asked), then MESSAGE in the
        dialog. Returns the final status of the MESSAGE, or of the INVITE
        when that failed or carried the text."""
        local, remote = self._aor(from_user), _aor_of_uri(to_user)
        with self._lock:
            session = self._pair.get((local, remote))
        if session is None:
            session, status = self._invite(local, remote, text if with_text_format else None, timeout)
            if session is None:
                return status
            # [MS IM] "it counts as delivered only if the 200 OK carries Supported: ms-text-format, else it
            # must be sent again as MESSAGE."
            if with_text_format and session.peer_text_format:
                return status
        return self._message(session, text, timeout)

    def _invite(self, local, remote, first_text, timeout, multiparty=False, sdp=None):
        d = _Dialog(uuid.uuid4().hex, local, _new_tag(), remote)
        # [MS IM] "First IM: INVITE with Content-Type: application/sdp, a random Ms-Conversation-ID,
        # Supported: ms-sender, SDP media line m=message 5060 sip null"
        conversation = base64.b64encode(os.urandom(20)).decode()
        extra = [("Contact", self._contact(local)), ("User-Agent", USER_AGENT), ("Ms-Conversation-ID", conversation),
                 ("Supported", "ms-dialog-route-set-update"), ("Supported", "timer"), ("Supported", "ms-sender"),
                 ("Supported", "ms-early-media"), ("Supported", "ms-conf-invite"), ("Ms-Keep-Alive", "UAC;hop-hop=yes")]
        if first_text is not None:
            # [MS IM] "The first text may ride inside the INVITE in an ms-text-format: text/plain;
            # charset=UTF-8;msgr=...;ms-body=<base64> header"
            extra.append(("ms-text-format", "text/plain; charset=UTF-8;msgr=%s;ms-body=%s" %
                          (MSGR, base64.b64encode(first_text.encode()).decode())))
        if multiparty:
            # [MS IM] "Multiparty: Require: com.microsoft.rtc-multiparty, Roster-Manager, EndPoints,
            # TriggeredInvite -> refuse (group chat is not supported, IM-4)."
            extra += [("Require", "com.microsoft.rtc-multiparty"), ("Roster-Manager", "<sip:%s>" % local),
                      ("EndPoints", "<sip:%s>, <sip:%s>" % (local, remote))]
        sdp = self._sdp("null") if sdp is None else sdp
        tx = self._start(d, "INVITE", extra, body=sdp, content_type="application/sdp", from_epid=True)
        msg = tx.request
        resp = self._wait_final(tx, timeout)
        if resp is None:
            return None, None
        if resp.status >= 300:
            # the ACK of a failure is part of the INVITE transaction: same branch (RFC 3261 §17.1.1.3)
            ack = SipMessage("ACK %s SIP/2.0" % msg.uri, [("Via", msg.get("Via")), ("Max-Forwards", "70"),
                                                         ("From", msg.get("From")), ("To", resp.get("To")),
                                                         ("Call-ID", d.call_id), ("CSeq", "%d ACK" % msg.cseq)])
            self._send(ack, tx.conn)
            return None, resp.status
        with self._lock:
            d.remote_tag = _param(resp.get("To", ""), "tag")
            d.route_set = self._route_set(reversed(resp.get_all("Record-Route")))
            d.learn_target(resp)
            session = _ImSession(d, conversation, "local")
            session.peer_text_format = "ms-text-format" in resp.tokens("Supported")
            self._sessions[(d.call_id, d.local_tag)] = session
            self._pair[(local, remote)] = session
            self._changed.notify_all()
        self._start(d, "ACK", [("Contact", self._contact(local)), ("User-Agent", USER_AGENT)], cseq=msg.cseq,
                    from_epid=True, expect_response=False)
        return session, resp.status

    def invite_multiparty(self, from_user, to_user, timeout=None):
        """An INVITE as a Lync multiparty conversation sends it (IM-4: IMP
        must refuse it); returns the status."""
        session, status = self._invite(self._aor(from_user), _aor_of_uri(to_user), None, timeout, multiparty=True)
        if session:
            self.bye(from_user, to_user)
        return status

    def send_raw_invite(self, from_user, to_user, sdp, timeout=None):
        """An INVITE carrying the given SDP (str), e.g. without a message media
        line, which IMP must refuse ([MS IM] "An INVITE without a message
        media line is answered 501 / 488."); returns the status."""
        session, status = self._invite(self._aor(from_user), _aor_of_uri(to_user), None, timeout,
                                       sdp=sdp.encode() if isinstance(sdp, str) else sdp)
        if session:
            self.bye(from_user, to_user)
        return status

    def _message(self, session, text, timeout, content_type=None, body=None, method="MESSAGE"):
        resp = self._in_session(session, method, (), content_type, body if body is not None else text.encode(),
                                timeout)
        return resp.status if resp else None

    def _in_session(self, session, method, extra, content_type, body, timeout):
        """A request in the conversation; returns its final response (None: none in time)."""
        d = session.dialog
        # [MS IM] "Text: MESSAGE in the dialog, Content-Type: text/plain; charset=UTF-8"
        ctype = content_type or "text/plain; charset=UTF-8;msgr=%s" % MSGR
        resp = self._wait_final(self._start(d, method, [("Contact", self._contact(d.local_aor)),
                                                        ("User-Agent", USER_AGENT)] + list(extra),
                                            body=body, content_type=ctype, from_epid=True), timeout)
        status = resp.status if resp else None
        # [MS IM] "408/480/481 to a MESSAGE means the dialog is dead: BYE, drop it, re-INVITE for the next
        # message"
        if status in (408, 480, 481):
            self._drop_session(session)
            if status != 481:
                self._start(d, "BYE", [("User-Agent", USER_AGENT)], from_epid=True)
        return resp

    def _session_for(self, from_user, to_user, timeout):
        local, remote = self._aor(from_user), _aor_of_uri(to_user)
        with self._lock:
            session = self._pair.get((local, remote))
        if session is None:
            session, _ = self._invite(local, remote, None, timeout)
        return session

    def send_typing(self, from_user, to_user, typing=True, timeout=None):
        """INFO KeyboardActivity in the conversation (opened with an INVITE
        if there is none); returns the status."""
        session = self._session_for(from_user, to_user, timeout)
        if session is None:
            return None
        # [MS IM] "Typing: INFO with Content-Type: application/xml and body <?xml version="1.0"?>
        # <KeyboardActivity><status status="type" /></KeyboardActivity> (status="idle" = stopped)."
        body = '<?xml version="1.0"?><KeyboardActivity><status status="%s" /></KeyboardActivity>' % (
            "type" if typing else "idle")
        return self._message(session, None, timeout, "application/xml", body.encode(), "INFO")

    def send_iscomposing(self, from_user, to_user, active=True, method="MESSAGE", timeout=None):
        """An RFC 3994 isComposing indication in the conversation (MESSAGE, or
        INFO with method="INFO"); returns the status."""
        session = self._session_for(from_user, to_user, timeout)
        if session is None:
            return None
        # [MS IM] "Standard peers use application/im-iscomposing+xml (RFC 3994: active / idle)."
        body = ('<?xml version="1.0" encoding="UTF-8"?>\r\n<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
                '<state>%s</state><contenttype>text/plain</contenttype>%s</isComposing>' %
                ("active" if active else "idle", "<refresh>60</refresh>" if active else ""))
        return self._message(session, None, timeout, "application/im-iscomposing+xml", body.encode(), method)

    def send_in_dialog(self, from_user, to_user, method, content_type, body, timeout=None):
        """Any request with any body in the conversation of the two (opened
        with an INVITE if there is none), e.g. a text/html MESSAGE or an
        unsupported type; returns the status."""
        session = self._session_for(from_user, to_user, timeout)
        if session is None:
            return None
        return self._message(session, None, timeout, content_type, body if isinstance(body, bytes) else body.encode(),
                             method)

    def send_request(self, from_user, to_user, method, extra=(), content_type=None, body=b"", in_dialog=False,
                     timeout=None):
        """Any request from a Lync user to `to_user`, headers and body as the
        test writes them, to see how the peer answers what a pool would not
        send as-is (an unsupported body type, Event or Accept): in the two
        users' conversation (opened with an INVITE if there is none) when
        `in_dialog`, else outside any dialog (a page-mode MESSAGE, a new
        SUBSCRIBE). Contact and User-Agent come first, then `extra`
        ((name, value) pairs; nothing else is added: a SUBSCRIBE needs its
        Event, Accept and Expires there). Returns the final response
        (SipMessage), None when none came in time."""
        body = body.encode() if isinstance(body, str) else body
        if in_dialog:
            session = self._session_for(from_user, to_user, timeout)
            if session is None:
                return None
            return self._in_session(session, method, extra, content_type, body, timeout)
        local, remote = self._aor(from_user), _aor_of_uri(to_user)
        d = _Dialog(uuid.uuid4().hex, local, _new_tag(), remote)
        # as the user's own requests: From with its epid, and the pool's Record-Route on a SUBSCRIBE or
        # INVITE, which may start a dialog (_in_dialog_request)
        return self._wait_final(self._start(d, method, [("Contact", self._contact(local)), ("User-Agent", USER_AGENT)]
                                            + list(extra), body=body, content_type=content_type, from_epid=True),
                                timeout)

    def bye(self, from_user, to_user, timeout=None):
        """Ends the conversation with BYE; returns the status (None when
        there was no conversation or no answer)."""
        local, remote = self._aor(from_user), _aor_of_uri(to_user)
        with self._lock:
            session = self._pair.get((local, remote))
        if session is None:
            return None
        self._drop_session(session)
        # [MS IM] "End: BYE."
        resp = self._wait_final(self._start(session.dialog, "BYE", [("User-Agent", USER_AGENT)], from_epid=True),
                                timeout)
        return resp.status if resp else None

    def send_page_message(self, from_user, to_user, text, timeout=None):
        """A page-mode MESSAGE (RFC 3428, no dialog); returns the status."""
        local, remote = self._aor(from_user), _aor_of_uri(to_user)
        d = _Dialog(uuid.uuid4().hex, local, _new_tag(), remote)
        # [MS Standard] "Page-mode MESSAGE (no INVITE) from standard SIP peers must work too."
        resp = self._wait_final(self._start(d, "MESSAGE", [("User-Agent", USER_AGENT)], body=text.encode(),
                                            content_type="text/plain; charset=UTF-8", from_epid=True), timeout)
        return resp.status if resp else None

    def send_options(self, target=None, timeout=None):
        """An OPTIONS keep-alive to IMP (to `target`, default IMP's domain-less
        host); returns the status, None when nothing answered in time."""
        uri = "sip:" + target if target else "sip:%s:%d;transport=tls" % self.imp
        d = _Dialog(uuid.uuid4().hex, "pool@" + self.domain, _new_tag(), _aor_of_uri(uri))
        resp = self._wait_final(self._start(d, "OPTIONS", [("User-Agent", SERVER), ("Accept", "application/sdp")],
                                            ruri=uri), timeout)
        return resp.status if resp else None

    def _drop_session(self, session):
        with self._lock:
            d = session.dialog
            session.state = "terminated"
            self._sessions.pop((d.call_id, d.local_tag), None)
            if self._pair.get((d.local_aor, d.remote_aor)) is session:
                del self._pair[(d.local_aor, d.remote_aor)]
            self._changed.notify_all()

    # ------------------------------------------------------------ building requests

    def _contact(self, aor):
        # [MS Transport] "Contact may carry proxy=replace." Lync's own are GRUUs; ours point at the
        # emulator's listener so that in-dialog requests reach it without DNS.
        if self.gruu_contact:
            return "<sip:%s;opaque=user:epid:%s;gruu>" % (aor, self._epid(aor))
        return "<sip:%s@%s:%d;transport=tls>" % (aor.split("@")[0], self.host, self.port)

    def _sdp(self, path):
        return ("v=0\r\no=- 0 0 IN IP4 %s\r\ns=session\r\nc=IN IP4 %s\r\nt=0 0\r\n"
                "m=message 5060 sip %s\r\na=accept-types:%s\r\n" % (self.host, self.host, path, ACCEPT_TYPES)).encode()

    def _start(self, d, method, extra=(), body=b"", content_type=None, cseq=None, from_epid=False, ruri=None,
               expect_response=True):
        """Builds a request in dialog `d` and sends it to IMP; returns its transaction."""
        with self._order_lock:
            msg = self._in_dialog_request(d, method, extra, body, content_type, cseq, from_epid)
            if ruri:
                msg.start = "%s %s SIP/2.0" % (method, ruri)
            return self._send_request(msg, expect_response)

    def _in_dialog_request(self, d, method, extra=(), body=b"", content_type=None, cseq=None, from_epid=False):
        """A request in dialog `d` (or starting it, while d.remote_tag is None)."""
        with self._lock:
            if cseq is None:
                cseq = d.local_seq
                d.local_seq += 1
            from_hdr = "<sip:%s>;tag=%s" % (d.local_aor, d.local_tag)
            if from_epid:  # Lync clients tag their From with their endpoint id
                from_hdr += ";epid=%s" % self._epid(d.local_aor)
            to_hdr = "<sip:%s>" % d.remote_aor + (";tag=%s" % d.remote_tag if d.remote_tag else "")
            ruri = d.remote_target if d.remote_tag else "sip:" + d.remote_aor
            headers = [("Max-Forwards", "70"), ("From", from_hdr), ("To", to_hdr), ("Call-ID", d.call_id),
                       ("CSeq", "%d %s" % (cseq, method))]
            # [MS Transport] "A proxy must copy Route/Record-Route byte-exact." — and so do we.
            headers += [("Route", r) for r in d.route_set if d.remote_tag]
            if not d.remote_tag and method in ("INVITE", "SUBSCRIBE"):
                # [MS Transport] the pool record-routes what its users start, with its signed parameters
                headers.append(("Record-Route", self.record_route()))
            headers += list(extra)
            if body:
                headers.append(("Content-Type", content_type))
        return SipMessage("%s %s SIP/2.0" % (method, ruri), headers, body)

    # ------------------------------------------------------------ client transactions

    def _send_request(self, msg, expect_response=True):
        """Sends a request to IMP; returns its transaction (error set when it
        could not be sent)."""
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        if not msg.get("Via"):
            msg.headers.insert(0, ("Via", "SIP/2.0/TLS %s:%d;branch=%s" % (self.host, self.port, branch)))
        else:
            branch = _param(";" + msg.get("Via").split(";", 1)[1], "branch")
        tx = _ClientTransaction(msg, branch)
        with self._lock:
            reachable = self._reachable
        if not reachable:
            tx.error = "the pool is unreachable"
            self._trace("x %s (unreachable: not sent)" % msg.summary())
            return tx
        try:
            conn = self._conn_for_request()
        except (OSError, ssl.SSLError) as e:
            tx.error = "cannot connect to IMP at %s:%d: %s" % (self.imp[0], self.imp[1], e)
            self._trace("x %s (%s)" % (msg.summary(), tx.error))
            return tx
        tx.conn = conn
        if expect_response:
            with self._lock:
                self._txs[branch] = tx
        self._send(msg, conn)
        return tx

    def _wait_final(self, tx, timeout=None):
        """The final response of `tx`, None on a transport error or timeout."""
        if tx.error:
            return None
        deadline = time.monotonic() + (self.request_timeout if timeout is None else timeout)
        with self._changed:
            while tx.response is None and tx.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._txs.pop(tx.branch, None)
                    self._trace("x %s (no final answer in time)" % tx.request.summary())
                    return None
                self._changed.wait(left)
            return tx.response

    def _fail_transactions(self, why, conn=None):
        with self._lock:
            for branch, tx in list(self._txs.items()):
                if conn is None or tx.conn is conn:
                    tx.error = why
                    del self._txs[branch]
            self._changed.notify_all()

    # ------------------------------------------------------------ dispatcher

    def _dispatch_loop(self):
        while True:
            timeout = None
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - time.monotonic())
            try:
                item = self._inbox.get(timeout=timeout)
            except queue.Empty:
                item = ()
            while self._timers and self._timers[0][0] <= time.monotonic():
                _, _, fn = heapq.heappop(self._timers)
                fn()
            if item is None:
                return
            if not item:
                continue
            kind, conn, payload = item
            if kind == "closed":
                self._fail_transactions("connection to %s:%d lost" % conn.peer, conn)
                continue
            try:
                msg = SipMessage.parse(payload)
                if msg.is_request:
                    self._on_request(conn, msg)
                else:
                    self._on_response(msg)
            except Exception as e:  # a bad message must not end the emulator; it is in the ladder
                self._trace("! cannot handle %r: %s: %s" % (payload[:80], type(e).__name__, e))

    def _schedule(self, delay, fn):
        """Runs fn on the dispatcher thread after `delay` s (dispatcher only)."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_seq), fn))

    def _on_response(self, msg):
        branch = _param(";" + (msg.get("Via") or ";").split(";", 1)[-1], "branch")
        with self._lock:
            self._trace("← " + msg.summary())
            tx = self._txs.get(branch)
            if tx is None or msg.status < 200:
                return
            del self._txs[branch]
            tx.response = msg
            self._last_final[msg.method] = msg
            self._changed.notify_all()
        if tx.on_final:
            tx.on_final(tx)

    def _respond(self, conn, req, status, extra=(), body=b"", content_type=None, to_tag=None, reason=None):
        """A response to `req` on the connection it came on (RFC 3261 §18.2.2)."""
        to = req.get("To", "")
        if to_tag and not _param(to, "tag"):
            to += ";tag=" + to_tag
        headers = [("Via", v) for v in req.get_all("Via")] + [("From", req.get("From", "")), ("To", to),
                                                              ("Call-ID", req.get("Call-ID", "")),
                                                              ("CSeq", req.get("CSeq", ""))]
        if 200 <= status < 300 and req.method in ("INVITE", "SUBSCRIBE"):
            # [MS Transport] "Lync's Record-Route entries carry opaque signed parameters (ms-key-info,
            # ms-route-sig)": the pool record-routed the request on its way in, the user's 2xx copies it.
            own = [(("Record-Route", self.record_route()))] if not _param(req.get("To", ""), "tag") else []
            headers += own + [("Record-Route", rr) for rr in req.get_all("Record-Route")]
        headers += list(extra)
        if body:
            headers.append(("Content-Type", content_type))
        self._send(SipMessage("SIP/2.0 %d %s" % (status, reason or REASONS.get(status, "Unknown")), headers, body),
                   conn)

    def _on_request(self, conn, req):
        with self._lock:
            if conn.epoch != self._epoch:
                return  # received by the pool before it restarted
            reachable = self._reachable
            self._trace(("← " if reachable else "← (ignored: unreachable) ") + req.summary())
            if not reachable:
                return
            self._requests.append(req)
            self._changed.notify_all()
        self._check_route(req)
        m = req.method
        handler = {"SUBSCRIBE": self._on_subscribe, "NOTIFY": self._on_notify, "BENOTIFY": self._on_notify,
                   "INVITE": self._on_invite, "ACK": self._on_ack, "MESSAGE": self._on_message,
                   "INFO": self._on_message, "BYE": self._on_bye, "OPTIONS": self._on_options,
                   "CANCEL": self._on_cancel}.get(m)
        if handler:
            handler(conn, req)
        else:
            self._respond(conn, req, 405, [("Allow", ALLOW), ("Server", SERVER)])

    def record_route(self):
        """The pool's Record-Route value: its address with Lync's opaque signed
        parameters, which every proxy and UA on the way must copy byte-exact."""
        with self._lock:
            if self._rr is None:
                sig = base64.b64encode(os.urandom(24)).decode()
                self._rr = ("<sip:%s:%d;transport=tls;opaque=state:F:Ci.R%s;lr;ms-key-info=%s;ms-route-sig=%s>" %
                            (self.host, self.port, uuid.uuid4().hex[:8], base64.b64encode(os.urandom(12)).decode(),
                             sig))
            return self._rr

    def _route_set(self, values):
        """A dialog's route set as the pool's users keep it: the pool handles its
        own entry itself (it is the first hop of everything they send)."""
        own = self.record_route()
        return [v for v in values if v != own]

    def _check_route(self, req):
        """An in-dialog request for a dialog the pool record-routed must name it
        in its top Route, byte-exact (ms-route-sig would not verify otherwise)."""
        if not _param(req.get("To", ""), "tag") or req.method in ("ACK", "CANCEL"):
            return
        routes = req.get_all("Route")
        with self._lock:
            if not routes or routes[0] != self._rr:
                self.route_errors.append("%s %s: top Route %r, expected %r" % (
                    req.method, req.uri, routes[0] if routes else None, self._rr))
                self._trace("!! %s without the pool's Record-Route as its top Route" % req.method)

    def _local_target(self, req):
        """The Lync user a request is for: the user part of the Request-URI in
        the pool's domain (or addressed to the emulator's own host)."""
        aor = _aor_of_uri(req.uri)
        user, _, host = aor.partition("@")
        if host in (self.host, "localhost"):
            return "%s@%s" % (user, self.domain)
        return aor

    def _unknown_user(self, conn, req):
        # brief: ms-diagnostics 4005 "Destination URI either not enabled for SIP or does not exist"
        self._respond(conn, req, 404, [("ms-diagnostics", '%s;source="%s"' % (DIAG_UNKNOWN_USER, self._source())),
                                       ("Server", SERVER)], to_tag=_new_tag())

    def _source(self):
        return "lync." + self.domain

    def _on_options(self, conn, req):
        self._respond(conn, req, 200, [("Allow", ALLOW), ("Accept", "application/sdp"), ("Server", SERVER),
                                       ("Supported", "ms-dialog-route-set-update")], to_tag=_new_tag())

    def _on_cancel(self, conn, req):
        # every INVITE is answered at once, so there is never anything left to cancel
        self._respond(conn, req, 200, [("Server", SERVER)], to_tag=_new_tag())

    # ------------------------------------------------------------ incoming SUBSCRIBE (IMP watcher -> Lync user)

    def _on_subscribe(self, conn, req):
        to_tag = _param(req.get("To", ""), "tag")
        if to_tag:
            return self._on_resubscribe(conn, req, to_tag)
        if (req.get("Event") or "").split(";")[0].strip().lower() != "presence":
            return self._respond(conn, req, 489, [("Allow-Events", "presence"), ("Server", SERVER)], to_tag=_new_tag())
        target, watcher = self._local_target(req), _aor_of_uri(_uri_of(req.get("From", "")))
        with self._lock:
            exists = self._exists(target)
        if not exists:
            return self._unknown_user(conn, req)
        accept = req.tokens("Accept")
        # [MS Presence] "Lync's incoming SUBSCRIBEs may offer ... Answer with application/pidf+xml." — and a
        # watcher that cannot take PIDF gets nothing the pool can produce.
        if accept and "application/pidf+xml" not in accept:
            return self._respond(conn, req, 406, [("Accept", "application/pidf+xml"), ("Server", SERVER)],
                                 to_tag=_new_tag())
        expires = int(req.get("Expires", "3600"))
        if expires == 0:  # a one-shot fetch: one NOTIFY terminated with the state (RFC 6665 §4.4.3)
            pass
        elif not self.min_expires <= expires <= self.max_expires:
            # [MS Presence] "OCS accepted 1200..43200 s by default; answer out-of-range expiries with 423 +
            # Min-Expires."
            return self._respond(conn, req, 423, [("Min-Expires", str(self.min_expires)), ("Server", SERVER)],
                                 to_tag=_new_tag())
        with self._lock:
            policy = self._policy_for(target, watcher)
        if policy == "reject":
            return self._respond(conn, req, 403, [("Server", SERVER)], to_tag=_new_tag())
        d = _Dialog(req.get("Call-ID"), target, _new_tag(), watcher, _param(req.get("From", ""), "tag"))
        d.learn_target(req)
        d.route_set = self._route_set(req.get_all("Record-Route"))
        sub = _InSub(d, expires)
        sub.state = "pending" if policy == "pending" else "active"
        with self._lock:
            if expires:
                self._in_subs[(d.call_id, d.local_tag)] = sub
            self._changed.notify_all()
        self._respond(conn, req, 200, [("Expires", str(expires)), ("Contact", self._contact(target)),
                                       ("Server", SERVER)], to_tag=d.local_tag)
        if expires == 0:
            self._end_in_sub(sub, None, with_state=True)
        else:
            self._notify_watcher(sub)
            self._arm_expiry(sub)

    def _on_resubscribe(self, conn, req, to_tag):
        with self._lock:
            sub = self._in_subs.get((req.get("Call-ID"), to_tag))
            if sub is None:  # unknown dialog: e.g. the pool restarted since
                return self._respond(conn, req, 481, [("Server", SERVER)])
            expires = int(req.get("Expires", str(sub.expires)))
            if expires and not self.min_expires <= expires <= self.max_expires:
                return self._respond(conn, req, 423, [("Min-Expires", str(self.min_expires)), ("Server", SERVER)])
            sub.dialog.learn_target(req)
            if expires:
                sub.refreshes += 1
                sub.expires = expires
                sub.deadline = time.monotonic() + expires
            self._changed.notify_all()
        self._respond(conn, req, 200, [("Expires", str(expires)), ("Server", SERVER),
                                       ("Contact", self._contact(sub.dialog.local_aor))])
        if expires == 0:
            # [MS Standard] "XMPP unsubscribe -> SUBSCRIBE Expires: 0": the last NOTIFY says terminated
            self._end_in_sub(sub, None)
        else:
            self._notify_watcher(sub)
            self._arm_expiry(sub)

    def _arm_expiry(self, sub):
        deadline = sub.deadline

        def expire():
            with self._lock:
                due = sub.deadline == deadline and self._in_subs.get((sub.dialog.call_id, sub.dialog.local_tag)) is sub
            if due:
                self._end_in_sub(sub, "timeout")
        self._schedule(sub.expires, expire)

    def _end_in_sub(self, sub, reason, with_state=False):
        with self._lock:
            d = sub.dialog
            self._in_subs.pop((d.call_id, d.local_tag), None)
            sub.state = "terminated"
            sub.reason = reason
            self._ended_subs.append(sub.snapshot())
            self._changed.notify_all()
        self._send_notify(sub, "terminated" + (";reason=%s" % reason if reason else ""), with_body=with_state)

    def _notify_watcher(self, sub):
        with self._lock:
            left = max(0, int(sub.deadline - time.monotonic() + 0.5))
            state = sub.state
        if state == "pending":
            self._send_notify(sub, "pending;expires=%d" % left, with_body=False)
        elif state == "active":
            self._send_notify(sub, "active;expires=%d" % left, with_body=True)

    def _send_notify(self, sub, subscription_state, with_body):
        d = sub.dialog
        with self._lock:
            availability, activity, note = self._presence.get(d.local_aor, (OFFLINE, None, None))
            if self._policy_for(d.local_aor, d.remote_aor) == "block":
                # REQUIREMENTS AV-1 "polite blocking": the blocked watcher sees Offline
                availability, activity, note = OFFLINE, None, None
        body = lync_pidf(d.local_aor, availability, activity, note).encode() if with_body else b""
        tx = self._start(d, "NOTIFY", [("Event", "presence"), ("Subscription-State", subscription_state),
                                       ("Contact", self._contact(d.local_aor)), ("User-Agent", SERVER)],
                         body=body, content_type="application/pidf+xml")

        def answered(tx):
            if tx.response.status == 481:  # the watcher forgot the subscription
                with self._lock:
                    if self._in_subs.pop((d.call_id, d.local_tag), None):
                        sub.state, sub.reason = "terminated", "481 to NOTIFY"
                        self._ended_subs.append(sub.snapshot())
                        self._changed.notify_all()
        tx.on_final = answered

    # ------------------------------------------------------------ incoming NOTIFY (for outgoing subscriptions)

    def _on_notify(self, conn, req):
        key = (req.get("Call-ID"), _param(req.get("To", ""), "tag"))
        state_hdr = req.get("Subscription-State", "")
        state = state_hdr.split(";")[0].strip().lower()
        with self._lock:
            sub = self._out_subs.get(key)
            if sub is not None:
                d = sub.dialog
                if d.remote_tag is None:  # the NOTIFY overtook the 200 to SUBSCRIBE (RFC 6665 §4.1.2.4)
                    d.remote_tag = _param(req.get("From", ""), "tag")
                    d.route_set = self._route_set(req.get_all("Record-Route"))
                d.learn_target(req)
                expires = _param(";" + state_hdr.split(";", 1)[-1], "expires") if ";" in state_hdr else None
                sub.notifies.append(Notify(state, int(expires) if expires else None,
                                           _param(";" + state_hdr.split(";", 1)[-1], "reason") if ";" in state_hdr
                                           else None, req.get("Content-Type", ""), Pidf.parse(req.text()), req))
                if state == "terminated" or (state in ("active", "pending") and sub.state != "terminating"):
                    sub.state = state
                if state == "terminated":
                    del self._out_subs[key]
                self._changed.notify_all()
        if req.method == "BENOTIFY":
            return  # [MS Presence] "with ms-benotify, NOTIFYs are never answered (BENOTIFY)"
        if sub is None:
            return self._respond(conn, req, 481, [("User-Agent", USER_AGENT)])
        self._respond(conn, req, 200, [("User-Agent", USER_AGENT)])

    # ------------------------------------------------------------ incoming IM (IMP user -> Lync user)

    def _on_invite(self, conn, req):
        if _param(req.get("To", ""), "tag"):  # a re-INVITE: keep the session, answer as the first time
            with self._lock:
                session = self._sessions.get((req.get("Call-ID"), _param(req.get("To", ""), "tag")))
            if session is None:
                return self._respond(conn, req, 481, [("User-Agent", USER_AGENT)])
            return self._respond(conn, req, 200, [("Contact", self._contact(session.dialog.local_aor)),
                                                  ("User-Agent", USER_AGENT)],
                                 body=self._sdp("sip:" + session.dialog.local_aor), content_type="application/sdp")
        local, remote = self._local_target(req), _aor_of_uri(_uri_of(req.get("From", "")))
        with self._lock:
            exists = self._exists(local)
            b = self._behaviour(local)
        if not exists:
            return self._unknown_user(conn, req)
        tag = _new_tag()
        # [MS IM] "Multiparty: Require: com.microsoft.rtc-multiparty ... -> refuse"; a 1:1 client has nothing
        # to offer either: 420 names the extension it lacks (RFC 3261 §8.2.2.3)
        if "com.microsoft.rtc-multiparty" in req.tokens("Require"):
            return self._respond(conn, req, 420, [("Unsupported", "com.microsoft.rtc-multiparty"),
                                                  ("User-Agent", USER_AGENT)], to_tag=tag)
        sdp = req.text()
        # [MS IM] "An INVITE without a message media line is answered 501 / 488."
        if not re.search(r"(?m)^m=(?:message|x-ms-message) ", sdp):
            return self._respond(conn, req, 488, [("User-Agent", USER_AGENT)], to_tag=tag)
        if b["invite_status"] != 200:
            extra = [("User-Agent", USER_AGENT)]
            if b["diagnostics"]:
                extra.append(("ms-diagnostics", b["diagnostics"]))
            return self._respond(conn, req, b["invite_status"], extra, to_tag=tag)
        d = _Dialog(req.get("Call-ID"), local, tag, remote, _param(req.get("From", ""), "tag"))
        d.learn_target(req)
        d.route_set = self._route_set(req.get_all("Record-Route"))
        session = _ImSession(d, req.get("Ms-Conversation-ID"), "remote")
        with self._lock:
            self._sessions[(d.call_id, d.local_tag)] = session
            self._pair[(local, remote)] = session  # the newest conversation between the two carries the next IM
            first = req.get("ms-text-format")
            if first and b["ms_text_format"]:
                # [MS IM] "The first text may ride inside the INVITE in an ms-text-format ... header; it counts
                # as delivered only if the 200 OK carries Supported: ms-text-format"
                m = re.search(r"ms-body=([A-Za-z0-9+/=]+)", first)
                if m:
                    text = base64.b64decode(m.group(1)).decode("utf-8", errors="replace")
                    self._received_ims.append(ReceivedIm(remote, local, text, first.split(";")[0].strip(), "invite",
                                                         d.call_id, req))
            self._changed.notify_all()
        extra = [("Contact", self._contact(local)), ("User-Agent", USER_AGENT), ("Supported", "ms-sender")]
        if b["ms_text_format"]:
            extra.append(("Supported", "ms-text-format"))
        # [MS IM] "answers may use m=message <port> sip sip:<user@domain>"
        self._respond(conn, req, 200, extra, body=self._sdp("sip:" + local), content_type="application/sdp",
                      to_tag=tag)

    def _on_ack(self, conn, req):
        pass  # TLS is reliable: nothing is retransmitted, so an ACK only ends what is already ended

    def _on_message(self, conn, req):
        to_tag = _param(req.get("To", ""), "tag")
        session = None
        if to_tag:
            with self._lock:
                session = self._sessions.get((req.get("Call-ID"), to_tag))
            if session is None:
                return self._respond(conn, req, 481, [("User-Agent", USER_AGENT)])
            local, remote = session.dialog.local_aor, session.dialog.remote_aor
        else:
            if req.method == "INFO":
                return self._respond(conn, req, 481, [("User-Agent", USER_AGENT)])
            local, remote = self._local_target(req), _aor_of_uri(_uri_of(req.get("From", "")))
            with self._lock:
                exists = self._exists(local)
            if not exists:
                return self._unknown_user(conn, req)
        ctype = (req.get("Content-Type") or "").split(";")[0].strip().lower()
        tag = None if to_tag else _new_tag()
        typing = None
        if ctype == "application/xml" and b"KeyboardActivity" in req.body:
            # [MS IM] "Typing: INFO with Content-Type: application/xml and body ... status="type" ...
            # (status="idle" = stopped)."
            m = re.search(rb'status\s*=\s*"(\w+)"', req.body)
            typing = ("keyboard", bool(m and m.group(1) == b"type"))
        elif ctype == "application/im-iscomposing+xml":
            # [MS IM] "Standard peers use application/im-iscomposing+xml (RFC 3994: active / idle)."
            m = re.search(rb"<(?:\w+:)?state>\s*(\w+)\s*<", req.body)
            typing = ("iscomposing", bool(m and m.group(1) == b"active"))
        elif ctype not in TEXT_TYPES or req.method == "INFO":
            # [MS IM] "Also accept text/html, multipart/alternative; reply 415 to anything else."
            return self._respond(conn, req, 415, [("Accept", ", ".join(TEXT_TYPES + (
                "application/im-iscomposing+xml",))), ("User-Agent", USER_AGENT)], to_tag=tag)
        if typing:
            with self._lock:
                self._typing.append(TypingEvent(remote, local, typing[1], typing[0], req.method))
                self._changed.notify_all()
            return self._respond(conn, req, 200, [("User-Agent", USER_AGENT)], to_tag=tag)
        with self._lock:
            b = self._behaviour(local)
        if b["message_status"] != 200:
            extra = [("User-Agent", USER_AGENT)]
            if b["diagnostics"]:
                extra.append(("ms-diagnostics", b["diagnostics"]))
            if session and b["message_status"] in (408, 480, 481):
                self._drop_session(session)  # the conversation is gone on this side
            return self._respond(conn, req, b["message_status"], extra, to_tag=tag)
        with self._lock:
            self._received_ims.append(ReceivedIm(remote, local, req.text(), ctype, "session" if session else "page",
                                                 req.get("Call-ID"), req))
            self._changed.notify_all()
        self._respond(conn, req, 200, [("User-Agent", USER_AGENT)], to_tag=tag)

    def _on_bye(self, conn, req):
        with self._lock:
            session = self._sessions.get((req.get("Call-ID"), _param(req.get("To", ""), "tag")))
        if session is None:
            return self._respond(conn, req, 481, [("User-Agent", USER_AGENT)])
        self._drop_session(session)
        with self._lock:
            self._byes.append(ByeEvent(session.dialog.local_aor, session.dialog.remote_aor, session.dialog.call_id))
            self._changed.notify_all()
        self._respond(conn, req, 200, [("User-Agent", USER_AGENT)])

    # ------------------------------------------------------------ connections

    def _conn_for_request(self):
        """A live connection to IMP: the most recently used one this pool may
        send requests on, else a new one to IMP's peer-auth listener."""
        with self._connect_lock:
            with self._io_lock:
                live = [c for c in self._conns if not c.closed and c.handshaken and c.epoch == self._epoch
                        and (c.direction == "out" or self.reuse_incoming)]
                if live:
                    return max(live, key=lambda c: c.last_used)
            raw = socket.create_connection(self.imp, timeout=self.connect_timeout)
            try:
                sock = self._client_ctx.wrap_socket(raw)  # handshake with the deadline of connect_timeout
            except (OSError, ssl.SSLError):
                raw.close()
                raise
            sock.setblocking(False)
            conn = _Conn(sock, "out", self.imp, self._epoch)
            conn.peer_cn = self._cn(sock)
            self._command("add", conn)
            self._trace("-- TLS connection to %s:%d (peer %s) --" % (self.imp[0], self.imp[1], conn.peer_cn))
            return conn

    @staticmethod
    def _cn(sock):
        try:
            return dict(x[0] for x in sock.getpeercert()["subject"]).get("commonName")
        except (TypeError, KeyError, ValueError):
            return None

    def _send(self, msg, conn):
        data = msg.to_bytes()
        arrow = "→ " if conn is not None else "x "
        self._trace(arrow + msg.summary())
        if conn is None:
            return
        with self._io_lock:
            if conn.closed:
                return
            conn.outbuf += data
            conn.last_used = time.monotonic()
        self._wake()

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already woken (full), or stopping

    def _command(self, name, arg=None, wait=True):
        """Runs a command on the I/O thread; waits until it ran."""
        done = threading.Event()
        with self._io_lock:
            self._commands.append((name, arg, done))
        self._wake()
        if wait and not done.wait(10):
            raise AssertionError("the emulator's I/O thread did not run %s" % name)

    def _listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port or self._wanted_port))
        s.listen(64)
        s.setblocking(False)
        self.port = s.getsockname()[1]
        self._listener = s
        self._selector.register(s, selectors.EVENT_READ, "listener")

    def _unlisten(self):
        if self._listener:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None

    def _close(self, conn):
        """Closes a connection (I/O thread, _io_lock held)."""
        if conn.closed:
            return
        conn.closed = True
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        try:
            conn.sock.close()
        except OSError:
            pass
        self._conns.remove(conn)
        self._io_changed.notify_all()
        self._inbox.put(("closed", conn, None))

    def _io_loop(self):
        running = True
        while running:
            with self._io_lock:
                commands, self._commands = self._commands, []
                for name, arg, done in commands:
                    if name == "add":
                        self._conns.append(arg)
                        self._selector.register(arg.sock, selectors.EVENT_READ, arg)
                    elif name == "listen" and not self._listener:
                        self._listen()
                    elif name == "unlisten":
                        self._unlisten()
                    elif name in ("close_all", "restart", "stop"):
                        for c in list(self._conns):
                            self._close(c)
                        if name == "restart":
                            self._unlisten()
                            self._listen()
                        if name == "stop":
                            self._unlisten()
                            running = False
                    done.set()
                for c in self._conns:
                    want = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.outbuf or c.want_write else 0)
                    if self._selector.get_key(c.sock).events != want:
                        self._selector.modify(c.sock, want, c)
            if not running:
                self._selector.close()
                return
            for key, mask in self._selector.select():
                if key.data == "wake":
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                elif key.data == "listener":
                    self._accept()
                else:
                    with self._io_lock:
                        if not key.data.closed:
                            self._service(key.data)

    def _accept(self):
        try:
            raw, addr = self._listener.accept()
        except (BlockingIOError, OSError):
            return
        raw.setblocking(False)
        sock = self._server_ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        conn = _Conn(sock, "in", addr, self._epoch)
        with self._io_lock:
            self._conns.append(conn)
            self._selector.register(sock, selectors.EVENT_READ, conn)
            self._service(conn)

    def _service(self, conn):
        """Moves the handshake, reads and writes of one connection as far as
        they go without blocking (I/O thread, _io_lock held)."""
        conn.want_write = False
        try:
            if not conn.handshaken:
                try:
                    conn.sock.do_handshake()
                except ssl.SSLWantReadError:
                    return
                except ssl.SSLWantWriteError:
                    conn.want_write = True
                    return
                conn.handshaken = True
                conn.peer_cn = self._cn(conn.sock)
                self._trace("-- TLS connection from %s:%d (peer %s) --" % (conn.peer[0], conn.peer[1], conn.peer_cn))
            while True:
                try:
                    chunk = conn.sock.recv(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLWantWriteError:
                    conn.want_write = True
                    break
                if not chunk:
                    self._frame(conn)
                    self._close(conn)
                    return
                conn.inbuf += chunk
            self._frame(conn)
            while conn.outbuf:
                try:
                    n = conn.sock.send(conn.outbuf[:65536])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    break
                conn.outbuf = conn.outbuf[n:]
        except (OSError, ssl.SSLError) as e:
            if not conn.handshaken:
                self._trace("-- TLS handshake from %s:%d failed: %s --" % (conn.peer[0], conn.peer[1], e))
            self._close(conn)

    def _frame(self, conn):
        """Cuts the SIP messages out of a connection's input by Content-Length
        (RFC 3261 §18.3) and hands them to the dispatcher."""
        while True:
            while conn.inbuf.startswith(b"\r\n"):
                if conn.inbuf.startswith(b"\r\n\r\n"):  # RFC 5626 §4.4.1 keep-alive ping: pong
                    conn.outbuf += b"\r\n"
                    conn.inbuf = conn.inbuf[4:]
                else:
                    conn.inbuf = conn.inbuf[2:]
            end = conn.inbuf.find(b"\r\n\r\n")
            if end < 0:
                if len(conn.inbuf) > 65536:
                    raise OSError("no end of SIP headers in 64 KB")
                return
            m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", conn.inbuf[:end])
            total = end + 4 + (int(m.group(1)) if m else 0)
            if len(conn.inbuf) < total:
                return
            raw, conn.inbuf = conn.inbuf[:total], conn.inbuf[total:]
            conn.last_used = time.monotonic()
            self._inbox.put(("msg", conn, raw))
