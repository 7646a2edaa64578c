#!/usr/bin/env bash
# The exact commands behind the inference numbers in docs/performance.md.
set -euo pipefail
# main table: 1x policy steps (batch 1 and 8) and a 128-frame chunk
OMP_NUM_THREADS=1 python benchmarks/bench_inference.py --threads 1 --steps 32 --warmup 3 --chunk 128 \
    --cases step1,step8,chunk --impls baseline,fast,winograd --seed 0 --out benchmarks/results/inference.json
# the 4x IDM on a 16-frame window (extrapolated to 128 frames)
OMP_NUM_THREADS=1 python benchmarks/bench_inference.py --threads 1 --idm-frames 16 --cases idm --impls baseline,fast,exact \
    --seed 0 --out benchmarks/results/inference_idm16.json
# the IDM on the official 128-frame window (slow: minutes; peak memory several GB for the baseline)
OMP_NUM_THREADS=1 python benchmarks/bench_inference.py --threads 1 --idm-frames 128 --cases idm --impls baseline,fast \
    --seed 0 --out benchmarks/results/inference_idm128.json
