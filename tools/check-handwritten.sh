#!/usr/bin/env bash
# Check the hand-written assembly fixtures in fixtures/handwritten/:
# every .s assembles with aarch64-linux-gnu-as, every .S does after
# `aarch64-linux-gnu-gcc -E`; then all of them link with driver.c and the
# program's output under qemu-aarch64 must equal driver.expected.
#
# Usage: tools/check-handwritten.sh [--update]   (--update rewrites
# driver.expected from this run instead of comparing)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/fixtures/handwritten
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
objs=()

for f in "$dir"/*.s "$dir"/*.S; do
    [ -e "$f" ] || continue
    base=$(basename "$f")
    in=$f
    if [[ $f == *.S ]]; then
        in=$work/${base%.S}.i.s
        if ! aarch64-linux-gnu-gcc -E -P -x assembler-with-cpp -I "$dir" "$f" -o "$in"; then
            echo "FAIL: $base does not preprocess" >&2
            fail=1
            continue
        fi
    fi
    obj=$work/${base%.*}.o
    if aarch64-linux-gnu-as "$in" -o "$obj"; then
        echo "ok: $base assembles"
        objs+=("$obj")
    else
        echo "FAIL: $base does not assemble" >&2
        fail=1
    fi
done

if [ $fail -eq 0 ]; then
    aarch64-linux-gnu-gcc -O1 "$dir/driver.c" "${objs[@]}" -o "$work/driver"
    out=$(qemu-aarch64 -L /usr/aarch64-linux-gnu "$work/driver")
    if [ "${1:-}" = "--update" ]; then
        printf '%s\n' "$out" >"$dir/driver.expected"
        echo "wrote driver.expected"
    elif [ "$out" != "$(cat "$dir/driver.expected")" ]; then
        echo "FAIL: driver output differs from driver.expected:" >&2
        diff "$dir/driver.expected" <(printf '%s\n' "$out") >&2 || true
        fail=1
    else
        echo "ok: driver output matches"
    fi
fi
exit $fail
