#!/usr/bin/env bash
# Benchmark `peephole check` as a pre-commit hook sees it, on one ~2,000-line
# .s file built by concatenating gcc -O0 fixture files (every label renamed
# per file so that symbols do not clash):
#   cold   check --all, empty result cache (fresh PEEPHOLE_CACHE_DIR each run)
#   warm   check --all again on the unchanged file, same cache dir
#   hook   check --staged in a git repo where the file is committed and
#          unchanged (only changed functions are analysed: nothing to do)
# Prints the median of RUNS runs (default 5) of each, in seconds.
#
# Usage: tools/bench-check.sh [RUNS] [-- extra check flags, e.g. --tests 200]
# Env: PEEPHOLE (binary; default: build and use target/release/peephole),
#      LINES (target size, default 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RUNS=5
if [ $# -gt 0 ] && [ "$1" != "--" ]; then RUNS=$1; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi
EXTRA=("$@")
LINES=${LINES:-2000}

if [ -z "${PEEPHOLE:-}" ]; then
  cargo build --release --locked -q
  PEEPHOLE=$ROOT/${CARGO_TARGET_DIR:-target}/release/peephole
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FILE=$WORK/repo/big.s
mkdir -p "$WORK/repo"

# Concatenate fixtures until LINES, suffixing every label defined in a file
# (functions, data, .L labels) with _<n> everywhere in that file.
n=0
: >"$FILE"
while [ "$(wc -l <"$FILE")" -lt "$LINES" ]; do
  for f in fixtures/asm/gcc-O0/*.s fixtures/asm/gcc-O0/multi/*.s; do
    [ "$(wc -l <"$FILE")" -lt "$LINES" ] || break
    n=$((n + 1))
    labels=$(grep -oE '^[A-Za-z_.$][A-Za-z0-9_.$]*:' "$f" | tr -d ':' | sort -u | tr '\n' ' ')
    LABELS="$labels" N=$n perl -pe '
      BEGIN { %l = map { $_ => 1 } split " ", $ENV{LABELS}; }
      next if /^\s*\.(file|ident|section\s+\.note)/;
      s/(?<![A-Za-z0-9_.\$])([A-Za-z_.\$][A-Za-z0-9_.\$]*)(?![A-Za-z0-9_.\$])/exists $l{$1} ? "$1_$ENV{N}" : $1/ge;
    ' < <(grep -vE '^\s*\.(file|ident)\b' "$f") >>"$FILE"
  done
done
echo "file: $(wc -l <"$FILE") lines from $n fixture files; binary: $PEEPHOLE; runs: $RUNS; extra flags: ${EXTRA[*]:-(none)}" >&2

# One timed run: prints seconds; the exit code of check (0/1) is expected,
# anything else aborts.
timed() {
  local start end rc=0
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$WORK/err" || rc=$?
  end=$(date +%s.%N)
  if [ "$rc" -gt 1 ]; then
    cat "$WORK/err" >&2
    exit 1
  fi
  echo "$end - $start" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
minmax() { sort -n | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.3f-%.3f", lo, hi}'; }

cd "$WORK/repo"
check=("$PEEPHOLE" check --all "${EXTRA[@]}" big.s)

cold=()
for _ in $(seq "$RUNS"); do
  dir=$(mktemp -d "$WORK/cache.XXXX")
  cold+=("$(PEEPHOLE_CACHE_DIR=$dir timed "${check[@]}")")
done
WARM_DIR=$WORK/cache-warm
mkdir -p "$WARM_DIR"
PEEPHOLE_CACHE_DIR=$WARM_DIR timed "${check[@]}" >/dev/null # fill the cache
warm=()
for _ in $(seq "$RUNS"); do
  warm+=("$(PEEPHOLE_CACHE_DIR=$WARM_DIR timed "${check[@]}")")
done
git init -q . && git -c user.name=b -c user.email=b@b.invalid commit -q --allow-empty -m init
git add big.s && git -c user.name=b -c user.email=b@b.invalid commit -q -m big
hook=()
for _ in $(seq "$RUNS"); do
  dir=$(mktemp -d "$WORK/cache.XXXX")
  hook+=("$(PEEPHOLE_CACHE_DIR=$dir timed "$PEEPHOLE" check --staged "${EXTRA[@]}" big.s)")
done
# Did the cold run find anything? (for the record)
found=$(PEEPHOLE_CACHE_DIR=$WARM_DIR "${check[@]}" 2>/dev/null | grep -c 'verified improvement' || true)

printf '%-58s %10s %16s\n' "case (${RUNS} runs)" "median s" "min-max s"
printf '%-58s %10s %16s\n' "cold: check --all, empty cache" \
  "$(printf '%s\n' "${cold[@]}" | median)" "$(printf '%s\n' "${cold[@]}" | minmax)"
printf '%-58s %10s %16s\n' "warm: check --all, unchanged file, same cache" \
  "$(printf '%s\n' "${warm[@]}" | median)" "$(printf '%s\n' "${warm[@]}" | minmax)"
printf '%-58s %10s %16s\n' "hook: check --staged, committed unchanged file" \
  "$(printf '%s\n' "${hook[@]}" | median)" "$(printf '%s\n' "${hook[@]}" | minmax)"
echo "(files with verified improvements reported: $found)"
