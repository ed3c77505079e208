"""The XMPP server under test for the XMPP end-to-end tests (issue 16,
"Tests with real clients"): one object with the same face whatever runs
behind it, so every test script runs against any XMPP server.

IMP_XMPP_SERVER selects the kind:
  impd     (default) impd with its own managed MariaDB, the services
           xcp-router and xcp-connection-manager, users from the directory
           (impctl user add, impctl user passwd on stdin), presence settings
           with impctl presence settings set.
  prosody  Debian's Prosody 0.12 as a private instance: a generated config in a
           temp dir, in-memory storage, users created through its admin shell
           (prosodyctl shell user:create), same domain, same test CA.

Both listen on 127.0.0.1 only, on ports the kernel picked: STARTTLS
(RFC 6120 §5, the 5222 role) and direct TLS (XEP-0368, the 5223 role), with a
certificate for DOMAIN issued by a CA the test makes (tests/e2e/sippeer.py
TestCa). A server that lacks a feature a test needs raises
unittest.SkipTest naming the missing piece; nothing passes without the
server doing the work. When impd has no XMPP service yet (its impd.conf
schema does not know the section), the test process exits with
SKIP_MISSING, which ctest reports as skipped with impd's own message.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import IMPCTL, IMPD, Impd, free_port, short_tmpdir, wait_for  # noqa: E402
from sippeer import TestCa, db_generation  # noqa: E402

DOMAIN = "example.com"
SKIP_MISSING = 77  # ctest SKIP_RETURN_CODE of the XMPP e2e tests

# The impd facts these tests rely on (the server side matches them):
IMPD_SECTION = "xcp-connection-manager"       # impd.conf section of the client listener
IMPD_KEYS = ("listen_address", "client_port", "tls_port", "login_timeout_ms", "max_unauthenticated",
             "max_connections_per_ip")
# What the hardening test expects of both servers: unauthenticated connections
# live at most this long (impd login_timeout_ms, Prosody c2s_timeout).
UNAUTH_LIFETIME_S = 5
PROSODY = shutil.which("prosody") or "/usr/bin/prosody"
PROSODYCTL = shutil.which("prosodyctl") or "/usr/sbin/prosodyctl"


class ServerMissing(Exception):
    """The selected server cannot run the XMPP tests at all (message says why)."""


def kind():
    return os.environ.get("IMP_XMPP_SERVER", "impd")


def _listening(port, proc, what):
    import socket

    def up():
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(up, 60, "%s listening on %d" % (what, port))


def passwd(node, user, password):
    """impctl user passwd with the password on stdin (never the command line)."""
    r = subprocess.run([IMPCTL, "-c", node.conf, "--url", node.url, "user", "passwd", user], input=password + "\n",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("impctl user passwd %s failed (%d): %s%s" % (user, r.returncode, r.stdout, r.stderr))


def wait_applied(node, service="xcp-router", want=None):
    """Waits until `service` of impd `node` reports (in `impctl service list`,
    as sip-proxy does) the cluster settings generation the database holds
    now (`want`, read from the node's managed database when not given): the
    change is live before the test goes on."""
    if want is None:
        want = db_generation(node)

    def applied():
        for s in node.ctl_json("service", "list")["services"]:
            if s["name"] == service:
                g = re.search(r"settings generation (\d+)", s.get("detail", ""))
                assert g, "%s's service detail does not report 'settings generation N': %r" % (
                    service, s.get("detail"))
                return int(g.group(1)) >= want
        raise AssertionError("no %s service" % service)
    wait_for(applied, 30, "%s to apply settings generation %d" % (service, want))


def node_metric(node, name, labels=""):
    """The value of metric `name` on impd's /metrics (with `labels` as
    written inside the braces, e.g. 'event="offline_stored"'), or None."""
    status, text = node.http("GET", "/metrics", token=False)
    assert status == 200, "GET /metrics answered %d" % status
    series = name + ("{%s}" % labels if labels else "")
    m = re.search(r"^%s(?:\{service=\"[^\"]*\"\})? (\S+)$" % re.escape(series), text, re.M)
    if not m and labels:
        m = re.search(r"^%s\{[^}]*%s[^}]*\} (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


class XmppServer:
    """Common face: domain, host, port (STARTTLS), tls_port (direct TLS),
    ca_file, add_user(), set_auto_approve(), set_max_contacts(), alive(),
    log(), cleanup()."""
    domain = DOMAIN
    host = "127.0.0.1"

    def __init__(self, workdir):
        self.work = workdir
        self.ca = TestCa(workdir)
        self.cert, self.key = self.ca.issue(DOMAIN, ip="127.0.0.1")
        self.ca_file = self.ca.cert
        self.port, self.tls_port = free_port(), free_port()
        self.users = {}

    def jid(self, user, resource=None):
        return "%s@%s%s" % (user, DOMAIN, "/" + resource if resource else "")

    def password(self, user):
        return self.users[user]


class NodeClients:
    """What xmpp_client.Client needs of a server, for an impd node a test set
    up itself (harness.Impd): its client ports, the CA of its certificate and
    the users' passwords (add them to `users`)."""
    domain = DOMAIN
    host = "127.0.0.1"

    def __init__(self, node, ca_file):
        self.node, self.port, self.tls_port, self.ca_file = node, node.xmpp_client, node.xmpp_tls, ca_file
        self.users = {}

    def jid(self, user, resource=None):
        return "%s@%s%s" % (user, DOMAIN, "/" + resource if resource else "")

    def password(self, user):
        return self.users[user]


