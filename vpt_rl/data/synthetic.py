"""A small, learnable, synthetic contractor segment for tests and benchmarks (no game needed).

The action of step ``t`` can be read from frames ``t`` and ``t + 1``, as in the game: the camera pans a
texture and each pressed button lights a cell of a strip.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from vpt_rl.actions import BUTTONS_ALL, N_CAMERA_BINS, camera_bin_centres
from vpt_rl.atomic import atomic_write_text
from vpt_rl.data.contractor import ACTION_TO_KEY, CAMERA_SCALER
from vpt_rl.data.video import write_video


def synthetic_segment(n_frames: int, seed: int = 0, size: int = 128, gui_prob: float = 0.0,
                      press_prob: float = 0.08, camera_prob: float = 0.35):
    """A learnable fake recording: ``(frames (N, size, size, 3) uint8, jsonl lines)``.

    The view is a window onto a large random texture; the camera action of step ``t`` (degrees, shown
    to the mouse as ``deg / 0.15`` counts) shifts the window of frame ``t + 1`` by ``2 px / degree``, and
    each of the 20 buttons pressed at step ``t`` lights one cell of a strip at the bottom of frame
    ``t + 1``. So the action at ``t`` can be read from frames ``t`` and ``t + 1``, as in the game.
    """
    rng = np.random.default_rng(seed)
    world = 4 * size
    tex = rng.integers(0, 256, size=(world // 16, world // 16, 3), dtype=np.uint8)
    tex = cv2.resize(tex, (world, world), interpolation=cv2.INTER_CUBIC)
    bins = np.delete(camera_bin_centres(), N_CAMERA_BINS // 2)  # the 10 non-zero mu-law bin centres
    pos = np.array([world / 2 - size / 2, world / 2 - size / 2])
    frames, lines = [], []
    pressed_prev = np.zeros(20, bool)
    flags_prev = np.zeros(20, bool)  # the buttons of step t - 1, drawn on frame t
    hotbar = 0
    for t in range(n_frames):
        y0 = int(np.clip(pos[0], 0, world - size))
        x0 = int(np.clip(pos[1], 0, world - size))
        frame = tex[y0:y0 + size, x0:x0 + size].copy()
        cell = size // 20
        for i in np.flatnonzero(flags_prev):
            frame[size - cell:, i * cell:(i + 1) * cell] = 255
        frames.append(frame)
        # action of step t
        pressed = np.where(rng.random(20) < 0.7, pressed_prev, rng.random(20) < press_prob)
        pressed[11:] = False
        if rng.random() < press_prob / 2:
            pressed[11 + rng.integers(0, 9)] = True
        cam = np.zeros(2)
        if rng.random() < camera_prob:
            cam = rng.choice(bins, size=2) * (rng.random(2) < 0.7)
        # keyboard keys of the pressed non-hotbar buttons (attack/use are mouse buttons, below)
        keys = [ACTION_TO_KEY[name] for name, p in zip(BUTTONS_ALL[:11], pressed) if p and name in ACTION_TO_KEY]
        hb = [i for i in range(9) if pressed[11 + i]]
        keys += [f"key.keyboard.{i + 1}" for i in hb]
        if hb:
            hotbar = hb[-1]
        buttons = [b for b, name in ((0, "attack"), (1, "use")) if pressed[BUTTONS_ALL.index(name)]]
        lines.append({
            "mouse": {"x": 640.0, "y": 360.0, "dx": float(cam[1] / CAMERA_SCALER), "dy": float(cam[0] / CAMERA_SCALER),
                      "scaledX": 0.0, "scaledY": 0.0, "dwheel": 0.0, "buttons": buttons,
                      "newButtons": [b for b in buttons if t > 0 and not pressed_prev[BUTTONS_ALL.index(
                          "attack" if b == 0 else "use")]]},
            "keyboard": {"keys": keys, "newKeys": [], "chars": ""},
            "isGuiOpen": bool(rng.random() < gui_prob), "hotbar": hotbar, "tick": t,
        })
        pressed_prev = pressed
        # what frame t+1 will show: the env action the contractor rules will give (incl. hotbar fix)
        flags_prev = pressed.copy()
        pos = pos + 2.0 * cam
    return np.stack(frames), lines


def write_synthetic_segment(stem: Union[str, Path], n_frames: int, seed: int = 0, **kw) -> Path:
    """Write :func:`synthetic_segment` as ``stem.mp4`` + ``stem.jsonl``; returns the mp4 path."""
    stem = Path(stem)
    frames, lines = synthetic_segment(n_frames, seed=seed, **kw)
    mp4 = write_video(stem.with_suffix(".mp4"), frames)
    atomic_write_text(stem.with_suffix(".jsonl"), "".join(json.dumps(line) + "\n" for line in lines))
    return mp4
