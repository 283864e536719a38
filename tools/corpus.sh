#!/usr/bin/env bash
# Generate a corpus of compiler-written AArch64 assembly from random C.
#
# Usage: tools/corpus.sh N OUTDIR
#
# Makes N csmith programs (seeds SEED_BASE .. SEED_BASE+N-1; SEED_BASE
# defaults to 1, so a corpus is reproducible) in OUTDIR/c/, and compiles each
# with aarch64-linux-gnu-gcc and clang at -O0..-O3 to
# OUTDIR/<gcc|clang>-<O0|O1|O2|O3>/prog<seed>.s. Work runs in parallel on
# all cores (JOBS overrides). Extra csmith options come from CSMITH_OPTS.
# Compilations that fail are listed in OUTDIR/failures.txt; the corpus is
# not meant to be committed.
set -euo pipefail

if [ $# -ne 2 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 N OUTDIR" >&2
    exit 2
fi
n=$1
out=$2
base=${SEED_BASE:-1}
jobs=${JOBS:-$(nproc)}
csmith_inc=${CSMITH_INC:-/usr/include/csmith}
sysroot=/usr/aarch64-linux-gnu
export out csmith_inc sysroot
export CSMITH_OPTS=${CSMITH_OPTS:-}

for tool in csmith aarch64-linux-gnu-gcc clang; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 2; }
done
mkdir -p "$out/c"
for cc in gcc clang; do
    for lvl in O0 O1 O2 O3; do
        mkdir -p "$out/$cc-$lvl"
    done
done
: >"$out/failures.txt"

one() { # seed
    local seed=$1 c=$out/c/prog$1.c
    # shellcheck disable=SC2086
    csmith --seed "$seed" $CSMITH_OPTS -o "$c" >/dev/null 2>&1 || { echo "csmith seed $seed" >>"$out/failures.txt"; return 0; }
    for lvl in O0 O1 O2 O3; do
        aarch64-linux-gnu-gcc -w -"$lvl" -I"$csmith_inc" -S "$c" -o "$out/gcc-$lvl/prog$seed.s" 2>/dev/null ||
            echo "gcc -$lvl seed $seed" >>"$out/failures.txt"
        clang --target=aarch64-linux-gnu --sysroot="$sysroot" -fno-addrsig -w -"$lvl" -I"$csmith_inc" \
            -S "$c" -o "$out/clang-$lvl/prog$seed.s" 2>/dev/null ||
            echo "clang -$lvl seed $seed" >>"$out/failures.txt"
    done
}
export -f one

start=$(date +%s)
seq "$base" $((base + n - 1)) | xargs -P "$jobs" -I{} bash -c 'one {}'
files=$(find "$out" -name '*.s' | wc -l)
fails=$(wc -l <"$out/failures.txt")
echo "corpus: $n programs, $files .s files, $fails failures, $(($(date +%s) - start)) s, in $out"
