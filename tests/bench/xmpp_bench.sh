#!/usr/bin/env bash
# B-XMPP-CONN and B-XMPP-MSG (docs/BENCHMARKS.md, issue 16). Not a test: run by hand.
#
#   tests/bench/xmpp_bench.sh [BUILD_DIR=build/bench]
#
# BUILD_DIR is a Release tree built with
#   scripts/build.sh build/bench -DCMAKE_BUILD_TYPE=Release -DIMP_BENCH=ON -DIMP_TESTS=OFF
# (it holds tests/bench/xmpp_load and, for the impd column, apps/impd/impd
# and apps/impctl/impctl). Peers: tests/bench/install-bench-deps.sh. This
# script builds nothing. Everything binds to loopback, runs in a private
# temporary directory and is stopped on exit; every wait is bounded.
#
# For each server kind in SERVERS, in the same run, one after the other,
# each pinned to CPU SERVER_CPU while the load client (xmpp_load.cpp) runs
# on LOAD_CPU:
#   prosody   Prosody 0.12, network_backend = "epoll", storage = "memory",
#             internal_hashed (SCRAM-SHA-1 keys, 4096 iterations), modules
#             roster, saslauth, tls, disco, ping (+ the automatic ones:
#             presence, message, iq, offline), s2s off; accounts and
#             rosters created in memory at start by
#             tests/bench/prosody/mod_bench_seed.lua. Runs as user prosody.
#   ejabberd  ejabberd 23.01 on its own Erlang node (+S 1:1: one scheduler,
#             +K true, scheduler busy-wait off: EJABBERD_BUSY_WAIT), shaper none, Mnesia tables in RAM (ram_copies),
#             auth_password_format scram (SHA-1, 4096 iterations), modules
#             mod_roster, mod_disco, mod_ping, mod_offline; accounts and
#             rosters through tests/bench/ejabberd/provision.escript over
#             Erlang distribution on loopback. Runs as user ejabberd.
#   impd      the IMP node (role single, its managed MariaDB, which impd
#             starts and stops; its CPU is counted with impd's) with
#             xcp-router and xcp-connection-manager (IMPD_XMPP_CONF, below:
#             limits that would throttle a load test off, as the peers
#             have none), the same certificate as the peers, everything on
#             127.0.0.1; accounts and rosters per IMPD_PROVISION (below).
#             TLS is mandatory on impd's client port: its tcp row is "n/a".
# Provisioning is timed and reported on its own, never in the figures.
#
# Then, per server and per transport in TRANSPORTS (tcp: SASL PLAIN on the
# plain stream, where the server allows it; tls: STARTTLS then PLAIN), USERS
# users log in (stream, [STARTTLS], SASL PLAIN, bind, roster get of CONTACTS
# items, initial presence) and stay connected:
#   B-XMPP-CONN  connections held, login rate, server RSS and PSS before the
#                logins and once the logged-in population is idle; memory
#                per connection = delta / the connections added after the
#                warm-up population (WARMUP users, logged in first).
#   B-XMPP-MSG   for each rate in RATES: PAIRS chatting pairs exchange chat
#                messages (both directions) for STEP_SECS seconds; delivered
#                messages/s, latency p50/p99/max (send time in the body,
#                one clock), server CPU (utime+stime over the step, every
#                thread) per delivered message in microseconds, and the
#                load client's own CPU (it must stay well below 100%);
#                "undelivered": messages still missing 5 s after the last
#                send (an overloaded server; nothing is resent).
# A markdown table at the end; each step also prints a line of key=value,
# including "others": the CPU (% of one core) that processes this script did
# not start used during the step (a lower bound; run on a quiet machine),
# and "server waited for CPU": the time the server's threads were runnable
# but not running (/proc/PID/task/*/schedstat), % of the step: above a few
# percent, latency and rate measure the machine, not the server.
#
# Knobs (environment): SERVERS ("prosody ejabberd impd"), TRANSPORTS
# ("tcp tls"), USERS (2000), WARMUP (USERS / 10), CONTACTS (20), PAIRS
# (50), RATES ("1000 2000"), STEP_SECS (10), SERVER_CPU (1), LOAD_CPU (0),
# INFLIGHT (logins in flight, 200), LOGIN_TIMEOUT (s, 300 + USERS / 20),
# SOURCES (loopback source addresses for the client; default: as many as
# the ephemeral port range needs, one per (ip_local_port_range - 1,000)
# connections, 27,232 here: 127.0.0.1, 127.0.0.2, ...), BUDGET_SECS (3600:
# no new step starts after this), KEEP_WORK (0), IMPD_XMPP_CONF (impd.conf
# lines of the client listener, %PORT% replaced; default below),
# IMPD_PROVISION (auto; api or sql, below), IMPD_JOBS (4),
# EJABBERD_BUSY_WAIT (none; or default), FD_MARGIN (1000).
# File descriptors: client and server each need USERS + FD_MARGIN. The
# script raises the soft limit to the hard one (and the hard one where it
# may); when the hard limit is lower than that, it measures the largest
# population the limit allows (hard - FD_MARGIN users) and prints why, at
# the start and under the table (here: ulimit -Hn 20000, not raisable
# without CAP_SYS_RESOURCE, so at most 19,000 users).
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/bench}
[[ $build = /* ]] || build=$(pwd)/$build
LOAD=$build/tests/bench/xmpp_load
IMPD=$build/apps/impd/impd
IMPCTL=$build/apps/impctl/impctl

read -r -a SERVERS <<<"${SERVERS:-prosody ejabberd impd}"
read -r -a TRANSPORTS <<<"${TRANSPORTS:-tcp tls}"
read -r -a RATES <<<"${RATES:-1000 2000}"
USERS=${USERS:-2000}
WARMUP_SET=${WARMUP:-}
WARMUP=${WARMUP:-$(((USERS / 10) > 0 ? USERS / 10 : 1))}
CONTACTS=${CONTACTS:-20}
PAIRS=${PAIRS:-50}
STEP_SECS=${STEP_SECS:-10}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
INFLIGHT=${INFLIGHT:-200}
LOGIN_TIMEOUT_SET=${LOGIN_TIMEOUT:-}
LOGIN_TIMEOUT=${LOGIN_TIMEOUT:-$((300 + USERS / 20))}
BUDGET_SECS=${BUDGET_SECS:-3600}
KEEP_WORK=${KEEP_WORK:-0}
# ejabberd's scheduler busy-wait (erl +sbwt, +sbwtdcpu, +sbwtdio): "none" by
# default, so that the CPU it burns spinning between messages is not
# charged to each message; EJABBERD_BUSY_WAIT=default keeps the VM's own.
EJABBERD_BUSY_WAIT=${EJABBERD_BUSY_WAIT:-none}
case $EJABBERD_BUSY_WAIT in
  none) EJ_SBWT="+sbwt none +sbwtdcpu none +sbwtdio none" ;;
  default) EJ_SBWT="" ;;
  *) echo "EJABBERD_BUSY_WAIT: none or default" >&2; exit 2 ;;
esac
DOMAIN=bench.example
PASSWORD=bench-password-1
HZ=$(getconf CLK_TCK)

for s in "${SERVERS[@]}"; do
  [[ $s = prosody || $s = ejabberd || $s = impd ]] || { echo "SERVERS: prosody, ejabberd, impd" >&2; exit 2; }
done
for t in "${TRANSPORTS[@]}"; do [[ $t = tcp || $t = tls ]] || { echo "TRANSPORTS: tcp, tls" >&2; exit 2; }; done
((USERS >= 2 * PAIRS)) || { echo "USERS must be at least 2 * PAIRS" >&2; exit 2; }
((WARMUP >= 1 && WARMUP < USERS)) || { echo "WARMUP must be between 1 and USERS - 1" >&2; exit 2; }
[[ -x $LOAD ]] || { echo "not built: $LOAD (see the header of $0)" >&2; exit 2; }
for tool in taskset setpriv openssl ss python3; do command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }; done
(($(nproc) >= 2)) || { echo "needs 2 CPUs (server and load client pinned apart)" >&2; exit 2; }
((EUID == 0)) || { echo "run as root: the peers run as their own system users (prosody, ejabberd)" >&2; exit 2; }
# File descriptors: the load client holds USERS sockets and so does the
# server (each its own process, each with this limit). FD_MARGIN more for
# everything else a process keeps open (listeners, logs, database pool,
# Erlang ports, epoll). The hard limit is raised when this shell may
# (CAP_SYS_RESOURCE); otherwise the run measures the largest population the
# limit allows and says so, rather than refusing or failing half-way.
FD_MARGIN=${FD_MARGIN:-1000}
USERS_ASKED=$USERS
USERS_CAP_REASON=""
want_fds=$((USERS + FD_MARGIN))
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < want_fds)); then
  ulimit -Hn "$want_fds" 2>/dev/null && hard=$(ulimit -Hn)
fi
if [[ $hard != unlimited ]] && ((hard < want_fds)); then
  USERS=$((hard - FD_MARGIN))
  USERS_CAP_REASON="USERS=$USERS_ASKED asked, but the file-descriptor hard limit (ulimit -Hn) is $hard and this shell cannot raise it (that needs CAP_SYS_RESOURCE; prlimit --nofile=N:N or limits.conf where it is allowed): measuring the largest population the limit allows, $USERS users ($FD_MARGIN descriptors kept for each process's other files); $USERS_ASKED connections are not measured by this run"
  ((USERS >= 2 * PAIRS && USERS >= 2)) || { echo "$USERS_CAP_REASON: too few" >&2; exit 2; }
  WARMUP=${WARMUP_SET:-$((USERS / 10 > 0 ? USERS / 10 : 1))}
  ((WARMUP >= 1 && WARMUP < USERS)) || { echo "$USERS_CAP_REASON: WARMUP=$WARMUP does not fit" >&2; exit 2; }
  LOGIN_TIMEOUT=${LOGIN_TIMEOUT_SET:-$((300 + USERS / 20))}
fi
[[ $hard = unlimited ]] || ulimit -n "$hard"
# Source addresses: connect() gives each (source, destination) pair its own
# ephemeral port range (IP_BIND_ADDRESS_NO_PORT), net.ipv4.ip_local_port_range,
# so above that many connections the client needs more loopback sources
# (127.0.0.2, ...; all of 127.0.0.0/8 is loopback); 1,000 ports are kept
# spare for TIME_WAIT and the servers' own connections.
read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
PER_SOURCE=$((port_hi - port_lo + 1 - 1000))
if [[ -z ${SOURCES:-} ]]; then
  SOURCES=127.0.0.1
  for ((i = 2; i <= (USERS + PER_SOURCE - 1) / PER_SOURCE; i++)); do SOURCES+=",127.0.0.$i"; done
fi

work=$(mktemp -d /tmp/imp-xmppbench-XXXXXX)
chmod 755 "$work"
pids=()
# shellcheck source=bench_lib.sh
source "$here/tests/bench/bench_lib.sh"
our_pids() { echo "$$ ${SERVER_PIDS[*]:-} ${CLIENT_PID:-} ${EPMD_PID:-} ${MARIADB_PID:-}"; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 2 -subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" 2>/dev/null

run_delay_ns() {  # PIDs...: time every thread of them spent runnable but waiting for a CPU (schedstat), ns
  local s=0 p v
  for p in "$@"; do
    [[ -n $p ]] || continue
    v=$(cat /proc/"$p"/task/*/schedstat 2>/dev/null | awk '{s += $2} END {printf "%.0f", s}')
    s=$((s + ${v:-0}))
  done
  echo "$s"
}
over_budget() { (($(date +%s) - t_start > BUDGET_SECS)); }
# The server's processes whose CPU is counted: SERVER_PIDS, and impd's
# managed MariaDB (its memory is reported apart: a bounded buffer pool).
cpu_pids() { CPU_PIDS=("${SERVER_PIDS[@]}" ${MARIADB_PID:+"$MARIADB_PID"}); }  # -> CPU_PIDS
settle() {  # until the server is idle over 1 s (at most 60 s): < 5% of a core used plus waited for
  # (runnable but not running, schedstat): on a busy machine a starved server
  # with work left uses little CPU, yet is not idle
  local start=$SECONDS a b qa qb busy
  while :; do
    cpu_pids
    a=$(ticks "${CPU_PIDS[@]}"); qa=$(run_delay_ns "${CPU_PIDS[@]}")
    sleep 1  # a measuring window, not a synchronisation
    b=$(ticks "${CPU_PIDS[@]}"); qb=$(run_delay_ns "${CPU_PIDS[@]}")
    busy=$((100 * (b - a) / HZ + (qb - qa) / 10000000))
    ((busy < 5)) && break
    ((SECONDS - start < 60)) || { log "  (server still busy: $busy% of a core used or waited for after 60 s)"; break; }
  done
}
wait_line() {  # FILE PATTERN SECONDS PID [N=1]: until N lines matching PATTERN are in FILE
  local deadline=$((SECONDS + $3)) want=${5:-1}
  until (($(grep -c -E "$2" "$1" 2>/dev/null || true) >= want)); do
    if ! alive "$4"; then
      (($(grep -c -E "$2" "$1" 2>/dev/null || true) >= want)) && return 0
      echo "process $4 exited before printing /$2/:" >&2; tail -5 "$1" >&2; return 1
    fi
    ((SECONDS < deadline)) || { echo "no /$2/ in $1 after $3 s" >&2; return 1; }
    sleep 0.1
  done
}
kv() { sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p" <<<" $2" | head -1; }  # KEY LINE -> value
stop_pids() {  # PIDs...: TERM, wait up to 30 s each, then KILL
  local p
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do
    for _ in $(seq 300); do alive "$p" || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}

# ---------------------------------------------------------------- servers
# Each start_* sets SERVER_PIDS (what is measured), PORT and VERSION, and
# PROVISION (the provisioning line: what and how long).
start_prosody() {
  local d=$work/prosody
  rm -rf "$d"
  mkdir -p "$d/data" "$d/certs" "$d/plugins"
  cp "$here/tests/bench/prosody/mod_bench_seed.lua" "$d/plugins/"
  cp "$work/key.pem" "$work/cert.pem" "$d/certs/"
  read -r PORT <<<"$(free_ports 1)"
  cat >"$d/prosody.cfg.lua" <<EOF
-- generated by tests/bench/xmpp_bench.sh
daemonize = false
pidfile = "$d/prosody.pid"
data_path = "$d/data"
certificates = "$d/certs"
plugin_paths = { "$d/plugins" }
network_backend = "epoll"
network_settings = { tcp_backlog = 4096; nagle = false }
storage = "memory"
authentication = "internal_hashed"
default_iteration_count = 4096
interfaces = { "127.0.0.1" }
c2s_interfaces = { "127.0.0.1" }
c2s_ports = { $PORT }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "bench_seed" }
modules_disabled = { "s2s" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
log = { info = "$d/prosody.log" }
VirtualHost "$DOMAIN"
  ssl = { key = "$d/certs/key.pem"; certificate = "$d/certs/cert.pem" }
  bench_seed_users = $USERS
  bench_seed_prefix = "user"
  bench_seed_password = "$PASSWORD"
  bench_seed_contacts = $CONTACTS
EOF
  chown -R prosody:prosody "$d"
  taskset -c "$SERVER_CPU" setpriv --reuid=prosody --regid=prosody --clear-groups \
    prosody --config "$d/prosody.cfg.lua" -F >"$d/stdout" 2>&1 &
  SERVER_PIDS=($!)
  pids+=("${SERVER_PIDS[0]}")
  # mod_bench_seed fills the in-memory stores while the host loads, which
  # may come before the port opens: seconds per 10,000 users.
  wait_listen "$PORT" "${SERVER_PIDS[0]}" prosody $((60 + USERS / 100))
  # The port opens before the host's modules load; mod_bench_seed logs when done.
  wait_line "$d/prosody.log" 'bench_seed: provisioned' 3600 "${SERVER_PIDS[0]}" || exit 1
  PROVISION=$(grep -o 'bench_seed: provisioned.*' "$d/prosody.log" | head -1)
  [[ -n $PROVISION ]] || { echo "prosody: no provisioning line in its log" >&2; exit 1; }
  VERSION="Prosody $(dpkg-query -W -f '${Version}' prosody), Lua $(dpkg-query -W -f '${Version}' lua5.4 2>/dev/null || echo '?')"
}

live_epmd() {  # PIDs of running epmd processes (not zombies: an init that does not reap keeps those)
  local p
  for p in $(pgrep -x epmd || true); do alive "$p" && echo "$p"; done
  return 0
}
start_ejabberd() {
  local d=$work/ejabberd node cookie ebin
  rm -rf "$d"
  mkdir -p "$d/db" "$d/log"
  cat "$work/key.pem" "$work/cert.pem" >"$d/bench.pem"
  read -r PORT <<<"$(free_ports 1)"
  node=xmppbench$$@localhost
  cookie=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  EJ_NODE=$node; EJ_COOKIE=$cookie
  cat >"$d/ejabberd.yml" <<EOF
# generated by tests/bench/xmpp_bench.sh
hosts:
  - $DOMAIN
loglevel: warning
log_rotate_count: 0
certfiles:
  - $d/bench.pem
listen:
  -
    port: $PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 4096
    shaper: none
    access: c2s
    starttls: true
    max_stanza_size: 262144
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha
default_db: mnesia
shaper: {}
shaper_rules: {}
acl: {}
access_rules:
  c2s:
    allow: all
  local:
    allow: all
modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
  mod_offline: {}
EOF
  chown -R ejabberd:ejabberd "$d"
  # An epmd that runs already is someone else's and stays; one that the
  # node starts is stopped with it.
  local epmd_before
  epmd_before=$(live_epmd)
  ebin=$(dirname "$(dpkg -L ejabberd | grep -m1 '/ebin/ejabberd.app$')")
  (cd "$d" && exec env HOME="$d" ERL_LIBS="$(dirname "$(dirname "$ebin")")" ERL_EPMD_ADDRESS=127.0.0.1 \
     EJABBERD_CONFIG_PATH="$d/ejabberd.yml" EJABBERD_LOG_PATH="$d/log/ejabberd.log" \
     ERL_MAX_PORTS=$((USERS + 2000)) ERL_CRASH_DUMP_BYTES=0 \
     taskset -c "$SERVER_CPU" setpriv --reuid=ejabberd --regid=ejabberd --clear-groups \
     erl -sname "$node" -setcookie "$cookie" +K true +P $((USERS * 4 + 100000)) +S 1:1 $EJ_SBWT \
       -kernel inet_dist_use_interface '{127,0,0,1}' -mnesia dir "\"$d/db\"" -noinput -s ejabberd \
       >"$d/stdout" 2>&1) &
  SERVER_PIDS=($!)
  pids+=("${SERVER_PIDS[0]}")
  wait_listen "$PORT" "${SERVER_PIDS[0]}" ejabberd 120
  if [[ -z $epmd_before ]]; then EPMD_PID=$(live_epmd | head -1); [[ -z $EPMD_PID ]] || pids=("$EPMD_PID" "${pids[@]}"); fi
  local out
  out=$(cd "$d" && ERL_EPMD_ADDRESS=127.0.0.1 HOME="$d" taskset -c "$LOAD_CPU" timeout 3600 escript \
          "$here/tests/bench/ejabberd/provision.escript" "$node" "$cookie" "$DOMAIN" "$USERS" user "$PASSWORD" "$CONTACTS") || {
    echo "ejabberd provisioning failed: $out" >&2; exit 1; }
  PROVISION=$out
  VERSION="ejabberd $(dpkg-query -W -f '${Version}' ejabberd), Erlang/OTP $(erl -noshell -eval 'io:put_chars(erlang:system_info(otp_release)), halt().'), busy-wait $EJABBERD_BUSY_WAIT"
}

# impd's client-listener lines ([xcp-connection-manager], impd.conf(5));
# %PORT% is the client port. TLS is mandatory there (STARTTLS on
# client_port), so impd has no plain-TCP column. The abuse limits that would
# throttle or refuse a load test from one loopback address are off, as the
# peers run without any (ejabberd shaper: none, Prosody without mod_limits):
# connections per IP and still-logging-in connections unlimited, no
# per-session stanza or byte rates (at the defaults, 500 stanzas/s per
# session, the chat steps would not be throttled below 50,000 msg/s with 50
# pairs), idle streams never closed (the load client sends nothing while
# idle; the peers close no idle stream either). channel_binding only
# matters to SCRAM-*-PLUS; the client uses PLAIN. Everything else: defaults.
IMPD_XMPP_CONF=${IMPD_XMPP_CONF:-"[xcp-connection-manager]
listen_address = 127.0.0.1
advertised_host = 127.0.0.1
client_port = %PORT%
tls_port = -1
max_connections_per_ip = 0
max_unauthenticated = 0
max_stanzas_per_second = 0
max_bytes_per_second = 0
idle_timeout_seconds = 0"}
IMPD_JOBS=${IMPD_JOBS:-4}  # impctl processes in flight while provisioning accounts
# How impd's accounts and rosters are made (timed apart, never measured):
#   api   every account through impctl (user add, user passwd), rosters
#         through subscriptions over XMPP (xmpp_load --provision): the
#         product's own interfaces end to end; about 0.05-0.1 s per user on
#         this machine, so for small populations.
#   sql   user1 through impctl, the others and the rosters written into the
#         tables the way the peers' seeding writes theirs (the same rows the
#         api path leaves).
#   auto  api up to 2,000 users, sql above.
IMPD_PROVISION=${IMPD_PROVISION:-auto}
case $IMPD_PROVISION in api | sql | auto) ;; *) echo "IMPD_PROVISION: api, sql or auto" >&2; exit 2 ;; esac
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", (b - a) / 1e9}'; }
impd_xcp_router_detail() {  # the detail `impctl service list` shows for xcp-router
  "$IMPCTL" -c "$work/impd/impd.conf" --url "$ADMIN_URL" --json service list | python3 -c '
import json, sys
for s in json.load(sys.stdin)["services"]:
    if s["name"] == "xcp-router":
        print(s.get("detail", ""))'
}
impd_sessions() { impd_xcp_router_detail | sed -n 's/.* \([0-9][0-9]*\) session(s).*/\1/p'; }
wait_generation() {  # until impd's xcp-router has applied the settings generation its database holds now (30 s)
  local d=$work/impd want got deadline=$((SECONDS + 30))
  want=$(mariadb --no-defaults -S "$d/state/mariadb/mysqld.sock" -u root -N -B imp \
           -e 'SELECT generation FROM core_settings WHERE id = 1' 2>&1) || { SKIP_REASON="settings generation: $want"; return 1; }
  while :; do
    got=$(impd_xcp_router_detail | sed -n 's/.*settings generation \([0-9][0-9]*\).*/\1/p')
    ((${got:--1} >= want)) && return 0
    ((SECONDS < deadline)) || { SKIP_REASON="xcp-router did not apply settings generation $want in 30 s (at ${got:-?})"; return 1; }
    sleep 0.2
  done
}
launch_impd() {  # impd from $work/impd/impd.conf, until it is ready and listens for clients
  local d=$work/impd
  taskset -c "$SERVER_CPU" "$IMPD" -c "$d/impd.conf" >"$d/stdout" 2>>"$d/stderr" &
  SERVER_PIDS=($!)
  pids+=("${SERVER_PIDS[0]}")
  local deadline=$((SECONDS + 120))
  until grep -q '^impd: ready' "$d/stdout"; do
    alive "${SERVER_PIDS[0]}" || { SKIP_REASON="impd exited: $(tail -3 "$d/stderr" | tr '\n' ' ')"; return 1; }
    ((SECONDS < deadline)) || { SKIP_REASON="impd not ready after 120 s"; return 1; }
    sleep 0.1
  done
  ADMIN_URL=$(sed -n 's/^impd: ready.*admin=\([^ ]*\).*/\1/p' "$d/stdout" | head -1)
  # impd's managed MariaDB: pinned with impd (inherited), its CPU counted
  # with the server's, its memory reported apart.
  MARIADB_PID=$(pgrep -P "${SERVER_PIDS[0]}" -x mariadbd | head -1 || true)
  wait_listen "$PORT" "${SERVER_PIDS[0]}" "impd xcp-connection-manager (client_port $PORT)"
}
start_impd() {
  local d=$work/impd
  [[ -x $IMPD && -x $IMPCTL ]] || { SKIP_REASON="not built: $IMPD or $IMPCTL"; return 1; }
  rm -rf "$d"
  mkdir -p "$d"
  read -r PORT <<<"$(free_ports 1)"
  # The SIP proxy of role single binds its listeners too: loopback, any free
  # port, unused here.
  cat >"$d/impd.conf" <<CONF
# generated by tests/bench/xmpp_bench.sh
[node]
id = bench1
role = single
state_dir = $d/state
log_dir = $d/log
sql_dir = $here/sql
[admin]
address = 127.0.0.1
port = 0
[services]
settings_poll_ms = 200
[database]
buffer_pool_mb = 64
[tls]
cert_file = $work/cert.pem
key_file = $work/key.pem
[sip-proxy]
listen_address = 127.0.0.1
advertised_host = 127.0.0.1
tcp_port = 0
tls_server_auth_port = 0
tls_peer_auth_port = 0
udp_port = 0
${IMPD_XMPP_CONF//%PORT%/$PORT}
CONF
  local out
  out=$("$IMPD" --check-config -c "$d/impd.conf" 2>&1) || { SKIP_REASON="impd refuses its configuration: $out"; return 1; }
  launch_impd || return 1
  ctl() { "$IMPCTL" -c "$d/impd.conf" --url "$ADMIN_URL" "$@"; }
  out=$(ctl domain add "$DOMAIN" 2>&1) || { SKIP_REASON="impctl domain add: $out"; return 1; }
  # The router learns a new domain (and users) with the settings
  # generation; a login before that would get host-unknown.
  wait_generation || return 1
  local t0 t1 t2 mode=$IMPD_PROVISION
  [[ $mode = auto ]] && { ((USERS <= 2000)) && mode=api || mode=sql; }
  t0=$(now_ns)
  # user1 always through impctl: user add, then user passwd with the
  # password on stdin (SCRAM-SHA-1 and -SHA-256 keys, 4096 iterations).
  cat >"$d/add-user.sh" <<SCRIPT
#!/bin/sh
set -e
"$IMPCTL" -c "$d/impd.conf" --url "$ADMIN_URL" user add "user\$1" --im-address "user\$1@$DOMAIN" --home-node bench1 >/dev/null
printf '%s\n' "$PASSWORD" | "$IMPCTL" -c "$d/impd.conf" --url "$ADMIN_URL" user passwd "user\$1" >/dev/null
SCRIPT
  chmod 700 "$d/add-user.sh"
  out=$("$d/add-user.sh" 1 2>&1) || { SKIP_REASON="impctl user add/passwd user1 failed: $out"; return 1; }
  if [[ $mode = api ]]; then
    # Every account through impctl, IMPD_JOBS at a time (the impctl
    # processes on the load client's CPU); rosters made over XMPP by the
    # load client: every user subscribes to its ring neighbours and approves
    # every request (the server's auto-approval, on by default, may answer
    # first).
    if ((USERS > 1)); then
      out=$(seq 2 "$USERS" | taskset -c "$LOAD_CPU" timeout $((600 + USERS / 10)) xargs -P "$IMPD_JOBS" -n 1 "$d/add-user.sh" 2>&1) ||
        { SKIP_REASON="account provisioning (impctl) failed: $(tail -3 <<<"$out" | tr '\n' ' ')"; return 1; }
    fi
    t1=$(now_ns)
    wait_generation || return 1
    out=$(taskset -c "$LOAD_CPU" "$LOAD" --port "$PORT" --domain "$DOMAIN" --users "$USERS" --password "$PASSWORD" \
            --sources "$SOURCES" --inflight "$INFLIGHT" --login-timeout "$LOGIN_TIMEOUT" --provision "$CONTACTS" --tls \
            --max-seconds $((LOGIN_TIMEOUT * 3)) </dev/null 2>&1) ||
      { SKIP_REASON="roster provisioning failed: $(tail -5 <<<"$out" | tr '\n' ' ')"; return 1; }
    t2=$(now_ns)
    PROVISION="IMPD_PROVISION=api: accounts: $USERS in $(secs_between "$t0" "$t1") s (impctl user add + user passwd, $IMPD_JOBS in flight); rosters over XMPP in $(secs_between "$t1" "$t2") s: $(grep '^provision' <<<"$out")"
    # Every user has logged in and out: what impd keeps of that would sit in
    # the memory baseline, which the peers' users never give theirs. A fresh
    # impd on the same database measures like them.
    local start=$SECONDS n
    while n=$(impd_sessions) && ((${n:-0} > 0)) && ((SECONDS - start < 60)); do sleep 0.5; done
    settle
    stop_server
    launch_impd || return 1
    wait_generation || return 1
    PROVISION+="; impd restarted after it"
  else
    # As the peers' provisioning does: users 2..N copy user1's directory row
    # and SCRAM credentials (same salt and keys: every account has the same
    # password), the ring rosters (the same neighbours as the load client's
    # --provision, subscription "both", as the subscriptions leave them:
    # no ask, no pending, no groups) written straight into the tables, in
    # one transaction that bumps the settings generation as impctl's
    # changes do. MariaDB's SEQUENCE engine (seq_1_to_N) numbers the rows
    # (unsigned: user u's neighbour u + o - 1 - half, mod N, is written
    # without a negative term).
    local half=$(((CONTACTS < USERS - 1 ? CONTACTS : USERS - 1) / 2))
    out=$(mariadb --no-defaults -S "$d/state/mariadb/mysqld.sock" -u root imp 2>&1 <<SQL
START TRANSACTION;
INSERT INTO dir_user (userid, im_address, im_domain, licensed, home_node)
  SELECT CONCAT('user', s.seq), CONCAT('user', s.seq, '@', u.im_domain), u.im_domain, u.licensed, u.home_node
  FROM seq_2_to_$((USERS > 1 ? USERS : 2)) s JOIN dir_user u ON u.userid = 'user1' WHERE s.seq <= $USERS;
INSERT INTO xcp_user_credential (userid, mechanism, salt, iterations, stored_key, server_key)
  SELECT CONCAT('user', s.seq), c.mechanism, c.salt, c.iterations, c.stored_key, c.server_key
  FROM seq_2_to_$((USERS > 1 ? USERS : 2)) s JOIN xcp_user_credential c ON c.userid = 'user1' WHERE s.seq <= $USERS;
INSERT INTO xcp_roster_version (owner, version) SELECT CONCAT('user', seq), 1 FROM seq_1_to_$USERS;
INSERT INTO xcp_roster_item (owner, contact, subscription, version)
  SELECT CONCAT('user', u.seq), CONCAT('user', MOD(u.seq + o.seq + $((USERS - 1 - half)), $USERS) + 1, '@$DOMAIN'), 'both', 1
  FROM seq_1_to_$USERS u JOIN seq_0_to_$((2 * half)) o ON o.seq <> $half;
UPDATE core_settings SET generation = generation + 1, changed_at = CURRENT_TIMESTAMP(3) WHERE id = 1;
COMMIT;
SELECT CONCAT('users=', (SELECT COUNT(*) FROM dir_user), ' credentials=', (SELECT COUNT(*) FROM xcp_user_credential),
              ' roster_items=', (SELECT COUNT(*) FROM xcp_roster_item)) AS provisioned;
SQL
) || { SKIP_REASON="SQL provisioning failed: $(tail -3 <<<"$out" | tr '\n' ' ')"; return 1; }
    t1=$(now_ns)
    wait_generation || return 1
    PROVISION="IMPD_PROVISION=sql: user1 through impctl, then $USERS accounts and ring rosters of $((2 * half)) contacts in SQL in $(secs_between "$t0" "$t1") s: $(tail -1 <<<"$out")"
  fi
  VERSION="$("$IMPD" --version 2>/dev/null | head -1) (tree $(git -C "$here" describe --always --dirty 2>/dev/null || echo '?')), MariaDB $(mariadbd --version 2>/dev/null | awk '{print $3}')"
}

# full_gc SERVER: a full garbage collection in the server (Prosody: Lua
# collectgarbage through SIGUSR2 and mod_bench_seed; ejabberd: every Erlang
# process, over distribution); nothing for impd (no garbage collector).
# Prints what was done.
full_gc() {
  case $1 in
    prosody)
      local n
      n=$(grep -c 'bench_seed: full GC done' "$work/prosody/prosody.log" || true)
      kill -USR2 "${SERVER_PIDS[0]}"
      wait_line "$work/prosody/prosody.log" 'bench_seed: full GC done' 60 "${SERVER_PIDS[0]}" $((n + 1)) || return 1
      grep -o 'bench_seed: full GC done.*' "$work/prosody/prosody.log" | tail -1 ;;
    ejabberd)
      (cd "$work/ejabberd" && ERL_EPMD_ADDRESS=127.0.0.1 HOME="$work/ejabberd" taskset -c "$LOAD_CPU" timeout 120 \
         erl -noshell -sname "xmppbench-gc$$@localhost" -setcookie "$EJ_COOKIE" -eval "
           N = '$EJ_NODE', B = rpc:call(N, erlang, memory, [processes]),
           [rpc:call(N, erlang, garbage_collect, [P]) || P <- rpc:call(N, erlang, processes, [])],
           io:format(\"erlang:garbage_collect/1 on every process: processes ~b KB -> ~b KB~n\",
                     [B div 1024, rpc:call(N, erlang, memory, [processes]) div 1024]), halt().") ;;
    *) echo "no garbage collector" ;;
  esac
}

