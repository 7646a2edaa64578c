#!/usr/bin/env bash
# The exact command behind the action-mapping numbers in docs/performance.md.
set -euo pipefail
OMP_NUM_THREADS=1 python benchmarks/bench_actions.py --n 5000 --repeats 5 --seed 0
