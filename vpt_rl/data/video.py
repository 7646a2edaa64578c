"""Whole clips: read a video as agent-resolution frames, write frames as an H.264 mp4 (the streaming writer of
recordings is in ``recorder``)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import av
import numpy as np

from vpt_rl.atomic import atomic_output
from vpt_rl.data.contractor import AGENT_RESOLUTION, iter_video_frames, resize_frame

# Fast-start mp4: the index (moov) is moved before the media data when the file is closed, so a file cut
# short (a partial copy or download, a full disk) still opens and its first frames decode; with the index at
# the end (FFmpeg's default) a cut file gives no frame at all.
MP4_OPTIONS = {"movflags": "+faststart"}


def write_video(path: Union[str, Path], frames: Sequence[np.ndarray], fps: int = 20, crf: int = 18) -> Path:
    """Encode RGB uint8 frames to a fast-start H.264 mp4 with PyAV, atomically (:func:`vpt_rl.atomic.atomic_output`).

    :param frames: (H, W, 3) uint8 RGB arrays, all the same size.
    :param fps: frame rate written into the file (20 = MineRL's tick rate).
    :param crf: x264 constant rate factor (18: visually lossless).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = list(frames)
    if not frames:
        raise ValueError(f"cannot write an empty video to {path}")
    h, w = frames[0].shape[:2]
    with atomic_output(path, suffix=path.suffix) as tmp, \
            av.open(str(tmp), mode="w", format="mp4", options=MP4_OPTIONS) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "ultrafast"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def read_video_frames(mp4: Union[str, Path]) -> np.ndarray:
    """All frames of a video as RGB uint8 ``(N, 128, 128, 3)`` (cv2 INTER_LINEAR resize when needed)."""
    frames = [resize_frame(f) for f in iter_video_frames(mp4)]
    if not frames:
        return np.zeros((0, AGENT_RESOLUTION[1], AGENT_RESOLUTION[0], 3), np.uint8)
    return np.stack(frames)


def video_fps(mp4: Union[str, Path]) -> Optional[float]:
    """The frame rate a video declares (its stream's average rate), or ``None`` if it cannot be opened or
    declares none."""
    try:
        with av.open(str(mp4)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
    except Exception:  # PyAV raises several error classes; the reader warns about the file itself
        return None
    return float(rate) if rate else None
