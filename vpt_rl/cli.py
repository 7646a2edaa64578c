"""The ``vpt-rl`` command line.

Each subcommand lives in its own module and exposes ``main(argv: list[str]) -> int | None``; this file
only dispatches, importing the module lazily so that ``vpt-rl --help`` stays fast and a missing optional
dependency (Stable-Baselines3, Sample Factory) only matters for the command that needs it. Every command runs
under :func:`vpt_rl.interrupt.run_main`: Ctrl-C or ``kill`` gives one line and exit status 130 / 143, not a
traceback.
"""
from __future__ import annotations

import functools
import importlib
import sys

from vpt_rl import __version__
from vpt_rl.interrupt import run_main

# name -> (module, one-line help)
COMMANDS = {
    "demo": ("vpt_rl.commands.demo", "roll a VPT policy checkpoint on random frames or a video, printing MineRL actions"),
    "record": ("vpt_rl.commands.record", "record scripted-expert MineLite episodes in the contractor format"),
    "view": ("vpt_rl.commands.view", "write an episode as mp4/GIF and a PNG contact sheet"),
    "train-idm": ("vpt_rl.train.idm", "train an inverse dynamics model on labelled contractor segments"),
    "train-filter": ("vpt_rl.train.train_filter", "train a clean-vs-unclean frame classifier on labelled frames"),
    "filter": ("vpt_rl.train.filter", "cut videos into clean spans with a trained frame filter, before labelling"),
    "label": ("vpt_rl.train.label", "label unlabelled videos with an IDM (writes contractor jsonl)"),
    "train-bc": ("vpt_rl.train.bc", "behavioural cloning of the VPT policy on (pseudo-)labelled segments"),
    "finetune": ("vpt_rl.commands.finetune", "RL fine-tuning with the tech-tree reward (SB3 or Sample Factory)"),
    "evaluate": ("vpt_rl.commands.evaluate", "evaluate agents on MineLite: milestone rates and shaped return"),
    "pipeline": ("vpt_rl.pipeline", "the whole VPT recipe end to end on MineLite"),
    "bench-summary": ("vpt_rl.commands.bench_summary", "one-page summary of every benchmark result"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: vpt-rl <command> [options]  |  vpt-rl --version", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `vpt-rl <command> --help` for the options of one command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"vpt-rl {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"vpt-rl: unknown command {name!r}; expected one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    # the import runs under run_main too: Ctrl-C while torch or SB3 is still loading is an interrupt like any other
    return run_main(functools.partial(_run_command, COMMANDS[name][0]), rest, f"vpt-rl {name}")


def _run_command(module_name: str, argv: list[str]):
    return importlib.import_module(module_name).main(argv)


if __name__ == "__main__":
    sys.exit(main())
