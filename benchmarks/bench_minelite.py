"""MineLite speed: env steps/s on one core at 128x128 and 640x360 (random and scripted policies, resets included),
with Crafter's steps/s at 128x128 measured in the same run as the reference.

Run: ``python benchmarks/bench_minelite.py`` (exact command in benchmarks/bench_minelite.sh). Prints one line per
measurement and writes ``benchmarks/results/minelite.json`` atomically.

* ``random``: ``env.action_space.sample()`` (MineRL's Dict space; ``inventory`` is pressed half the time, so a
  screen is open about half the time), seeded.
* ``scripted``: ``envs/minelite/expert.py``'s ``ScriptedExpert`` when it imports, else a small walker/miner.
* Episodes last ``episode_steps`` steps (then ``reset()``, i.e. a new world is generated, inside the timing).
* Crafter: ``crafter.Env(size=(128, 128), length=episode_steps)`` with its own uniform random actions.
Both wall-clock and process CPU time are recorded (the CPU-time rate is the steadier one on a shared machine);
the process is pinned to one CPU when the OS allows it.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import time
from dataclasses import dataclass
from typing import Dict

import numpy as np

from vpt_rl.atomic import atomic_write_json

for _k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_k, "1")


@dataclass
class Args:
    steps_128: int = 3000
    """timed steps per policy at 128x128"""
    steps_640: int = 600
    """timed steps per policy at 640x360"""
    episode_steps: int = 1000
    """steps per episode (a reset, i.e. world generation, is timed every this many steps)"""
    crafter_steps: int = 3000
    """timed Crafter steps at 128x128"""
    world_size: int = 64
    """horizontal world size (X = Z; 48 tall)"""
    seed: int = 0
    """seed of worlds and policies"""
    out: str = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "minelite.json")
    """JSON result path (written atomically)"""


def _parse() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(Args):
        parser.add_argument(f"--{f.name}", type=type(f.default), default=f.default, help=f"(default {f.default})")
    return Args(**vars(parser.parse_args()))


class WalkerMiner:
    """Fallback scripted policy: walks forward, turns now and then, jumps when blocked and digs what it faces."""

    def __init__(self, env, seed: int):
        self.env = env.unwrapped
        self.rng = np.random.default_rng(seed)
        self.t = 0

    def act(self, obs) -> dict:
        self.t += 1
        env = self.env
        a = {"forward": 1, "camera": np.zeros(2, dtype=np.float32)}
        tgt = env.target_block()
        if tgt is not None and env.player.pitch < 40:
            a["attack"] = 1
        if not env.player.on_ground or (self.t % 7 == 0):
            a["jump"] = 1
        if self.t % 40 == 0:
            a["camera"][1] = float(self.rng.uniform(-60, 60))
        a["camera"][0] = float(np.clip(10.0 - env.player.pitch, -5, 5))
        return a


def _make_scripted(env, seed):
    try:
        from vpt_rl.envs.minelite.expert import ScriptedExpert

        ex = ScriptedExpert(env.unwrapped, seed=seed)
        return "ScriptedExpert", ex.act, lambda: ScriptedExpert(env.unwrapped, seed=seed)
    except Exception as e:  # pragma: no cover - depends on the other module's state
        print(f"ScriptedExpert unavailable ({type(e).__name__}: {e}); using WalkerMiner")
        return "WalkerMiner", WalkerMiner(env, seed).act, lambda: WalkerMiner(env, seed)


def bench_minelite(resolution, policy: str, steps: int, args: Args) -> Dict:
    from vpt_rl.envs.minelite.env import MineLiteEnv

    env = MineLiteEnv(resolution=resolution, world_size=(args.world_size, 48, args.world_size),
                      max_steps=args.episode_steps)
    obs, _ = env.reset(seed=args.seed)
    env.step({})  # warm numba (compiled or loaded from cache) outside the timing
    obs, _ = env.reset(seed=args.seed)
    if policy == "random":
        env.action_space.seed(args.seed)
        actions = [env.action_space.sample() for _ in range(steps)]
        name = "action_space.sample"
        act = None
    else:
        name, act, remake = _make_scripted(env, args.seed)
    from tqdm import tqdm

    resets = 0
    w0, c0 = time.perf_counter(), time.process_time()
    for t in tqdm(range(steps), desc=f"minelite {resolution[0]}x{resolution[1]} {policy}", leave=False):
        a = actions[t] if act is None else act(obs)
        obs, _, term, trunc, _ = env.step(a)
        if term or trunc:
            obs, _ = env.reset()
            resets += 1
            if act is not None:
                act = remake().act
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"env": "MineLite", "resolution": list(resolution), "policy": policy, "policy_impl": name, "steps": steps,
            "resets": resets, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "steps_per_s_wall": round(steps / wall, 1), "steps_per_s_cpu": round(steps / cpu, 1)}


def bench_crafter(args: Args) -> Dict:
    import crafter

    env = crafter.Env(size=(128, 128), length=args.episode_steps, seed=args.seed)
    env.reset()
    rng = np.random.default_rng(args.seed)
    n = env.action_space.n
    from tqdm import tqdm

    resets = 0
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in tqdm(range(args.crafter_steps), desc="crafter 128x128 random", leave=False):
        _, _, done, _ = env.step(int(rng.integers(n)))
        if done:
            env.reset()
            resets += 1
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"env": "Crafter", "resolution": [128, 128], "policy": "random", "steps": args.crafter_steps,
            "resets": resets, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "steps_per_s_wall": round(args.crafter_steps / wall, 1),
            "steps_per_s_cpu": round(args.crafter_steps / cpu, 1)}


def bench_reset(args: Args, n: int = 20) -> Dict:
    from vpt_rl.envs.minelite.env import MineLiteEnv

    env = MineLiteEnv(world_size=(args.world_size, 48, args.world_size))
    env.reset(seed=args.seed)
    c0 = time.process_time()
    for k in range(n):
        env.reset(seed=args.seed + k)
    return {"minelite_reset_ms_cpu": round((time.process_time() - c0) / n * 1000, 2)}


def main(args: Args) -> dict:
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        except OSError:
            pass
    rows = [bench_crafter(args)]
    for res, steps in (((128, 128), args.steps_128), ((640, 360), args.steps_640)):
        for policy in ("random", "scripted"):
            rows.append(bench_minelite(res, policy, steps, args))
    crafter_rate = rows[0]["steps_per_s_cpu"]
    for r in rows:
        print(f"{r['env']:9s} {r['resolution'][0]}x{r['resolution'][1]} {r['policy']:8s} "
              f"{r['steps_per_s_cpu']:8.1f} steps/s (cpu)  {r['steps_per_s_wall']:8.1f} steps/s (wall)")
    ratios = {f"{r['policy']}_{r['resolution'][0]}x{r['resolution'][1]}_vs_crafter_cpu":
              round(r["steps_per_s_cpu"] / crafter_rate, 2) for r in rows[1:]}
    by = {(r["env"], r["resolution"][0], r["policy"]): r["steps_per_s_cpu"] for r in rows}
    reset_ms = bench_reset(args)
    headline = {
        "crafter_128_steps_per_s_cpu": crafter_rate,
        "minelite_128_random_steps_per_s_cpu": by[("MineLite", 128, "random")],
        "minelite_128_scripted_steps_per_s_cpu": by[("MineLite", 128, "scripted")],
        "minelite_640x360_random_steps_per_s_cpu": by[("MineLite", 640, "random")],
        "random_128_vs_crafter": ratios["random_128x128_vs_crafter_cpu"],
        "scripted_128_vs_crafter": ratios["scripted_128x128_vs_crafter_cpu"],
        "target_2x_crafter_met": min(ratios["random_128x128_vs_crafter_cpu"],
                                     ratios["scripted_128x128_vs_crafter_cpu"]) >= 2.0,
        **reset_ms,
    }
    result = {
        "benchmark": "minelite",
        "headline": headline,
        "args": dataclasses.asdict(args),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "loadavg_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "rows": rows,
        "ratios": ratios,
        **reset_ms,
    }
    atomic_write_json(args.out, result)
    print("ratios vs Crafter (cpu time):", ratios)
    return result


if __name__ == "__main__":
    main(_parse())
