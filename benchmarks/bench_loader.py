"""Data-loader throughput (frames/s) against the training speed of the model it feeds.

Measures, on the same segments:

* raw PyAV decode of the videos (frames/s, one process);
* :class:`vpt_rl.data.dataset.SequenceDataset` batches through ``make_loader`` with 0, 1, 2 workers
  (decode + jsonl conversion + targets + batching);
* BC training steps of the ``tiny`` / ``micro`` policy and IDM steps of ``tiny_idm`` (forward + backward +
  AdamW, frames/s), i.e. what the loader has to keep up with.

Results: ``benchmarks/results/bench_loader.json``; command in ``bench_loader.sh``.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch

from vpt_rl.atomic import atomic_write_text
from vpt_rl.checkpoint import build_policy
from vpt_rl.data.contractor import find_segments, iter_video_frames
from vpt_rl.data.dataset import SequenceDataset, make_loader
from vpt_rl.data.synthetic import write_synthetic_segment
from vpt_rl.model import IDM_PRESETS, IDMNet
from vpt_rl.train.args import parse_args

HERE = Path(__file__).resolve().parent


@dataclass
class Args:
    """Loader frames/s vs model frames/s."""

    data: list[str] = field(default_factory=list)
    """segment folders to read (default: synthetic segments written to data_dir)"""
    data_dir: str = "benchmarks/out/loader_data"
    """where synthetic segments are written when data is empty"""
    n_segments: int = 8
    """synthetic segments"""
    segment_frames: int = 600
    """frames per synthetic segment (30 s at 20 Hz)"""
    batch_size: int = 4
    """lanes per batch"""
    seq_len: int = 32
    """frames per chunk"""
    workers: list[int] = field(default_factory=lambda: [0, 1, 2])
    """worker counts to measure"""
    model_steps: int = 3
    """timed training steps per model"""
    threads: int = 1
    """torch intra-op threads for the model timings"""
    results: str = str(HERE / "results" / "bench_loader.json")
    """results JSON"""


def _loader_fps(segments, batch_size, seq_len, workers) -> dict:
    ds = SequenceDataset(segments, batch_size=batch_size, seq_len=seq_len, skip_null=False, pack=True, epochs=1)
    t0 = time.perf_counter()
    n = 0
    first = None
    for batch in make_loader(ds, num_workers=workers):
        if first is None:
            first = time.perf_counter() - t0
        n += int(batch["mask"].sum())
    dt = time.perf_counter() - t0
    return {"workers": workers, "frames": n, "seconds": round(dt, 2), "frames_per_s": round(n / dt, 1),
            "first_batch_s": round(first or 0.0, 2)}


def _model_fps(kind: str, preset: str, batch_size: int, seq_len: int, steps: int) -> dict:
    img = torch.randint(0, 256, (batch_size, seq_len, 128, 128, 3), dtype=torch.uint8)
    if kind == "bc":
        net = build_policy(preset=preset)
        first = torch.zeros(batch_size, seq_len, dtype=torch.bool)

        def loss_fn():
            logp, _, _ = net(img, first, net.initial_state(batch_size))
            return -(logp["buttons"][..., 0].mean() + logp["camera"][..., 60].mean())
    else:
        net = IDMNet(IDM_PRESETS[preset])

        def loss_fn():
            logp = net(img)
            return -(logp["buttons"][..., 0].mean() + logp["camera"][..., 5].mean())
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    loss_fn().backward()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    dt = time.perf_counter() - t0
    return {"model": f"{kind}:{preset}", "batch": [batch_size, seq_len],
            "frames_per_s": round(steps * batch_size * seq_len / dt, 1)}


def main(argv: Optional[list] = None) -> int:
    args = parse_args(Args, argv)
    torch.set_num_threads(args.threads)
    if args.data:
        segments = find_segments(args.data)
    else:
        root = Path(args.data_dir)
        segments = []
        for i in range(args.n_segments):
            stem = root / f"syn{i}"
            segments.append(stem.with_suffix(".mp4") if stem.with_suffix(".jsonl").is_file()
                            else write_synthetic_segment(stem, args.segment_frames, seed=i))
    t0 = time.perf_counter()
    n = sum(1 for s in segments for _ in iter_video_frames(s))
    decode = {"frames": n, "frames_per_s": round(n / (time.perf_counter() - t0), 1)}
    loaders = [_loader_fps(segments, args.batch_size, args.seq_len, w) for w in args.workers]
    models = [_model_fps("bc", "micro", args.batch_size, 16, args.model_steps),
              _model_fps("bc", "tiny", args.batch_size, args.seq_len, args.model_steps),
              _model_fps("idm", "tiny_idm", args.batch_size, args.seq_len, args.model_steps)]
    out = {"args": asdict(args), "machine": "2-core CPU (shared with other jobs), no GPU",
           "cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
           "raw_decode": decode, "loader": loaders, "model_training": models}
    atomic_write_text(args.results, json.dumps(out, indent=1))
    print(json.dumps({"raw_decode_fps": decode["frames_per_s"],
                      "loader_fps": {l["workers"]: l["frames_per_s"] for l in loaders},
                      "model_fps": {m["model"]: m["frames_per_s"] for m in models}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
