#!/usr/bin/env bash
# What the superoptimizer (and the LLM) add on compiled code: for every
# fixture program of every gcc/clang -O0/-O1/-O2/-Os set, `peephole opt` with
# `--propose rules` and with `--propose rules,synth` (both `--abi c`, compiler
# output), the optimized program linked and run under qemu-aarch64 against the
# program's expected output. Prints a markdown table: rewrites (those of synth
# and of the LLM, its repaired answers included), estimated cycles saved, and
# whether every program still behaves identically. Each LLM rewrite is
# printed to stderr (window before and after).
#
# Usage: tools/synth-fixtures.sh [CONFIG...]   (default: all eight sets)
# Extra opt flags via PEEPHOLE_OPT_FLAGS (e.g. "--synth-budget 500"); other
# proposer sets via PEEPHOLE_PROPOSER_SETS (default "rules rules,synth"; the
# default run with the LLM: "rules,synth rules,synth,llm").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release/peephole
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(gcc-O0 gcc-O1 gcc-O2 gcc-Os clang-O0 clang-O1 clang-O2 clang-Os)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PEEPHOLE_CACHE_DIR=$work/cache
status=0
read -r -a sets <<< "${PEEPHOLE_PROPOSER_SETS:-rules rules,synth}"
echo "| set | proposers | rewrites | synth rewrites | LLM rewrites | est. cycles saved | programs identical | seconds |"
echo "|---|---|---|---|---|---|---|---|"
for config in "${configs[@]}"; do
  for props in "${sets[@]}"; do
    rewrites=0 synth=0 llm=0 saved=0 same=0 total=0
    start=$(date +%s.%N)
    for prog in "$root"/fixtures/asm/$config/*; do
      name=$(basename "$prog" .s)
      files=("$prog")
      [ -d "$prog" ] && files=("$prog"/*.s)
      out=$work/$config-$props-$name
      mkdir -p "$out"
      for f in "${files[@]}"; do
        # shellcheck disable=SC2086
        "$bin" opt "$f" --propose "$props" --abi c --tests 300 ${PEEPHOLE_OPT_FLAGS:-} \
          -o "$out/$(basename "$f")" --report "$out/$(basename "$f").json" 2>/dev/null
        read -r n s l c < <(python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
w=r['rewrites']
for x in w:
    if x['proposer'].startswith('llm'):
        print('LLM rewrite (' + x['proposer'] + ') in', sys.argv[2], 'lines', x['lines'], ':', '; '.join(x['before']), '=>', '; '.join(x['after']), file=sys.stderr)
print(len(w), sum(1 for x in w if x['proposer']=='synth'),
      sum(1 for x in w if x['proposer'].startswith('llm')),
      sum(x['cycles_before']-x['cycles_after'] for x in w))" "$out/$(basename "$f").json" "$config/$name/$(basename "$f")")
        rewrites=$((rewrites + n)); synth=$((synth + s)); llm=$((llm + l)); saved=$(echo "$saved + $c" | bc)
      done
      total=$((total + 1))
      aarch64-linux-gnu-gcc -static "$out"/*.s -lm -o "$out/prog"
      if qemu-aarch64 "$out/prog" | cmp -s - "$root/fixtures/c/$name.expected"; then
        same=$((same + 1))
      else
        echo "DIFFERENT: $config/$name with $props" >&2
        status=1
      fi
    done
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    printf "| %s | %s | %d | %d | %d | %.1f | %d of %d | %.0f |\n" \
      "$config" "$props" "$rewrites" "$synth" "$llm" "$saved" "$same" "$total" "$secs"
  done
done
exit $status
