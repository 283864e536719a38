#!/usr/bin/env bash
# Check a directory of idiom functions (fixtures/idioms/, or an optimized copy
# of it): every .s assembles with aarch64-linux-gnu-as; all but the
# flags-only flags_*.s (whose result is the condition flags, which C cannot
# see) link statically with fixtures/idioms/driver.c, and the program's output
# under qemu-aarch64 must equal fixtures/idioms/driver.expected.
#
# Usage: tools/check-idioms.sh [--update] [DIR]   (DIR defaults to
# fixtures/idioms; --update rewrites driver.expected from this run instead of
# comparing). Exit status 1 on any failure or difference.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fixtures=$root/fixtures/idioms
update=0
if [ "${1:-}" = "--update" ]; then
    update=1
    shift
fi
dir=${1:-$fixtures}
[ -d "$dir" ] || { echo "usage: $0 [--update] [DIR]" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
objs=()
n=0

for f in "$dir"/*.s; do
    [ -e "$f" ] || continue
    base=$(basename "$f" .s)
    obj=$work/$base.o
    if aarch64-linux-gnu-as "$f" -o "$obj"; then
        n=$((n + 1))
        case $base in
            flags_*) ;;
            *) objs+=("$obj") ;;
        esac
    else
        echo "FAIL: $base.s does not assemble" >&2
        fail=1
    fi
done
echo "ok: $n files assemble"

if [ $fail -eq 0 ]; then
    if ! aarch64-linux-gnu-gcc -O1 -static "$fixtures/driver.c" "${objs[@]}" -o "$work/driver"; then
        echo "FAIL: driver does not link" >&2
        exit 1
    fi
    out=$(qemu-aarch64 "$work/driver")
    if [ $update -eq 1 ]; then
        printf '%s\n' "$out" >"$fixtures/driver.expected"
        echo "wrote driver.expected"
    elif [ "$out" != "$(cat "$fixtures/driver.expected")" ]; then
        echo "FAIL: driver output differs from driver.expected:" >&2
        diff "$fixtures/driver.expected" <(printf '%s\n' "$out") >&2 || true
        fail=1
    else
        echo "ok: driver output matches"
    fi
fi
exit $fail
