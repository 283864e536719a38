#!/usr/bin/env bash
# How many applied rewrites the SMT solver proves (docs/prove.md): runs
# `peephole opt --propose rules,synth --report` on every fixture program
# (fixtures/asm/*/*.s), then counts the evidence of each rewrite, with and
# without memory accesses, the reasons for "tested", and the proof times.
# Extra arguments go to `peephole opt` (e.g. --proof-timeout 5000); the
# reports are kept in $REPORTS when it is set.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${REPORTS:-}" ]; then
  out=$REPORTS
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
for f in fixtures/asm/*/*.s; do
  name=$(echo "$f" | tr '/' '_')
  target/release/peephole opt "$f" --propose rules,synth --no-cache \
    --report "$out/$name.json" -o /dev/null "$@" 2>/dev/null || echo "failed: $f" >&2
done
python3 - "$out" <<'PY'
import collections, glob, json, re, statistics, sys

def memory(lines):
    return any(re.match(r"(ld|st)[a-z0-9]*\s", l) for l in lines)

def pct(a, b):
    return f"{a}/{b} ({100 * a / b:.1f}%)" if b else "0/0"

rows, queries, seconds = [], 0, 0.0
for path in sorted(glob.glob(sys.argv[1] + "/*.json")):
    r = json.load(open(path))
    queries += r["summary"]["proof_queries"]
    seconds += r["summary"]["proof_seconds"]
    rows += r["rewrites"]
mem = [w for w in rows if memory(w["before"] + w["after"])]
reg = [w for w in rows if not memory(w["before"] + w["after"])]
proved = lambda ws: sum(w["evidence"] == "proved" for w in ws)
print(f"rewrites applied: {len(rows)}")
print(f"proved, no memory access: {pct(proved(reg), len(reg))}")
print(f"proved, with memory access: {pct(proved(mem), len(mem))}")
print(f"proved, all: {pct(proved(rows), len(rows))}")
why = collections.Counter()
for w in rows:
    if w["evidence"] != "proved":
        m = re.match(r"`(\S+)", w["not_proved"])
        why[f"`{m.group(1)}` has no executable semantics" if m else w["not_proved"]] += 1
for k, n in why.most_common():
    print(f"  tested: {n:4}  {k}")
ms = sorted(w["proof_ms"] for w in rows)
if ms:
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    print(f"proof time per applied rewrite: median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms")
print(f"proof queries: {queries} (every candidate the tests accepted), {seconds:.1f} s in all, {1e3 * seconds / max(queries, 1):.1f} ms each on average")
PY