class ImpdServer(XmppServer):
    name = "impd"
    unauth_limit = 500  # below the hardening test's 1,000 idle connections

    def __init__(self, workdir):
        super().__init__(workdir)
        # The harness gives the node its own client ports ([xcp-connection-manager]
        # client_port, tls_port); the limits the hardening tests rely on come on top.
        # slixmpp 1.8 knows only tls-unique: with -PLUS offered it would send the
        # 'y' flag and fail the downgrade check (RFC 5802 §6), so no -PLUS here.
        self.node = Impd("xmpp1", extra=[
            "[tls]", "cert_file = " + self.cert, "key_file = " + self.key, "ca_file = " + self.ca_file],
            xcp_extra=["login_timeout_ms = %d" % (UNAUTH_LIFETIME_S * 1000),
                       "max_unauthenticated = %d" % self.unauth_limit, "max_connections_per_ip = 0",
                       "channel_binding = false"])
        self.port, self.tls_port = self.node.xmpp_client, self.node.xmpp_tls
        check = subprocess.run([IMPD, "--check-config", "-c", self.node.conf], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=60)
        if check.returncode != 0:
            self.node.cleanup()
            if "unknown section" in check.stdout and IMPD_SECTION in check.stdout:
                raise ServerMissing("impd (%s) has no XMPP client service: %s" % (IMPD, check.stdout.strip()))
            raise RuntimeError("impd --check-config refused the test's configuration: " + check.stdout.strip())
        self.node.start()
        self.node.ctl("domain", "add", DOMAIN)
        services = {s["name"] for s in self.node.ctl_json("service", "list")["services"]}
        for s in ("xcp-router", "xcp-connection-manager"):
            if s not in services:
                self.node.cleanup()
                raise ServerMissing("impd runs no %s service (services: %s)" % (s, ", ".join(sorted(services))))
        _listening(self.port, self.node.proc, "impd xcp-connection-manager")
        # The router learns the new domain with the settings generation; a
        # login before that would get host-unknown.
        self._wait_applied()

    def add_user(self, user, password):
        self.node.ctl("user", "add", user, "--im-address", self.jid(user), "--home-node", "xmpp1")
        passwd(self.node, user, password)
        self.users[user] = password

    def set_auto_approve(self, on):
        self.node.ctl("presence", "settings", "set", "--auto-approve", "on" if on else "off")
        self._wait_applied()

    def set_max_contacts(self, n):
        self.node.ctl("presence", "settings", "set", "--max-contacts", str(n))
        self._wait_applied()

    def _wait_applied(self, service="xcp-router"):
        wait_applied(self.node, service)

    def metric(self, name, labels=""):
        return node_metric(self.node, name, labels)

    def alive(self):
        return self.node.proc.poll() is None

    def log(self):
        return "\n".join(self.node.log(s)[-3000:] for s in ("xcp-connection-manager", "xcp-router"))

    def cleanup(self):
        self.node.cleanup()


