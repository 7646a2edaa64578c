#!/bin/sh
# The 2026-12-02 small-preset pipeline run behind docs/experiments/2026-12-02-pipeline-small.md's "The 2026-12-02 preset" and its
# results table (2-core CPU, no GPU, one torch thread per process, two or three jobs sharing the cores).
# It ran in three invocations into one folder; every later one skips the stages already done.
OUT=exp/pipe_small
vpt-rl pipeline --preset small --out $OUT --stages record,split,idm,label --threads 1
vpt-rl pipeline --preset small --out $OUT --stages bc --set bc_lr=3e-4 --threads 1   # = the preset's bc_lr since then
vpt-rl pipeline --preset small --out $OUT --threads 1                                # rl, eval, report
# zero-shot foundation model on 30 held-out seeds x 1500 ticks, sampled and with consistent deterministic decoding
F=$OUT/foundation/foundation
vpt-rl evaluate --agent $F.model --weights $F.weights --episodes 30 --max-ticks 1500 --seed 10000 --batch 10 \
    --out exp/eval_found_sampled.json
vpt-rl evaluate --agent $F.model --weights $F.weights --episodes 30 --max-ticks 1500 --seed 10000 --batch 10 \
    --deterministic --out exp/eval_found_det.json
