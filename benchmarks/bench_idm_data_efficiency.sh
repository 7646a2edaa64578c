#!/bin/sh
# The command behind README.md's IDM-quality and data-efficiency numbers (2-core CPU shared with the
# pipeline benchmark, no GPU). Recordings are reused when present.
OMP_NUM_THREADS=1 python benchmarks/bench_idm_data_efficiency.py --sizes-min 2 5 20 --heldout-min 2 \
    --episode-ticks 600 --idm-preset micro_idm --idm-steps 800 --idm-batch 2 --idm-seq-len 32 --idm-lr 1e-3 \
    --bc-preset micro --bc-steps 800 --bc-batch 4 --bc-seq-len 16 --bc-lr 1e-3 --ablate-prior false
