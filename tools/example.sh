#!/usr/bin/env bash
# Set up, then run the main job on a shipped example and show what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
exec target/release/peephole opt fixtures/examples/sum.s --diff "$@"
