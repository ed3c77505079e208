#!/usr/bin/env bash
# B-FED-IM, B-FED-SUBS and B-FED-RECOVERY (docs/BENCHMARKS.md, issue 17).
# Not a test: run by hand.
#
#   tests/bench/fed_bench.sh [BUILD_DIR=build/bench]
#
# BUILD_DIR is a Release tree built with
#   scripts/build.sh build/bench -DCMAKE_BUILD_TYPE=Release -DIMP_BENCH=ON -DIMP_TESTS=OFF
# (apps/impd/impd, apps/impctl/impctl, tests/bench/fed_load and
# tests/bench/xmpp_load). This script builds nothing. Everything binds to
# loopback, runs in a private temporary directory and is stopped on exit;
# every wait is bounded.
#
# Each run (RUNS, in order) gets a fresh private impd (role single, its
# managed MariaDB, pinned with it to SERVER_CPU; its CPU counted with
# impd's) set up for partitioned federation as tests/e2e/test_federation.py
# sets one up: a private CA, the node's certificate, the ACL, the Lync
# pool's certificate subject on the peer-auth listener, a static TLS route
# for the domain's Microsoft users to the load client, federation enabled,
# federation-cm active, presence auto-approval on. Domain example.com;
# native users user1..N (user1 through impctl, the others copied in SQL as
# xmpp_bench.sh does), Microsoft users lync1.. (in no directory: the
# Microsoft side's). The Microsoft side is fed_load.cpp on LOAD_CPU, over
# mutual TLS to the proxy's peer-auth listener; XMPP receivers are
# xmpp_load.cpp on LOAD_CPU.
#
#   im        B-FED-IM: IM_USERS XMPP users logged in (STARTTLS), one INVITE
#             dialog per (Microsoft user, native user) pair (IM_USERS
#             dialogs), then for each rate in IM_RATES MESSAGEs for IM_SECS
#             seconds: delivered msg/s at the XMPP clients, latency send ->
#             XMPP arrival (p50/p99), impd CPU (with MariaDB) and µs per
#             delivered message, the load clients' CPU, others=.
#   subs      B-FED-SUBS: SUBS_USERS native users (none logged in),
#             SUBSCRIBEs from Microsoft watchers (SUBS_USERS x watchers) at
#             SUBS_RATE; a warm-up population (SUBS_WARMUP) then the memory
#             baseline, then each total in SUBS_STEPS: impd RSS, per held
#             subscription beyond the warm-up, the rate (each new one also
#             makes an XMPP subscription in the roster tables); no new step
#             after SUBS_MAX_SECS. Then REFRESH_RATE re-SUBSCRIBEs per
#             second in dialog for REFRESH_SECS: impd CPU per refresh.
#   recovery  B-FED-RECOVERY (incoming): REC_SUBS incoming subscriptions
#             made as in subs, then impd restarted: time from the new
#             impd's launch (and from its readiness) until every watcher had
#             a NOTIFY with a PIDF.
#   recovery-out  B-FED-RECOVERY (outgoing), on a node holding only these:
#             REC_SUBS outgoing subscriptions (native watcher -> Microsoft
#             user) written into fcm_subscription and impd restarted to load
#             them (refreshed in their dialogs, answered by fed_load's UAS:
#             timed from the launch); then the Microsoft side goes away
#             (listener and connections closed) until federation-cm logs
#             that it does not answer, and comes back: time until every
#             outgoing subscription's SUBSCRIBE was answered again.
#
# Knobs (environment): RUNS ("im subs recovery recovery-out"), SERVER_CPU (1), LOAD_CPU
# (0), IM_USERS (100), IM_RATES ("5000 10000 20000"), IM_SECS (10),
# SUBS_USERS (10000), SUBS_RATE (5000), SUBS_WARMUP (10000), SUBS_STEPS
# ("100000 300000 600000 1000000 1300000"), SUBS_MAX_SECS (240),
# REFRESH_RATE (1000), REFRESH_SECS (20), REC_SUBS (100000), INFLIGHT
# (2000 requests in flight), CONNECTIONS (4 TLS connections to the proxy),
# FCM_EXTRA (lines added to [federation-cm], e.g. "recovery_rate = 1500"),
# IMPD_PRELOAD (a library preloaded into impd, e.g. another allocator to
# compare), KEEP_WORK (0).
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/bench}
[[ $build = /* ]] || build=$(pwd)/$build
IMPD=$build/apps/impd/impd
IMPCTL=$build/apps/impctl/impctl
FED=$build/tests/bench/fed_load
XMPP=$build/tests/bench/xmpp_load
for b in "$IMPD" "$IMPCTL" "$FED" "$XMPP"; do [[ -x $b ]] || { echo "not built: $b" >&2; exit 2; }; done

read -r -a RUNS <<<"${RUNS:-im subs recovery recovery-out}"
read -r -a IM_RATES <<<"${IM_RATES:-5000 10000 20000}"
read -r -a SUBS_STEPS <<<"${SUBS_STEPS:-100000 300000 600000 1000000 1300000}"
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
IM_USERS=${IM_USERS:-100}
IM_SECS=${IM_SECS:-10}
SUBS_USERS=${SUBS_USERS:-10000}
SUBS_RATE=${SUBS_RATE:-5000}
SUBS_WARMUP=${SUBS_WARMUP:-10000}
SUBS_MAX_SECS=${SUBS_MAX_SECS:-240}
REFRESH_RATE=${REFRESH_RATE:-1000}
REFRESH_SECS=${REFRESH_SECS:-20}
REC_SUBS=${REC_SUBS:-100000}
INFLIGHT=${INFLIGHT:-2000}
CONNECTIONS=${CONNECTIONS:-4}
KEEP_WORK=${KEEP_WORK:-0}
DOMAIN=example.com
PASSWORD=bench-password-1
HZ=$(getconf CLK_TCK)

work=$(mktemp -d /tmp/imp-fedbench-XXXXXX)
chmod 755 "$work"
pids=()
# shellcheck source=bench_lib.sh
source "$here/tests/bench/bench_lib.sh"
our_pids() { echo "$$ ${IMPD_PID:-} ${MARIADB_PID:-} ${FED_PID:-} ${XMPP_PID:-}"; }

kv() { sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p" <<<" $2" | head -1; }
stop_pids() {
  local p
  for p in "$@"; do [[ -n $p ]] && kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do
    [[ -n $p ]] || continue
    for _ in $(seq 300); do alive "$p" || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
wait_line() {  # FILE PATTERN SECONDS PID [N=1]
  local deadline=$((SECONDS + $3)) want=${5:-1}
  until (($(grep -c -E "$2" "$1" 2>/dev/null || true) >= want)); do
    alive "$4" || { echo "process $4 exited before printing /$2/:" >&2; tail -5 "$1" >&2; return 1; }
    ((SECONDS < deadline)) || { echo "no /$2/ in $1 after $3 s" >&2; return 1; }
    sleep 0.05
  done
}
nth_line() { grep -E "$2" "$1" | sed -n "${3}p"; }  # FILE PATTERN N
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", (b - a) / 1e9}'; }
rss_mb() { awk '$1 == "VmRSS:" {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---------------------------------------------------------------- certificates (as tests/e2e/sippeer.py TestCa)
ca=$work/ca
mkdir -p "$ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca/ca.key" -out "$ca/ca.crt" \
  -days 2 -subj "/CN=IMP Bench CA" 2>/dev/null
issue() {  # CN -> $ca/CN.crt, $ca/CN.key (server and client use, IP SAN 127.0.0.1)
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:%s,IP:127.0.0.1\n' "$1" >"$ca/$1.ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca/$1.key" -out "$ca/$1.csr" -subj "/CN=$1" 2>/dev/null
  openssl x509 -req -in "$ca/$1.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial -out "$ca/$1.crt" -days 2 \
    -extfile "$ca/$1.ext" 2>/dev/null
}
issue "$DOMAIN"
issue lync.example.com

# ---------------------------------------------------------------- impd
d=$work/impd
launch_impd() {  # from $d/impd.conf, until ready and listening for XMPP clients; sets IMPD_PID, MARIADB_PID, ADMIN_URL
  : >"$d/stdout"
  taskset -c "$SERVER_CPU" env ${IMPD_PRELOAD:+LD_PRELOAD=$IMPD_PRELOAD} "$IMPD" -c "$d/impd.conf" >"$d/stdout" 2>>"$d/stderr" &
  IMPD_PID=$!
  pids+=("$IMPD_PID")
  local deadline=$((SECONDS + 120))
  until grep -q '^impd: ready' "$d/stdout"; do
    alive "$IMPD_PID" || { echo "impd exited: $(tail -3 "$d/stderr")" >&2; exit 1; }
    ((SECONDS < deadline)) || { echo "impd not ready after 120 s" >&2; exit 1; }
    sleep 0.05
  done
  ADMIN_URL=$(sed -n 's/^impd: ready.*admin=\([^ ]*\).*/\1/p' "$d/stdout" | head -1)
  MARIADB_PID=$(pgrep -P "$IMPD_PID" -x mariadbd | head -1 || true)
  wait_listen "$XMPP_PORT" "$IMPD_PID" "impd xcp-connection-manager"
  wait_listen "$MTLS_PORT" "$IMPD_PID" "impd sip-proxy peer-auth listener"
}
stop_impd() {
  stop_pids "$IMPD_PID"
  if [[ -n ${MARIADB_PID:-} ]] && alive "$MARIADB_PID"; then stop_pids "$MARIADB_PID"; fi
  IMPD_PID=; MARIADB_PID=
}
ctl() { "$IMPCTL" -c "$d/impd.conf" --url "$ADMIN_URL" "$@"; }
sql() { mariadb --no-defaults -S "$d/state/mariadb/mysqld.sock" -u root -N -B imp "$@"; }
wait_applied() {  # SERVICE...: until each reports the settings generation the database holds (30 s)
  local want got s deadline=$((SECONDS + 30))
  want=$(sql -e 'SELECT generation FROM core_settings WHERE id = 1')
  for s in "$@"; do
    while :; do
      got=$(ctl --json service list | python3 -c '
import json, re, sys
for s in json.load(sys.stdin)["services"]:
    if s["name"] == sys.argv[1]:
        m = re.search(r"settings generation (\d+)", s.get("detail", ""))
        print(m.group(1) if m else -1)' "$s")
      ((${got:--1} >= want)) && break
      ((SECONDS < deadline)) || { echo "$s did not apply settings generation $want (at ${got:-?})" >&2; exit 1; }
      sleep 0.2
    done
  done
}
fcm_running() {
  ctl --json service list | python3 -c '
import json, sys
print(any(s["name"] == "federation-cm" and s.get("state") == "running" for s in json.load(sys.stdin)["services"]))'
}
start_impd() {  # USERS: a fresh node with USERS native users, federation toward fed_load on LYNC_PORT
  local users=$1 out t0
  rm -rf "$d"
  mkdir -p "$d"
  read -r XMPP_PORT TCP_PORT TLS_PORT MTLS_PORT FCM_PORT LYNC_PORT <<<"$(free_ports 6)"
  # Fixed ports (not 0): a restarted node keeps them, as dialogs and stored
  # route sets name them.
  cat >"$d/impd.conf" <<CONF
# generated by tests/bench/fed_bench.sh
[node]
id = fedbench
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
buffer_pool_mb = 256
[tls]
cert_file = $ca/$DOMAIN.crt
key_file = $ca/$DOMAIN.key
ca_file = $ca/ca.crt
[sip-proxy]
listen_address = 127.0.0.1
advertised_host = 127.0.0.1
tcp_port = $TCP_PORT
tls_server_auth_port = $TLS_PORT
tls_peer_auth_port = $MTLS_PORT
udp_port = 0
[xcp-connection-manager]
listen_address = 127.0.0.1
advertised_host = 127.0.0.1
client_port = $XMPP_PORT
tls_port = -1
max_connections_per_ip = 0
max_unauthenticated = 0
max_stanzas_per_second = 0
max_bytes_per_second = 0
idle_timeout_seconds = 0
channel_binding = false
[federation-cm]
port = $FCM_PORT
${FCM_EXTRA:-}
CONF
  out=$("$IMPD" --check-config -c "$d/impd.conf" 2>&1) || { echo "impd refuses its configuration: $out" >&2; exit 1; }
  launch_impd
  ctl domain add "$DOMAIN" >/dev/null
  ctl user add user1 --im-address "user1@$DOMAIN" --home-node fedbench >/dev/null
  printf '%s\n' "$PASSWORD" | ctl user passwd user1 >/dev/null
  t0=$(now_ns)
  if ((users > 1)); then
    sql <<SQL
START TRANSACTION;
INSERT INTO dir_user (userid, im_address, im_domain, licensed, home_node)
  SELECT CONCAT('user', s.seq), CONCAT('user', s.seq, '@', u.im_domain), u.im_domain, u.licensed, u.home_node
  FROM seq_2_to_$users s JOIN dir_user u ON u.userid = 'user1';
INSERT INTO xcp_user_credential (userid, mechanism, salt, iterations, stored_key, server_key)
  SELECT CONCAT('user', s.seq), c.mechanism, c.salt, c.iterations, c.stored_key, c.server_key
  FROM seq_2_to_$users s JOIN xcp_user_credential c ON c.userid = 'user1';
UPDATE core_settings SET generation = generation + 1, changed_at = CURRENT_TIMESTAMP(3) WHERE id = 1;
COMMIT;
SQL
  fi
  PROVISION="user1 through impctl, users 2..$users in SQL in $(secs_between "$t0" "$(now_ns)") s"
  ctl acl add 127.0.0.1 >/dev/null
  ctl tls peer-subject add lync.example.com --description "fed_load (Lync side)" >/dev/null
  ctl tls context set peer-auth --peer-subject lync.example.com >/dev/null
  ctl route add ".com.example.*" --route-type domain --next-hop 127.0.0.1 --port "$LYNC_PORT" --transport TLS \
    --priority 1 >/dev/null
  ctl federation enable >/dev/null
  ctl service activate federation-cm >/dev/null
  ctl presence settings set --auto-approve on >/dev/null
  local deadline=$((SECONDS + 60))
  until [[ $(fcm_running) = True ]]; do
    ((SECONDS < deadline)) || { echo "federation-cm not running after 60 s" >&2; exit 1; }
    sleep 0.2
  done
  wait_applied xcp-router sip-proxy federation-cm
  VERSION="$("$IMPD" --version 2>/dev/null | head -1) (tree $(git -C "$here" describe --always --dirty 2>/dev/null || echo '?')), MariaDB $(mariadbd --version 2>/dev/null | awk '{print $3}')"
}

# ---------------------------------------------------------------- load clients
start_fed() {  # NATIVE_USERS CONNECTIONS: fed_load on LYNC_PORT, commands through $work/fed.ctl
  rm -f "$work/fed.ctl"
  mkfifo "$work/fed.ctl"
  : >"$work/fed.out"
  taskset -c "$LOAD_CPU" "$FED" --port "$MTLS_PORT" --listen-port "$LYNC_PORT" --cert "$ca/lync.example.com.crt" \
    --key "$ca/lync.example.com.key" --ca "$ca/ca.crt" --connections "$2" --native-users "$1" --inflight "$INFLIGHT" \
    --domain "$DOMAIN" --max-seconds 1800 <"$work/fed.ctl" >"$work/fed.out" 2>"$work/fed.err" &
  FED_PID=$!
  pids+=("$FED_PID")
  exec 4>"$work/fed.ctl"
  wait_line "$work/fed.out" '^ready ' 60 "$FED_PID"
}
fed() {  # COMMAND SECONDS: sends a command, waits for its answer line, prints it
  local word=${1%% *} n
  case $word in wait-notified) word=notified ;; wait-uas) word=uas ;; esac
  n=$(($(grep -c "^$word" "$work/fed.out" || true) + 1))
  echo "$1" >&4
  wait_line "$work/fed.out" "^$word" "$2" "$FED_PID" "$n" || return 1
  nth_line "$work/fed.out" "^$word" "$n"
}
stop_fed() { [[ -n ${FED_PID:-} ]] && { echo quit >&4 || true; exec 4>&-; stop_pids "$FED_PID"; FED_PID=; }; return 0; }
server_pids() { echo "$IMPD_PID ${MARIADB_PID:-}"; }
settle() {  # until impd (with MariaDB) is idle over 1 s, at most 60 s
  local start=$SECONDS a b
  while :; do
    a=$(ticks $(server_pids)); sleep 1; b=$(ticks $(server_pids))
    ((100 * (b - a) / HZ < 5)) && break
    ((SECONDS - start < 60)) || { log "  (impd still busy after 60 s)"; break; }
  done
}
# window_start / window_end: impd, MariaDB, load clients and others' CPU over a window
window_start() { proc_snapshot "$work/p0"; W0=$(now_ns); S0=$(ticks $(server_pids)); M0=$(ticks "${MARIADB_PID:-}"); L0=$(ticks "${FED_PID:-}" "${XMPP_PID:-}"); }
window_end() {
  proc_snapshot "$work/p1"
  local w1 s1 m1 l1
  w1=$(now_ns); s1=$(ticks $(server_pids)); m1=$(ticks "${MARIADB_PID:-}"); l1=$(ticks "${FED_PID:-}" "${XMPP_PID:-}")
  WALL=$(awk -v a="$W0" -v b="$w1" 'BEGIN {print (b - a) / 1e9}')
  SERVER_TICKS=$((s1 - S0))
  SERVER_PCT=$(awk -v d=$((s1 - S0)) -v w="$WALL" -v hz="$HZ" 'BEGIN {printf "%.0f", 100 * d / hz / w}')
  DB_PCT=$(awk -v d=$((m1 - M0)) -v w="$WALL" -v hz="$HZ" 'BEGIN {printf "%.0f", 100 * d / hz / w}')
  LOAD_PCT=$(awk -v d=$((l1 - L0)) -v w="$WALL" -v hz="$HZ" 'BEGIN {printf "%.0f", 100 * d / hz / w}')
  OTHERS=$(others_pct "$work/p0" "$work/p1" "$WALL")
}
us_per() { awk -v d="$SERVER_TICKS" -v n="$1" -v hz="$HZ" 'BEGIN {if (n > 0) printf "%.1f", 1e6 * d / hz / n; else print "-"}'; }
fcm_log_summary() {  # federation-cm's warnings and errors, counted by message
  cat "$d/log/federation-cm.log" "$d/log/sip-proxy.log" 2>/dev/null | awk '$2 == "warn" || $2 == "error"' |
    sed -E 's/^[^ ]+ +//; s/[0-9a-f]{12,}/ID/g; s/(user|lync)[0-9]+@/\1N@/g; s/[0-9]+(\.[0-9]+){3}:[0-9]+/ADDR/g' |
    sort | uniq -c | sort -rn | head -5 | sed 's/^/  log: /'
}

