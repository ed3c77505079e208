#!/usr/bin/env bash
# B-PROXY-RELAY before/after (docs/BENCHMARKS.md): two impd builds, A (before)
# and B (after), measured in one run by proxy_relay_bench.sh's CPU mode.
# Not a test: run by hand on a quiet machine.
#
#   tests/bench/proxy_relay_ab.sh BUILD_A BUILD_B
#
# Both are Release trees built with
#   scripts/build.sh DIR -DCMAKE_BUILD_TYPE=Release -DIMP_BENCH=ON -DIMP_TESTS=OFF
# Each round runs proxy_relay_bench.sh once per build (A then B in odd rounds,
# B then A in even ones, so neither always goes first), with one CPU-mode
# round each and Kamailio in every run, so each run also gives its own
# impd/Kamailio ratio. The summary gives, per flow and rate, the median
# (min..max) of impd's CPU per call for A and B over the rounds, B/A, and
# Kamailio's median over all runs.
#
# Knobs (environment): ROUNDS (3), FLOW ("message invite"), CPU_RATES
# ("4000 8000"), CPU_RATES_INVITE ("2000 4000"), STEP_SECS (10); the rest is
# passed to proxy_relay_bench.sh as is (PROXY_CPU, LOAD_CPU, PATH_KIND...).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
a=${1:?usage: proxy_relay_ab.sh BUILD_A BUILD_B}
b=${2:?usage: proxy_relay_ab.sh BUILD_A BUILD_B}
ROUNDS=${ROUNDS:-3}
export FLOW=${FLOW:-message invite}
export CPU_RATES=${CPU_RATES:-4000 8000}
export CPU_RATES_INVITE=${CPU_RATES_INVITE:-2000 4000}
export FAILOVER=0 PROXIES="impd kamailio"
out=$(mktemp -d /tmp/imp-ab-XXXXXX)
echo "proxy_relay_ab: A=$a B=$b rounds=$ROUNDS flows=[$FLOW] rates=[$CPU_RATES] invite rates=[$CPU_RATES_INVITE]; logs in $out"
for ((r = 1; r <= ROUNDS; r++)); do
  order="A B"; ((r % 2 == 0)) && order="B A"
  for which in $order; do
    dir=$a; [[ $which = B ]] && dir=$b
    echo "round $r: build $which ($dir) started $(date -u +%T)"
    ROUNDS=1 "$here/tests/bench/proxy_relay_bench.sh" "$dir" >"$out/$which.$r.log" 2>&1 ||
      { echo "round $r build $which failed: see $out/$which.$r.log" >&2; tail -20 "$out/$which.$r.log" >&2; exit 1; }
    grep -E '^\s+(message|invite) ' "$out/$which.$r.log" | sed "s/^/  $which r$r:/"
  done
done
python3 - "$out" "$ROUNDS" <<'PY'
import glob, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rx = re.compile(r"^\s+(message|invite)\s+(\d+)/s impd (\S+) us .*?kamailio (\S+) us")
data = {}
for path in sorted(glob.glob(out + "/*.log")):
    which = path.rsplit("/", 1)[1].split(".")[0]
    for line in open(path):
        m = rx.match(line)
        if not m:
            continue
        key = (m.group(1), int(m.group(2)))
        d = data.setdefault(key, {"A": [], "B": [], "K": []})
        for tag, v in ((which, m.group(3)), ("K", m.group(4))):
            try:
                d[tag].append(float(v))
            except ValueError:
                pass
def fmt(v):
    return "%.1f (%.1f..%.1f; n=%d)" % (statistics.median(v), min(v), max(v), len(v)) if v else "-"
print("\nsummary: us of CPU per call, impd build A (before) and B (after), medians over %d rounds" % rounds)
print("| flow, rate | A (before) | B (after) | B/A | Kamailio, same runs |")
print("|---|---|---|---|---|")
for (flow, rate), d in sorted(data.items()):
    ratio = "%.2f" % (statistics.median(d["B"]) / statistics.median(d["A"])) if d["A"] and d["B"] else "-"
    print("| %s, %d/s | %s | %s | %s | %s |" % (flow, rate, fmt(d["A"]), fmt(d["B"]), ratio, fmt(d["K"])))
PY
