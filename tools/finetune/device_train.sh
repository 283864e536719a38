#!/usr/bin/env bash
# Runs ON the GPU (device) machine, from the repository root of the copy that `run` makes there.
# See tools/finetune/README.md for the whole procedure (staging on this side, the two calls).
#
#   bash .device/ft/device_train.sh stage   # copy the files carried in .device/stage*/ to $STAGE_DIR, stop
#   bash .device/ft/device_train.sh         # stage, install gguf, join + check the base, then
#                                           # train -> export -> verify -> sample, results to $OUT
#
# Carried inputs: .device/ft/ (these scripts), .device/stage1/ or .device/stage2/ (the two halves
# of the base GGUF, named SmolLM2-135M-Instruct.Q4_1.gguf.part-aa / -ab, and the dataset, named
# data.jsonl or data.jsonl.gz, in either), .whl/gguf-*.whl.
# Environment knobs (all optional):
#   TRAIN_ARGS   extra train.py flags, e.g. "--steps 300 --batch-size 32 --lr 2e-4 --max-len 512"
#   SAMPLE_ARGS  extra sample.py flags (default "--limit 200 --max-new-tokens 256")
#   NAME         output adapter name (default peephole-lora -> $OUT/peephole-lora.gguf)
#   DETERMINISM_CHECK=1  train a second time with the same seed and compare losses and weights
#   EVAL_ARGS    sample.py flags for the staged eval-<row>.jsonl files (default "--max-new-tokens 384")
# Results in $OUT: $NAME.gguf, train_metrics.json, samples.jsonl, verify.json, adapter_config.json,
# device.log (and determinism.json).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
STAGE_DIR=${STAGE_DIR:-/tmp/peephole-stage}
BASE_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
BASE_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
OUT=${OUT:-/tmp/peephole-out}
NAME=${NAME:-peephole-lora}
mkdir -p "$STAGE_DIR" "$OUT"

