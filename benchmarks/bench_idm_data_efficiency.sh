#!/bin/sh
# The command behind docs/idm.md's IDM data-efficiency numbers (2-core CPU shared with two
# or three other single-thread jobs, no GPU; 2026-12-02): the motion IDM and a micro BC policy on the same
# true labels of contractor-like recordings (--camera-noise 0.5) at 2, 5, 10 and 20 minutes of game time,
# scored on 2 held-out minutes. Recordings are reused when present. (That run used --data-dir, --out-dir and
# --results in a scratch folder, then copied the results here; recordings are deterministic per world seed.)
OMP_NUM_THREADS=1 python benchmarks/bench_idm_data_efficiency.py --sizes-min 2 5 10 20 --heldout-min 2 \
    --episode-ticks 600 --camera-noise 0.5 --idm-preset micro_idm_motion --idm-steps 500 --idm-batch 2 \
    --idm-seq-len 32 --idm-lr 1e-3 --bc-preset micro --bc-steps 500 --bc-batch 4 --bc-seq-len 16 --bc-lr 3e-4 \
    --ablate-prior false
