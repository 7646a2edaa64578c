"""Contractor-format segments (``NAME.mp4`` + ``NAME.jsonl``) read with the official conversion rules.

The rules are those of openai/Video-Pre-Training's ``data_loader.py``, with one
deliberate fix: the camera is kept as float degrees (``[dy, dx] * 0.15``) instead of being truncated to
integers (official issue #54).

Per line (:func:`json_action_to_env_action`): keyboard keys and mouse buttons map to MineRL buttons,
mouse motion to the camera, and a line with no mapped key, no motion and no button is a *null* action.
Per segment, in frame order (:func:`load_actions`): the stuck-attack fix (an attack held from the first
tick is ignored until it is pressed anew), then the conversion, then the hotbar-change rule (a change of
the ``hotbar`` field presses ``hotbar.N``; applied after the null check, so a hotbar-only change stays
null). While a GUI is open the mouse cursor is drawn on the frame (:func:`draw_cursor`), and frames are
resized to 128x128 with cv2 INTER_LINEAR as the agent does.

Bad data never crashes a long run and is never silent; each case below gives a :class:`DataWarning` naming
the file and the 1-based line (or the video) and what is wrong, and is read as documented here
(:func:`sanitize_line`):

* a line that is not a JSON object: a null (skipped) step;
* ``mouse`` or ``keyboard`` missing or not an object, ``keyboard.keys`` / ``mouse.buttons`` null or not a
  list: that field reads as empty (no keys, no motion, no buttons); the rest of the line is kept, so the
  presses it does record are not lost;
* key names that are not strings, buttons that are not ints: those entries are ignored;
* ``mouse.dx`` / ``mouse.dy`` not a number, NaN or infinite: that axis reads as 0 (no camera motion);
* an implausible turn, more than :data:`MAX_CAMERA_DEGREES_PER_LINE` (180 degrees, MineRL's camera action
  bound ``Box(-180, 180)``) in one 50 ms tick: clipped to +-180 degrees (the agent's discretizer clips to
  +-10 degrees anyway, so the training label is the same as for any fast turn);
* a ``hotbar`` that is not an int in 0..8: read as unchanged; a bad ``idm_confidence``: a null step;
* a corrupt or truncated video: the frames that could be decoded, with how many were recovered of how
  many were expected (the jsonl's line count, else the count in the video's header);
* a frame/line count mismatch: the common prefix.

Example::

    from vpt_rl.data.contractor import load_actions, iter_segment
    actions = load_actions("rec/seg0.jsonl")          # [(env_action, is_null), ...] one per line
    for step in iter_segment("rec/seg0.mp4"):         # non-null steps, cursor drawn, 128x128 RGB
        step.frame, step.env_action, step.index
"""
from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import av
import cv2
import numpy as np

from vpt_rl.actions import MOUSE_COUNTS_PER_TURN, MOUSE_DEGREES_PER_COUNT, MOUSE_DEGREES_PER_TURN, noop_action
from vpt_rl.atomic import atomic_output
from vpt_rl.data.clean_spans import SpansError, read_spans, span_index
from vpt_rl.envs.wrappers import resize_pov
from vpt_rl.model_config import AGENT_RESOLUTION  # noqa: F401  (re-exported: (width, height) here, square)

PathLike = Union[str, "os.PathLike[str]"]

# data_loader.py KEYBOARD_BUTTON_MAPPING
KEYBOARD_BUTTON_MAPPING = {
    "key.keyboard.escape": "ESC",
    "key.keyboard.s": "back",
    "key.keyboard.q": "drop",
    "key.keyboard.w": "forward",
    "key.keyboard.1": "hotbar.1",
    "key.keyboard.2": "hotbar.2",
    "key.keyboard.3": "hotbar.3",
    "key.keyboard.4": "hotbar.4",
    "key.keyboard.5": "hotbar.5",
    "key.keyboard.6": "hotbar.6",
    "key.keyboard.7": "hotbar.7",
    "key.keyboard.8": "hotbar.8",
    "key.keyboard.9": "hotbar.9",
    "key.keyboard.e": "inventory",
    "key.keyboard.space": "jump",
    "key.keyboard.a": "left",
    "key.keyboard.d": "right",
    "key.keyboard.left.shift": "sneak",
    "key.keyboard.left.control": "sprint",
    "key.keyboard.f": "swapHands",
}
# The inverse, used by the pseudo-label writer (vpt_rl.train.label).
ACTION_TO_KEY = {action: key for key, action in KEYBOARD_BUTTON_MAPPING.items()}
# data_loader.py: mouse button id -> MineRL action
MOUSE_BUTTON_MAPPING = {0: "attack", 1: "use", 2: "pickItem"}
ACTION_TO_MOUSE_BUTTON = {action: button for button, action in MOUSE_BUTTON_MAPPING.items()}
# data_loader.py CAMERA_SCALER (the constants live in vpt_rl.actions; these names are kept for old imports)
CAMERA_DEGREES_PER_TURN = MOUSE_DEGREES_PER_TURN
CAMERA_COUNTS_PER_TURN = MOUSE_COUNTS_PER_TURN
CAMERA_SCALER = MOUSE_DEGREES_PER_COUNT


