"""Clean spans: the frames of a video that a frame filter kept, in ``NAME.spans.json`` beside ``NAME.mp4``.

The VPT paper removed footage that was not clean survival-mode play before labelling it. ``vpt-rl filter``
(:mod:`vpt_rl.train.filter`) scores every frame of a video with a frame classifier, smooths the scores over
time and cuts the video into clean spans (:func:`scores_to_spans`), written here (:func:`write_spans`)::

    {"version": 1, "n_frames": 1500, "clean_spans": [[0, 412], [530, 1500]], "kept_frames": 1382,
     "filter": {...the filter checkpoint and settings...}}

``[start, end)`` frame indices, sorted and not overlapping. Everything that trains or labels honours the file:
:func:`vpt_rl.data.contractor.iter_segment` yields only frames inside a clean span (so the batches of
``train-idm`` and ``train-bc`` never hold the others; their label priors and the IDM's motion cache read the
spans too) and ``vpt-rl label`` runs the IDM on each clean span on its own and writes a null line (``"filtered": true``) for every other frame, which
keeps the jsonl aligned with the video. A video without a spans file is used whole. A spans file that
cannot be read gives a :class:`~vpt_rl.data.contractor.DataWarning` naming it, and its video is left out
(which frames are clean is unknown); the other videos are used.

Example::

    from vpt_rl.data.clean_spans import scores_to_spans, write_spans, read_spans
    spans = scores_to_spans(p_unclean)            # per-frame P(unclean) -> [(start, end), ...]
    write_spans("videos/a.mp4", spans, n_frames=len(p_unclean))
    read_spans("videos/a.mp4")                     # [(start, end), ...], or None without a file
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from vpt_rl.atomic import atomic_write_json

__all__ = ["SPANS_SUFFIX", "SPANS_VERSION", "SpansError", "spans_path", "read_spans",
           "write_spans", "spans_mask", "span_index", "smooth_scores", "scores_to_spans", "spans_from_mask",
           "frame_scores"]

SPANS_SUFFIX = ".spans.json"
"""``NAME.mp4`` -> ``NAME.spans.json``"""
SPANS_VERSION = 1

Span = Tuple[int, int]
PathLike = Union[str, Path]


class SpansError(ValueError):
    """A spans file that cannot be used (unreadable JSON, another version, spans out of order or range)."""


def spans_path(video: PathLike) -> Path:
    """``DIR/NAME.mp4`` (or ``.jsonl``, ``.spans.json``, or ``DIR/NAME``) -> ``DIR/NAME.spans.json``."""
    p = Path(video)
    if p.name.endswith(SPANS_SUFFIX):
        return p
    if p.suffix in (".mp4", ".jsonl"):
        p = p.with_suffix("")
    return p.with_name(p.name + SPANS_SUFFIX)


def _check_spans(spans: Any, n_frames: Optional[int], where: str) -> List[Span]:
    if not isinstance(spans, (list, tuple)):
        raise SpansError(f"{where}: expected a list of [start, end] clean spans, got {type(spans).__name__}")
    out: List[Span] = []
    prev_end = 0
    for span in spans:
        ok = (isinstance(span, (list, tuple)) and len(span) == 2
              and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in span))
        if not ok or not prev_end <= span[0] < span[1] or (n_frames is not None and span[1] > n_frames):
            limit = f" within 0..{n_frames}" if n_frames is not None else ""
            raise SpansError(f"{where}: bad clean span {span!r}; expected [start, end] with start < end, sorted, "
                             f"not overlapping{limit}")
        out.append((int(span[0]), int(span[1])))
        prev_end = int(span[1])
    return out


def read_spans(video: PathLike) -> Optional[List[Span]]:
    """The clean spans of ``video`` from its spans file, or ``None`` when it has none (use it whole).

    :raises SpansError: naming the file and the fault when the file exists but cannot be used.
    """
    path = spans_path(video)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SpansError(f"{path}: unreadable spans file ({e})") from None
    if not isinstance(data, dict) or data.get("version") != SPANS_VERSION:
        got = data.get("version") if isinstance(data, dict) else type(data).__name__
        raise SpansError(f"{path}: expected a spans object with version {SPANS_VERSION}, got {got!r}")
    n = data.get("n_frames")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise SpansError(f"{path}: expected n_frames, an integer >= 0, got {n!r}")
    return _check_spans(data.get("clean_spans"), n, str(path))


def write_spans(video: PathLike, spans: Sequence[Span], n_frames: int, **info: Any) -> Path:
    """Write ``NAME.spans.json`` beside ``video`` atomically; ``info`` (the filter's checkpoint and settings,
    JSON-able) is stored under ``"filter"``. Returns the path."""
    checked = _check_spans([list(s) for s in spans], int(n_frames), str(spans_path(video)))
    kept = sum(e - s for s, e in checked)
    payload = {"version": SPANS_VERSION, "n_frames": int(n_frames), "clean_spans": [list(s) for s in checked],
               "kept_frames": kept}
    if info:
        payload["filter"] = info
    path = spans_path(video)
    atomic_write_json(path, payload, indent=1)
    return path


def spans_mask(spans: Optional[Sequence[Span]], n_frames: int) -> np.ndarray:
    """Bool ``(n_frames,)``: True on frames inside a clean span (all True when ``spans`` is ``None``)."""
    if spans is None:
        return np.ones(n_frames, bool)
    mask = np.zeros(n_frames, bool)
    for s, e in spans:
        mask[s:e] = True
    return mask


def span_index(spans: Optional[Sequence[Span]], n_frames: int) -> np.ndarray:
    """Int ``(n_frames,)``: the index of the clean span holding each frame, -1 outside every span (all 0 when
    ``spans`` is ``None``: one span, the whole video)."""
    if spans is None:
        return np.zeros(n_frames, np.int64)
    out = np.full(n_frames, -1, np.int64)
    for k, (s, e) in enumerate(spans):
        out[s:min(e, n_frames)] = k
    return out


def smooth_scores(scores: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of per-frame scores over ``window`` frames (odd; 1 = unchanged); the edges
    average over the frames that exist."""
    scores = np.asarray(scores, np.float64)
    if window < 1:
        raise ValueError(f"smoothing window must be >= 1 frame, got {window!r}")
    if window == 1 or len(scores) == 0:
        return scores.copy()
    half = window // 2
    csum = np.concatenate([[0.0], np.cumsum(scores)])
    idx = np.arange(len(scores))
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, len(scores))
    return (csum[hi] - csum[lo]) / (hi - lo)


