"""Test peers for the SIP Proxy end-to-end tests: SIPp runs, a SIP responder,
a silent next hop, a raw SIP client over TCP/TLS, a fake DNS server and a
test CA. Everything binds to loopback; every wait has a deadline and waits on
an event (a socket, a process), never on a bare sleep."""
import os
import pwd
import re
import select
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import free_port, wait_for  # noqa: E402

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
SIPP_DIR = os.path.join(HERE, "..", "peers", "sipp")


class ProxyLog:
    """Mixin for test classes whose `node` runs sip-proxy."""

    def log(self):
        return self.node.log("sip-proxy")

    def logged(self, pattern, timeout=10):
        """Waits for a line matching `pattern` in sip-proxy.log (flushed every second)."""
        try:
            wait_for(lambda: re.search(pattern, self.log()), timeout, "sip-proxy.log to match /%s/" % pattern)
        except AssertionError as e:
            raise AssertionError("%s; the log ends with:\n%s" % (e, self.log()[-3000:])) from None


# ---------------------------------------------------------------- SIPp


def expect_scenario(workdir, status):
    """The MESSAGE UAC scenario expecting `status` as its final answer."""
    with open(os.path.join(SIPP_DIR, "uac_message.xml")) as f:
        xml = f.read()
    xml = xml.replace('<recv response="200" rtd="true"/>', '<recv response="%d" rtd="true"/>' % status)
    path = os.path.join(workdir, "uac_expect_%d.xml" % status)
    with open(path, "w") as f:
        f.write(xml)
    return path


