"""`vpt-rl demo`: roll a VPT policy checkpoint on random frames or a video, printing MineRL actions.

    vpt-rl demo --model foundation-model-1x.model --weights foundation-model-1x.weights --random --steps 20
    vpt-rl demo --model 2x.model --weights rl-from-early-game-2x.weights --video gameplay.mp4 --deterministic

Frames are fed one per step with the transformer memory carried across steps, exactly as the official
``MineRLAgent.get_action`` does. Video frames are read with OpenCV (BGR), converted to RGB and resized to
128x128 with ``cv2.INTER_LINEAR`` (the official ``agent.resize_image``). One line per step: the pressed
buttons, the camera move in degrees ``[pitch, yaw]``, the joint action's log-probability and the value.
"""
from __future__ import annotations

import argparse
import sys
from typing import Iterator, Optional, Sequence

import cv2
import numpy as np
import torch

from vpt_rl.actions import agent_to_env
from vpt_rl.checkpoint import CheckpointError, build_policy
from vpt_rl.data.contractor import resize_frame
from vpt_rl.model_config import AGENT_RESOLUTION
from vpt_rl.train.runtime import PRECISIONS, autocast, check_precision, resolve_device


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vpt-rl demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="official .model file (config and temperature)")
    p.add_argument("--weights", required=True, help="official .weights file")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--video", default=None, help="video file to roll the policy on (any size; resized)")
    src.add_argument("--random", action="store_true", help="uniform random frames (the default source)")
    p.add_argument("--steps", type=int, default=20, help="number of steps (default 20; a video may end sooner)")
    p.add_argument("--deterministic", action="store_true", help="argmax actions instead of sampling")
    p.add_argument("--seed", type=int, default=0, help="seed of the random frames and of action sampling")
    p.add_argument("--device", default="auto",
                   help="torch device: auto (cuda when there is a GPU, else cpu), cpu, cuda or cuda:N (default auto)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="fp32, or bf16 / fp16 (GPU only) autocast of the forward pass (default fp32)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return p


def random_frames(steps: int, seed: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        yield rng.integers(0, 256, size=(*AGENT_RESOLUTION, 3), dtype=np.uint8)


def video_frames(path: str, steps: int) -> Iterator[np.ndarray]:
    """RGB 128x128 frames of a video file (at most ``steps``)."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path!r} with OpenCV")
    try:
        for _ in range(steps):
            ok, bgr = cap.read()
            if not ok:
                return
            yield resize_frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()


def format_action(action: dict) -> str:
    pressed = [k for k, v in action.items() if k != "camera" and int(v)]
    cam = np.asarray(action["camera"], dtype=np.float64)
    return f"{' '.join(pressed) or '(no buttons)'} camera=[{cam[0]:+.2f}, {cam[1]:+.2f}]"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``vpt-rl demo``."""
    args = build_parser().parse_args(argv)
    if args.steps <= 0:
        print(f"vpt-rl demo: --steps must be positive, got {args.steps}", file=sys.stderr)
        return 2
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    try:
        device = resolve_device(args.device)
        check_precision(args.precision, device)
    except ValueError as e:
        print(f"vpt-rl demo: {e}", file=sys.stderr)
        return 2
    try:
        net = build_policy(model=args.model, weights=args.weights, device=device).eval()
    except CheckpointError as e:
        print(f"vpt-rl demo: {e}", file=sys.stderr)
        return 1
    cfg = net.cfg
    print(f"loaded {args.model} (hidsize {cfg.hidsize}, {cfg.n_recurrence_layers} layers, memory {cfg.maxlen} "
          f"frames, temperature {net.temperature:g}) + {args.weights}")
    try:
        frames = video_frames(args.video, args.steps) if args.video else random_frames(args.steps, args.seed)
        gen = torch.Generator(device=device).manual_seed(args.seed)
        state = net.initial_state(1, device=device)
        count = 0
        for n, frame in enumerate(frames):
            img = torch.from_numpy(np.ascontiguousarray(frame)).to(device).view(1, 1, *frame.shape)
            first = torch.tensor([[n == 0]], device=device)
            with autocast(device, args.precision):  # act returns float32 outputs and memory
                buttons, camera, logp, value, state = net.act(img, first, state, deterministic=args.deterministic,
                                                              generator=gen)
            action = agent_to_env(int(buttons[0, 0]), int(camera[0, 0]))
            print(f"step {n:4d}: {format_action(action)}  (buttons {int(buttons[0, 0])}, camera {int(camera[0, 0])}, "
                  f"logp {float(logp[0, 0]):.3f}, value {float(value[0, 0]):.3f})")
            count += 1
        if args.video and count == 0:
            raise ValueError(f"no frame could be read from {args.video!r}")
        if count < args.steps:
            print(f"video ended after {count} frames")
    except ValueError as e:
        print(f"vpt-rl demo: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
