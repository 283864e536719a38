#!/usr/bin/env bash
# The idiom corpus (fixtures/idioms/) under each proposer alone and the
# default: prints a markdown table, one row per function, with a mark where
# `peephole opt` made it faster by llvm-mca (every rewrite verified), and a
# total over the improvable functions (those whose `// best:` is not
# "already optimal"). Run from anywhere; needs target/release/peephole. A
# fresh cache directory per run (the merged model is built once in it).
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
printf "| function |"; for s in "${sets[@]}"; do printf " %s |" "$s"; done; echo
printf "|---|"; for _ in "${sets[@]}"; do printf -- "---|"; done; echo
improvable=0
for f in "$root"/fixtures/idioms/*.s; do
  name=$(basename "$f" .s)
  optimal=0
  grep -q 'best: already optimal' "$f" && optimal=1
  [ $optimal = 1 ] || improvable=$((improvable + 1))
  printf "| %s%s |" "$name" "$([ $optimal = 1 ] && echo ' (optimal)')"
  for s in "${sets[@]}"; do
    args=(--propose "$s")
    [ "$s" = default ] && args=()
    PEEPHOLE_CACHE_DIR=$work/cache "$bin" opt "$f" "${args[@]}" --report "$work/r.json" -o /dev/null 2>/dev/null
    faster=$(python3 -c "import json;s=json.load(open('$work/r.json'))['summary'];print(int(s['cycles_after']<s['cycles_before']-1e-9))")
    if [ "$faster" = 1 ]; then
      printf " ✓ |"
      [ $optimal = 1 ] || total[$s]=$(( ${total[$s]:-0} + 1 ))
    else
      printf " · |"
    fi
  done
  echo
done
printf "| **faster, of %d improvable** |" "$improvable"
for s in "${sets[@]}"; do printf " **%d** |" "${total[$s]:-0}"; done; echo
