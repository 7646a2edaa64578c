"""Train the clean-footage frame filter (``vpt-rl train-filter``) on a few thousand labelled frames.

Run::

    vpt-rl train-filter data/handlabelled --out-dir runs/filter                      # small CNN (default)
    vpt-rl train-filter data/handlabelled --backbone vpt --vpt-model foundation-model-1x.model

Labels. Each training video ``NAME.mp4`` carries its labels in ``NAME.clean.json`` (the format of
:mod:`vpt_rl.data.weblike`: ``{"version": 1, "n_frames": N, "unclean_spans": [[start, end, kind], ...]}``,
frames outside every span are clean), which is what ``vpt-rl record --web-like RATE`` writes and what a person
labelling their own footage writes by hand. A video without one (or with one that cannot be read) is left out
with a :class:`~vpt_rl.data.contractor.DataWarning`.

Frames. ``--frames`` labelled frames are drawn from the training videos, seeded, ``--unclean-share`` of them
unclean when there are enough (the paper labelled 8,800 frames; unclean footage is rare, so a uniform draw
would hold few). Only the drawn frames are kept in memory. The ``vpt`` backbone encodes them once with the
frozen encoder and trains only its linear probe.

Held-out metrics (``--val-data``, or a ``--val-fraction`` of the videos): every frame of the held-out videos
is scored; ``frame_*`` is the raw classifier at P(unclean) = 0.5, the rest is after the smoothing and span
cutting of ``vpt-rl filter`` (:func:`vpt_rl.data.clean_spans.scores_to_spans`): precision and recall of the
frames kept as clean, and of the frames removed.

Writes ``OUT/filter.pt`` (:func:`vpt_rl.train.filter_model.save_filter`, atomic, loads with
``weights_only=True``), ``OUT/train_state.pt`` (weights, optimizer, step, random state: a rerun resumes;
``--no-resume`` starts over), ``OUT/metrics.json`` and TensorBoard logs in ``OUT/tb``. Ctrl-C or ``kill`` saves at
the current step and prints the command that resumes.
"""
from __future__ import annotations

import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vpt_rl.atomic import atomic_torch_save, atomic_write_json, remove_stale_temporaries
from vpt_rl.data.clean_spans import frame_scores, scores_to_spans, spans_mask
from vpt_rl.data.contractor import DataWarning, find_segments, iter_video_frames, resize_frame
from vpt_rl.data.dataset import split_segments
from vpt_rl.data.video import read_video_frames
from vpt_rl.data.weblike import frame_kinds, read_sidecar, removal_scores, sidecar_path, unclean_mask
from vpt_rl.interrupt import StopFlag, run_main, stop_requested
from vpt_rl.train.args import RunArgs, check_ranges, parse_args
from vpt_rl.train.filter_model import BACKBONES, FrameFilter, build_filter, save_filter, score_frames
from vpt_rl.train.runtime import (
    cpu_state_dict,
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

FILTER_FILE = "filter.pt"


@dataclass
class Args(RunArgs):
    """Train a clean-vs-unclean frame classifier (small CNN, or a linear probe on the frozen VPT encoder)."""

    data: list[str] = field(default_factory=list, metadata={"positional": True})
    """videos or folders whose NAME.mp4 have labels in NAME.clean.json beside them"""
    val_data: list[str] = field(default_factory=list)
    """held-out labelled videos (default: a val_fraction split of data, by video)"""
    val_fraction: float = 0.2
    """share of the videos held out when val_data is empty"""
    frames: int = 4000
    """labelled frames drawn for training (the paper hand-labelled 8,800)"""
    unclean_share: float = 0.5
    """share of the drawn frames that are unclean, when the videos hold that many"""
    backbone: str = "cnn"
    """cnn (a small CNN, trained whole) or vpt (a linear probe on a VPT policy's frozen image encoder)"""
    width: int = 16
    """channels of the small CNN's first layer"""
    vpt_model: Optional[str] = None
    """backbone vpt: the policy .model whose image encoder is used (e.g. foundation-model-1x.model)"""
    vpt_weights: Optional[str] = None
    """backbone vpt: its .weights (default: the .model path with the suffix .weights)"""
    flip: bool = True
    """cnn: train on left-right mirror images half of the time"""
    batch_size: int = 64
    """frames per step"""
    total_steps: int = field(default=600, metadata={"aliases": ["steps"]})
    """optimizer steps"""
    lr: float = 2e-3
    """peak learning rate (AdamW)"""
    weight_decay: float = 1e-4
    """AdamW weight decay"""
    warmup_steps: int = 20
    """linear warm-up steps, then cosine decay to 10% of lr"""
    threshold: float = 0.5
    """held-out span metrics: a frame is unclean when its smoothed P(unclean) is at least this"""
    window: int = 9
    """held-out span metrics: frames of the moving average over P(unclean)"""
    margin: int = 2
    """held-out span metrics: frames added on each side of every unclean run"""
    min_span: int = 20
    """held-out span metrics: clean runs shorter than this many frames are dropped"""
    eval_every: int = 200
    """score the held-out videos every this many steps (and at the end)"""
    eval_max_frames: int = 30000
    """held-out frames scored at most per evaluation (whole videos, in order)"""
    save_every: int = 200
    """write the checkpoint every this many steps (and at the end)"""
    out_dir: str = field(default="runs/filter", metadata={"aliases": ["out"]})
    """where filter.pt, train_state.pt, metrics.json and TensorBoard logs go"""

    def validate(self) -> None:
        super().validate()
        check_ranges(self, count=("frames", "width", "batch_size", "total_steps", "window", "min_span",
                                  "eval_max_frames"),
                     non_negative=("weight_decay", "warmup_steps", "margin", "eval_every", "save_every"),
                     positive=("lr",), fraction=("val_fraction",), probability=("unclean_share",))
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone {self.backbone!r}: expected one of {', '.join(BACKBONES)}")
        if self.backbone == "vpt" and not self.vpt_model:
            raise ValueError("backbone vpt needs --vpt-model, the policy whose image encoder the probe reads")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold!r}")


