#!/usr/bin/env bash
# command_places.sh BUILD_DIR: for every impctl command, the places in the
# sources that describe it (issue 15 deliverable 4: one declaration per
# command form, in its module; none in impctl, none written by hand in
# impctl(8)). Exits 1 if a command is declared more or less often than it has
# forms, or is written out anywhere else.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: command_places.sh BUILD_DIR}
impctl=$build/apps/impctl/impctl
cd "$here"

# The commands and their forms, as the registry itself lists them.
mapfile -t usages < <("$impctl" help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  //p' | grep -v -e '^help ' -e '^completion ')
words_of() { awk '{ w = ""; for (i = 1; i <= NF; i++) { if ($i !~ /^[a-z][a-z-]*$/) break; w = w (w == "" ? "" : " ") $i } print w }' <<<"$1"; }

bad=0
printf '%-26s %5s %5s  %s\n' COMMAND FORMS DECL "DECLARED AT (grep -rn 'Command(\"WORDS\"' modules apps)"
declare -A seen=()
for u in "${usages[@]}"; do
  w=$(words_of "$u")
  [[ -n ${seen[$w]:-} ]] && continue
  seen[$w]=1
  forms=0
  for v in "${usages[@]}"; do [[ $(words_of "$v") == "$w" ]] && forms=$((forms + 1)); done
  mapfile -t places < <(grep -rn --include='*.cpp' --include='*.h' -F "Command(\"$w\"" modules apps | cut -d: -f1,2)
  # Anywhere else the words are spelled out as a command: impctl's sources and the hand-written man page.
  others=$(grep -rn -F -e "\"$w \"" -e "\"$w\"" apps/impctl man/impctl.8.in | grep -v '^apps/impctl/tests/' || true)
  printf '%-26s %5d %5d  %s\n' "$w" "$forms" "${#places[@]}" "${places[*]}"
  if [[ ${#places[@]} -ne $forms ]]; then bad=1; fi
  if [[ -n $others ]]; then echo "  also described elsewhere: $others"; bad=1; fi
done
if ((bad)); then echo "FAIL: a command is described in more than one place"; exit 1; fi
echo "OK: ${#seen[@]} commands (${#usages[@]} forms), each form declared once, in its module"

# Response fields (issue 15 deliverable 4): each name written once per module, in its answer's shape.
echo
"$here/scripts/response_fields.sh" "$here"
