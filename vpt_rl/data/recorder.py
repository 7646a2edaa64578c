"""Contractor-format writer: any episode (expert, agent, a human at the keys) as ``NAME.mp4`` + ``NAME.jsonl``.

The files follow OpenAI's contractor recordings (as openai/Video-Pre-Training's ``data_loader.py`` reads them) closely
enough that the official conversion rules (:func:`vpt_rl.data.contractor.load_actions`) give back the
MineRL action that was taken on every line:

* keys -> ``keyboard.keys`` names (``key.keyboard.w`` ...), attack/use/pickItem -> mouse buttons 0/1/2;
* camera ``[pitch, yaw]`` degrees -> ``mouse.dy, mouse.dx = pitch / 0.15, yaw / 0.15`` as floats;
* ``hotbar`` is the selected slot *after* the tick; a ``hotbar.N`` press is also written as the key
  ``key.keyboard.N``, so pressing the slot that is already selected still comes back;
* ``newButtons`` are the mouse buttons pressed this tick and not the tick before (the stuck-attack rule
  reads it; episodes start with nothing pressed).

Which line fields describe what:

* ``isGuiOpen``, ``isGuiInventory`` and the cursor ``mouse.x``/``mouse.y`` describe the *frame* of the
  line (the state the picture shows, before the action), so a loader drawing the cursor at
  ``(x, y) * frame_h / 720`` draws it where the GUI cursor is in that frame and never leaks the action;
* ``hotbar``, ``yaw``, ``pitch``, ``x/y/zpos``, ``inventory``, ``stats`` are the state after the tick.

Writes are atomic: a segment is written to ``NAME.mp4.partial`` and ``NAME.jsonl.partial`` and both are
moved in place with :func:`os.replace` on :meth:`ContractorRecorder.close`, the jsonl last, so a segment
whose ``.jsonl`` exists is complete. An exception (or Ctrl-C) while recording deletes the partial files.

Known limits of the format (the same as in OpenAI's data, reported by :attr:`ContractorRecorder.mismatches`):

* a segment whose first line presses attack alone (``newButtons == [0]``) reads as "attack stuck": the
  reader drops attack until it is pressed anew. :func:`record_episode` therefore holds back (one tick, with a
  warning) a new attack press alone on the first line of a segment; an attack held across a segment
  boundary is not new and reads back fine;
* a segment that starts on hotbar slot N > 0 (the 2nd, 3rd ... segment of a long episode) reads as a
  ``hotbar.N+1`` press on its first line (the reader starts from slot 0); selecting the slot that is
  already selected changes nothing in the game.

Example::

    from vpt_rl.data.recorder import ContractorRecorder
    with ContractorRecorder("rec", "minelite-agent-s0000-e0000-000") as rec:
        for t in range(n):
            rec.add(frame_rgb, env_action, {"hotbar": 0, "yaw": 0.0, "tick": t})
    # -> rec/minelite-agent-s0000-e0000-000.mp4 and .jsonl
"""
from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Mapping, Optional, Sequence, Union

import av
import numpy as np

from vpt_rl.actions import ENV_ACTION_KEYS, noop_action
from vpt_rl.atomic import atomic_write_json
from vpt_rl.data.contractor import (
    ACTION_TO_KEY,
    ACTION_TO_MOUSE_BUTTON,
    CAMERA_SCALER,
    CURSOR_REFERENCE_HEIGHT,
    convert_lines,
)
from vpt_rl.data.game_state import env_state, inventory_list, jsonable
from vpt_rl.data.video import MP4_OPTIONS

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "RECORDER_VERSION",
    "SEGMENT_TICKS",
    "FPS",
    "ContractorRecorder",
    "EpisodeRecording",
    "RecorderWarning",
    "record_episode",
    "segment_name",
    "segment_complete",
    "write_index",
    "env_state",
    "actions_equal",
]

