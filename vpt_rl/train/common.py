"""Shared bits of the IDM / labelling / BC scripts: ``Args`` parsing, schedules, atomic files, DDP,
and a small synthetic contractor-segment writer used by tests and benchmarks.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import math
import os
import random
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Optional, Sequence, Union, get_type_hints

import numpy as np
import torch

from vpt_rl.atomic import atomic_torch_save, atomic_write_text  # noqa: F401  (re-exported)

# ---------------------------------------------------------------------------------------------------
# CleanRL-style Args: a dataclass with a docstring per field, parsed with argparse


def _field_docs(cls) -> dict:
    """Map field name -> the string literal that follows it in the class body (CleanRL convention)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for node, nxt in zip(body, body[1:] + [None]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant) \
                    and isinstance(nxt.value.value, str):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _str2bool(v: str) -> bool:
    low = str(v).lower()
    if low in ("1", "true", "yes", "y", "on"):
        return True
    if low in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {v!r}")


def parse_args(cls, argv: Optional[Sequence[str]] = None, description: Optional[str] = None):
    """Parse ``argv`` into the dataclass ``cls``; each field becomes ``--field-name`` with its docstring.

    Booleans accept ``--flag`` / ``--no-flag`` / ``--flag true``; ``list[...]`` fields take several
    values (a field with ``metadata={"positional": True}`` takes them as positional arguments and as
    ``--name``); ``metadata={"aliases": ["other-name"]}`` adds ``--other-name`` for a field;
    ``Optional[X]`` accepts ``none``.
    """
    hints = get_type_hints(cls)
    docs = _field_docs(cls)
    parser = argparse.ArgumentParser(description=(description or (cls.__doc__ or "").strip()).replace("%", "%%"),
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    positional = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore
        flags = ["--" + f.name.replace("_", "-")] + ["--" + a for a in f.metadata.get("aliases", ())]
        help_ = docs.get(f.name, "").replace("%", "%%")  # argparse formats help strings with %
        origin = getattr(hint, "__origin__", None)
        args = getattr(hint, "__args__", ())
        optional = origin is Union and type(None) in args
        if optional:
            hint = next(a for a in args if a is not type(None))
            origin = getattr(hint, "__origin__", None)
            args = getattr(hint, "__args__", ())
        if hint is bool:
            parser.add_argument(*flags, dest=f.name, type=_str2bool, nargs="?", const=True, default=default,
                                help=help_)
            parser.add_argument("--no-" + f.name.replace("_", "-"), dest=f.name, action="store_false",
                                help=argparse.SUPPRESS)
        elif origin in (list, tuple):
            elem = args[0] if args else str
            if f.metadata.get("positional"):
                parser.add_argument("_pos_" + f.name, metavar=f.name.upper(), type=elem, nargs="*", default=[],
                                    help=help_)
                parser.add_argument(*flags, dest=f.name, type=elem, nargs="*", action="extend", default=None,
                                    help="same as the positional " + f.name.upper())
                positional.append((f.name, default))
            else:
                parser.add_argument(*flags, dest=f.name, type=elem, nargs="*", default=default, help=help_)
        else:
            typ = hint if hint in (int, float, str) else str
            if optional:
                base = typ

                def typ(v, base=base):  # noqa: E306
                    return None if str(v).lower() == "none" else base(v)
            parser.add_argument(*flags, dest=f.name, type=typ, default=default, help=help_)
    ns = parser.parse_args(list(argv) if argv is not None else None)
    values = vars(ns)
    for name, default in positional:
        merged = list(values.pop("_pos_" + name)) + list(values.get(name) or [])
        values[name] = merged if merged else default
    return cls(**values)


# ---------------------------------------------------------------------------------------------------
# Small utilities


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def lr_at(step: int, base_lr: float, warmup_steps: int, total_steps: int, min_ratio: float = 0.1) -> float:
    """Linear warm-up for ``warmup_steps``, then cosine decay to ``min_ratio * base_lr`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> cuda if available else cpu; anything else is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def summary_writer(logdir: Optional[Union[str, Path]]):
    """A TensorBoard ``SummaryWriter`` for ``logdir`` (None: a writer that drops everything)."""
    if not logdir:
        return _NullWriter()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(logdir))


class _NullWriter:
    def add_scalar(self, *a, **k):
        pass

    def add_text(self, *a, **k):
        pass

    def flush(self):
        pass

    def close(self):
        pass


# ---------------------------------------------------------------------------------------------------
# Distributed (torchrun) helpers: torch.distributed, nothing home-made


def dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun environment; (0, 1, 0) outside torchrun."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Initialise the default process group when launched by torchrun (gloo on CPU, NCCL on CUDA)."""
    rank, world, _ = dist_env()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
    return rank, world


def all_reduce_mean(values: Sequence[float], world: int) -> list[float]:
    """Average a few floats over the process group (identity with one process)."""
    if world <= 1:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return (t / world).tolist()


# ---------------------------------------------------------------------------------------------------
# Video writing and a synthetic, learnable contractor segment (tests and benchmarks)


def write_video(path: Union[str, Path], frames: Sequence[np.ndarray], fps: int = 20, crf: int = 18) -> Path:
    """Encode RGB uint8 frames to an H.264 mp4 with PyAV (atomically: temp file, then ``os.replace``)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = list(frames)
    if not frames:
        raise ValueError(f"cannot write an empty video to {path}")
    h, w = frames[0].shape[:2]
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "ultrafast"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path


_BUTTON_KEYS = {
    "forward": "key.keyboard.w", "back": "key.keyboard.s", "left": "key.keyboard.a",
    "right": "key.keyboard.d", "jump": "key.keyboard.space", "sneak": "key.keyboard.left.shift",
    "sprint": "key.keyboard.left.control", "drop": "key.keyboard.q", "inventory": "key.keyboard.e",
}
_SYN_BUTTONS = ["attack", "back", "forward", "jump", "left", "right", "sneak", "sprint", "use", "drop",
                "inventory"] + [f"hotbar.{i}" for i in range(1, 10)]


def synthetic_segment(n_frames: int, seed: int = 0, size: int = 128, gui_prob: float = 0.0,
                      press_prob: float = 0.08, camera_prob: float = 0.35):
    """A learnable fake recording: ``(frames (N, size, size, 3) uint8, jsonl lines)``.

    The view is a window onto a large random texture; the camera action of step ``t`` (degrees, shown
    to the mouse as ``deg / 0.15`` counts) shifts the window of frame ``t + 1`` by ``2 px / degree``, and
    each of the 20 buttons pressed at step ``t`` lights one cell of a strip at the bottom of frame
    ``t + 1``. So the action at ``t`` can be read from frames ``t`` and ``t + 1``, as in the game.
    """
    rng = np.random.default_rng(seed)
    world = 4 * size
    tex = rng.integers(0, 256, size=(world // 16, world // 16, 3), dtype=np.uint8)
    import cv2

    tex = cv2.resize(tex, (world, world), interpolation=cv2.INTER_CUBIC)
    bins = np.array([-10, -5.80948, -3.21537, -1.60950, -0.61539, 0.61539, 1.60950, 3.21537, 5.80948, 10])
    pos = np.array([world / 2 - size / 2, world / 2 - size / 2])
    frames, lines = [], []
    pressed_prev = np.zeros(20, bool)
    flags_prev = np.zeros(20, bool)  # the buttons of step t - 1, drawn on frame t
    hotbar = 0
    for t in range(n_frames):
        y0 = int(np.clip(pos[0], 0, world - size))
        x0 = int(np.clip(pos[1], 0, world - size))
        frame = tex[y0:y0 + size, x0:x0 + size].copy()
        cell = size // 20
        for i in np.flatnonzero(flags_prev):
            frame[size - cell:, i * cell:(i + 1) * cell] = 255
        frames.append(frame)
        # action of step t
        pressed = np.where(rng.random(20) < 0.7, pressed_prev, rng.random(20) < press_prob)
        pressed[11:] = False
        if rng.random() < press_prob / 2:
            pressed[11 + rng.integers(0, 9)] = True
        cam = np.zeros(2)
        if rng.random() < camera_prob:
            cam = rng.choice(bins, size=2) * (rng.random(2) < 0.7)
        keys = [_BUTTON_KEYS[name] for name, p in zip(_SYN_BUTTONS, pressed) if p and name in _BUTTON_KEYS]
        hb = [i for i in range(9) if pressed[11 + i]]
        keys += [f"key.keyboard.{i + 1}" for i in hb]
        if hb:
            hotbar = hb[-1]
        buttons = [b for b, name in ((0, "attack"), (1, "use")) if pressed[_SYN_BUTTONS.index(name)]]
        lines.append({
            "mouse": {"x": 640.0, "y": 360.0, "dx": float(cam[1] / 0.15), "dy": float(cam[0] / 0.15),
                      "scaledX": 0.0, "scaledY": 0.0, "dwheel": 0.0, "buttons": buttons,
                      "newButtons": [b for b in buttons if t > 0 and not pressed_prev[_SYN_BUTTONS.index(
                          "attack" if b == 0 else "use")]]},
            "keyboard": {"keys": keys, "newKeys": [], "chars": ""},
            "isGuiOpen": bool(rng.random() < gui_prob), "hotbar": hotbar, "tick": t,
        })
        pressed_prev = pressed
        # what frame t+1 will show: the env action the contractor rules will give (incl. hotbar fix)
        flags_prev = pressed.copy()
        pos = pos + 2.0 * cam
    return np.stack(frames), lines


def write_synthetic_segment(stem: Union[str, Path], n_frames: int, seed: int = 0, **kw) -> Path:
    """Write :func:`synthetic_segment` as ``stem.mp4`` + ``stem.jsonl``; returns the mp4 path."""
    stem = Path(stem)
    frames, lines = synthetic_segment(n_frames, seed=seed, **kw)
    mp4 = write_video(stem.with_suffix(".mp4"), frames)
    atomic_write_text(stem.with_suffix(".jsonl"), "".join(json.dumps(line) + "\n" for line in lines))
    return mp4


# ---------------------------------------------------------------------------------------------------
# Output-head initialisation from the label prior


def prior_log_probs(counts: np.ndarray, smoothing: float = 0.1) -> np.ndarray:
    """Smoothed log-frequencies ``log((count + a) / (total + a * K))`` along the last axis (K classes).

    :param counts: non-negative class counts, any leading shape, classes on the last axis.
    :param smoothing: pseudo-count ``a`` added to every class (> 0, so unseen classes stay finite).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim < 1 or counts.shape[-1] < 1 or (counts < 0).any() or not np.isfinite(counts).all():
        raise ValueError(f"counts must be finite non-negative class counts, got shape {counts.shape}")
    if not smoothing > 0:
        raise ValueError(f"smoothing must be > 0, got {smoothing!r}")
    k = counts.shape[-1]
    return np.log((counts + smoothing) / (counts.sum(-1, keepdims=True) + smoothing * k))


@torch.no_grad()
def init_head_from_prior(linear: torch.nn.Linear, log_prior: np.ndarray, gain: float = 0.01,
                         temperature: float = 1.0) -> None:
    """Start an action head at the label prior: weight orthogonal with ``gain``, bias = ``log_prior``.

    Why: with the PyTorch default head init, the first optimizer steps of a small IDM/policy are spent
    fitting the label marginals through the trunk, and at the learning rates short CPU runs need the
    trunk's features collapse to a constant (every frame gets the prior; measured in
    docs/experiments/2026-12-02-idm-camera.md). Starting the head at the prior with near-zero weights (the official heads'
    intended ``reset_parameters``: orthogonal, gain 0.01, which the official code never calls) leaves only
    the frame-dependent part to learn. ``log_prior`` is flattened in the head's output order; the bias is
    multiplied by ``temperature`` so that the head's output after the temperature division is the prior.
    """
    prior = torch.as_tensor(np.asarray(log_prior, dtype=np.float32).reshape(-1))
    if linear.bias is None or prior.numel() != linear.bias.numel():
        raise ValueError(f"log_prior has {prior.numel()} entries, the head has "
                         f"{None if linear.bias is None else linear.bias.numel()} outputs")
    torch.nn.init.orthogonal_(linear.weight, gain=gain)
    linear.bias.copy_(prior.to(linear.bias.device, linear.bias.dtype) * float(temperature))
