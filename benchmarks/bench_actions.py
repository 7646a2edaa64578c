"""Micro benchmark: per-step and batched cost of the VPT action mapping (vpt_rl.actions).

Run: ``python benchmarks/bench_actions.py`` (exact command in benchmarks/bench_actions.sh). Prints one line and
writes ``benchmarks/results/bench_actions.json``. Times are the median of ``repeats`` timing runs, each
averaged over ``n`` calls, single-threaded, in process CPU time.
"""
from __future__ import annotations

import dataclasses
import os
import platform
from dataclasses import dataclass

import numpy as np
from timing import median_cpu_seconds

from vpt_rl import actions as A
from vpt_rl.atomic import atomic_write_json
from vpt_rl.train.args import parse_args


@dataclass
class Args:
    n: int = 5000
    """calls (or batch size for the batched variants) per timing run"""
    repeats: int = 5
    """timing runs; the median is reported"""
    seed: int = 0
    """seed of the random actions"""
    out: str = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "bench_actions.json")
    """JSON result path (written atomically)"""


def _parse() -> Args:
    return parse_args(Args, description=__doc__.splitlines()[0])




def main(args: Args) -> dict:
    rng = np.random.default_rng(args.seed)
    env_actions = []
    for _ in range(args.n):
        a = A.noop_action()
        for k in A.BUTTONS_ALL:
            a[k] = int(rng.random() < 0.1)
        a["camera"] = (rng.standard_normal(2) * 5).astype(np.float32)
        env_actions.append(a)
    bi = rng.integers(0, A.N_BUTTON_CLASSES, args.n)
    ci = rng.integers(0, A.N_CAMERA_CLASSES, args.n)
    bl, cl = bi.tolist(), ci.tolist()
    columns = {k: np.array([a[k] for a in env_actions]) for k in A.ENV_ACTION_KEYS}

    def e2a():
        for a in env_actions:
            A.env_to_agent(a)

    def a2e():
        for b, c in zip(bl, cl):
            A.agent_to_env(b, c)

    n = args.n
    res = {
        "env_to_agent_us_per_step": median_cpu_seconds(e2a, args.repeats) / n * 1e6,
        "agent_to_env_us_per_step": median_cpu_seconds(a2e, args.repeats) / n * 1e6,
        "env_to_agent_batch_list_us_per_action": median_cpu_seconds(lambda: A.env_to_agent_batch(env_actions), args.repeats) / n * 1e6,
        "env_to_agent_batch_columns_us_per_action": median_cpu_seconds(lambda: A.env_to_agent_batch(columns), args.repeats) / n * 1e6,
        "agent_to_env_batch_list_us_per_action": median_cpu_seconds(lambda: A.agent_to_env_batch(bi, ci), args.repeats) / n * 1e6,
        "agent_to_env_batch_columns_us_per_action": median_cpu_seconds(lambda: A.agent_to_env_batch(bi, ci, columns=True), args.repeats) / n * 1e6,
    }
    result = {
        "benchmark": "actions",
        "args": {**dataclasses.asdict(args), "out": os.path.relpath(args.out)},
        "machine": platform.processor() or platform.machine(),
        "numpy": np.__version__,
        "results": {k: round(v, 3) for k, v in res.items()},
        "headline": {
            "env_to_agent_us_per_step": round(res["env_to_agent_us_per_step"], 2),
            "agent_to_env_us_per_step": round(res["agent_to_env_us_per_step"], 2),
        },
    }
    atomic_write_json(args.out, result)
    print(" ".join(f"{k}={v:.2f}" for k, v in result["results"].items()))
    return result


if __name__ == "__main__":
    main(_parse())
