#!/usr/bin/env bash
# What the LLM costs in a default run (issue: "the model pays for its time"):
# `peephole opt` on every file of a corpus (default: the gcc and clang -O2
# fixture programs, one process per file as a build would run it), with
# `--propose rules,synth` and with the default proposers (rules, synth, then
# the LLM on the windows they did not improve, under the default
# --llm-budget). Cold: an empty result cache (the merged model, built once
# beforehand, is copied in: building it is a one-time install cost). Warm:
# the same cache again. Prints total seconds, rewrites and windows the LLM
# did not get to, as the median of RUNS runs (default 3).
#
# Usage: tools/bench-llm-time.sh [RUNS]    Env: CORPUS (globs), BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
BIN=${BIN:-target/release/peephole}
CORPUS=${CORPUS:-"fixtures/asm/gcc-O2/*.s fixtures/asm/clang-O2/*.s"}
[ -x "$BIN" ] || cargo build --release --locked -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2086
files=$(ls $CORPUS)
# Build the merged model once.
PEEPHOLE_CACHE_DIR=$work/models-cache "$BIN" opt "$(echo "$files" | head -1)" \
  --propose llm -o /dev/null 2>/dev/null
run() { # run NAME CACHE PROPOSERS... -> appends "seconds rewrites unasked" to $work/NAME
  local name=$1 cache=$2 props=$3 start end n=0 u=0
  start=$(date +%s.%N)
  for f in $files; do
    PEEPHOLE_CACHE_DIR=$cache "$BIN" opt "$f" --abi c ${props:+--propose "$props"} \
      --report "$work/r.json" -o /dev/null 2>/dev/null
    read -r a b < <(python3 -c "import json;s=json.load(open('$work/r.json'));print(len(s['rewrites']), s['summary'].get('windows_unasked', 0))")
    n=$((n + a)); u=$((u + b))
  done
  end=$(date +%s.%N)
  echo "$(echo "$end - $start" | bc) $n $u" >>"$work/$name"
}
for r in $(seq "$RUNS"); do
  for set in rules,synth default; do
    props=$set
    [ "$set" = default ] && props=""
    cache=$work/cache-$set-$r
    mkdir -p "$cache"
    cp -r "$work/models-cache/models" "$cache/"
    run "$set-cold" "$cache" "$props"
    run "$set-warm" "$cache" "$props"
  done
done
python3 - "$work" "$(echo "$files" | wc -l)" <<'PY'
import statistics, sys
work, nfiles = sys.argv[1], sys.argv[2]
def rows(name):
    return [tuple(float(x) for x in l.split()) for l in open(f"{work}/{name}")]
print(f"| proposers ({nfiles} files) | cold s | warm s | rewrites | windows the LLM did not get to |")
print("|---|---|---|---|---|")
med = {}
for s in ["rules,synth", "default"]:
    cold, warm = rows(f"{s}-cold"), rows(f"{s}-warm")
    med[s] = statistics.median(c[0] for c in cold), statistics.median(w[0] for w in warm)
    print(f"| {s} | {med[s][0]:.1f} | {med[s][1]:.1f} | {int(cold[0][1])} | {int(cold[0][2])} |")
print(f"\ndefault / rules,synth: cold {med['default'][0] / med['rules,synth'][0]:.2f}x, "
      f"warm {med['default'][1] / med['rules,synth'][1]:.2f}x")
PY