# ---------------------------------------------------------------------------------------------------
# Labelled frames


def labelled_videos(videos: Sequence[Path]) -> List[Tuple[Path, np.ndarray]]:
    """``(video, unclean mask)`` of every video with a readable ``NAME.clean.json``; the others are left out,
    each with a :class:`~vpt_rl.data.contractor.DataWarning`."""
    out = []
    for mp4 in videos:
        mp4 = Path(mp4)
        if not sidecar_path(mp4).is_file():
            warnings.warn(f"{mp4}: no {sidecar_path(mp4).name} beside it (the frame labels); left out", DataWarning,
                          stacklevel=2)
            continue
        try:
            out.append((mp4, unclean_mask(read_sidecar(mp4))))
        except ValueError as e:
            warnings.warn(f"{e}; {mp4.name} is left out", DataWarning, stacklevel=2)
    return out


def sample_labelled_frames(videos: Sequence[Tuple[Path, np.ndarray]], n_frames: int, unclean_share: float = 0.5,
                           seed: int = 0, progress: bool = False) -> Dict[str, np.ndarray]:
    """Draw up to ``n_frames`` labelled frames, ``unclean_share`` of them unclean when there are enough, and
    decode them (only the videos that hold a drawn frame are decoded).

    :param videos: ``(video, unclean mask)`` pairs from :func:`labelled_videos`.
    :return: ``{"frames": uint8 (N, 128, 128, 3), "unclean": float32 (N,) 0/1, "video": int64 (N,) index into
        videos, "index": int64 (N,) frame index}``, in video and frame order. Frames that do not decode (a video
        shorter than its labels say) are left out, with the reader's warning.
    """
    rng = np.random.default_rng(seed)
    pools = {True: [], False: []}
    for v, (_, mask) in enumerate(videos):
        for flag in (True, False):
            idx = np.flatnonzero(mask == flag)
            pools[flag].append(np.stack([np.full(len(idx), v), idx], 1))
    pools = {k: (np.concatenate(p) if p else np.zeros((0, 2), np.int64)) for k, p in pools.items()}
    n_unclean = min(len(pools[True]), int(round(n_frames * unclean_share)))
    n_clean = min(len(pools[False]), n_frames - n_unclean)
    n_unclean = min(len(pools[True]), n_frames - n_clean)  # fill up with unclean when clean frames are short
    picked = np.concatenate([pools[True][rng.choice(len(pools[True]), n_unclean, replace=False)],
                             pools[False][rng.choice(len(pools[False]), n_clean, replace=False)]])
    picked = picked[np.lexsort((picked[:, 1], picked[:, 0]))]
    frames, unclean, vids, idxs = [], [], [], []
    wanted = {v: set(picked[picked[:, 0] == v, 1].tolist()) for v in np.unique(picked[:, 0]).tolist()}
    for v in tqdm(sorted(wanted), desc="decode labelled frames", unit="video", disable=not progress):
        mp4, mask = videos[v]
        last = max(wanted[v])
        for i, frame in enumerate(iter_video_frames(mp4, expected=len(mask))):
            if i in wanted[v]:
                frames.append(resize_frame(frame))
                unclean.append(float(mask[i]))
                vids.append(v)
                idxs.append(i)
            if i >= last:
                break
    if not frames:
        raise ValueError("no labelled frame could be decoded from the training videos")
    return {"frames": np.stack(frames), "unclean": np.asarray(unclean, np.float32),
            "video": np.asarray(vids, np.int64), "index": np.asarray(idxs, np.int64)}