shopt -s nullglob
for f in .device/stage*/*; do
  cp "$f" "$STAGE_DIR/"
  echo "staged $(basename "$f") ($(stat -c %s "$f") bytes)"
done
if [ "${1:-all}" = stage ]; then
  ls -l "$STAGE_DIR"
  exit 0
fi

exec > >(tee "$OUT/device.log") 2>&1
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
T0=$(date +%s)

# gguf (pure Python) from the carried wheel
wheels=(${WHEELS:-.whl}/gguf-*.whl)
[ ${#wheels[@]} -ge 1 ] || { echo "no gguf wheel in ${WHEELS:-.whl}/" >&2; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${wheels[@]}"
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}

# base model: join the halves once, check the sha256
BASE=$STAGE_DIR/$BASE_NAME
if [ ! -f "$BASE" ]; then
  parts=("$STAGE_DIR/$BASE_NAME".part-*)
  [ ${#parts[@]} -ge 2 ] || { echo "base parts missing in $STAGE_DIR (machine went cold? start over with call 1)" >&2; ls -l "$STAGE_DIR" >&2; exit 3; }
  cat "${parts[@]}" > "$BASE.tmp"
  mv "$BASE.tmp" "$BASE"
  rm -f "${parts[@]}"
fi
got=$(sha256sum "$BASE" | cut -d' ' -f1)
if [ "$got" != "$BASE_SHA256" ]; then
  echo "base sha256 mismatch: $got" >&2
  rm -f "$BASE"
  exit 3
fi
echo "base OK: $BASE ($(stat -c %s "$BASE") bytes, sha256 $got)"

DATA=${DATA:-}
if [ -z "$DATA" ]; then
  for c in "$STAGE_DIR/data.jsonl" "$STAGE_DIR/data.jsonl.gz"; do [ -f "$c" ] && DATA=$c && break; done
fi
[ -n "$DATA" ] || { echo "no data.jsonl(.gz) staged" >&2; exit 4; }
echo "data: $DATA ($(stat -c %s "$DATA") bytes)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c 'import importlib.metadata as m; print(*(f"{p} {m.version(p)}" for p in ("torch", "transformers", "peft", "gguf")))'

# training's Q4_0 fake quantization (train.py --qat) must round exactly as ggml does
python3 "$HERE/check_qat.py" --base "$BASE"

CACHE=${CACHE:-/tmp/peephole-basecache}
RUN=${RUN:-/tmp/peephole-run}
rm -rf "$RUN"
# shellcheck disable=SC2086
python3 "$HERE/train.py" --data "$DATA" --base "$BASE" --cache "$CACHE" --out "$RUN" ${TRAIN_ARGS:-}
python3 "$HERE/export_lora_gguf.py" --adapter "$RUN/adapter" --base "$BASE" --out "$OUT/$NAME.gguf" --name "$NAME"
python3 "$HERE/verify_export.py" "$OUT/$NAME.gguf" --base "$BASE" --adapter "$RUN/adapter" --numeric-base \
  --cache "$CACHE" --report "$OUT/verify.json"
# shellcheck disable=SC2086
python3 "$HERE/sample.py" --data "$DATA" --base "$BASE" --cache "$CACHE" --adapter "$RUN/adapter" \
  --out "$OUT/samples.jsonl" ${SAMPLE_ARGS:---limit 200 --max-new-tokens 256}
cp "$RUN/train_metrics.json" "$RUN/adapter/adapter_config.json" "$OUT/"

# Evaluation completions (optional): every staged eval-<row>.jsonl is decoded
# greedily, rows named base-* without the adapter, the others with it; all go
# to $OUT/evals.jsonl with their row name and the row's wall time, for
# `peephole eval --answers` to score here.
: > "$OUT/evals.jsonl"
for f in "$STAGE_DIR"/eval-*.jsonl; do
  row=$(basename "$f" .jsonl); row=${row#eval-}
  case $row in base-*) which=--no-adapter ;; *) which="--adapter $RUN/adapter" ;; esac
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  python3 "$HERE/sample.py" --data "$f" --base "$BASE" --cache "$CACHE" $which --split test \
    --out "/tmp/eval-$row.out" ${EVAL_ARGS:---max-new-tokens 384}
  t1=$(date +%s.%N)
  python3 - "$row" "/tmp/eval-$row.out" "$t0" "$t1" >> "$OUT/evals.jsonl" <<'PY'
import json, sys
row, path, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
lines = [json.loads(l) for l in open(path)]
for l in lines:
    l["row"] = row
    l["seconds"] = (t1 - t0) / max(len(lines), 1)
    print(json.dumps(l))
PY
  echo "eval row $row: $(wc -l < "/tmp/eval-$row.out") completions in $(python3 -c "print(round($t1-$t0,1))") s"
done

if [ "${DETERMINISM_CHECK:-0}" = 1 ]; then
  RUN2=/tmp/peephole-run2
  rm -rf "$RUN2"
  # shellcheck disable=SC2086
  python3 "$HERE/train.py" --data "$DATA" --base "$BASE" --cache "$CACHE" --out "$RUN2" ${TRAIN_ARGS:-} > "$RUN2.log" 2>&1
  python3 - "$RUN" "$RUN2" "$OUT/determinism.json" <<'EOF'
import hashlib, json, sys
a, b, out = sys.argv[1:]
la = json.load(open(f"{a}/train_metrics.json"))["loss"]
lb = json.load(open(f"{b}/train_metrics.json"))["loss"]
ha = hashlib.sha256(open(f"{a}/adapter/adapter_model.safetensors", "rb").read()).hexdigest()
hb = hashlib.sha256(open(f"{b}/adapter/adapter_model.safetensors", "rb").read()).hexdigest()
r = {"losses_identical": la["train"] == lb["train"] and la["valid"] == lb["valid"],
     "adapter_identical": ha == hb, "adapter_sha256": [ha, hb],
     "final_train": [la["final_train"], lb["final_train"]], "final_valid": [la["final_valid"], lb["final_valid"]]}
json.dump(r, open(out, "w"), indent=1)
print("determinism:", json.dumps(r))
EOF
fi

ls -l "$OUT"
echo "device_train.sh: done in $(( $(date +%s) - T0 )) s"
exec >&- 2>&-
wait  # let tee finish writing device.log