declare -a ROWS=()

# ---------------------------------------------------------------- B-FED-IM
run_im() {
  log "== B-FED-IM: $IM_USERS XMPP receivers, $IM_USERS INVITE dialogs, rates ${IM_RATES[*]}, ${IM_SECS} s each"
  start_impd "$IM_USERS"
  log "impd: $VERSION; $PROVISION"
  rm -f "$work/xmpp.ctl"; mkfifo "$work/xmpp.ctl"
  taskset -c "$LOAD_CPU" "$XMPP" --port "$XMPP_PORT" --domain "$DOMAIN" --users "$IM_USERS" --password "$PASSWORD" \
    --tls --inflight 50 --login-timeout 120 --max-seconds 900 <"$work/xmpp.ctl" >"$work/xmpp.out" 2>"$work/xmpp.err" &
  XMPP_PID=$!
  pids+=("$XMPP_PID")
  exec 3>"$work/xmpp.ctl"
  wait_line "$work/xmpp.out" '^login ' 150 "$XMPP_PID"
  log "xmpp_load: $(grep '^login ' "$work/xmpp.out" | head -1)"
  start_fed "$IM_USERS" "$CONNECTIONS"
  log "fed_load: $(fed "invite $IM_USERS" 150)"
  local rate n=0 line recv
  for rate in "${IM_RATES[@]}"; do
    n=$((n + 1))
    settle
    local total=$((rate * IM_SECS))
    echo "recv $total $((IM_SECS + 30))" >&3
    window_start
    line=$(fed "im $rate $IM_SECS" $((IM_SECS + 90)))
    wait_line "$work/xmpp.out" '^recv ' $((IM_SECS + 40)) "$XMPP_PID" "$n"
    window_end
    recv=$(nth_line "$work/xmpp.out" '^recv ' "$n")
    local us
    us=$(us_per "$(kv delivered "$recv")")
    log "im $rate/s: impd_cpu=${SERVER_PCT}% (MariaDB ${DB_PCT}%) us_per_msg=$us load_clients_cpu=${LOAD_PCT}% others=${OTHERS}% impd_rss=$(rss_mb "$IMPD_PID")MB"
    log "  fed_load: $line"
    log "  xmpp_load: $recv"
    ROWS+=("| B-FED-IM | $rate | $(kv delivered "$recv") / $(kv sent "$line") | $(kv rate "$recv") | $(kv p50_ms "$recv") | $(kv p99_ms "$recv") | $SERVER_PCT | $us | $(kv client_cpu_pct "$line") + $(kv client_cpu_pct "$recv") | $OTHERS |")
  done
  fcm_log_summary
  echo quit >&3; exec 3>&-
  stop_pids "$XMPP_PID"; XMPP_PID=
  stop_fed
  stop_impd
}

