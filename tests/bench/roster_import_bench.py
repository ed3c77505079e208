#!/usr/bin/env python3
"""MG-7 contact list import and MG-9 contact ID rename rates of the
xcp-router store (RosterStore::importContacts, renameContact) on a private
MariaDB.

    tests/bench/roster_import_bench.py build/dev

Starts a MariaDB of its own on loopback (buffer pool BUFFER_POOL_MB, default
1024), then runs the skipped bench cases of xcp_router_mariadb_tests ("MariaDB
bench: *", or CASE). "MG-7 import rate" migrates the schema, makes USERS users and
imports USERS x CONTACTS local contacts in batches of BATCH rows, one
transaction each (defaults 10,000 x 100 in batches of 1000, no PS-1 limits;
MAX_CONTACTS / MAX_WATCHERS set them; user i lists users i+1, i+1+STEP, ...,
STEP = USERS / CONTACTS by default, 1 as in bat_bench.sh). Prints the case's lines: rows/s and
batch latencies, the time per statement kind, and the CPU seconds MariaDB
and the client used (rows per CPU-second does not depend on what else the
machine runs). "MG-9 rename rate" renames RENAME_IDS remote contact IDs
(default 1000), each in RENAME_REFS x RENAME_OWNERS / RENAME_IDS lists
(default 100 of 1000 users), one transaction each. Everything it starts is
stopped on exit.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 64
    build = os.path.abspath(sys.argv[1])
    os.environ.setdefault("IMP_BIN_DIR", build)
    os.environ.setdefault("IMP_SQL_DIR", os.path.join(SRC, "sql"))
    sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
    from harness import PrivateMariaDB  # after IMP_BIN_DIR / IMP_SQL_DIR are set

    db = PrivateMariaDB(buffer_pool_mb=int(os.environ.get("BUFFER_POOL_MB", "1024")))
    try:
        db.start()
        url = db.create_app_user()
        db.sql("CREATE DATABASE IF NOT EXISTS imp CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        env = dict(os.environ, IMP_TEST_DB_URL=url, MARIADBD_PID=str(db.proc.pid))
        tests = os.path.join(build, "modules/xcp-router/xcp_router_mariadb_tests")
        case = os.environ.get("CASE", "MariaDB bench: *")
        r = subprocess.run([tests, "--no-skip", "--test-case=" + case], env=env)
        return r.returncode
    finally:
        db.cleanup()


if __name__ == "__main__":
    sys.exit(main())
