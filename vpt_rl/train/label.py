"""Label unlabelled videos with an inverse dynamics model (IDM), writing contractor-format jsonl.

Run::

    vpt-rl label data/unlabelled --idm-model runs/idm/idm.model --idm-weights runs/idm/idm.weights
    vpt-rl label videos/ --idm-model 4x_idm.model --idm-weights 4x_idm.weights --batch-size 2

Windows (as the VPT paper labels its video, Baker et al. 2022): windows of ``timesteps`` frames with a stride of half of it; each
frame takes the prediction of the window in which it is most central, which keeps the middle half of
every window (frames 32..95 of a 128-frame window) and the edges only at the start and end of a
video (:func:`plan_windows`). Buttons are the argmax per button, as the official
``IDMAgent.predict_actions``. The camera is the argmax bin per axis (``--camera argmax``, official) or the
posterior mean (``--camera mean``: the expected degrees under the predicted bins, written as continuous
mouse dx/dy; it avoids confident wrong-way turns and scores higher R^2, docs/idm.md). Every line also carries
``"idm_confidence"``: the probability the IDM gives its whole predicted button vector (the product over the
20 buttons of the chosen side's probability), so that training can skip frames the IDM is unsure of.

Output: ``NAME.jsonl`` next to ``NAME.mp4`` (or under ``--out-dir``), one line per frame, in the
contractor format that :func:`vpt_rl.data.contractor.load_actions` maps back to the IDM's predicted env
action (``"pseudo_label": true`` on every line), then ``NAME.label.json`` (IDM checkpoint, window
settings, frame count), written last and atomically. A video with a marker for the same IDM and
settings is skipped, so an interrupted run resumes where it stopped; a ``NAME.jsonl`` that is not a
pseudo-label (true contractor labels) is never overwritten.

Frame rate: the IDM sees one frame per 50 ms game tick, so only 20 fps video is labelled. A video that
declares another rate (30 or 60 fps screen recordings) is refused with a :class:`DataWarning` naming the
file, its rate and the re-encoding to do (``ffmpeg -i in.mp4 -r 20 out.mp4``), rather than resampled:
the labels are one jsonl line per video frame, so resampled labels would no longer match the video's
frames. ``vpt-rl label`` ends with how many videos it labelled, skipped (already labelled) and refused,
and exits with code 1 when it refused any.

Clean spans: a video with ``NAME.spans.json`` beside it (written by ``vpt-rl filter``,
:mod:`vpt_rl.data.clean_spans`) is labelled span by span: the IDM sees only frames inside a clean span, and
every other frame gets a null line marked ``"filtered": true``. A spans file that cannot be read refuses its
video with a DataWarning. The marker records the spans, so new spans relabel the video.

Sharding (docs/scale-out.md): the sorted video list is split into disjoint shards, shard ``i`` of ``n``
taking ``videos[i::n]``, so several processes label one collection without coordination and their
outputs together are the one-process outputs, file for file. ``--shard auto`` (default) takes the shard
from the environment: under ``torchrun`` each rank labels shard ``RANK`` of ``WORLD_SIZE`` on
``cuda:LOCAL_RANK`` (with ``--device auto`` or ``cuda``) and rank 0 prints one summary for all; in a SLURM
array job each task labels shard ``(SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP``
of ``SLURM_ARRAY_TASK_COUNT`` (and an array of torchrun jobs splits each task's shard over its ranks).
``--shard I/N`` names the shard explicitly; ``--shard none`` labels everything. A shard resumes like a whole
run (its videos' markers), and a rerun with another number of shards skips whatever is already labelled.
"""
from __future__ import annotations

import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from tqdm import tqdm

from vpt_rl.actions import BUTTONS_ALL, undiscretize_camera
from vpt_rl.atomic import TEMP_NAME, atomic_write_text, remove_stale_temporaries
from vpt_rl.checkpoint import load_idm
from vpt_rl.data.clean_spans import SpansError, read_spans, spans_mask
from vpt_rl.data.contractor import (
    ACTION_TO_KEY,
    ACTION_TO_MOUSE_BUTTON,
    DataWarning,
    degrees_to_counts,
    find_segments,
)
from vpt_rl.data.recorder import FPS
from vpt_rl.data.video import read_video_frames, video_fps
from vpt_rl.model import idm_argmax
from vpt_rl.train.args import check_ranges, parse_args
from vpt_rl.train.idm import camera_posterior_mean
from vpt_rl.train.runtime import (
    autocast,
    check_device_name,
    check_precision,
    dist_env,
    init_distributed,
    resolve_device,
)