RECORDER_VERSION = "minelite"  # the <recorder-version> part of a segment name
SEGMENT_TICKS = 6000  # 5 minutes at 20 Hz: the longest segment of the real data (the VPT contractor data)
FPS = 20  # one MineRL tick = 50 ms
_BINARY_KEYS = tuple(k for k in ENV_ACTION_KEYS if k != "camera")  # 23 Discrete(2) keys
# key order in keyboard.keys: movement first, then the rest, as a stable order for diffs
_KEY_ORDER = tuple(a for a in ("forward", "left", "back", "right", "jump", "sneak", "sprint", "inventory",
                               "drop", "swapHands", "ESC") + tuple(f"hotbar.{i}" for i in range(1, 10)))
assert set(_KEY_ORDER) == set(ACTION_TO_KEY), "every keyboard action must have a place in _KEY_ORDER"
assert set(_KEY_ORDER) | set(ACTION_TO_MOUSE_BUTTON) == set(_BINARY_KEYS)
_SCREEN_CENTRE_720 = (640.0, 360.0)  # the cursor of a 1280x720 window when no GUI was ever open


class RecorderWarning(UserWarning):
    """A recorded line that the contractor rules will not read back as the action that was taken."""


# ---------------------------------------------------------------------------------------------------
# Actions


def _canonical_action(env_action: Mapping[str, Any]) -> dict:
    """A MineRL env action as ``{23 keys: int 0/1, "camera": float64 (2,)}``; missing keys are 0.

    Accepts the agent's shapes too (``(1,)`` arrays, a ``(1, 2)`` camera).

    :raises ValueError: on an unknown key, a button value other than 0/1 or a non-finite camera.
    """
    if not isinstance(env_action, Mapping):
        raise TypeError(f"env_action must be a dict of MineRL action keys, got {type(env_action).__name__}")
    out = noop_action()
    for key, value in env_action.items():
        if key not in out:
            raise ValueError(f"unknown MineRL action key {key!r}; expected one of {list(ENV_ACTION_KEYS)}")
        if key == "camera":
            cam = np.asarray(value, dtype=np.float64).reshape(-1)
            if cam.shape != (2,) or not np.all(np.isfinite(cam)):
                raise ValueError(f"camera must be 2 finite numbers [pitch, yaw] in degrees, got {value!r}")
            out["camera"] = cam
        else:
            v = np.asarray(value).reshape(-1)
            if v.size != 1 or v[0] not in (0, 1):
                raise ValueError(f"action {key!r} must be 0 or 1, got {value!r}")
            out[key] = int(v[0])
    out["camera"] = np.asarray(out["camera"], dtype=np.float64).reshape(2)
    return out


def actions_equal(a: Mapping[str, Any], b: Mapping[str, Any], atol: float = 1e-6) -> bool:
    """True when two MineRL env actions press the same keys and turn the camera by the same degrees."""
    ca, cb = _canonical_action(a), _canonical_action(b)
    if any(ca[k] != cb[k] for k in _BINARY_KEYS):
        return False
    return bool(np.allclose(ca["camera"], cb["camera"], rtol=0.0, atol=atol))


