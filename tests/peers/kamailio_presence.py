"""A private Kamailio 5.6 registrar and presence server for the domain
simple.example (tests/e2e/kamailio/presence.cfg), for IMP's SIMPLE
federation tests: one process on 127.0.0.1:<free port> UDP and TCP, its
db_text tables in a per-run copy, relaying other domains to IMP's SIP proxy
on TCP imp_port. Needs Debian's kamailio and kamailio-presence-modules."""
import glob
import os
import shutil
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CFG = os.path.join(HERE, "..", "e2e", "kamailio", "presence.cfg")
DBTEXT_DIR = "/usr/share/kamailio/dbtext/kamailio"
DBTEXT_TABLES = ("version", "presentity", "active_watchers", "watchers", "xcap")
DOMAIN = "simple.example"


def missing_kamailio():
    """Why Kamailio cannot run here, or None."""
    if shutil.which("kamailio", path="/usr/sbin:/usr/bin:" + os.environ.get("PATH", "")) is None:
        return "kamailio is not installed (Debian package kamailio, scripts/install-deps.sh)"
    if not glob.glob("/usr/lib/*/kamailio/modules/presence.so") + glob.glob("/usr/lib/kamailio/modules/presence.so"):
        return "Kamailio's presence module is not installed (Debian package kamailio-presence-modules)"
    if not all(os.path.exists(os.path.join(DBTEXT_DIR, t)) for t in DBTEXT_TABLES):
        return "Kamailio's db_text tables are missing from " + DBTEXT_DIR
    return None


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Kamailio:
    def __init__(self, workdir, imp_port):
        self.dir = os.path.join(workdir, "kamailio")
        self.db = os.path.join(self.dir, "dbtext")
        self.run = os.path.join(self.dir, "run")
        os.makedirs(self.db)
        os.makedirs(self.run)
        for t in DBTEXT_TABLES:
            shutil.copy(os.path.join(DBTEXT_DIR, t), self.db)
        self.port = _free_port()
        self.imp_port = imp_port
        self.log_path = os.path.join(self.dir, "kamailio.log")
        self.proc = None
        self.log = None

    def start(self, timeout=30):
        exe = shutil.which("kamailio", path="/usr/sbin:/usr/bin:" + os.environ.get("PATH", ""))
        args = [exe, "-f", CFG, "-DD", "-E", "-Y", self.run,
                "-l", "udp:127.0.0.1:%d" % self.port, "-l", "tcp:127.0.0.1:%d" % self.port,
                "-A", "IMP_PORT=%d" % self.imp_port, "-A", 'DB_URL="text://%s"' % self.db]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        # the TCP listener accepting is the readiness event; polled with a deadline
        deadline = time.monotonic() + timeout
        delay = 0.02
        while not self._accepts():
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("Kamailio did not listen on 127.0.0.1:%d within %d s:\n%s" % (
                    self.port, timeout, self.read_log()[-4000:]))
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        return self

    def _accepts(self):
        if self.proc.poll() is not None:
            raise AssertionError("kamailio exited (%d):\n%s" % (self.proc.returncode, self.read_log()[-4000:]))
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()
            self.log = None
        self.proc = None
