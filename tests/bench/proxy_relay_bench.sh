#!/usr/bin/env bash
# B-PROXY-RELAY and B-FAILOVER (docs/BENCHMARKS.md). Not a test: run by hand.
#
#   tests/bench/proxy_relay_bench.sh [BUILD_DIR=build/bench]
#
# BUILD_DIR is a Release tree built with
#   scripts/build.sh build/bench -DCMAKE_BUILD_TYPE=Release -DIMP_BENCH=ON -DIMP_TESTS=OFF
# This script builds nothing. Everything runs on loopback, in a private
# temporary directory, and everything it starts is stopped on exit.
#
# B-PROXY-RELAY: stateful MESSAGE relay and INVITE dialogs over TCP, SIPp
# UAC -> proxy -> SIPp UAS, for (a) impd's sip-proxy (its managed MariaDB
# included) and (b) Kamailio 5.6 with tests/bench/kamailio/relay.cfg (tlsf
# memory managers), in the same run. FLOW picks what a "call" is: message
# (tests/peers/sipp/uac_message.xml: MESSAGE -> 200, to example.com) or
# invite (uac_invite.xml / uas_invite.xml: INVITE -> 100 -> 200 -> ACK ->
# BYE -> 200 through the proxy's Record-Route, to example.net, answered by
# a second SIPp UAS); both proxies add Record-Route to INVITE, neither to
# MESSAGE. Each step reports the proxy's CPU per call (us_per_call: utime +
# stime of every impd thread, or of every Kamailio process, over the step,
# divided by the calls SIPp completed; impd's MariaDB separately) and the
# context switches of those threads or processes per call (ctxsw_per_call);
# before the first step, each proxy's CPU with no load at all (idle).
#
# Ramp mode (default): each round ramps each proxy (impd, Kamailio, impd,
# Kamailio, ...) through fixed rates, STEP_SECS seconds per step, and stops
# at the first step that fails; a step passes when every call got its 200,
# the achieved call rate is at least 95% of the target and the p99 response
# time as SIPp reads it is under 10 ms. Round 1 starts at the lowest rate,
# later rounds one step below the round-1 result. After each round SIPp runs
# UAC -> UAS directly at the highest rate used in that round, to show
# whether the load generator itself keeps up. The proxies are pinned to CPU
# PROXY_CPU and both SIPp instances to CPU LOAD_CPU.
#
# B-FAILOVER, afterwards, against the same impd (hop_timeout_ms =
# HOP_TIMEOUT_MS): for each case a route pair (priority 1 = the broken next
# hop, priority 2 = the SIPp UAS) for a domain of its own, and one MESSAGE
# timed by a small client (the first request that meets the broken hop),
# then a second request to the same domain (the hop is marked down by then
# and skipped).
#
# CPU mode (CPU_RATES set, e.g. CPU_RATES="8000 16000", and CPU_RATES_INVITE
# for the INVITE flow, dialogs/s, default CPU_RATES): no ramp; each round
# runs, for each flow and each rate, one step of impd then one of Kamailio
# (A, B, A, B, ...), each after the proxies have settled, and the summary
# gives the median (min..max) of CPU per call over the rounds and the
# impd/Kamailio ratio: the fair figure when the load generator, not the
# proxy, caps the rate. Pick rates both proxies sustain; a step counts when
# every call completed (the p99 criterion is reported, not required). B-FAILOVER runs only
# when FAILOVER=1 (default 0 in CPU mode, 1 otherwise).
#
# Knobs (environment): FLOW (message; or invite, or "message invite" for
# both), CPU_RATES (unset: ramp mode), FAILOVER, PROXIES ("impd kamailio";
# e.g. "impd" alone while profiling it), STEP_SECS (10), ROUNDS (3),
# RATES (list, calls/s),
# PROXY_CPU (1), LOAD_CPU (0), HOP_TIMEOUT_MS (1000), KAM_SHM_MB (4096),
# BUDGET_SECS (900: no new relay step starts after this), KEEP_WORK (0),
# PATH_KIND (static: example.com is an ordinary remote domain; federation:
# example.com is a local presence domain with partitioned federation in
# basic mode, so impd's routing decision consults the directory; Kamailio's
# configuration is the same either way).
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/bench}
[[ $build = /* ]] || build=$(pwd)/$build
IMPD=$build/apps/impd/impd
IMPCTL=$build/apps/impctl/impctl
UAC_XML=$here/tests/peers/sipp/uac_message.xml
UAS_XML=$here/tests/peers/sipp/uas_message.xml
UAC_INV_XML=$here/tests/peers/sipp/uac_invite.xml
UAS_INV_XML=$here/tests/peers/sipp/uas_invite.xml
KAM_CFG=$here/tests/bench/kamailio/relay.cfg
SQL_DIR=$here/sql

STEP_SECS=${STEP_SECS:-10}
ROUNDS=${ROUNDS:-3}
read -r -a RATES <<<"${RATES:-2000 4000 8000 12000 16000 20000 24000 28000 32000 36000 40000 44000 48000 56000 64000}"
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
HOP_TIMEOUT_MS=${HOP_TIMEOUT_MS:-1000}
KAM_SHM_MB=${KAM_SHM_MB:-4096}
BUDGET_SECS=${BUDGET_SECS:-900}
KEEP_WORK=${KEEP_WORK:-0}
PATH_KIND=${PATH_KIND:-static}
[[ $PATH_KIND = static || $PATH_KIND = federation ]] || { echo "PATH_KIND is static or federation" >&2; exit 2; }
read -r -a FLOWS <<<"${FLOW:-message}"
for f in "${FLOWS[@]}"; do [[ $f = message || $f = invite ]] || { echo "FLOW is message, invite or \"message invite\"" >&2; exit 2; }; done
read -r -a CPU_RATE_LIST <<<"${CPU_RATES:-}"
read -r -a CPU_RATE_LIST_INV <<<"${CPU_RATES_INVITE:-${CPU_RATES:-}}"
CPU_MODE=0; ((${#CPU_RATE_LIST[@]})) && CPU_MODE=1
FAILOVER=${FAILOVER:-$((1 - CPU_MODE))}
read -r -a PROXIES <<<"${PROXIES:-impd kamailio}"
HZ=$(getconf CLK_TCK)

for tool in sipp kamailio taskset python3 ss; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
for f in "$IMPD" "$IMPCTL"; do [[ -x $f ]] || { echo "not built: $f (see the header of $0)" >&2; exit 2; }; done
(($(nproc) >= 2)) || { echo "needs 2 CPUs (proxy and load generator pinned apart)" >&2; exit 2; }

work=$(mktemp -d /tmp/imp-bench-XXXXXX)  # short: MariaDB's unix socket lives under it
pids=()
# shellcheck source=bench_lib.sh
source "$here/tests/bench/bench_lib.sh"
our_pids() { echo "$$ ${IMPD_PID:-} ${MARIADB_PID:-} ${UAS_PID:-} ${UAS2_PID:-} ${UAS_INV_PID:-} ${SILENT_PID:-} ${KAM_PIDS[*]:-}"; }

# ---------------------------------------------------------------- helpers
cat >"$work/analyze.py" <<'EOF'
# analyze.py STEPDIR TARGET_RATE CALLS [RTDS]: one line of key=value for a SIPp
# UAC run; RTDS = response times SIPp records per call (1 MESSAGE, 2 INVITE+BYE)
import glob, math, sys
d, target, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rtds = int(sys.argv[4]) if len(sys.argv) > 4 else 1
vals = []
for f in glob.glob(d + "/*_rtt.csv"):
    for line in open(f).read().splitlines()[1:]:
        p = line.split(";")
        if len(p) >= 2 and p[1].strip():
            vals.append(float(p[1]))
vals.sort()
def pct(q):
    return vals[max(0, math.ceil(q * len(vals)) - 1)] if vals else float("nan")
st = {}
try:
    lines = [l for l in open(d + "/stat.csv").read().splitlines() if l.strip()]
    st = dict(zip(lines[0].split(";"), lines[-1].split(";")))
except (OSError, IndexError):
    pass
ok = int(st.get("SuccessfulCall(C)", 0) or 0)
failed = int(st.get("FailedCall(C)", 0) or 0)
rate = float(st.get("CallRate(C)", 0) or 0)
reasons = ",".join("%s=%s" % (k[6:-3], v) for k, v in st.items()
                   if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)" and v not in ("", "0"))
p99 = pct(0.99)
passed = ok == calls and failed == 0 and rate >= 0.95 * target and len(vals) == rtds * calls and p99 < 10
complete = ok == calls and failed == 0
print("ok=%d failed=%d rate=%.0f n=%d p50=%g p99=%g p999=%g max=%g pass=%d complete=%d reasons=%s" % (
    ok, failed, rate, len(vals), pct(0.5), p99, pct(0.999), vals[-1] if vals else float("nan"), passed,
    complete, reasons or "-"))
EOF

cat >"$work/sipclient.py" <<'EOF'
# sipclient.py PORT DOMAIN TIMEOUT_S: one MESSAGE over TCP to 127.0.0.1:PORT,
# prints "<status> <ms from send to final response> <To tag>"
import socket, sys, time, uuid
port, domain, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
lp = s.getsockname()[1]
cid = uuid.uuid4().hex
body = b"failover probe"
msg = ("MESSAGE sip:bob@%s SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:%d;branch=z9hG4bK%s\r\n"
       "From: <sip:ann@%s>;tag=%s\r\nTo: <sip:bob@%s>\r\nCall-ID: %s\r\nCSeq: 1 MESSAGE\r\n"
       "Max-Forwards: 70\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" %
       (domain, lp, cid[:16], domain, cid[16:24], domain, cid, len(body))).encode() + body
buf = b""
t0 = time.perf_counter()
s.sendall(msg)
while True:
    s.settimeout(max(0.01, t0 + timeout - time.perf_counter()))
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        print("timeout %.1f -" % ((time.perf_counter() - t0) * 1000)); sys.exit(1)
    if not chunk:
        print("closed %.1f -" % ((time.perf_counter() - t0) * 1000)); sys.exit(1)
    buf += chunk
    while b"\r\n\r\n" in buf:
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        hdr = {}
        for l in lines[1:]:
            if ":" in l:
                k, v = l.split(":", 1); hdr.setdefault(k.strip().lower(), v.strip())
        n = int(hdr.get("content-length", hdr.get("l", "0")))
        if len(rest) < n:
            break
        buf = rest[n:]
        status = int(lines[0].split()[1])
        if status >= 200:
            ms = (time.perf_counter() - t0) * 1000
            to = hdr.get("to", hdr.get("t", ""))
            tag = to.split("tag=")[1].split(";")[0] if "tag=" in to else "-"
            print("%d %.1f %s" % (status, ms, tag)); sys.exit(0)
EOF

cat >"$work/silent.py" <<'EOF'
# silent.py N: N TCP listeners on 127.0.0.1 that accept, read and never answer.
# Prints the ports; exits by itself after 15 minutes at the latest.
import select, socket, sys, time
ls = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64); ls.append(s)
print(" ".join(str(s.getsockname()[1]) for s in ls), flush=True)
conns, end = [], time.monotonic() + 900
while time.monotonic() < end:
    r, _, _ = select.select(ls + conns, [], [], 1.0)
    for s in r:
        if s in ls:
            c, _ = s.accept(); conns.append(c)
        elif not s.recv(65536):
            conns.remove(s); s.close()
EOF

# ---------------------------------------------------------------- processes
read -r SIP_TCP SIP_TLS SIP_MTLS KAM_PORT UAS_PORT UAS2_PORT UAS_INV_PORT REFUSED1 REFUSED2 REFUSED3 <<<"$(free_ports 10)"

start_uas() {  # PORT DIR [SCENARIO] -> prints PID
  mkdir -p "$2"
  (cd "$2" && exec taskset -c "$LOAD_CPU" sipp -sf "${3:-$UAS_XML}" -t t1 -i 127.0.0.1 -p "$1" -nostdin \
     -deadcall_wait 1000 -timeout 3600s >uas.out 2>&1) &
  echo $!
}
UAS_PID=$(start_uas "$UAS_PORT" "$work/uas")
pids+=("$UAS_PID")
wait_listen "$UAS_PORT" "$UAS_PID" "SIPp UAS"
# The INVITE dialogs' callee (example.net), for both proxies.
UAS_INV_PID=$(start_uas "$UAS_INV_PORT" "$work/uas-invite" "$UAS_INV_XML")
pids+=("$UAS_INV_PID")
wait_listen "$UAS_INV_PORT" "$UAS_INV_PID" "SIPp INVITE UAS"

python3 "$work/silent.py" 3 >"$work/silent.ports" &
SILENT_PID=$!
pids+=("$SILENT_PID")
for _ in $(seq 200); do [[ -s $work/silent.ports ]] && break; sleep 0.05; done
read -r SILENT1 SILENT2 SILENT3 <"$work/silent.ports"

mkdir -p "$work/impd"
cat >"$work/impd/impd.conf" <<EOF
[node]
id = bench1
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
[sip-proxy]
listen_address = 127.0.0.1
advertised_host = 127.0.0.1
tcp_port = $SIP_TCP
tls_server_auth_port = $SIP_TLS
tls_peer_auth_port = $SIP_MTLS
flood_max_requests = 0
hop_timeout_ms = $HOP_TIMEOUT_MS
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

# SIPp UAS #2: the primary of the "stopped next hop" failover case.
UAS2_PID=$(start_uas "$UAS2_PORT" "$work/uas2")
pids+=("$UAS2_PID")
wait_listen "$UAS2_PORT" "$UAS2_PID" "SIPp UAS 2"

ctl acl add 127.0.0.1 --description bench >/dev/null
route() { ctl route add "$1" --route-type domain --next-hop 127.0.0.1 --port "$2" --transport TCP --priority "$3" >/dev/null; }
i=0
for p in "$REFUSED1" "$REFUSED2" "$REFUSED3"; do
  i=$((i + 1)); route ".com.refused$i.*" "$p" 1; route ".com.refused$i.*" "$UAS_PORT" 2
done
i=0
for p in "$SILENT1" "$SILENT2" "$SILENT3"; do
  i=$((i + 1)); route ".com.silent$i.*" "$p" 1; route ".com.silent$i.*" "$UAS_PORT" 2
done
route ".com.stopped.*" "$UAS2_PORT" 1
route ".com.stopped.*" "$UAS_PORT" 2
route ".net.example.*" "$UAS_INV_PORT" 1  # the INVITE flow's callee
if [[ $PATH_KIND = federation ]]; then
  # example.com is a local presence domain and bob is not an IMP user: each
  # MESSAGE is a partitioned-federation request to the "Microsoft server"
  # (the UAS) through the static route (FED-6 basic mode), so the routing
  # decision asks the directory (or its recipient cache) first.
  ctl domain add example.com >/dev/null
  ctl federation enable --routing-mode basic >/dev/null
fi
route ".com.example.*" "$UAS_PORT" 1  # last: once it works, every route above is applied too

mkdir -p "$work/kam"
taskset -c "$PROXY_CPU" kamailio -f "$KAM_CFG" -DD -E -m "$KAM_SHM_MB" -M 16 -x tlsf -X tlsf -Y "$work/kam" -A WITH_CTL \
  -A "UAS_PORT=$UAS_PORT" -A "UAS_INVITE_PORT=$UAS_INV_PORT" -A "LISTEN_PORT=$KAM_PORT" >"$work/kam/kamailio.log" 2>&1 &
KAM_PID=$!
pids+=("$KAM_PID")
wait_listen "$KAM_PORT" "$KAM_PID" "kamailio"

one_message() {  # PORT DOMAIN: one MESSAGE through SIPp, success = 200
  (cd "$work" && taskset -c "$LOAD_CPU" sipp "127.0.0.1:$1" -sf "$UAC_XML" -s bob -set domain "$2" -t t1 \
     -i 127.0.0.1 -p 0 -m 1 -nostdin -recv_timeout 2000 -timeout 5s -timeout_error >/dev/null 2>&1)
}
wait_relay() {  # PORT WHAT: poll with single MESSAGEs until one gets its 200
  local deadline=$((SECONDS + 60))
  until one_message "$1" example.com; do
    ((SECONDS < deadline)) || { echo "$2 does not relay MESSAGE to the UAS after 60 s" >&2; exit 1; }
    sleep 0.2
  done
}
wait_relay "$SIP_TCP" "impd"
wait_relay "$KAM_PORT" "kamailio"
one_dialog() {  # PORT: one INVITE dialog through SIPp, success = every step of it
  (cd "$work" && taskset -c "$LOAD_CPU" sipp "127.0.0.1:$1" -sf "$UAC_INV_XML" -s bob -set domain example.net -t t1 \
     -i 127.0.0.1 -p 0 -m 1 -nostdin -recv_timeout 2000 -timeout 5s -timeout_error >/dev/null 2>&1)
}
for f in "${FLOWS[@]}"; do
  [[ $f = invite ]] || continue
  one_dialog "$SIP_TCP" || { echo "impd does not relay an INVITE dialog to the UAS" >&2; exit 1; }
  one_dialog "$KAM_PORT" || { echo "kamailio does not relay an INVITE dialog to the UAS" >&2; exit 1; }
done
KAM_PIDS=("$KAM_PID" $(pgrep -P "$KAM_PID" || true))

# How busy the machine is with everything started and idle: CPU used by
# processes this script did not start (a shared machine); every step line
# carries the same figure for its own duration ("others", % of one core).
proc_snapshot "$work/procs0"
sleep 3  # a measuring window, not a synchronisation
proc_snapshot "$work/procs1"
IDLE_NOTE="other processes used $(others_pct "$work/procs0" "$work/procs1" 3)% of one core in the 3 s before the first step"
log "B-PROXY-RELAY / B-FAILOVER bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
log "impd: $IMPD ($("$IMPD" --version 2>/dev/null | head -1), built $(date -u -r "$IMPD" '+%Y-%m-%d %H:%M UTC')), pid $IMPD_PID, MariaDB $(mariadbd --version 2>/dev/null | awk '{print $3}') pid ${MARIADB_PID:-?}, CPU $PROXY_CPU"
log "kamailio: $(kamailio -v | head -1 | cut -d' ' -f2-), $((${#KAM_PIDS[@]})) processes, -m $KAM_SHM_MB -M 16 -x tlsf -X tlsf, CPU $PROXY_CPU"
log "machine: $IDLE_NOTE"
# What each proxy costs with no load at all (its timers, its other threads or
# processes): spread over the calls, it weighs most at the lowest rates.
i0=$(ticks "$IMPD_PID"); k0=$(ticks "${KAM_PIDS[@]}"); d0=$(ticks "${MARIADB_PID:-}")
sleep 5  # a measuring window, not a synchronisation
i1=$(ticks "$IMPD_PID"); k1=$(ticks "${KAM_PIDS[@]}"); d1=$(ticks "${MARIADB_PID:-}")
idle_pct() { awk -v d="$1" -v hz="$HZ" 'BEGIN {printf "%.1f", 100 * d / hz / 5}'; }
log "idle (5 s, no load): impd $(idle_pct $((i1 - i0)))% of a core, its MariaDB $(idle_pct $((d1 - d0)))%, kamailio $(idle_pct $((k1 - k0)))%"
log "impd path: $PATH_KIND"
log "SIPp: $(sipp -v 2>&1 | grep -o 'SIPp v[^ ,]*' | head -1), UAC and UAS on CPU $LOAD_CPU, TCP (-t t1), ${STEP_SECS} s per step"
log "flows: ${FLOWS[*]}; mode: $( ((CPU_MODE)) && echo "CPU per call at fixed rates: MESSAGE ${CPU_RATE_LIST[*]}/s, INVITE ${CPU_RATE_LIST_INV[*]}/s" || echo "ramp ${RATES[*]}")"
log ""

# ---------------------------------------------------------------- relay
declare -A BEST  # flow,name,round -> rate
declare -A TOP   # flow,name,round -> step line of the top passing step
declare -A USPC  # flow,name,rate -> "us us us" (CPU per call of each round's step)
declare -A USPC_DB  # flow,rate -> impd's MariaDB, likewise
run_step() {  # NAME PORT RATE ROUND SETTLE(0|1) [FLOW] -> sets STEP_PASS, STEP_US, STEP_US_DB, prints one line
  local name=$1 port=$2 rate=$3 round=$4 calls=$(($3 * STEP_SECS)) flow=${6:-message}
  local dir=$work/steps/$flow-$name-r$round-$rate
  local uac_xml=$UAC_XML domain=example.com rtds=1 uas_pid=$UAS_PID
  [[ $flow = invite ]] && { uac_xml=$UAC_INV_XML; domain=example.net; rtds=2; uas_pid=$UAS_INV_PID; }
  [[ $name = direct && $flow = invite ]] && port=$UAS_INV_PORT
  mkdir -p "$dir"
  local -a cpu_pids=()
  case $name in
    impd) cpu_pids=("$IMPD_PID") ;;
    kamailio) cpu_pids=("${KAM_PIDS[@]}") ;;
  esac
  local log_lines0=0
  [[ $name = impd ]] && log_lines0=$(wc -l <"$work/impd/log/sip-proxy.log")
  local t0 c0 m0 t1 c1 m1 x0 x1 rc=0
  SETTLED=0
  (($5)) && settle
  proc_snapshot "$dir/procs0"
  t0=$(now_ns); c0=$(ticks "${cpu_pids[@]:-}"); m0=$(ticks "${MARIADB_PID:-}"); x0=$(ctxsw "${cpu_pids[@]:-}")
  (cd "$dir" && timeout $((STEP_SECS * 3 + 60)) taskset -c "$LOAD_CPU" sipp "127.0.0.1:$port" -sf "$uac_xml" \
     -s bob -set domain "$domain" -t t1 -i 127.0.0.1 -p 0 -r "$rate" -rp 1000 -m "$calls" -l $((rate * 10)) \
     -nostdin -timer_resol 1 -deadcall_wait 1000 -recv_timeout 5000 -timeout $((STEP_SECS * 3 + 30))s \
     -trace_rtt -rtt_freq "$rate" -trace_stat -stf stat.csv -fd "$STEP_SECS" \
     -trace_err -error_file errors.log >sipp.out 2>&1) || rc=$?
  t1=$(now_ns); c1=$(ticks "${cpu_pids[@]:-}"); m1=$(ticks "${MARIADB_PID:-}"); x1=$(ctxsw "${cpu_pids[@]:-}")
  proc_snapshot "$dir/procs1"
  local wall_s cpu res rss extra=""
  wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e9}')
  cpu=$(awk -v d=$((c1 - c0)) -v w="$wall_s" -v hz="$HZ" 'BEGIN {printf "%.0f", 100 * d / hz / w}')
  res=$(python3 "$work/analyze.py" "$dir" "$rate" "$calls" "$rtds")
  local okc us="-" cs="-"
  okc=$(sed -n 's/^ok=\([0-9]*\) .*/\1/p' <<<"$res")
  ((${okc:-0} > 0)) && us=$(awk -v d=$((c1 - c0)) -v n="$okc" -v hz="$HZ" 'BEGIN {printf "%.1f", 1e6 * d / hz / n}')
  ((${okc:-0} > 0)) && cs=$(awk -v d=$((x1 - x0)) -v n="$okc" 'BEGIN {printf "%.2f", d / n}')
  STEP_US=$us; STEP_US_DB="-"
  if [[ $name = impd ]]; then
    local mcpu
    mcpu=$(awk -v d=$((m1 - m0)) -v w="$wall_s" -v hz="$HZ" 'BEGIN {printf "%.0f", 100 * d / hz / w}')
    ((${okc:-0} > 0)) && STEP_US_DB=$(awk -v d=$((m1 - m0)) -v n="$okc" -v hz="$HZ" 'BEGIN {printf "%.1f", 1e6 * d / hz / n}')
    rss="rss=$(($(status_kb VmRSS "$IMPD_PID") / 1024))MB hwm=$(($(status_kb VmHWM "$IMPD_PID") / 1024))MB"
    rss+=" mariadb_cpu=${mcpu}% mariadb_us_per_call=$STEP_US_DB mariadb_rss=$(($(status_kb VmRSS "${MARIADB_PID:-}") / 1024))MB"
    local new
    new=$(tail -n +$((log_lines0 + 1)) "$work/impd/log/sip-proxy.log" | grep -c -E ' (warning|error|critical) ' || true)
    [[ $new = 0 ]] || extra=" impd_log_warnings=$new"
  elif [[ $name = kamailio ]]; then
    rss="rss_sum=$(($(status_kb VmRSS "${KAM_PIDS[@]}") / 1024))MB pss_sum=$(($(pss_kb "${KAM_PIDS[@]}") / 1024))MB"
  else
    rss="-"
  fi
  local line
  line=$(printf '%-7s %-8s r%d %6d/s cpu=%s%% us_per_call=%s ctxsw_per_call=%s %s %s wall=%.1fs rc=%d settle=%ds uac_cpu=%s%% uas_cpu=%s%% others=%s%%%s' "$flow" "$name" "$round" "$rate" \
    "$cpu" "$us" "$cs" "$rss" "$res" "$wall_s" "$rc" "$SETTLED" "$(pid_pct "$dir/procs0" "$dir/procs1" "$wall_s" $$)" "$(pid_pct "$dir/procs0" "$dir/procs1" "$wall_s" "$uas_pid")" \
    "$(others_pct "$dir/procs0" "$dir/procs1" "$wall_s")" "$extra")
  log "$line"
  STEP_LINE=$line
  [[ $res == *" pass=1 "* ]] && STEP_PASS=1 || STEP_PASS=0
  [[ $res == *" complete=1 "* ]] && STEP_COMPLETE=1 || STEP_COMPLETE=0
}

kam_current() {  # transactions Kamailio holds now (tm.stats "current"), -1 if unknown
  kamcmd -s "unix:$work/kam/kamailio_ctl" tm.stats 2>/dev/null | awk '$1 == "current:" {print $2; f = 1} END {if (!f) print -1}'
}
settle() {  # until Kamailio holds no transaction and the proxies, MariaDB and
  # the UAS use < 5% of one core over 1 s (at most 90 s). Kamailio keeps each
  # transaction 5 s after its final response (tm wait timer) and frees them
  # afterwards, on the core the next step's proxy runs on.
  local -a p=("$IMPD_PID" "${MARIADB_PID:-}" "${KAM_PIDS[@]}" "$UAS_PID" "$UAS_INV_PID")
  local start=$SECONDS a b
  while :; do
    a=$(ticks "${p[@]}")
    sleep 1  # a measuring window
    b=$(ticks "${p[@]}")
    ((100 * (b - a) / HZ < 5)) && (($(kam_current) <= 0)) && break
    ((SECONDS - start < 90)) || { log "  (proxies still busy: $((100 * (b - a) / HZ))% of a core after 90 s)"; break; }
  done
  SETTLED=$((SECONDS - start))
}

idx_of() { local i; for i in "${!RATES[@]}"; do [[ ${RATES[i]} = "$1" ]] && { echo "$i"; return; }; done; echo 0; }
over_budget() { (($(date +%s) - t_start > BUDGET_SECS)); }
MAXRATE_USED=0
ramp() {  # NAME PORT ROUND START_INDEX FLOW -> BEST[flow,name,round] (0 = none passed)
  # Up from START_INDEX until a step fails; when the very first step fails,
  # down from there until one passes.
  # Settles before the first step and after a failed one (the next step must
  # not pay for the backlog of the failed one); consecutive passing steps
  # follow each other directly, as a steadily rising load would.
  local name=$1 port=$2 round=$3 i=$4 flow=$5 best=0 topline="" dir=up need_settle=1
  while ((i >= 0 && i < ${#RATES[@]})); do
    if over_budget; then log "$name r$round: time budget (${BUDGET_SECS} s) used up, ramp stopped"; break; fi
    run_step "$name" "$port" "${RATES[i]}" "$round" "$need_settle" "$flow"
    need_settle=$((STEP_PASS ? 0 : 1))
    ((RATES[i] > MAXRATE_USED)) && MAXRATE_USED=${RATES[i]}
    if ((STEP_PASS)); then
      best=${RATES[i]}; topline=$STEP_LINE
      [[ $dir = down ]] && break
      i=$((i + 1))
    elif [[ $dir = up && $best = 0 && $i -gt 0 ]]; then
      dir=down; i=$((i - 1))
    elif [[ $dir = down ]]; then
      i=$((i - 1))
    else
      break
    fi
  done
  BEST[$flow,$name,$round]=$best
  TOP[$flow,$name,$round]=$topline
}

DIRECT=()
if ((CPU_MODE)); then
  # Fixed rates, A/B alternated, each step after the proxies settled.
  for ((round = 1; round <= ROUNDS; round++)); do
    for flow in "${FLOWS[@]}"; do
      rates=("${CPU_RATE_LIST[@]}"); [[ $flow = invite ]] && rates=("${CPU_RATE_LIST_INV[@]}")
      for rate in "${rates[@]}"; do
        for name in "${PROXIES[@]}"; do
          if over_budget; then log "time budget (${BUDGET_SECS} s) used up"; break 4; fi
          port=$SIP_TCP; [[ $name = kamailio ]] && port=$KAM_PORT
          run_step "$name" "$port" "$rate" "$round" 1 "$flow"
          # CPU per call counts every step in which all calls completed; p99
          # (pass=) is reported but not required: on a shared machine other
          # work delays the proxy without changing what a call costs it.
          if ((STEP_COMPLETE)); then
            USPC[$flow,$name,$rate]+="$STEP_US "
            [[ $name = impd ]] && USPC_DB[$flow,$rate]+="$STEP_US_DB "
            ((STEP_PASS)) || log "  (p99 criterion missed; the step counts for CPU per call, every call completed)"
          else
            log "  (calls failed: not counted in the CPU figures)"
          fi
        done
      done
      if ((round == 1)) && ! over_budget; then
        top=${rates[-1]}
        run_step direct "$UAS_PORT" "$top" "$round" 1 "$flow"
        DIRECT+=("$flow $top/s: $( ((STEP_PASS)) && echo pass || echo FAIL) ($(grep -o 'p99=[^ ]*' <<<"$STEP_LINE"))")
      fi
    done
  done
else
  for ((round = 1; round <= ROUNDS; round++)); do
    for flow in "${FLOWS[@]}"; do
      MAXRATE_USED=0
      for name in "${PROXIES[@]}"; do
        port=$SIP_TCP; [[ $name = kamailio ]] && port=$KAM_PORT
        start=0
        if ((round > 1)); then start=$(idx_of "${BEST[$flow,$name,1]}"); ((start > 0)) && start=$((start - 1)); fi
        ramp "$name" "$port" "$round" "$start" "$flow"
      done
      if ((MAXRATE_USED > 0)) && ! over_budget; then
        run_step direct "$UAS_PORT" "$MAXRATE_USED" "$round" 1 "$flow"
        DIRECT+=("$flow $MAXRATE_USED/s: $( ((STEP_PASS)) && echo pass || echo FAIL) ($(grep -o 'p99=[^ ]*' <<<"$STEP_LINE"))")
      fi
    done
  done
fi

declare -A FO
fo_fail=0
if ((FAILOVER)); then
# ---------------------------------------------------------------- failover
log ""
log "B-FAILOVER: impd hop_timeout_ms = $HOP_TIMEOUT_MS, connect_timeout_ms default; time from sending the MESSAGE to its final response (client on loopback)"
probe() {  # LABEL DOMAIN EXPECT_PID: one timed MESSAGE
  local out status ms tag via
  out=$(python3 "$work/sipclient.py" "$SIP_TCP" "$2" 15 || true)
  read -r status ms tag <<<"$out"
  via="?"
  [[ $tag == "$UAS_PID"SIPpTag01* ]] && via="backup UAS"
  [[ $tag == "$UAS2_PID"SIPpTag01* ]] && via="primary UAS"
  printf '%-34s status=%s time_ms=%s answered_by=%s\n' "$1" "$status" "$ms" "$via"
  FO_MS=$ms
  [[ $status = 200 && $via = "$3" ]] && FO_OK=1 || FO_OK=0
}
for i in 1 2 3; do
  probe "baseline example.com (no failover)" example.com "backup UAS"; FO[base]+="$FO_MS "; ((FO_OK)) || fo_fail=1
done
for i in 1 2 3; do
  probe "refused$i.com first request" "refused$i.com" "backup UAS"; FO[refused]+="$FO_MS "; ((FO_OK)) || fo_fail=1
done
probe "refused1.com second request" refused1.com "backup UAS"; FO[refused2]=$FO_MS
for i in 1 2 3; do
  probe "silent$i.com first request" "silent$i.com" "backup UAS"; FO[silent]+="$FO_MS "; ((FO_OK)) || fo_fail=1
done
probe "silent1.com second request" silent1.com "backup UAS"; FO[silent2]=$FO_MS
probe "stopped.com while primary is up" stopped.com "primary UAS"; ((FO_OK)) || fo_fail=1
kill -TERM "$UAS2_PID"; wait "$UAS2_PID" 2>/dev/null || true
probe "stopped.com first after stop" stopped.com "backup UAS"; FO[stopped]=$FO_MS; ((FO_OK)) || fo_fail=1
probe "stopped.com second after stop" stopped.com "backup UAS"; FO[stopped2]=$FO_MS
log "impd sip-proxy.log during failover:"
grep -E 'marked down|failed \(' "$work/impd/log/sip-proxy.log" | sed 's/^/  /' | cut -c1-220 || true
fi

# ---------------------------------------------------------------- summary
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print "-"}'; }
minmax() { tr ' ' '\n' | grep . | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo ".." hi}'; }
log ""
log "==================== summary ===================="
if ((CPU_MODE)); then
  log "B-PROXY-RELAY CPU per call (us of CPU per completed MESSAGE transaction or INVITE dialog; steps in which every call completed; ${STEP_SECS} s steps, $ROUNDS rounds)"
  for flow in "${FLOWS[@]}"; do
    rates=("${CPU_RATE_LIST[@]}"); [[ $flow = invite ]] && rates=("${CPU_RATE_LIST_INV[@]}")
    for rate in "${rates[@]}"; do
      a=$(median <<<"${USPC[$flow,impd,$rate]:-}"); b=$(median <<<"${USPC[$flow,kamailio,$rate]:-}")
      printf '  %-7s %6d/s impd %s us (%s; rounds %s) + MariaDB %s us; kamailio %s us (%s; rounds %s); impd/kamailio %s\n' \
        "$flow" "$rate" "$a" "$(minmax <<<"${USPC[$flow,impd,$rate]:-}")" "${USPC[$flow,impd,$rate]:-}" \
        "$(median <<<"${USPC_DB[$flow,$rate]:-}")" "$b" "$(minmax <<<"${USPC[$flow,kamailio,$rate]:-}")" \
        "${USPC[$flow,kamailio,$rate]:-}" "$(awk -v a="$a" -v b="$b" 'BEGIN {if (b + 0 > 0 && a != "-") printf "%.2f", a / b; else print "-"}')"
    done
  done
else
log "B-PROXY-RELAY: highest rate with every call answered 200 and SIPp p99 < 10 ms (steps of ${STEP_SECS} s; rates ${RATES[*]})"
declare -A MED
for flow in "${FLOWS[@]}"; do
for name in impd kamailio; do
  all=""
  for ((round = 1; round <= ROUNDS; round++)); do all+="${BEST[$flow,$name,$round]:-0} "; done
  MED[$name]=$(median <<<"$all")
  printf '  %-7s %-8s rounds: %s-> median %s calls/s (min..max %s)\n' "$flow" "$name" "$all" "${MED[$name]}" "$(minmax <<<"$all")"
  for ((round = 1; round <= ROUNDS; round++)); do
    [[ -n ${TOP[$flow,$name,$round]:-} ]] && printf '      top step: %s\n' "${TOP[$flow,$name,$round]}"
  done
done
awk -v f="$flow" -v a="${MED[impd]}" -v b="${MED[kamailio]}" 'BEGIN {if (b > 0) printf "  %s impd/kamailio (medians): %.2f\n", f, a / b}'
done
fi
for d in "${DIRECT[@]}"; do log "  SIPp UAC -> UAS direct at $d"; done
if ((FAILOVER)); then
log "B-FAILOVER (hop_timeout_ms = $HOP_TIMEOUT_MS): ms from send to 200 via the backup"
log "  no failover (baseline):          ${FO[base]}-> median $(median <<<"${FO[base]}")"
log "  refused, first request:          ${FO[refused]}-> median $(median <<<"${FO[refused]}") (second request ${FO[refused2]})"
log "  silent, first request:           ${FO[silent]}-> median $(median <<<"${FO[silent]}") (second request ${FO[silent2]})"
log "  primary stopped, first request:  ${FO[stopped]} (second request ${FO[stopped2]})"
((fo_fail)) && log "  WARNING: some failover request did not end with 200 from the expected UAS (see above)"
fi
log "impd: $(grep -c -E ' (warning|error|critical) ' "$work/impd/log/sip-proxy.log" || true) warning/error lines in sip-proxy.log; proxy stats:"
ctl proxy stats | sed 's/^/  /'
log "kamailio: $(grep -c -E 'ERROR|CRITICAL' "$work/kam/kamailio.log" || true) ERROR/CRITICAL lines in its log"
log "total time: $(($(date +%s) - t_start)) s"
