#!/bin/bash
# usage: run_bc.sh NAME DATA [extra train-bc args]   -> runs/NAME ; then eval on 30 held-out seeds
set -e
NAME=$1; DATA=$2; shift 2
export OMP_NUM_THREADS=1
mkdir -p runs  # run from this folder with the project installed
OUT=runs/$NAME
vpt-rl train-bc $DATA --out-dir $OUT --name bc --progress false "$@" > runs/$NAME.log 2>&1
vpt-rl evaluate --agent $OUT/bc.model --weights $OUT/bc.weights --episodes 30 --max-ticks 1500 --seed 20000 --batch 10 --out runs/$NAME.eval.json >> runs/$NAME.log 2>&1