MARKER_SUFFIX = ".label.json"
LABEL_FORMAT_VERSION = 1
DIST_TIMEOUT = timedelta(days=7)
"""how long torchrun ranks that finished their shard wait for the others"""


@dataclass
class Args:
    """Label videos with an IDM (sliding windows, middle half kept) into contractor-format jsonl."""

    videos: list[str] = field(default_factory=list, metadata={"positional": True})
    """mp4 files or folders (searched recursively) to label"""
    idm_model: str = field(default="", metadata={"aliases": ["model"]})
    """the IDM's .model file (official format, e.g. 4x_idm.model or one written by vpt-rl train-idm)"""
    idm_weights: Optional[str] = field(default=None, metadata={"aliases": ["weights"]})
    """the IDM's .weights file (default: the .model path with the suffix .weights)"""
    timesteps: Optional[int] = None
    """window length in frames (default: the IDM config's timesteps, 128 for 4x_idm)"""
    batch_size: int = 4
    """windows per forward pass"""
    camera: str = "argmax"
    """camera decoding: argmax (the bin centre, as the official IDMAgent) or mean (posterior mean degrees)"""
    device: str = "auto"
    """torch device: auto (cuda when there is a GPU, else cpu), cpu, cuda or cuda:N"""
    precision: str = "fp32"
    """IDM inference precision: fp32, bf16 (autocast; CPU or GPU) or fp16 (autocast; GPU only); see
    docs/performance.md for how far bf16 moves the labels"""
    out_dir: Optional[str] = None
    """write NAME.jsonl / NAME.label.json here instead of next to each video"""
    overwrite: bool = False
    """relabel videos that already carry a pseudo-label marker"""
    progress: bool = True
    """show tqdm progress bars"""
    shard: str = "auto"
    """label shard I of N only (``I/N``, videos[I::N] of the sorted list); auto: from torchrun (RANK/WORLD_SIZE)
    and SLURM array (SLURM_ARRAY_TASK_ID/COUNT) variables, else all videos; none: all videos"""

    def __post_init__(self):
        """Refuse values out of range, naming the field (``ValueError``)."""
        check_ranges(self, count=("batch_size",))
        if self.shard not in ("auto", "none"):
            parse_shard(self.shard)  # raises ValueError naming the value
        if self.timesteps is not None and self.timesteps < 2:
            raise ValueError(f"timesteps must be a window of >= 2 frames, got {self.timesteps!r}")
        if self.camera not in CAMERA_DECODINGS:
            raise ValueError(f"camera must be one of {', '.join(CAMERA_DECODINGS)}, got {self.camera!r}")
        check_device_name(self.device)
        check_precision(self.precision)


# ---------------------------------------------------------------------------------------------------
# Sliding windows


def plan_windows(n_frames: int, timesteps: int) -> list[tuple[int, int, int, int]]:
    """Windows covering ``n_frames`` and the frames each one labels.

    Windows start every ``timesteps // 2`` frames; the last one is shifted to end at the last frame;
    a video shorter than ``timesteps`` is one window of its own length. Each frame is labelled by the
    window whose centre is closest (ties: the earlier window), so every frame is labelled exactly once:
    the middle half of each window, plus the leading edge of the first and the trailing edge of the last.

    :return: ``[(start, length, keep_start, keep_end), ...]`` with absolute frame indices,
        ``keep_*`` a half-open range inside ``[start, start + length)``.
    """
    if timesteps < 2:
        raise ValueError(f"timesteps must be >= 2, got {timesteps}")
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    if n_frames == 0:
        return []
    if n_frames <= timesteps:
        return [(0, n_frames, 0, n_frames)]
    stride = timesteps // 2
    starts = list(range(0, n_frames - timesteps, stride))
    starts.append(n_frames - timesteps)
    starts = sorted(set(starts))
    out = []
    keep_start = 0
    for i, s in enumerate(starts):
        if i + 1 < len(starts):
            # first frame whose centre distance favours the next window: 2f + 1 > s + s_next + T
            keep_end = (s + starts[i + 1] + timesteps - 1) // 2 + 1
        else:
            keep_end = n_frames
        out.append((s, timesteps, keep_start, keep_end))
        keep_start = keep_end
    return out


