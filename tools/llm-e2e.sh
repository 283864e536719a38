#!/usr/bin/env bash
# `--propose llm` alone on the gcc -O0 fixture programs: every file is optimized
# with the LLM as the only proposer, linked and run under qemu-aarch64 against
# the original (`--check-cmd`: opt writes nothing and fails if the output or
# exit status differ). Prints one row per file: LLM rewrites that were verified
# and applied, candidates the validator rejected, estimated cycles, seconds.
# Results are cached per window: a second run takes seconds and re-verifies
# nothing (its "rejected" is 0); add --no-cache to redo everything.
#   tools/llm-e2e.sh [EXTRA OPT FLAGS]     e.g. tools/llm-e2e.sh --no-cache -k 4 --temperature 0.7
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/peephole}
DIR=${DIR:-fixtures/asm/gcc-O0}
[ -x "$BIN" ] || cargo build --release --locked -q
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '%-16s %7s %9s %9s %14s %6s %8s\n' file blocks rewrites rejected cycles check seconds
for f in "$DIR"/*.s; do
  n=$(basename "$f" .s)
  start=$(date +%s.%N)
  if "$BIN" opt --propose llm "$f" --check-cmd '{}' -o "$tmp/$n.s" --report "$tmp/$n.json" "$@" 2>"$tmp/$n.err"; then
    check=same
  else
    check=FAILED; cat "$tmp/$n.err" >&2
  fi
  end=$(date +%s.%N)
  python3 - "$tmp/$n.json" "$n" "$check" "$start" "$end" <<'PY'
import json, os, sys
path, n, check, t0, t1 = sys.argv[1:]
r = json.load(open(path)) if os.path.exists(path) else {"summary": {}, "rejected": []}
s = r["summary"]
cyc = f"{s.get('cycles_before', 0):.1f}->{s.get('cycles_after', 0):.1f}"
rej = r.get("rejected", [])
print(f"{n:<16} {s.get('blocks', 0):>7} {len(r.get('rewrites', [])):>9} {len(rej) if isinstance(rej, list) else rej:>9} {cyc:>14} {check:>6} {float(t1) - float(t0):>8.1f}")
PY
done