def _action_diff(taken: dict, read: dict, atol: float = 1e-6) -> str:
    parts = [f"{k}: {taken[k]}->{read[k]}" for k in _BINARY_KEYS if taken[k] != read[k]]
    if not np.allclose(taken["camera"], read["camera"], rtol=0.0, atol=atol):
        parts.append(f"camera: {taken['camera'].tolist()}->{np.asarray(read['camera']).tolist()}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------------
# Video


class _VideoWriter:
    """H.264 (libx264, yuv420p) with PyAV, falling back to MPEG-4 Part 2; writes to an explicit path.

    The file is fast-start (:data:`MP4_OPTIONS`): the index comes before the media data, so a copy cut
    short still opens and gives the frames it holds.
    """

    def __init__(self, path: Path, width: int, height: int, fps: int, codec: str = "auto", crf: int = 18):
        if width % 2 or height % 2:
            raise ValueError(f"yuv420p video needs even frame sides, got {width}x{height}")
        self.container = av.open(str(path), mode="w", format="mp4", options=MP4_OPTIONS)
        codecs = ["libx264", "mpeg4"] if codec == "auto" else [codec]
        last_error: Optional[Exception] = None
        self.stream = None
        for name in codecs:
            try:
                stream = self.container.add_stream(name, rate=fps)
            except Exception as e:  # codec not built into this FFmpeg
                last_error = e
                continue
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            if name == "libx264":
                stream.options = {"crf": str(crf), "preset": "veryfast"}
            else:
                stream.bit_rate = max(400_000, width * height * fps // 4)
            stream.codec_context.thread_count = 1  # 2 shared cores; the recorder runs beside the env
            self.stream = stream
            self.codec = name
            break
        if self.stream is None:
            self.container.close()
            raise RuntimeError(f"no usable video encoder among {codecs}: {last_error}")
        self.n_frames = 0

    def write(self, frame_rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_rgb), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.n_frames += 1

    def close(self) -> None:
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        finally:
            self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # the file is deleted next anyway
            pass


# ---------------------------------------------------------------------------------------------------
# One segment


class ContractorRecorder:
    """Write one contractor segment, ``out_dir/NAME.mp4`` + ``out_dir/NAME.jsonl``, atomically.

    Call :meth:`add` once per tick with the frame the policy saw, the MineRL action it took and the game
    state (see :func:`env_state`), then :meth:`close`. Used as a context manager, an exception inside the
    ``with`` block calls :meth:`abort` instead (no files are left but the ones of earlier segments).

    :param out_dir: folder of the segment (created if missing).
    :param name: file stem, e.g. ``minelite-expert-s0003-e0001-000``.
    :param fps: video frame rate (20, one frame per tick).
    :param codec: ``"auto"`` (H.264, else MPEG-4), ``"libx264"`` or ``"mpeg4"``.
    :param verify: on close, read the lines back with the contractor rules and count (and warn about)
        lines that do not give the action taken (:attr:`mismatches`).
    :param first_tick: ``tick`` of the first line (the episode tick where this segment starts).
    :param prev_buttons: mouse buttons held on the tick before the segment (for ``newButtons``).
    :param prev_keys: keys held on the tick before the segment (for ``newKeys``).
    :param prev_cursor: the cursor position (720p units) before the segment.
    """

    def __init__(
        self,
        out_dir: PathLike,
        name: str,
        fps: int = FPS,
        *,
        codec: str = "auto",
        verify: bool = True,
        first_tick: int = 0,
        prev_buttons: Sequence[int] = (),
        prev_keys: Sequence[str] = (),
        prev_cursor: Optional[Sequence[float]] = None,
        meta: Optional[Mapping[str, Any]] = None,
    ):
        if not isinstance(name, str) or not name or os.sep in name or name.startswith("."):
            raise ValueError(f"segment name must be a plain file stem like 'minelite-expert-s0000-e0000-000', got {name!r}")
        if not isinstance(fps, int) or fps <= 0:
            raise ValueError(f"fps must be a positive int, got {fps!r}")
        if codec not in ("auto", "libx264", "mpeg4"):
            raise ValueError(f"codec must be 'auto', 'libx264' or 'mpeg4', got {codec!r}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.fps = fps
        self.codec = codec
        self.verify = verify
        self.mp4_path = self.out_dir / f"{name}.mp4"
        self.jsonl_path = self.out_dir / f"{name}.jsonl"
        self.meta_path = self.out_dir / f"{name}-options.json"
        # A segment is two files committed in order (mp4, then jsonl), so it keeps its own fixed temporary
        # names instead of vpt_rl.atomic's one-file writes: a rerun then overwrites what a killed run left.
        self._mp4_tmp = self.out_dir / f"{name}.mp4.partial"
        self._jsonl_tmp = self.out_dir / f"{name}.jsonl.partial"
        self._meta = dict(meta) if meta is not None else None
        self._video: Optional[_VideoWriter] = None
        self._jsonl_file = None
        self._frame_shape: Optional[tuple] = None
        self._tick = int(first_tick)
        self._prev_buttons = sorted(set(int(b) for b in prev_buttons))
        self._prev_keys = list(prev_keys)
        self._cursor720 = tuple(float(v) for v in prev_cursor) if prev_cursor is not None else _SCREEN_CENTRE_720
        self._lines: List[dict] = []  # kept for verification (small: ~1 KB a line)
        self._taken: List[dict] = []
        self.n_lines = 0
        self.closed = False
        self.mismatches: List[tuple] = []  # (line index, description) after close(verify=True)
        self.last_line: Optional[dict] = None

    # -- context manager -------------------------------------------------------------------------------
    def __enter__(self) -> "ContractorRecorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    # -- writing ---------------------------------------------------------------------------------------
    def _open(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        self._video = _VideoWriter(self._mp4_tmp, w, h, self.fps, self.codec)
        self._frame_shape = frame.shape
        self._jsonl_file = open(self._jsonl_tmp, "w", encoding="utf-8")

    def make_line(self, env_action: Mapping[str, Any], state: Optional[Mapping[str, Any]] = None,
                  frame_height: int = 360) -> tuple:
        """``(line, canonical_action)``: the contractor jsonl record for one tick and the action as a
        24-key dict. Does not write anything, but advances the held-buttons memory (``newButtons``).

        :param env_action: the MineRL action taken on this tick.
        :param state: game state, keys as in :func:`env_state` (missing keys get neutral values).
        :param frame_height: height of the recorded frame, to scale ``state["cursor"]`` to 720p units.
        """
        act = _canonical_action(env_action)
        state = dict(state or {})
        pitch_deg, yaw_deg = (float(v) for v in act["camera"])
        dx, dy = yaw_deg / CAMERA_SCALER, pitch_deg / CAMERA_SCALER
        buttons = sorted(ACTION_TO_MOUSE_BUTTON[a] for a in ACTION_TO_MOUSE_BUTTON if act[a])
        keys = [ACTION_TO_KEY[a] for a in _KEY_ORDER if act[a]]
        new_buttons = [b for b in buttons if b not in self._prev_buttons]
        new_keys = [k for k in keys if k not in self._prev_keys]
        hotbar = int(np.asarray(state.get("hotbar", 0)).reshape(-1)[0])
        if not 0 <= hotbar <= 8:
            raise ValueError(f"state['hotbar'] must be a slot in 0..8, got {hotbar}")
        gui_open = bool(state.get("isGuiOpen", False))
        cursor = state.get("cursor")
        if cursor is not None:
            scale = CURSOR_REFERENCE_HEIGHT / float(frame_height)
            self._cursor720 = (float(cursor[0]) * scale, float(cursor[1]) * scale)
        x, y = self._cursor720
        tick = int(state.get("tick", self._tick))
        self._prev_buttons, self._prev_keys = buttons, keys
        line = {
            "mouse": {
                "x": x, "y": y, "dx": dx, "dy": dy,
                # not read by any loader; motion at GUI scale 1 equals the raw motion
                "scaledX": dx, "scaledY": dy,
                "dwheel": 0.0,
                "buttons": buttons, "newButtons": new_buttons,
            },
            "keyboard": {"keys": keys, "newKeys": new_keys, "chars": ""},
            "isGuiOpen": gui_open,
            "isGuiInventory": bool(state.get("isGuiInventory", False)),
            "hotbar": hotbar,
            "yaw": float(state.get("yaw", 0.0)),
            "pitch": float(state.get("pitch", 0.0)),
            "xpos": float(state.get("xpos", 0.0)),
            "ypos": float(state.get("ypos", 0.0)),
            "zpos": float(state.get("zpos", 0.0)),
            "tick": tick,
            "milli": tick * (1000 // self.fps),
            "inventory": inventory_list(state.get("inventory")),
            "serverTick": tick,
            "serverTickDurationMs": float(state.get("serverTickDurationMs", 1000.0 / self.fps)),
            "stats": jsonable(state.get("stats", {})),
        }
        self._tick = tick + 1
        return line, act

    def add(self, frame_rgb: np.ndarray, env_action: Mapping[str, Any],
            state: Optional[Mapping[str, Any]] = None) -> dict:
        """Append one tick: the RGB frame shown before the action, the action and the state. Returns the line.

        :raises ValueError: if the frame is not uint8 ``(H, W, 3)`` with even sides, changes size within
            the segment, or the action / state is malformed.
        """
        if self.closed:
            raise RuntimeError(f"segment {self.name} is already closed")
        frame = np.asarray(frame_rgb)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be RGB uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        if self._frame_shape is not None and frame.shape != self._frame_shape:
            raise ValueError(f"frame size changed within segment {self.name}: {frame.shape} after {self._frame_shape}")
        if frame.shape[0] % 2 or frame.shape[1] % 2:
            raise ValueError(f"yuv420p video needs even frame sides, got {frame.shape[1]}x{frame.shape[0]}")
        line, act = self.make_line(env_action, state, frame_height=frame.shape[0])
        if self._video is None:
            self._open(frame)
        self._video.write(frame)
        self._jsonl_file.write(json.dumps(line) + "\n")
        if self.verify:
            self._lines.append(line)
            self._taken.append(act)
        self.n_lines += 1
        self.last_line = line
        return line

    def _check_readback(self) -> None:
        infos = convert_lines(self._lines, source=str(self.jsonl_path))
        for i, (info, taken) in enumerate(zip(infos, self._taken)):
            if not actions_equal(taken, info.env_action):
                self.mismatches.append((i, _action_diff(taken, _canonical_action(info.env_action))))
        if self.mismatches:
            i, what = self.mismatches[0]
            warnings.warn(f"{self.jsonl_path}: {len(self.mismatches)} line(s) read back by the contractor rules "
                          f"differ from the action taken (first: line {i + 1}: {what})", RecorderWarning, stacklevel=3)

    def close(self) -> None:
        """Finish the video and move both files in place (mp4 first, jsonl last). Idempotent.

        A segment with no frames writes nothing.
        """
        if self.closed:
            return
        self.closed = True
        if self._video is None:
            return
        try:
            self._video.close()
            self._jsonl_file.flush()
            os.fsync(self._jsonl_file.fileno())
            self._jsonl_file.close()
        except BaseException:
            self._remove_partials()
            raise
        if self._meta is not None:
            # An env's pov already shows its GUI cursor (MineRL draws a 16 px cursor, so does MineLite),
            # unlike OpenAI's screen recordings: tell the loader not to draw a second one.
            meta = {"cursor_in_video": True, **self._meta, "n_frames": self.n_lines, "codec": self._video.codec,
                    "resolution": [int(self._frame_shape[1]), int(self._frame_shape[0])], "fps": self.fps}
            atomic_write_json(self.meta_path, jsonable(meta), indent=1)
        os.replace(self._mp4_tmp, self.mp4_path)
        os.replace(self._jsonl_tmp, self.jsonl_path)  # last: a segment with a .jsonl is complete
        if self.verify:
            self._check_readback()
        self._lines, self._taken = [], []

    def abort(self) -> None:
        """Drop the segment being written: close the files and delete the ``.partial`` ones."""
        if self.closed:
            return
        self.closed = True
        if self._video is not None:
            self._video.abort()
        if self._jsonl_file is not None:
            self._jsonl_file.close()
        self._remove_partials()

    def _remove_partials(self) -> None:
        for p in (self._mp4_tmp, self._jsonl_tmp):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    @property
    def held(self) -> tuple:
        """``(buttons, keys, cursor720)`` held at the last tick, to continue in a next segment."""
        return list(self._prev_buttons), list(self._prev_keys), self._cursor720


# ---------------------------------------------------------------------------------------------------
# Episodes, names, index


def segment_name(alias: str, seed: int, episode: int, segment: int, version: str = RECORDER_VERSION) -> str:
    """``<recorder-version>/<alias>-<session>-<episode>-<segment>`` flattened, e.g.
    ``minelite-expert-s0003-e0001-000`` (the real data's ``<date>-<time>`` become episode and segment
    numbers, so names are reproducible and a rerun can resume)."""
    for what, v in (("seed", seed), ("episode", episode), ("segment", segment)):
        if not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{what} must be a non-negative int, got {v!r}")
    if not alias or "-" in alias or os.sep in alias:
        raise ValueError(f"alias must be a non-empty word without '-' or '/', got {alias!r}")
    return f"{version}-{alias}-s{int(seed):04d}-e{int(episode):04d}-{int(segment):03d}"


def segment_complete(out_dir: PathLike, name: str) -> bool:
    """True when ``NAME.mp4`` and ``NAME.jsonl`` both exist (the jsonl is moved in place last)."""
    d = Path(out_dir)
    return (d / f"{name}.mp4").is_file() and (d / f"{name}.jsonl").is_file()


def write_index(out_dir: PathLike, relpaths: Sequence[str], filename: str = "index.json") -> Path:
    """Write ``{"basedir": out_dir, "relpaths": [...]}`` atomically (the real data's index format)."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    index = {"basedir": str(d.resolve()), "relpaths": sorted(set(relpaths))}
    return atomic_write_json(d / filename, index, indent=1)


@dataclass
class EpisodeRecording:
    """What :func:`record_episode` wrote and saw."""

    relpaths: List[str] = field(default_factory=list)  # segment names written, in order
    ticks: int = 0
    terminated: bool = False
    truncated: bool = False
    actions: List[dict] = field(default_factory=list)  # canonical actions taken (if keep_actions)
    mismatches: List[tuple] = field(default_factory=list)  # (segment, line, what) readback differences
    last_info: dict = field(default_factory=dict)


def record_episode(
    env: Any,
    policy_fn: Callable[[Any], Mapping[str, Any]],
    path: PathLike,
    max_ticks: int = SEGMENT_TICKS,
    *,
    segment_ticks: int = SEGMENT_TICKS,
    reset_kwargs: Optional[Mapping[str, Any]] = None,
    state_fn: Callable[[Any, Any, Any], dict] = env_state,
    fps: int = FPS,
    codec: str = "auto",
    keep_actions: bool = False,
    meta: Optional[Mapping[str, Any]] = None,
    on_tick: Optional[Callable[[int, dict], None]] = None,
    frame_fn: Optional[Callable[[int, np.ndarray], np.ndarray]] = None,
) -> EpisodeRecording:
    """Run ``policy_fn`` in a Gymnasium ``env`` for one episode and record it in the contractor format.

    Segments are ``PATH-000``, ``PATH-001``, ... (``segment_ticks`` lines each). The frame of each line is
    the observation's ``pov`` the policy acted on; see the module docstring for the meaning of the fields.

    :param env: a Gymnasium env with a ``pov`` observation (MineLite, the MineRL adapter).
    :param policy_fn: ``obs -> MineRL env action dict`` (the scripted expert's ``act``, an agent, a human).
    :param path: ``out_dir/name-prefix``; e.g. ``rec/minelite-expert-s0003-e0001``.
    :param max_ticks: stop after this many ticks even if the episode has not ended.
    :param segment_ticks: ticks per segment (6000 = 5 minutes, as the real data).
    :param state_fn: ``(env, obs, info) -> state dict`` (default :func:`env_state`).
    :param meta: extra fields for each segment's ``NAME-options.json``.
    :param on_tick: called after every tick with ``(tick, info)`` (progress bars).
    :param frame_fn: ``(tick, pov) -> frame`` to record instead of the pov (web-like overlays); the policy
        still acts on the pov.
    :raises ValueError: for a non-positive ``max_ticks``/``segment_ticks``.

    An exception in the env or the policy (or Ctrl-C) deletes the segment being written and re-raises;
    earlier segments of the episode stay (they are complete).
    """
    if not isinstance(max_ticks, int) or max_ticks <= 0:
        raise ValueError(f"max_ticks must be a positive int, got {max_ticks!r}")
    if not isinstance(segment_ticks, int) or not 0 < segment_ticks <= SEGMENT_TICKS:
        raise ValueError(f"segment_ticks must be an int in 1..{SEGMENT_TICKS}, got {segment_ticks!r}")
    path = Path(path)
    out_dir, prefix = path.parent, path.name
    result = EpisodeRecording()
    obs, info = env.reset(**dict(reset_kwargs or {}))
    frame_state = state_fn(env, obs, info)  # what the first frame shows
    rec: Optional[ContractorRecorder] = None
    held: tuple = ((), (), None)
    try:
        for t in range(max_ticks):
            seg, line_in_seg = divmod(t, segment_ticks)
            if line_in_seg == 0:
                if rec is not None:
                    rec.close()
                    result.mismatches += [(rec.name, i, w) for i, w in rec.mismatches]
                    result.relpaths.append(rec.name)
                    held = rec.held
                seg_meta = {"recorder_version": RECORDER_VERSION, "segment": seg, "first_tick": t,
                            "episode_done": False,
                            **dict(meta or {})}
                rec = ContractorRecorder(out_dir, f"{prefix}-{seg:03d}", fps=fps, codec=codec, first_tick=t,
                                         prev_buttons=held[0], prev_keys=held[1], prev_cursor=held[2],
                                         meta=seg_meta)
            pov = obs["pov"] if isinstance(obs, Mapping) else obs
            action = dict(policy_fn(obs))
            pressed = {k: int(np.asarray(action.get(k, 0)).reshape(-1)[0]) for k in ("attack", "use", "pickItem")}
            if line_in_seg == 0 and pressed["attack"] and not pressed["use"] and not pressed["pickItem"] \
                    and 0 not in held[0]:
                # a new attack press alone on a segment's line 0 reads as "stuck attack" (``data_loader.py``),
                # dropped until pressed anew: hold it back one tick instead
                warnings.warn(f"the policy pressed attack on the first tick of segment {seg}; held back one tick "
                              "(the contractor rules would read it as a stuck button)", RecorderWarning, stacklevel=2)
                action["attack"] = 0
            t0 = time.perf_counter()
            obs, _reward, terminated, truncated, info = env.step(action)
            step_ms = (time.perf_counter() - t0) * 1000.0
            after = state_fn(env, obs, info)
            state = {**after, "tick": t, "serverTickDurationMs": round(step_ms, 3)}
            for key in ("isGuiOpen", "isGuiInventory", "cursor"):  # these describe the frame
                if key in frame_state:
                    state[key] = frame_state[key]
                else:
                    state.pop(key, None)
            rec.add(np.asarray(pov) if frame_fn is None else frame_fn(t, np.asarray(pov)), action, state)
            if keep_actions:
                result.actions.append(_canonical_action(action))
            frame_state = after
            result.ticks = t + 1
            result.last_info = dict(info)
            if on_tick is not None:
                on_tick(t, info)
            if terminated or truncated:
                result.terminated, result.truncated = bool(terminated), bool(truncated)
                break
        if rec is not None:
            rec._meta = {**(rec._meta or {}), "episode_done": True, "episode_ticks": result.ticks}
            rec.close()
            result.mismatches += [(rec.name, i, w) for i, w in rec.mismatches]
            result.relpaths.append(rec.name)
    except BaseException:
        if rec is not None:
            rec.abort()
        raise
    return result
