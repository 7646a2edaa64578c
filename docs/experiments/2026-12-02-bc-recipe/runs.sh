#!/bin/sh
# BC on the TRUE actions (the oracle ceiling), each scored on 30 held-out seeds x 1500 ticks, sampled actions.
# run_bc.sh NAME DATA [train-bc args] trains into runs/NAME and writes runs/NAME.eval.json.
./run_bc.sh E0_v0_micro data_v0 --preset micro --lr 3e-4 --total-steps 2000 --batch-size 4 --seq-len 16
./run_bc.sh E1_v1_micro data_v1 --preset micro --lr 3e-4 --total-steps 2000 --batch-size 4 --seq-len 16
./run_bc.sh E2_v1_mini data_v1 --preset mini --lr 3e-4 --total-steps 2000 --batch-size 4 --seq-len 16
./run_bc.sh E4_v1_mini_early500 data_v1 --preset mini --lr 3e-4 --total-steps 2000 --batch-size 4 --seq-len 16 \
    --max-segment-frames 500
./run_bc.sh E5_v2_mini data_v2 --preset mini --lr 3e-4 --total-steps 2000 --batch-size 4 --seq-len 16
./run_bc.sh E6_v3_mini data_v3 --preset mini --lr 3e-4 --total-steps 2000 --batch-size 4 --seq-len 16
./run_bc.sh E7_v2_mini_5k data_v2 --preset mini --lr 3e-4 --total-steps 5000 --batch-size 4 --seq-len 16 --eval-every 1000
# behaviour of a model on a few held-out seeds: python diag.py runs/E2_v1_mini/bc.model 20000,20001,20002,20003
./run_bc.sh E8_E6_ft_early500 data_v3 --init-model runs/E6_v3_mini/bc.model --lr 1e-4 --total-steps 500 --warmup-steps 50 --batch-size 4 --seq-len 16 --max-segment-frames 500
./run_bc.sh E9_v2_mini_first700 data_v2 --preset mini --lr 3e-4 --total-steps 2000 --batch-size 4 --seq-len 16 --max-segment-frames 700
# the same-data oracle of the small-preset pipeline run: its BC settings on the true actions of its 32 videos
./run_bc.sh P_oracle_pipeline_small benchmarks/out/rl_comparison-small/data/heldout_truth --preset mini --lr 3e-4 \
    --total-steps 2000 --batch-size 4 --seq-len 16 --seed 0
