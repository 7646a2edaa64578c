"""Does the IDM read the camera? Plain ``micro_idm`` vs the motion-trunk IDM at the same budget.

1. Record (reused when present) contractor-like training episodes with the scripted expert and scene-
   independent camera moves (``vpt-rl record --camera-noise``), and two held-out sets on world seeds that
   no training run sees: contractor-like play and plain expert play (the data the pipeline's IDM labels).
2. Train each design with :func:`vpt_rl.train.idm.train_idm` for the same number of steps and batch.
3. Score both held-out sets with the paper's metrics: keypress accuracy (all 20 buttons right) and per
   button, camera R^2 per axis for the argmax bin and for the posterior mean, and the sign accuracy on moves
   of 5 degrees or more.

Writes ``benchmarks/results/idm_camera.json`` (with the per-run training wall time and load average) and a
table on stdout; the exact command is in ``bench_idm_camera.sh``.

Run::

    python benchmarks/bench_idm_camera.py --designs micro_idm micro_idm_motion --steps 1000
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from vpt_rl.atomic import atomic_write_text
from vpt_rl.checkpoint import load_idm
from vpt_rl.data.contractor import find_segments
from vpt_rl.train import idm as idm_mod
from vpt_rl.train.args import parse_args

HERE = Path(__file__).resolve().parent


@dataclass
class Args:
    """IDM camera reading: plain micro_idm vs the motion trunk, on held-out contractor-like and expert play."""

    designs: list[str] = field(default_factory=lambda: ["micro_idm", "micro_idm_motion"])
    """IDM presets to train (vpt_rl.model.IDM_PRESETS)"""
    train_episodes: int = 16
    """contractor-like training episodes (world seeds train_seed ...); 16 x 1500 ticks is the pipeline's
    small-preset labelled split"""
    heldout_episodes: int = 4
    """held-out episodes per held-out set"""
    episode_ticks: int = 1500
    """ticks per episode (the small preset's)"""
    camera_noise: float = 0.5
    """scene-independent camera moves per tick in the contractor-like recordings"""
    epsilon: float = 0.05
    """expert random-action probability (as the pipeline records)"""
    train_seed: int = 300
    """world seed of the first training episode"""
    heldout_seed: int = 920
    """world seed of the first held-out episode (contractor-like; expert play uses heldout_seed + 50)"""
    steps: int = 1000
    """optimizer steps per design"""
    batch: int = 2
    """windows per step"""
    seq_len: int = 32
    """frames per window"""
    lr: float = 1e-3
    """peak learning rate"""
    motion_aux: float = 1.0
    """weight of the motion trunk's auxiliary camera loss"""
    seed: int = 1
    """training seed"""
    threads: int = 1
    """torch threads"""
    data_dir: str = "benchmarks/out/idm_camera_data"
    """recordings (reused when present)"""
    out_dir: str = "benchmarks/out/idm_camera_runs"
    """training runs (a finished run is re-scored, not retrained)"""
    results: str = str(HERE / "results" / "idm_camera.json")
    """results JSON"""


def record(out: Path, episodes: int, seed: int, args: Args, noise: float, alias: str) -> Path:
    cmd = [sys.executable, "-m", "vpt_rl.cli", "record", "--episodes", str(episodes), "--seed", str(seed),
           "--max-ticks", str(args.episode_ticks), "--epsilon", str(args.epsilon), "--camera-noise", str(noise),
           "--alias", alias, "--out", str(out), "--no-progress"]
    subprocess.run(cmd, check=True)
    return out


def score(model: Path, sets: dict, seq_len: int) -> dict:
    idm = load_idm(str(model), str(model.with_suffix(".weights")))
    out = {}
    for name, folder in sets.items():
        m = idm_mod.evaluate_idm(idm, find_segments([str(folder)]), seq_len, batch_size=4)
        out[name] = m
    return out


def main(argv=None) -> int:
    args = parse_args(Args, argv)
    torch.set_num_threads(args.threads)
    data = Path(args.data_dir)
    train = record(data / "train_contractor", args.train_episodes, args.train_seed, args, args.camera_noise,
                   "contractor")
    sets = {
        "contractor": record(data / "heldout_contractor", args.heldout_episodes, args.heldout_seed, args,
                             args.camera_noise, "contractor"),
        "expert": record(data / "heldout_expert", args.heldout_episodes, args.heldout_seed + 50, args, 0.0, "expert"),
    }
    out = Path(args.results)
    results = {"machine": f"{os.cpu_count()} CPU cores, no GPU", "runs": {}}
    if out.is_file():  # designs run separately accumulate in one file (same data and budget only)
        old = json.loads(out.read_text())
        if {k: v for k, v in old.get("args", {}).items() if k != "designs"} == {
                k: v for k, v in asdict(args).items() if k != "designs"}:
            results["runs"] = old.get("runs", {})
    results["args"] = asdict(args)
    for design in args.designs:
        run = Path(args.out_dir) / design
        done = run / "metrics.json"
        load0 = os.getloadavg()[0]
        t0 = time.time()
        fresh = not (done.is_file() and json.loads(done.read_text()).get("step") == args.steps)
        if fresh:
            idm_mod.train_idm(idm_mod.Args(
                data=[str(train)], val_data=[str(sets["contractor"])], preset=design, seq_len=args.seq_len,
                batch_size=args.batch, total_steps=args.steps, lr=args.lr, motion_aux=args.motion_aux,
                eval_every=max(args.steps // 4, 1), eval_max_frames=2400, save_every=max(args.steps // 4, 1),
                seed=args.seed, device="cpu", out_dir=str(run), name="idm", progress=False))
        timing = run / "bench_timing.json"
        if fresh:
            atomic_write_text(timing, json.dumps({"train_seconds": round(time.time() - t0, 1),
                                                  "load_avg_start": load0, "load_avg_end": os.getloadavg()[0]}))
        timed = json.loads(timing.read_text()) if timing.is_file() else {}
        history = json.loads(done.read_text()).get("history", [])
        metrics = score(run / "idm.model", sets, args.seq_len)
        results["runs"][design] = {
            "train_seconds": timed.get("train_seconds"), "load_avg_start": timed.get("load_avg_start"),
            "load_avg_end": timed.get("load_avg_end"), "heldout": metrics,
            "history": [{k: h.get(k) for k in ("step", "keypress_accuracy", "camera_r2_pitch", "camera_r2_yaw",
                                                "camera_r2_pitch_mean", "camera_r2_yaw_mean")} for h in history]}
    print(f"{'design':<20} {'held-out':<11} {'keypress':>8} {'R2 p/y argmax':>15} {'R2 p/y mean':>13} "
          f"{'sign>=5 p/y':>12}")
    headline = {}
    for design, r in results["runs"].items():
        for name, m in r["heldout"].items():
            print(f"{design:<20} {name:<11} {m['keypress_accuracy']:8.3f} "
                  f"{m['camera_r2_pitch']:7.2f}/{m['camera_r2_yaw']:<7.2f} "
                  f"{m['camera_r2_pitch_mean']:6.2f}/{m['camera_r2_yaw_mean']:<6.2f} "
                  f"{m['camera_sign_accuracy_pitch_mean']:5.2f}/{m['camera_sign_accuracy_yaw_mean']:<5.2f}")
            for k in ("keypress_accuracy", "camera_r2_pitch_mean", "camera_r2_yaw_mean"):
                headline[f"{design}/{name}/{k}"] = round(m[k], 4)
    results["headline"] = headline
    atomic_write_text(out, json.dumps(results, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
