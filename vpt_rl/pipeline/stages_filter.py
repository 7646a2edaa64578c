"""The ``filter`` stage: train the clean-footage frame filter and cut the unlabelled videos into clean spans.

Between ``split`` and ``label``, as in the VPT paper, where a classifier removed footage that was not clean
survival-mode play before the IDM labelled it. The hand labels of the paper (8,800 frames) are played by the
ground truth of the first ``filter_label_episodes`` unlabelled episodes (their ``NAME.clean.json``, kept in
``data/heldout_truth/``): ``filter_frames`` frames are drawn from them to train the filter
(:mod:`vpt_rl.train.train_filter`), which is scored on the other unlabelled episodes. Then every unlabelled video
is filtered (:mod:`vpt_rl.train.filter`): ``data/unlabelled/NAME.spans.json``, which ``label`` and BC honour.

``filter=auto`` runs the filter only when the unlabelled split holds unclean footage (a ground-truth sidecar
with at least one unclean span); ``off`` never does. Either way, spans files a previous configuration left in
``data/unlabelled/`` are removed first, so the videos are used whole unless this run filtered them.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List

import numpy as np
import torch

from vpt_rl.data.clean_spans import SPANS_SUFFIX, read_spans, spans_mask
from vpt_rl.data.weblike import frame_kinds, read_sidecar, removal_scores, sidecar_path, unclean_mask
from vpt_rl.pipeline.files import episode_key, list_segments, prepare_dir
from vpt_rl.train import filter as filter_mod
from vpt_rl.train import train_filter as train_filter_mod

if TYPE_CHECKING:  # annotations only: the engine imports this module
    from vpt_rl.pipeline.engine import StageContext


def unclean_footage(truth_dir: Path) -> int:
    """Unclean frames in the ground-truth sidecars of ``truth_dir`` (0: clean footage, or no sidecar)."""
    total = 0
    for path in sorted(Path(truth_dir).glob("*.clean.json")):
        total += int(unclean_mask(read_sidecar(path)).sum())
    return total


def removed_frames(videos: List[Path], truth_dir: Path) -> Dict[str, Any]:
    """What the filter removed from ``videos`` against their ground truth (:func:`~vpt_rl.data.weblike.
    removal_scores`: frame precision / recall of both classes and the share removed of each kind)."""
    kept, kinds = [], []
    for mp4 in videos:
        side = sidecar_path(truth_dir / mp4.name)
        if not side.is_file():
            continue
        gt = read_sidecar(side)
        kept.append(spans_mask(read_spans(mp4), gt["n_frames"]))  # no spans file: kept whole
        kinds.append(frame_kinds(gt))
    return removal_scores(np.concatenate(kept), np.concatenate(kinds)) if kept else {}


def stage_filter(ctx: StageContext) -> Dict[str, Any]:
    """Train the filter on the first ``filter_label_episodes`` unlabelled episodes' ground truth and write the
    clean spans of every unlabelled video (module docstring); returns what was removed."""
    cfg = ctx.cfg
    for old in ctx.unlabelled_dir.glob("*" + SPANS_SUFFIX):
        old.unlink()
    unclean = unclean_footage(ctx.truth_dir)
    if cfg.filter == "off" or (cfg.filter == "auto" and unclean == 0):
        why = "filter=off" if cfg.filter == "off" else "the unlabelled videos hold no unclean footage"
        ctx.log(f"[pipeline] filter: skipped ({why}); the videos are labelled whole")
        return {"filtered": False, "why": why, "unclean_frames_in_truth": unclean}
    videos = list_segments(ctx.unlabelled_dir, need_jsonl=False)
    episodes = sorted({episode_key(v) for v in videos})
    hand = set(episodes[: cfg.filter_label_episodes])
    label_mp4 = [ctx.truth_dir / v.name for v in videos if episode_key(v) in hand]
    score_mp4 = [ctx.truth_dir / v.name for v in videos if episode_key(v) not in hand]
    out = ctx.out / "filter"
    prepare_dir(out, ctx.stage_config("filter"), ctx.force)
    args = train_filter_mod.Args(
        data=[str(p) for p in label_mp4], val_data=[str(p) for p in score_mp4], val_fraction=0.0,
        frames=cfg.filter_frames, width=cfg.filter_width, total_steps=cfg.filter_steps, eval_every=0,
        save_every=max(50, cfg.filter_steps // 4), seed=ctx.seed, device=ctx.device, out_dir=str(out),
        progress=False)
    filter_path = train_filter_mod.train_filter(args)
    done = filter_mod.filter_videos([str(ctx.unlabelled_dir)], filter_path, device=ctx.device, progress=False)
    ctx.log(f"[pipeline] filter: {done.summary()}")
    info = torch.load(filter_path, map_location="cpu", weights_only=True)["info"]
    return {
        "filtered": True, "filter": str(filter_path), "hand_labelled_episodes": sorted(hand),
        "train_frames": info.get("train_frames"), "train_unclean_frames": info.get("train_unclean_frames"),
        "heldout": info.get("final") or {}, "videos": len(videos), "frames": done.frames,
        "kept_frames": done.kept_frames, "kept_share": done.kept_share, "frames_per_s": done.frames_per_s,
        "removed": removed_frames(videos, ctx.truth_dir),
    }
