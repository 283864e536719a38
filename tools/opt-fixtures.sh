#!/usr/bin/env bash
# Record what `peephole opt` does to every fixture file, to show that a
# refactor changes nothing: run it with the binary before and after the
# change and compare the two directories (`diff -r A B`, no output = same).
#
# For each of fixtures/asm/*/*.s, fixtures/asm/*/*/*.s, fixtures/handwritten/*.s
# and fixtures/examples/*.s it keeps the optimized file, the --report JSON
# without its timings (`seconds`, `proof_seconds`, `proof_ms`), the exit
# status and the summary line (its time removed).
#
# Usage: tools/opt-fixtures.sh PEEPHOLE OUTDIR [OPT-ARGS...]
# (OPT-ARGS default: --propose rules --no-cache --tests 300). Needs jq.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "$1")
out=$(realpath -m "$2")
shift 2
if [ $# -eq 0 ]; then
    set -- --propose rules --no-cache --tests 300
fi
mkdir -p "$out"
cd "$root"
n=0
for f in fixtures/asm/*/*.s fixtures/asm/*/*/*.s fixtures/handwritten/*.s fixtures/examples/*.s; do
    [ -f "$f" ] || continue
    key=$(echo "$f" | tr '/' '_')
    rc=0
    "$bin" opt "$f" "$@" -o "$out/$key.out" --report "$out/$key.raw.json" \
        >/dev/null 2>"$out/$key.stderr" || rc=$?
    echo "$rc" >"$out/$key.rc"
    sed 's/; [0-9.]*s$//' "$out/$key.stderr" | grep '^peephole: [0-9]* rewrites' >"$out/$key.summary" || true
    rm "$out/$key.stderr"
    if [ -f "$out/$key.raw.json" ]; then
        jq 'walk(if type == "object" then del(.seconds, .proof_seconds, .proof_ms) else . end)' "$out/$key.raw.json" >"$out/$key.report.json"
        rm "$out/$key.raw.json"
    fi
    n=$((n + 1))
done
echo "$n files recorded in $out"
