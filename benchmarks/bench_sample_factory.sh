#!/usr/bin/env bash
# The exact command behind the Sample Factory vs SB3 throughput numbers in docs/sections/sample_factory.md.
set -euo pipefail
python benchmarks/bench_sample_factory.py --steps 1024 --workers 1,2,4 --sb3_envs 4 --sb3_steps 384 --sb3_threads 1,2 --seed 0
