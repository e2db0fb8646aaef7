#!/usr/bin/env bash
# HF against vLLM, one command: generation (bench/generation.py), GRPO steps (bench/grpo_vs_trl.py) and serving
# (bench/serve_load.py), in sequence, on this machine; JSON per part and summary.md in one results folder.
#
#   bench/vllm_suite.sh            # the recorded sizes: about 25 min on 2 idle cores
#   bench/vllm_suite.sh --quick    # a smoke test of every contender at toy sizes (start-ups dominate)
#
# PYTHON (default .venv/bin/python) runs everything; OUT (default bench/results/vllm-suite-<date>[-quick]) is the
# folder. A part that fails is reported in summary.md and makes the exit status 1; the other parts still run.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
quick=0
[ "${1:-}" = "--quick" ] && quick=1
suffix=$([ $quick = 1 ] && echo "-quick" || echo "")
OUT=${OUT:-bench/results/vllm-suite-$(date -u +%Y-%m-%d)$suffix}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if [ $quick = 1 ]; then
  gen=(--prompts 4 --max-new-tokens 8 --batch-size 2 --timeout 600)
  grpo=(--prompts 1 --num-generations 2 --max-new-tokens 8 --steps 1 --timeout 900)
  serve=(--requests 4 --clients 2 --max-tokens 8 --max-batch 2 --no-calibration)
else
  gen=(--prompts 48 --max-new-tokens 48 --batch-size 16)
  grpo=(--prompts 2 --num-generations 4 --max-new-tokens 32 --steps 8)
  serve=(--requests 32 --clients 8 --max-tokens 32 --max-batch 8)
fi

"$PY" bench/suite_summary.py --stamp "$OUT/machine-start.json"
status=0
run() {  # name, then the command; its output goes to the terminal and to $OUT/<name>.log
  local name=$1
  shift
  echo "== $name: $* ($(uptime | sed 's/.*load/load/'))"
  local started=$SECONDS
  "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "$name $rc $((SECONDS - started))" >>"$OUT/parts.txt"
  [ "$rc" = 0 ] || status=1
}
: >"$OUT/parts.txt"
run generation "$PY" bench/generation.py --contenders vllm-suite "${gen[@]}" --out "$OUT/generation.json"
run grpo "$PY" bench/grpo_vs_trl.py --contenders vllm-suite "${grpo[@]}" --out "$OUT/grpo.json"
run serve "$PY" bench/serve_load.py --backends hf,vllm "${serve[@]}" --out "$OUT/serve.json"
"$PY" bench/suite_summary.py "$OUT" | tee "$OUT/summary.md"
exit $status
