#!/usr/bin/env bash
# B-PROXY-TLS (docs/BENCHMARKS.md). Not a test: run by hand.
#
#   tests/bench/proxy_tls_bench.sh [BUILD_DIR=build/bench]
#
# BUILD_DIR is a Release tree built with
#   scripts/build.sh build/bench -DCMAKE_BUILD_TYPE=Release -DIMP_BENCH=ON -DIMP_TESTS=OFF
# (impd, impctl and tests/bench/sip_tls_load). This script builds nothing.
# Needs 2 CPUs, openssl, python3, taskset, ss, and Kamailio 5.6 with its TLS
# module: apt-get install kamailio kamailio-tls-modules (Debian 12). Everything
# runs on loopback, in a private temporary directory, and everything it
# starts is stopped on exit.
#
# Stateful MESSAGE relay over TLS: sip_tls_load relay -> proxy -> sip_tls_load
# uas, for (a) impd's sip-proxy (server-auth TLS listener, static routes with
# --transport TLS; its managed MariaDB included) and (b) Kamailio 5.6 with
# tests/bench/kamailio/relay_tls.cfg (tls module, tlsf memory managers), in
# the same run, for TLS 1.2 and TLS 1.3. A test CA made here signs the node
# certificate (impd's [tls] and Kamailio's tls server profile) and the UAS's
# certificate; both proxies verify the UAS against that CA. Two UAS
# processes: one speaks TLS 1.3 only (requests for example.com), one TLS 1.2
# only (example.net), so both legs of a relayed request use the version
# under test; the load client pins the same version.
#
# First the load client runs straight against each UAS at the highest rate
# of RATES (is the load generator a bottleneck?). Then ROUNDS rounds; in
# each, for each TLS version, impd then Kamailio (A, B, A, B, ...) go through
# the fixed RATES, STEP_SECS seconds per step, stopping at a proxy's first
# failing step. A step passes when every MESSAGE got its 200, the achieved
# rate is at least 95% of the target and the p99 latency is under 10 ms.
# Before each proxy's series and after a failed step the script waits until
# Kamailio holds no transaction and the servers are idle. Per step: achieved
# rate, latency, proxy CPU (% of one core), CPU us per MESSAGE (utime+stime
# of every server process: impd + MariaDB, all Kamailio processes, divided
# by the 200s), memory.
# Then full TLS handshakes (no resumption) against each proxy's TLS listener
# for HS_SECS seconds, HS_INFLIGHT at a time, per version and round: the
# proxy's CPU over the interval gives handshakes per core-second.
# The proxies are pinned to CPU PROXY_CPU, the load client and the UASes to
# CPU LOAD_CPU. Should Kamailio exit (5.6.3 with OpenSSL 3 has crashed under
# the handshake loop here), the script logs it with the end of its log,
# counts that step as failed and starts it again.
#
# Knobs (environment): STEP_SECS (10), ROUNDS (3), RATES (list, msg/s),
# VERSIONS ("1.3 1.2"), CONNS (1: load-client connections), HS_SECS (10),
# HS_INFLIGHT (8), PROXY_CPU (1), LOAD_CPU (0), KAM_SHM_MB (4096),
# BUDGET_SECS (1320: no new relay step starts after this), KEEP_WORK (0: 1 keeps the
# temporary directory with the logs and certificates).
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/bench}
[[ $build = /* ]] || build=$(pwd)/$build
IMPD=$build/apps/impd/impd
IMPCTL=$build/apps/impctl/impctl
LOAD=$build/tests/bench/sip_tls_load
KAM_CFG=$here/tests/bench/kamailio/relay_tls.cfg
SQL_DIR=$here/sql

STEP_SECS=${STEP_SECS:-10}
ROUNDS=${ROUNDS:-3}
read -r -a RATES <<<"${RATES:-2000 3000 4000 6000 8000 12000 16000}"
read -r -a VERSIONS <<<"${VERSIONS:-1.3 1.2}"
CONNS=${CONNS:-1}
HS_SECS=${HS_SECS:-10}
HS_INFLIGHT=${HS_INFLIGHT:-8}
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
KAM_SHM_MB=${KAM_SHM_MB:-4096}
BUDGET_SECS=${BUDGET_SECS:-1320}
KEEP_WORK=${KEEP_WORK:-0}
HZ=$(getconf CLK_TCK)

for tool in kamailio kamcmd openssl taskset python3 ss; do
  command -v "$tool" >/dev/null || {
    echo "missing: $tool (Kamailio: apt-get install kamailio kamailio-tls-modules)" >&2; exit 2; }
done
KAM_MODDIR=/usr/lib/x86_64-linux-gnu/kamailio/modules
[[ -f $KAM_MODDIR/tls.so ]] || { echo "missing: Kamailio's tls module ($KAM_MODDIR/tls.so): apt-get install kamailio-tls-modules" >&2; exit 2; }
for f in "$IMPD" "$IMPCTL" "$LOAD"; do [[ -x $f ]] || { echo "not built: $f (see the header of $0)" >&2; exit 2; }; done
(($(nproc) >= 2)) || { echo "needs 2 CPUs (proxy and load generator pinned apart)" >&2; exit 2; }
for v in "${VERSIONS[@]}"; do [[ $v = 1.2 || $v = 1.3 ]] || { echo "VERSIONS: 1.2 and/or 1.3" >&2; exit 2; }; done

work=$(mktemp -d /tmp/imp-tlsb-XXXXXX)  # short: MariaDB's unix socket lives under it
pids=()
# shellcheck source=bench_lib.sh
source "$here/tests/bench/bench_lib.sh"
our_pids() { echo "$$ ${IMPD_PID:-} ${MARIADB_PID:-} ${UAS13_PID:-} ${UAS12_PID:-} ${KAM_PIDS[*]:-} ${CLIENT_PID:-}"; }
busy_pct() {  # WALL_S: whole-machine CPU busy (% of all cores) from /proc/stat over the last window (STAT0 set by busy_mark)
  awk -v a="$STAT0" 'NR == 1 {split(a, o, " "); t = 0; i = 0; for (k = 2; k <= NF; k++) {t += $k - o[k]} ;
    i = ($5 - o[5]) + ($6 - o[6]); printf "%.0f", 100 * (t - i) / t}' /proc/stat
}
busy_mark() { STAT0=$(head -1 /proc/stat); }
pct() {  # TICKS WALL_S -> % of one core
  awk -v d="$1" -v w="$2" -v hz="$HZ" 'BEGIN {printf "%.0f", 100 * d / hz / w}'
}
kv() {  # KEY LINE: value of key=value in a result line
  grep -o "\b$1=[^ ]*" <<<"$2" | head -1 | cut -d= -f2-
}

# ---------------------------------------------------------------- certificates
ca=$work/ca
mkdir -p "$ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca/ca.key" -out "$ca/ca.crt" \
  -days 2 -subj "/CN=IMP Bench CA" >/dev/null 2>&1
issue() {  # CN -> $ca/CN.crt, $ca/CN.key (EC P-256, serverAuth+clientAuth, SAN DNS:CN, IP:127.0.0.1)
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:%s,IP:127.0.0.1\n' \
    "$1" >"$ca/$1.ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca/$1.key" -out "$ca/$1.csr" \
    -subj "/CN=$1" >/dev/null 2>&1
  openssl x509 -req -in "$ca/$1.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial -out "$ca/$1.crt" \
    -days 2 -extfile "$ca/$1.ext" >/dev/null 2>&1
}
issue imp-node.test
issue uas.test

# ---------------------------------------------------------------- processes
read -r SIP_TCP SIP_TLS SIP_MTLS KAM_PORT UAS13_PORT UAS12_PORT <<<"$(free_ports 6)"

start_uas() {  # PORT VERSION NAME -> prints PID
  mkdir -p "$work/$3"
  taskset -c "$LOAD_CPU" "$LOAD" uas --port "$1" --tls-version "$2" --cert "$ca/uas.test.crt" --key "$ca/uas.test.key" \
    --duration 3600 >"$work/$3/stdout" 2>"$work/$3/stderr" &
  echo $!
}
UAS13_PID=$(start_uas "$UAS13_PORT" 1.3 uas13)
pids+=("$UAS13_PID")
UAS12_PID=$(start_uas "$UAS12_PORT" 1.2 uas12)
pids+=("$UAS12_PID")
wait_listen "$UAS13_PORT" "$UAS13_PID" "TLS 1.3 UAS"
wait_listen "$UAS12_PORT" "$UAS12_PID" "TLS 1.2 UAS"
uas_port() { [[ $1 = 1.2 ]] && echo "$UAS12_PORT" || echo "$UAS13_PORT"; }
domain_of() { [[ $1 = 1.2 ]] && echo example.net || echo example.com; }

mkdir -p "$work/impd"
cat >"$work/impd/impd.conf" <<EOF
[node]
id = tlsbench1
role = single
state_dir = $work/impd/state
log_dir = $work/impd/log
sql_dir = $SQL_DIR
[admin]
port = 0
[services]
settings_poll_ms = 200
stop_timeout = 5
[database]
buffer_pool_mb = 32
[tls]
cert_file = $ca/imp-node.test.crt
key_file = $ca/imp-node.test.key
ca_file = $ca/ca.crt
[sip-proxy]
listen_address = 127.0.0.1
advertised_host = 127.0.0.1
tcp_port = $SIP_TCP
tls_server_auth_port = $SIP_TLS
tls_peer_auth_port = $SIP_MTLS
flood_max_requests = 0
EOF
taskset -c "$PROXY_CPU" "$IMPD" -c "$work/impd/impd.conf" >"$work/impd/stdout" 2>"$work/impd/stderr" &
IMPD_PID=$!
pids+=("$IMPD_PID")
deadline=$((SECONDS + 120))
until grep -q '^impd: ready' "$work/impd/stdout"; do
  alive "$IMPD_PID" || { echo "impd exited:" >&2; cat "$work/impd/stderr" >&2; exit 1; }
  ((SECONDS < deadline)) || { echo "impd not ready after 120 s" >&2; exit 1; }
  sleep 0.1
done
ADMIN_URL=$(sed -n 's/^impd: ready.*admin=\([^ ]*\).*/\1/p' "$work/impd/stdout" | head -1)
MARIADB_PID=$(pgrep -P "$IMPD_PID" -x mariadbd | head -1 || true)
ctl() { "$IMPCTL" -c "$work/impd/impd.conf" --url "$ADMIN_URL" "$@"; }
ctl acl add 127.0.0.1 --description bench >/dev/null
ctl route add .net.example.* --route-type domain --next-hop 127.0.0.1 --port "$UAS12_PORT" --transport TLS --priority 1 >/dev/null
ctl route add .com.example.* --route-type domain --next-hop 127.0.0.1 --port "$UAS13_PORT" --transport TLS --priority 1 >/dev/null

mkdir -p "$work/kam"
cat >"$work/kam/tls.cfg" <<EOF
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = $ca/imp-node.test.crt
private_key = $ca/imp-node.test.key

[client:default]
method = TLSv1.2+
verify_certificate = yes
require_certificate = yes
ca_list = $ca/ca.crt
EOF
KAM_STARTS=0
start_kam() {  # (re)start Kamailio; its PIDs in KAM_PID and, once it relays, KAM_PIDS
  KAM_STARTS=$((KAM_STARTS + 1))
  # no core file: a crashing worker would dump the whole shared pool (-m) into the working directory
  (ulimit -c 0; exec taskset -c "$PROXY_CPU" kamailio -f "$KAM_CFG" -DD -E --atexit=no -m "$KAM_SHM_MB" -M 16 -x tlsf -X tlsf -Y "$work/kam" -A WITH_CTL \
    -A "TLS_CFG=\"$work/kam/tls.cfg\"" -A "LISTEN_PORT=$KAM_PORT" -A "UAS_PORT=$UAS13_PORT" -A "UAS12_PORT=$UAS12_PORT" \
    >"$work/kam/kamailio.log.$KAM_STARTS" 2>&1) &
  KAM_PID=$!
  pids+=("$KAM_PID")
  wait_listen "$KAM_PORT" "$KAM_PID" "kamailio"
}
KAM_CRASHES=()
kam_check() {  # WHEN: if Kamailio is gone, log it with the end of its log and start it again
  alive "$KAM_PID" && return 0
  local st=0
  wait "$KAM_PID" 2>/dev/null || st=$?
  KAM_CRASHES+=("$1 (exit status $st)")
  log "  !! kamailio exited (status $st) $1; end of its log:"
  grep -v '^$' "$work/kam/kamailio.log.$KAM_STARTS" | tail -4 | sed 's/0x[0-9a-f]*/0x../g' | cut -c1-200 | sed 's/^/  !!   /'
  start_kam
  wait_relay "$KAM_PORT" kamailio
  KAM_PIDS=("$KAM_PID" $(pgrep -P "$KAM_PID" || true))
  log "  !! kamailio restarted, pids ${KAM_PIDS[*]}"
  return 1
}
start_kam

few_messages() {  # PORT VERSION: a handful of MESSAGEs, success = every one answered 200
  local out
  out=$(taskset -c "$LOAD_CPU" "$LOAD" relay --port "$1" --tls-version "$2" --domain "$(domain_of "$2")" \
    --ca "$ca/ca.crt" --rate 20 --duration 0.2 --timeout 2 2>/dev/null) || return 1
  [[ $(kv sent "$out") -gt 0 && $(kv ok "$out") = "$(kv sent "$out")" ]]
}
wait_relay() {  # PORT WHAT: poll until MESSAGEs over both versions get their 200s
  local deadline=$((SECONDS + 60)) v
  for v in "${VERSIONS[@]}"; do
    until few_messages "$1" "$v"; do
      ((SECONDS < deadline)) || { echo "$2 does not relay MESSAGE over TLS $v to the UAS after 60 s" >&2; exit 1; }
      sleep 0.2
    done
  done
}
wait_relay "$SIP_TLS" impd
wait_relay "$KAM_PORT" kamailio
KAM_PIDS=("$KAM_PID" $(pgrep -P "$KAM_PID" || true))

proc_snapshot "$work/procs0"
busy_mark
sleep 3  # a measuring window, not a synchronisation
proc_snapshot "$work/procs1"
IDLE_NOTE="other processes used $(others_pct "$work/procs0" "$work/procs1" 3)% of one core (whole machine $(busy_pct)% busy) in the 3 s before the first step"
log "B-PROXY-TLS bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(openssl version)"
log "impd: $IMPD ($("$IMPD" --version 2>/dev/null | head -1), built $(date -u -r "$IMPD" '+%Y-%m-%d %H:%M UTC')), pid $IMPD_PID, MariaDB $(mariadbd --version 2>/dev/null | awk '{print $3}') pid ${MARIADB_PID:-?}, CPU $PROXY_CPU"
log "kamailio: $(kamailio -v | head -1 | cut -d' ' -f2-), $((${#KAM_PIDS[@]})) processes, --atexit=no -m $KAM_SHM_MB -M 16 -x tlsf -X tlsf, CPU $PROXY_CPU"
log "load client: $LOAD, $CONNS connection(s), UASes (TLS 1.3 port $UAS13_PORT, TLS 1.2 port $UAS12_PORT) on CPU $LOAD_CPU, ${STEP_SECS} s per step"
log "machine: $IDLE_NOTE"
log ""

# ---------------------------------------------------------------- relay
kam_current() {  # transactions Kamailio holds now (tm.stats "current"), -1 if unknown
  kamcmd -s "unix:$work/kam/kamailio_ctl" tm.stats 2>/dev/null | awk '$1 == "current:" {print $2; f = 1} END {if (!f) print -1}'
}
settle() {  # until Kamailio holds no transaction and the servers use < 5% of one core over 1 s (at most 90 s)
  local -a p=("$IMPD_PID" "${MARIADB_PID:-}" "${KAM_PIDS[@]}" "$UAS13_PID" "$UAS12_PID")
  local start=$SECONDS a b
  while :; do
    a=$(ticks "${p[@]}")
    sleep 1  # a measuring window
    b=$(ticks "${p[@]}")
    ((100 * (b - a) / HZ < 5)) && (($(kam_current) <= 0)) && break
    ((SECONDS - start < 90)) || { log "  (servers still busy: $((100 * (b - a) / HZ))% of a core after 90 s)"; break; }
  done
  SETTLED=$((SECONDS - start))
}

server_pids() {  # NAME -> the PIDs whose CPU counts for that server
  case $1 in
    impd) echo "$IMPD_PID ${MARIADB_PID:-}" ;;
    kamailio) echo "${KAM_PIDS[*]}" ;;
    direct) [[ $2 = 1.2 ]] && echo "$UAS12_PID" || echo "$UAS13_PID" ;;
  esac
}
mem_note() {  # NAME
  case $1 in
    impd) echo "rss=$(($(status_kb VmRSS "$IMPD_PID") / 1024))MB hwm=$(($(status_kb VmHWM "$IMPD_PID") / 1024))MB mariadb_rss=$(($(status_kb VmRSS "${MARIADB_PID:-}") / 1024))MB" ;;
    kamailio) echo "pss=$(($(pss_kb "${KAM_PIDS[@]}") / 1024))MB rss_sum=$(($(status_kb VmRSS "${KAM_PIDS[@]}") / 1024))MB" ;;
    *) echo "uas_rss=$(($(status_kb VmRSS $(server_pids direct "$2")) / 1024))MB" ;;
  esac
}

