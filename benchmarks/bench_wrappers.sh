#!/usr/bin/env bash
# The exact command behind the wrapper-cost numbers in docs/performance.md.
set -euo pipefail
OMP_NUM_THREADS=1 python benchmarks/bench_wrappers.py --steps 300 --repeats 5 --seed 0