impd_log_summary() {  # WHEN: impd's warnings and errors so far, counted by message (ids and times left out)
  local d=$work/impd/log
  [[ -d $d ]] || return 0
  cat "$d"/*.log 2>/dev/null | awk '$2 == "warn" || $2 == "error" || $2 == "critical"' |
    sed -E 's/^[^ ]+ +//; s/\[[0-9]+\] //; s/\[[0-9a-f]{24}\] //; s/[0-9]+(\.[0-9]+){3}:[0-9]+/ADDR/g; s/user[0-9]+@/userN@/g' |
    sort | uniq -c | sort -rn | head -5 | sed "s/^/  impd $1: /"
}
stop_server() {  # the server, then what it left: impd's MariaDB (impd stops it; should it not have), epmd
  stop_pids "${SERVER_PIDS[@]}"
  if [[ -n ${MARIADB_PID:-} ]]; then
    # impd's own word on this stop (an abandoned service, a crash): what its
    # logs and stderr gained since the last stop.
    local words
    words=$({ grep -h 'abandoned\|did not finish' "$work/impd/log/"*.log 2>/dev/null || true; } | cut -c1-200 | sed 's/^/impd stop: /'
            if [[ -s $work/impd/stderr ]]; then cut -c1-200 "$work/impd/stderr" | sed 's/^/impd stderr: /'; fi)
    if [[ -n $words ]]; then
      { grep -vxF -f <(printf '%s\n' "$IMPD_STOP_SEEN") <<<"$words" || true; } | tail -5 | sed 's/^/  /'
      IMPD_STOP_SEEN=$words
    fi
  fi
  if [[ -n ${MARIADB_PID:-} ]] && alive "$MARIADB_PID"; then
    log "  (impd's MariaDB $MARIADB_PID still runs after impd stopped: stopping it)"
    stop_pids "$MARIADB_PID"
  fi
  MARIADB_PID=
  [[ -n ${EPMD_PID:-} ]] && { stop_pids "$EPMD_PID"; EPMD_PID=; }
  return 0
}

# ---------------------------------------------------------------- steps
declare -a ROWS=()
run_transport() {  # SERVER TRANSPORT
  local server=$1 tr=$2 cdir=$work/client-$1-$2 tlsflag=()
  [[ $tr = tls ]] && tlsflag=(--tls)
  mkdir -p "$cdir"
  settle
  local rss0 pss0 rss1 pss1 login warm stats held0 gc
  mkfifo "$cdir/ctl"
  taskset -c "$LOAD_CPU" "$LOAD" --port "$PORT" --domain "$DOMAIN" --users "$USERS" --password "$PASSWORD" \
    --sources "$SOURCES" --inflight "$INFLIGHT" --login-timeout "$LOGIN_TIMEOUT" --initial "$WARMUP" \
    --max-seconds $((2 * LOGIN_TIMEOUT + 600 + ${#RATES[@]} * (STEP_SECS + 150))) "${tlsflag[@]}" \
    <"$cdir/ctl" >"$cdir/out" 2>"$cdir/err" &
  CLIENT_PID=$!
  pids+=("$CLIENT_PID")
  exec 3>"$cdir/ctl"
  # Warm-up population first (code paths, caches and allocator pools the
  # first logins bring in are not per-connection memory), then the baseline,
  # then the rest of the users.
  wait_line "$cdir/out" '^login ' $((LOGIN_TIMEOUT + 60)) "$CLIENT_PID" || exit 1
  warm=$(grep '^login ' "$cdir/out" | head -1)
  held0=$(kv held "$warm")
  log "$server $tr: warm-up $warm"
  # Baseline: the warm-up population after a full garbage collection.
  gc=$(full_gc "$server") || gc="full GC failed"
  log "$server $tr: before the baseline: $gc"
  settle
  rss0=$(status_kb VmRSS "${SERVER_PIDS[@]}"); pss0=$(pss_kb "${SERVER_PIDS[@]}")
  local db0 db1
  db0=$(status_kb VmRSS "${MARIADB_PID:-}")
  echo login >&3
  wait_line "$cdir/out" '^login ' $((LOGIN_TIMEOUT + 60)) "$CLIENT_PID" 2 || exit 1
  login=$(grep '^login ' "$cdir/out" | sed -n 2p)
  log "$server $tr: $login"
  [[ -s $cdir/err ]] && sed 's/^/  /' "$cdir/err" | head -10
  [[ $server = impd ]] && impd_log_summary "so far (provisioning included)"
  settle
  rss1=$(status_kb VmRSS "${SERVER_PIDS[@]}"); pss1=$(pss_kb "${SERVER_PIDS[@]}")
  db1=$(status_kb VmRSS "${MARIADB_PID:-}")
  echo stats >&3
  wait_line "$cdir/out" '^stats ' 30 "$CLIENT_PID" || exit 1
  stats=$(grep '^stats ' "$cdir/out" | tail -1)
  local held per_rss per_pss rss2 pss2 gc_rss gc_pss
  held=$(kv held "$stats")
  per_rss=$(awk -v a="$rss0" -v b="$rss1" -v n=$((held - held0)) 'BEGIN {if (n > 0) printf "%.1f", (b - a) / n; else print "-"}')
  per_pss=$(awk -v a="$pss0" -v b="$pss1" -v n=$((held - held0)) 'BEGIN {if (n > 0) printf "%.1f", (b - a) / n; else print "-"}')
  log "$server $tr: idle logged-in population: held=$held (warm-up $held0) rss ${rss0}->${rss1} kB pss ${pss0}->${pss1} kB: ${per_rss} kB RSS, ${per_pss} kB PSS per connection beyond the warm-up; $stats"
  [[ -n ${MARIADB_PID:-} ]] && log "$server $tr: its MariaDB meanwhile (not in the per-connection figures): rss ${db0}->${db1} kB, $(awk -v a="$db0" -v b="$db1" -v n=$((held - held0)) 'BEGIN {if (n > 0) printf "%.1f", (b - a) / n; else print "-"}') kB per connection"
  # The same population after a full garbage collection: what the
  # connections need, without the garbage the logins left (an idle Erlang
  # process or Lua state does not collect it by itself).
  gc=$(full_gc "$server") || gc="full GC failed"
  settle
  rss2=$(status_kb VmRSS "${SERVER_PIDS[@]}"); pss2=$(pss_kb "${SERVER_PIDS[@]}")
  gc_rss=$(awk -v a="$rss0" -v b="$rss2" -v n=$((held - held0)) 'BEGIN {if (n > 0) printf "%.1f", (b - a) / n; else print "-"}')
  gc_pss=$(awk -v a="$pss0" -v b="$pss2" -v n=$((held - held0)) 'BEGIN {if (n > 0) printf "%.1f", (b - a) / n; else print "-"}')
  log "$server $tr: after a full GC ($gc): rss ${rss2} kB pss ${pss2} kB: ${gc_rss} kB RSS, ${gc_pss} kB PSS per connection beyond the warm-up (same baseline)"
  local rate n=0
  for rate in "${RATES[@]}"; do
    if over_budget; then log "time budget (${BUDGET_SECS} s) used up"; break; fi
    if ((${held:-0} < 2 * PAIRS)); then
      log "$server $tr: $held connections held, fewer than the $((2 * PAIRS)) chatting users: no chat steps"
      break
    fi
    n=$((n + 1))
    settle
    local c0 c1 l0 l1 t0 t1 line wall cpu us lcpu others q0 q1 waited m0 m1 dbcpu
    proc_snapshot "$cdir/procs0"
    cpu_pids
    q0=$(run_delay_ns "${CPU_PIDS[@]}")
    t0=$(now_ns); c0=$(ticks "${CPU_PIDS[@]}"); l0=$(ticks "$CLIENT_PID"); m0=$(ticks "${MARIADB_PID:-}")
    echo "chat $PAIRS $rate $STEP_SECS" >&3
    wait_line "$cdir/out" '^chat ' $((STEP_SECS + 75)) "$CLIENT_PID" "$n" || exit 1
    t1=$(now_ns); c1=$(ticks "${CPU_PIDS[@]}"); l1=$(ticks "$CLIENT_PID"); m1=$(ticks "${MARIADB_PID:-}")
    q1=$(run_delay_ns "${CPU_PIDS[@]}")
    proc_snapshot "$cdir/procs1"
    line=$(grep '^chat ' "$cdir/out" | sed -n "${n}p")
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e9}')
    cpu=$(awk -v d=$((c1 - c0)) -v w="$wall" -v hz="$HZ" 'BEGIN {printf "%.0f", 100 * d / hz / w}')
    lcpu=$(awk -v d=$((l1 - l0)) -v w="$wall" -v hz="$HZ" 'BEGIN {printf "%.0f", 100 * d / hz / w}')
    dbcpu=$(awk -v d=$((m1 - m0)) -v w="$wall" -v hz="$HZ" 'BEGIN {printf "%.0f", 100 * d / hz / w}')
    others=$(others_pct "$cdir/procs0" "$cdir/procs1" "$wall")
    waited=$(awk -v d=$((q1 - q0)) -v w="$wall" 'BEGIN {printf "%.0f", 100 * d / 1e9 / w}')
    us=$(awk -v d=$((c1 - c0)) -v m="$(kv delivered "$line")" -v hz="$HZ" 'BEGIN {if (m > 0) printf "%.1f", 1e6 * d / hz / m; else print "-"}')
    log "$server $tr $rate/s: server_cpu=${cpu}%${MARIADB_PID:+ (MariaDB ${dbcpu}% of it)} us_per_msg=$us server_waited_for_cpu=${waited}% client_cpu=${lcpu}% others=${others}% rss=$(($(status_kb VmRSS "${SERVER_PIDS[@]}") / 1024))MB $line"
    ROWS+=("| $server | $tr | $held | $(kv secs "$login") | $per_rss / $gc_rss | $per_pss / $gc_pss | $rate | $(kv rate "$line") | $(kv p99_ms "$line") | $cpu | $us | $waited | $lcpu | $others | $(kv undelivered "$line") |")
  done
  ((n)) || ROWS+=("| $server | $tr | $held | $(kv secs "$login") | $per_rss / $gc_rss | $per_pss / $gc_pss | - | - | - | - | - | - | - | - | - |")
  echo quit >&3
  exec 3>&-
  wait_line "$cdir/out" '^end ' 30 "$CLIENT_PID" || true
  stop_pids "$CLIENT_PID"
  CLIENT_PID=
  # Let the server finish with the logouts before it is stopped: a stop is
  # not what this measures (impd: its router has ended every session, then
  # it is idle).
  if [[ $server = impd ]]; then
    local start=$SECONDS n
    while n=$(impd_sessions) && ((${n:-0} > 0)) && ((SECONDS - start < 60)); do sleep 0.5; done
    ((${n:-0} == 0)) || log "  (impd still has $n session(s) 60 s after the client left)"
  fi
  settle
}

log "B-XMPP-CONN / B-XMPP-MSG bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
[[ -z $USERS_CAP_REASON ]] || log "$USERS_CAP_REASON"
log "users=$USERS contacts=$CONTACTS pairs=$PAIRS rates=${RATES[*]} step=${STEP_SECS}s transports=${TRANSPORTS[*]} server CPU $SERVER_CPU, load client CPU $LOAD_CPU, sources $SOURCES, nofile $(ulimit -n)"
declare -a SKIPPED=()
declare -A VERSIONS=()
# A fresh server instance for each transport: the memory a first population
# leaves in the allocator would otherwise hide the second one's cost.
for server in "${SERVERS[@]}"; do
  for tr in "${TRANSPORTS[@]}"; do
    if over_budget; then log "time budget (${BUDGET_SECS} s) used up"; break 2; fi
    SERVER_PIDS=(); SKIP_REASON=""; MARIADB_PID=""; IMPD_STOP_SEEN=""
    if [[ $server = impd && $tr = tcp ]]; then
      log "impd tcp: not applicable: TLS is mandatory on impd's client port (STARTTLS, RFC 6120 §5; impd.conf(5)), there is no plain-TCP XMPP stream to measure"
      ROWS+=("| impd | tcp | n/a: TLS is mandatory | - | - | - | - | - | - | - | - | - | - | - | - |")
      continue
    fi
    if ! "start_$server"; then
      log "$server: skipped: $SKIP_REASON"
      SKIPPED+=("$server: $SKIP_REASON")
      stop_server
      break
    fi
    VERSIONS[$server]=$VERSION
    log "$server ($tr run): $VERSION, pid ${SERVER_PIDS[*]}, port $PORT; provisioning (not measured): $PROVISION"
    run_transport "$server" "$tr"
    [[ $server = impd && -n $MARIADB_PID ]] && log "impd's MariaDB (CPU counted with impd's, memory not in the per-connection figures): rss=$(($(status_kb VmRSS "$MARIADB_PID") / 1024))MB"
    stop_server
  done
done

log ""
for server in "${SERVERS[@]}"; do [[ -z ${VERSIONS[$server]:-} ]] || log "$server: ${VERSIONS[$server]}"; done
log ""
log "| server | transport | connections held | login s | RSS KB/conn (idle / after GC) | PSS KB/conn (idle / after GC) | target msg/s | delivered msg/s | p99 ms | server CPU % | CPU µs/msg | server waited for CPU % | client CPU % | others CPU % | undelivered |"
log "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for r in "${ROWS[@]}"; do log "$r"; done
for s in "${SKIPPED[@]}"; do log "skipped: $s"; done
[[ -z $USERS_CAP_REASON ]] || log "population capped: $USERS_CAP_REASON"
log "total time: $(($(date +%s) - t_start)) s"
