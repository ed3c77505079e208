"""Process-level test harness: runs real impd and impctl binaries against a
real MariaDB (a private one started by the test, or impd's managed one).

Rules (STYLE.md): ports come from the kernel (port 0 / bind-and-read), every
wait is on an event with a deadline, never a bare sleep.
"""
import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BIN = os.environ.get("IMP_BIN_DIR", "")
IMPD = os.path.join(BIN, "apps/impd/impd")
IMPCTL = os.path.join(BIN, "apps/impctl/impctl")
SQL_DIR = os.environ.get("IMP_SQL_DIR", "")
MARIADBD = shutil.which("mariadbd", path="/usr/sbin:/usr/bin") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"


def migration_files():
    """The migrations shipped in sql/, in order: what a new schema must have."""
    return sorted(f for f in os.listdir(SQL_DIR) if re.match(r"^\d{4}_[a-z0-9_]+\.sql$", f))


def wait_for(pred, timeout, what):
    """Polls pred() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


# Ports free_port() has handed out in this process: the kernel may give the
# same ephemeral port to two bind(0) calls in a row once the first socket is
# closed, and a node's configuration then names one port twice.
_handed_out = set()


def free_port(kind=socket.SOCK_STREAM):
    """A port on 127.0.0.1 that is free now and that this process has not
    handed out before (TCP, or UDP with kind=socket.SOCK_DGRAM)."""
    while True:
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def short_tmpdir(prefix):
    # unix socket paths must stay under 108 bytes
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


class PrivateMariaDB:
    """A MariaDB server on 127.0.0.1:<free port>, owned by one test."""

    def __init__(self, buffer_pool_mb=32):
        self.buffer_pool_mb = buffer_pool_mb
        self.dir = short_tmpdir("imp-mdb-")
        self.datadir = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "m.sock")
        self.port = free_port()
        self.proc = None
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        r = subprocess.run([INSTALL_DB, "--no-defaults", "--datadir=" + self.datadir, "--user=" + self.user,
                            "--auth-root-authentication-method=socket", "--skip-test-db", "--basedir=/usr"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("mariadb-install-db failed:\n" + r.stdout)

    def start(self):
        args = [MARIADBD, "--no-defaults", "--datadir=" + self.datadir, "--socket=" + self.sock,
                "--port=%d" % self.port, "--bind-address=127.0.0.1", "--skip-name-resolve",
                "--log-error=" + os.path.join(self.dir, "error.log"), "--pid-file=" + os.path.join(self.dir, "m.pid"),
                "--innodb-buffer-pool-size=%dM" % self.buffer_pool_mb, "--skip-log-bin"]
        if os.geteuid() == 0:
            args.append("--user=root")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._accepts, 60, "MariaDB on port %d" % self.port)

    def _accepts(self):
        if self.proc.poll() is not None:
            raise RuntimeError("mariadbd exited: " + open(os.path.join(self.dir, "error.log")).read()[-2000:])
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def sql(self, statement, database=None):
        args = ["mariadb", "--no-defaults", "-S", self.sock, "-u", self.user, "-N", "-B", "-e", statement]
        if database:
            args.insert(2, "--database=" + database)
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError("sql failed: %s\n%s" % (statement, r.stderr))
        return [line.split("\t") for line in r.stdout.splitlines()]

    def create_app_user(self, user="imp", password="imp-secret"):
        self.sql("CREATE USER IF NOT EXISTS '%s'@'127.0.0.1' IDENTIFIED BY '%s'; "
                 "GRANT ALL PRIVILEGES ON *.* TO '%s'@'127.0.0.1'" % (user, password, user))
        return "mysql://%s:%s@127.0.0.1:%d/imp" % (user, password, self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Impd:
    """One impd process with its own state and log directories."""

    def __init__(self, node_id, extra=None, db_url=None, heartbeat=1, role="single", sip_extra=None, xcp_extra=None,
                 fcm_extra=None):
        self.dir = short_tmpdir("imp-node-")
        # SIP listeners on loopback, on ports of their own (several nodes per machine)
        self.sip_tcp, self.sip_tls, self.sip_mtls = free_port(), free_port(), free_port()
        # XMPP client listeners likewise (xcp-connection-manager)
        self.xmpp_client, self.xmpp_tls = free_port(), free_port()
        self.node_id = node_id
        self.conf = os.path.join(self.dir, "impd.conf")
        self.log_dir = os.path.join(self.dir, "log")
        lines = ["[node]", "id = " + node_id, "role = " + role, "state_dir = " + os.path.join(self.dir, "state"),
                 "log_dir = " + self.log_dir, "sql_dir = " + SQL_DIR,
                 "[admin]", "port = 0",
                 "[services]", "heartbeat_interval = %d" % heartbeat, "settings_poll_ms = 200", "stop_timeout = 5",
                 "[sip-proxy]", "listen_address = 127.0.0.1", "advertised_host = 127.0.0.1",
                 "tcp_port = %d" % self.sip_tcp, "tls_server_auth_port = %d" % self.sip_tls,
                 "tls_peer_auth_port = %d" % self.sip_mtls] + (sip_extra or []) + [
                 "[xcp-connection-manager]", "listen_address = 127.0.0.1", "advertised_host = 127.0.0.1",
                 "client_port = %d" % self.xmpp_client, "tls_port = %d" % self.xmpp_tls] + (xcp_extra or []) + [
                 # the federation connection manager on a free port (several nodes per machine)
                 "[federation-cm]", "port = 0"] + (fcm_extra or []) + [
                 "[database]", "buffer_pool_mb = 32", "connect_timeout = 3"]
        if db_url:
            lines += ["mode = external", "url = " + db_url]
        self.write_conf(lines + (extra or []))
        self.proc = None
        self.url = None
        self.out = b""

    def write_conf(self, lines):
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, timeout=120):
        self.proc = subprocess.Popen([IMPD, "-c", self.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = self._read_ready(timeout)
        except BaseException:
            # not ready: stop it here, as a failed setUpClass gets no tearDownClass
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self._close()
            raise
        self.url = line.split("admin=")[1].strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def _read_ready(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
                for line in buf.decode().splitlines():
                    if line.startswith("impd: ready"):
                        return line
            elif self.proc.poll() is not None:
                break
        err = self.proc.stderr.read().decode() if self.proc.poll() is not None else "(still running)"
        raise AssertionError("impd %s did not become ready: rc=%s stdout=%r stderr=%s" %
                             (self.node_id, self.proc.poll(), buf.decode(), err))

    def ctl(self, *args, check=True):
        r = subprocess.run([IMPCTL, "-c", self.conf, "--url", self.url] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError("impctl %s failed (%d): %s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def ctl_json(self, *args):
        return json.loads(self.ctl("--json", *args).stdout)

    def token(self):
        with open(os.path.join(self.dir, "state", "admin.token")) as f:
            return f.read().strip()

    def http(self, method, path, token=True, body=None):
        req = urllib.request.Request(self.url + path, method=method, data=body)
        if token:
            req.add_header("Authorization", "Bearer " + self.token())
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def log(self, service):
        p = os.path.join(self.log_dir, service + ".log")
        if not os.path.exists(p):
            return ""
        with open(p, errors="replace") as f:
            return f.read()

    def stop(self, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        rc = self.proc.returncode if self.proc else None
        self._close()
        return rc

    def _close(self):
        if self.proc:
            for f in (self.proc.stdout, self.proc.stderr):
                if f:
                    f.close()

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()
        if os.environ.get("IMP_KEEP_NODES"):  # debugging: the node's conf, logs and state stay
            print("impd node %s kept in %s" % (self.node_id, self.dir), file=sys.stderr)
            return
        shutil.rmtree(self.dir, ignore_errors=True)


def run_impd_expecting_failure(conf_lines, timeout=60):
    d = short_tmpdir("imp-bad-")
    conf = os.path.join(d, "impd.conf")
    with open(conf, "w") as f:
        f.write("\n".join(conf_lines) + "\n")
    r = subprocess.run([IMPD, "-c", conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    shutil.rmtree(d, ignore_errors=True)
    return r
