#!/usr/bin/env bash
# A whole static binary, cold and warm (issue: "a whole static binary within
# a few minutes cold"): fixtures/c/strings.c built with
# `aarch64-linux-gnu-gcc -O2 -static` (libc included, ~35k blocks), then
# `peephole opt BINARY -o OUT --abi c` with `--propose rules,synth` and with
# the default proposers (the LLM under the default --llm-budget). Cold: an
# empty result cache (the merged model, built once beforehand, is copied in);
# warm: the same cache again. Every patched binary must print what the
# program's .expected file says under qemu-aarch64. Prints a markdown table.
#
# Usage: tools/bench-static-binary.sh    Env: BIN, PROGRAM (default strings).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/peephole}
PROGRAM=${PROGRAM:-strings}
[ -x "$BIN" ] || cargo build --release --locked -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
aarch64-linux-gnu-gcc -O2 -static "fixtures/c/$PROGRAM.c" -lm -o "$work/prog"
# Build the merged model once (a one-time install cost, not the run's).
PEEPHOLE_CACHE_DIR=$work/models-cache "$BIN" opt "fixtures/asm/gcc-O2/$PROGRAM.s" \
  --propose llm -o "$work/warmup.s" 2>/dev/null
echo "$PROGRAM, -O2 -static: $(stat -c %s "$work/prog") bytes"
echo
echo "| proposers | cache | seconds | rewrites (by proposer) | windows the LLM did not get to | output as expected |"
echo "|---|---|---|---|---|---|"
status=0
for set in rules,synth default; do
  props=$([ "$set" = default ] || echo "--propose $set")
  cache=$work/cache-$set
  mkdir -p "$cache" && cp -r "$work/models-cache/models" "$cache/"
  for temp in cold warm; do
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    PEEPHOLE_CACHE_DIR=$cache "$BIN" opt "$work/prog" --abi c $props \
      -o "$work/out-$set" --report "$work/r.json" 2>/dev/null
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    read -r n by unasked < <(python3 -c "
import collections, json, sys
r = json.load(open(sys.argv[1]))
c = collections.Counter(x['proposer'].split(':')[0] for x in r['rewrites'])
print(len(r['rewrites']), ','.join(f'{k}={v}' for k, v in sorted(c.items())) or '-',
      r['summary'].get('windows_unasked', 0))" "$work/r.json")
    same=yes
    chmod +x "$work/out-$set"
    if ! qemu-aarch64 "$work/out-$set" | cmp -s - "fixtures/c/$PROGRAM.expected"; then
      same=NO
      status=1
    fi
    printf "| %s | %s | %.1f | %d (%s) | %d | %s |\n" "$set" "$temp" "$secs" "$n" "$by" "$unasked" "$same"
  done
done
exit $status
