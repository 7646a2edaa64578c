"""Throughput: Sample Factory (async, 1/2/4 rollout workers, and serial) vs VPTPPO (SB3) on the same model and env.

Run: ``python benchmarks/bench_sample_factory.py`` (exact command in benchmarks/bench_sample_factory.sh). Prints
one line per run and writes ``benchmarks/results/bench_sample_factory.json``.

Both trainers fine-tune the same network (default: the official-format micro checkpoint of the fixtures, with
the KL-to-prior loss on, so both also run the frozen prior) on MineLite through ``make_vpt_env`` with the
same episode length, rollout length (32 steps per env), one PPO epoch, and minibatch = one rollout of all
envs. Numbers are *training* throughput: env steps consumed per second of wall time once the run is going
(SF: slope of the learner's env-step counter between its first and last TensorBoard summary; SB3: env steps
of ``learn()`` after a one-iteration warm-up, over its wall time). Start-up (SF spawns processes) is reported
separately as ``wall_s``. The machine is shared, so repeat runs vary; see ``load_avg``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vpt_rl.atomic import atomic_write_json

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURES = REPO / "tests" / "fixtures" / "vpt"  # official-format micro checkpoint (tests/fixtures/README.md)


def _load_avg() -> list:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def _tb_rate(summary_dir: Path) -> tuple:
    """(env steps/s between the first and last learner summary, number of summaries)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(summary_dir))
    ea.Reload()
    ev = ea.Scalars("train/lr") if "train/lr" in ea.Tags()["scalars"] else []
    if len(ev) < 2:
        return float("nan"), len(ev)
    return (ev[-1].step - ev[0].step) / max(1e-9, ev[-1].wall_time - ev[0].wall_time), len(ev)


