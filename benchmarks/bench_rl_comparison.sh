#!/usr/bin/env bash
# The exact command behind the random-init vs pretrained numbers in docs/experiments/2026-12-02-pipeline-small.md.
set -euo pipefail
export OMP_NUM_THREADS=1
python benchmarks/bench_rl_comparison.py --preset small --seed 0 --threads 1 --fresh
