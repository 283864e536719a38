#!/usr/bin/env bash
# Set up, then run the whole test suite: formatting, lints, unit and integration tests.
# Everything runs in the release profile so the one build made by setup.sh (llama.cpp,
# Unicorn bindings, capstone) is reused rather than compiled again for debug.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cargo fmt --check
cargo clippy --release --locked --all-targets -- -D warnings
# Tests must not depend on a cache left by earlier runs.
PEEPHOLE_CACHE_DIR="$(mktemp -d)" cargo test --release --locked
