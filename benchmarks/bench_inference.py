"""Inference throughput and peak memory of the VPT networks (vpt_rl.model), fast path vs official order.

Run: ``python benchmarks/bench_inference.py --threads 1`` (exact command in benchmarks/bench_inference.sh).
Prints a table and writes ``benchmarks/results/inference.json``.

Cases (random-init weights, seeded; the numbers do not depend on the weights):

* ``step1`` / ``step8``: the 1x policy (``foundation-model-1x``) at batch 1 / 8, one frame per call with
  the transformer memory carried (what an agent does every env step);
* ``chunk``: the 1x policy on one ``--chunk``-frame chunk (training / BC / IDM-labelling shape);
* ``idm``: the 4x IDM (``4x_idm``) on one ``--idm-frames`` window. The official IDM uses 128-frame windows
  (~231 s, 6.9 GB on this machine); a smaller window is timed and the per-frame cost extrapolated to 128
  (exact for our micro-batched CNN, whose cost is linear in frames; the attention part is negligible).

Implementations, each run in its own fresh process (so peak RSS is per case):

* ``baseline``: the official computation order and memory layout (explicit attention with
  ``softmax(bias + QK^T/hd)``, contiguous max-pool, the whole chunk through the CNN at once), under
  ``torch.no_grad`` like the official ``act()``. This stands in for the official code on the same CPU.
* ``fast``: vpt-rl's defaults under ``torch.inference_mode``: fused SDPA, channels-last pooling, the CNN
  in micro-batches (policy: 8 frames, exact order, and for single images each conv + ReLU as one oneDNN
  call on a cached prepacked weight; IDM: 1 frame with NNPACK Winograd convolutions);
* ``winograd`` (policy ``step1`` only): ``fast`` plus Winograd; ``exact`` (IDM only): ``fast`` without
  Winograd, 8-frame micro-batches.

Throughput is frames per second of process CPU time (with one thread that is the compute time, robust to
other jobs on a shared machine); wall-clock frames/s are reported too. Peak memory = peak RSS of the child
process minus its RSS just before the timed part. ``max_abs_dlogp`` compares each implementation's
log-probabilities with the baseline's on identical inputs.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import multiprocessing as mp
import os
import platform
import resource
import time
from dataclasses import dataclass

import torch

from vpt_rl.atomic import atomic_write_json
from vpt_rl.checkpoint import build_policy
from vpt_rl.model import IDMNet, PolicyNet

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "inference.json")
OFFICIAL = {  # official-code figures measured on this machine (openai/Video-Pre-Training @ 095519f, torch 2.13 CPU, 2026-11-25)
    "step1": {"ms_per_frame_cpu": 80.0},
    "chunk": {"seconds_128_frames": 16.0},
    "idm": {"seconds_128_frames": 231.0, "peak_gb": 6.9},
}


@dataclass
class Args:
    threads: int = 1
    """torch CPU threads (1 for the comparison with the official figures)"""
    steps: int = 16
    """timed calls per step-mode case (after ``warmup`` calls)"""
    warmup: int = 3
    """untimed calls before timing"""
    chunk: int = 128
    """frames of the chunk case"""
    idm_frames: int = 16
    """frames of the IDM window (extrapolated to 128 in the table)"""
    cases: str = "step1,step8,chunk,idm"
    """comma-separated subset of step1, step8, chunk, idm"""
    impls: str = "baseline,fast,winograd,exact"
    """comma-separated subset of baseline, fast, winograd (policy step1 only), exact (IDM only)"""
    seed: int = 0
    """seed of weights and frames"""
    out: str = RESULTS
    """JSON result path (written atomically)"""


def _parse() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(Args):
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=type(f.default), default=f.default,
                            help=f.metadata.get("help"))
    args = Args(**vars(parser.parse_args()))
    if args.threads < 1 or args.steps < 1 or args.chunk < 1 or args.idm_frames < 1:
        parser.error("--threads, --steps, --chunk and --idm-frames must be positive")
    return args


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _configure(net, impl: str) -> None:
    if impl == "baseline":
        extra = {"prepack": False} if isinstance(net, PolicyNet) else {}  # the policy's prepacked convs
        net.set_fast(sdpa=False, fast_pool=False, winograd=False, micro_batch=0, **extra)
    elif impl == "fast":
        net.set_fast()  # the network's defaults (policy: exact order; IDM: Winograd, one frame per CNN pass)
    elif impl == "winograd":
        net.set_fast(winograd=True)
    elif impl == "exact":
        net.set_fast(winograd=False, micro_batch=8)
    else:
        raise ValueError(f"unknown impl {impl!r}; expected baseline, fast, winograd or exact")


def _run_case(case: str, impl: str, a: dict) -> dict:
    """Runs in a fresh process. Returns timings, memory and the final log-probs (for the parity check)."""
    torch.set_num_threads(a["threads"])
    torch.manual_seed(a["seed"])
    gen = torch.Generator().manual_seed(a["seed"] + 1)
    ctx = torch.no_grad if impl == "baseline" else torch.inference_mode
    if case == "idm":
        net = IDMNet("4x_idm").eval()
        t = a["idm_frames"]
        img = torch.randint(0, 256, (1, t, 128, 128, 3), dtype=torch.uint8, generator=gen)
        _configure(net, impl)
        with ctx():
            net(img[:, :2])  # warm-up on a tiny window
            rss0 = _rss_bytes()
            c0, w0 = time.process_time(), time.perf_counter()
            logp = net(img)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        frames = t
        final = torch.cat([logp["buttons"].flatten(), logp["camera"].flatten()])
    else:
        net = build_policy(preset="foundation-model-1x").eval()
        _configure(net, impl)
        batch = {"step1": 1, "step8": 8, "chunk": 1}[case]
        if case == "chunk":
            t = a["chunk"]
            img = torch.randint(0, 256, (batch, t, 128, 128, 3), dtype=torch.uint8, generator=gen)
            first = torch.zeros(batch, t, dtype=torch.bool)
            first[:, 0] = True
            with ctx():
                net(img[:, :8], first[:, :8], net.initial_state(batch))  # warm-up
                rss0 = _rss_bytes()
                c0, w0 = time.process_time(), time.perf_counter()
                logp, _, _ = net(img, first, net.initial_state(batch))
                cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            frames = batch * t
            final = torch.cat([logp["buttons"][:, -1].flatten(), logp["camera"][:, -1].flatten()])
        else:
            n = a["warmup"] + a["steps"]
            img = torch.randint(0, 256, (batch, n, 128, 128, 3), dtype=torch.uint8, generator=gen)
            state = net.initial_state(batch)
            with ctx():
                for i in range(n):
                    if i == a["warmup"]:
                        rss0 = _rss_bytes()
                        c0, w0 = time.process_time(), time.perf_counter()
                    first = torch.full((batch, 1), i == 0, dtype=torch.bool)
                    logp, _, state = net(img[:, i:i + 1], first, state)
                cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            frames = batch * a["steps"]
            final = torch.cat([logp["buttons"].flatten(), logp["camera"].flatten()])
    return {
        "case": case, "impl": impl, "frames": frames, "cpu_s": cpu, "wall_s": wall,
        "fps_cpu": frames / cpu, "fps_wall": frames / wall, "ms_per_frame_cpu": 1000 * cpu / frames,
        "peak_rss_delta_mb": max(0, _peak_rss_bytes() - rss0) / 2**20, "final_logp": final.numpy(),
    }


def main() -> None:
    args = _parse()
    cases = [c for c in args.cases.split(",") if c]
    impls = [i for i in args.impls.split(",") if i]
    for c in cases:
        if c not in ("step1", "step8", "chunk", "idm"):
            raise SystemExit(f"unknown case {c!r}; expected step1, step8, chunk, idm")
    mpctx = mp.get_context("spawn")
    rows = []
    for case in cases:
        ref = None
        for impl in impls:
            if (impl == "winograd" and case != "step1") or (impl == "exact" and case != "idm"):
                continue  # winograd: policy single-image steps; exact: the IDM without Winograd
            with mpctx.Pool(1) as pool:
                r = pool.apply(_run_case, (case, impl, dataclasses.asdict(args)))
            logp = r.pop("final_logp")
            if impl == "baseline":
                ref = logp
            r["max_abs_dlogp_vs_baseline"] = float(abs(logp - ref).max()) if ref is not None else None
            rows.append(r)
            print(f"  {case:6s} {impl:9s} {r['fps_cpu']:8.2f} frames/s (CPU)  {r['fps_wall']:8.2f} (wall)  "
                  f"{r['peak_rss_delta_mb']:8.0f} MB  dlogp {r['max_abs_dlogp_vs_baseline']}", flush=True)
    base = {r["case"]: r for r in rows if r["impl"] == "baseline"}
    for r in rows:
        b = base.get(r["case"])
        r["speedup_vs_baseline_cpu"] = r["fps_cpu"] / b["fps_cpu"] if b else None
        if r["case"] in ("idm", "chunk"):
            r["extrapolated_s_128_frames_cpu"] = 128 * r["cpu_s"] / r["frames"]
    print()
    print(f"{'case':7s}{'impl':10s}{'frames/s CPU':>13s}{'frames/s wall':>14s}{'ms/frame CPU':>13s}"
          f"{'peak MB':>9s}{'x baseline':>11s}{'max|dlogp|':>12s}")
    for r in rows:
        sp = f"{r['speedup_vs_baseline_cpu']:.2f}" if r["speedup_vs_baseline_cpu"] else "-"
        dl = f"{r['max_abs_dlogp_vs_baseline']:.1e}" if r["max_abs_dlogp_vs_baseline"] is not None else "-"
        print(f"{r['case']:7s}{r['impl']:10s}{r['fps_cpu']:13.2f}{r['fps_wall']:14.2f}{r['ms_per_frame_cpu']:13.1f}"
              f"{r['peak_rss_delta_mb']:9.0f}{sp:>11s}{dl:>12s}")

    result = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU (shared)",
        "torch": torch.__version__,
        "args": dataclasses.asdict(args),
        "official_reference": OFFICIAL,
        "rows": rows,
        "load_average": os.getloadavg(),
    }
    atomic_write_json(args.out, result)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
