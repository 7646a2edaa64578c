#!/bin/sh
# The command behind results/bc_data_scaling.{json,png} (2-core CPU, no GPU, 2026-12-02, one torch thread,
# sharing the cores with one or two other jobs). The data are the pseudo-labelled videos of the small-preset
# pipeline run by bench_rl_comparison.sh (32 episodes of 1,500 ticks, labelled by its IDM): run that first,
# or at least its stages up to label. 1,200 BC steps per size (the small preset uses 2,000) to fit the session.
OMP_NUM_THREADS=1 python benchmarks/bench_bc_data_scaling.py \
    --data benchmarks/out/rl_comparison-small/data/unlabelled --sizes 8 16 30 \
    --preset mini --bc-steps 1200 --bc-lr 3e-4 --ft-steps 200 --ft-frames 500 --ft-lr 1e-4 \
    --eval-episodes 30 --eval-ticks 1500 --eval-seed 20000
