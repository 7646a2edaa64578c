"""``vpt-rl view``: look at a contractor segment (or a live scripted-expert episode) as a person would.

Writes, for ``SEGMENT.mp4`` + ``SEGMENT.jsonl``:

* ``OUT/NAME_view.mp4``: every frame enlarged (pixel-sharp), the GUI cursor drawn where the loader puts
  it, and a caption strip with the tick, the keys and mouse buttons pressed, the camera move, the hotbar
  slot and the first inventory items;
* ``OUT/NAME.gif``: the same, at a lower frame rate and size, for a quick look in a browser;
* ``OUT/NAME_contact.png``: a grid of frames spread over the episode (some with a GUI screen open if
  there are any), each labelled with its tick.

Usage::

    vpt-rl view rec/minelite-expert-s0003-e0001-000.mp4 --out view/
    vpt-rl view --seed 3 --ticks 3000 --out view/     # records a live expert episode first, then views it
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import av
import cv2
import numpy as np

from vpt_rl.atomic import atomic_output
from vpt_rl.commands.record import parse_resolution
from vpt_rl.data.contractor import (
    convert_lines,
    draw_cursor,
    iter_video_frames,
    load_cursor,
    read_jsonl_lines,
)
from vpt_rl.data.record import record_expert_episode
from vpt_rl.data.video import MP4_OPTIONS

CAPTION_H = 44  # pixels of text under each enlarged frame
_SHORT = {"forward": "W", "back": "S", "left": "A", "right": "D", "jump": "jump", "sneak": "sneak",
          "sprint": "sprint", "inventory": "E", "drop": "Q", "swapHands": "F", "ESC": "ESC",
          "attack": "LMB", "use": "RMB", "pickItem": "MMB", **{f"hotbar.{i}": str(i) for i in range(1, 10)}}


def _caption(width: int, line: Optional[dict], env_action: dict, is_null: bool) -> np.ndarray:
    strip = np.full((CAPTION_H, width, 3), 24, np.uint8)
    pressed = [_SHORT[k] for k in _SHORT if int(env_action.get(k, 0))]
    pitch, yaw = (float(v) for v in env_action["camera"])
    tick = line.get("tick", "?") if line else "?"
    gui = " GUI" if line and line.get("isGuiOpen") else ""
    hotbar = line.get("hotbar", 0) + 1 if line else "?"
    top = f"t={tick} slot={hotbar}{gui}  " + (" ".join(pressed) if pressed else ("(null)" if is_null else ""))
    cam = f"cam p{pitch:+.1f} y{yaw:+.1f}" if (pitch or yaw) else ""
    inv = ""
    if line and line.get("inventory"):
        inv = " ".join(f"{it['type'].replace('_', '')[:8]}:{it['quantity']}" for it in line["inventory"][:4])
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, min(0.5, width / 900))
    cv2.putText(strip, top[:80], (4, 16), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(strip, f"{cam}  {inv}"[:90], (4, 36), font, scale, (180, 220, 255), 1, cv2.LINE_AA)
    return strip


def render_segment(mp4_path: Path, jsonl_path: Optional[Path] = None) -> tuple:
    """``(frames, captions_meta)``: the segment's frames with the cursor drawn, enlarged to ~360 px high,
    each with a caption strip under it; plus ``[(tick, gui_open)]`` per frame."""
    mp4_path = Path(mp4_path)
    jsonl_path = Path(jsonl_path) if jsonl_path else mp4_path.with_suffix(".jsonl")
    lines = read_jsonl_lines(jsonl_path)
    infos = convert_lines(lines, source=str(jsonl_path))
    cursor = load_cursor()
    out, meta = [], []
    for i, frame in enumerate(iter_video_frames(mp4_path, expected=len(infos))):  # a cut video warns
        if i >= len(infos):
            break
        info, line = infos[i], lines[i]
        if info.gui_open:
            frame = draw_cursor(np.array(frame, copy=True), *info.mouse_xy, cursor=cursor)
        h, w = frame.shape[:2]
        k = max(1, int(round(360 / h)))
        big = cv2.resize(frame, (w * k, h * k), interpolation=cv2.INTER_NEAREST) if k > 1 else frame
        out.append(np.concatenate([big, _caption(big.shape[1], line, info.env_action, info.is_null)], axis=0))
        meta.append((line.get("tick", i) if line else i, bool(info.gui_open)))
    return out, meta


def _write_video(path: Path, frames: Sequence[np.ndarray], fps: int, codec: str) -> None:
    fmt = "gif" if codec == "gif" else "mp4"
    with atomic_output(path, suffix="." + fmt) as tmp:
        c = av.open(str(tmp), mode="w", format=fmt, options=MP4_OPTIONS if fmt == "mp4" else {})
        try:
            s = c.add_stream(codec, rate=fps)
            h, w = frames[0].shape[:2]
            s.width, s.height = w - w % 2, h - h % 2
            s.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
            for f in frames:
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: s.height, : s.width]), format="rgb24")
                for p in s.encode(vf):
                    c.mux(p)
            for p in s.encode(None):
                c.mux(p)
        finally:
            c.close()


def contact_sheet(frames: Sequence[np.ndarray], meta: Sequence[tuple], n: int = 24, cols: int = 6) -> np.ndarray:
    """A grid of ``n`` frames spread evenly over the episode; up to a quarter of them are taken from ticks
    with a GUI screen open (if any) so the crafting screens show."""
    if not frames:
        raise ValueError("no frames to put on a contact sheet")
    idx = set(np.linspace(0, len(frames) - 1, num=min(n, len(frames))).round().astype(int).tolist())
    gui = [i for i, (_, g) in enumerate(meta) if g]
    if gui:
        extra = np.linspace(0, len(gui) - 1, num=min(len(gui), n // 4)).round().astype(int)
        for j in extra:
            idx.add(gui[j])
    picked = sorted(idx)
    while len(picked) > n:  # drop evenly-spaced non-GUI picks first
        for j, i in enumerate(picked):
            if not meta[i][1]:
                del picked[j]
                break
        else:
            picked = picked[:n]
    if frames[0].shape[1] > 320:  # keep the sheet a few MB at most
        frames = {i: cv2.resize(frames[i], (frames[i].shape[1] // 2, frames[i].shape[0] // 2),
                                interpolation=cv2.INTER_AREA) for i in picked}
    h, w = frames[picked[0]].shape[:2]
    rows = (len(picked) + cols - 1) // cols
    sheet = np.full((rows * (h + 4) + 4, cols * (w + 4) + 4, 3), 60, np.uint8)
    for j, i in enumerate(picked):
        r, c = divmod(j, cols)
        y, x = 4 + r * (h + 4), 4 + c * (w + 4)
        sheet[y:y + h, x:x + w] = frames[i]
    scale = min(1.0, 2400 / sheet.shape[1])
    if scale < 1.0:
        sheet = cv2.resize(sheet, (int(sheet.shape[1] * scale), int(sheet.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return sheet


def view_segment(mp4_path: Path, out_dir: Path, gif_fps: int = 5, gif_max_frames: int = 150) -> dict:
    """Write ``NAME_view.mp4``, ``NAME.gif`` and ``NAME_contact.png`` for one segment; return their paths."""
    mp4_path = Path(mp4_path)
    if not mp4_path.is_file():
        raise FileNotFoundError(f"no such segment video: {mp4_path}")
    if not mp4_path.with_suffix(".jsonl").is_file():
        raise FileNotFoundError(f"segment {mp4_path} has no {mp4_path.with_suffix('.jsonl').name} beside it")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames, meta = render_segment(mp4_path)
    if not frames:
        raise ValueError(f"{mp4_path}: no frames could be decoded")
    name = mp4_path.stem
    paths = {"video": out_dir / f"{name}_view.mp4", "gif": out_dir / f"{name}.gif",
             "contact_sheet": out_dir / f"{name}_contact.png"}
    _write_video(paths["video"], frames, fps=20, codec="libx264")
    step = max(20 // gif_fps, int(np.ceil(len(frames) / gif_max_frames)))
    small = [cv2.resize(f, (f.shape[1] // 3, f.shape[0] // 3), interpolation=cv2.INTER_AREA) for f in frames[::step]]
    _write_video(paths["gif"], small, fps=max(1, round(20 / step)), codec="gif")
    sheet = contact_sheet(frames, meta)
    with atomic_output(paths["contact_sheet"], suffix=".png") as tmp:  # cv2 picks the format by extension
        if not cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {paths['contact_sheet']}")
    return {k: str(v) for k, v in paths.items()}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="vpt-rl view", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("segment", nargs="?", help="a contractor segment NAME.mp4 (NAME.jsonl beside it)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=None, help="instead of a segment: run the scripted expert on this seed")
    p.add_argument("--ticks", type=int, default=3000, help="with --seed: episode length limit")
    p.add_argument("--resolution", default="128x128", help="with --seed: frame size WxH (128x128 or 640x360)")
    p.add_argument("--epsilon", type=float, default=0.0, help="with --seed: expert's random-action rate")
    args = p.parse_args(argv)
    if (args.segment is None) == (args.seed is None):
        p.error("give either a SEGMENT.mp4 or --seed (not both)")
    out = Path(args.out)
    segments = [Path(args.segment)] if args.segment else []
    if args.seed is not None:
        res = record_expert_episode(out / "live", seed=args.seed, episode=0, max_ticks=args.ticks,
                                    resolution=parse_resolution(args.resolution), epsilon=args.epsilon, progress=True)
        segments = [out / "live" / f"{n}.mp4" for n in res.relpaths]
        print(f"expert episode: {res.ticks} ticks, milestones {json.dumps(res.last_info.get('milestones', {}))}")
    for seg in segments:
        paths = view_segment(seg, out)
        for kind, path in paths.items():
            print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
