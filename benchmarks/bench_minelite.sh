#!/usr/bin/env bash
# The exact command behind the MineLite speed numbers in docs/performance.md.
set -euo pipefail
OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_minelite.py --steps_128 3000 --steps_640 600 \
  --crafter_steps 3000 --episode_steps 1000 --world_size 64 --seed 0
