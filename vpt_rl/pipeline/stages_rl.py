"""The ``rl`` stage: RL fine-tuning from the foundation model and from random init, and their learning curves."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence

from vpt_rl.pipeline.files import check_files, link_or_copy, read_json, up_to_date, write_json_atomic

if TYPE_CHECKING:  # annotations only: the engine imports this module
    from vpt_rl.pipeline.engine import StageContext

RL_SEED_OFFSET = 1000
"""both RL runs use seed ``pipeline seed + RL_SEED_OFFSET`` (envs and algorithm)"""


def stage_rl(ctx: StageContext) -> Dict[str, Any]:
    """Fine-tune from the foundation model (or, with ``ft_steps > 0``, its early-game fine-tuned version; KL to
    the model it starts from, no entropy bonus) and from random init (entropy
    bonus, no KL) with the same env-step budget; export each to ``.model``/``.weights`` and write its
    learning curve (episode return vs env steps) to ``rl/<run>/curve.json``."""
    cfg = ctx.cfg
    fmodel, fweights = ctx.rl_start_paths
    runs = {
        "pretrained": dict(model=str(fmodel), weights=str(fweights), config=None, kl_coef=cfg.kl_coef, ent_coef=0.0),
        "random": dict(model=None, weights=None, config=cfg.policy_preset, kl_coef=0.0, ent_coef=cfg.ent_coef_random),
    }
    summary = {}
    want = ctx.stage_config("rl")
    for run, kw in runs.items():
        run_dir = ctx.rl_dir(run)
        done = run_dir / "run.done"
        if not ctx.force and up_to_date(done, want, key="config"):
            ctx.log(f"[pipeline] rl/{run}: done already, skipping")
            summary[run] = read_json(done)
            continue
        # finished with other settings, or started with other settings: start over (else resume)
        if run_dir.exists() and (ctx.force or done.exists() or _stale_run(run_dir, want)):
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "run.config", want)
        t0 = time.time()
        # the same seed for both runs (a controlled comparison): env i of either run plays the worlds
        # seed + 1000 + i, ..., and the algorithm (torch/numpy) seed is seed + 1000 too
        info = _finetune(ctx, run, run_dir, seed=ctx.seed + RL_SEED_OFFSET, **kw)
        curve = read_learning_curve(run_dir)
        write_json_atomic(run_dir / "curve.json", curve)
        info.update(seconds=round(time.time() - t0, 1), episodes=len(curve["steps"]), config=want)
        write_json_atomic(done, info)
        summary[run] = info
    return summary


def _stale_run(run_dir: Path, want: Dict[str, Any]) -> bool:
    """True when an unfinished run in ``run_dir`` was started with other settings (not resumable)."""
    return not up_to_date(run_dir / "run.config", want)


def _finetune(ctx: StageContext, run: str, run_dir: Path, *, model, weights, config, kl_coef, ent_coef,
              seed) -> Dict[str, Any]:
    """One RL run with the chosen backend; exports ``policy.model``/``.weights`` into ``run_dir``."""
    cfg = ctx.cfg
    model_out, weights_out = ctx.rl_paths(run)
    if ctx.backend == "sb3":
        from vpt_rl.policies.sb3 import finetune_sb3  # optional extra (stable-baselines3)

        # checkpoint (and episodes.csv) every rollout; resumes from run_dir/checkpoint.zip
        zip_path = finetune_sb3(
            ctx.env_id, cfg.rl_steps, model=model, weights=weights, preset=config, kl_coef=kl_coef,
            ent_coef=ent_coef, n_envs=cfg.rl_n_envs, n_steps=cfg.rl_n_steps, out_dir=str(run_dir), seed=seed,
            learning_rate=cfg.rl_lr, device=ctx.device, episodes_csv=EPISODES_CSV, progress_desc=f"rl {run}",
            max_steps=cfg.rl_max_ticks, **ctx.env_kwargs())
        result = {"zip": str(zip_path)}
    else:
        from vpt_rl.policies.sample_factory import finetune_sf  # optional extra (sample-factory)

        exported = Path(finetune_sf(
            ctx.env_id, cfg.rl_steps, model=model, weights=weights, preset=config, kl_coef=kl_coef,
            ent_coef=ent_coef, num_workers=cfg.rl_n_envs, out_dir=str(run_dir), seed=seed, experiment=run,
            extra_args={"episode_steps": cfg.rl_max_ticks, "learning_rate": cfg.rl_lr},
            env_kwargs=ctx.env_kwargs(), device=ctx.device))
        link_or_copy(exported, weights_out)
        link_or_copy(exported.with_suffix(".model"), model_out)
        result = {"exported": str(exported)}
    check_files(model_out, weights_out)
    result.update(model=str(model_out), weights=str(weights_out), kl_coef=kl_coef, ent_coef=ent_coef,
                  init="foundation" if model else f"random ({config})", env_steps=cfg.rl_steps)
    return result


EPISODES_CSV = "episodes.csv"


def read_learning_curve(run_dir: os.PathLike) -> Dict[str, Any]:
    """Episode return vs env steps of an RL run: from ``run_dir/episodes.csv`` (written by
    :func:`vpt_rl.policies.sb3.finetune_sb3` with ``episodes_csv=``: ``steps,return,length,milestones``; the
    result then also has ``milestones``, the names each episode reached), else from SB3 Monitor CSVs
    (``*monitor.csv``: ``r,l,t`` rows; episodes of all envs ordered by wall time, lengths summed), else
    from TensorBoard: SB3's ``rollout/ep_rew_mean`` or Sample Factory's ``policy_stats/avg_episode_return``
    (the ``EpisodeStats`` wrapper's return) / ``policy_stats/avg_reward``, against env steps."""
    run_dir = Path(run_dir)
    ep_csv = run_dir / EPISODES_CSV
    if ep_csv.is_file():
        from vpt_rl.policies.sb3 import read_episodes_csv  # optional extra: only SB3 runs write this file

        rows = read_episodes_csv(ep_csv, milestones=True)
        return {"steps": [r[0] for r in rows], "returns": [r[1] for r in rows],
                "milestones": [list(r[3]) for r in rows], "source": EPISODES_CSV}
    rows = []
    for csv_path in sorted(run_dir.rglob("*monitor.csv")):
        with open(csv_path) as f:
            lines = [ln for ln in f if not ln.startswith("#")]
        if not lines:
            continue
        header = lines[0].strip().split(",")
        try:
            ir, il, it = header.index("r"), header.index("l"), header.index("t")
        except ValueError:
            continue
        for ln in lines[1:]:
            parts = ln.strip().split(",")
            if len(parts) >= len(header):
                rows.append((float(parts[it]), float(parts[ir]), int(float(parts[il]))))
    if rows:
        rows.sort()
        steps, total = [], 0
        for _, _, length in rows:
            total += length
            steps.append(total)
        return {"steps": steps, "returns": [r for _, r, _ in rows], "source": "monitor"}
    tb = _tensorboard_curve(run_dir, ("rollout/ep_rew_mean", "policy_stats/avg_episode_return", "policy_stats/avg_reward",
                                          "reward/reward"))
    if tb is not None:
        return tb
    return {"steps": [], "returns": [], "source": "none"}


def _tensorboard_curve(run_dir: Path, tags: Sequence[str]) -> Optional[Dict[str, Any]]:
    files = sorted(run_dir.rglob("events.out.tfevents.*"))
    if not files:
        return None
    try:
        # optional here (the curve falls back to nothing): only Sample Factory runs need it
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:  # pragma: no cover
        return None
    for tag in tags:
        pts = []
        for f in files:
            acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
            acc.Reload()
            if tag in acc.Tags().get("scalars", []):
                pts += [(e.step, e.value) for e in acc.Scalars(tag)]
        if pts:
            pts.sort()
            return {"steps": [p[0] for p in pts], "returns": [p[1] for p in pts], "source": f"tensorboard:{tag}"}
    return None
