"""Random init vs pretrained: the VPT recipe end to end on MineLite, at the `small` preset by default.

Runs ``vpt-rl pipeline`` (every stage; stages already done in ``--out`` are skipped, so an interrupted
benchmark resumes) and writes ``benchmarks/results/rl_comparison.json`` plus the plots
``benchmarks/results/rl_comparison_reward_curves.png``, ``rl_comparison_rl_milestones.png`` (return and
milestone rates over RL training for both arms, the paper's Fig. 9) and ``rl_comparison_milestones.png``.

    python benchmarks/bench_rl_comparison.py                       # small preset (~30-60 min on 2 cores)
    python benchmarks/bench_rl_comparison.py --preset smoke        # a few minutes, numbers meaningless
    python benchmarks/bench_rl_comparison.py --set rl_steps=40000  # change one knob
    python benchmarks/bench_rl_comparison.py --threads 1 --fresh   # what bench_rl_comparison.sh runs

``--fresh`` moves an existing ``--out`` folder aside (``<out>.old-<time>``) so that every stage runs on
the current code (the stage markers only record knobs, not code versions).

Targets (the issue): foundation+RL reaches the stone pickaxe in >= 50% of evaluation episodes where
random-init+RL reaches it in < 5% with the same env steps, and the pretrained learning curve reaches
random init's final return within <= 1/10 of the steps. ``headline`` in the JSON says whether each was met.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    from vpt_rl import pipeline as pl

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="small", choices=sorted(pl.PRESETS))
    p.add_argument("--out", default=None, help="pipeline folder (default: benchmarks/out/rl_comparison-<preset>)")
    p.add_argument("--backend", default="sb3", choices=("sb3", "sf"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE", help="override a preset knob")
    p.add_argument("--results", default=str(HERE / "results"), help="where rl_comparison.json goes")
    p.add_argument("--name", default="rl_comparison", help="stem of the result files")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice); 1 on a busy machine")
    p.add_argument("--fresh", action="store_true", help="move an existing --out folder aside and run every stage")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    overrides = dict(item.split("=", 1) for item in args.set)
    cfg = pl.PRESETS[args.preset].replace(**overrides)
    out = Path(args.out or HERE / "out" / f"rl_comparison-{args.preset}")
    if args.fresh and out.exists():
        old = out.with_name(f"{out.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        out.rename(old)
        print(f"moved the previous run to {old}")
    t0 = time.time()
    markers = pl.run_pipeline(out, cfg, backend=args.backend, seed=args.seed)
    wall = time.time() - t0
    results = json.loads((out / "results.json").read_text())

    res_dir = Path(args.results)
    res_dir.mkdir(parents=True, exist_ok=True)
    for png in ("reward_curves", "rl_milestones", "milestones"):
        shutil.copyfile(out / "plots" / f"{png}.png", res_dir / f"{args.name}_{png}.png")
    cmp_ = results["comparison"]
    agents = results["agents"]
    headline = {
        "preset": cfg.name,
        "env_steps_per_rl_run": cfg.rl_steps,
        "eval_episodes": cfg.eval_episodes,
        "eval_max_ticks": cfg.eval_max_ticks,
        "stone_pickaxe_foundation_rl": cmp_.get("pretrained_rate"),
        "stone_pickaxe_random_init_rl": cmp_.get("random_rate"),
        "milestone_target_met": cmp_.get("milestone_target_met"),
        "random_final_return": cmp_.get("random_final_return"),
        "pretrained_fraction_of_steps_to_reach_it": cmp_.get("fraction_of_budget"),
        "speed_target_met": cmp_.get("speed_target_met"),
    }
    for name, a in agents.items():
        headline[f"mean_return[{name}]"] = a["mean_return"]
    acc = results.get("pseudo_labels") or {}
    if acc.get("n_frames"):
        headline["pseudo_label_keypress_accuracy"] = acc.get("keypress_accuracy")
        headline["pseudo_label_button_accuracy"] = acc.get("button_accuracy")
        headline["pseudo_label_camera_r2"] = acc.get("camera_r2")
    headline["pipeline_wall_s_this_call"] = round(wall, 1)
    headline["pipeline_stage_s_total"] = round(sum(m.get("seconds") or 0 for m in markers.values()), 1)
    record = {
        "benchmark": args.name,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs visible, torch threads "
                   f"{__import__('torch').get_num_threads()}",
        "command": "python benchmarks/bench_rl_comparison.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "headline": headline,
        "config": results["config"],
        "agents": agents,
        "comparison": cmp_,
        "recipe_checks": results.get("recipe_checks"),
        "rl_curves": {run: r.get("curve") for run, r in (results.get("rl") or {}).items()},
        "stage_seconds": results.get("stage_seconds"),
        "pipeline_out": str(out),
    }
    pl.write_json_atomic(res_dir / f"{args.name}.json", record)
    print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in headline.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
