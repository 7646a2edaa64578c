#!/usr/bin/env bash
# The exact command behind the "Reduced precision" numbers in docs/performance.md (issue 18): bf16 autocast on
# the CPU against fp32, on the official fixture checkpoints. On a GPU machine: --device cuda (and --precision fp16).
set -euo pipefail
OMP_NUM_THREADS=1 python benchmarks/bench_precision.py --precision bf16 --device cpu
