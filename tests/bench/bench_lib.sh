# Shell helpers shared by the benchmark scripts (sourced, not run). The
# caller sets `work` (its private directory), `pids` (what it started, in
# order), KEEP_WORK, HZ, and defines our_pids (the PIDs it started, for
# others_pct); MARIADB_PID when impd's MariaDB runs.
alive() {  # PID: running (not gone, not a zombie)
  local st
  st=$(awk '{sub(/^.*\) /, ""); print $1}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z ]]
}
cleanup() {
  local p
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    p=${pids[i]}
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 300); do alive "$p" || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  # impd stops its MariaDB; should impd have been killed, stop that one too.
  if [[ -n ${MARIADB_PID:-} ]] && alive "$MARIADB_PID"; then
    kill -TERM "$MARIADB_PID" 2>/dev/null || true
    for _ in $(seq 300); do alive "$MARIADB_PID" || break; sleep 0.1; done
    kill -KILL "$MARIADB_PID" 2>/dev/null || true
  fi
  if [[ $KEEP_WORK = 1 ]]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_start=$(date +%s)
log() { printf '%s\n' "$*"; }
now_ns() { date +%s%N; }

# Free TCP ports on 127.0.0.1, distinct (held open together while choosing).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

wait_listen() {  # PORT PID WHAT [SECONDS=30]: until something listens on 127.0.0.1:PORT
  local deadline=$((SECONDS + ${4:-30}))
  until ss -Hltn "sport = :$1" | grep -q .; do
    alive "$2" || { echo "$3 exited before listening on $1" >&2; exit 1; }
    ((SECONDS < deadline)) || { echo "$3 not listening on $1 after ${4:-30} s" >&2; exit 1; }
    sleep 0.05
  done
}

ticks() {  # utime+stime of the given PIDs, in clock ticks
  local s=0 p v
  for p in "$@"; do
    [[ -n $p ]] || continue
    v=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)
    s=$((s + v))
  done
  echo "$s"
}
ctxsw() {  # PIDs...: context switches (voluntary + involuntary) of every thread of the given processes
  local s=0 p v
  for p in "$@"; do
    [[ -n $p ]] || continue
    v=$(cat /proc/"$p"/task/*/status 2>/dev/null | awk '$1 ~ /ctxt_switches:$/ {s += $2} END {print s + 0}')
    s=$((s + v))
  done
  echo "$s"
}
status_kb() {  # FIELD PIDs...: sum of a /proc/PID/status field (kB)
  local f=$1 s=0 p v; shift
  for p in "$@"; do [[ -n $p ]] || continue; v=$(awk -v f="$f:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || echo 0); s=$((s + ${v:-0})); done
  echo "$s"
}
proc_snapshot() {  # FILE: "pid own-ticks children-ticks" (utime+stime, cutime+cstime) of every process
  awk '{n = split($0, a, ") "); split(a[n], f, " "); sub(/^\/proc\//, "", FILENAME); sub(/\/stat$/, "", FILENAME);
        print FILENAME, f[12] + f[13], f[14] + f[15]}' /proc/[0-9]*/stat >"$1" 2>/dev/null || true
}
pid_pct() {  # SNAP0 SNAP1 WALL_S PID: CPU (% of one core) of one process and the children it reaped meanwhile
  awk -v p="$4" -v w="$3" -v hz="$HZ" 'NR == FNR {if ($1 == p) a = $2 + $3; next}
    $1 == p {printf "%.0f", 100 * ($2 + $3 - a) / hz / w}' "$1" "$2"
}
others_pct() {  # SNAP0 SNAP1 WALL_S: CPU (% of one core) of the processes this script did not start that
  # ran through the whole window (short-lived ones, e.g. compilers, are missed: a lower bound)
  local ours=" $(our_pids) "
  awk -v ours="$ours" -v w="$3" -v hz="$HZ" 'NR == FNR {a[$1] = $2; next}
    ($1 in a) && index(ours, " " $1 " ") == 0 {s += $2 - a[$1]} END {printf "%.0f", 100 * s / hz / w}' "$1" "$2"
}
pss_kb() {
  local s=0 p v
  for p in "$@"; do [[ -n $p ]] || continue; v=$(awk '$1 == "Pss:" {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0); s=$((s + ${v:-0})); done
  echo "$s"
}
