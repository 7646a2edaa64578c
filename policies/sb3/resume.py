"""Checkpoints of :func:`~vpt_rl.policies.sb3.finetune_sb3` that resume without unpickling anything.

A checkpoint is an ordinary SB3 zip (``VPTPPO.save``; ``VPTPPO.load`` still opens it) with one more entry,
``vpt_resume.json``: the numbers that rebuild the algorithm (its constructor arguments, the file-free policy
kwargs), its progress counters and the run's settings. :func:`load_checkpoint` reads only that JSON and the
zip's ``.pth`` state dicts, with ``torch.load(weights_only=True)``; it never reads the zip's ``data`` entry,
whose cloudpickled objects (policy class, spaces, schedules) SB3's own ``load`` unpickles, i.e. runs. So a
crafted ``checkpoint.zip`` in an output folder cannot run code when ``vpt-rl finetune`` resumes from it: it
is refused with :class:`ResumeError` before anything is built.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
from typing import Any, Dict, Mapping, Optional

import torch as th

from vpt_rl.atomic import atomic_output
from vpt_rl.checkpoint import CheckpointError, check_state_dict
from vpt_rl.policies.sb3.policy import VPTPolicy
from vpt_rl.policies.sb3.ppo import VPTPPO

RESUME_ENTRY = "vpt_resume.json"
RESUME_FORMAT = "vpt-rl sb3 resume"
RESUME_VERSION = 1
# the only state dicts a resume reads; SB3 writes them as <name>.pth
STATE_ENTRIES = ("policy.pth", "policy.optimizer.pth")
# progress counters restored on resume (the KL coefficient is the decayed, current one)
PROGRESS = ("num_timesteps", "_n_updates", "_n_iterations", "_episode_num", "kl_coef")


class ResumeError(CheckpointError):
    """A resume checkpoint was refused: not written by vpt-rl, unsafe, malformed, or for other settings."""


def _optimizer_name(cls: Any) -> str:
    """A ``torch.optim`` class by name: the only optimizers a resume file may name."""
    name = getattr(cls, "__name__", "")
    if getattr(th.optim, name, None) is not cls:
        raise ValueError(f"optimizer_class={cls!r} cannot be stored in a resume file; use a torch.optim optimizer")
    return name


def _optimizer_class(name: Any, path: str) -> type:
    cls = getattr(th.optim, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, th.optim.Optimizer)):
        raise ResumeError(f"{path!r}: optimizer_class {name!r} is not a torch.optim optimizer; refusing it")
    return cls


def _plain(value: Any, what: str) -> Any:
    """``value`` as JSON data (tuples become lists), or a ValueError naming ``what``."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        raise ValueError(f"{what}={value!r} is not plain JSON data (numbers, strings, lists, dicts), which a resume "
                         "file needs; pass numbers instead of schedules or objects") from None


