"""How far reduced-precision inference (``--precision bf16``) moves the VPT networks' outputs.

Runs the official fixture checkpoints (``tests/fixtures/vpt``: the micro policy over 2 envs x 14 frames with the
memory carried, one frame per call and in one chunk, and the micro IDM over its 8-frame window) in fp32 and under
``vpt_rl.train.runtime.autocast(device, precision)``, and reports max / mean |d log p|, the value change and the
share of argmax actions kept. Run: ``python benchmarks/bench_precision.py`` (the exact command is in
``benchmarks/bench_precision.sh``); writes ``benchmarks/results/precision_bf16.json``. docs/performance.md
("Reduced precision") reports it and ``tests/test_precision.py`` asserts bounds taken from it.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from vpt_rl.atomic import atomic_write_json
from vpt_rl.checkpoint import load_idm, load_policy
from vpt_rl.train.args import parse_args
from vpt_rl.train.runtime import autocast, resolve_device

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "vpt"


@dataclass
class Args:
    precision: str = "bf16"
    """the reduced precision to compare with fp32: bf16 (CPU or GPU) or fp16 (GPU only)"""
    device: str = "cpu"
    """torch device: auto, cpu, cuda or cuda:N"""
    out: str = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "precision_bf16.json")
    """where the JSON result goes"""


def _policy_run(net, exp, chunk, precision, device):
    state, outs = net.initial_state(2, device=device), []
    with torch.no_grad():
        for i in range(0, exp["img"].shape[1], chunk):
            img, first = exp["img"][:, i:i + chunk].to(device), exp["first"][:, i:i + chunk].to(device)
            with autocast(device, precision):
                logp, vpred, state = net(img, first, state)
            state = [(m, k.float(), v.float()) for m, k, v in state]
            outs.append((logp["buttons"].float(), logp["camera"].float(), vpred.float()))
    return [torch.cat([o[j] for o in outs], dim=1).cpu() for j in range(3)]


def _compare(ref: torch.Tensor, low: torch.Tensor) -> dict:
    d = (low - ref).abs()
    kept = low.argmax(-1) == ref.argmax(-1)
    top = ref.topk(2, dim=-1).values
    lead = top[..., 0] - top[..., 1]
    return {"max_abs_dlogp": round(d.max().item(), 4), "mean_abs_dlogp": round(d.mean().item(), 4),
            "argmax_kept": int(kept.sum()), "argmax_total": kept.numel(),
            "argmax_kept_share": round(kept.float().mean().item(), 4),
            "fp32_lead_of_flipped": [round(x, 5) for x in lead[~kept].tolist()]}


def main(argv=None) -> dict:
    args = parse_args(Args, argv, prog="python benchmarks/bench_precision.py")
    device = resolve_device(args.device)
    torch.set_num_threads(1)
    results = {}
    exp = torch.load(FIXTURES / "policy_expected.pt", weights_only=True)
    net = load_policy(FIXTURES / "policy.model", FIXTURES / "policy.weights", device=device).eval()
    for chunk, name in ((1, "policy_step_by_step"), (exp["img"].shape[1], "policy_one_chunk")):
        b32, c32, v32 = _policy_run(net, exp, chunk, "fp32", device)
        b16, c16, v16 = _policy_run(net, exp, chunk, args.precision, device)
        results[name] = {"buttons": _compare(b32, b16), "camera": _compare(c32, c16),
                         "max_abs_dvpred": round((v16 - v32).abs().max().item(), 4),
                         "fp32_vs_official_max_abs_dlogp": (b32 - exp["step"]["buttons"][:, :, 0]).abs().max().item()}
    iexp = torch.load(FIXTURES / "idm_expected.pt", weights_only=True)
    idm = load_idm(FIXTURES / "idm.model", FIXTURES / "idm.weights", device=device).eval()
    with torch.no_grad():
        ref = idm(iexp["img"].to(device))
        with autocast(device, args.precision):
            low = idm(iexp["img"].to(device))
    results["idm"] = {h: _compare(ref[h].float().cpu(), low[h].float().cpu()) for h in ("buttons", "camera")}
    step = results["policy_step_by_step"]
    result = {
        "benchmark": "precision",
        "date": datetime.date.today().isoformat(),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "device": str(device),
                    "torch": torch.__version__},
        "args": dataclasses.asdict(args),
        "results": results,
        "headline": {
            "policy_max_abs_dlogp": max(step["buttons"]["max_abs_dlogp"], step["camera"]["max_abs_dlogp"]),
            "policy_argmax_kept_share": min(step["buttons"]["argmax_kept_share"], step["camera"]["argmax_kept_share"]),
            "idm_max_abs_dlogp": max(results["idm"][h]["max_abs_dlogp"] for h in ("buttons", "camera")),
            "idm_argmax_kept_share": min(results["idm"][h]["argmax_kept_share"] for h in ("buttons", "camera")),
        },
    }
    atomic_write_json(args.out, result, indent=1)
    for name, row in results.items():
        print(name, {k: v for k, v in row.items()})
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
