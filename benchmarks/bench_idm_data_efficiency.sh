#!/bin/sh
# The command behind docs/sections/idm_bc.md's IDM-quality and data-efficiency numbers
# (2-core shared CPU, no GPU; about 30-40 min there).
OMP_NUM_THREADS=1 python benchmarks/bench_idm_data_efficiency.py --sizes-min 0.5 1 2 4 --heldout-min 1 \
    --episode-ticks 600 --idm-preset micro_idm --idm-steps 60 --bc-preset micro --bc-steps 100
