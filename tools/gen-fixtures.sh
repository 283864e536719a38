#!/usr/bin/env bash
# Regenerate fixtures/asm/ from fixtures/c/ and check every result.
#
# Every program in fixtures/c/ (a single NAME.c, or a folder NAME/ whose .c
# files link together) is compiled to assembly with GCC and Clang at -O0,
# -O1, -O2 and -Os into fixtures/asm/<gcc|clang>-<level>/NAME.s (or
# NAME/<file>.s for a folder). Each set is then assembled, linked and run
# under qemu-aarch64; all outputs must agree with each other, and are
# written to fixtures/c/NAME.expected (from gcc -O0). Exits non-zero, naming
# the culprit, on any failure.
#
# Usage: tools/gen-fixtures.sh            (from anywhere)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/fixtures/c
dst=$root/fixtures/asm
sysroot=/usr/aarch64-linux-gnu
qemu=(qemu-aarch64 -L "$sysroot")
levels=(O0 O1 O2 Os)
compilers=(gcc clang)

compile() { # compiler level in.c out.s
    local cc=$1 lvl=$2 in=$3 out=$4
    # Compile from the source folder so that no absolute path lands in .file.
    case $cc in
    gcc) (cd "$(dirname "$in")" && aarch64-linux-gnu-gcc -"$lvl" -S "$(basename "$in")" -o "$out") ;;
    clang) (cd "$(dirname "$in")" && clang --target=aarch64-linux-gnu --sysroot="$sysroot" \
        -fno-addrsig -"$lvl" -S "$(basename "$in")" -o "$out") ;;
    esac
}

programs=()
for p in "$src"/*.c "$src"/*/; do
    [ -e "$p" ] || continue
    p=${p%/}
    programs+=("$(basename "${p%.c}")")
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

for name in "${programs[@]}"; do
    expected=""
    for cc in "${compilers[@]}"; do
        for lvl in "${levels[@]}"; do
            set_dir=$dst/$cc-$lvl
            mkdir -p "$set_dir"
            if [ -d "$src/$name" ]; then
                mkdir -p "$set_dir/$name"
                rm -f "$set_dir/$name"/*.s
                for c in "$src/$name"/*.c; do
                    compile "$cc" "$lvl" "$c" "$set_dir/$name/$(basename "${c%.c}").s"
                done
                asm=("$set_dir/$name"/*.s)
            else
                compile "$cc" "$lvl" "$src/$name.c" "$set_dir/$name.s"
                asm=("$set_dir/$name.s")
            fi
            exe=$work/$name-$cc-$lvl
            if ! aarch64-linux-gnu-gcc "${asm[@]}" -o "$exe"; then
                echo "FAIL: $cc-$lvl/$name does not assemble and link" >&2
                fail=1
                continue
            fi
            if ! out=$("${qemu[@]}" "$exe"); then
                echo "FAIL: $cc-$lvl/$name exits non-zero" >&2
                fail=1
                continue
            fi
            if [ -z "$expected" ]; then
                expected=$out
                printf '%s\n' "$out" >"$src/$name.expected"
            elif [ "$out" != "$expected" ]; then
                echo "FAIL: $cc-$lvl/$name output differs from gcc-O0:" >&2
                diff <(printf '%s\n' "$expected") <(printf '%s\n' "$out") >&2 || true
                fail=1
            fi
        done
    done
    echo "ok: $name"
done
exit $fail