# ---------------------------------------------------------------- B-FED-SUBS
subscribe_to() {  # TOTAL HELD_NOW: subscribes up to TOTAL; prints fed_load's line
  fed "subscribe $(($1 - $2)) $SUBS_RATE" $((($1 - $2) / 500 + 300))
}
run_subs() {
  log "== B-FED-SUBS: $SUBS_USERS native users, SUBSCRIBEs at $SUBS_RATE/s, steps ${SUBS_STEPS[*]} (no new step after ${SUBS_MAX_SECS} s)"
  start_impd "$SUBS_USERS"
  log "impd: $VERSION; $PROVISION"
  start_fed "$SUBS_USERS" "$CONNECTIONS"
  local t_run=$SECONDS line held=0 rss0 db0
  line=$(subscribe_to "$SUBS_WARMUP" 0)
  held=$SUBS_WARMUP
  log "warm-up: $line"
  settle
  rss0=$(status_kb VmRSS "$IMPD_PID"); db0=$(status_kb VmRSS "${MARIADB_PID:-}")
  log "baseline: impd rss $((rss0 / 1024)) MB, MariaDB rss $((db0 / 1024)) MB with $held held"
  local step
  for step in "${SUBS_STEPS[@]}"; do
    ((step > held)) || continue
    if ((SECONDS - t_run > SUBS_MAX_SECS)); then log "time bound (${SUBS_MAX_SECS} s) reached: no step to $step"; break; fi
    window_start
    line=$(subscribe_to "$step" "$held")
    window_end
    held=$(kv held "$line")
    local us rss db per
    us=$(us_per "$(kv ok "$line")")
    settle
    rss=$(status_kb VmRSS "$IMPD_PID"); db=$(status_kb VmRSS "${MARIADB_PID:-}")
    per=$(awk -v a="$rss0" -v b="$rss" -v n=$((held - SUBS_WARMUP)) 'BEGIN {printf "%.2f", (b - a) / n}')
    log "step $held: impd rss $((rss / 1024)) MB ($per kB per subscription beyond the warm-up), MariaDB rss $((db / 1024)) MB; impd_cpu=${SERVER_PCT}% (MariaDB ${DB_PCT}%) us_per_new_sub=$us load_cpu=${LOAD_PCT}% others=${OTHERS}%"
    log "  fed_load: $line"
    ROWS+=("| B-FED-SUBS | $(kv held "$line") held | $(kv rate "$line")/s new | impd RSS $((rss / 1024)) MB, $per kB/sub | MariaDB $((db / 1024)) MB | impd ${SERVER_PCT}%, $us µs/new sub | load ${LOAD_PCT}% | others ${OTHERS}% |")
    if [[ $(kv failed "$line") != 0 || $(kv unanswered "$line") != 0 ]]; then
      log "  failures in this step (see the fed_load line): impd overloaded, no further step"
      break
    fi
  done
  log "stats: $(fed stats 30)"
  settle
  window_start
  line=$(fed "refresh $REFRESH_RATE $REFRESH_SECS" $((REFRESH_SECS + 90)))
  window_end
  local usr
  usr=$(us_per "$(kv ok "$line")")
  log "refresh $REFRESH_RATE/s for $REFRESH_SECS s with $held held: impd_cpu=${SERVER_PCT}% (MariaDB ${DB_PCT}%) us_per_refresh=$usr load_cpu=${LOAD_PCT}% others=${OTHERS}% rss=$(rss_mb "$IMPD_PID")MB"
  log "  fed_load: $line"
  ROWS+=("| B-FED-SUBS refresh | $held held | $(kv rate "$line")/s refreshes (p99 $(kv p99_ms "$line") ms) | - | - | impd ${SERVER_PCT}%, $usr µs/refresh (NOTIFY included) | load ${LOAD_PCT}% | others ${OTHERS}% |")
  fcm_log_summary
  stop_fed
  stop_impd
}

