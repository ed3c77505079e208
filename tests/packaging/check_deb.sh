#!/usr/bin/env bash
# Builds the Debian package with CPack and checks its contents.
#
#   tests/packaging/check_deb.sh BUILD_DIR
#
# BUILD_DIR is a configured and built tree (it holds CPackConfig.cmake),
# configured with -DCMAKE_INSTALL_PREFIX=/usr. Checks: the files the package
# must ship, the conffiles and maintainer scripts in the control archive, and
# lintian (when installed): any E: line fails, W: lines are shown.
# Ends with "packaging: N passed, M failed"; exits non-zero on any failure.
set -euo pipefail

usage() {
  echo "usage: $0 BUILD_DIR" >&2
  exit 64
}

[[ $# -eq 1 ]] || usage
BUILD_DIR=$(cd "$1" 2>/dev/null && pwd) || { echo "$0: no such directory: $1" >&2; exit 64; }

passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

finish() {
  echo "packaging: ${passed} passed, ${failed} failed"
  if [[ $failed -eq 0 ]]; then exit 0; else exit 1; fi
}

for tool in cpack dpkg-deb; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    fail "$tool is installed"
    finish
  fi
done

if [[ ! -f "$BUILD_DIR/CPackConfig.cmake" ]]; then
  fail "$BUILD_DIR/CPackConfig.cmake exists (configure the build first)"
  finish
fi

# 1. Build the package. Old packages are moved out of the way so the check
#    always looks at the one just built.
shopt -s nullglob
old=("$BUILD_DIR"/imp_*.deb)
shopt -u nullglob
if [[ ${#old[@]} -gt 0 ]]; then
  rm -f -- "${old[@]}"
fi

cpack_log="$BUILD_DIR/check_deb.cpack.log"
if (cd "$BUILD_DIR" && cpack -G DEB --config "$BUILD_DIR/CPackConfig.cmake") >"$cpack_log" 2>&1; then
  pass "cpack -G DEB"
else
  fail "cpack -G DEB (log: $cpack_log)"
  tail -n 30 "$cpack_log" | sed 's/^/    /'
  finish
fi

shopt -s nullglob
debs=("$BUILD_DIR"/imp_*.deb)
shopt -u nullglob
if [[ ${#debs[@]} -eq 1 ]]; then
  deb=${debs[0]}
  pass "one package produced: $(basename "$deb")"
else
  fail "exactly one imp_*.deb in $BUILD_DIR (found ${#debs[@]})"
  finish
fi

# 2. Contents.
# Symbolic links are listed as "path -> target": keep the path.
contents=$(dpkg-deb -c "$deb" | sed -E 's/ -> .*$//' | awk '{print $NF}')

expected=(
  ./usr/sbin/impd
  ./usr/bin/impctl
  ./etc/imp/impd.conf
  ./lib/systemd/system/impd.service
  ./usr/share/man/man8/impd.8.gz
  ./usr/share/man/man8/impctl.8.gz
  ./usr/share/bash-completion/completions/impctl
  ./usr/share/man/man5/impd.conf.5.gz
  ./usr/share/imp/sql/0001_core_schema.sql
  ./usr/share/doc/imp/impd.conf.example
  ./usr/share/doc/imp/copyright
  ./usr/lib/sysusers.d/imp.conf
)
for path in "${expected[@]}"; do
  if grep -qxF -- "$path" <<<"$contents"; then
    pass "contains $path"
  else
    fail "contains $path"
  fi
done

# 3. Control archive.
control_info=$(dpkg-deb -I "$deb")
conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null || true)
if grep -qxF /etc/imp/impd.conf <<<"$conffiles"; then
  pass "conffiles lists /etc/imp/impd.conf"
else
  fail "conffiles lists /etc/imp/impd.conf"
fi
for script in postinst prerm postrm; do
  if grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\* +${script}( |$)" <<<"$control_info"; then
    pass "control has executable $script"
  else
    fail "control has executable $script"
  fi
done

# 4. lintian.
if command -v lintian >/dev/null 2>&1; then
  lintian_out=$(lintian --no-tag-display-limit "$deb" 2>&1 || true)
  warnings=$(grep -E '^W: ' <<<"$lintian_out" || true)
  errors=$(grep -E '^E: ' <<<"$lintian_out" || true)
  if [[ -n $warnings ]]; then
    echo "lintian warnings:"
    printf '%s\n' "$warnings" | sed 's/^/    /'
  fi
  if [[ -z $errors ]]; then
    pass "lintian: no errors"
  else
    fail "lintian: no errors"
    printf '%s\n' "$errors" | sed 's/^/    /'
  fi
else
  echo "SKIP: lintian is not installed"
fi

finish
