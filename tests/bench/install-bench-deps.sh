#!/usr/bin/env bash
# Installs the benchmark peers on Debian 12 (bench only: CI does not run the
# benchmarks, so scripts/install-deps.sh does not carry these).
# Idempotent: packages already present are left alone. Needs root.
set -euo pipefail

PKGS=(
  kamailio kamailio-tls-modules  # B-PROXY-RELAY, B-PROXY-TLS peer (proxy_relay_bench.sh, proxy_tls_bench.sh)
  prosody                        # B-XMPP-CONN, B-XMPP-MSG peer: Prosody 0.12 (xmpp_bench.sh)
  ejabberd                       # B-XMPP-CONN, B-XMPP-MSG peer: ejabberd 23.01 and Erlang/OTP (escript for provisioning)
  tsung                          # Debian XMPP load generator (PLAIN only, no SCRAM) for hand cross-checks; xmpp_bench.sh uses xmpp_load
  util-linux                     # taskset, setpriv (peers pinned to one core, run as their own users)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-bench-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-bench-deps: missing packages: ${missing[*]}; run as root (sudo)" >&2
  exit 1
fi
echo "install-bench-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# The packages' own services are not used: the bench scripts start private
# instances from generated configurations; where policy-rc.d allows, the
# distribution may start the system ones, which the scripts never touch.
apt-get install -y -q --no-install-recommends "${missing[@]}"
