"""End-to-end SB3 fine-tuning: the vec-env factory, :func:`finetune_sb3` (resumable, atomic checkpoints,
official-format export) and :func:`export_vpt`."""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from vpt_rl.envs.wrappers import make_vpt_env
from vpt_rl.policies.sb3.callbacks import EpisodeCSVCallback, _ProgressAndCheckpoint, atomic_save
from vpt_rl.policies.sb3.policy import VPTPolicy
from vpt_rl.policies.sb3.ppo import VPTPPO


def _make_env_fn(env_id: str, seed: int, env_kwargs: Dict[str, Any]) -> Callable[[], Any]:
    def _thunk():
        env = make_vpt_env(env_id, **env_kwargs)
        env = Monitor(env)
        env.reset(seed=seed)
        return env

    return _thunk


def make_vpt_vec_env(env_id: str, n_envs: int = 1, seed: int = 0, vec_env: str = "dummy", **env_kwargs: Any) -> VecEnv:
    """A ``DummyVecEnv`` (``vec_env="dummy"``) or ``SubprocVecEnv`` (``"subproc"``) of
    ``Monitor(make_vpt_env(env_id, **env_kwargs))``, env ``i`` seeded with ``seed + i``."""
    if n_envs < 1:
        raise ValueError(f"n_envs={n_envs} must be >= 1")
    fns = [_make_env_fn(env_id, seed + i, env_kwargs) for i in range(n_envs)]
    if vec_env == "dummy":
        return DummyVecEnv(fns)
    if vec_env == "subproc":
        return SubprocVecEnv(fns)
    raise ValueError(f"vec_env={vec_env!r}; expected 'dummy' or 'subproc'")




