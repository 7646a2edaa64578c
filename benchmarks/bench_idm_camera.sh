#!/bin/sh
# The commands behind docs/idm.md's IDM camera numbers (2-core CPU, no GPU, one torch
# thread per run, two to three runs sharing the cores; 2026-12-02): the motion-trunk IDM and the plain
# micro_idm at the same budget (1000 steps x 2 windows x 32 frames, lr 1e-3), trained on 32 contractor-like
# episodes of 1500 ticks (the pipeline's small-preset labelled split) and scored on 4 held-out contractor-
# like and 4 held-out plain-expert episodes (world seeds 920-923 and 970-973, never trained on).
# Recordings and finished runs are reused when present; each design merges into results/idm_camera.json.
# (The 2026-12-02 numbers were made with --data-dir and --out-dir pointing at a scratch folder; recordings
# are deterministic per world seed, so the defaults record the same episodes.)
OMP_NUM_THREADS=1 python benchmarks/bench_idm_camera.py --designs micro_idm_motion \
    --train-episodes 32 --episode-ticks 1500 --heldout-episodes 4 --camera-noise 0.5 \
    --steps 1000 --batch 2 --seq-len 32 --lr 1e-3 --threads 1
OMP_NUM_THREADS=1 python benchmarks/bench_idm_camera.py --designs micro_idm \
    --train-episodes 32 --episode-ticks 1500 --heldout-episodes 4 --camera-noise 0.5 \
    --steps 1000 --batch 2 --seq-len 32 --lr 1e-3 --threads 1
