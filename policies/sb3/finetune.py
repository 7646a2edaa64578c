"""End-to-end SB3 fine-tuning: the vec-env factory, :func:`finetune_sb3` (resumable, atomic checkpoints,
official-format export) and :func:`export_vpt`."""
from __future__ import annotations

import inspect
import json
import os
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from vpt_rl.atomic import remove_stale_temporaries
from vpt_rl.checkpoint import weights_beside
from vpt_rl.envs.wrappers import make_vpt_env
from vpt_rl.policies.sb3.callbacks import EpisodeCSVCallback, _ProgressAndCheckpoint
from vpt_rl.policies.sb3.policy import VPTPolicy
from vpt_rl.policies.sb3.ppo import VPTPPO
from vpt_rl.policies.sb3.resume import (
    ResumeError,
    load_checkpoint,
    read_resume_record,
    resume_record,
    save_checkpoint,
)
from vpt_rl.train.runtime import resolve_device


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
    device: str = "auto",
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

    Resumes from ``out_dir/checkpoint.zip`` when it exists (training continues up to ``total_steps``): it
    prints ``resuming run OUT_DIR at step N (settings ...)`` and refuses, naming each one with the run's and
    the new value, settings that differ from the run's (everything but ``total_steps``, ``device``,
    ``vec_env``, ``checkpoint_every``, ``export``, the callbacks and the logging). The checkpoint is an SB3
    zip that also holds ``vpt_resume.json``; resuming reads only that JSON and the weights-only state dicts,
    never the zip's pickles (:mod:`.resume`), so a crafted file is refused without running anything.
    Checkpoints are written at rollout boundaries, after the update on that rollout, so a killed run
    that is resumed makes the same PPO updates and KL decays as an uninterrupted one.
    Writes ``out_dir/final.zip`` (atomically), TensorBoard logs under ``out_dir/tb`` and, with ``export``,
    ``out_dir/policy.model`` / ``out_dir/policy.weights`` in the official format.

    :param env_id: gymnasium id passed to ``make_vpt_env`` (e.g. ``"vpt_rl/MineLite-v0"``).
    :param total_steps: env steps in total (over all envs).
    :param model: official ``.model`` file of the pretrained start.
    :param weights: its ``.weights`` file (default: the one beside ``model``, same stem; an error names both
        paths when there is none; ``preset=<.model path>`` asks for a random init of that architecture).
    :param preset: preset name / ``.model`` / dict for a randomly initialised net (instead of ``model``).
    :param kl_coef: rho; default 0.2 with pretrained weights, 0 otherwise (paper).
    :param ent_coef: default 0 with pretrained weights, 0.01 otherwise (paper).
    :param n_envs: parallel envs.
    :param n_steps: steps per env per rollout.
    :param out_dir: output folder.
    :param seed: seed of the algorithm and of the envs (env i gets seed + i).
    :param learning_rate: default 2e-5 with pretrained weights (paper), 3e-4 from scratch.
    :param vec_env: ``"dummy"`` or ``"subproc"``.
    :param checkpoint_every: env steps between checkpoints, taken at the next rollout boundary (default:
        every rollout).
    :param device: ``auto`` (cuda when there is a GPU, else cpu), ``cpu``, ``cuda`` or ``cuda:N``
        (:func:`~vpt_rl.train.runtime.resolve_device`); may change on resume.
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
    device = resolve_device(device)  # a bad name or a GPU this machine lacks fails before any file is touched
    if model is not None and weights is None:
        weights = weights_beside(model)  # never a silent random init (nor its defaults) from a .model
    pretrained = weights is not None
    kl_coef = (0.2 if pretrained else 0.0) if kl_coef is None else float(kl_coef)
    ent_coef = (0.0 if pretrained else 0.01) if ent_coef is None else float(ent_coef)
    learning_rate = (2e-5 if pretrained else 3e-4) if learning_rate is None else float(learning_rate)
    algo_kwargs = dict(learning_rate=learning_rate, n_steps=n_steps, kl_coef=kl_coef, ent_coef=ent_coef, seed=seed,
                       **(ppo_kwargs or {}))
    run = _run_settings(env_id, env_kwargs, model, weights, preset if preset is not None else config, n_envs,
                        algo_kwargs, policy_kwargs or {})
    os.makedirs(out_dir, exist_ok=True)
    remove_stale_temporaries(out_dir)  # half-written checkpoints of a run that was killed
    ckpt = os.path.join(out_dir, "checkpoint.zip")
    final = os.path.join(out_dir, "final.zip")
    resuming = os.path.isfile(ckpt)
    if resuming:  # check the file and the settings before any env or network is built
        _check_resume_settings(ckpt, run, out_dir)
    venv = make_vpt_vec_env(env_id, n_envs=n_envs, seed=seed, vec_env=vec_env, **env_kwargs)
    try:
        if resuming:
            algo = load_checkpoint(ckpt, venv, device=device, tensorboard_log=os.path.join(out_dir, "tb"))
            print(f"resuming run {out_dir} at step {algo.num_timesteps} of {total_steps} "
                  f"(settings {_describe(run)})", flush=True)
        else:
            pk = dict(policy_kwargs or {})
            pk.update({k: v for k, v in (("model", model), ("weights", weights), ("preset", preset), ("config", config)) if v is not None})
            algo = VPTPPO(VPTPolicy, venv, tensorboard_log=os.path.join(out_dir, "tb"), policy_kwargs=pk, device=device,
                          **algo_kwargs)
            resume_record(algo, run)  # a setting a resume file cannot hold fails now, not at the first checkpoint
        curve = None
        if episodes_csv is not None:
            csv_path = os.path.join(out_dir, os.fspath(episodes_csv))
            curve = EpisodeCSVCallback(csv_path, resume_steps=algo.num_timesteps if resuming else None)

        def save(path: str = ckpt) -> None:
            if curve is not None:
                curve.flush()  # the curve never lags a checkpoint
            save_checkpoint(algo, path, run)

        remaining = total_steps - algo.num_timesteps
        if remaining > 0:
            every = checkpoint_every if checkpoint_every is not None else n_steps * n_envs
            # the curve logs a step's episodes before the checkpoint callback may save at that step
            cbs: List[BaseCallback] = [curve] if curve is not None else []
            cbs.append(_ProgressAndCheckpoint(total_steps, save, every, progress_desc))
            cbs += list(callbacks or [])
            algo.learn(remaining, callback=CallbackList(cbs), reset_num_timesteps=not resuming, tb_log_name="VPTPPO")
            save()
        save(final)
        if export:
            algo.export_vpt(os.path.join(out_dir, "policy.model"), os.path.join(out_dir, "policy.weights"))
    finally:
        venv.close()
    return final


