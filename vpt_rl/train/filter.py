"""Cut videos into clean spans with a trained frame filter (``vpt-rl filter``), before labelling.

Run::

    vpt-rl filter data/unlabelled --filter runs/filter/filter.pt
    vpt-rl filter videos/ --filter runs/filter/filter.pt --threshold 0.6 --window 15

Every frame of every video is scored (``--batch-size`` frames per forward pass): P(unclean) from
:class:`~vpt_rl.train.filter_model.FrameFilter`. The scores are smoothed over ``--window`` frames, frames at or
above ``--threshold`` are unclean, each unclean run grows by ``--margin`` frames, and clean runs shorter than
``--min-span`` frames are dropped (:func:`vpt_rl.data.clean_spans.scores_to_spans`). The clean spans go to
``NAME.spans.json`` beside each video (atomically), with the filter and the settings that made them; ``vpt-rl
label``, ``train-idm``, ``train-bc`` and the datasets then use only frames inside them
(:mod:`vpt_rl.data.clean_spans`). It ends with the share of frames kept.

Resuming: a video whose spans file was written by the same filter checkpoint with the same settings is skipped,
so an interrupted run continues where it stopped (``--overwrite`` scores everything again). A video with no
decodable frame is refused with a :class:`~vpt_rl.data.contractor.DataWarning` naming it, and the others are
filtered; a spans file that cannot be read is scored again, with a warning.
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

from tqdm import tqdm

from vpt_rl.atomic import remove_stale_temporaries
from vpt_rl.data.clean_spans import SPANS_VERSION, read_spans, scores_to_spans, spans_path, write_spans
from vpt_rl.data.contractor import DataWarning, find_segments
from vpt_rl.data.video import read_video_frames
from vpt_rl.interrupt import Interrupted, run_main, stop_requested
from vpt_rl.train.args import check_ranges, parse_args
from vpt_rl.train.filter_model import filter_stamp, load_filter, score_frames
from vpt_rl.train.runtime import resolve_device

PathLike = Union[str, Path]


@dataclass
class Args:
    """Score every frame with a frame filter and write each video's clean spans (NAME.spans.json)."""

    videos: list[str] = field(default_factory=list, metadata={"positional": True})
    """mp4 files or folders (searched recursively) to filter"""
    filter: str = ""
    """the filter checkpoint written by vpt-rl train-filter (OUT/filter.pt)"""
    batch_size: int = 256
    """frames per forward pass"""
    threshold: float = 0.5
    """a frame is unclean when its smoothed P(unclean) is at least this"""
    window: int = 9
    """frames of the centred moving average over P(unclean)"""
    margin: int = 2
    """frames added on each side of every unclean run"""
    min_span: int = 20
    """clean runs shorter than this many frames are dropped (20 frames = 1 s)"""
    device: str = "auto"
    """torch device: auto, cpu, cuda, cuda:1, ..."""
    overwrite: bool = False
    """score videos again even when their spans file is from this filter and these settings"""
    progress: bool = True
    """show tqdm progress bars"""

    def __post_init__(self):
        """Refuse values out of range, naming the field (``ValueError``)."""
        check_ranges(self, count=("batch_size", "window", "min_span"), non_negative=("margin",))
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold!r}")


class FilterSummary:
    """What :func:`filter_videos` did: videos scored, skipped (already scored) and refused, and the frames kept.

    :ivar spans: ``{video: spans file}`` of every video that has clean spans now.
    """

    def __init__(self):
        self.scored = 0
        self.skipped = 0
        self.refused: list[tuple[Path, str]] = []
        self.frames = 0
        self.kept_frames = 0
        self.spans: dict[Path, Path] = {}
        self.frames_per_s: Optional[float] = None

    @property
    def kept_share(self) -> float:
        """Share of the frames of the filtered videos inside clean spans (NaN without frames)."""
        return self.kept_frames / self.frames if self.frames else float("nan")

    def summary(self) -> str:
        """One line for the user."""
        text = (f"filtered {self.scored} video(s), skipped {self.skipped} already filtered; kept "
                f"{self.kept_frames:,} of {self.frames:,} frames ({100 * self.kept_share:.1f}%)")
        if self.frames_per_s:
            text += f"; scored {self.frames_per_s:,.0f} frames/s"
        if self.refused:
            text += f"; refused {len(self.refused)}: " + "; ".join(f"{p.name} ({why})" for p, why in self.refused)
        return text

    def as_dict(self) -> dict:
        return {"scored": self.scored, "skipped": self.skipped, "refused": [[str(p), w] for p, w in self.refused],
                "frames": self.frames, "kept_frames": self.kept_frames, "kept_share": self.kept_share,
                "frames_per_s": self.frames_per_s}