# ---------------------------------------------------------------------------------------------------
# Pseudo-label lines


CAMERA_DECODINGS = ("argmax", "mean")


def pseudo_label_lines(buttons: np.ndarray, camera_deg: np.ndarray,
                       confidence: Optional[np.ndarray] = None) -> list[dict]:
    """Contractor-format lines whose :func:`~vpt_rl.data.contractor.load_actions` conversion gives back
    the predicted env actions.

    :param buttons: 0/1 ``(N, 20)`` in :data:`vpt_rl.actions.BUTTONS_ALL` order.
    :param camera_deg: ``(N, 2)`` [pitch, yaw] degrees.
    :param confidence: optional ``(N,)`` per-frame label confidence, written as ``"idm_confidence"``.

    Keys come from the inverse keyboard mapping, attack/use become mouse buttons 0/1, the camera becomes
    mouse counts ``dx = yaw / 0.15``, ``dy = pitch / 0.15``; the ``hotbar`` field follows the hotbar
    presses (so the hotbar-change rule agrees with them) and ``newButtons`` is empty on line 0 (so the
    stuck-attack rule never fires).
    """
    buttons = np.asarray(buttons)
    camera_deg = np.asarray(camera_deg, dtype=np.float64)
    if buttons.ndim != 2 or buttons.shape[1] != len(BUTTONS_ALL):
        raise ValueError(f"buttons must have shape (N, {len(BUTTONS_ALL)}), got {buttons.shape}")
    if camera_deg.shape != (buttons.shape[0], 2):
        raise ValueError(f"camera_deg must have shape ({buttons.shape[0]}, 2), got {camera_deg.shape}")
    lines = []
    hotbar = 0
    prev_mouse: set = set()
    for t in range(buttons.shape[0]):
        pressed = [name for name, b in zip(BUTTONS_ALL, buttons[t]) if b]
        keys = [ACTION_TO_KEY[n] for n in pressed if n in ACTION_TO_KEY]
        mouse_buttons = sorted(ACTION_TO_MOUSE_BUTTON[n] for n in pressed if n in ACTION_TO_MOUSE_BUTTON)
        slots = [int(n.split(".")[1]) - 1 for n in pressed if n.startswith("hotbar.")]
        if slots:
            hotbar = max(slots)
        new_buttons = [b for b in mouse_buttons if b not in prev_mouse] if t > 0 else []
        prev_mouse = set(mouse_buttons)
        pitch, yaw = float(camera_deg[t, 0]), float(camera_deg[t, 1])
        lines.append({
            "mouse": {"x": 0.0, "y": 0.0, "dx": degrees_to_counts(yaw), "dy": degrees_to_counts(pitch),
                      "scaledX": 0.0, "scaledY": 0.0, "dwheel": 0.0,
                      "buttons": mouse_buttons, "newButtons": new_buttons},
            "keyboard": {"keys": keys, "newKeys": [], "chars": ""},
            "isGuiOpen": False,
            "hotbar": hotbar,
            "tick": t,
            "pseudo_label": True,
        })
        if confidence is not None:
            lines[-1]["idm_confidence"] = round(float(confidence[t]), 6)
    return lines


