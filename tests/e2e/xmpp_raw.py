"""Raw XMPP client streams over sockets and Python's ssl, for the checks a
well-behaved client library will not do: hostile XML, oversized stanzas,
idle unauthenticated connections, hand-made SCRAM exchanges (RFC 5802).
Every read has a deadline and waits on the socket, never on a sleep."""
import base64
import hashlib
import hmac
import os
import re
import socket
import ssl
import time

STREAMS_NS = "urn:ietf:params:xml:ns:xmpp-streams"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"


def header(to, version="1.0", ns="jabber:client", decl=True):
    return (("<?xml version='1.0'?>" if decl else "") + "<stream:stream to='%s' xmlns='%s' "
            "xmlns:stream='http://etherx.jabber.org/streams' version='%s'>" % (to, ns, version)).encode()


class StreamClosed(Exception):
    pass


class RawStream:
    def __init__(self, server, direct_tls=False, timeout=20):
        self.server = server
        self.timeout = timeout
        self.buf = b""
        self.sock = socket.create_connection((server.host, server.tls_port if direct_tls else server.port),
                                             timeout=timeout)
        if direct_tls:
            self._wrap()

    def _wrap(self):
        ctx = ssl.create_default_context(cafile=self.server.ca_file)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.server.domain)

    @staticmethod
    def norm(text):
        return text.replace('"', "'")

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def read_until(self, pattern, timeout=None):
        """Reads until the text received so far matches `pattern` (regex);
        returns that text and keeps what follows. StreamClosed at EOF."""
        deadline = time.monotonic() + (timeout or self.timeout)
        rx = re.compile(pattern, re.S)
        while True:
            text = self.buf.decode("utf-8", errors="replace")
            m = rx.search(text)
            if m:
                cut = len(text[:m.end()].encode("utf-8"))
                self.buf = self.buf[cut:]
                return text[:m.end()]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("nothing matching /%s/ within %d s; received: %r" %
                                     (pattern, timeout or self.timeout, self.buf[-600:]))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ssl.SSLError) as e:
                raise StreamClosed("connection reset (%s); received: %r" % (e, self.buf[-600:])) from None
            if not chunk:
                raise StreamClosed("connection closed; received: %r" % self.buf[-600:])
            self.buf += chunk

    def open(self, to=None, **kw):
        """Sends a stream header; returns the <stream:features/> text."""
        self.send(header(to or self.server.domain, **kw))
        return self.read_until(r"</stream:features>|<stream:features[^>]*/>")

    def starttls(self):
        self.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.read_until(r"<proceed[^>]*/>|<proceed[^>]*></proceed>")
        self._wrap()
        self.buf = b""

    def stream_error(self, timeout=None):
        """Waits for a stream error and the end of the stream (RFC 6120 §4.9);
        returns (condition, the error's text). Fails when the stream does not
        end with an error."""
        text = self.read_until(r"<stream:error.*?</stream:error>", timeout)
        m = re.search(r"<stream:error[^>]*>\s*<([a-z-]+)\s+xmlns=['\"]%s['\"]" % re.escape(STREAMS_NS), text)
        assert m, "no defined stream error condition in %r" % text[-600:]
        err = re.search(r"<stream:error.*?</stream:error>", text, re.S).group(0)
        try:
            self.read_until(r"</stream:stream>", 10)
        except StreamClosed:
            pass  # RFC 6120 §4.9.1.1: the closing tag may be cut by the TCP close
        self._expect_closed()
        return m.group(1), err

    def _expect_closed(self, timeout=10):
        try:
            self.read_until(r"(?!x)x", timeout)  # matches nothing: read until EOF
        except StreamClosed:
            return
        except AssertionError as e:
            raise AssertionError("the server did not close the connection after the stream error: %s" % e) from None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- SCRAM (RFC 5802, RFC 7677)

def _b64(b):
    return base64.b64encode(b).decode()


def _hmac(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


class ScramExchange:
    """One SCRAM-SHA-256 exchange by hand over a RawStream past STARTTLS,
    so the server-first message (salt, iteration count) is visible."""

    def __init__(self, stream, user):
        self.s = stream
        self.user = user
        self.cnonce = _b64(os.urandom(18))
        self.client_first_bare = "n=%s,r=%s" % (user, self.cnonce)

    def first(self):
        """Sends the auth; returns the server-first attributes as a dict, or
        the <failure/> text when the server answers at once."""
        msg = "n,," + self.client_first_bare
        self.s.send("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>" % (SASL_NS, _b64(msg.encode())))
        text = self.s.read_until(r"<challenge[^>]*>[^<]*</challenge>|<failure.*?</failure>|<failure[^>]*/>")
        if "<failure" in text:
            return text[text.index("<failure"):]
        self.server_first = base64.b64decode(re.search(r"<challenge[^>]*>([^<]*)</challenge>", text).group(1)).decode()
        attrs = dict(kv.split("=", 1) for kv in self.server_first.split(","))
        assert attrs["r"].startswith(self.cnonce), "server nonce does not extend the client's: %r" % attrs
        return attrs

    def final(self, password, attrs):
        """Sends the client-final message computed from `password`; returns the
        server's answer (<success/> or <failure/> text)."""
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = _hmac(salted, b"Client Key")
        stored = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth_msg = ",".join((self.client_first_bare, self.server_first, without_proof)).encode()
        proof = bytes(a ^ b for a, b in zip(client_key, _hmac(stored, auth_msg)))
        self.s.send("<response xmlns='%s'>%s</response>" %
                    (SASL_NS, _b64(("%s,p=%s" % (without_proof, _b64(proof))).encode())))
        text = self.s.read_until(r"<success.*?</success>|<success[^>]*/>|<failure.*?</failure>|<failure[^>]*/>")
        return text[max(text.find("<success"), text.find("<failure")):]
