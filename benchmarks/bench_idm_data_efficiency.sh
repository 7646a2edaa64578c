#!/bin/sh
# The command behind README.md's IDM-quality and data-efficiency numbers
# (2-core CPU shared with other jobs, no GPU; 16.5 min there, with the no-prior-init ablation). Recordings are reused when present.
OMP_NUM_THREADS=1 python benchmarks/bench_idm_data_efficiency.py --sizes-min 1 2 4 --heldout-min 1 \
    --episode-ticks 600 --idm-preset micro_idm --idm-steps 180 --idm-batch 2 --idm-seq-len 32 --idm-lr 1e-3 \
    --bc-preset micro --bc-steps 200 --bc-batch 2 --bc-seq-len 16 --bc-lr 1e-3