def counts_to_degrees(counts: float) -> float:
    """Mouse counts -> camera degrees (``counts * 360 / 2400``)."""
    return counts * CAMERA_DEGREES_PER_TURN / CAMERA_COUNTS_PER_TURN


def degrees_to_counts(deg: float) -> float:
    """Camera degrees -> mouse counts, the inverse of :func:`counts_to_degrees`."""
    return deg * CAMERA_COUNTS_PER_TURN / CAMERA_DEGREES_PER_TURN
# The cursor is placed at mouse (x, y) * frame_height / CURSOR_REFERENCE_HEIGHT (data_loader.py: 720p GUI)
CURSOR_REFERENCE_HEIGHT = 720
CURSOR_PATH = Path(__file__).resolve().parents[1] / "assets" / "cursor_16x16.png"
# The largest plausible camera turn of one line (one 50 ms tick): half a turn, MineRL's camera action bound
# Box(-180, 180). Real mouse flicks stay far below it (the official fixtures: at most 6 degrees); a larger
# value is a glitch (e.g. dy=1e9) and is clipped to it with a DataWarning (sanitize_line).
MAX_CAMERA_DEGREES_PER_LINE = MOUSE_DEGREES_PER_TURN / 2


class DataWarning(UserWarning):
    """Bad or inconsistent data that was skipped or worked around (the message names file and line)."""


