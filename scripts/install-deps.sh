#!/usr/bin/env bash
# Installs everything IMP needs to build, run and test on Debian 12.
# Idempotent: packages already present are left alone. Needs root.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git
  libpoco-dev libssl-dev libmysqlcppconn-dev libspdlog-dev libfmt-dev
  libboost-program-options-dev doctest-dev libexpat1-dev
  libicu-dev  # modules/xmpp: Unicode normalisation, case mapping, character properties and IDNA for JIDs (RFC 7622), SASLprep of passwords (RFC 4013): not code to write by hand
  libjemalloc-dev  # impd's allocator (IMP_JEMALLOC): glibc malloc's free-list consolidation cost a third of the node's CPU under SIP load
  libsqlite3-dev  # unit tests only: the in-memory fake database (tests/support)
  mariadb-server mariadb-client
  python3 curl sip-tester
  python3-slixmpp  # XMPP e2e tests: the first real client stack (tests/e2e/xmpp_client.py)
  kamailio kamailio-presence-modules  # SIMPLE federation e2e test: a standard registrar and presence server (tests/e2e/kamailio/presence.cfg)
  clang libclang-rt-14-dev
  dpkg-dev fakeroot lintian file rpm
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (sudo)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# The distribution's mariadb service is not used: impd runs its own server.
# Keep the package scripts from starting one where policy allows it.
apt-get install -y -q --no-install-recommends "${missing[@]}"