def db_generation(node):
    """The cluster settings generation in the node's managed database."""
    sock = os.path.join(node.dir, "state", "mariadb", "mysqld.sock")
    r = subprocess.run(["mariadb", "--no-defaults", "-S", sock, "-u", pwd.getpwuid(os.geteuid()).pw_name, "-N", "-B",
                        "imp", "-e", "SELECT generation FROM core_settings WHERE id = 1"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip())


def wait_applied(node, timeout=30):
    """Waits until the node's sip-proxy has applied the settings generation
    the database holds now (every change made so far is live)."""
    want = db_generation(node)

    def applied():
        for s in node.ctl_json("service", "list")["services"]:
            if s["name"] == "sip-proxy":
                g = re.search(r"settings generation (\d+)", s.get("detail", ""))
                return g and int(g.group(1)) >= want
        return False
    wait_for(applied, timeout, "sip-proxy to apply settings generation %d" % want)


def sipp_uac(workdir, target_port, user, domain, calls=1, rate=10, expect=200, source="127.0.0.1", timeout=60,
             background=False):
    """Runs SIPp as a MESSAGE sender over TCP; returns the CompletedProcess
    (exit 0 = every call got `expect`) or, with background, the Popen."""
    scen = os.path.join(SIPP_DIR, "uac_message.xml") if expect == 200 else expect_scenario(workdir, expect)
    args = [SIPP, "127.0.0.1:%d" % target_port, "-sf", scen, "-t", "t1", "-i", source, "-p", str(free_port()),
            "-s", user, "-set", "domain", domain, "-m", str(calls), "-r", str(rate), "-nostdin", "-default_behaviors", "all,-bye",
            "-timeout", "%ds" % timeout, "-timeout_error", "-trace_err", "-error_file",
            os.path.join(workdir, "uac_%s_errors.log" % uuid.uuid4().hex[:8])]
    if background:
        return subprocess.Popen(args, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(args, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout + 30)


class SippUas:
    """SIPp answering MESSAGE with 200 over TCP, logging what it receives."""

    def __init__(self, workdir):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="uas-", dir=workdir)
        self.proc = subprocess.Popen(
            [SIPP, "-sf", os.path.join(SIPP_DIR, "uas_message.xml"), "-t", "t1", "-i", "127.0.0.1", "-p",
             str(self.port), "-nostdin", "-trace_msg", "-message_file", os.path.join(self.dir, "messages.log")],
            cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._listening, 20, "SIPp UAS listening on %d" % self.port)

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError("SIPp UAS exited with %s" % self.proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def received(self):
        """The requests SIPp logged as received (raw text)."""
        p = os.path.join(self.dir, "messages.log")
        if not os.path.exists(p):
            return []
        with open(p, errors="replace") as f:
            text = f.read()
        return [m for m in re.split(r"-+ [\d\-:. ]+\n", text) if m.startswith("MESSAGE ") or "\nMESSAGE " in m]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------- SIP over sockets


def sip_message(uri, source_host="127.0.0.1", source_port=5099, transport="TCP", call_id=None, extra=""):
    body = "hello"
    cid = call_id or uuid.uuid4().hex
    return ("MESSAGE %s SIP/2.0\r\n"
            "Via: SIP/2.0/%s %s:%d;branch=z9hG4bK%s\r\n"
            "From: <sip:ann@client.example>;tag=%s\r\n"
            "To: <%s>\r\n"
            "Call-ID: %s\r\n"
            "CSeq: 1 MESSAGE\r\n"
            "Max-Forwards: 70\r\n%s"
            "Content-Type: text/plain\r\n"
            "Content-Length: %d\r\n\r\n%s" % (uri, transport, source_host, source_port, uuid.uuid4().hex[:16],
                                                uuid.uuid4().hex[:8], uri, cid, extra, len(body), body)).encode()


class SipStream:
    """Reads SIP messages framed by Content-Length from a stream socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def read(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end >= 0:
                head = self.buf[:head_end].decode(errors="replace")
                m = re.search(r"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                if len(self.buf) >= head_end + 4 + n:
                    msg = self.buf[:head_end + 4 + n].decode(errors="replace")
                    self.buf = self.buf[head_end + 4 + n:]
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no SIP message within %.0f s (have %r)" % (timeout, self.buf[:200]))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise ConnectionError("peer closed the connection (have %r)" % self.buf[:200])
            self.buf += chunk


def status_of(response):
    m = re.match(r"SIP/2\.0 (\d{3}) ", response)
    assert m, "not a SIP response: %r" % response[:200]
    return int(m.group(1))


def header(msg, name):
    m = re.search(r"(?im)^%s\s*:\s*(.*)$" % re.escape(name), msg)
    return m.group(1).strip() if m else None


def final_response(stream, timeout=10):
    while True:
        r = stream.read(timeout)
        if status_of(r) >= 200:
            return r


class SipResponder:
    """A SIP UA on TCP (or TLS with `tls_ctx`) that answers every request
    with `status` and records them; silent=True accepts and reads but never
    answers (a next hop that hangs)."""

    def __init__(self, port=None, status=200, silent=False, tls_ctx=None):
        self.port = port or free_port()
        self.status = status
        self.silent = silent
        self.tls_ctx = tls_ctx
        self.requests = []
        self.lock = threading.Lock()
        self.event = threading.Condition(self.lock)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            r, _, _ = select.select([self.sock], [], [], 0.2)
            if not r:
                continue
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            if self.tls_ctx:
                c = self.tls_ctx.wrap_socket(c, server_side=True)
            self.conns.append(c)
            s = SipStream(c)
            while not self.stopping:
                try:
                    msg = s.read(timeout=0.5)
                except AssertionError:
                    continue
                with self.lock:
                    self.requests.append(msg)
                    self.event.notify_all()
                if self.silent or msg.startswith("SIP/2.0"):
                    continue
                c.sendall(response_to(msg, self.status))
        except (OSError, ConnectionError, ssl.SSLError):
            pass

    def wait_requests(self, n, timeout=10, method=None):
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                got = [r for r in self.requests if method is None or r.startswith(method + " ")]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("responder on %d got %d %s requests, wanted %d" %
                                         (self.port, len(got), method or "", n))
                self.event.wait(left)

    def stop(self):
        self.stopping = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def response_to(request, status, reason="OK"):
    lines = request.split("\r\n")
    keep = [l for l in lines[1:] if re.match(r"(?i)^(via|v|from|f|to|t|call-id|i|cseq)\s*:", l)]
    out = ["SIP/2.0 %d %s" % (status, reason if status == 200 else "Test")]
    for l in keep:
        if re.match(r"(?i)^(to|t)\s*:", l) and ";tag=" not in l:
            l += ";tag=resp" + uuid.uuid4().hex[:6]
        out.append(l)
    out.append("Content-Length: 0")
    return ("\r\n".join(out) + "\r\n\r\n").encode()


def tcp_status(port, uri, timeout=15):
    """Status of a MESSAGE for `uri` sent over a new TCP connection to `port`."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(sip_message(uri))
        return status_of(final_response(SipStream(s), timeout=timeout))
    finally:
        s.close()


def send_from(source, port, data, timeout=10):
    """Opens a TCP connection from `source` to the proxy and sends data."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    s.sendall(data)
    return s


# ---------------------------------------------------------------- fake DNS


class FakeDns:
    """A UDP DNS server on 127.0.0.1 answering PTR queries from a table;
    names in `delays` are answered only after that many seconds (a stalled
    resolver, RT-8). Unknown names get NXDOMAIN."""

    def __init__(self, ptr, delays=None):
        self.ptr = ptr  # ip -> name
        self.delays = delays or {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _qname(data, off):
        labels = []
        while data[off]:
            n = data[off]
            labels.append(data[off + 1:off + 1 + n].decode())
            off += 1 + n
        return ".".join(labels), off + 1

    def _serve(self):
        while not self.stopping:
            r, _, _ = select.select([self.sock], [], [], 0.2)
            if not r:
                continue
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            qid = data[:2]
            name, off = self._qname(data, 12)
            qtype = struct.unpack("!H", data[off:off + 2])[0]
            question = data[12:off + 4]
            self.queries.append((name, qtype))
            ip = self._ip_of(name)
            answer_name = self.ptr.get(ip) if qtype == 12 else None
            delay = self.delays.get(ip, 0)
            reply = self._reply(qid, question, answer_name)
            if delay:
                threading.Timer(delay, self._send, args=(reply, addr)).start()
            else:
                self._send(reply, addr)

    def _send(self, reply, addr):
        try:
            self.sock.sendto(reply, addr)
        except OSError:
            pass

    @staticmethod
    def _ip_of(name):
        if name.endswith(".in-addr.arpa"):
            return ".".join(reversed(name[:-len(".in-addr.arpa")].split(".")))
        return None

    @staticmethod
    def _reply(qid, question, answer_name):
        if answer_name is None:
            return qid + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + question
        rdata = b"".join(bytes([len(l)]) + l.encode() for l in answer_name.split(".")) + b"\0"
        rr = b"\xc0\x0c" + struct.pack("!HHIH", 12, 1, 60, len(rdata)) + rdata
        return qid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + rr

    def stop(self):
        self.stopping = True
        self.sock.close()


# ---------------------------------------------------------------- test CA


class TestCa:
    """A CA made with the openssl CLI, issuing server/client certificates."""

    def __init__(self, workdir):
        self.dir = tempfile.mkdtemp(prefix="ca-", dir=workdir)
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.crt")
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                  self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=IMP Test CA")

    def _run(self, *args):
        r = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise AssertionError("openssl %s: %s" % (args[0], r.stderr))

    def issue(self, cn, ip=None, days=2, eku="serverAuth,clientAuth"):
        """Returns (cert_path, key_path) for CN `cn`, usable as server and client;
        days=-1 makes one that expired a day ago."""
        base = os.path.join(self.dir, cn + ("" if days > 0 else ".expired") + ("" if "clientAuth" in eku else ".server"))
        self._run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", base + ".key",
                  "-out", base + ".csr", "-subj", "/CN=" + cn)
        return self.sign(base + ".csr", base + ".crt", cn, ip, days, eku), base + ".key"

    def sign(self, csr, out, cn, ip=None, days=2, eku="serverAuth,clientAuth"):
        """Signs the request `csr` (a node's `impctl cert csr`) into `out`:
        serverAuth and clientAuth, as Lync's mutual TLS wants."""
        ext = out + ".ext"
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=%s\nsubjectAltName=DNS:%s%s\n" %
                    (eku, cn, ",IP:" + ip if ip else ""))
        self._run("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                  "-out", out, "-days", str(days), "-extfile", ext)
        return out

    def client_context(self, cert=None, maximum=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.cert)
        ctx.check_hostname = False
        if cert:
            ctx.load_cert_chain(*cert)
        if maximum:
            ctx.maximum_version = maximum
        return ctx

    def server_context(self, cert):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*cert)
        return ctx
