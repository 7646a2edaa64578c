#!/usr/bin/env bash
# The exact commands behind the Sample Factory vs SB3 throughput numbers in docs/performance.md.
set -euo pipefail
# 1) SF's own sampling defaults (double-buffered: --worker_num_splits 2, 2 envs per worker), 1/2/4 workers,
#    SB3 with 1 and 2 torch threads -> benchmarks/results/bench_sample_factory.json
python benchmarks/bench_sample_factory.py --steps 1024 --workers 1,2,4 --envs_per_worker 2 --sb3_envs 4 \
    --sb3_steps 384 --sb3_threads 1,2 --seed 0
# 2) the plug-in's defaults (--worker_num_splits 1, 4 envs per worker), 1/2 workers, SB3 1 thread
#    -> benchmarks/results/bench_sample_factory_splits1.json
python benchmarks/bench_sample_factory.py --steps 1024 --workers 1,2 --envs_per_worker 4 \
    --sf_extra "--worker_num_splits 1" --sb3_envs 4 --sb3_steps 384 --sb3_threads 1 --serial 1 --seed 0 \
    --out benchmarks/results/bench_sample_factory_splits1.json
