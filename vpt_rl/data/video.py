"""Write a whole clip of RGB frames to an H.264 mp4 (the streaming writer of recordings is in ``recorder``)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import av
import numpy as np

from vpt_rl.atomic import atomic_output


def write_video(path: Union[str, Path], frames: Sequence[np.ndarray], fps: int = 20, crf: int = 18) -> Path:
    """Encode RGB uint8 frames to an H.264 mp4 with PyAV, atomically (:func:`vpt_rl.atomic.atomic_output`).

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
    with atomic_output(path, suffix=path.suffix) as tmp, av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "ultrafast"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
