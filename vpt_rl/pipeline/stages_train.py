"""The model stages: ``idm`` (train the IDM), ``label`` (pseudo-label the videos), ``bc`` (clone the
foundation model) and ``finetune`` (optional early-game BC of it)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict

import numpy as np

from vpt_rl.actions import BUTTONS_ALL, discretize_camera
from vpt_rl.data.clean_spans import read_spans, spans_mask
from vpt_rl.data.contractor import load_actions
from vpt_rl.pipeline.files import PipelineError, check_files, list_segments, prepare_dir
from vpt_rl.train import bc as bc_train
from vpt_rl.train import idm as idm_train
from vpt_rl.train import label as label_mod

if TYPE_CHECKING:  # annotations only: the engine imports this module
    from vpt_rl.pipeline.engine import StageContext


def stage_idm(ctx: StageContext) -> Dict[str, Any]:
    """Train the IDM on ``data/labelled`` into ``idm/idm.model`` + ``idm/idm.weights``; its held-out
    metrics are measured on (a capped number of frames of) the unlabelled videos' true actions."""
    cfg = ctx.cfg
    model_path, weights_path = ctx.idm_paths
    prepare_dir(model_path.parent, ctx.stage_config("idm"), ctx.force)
    args = idm_train.Args(
        data=[str(ctx.labelled_dir)], val_data=[str(ctx.truth_dir)], preset=cfg.idm_preset,
        seq_len=cfg.idm_seq_len or None, total_steps=cfg.idm_steps, batch_size=cfg.idm_batch, lr=cfg.idm_lr,
        eval_every=0, eval_max_frames=4000,
        save_every=max(50, cfg.idm_steps // 4), seed=ctx.seed, device=ctx.device, out_dir=str(model_path.parent),
        name="idm")
    idm_train.train_idm(args)
    check_files(model_path, weights_path)
    out: Dict[str, Any] = {"model": str(model_path), "weights": str(weights_path)}
    metrics = model_path.parent / "metrics.json"
    if metrics.is_file():
        out["heldout_metrics"] = json.loads(metrics.read_text()).get("final")
    return out


def stage_label(ctx: StageContext) -> Dict[str, Any]:
    """Label every unlabelled video with the IDM (jsonl next to each mp4) and score the labels against
    the held-out true actions."""
    model_path, weights_path = ctx.idm_paths
    written = label_mod.label_videos([str(ctx.unlabelled_dir)], str(model_path), str(weights_path),
                                     timesteps=ctx.cfg.idm_seq_len or None, camera="mean",
                                     batch_size=ctx.cfg.label_batch, device=ctx.device, overwrite=ctx.force)
    vids = list_segments(ctx.unlabelled_dir, need_jsonl=False)
    missing = [v.name for v in vids if not v.with_suffix(".jsonl").is_file()]
    if missing:
        raise PipelineError(f"label: no pseudo-label jsonl for {missing}")
    return {"videos": len(vids), "written": len(written), "accuracy": label_accuracy(ctx.unlabelled_dir, ctx.truth_dir)}


def label_accuracy(pseudo_dir: os.PathLike, truth_dir: os.PathLike) -> Dict[str, Any]:
    """Score pseudo-label jsonl files against the true ones of the same name, line by line, both read with
    the official contractor rules (:func:`vpt_rl.data.contractor.load_actions`), with the IDM's own
    metrics (:func:`vpt_rl.train.idm.idm_metrics`: ``keypress_accuracy`` = all 20 buttons right,
    ``button_accuracy`` = mean per-button accuracy, ``camera_r2`` against the truth clipped to +-10 deg); frames
    outside the clean spans of a filtered video (``NAME.spans.json``) were not labelled and are not scored."""
    pseudo_dir, truth_dir = Path(pseudo_dir), Path(truth_dir)
    btn_p, btn_t, cam_p, cam_t = [], [], [], []
    n_files = 0
    for tj in sorted(truth_dir.glob("*.jsonl")):
        pj = pseudo_dir / tj.name
        if not pj.is_file():
            continue
        truth, pseudo = load_actions(tj), load_actions(pj)
        n = min(len(truth), len(pseudo))
        inside = spans_mask(read_spans(pj.with_suffix(".mp4")), n)  # frames the filter removed have no label
        if n == 0 or not inside.any():
            continue
        n_files += 1
        for (ta, _), (pa, _), ok in zip(truth[:n], pseudo[:n], inside):
            if not ok:
                continue
            btn_t.append([int(np.asarray(ta.get(b, 0)).item()) for b in BUTTONS_ALL])
            btn_p.append([int(np.asarray(pa.get(b, 0)).item()) for b in BUTTONS_ALL])
            cam_t.append(np.asarray(ta["camera"], dtype=np.float64).reshape(2))
            cam_p.append(np.asarray(pa["camera"], dtype=np.float64).reshape(2))
    if not btn_t:
        return {"files": 0, "n_frames": 0}
    cam_p = np.clip(np.array(cam_p), -10.0, 10.0)
    # the labels' own values (posterior means or bin centres) score as camera_r2_*_mean; their bins as camera_r2_*
    m = idm_train.idm_metrics(np.array(btn_p), np.array(btn_t), discretize_camera(cam_p), np.array(cam_t),
                              pred_deg_mean=cam_p)
    m.pop("button_accuracy_per_key", None)
    return {"files": n_files, **{k: (None if isinstance(v, float) and v != v else v) for k, v in m.items()}}


def stage_bc(ctx: StageContext) -> Dict[str, Any]:
    """Behavioural cloning of the foundation model (random init, ``cfg.policy_preset``) on the
    pseudo-labelled videos (or, with ``bc_labels="true"``, on the same videos' recorded actions in
    ``data/heldout_truth``), into ``foundation/foundation.model`` + ``.weights``."""
    cfg = ctx.cfg
    model_path, weights_path = ctx.foundation_paths
    prepare_dir(model_path.parent, ctx.stage_config("bc"), ctx.force)
    data_dir = ctx.truth_dir if cfg.bc_labels == "true" else ctx.unlabelled_dir
    args = bc_train.Args(
        data=[str(data_dir)], preset=cfg.policy_preset, seq_len=cfg.bc_seq_len, batch_size=cfg.bc_batch,
        total_steps=cfg.bc_steps, lr=cfg.bc_lr, save_every=max(50, cfg.bc_steps // 4), seed=ctx.seed,
        min_label_confidence=cfg.bc_min_confidence, device=ctx.device, out_dir=str(model_path.parent),
        name="foundation")
    bc_train.train_bc(args)
    check_files(model_path, weights_path)
    out: Dict[str, Any] = {"model": str(model_path), "weights": str(weights_path), "labels": cfg.bc_labels,
                           "data": str(data_dir)}
    metrics = model_path.parent / "metrics.json"
    if metrics.is_file():
        hist = json.loads(metrics.read_text())
        last = hist.get("history", [])[-1:] if isinstance(hist, dict) else []
        if last:
            out["final_train"] = last[0]
    return out


def stage_finetune(ctx: StageContext) -> Dict[str, Any]:
    """Optional (``ft_steps > 0``): BC fine-tuning of the foundation model on a targeted set, the early game
    (first ``ft_frames`` frames) of the same labelled videos, as the paper's foundation -> early-game BC ->
    RL; into ``finetuned/finetuned.model`` + ``.weights``, which foundation+RL then starts from. With
    ``ft_steps == 0`` nothing is trained and RL starts from the foundation model."""
    cfg = ctx.cfg
    model_path, weights_path = ctx.finetuned_paths
    prepare_dir(model_path.parent, ctx.stage_config("finetune"), ctx.force)
    if cfg.ft_steps <= 0:
        return {"skipped": True, "reason": "ft_steps = 0"}
    if cfg.ft_frames < 1:
        raise PipelineError(f"ft_frames must be >= 1 frame of early game, got {cfg.ft_frames}")
    fmodel, fweights = ctx.foundation_paths
    check_files(fmodel, fweights)
    data_dir = ctx.truth_dir if cfg.bc_labels == "true" else ctx.unlabelled_dir
    args = bc_train.Args(
        data=[str(data_dir)], init_model=str(fmodel), init_weights=str(fweights), seq_len=cfg.bc_seq_len,
        batch_size=cfg.bc_batch, total_steps=cfg.ft_steps, lr=cfg.ft_lr, warmup_steps=min(50, cfg.ft_steps // 10),
        max_segment_frames=cfg.ft_frames, save_every=max(50, cfg.ft_steps // 4), seed=ctx.seed + 1,
        min_label_confidence=cfg.bc_min_confidence, device=ctx.device, out_dir=str(model_path.parent),
        name="finetuned")
    bc_train.train_bc(args)
    check_files(model_path, weights_path)
    return {"model": str(model_path), "weights": str(weights_path), "init": str(fmodel), "data": str(data_dir),
            "frames_per_episode": cfg.ft_frames, "steps": cfg.ft_steps}