# ---------------------------------------------------------------------------------------------------
# Held-out metrics


def evaluate_filter(filt: FrameFilter, videos: Sequence[Tuple[Path, np.ndarray]], *, batch_size: int = 256,
                    device="cpu", max_frames: int = 30000, threshold: float = 0.5, window: int = 9, margin: int = 2,
                    min_span: int = 20) -> Dict[str, float]:
    """Score every frame of labelled ``videos`` (whole videos, until ``max_frames``): ``frame_*`` metrics of the
    raw classifier at 0.5, and :func:`~vpt_rl.data.clean_spans.frame_scores` of the clean spans ``vpt-rl filter``
    would cut with these settings, plus the recall of unclean frames per kind."""
    kept_all, raw_all, kinds_all = [], [], []
    seen = 0
    for mp4, mask in videos:
        if seen >= max_frames:
            break
        frames = read_video_frames(mp4)[: len(mask)]
        if len(frames) == 0:
            continue
        p = score_frames(filt, frames, batch_size, device)
        spans = scores_to_spans(p, threshold=threshold, window=window, margin=margin, min_span=min_span)
        kept_all.append(spans_mask(spans, len(p)))
        raw_all.append(p < 0.5)
        kinds_all.append(frame_kinds(read_sidecar(mp4), len(p)))
        seen += len(p)
    if not kept_all:
        return {}
    kinds = np.concatenate(kinds_all)
    out = removal_scores(np.concatenate(kept_all), kinds)
    raw_scores = frame_scores(np.concatenate(raw_all), kinds == "clean")
    out.update({f"frame_{k}": raw_scores[k] for k in ("precision", "recall", "unclean_precision", "unclean_recall",
                                                       "accuracy")})
    out.update({f"removed_{k}": v for k, v in out.pop("removed_by_kind").items() if k != "clean"})
    return out


# ---------------------------------------------------------------------------------------------------
# Training


def train_filter(args: Args) -> Path:
    """Train a frame filter as described by ``args``; returns the path of ``OUT/filter.pt``.

    Resumes from ``OUT/train_state.pt`` when ``args.resume``; on SIGINT / SIGTERM saves at the current step and
    raises :class:`vpt_rl.interrupt.Interrupted`.
    """
    with stop_requested() as stop:
        return _train_filter(args, stop)


