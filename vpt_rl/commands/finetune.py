"""`vpt-rl finetune`: RL fine-tuning of a VPT policy with the tech-tree reward.

Two backends:

* ``--backend sb3`` (default): :func:`vpt_rl.policies.sb3.finetune_sb3` (VPTPPO with the KL penalty to the
  frozen starting policy). Resumes from ``OUT_DIR/checkpoint.zip`` (only with the run's settings; it says
  so, and names any that differ); writes ``OUT_DIR/final.zip``, ``OUT_DIR/policy.model`` / ``.weights`` and
  TensorBoard logs in ``OUT_DIR/tb``.
* ``--backend sf``: Sample Factory; every other argument goes unchanged to
  ``vpt_rl.policies.sample_factory.train.main`` (see ``vpt-rl finetune --backend sf --help``).

Examples::

    vpt-rl finetune --backend sb3 --model foundation-model-1x.model --weights foundation-model-1x.weights \\
        --steps 1000000 --n-envs 8 --n-steps 256 --out-dir runs/ft1x --freeze-cnn --bf16
    vpt-rl finetune --backend sb3 --preset tiny --steps 20000 --out-dir runs/scratch      # random init
    vpt-rl finetune --backend sb3 --preset micro --steps 64 --n-envs 2 --n-steps 16 \\
        --env-kwargs '{"max_steps": 200, "world_size": [16, 24, 16]}'
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional, Sequence

from vpt_rl.checkpoint import CheckpointError
from vpt_rl.envs.registration import MINELITE_ID
from vpt_rl.train.args import DefaultsHelpFormatter
from vpt_rl.train.runtime import resolve_device


def _split_backend(argv: Sequence[str]) -> tuple:
    backend, rest, i = "sb3", [], 0
    argv = list(argv)
    while i < len(argv):
        a = argv[i]
        if a == "--backend" and i + 1 < len(argv):
            backend, i = argv[i + 1], i + 2
            continue
        if a.startswith("--backend="):
            backend, i = a.split("=", 1)[1], i + 1
            continue
        rest.append(a)
        i += 1
    return backend, rest


def build_parser() -> argparse.ArgumentParser:
    """Options of the SB3 backend."""
    p = argparse.ArgumentParser(prog="vpt-rl finetune", formatter_class=DefaultsHelpFormatter,
                                description="RL fine-tuning of a VPT policy (SB3 backend; --backend sf for Sample Factory)")
    p.add_argument("--backend", choices=("sb3", "sf"), default="sb3", help="training library (default sb3)")
    p.add_argument("--env", default=MINELITE_ID, help="gymnasium id given to make_vpt_env")
    p.add_argument("--steps", type=int, required=True, help="total env steps (over all envs)")
    p.add_argument("--model", help="official .model file of the starting policy")
    p.add_argument("--weights", help="official .weights file of the starting policy (default: the .weights beside "
                                     "--model, same stem; there must be one)")
    p.add_argument("--preset", "--config", dest="preset",
                   help="preset name or .model file for a randomly initialised policy (instead of --model); "
                        "--config is its old name")
    p.add_argument("--kl-coef", type=float, help="rho of the KL(prior || pi) penalty (default 0.2 with --weights, else 0)")
    p.add_argument("--kl-decay", type=float, default=0.9995, help="rho is multiplied by this each iteration")
    p.add_argument("--ent-coef", type=float, help="entropy bonus (default 0 with --weights, else 0.01)")
    p.add_argument("--lr", type=float, help="learning rate (default 2e-5 with --weights, else 3e-4)")
    p.add_argument("--n-envs", type=int, default=2, help="parallel envs")
    p.add_argument("--n-steps", type=int, default=128, help="steps per env per rollout")
    p.add_argument("--n-epochs", type=int, default=2, help="passes over each rollout")
    p.add_argument("--batch-size", type=int, help="steps per optimizer step (multiple of --segment-len; default: whole rollout)")
    p.add_argument("--segment-len", type=int, help="steps per stored memory (default --n-steps)")
    p.add_argument("--chunk-len", type=int, help="frames per training chunk (default: the net's timesteps)")
    p.add_argument("--value-warmup-iters", type=int, default=0, help="iterations that train only the value head")
    p.add_argument("--gamma", type=float, default=0.999)
    p.add_argument("--freeze-cnn", action="store_true", help="no gradients into the ImpalaCNN")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast for every forward pass")
    p.add_argument("--out-dir", default="runs/sb3", help="checkpoints, final zip, exported .model/.weights, TensorBoard")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vec-env", choices=("dummy", "subproc"), default="dummy")
    p.add_argument("--checkpoint-every", type=int, help="env steps between checkpoints (default: every rollout)")
    p.add_argument("--device", default="auto",
                   help="torch device: auto (cuda when there is a GPU, else cpu), cpu, cuda or cuda:N (default auto; "
                        "with --backend sf: auto, cpu or cuda, given to Sample Factory as its --device gpu|cpu)")
    p.add_argument("--env-kwargs", default="{}", help="JSON dict passed to make_vpt_env, e.g. '{\"max_steps\": 2000}'")
    p.add_argument("--no-export", action="store_true", help="do not write policy.model / policy.weights")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    backend, rest = _split_backend(argv)
    if backend == "sf":
        # lazy: Sample Factory is an optional extra, needed only for this backend
        from vpt_rl.policies.sample_factory.train import main as sf_main

        return int(sf_main(rest) or 0)
    if backend != "sb3":
        print(f"vpt-rl finetune: --backend {backend!r} is not one of 'sb3', 'sf'", file=sys.stderr)
        return 2
    args = build_parser().parse_args(rest)
    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as e:
        print(f"vpt-rl finetune: --env-kwargs {args.env_kwargs!r} is not JSON: {e}", file=sys.stderr)
        return 2
    if not isinstance(env_kwargs, dict):
        print(f"vpt-rl finetune: --env-kwargs must be a JSON object, got {args.env_kwargs!r}", file=sys.stderr)
        return 2
    if "world_size" in env_kwargs and isinstance(env_kwargs["world_size"], list):
        env_kwargs["world_size"] = tuple(env_kwargs["world_size"])
    if args.model is None and args.preset is None:
        print("vpt-rl finetune: give --model (and --weights) or --preset", file=sys.stderr)
        return 2
    try:
        resolve_device(args.device)
    except ValueError as e:
        print(f"vpt-rl finetune: {e}", file=sys.stderr)
        return 2

    # lazy: Stable-Baselines3 is an optional extra (the sf backend and --help work without it)
    from vpt_rl.policies.sb3 import finetune_sb3

    ppo_kwargs = dict(n_epochs=args.n_epochs, kl_decay=args.kl_decay, gamma=args.gamma, value_warmup_iters=args.value_warmup_iters)
    for name in ("batch_size", "segment_len", "chunk_len"):
        if getattr(args, name) is not None:
            ppo_kwargs[name] = getattr(args, name)
    try:
        path = finetune_sb3(
            args.env, args.steps, model=args.model, weights=args.weights, preset=args.preset, kl_coef=args.kl_coef,
            ent_coef=args.ent_coef, n_envs=args.n_envs, n_steps=args.n_steps, out_dir=args.out_dir, seed=args.seed,
            learning_rate=args.lr, vec_env=args.vec_env, checkpoint_every=args.checkpoint_every, device=args.device,
            policy_kwargs=dict(freeze_cnn=args.freeze_cnn, autocast_bf16=args.bf16), ppo_kwargs=ppo_kwargs,
            export=not args.no_export, **env_kwargs,
        )
    except CheckpointError as e:  # a missing .weights, a refused or conflicting checkpoint: one line, no traceback
        print(f"vpt-rl finetune: {e}", file=sys.stderr)
        return 2
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
