"""Success rates of the scripted MineLite expert over many seeds (tech-tree milestones within a tick budget).

For each world seed ``seed0 .. seed0 + seeds - 1`` the expert plays one episode of at most ``max_ticks``
ticks (6000 = 5 minutes); a milestone counts when its item is in the inventory at some tick. Prints one line
and writes ``benchmarks/results/expert.json`` (per-seed milestone ticks, rates, median ticks, env ticks/s).
Per-seed results are checkpointed to ``expert.partial.json`` so an interrupted run resumes.

Run (the numbers in docs/minelite.md)::

    OMP_NUM_THREADS=1 python benchmarks/bench_expert.py --seeds 50 --max-ticks 6000

``--render`` draws the 128x128 ``pov`` every tick as recording does (slower; the expert never reads it).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vpt_rl.atomic import atomic_write_json
from vpt_rl.envs.minelite.expert import MILESTONES, run_expert_episode

REPORTED = ("crafting_table", "wooden_pickaxe", "stone_pickaxe", "iron_pickaxe", "diamond")
TARGETS = {"crafting_table": 0.95, "wooden_pickaxe": 0.90, "stone_pickaxe": 0.80, "iron_pickaxe": 0.60, "diamond": 0.40}
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=50, help="number of world seeds")
    p.add_argument("--seed0", type=int, default=0, help="first world seed")
    p.add_argument("--max-ticks", type=int, default=6000, help="tick budget per episode")
    p.add_argument("--epsilon", type=float, default=0.0, help="expert's random-action probability")
    p.add_argument("--render", action="store_true", help="draw pov frames (as when recording)")
    p.add_argument("--out", default=str(RESULTS / "expert.json"), help="result JSON path")
    p.add_argument("--fresh", action="store_true", help="ignore a previous partial run")
    args = p.parse_args(argv)
    if args.seeds <= 0 or args.max_ticks <= 0:
        p.error("--seeds and --max-ticks must be positive")

    out = Path(args.out)
    partial = out.with_name(out.stem + ".partial.json")
    config = {"seed0": args.seed0, "max_ticks": args.max_ticks, "epsilon": args.epsilon, "render": args.render}
    done = {}
    if partial.is_file() and not args.fresh:
        prev = json.loads(partial.read_text())
        if prev.get("config") == config:
            done = {int(k): v for k, v in prev["episodes"].items()}
    seeds = list(range(args.seed0, args.seed0 + args.seeds))
    for seed in tqdm(seeds, desc="expert episodes", unit="ep"):
        if seed in done:
            continue
        t0 = time.perf_counter()
        _, actions, infos = run_expert_episode(seed, args.max_ticks, epsilon=args.epsilon, render=args.render)
        wall = time.perf_counter() - t0
        done[seed] = {"milestones": infos[-1]["milestones"], "ticks": len(actions), "wall_s": round(wall, 3),
                      "final_phase": infos[-1]["phase"]}
        atomic_write_json(partial, {"config": config, "episodes": {str(k): v for k, v in done.items()}})

    eps = [done[s] for s in seeds]
    n = len(eps)
    rates, median_ticks = {}, {}
    for m in MILESTONES:
        ticks = [e["milestones"][m] for e in eps if m in e["milestones"]]
        rates[m] = len(ticks) / n
        median_ticks[m] = float(np.median(ticks)) if ticks else None
    total_ticks = sum(e["ticks"] for e in eps)
    total_wall = sum(e["wall_s"] for e in eps)
    result = {
        "benchmark": "scripted expert tech-tree success within the tick budget",
        "machine": "2-core CPU, no GPU",
        "date": "2026-11-25",
        "python": platform.python_version(),
        "config": {**config, "seeds": n, "world_size": [64, 48, 64], "resolution": [128, 128]},
        "rates": {m: rates[m] for m in REPORTED},
        "targets": TARGETS,
        "meets_targets": all(rates[m] >= TARGETS[m] for m in REPORTED),
        "all_milestone_rates": rates,
        "median_ticks": median_ticks,
        "env_ticks_per_s": round(total_ticks / max(total_wall, 1e-9), 1),
        "episodes": {str(s): done[s] for s in seeds},
    }
    atomic_write_json(out, result)
    partial.unlink(missing_ok=True)  # the checkpoint is only for resuming an interrupted run
    print(f"expert over {n} seeds, {args.max_ticks} ticks: " + ", ".join(f"{m} {rates[m]:.0%}" for m in REPORTED)
          + f" ({result['env_ticks_per_s']} ticks/s) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
