"""Micro benchmark: per-step cost of the VPT wrapper stack (make_vpt_env) on MineLite and of its parts.

Run: ``python benchmarks/bench_wrappers.py`` (exact command in benchmarks/bench_wrappers.sh). Prints one line
and writes ``benchmarks/results/bench_wrappers.json``. Times are medians over ``repeats`` runs of ``steps``
steps, single-threaded, in process CPU time; MineLite renders 128x128 frames in both the raw and the wrapped
run. ``null_env_*`` is the stack over an env whose own step costs ~nothing (MineRL-shaped observation with
the 21 MineLite inventory items), i.e. the wrappers' own cost.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import statistics
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from timing import median_cpu_seconds

import vpt_rl.envs  # noqa: F401  (registers the ids)
from vpt_rl import actions as A
from vpt_rl.atomic import atomic_write_json
from vpt_rl.envs.rewards import PAPER_TECH_TREE, InventoryTracker
from vpt_rl.envs.wrappers import make_vpt_env, resize_pov
from vpt_rl.train.args import parse_args


@dataclass
class Args:
    steps: int = 300
    """env steps per timing run"""
    repeats: int = 3
    """timing runs; the median is reported"""
    seed: int = 0
    """env and action seed"""
    out: str = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "bench_wrappers.json")
    """JSON result path (written atomically)"""


def _parse() -> Args:
    return parse_args(Args, description=__doc__.splitlines()[0])




def main(args: Args) -> dict:
    rng = np.random.default_rng(args.seed)
    joint = np.stack([rng.integers(0, A.N_BUTTON_CLASSES, args.steps), rng.integers(0, A.N_CAMERA_CLASSES, args.steps)], 1)
    dict_actions = [A.agent_to_env(int(b), int(c)) for b, c in joint]

    raw = gym.make("vpt_rl/MineLite-v0", world_size=(32, 32, 32), max_steps=None)
    stack = make_vpt_env("vpt_rl/MineLite-v0", world_size=(32, 32, 32), max_steps=None)

    def run_raw():
        raw.reset(seed=args.seed)
        for a in dict_actions:
            raw.step(a)

    def run_stack():
        stack.reset(seed=args.seed)
        for a in joint:
            stack.step(a)

    class NullEnv(gym.Env):
        def __init__(self, pov_shape):
            self.pov = np.zeros(pov_shape, np.uint8)
            inv_space = raw.observation_space["inventory"]
            self.inv = {k: np.zeros((), np.int64) for k in inv_space.spaces}
            self.observation_space = gym.spaces.Dict({"pov": gym.spaces.Box(0, 255, pov_shape, np.uint8), "inventory": inv_space})
            self.action_space = raw.action_space

        def reset(self, *, seed=None, options=None):
            return {"pov": self.pov, "inventory": self.inv}, {}

        def step(self, action):
            return {"pov": self.pov, "inventory": self.inv}, 0.0, False, False, {}

    null128 = make_vpt_env(NullEnv((128, 128, 3)))
    null360 = make_vpt_env(NullEnv((360, 640, 3)))

    def run_null(env):
        env.reset(seed=args.seed)
        for a in joint:
            env.step(a)

    run_raw()  # warm-up (first-call compilation, caches) before any timing
    run_stack()
    frame = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    inv = {name: int(rng.integers(0, 5)) for name in ("oak_log", "oak_planks", "stick", "cobblestone", "coal")}
    tracker = InventoryTracker(PAPER_TECH_TREE)
    tracker.reset({})
    n = 2000
    raw_t, stack_t = [], []
    for _ in range(args.repeats):  # interleaved, so load changes on a shared machine hit both alike
        raw_t.append(median_cpu_seconds(run_raw, 1))
        stack_t.append(median_cpu_seconds(run_stack, 1))
    res = {
        "minelite_raw_ms_per_step": statistics.median(raw_t) / args.steps * 1e3,
        "minelite_vpt_stack_ms_per_step": statistics.median(stack_t) / args.steps * 1e3,
        "resize_360x640_to_128_us": median_cpu_seconds(lambda: [resize_pov(frame) for _ in range(n)], args.repeats) / n * 1e6,
        "techtree_update_us": median_cpu_seconds(lambda: [tracker.update(inv) for _ in range(n)], args.repeats) / n * 1e6,
    }
    res["null_env_stack_128_us_per_step"] = median_cpu_seconds(lambda: run_null(null128), args.repeats) / args.steps * 1e6
    res["null_env_stack_360x640_us_per_step"] = median_cpu_seconds(lambda: run_null(null360), args.repeats) / args.steps * 1e6
    res["stack_overhead_ms_per_step"] = res["minelite_vpt_stack_ms_per_step"] - res["minelite_raw_ms_per_step"]
    result = {
        "benchmark": "wrappers",
        "args": {**dataclasses.asdict(args), "out": os.path.relpath(args.out)},
        "machine": platform.processor() or platform.machine(),
        "results": {k: round(v, 3) for k, v in res.items()},
        "headline": {
            "wrapper_stack_us_per_step_360x640": round(res["null_env_stack_360x640_us_per_step"], 1),
            "wrapper_stack_us_per_step_128": round(res["null_env_stack_128_us_per_step"], 1),
        },
    }
    atomic_write_json(args.out, result)
    print(" ".join(f"{k}={v:.3f}" for k, v in result["results"].items()))
    return result


if __name__ == "__main__":
    main(_parse())
