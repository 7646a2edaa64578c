#!/usr/bin/env bash
# The GPU check (docs/scale-out.md, "GPU check"): run it on ONE GPU (e.g. CUDA_VISIBLE_DEVICES=0); under 8 minutes on
# an H200-class GPU with 16 CPU cores. Writes benchmarks/results/gpu_{fixtures,train_steps,throughput}.json (and
# gpu_official.json with --official) and prints a table; exit code 1 if any case failed (its error is in the JSON).
#   benchmarks/gpu_check.sh                              # vpt-rl only
#   benchmarks/gpu_check.sh --official ~/Video-Pre-Training   # also time the official code (needs its deps, gym3)
# The CPU smoke version (tests/test_gpu_check.py): python benchmarks/gpu_check.py --device cpu --quick --out-dir DIR
set -euo pipefail
cd "$(dirname "$0")/.."
OMP_NUM_THREADS=1 timeout --signal=INT --kill-after=30 480 python benchmarks/gpu_check.py --device cuda "$@"
