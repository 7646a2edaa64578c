"""Micro benchmark: what MineLite's fresh observation arrays cost per step (issue 16).

Since 2026-12-02 every ``reset``/``step`` returns new inventory and equipment arrays, so that no two
observations share an object (Gymnasium 1.x's ``check_env`` requires it). This measures a MineLite step with
rendering off (where the observation is most of the work) and on (128x128, the agent's view, turning one
degree per tick so that every frame is drawn), and the time of building one observation alone. Run: ``python benchmarks/bench_minelite_obs.py`` (the exact command is in
``benchmarks/bench_minelite_obs.sh``). Prints a table; writes ``benchmarks/results/minelite_obs.json`` and a PNG.
Times are the best of ``repeats`` runs of ``steps`` steps, process CPU time, one thread.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from vpt_rl.actions import noop_action
from vpt_rl.atomic import atomic_write_json
from vpt_rl.envs.minelite.env import MineLiteEnv
from vpt_rl.plots import save_figure
from vpt_rl.train.args import parse_args

# the same measurement on the commit before the change (shared cached arrays), same machine, 2026-12-02:
# step without rendering, best of 5 x 2,000 noop steps
BEFORE_US_PER_STEP_NO_RENDER = 31.0


@dataclass
class Args:
    steps: int = 2000
    """noop steps per timing run"""
    repeats: int = 5
    """timing runs; the best is reported"""
    seed: int = 1
    """world seed"""
    out: str = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "minelite_obs.json")
    """JSON result path (written atomically; the PNG goes beside it)"""


def _best_us(fn, n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t0) / n * 1e6)
    return best


def main(args: Args) -> dict:
    rows = {}
    for render in (False, True):
        env = MineLiteEnv(render_pov=render, max_steps=None, resolution=(128, 128))
        env.reset(seed=args.seed)
        action = noop_action()
        if render:  # turn a little every tick: an unchanged view is not redrawn, a turning one is
            action["camera"][1] = 1.0
        for _ in range(200):  # warm up: numba compile, caches
            env.step(action)
        name = "render" if render else "no_render"
        rows[f"step_us_{name}"] = round(_best_us(lambda: env.step(action), args.steps, args.repeats), 2)
        if not render:
            rows["observe_us"] = round(_best_us(env._observe, args.steps, args.repeats), 2)
    rows["observe_share_of_rendered_step"] = round(rows["observe_us"] / rows["step_us_render"], 4)
    result = {
        "benchmark": "minelite_obs",
        "date": datetime.date.today().isoformat(),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "loadavg_at_end": list(os.getloadavg())},
        "args": dataclasses.asdict(args),
        "results": rows,
        "before_change": {"step_us_no_render": BEFORE_US_PER_STEP_NO_RENDER},
        "headline": {"step_us_no_render": rows["step_us_no_render"], "step_us_render": rows["step_us_render"],
                     "before_step_us_no_render": BEFORE_US_PER_STEP_NO_RENDER},
    }
    atomic_write_json(args.out, result)
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.subplots()
    labels = ["step, no render\n(before: shared arrays)", "step, no render", "step, 128x128 render (turning)", "one observation"]
    values = [BEFORE_US_PER_STEP_NO_RENDER, rows["step_us_no_render"], rows["step_us_render"], rows["observe_us"]]
    ax.barh(labels, values, color=["#999999", "#1f77b4", "#1f77b4", "#ff7f0e"])
    ax.set_xscale("log")
    ax.set_xlabel("microseconds of CPU time (log scale)")
    ax.set_title("MineLite: cost of fresh observation arrays", fontsize=10)
    fig.tight_layout()
    save_figure(fig, Path(args.out).with_suffix(".png"))
    print(f"{'case':36s}{'us':>10s}")
    for label, value in zip(labels, values):
        print(f"{label.replace(chr(10), ' '):36s}{value:10.1f}")
    return result


if __name__ == "__main__":
    main(parse_args(Args, description=__doc__.splitlines()[0]))
