"""Throughput and memory of the SB3 plug-in (VPTPPO) on MineLite, and a plain SB3 PPO baseline.

Measures, for each VPT config (default: ``foundation-model-1x`` and ``tiny``, random init):
rollout env-steps/s (policy + frozen prior forward per step), training cost per step (replay of the stored
segments in chunks, forward + backward), overall env-steps/s of one PPO iteration, and peak RSS.
Then the rollout-buffer memory of the 1x config for 8 envs x 256 steps, analytically and measured by
allocating and filling a real ``VPTRolloutBuffer``; and the same iteration with SB3's ``PPO`` +
``MultiInputPolicy`` (NatureCNN) on the same env (throughput ratio against the ``tiny`` config).

    python benchmarks/bench_sb3.py                      # the numbers in docs/performance.md
    python benchmarks/bench_sb3.py --configs tiny --n-envs 2 --n-steps 16    # quick look

Writes ``benchmarks/results/bench_sb3.json`` and prints one line.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch
from stable_baselines3 import PPO

from vpt_rl.atomic import atomic_write_json
from vpt_rl.checkpoint import build_policy
from vpt_rl.model import POLICY_PRESETS
from vpt_rl.policies.sb3 import N_LOGITS, VPTPPO, VPTPolicy, VPTRolloutBuffer, VPTStates, make_vpt_vec_env

MiB = 2 ** 20


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MiB


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _n_params(module: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def time_iteration(model, n_iters: int, warmup: bool) -> dict:
    """Time ``n_iters`` PPO iterations (after one warm-up iteration when ``warmup``): rollout and train separately."""
    _, cb = model._setup_learn(10 ** 9, None, True, "bench", False)
    buf = model.rollout_buffer
    steps = model.n_steps * model.n_envs
    if warmup:  # allocations, first env resets, first-call overheads
        model.collect_rollouts(model.env, cb, buf, model.n_steps)
        model.train()
    t_roll = t_train = 0.0
    for _ in range(n_iters):
        t0 = time.perf_counter()
        model.collect_rollouts(model.env, cb, buf, model.n_steps)
        t1 = time.perf_counter()
        model.train()
        t2 = time.perf_counter()
        t_roll += t1 - t0
        t_train += t2 - t1
    n = steps * n_iters
    return {
        "env_steps_timed": n,
        "timed_iters": n_iters,
        "warmup_iter": warmup,
        "rollout_steps_per_s": n / t_roll,
        "train_ms_per_step": 1000 * t_train / n,
        "iteration_steps_per_s": n / (t_roll + t_train),
    }


def bench_vpt(cfg_name: str, args) -> dict:
    venv = make_vpt_vec_env(args.env, n_envs=args.n_envs, seed=args.seed, max_steps=args.max_steps, world_size=tuple(args.world_size))
    cfg = POLICY_PRESETS[cfg_name]
    chunk = min(args.chunk_len, cfg.timesteps, args.n_steps)
    model = VPTPPO(
        VPTPolicy, venv, n_steps=args.n_steps, n_epochs=1, batch_size=args.n_steps, chunk_len=chunk, kl_coef=0.2,
        policy_kwargs=dict(config=cfg_name, freeze_cnn=args.freeze_cnn and cfg_name != "tiny", autocast_bf16=args.bf16),
        seed=args.seed, device="cpu",
    )
    out = {"config": cfg_name, "params": _n_params(model.policy.vpt), "n_envs": args.n_envs, "n_steps": args.n_steps,
           "chunk_len": chunk, "n_epochs": 1, "kl_prior_on": True,
           "freeze_cnn": model.policy.freeze_cnn, "bf16": model.policy.autocast_bf16}
    large = out["params"] > args.large_params
    out.update(time_iteration(model, args.iters_large if large else args.iters, warmup=not large))
    out["buffer_bytes_this_run"] = model.rollout_buffer.nbytes()["total"]
    out["peak_rss_mib"] = _peak_rss_mib()
    venv.close()
    del model
    return out


def bench_sb3_baseline(args) -> dict:
    venv = make_vpt_vec_env(args.env, n_envs=args.n_envs, seed=args.seed, max_steps=args.max_steps, world_size=tuple(args.world_size))
    model = PPO("MultiInputPolicy", venv, n_steps=args.n_steps, n_epochs=1, batch_size=args.n_steps, seed=args.seed, device="cpu")
    out = {"policy": "SB3 PPO MultiInputPolicy (NatureCNN + MLP 64x64)", "params": _n_params(model.policy), "n_envs": args.n_envs,
           "n_steps": args.n_steps, "n_epochs": 1, "transposed_images": True}
    out.update(time_iteration(model, args.iters, warmup=True))
    venv.close()
    return out


def buffer_memory_1x(n_envs: int, n_steps: int, segment_len: int) -> dict:
    """Analytic and measured bytes of the VPTPPO buffer for the 1x config (memories stored once per segment)."""
    cfg = POLICY_PRESETS["foundation-model-1x"]
    per_env_state = cfg.n_recurrence_layers * (cfg.maxlen + 2 * cfg.maxlen * cfg.hidsize * 4)
    n_seg = n_steps // segment_len
    analytic = {
        "pov_uint8": n_steps * n_envs * 128 * 128 * 3,
        "prior_probs_fp16": n_steps * n_envs * N_LOGITS * 2,
        "scalars_and_actions": n_steps * n_envs * (6 * 4 + 2 * 2),
        "memories_policy_and_prior": 2 * n_seg * n_envs * per_env_state,
    }
    analytic["total"] = sum(analytic.values())
    # what storing the memory at every step would cost (RecurrentPPO's layout), for comparison
    per_step_states = n_steps * n_envs * per_env_state
    net = build_policy(preset=cfg)
    st = VPTStates(net.initial_state(n_envs), net.initial_state(n_envs))
    rss0 = _rss_mib()
    buf = VPTRolloutBuffer(n_steps, n_envs, segment_len, store_prior=True)
    buf.pov.fill(1)
    buf.prior_probs.fill_(0.5)
    for s in range(n_seg):
        buf.pos = s * segment_len
        buf.store_states(st)
    rss1 = _rss_mib()
    return {
        "n_envs": n_envs, "n_steps": n_steps, "segment_len": segment_len, "per_env_memory_bytes": per_env_state,
        "analytic_bytes": analytic, "buffer_nbytes": buf.nbytes(), "measured_rss_delta_mib": rss1 - rss0,
        "per_step_state_layout_bytes": per_step_states,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="foundation-model-1x,tiny", help="comma-separated VPT presets")
    p.add_argument("--env", default="vpt_rl/MineLite-v0")
    p.add_argument("--n-envs", type=int, default=2)
    p.add_argument("--n-steps", type=int, default=32)
    p.add_argument("--iters", type=int, default=3, help="timed iterations (after one warm-up) of small nets")
    p.add_argument("--iters-large", type=int, default=1, help="timed iterations (no warm-up) of nets over --large-params")
    p.add_argument("--large-params", type=int, default=20_000_000)
    p.add_argument("--chunk-len", type=int, default=16)
    p.add_argument("--max-steps", type=int, default=500, help="MineLite episode limit")
    p.add_argument("--world-size", type=int, nargs=3, default=(32, 32, 32))
    p.add_argument("--freeze-cnn", action="store_true", help="freeze the CNN of the large configs")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest on the shared 2-core CI box)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "bench_sb3.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    res = {"benchmark": "sb3", "date": dt.date.today().isoformat(), "machine": f"{os.cpu_count()}-core CPU, no GPU",
           "python": platform.python_version(), "torch": torch.__version__, "args": vars(args), "vpt": {}}
    res["buffer_1x_8x256"] = buffer_memory_1x(8, 256, 256)
    res["buffer_1x_8x256_seg128"] = buffer_memory_1x(8, 256, 128)
    for name in args.configs.split(","):
        res["vpt"][name] = bench_vpt(name.strip(), args)
        print(json.dumps(res["vpt"][name]), file=sys.stderr)
    if not args.skip_baseline:
        res["sb3_cnn"] = bench_sb3_baseline(args)
    head = {"buffer_1x_8x256_MiB": round(res["buffer_1x_8x256"]["buffer_nbytes"]["total"] / MiB, 1),
            "buffer_1x_8x256_measured_rss_MiB": round(res["buffer_1x_8x256"]["measured_rss_delta_mib"], 1),
            "per_step_state_layout_GiB": round(res["buffer_1x_8x256"]["per_step_state_layout_bytes"] / 2 ** 30, 2)}
    for name, r in res["vpt"].items():
        head[f"{name}_iteration_steps_per_s"] = round(r["iteration_steps_per_s"], 3)
        head[f"{name}_rollout_steps_per_s"] = round(r["rollout_steps_per_s"], 3)
    if "sb3_cnn" in res:
        head["sb3_cnn_iteration_steps_per_s"] = round(res["sb3_cnn"]["iteration_steps_per_s"], 3)
        if "tiny" in res["vpt"]:
            head["tiny_vs_sb3_cnn_throughput_ratio"] = round(res["vpt"]["tiny"]["iteration_steps_per_s"] / res["sb3_cnn"]["iteration_steps_per_s"], 3)
    res["headline"] = head
    atomic_write_json(args.out, res, indent=1)
    print("bench_sb3 " + " ".join(f"{k}={v}" for k, v in head.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