# settings that may change between a run and its resume: they change neither the updates nor the data
_RESUMABLE_CHANGES = ("total_steps", "device", "vec_env", "checkpoint_every", "export", "callbacks", "episodes_csv",
                      "progress_desc")


def _run_settings(env_id: str, env_kwargs: Dict[str, Any], model: Optional[str], weights: Optional[str], preset: Any,
                  n_envs: int, algo_kwargs: Dict[str, Any], policy_kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Every setting that shapes a run's updates, defaults filled in, as flat JSON data (tuples as lists, classes
    by name, the starting files by what they hold): what a resume compares. VPTPolicy's kwargs are prefixed
    ``policy_kwargs.``."""
    settings: Dict[str, Any] = dict(
        env_id=env_id, env_kwargs=env_kwargs, n_envs=n_envs, preset=preset,
        model=None if model is None else file_identity(model),
        weights=None if weights is None else file_identity(weights),
    )
    settings.update(_with_defaults(VPTPPO.__init__, algo_kwargs, skip=("policy", "env", "tensorboard_log", "policy_kwargs",
                                                                    "verbose", "device", "_init_setup_model")))
    policy = _with_defaults(VPTPolicy.__init__, policy_kwargs, skip=("observation_space", "action_space", "lr_schedule",
                                                                     "model", "weights", "preset", "config"))
    settings.update({f"policy_kwargs.{k}": v for k, v in policy.items()})
    return json.loads(json.dumps(settings, default=_json_value))


def file_identity(path: Any) -> str:
    """A starting file as a resume compares it: its name, size and a checksum of its first MiB, not its path, so
    a run folder that was moved or reached through another path (relative, symlinked) still resumes, while other
    weights under the same name do not."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    return f"{os.path.basename(path)} ({os.path.getsize(path)} bytes, crc32 {zlib.crc32(head):08x} of the first MiB)"


def _with_defaults(fn: Callable, given: Dict[str, Any], skip: Sequence[str]) -> Dict[str, Any]:
    """``given`` plus the defaults of ``fn``'s other keyword arguments (those in ``skip`` left out)."""
    out = {name: p.default for name, p in inspect.signature(fn).parameters.items()
           if name not in skip and name != "self" and p.default is not inspect.Parameter.empty}
    out.update({k: v for k, v in given.items() if k not in skip})
    return out


def _json_value(o: Any) -> Any:
    if isinstance(o, type):
        return f"{o.__module__}.{o.__qualname__}"
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    if hasattr(o, "to_kwargs"):  # a PolicyConfig
        return o.to_kwargs()
    return repr(o)


def _describe(run: Dict[str, Any]) -> str:
    """The settings a user reads first (all are checked on resume)."""
    keys = ("model", "weights", "preset", "kl_coef", "kl_decay", "ent_coef", "learning_rate", "n_envs", "n_steps",
            "n_epochs", "batch_size", "seed")
    return ", ".join(f"{k}={run[k]}" for k in keys if run.get(k) is not None)


def _check_resume_settings(ckpt: str, run: Dict[str, Any], out_dir: str) -> None:
    """Refuse to resume ``ckpt`` with settings other than the run's, naming each with both values."""
    old = read_resume_record(ckpt)["run"]
    diff = [f"{k}: run {old.get(k)!r}, now {run.get(k)!r}" for k in sorted(set(old) | set(run)) if old.get(k) != run.get(k)]
    if diff:
        raise ResumeError(
            f"{out_dir!r} holds a run started with other settings ({'; '.join(diff)}). Rerun with the run's "
            f"settings to resume it, or start fresh with another --out-dir / out_dir (or delete {ckpt!r}); "
            f"only {', '.join(_RESUMABLE_CHANGES)} may change on resume"
        )


def export_vpt(zip_path: str, model_path: str, weights_path: str, device: str = "cpu") -> None:
    """Export the network of a saved :class:`VPTPPO` zip as an official ``.model`` / ``.weights`` pair."""
    algo = VPTPPO.load(zip_path, device=device)
    algo.export_vpt(model_path, weights_path)
