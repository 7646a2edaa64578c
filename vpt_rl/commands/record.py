"""``vpt-rl record``: record scripted-expert MineLite episodes in OpenAI's contractor format.

Episode ``i`` plays world seed ``--seed + i`` and is written as segments
``OUT/minelite-<alias>-s<seed>-e<i>-<k>.mp4`` + ``.jsonl`` (+ ``-options.json``), at most
``--segment-ticks`` (6000 = 5 minutes) lines each; ``OUT/index.json`` lists every complete segment as
``{basedir, relpaths}``. Re-running the same command skips the episodes already recorded (resume): an
episode counts as recorded when its segments are complete and the last one's ``-options.json`` says
``episode_done``; an interrupted one is recorded again from its start. The settings are kept in
``OUT/record.json``; a rerun into the same folder with other settings (for the same ``--alias``) is refused,
naming each differing setting, instead of mixing episodes of both.

The recording itself is :func:`vpt_rl.data.record.record_dataset`; this module only parses arguments.

Usage::

    vpt-rl record --episodes 20 --out data/expert                  # 128x128, 6000 ticks per episode
    vpt-rl record --episodes 5 --out data/expert640 --resolution 640x360 --epsilon 0.05
    vpt-rl record --episodes 4 --out data/small --world-size 32          # a 32 x 48 x 32 world
    vpt-rl record --episodes 8 --out data/contractor --camera-noise 0.5 --alias contractor  # IDM training data
    vpt-rl record --episodes 20 --out data/web --web-like 0.3     # 30 % of episodes with unclean clips

``--web-like RATE`` records "web-like" footage for training a clean-video filter: a ``RATE`` share of the
episodes carries unclean clips (face-cam, logo, letterbox, pause menu, creative inventory) and every segment
gets ``NAME.clean.json`` with its unclean frame spans (see :mod:`vpt_rl.data.weblike`).
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Tuple

# episode_prefix, recorded_segments and all_complete_segments lived here before; kept importable from here
from vpt_rl.data.record import (  # noqa: F401
    RecordSettingsError,
    all_complete_segments,
    episode_prefix,
    record_dataset,
    recorded_segments,
)
from vpt_rl.data.recorder import SEGMENT_TICKS


def parse_resolution(text: str) -> Tuple[int, int]:
    """``"128x128"`` -> ``(128, 128)`` as (width, height); sides must be even (yuv420p video)."""
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"resolution must look like WIDTHxHEIGHT (e.g. 128x128 or 640x360), got {text!r}") from None
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise ValueError(f"resolution sides must be positive and even, got {text!r}")
    return w, h


def parse_world_size(text: str):
    """``"64"`` -> ``64`` (a square world, 48 blocks tall, as MineLite reads an int) and ``"32x24x32"`` ->
    ``(32, 24, 32)`` (X, Y = height, Z); MineLite needs X, Z >= 16 and Y >= 24."""
    parts = str(text).lower().split("x")
    try:
        vals = [int(v) for v in parts]
    except ValueError:
        vals = []
    if len(vals) not in (1, 3):
        raise ValueError(f"world size must be an int (e.g. 64) or XxYxZ (e.g. 32x24x32), got {text!r}")
    x, y, z = (vals[0], 48, vals[0]) if len(vals) == 1 else vals
    if x < 16 or z < 16 or y < 24:
        raise ValueError(f"world size {text!r} too small: expected X, Z >= 16 and Y >= 24 blocks")
    return vals[0] if len(vals) == 1 else (x, y, z)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="vpt-rl record", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, required=True, help="number of episodes to record")
    p.add_argument("--out", required=True, help="output folder (segments + index.json)")
    p.add_argument("--seed", type=int, default=0, help="world seed of episode 0; episode i uses seed + i")
    p.add_argument("--max-ticks", type=int, default=SEGMENT_TICKS, help="tick limit per episode (20 ticks = 1 s)")
    p.add_argument("--segment-ticks", type=int, default=SEGMENT_TICKS, help="lines per segment (<= 6000, 5 min)")
    p.add_argument("--resolution", default="128x128", help="frame size WIDTHxHEIGHT (128x128 default; 640x360 works)")
    p.add_argument("--world-size", default=None,
                   help="MineLite world size: an int N for N x 48 x N blocks, or XxYxZ (default: the env's 64x48x64)")
    p.add_argument("--epsilon", type=float, default=0.0, help="expert's random-action probability per tick")
    p.add_argument("--camera-noise", type=float, default=0.0,
                   help="probability per tick of a scene-independent camera move (every mu-law bin of both axes, "
                        "pitch kept within +-70 deg; never in screens or while a block is half-mined): "
                        "contractor-like labelled data for the IDM (0.5 in the pipeline's labelled split)")
    p.add_argument("--imitable", action="store_true",
                   help="the expert finds trees from what the screen shows (turns until a trunk is in view, walks "
                        "straight at it, chops its lowest three logs): play a policy can clone from pixels")
    p.add_argument("--steady-camera", action="store_true",
                   help="one steady turn controller instead of the varied turn styles and glances (calmer play to "
                        "clone; the IDM's labelled data wants the varied style)")
    p.add_argument("--web-like", type=float, default=None, metavar="RATE",
                   help="record web-like footage: this share of episodes (0..1) carries unclean clips; every "
                        "segment gets a NAME.clean.json ground-truth sidecar (default: a plain recording)")
    p.add_argument("--alias", default="expert", help="the <alias> part of segment names")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.episodes <= 0:
        p.error(f"--episodes must be positive, got {args.episodes}")
    if args.seed < 0:
        p.error(f"--seed must be >= 0, got {args.seed}")
    if not 0.0 <= args.epsilon <= 1.0:
        p.error(f"--epsilon must be in [0, 1], got {args.epsilon}")
    if not 0.0 <= args.camera_noise <= 1.0:
        p.error(f"--camera-noise must be a probability in [0, 1], got {args.camera_noise}")
    if args.web_like is not None and not 0.0 <= args.web_like <= 1.0:
        p.error(f"--web-like must be a share of episodes in [0, 1], got {args.web_like}")
    if args.max_ticks < 1:
        p.error(f"--max-ticks must be a tick limit >= 1, got {args.max_ticks}")
    if not 1 <= args.segment_ticks <= SEGMENT_TICKS:
        p.error(f"--segment-ticks must be in 1..{SEGMENT_TICKS} (5 minutes), got {args.segment_ticks}")
    try:
        resolution = parse_resolution(args.resolution)
        env_kwargs = {} if args.world_size is None else {"world_size": parse_world_size(args.world_size)}
        episode_prefix(args.alias, args.seed, 0)
    except ValueError as e:
        p.error(str(e))

    try:
        summary = record_dataset(args.out, args.episodes, seed=args.seed, max_ticks=args.max_ticks,
                                 segment_ticks=args.segment_ticks, resolution=resolution, epsilon=args.epsilon,
                                 camera_noise=args.camera_noise, imitable=args.imitable,
                                 varied_camera=not args.steady_camera, alias=args.alias,
                                 progress=not args.no_progress, unclean_rate=args.web_like, **env_kwargs)
    except RecordSettingsError as e:
        print(f"vpt-rl record: {e}", file=sys.stderr)
        return 2
    print(f"recorded {summary.recorded} episode(s), skipped {summary.skipped} already recorded; "
          f"index: {summary.index}")
    if summary.milestones:
        print("milestones reached (episodes recorded now): "
              + ", ".join(f"{k} {v}" for k, v in summary.milestones.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