def _done_already(mp4: Path, settings: dict) -> Optional[dict]:
    """The spans file of ``mp4`` when it was written with ``settings`` (and is readable), else None."""
    path = spans_path(mp4)
    if not path.is_file():
        return None
    try:
        read_spans(mp4)
        data = json.loads(path.read_text())
    except ValueError as e:
        warnings.warn(f"{e}; {mp4.name} is scored again", DataWarning, stacklevel=3)
        return None
    info = data.get("filter") or {}
    return data if {k: info.get(k) for k in settings} == settings else None


def filter_videos(videos: Sequence[PathLike], filter_path: PathLike, *, batch_size: int = 256,
                  threshold: float = 0.5, window: int = 9, margin: int = 2, min_span: int = 20,
                  device: str = "auto", overwrite: bool = False, progress: bool = True) -> FilterSummary:
    """Write ``NAME.spans.json`` beside every video in ``videos`` (mp4 paths or folders); see the module doc.

    :raises FileNotFoundError / ValueError: for a missing or unreadable filter checkpoint (before any video).
    """
    Args(batch_size=batch_size, threshold=threshold, window=window, margin=margin, min_span=min_span)  # checks
    dev = resolve_device(device)
    filt = load_filter(filter_path, device=dev)
    settings = {"checkpoint": filter_stamp(filter_path), "threshold": float(threshold), "window": int(window),
                "margin": int(margin), "min_span": int(min_span), "version": SPANS_VERSION}
    mp4s = find_segments(videos, require_jsonl=False)
    for folder in sorted({m.parent for m in mp4s}):
        remove_stale_temporaries(folder)  # half-written spans files of a run that was killed
    done = FilterSummary()
    scored_frames, scoring_s = 0, 0.0
    with stop_requested("stopping after this video") as stop:
        bar = tqdm(mp4s, desc="filter", unit="video", disable=not progress)
        for mp4 in bar:
            if stop:  # every finished video has its spans file: a rerun skips them
                raise Interrupted(stop.signum, f"stopped after {done.scored} video(s); rerun the same command to "
                                               "continue")
            old = None if overwrite else _done_already(mp4, settings)
            if old is not None:
                done.skipped += 1
                done.frames += int(old["n_frames"])
                done.kept_frames += int(old["kept_frames"])
                done.spans[mp4] = spans_path(mp4)
                continue
            t0 = time.perf_counter()
            frames = read_video_frames(mp4)
            if len(frames) == 0:
                warnings.warn(f"{mp4}: no frames could be decoded; not filtered (and left without clean spans)",
                              DataWarning, stacklevel=2)
                done.refused.append((mp4, "no frame decoded"))
                continue
            p = score_frames(filt, frames, batch_size, dev)
            spans = scores_to_spans(p, threshold=threshold, window=window, margin=margin, min_span=min_span)
            scoring_s += time.perf_counter() - t0
            scored_frames += len(frames)
            done.spans[mp4] = write_spans(mp4, spans, len(frames), **settings)
            done.scored += 1
            done.frames += len(frames)
            done.kept_frames += sum(e - s for s, e in spans)
            bar.set_postfix(kept=f"{100 * done.kept_share:.1f}%", fps=f"{scored_frames / max(scoring_s, 1e-9):.0f}")
    if scored_frames:
        done.frames_per_s = scored_frames / max(scoring_s, 1e-9)
    return done


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(Args, argv, prog="vpt-rl filter", paths=("videos", "filter"))
    if not args.videos:
        print("vpt-rl filter: give at least one video or folder", file=sys.stderr)
        return 2
    if not args.filter:
        print("vpt-rl filter: --filter is required (the filter.pt written by vpt-rl train-filter)", file=sys.stderr)
        return 2
    out = filter_videos(args.videos, args.filter, batch_size=args.batch_size, threshold=args.threshold,
                        window=args.window, margin=args.margin, min_span=args.min_span, device=args.device,
                        overwrite=args.overwrite, progress=args.progress)
    print(out.summary())
    return 1 if out.refused else 0


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:], "vpt-rl filter"))
