#!/usr/bin/env bash
# The exact commands behind the SB3 numbers in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
python benchmarks/bench_sb3.py --configs foundation-model-1x,tiny --n-envs 2 --n-steps 32 --chunk-len 16 --iters 2
python benchmarks/bench_sb3.py --configs foundation-model-1x --n-envs 2 --n-steps 32 --chunk-len 16 \
    --freeze-cnn --bf16 --skip-baseline --out benchmarks/results/bench_sb3_1x_frozen_bf16.json