def run_sf(args, workers: int, serial: bool, train_dir: Path) -> dict:
    envs = workers * args.envs_per_worker
    exp = f"sf_{'serial' if serial else 'async'}_w{workers}"
    cmd = [
        sys.executable, "-m", "vpt_rl.policies.sample_factory.train", "--env", "vpt_minelite",
        "--experiment", exp, "--train_dir", str(train_dir), "--episode_steps", str(args.episode_steps),
        "--rollout", str(args.rollout), "--batch_size", str(args.rollout * envs),
        "--num_envs_per_worker", str(args.envs_per_worker), "--num_workers", str(workers),
        "--train_for_env_steps", str(args.steps), "--kl_coef", str(args.kl_coef), "--seed", str(args.seed),
        "--save_every_sec", "100000", "--experiment_summaries_interval", "5",
    ] + args.model_args + args.sf_extra.split()
    if serial:
        cmd += ["--serial_mode", "True", "--async_rl", "False"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"SF run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    rate, n = _tb_rate(train_dir / exp / ".summary" / "0")
    return dict(trainer="sample_factory", mode="serial" if serial else "async", workers=workers, envs=envs,
                env_steps_per_s=round(rate, 2), summaries=n, wall_s=round(wall, 1), load_avg=_load_avg())


def run_sb3(args, n_envs: int, threads: int) -> dict:
    import torch

    from vpt_rl.policies.sb3 import VPTPPO, VPTPolicy, make_vpt_vec_env

    torch.set_num_threads(threads)
    venv = make_vpt_vec_env("vpt_rl/MineLite-v0", n_envs=n_envs, seed=args.seed, max_steps=args.episode_steps)
    pk = {"model": args.model, "weights": args.weights} if args.model else {"config": args.preset}
    t0 = time.time()
    algo = VPTPPO(VPTPolicy, venv, n_steps=args.rollout, n_epochs=1, batch_size=args.rollout * n_envs,
                  kl_coef=args.kl_coef, policy_kwargs=pk, seed=args.seed, device="cpu")
    algo.learn(args.rollout * n_envs)  # warm-up iteration (allocations, first env resets)
    t1 = time.time()
    algo.learn(args.sb3_steps, reset_num_timesteps=False)
    t2 = time.time()
    steps = algo.num_timesteps - args.rollout * n_envs
    venv.close()
    return dict(trainer="sb3_vptppo", mode=f"DummyVecEnv, {threads} torch threads", workers=1, envs=n_envs,
                env_steps_per_s=round(steps / (t2 - t1), 2), wall_s=round(t2 - t0, 1), load_avg=_load_avg())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(FIXTURES / "policy.model"), help="official .model ('' for --preset)")
    p.add_argument("--weights", default=str(FIXTURES / "policy.weights"))
    p.add_argument("--preset", default="micro", help="used when --model is ''")
    p.add_argument("--steps", type=int, default=2048, help="env steps per measured run")
    p.add_argument("--rollout", type=int, default=32)
    p.add_argument("--envs_per_worker", type=int, default=2)
    p.add_argument("--workers", default="1,2,4", help="SF async rollout-worker counts")
    p.add_argument("--sb3_envs", type=int, default=4)
    p.add_argument("--sb3_threads", default="1,2", help="torch threads of the SB3 process (one run each)")
    p.add_argument("--sb3_steps", type=int, default=512, help="env steps of the measured SB3 learn() (it is slow)")
    p.add_argument("--episode_steps", type=int, default=500)
    p.add_argument("--kl_coef", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sf_extra", default="", help="more SF options for every SF run, e.g. '--worker_num_splits 1'")
    p.add_argument("--serial", type=int, default=1, help="also measure SF's serial runner (0: skip)")
    p.add_argument("--skip_sb3", action="store_true")
    p.add_argument("--out", default=str(HERE / "results" / "bench_sample_factory.json"))
    args = p.parse_args(argv)
    args.model_args = (["--model", args.model, "--weights", args.weights] if args.model else ["--preset", args.preset])

    runs = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_sf_"))
    try:
        for w in [int(x) for x in args.workers.split(",") if x]:
            runs.append(run_sf(args, w, serial=False, train_dir=tmp))
            print(json.dumps(runs[-1]), flush=True)
        if args.serial:
            runs.append(run_sf(args, max(1, args.sb3_envs // args.envs_per_worker), serial=True, train_dir=tmp))
            print(json.dumps(runs[-1]), flush=True)
        sb3_error = None
        if not args.skip_sb3:
            try:
                for threads in [int(x) for x in args.sb3_threads.split(",") if x]:
                    runs.append(run_sb3(args, args.sb3_envs, threads))
                    print(json.dumps(runs[-1]), flush=True)
            except ImportError as exc:  # SB3 plug-in not available
                sb3_error = f"SB3 not measured: {exc}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    sf_async = {r["workers"]: r["env_steps_per_s"] for r in runs if r["trainer"] == "sample_factory" and r["mode"] == "async"}
    sb3 = sorted((r for r in runs if r["trainer"] == "sb3_vptppo"), key=lambda r: -r["env_steps_per_s"])  # best first
    same_envs = sf_async.get(max(1, args.sb3_envs // args.envs_per_worker))
    best = max(sf_async.values()) if sf_async else float("nan")
    result = dict(
        machine="2-core CPU, no GPU", date=time.strftime("%Y-%m-%d"), python=platform.python_version(),
        model=args.model or f"preset {args.preset}", env="MineLite via make_vpt_env", episode_steps=args.episode_steps,
        rollout=args.rollout, kl_coef=args.kl_coef, steps_per_run=args.steps, sf_extra=args.sf_extra, runs=runs,
        speedup_same_envs=round(same_envs / sb3[0]["env_steps_per_s"], 2) if sb3 and same_envs else None,  # vs SB3's best
        speedup_best=round(best / sb3[0]["env_steps_per_s"], 2) if sb3 else None,
        target="SF >= 2x SB3 throughput", sb3_note=None if sb3 else (sb3_error or "skipped"),
    )
    out = Path(args.out)
    atomic_write_json(out, result)
    print(f"SF async {sf_async} env steps/s; SB3 {[r['env_steps_per_s'] for r in sb3]}; "
          f"speedup same envs {result['speedup_same_envs']}, best {result['speedup_best']} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
