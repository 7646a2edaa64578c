#!/usr/bin/env bash
# The exact command behind benchmarks/results/filter.json and filter.png (docs/experiments/2026-12-02-filter.md):
# 160 web-like training episodes and 16 held-out ones (other world seeds), 600 ticks each, 8,800 labelled frames
# (the paper's count), the small CNN (width 16, 1,500 steps), one torch thread.
set -euo pipefail
export OMP_NUM_THREADS=1
python benchmarks/bench_filter.py --out benchmarks/out/filter160 --train-episodes 160 --heldout-episodes 16 --ticks 600 \
    --frames 8800 --steps 1500 --width 16
