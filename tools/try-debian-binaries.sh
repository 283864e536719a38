#!/usr/bin/env bash
# Fetch and unpack Debian arm64 builds of gzip and zstd (with their shared
# libraries) and check that each binary runs under qemu-aarch64. This is the
# input side of the distribution-binary trial; the optimize step is added
# where marked once the CLI accepts ELF input.
#
# Usage: tools/try-debian-binaries.sh [WORKDIR]   (needs root for dpkg/apt)
set -euo pipefail

work=${1:-$(mktemp -d /tmp/peephole-debian.XXXXXX)}
mkdir -p "$work/debs" "$work/root"
cd "$work/debs"

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
apt-get update -qq

# Binaries and the libraries they load (zstd: libzstd1; the lz4/lzma
# variants of zstd's multi-format build as well).
pkgs=(gzip:arm64 zstd:arm64 libzstd1:arm64 liblzma5:arm64 liblz4-1:arm64 zlib1g:arm64)
apt-get download "${pkgs[@]}"
for d in ./*.deb; do
    dpkg -x "$d" "$work/root"
done

libs="$work/root:/usr/aarch64-linux-gnu"
export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
export LD_LIBRARY_PATH_ARM64="$work/root/lib/aarch64-linux-gnu:$work/root/usr/lib/aarch64-linux-gnu"

run() {
    # qemu's -L is one prefix; the Debian libraries are added to the guest's
    # library path so the unpacked libzstd is found next to the system libc.
    qemu-aarch64 -L /usr/aarch64-linux-gnu \
        -E "LD_LIBRARY_PATH=$LD_LIBRARY_PATH_ARM64" "$@"
}

status=0
input="$work/input.txt"
seq 1 20000 > "$input"
for bin in "$work/root/bin/gzip" "$work/root/usr/bin/gzip" "$work/root/usr/bin/zstd"; do
    [ -x "$bin" ] || continue
    echo "== $bin"
    file "$bin" 2>/dev/null || true
    # Round trip through the original binary.
    # (The lead's optimize step goes here: peephole opt "$bin" -o "$bin.opt",
    #  then the same round trip through "$bin.opt".)
    if run "$bin" -c < "$input" | run "$bin" -dc | cmp -s - "$input"; then
        echo "   round trip OK"
    else
        echo "   round trip FAILED"
        status=1
    fi
done
echo "unpacked under $work/root (library path: $libs)"
exit $status
