#!/bin/sh
# The command behind the loader numbers in docs/performance.md (2-core shared CPU, no GPU).
OMP_NUM_THREADS=1 python benchmarks/bench_loader.py --n-segments 8 --segment-frames 600 --batch-size 4 --seq-len 32 --workers 0 1 2
