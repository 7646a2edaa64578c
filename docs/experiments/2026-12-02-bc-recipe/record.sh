#!/bin/sh
# The recordings behind the BC runs (2-core CPU, one torch thread each; 2026-12-02). World seeds 100-139;
# every run is scored on the held-out seeds 20000-20029, which no recording uses.
OMP_NUM_THREADS=1 vpt-rl record --episodes 40 --out data_v0 --seed 100 --max-ticks 1500 --alias expert
OMP_NUM_THREADS=1 vpt-rl record --episodes 40 --out data_v1 --seed 100 --max-ticks 1500 --alias expert --imitable
OMP_NUM_THREADS=1 vpt-rl record --episodes 40 --out data_v2 --seed 100 --max-ticks 1500 --alias expert --imitable \
    --epsilon 0.05 --camera-noise 0.15
OMP_NUM_THREADS=1 vpt-rl record --episodes 40 --out data_v3 --seed 100 --max-ticks 1500 --alias expert --imitable \
    --steady-camera --epsilon 0.05 --camera-noise 0.15
