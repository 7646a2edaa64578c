#!/usr/bin/env bash
# The exact command behind the random-init vs pretrained numbers in docs/experiments/2026-12-02-pipeline-small.md.
set -euo pipefail
export OMP_NUM_THREADS=1
python benchmarks/bench_rl_comparison.py --preset small --seed 0 --threads 1 --fresh
# the same run with the optional early-game fine-tuning stage (reuses record..bc from a copy of the run above):
#   cp -al benchmarks/out/rl_comparison-small benchmarks/out/rl_comparison-small-ft  (then remove its rl/, eval/)
#   python benchmarks/bench_rl_comparison.py --preset small --seed 0 --threads 1 \
#       --out benchmarks/out/rl_comparison-small-ft --set ft_steps=500 --name rl_comparison_finetune
