#!/usr/bin/env bash
# The exact command behind the observation-cost numbers in docs/performance.md (issue 16).
set -euo pipefail
OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_minelite_obs.py --steps 2000 --repeats 5 --seed 1
