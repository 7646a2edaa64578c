#!/usr/bin/env bash
# The exact command behind benchmarks/results/filter.json and filter.png (docs/experiments/2026-12-02-filter.md):
# 40 web-like training episodes and 16 held-out ones (other world seeds), 600 ticks each, 4,000 labelled frames,
# the small CNN (width 16, 900 steps), one torch thread.
set -euo pipefail
export OMP_NUM_THREADS=1
python benchmarks/bench_filter.py --train-episodes 40 --heldout-episodes 16 --ticks 600 --frames 4000 --steps 900 --width 16