def finetune_sb3(
    env_id: str,
    total_steps: int,
    model: Optional[str] = None,
    weights: Optional[str] = None,
    preset: Any = None,
    kl_coef: Optional[float] = None,
    ent_coef: Optional[float] = None,
    n_envs: int = 2,
    n_steps: int = 128,
    out_dir: str = "runs/sb3",
    seed: int = 0,
    learning_rate: Optional[float] = None,
    vec_env: str = "dummy",
    checkpoint_every: Optional[int] = None,
    device: str = "cpu",
    policy_kwargs: Optional[Dict[str, Any]] = None,
    ppo_kwargs: Optional[Dict[str, Any]] = None,
    export: bool = True,
    callbacks: Optional[Sequence[BaseCallback]] = None,
    episodes_csv: Optional[Union[str, os.PathLike]] = None,
    progress_desc: str = "sb3 finetune",
    config: Any = None,
    **env_kwargs: Any,
) -> str:
    """Fine-tune (or train from scratch) a VPT policy with :class:`VPTPPO` and return the saved zip's path.

    Resumes from ``out_dir/checkpoint.zip`` when it exists (training continues up to ``total_steps``).
    Writes ``out_dir/final.zip`` (atomically), TensorBoard logs under ``out_dir/tb`` and, with ``export``,
    ``out_dir/policy.model`` / ``out_dir/policy.weights`` in the official format.

    :param env_id: gymnasium id passed to ``make_vpt_env`` (e.g. ``"vpt_rl/MineLite-v0"``).
    :param total_steps: env steps in total (over all envs).
    :param model: official ``.model`` file (pretrained start with ``weights``).
    :param weights: official ``.weights`` file.
    :param preset: preset name / ``.model`` / dict for a randomly initialised net (instead of ``model``).
    :param kl_coef: rho; default 0.2 with pretrained weights, 0 otherwise (paper).
    :param ent_coef: default 0 with pretrained weights, 0.01 otherwise (paper).
    :param n_envs: parallel envs.
    :param n_steps: steps per env per rollout.
    :param out_dir: output folder.
    :param seed: seed of the algorithm and of the envs (env i gets seed + i).
    :param learning_rate: default 2e-5 with pretrained weights (paper), 3e-4 from scratch.
    :param vec_env: ``"dummy"`` or ``"subproc"``.
    :param checkpoint_every: env steps between checkpoints (default: every rollout).
    :param device: torch device.
    :param policy_kwargs: extra :class:`VPTPolicy` kwargs (``freeze_cnn``, ``autocast_bf16``, ...).
    :param ppo_kwargs: extra :class:`VPTPPO` kwargs (``n_epochs``, ``batch_size``, ``segment_len``, ...).
    :param export: also write the official ``.model`` / ``.weights`` pair.
    :param callbacks: extra SB3 callbacks, run after the built-in progress/checkpoint callback.
    :param episodes_csv: path (relative paths are inside ``out_dir``) of a per-episode learning curve
        written by :class:`EpisodeCSVCallback`: ``steps,return,length,milestones`` rows, ``steps`` = env steps over all
        envs when the episode ended. Flushed before every checkpoint; on resume the rows up to the
        checkpoint's step count are kept, so the curve of a resumed run equals an uninterrupted one's rows.
    :param progress_desc: the progress bar's label.
    :param config: the old name of ``preset`` (still accepted).
    :param env_kwargs: passed to ``make_vpt_env``.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps={total_steps} must be >= 1")
    pretrained = weights is not None
    kl_coef = (0.2 if pretrained else 0.0) if kl_coef is None else float(kl_coef)
    ent_coef = (0.0 if pretrained else 0.01) if ent_coef is None else float(ent_coef)
    learning_rate = (2e-5 if pretrained else 3e-4) if learning_rate is None else float(learning_rate)
    os.makedirs(out_dir, exist_ok=True)
    ckpt = os.path.join(out_dir, "checkpoint.zip")
    final = os.path.join(out_dir, "final.zip")
    venv = make_vpt_vec_env(env_id, n_envs=n_envs, seed=seed, vec_env=vec_env, **env_kwargs)
    try:
        if os.path.isfile(ckpt):
            algo = VPTPPO.load(ckpt, env=venv, device=device)
            algo.tensorboard_log = os.path.join(out_dir, "tb")
            reset = False
        else:
            pk = dict(policy_kwargs or {})
            pk.update({k: v for k, v in (("model", model), ("weights", weights), ("preset", preset), ("config", config)) if v is not None})
            algo = VPTPPO(
                VPTPolicy, venv, learning_rate=learning_rate, n_steps=n_steps, kl_coef=kl_coef, ent_coef=ent_coef,
                tensorboard_log=os.path.join(out_dir, "tb"), policy_kwargs=pk, seed=seed, device=device, **(ppo_kwargs or {}),
            )
            reset = True
        curve = None
        if episodes_csv is not None:
            csv_path = os.path.join(out_dir, os.fspath(episodes_csv))
            curve = EpisodeCSVCallback(csv_path, resume_steps=None if reset else algo.num_timesteps)
        remaining = total_steps - algo.num_timesteps
        if remaining > 0:
            every = checkpoint_every if checkpoint_every is not None else n_steps * n_envs
            # the curve logs a step's episodes before the checkpoint callback may save at that step
            cbs: List[BaseCallback] = [curve] if curve is not None else []
            cbs.append(_ProgressAndCheckpoint(total_steps, ckpt, every, progress_desc,
                                              before_save=curve.flush if curve is not None else None))
            cbs += list(callbacks or [])
            algo.learn(remaining, callback=CallbackList(cbs), reset_num_timesteps=reset, tb_log_name="VPTPPO")
            if curve is not None:
                curve.flush()
            atomic_save(algo, ckpt)
        if curve is not None:
            curve.flush()
        atomic_save(algo, final)
        if export:
            algo.export_vpt(os.path.join(out_dir, "policy.model"), os.path.join(out_dir, "policy.weights"))
    finally:
        venv.close()
    return final


def export_vpt(zip_path: str, model_path: str, weights_path: str, device: str = "cpu") -> None:
    """Export the network of a saved :class:`VPTPPO` zip as an official ``.model`` / ``.weights`` pair."""
    algo = VPTPPO.load(zip_path, device=device)
    algo.export_vpt(model_path, weights_path)
