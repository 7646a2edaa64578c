#!/usr/bin/env bash
# The exact command behind the filtered vs unfiltered BC numbers (benchmarks/results/filter_bc.json,
# docs/experiments/2026-12-02-filter.md): the small preset with every unlabelled episode web-like.
set -euo pipefail
export OMP_NUM_THREADS=1
python benchmarks/bench_filter_bc.py --preset small --seed 0
