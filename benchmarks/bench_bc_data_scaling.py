"""Foundation-model quality vs amount of pseudo-labelled data (the VPT paper's Fig. 11, at our scale).

For each data size (a number of pseudo-labelled episodes, nested subsets in a fixed order):

1. clone a foundation model from scratch on that many episodes (:func:`vpt_rl.train.bc.train_bc`, the
   same optimizer steps at every size, so smaller sets get more epochs);
2. fine-tune it on the early game of the same episodes (first ``--ft-frames`` frames of each, the paper's
   foundation -> early-game BC);
3. score both zero-shot on held-out world seeds that no stage trained on (``vpt-rl evaluate``, sampled
   actions): milestone rates with 95% Wilson intervals and the mean tech-tree return.

The data are a pipeline run's pseudo-labelled videos (``OUT/data/unlabelled``, labelled by its IDM), so the
curve measures the VPT recipe end to end. Every run folder resumes after a kill; finished evaluations are
reused. Results: ``benchmarks/results/bc_data_scaling.json`` and ``bc_data_scaling.png``; the exact
command is in ``bench_bc_data_scaling.sh``.

Run::

    vpt-rl pipeline --preset small --out runs/small --stages record,split,idm,label
    python benchmarks/bench_bc_data_scaling.py --data runs/small/data/unlabelled --sizes 6 12 24
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import matplotlib
import torch
from matplotlib.figure import Figure

from vpt_rl import evaluate as ev
from vpt_rl.atomic import atomic_write_text
from vpt_rl.data.contractor import find_segments
from vpt_rl.plots import save_figure
from vpt_rl.train import bc as bc_mod
from vpt_rl.train.args import parse_args

HERE = Path(__file__).resolve().parent
SHOWN = ("log", "planks", "crafting_table", "wooden_pickaxe")


@dataclass
class Args:
    """Zero-shot and early-game fine-tuned milestone rates vs pseudo-labelled data size."""

    data: str = ""
    """folder of pseudo-labelled segments (a pipeline's data/unlabelled), taken in sorted order"""
    sizes: list[int] = field(default_factory=lambda: [6, 12, 24])
    """numbers of episodes (segments) per foundation model: nested subsets"""
    out_dir: str = "benchmarks/out/bc_scaling"
    """training runs (one folder per size, resumable)"""
    results: str = str(HERE / "results" / "bc_data_scaling.json")
    """results JSON (the PNG goes next to it)"""
    preset: str = "mini"
    """policy preset (vpt_rl.model.POLICY_PRESETS)"""
    bc_steps: int = 2000
    """BC optimizer steps per size (the same for every size)"""
    bc_batch: int = 4
    """BC lanes per step"""
    bc_seq_len: int = 16
    """BC chunk length"""
    bc_lr: float = 3e-4
    """BC peak learning rate"""
    ft_steps: int = 500
    """early-game fine-tuning steps (0: zero-shot only)"""
    ft_frames: int = 500
    """the early game: first frames of each episode"""
    ft_lr: float = 1e-4
    """fine-tuning learning rate"""
    eval_episodes: int = 30
    """held-out evaluation episodes (one world seed each)"""
    eval_ticks: int = 1500
    """ticks per evaluation episode"""
    eval_seed: int = 20000
    """first held-out world seed (no stage of the pipeline or this benchmark trains on seeds >= 20000)"""
    eval_batch: int = 10
    """envs batched through the policy"""
    seed: int = 0
    """training seed"""
    threads: int = 1
    """torch intra-op threads"""


def _train(args: Args, segs, val, out: Path, name: str, **kw) -> Path:
    model = out / f"{name}.model"
    if model.is_file() and (out / "done").is_file():
        return model
    # every size trains on all of its episodes; the collapse guard scores the same held-out segments
    held = dict(val_data=[str(s) for s in val]) if val else dict(val_fraction=0.0)
    bc_args = bc_mod.Args(data=[str(s) for s in segs], batch_size=args.bc_batch, seq_len=args.bc_seq_len,
                          seed=args.seed, out_dir=str(out), name=name, progress=sys.stderr.isatty(), **held, **kw)
    bc_mod.train_bc(bc_args)
    (out / "done").write_text("ok\n")
    return model


def _evaluate(args: Args, model: Path, out_json: Path) -> dict:
    settings = {"episodes": args.eval_episodes, "ticks": args.eval_ticks, "seed": args.eval_seed,
                "mtime_ns": model.with_suffix(".weights").stat().st_mtime_ns}
    if out_json.is_file():
        old = json.loads(out_json.read_text())
        if old.get("settings") == settings:
            return old
    agent = ev.make_agent(str(model), weights=str(model.with_suffix(".weights")), seed=args.seed)
    res = ev.evaluate(agent, episodes=args.eval_episodes, max_ticks=args.eval_ticks, seed=args.eval_seed,
                      batch_size=args.eval_batch, desc=f"eval {model.parent.name}/{model.stem}")
    keep = {k: res[k] for k in ("mean_return", "return_ci95", "success", "success_ci", "episodes", "seconds")}
    keep["settings"] = settings
    atomic_write_text(out_json, json.dumps(keep, indent=1))
    return keep


def run(args: Args) -> dict:
    torch.set_num_threads(args.threads)
    segs = sorted(find_segments(args.data))
    if not segs:
        raise SystemExit(f"no pseudo-labelled segments under {args.data!r}")
    sizes = sorted(set(args.sizes))
    if sizes[0] < 1 or sizes[-1] > len(segs):
        raise SystemExit(f"--sizes must be within 1..{len(segs)} (the segments under {args.data}), got {args.sizes}")
    frames = [sum(1 for line in open(s.with_suffix(".jsonl")) if line.strip()) for s in segs]
    val = segs[sizes[-1]:sizes[-1] + 2]  # segments no size trains on (none when the largest size takes all)
    rows = []
    for n in sizes:
        t0 = time.time()
        out = Path(args.out_dir) / f"n{n:03d}"
        found = _train(args, segs[:n], val, out / "foundation", "foundation", preset=args.preset,
                       total_steps=args.bc_steps, lr=args.bc_lr)
        row = {"episodes": n, "frames": sum(frames[:n]), "zero_shot": _evaluate(args, found, out / "eval_zero_shot.json")}
        if args.ft_steps > 0:
            ft = _train(args, segs[:n], val, out / "finetuned", "finetuned", init_model=str(found), total_steps=args.ft_steps,
                        lr=args.ft_lr, warmup_steps=min(50, args.ft_steps // 10), max_segment_frames=args.ft_frames)
            row["finetuned"] = _evaluate(args, ft, out / "eval_finetuned.json")
        row["seconds"] = round(time.time() - t0, 1)
        rows.append(row)
        _write(args, rows)  # after every size, so that a stopped run keeps what it measured
        print(f"{n:3d} episodes ({row['frames']} frames): zero-shot "
              + ", ".join(f"{m} {row['zero_shot']['success'][m]:.0%}" for m in SHOWN)
              + ("" if "finetuned" not in row else "; fine-tuned " + ", ".join(
                  f"{m} {row['finetuned']['success'][m]:.0%}" for m in SHOWN)), flush=True)
    return _write(args, rows)


def _write(args: Args, rows: list) -> dict:
    headline = {}
    for r in rows:
        for kind in ("zero_shot", "finetuned"):
            if kind in r:
                for m in ("log", "planks", "crafting_table"):
                    headline[f"{m}[{kind}, {r['episodes']} episodes]"] = r[kind]["success"][m]
    results = {"benchmark": "bc_data_scaling", "headline": headline, "args": asdict(args), "rows": rows,
               "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
               "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {args.threads}"}
    path = Path(args.results)
    atomic_write_text(path, json.dumps(results, indent=1))
    plot(results, path.with_suffix(".png"))
    return results


def plot(results: dict, out_png: Path) -> None:
    """Milestone rate vs pseudo-labelled frames, zero-shot (solid) and fine-tuned (dashed), with 95% CIs."""
    rows = results["rows"]
    x = [r["frames"] for r in rows]
    fig = Figure(figsize=(6.2, 4.0))
    ax = fig.subplots()
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, m in enumerate(SHOWN):
        for kind, style in (("zero_shot", "o-"), ("finetuned", "s--")):
            if not all(kind in r for r in rows):
                continue
            y = [100 * r[kind]["success"][m] for r in rows]
            lo = [100 * r[kind]["success_ci"][m][0] for r in rows]
            hi = [100 * r[kind]["success_ci"][m][1] for r in rows]
            ax.plot(x, y, style, color=colors[k % len(colors)],
                    label=f"{m.replace('_', ' ')} ({'zero-shot' if kind == 'zero_shot' else 'early-game BC'})")
            ax.fill_between(x, lo, hi, color=colors[k % len(colors)], alpha=0.08)
    ax.set_xscale("log")
    ax.set_xlabel("pseudo-labelled frames (IDM labels)")
    ax.set_ylabel(f"% of {rows[0]['zero_shot']['episodes']} held-out episodes")
    ax.set_ylim(-3, 103)
    ax.set_title("Foundation model vs data size (paper Fig. 11, MineLite)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    save_figure(fig, out_png)


def main(argv: Optional[list] = None) -> int:
    run(parse_args(Args, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