class ProsodyServer(XmppServer):
    """Prosody 0.12 as a private instance. Its c2s limits are set to the
    values issue 16 asks of impd (10 KB before authentication, 256 KB after,
    the same unauthenticated lifetime); it has no limit on the number of
    unauthenticated connections."""
    name = "prosody"
    unauth_limit = None

    def __init__(self, workdir):
        super().__init__(workdir)
        if not os.path.exists(PROSODY):
            raise ServerMissing("prosody is not installed (apt-get install prosody lua-unbound)")
        self.dir = short_tmpdir("imp-prosody-")
        self.conf = os.path.join(self.dir, "prosody.cfg.lua")
        self.sock = os.path.join(self.dir, "admin.sock")
        self.logfile = os.path.join(self.dir, "prosody.log")
        os.makedirs(os.path.join(self.dir, "data"))
        q = lambda s: '"%s"' % s  # noqa: E731 (paths made here hold no quotes)
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "pidfile = " + q(os.path.join(self.dir, "prosody.pid")),
                "data_path = " + q(os.path.join(self.dir, "data")),
                "admin_socket = " + q(self.sock),
                "run_as_root = true",
                "daemonize = false",
                "interfaces = { \"127.0.0.1\" }",
                "c2s_ports = { %d }" % self.port,
                "c2s_direct_tls_ports = { %d }" % self.tls_port,
                "s2s_ports = { }", "http_ports = { }", "https_ports = { }", "component_ports = { }",
                "modules_enabled = { \"roster\", \"saslauth\", \"tls\", \"disco\", \"ping\", \"version\", "
                "\"carbons\", \"blocklist\", \"offline\", \"smacks\", \"admin_socket\", \"admin_shell\", \"posix\" }",
                "modules_disabled = { \"s2s\" }",
                "storage = \"memory\"",
                "authentication = \"internal_hashed\"",
                "password_hash = \"SHA-256\"",
                "c2s_require_encryption = true",
                "c2s_unauthed_stanza_size_limit = 10240",
                "c2s_stanza_size_limit = 262144",
                "c2s_timeout = %d" % UNAUTH_LIFETIME_S,
                "smacks_hibernation_time = 60",
                "log = { debug = " + q(self.logfile) + " }",
                "certificates = " + q(os.path.join(self.dir, "certs")),
                "c2s_direct_tls_ssl = { certificate = %s, key = %s }" % (q(self.cert), q(self.key)),
                "VirtualHost " + q(DOMAIN),
                "  ssl = { certificate = %s, key = %s }" % (q(self.cert), q(self.key)),
            ]) + "\n")
        self.proc = subprocess.Popen([PROSODY, "--config", self.conf, "-F"], cwd=self.dir,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            _listening(self.port, self.proc, "prosody")
            wait_for(lambda: os.path.exists(self.sock), 30, "prosody's admin socket")
        except BaseException:
            self.cleanup()
            raise

    def _shell(self, command):
        r = subprocess.run([PROSODYCTL, "--config", self.conf, "shell", command], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("prosodyctl shell %s failed (%d): %s" % (command, r.returncode, r.stdout))
        return r.stdout

    def add_user(self, user, password):
        out = self._shell('user:create("%s", "%s")' % (self.jid(user), password))
        if "User created" not in out:
            raise AssertionError("prosodyctl shell user:create %s: %s" % (user, out))
        self.users[user] = password

    def set_auto_approve(self, on):
        if on:
            raise unittest.SkipTest("Prosody 0.12 has no automatic approval of subscriptions (PS-2)")

    def set_max_contacts(self, n):
        raise unittest.SkipTest("Prosody 0.12 has no contact-list size limit (PS-1)")

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        if not os.path.exists(self.logfile):
            return ""
        with open(self.logfile, errors="replace") as f:
            return f.read()[-3000:]

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_server(testclass):
    """Starts the selected server for a test class (setUpClass) and registers
    its cleanup; exits the process with SKIP_MISSING when the server cannot
    run XMPP at all."""
    work = tempfile.mkdtemp(prefix="imp-e2e-xmpp-")
    testclass.addClassCleanup(shutil.rmtree, work, ignore_errors=True)
    k = kind()
    try:
        server = {"impd": ImpdServer, "prosody": ProsodyServer}[k](work)
    except KeyError:
        raise AssertionError("IMP_XMPP_SERVER=%s: use impd or prosody" % k) from None
    except ServerMissing as e:
        print("SKIPPED: %s" % e, file=sys.stderr, flush=True)
        os._exit(SKIP_MISSING)
    testclass.addClassCleanup(server.cleanup)
    return server


def main():
    """unittest.main with the server kind printed first."""
    print("XMPP server under test: %s" % kind(), flush=True)
    unittest.main(verbosity=2)
