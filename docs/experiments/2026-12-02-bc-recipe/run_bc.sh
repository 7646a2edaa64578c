#!/bin/bash
# usage: run_bc.sh NAME DATA [extra train-bc args]   -> /work/exp/bc/runs/NAME ; then eval on 30 held-out seeds
set -e
NAME=$1; DATA=$2; shift 2
export OMP_NUM_THREADS=1
cd /work/main && . .venv/bin/activate
OUT=/work/exp/bc/runs/$NAME
vpt-rl train-bc $DATA --out-dir $OUT --name bc --progress false "$@" > /work/exp/bc/runs/$NAME.log 2>&1
vpt-rl evaluate --agent $OUT/bc.model --weights $OUT/bc.weights --episodes 30 --max-ticks 1500 --seed 20000 --batch 10 --out /work/exp/bc/runs/$NAME.eval.json >> /work/exp/bc/runs/$NAME.log 2>&1