declare -A STEP   # name,ver,round,rate -> "pass us_per_msg cpu% p99 achieved"
declare -A BEST   # name,ver,round -> highest passing rate
run_step() {  # NAME PORT VERSION RATE ROUND -> STEP_PASS, one line
  local name=$1 port=$2 ver=$3 rate=$4 round=$5
  local -a sp proxy_only
  read -r -a sp <<<"$(server_pids "$name" "$ver")"
  proxy_only=("${sp[0]}")
  [[ $name = kamailio ]] && proxy_only=("${sp[@]}")
  local dir=$work/steps/$name-$ver-r$round-$rate
  mkdir -p "$dir"
  local t0 t1 c0 c1 p0 p1 u0 u1 rc=0 out
  proc_snapshot "$dir/procs0"; busy_mark
  t0=$(now_ns); c0=$(ticks "${sp[@]}"); p0=$(ticks "${proxy_only[@]}"); u0=$(ticks "$(server_pids direct "$ver")")
  out=$(timeout $((STEP_SECS * 3 + 60)) taskset -c "$LOAD_CPU" "$LOAD" relay --port "$port" --tls-version "$ver" \
    --domain "$(domain_of "$ver")" --ca "$ca/ca.crt" --rate "$rate" --duration "$STEP_SECS" --connections "$CONNS" \
    2>"$dir/stderr") || rc=$?
  t1=$(now_ns); c1=$(ticks "${sp[@]}"); p1=$(ticks "${proxy_only[@]}"); u1=$(ticks "$(server_pids direct "$ver")")
  proc_snapshot "$dir/procs1"
  local wall_s ok sent p99 achieved us pass cpu allcpu
  wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e9}')
  ok=$(kv ok "$out"); sent=$(kv sent "$out"); p99=$(kv p99 "$out"); achieved=$(kv rate "$out")
  us=$(awk -v d=$((c1 - c0)) -v n="${ok:-0}" -v hz="$HZ" 'BEGIN {if (n > 0) printf "%.1f", 1e6 * d / hz / n; else print "-"}')
  cpu=$(pct $((p1 - p0)) "$wall_s"); allcpu=$(pct $((c1 - c0)) "$wall_s")
  pass=$(awk -v ok="${ok:-0}" -v sent="${sent:-0}" -v total=$((rate * STEP_SECS)) -v r="${achieved:-0}" -v t="$rate" \
    -v p="${p99:--1}" -v o="$(kv other "$out")" -v to="$(kv timeouts "$out")" -v rc="$rc" \
    'BEGIN {print (rc == 0 && sent == total && ok == sent && o == 0 && to == 0 && r >= 0.95 * t && p >= 0 && p < 10) ? 1 : 0}')
  local line
  line=$(printf '%-8s TLS%s r%d %6d/s pass=%d achieved=%s ok=%s/%s p50=%s p99=%s p999=%s max=%s ms proxy_cpu=%s%% servers_cpu=%s%% us_per_msg=%s %s client_cpu=%s uas_cpu=%s%% others=%s%% machine_busy=%s%% tls=%s cipher=%s wall=%.1fs rc=%d%s' \
    "$name" "$ver" "$round" "$rate" "$pass" "${achieved:--}" "${ok:--}" "$((rate * STEP_SECS))" "$(kv p50 "$out")" "${p99:--}" \
    "$(kv p999 "$out")" "$(kv max "$out")" "$cpu" "$allcpu" "$us" "$(mem_note "$name" "$ver")" "$(kv client_cpu "$out")" \
    "$(pct $((u1 - u0)) "$wall_s")" "$(others_pct "$dir/procs0" "$dir/procs1" "$wall_s")" "$(busy_pct)" "$(kv tls "$out")" \
    "$(kv cipher "$out")" "$wall_s" "$rc" \
    "$( [[ $(kv other "$out") != 0 || $(kv timeouts "$out") != 0 || $(kv error "$out") != - ]] && echo " other=$(kv other "$out") statuses=$(kv statuses "$out") timeouts=$(kv timeouts "$out") error=$(kv error "$out")")")
  log "$line"
  [[ $name = kamailio ]] && { kam_check "after the TLS $ver $rate/s relay step of round $round" || pass=0; }
  STEP[$name,$ver,$round,$rate]="$pass $us $cpu ${p99:--} ${achieved:--}"
  STEP_PASS=$pass
}
over_budget() { (($(date +%s) - t_start > BUDGET_SECS)); }