# ---------------------------------------------------------------- B-FED-RECOVERY
run_recovery() {
  log "== B-FED-RECOVERY (incoming): $REC_SUBS incoming subscriptions, impd restart"
  local users=$((REC_SUBS < 10000 ? REC_SUBS : 10000))
  start_impd "$users"
  log "impd: $VERSION; $PROVISION"
  start_fed "$users" "$CONNECTIONS"
  local line t_launch t_ready
  line=$(fed "subscribe $REC_SUBS $SUBS_RATE" $((REC_SUBS / 500 + 300)))
  log "incoming: $line"
  settle
  local stored
  stored=$(sql -e "SELECT COUNT(*) FROM fcm_subscription WHERE direction = 'in'")
  log "stored incoming rows: $stored"
  # 1. impd restart with the incoming subscriptions held
  fed mark 10 >/dev/null
  stop_impd
  t_launch=$(now_ns)
  fed mark 10 >/dev/null
  launch_impd
  t_ready=$(now_ns)
  line=$(fed "wait-notified 120" 130)
  local from_launch from_ready
  from_launch=$(kv secs_mark_to_last "$line")
  from_ready=$(awk -v a="$from_launch" -v r="$(secs_between "$t_launch" "$t_ready")" 'BEGIN {printf "%.1f", a - r}')
  log "after the restart (launch -> ready $(secs_between "$t_launch" "$t_ready") s): $line"
  log "  every watcher had a PIDF NOTIFY $from_launch s after the launch, $from_ready s after impd was ready"
  if [[ $(kv complete "$line") != 1 ]]; then
    local m w u
    for m in $(kv missing "$line" | tr ',' ' '); do
      w=${m%%>*}; u=${m#*>}
      log "  not notified: $w watching $u: roster item $(sql -e "SELECT CONCAT(subscription, ' ask=', ask, ' pending_in=', pending_in) FROM xcp_roster_item WHERE owner = '${u%%@*}' AND contact = '$w'" 2>&1 | tr '\n' ' '), stored $(sql -e "SELECT state FROM fcm_subscription WHERE direction = 'in' AND native_jid = '$u' AND remote_uri = 'sip:$w'" | tr '\n' ' ')"
    done
  fi
  ROWS+=("| B-FED-RECOVERY impd restart | $(kv held "$line") incoming | $(kv with_pidf_since_mark "$line") notified | $from_launch s from launch ($from_ready s from ready) | complete=$(kv complete "$line") |")
  fcm_log_summary
  stop_fed
  stop_impd
}
run_recovery_out() {
  # Outgoing subscriptions (native watcher -> Microsoft user, remote target
  # fed_load's UAS): rows in fcm_subscription, loaded at the next start;
  # a node holding only these, so that the figure is theirs.
  log "== B-FED-RECOVERY (outgoing): $REC_SUBS outgoing subscriptions, the Microsoft side away and back"
  local users=$((REC_SUBS < 10000 ? REC_SUBS : 10000)) line now t0
  start_impd "$users"
  log "impd: $VERSION; $PROVISION"
  start_fed "$users" 0
  now=$(date +%s)
  sql <<SQL
INSERT INTO fcm_subscription (node_id, direction, native_jid, remote_uri, state, call_id, local_tag, remote_tag,
                              remote_target, route_set, local_cseq, remote_cseq, expires_at)
  SELECT 'fedbench', 'out', CONCAT('user', MOD(s.seq, $users) + 1, '@$DOMAIN'),
         CONCAT('sip:lync', s.seq DIV $users + 1, '@$DOMAIN'), 'active', CONCAT('fedbench-out-', s.seq),
         CONCAT('lt', s.seq), CONCAT('rt', s.seq),
         CONCAT('sip:lync', s.seq DIV $users + 1, '@127.0.0.1:$LYNC_PORT;transport=tls'), '', 1, 1, $((now + 7000))
  FROM seq_0_to_$((REC_SUBS - 1)) s;
SQL
  log "outgoing rows: $(sql -e "SELECT COUNT(*) FROM fcm_subscription WHERE direction = 'out'")"
  fed mark 10 >/dev/null
  stop_impd
  t0=$(now_ns)
  launch_impd
  window_start
  line=$(fed "wait-uas $REC_SUBS 90" 100)
  window_end
  log "loaded at start and refreshed in their dialogs: $line (from launch); impd_cpu=${SERVER_PCT}% load_cpu=${LOAD_PCT}% others=${OTHERS}%"
  ROWS+=("| B-FED-RECOVERY impd restart (outgoing) | $REC_SUBS outgoing | $(kv answered_since_mark "$line") refreshed | $(kv secs_mark_to_last "$line") s from launch | complete=$(kv complete "$line") |")
  settle
  # the Microsoft side away, then back
  local n0
  n0=$(grep -c 'does not answer' "$d/log/federation-cm.log" 2>/dev/null || true)
  t0=$(now_ns)
  fed down 10 >/dev/null
  local deadline=$((SECONDS + 60))
  until (($(grep -c 'does not answer' "$d/log/federation-cm.log" 2>/dev/null || true) > n0)); do
    ((SECONDS < deadline)) || { log "federation-cm did not notice the Microsoft side away in 60 s"; break; }
    sleep 0.1
  done
  log "federation-cm noticed the Microsoft side away after $(secs_between "$t0" "$(now_ns)") s"
  sleep 2
  fed mark 10 >/dev/null
  fed up 40 >/dev/null
  window_start
  line=$(fed "wait-uas $REC_SUBS 90" 100)
  window_end
  log "back: $line; impd_cpu=${SERVER_PCT}% load_cpu=${LOAD_PCT}% others=${OTHERS}%"
  ROWS+=("| B-FED-RECOVERY Lync side back | $REC_SUBS outgoing | $(kv answered_since_mark "$line") re-established | $(kv secs_mark_to_last "$line") s from its return | complete=$(kv complete "$line") |")
  grep -h 'answers again\|recovering' "$d/log/federation-cm.log" | cut -c1-220 | sed 's/^/  log: /' | tail -4
  fcm_log_summary
  stop_fed
  stop_impd
}

log "B-FED bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), impd on CPU $SERVER_CPU, load clients on CPU $LOAD_CPU"
for r in "${RUNS[@]}"; do
  case $r in
    im) run_im ;;
    subs) run_subs ;;
    recovery) run_recovery ;;
    recovery-out) run_recovery_out ;;
    *) echo "RUNS: im, subs, recovery, recovery-out" >&2; exit 2 ;;
  esac
done
log ""
for r in "${ROWS[@]}"; do log "$r"; done
log "total time: $(($(date +%s) - t_start)) s"
