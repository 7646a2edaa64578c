""""Web-like" MineLite footage: clean episodes mixed with unclean clips, and the ground truth in a sidecar.

The VPT paper filtered its web videos before labelling: a classifier removed footage that was not clean
survival-mode PC play. To train and measure such a filter on our own data, ``vpt-rl record --web-like RATE``
(:func:`vpt_rl.data.record.record_dataset` with ``unclean_rate=RATE``) records a mix: a ``RATE`` share of
the episodes carries one or more unclean spans (seconds long, at random times, each of a random kind), the
rest are clean. The choice is fixed by the episode's seed (:func:`plan_unclean_spans`), so a rerun records
the same footage.

The overlays are drawn on the frames as they are recorded, never on the observation the expert acts on:
the video shows them while the jsonl actions stay the expert's. The kinds (:data:`KINDS`):

* ``facecam``: a rectangle in a corner with a person-like blob (head and shoulders) that sways a little;
* ``logo``: a semi-transparent channel logo (a ring with a play triangle) blended into a corner;
* ``letterbox``: black bars top and bottom (or left and right), the game scaled into the rest;
* ``pause``: a pause menu held for the span: the game frozen on the span's first frame, dimmed, with a
  centred panel of buttons;
* ``creative``: a creative-mode inventory: the game dimmed behind a large panel with a row of tabs, a
  search bar and a grid of many item slots, unlike MineLite's survival GUI.

Ground truth sidecar (the only place it is kept; nothing in the video or the jsonl says it). For each
segment ``NAME.mp4`` of a web-like recording, ``NAME.clean.json`` (written atomically, clean segments
too)::

    {"version": 1, "n_frames": 120, "unclean_spans": [[30, 75, "pause"], [90, 110, "logo"]]}

``n_frames`` is the segment's jsonl line count (= its video frames); each span is ``[start, end, kind]``
in frame indices of that segment, ``end`` exclusive, sorted and not overlapping; a clean segment has
``"unclean_spans": []``. A frame is clean exactly when no span covers it (:func:`unclean_mask`). The
readers of the data (``find_segments``, ``SequenceDataset``, ``label``, ``vpt-rl view``) look only for
``.mp4`` / ``.jsonl`` files and ignore the sidecar.

Example::

    from vpt_rl.data.weblike import plan_unclean_spans, WebLikeFrames, read_sidecar, unclean_mask
    spans = plan_unclean_spans(600, rate=1.0, seed=3)     # [(start, end, kind), ...] over 600 ticks
    frames = WebLikeFrames(spans, seed=3)                 # frames(t, pov) -> the frame to record
    truth = read_sidecar("rec/minelite-expert-s0003-e0000-000.clean.json")
    mask = unclean_mask(truth)                            # (n_frames,) bool, True = unclean
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from vpt_rl.atomic import atomic_write_json
from vpt_rl.data.clean_spans import frame_scores
from vpt_rl.data.recorder import FPS

__all__ = ["KINDS", "SIDECAR_SUFFIX", "SIDECAR_VERSION", "Span", "plan_unclean_spans", "draw_face_cam",
           "draw_logo", "draw_letterbox", "draw_pause", "draw_creative", "face_cam_box", "logo_mask",
           "letterbox_size", "panel_box", "WebLikeFrames", "sidecar_path", "segment_spans", "write_sidecars",
           "read_sidecar", "unclean_mask", "frame_kinds", "removal_scores", "check_rate"]

KINDS = ("facecam", "logo", "letterbox", "pause", "creative")
"""the kinds of unclean footage, in the order the planner indexes them"""
SIDECAR_SUFFIX = ".clean.json"
"""``NAME.mp4`` -> ``NAME.clean.json``"""
SIDECAR_VERSION = 1
SPAN_SECONDS = (1.0, 5.0)
"""the length of an unclean span is drawn uniformly from this range (seconds of 20 ticks)"""
MAX_SPANS = 3
"""an unclean episode carries 1..MAX_SPANS spans"""
_PLAN_STREAM = 0x57EB  # mixed into the seed, so that the plan is independent of the world's random stream

Span = Tuple[int, int, str]
"""``(start, end, kind)``: frames ``start <= t < end`` carry ``kind``"""
PathLike = Union[str, Path]


def check_rate(rate: float) -> float:
    """``rate`` as a float in [0, 1], or a ValueError naming it."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"web-like rate must be a number in [0, 1], got {rate!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError(f"web-like rate must be a share of episodes in [0, 1], got {rate!r}")
    return value


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown kind of unclean footage {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


# ---------------------------------------------------------------------------------------------------
# Which episodes are unclean, and where


def plan_unclean_spans(n_ticks: int, rate: float, seed: int, *, kinds: Sequence[str] = KINDS,
                       span_seconds: Tuple[float, float] = SPAN_SECONDS, max_spans: int = MAX_SPANS) -> List[Span]:
    """The unclean spans of one episode of (at most) ``n_ticks`` ticks: ``[]`` for a clean episode.

    With probability ``rate`` the episode is unclean: it gets 1..``max_spans`` spans, each of a kind drawn
    from ``kinds`` and ``span_seconds`` long (cut to fit). The episode is split into as many equal slots as
    spans and each span lies at a random place in its own slot, so spans never overlap and clean footage
    stays around them (a span fills at most 3/4 of its slot). Deterministic per ``seed``.

    :raises ValueError: for ``rate`` outside [0, 1], an unknown kind, a non-positive ``n_ticks`` or
        ``max_spans``, or ``span_seconds`` that are not ``0 < low <= high``.
    """
    rate = check_rate(rate)
    kinds = [_check_kind(k) for k in kinds]
    if not kinds:
        raise ValueError("kinds must name at least one kind of unclean footage, got none")
    if not isinstance(n_ticks, (int, np.integer)) or n_ticks < 1:
        raise ValueError(f"n_ticks must be a positive int, got {n_ticks!r}")
    if not isinstance(max_spans, (int, np.integer)) or max_spans < 1:
        raise ValueError(f"max_spans must be a positive int, got {max_spans!r}")
    lo, hi = (float(s) for s in span_seconds)
    if not 0 < lo <= hi:
        raise ValueError(f"span_seconds must be (low, high) with 0 < low <= high, got {span_seconds!r}")
    rng = np.random.default_rng([int(seed), _PLAN_STREAM])
    # draw everything whether or not the episode is unclean: another rate changes which episodes are
    # unclean, never where the spans of an unclean one lie
    unclean = rng.random() < rate
    n = int(rng.integers(1, max_spans + 1))
    n = max(1, min(n, n_ticks // 4))  # a tiny episode gets one span
    slot = n_ticks // n
    spans = []
    for i in range(n):
        kind = kinds[int(rng.integers(len(kinds)))]
        length = int(round(rng.uniform(lo, hi) * FPS))
        length = max(1, min(length, (3 * slot) // 4))
        start = i * slot + int(rng.integers(0, slot - length + 1))
        spans.append((start, start + length, kind))
    return spans if unclean else []


# ---------------------------------------------------------------------------------------------------
# Drawing. Each function returns a new uint8 (H, W, 3) frame and leaves its input alone; the *_box/_mask
# helpers give the region a kind draws on, so that tests (and a curious user) can check the rest is clean.


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def _corner_box(shape: Tuple[int, ...], corner: str, h: int, w: int) -> Tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` of an ``h x w`` box in ``corner`` ('tl', 'tr', 'bl', 'br'), a small margin in."""
    if corner not in ("tl", "tr", "bl", "br"):
        raise ValueError(f"corner must be one of tl, tr, bl, br, got {corner!r}")
    H, W = shape[:2]
    margin = max(1, W // 32)
    y0 = margin if corner[0] == "t" else H - margin - h
    x0 = margin if corner[1] == "l" else W - margin - w
    return y0, y0 + h, x0, x0 + w


def _disc(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    """Bool (h, w) mask of an ellipse centred at (cy, cx) with radii (ry, rx)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy + 0.5 - cy) / ry) ** 2 + ((xx + 0.5 - cx) / rx) ** 2 <= 1.0


def face_cam_box(shape: Tuple[int, ...], corner: str = "br", scale: float = 0.3) -> Tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` of the face-cam rectangle: ``scale`` of the frame width, 4:3."""
    w = _even(shape[1] * scale)
    return _corner_box(shape, corner, _even(w * 0.75), w)


def draw_face_cam(frame: np.ndarray, t: int, *, corner: str = "br", scale: float = 0.3,
                  backdrop: Tuple[int, int, int] = (70, 78, 96), skin: Tuple[int, int, int] = (226, 176, 140),
                  shirt: Tuple[int, int, int] = (40, 96, 170)) -> np.ndarray:
    """A streamer's face-cam: an opaque rectangle (``backdrop``) in ``corner``, ``scale`` of the frame width,
    with head (``skin``) and shoulders (``shirt``) that sway sideways and bob with the tick ``t``."""
    out = np.array(frame, copy=True)
    y0, y1, x0, x1 = face_cam_box(frame.shape, corner, scale)
    h, w = y1 - y0, x1 - x0
    box = np.empty((h, w, 3), np.uint8)
    box[:] = backdrop
    sway, bob = 0.08 * w * math.sin(0.35 * t), 0.04 * h * math.sin(0.21 * t + 1.0)
    box[_disc(h, w, h * 1.05, w / 2 + sway * 0.5, h * 0.42, w * 0.38)] = shirt
    box[_disc(h, w, h * 0.42 + bob, w / 2 + sway, h * 0.24, w * 0.15)] = skin
    out[y0:y1, x0:x1] = box
    return out


def logo_mask(shape: Tuple[int, ...], corner: str = "tr", scale: float = 0.16) -> np.ndarray:
    """Bool (H, W) mask of the channel logo: a ring, ``scale`` of the frame width across, with a play
    triangle inside it, in ``corner``."""
    d = _even(shape[1] * scale)
    y0, y1, x0, x1 = _corner_box(shape, corner, d, d)
    r = d / 2.0
    ring = _disc(d, d, r, r, r, r) & ~_disc(d, d, r, r, r * 0.78, r * 0.78)
    yy, xx = np.mgrid[0:d, 0:d] + 0.5
    # a triangle pointing right: x from 0.38d to 0.72d, its height shrinking towards the tip
    tri = (xx >= 0.38 * d) & (xx <= 0.72 * d) & (np.abs(yy - r) <= (0.72 * d - xx) * 0.6)
    mask = np.zeros(shape[:2], bool)
    mask[y0:y1, x0:x1] = ring | tri
    return mask


def draw_logo(frame: np.ndarray, *, corner: str = "tr", scale: float = 0.16,
              colour: Tuple[int, int, int] = (255, 255, 255), alpha: float = 0.45) -> np.ndarray:
    """A semi-transparent watermark: inside :func:`logo_mask` each pixel becomes
    ``round((1 - alpha) * frame + alpha * colour)``; every other pixel is the frame's."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1) for a see-through logo, got {alpha!r}")
    out = np.array(frame, copy=True)
    mask = logo_mask(frame.shape, corner, scale)
    blend = (1.0 - alpha) * frame[mask].astype(np.float32) + alpha * np.asarray(colour, np.float32)
    out[mask] = np.rint(blend).astype(np.uint8)
    return out


def letterbox_size(shape: Tuple[int, ...], bars: float = 0.12) -> int:
    """Thickness in pixels of each bar: ``bars`` of the frame height (rows) or width (columns), at least 2."""
    return _even(shape[0] * bars)


def draw_letterbox(frame: np.ndarray, *, bars: float = 0.12, columns: bool = False) -> np.ndarray:
    """Black bars top and bottom (or left and right with ``columns``), each ``bars`` of that side, and the
    whole game frame scaled (nearest neighbour) into the rest, as a video re-encoded to another aspect."""
    if not 0.0 < bars < 0.5:
        raise ValueError(f"bars must be a share of the side in (0, 0.5), got {bars!r}")
    H, W = frame.shape[:2]
    b = letterbox_size((W, H) if columns else (H, W), bars)
    out = np.zeros_like(frame)
    if columns:
        cols = (np.arange(W - 2 * b) * W) // (W - 2 * b)
        out[:, b:W - b] = frame[:, cols]
    else:
        rows = (np.arange(H - 2 * b) * H) // (H - 2 * b)
        out[b:H - b] = frame[rows]
    return out


def panel_box(shape: Tuple[int, ...], width: float, height: float) -> Tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` of a centred panel ``width`` x ``height`` of the frame."""
    H, W = shape[:2]
    h, w = _even(H * height), _even(W * width)
    y0, x0 = (H - h) // 2, (W - w) // 2
    return y0, y0 + h, x0, x0 + w


def _dim(frame: np.ndarray, dim: float) -> np.ndarray:
    return np.rint(frame.astype(np.float32) * dim).astype(np.uint8)


def draw_pause(frozen: np.ndarray, *, dim: float = 0.45, buttons: int = 4,
               panel: Tuple[int, int, int] = (52, 52, 58), button: Tuple[int, int, int] = (128, 128, 134)) -> np.ndarray:
    """A pause menu: the ``frozen`` game frame dimmed (``dim`` times its values, rounded), with a centred
    panel (half the width, 60 % of the height) holding ``buttons`` stacked buttons with dark edges.
    Called with the same frame on every tick of a span, the footage holds still, as a paused game does."""
    out = _dim(frozen, dim)
    y0, y1, x0, x1 = panel_box(frozen.shape, 0.5, 0.6)
    out[y0:y1, x0:x1] = panel
    h, w = y1 - y0, x1 - x0
    pitch = h / (buttons + 1)
    for i in range(buttons):
        by0 = y0 + int(pitch * (i + 0.6))
        by1 = max(by0 + 2, y0 + int(pitch * (i + 1.3)))
        bx0, bx1 = x0 + w // 8, x1 - w // 8
        out[by0:by1, bx0:bx1] = (20, 20, 20)  # edge
        out[by0 + 1:by1 - 1, bx0 + 1:bx1 - 1] = button
    return out


def draw_creative(frame: np.ndarray, *, tab: int = 0, dim: float = 0.35, rows: int = 5, cols: int = 9,
                  tabs: int = 6, seed: int = 0) -> np.ndarray:
    """A creative-mode inventory: the game dimmed behind a panel (84 % x 84 % of the frame) with a row of
    ``tabs`` tabs (``tab`` selected, lighter), a white search bar, and a ``rows`` x ``cols`` grid of slots
    each holding an item colour (drawn from ``seed`` and the tab: every tab shows other items)."""
    out = _dim(frame, dim)
    y0, y1, x0, x1 = panel_box(frame.shape, 0.84, 0.84)
    h, w = y1 - y0, x1 - x0
    out[y0:y1, x0:x1] = (198, 198, 198)  # the light-grey panel of the creative screen
    tab_h = max(2, h // 8)
    tab_w = w // tabs
    for i in range(tabs):
        shade = (230, 230, 230) if i == tab % tabs else (150, 150, 150)
        out[y0:y0 + tab_h, x0 + i * tab_w + 1:x0 + (i + 1) * tab_w - 1] = shade
    bar_y = y0 + tab_h + 1
    out[bar_y:bar_y + max(2, h // 16), x0 + w // 2:x1 - 2] = (250, 250, 250)  # search bar
    grid_y0 = bar_y + max(2, h // 16) + 1
    cell_h, cell_w = max(2, (y1 - 2 - grid_y0) // rows), max(2, (w - 4) // (cols + 1))  # +1: the scroll bar
    colours = np.random.default_rng([int(seed), int(tab)]).integers(30, 240, size=(rows, cols, 3))
    for r in range(rows):
        for c in range(cols):
            sy, sx = grid_y0 + r * cell_h, x0 + 2 + c * cell_w
            out[sy:sy + cell_h, sx:sx + cell_w] = (139, 139, 139)  # the slot's sunken border
            out[sy + 1:sy + cell_h - 1, sx + 1:sx + cell_w - 1] = colours[r, c]
    sx = x0 + 2 + cols * cell_w + 1
    out[grid_y0:grid_y0 + rows * cell_h, sx:min(x1 - 1, sx + cell_w // 2)] = (100, 100, 100)  # scroll bar
    return out


class WebLikeFrames:
    """``frames(t, pov) -> frame to record``: the overlays of ``spans`` drawn on the ticks they cover.

    How each span looks (corner, colours, letterbox or pillarbox, creative tab) is drawn from ``seed`` and
    the span's index, so a rerun draws the same footage. Ticks must come in order (a pause span keeps the
    frame of its first tick); ticks outside every span return ``pov`` itself.
    """

    def __init__(self, spans: Sequence[Span], seed: int = 0):
        self.spans = [(int(s), int(e), _check_kind(k)) for s, e, k in spans]
        self.styles = [self._style(k, np.random.default_rng([int(seed), _PLAN_STREAM, i]))
                       for i, (_s, _e, k) in enumerate(self.spans)]
        self._frozen: Dict[int, np.ndarray] = {}

    @staticmethod
    def _style(kind: str, rng: np.random.Generator) -> dict:
        corner = ("tl", "tr", "bl", "br")[int(rng.integers(4))]
        if kind == "facecam":
            return {"corner": corner, "scale": float(rng.uniform(0.25, 0.35)),
                    "backdrop": tuple(int(v) for v in rng.integers(40, 120, 3)),
                    "shirt": tuple(int(v) for v in rng.integers(20, 200, 3))}
        if kind == "logo":
            return {"corner": corner, "scale": float(rng.uniform(0.12, 0.2)), "alpha": float(rng.uniform(0.3, 0.6))}
        if kind == "letterbox":
            return {"bars": float(rng.uniform(0.08, 0.18)), "columns": bool(rng.random() < 0.5)}
        if kind == "pause":
            return {"dim": float(rng.uniform(0.35, 0.55))}
        return {"tab": int(rng.integers(6)), "seed": int(rng.integers(1 << 30))}  # creative

    def __call__(self, t: int, pov: np.ndarray) -> np.ndarray:
        for i, (start, end, kind) in enumerate(self.spans):
            if start <= t < end:
                style = self.styles[i]
                if kind == "facecam":
                    return draw_face_cam(pov, t - start, **style)
                if kind == "logo":
                    return draw_logo(pov, **style)
                if kind == "letterbox":
                    return draw_letterbox(pov, **style)
                if kind == "pause":
                    return draw_pause(self._frozen.setdefault(i, np.array(pov, copy=True)), **style)
                return draw_creative(pov, **style)
        return pov


# ---------------------------------------------------------------------------------------------------
# The sidecar


def sidecar_path(segment: PathLike) -> Path:
    """``DIR/NAME.mp4`` (or ``.jsonl``, or ``DIR/NAME``) -> ``DIR/NAME.clean.json``."""
    p = Path(segment)
    if p.suffix in (".mp4", ".jsonl"):
        p = p.with_suffix("")
    return p.with_name(p.name + SIDECAR_SUFFIX)


def segment_spans(spans: Sequence[Span], first_tick: int, n_frames: int) -> List[List]:
    """The episode ``spans`` that fall in the segment of ticks ``first_tick .. first_tick + n_frames``, cut
    to it and shifted to its frame indices, as ``[start, end, kind]`` lists."""
    out = []
    for s, e, kind in spans:
        s, e = max(s - first_tick, 0), min(e - first_tick, n_frames)
        if s < e:
            out.append([int(s), int(e), kind])
    return out


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def write_sidecars(out_dir: PathLike, relpaths: Sequence[str], spans: Sequence[Span], segment_ticks: int,
                   only_missing: bool = False) -> List[Path]:
    """Write ``NAME.clean.json`` for each segment ``relpaths[k]`` of one episode (segment ``k`` starts at
    tick ``k * segment_ticks``), with ``n_frames`` counted from its jsonl. ``only_missing`` keeps those
    already written (a resumed recording completes what a killed one left)."""
    written = []
    for k, name in enumerate(relpaths):
        path = sidecar_path(Path(out_dir) / name)
        if only_missing and path.is_file():
            continue
        n = _count_lines(Path(out_dir) / f"{name}.jsonl")
        atomic_write_json(path, {"version": SIDECAR_VERSION, "n_frames": n,
                                 "unclean_spans": segment_spans(spans, k * segment_ticks, n)})
        written.append(path)
    return written


def read_sidecar(path: PathLike) -> dict:
    """The sidecar at ``path`` (or beside the segment ``path`` names), checked: ``{"version", "n_frames",
    "unclean_spans": [[start, end, kind], ...]}``.

    :raises ValueError: naming the file and what is wrong (unreadable JSON, another version, a span out of
        range, overlapping or of an unknown kind).
    """
    path = Path(path)
    if not path.name.endswith(SIDECAR_SUFFIX):
        path = sidecar_path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable clean/unclean sidecar ({e})") from None
    if not isinstance(data, dict) or data.get("version") != SIDECAR_VERSION:
        raise ValueError(f"{path}: expected a sidecar object with version {SIDECAR_VERSION}, got "
                         f"{data.get('version') if isinstance(data, dict) else type(data).__name__!r}")
    n, spans = data.get("n_frames"), data.get("unclean_spans")
    if not isinstance(n, int) or n < 0 or not isinstance(spans, list):
        raise ValueError(f"{path}: expected n_frames >= 0 and a list unclean_spans, got {n!r} and {spans!r}")
    prev_end = 0
    for span in spans:
        ok = isinstance(span, list) and len(span) == 3 and all(isinstance(v, int) for v in span[:2])
        if not ok or not prev_end <= span[0] < span[1] <= n or span[2] not in KINDS:
            raise ValueError(f"{path}: bad span {span!r}; expected [start, end, kind] sorted, not overlapping, "
                             f"within 0..{n} and kind one of {', '.join(KINDS)}")
        prev_end = span[1]
    return data


def unclean_mask(sidecar: dict, n_frames: Optional[int] = None) -> np.ndarray:
    """Bool ``(n_frames,)``: True where a span of the (read) ``sidecar`` marks the frame unclean."""
    n = sidecar["n_frames"] if n_frames is None else n_frames
    mask = np.zeros(n, bool)
    for s, e, _kind in sidecar["unclean_spans"]:
        mask[s:e] = True
    return mask


def frame_kinds(sidecar: dict, n_frames: Optional[int] = None) -> np.ndarray:
    """Object ``(n_frames,)``: each frame's kind of footage under the (read) ``sidecar``, ``"clean"`` outside
    every span."""
    n = sidecar["n_frames"] if n_frames is None else n_frames
    kinds = np.full(n, "clean", object)
    for s, e, kind in sidecar["unclean_spans"]:
        kinds[s:e] = kind
    return kinds


def removal_scores(kept: np.ndarray, kinds: np.ndarray) -> dict:
    """How a filter's ``kept`` frames (bool) compare with the ground truth ``kinds`` (:func:`frame_kinds`):
    :func:`~vpt_rl.data.clean_spans.frame_scores` of the clean class, plus ``removed_by_kind``, the share of the
    frames of each kind present that the filter removed (``"clean"`` first, then :data:`KINDS`)."""
    kept, kinds = np.asarray(kept, bool), np.asarray(kinds, object)
    out = frame_scores(kept, kinds == "clean")
    out["removed_by_kind"] = {k: float((~kept[kinds == k]).mean()) for k in ("clean", *KINDS) if (kinds == k).any()}
    return out
