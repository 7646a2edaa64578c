"""Train an inverse dynamics model (IDM) on labelled contractor segments.

Run::

    vpt-rl train-idm data/labelled --preset tiny_idm --total-steps 2000 --out-dir runs/idm
    vpt-rl train-idm data/labelled --val-data data/heldout --preset 4x_idm --device cuda

The IDM sees ``timesteps`` consecutive frames (past and future) and predicts, for every frame, the 20
buttons (binary) and the two camera axes (11 mu-law bins each) -- the factored action of
openai/Video-Pre-Training ``lib/actions.py`` (the IDM's ``action_head``). Loss: the negative log-likelihood of the true factored action, summed over the 20
buttons and 2 camera axes, averaged over frames. Every frame is used, null actions included (the IDM
must also predict "nothing pressed"). Metrics on held-out segments, as the paper reports them
(:func:`idm_metrics`): keypress accuracy (per button and overall) and camera R^2.

Writes ``OUT/NAME.model`` + ``OUT/NAME.weights`` (official format, atomic; NAME defaults to the folder
name, so ``--out-dir runs/idm`` gives ``runs/idm/idm.model``), ``OUT/train_state.pt``
(optimizer, step and the data stream's position, for resume), ``OUT/metrics.json`` and TensorBoard logs
under ``OUT/tb``.

Rerunning the same command resumes (``--no-resume`` starts over): the weights, optimizer and step come back and
the data stream continues where the checkpoint left it. Ctrl-C or ``kill`` (SIGINT / SIGTERM) saves a checkpoint
at the current step, prints where it is and the command that resumes, and exits with 130 / 143.
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from vpt_rl.actions import (
    BUTTONS_ALL,
    CAMERA_MAXVAL,
    camera_bin_centres,
    discretize_camera,
    env_to_factored,
    undiscretize_camera,
)
from vpt_rl.atomic import atomic_torch_save, atomic_write_json, remove_stale_temporaries
from vpt_rl.checkpoint import load_idm, save_idm
from vpt_rl.data.clean_spans import SpansError, read_spans, span_index
from vpt_rl.data.contractor import DataWarning, convert_lines, find_segments, read_jsonl_lines
from vpt_rl.data.dataset import (
    SequenceDataset,
    StreamPositions,
    clean_actions,
    layout_key,
    make_loader,
    split_segments,
)
from vpt_rl.data.video import read_video_frames
from vpt_rl.interrupt import StopFlag, run_main, stop_requested
from vpt_rl.model import IDM_PRESETS, IDMNet, MotionStem, idm_argmax
from vpt_rl.train.args import TRAINING_INPUTS, RunArgs, check_ranges, parse_args
from vpt_rl.train.prior import init_head_from_prior, prior_log_probs
from vpt_rl.train.runtime import (
    cpu_state_dict,
    eval_mode,
    interrupted_at,
    lr_at,
    periodic_eval_and_save,
    resolve_device,
    resume_hint,
    resumed_list,
    saved_train_state,
    seed_everything,
    summary_writer,
)


@dataclass
class Args(RunArgs):
    """Train an IDM (NLL of buttons + camera bins) with held-out keypress accuracy and camera R^2."""

    data: list[str] = field(default_factory=list, metadata={"positional": True})
    """labelled segment folders / mp4 files / index JSONs (NAME.mp4 + NAME.jsonl)"""
    val_data: list[str] = field(default_factory=list)
    """held-out segments (default: a val_fraction split of data)"""
    val_fraction: float = 0.2
    """fraction of segments held out when val_data is empty"""
    preset: str = field(default="tiny_idm", metadata={"aliases": ["config"]})
    """IDM config preset from vpt_rl.model.IDM_PRESETS (4x_idm, tiny_idm, ...)"""
    init_model: Optional[str] = None
    """start from this IDM .model (its config overrides preset)"""
    init_weights: Optional[str] = None
    """weights for init_model (default: init_model with the suffix .weights)"""
    seq_len: Optional[int] = None
    """frames per training window (default: the config's timesteps)"""
    batch_size: int = 4
    """windows per step (lanes per data stream)"""
    total_steps: int = field(default=1000, metadata={"aliases": ["steps"]})
    """optimizer steps"""
    lr: float = 1e-3
    """peak learning rate (AdamW); 3e-3 makes the small presets' features collapse (docs/experiments/2026-12-02-idm-camera.md)"""
    weight_decay: float = 0.01
    """AdamW weight decay"""
    warmup_steps: int = 50
    """linear warm-up steps, then cosine decay to 10% of lr"""
    max_grad_norm: float = 1.0
    """gradient-norm clip (0 disables)"""
    prior_init: bool = True
    """fresh nets only: start the heads at the training labels' frequencies with near-zero weights
    (init_head_from_prior); without it small IDMs collapse to the majority class"""
    motion_aux: float = 1.0
    """weight of the auxiliary loss on the motion trunk's own logits (IDMs with a motion trunk, e.g. ``--preset
    micro_idm_motion``): NLL of the true camera bins and buttons under ``label log prior + trunk logits``, which
    makes the trunk read the camera (and walking) from image motion by itself; 0 turns it off"""
    motion_aux_frames: int = 256
    """frame pairs per step for the auxiliary loss, drawn at random (single pairs, or windows of 16 for a
    trunk with temporal context) from a cache of the training frame pairs' cost volumes (:class:`MotionCache`,
    computed once before training). 0: use the batch's own frames instead"""
    motion_cache_frames: int = 100_000
    """most frame pairs kept in that cache (float16, 7.7 KB each; whole segments, a seeded random choice)"""
    mirror_aug: float = 0.0
    """probability of training on a window's mirror image (frames flipped left-right, yaw negated, left <->
    right and hotbar.k <-> hotbar.(10-k) swapped): a symmetry of the game that makes scene-based guesses of
    the turn direction useless"""
    eval_every: int = 250
    """evaluate on the held-out set every this many steps (and at the end)"""
    eval_max_frames: int = 20000
    """cap on held-out frames per evaluation"""
    save_every: int = 250
    """write the checkpoint every this many steps (and at the end)"""
    out_dir: str = field(default="runs/idm", metadata={"aliases": ["out"]})
    """where the checkpoint, metrics.json and TensorBoard logs go"""

    def validate(self) -> None:
        super().validate()
        check_ranges(self, count=("seq_len", "batch_size", "total_steps", "eval_max_frames"),
                     non_negative=("weight_decay", "warmup_steps", "max_grad_norm", "motion_aux", "motion_aux_frames",
                                   "motion_cache_frames", "eval_every", "save_every"),
                     positive=("lr",), fraction=("val_fraction",), probability=("mirror_aug",))
        if not self.init_model and self.preset not in IDM_PRESETS:
            raise ValueError(f"preset {self.preset!r} is not an IDM preset; expected one of {', '.join(IDM_PRESETS)}")
        if not self.data:
            raise ValueError("training an IDM needs at least one data folder, mp4 or index JSON (args.data is empty)")


# ---------------------------------------------------------------------------------------------------
# Loss and metrics


def idm_loss(logp: dict, buttons: torch.Tensor, camera: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid frames of ``-(sum_20 log p(button) + sum_2 log p(camera bin))``.

    :param logp: ``{"buttons": (B, T, 20, 2), "camera": (B, T, 2, 11)}`` log-probs.
    :param buttons: (B, T, 20) 0/1; ``camera``: (B, T, 2) bins; ``mask``: (B, T) bool.
    """
    lb = logp["buttons"].gather(-1, buttons.long().unsqueeze(-1)).squeeze(-1).sum(-1)  # (B, T)
    lc = logp["camera"].gather(-1, camera.long().unsqueeze(-1)).squeeze(-1).sum(-1)  # (B, T)
    nll = -(lb + lc)
    m = mask.to(nll.dtype)
    return (nll * m).sum() / m.sum().clamp_min(1.0)


def motion_camera_loss(motion_logits: torch.Tensor, log_prior: torch.Tensor, camera: torch.Tensor,
                       mask: torch.Tensor, windows: bool = True) -> torch.Tensor:
    """Auxiliary loss of an IDM's motion trunk: mean NLL of the true classes under
    ``log_softmax(log_prior + motion_logits)`` over valid frames that have a next frame in the window.

    :param motion_logits: (B, T, K, C) logits of K categorical targets with C classes each (the camera:
        K = 2 axes x C = 11 bins; the buttons: 20 x 2); ``log_prior``: (K, C) label log-frequencies;
        ``camera``: (B, T, K) true classes; ``mask``: (B, T) bool. With ``windows`` the rows are windows
        whose last frame has no motion evidence and is skipped; without, every masked frame counts (single
        frames from a cache).
    """
    logp = torch.log_softmax(motion_logits.float() + log_prior, dim=-1)
    nll = -logp.gather(-1, camera.long().unsqueeze(-1)).squeeze(-1).sum(-1)  # (B, T)
    m = mask.clone()
    if windows:
        m[:, -1] = False
    m = m.to(nll.dtype)
    return (nll * m).sum() / m.sum().clamp_min(1.0)


class MotionCache:
    """Cost volumes (:meth:`vpt_rl.model.MotionStem.cost_volume`), camera bins and buttons of every frame
    pair of the training segments, for the motion trunk's auxiliary loss; computed once before training.

    Frames stay in segment order, so :meth:`sample` can draw short windows (the trunk's temporal context
    needs neighbours). A pair ``(t, t + 1)`` counts in the loss when both frames show the world (no screen
    open: there the camera moves a cursor, not the view) and line ``t`` parses. At most ``max_frames``
    frames are kept (whole segments, a seeded random choice). Memory: 7.7 KB per frame (float16).
    """

    def __init__(self, segments: Sequence, max_frames: int = 100_000, seed: int = 0, progress: bool = False):
        segments = list(segments)
        np.random.default_rng(seed).shuffle(segments)
        vols, bins, flags, valid, starts = [], [], [], [], []
        total = 0
        for mp4 in tqdm(segments, desc="motion cache", unit="video", disable=not progress):
            mp4 = Path(mp4)
            try:
                spans = read_spans(mp4)
            except SpansError as e:
                warnings.warn(f"{e}; {mp4.name} is left out of the motion cache", DataWarning, stacklevel=2)
                continue
            infos = convert_lines(read_jsonl_lines(mp4.with_suffix(".jsonl")), source=str(mp4))
            frames = read_video_frames(mp4)
            n = min(len(frames), len(infos), max_frames - total)
            if n < 2:
                continue
            vols.append(torch.cat([MotionStem.cost_volume(torch.from_numpy(frames[None, i:min(n, i + 257)]))[0, :-1]
                                   for i in range(0, n - 1, 256)]).to(torch.float16))
            fact = [env_to_factored(infos[t].env_action) for t in range(n - 1)]
            bins.append(torch.as_tensor(np.stack([np.asarray(c, np.int64) for _, c in fact])))
            flags.append(torch.as_tensor(np.stack([np.asarray(f, np.int64) for f, _ in fact])))
            span_of = span_index(spans, n)  # a pair counts only inside one clean span (NAME.spans.json)
            valid.append(torch.as_tensor([not (infos[t].gui_open or infos[t + 1].gui_open or infos[t].broken)
                                          and span_of[t] >= 0 and span_of[t] == span_of[t + 1]
                                          for t in range(n - 1)]))
            starts.append(total)
            total += n - 1
        if not vols or not torch.cat(valid).any():
            raise ValueError("no frame pairs outside screens in the training segments for the motion cache")
        self.volumes, self.camera, self.buttons = torch.cat(vols), torch.cat(bins), torch.cat(flags)
        self.valid = torch.cat(valid)
        self.starts = torch.as_tensor(starts + [total])

    def __len__(self) -> int:
        return len(self.volumes)

    def sample(self, n_windows: int, length: int, generator: torch.Generator):
        """``n_windows`` windows of ``length`` consecutive pairs inside one segment each (shorter segments
        give shorter, masked windows): ``(volumes (W, L, 3825) float32, camera (W, L, 2), buttons (W, L, 20),
        mask (W, L) bool, index (W, L))``; ``index`` holds the cache rows (the last row of the segment
        repeated past its end)."""
        seg_len = self.starts[1:] - self.starts[:-1]
        seg = torch.multinomial(seg_len.double(), n_windows, replacement=True, generator=generator)
        room = (seg_len[seg] - length).clamp_min(0)
        off = (torch.rand(n_windows, generator=generator) * (room + 1)).long()
        idx = self.starts[seg, None] + off[:, None] + torch.arange(length)[None]
        inside = idx < self.starts[seg + 1, None]
        idx = torch.where(inside, idx, self.starts[seg + 1, None] - 1)
        return (self.volumes[idx].float(), self.camera[idx], self.buttons[idx], self.valid[idx] & inside, idx)


def r2_score(pred: np.ndarray, true: np.ndarray) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` over all values (NaN when ``true`` is constant)."""
    pred = np.asarray(pred, np.float64).ravel()
    true = np.asarray(true, np.float64).ravel()
    ss_tot = float(((true - true.mean()) ** 2).sum())
    if ss_tot == 0.0:
        return float("nan")
    return 1.0 - float(((true - pred) ** 2).sum()) / ss_tot


def camera_posterior_mean(logp_camera: torch.Tensor) -> torch.Tensor:
    """Expected camera degrees under the predicted bin distribution: ``(..., 2, 11)`` log-probs -> ``(..., 2)``.

    Against the argmax bin it never makes a confident 10-degree turn the wrong way when two directions are
    close in probability, and it gives continuous values between the bin centres."""
    centres = torch.as_tensor(camera_bin_centres(), dtype=torch.float32, device=logp_camera.device)
    return logp_camera.float().exp() @ centres


SIGN_MIN_DEG = 5.0
"""camera moves at least this large (degrees) count for the sign accuracy"""


def _sign_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    big = np.abs(true) >= SIGN_MIN_DEG
    return float((np.sign(pred[big]) == np.sign(true[big])).mean()) if big.any() else float("nan")


def idm_metrics(pred_buttons: np.ndarray, true_buttons: np.ndarray, pred_bins: np.ndarray,
                true_deg: np.ndarray, pred_deg_mean: Optional[np.ndarray] = None) -> dict:
    """Keypress accuracy and camera R^2 of predictions against the truth over N frames.

    :param pred_buttons, true_buttons: (N, 20) 0/1.
    :param pred_bins: (N, 2) predicted camera bins; ``true_deg``: (N, 2) true camera degrees.
    :param pred_deg_mean: optional (N, 2) posterior-mean camera degrees (:func:`camera_posterior_mean`);
        adds ``camera_r2_{pitch,yaw}_mean`` and ``camera_sign_accuracy_{pitch,yaw}_mean``.
    :return: ``keypress_accuracy`` (frames with all 20 buttons right), ``button_accuracy`` (mean over
        buttons of the per-button accuracy) and ``button_accuracy_per_key`` (dict),
        ``pressed_recall`` (fraction of true presses predicted), ``camera_r2`` (predicted bin centres vs
        true degrees clipped to +-10, the IDM's range; pitch and yaw pooled), ``camera_r2_pitch/yaw``,
        ``camera_r2_ceiling`` (R^2 of the true bins' centres: the best a binned prediction can do),
        ``camera_bin_accuracy``, ``camera_sign_accuracy_{pitch,yaw}`` (moves of >= 5 degrees whose direction
        the prediction gets right; a predicted 0 counts as wrong) and ``n_frames``.
    """
    pb, tb = np.asarray(pred_buttons).astype(bool), np.asarray(true_buttons).astype(bool)
    correct = pb == tb
    per_key = correct.mean(0)
    n_pressed = tb.sum()
    pred_deg = undiscretize_camera(np.asarray(pred_bins))
    true_clip = np.clip(np.asarray(true_deg, np.float64), -CAMERA_MAXVAL, CAMERA_MAXVAL)

    true_bins = discretize_camera(true_clip)
    out = {
        "n_frames": int(len(pb)),
        "keypress_accuracy": float(correct.all(-1).mean()),
        "button_accuracy": float(per_key.mean()),
        "button_accuracy_per_key": {k: float(a) for k, a in zip(BUTTONS_ALL, per_key)},
        "pressed_recall": float((pb & tb).sum() / n_pressed) if n_pressed else float("nan"),
        "camera_r2": r2_score(pred_deg, true_clip),
        "camera_r2_pitch": r2_score(pred_deg[:, 0], true_clip[:, 0]),
        "camera_r2_yaw": r2_score(pred_deg[:, 1], true_clip[:, 1]),
        "camera_r2_ceiling": r2_score(undiscretize_camera(true_bins), true_clip),
        "camera_bin_accuracy": float((np.asarray(pred_bins) == true_bins).all(-1).mean()),
        "camera_sign_accuracy_pitch": _sign_accuracy(pred_deg[:, 0], true_clip[:, 0]),
        "camera_sign_accuracy_yaw": _sign_accuracy(pred_deg[:, 1], true_clip[:, 1]),
    }
    if pred_deg_mean is not None:
        pm = np.asarray(pred_deg_mean, np.float64)
        out.update({
            "camera_r2_pitch_mean": r2_score(pm[:, 0], true_clip[:, 0]),
            "camera_r2_yaw_mean": r2_score(pm[:, 1], true_clip[:, 1]),
            "camera_sign_accuracy_pitch_mean": _sign_accuracy(pm[:, 0], true_clip[:, 0]),
            "camera_sign_accuracy_yaw_mean": _sign_accuracy(pm[:, 1], true_clip[:, 1]),
        })
    return out


_MIRRORED_NAME = {"left": "right", "right": "left", **{f"hotbar.{k}": f"hotbar.{10 - k}" for k in range(1, 10)}}
_MIRROR_BUTTONS = [BUTTONS_ALL.index(_MIRRORED_NAME.get(name, name)) for name in BUTTONS_ALL]
"""index of each button's mirror image in BUTTONS_ALL"""


def mirror_batch(batch: dict, rows: torch.Tensor) -> dict:
    """The left-right mirror image of the selected rows of a training batch (a new dict; others shared).

    Frames are flipped horizontally; the yaw bin ``b`` becomes ``10 - b`` and the yaw degrees change sign;
    ``left``/``right`` and ``hotbar.k``/``hotbar.(10-k)`` swap (the hotbar is drawn mirrored too). Pitch
    and every other button keep their labels. The joint-action fields (``buttons``/``camera``) are left as
    they are: this is for IDM training, which reads the factored targets.

    :param batch: a :class:`SequenceDataset` batch (``img`` (B, T, H, W, 3), ``idm_buttons`` (B, T, 20),
        ``idm_camera`` (B, T, 2), ``camera_deg`` (B, T, 2), ...).
    :param rows: (B,) bool, the rows to mirror.
    """
    rows = torch.as_tensor(rows, dtype=torch.bool)
    if not rows.any():
        return batch
    out = dict(batch)
    img = batch["img"].clone()
    img[rows] = img[rows].flip(3)
    out["img"] = img
    buttons = batch["idm_buttons"].clone()
    buttons[rows] = buttons[rows][..., _MIRROR_BUTTONS]
    out["idm_buttons"] = buttons
    cam = batch["idm_camera"].clone()
    cam[rows, :, 1] = 10 - cam[rows, :, 1]
    out["idm_camera"] = cam
    if "camera_deg" in batch:
        deg = batch["camera_deg"].clone()
        deg[rows, :, 1] = -deg[rows, :, 1]
        out["camera_deg"] = deg
    return out


@torch.no_grad()
def evaluate_idm(idm, segments: Sequence, seq_len: int, batch_size: int = 4, device="cpu",
                 max_frames: Optional[int] = None, num_workers: int = 0) -> dict:
    """:func:`idm_metrics` of ``idm`` on every frame of ``segments`` (non-overlapping windows)."""
    with eval_mode(idm):
        ds = SequenceDataset(segments, batch_size=batch_size, seq_len=seq_len, skip_null=False, pack=False,
                             epochs=1, shuffle=False)
        pb, tb, pc, td, pm = [], [], [], [], []
        n = 0
        for batch in make_loader(ds, num_workers=num_workers, device=device):
            mask = batch["mask"]
            if not mask.any():
                continue
            logp = idm(batch["img"].to(device, non_blocking=True))
            b, c = idm_argmax(logp)
            m = mask.numpy()
            pb.append(b.cpu().numpy()[m])
            pc.append(c.cpu().numpy()[m])
            pm.append(camera_posterior_mean(logp["camera"]).cpu().numpy()[m])
            tb.append(batch["idm_buttons"].numpy()[m])
            td.append(batch["camera_deg"].numpy()[m])
            n += int(m.sum())
            if max_frames and n >= max_frames:
                break
    if n == 0:
        raise ValueError("no held-out frames could be read for evaluation")
    return idm_metrics(np.concatenate(pb), np.concatenate(tb), np.concatenate(pc), np.concatenate(td),
                       pred_deg_mean=np.concatenate(pm))


# ---------------------------------------------------------------------------------------------------
# Training


def idm_label_counts(segments: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Counts of the IDM targets over every line (null lines included) of the segments' jsonl files, inside their
    clean spans.

    :return: ``(buttons (20, 2), camera (2, 11))``: for each button the frames with it released/pressed,
        for each camera axis (pitch, yaw) the frames in each mu-law bin.
    """
    buttons = np.zeros((len(BUTTONS_ALL), 2), np.int64)
    camera = np.zeros((2, 11), np.int64)
    for mp4 in segments:
        for env_action, _ in clean_actions(mp4):
            flags, bins = env_to_factored(env_action)
            buttons[np.arange(len(flags)), np.asarray(flags, np.int64)] += 1
            camera[[0, 1], np.asarray(bins, np.int64)] += 1
    return buttons, camera


def init_idm_heads(idm, segments: Sequence) -> None:
    """Start ``idm``'s heads at the label prior of ``segments`` (:func:`init_head_from_prior`)."""
    b, c = idm_label_counts(segments)
    init_head_from_prior(idm.pi_head["buttons"].linear_layer, prior_log_probs(b), temperature=idm.temperature)
    init_head_from_prior(idm.pi_head["camera"].linear_layer, prior_log_probs(c), temperature=idm.temperature)


def _build_idm(args: Args, device):
    if args.init_model:
        weights = args.init_weights or str(Path(args.init_model).with_suffix(".weights"))
        return load_idm(args.init_model, weights, device=str(device))
    if args.preset not in IDM_PRESETS:
        raise ValueError(f"unknown IDM preset {args.preset!r}; expected one of {sorted(IDM_PRESETS)}")
    return IDMNet(IDM_PRESETS[args.preset]).to(device)


def train_idm(args: Args) -> Path:
    """Train an IDM as described by ``args``; returns the path of the written ``.model`` file.

    Resumes from ``OUT/train_state.pt`` (step, optimizer, data position) and the weights when ``args.resume``.
    On SIGINT / SIGTERM it saves at the current step and raises :class:`vpt_rl.interrupt.Interrupted`.
    """
    with stop_requested() as stop:
        return _train_idm(args, stop)


def _train_idm(args: Args, stop: StopFlag) -> Path:
    if not args.data:
        raise ValueError("train_idm needs at least one data folder or segment (args.data is empty)")
    if not 0.0 <= args.mirror_aug <= 1.0:
        raise ValueError(f"mirror_aug must be a probability in [0, 1], got {args.mirror_aug!r}")
    seed_everything(args.seed)
    device = resolve_device(args.device)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for tmp in remove_stale_temporaries(out):
        print(f"removed {tmp}, left by an interrupted write", file=sys.stderr)
    stem = args.name or out.resolve().name
    model_path, weights_path, state_path = out / f"{stem}.model", out / f"{stem}.weights", out / "train_state.pt"

    segments = find_segments(args.data)
    if args.val_data:
        train_segs, val_segs = segments, find_segments(args.val_data)
    else:
        train_segs, val_segs = split_segments(segments, args.val_fraction, seed=args.seed)
    if not train_segs:
        raise ValueError(f"no labelled segments found under {args.data}")

    state = saved_train_state(state_path, weights_path) if args.resume else None
    step = int(state["step"]) if state is not None else 0
    if state is not None:
        idm = load_idm(str(model_path), str(weights_path), device=str(device))
        if "model" in state:  # the weights saved with this state (a kill can fall between the two files' writes)
            idm.load_state_dict(state["model"])
    else:
        idm = _build_idm(args, device)
        if args.prior_init and not args.init_model:
            init_idm_heads(idm, train_segs)
    motion_aux = args.motion_aux if idm.motion is not None else 0.0
    cache = None
    if motion_aux:
        counts = idm_label_counts(train_segs)
        btn_log_prior = torch.as_tensor(prior_log_probs(counts[0]), dtype=torch.float32, device=device)  # (20, 2)
        cam_log_prior = torch.as_tensor(prior_log_probs(counts[1]), dtype=torch.float32, device=device)  # (2, 11)
        if args.motion_aux_frames > 0 and step < args.total_steps:
            cache = MotionCache(train_segs, args.motion_cache_frames, seed=args.seed, progress=args.progress)
            cache_rng = torch.Generator().manual_seed(args.seed * 7919 + step)
            if state is not None and "cache_rng" in state:  # the draws an uninterrupted run would make
                cache_rng.set_state(state["cache_rng"])
    idm.train()
    seq_len = int(args.seq_len or idm.cfg.timesteps)
    opt = torch.optim.AdamW([p for p in idm.parameters() if p.requires_grad], lr=args.lr,
                            weight_decay=args.weight_decay)
    if state is not None:
        opt.load_state_dict(state["optimizer"])

    positions = StreamPositions(layout_key(train_segs, args.batch_size, max(1, args.num_workers), seq_len=seq_len),
                                seed=args.seed)
    start = positions.resume_from(state.get("data")) if state is not None else None
    if state is not None and start is None:  # saved by an older version or another layout: reshuffle instead
        positions.seed = args.seed + step
        print(f"resuming at step {step}: the data or its layout changed since the checkpoint, so the data stream "
              "is reshuffled instead of continued at its position", file=sys.stderr)
    ds = SequenceDataset(train_segs, batch_size=args.batch_size, seq_len=seq_len, skip_null=False,
                         pack=False, epochs=None, shuffle=True, seed=positions.seed, start=start)
    loader = iter(make_loader(ds, num_workers=args.num_workers, device=device))
    writer = summary_writer(out / "tb")
    history = resumed_list(state, "history", out / "metrics.json")

    def save(final_metrics=None):
        # the training state first, whole: it is what a resume reads, so a kill between the files costs nothing
        train_state = {"step": step, "model": cpu_state_dict(idm), "optimizer": opt.state_dict(),
                       "data": positions.state_dict(), "history": history, "aug_rng": aug_rng.get_state()}
        if cache is not None:
            train_state["cache_rng"] = cache_rng.get_state()
        atomic_torch_save(train_state, state_path)
        save_idm(idm, str(model_path), str(weights_path))
        payload = {"args": asdict(args), "step": step, "history": history,
                   "train_segments": [str(s) for s in train_segs], "val_segments": [str(s) for s in val_segs]}
        if final_metrics is not None:
            payload["final"] = final_metrics
        atomic_write_json(out / "metrics.json", payload, indent=1)

    def run_eval():
        if not val_segs:
            return None
        m = evaluate_idm(idm, val_segs, seq_len, args.batch_size, device, args.eval_max_frames)
        for k in ("keypress_accuracy", "button_accuracy", "camera_r2", "camera_bin_accuracy", "camera_r2_pitch_mean",
                  "camera_r2_yaw_mean", "camera_sign_accuracy_pitch_mean", "camera_sign_accuracy_yaw_mean"):
            writer.add_scalar(f"eval/{k}", m[k], step)
        history.append({"step": step, **{k: v for k, v in m.items() if k != "button_accuracy_per_key"}})
        return m

    warmup = min(args.warmup_steps, args.total_steps // 4)  # short runs still get to the peak lr
    aug_rng = torch.Generator().manual_seed(args.seed * 1000003 + step)
    if state is not None and "aug_rng" in state:
        aug_rng.set_state(state["aug_rng"])
    bar = tqdm(total=args.total_steps, initial=step, desc="train-idm", disable=not args.progress)
    t0, frames = time.time(), 0

    def stop_if_asked():
        if stop:
            save()
            writer.close()
            raise interrupted_at(stop.signum, step, out.resolve())

    while step < args.total_steps:
        stop_if_asked()
        batch = next(loader, None)
        if batch is None:  # every lane's segments failed to decode (each failure was warned about)
            raise RuntimeError(f"no usable frames in {args.data}: every segment was unreadable or held only "
                               "null actions (see the warnings)")
        positions.update(batch)
        mask = batch["mask"].to(device, non_blocking=True)
        if not mask.any():
            continue
        if args.mirror_aug > 0:
            batch = mirror_batch(batch, torch.rand(mask.shape[0], generator=aug_rng) < args.mirror_aug)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.lr, warmup, args.total_steps)
        # pinned batches (make_loader pins them for a CUDA device): the copies overlap with the GPU's work
        img = batch["img"].to(device, non_blocking=True)
        logp = idm(img, return_motion=bool(motion_aux) and cache is None)
        cam_true = batch["idm_camera"].to(device, non_blocking=True)
        btn_true = batch["idm_buttons"].to(device, non_blocking=True)
        loss = idm_loss(logp, btn_true, cam_true, mask)
        if motion_aux and cache is not None:
            length = 16 if idm.motion.context is not None else 1
            vol, cam_c, btn_c, m_c, _ = cache.sample(max(1, args.motion_aux_frames // length), length, cache_rng)
            _, cam_logits, btn_logits = idm.motion(None, volume=vol.to(device))
            m_c = m_c.to(device)
            aux = motion_camera_loss(cam_logits, cam_log_prior, cam_c.to(device), m_c, windows=False)
            aux_b = motion_camera_loss(btn_logits, btn_log_prior, btn_c.to(device), m_c, windows=False)
            writer.add_scalar("train/motion_camera_loss", aux.item(), step + 1)
            writer.add_scalar("train/motion_buttons_loss", aux_b.item(), step + 1)
            loss = loss + motion_aux * (aux + aux_b)
        elif motion_aux:
            aux = motion_camera_loss(logp["motion_camera"], cam_log_prior, cam_true, mask) + motion_camera_loss(
                logp["motion_buttons"], btn_log_prior, btn_true, mask)
            writer.add_scalar("train/motion_camera_loss", aux.item(), step + 1)
            loss = loss + motion_aux * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for p in idm.parameters() if p.grad is not None],
            args.max_grad_norm if args.max_grad_norm > 0 else float("inf"))
        opt.step()
        step += 1
        frames += int(mask.sum())
        writer.add_scalar("train/loss", loss.item(), step)
        writer.add_scalar("train/grad_norm", float(grad_norm), step)
        writer.add_scalar("train/lr", opt.param_groups[0]["lr"], step)
        writer.add_scalar("train/frames_per_s", frames / max(time.time() - t0, 1e-9), step)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        periodic_eval_and_save(step, args, run_eval, save)
    bar.close()
    stop_if_asked()
    final = run_eval()
    save(final)
    writer.close()
    return model_path


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(Args, argv, prog="vpt-rl train-idm", paths=TRAINING_INPUTS)
    with resume_hint("vpt-rl train-idm", args):
        path = train_idm(args)
    metrics = json.loads((path.parent / "metrics.json").read_text()).get("final")
    if metrics:
        print(f"held-out keypress accuracy {metrics['keypress_accuracy']:.3f} "
              f"(per-button mean {metrics['button_accuracy']:.3f}); camera R^2 pitch/yaw "
              f"{metrics['camera_r2_pitch']:.3f}/{metrics['camera_r2_yaw']:.3f} (argmax bin), "
              f"{metrics['camera_r2_pitch_mean']:.3f}/{metrics['camera_r2_yaw_mean']:.3f} (posterior mean)")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:], "vpt-rl train-idm"))