def _warn(msg: str) -> None:
    warnings.warn(msg, DataWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------------
# One line -> one MineRL env action


def json_action_to_env_action(line: dict) -> tuple[dict, bool]:
    """Convert one contractor jsonl record to ``(env_action, is_null)`` (``data_loader.py: json_action_to_env_action``).

    The camera is ``[dy * 0.15, dx * 0.15]`` float degrees (pitch, yaw), not truncated. ``is_null`` is
    True when no mapped key, no mouse motion and no mouse button is present. The stuck-attack and
    hotbar rules are per-segment and live in :func:`convert_lines`.

    :param line: the decoded JSON object of one line (``keyboard.keys``, ``mouse.dx/dy/buttons`` used).
    :raises ValueError: if a field has the wrong type (e.g. ``mouse.dx`` not a number).
    """
    if not isinstance(line, dict):
        raise ValueError(f"contractor line must be a JSON object, got {type(line).__name__}")
    env_action = noop_action()
    env_action["camera"] = np.zeros(2, dtype=np.float64)
    is_null = True

    keyboard = line.get("keyboard") or {}
    keys = keyboard.get("keys") or []
    if not isinstance(keys, list):
        raise ValueError(f"keyboard.keys must be a list, got {keys!r}")
    for key in keys:
        action = KEYBOARD_BUTTON_MAPPING.get(key)
        if action is not None:
            env_action[action] = 1
            is_null = False

    mouse = line.get("mouse") or {}
    dx, dy = mouse.get("dx", 0.0), mouse.get("dy", 0.0)
    for name, value in (("mouse.dx", dx), ("mouse.dy", dy)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if dx != 0 or dy != 0:
        # parity: data_loader.py fills an int64 array here (truncation, issue #54); we keep floats.
        env_action["camera"] = np.array([counts_to_degrees(dy), counts_to_degrees(dx)], dtype=np.float64)
        is_null = False

    buttons = mouse.get("buttons") or []
    if not isinstance(buttons, list):
        raise ValueError(f"mouse.buttons must be a list, got {buttons!r}")
    for button in buttons:
        action = MOUSE_BUTTON_MAPPING.get(button)
        if action is not None:
            env_action[action] = 1
            is_null = False
    return env_action, is_null


# ---------------------------------------------------------------------------------------------------
# A whole segment's jsonl


@dataclass
class LineInfo:
    """The converted action of one jsonl line plus what the frame pipeline needs from it."""

    env_action: dict
    is_null: bool
    gui_open: bool = False
    mouse_xy: tuple = (0.0, 0.0)
    broken: bool = False  # the line could not be parsed; it is a null (skipped) step
    confidence: float = 1.0  # a pseudo-label's "idm_confidence" (vpt-rl label); 1.0 for true labels


def read_jsonl_lines(jsonl_path: PathLike) -> list[Optional[dict]]:
    """Parse a jsonl file; a line that is not a JSON object becomes ``None`` with a :class:`DataWarning`.

    A trailing empty line is ignored (a file ending in a newline); an empty line elsewhere is broken.

    :raises FileNotFoundError: if the file does not exist.
    """
    path = Path(jsonl_path)
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        raw = f.read().split("\n")
    if raw and raw[-1] == "":
        raw.pop()
    out: list[Optional[dict]] = []
    for i, text in enumerate(raw):
        try:
            obj = json.loads(text)
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
            out.append(obj)
        except ValueError as e:
            _warn(f"{path}:{i + 1}: broken jsonl line ({e}); the step is skipped")
            out.append(None)
    return out


def _number_or_zero(name: str, value, problems: list) -> float:
    """A mouse delta as a float: 0 (with a problem noted) when it is not a finite number; clipped when
    implausibly large."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{name}={value!r} is not a number; read as 0 (no camera motion on that axis)")
        return 0.0
    try:
        finite = math.isfinite(value)
    except OverflowError:  # a JSON integer too large for a float (hundreds of digits)
        finite = False
    if not finite:
        problems.append(f"{name}={_short(value)} is not finite; read as 0 (no camera motion on that axis)")
        return 0.0
    limit = degrees_to_counts(MAX_CAMERA_DEGREES_PER_LINE)
    if abs(value) > limit:
        problems.append(f"{name}={value!r} counts is {counts_to_degrees(value):.4g} degrees in one tick, more than "
                        f"the plausible {MAX_CAMERA_DEGREES_PER_LINE:g}; clipped to {math.copysign(limit, value):g}")
        return math.copysign(limit, value)
    return value


def _list_field(name: str, value, kind: type, problems: list) -> list:
    """``keyboard.keys`` / ``mouse.buttons`` as a list of ``kind``; null or another type reads as empty."""
    if value is None:
        problems.append(f"{name} is null; read as none pressed")
        return []
    if not isinstance(value, list):
        problems.append(f"{name}={value!r} is not a list; read as none pressed")
        return []
    good = [v for v in value if isinstance(v, kind) and not isinstance(v, bool)]
    if len(good) != len(value):
        bad = [v for v in value if v not in good]
        problems.append(f"{name} holds entries that are not {kind.__name__}s ({bad!r}); they are ignored")
    return good


def _short(value) -> str:
    """``repr(value)``, cut to a readable length (a malformed field can be hundreds of digits)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _position_or_zero(name: str, value, problems: list) -> float:
    """A cursor coordinate as a finite float; 0 (with a problem noted) otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        problems.append(f"{name}={_short(value)} is not a finite number; read as 0")
        return 0.0
    return number


def sanitize_line(line: dict) -> tuple[dict, list[str]]:
    """Check the fields of one parsed jsonl line that the conversion reads; returns ``(clean_line, problems)``.

    ``clean_line`` is a copy where every malformed or implausible field is replaced as the module docstring
    documents (missing ``mouse``/``keyboard`` or null lists -> empty, bad or non-finite deltas -> 0, a turn
    above :data:`MAX_CAMERA_DEGREES_PER_LINE` -> clipped); ``problems`` says what was wrong, one string each.
    A well-formed line comes back equal, with no problems. Unknown key names (``key.keyboard.t``) are not
    problems: the official rules ignore them.
    """
    problems: list[str] = []
    mouse = line.get("mouse")
    if not isinstance(mouse, dict):
        problems.append("no 'mouse' object; read as no mouse motion and no buttons" if mouse is None else
                        f"'mouse' is {type(mouse).__name__}, not an object; read as no mouse motion and no buttons")
        mouse = {}
    keyboard = line.get("keyboard")
    if not isinstance(keyboard, dict):
        problems.append("no 'keyboard' object; read as no keys pressed" if keyboard is None else
                        f"'keyboard' is {type(keyboard).__name__}, not an object; read as no keys pressed")
        keyboard = {"keys": []}
    mouse = dict(mouse)
    keyboard = dict(keyboard, keys=_list_field("keyboard.keys", keyboard.get("keys"), str, problems))
    mouse["dx"] = _number_or_zero("mouse.dx", mouse.get("dx", 0.0), problems)
    mouse["dy"] = _number_or_zero("mouse.dy", mouse.get("dy", 0.0), problems)
    for axis in ("x", "y"):  # the cursor position, drawn on GUI frames
        if axis in mouse and mouse[axis] is not None:
            mouse[axis] = _position_or_zero(f"mouse.{axis}", mouse[axis], problems)
    if "buttons" in mouse:
        mouse["buttons"] = _list_field("mouse.buttons", mouse["buttons"], int, problems)
    return {**line, "mouse": mouse, "keyboard": keyboard}, problems


def convert_lines(lines: Sequence[Optional[dict]], source: str = "<lines>") -> list[LineInfo]:
    """Apply the official per-segment rules, in frame order, to parsed jsonl lines (``data_loader.py: data_loader_worker``).

    1. Stuck-attack fix: if line 0 has ``newButtons == [0]`` attack is stuck; while stuck, button 0 is
       removed from ``mouse.buttons``; a later line with 0 in ``newButtons`` unsticks it.
    2. :func:`json_action_to_env_action`.
    3. Hotbar-change rule: if ``hotbar`` differs from the last value (initially 0), ``hotbar.{hotbar+1}``
       is set, after the null check.

    Each line is first checked by :func:`sanitize_line`: a malformed or implausible field warns (naming
    ``source``, the 1-based line number and what is wrong) and is read as documented there, keeping the
    rest of the line. ``None`` (a line that is not JSON) and a bad ``idm_confidence`` give a null step with
    a warning; a bad ``hotbar`` warns and reads as unchanged.
    """
    out: list[LineInfo] = []
    attack_is_stuck = False
    last_hotbar = 0
    for i, line in enumerate(lines):
        broken = line is None
        if not broken:
            try:
                line, problems = sanitize_line(line)
                for problem in problems:
                    _warn(f"{source}:{i + 1}: {problem}")
                mouse = dict(line["mouse"])
                if i == 0 and mouse.get("newButtons") == [0]:
                    attack_is_stuck = True
                elif attack_is_stuck and 0 in (mouse.get("newButtons") or []):
                    attack_is_stuck = False
                if attack_is_stuck and 0 in (mouse.get("buttons") or []):
                    mouse["buttons"] = [b for b in mouse["buttons"] if b != 0]
                env_action, is_null = json_action_to_env_action({**line, "mouse": mouse})
                hotbar = line.get("hotbar", last_hotbar)
                if hotbar != last_hotbar:
                    if isinstance(hotbar, bool) or not isinstance(hotbar, int) or not 0 <= hotbar <= 8:
                        _warn(f"{source}:{i + 1}: hotbar={hotbar!r} is not an int in 0..8; read as unchanged")
                        hotbar = last_hotbar
                    else:
                        env_action[f"hotbar.{hotbar + 1}"] = 1
                    last_hotbar = hotbar
                gui_open = bool(line.get("isGuiOpen", False))
                mouse_xy = (float(mouse.get("x", 0.0) or 0.0), float(mouse.get("y", 0.0) or 0.0))
                confidence = float(line.get("idm_confidence", 1.0))
                if not 0.0 <= confidence <= 1.0:
                    raise ValueError(f"idm_confidence must be in [0, 1], got {confidence!r}")
                out.append(LineInfo(env_action, is_null, gui_open, mouse_xy, confidence=confidence))
                continue
            except (ValueError, TypeError, AttributeError, ArithmeticError) as e:
                _warn(f"{source}:{i + 1}: bad contractor line ({e}); the step is skipped")
        noop = noop_action()
        noop["camera"] = np.zeros(2, dtype=np.float64)
        out.append(LineInfo(noop, True, broken=True))
    return out


def load_actions(jsonl_path: PathLike) -> list[tuple[dict, bool]]:
    """Read a contractor jsonl and return ``[(env_action, is_null), ...]``, one entry per line.

    Applies the stuck-attack fix and the hotbar-change rule in order (see :func:`convert_lines`); the
    camera stays float degrees. A broken line gives ``(noop, True)`` and a :class:`DataWarning` naming the
    file and line, so the list stays aligned with the video frames.
    """
    infos = convert_lines(read_jsonl_lines(jsonl_path), source=str(jsonl_path))
    return [(info.env_action, info.is_null) for info in infos]


# ---------------------------------------------------------------------------------------------------
# Cursor


def make_cursor_image(size: int = 16) -> np.ndarray:
    """Draw our own mouse cursor: a white arrow with a black outline, RGBA uint8 ``(size, size, 4)``.

    The arrow's tip is the top-left pixel, as Minecraft's cursor hotspot (the image's top-left corner is
    placed at the mouse position).
    """
    if size < 8:
        raise ValueError(f"cursor size must be >= 8 pixels, got {size}")
    s = size / 16.0
    # Arrow outline in a 16x16 design grid: tip, down the left edge, notch, tail, back to the wing.
    poly = np.array([(0, 0), (0, 13), (3, 10), (6, 15), (8, 14), (5, 9), (10, 9)], dtype=np.float64)
    pts = np.round(poly * s).astype(np.int32).reshape(-1, 1, 2)
    rgb = np.zeros((size, size, 3), dtype=np.uint8)
    alpha = np.zeros((size, size), dtype=np.uint8)
    cv2.fillPoly(rgb, [pts], (255, 255, 255))
    cv2.fillPoly(alpha, [pts], 255)
    cv2.polylines(rgb, [pts], isClosed=True, color=(0, 0, 0), thickness=1)
    cv2.polylines(alpha, [pts], isClosed=True, color=255, thickness=1)
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def write_cursor_png(path: PathLike = CURSOR_PATH, size: int = 16) -> Path:
    """Write :func:`make_cursor_image` as an RGBA PNG (how ``vpt_rl/assets/cursor_16x16.png`` was made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rgba = make_cursor_image(size)
    bgra = rgba[..., [2, 1, 0, 3]]
    with atomic_output(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), bgra):
            raise OSError(f"could not write cursor image {tmp}")
    return path


_CURSOR_CACHE: dict = {}


def load_cursor(path: PathLike = CURSOR_PATH) -> np.ndarray:
    """Load the RGBA cursor (top-left 16x16, as the official loader crops it); generate it if missing."""
    key = str(path)
    if key not in _CURSOR_CACHE:
        img = cv2.imread(key, cv2.IMREAD_UNCHANGED) if Path(path).is_file() else None
        if img is None or img.ndim != 3 or img.shape[2] != 4:
            rgba = make_cursor_image(16)
        else:
            rgba = img[:16, :16][..., [2, 1, 0, 3]]
        _CURSOR_CACHE[key] = np.ascontiguousarray(rgba)
    return _CURSOR_CACHE[key]


def draw_cursor(frame: np.ndarray, x: float, y: float, cursor: Optional[np.ndarray] = None) -> np.ndarray:
    """Alpha-blend the cursor onto ``frame`` (uint8 HxWx3, in place) as data_loader.py does.

    The top-left corner goes to ``(int(x * s), int(y * s))`` with ``s = frame_height / 720``; the cursor is
    clipped at the frame border; the blend ``frame * (1 - a) + cursor * a`` is truncated to uint8.
    Returns ``frame``.
    """
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
    cursor = load_cursor() if cursor is None else cursor
    h, w = frame.shape[:2]
    scale = h / CURSOR_REFERENCE_HEIGHT
    x0, y0 = int(x * scale), int(y * scale)
    ch, cw = cursor.shape[:2]
    # visible part of the cursor
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + cw, w), min(y0 + ch, h)
    if fx1 <= fx0 or fy1 <= fy0:
        return frame
    crop = cursor[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    alpha = crop[..., 3:4].astype(np.float64) / 255.0
    region = frame[fy0:fy1, fx0:fx1].astype(np.float64)
    blended = region * (1.0 - alpha) + crop[..., :3].astype(np.float64) * alpha
    frame[fy0:fy1, fx0:fx1] = blended.astype(np.uint8)
    return frame


# ---------------------------------------------------------------------------------------------------
# Video


def resize_frame(frame: np.ndarray, resolution: tuple = AGENT_RESOLUTION) -> np.ndarray:
    """Resize an RGB uint8 frame to ``resolution`` (width, height) with cv2 INTER_LINEAR (agent.py).

    Frames already at that size are returned as they are.
    """
    w, h = resolution
    return resize_pov(frame, (h, w))


def iter_video_frames(mp4_path: PathLike, threads: bool = True, expected: Optional[int] = None) -> Iterator[np.ndarray]:
    """Decode a video with PyAV, yielding RGB uint8 (H, W, 3) frames.

    A file that cannot be opened gives a :class:`DataWarning` naming the file. When fewer frames decode
    than ``expected`` (a cut or damaged file; default: the frame count in the video's header, which a
    fast-start file keeps even when its end is cut off), the frames decoded are still yielded and one
    :class:`DataWarning` says how many were recovered of how many expected, and the decode error if any.

    :param expected: how many frames the video should have (e.g. its jsonl's line count); ``None``: from
        the header (0 there means unknown: then only a decode error warns).
    """
    path = str(mp4_path)
    try:
        container = av.open(path)
    except Exception as e:  # PyAV raises several error classes (InvalidDataError, FileNotFoundError, ...)
        of = f" (0 of {expected} expected frames recovered)" if expected else ""
        _warn(f"{path}: cannot open video{of} ({type(e).__name__}: {e}); segment skipped")
        return
    n, error = 0, ""
    try:
        if not container.streams.video:
            _warn(f"{path}: no video stream; segment skipped")
            return
        stream = container.streams.video[0]
        if expected is None:
            expected = int(stream.frames or 0)
        if threads:
            stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
                n += 1
        except Exception as e:
            error = f"decode error after frame {n}: {type(e).__name__}: {e}"
        if expected and n < expected:
            _warn(f"{path}: recovered {n} of {expected} expected frames (the video is cut or damaged"
                  f"{'; ' + error if error else ''}); the {n} frames are used")
        elif error:
            _warn(f"{path}: video {error}; the {n} frames before it are used")
    finally:
        container.close()


@dataclass
class Step:
    """One emitted step of a segment: a 128x128 RGB frame and its (non-null) env action."""

    index: int  # frame / line index in the segment
    frame: np.ndarray
    env_action: dict
    is_null: bool
    confidence: float = 1.0  # the line's "idm_confidence" (pseudo-labels), 1.0 for true labels
    span: int = 0  # the index of the clean span (NAME.spans.json) the frame is in; 0 without a spans file


def segment_paths(mp4_path: PathLike) -> tuple[Path, Path]:
    """``NAME.mp4`` -> ``(NAME.mp4, NAME.jsonl)``."""
    mp4 = Path(mp4_path)
    return mp4, mp4.with_suffix(".jsonl")


def cursor_in_video(mp4_path: PathLike) -> bool:
    """True when ``NAME-options.json`` beside the video says the frames already show the GUI cursor."""
    options = Path(mp4_path).with_suffix("")
    options = options.with_name(options.name + "-options.json")
    if not options.is_file():
        return False
    try:
        return bool(json.loads(options.read_text()).get("cursor_in_video", False))
    except (OSError, ValueError, AttributeError) as e:
        _warn(f"{options}: unreadable options file ({e}); assuming the video has no cursor")
        return False


def iter_segment(
    mp4_path: PathLike,
    jsonl_path: Optional[PathLike] = None,
    *,
    skip_null: bool = True,
    cursor: Optional[bool] = None,
    resolution: tuple = AGENT_RESOLUTION,
    spans: Union[str, None, Sequence[tuple]] = "auto",
) -> Iterator[Step]:
    """Yield the steps of one contractor segment, in frame order, following data_loader.py.

    Every video frame is decoded (to stay aligned with the lines); null steps are skipped unless
    ``skip_null=False``; while ``isGuiOpen`` the cursor is drawn on the frame at its native size; frames
    are resized to ``resolution`` with cv2 INTER_LINEAR.

    ``cursor=None`` (default) draws the cursor unless the segment's ``NAME-options.json`` says
    ``"cursor_in_video": true`` (our recorder writes that: an env's pov already shows the cursor, while
    OpenAI's screen recordings do not); ``True``/``False`` force it.

    Fewer frames than lines (a cut video) warns "recovered N of M expected frames" (M: the line count);
    more frames than lines warns with both counts; either way the common prefix is used. A broken line
    warns as described in the module docstring.

    Clean spans (:mod:`vpt_rl.data.clean_spans`): only frames inside a clean span are yielded, each with the
    index of its span in ``Step.span`` (a reader that carries memory starts it again at a new span).

    :param mp4_path: the video.
    :param jsonl_path: its actions; default ``NAME.jsonl`` beside the video.
    :param spans: ``"auto"`` (default): the clean spans of ``NAME.spans.json`` beside the video when there is
        one (a spans file that cannot be read: a DataWarning, and the segment yields nothing), else every frame;
        ``None``: every frame; a list of ``(start, end)``: those spans.
    """
    mp4, default_jsonl = segment_paths(mp4_path)
    jsonl = Path(jsonl_path) if jsonl_path is not None else default_jsonl
    if isinstance(spans, str):
        if spans != "auto":
            raise ValueError(f"spans must be 'auto', None or a list of (start, end), got {spans!r}")
        try:
            spans = read_spans(mp4)
        except SpansError as e:
            _warn(f"{e}; segment skipped (which of its frames are clean is unknown)")
            return
    try:
        infos = convert_lines(read_jsonl_lines(jsonl), source=str(jsonl))
    except OSError as e:
        _warn(f"{jsonl}: cannot read actions ({e}); segment skipped")
        return
    n_frames = 0
    if cursor is None:
        cursor = not cursor_in_video(mp4)
    cursor_img = load_cursor() if cursor else None
    span_of = span_index(spans, len(infos))
    for i, frame in enumerate(iter_video_frames(mp4, expected=len(infos))):
        n_frames = i + 1
        if i >= len(infos):
            continue  # keep counting frames for the mismatch warning
        info = infos[i]
        if (skip_null and info.is_null) or span_of[i] < 0:
            continue
        if cursor and info.gui_open:
            frame = draw_cursor(np.array(frame, copy=True), *info.mouse_xy, cursor=cursor_img)
        yield Step(i, resize_frame(frame, resolution), info.env_action, info.is_null, info.confidence,
                   int(span_of[i]))
    if n_frames > len(infos):  # fewer frames: iter_video_frames warned, with both counts
        _warn(f"{mp4}: {n_frames} video frames but {len(infos)} lines in {jsonl.name}; "
              f"the first {min(n_frames, len(infos))} steps are used")


def find_segments(roots: Union[PathLike, Sequence[PathLike]], require_jsonl: bool = True) -> list[Path]:
    """All ``*.mp4`` under ``roots`` (files or folders, searched recursively), sorted.

    With ``require_jsonl`` (default) only videos with a ``NAME.jsonl`` beside them are returned; an mp4
    without one gives a :class:`DataWarning`. A folder index ``{"basedir", "relpaths"}`` JSON file is
    also accepted as a root.

    :raises FileNotFoundError: if a root does not exist.
    """
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    found: list[Path] = []
    for root in roots:
        root = Path(root)
        if root.is_dir():
            found.extend(sorted(root.rglob("*.mp4")))
        elif root.is_file() and root.suffix == ".json":
            index = json.loads(root.read_text())
            if not isinstance(index, dict) or "relpaths" not in index:
                raise ValueError(f"{root}: expected an index JSON with 'basedir' and 'relpaths'")
            base = Path(index.get("basedir") or root.parent)
            found.extend(base / (rel + ".mp4") for rel in index["relpaths"])
        elif root.is_file() and root.suffix == ".mp4":
            found.append(root)
        else:
            raise FileNotFoundError(f"no such video folder, index or mp4: {root}")
    out = []
    for mp4 in sorted(set(found)):
        if require_jsonl and not mp4.with_suffix(".jsonl").is_file():
            _warn(f"{mp4}: no {mp4.with_suffix('.jsonl').name} beside it; segment skipped")
            continue
        out.append(mp4)
    return out
