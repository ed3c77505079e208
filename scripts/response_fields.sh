#!/usr/bin/env bash
# response_fields.sh [SOURCE_ROOT]: for every module with admin commands, the
# places its admin code (each src/*.cpp declaring a Command, and
# src/shared_fields.h) writes each response JSON field name as a string
# literal (issue 15 deliverable 4: declared once, in the answer's shape; the
# server's Reply and impctl's printers use the shape's field handles). Exits 1
# if a name is written in more than one place in a module.
#
# A place is where the code declares a name in a response shape
# (text|number|flag|texts|object|list("name")), sets it on a JSON object
# (->set("name", ...)) or reads it from an answer (str(o, "name"),
# getValue<...>("name"), get/getArray/getObject/has("name"), objects/joined(o,
# "name")); the same word as a value or a command word is not a field name.
# Request fields (Arg::..., a.at/str/integer/boolean/strings("name"), .arg(),
# .flag(), .fixed()) and database columns (rows.str/num(i, "name")) are not
# response fields and their lines are not counted.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

decl='(?:(?<![.\w])(?:text|number|flag|texts|object|list)\("([a-z_][a-z0-9_]*)")'
uses='(?:->set\("([a-z_][a-z0-9_]*)")|(?:\b(?:str|objects|joined)\([a-z]+, "([a-z_][a-z0-9_]*)"\))|(?:(?:getValue<[^>]+>|optValue<[^>]+>|getArray|getObject|get|has)\("([a-z_][a-z0-9_]*)"[,)])'
request='Arg::|\.(?:arg|flag|fixed)\(|\ba\.(?:at|str|integer|boolean|strings|has)\(|\brows\.(?:str|num)\('

bad=0
printf '%-16s %7s %8s %10s  %s\n' MODULE FIELDS LITERALS REPEATED "NAMES WRITTEN MORE THAN ONCE (count)"
for dir in modules/*/src; do
  # The module's files that declare admin commands (admin_api.cpp and the like).
  mapfile -t srcs < <(grep -l 'Command("' "$dir"/*.cpp 2>/dev/null || true)
  [[ -f $dir/shared_fields.h ]] && srcs+=("$dir/shared_fields.h")
  ((${#srcs[@]})) || continue
  m=$(cut -d/ -f2 <<<"$dir")
  code=$(cat "${srcs[@]}" | grep -Pv "$request" || true)
  # Every place a name is written as a field name: declared, set or read.
  places=$(grep -Po "$decl|$uses" <<<"$code" | grep -Po '"\K[a-z_][a-z0-9_]*(?=")' || true)
  mapfile -t names < <(sort -u <<<"$places")
  literals=0 repeated=0 list=""
  for n in "${names[@]}"; do
    c=$(grep -cx -- "$n" <<<"$places")
    literals=$((literals + c))
    if ((c > 1)); then
      repeated=$((repeated + 1))
      list+=" $n($c)"
    fi
  done
  printf '%-16s %7d %8d %10d %s\n' "$m" "${#names[@]}" "$literals" "$repeated" "$list"
  ((repeated == 0)) || bad=1
done
if ((bad)); then echo "FAIL: a response field name is written in more than one place in a module"; exit 1; fi
echo "OK: every response field name is written once per module, in its shape"
