#!/bin/sh
# Commands of the 2026-12-02 IDM camera rounds (docs/experiments/2026-12-02-idm-camera.md). Each run wrote
# the JSON named in the comment. The code changed between runs of round A (the auxiliary loss source and the
# trunk's button logits were added one at a time); the JSON "args" hold the rest. Runs used one torch thread.
set -e
R="vpt-rl record --epsilon 0.05 --no-progress"
# round A data: 40 contractor-like training worlds of 600 ticks, 4 + 4 held-out worlds
$R --episodes 40 --seed 100 --max-ticks 600 --camera-noise 0.5 --alias contractor --out exp/train_noise
$R --episodes 4 --seed 900 --max-ticks 600 --camera-noise 0.5 --alias contractor --out exp/ho_noise
$R --episodes 4 --seed 950 --max-ticks 600 --out exp/ho_expert
mkdir -p exp/d && ln -sfn ../train_noise exp/d/train_contractor && ln -sfn ../ho_noise exp/d/heldout_contractor \
    && ln -sfn ../ho_expert exp/d/heldout_expert
A="python benchmarks/bench_idm_camera.py --data-dir exp/d --train-episodes 40 --episode-ticks 600 --train-seed 100 --heldout-seed 900"
$A --designs micro_idm --out-dir exp/runs1 --results exp/A1.json                           # A1
$A --designs micro_idm_motion --motion-aux-frames 0 --out-dir exp/runs1 --results exp/A2.json   # A2 (before the cache)
$A --designs micro_idm_motion --out-dir exp/runs2 --results exp/A3.json                    # A3 (cache, before button logits)
$A --designs micro_idm_motion --out-dir exp/runs3 --results exp/A4.json                    # A4 (= the current code)
# round B: the small preset's shape (episodes of 1500 ticks)
B="python benchmarks/bench_idm_camera.py --data-dir exp/p --train-episodes 16"
$B --designs micro_idm_motion --out-dir exp/runs4 --results exp/B1.json                    # B1
$B --designs micro_idm_motion_ctx --out-dir exp/runs5 --results exp/B2.json                # B2
python benchmarks/bench_idm_camera.py --data-dir exp/p32 --train-episodes 32 \
    --designs micro_idm_motion --out-dir exp/runs6 --results exp/B3.json                   # B3 (benchmarks/bench_idm_camera.sh)
python benchmarks/bench_idm_camera.py --data-dir exp/p32 --train-episodes 32 \
    --designs micro_idm --out-dir exp/runs6 --results exp/B3_plain.json                    # B3, plain IDM
python benchmarks/bench_idm_camera.py --data-dir exp/p32 --train-episodes 32 --steps 1500 \
    --designs micro_idm_motion --out-dir exp/runs7 --results exp/B4.json                   # B4
# error analyses (per-button errors; camera residuals by view pitch, screen, move size; worst frames)
python docs/experiments/2026-12-02-idm-camera/analyze_buttons.py exp/runs3/micro_idm_motion/idm.model exp/ho_noise exp/ho_expert
python docs/experiments/2026-12-02-idm-camera/analyze_camera.py exp/runs4/micro_idm_motion/idm.model exp/p/heldout_expert