def resume_record(algo: VPTPPO, run: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The JSON that :func:`load_checkpoint` rebuilds ``algo`` from: constructor numbers, policy kwargs,
    progress counters and the run's settings (``run``, compared on resume by :func:`finetune_sb3`).

    :raises ValueError: a setting that is not plain data (a schedule, a custom optimizer class).
    """
    policy_kwargs = dict(algo.policy.portable_kwargs())
    policy_kwargs["optimizer_class"] = _optimizer_name(policy_kwargs["optimizer_class"])
    progress = {k: getattr(algo, k) for k in PROGRESS}
    return {
        "format": RESUME_FORMAT,
        "version": RESUME_VERSION,
        "algo": _plain(algo.hyperparams, "VPTPPO settings"),
        "policy": _plain(policy_kwargs, "policy_kwargs"),
        "progress": _plain(progress, "progress"),
        "run": _plain(dict(run or {}), "run settings"),
    }


def save_checkpoint(algo: VPTPPO, path: str, run: Optional[Mapping[str, Any]] = None) -> None:
    """``algo.save(path)`` plus ``vpt_resume.json``, written atomically (a kill leaves the old file)."""
    record = resume_record(algo, run)
    with atomic_output(path, suffix=".zip") as tmp:  # ends in .zip, so that SB3 does not append one
        algo.save(str(tmp))
        with zipfile.ZipFile(tmp, "a") as zf:
            zf.writestr(RESUME_ENTRY, json.dumps(record, indent=1))


def read_resume_record(path: str) -> Dict[str, Any]:
    """The ``vpt_resume.json`` of a checkpoint (JSON only; nothing is unpickled).

    :raises ResumeError: not a zip, no ``vpt_resume.json`` (e.g. a zip saved by plain ``VPTPPO.save``, which
        only SB3's unpickling ``load`` can open), or a malformed record.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if RESUME_ENTRY not in names:
                raise ResumeError(
                    f"{path!r} has no {RESUME_ENTRY}: it was not written by vpt-rl finetune (or by a version "
                    f"before resume files), and resuming from it would unpickle its contents, which can run "
                    f"code. Refusing it. Start fresh with another output folder, or, if you trust the file, "
                    f"open it with VPTPPO.load"
                )
            missing = [n for n in STATE_ENTRIES if n not in names]
            if missing:
                raise ResumeError(f"{path!r} lacks {missing}; expected {list(STATE_ENTRIES)} beside {RESUME_ENTRY}")
            record = json.loads(zf.read(RESUME_ENTRY).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResumeError(f"{path!r} is not a readable vpt-rl checkpoint (truncated or corrupt): {e}") from None
    ok = isinstance(record, dict) and record.get("format") == RESUME_FORMAT
    if not ok or record.get("version") != RESUME_VERSION:
        raise ResumeError(f"{path!r}: {RESUME_ENTRY} is not a {RESUME_FORMAT!r} record of version {RESUME_VERSION}")
    for key in ("algo", "policy", "progress", "run"):
        if not isinstance(record.get(key), dict):
            raise ResumeError(f"{path!r}: {RESUME_ENTRY} has no {key!r} object")
    return record


def _read_state(zf: zipfile.ZipFile, name: str, path: str, device: Any) -> Dict[str, Any]:
    try:
        with zf.open(name) as f:
            return th.load(f, map_location=device, weights_only=True)
    except Exception as e:  # weights_only refuses any pickle that would import or call something
        first = str(e).splitlines()[0] if str(e) else ""
        raise ResumeError(f"refused {name} in {path!r} (torch.load weights_only=True): {type(e).__name__}: {first}") from None


def load_checkpoint(path: str, env: Any, device: Any = "cpu", tensorboard_log: Optional[str] = None) -> VPTPPO:
    """Rebuild a :class:`VPTPPO` from a :func:`save_checkpoint` file onto ``env``, without unpickling.

    The algorithm is constructed from the record's numbers (the batch follows ``env``'s number of envs when
    it was the whole rollout), then the policy (with the frozen prior) and optimizer state are loaded
    strictly from the zip's ``.pth`` entries and the progress counters are restored.

    :raises ResumeError: anything unexpected in the file (see :func:`read_resume_record`).
    """
    record = read_resume_record(path)
    pk = dict(record["policy"])
    pk["optimizer_class"] = _optimizer_class(pk.get("optimizer_class"), path)
    try:
        algo = VPTPPO(VPTPolicy, env, policy_kwargs=pk, device=device, tensorboard_log=tensorboard_log,
                      **record["algo"])
    except TypeError as e:
        raise ResumeError(f"{path!r}: {RESUME_ENTRY} has settings VPTPPO does not take: {e}") from None
    with zipfile.ZipFile(path) as zf:
        policy_sd = _read_state(zf, "policy.pth", path, device)
        optim_sd = _read_state(zf, "policy.optimizer.pth", path, device)
    if not isinstance(policy_sd, dict) or not all(isinstance(v, th.Tensor) for v in policy_sd.values()):
        raise ResumeError(f"{path!r}: policy.pth is not a state dict of tensors")
    check_state_dict(algo.policy, policy_sd, source=f"policy.pth in {path!r}")
    algo.policy.load_state_dict(policy_sd, strict=True)
    try:
        algo.policy.optimizer.load_state_dict(optim_sd)
    except (ValueError, KeyError, TypeError) as e:
        raise ResumeError(f"{path!r}: policy.optimizer.pth does not fit the optimizer: {e}") from None
    progress = record["progress"]
    for key in PROGRESS:
        value = progress.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise ResumeError(f"{path!r}: progress {key}={value!r} is not a number >= 0")
        setattr(algo, key, float(value) if key == "kl_coef" else int(value))
    return algo