# ---------------------------------------------------------------------------------------------------
# Sharding a video list over processes (torchrun ranks, SLURM array tasks)


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``; a ``ValueError`` naming the value otherwise."""
    parts = str(text).split("/")
    try:
        index, count = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"shard must be I/N (e.g. 0/4: the first of 4 shards), auto or none, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {text!r}: expected I/N with N >= 1 and 0 <= I < N")
    return index, count


def slurm_array_shard(environ=None) -> Optional[tuple[int, int]]:
    """``(index, count)`` of this SLURM array task, or ``None`` outside an array job.

    ``index = (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP`` and ``count =
    SLURM_ARRAY_TASK_COUNT``, so ``--array=0-15``, ``--array=1-16`` and ``--array=0-30:2`` all give shards
    0..15 of 16. An array that is not an evenly spaced range (``--array=1,4,5``) cannot be mapped onto shards
    and is refused with a ``ValueError``: pass ``--shard I/N`` yourself then.
    """
    env = os.environ if environ is None else environ
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    try:
        task = int(env["SLURM_ARRAY_TASK_ID"])
        count = int(env["SLURM_ARRAY_TASK_COUNT"])
        low = int(env.get("SLURM_ARRAY_TASK_MIN", 0))
        step = int(env.get("SLURM_ARRAY_TASK_STEP", 1) or 1)
    except ValueError:
        raise ValueError("SLURM_ARRAY_TASK_ID/_COUNT/_MIN/_STEP must be integers, got "
                         + ", ".join(f"{k}={env.get(k)!r}" for k in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT",
                                                                     "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP")))
    index, rem = divmod(task - low, step)
    if count < 1 or rem or not 0 <= index < count:
        raise ValueError(f"SLURM array task {task} (min {low}, step {step}, count {count}) is not one of an evenly "
                         "spaced range of tasks, so it does not name a shard; use --array=0-N (or A-B:S), or pass "
                         "--shard I/N")
    return index, count


def resolve_shard(shard: str = "auto", environ=None) -> tuple[int, int]:
    """The ``(index, count)`` shard a process labels (``videos[index::count]`` of the sorted list).

    ``"none"``: ``(0, 1)`` (refused under torchrun, where every rank would label everything); ``"I/N"``: that
    shard; ``"auto"``: the SLURM array task's shard (:func:`slurm_array_shard`, else ``(0, 1)``) split further
    over the ``torchrun`` ranks (``RANK`` / ``WORLD_SIZE``): array shard ``a`` of ``A`` and rank ``r`` of ``W``
    give shard ``a * W + r`` of ``A * W``. An explicit ``I/N`` is split over torchrun ranks the same way.
    """
    env = os.environ if environ is None else environ
    if shard == "none":
        if int(env.get("WORLD_SIZE", 1)) > 1:
            raise ValueError(f"shard none under torchrun (WORLD_SIZE={env['WORLD_SIZE']}) would have every rank label "
                             "every video; use --shard auto (one shard per rank) or I/N")
        return 0, 1
    if shard == "auto":
        outer = slurm_array_shard(env) or (0, 1)
    else:
        outer = parse_shard(shard)
    rank, world = int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1))
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK={rank} / WORLD_SIZE={world}: expected 0 <= RANK < WORLD_SIZE")
    return outer[0] * world + rank, outer[1] * world


def rank_device(name: str, environ=None) -> torch.device:
    """The torch device of this process: under torchrun (``WORLD_SIZE`` > 1) ``auto`` and a bare ``cuda`` mean
    ``cuda:LOCAL_RANK`` when CUDA is present (``auto``: cpu otherwise); an explicit ``cuda:N`` or ``cpu`` is kept."""
    env = os.environ if environ is None else environ
    world, local = int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))
    if world > 1 and name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", local)
    return resolve_device(name)


def _remove_stale_label_temporaries(outputs: Sequence[Path]) -> list[Path]:
    """Delete the temporaries that killed atomic writes of ``outputs`` left (``.NAME.<random>.tmp``), and no
    others: another shard may be writing its own videos' labels in the same folder right now."""
    by_folder: dict[Path, set[str]] = {}
    for path in outputs:
        by_folder.setdefault(path.parent, set()).add(path.name)
    removed = []
    for folder, names in by_folder.items():
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            # ".NAME.abcd1234.tmp" -> NAME (atomic_output's mkstemp names)
            if TEMP_NAME.match(entry.name) and entry.name[1:].rsplit(".", 2)[0] in names:
                Path(entry.path).unlink(missing_ok=True)
                removed.append(Path(entry.path))
    return removed


# ---------------------------------------------------------------------------------------------------
# Running the IDM


@torch.no_grad()
def predict_video(idm, frames: np.ndarray, timesteps: int, batch_size: int = 4,
                  device: Union[str, torch.device] = "cpu", details: bool = False, precision: str = "fp32"):
    """Run ``idm`` over sliding windows of ``frames`` (N, 128, 128, 3), at ``precision`` (:func:`autocast`).

    :return: ``(buttons (N, 20) int64 0/1, camera_bins (N, 2) int64)``, each frame from its window; with
        ``details`` also ``camera_mean (N, 2)`` posterior-mean degrees and ``confidence (N,)`` (the
        probability of the predicted button vector).
    """
    n = len(frames)
    buttons = np.zeros((n, len(BUTTONS_ALL)), np.int64)
    camera = np.full((n, 2), 5, np.int64)
    camera_mean = np.zeros((n, 2), np.float64)
    confidence = np.zeros(n, np.float64)
    windows = plan_windows(n, timesteps)
    for i in range(0, len(windows), batch_size):
        group = windows[i:i + batch_size]
        # windows in a group have equal length (only a short video has a single shorter window)
        img = np.stack([frames[s:s + length] for s, length, _, _ in group])
        with autocast(device, precision):
            logp = idm(torch.from_numpy(img).to(device))
        logp = {k: v.float() for k, v in logp.items()}
        b, c = idm_argmax(logp)
        b, c = b.cpu().numpy(), c.cpu().numpy()
        if details:
            cm = camera_posterior_mean(logp["camera"]).cpu().numpy()
            conf = logp["buttons"].max(-1).values.sum(-1).exp().cpu().numpy()
        for j, (s, _, k0, k1) in enumerate(group):
            buttons[k0:k1] = b[j, k0 - s:k1 - s]
            camera[k0:k1] = c[j, k0 - s:k1 - s]
            if details:
                camera_mean[k0:k1] = cm[j, k0 - s:k1 - s]
                confidence[k0:k1] = conf[j, k0 - s:k1 - s]
    if details:
        return buttons, camera, camera_mean, confidence
    return buttons, camera


def _label_lines(idm, frames: np.ndarray, spans, timesteps: int, batch_size: int, device, camera: str,
                 precision: str = "fp32"):
    """The jsonl lines of a video's frames and how many frames the IDM saw: every clean span (all of the video
    without spans) is labelled on its own, so that no window mixes frames across filtered-out footage; a frame
    outside every span gets a null line marked ``"filtered": true``, which keeps the lines aligned with the
    video (and the official loader drops null lines too)."""
    n = len(frames)
    todo = [(0, n)] if spans is None else [(s, min(e, n)) for s, e in spans if s < n]
    buttons = np.zeros((n, len(BUTTONS_ALL)), np.int64)
    camera_deg = np.zeros((n, 2), np.float64)
    conf = np.zeros(n, np.float64)
    for s, e in todo:
        b, bins, cam_mean, c = predict_video(idm, frames[s:e], timesteps, batch_size=batch_size, device=device,
                                             details=True, precision=precision)
        buttons[s:e], conf[s:e] = b, c
        camera_deg[s:e] = cam_mean if camera == "mean" else undiscretize_camera(bins)
    lines = pseudo_label_lines(buttons, camera_deg, conf)
    inside = spans_mask(None if spans is None else todo, n)
    for i in np.flatnonzero(~inside):
        lines[i]["filtered"] = True
        lines[i].pop("idm_confidence", None)
    return lines, int(inside.sum())


def _file_stamp(path: Optional[Union[str, Path]]) -> Optional[dict]:
    if path is None:
        return None
    st = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _is_pseudo_label(jsonl: Path) -> bool:
    try:
        with open(jsonl, "r", encoding="utf-8") as f:
            first = f.readline()
        return bool(json.loads(first).get("pseudo_label", False)) if first.strip() else True
    except (OSError, ValueError, AttributeError):
        return False


class LabelledVideos(list):
    """The jsonl paths of every video that has pseudo-labels now (a list, as before), with what this call did.

    :ivar labelled: videos labelled by this call.
    :ivar skipped: videos skipped because they were already labelled with the same IDM and settings.
    :ivar kept_true: videos left alone because their jsonl holds true labels.
    :ivar filtered_frames: frames of the labelled videos outside their clean spans (``NAME.spans.json``), which
        the IDM did not see and which got null lines marked ``"filtered": true``.
    :ivar refused: ``(video, reason)`` of videos not labelled (not 20 fps, no decodable frame).
    """

    def __init__(self):
        super().__init__()
        self.labelled = 0
        self.skipped = 0
        self.kept_true = 0
        self.filtered_frames = 0
        self.refused: list[tuple[Path, str]] = []
        self.shards = 1

    def merge(self, others: Sequence["LabelledVideos"]) -> "LabelledVideos":
        """One result for several shards' results (this one first): paths and counts added up, refusals in
        video order."""
        out = LabelledVideos()
        parts = [self, *others]
        for part in parts:
            out.extend(part)
            out.labelled += part.labelled
            out.skipped += part.skipped
            out.kept_true += part.kept_true
            out.filtered_frames += part.filtered_frames
            out.refused += part.refused
        out.shards = sum(part.shards for part in parts)
        out.sort()
        out.refused.sort()
        return out

    def summary(self) -> str:
        """One line for the user, e.g. ``labelled 0 video(s), skipped 3 already labelled``."""
        text = f"labelled {self.labelled} video(s), skipped {self.skipped} already labelled"
        if getattr(self, "shards", 1) > 1:
            text += f" ({self.shards} shards)"
        if self.kept_true:
            text += f", kept {self.kept_true} with true labels"
        if self.filtered_frames:
            text += f", left {self.filtered_frames} frame(s) outside clean spans unlabelled"
        if self.refused:
            text += f", refused {len(self.refused)}: " + "; ".join(f"{p.name} ({why})" for p, why in self.refused)
        return text


def output_paths(mp4: Path, out_dir: Optional[Union[str, Path]] = None) -> tuple[Path, Path]:
    """``(NAME.jsonl, NAME.label.json)`` for a video, next to it or under ``out_dir``."""
    base = (Path(out_dir) / mp4.name) if out_dir else mp4
    return base.with_suffix(".jsonl"), base.with_name(base.stem + MARKER_SUFFIX)


def label_videos(
    videos: Sequence[Union[str, Path]],
    idm_model: Union[str, Path],
    idm_weights: Optional[Union[str, Path]] = None,
    *,
    timesteps: Optional[int] = None,
    batch_size: int = 4,
    camera: str = "argmax",
    device: str = "auto",
    precision: str = "fp32",
    out_dir: Optional[Union[str, Path]] = None,
    overwrite: bool = False,
    progress: bool = True,
    shard: tuple[int, int] = (0, 1),
) -> LabelledVideos:
    """Label every video in ``videos`` (mp4 paths or folders) with the IDM; returns the jsonl paths
    (a :class:`LabelledVideos` list, which also counts what was labelled, skipped and refused).

    Videos already labelled with the same IDM file and window settings are skipped (resume); a jsonl
    holding true labels is left alone with a :class:`~vpt_rl.data.contractor.DataWarning`; a video that is
    not 20 fps is refused with a :class:`~vpt_rl.data.contractor.DataWarning` (module docstring).
    ``camera``: ``"argmax"`` (official) or ``"mean"`` (posterior mean, continuous degrees). ``device``: auto,
    cpu, cuda or cuda:N (:func:`~vpt_rl.train.runtime.resolve_device`); ``precision``: fp32, bf16 or fp16 (CUDA
    only) autocast of the IDM (labels made at another precision than fp32 are not reused for fp32, nor back).
    ``shard=(i, n)``: label only ``videos[i::n]`` of the sorted list (:func:`resolve_shard`); the result
    lists and counts that shard's videos only.
    """
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard must be (index, count) with 0 <= index < count, got {shard!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if camera not in CAMERA_DECODINGS:
        raise ValueError(f"camera decoding must be one of {CAMERA_DECODINGS}, got {camera!r}")
    model_path = Path(idm_model)
    weights_path = Path(idm_weights) if idm_weights else model_path.with_suffix(".weights")
    dev = resolve_device(device)
    check_precision(precision, dev)
    idm = load_idm(str(model_path), str(weights_path), device=str(dev))
    idm.eval()
    t = int(timesteps or idm.cfg.timesteps)
    settings = {"timesteps": t, "stride": t // 2, "rule": "nearest-window-centre", "version": LABEL_FORMAT_VERSION,
                "camera": camera,
                "idm_model": _file_stamp(model_path), "idm_weights": _file_stamp(weights_path)}
    if precision != "fp32":  # fp32 markers stay as they were written before there was a choice
        settings["precision"] = precision

    mp4s = find_segments(videos, require_jsonl=False)[index::count]  # sorted: the same split in every process
    written = LabelledVideos()
    bar = tqdm(mp4s, desc="label" if count == 1 else f"label {index}/{count}", unit="video", disable=not progress)
    n_frames_total, t0 = 0, time.time()
    # half-written labels of a run that was killed; a shard clears only its own videos' (others may be writing there)
    if count == 1:
        for folder in sorted({output_paths(mp4, out_dir)[0].parent for mp4 in mp4s}):
            remove_stale_temporaries(folder)
    else:
        _remove_stale_label_temporaries([p for mp4 in mp4s for p in output_paths(mp4, out_dir)])
    for mp4 in bar:
        jsonl, marker = output_paths(mp4, out_dir)
        try:
            spans = read_spans(mp4)
        except SpansError as e:
            warnings.warn(f"{e}; {mp4.name} is not labelled (which of its frames are clean is unknown)",
                          DataWarning, stacklevel=2)
            written.refused.append((mp4, "unreadable spans file"))
            continue
        spans_key = None if spans is None else [list(sp) for sp in spans]
        if marker.is_file() and not overwrite:
            try:
                old = json.loads(marker.read_text())
                if ({k: old.get(k) for k in settings} == settings and old.get("clean_spans") == spans_key
                        and old.get("precision", "fp32") == precision and jsonl.is_file()):
                    written.append(jsonl)
                    written.skipped += 1
                    continue
            except ValueError:
                pass  # unreadable marker: relabel
        if jsonl.is_file() and not marker.is_file() and not _is_pseudo_label(jsonl):
            warnings.warn(f"{jsonl}: holds true (non-pseudo) labels; {mp4.name} is not relabelled",
                          DataWarning, stacklevel=2)
            written.kept_true += 1
            continue
        fps = video_fps(mp4)
        if fps is not None and abs(fps - FPS) > 0.01:
            warnings.warn(f"{mp4}: {fps:g} fps; the IDM labels {FPS} fps video (one frame per 50 ms game tick), one "
                          f"label per frame, so it is not labelled. Re-encode it at {FPS} fps first, e.g. "
                          f"ffmpeg -i {mp4.name} -r {FPS} {mp4.stem}-{FPS}fps.mp4", DataWarning, stacklevel=2)
            written.refused.append((mp4, f"{fps:g} fps, not {FPS}"))
            continue
        frames = read_video_frames(mp4)
        if len(frames) == 0:
            warnings.warn(f"{mp4}: no frames could be decoded; not labelled", DataWarning, stacklevel=2)
            written.refused.append((mp4, "no frame decoded"))
            continue
        lines, n_inside = _label_lines(idm, frames, spans, t, batch_size, dev, camera, precision)
        atomic_write_text(jsonl, "".join(json.dumps(line) + "\n" for line in lines))
        atomic_write_text(marker, json.dumps({**settings, "video": str(mp4.resolve()), "n_frames": len(frames),
                                              "clean_spans": spans_key, "labelled_frames": n_inside,
                                              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                                             indent=1))
        written.append(jsonl)
        written.labelled += 1
        written.filtered_frames += len(frames) - n_inside
        n_frames_total += n_inside
        bar.set_postfix(fps=f"{n_frames_total / max(time.time() - t0, 1e-9):.1f}")
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(Args, argv, prog="vpt-rl label", paths=("videos", "idm_model", "idm_weights"))
    if not args.videos:
        print("vpt-rl label: give at least one video or folder", file=sys.stderr)
        return 2
    if not args.idm_model:
        print("vpt-rl label: --idm-model is required", file=sys.stderr)
        return 2
    try:
        shard = resolve_shard(args.shard)
    except ValueError as e:
        print(f"vpt-rl label: error: {e}", file=sys.stderr)
        return 2
    rank, world, _ = dist_env()
    if world > 1:
        # gloo whatever the device: the group only carries the final barrier and a few counts, and a long
        # timeout, as ranks whose shards finish early wait at it for the slowest (torchrun ends every rank
        # if one dies, so nobody waits for a dead rank)
        init_distributed(torch.device("cpu"), timeout=DIST_TIMEOUT)
    out = label_videos(args.videos, args.idm_model, args.idm_weights, timesteps=args.timesteps,
                       batch_size=args.batch_size, camera=args.camera, device=str(rank_device(args.device)),
                       precision=args.precision,
                       out_dir=args.out_dir, overwrite=args.overwrite, progress=args.progress and rank == 0,
                       shard=shard)
    if world > 1:
        parts: list = [None] * world
        torch.distributed.all_gather_object(parts, out)
        torch.distributed.destroy_process_group()
        out = parts[0].merge(parts[1:])
    if rank == 0:  # an array task (or --shard I/N) says which shard its line is about
        print((f"shard {shard[0]}/{shard[1]}: " if world == 1 and shard[1] > 1 else "") + out.summary())
    return 1 if out.refused else 0


if __name__ == "__main__":
    sys.exit(main())
