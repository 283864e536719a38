#!/usr/bin/env bash
# Benchmark `peephole opt` per proposer on a fixed corpus (default: the gcc -O0
# and -O2 fixture assembly). Prints blocks/s, blocks rewritten and estimated
# cycles before/after, as the median of REPEAT runs. The result cache is off so
# every run does the full work.
#   tools/bench-opt.sh [PROPOSERS...]      e.g. tools/bench-opt.sh rules llm
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/peephole}
REPEAT=${REPEAT:-3}
CORPUS=${CORPUS:-"fixtures/asm/gcc-O0 fixtures/asm/gcc-O2"}
PROPOSERS=${*:-rules llm}
[ -x "$BIN" ] || cargo build --release --locked -q
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
files=$(find $CORPUS -name '*.s' | sort)
printf '%-8s %6s %10s %10s %12s %12s %8s\n' proposer files blocks/s rewritten cycles_before cycles_after seconds
for p in $PROPOSERS; do
  for r in $(seq "$REPEAT"); do
    start=$(date +%s.%N)
    i=0
    for f in $files; do
      i=$((i+1))
      "$BIN" opt --no-cache --propose "$p" "$f" -o "$tmp/out.s" --report "$tmp/$p-$r-$i.json" 2>/dev/null
    done
    end=$(date +%s.%N)
    echo "$start $end" > "$tmp/$p-$r.time"
  done
  python3 - "$tmp" "$p" "$REPEAT" <<'PY'
import json, glob, statistics, sys
tmp, p, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = []
for r in range(1, repeat + 1):
    start, end = map(float, open(f"{tmp}/{p}-{r}.time").read().split())
    reps = [json.load(open(f)) for f in glob.glob(f"{tmp}/{p}-{r}-*.json")]
    blocks = sum(x["summary"]["blocks"] for x in reps)
    runs.append((end - start, blocks, sum(x["summary"]["blocks_rewritten"] for x in reps),
                 sum(x["summary"]["cycles_before"] for x in reps), sum(x["summary"]["cycles_after"] for x in reps), len(reps)))
secs = statistics.median(r[0] for r in runs)
t, blocks, rewritten, cb, ca, n = runs[0]
print(f"{p:<8} {n:>6} {blocks / secs:>10.1f} {rewritten:>10} {cb:>12.1f} {ca:>12.1f} {secs:>8.1f}")
PY
done