MAXRATE=${RATES[$((${#RATES[@]} - 1))]}
log "load client alone, straight to the UAS, at the highest rate ($MAXRATE msg/s); servers_cpu/us_per_msg = the UAS"
for ver in "${VERSIONS[@]}"; do
  settle
  run_step direct "$(uas_port "$ver")" "$ver" "$MAXRATE" 0
done
log ""

for ((round = 1; round <= ROUNDS; round++)); do
  for ver in "${VERSIONS[@]}"; do
    for name in impd kamailio; do
      port=$SIP_TLS; [[ $name = kamailio ]] && port=$KAM_PORT
      BEST[$name,$ver,$round]=0
      settle
      for rate in "${RATES[@]}"; do
        if over_budget; then log "$name TLS$ver r$round: time budget (${BUDGET_SECS} s) used up, stopped"; break; fi
        run_step "$name" "$port" "$ver" "$rate" "$round"
        ((STEP_PASS)) || break
        BEST[$name,$ver,$round]=$rate
      done
    done
  done
done

# ---------------------------------------------------------------- handshakes
log ""
log "full TLS handshakes (no resumption), ${HS_SECS} s, ${HS_INFLIGHT} in flight, against each proxy's TLS listener"
declare -A HS  # name,ver,round -> "rate per_core_s cpu%"
hs_step() {  # NAME PORT VERSION ROUND
  local name=$1 port=$2 ver=$3 round=$4
  local -a sp
  read -r -a sp <<<"$(server_pids "$name" "$ver")"
  local t0 t1 c0 c1 out rc=0 wall_s n per cpu
  settle
  busy_mark
  t0=$(now_ns); c0=$(ticks "${sp[@]}")
  out=$(timeout $((HS_SECS + 60)) taskset -c "$LOAD_CPU" "$LOAD" handshake --port "$port" --tls-version "$ver" \
    --duration "$HS_SECS" --inflight "$HS_INFLIGHT" 2>/dev/null) || rc=$?
  t1=$(now_ns); c1=$(ticks "${sp[@]}")
  wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e9}')
  n=$(kv handshakes "$out")
  per=$(awk -v d=$((c1 - c0)) -v n="${n:-0}" -v hz="$HZ" 'BEGIN {if (d > 0) printf "%.0f", n * hz / d; else print "-"}')
  cpu=$(pct $((c1 - c0)) "$wall_s")
  log "$(printf '%-8s TLS%s r%d handshakes=%s rate=%s/s failed=%s versions=%s p50=%s p99=%s ms server_cpu=%s%% per_core_s=%s client_cpu=%s machine_busy=%s%% rc=%d' \
    "$name" "$ver" "$round" "${n:--}" "$(kv rate "$out")" "$(kv failed "$out")" "$(kv versions "$out")" "$(kv p50 "$out")" \
    "$(kv p99 "$out")" "$cpu" "$per" "$(kv client_cpu "$out")" "$(busy_pct)" "$rc")"
  HS[$name,$ver,$round]="$(kv rate "$out") $per $cpu"
  if [[ $name = kamailio ]] && ! kam_check "during the TLS $ver handshake run of round $round"; then
    HS[$name,$ver,$round]="- - -"
  fi
}
for ((round = 1; round <= ROUNDS; round++)); do
  for ver in "${VERSIONS[@]}"; do
    hs_step impd "$SIP_TLS" "$ver" "$round"
    hs_step kamailio "$KAM_PORT" "$ver" "$round"
  done
done

# ---------------------------------------------------------------- summary
stats() {  # values... -> "median (min, max)" ("-" values skipped)
  printf '%s\n' "$@" | { grep -v -e '^-$' -e '^$' || true; } | sort -g |
    awk '{a[NR] = $1} END {if (NR) printf "%s (%s, %s)", a[int((NR + 1) / 2)], a[1], a[NR]; else printf "-"}'
}
med() { stats "$@" | awk '{print $1}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a != "-" && b != "-" && b > 0) printf "%.2f", a / b; else printf "-"}'; }
log ""
log "==================== summary ===================="
log "relay: highest rate with every MESSAGE answered 200, >= 95% of the target and p99 < 10 ms (steps of ${STEP_SECS} s; rates ${RATES[*]})"
for ver in "${VERSIONS[@]}"; do
  declare -A M=()
  for name in impd kamailio; do
    vals=()
    for ((round = 1; round <= ROUNDS; round++)); do vals+=("${BEST[$name,$ver,$round]:-0}"); done
    M[$name]=$(med "${vals[@]}")
    log "  TLS $ver $(printf '%-8s' "$name") rounds: ${vals[*]} -> median $(stats "${vals[@]}") msg/s"
  done
  log "  TLS $ver impd/kamailio (medians): $(ratio "${M[impd]}" "${M[kamailio]}")"
  log "  TLS $ver CPU us per MESSAGE, every server process, median (min, max) over the rounds that ran the step:"
  for rate in "${RATES[@]}"; do
    declare -A U=()
    line=""
    for name in impd kamailio; do
      vals=(); cpus=()
      for ((round = 1; round <= ROUNDS; round++)); do
        s=${STEP[$name,$ver,$round,$rate]:-}
        [[ -n $s ]] || continue
        read -r _ us cpu _ _ <<<"$s"
        vals+=("$us"); cpus+=("$cpu")
      done
      U[$name]=$( ((${#vals[@]})) && med "${vals[@]}" || echo -)
      line+=$(printf '  %s %s us (proxy %s%% of a core)' "$name" "$( ((${#vals[@]})) && stats "${vals[@]}" || echo -)" \
        "$( ((${#cpus[@]})) && med "${cpus[@]}" || echo -)")
    done
    log "    $(printf '%6d' "$rate")/s:$line  impd/kamailio $(ratio "${U[impd]}" "${U[kamailio]}")"
  done
done
log "handshakes per second of the proxy's CPU (handshakes / (utime+stime) over the interval), median (min, max):"
for ver in "${VERSIONS[@]}"; do
  declare -A H=()
  line=""
  for name in impd kamailio; do
    per=(); rate=()
    for ((round = 1; round <= ROUNDS; round++)); do
      read -r r p _ <<<"${HS[$name,$ver,$round]:-- - -}"
      per+=("$p"); rate+=("$r")
    done
    H[$name]=$(med "${per[@]}")
    line+="  $name $(stats "${per[@]}") per core-s (achieved $(stats "${rate[@]}")/s)"
  done
  log "  TLS $ver:$line  impd/kamailio $(ratio "${H[impd]}" "${H[kamailio]}")"
done
log "impd: $(grep -c -E ' (warning|error|critical) ' "$work/impd/log/sip-proxy.log" 2>/dev/null || true) warning/error lines in sip-proxy.log"
grep -E ' (warning|error|critical) ' "$work/impd/log/sip-proxy.log" 2>/dev/null | cut -c1-200 | sort | uniq -c | sort -rn | head -5 | sed 's/^/  /' || true
log "impd proxy stats:"
ctl proxy stats | sed 's/^/  /' || true
log "kamailio: started $KAM_STARTS time(s); exits: ${KAM_CRASHES[*]:-none}; $(cat "$work"/kam/kamailio.log.* | grep -c -E 'ERROR|CRITICAL|BUG|Assertion' || true) ERROR/CRITICAL/BUG/Assertion lines in its logs"
cat "$work"/kam/kamailio.log.* | grep -E 'ERROR|CRITICAL|BUG|Assertion' | sed 's/^ *[0-9]*([0-9]*) //; s/0x[0-9a-f]*/0x../g' | cut -c1-200 | sort | uniq -c | sort -rn | head -5 | sed 's/^/  /' || true
log "total time: $(($(date +%s) - t_start)) s"
