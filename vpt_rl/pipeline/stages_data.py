"""The data stages: ``record`` (scripted-expert episodes) and ``split`` (labelled part and unlabelled video)."""
from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List

from vpt_rl.data import record as recording
from vpt_rl.data.recorder import RECORDER_VERSION
from vpt_rl.data.weblike import sidecar_path
from vpt_rl.pipeline.files import (
    PipelineError,
    count_lines,
    episode_key,
    link_or_copy,
    list_segments,
    prepare_dir,
    write_segment_index,
)

if TYPE_CHECKING:  # annotations only: the engine imports this module
    from vpt_rl.pipeline.engine import StageContext

LABELLED_ALIAS = "contractor"
"""segment-name alias of the episodes recorded for the labelled split"""


def stage_record(ctx: StageContext) -> Dict[str, Any]:
    """Record ``cfg.episodes`` scripted-expert episodes into ``data/recorded``: the first ``n_labelled``
    world seeds contractor-like (alias ``contractor``, camera noise ``cfg.label_camera_noise``), the
    others as expert play (alias ``expert``, camera noise ``cfg.video_camera_noise``), each with its own
    world seed; with ``imitable`` the expert finds trees from the screen; ``web_like_rate`` > 0 records the expert
    episodes as web-like footage (``NAME.clean.json`` ground truth beside each segment). An interrupted recording
    resumes per episode; recordings made with other knobs (or ``--force``) are deleted first."""
    cfg = ctx.cfg
    prepare_dir(ctx.recorded_dir, ctx.stage_config("record"), ctx.force)
    n_lab = min(max(cfg.n_labelled, 0), cfg.episodes)
    for alias, n, seed, noise in ((LABELLED_ALIAS, n_lab, ctx.seed, cfg.label_camera_noise),
                                  ("expert", cfg.episodes - n_lab, ctx.seed + n_lab, cfg.video_camera_noise)):
        if n <= 0:
            continue
        web_like = cfg.web_like_rate if alias != LABELLED_ALIAS and cfg.web_like_rate > 0 else None
        done = recording.record_dataset(
            ctx.recorded_dir, n, seed=seed, max_ticks=cfg.episode_ticks, resolution=(cfg.resolution, cfg.resolution),
            epsilon=cfg.expert_epsilon, camera_noise=noise, imitable=cfg.imitable, alias=alias,
            world_size=cfg.world_size, unclean_rate=web_like)
        ctx.log(f"[pipeline] record {alias}: recorded {done.recorded} episode(s), skipped {done.skipped} "
                f"already recorded")
    segs = list_segments(ctx.recorded_dir)
    if len(segs) < cfg.episodes:
        raise PipelineError(f"record: expected >= {cfg.episodes} segments in {ctx.recorded_dir}, found {len(segs)}")
    return {"segments": len(segs), "frames": sum(count_lines(p.with_suffix(".jsonl")) for p in segs)}


def stage_split(ctx: StageContext) -> Dict[str, Any]:
    """Keep ``cfg.n_labelled`` episodes labelled; the others become unlabelled video.

    ``data/labelled/``: mp4 + jsonl. ``data/unlabelled/``: the mp4 only (hard-linked); their true jsonl (and the
    ``NAME.clean.json`` ground truth of web-like footage) goes to ``data/heldout_truth/`` (with a hard link of the mp4, so it is a segment folder the IDM can be
    scored on) to measure the IDM's pseudo-labels later. Episodes (not segments) are split: the
    contractor-like recordings (alias ``contractor``, :func:`stage_record`) are the labelled part when there
    are ``n_labelled`` of them; otherwise (recordings of one kind) ``n_labelled`` episodes are chosen by a
    shuffle seeded with the pipeline seed.
    """
    segs = list_segments(ctx.recorded_dir)
    if not segs:
        raise PipelineError(f"split: no recorded segments (mp4 + jsonl) in {ctx.recorded_dir}")
    episodes: Dict[str, List[Path]] = {}
    for s in segs:
        episodes.setdefault(episode_key(s), []).append(s)
    keys = sorted(episodes)
    n_lab = ctx.cfg.n_labelled
    if not 1 <= n_lab < len(keys):
        raise PipelineError(
            f"split: n_labelled={n_lab} with {len(keys)} recorded episodes; expected 1 <= n_labelled < episodes")
    contractor = [k for k in keys if Path(k).name.startswith(f"{RECORDER_VERSION}-{LABELLED_ALIAS}-")]
    if len(contractor) == n_lab:
        labelled = contractor
    else:
        random.Random(ctx.seed).shuffle(keys)
        labelled = sorted(keys[:n_lab])
    unlabelled = sorted(set(keys) - set(labelled))
    for d in (ctx.labelled_dir, ctx.unlabelled_dir, ctx.truth_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    lab_segs, unl_segs = [], []
    for k in labelled:
        for s in episodes[k]:
            link_or_copy(s, ctx.labelled_dir / s.name)
            link_or_copy(s.with_suffix(".jsonl"), ctx.labelled_dir / s.with_suffix(".jsonl").name)
            lab_segs.append(ctx.labelled_dir / s.name)
    for k in unlabelled:
        for s in episodes[k]:
            link_or_copy(s, ctx.unlabelled_dir / s.name)
            link_or_copy(s.with_suffix(".jsonl"), ctx.truth_dir / s.with_suffix(".jsonl").name)
            if sidecar_path(s).is_file():  # web-like footage: its ground truth stays with the true actions
                link_or_copy(sidecar_path(s), sidecar_path(ctx.truth_dir / s.name))
            link_or_copy(s, ctx.truth_dir / s.name)  # so the IDM can be scored on it
            unl_segs.append(ctx.unlabelled_dir / s.name)
    write_segment_index(ctx.labelled_dir, lab_segs)
    write_segment_index(ctx.unlabelled_dir, unl_segs)
    lab_frames = sum(count_lines(s.with_suffix(".jsonl")) for s in lab_segs)
    unl_frames = sum(count_lines(ctx.truth_dir / (s.stem + ".jsonl")) for s in unl_segs)
    return {
        "labelled_episodes": labelled, "unlabelled_episodes": unlabelled,
        "labelled_segments": len(lab_segs), "unlabelled_segments": len(unl_segs),
        "labelled_frames": lab_frames, "unlabelled_frames": unl_frames,
    }
