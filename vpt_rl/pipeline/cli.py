"""``vpt-rl pipeline``: the command line of :func:`vpt_rl.pipeline.run_pipeline`."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Optional, Sequence

import torch

from vpt_rl.pipeline.config import PRESETS, PipelineConfig, parse_set_items
from vpt_rl.pipeline.engine import BACKENDS, STAGE_ORDER, check_run, run_pipeline
from vpt_rl.pipeline.files import PipelineError

DESCRIPTION = "`vpt-rl pipeline`: the whole VPT recipe end to end on MineLite, and random init vs pretrained."


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``vpt-rl pipeline``."""
    p = argparse.ArgumentParser(
        prog="vpt-rl pipeline", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="stages: " + ", ".join(STAGE_ORDER) + "\npresets: " + ", ".join(PRESETS))
    p.add_argument("--preset", default="small", choices=sorted(PRESETS), help="scale (default: small)")
    p.add_argument("--out", default=None, help="results folder (default: results/pipeline-<preset>)")
    p.add_argument("--stages", default="all", help="comma list of stages to run (default: all)")
    p.add_argument("--backend", default="sb3", choices=BACKENDS, help="RL plug-in (default: sb3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="re-run the selected stages even if done")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                   help="override one knob of the preset (repeatable), e.g. --set rl_steps=5000")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--device", default="auto",
                   help="where the stages run their models: auto (cuda when there is a GPU, else cpu), cpu, cuda or "
                        "cuda:N (default: auto); not part of a stage's configuration, so a run resumes on another "
                        "device")
    p.add_argument("--list-knobs", action="store_true", help="print the preset's knobs and exit")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``vpt-rl pipeline``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error(f"--threads {args.threads}: expected a number of threads >= 1 (0: torch's choice)")
    try:
        cfg = PRESETS[args.preset].replace(**parse_set_items(args.set))
        if not args.list_knobs:  # every knob, the stages and the seed, before the first stage runs
            check_run(cfg, args.stages, args.backend, args.seed, args.device)
    except ValueError as e:
        print(f"vpt-rl pipeline: {e}", file=sys.stderr)
        return 2
    if args.list_knobs:
        for f in dataclasses.fields(PipelineConfig):
            print(f"{f.name} = {getattr(cfg, f.name)!r}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or os.path.join("results", f"pipeline-{args.preset}")
    try:
        run_pipeline(out, cfg, stages=args.stages, backend=args.backend, seed=args.seed, force=args.force,
                     device=args.device)
    except (PipelineError, ValueError) as e:
        print(f"vpt-rl pipeline: {e}", file=sys.stderr)
        return 1
    print(f"results: {os.path.join(out, 'results.md')}")
    return 0
