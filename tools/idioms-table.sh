#!/usr/bin/env bash
# The idiom corpus (fixtures/idioms/) under each proposer alone and the
# default: prints a markdown table, one row per function, with a mark where
# `peephole opt` made it faster by llvm-mca (every rewrite verified), and
# totals over the improvable functions. "Improvable" is decided on the cost
# model, not by instruction count: a function is improvable when its
# `// best:` form, put in place of its body, is faster by llvm-mca for the
# default --cpu (column "best"), or when any proposer made it faster. Run from anywhere; needs
# target/release/peephole. A fresh cache directory per run (the merged model
# is built once in it).
#
# Usage: tools/idioms-table.sh [PROPOSERS...]   (default: rules llm synth default)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release/peephole
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(rules llm synth default)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
declare -A total
printf "| function | best |"; for s in "${sets[@]}"; do printf " %s |" "$s"; done; echo
printf "|---|---|"; for _ in "${sets[@]}"; do printf -- "---|"; done; echo
improvable=0
cycles() { # estimated cycles of a file, by the default cost model
  "$bin" opt "$1" --propose none --report "$work/c.json" -o /dev/null 2>/dev/null
  python3 -c "import json;print(json.load(open('$work/c.json'))['summary']['cycles_before'])"
}
for f in "$root"/fixtures/idioms/*.s; do
  name=$(basename "$f" .s)
  # The function with its body replaced by the `// best:` form.
  python3 - "$f" "$work/best.s" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
best = re.search(r"// best: `([^`]*)`", src)
lines, out, body = src.splitlines(), [], False
for l in lines:
    if body and l.strip().startswith(".size"):
        body = False
        out += ["\t" + i.strip() for i in (best.group(1) if best else "").split(";") if i.strip()]
        out += ["\tret"]
    if not body:
        out.append(l)
    if re.match(r"^[A-Za-z_]\w*:\s*$", l) and not l.startswith("."):
        body = True
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
  best=0
  if ! grep -q 'best: already optimal' "$f" \
     && python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) - 1e-9 else 1)" \
          "$(cycles "$work/best.s")" "$(cycles "$f")"; then
    best=1
  fi
  row="| $name | $([ $best = 1 ] && echo '✓' || echo '·') |"
  marks=()
  for s in "${sets[@]}"; do
    args=(--propose "$s")
    [ "$s" = default ] && args=()
    PEEPHOLE_CACHE_DIR=$work/cache "$bin" opt "$f" "${args[@]}" --report "$work/r.json" -o /dev/null 2>/dev/null
    faster=$(python3 -c "import json;s=json.load(open('$work/r.json'))['summary'];print(int(s['cycles_after']<s['cycles_before']-1e-9))")
    marks+=("$faster")
    [ "$faster" = 1 ] && best=1 # a faster form exists: improvable
    row+=" $([ "$faster" = 1 ] && echo '✓' || echo '·') |"
  done
  if [ $best = 1 ]; then
    improvable=$((improvable + 1))
    for i in "${!sets[@]}"; do
      [ "${marks[$i]}" = 1 ] && total[${sets[$i]}]=$(( ${total[${sets[$i]}]:-0} + 1 ))
    done
  fi
  echo "$row"
done
printf "| **faster, of %d improvable** | |" "$improvable"
for s in "${sets[@]}"; do printf " **%d** |" "${total[$s]:-0}"; done; echo
