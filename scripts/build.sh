#!/usr/bin/env bash
# build.sh BUILD_DIR [cmake args...]: configure (once) and build with -j2.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: build.sh BUILD_DIR [cmake args]}
shift
cmake -S "$here" -B "$build" -G Ninja "$@" >/dev/null
cmake --build "$build" -j "${IMP_JOBS:-2}"