def spans_from_mask(clean: np.ndarray, min_span: int = 1) -> List[Span]:
    """The runs of True in ``clean`` as ``[(start, end), ...]``, leaving out runs shorter than ``min_span``."""
    clean = np.asarray(clean, bool)
    padded = np.concatenate([[False], clean, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2]) if e - s >= min_span]


def scores_to_spans(p_unclean: np.ndarray, *, threshold: float = 0.5, window: int = 9, margin: int = 2,
                    min_span: int = 20) -> List[Span]:
    """Per-frame P(unclean) -> clean spans.

    The scores are smoothed over ``window`` frames (:func:`smooth_scores`); a frame is unclean when its
    smoothed score is at least ``threshold``; every unclean run grows by ``margin`` frames on each side (the
    frames where an overlay fades in are the filter's hardest); clean runs shorter than ``min_span`` frames
    are dropped too (too short to label or learn from: 20 frames is one second).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    if margin < 0 or min_span < 1:
        raise ValueError(f"margin must be >= 0 and min_span >= 1, got {margin!r} and {min_span!r}")
    unclean = smooth_scores(p_unclean, window) >= threshold
    if margin and unclean.any():
        grown = unclean.copy()
        for shift in range(1, margin + 1):
            grown[shift:] |= unclean[:-shift]
            grown[:-shift] |= unclean[shift:]
        unclean = grown
    return spans_from_mask(~unclean, min_span)


def frame_scores(kept: np.ndarray, truth_clean: np.ndarray) -> dict:
    """Frame-level quality of a filter: ``kept`` (True = the filter kept the frame as clean) against
    ``truth_clean``. Precision and recall are given for both classes: of the clean class (``precision``: the
    kept frames that are clean; ``recall``: the clean frames kept) and of the unclean class (the frames removed
    that are unclean; the unclean frames removed). A ratio over no frames is ``None``."""
    kept, truth = np.asarray(kept, bool), np.asarray(truth_clean, bool)
    if kept.shape != truth.shape:
        raise ValueError(f"kept {kept.shape} and truth {truth.shape} must have the same shape")
    tp, fp = int((kept & truth).sum()), int((kept & ~truth).sum())
    fn, tn = int((~kept & truth).sum()), int((~kept & ~truth).sum())

    def ratio(a: int, b: int) -> Optional[float]:
        return a / b if b else None  # no frame of that kind: undefined (None keeps the JSON standard)

    return {"frames": int(kept.size), "clean_frames": tp + fn, "unclean_frames": fp + tn, "kept": tp + fp,
            "precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn),
            "unclean_precision": ratio(tn, tn + fn), "unclean_recall": ratio(tn, tn + fp),
            "accuracy": ratio(tp + tn, kept.size)}