def _train_filter(args: Args, stop: StopFlag) -> Path:
    seed_everything(args.seed)
    device = resolve_device(args.device)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for tmp in remove_stale_temporaries(out):
        print(f"removed {tmp}, left by an interrupted write", file=sys.stderr)
    filter_path, state_path = out / FILTER_FILE, out / "train_state.pt"

    videos = find_segments(args.data, require_jsonl=False)
    if args.val_data:
        train_v, val_v = videos, find_segments(args.val_data, require_jsonl=False)
    else:
        train_v, val_v = split_segments(videos, args.val_fraction, seed=args.seed) if args.val_fraction else (
            videos, [])
    train_l, val_l = labelled_videos(train_v), labelled_videos(val_v)
    if not train_l:
        raise ValueError(f"no labelled training video (NAME.mp4 with NAME.clean.json) under {args.data}")
    data = sample_labelled_frames(train_l, args.frames, args.unclean_share, seed=args.seed, progress=args.progress)
    n, n_unclean = len(data["unclean"]), int(data["unclean"].sum())
    print(f"train-filter: {n} labelled frames ({n_unclean} unclean) from {len(train_l)} video(s); "
          f"{len(val_l)} held-out video(s)", file=sys.stderr)

    filt = build_filter(args.backbone, width=args.width, vpt_model=args.vpt_model, vpt_weights=args.vpt_weights,
                        device=device)
    inputs = torch.from_numpy(data["frames"])
    if args.backbone == "vpt":  # the encoder is frozen: encode every frame once, train the probe on features
        feats = [filt.backbone.features(inputs[i:i + 64].to(device))
                 for i in tqdm(range(0, n, 64), desc="encode", unit="batch", disable=not args.progress)]
        inputs = torch.cat(feats)
        filt.backbone.fit_scaler(inputs)
        classify = filt.backbone.classify
        params = list(filt.backbone.probe.parameters())
    else:
        classify = filt
        params = list(filt.parameters())
    labels = torch.from_numpy(data["unclean"])
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    gen = torch.Generator().manual_seed(args.seed)
    state = saved_train_state(state_path, filter_path) if args.resume else None
    step = 0
    if state is not None:
        filt.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["rng"])
        step = int(state["step"])
    history = resumed_list(state, "history", out / "metrics.json")
    writer = summary_writer(out / "tb")
    settings = dict(threshold=args.threshold, window=args.window, margin=args.margin, min_span=args.min_span)

    def run_eval():
        if not val_l:
            return None
        filt.eval()
        m = evaluate_filter(filt, val_l, device=device, max_frames=args.eval_max_frames, **settings)
        filt.train()
        for k, v in m.items():
            if v is not None:
                writer.add_scalar(f"eval/{k}", v, step)
        history.append({"step": step, **m})
        return m

    def save(final=None):
        atomic_torch_save({"step": step, "model": cpu_state_dict(filt), "optimizer": opt.state_dict(),
                           "rng": gen.get_state(), "history": history}, state_path)
        info = {"args": asdict(args), "step": step, "train_frames": n, "train_unclean_frames": n_unclean,
                "train_videos": [str(v) for v, _ in train_l], "val_videos": [str(v) for v, _ in val_l]}
        if final is not None:
            info["final"] = final
        save_filter(filt, filter_path, info)
        atomic_write_json(out / "metrics.json", {**info, "history": history}, indent=1)

    def stop_if_asked():
        if stop:
            save()
            writer.close()
            raise interrupted_at(stop.signum, step, out.resolve())

    filt.train()
    warmup = min(args.warmup_steps, args.total_steps // 4)
    bar = tqdm(total=args.total_steps, initial=step, desc="train-filter", disable=not args.progress)
    t0, seen = time.time(), 0
    while step < args.total_steps:
        stop_if_asked()
        idx = torch.randint(0, n, (min(args.batch_size, n),), generator=gen)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.lr, warmup, args.total_steps)
        x = inputs[idx]
        if args.backbone == "cnn" and args.flip:  # mirror images: overlays sit in either corner
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(2), x)
        logits = classify(x.to(device))
        target = labels[idx].to(device)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seen += len(idx)
        acc = float(((logits > 0).float() == target).float().mean())
        writer.add_scalar("train/loss", loss.item(), step)
        writer.add_scalar("train/accuracy", acc, step)
        writer.add_scalar("train/lr", opt.param_groups[0]["lr"], step)
        writer.add_scalar("train/frames_per_s", seen / max(time.time() - t0, 1e-9), step)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{acc:.2f}")
        periodic_eval_and_save(step, args, run_eval, save)
    bar.close()
    stop_if_asked()
    final = run_eval()
    save(final)
    writer.close()
    return filter_path


def describe(metrics: Optional[dict]) -> str:
    """One line of held-out filter metrics for the user."""
    if not metrics:
        return "no held-out video: nothing measured"
    def f(key: str) -> str:
        return "-" if metrics.get(key) is None else f"{metrics[key]:.3f}"

    return (f"held-out frames {metrics['frames']}: clean kept precision {f('precision')} recall {f('recall')}; "
            f"unclean removed precision {f('unclean_precision')} recall {f('unclean_recall')} (raw classifier "
            f"accuracy {f('frame_accuracy')})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(Args, argv, prog="vpt-rl train-filter", paths=("data", "val_data", "vpt_model", "vpt_weights"))
    with resume_hint("vpt-rl train-filter", args):
        path = train_filter(args)
    print(describe(torch.load(path, map_location="cpu", weights_only=True)["info"].get("final")))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:], "vpt-rl train-filter"))
