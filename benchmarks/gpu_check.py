"""GPU check: one prepared run that says whether vpt-rl is right and fast on a GPU (docs/scale-out.md, "GPU check").

Run on one GPU with the exact command of ``benchmarks/gpu_check.sh`` (under 8 minutes on one H200-class GPU)::

    python benchmarks/gpu_check.py --device cuda
    python benchmarks/gpu_check.py --device cuda --official ~/src/Video-Pre-Training   # also time the official code
    python benchmarks/gpu_check.py --device cpu --quick --out-dir /tmp/gc               # tiny sizes, < 1 min (tests)

It prints one table and writes four JSON files (each with a ``headline`` dict, the device, machine and date) under
``--out-dir`` (default ``benchmarks/results``):

* ``gpu_fixtures.json`` (a): the official-code fixtures of ``tests/fixtures/vpt`` (the micro policy in step mode on
  ``policy_expected.pt``, the micro IDM on ``idm_expected.pt``) run on ``--device`` and on the CPU: max
  ``|Δ log p|`` and argmax agreement of the device against the CPU and against the official outputs;
* ``gpu_train_steps.json`` (b): one optimisation step of each training loop on ``--device`` through its real
  entry point: ``train_idm``, ``run_bc``, SB3 ``VPTPPO.learn`` on MineLite and the Sample Factory entry point
  (``skipped: sample_factory not installed`` when it does not import); loss, seconds, peak memory;
* ``gpu_throughput.json`` (c): 1x policy inference frames/s at batch 1, 8 and 64 (one frame per call with the
  memory carried, random weights); IDM labelling frames/s with the 4x IDM (``predict_video``: 128-frame windows,
  stride 64, as ``vpt-rl label``) in fp32, bf16 and fp16 (``torch.autocast``) with the argmax agreement of each
  precision against fp32; BC training samples/s (frames/s) of the 1x policy; SB3 ``VPTPPO`` and Sample Factory
  (async) env steps/s on MineLite with the tiny net and many envs. The networks run in two layouts: ``default``
  (vpt-rl's CPU-tuned fast paths: CNN micro-batches of 8 frames, the IDM 1 frame at a time) and ``whole`` (the CNN
  over all frames at once, ``set_fast(micro_batch=0)``), to show which a GPU wants;
* ``gpu_official.json`` (d, only with ``--official PATH``): the official code (imported at run time from the
  user's checkout of openai/Video-Pre-Training; nothing of it is copied here) timed on the same device: the 1x
  policy at batch 8 and the 4x IDM on the same windows, the speed ratios of vpt-rl to it, and the argmax
  agreement of the two IDMs on the same weights in fp32. Targets: >= 1.5x (policy, batch 8), >= 3x (IDM).

Peak memory is ``torch.cuda.max_memory_allocated`` per case on CUDA, and the process's peak RSS on the CPU.
A case that fails is recorded with its error and the run goes on; the exit code is 1 when any case failed.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import os
import platform
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURES = REPO / "tests" / "fixtures" / "vpt"
sys.path.insert(0, str(HERE))  # sibling benchmark modules (bench_sb3, bench_sample_factory)

from vpt_rl.atomic import atomic_write_json  # noqa: E402
from vpt_rl.checkpoint import build_policy, load_idm, load_policy, write_model_file  # noqa: E402
from vpt_rl.model import IDM_PRESETS, POLICY_PRESETS, IDMNet, idm_argmax  # noqa: E402
from vpt_rl.train.bc import bc_loss  # noqa: E402
from vpt_rl.train.label import predict_video  # noqa: E402

MiB = 2 ** 20
FILES = ("gpu_fixtures.json", "gpu_train_steps.json", "gpu_throughput.json")

# sizes: full (one GPU, < 8 min) and --quick (tiny nets, CPU, < 1 min)
FULL = SimpleNamespace(policy="foundation-model-1x", batches=(1, 8, 64), policy_steps=32, idm="4x_idm",
                       idm_frames=512, idm_batch=4, bc_batch=4, bc_seq=128, bc_steps=3, idm_train="4x_idm",
                       idm_train_seq=16, rl_net="tiny", sb3_envs=16, sb3_steps=64, sb3_iters=2, sf_workers=8,
                       sf_envs_per_worker=4, sf_steps=40_000, sf_rollout=32, precisions=("fp32", "bf16", "fp16"))
QUICK = SimpleNamespace(policy="micro", batches=(1, 8, 64), policy_steps=2, idm="micro_idm", idm_frames=24,
                        idm_batch=2, bc_batch=2, bc_seq=8, bc_steps=1, idm_train="micro_idm", idm_train_seq=8,
                        rl_net="micro", sb3_envs=2, sb3_steps=8, sb3_iters=1, sf_workers=1, sf_envs_per_worker=2,
                        sf_steps=64, sf_rollout=8, precisions=("fp32", "bf16"))
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
LAYOUTS = {"default": None, "whole": 0}  # CNN micro-batch: the net's own default, or all frames in one pass


# ---------------------------------------------------------------------------------------------------
# measuring


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)


def _peak_mib(dev: torch.device) -> float:
    """Peak memory since :func:`_reset_peak`: CUDA allocations on a GPU, the process's peak RSS on the CPU."""
    if dev.type == "cuda":
        return round(torch.cuda.max_memory_allocated(dev) / MiB, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def _seconds(fn, dev: torch.device, reps: int, warmup: int = 1) -> float:
    """Wall seconds per call of ``fn()`` over ``reps`` calls after ``warmup`` untimed ones (device synchronised)."""
    for _ in range(warmup):
        fn()
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    _sync(dev)
    return (time.perf_counter() - t0) / reps


def _autocast(dev: torch.device, precision: str):
    dtype = DTYPES[precision]
    return contextlib.nullcontext() if dtype is None else torch.autocast(dev.type, dtype=dtype)


def _set_layout(net, layout: str):
    if LAYOUTS[layout] is not None:
        net.set_fast(micro_batch=LAYOUTS[layout], winograd=False)
    return net


def _case(rows: list, section: str, case: str, fn) -> dict:
    """Run ``fn()`` -> dict of results into ``rows`` as one row; an exception becomes the row's ``error``."""
    row = {"section": section, "case": case}
    t0 = time.perf_counter()
    try:
        row.update(fn())
        row["ok"] = True
    except Exception as e:  # noqa: BLE001 (a check reports every failure and goes on)
        row.update(ok=False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc(limit=6))
    row["seconds"] = round(time.perf_counter() - t0, 2)
    rows.append(row)
    print(_format_row(row), flush=True)
    return row


def _format_row(row: dict) -> str:
    shown = {k: v for k, v in row.items() if k not in ("section", "case", "ok", "traceback", "seconds")}
    text = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
    status = "ok  " if row["ok"] else ("skip" if row.get("skipped") else "FAIL")
    return f"{status} {row['section']:<10} {row['case']:<34} {row['seconds']:>7.1f}s  {text}"


# ---------------------------------------------------------------------------------------------------
# (a) the official fixtures on the device against the CPU


def _policy_steps(net, img, first, dev):
    state = net.initial_state(img.shape[0], device=dev)
    out_b, out_c = [], []
    with torch.inference_mode():
        for t in range(img.shape[1]):
            logp, _, state = net(img[:, t:t + 1].to(dev), first[:, t:t + 1].to(dev), state)
            out_b.append(logp["buttons"].float().cpu())
            out_c.append(logp["camera"].float().cpu())
    return torch.cat(out_b, 1), torch.cat(out_c, 1)


def _dlogp(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def check_fixtures(dev: torch.device, rows: list) -> None:
    cpu = torch.device("cpu")
    exp_p = torch.load(FIXTURES / "policy_expected.pt", weights_only=True)
    exp_i = torch.load(FIXTURES / "idm_expected.pt", weights_only=True)

    def policy():
        outs = {}
        for name, d in (("cpu", cpu), ("device", dev)):
            net = load_policy(FIXTURES / "policy.model", FIXTURES / "policy.weights", device=d).eval()
            b, c = _policy_steps(net, exp_p["img"], exp_p["first"], d)
            outs[name] = {"buttons": b, "camera": c}
        off = {"buttons": exp_p["step"]["buttons"][:, :, 0], "camera": exp_p["step"]["camera"][:, :, 0]}

        def agree(x, y):
            same = (x["buttons"].argmax(-1) == y["buttons"].argmax(-1)) & (x["camera"].argmax(-1) == y["camera"].argmax(-1))
            return float(same.float().mean())
        return {"max_abs_dlogp_vs_cpu": _dlogp(outs["device"], outs["cpu"]),
                "max_abs_dlogp_vs_official": _dlogp(outs["device"], off),
                "argmax_agreement_vs_cpu": agree(outs["device"], outs["cpu"]),
                "argmax_agreement_vs_official": agree(outs["device"], off), "frames": int(exp_p["img"].shape[:2].numel())}

    def idm():
        outs = {}
        for name, d in (("cpu", cpu), ("device", dev)):
            net = load_idm(FIXTURES / "idm.model", FIXTURES / "idm.weights", device=d).eval()
            with torch.inference_mode():
                outs[name] = {k: v.float().cpu() for k, v in net(exp_i["img"].to(d)).items()}
        b_dev, c_dev = idm_argmax(outs["device"])
        b_cpu, c_cpu = idm_argmax(outs["cpu"])
        b_off, c_off = exp_i["argmax"]["buttons"], exp_i["argmax"]["camera"]

        def agree(b, c, b2, c2):
            return float(torch.cat([(b == b2).flatten(), (c == c2).flatten()]).float().mean())
        return {"max_abs_dlogp_vs_cpu": _dlogp(outs["device"], outs["cpu"]),
                "max_abs_dlogp_vs_official": _dlogp(outs["device"], exp_i["logp"]),
                "argmax_agreement_vs_cpu": agree(b_dev, c_dev, b_cpu, c_cpu),
                "argmax_agreement_vs_official": agree(b_dev, c_dev, b_off, c_off),
                "frames": int(exp_i["img"].shape[1])}

    _case(rows, "fixtures", "policy (micro, step mode)", policy)
    _case(rows, "fixtures", "idm (micro, one window)", idm)


# ---------------------------------------------------------------------------------------------------
# (b) one optimisation step of each training loop


def _sf_missing() -> bool:
    return importlib.util.find_spec("sample_factory") is None


def _sf_device(dev: torch.device) -> str:
    return "gpu" if dev.type == "cuda" else "cpu"


def train_steps(dev: torch.device, size, tmp: Path, rows: list) -> None:
    import json

    from vpt_rl.data.synthetic import write_synthetic_segment

    data = tmp / "data"
    for i in range(2):
        write_synthetic_segment(data / f"seg{i}", 48, seed=10 + i, press_prob=0.2, camera_prob=0.3)

    def idm():
        from vpt_rl.train.idm import Args, train_idm

        _reset_peak(dev)
        out = tmp / "idm"
        train_idm(Args(data=[str(data)], val_data=[str(data)], preset=size.idm_train, seq_len=size.idm_train_seq,
                       batch_size=1, total_steps=1, warmup_steps=0, eval_every=0, save_every=0, out_dir=str(out),
                       device=str(dev), progress=False))
        final = json.loads((out / "metrics.json").read_text())["final"]  # held-out scores after the step
        net = load_idm(out / "idm.model", out / "idm.weights")
        if not all(torch.isfinite(v).all() for v in net.state_dict().values()):
            raise RuntimeError("non-finite IDM weights after one step")
        return {"preset": size.idm_train, "keypress_accuracy": float(final["keypress_accuracy"]),
                "n_frames": int(final["n_frames"]), "peak_mem_mib": _peak_mib(dev)}

    def bc():
        from vpt_rl.train.bc import Args, run_bc

        _reset_peak(dev)
        out = tmp / "bc"
        _, net = run_bc(Args(data=[str(data)], preset=size.policy, batch_size=2, seq_len=size.idm_train_seq,
                             total_steps=1, warmup_steps=0, save_every=0, eval_every=0, val_fraction=0.0,
                             log_every=1, out_dir=str(out), device=str(dev), progress=False, prior_init=False))
        hist = json.loads((out / "metrics.json").read_text())["history"]
        return {"preset": size.policy, "loss": float(hist[-1]["loss"]), "param_device": str(next(net.parameters()).device),
                "peak_mem_mib": _peak_mib(dev)}

    def sb3():
        from vpt_rl.policies.sb3 import VPTPPO, VPTPolicy, make_vpt_vec_env

        _reset_peak(dev)
        venv = make_vpt_vec_env("vpt_rl/MineLite-v0", n_envs=2, seed=0, max_steps=64)
        try:
            algo = VPTPPO(VPTPolicy, venv, n_steps=8, n_epochs=1, batch_size=16, chunk_len=8, kl_coef=0.2,
                          policy_kwargs=dict(config="micro"), seed=0, device=str(dev))
            algo.learn(16)
            loss = algo.logger.name_to_value.get("train/loss")
        finally:
            venv.close()
        return {"preset": "micro", "env_steps": int(algo.num_timesteps), "loss": None if loss is None else float(loss),
                "param_device": str(next(algo.policy.parameters()).device), "peak_mem_mib": _peak_mib(dev)}

    def sf():
        if _sf_missing():
            return {"skipped": "sample_factory not installed"}
        import subprocess

        cmd = [sys.executable, "-m", "vpt_rl.policies.sample_factory.train", "--env", "vpt_minelite",
               "--experiment", "gpu_check_step", "--train_dir", str(tmp / "sf"), "--preset", "micro",
               "--rollout", "8", "--batch_size", "16", "--num_envs_per_worker", "2", "--num_workers", "1",
               "--episode_steps", "32", "--train_for_env_steps", "16", "--serial_mode", "True", "--async_rl", "False",
               "--save_every_sec", "100000", "--device", _sf_device(dev), "--seed", "0"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
                              timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"exit code {proc.returncode}: {proc.stderr[-1500:]}")
        ckpts = sorted((tmp / "sf" / "gpu_check_step").glob("checkpoint_p0/checkpoint_*.pth"))
        if not ckpts:
            raise RuntimeError("the run wrote no checkpoint")
        state = torch.load(ckpts[-1], map_location="cpu", weights_only=True)
        return {"preset": "micro", "env_steps": int(state["env_steps"]), "train_step": int(state.get("train_step", 0)),
                "sf_device": _sf_device(dev)}

    _case(rows, "train", "train-idm (1 step)", idm)
    _case(rows, "train", "train-bc (1 step)", bc)
    _case(rows, "train", "sb3 VPTPPO (1 iteration)", sb3)
    row = _case(rows, "train", "sample factory (1 iteration)", sf)
    if row.get("skipped"):
        row["ok"] = True


# ---------------------------------------------------------------------------------------------------
# (c) throughput


def _uint8_frames(shape, seed: int, dev=None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
    return x if dev is None else x.to(dev)


def policy_fps(net, dev: torch.device, batch: int, steps: int) -> dict:
    """Frames/s of ``net`` fed one frame per call at ``batch`` with the memory carried (what an agent does)."""
    img = _uint8_frames((batch, 1, 128, 128, 3), seed=batch, dev=dev)
    first = torch.zeros(batch, 1, dtype=torch.bool, device=dev)
    state = [net.initial_state(batch, device=dev)]

    def step():
        _, _, state[0] = net(img, first, state[0])
    _reset_peak(dev)
    with torch.inference_mode():
        sec = _seconds(step, dev, steps, warmup=2)
    return {"frames_per_s": batch / sec, "peak_mem_mib": _peak_mib(dev)}


def idm_label_fps(net, frames: np.ndarray, dev, batch: int, precision: str, reference=None) -> tuple[dict, tuple]:
    """Frames/s of :func:`vpt_rl.train.label.predict_video` (what ``vpt-rl label`` runs per video) and, against
    ``reference`` (the fp32 labels), the share of identical button and camera argmax labels."""
    timesteps = net.cfg.timesteps
    out = []

    def run():
        with _autocast(dev, precision):
            out[:] = [predict_video(net, frames, timesteps, batch_size=batch, device=dev)]
    _reset_peak(dev)
    with torch.inference_mode():
        sec = _seconds(run, dev, reps=1, warmup=1)
    row = {"frames_per_s": len(frames) / sec, "peak_mem_mib": _peak_mib(dev)}
    if reference is not None:
        b, c = out[0]
        row["argmax_agreement_vs_fp32"] = float(np.concatenate([(b == reference[0]).ravel(),
                                                                (c == reference[1]).ravel()]).mean())
    return row, out[0]


def bc_samples_per_s(net, dev, batch: int, seq: int, steps: int, precision: str) -> dict:
    """Training frames/s of BC on the policy: forward over ``batch`` x ``seq`` frames, loss, backward, AdamW step."""
    net.train()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-5)
    img = _uint8_frames((batch, seq, 128, 128, 3), seed=1, dev=dev)
    first = torch.zeros(batch, seq, dtype=torch.bool, device=dev)
    first[:, 0] = True
    g = torch.Generator().manual_seed(2)
    buttons = torch.randint(0, 8641, (batch, seq), generator=g).to(dev)
    camera = torch.randint(0, 121, (batch, seq), generator=g).to(dev)
    mask = torch.ones(batch, seq, dtype=torch.bool, device=dev)
    losses = []

    def step():
        with _autocast(dev, precision):
            logp, _, _ = net(img, first, net.initial_state(batch, device=dev))
            loss = bc_loss({k: v.float() for k, v in logp.items()}, buttons, camera, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    _reset_peak(dev)
    sec = _seconds(step, dev, steps, warmup=1)
    if not all(np.isfinite(losses)):
        raise RuntimeError(f"non-finite BC loss: {losses}")
    return {"samples_per_s": batch * seq / sec, "loss": losses[-1], "peak_mem_mib": _peak_mib(dev)}


def filter_fps(dev, n_frames: int) -> dict:
    """Frames/s of the clean-footage filter's scoring (``vpt-rl filter``'s forward passes, batch 256, the default
    small CNN), beside the IDM's labelling frames/s."""
    from vpt_rl.train.filter_model import build_filter, score_frames

    torch.manual_seed(0)
    filt = build_filter("cnn", width=16, device=dev)
    frames = _uint8_frames((max(n_frames, 256), 128, 128, 3), seed=11).numpy()
    _reset_peak(dev)
    sec = _seconds(lambda: score_frames(filt, frames, 256, dev), dev, reps=2, warmup=1)
    return {"frames_per_s": len(frames) / sec, "batch": 256, "peak_mem_mib": _peak_mib(dev)}


def sb3_env_steps(dev, size) -> dict:
    from bench_sb3 import time_iteration

    from vpt_rl.policies.sb3 import VPTPPO, VPTPolicy, make_vpt_vec_env

    venv = make_vpt_vec_env("vpt_rl/MineLite-v0", n_envs=size.sb3_envs, seed=0, max_steps=500)
    try:
        chunk = min(16, POLICY_PRESETS[size.rl_net].timesteps, size.sb3_steps)
        algo = VPTPPO(VPTPolicy, venv, n_steps=size.sb3_steps, n_epochs=1, batch_size=size.sb3_steps, chunk_len=chunk,
                      kl_coef=0.2, policy_kwargs=dict(config=size.rl_net), seed=0, device=str(dev))
        _reset_peak(dev)
        t = time_iteration(algo, size.sb3_iters, warmup=True)
    finally:
        venv.close()
    return {"preset": size.rl_net, "n_envs": size.sb3_envs, "env_steps_per_s": t["iteration_steps_per_s"],
            "rollout_steps_per_s": t["rollout_steps_per_s"], "peak_mem_mib": _peak_mib(dev)}


def sf_env_steps(dev, size, tmp: Path, quick: bool) -> dict:
    if _sf_missing():
        return {"skipped": "sample_factory not installed"}
    if quick:  # its start-up alone takes ~15 s on a small CPU; the train part's SF iteration covers the code path
        return {"skipped": "--quick"}
    from bench_sample_factory import run_sf

    args = SimpleNamespace(envs_per_worker=size.sf_envs_per_worker, episode_steps=500, rollout=size.sf_rollout,
                           steps=size.sf_steps, kl_coef=0.2, seed=0, model_args=["--preset", size.rl_net],
                           sf_extra=f"--device {_sf_device(dev)} --experiment_summaries_interval 1")
    t0 = time.perf_counter()
    r = run_sf(args, size.sf_workers, serial=False, train_dir=tmp / "sf_bench")
    rate = r["env_steps_per_s"]
    if not np.isfinite(rate):  # too short for two learner summaries: steps over the whole run's wall time
        rate = size.sf_steps / (time.perf_counter() - t0)
    return {"preset": size.rl_net, "mode": "async", "workers": size.sf_workers, "n_envs": r["envs"],
            "env_steps_per_s": float(rate)}


def throughput(dev: torch.device, size, tmp: Path, rows: list) -> None:
    torch.manual_seed(0)
    policy = build_policy(preset=size.policy, device=dev).eval()
    for layout in LAYOUTS:
        for b in size.batches:
            _case(rows, "policy", f"{size.policy} b{b} {layout}",
                  lambda b=b, layout=layout: {"batch": b, **policy_fps(_set_layout(policy, layout), dev, b,
                                                                        size.policy_steps)})
    policy.set_fast()
    policy = None  # free its memory before the next case

    idm = IDMNet(IDM_PRESETS[size.idm]).to(dev).eval()
    frames = _uint8_frames((size.idm_frames, 128, 128, 3), seed=7).numpy()
    for layout in LAYOUTS:
        _set_layout(idm, layout)
        reference = None
        for precision in size.precisions:
            holder = {}

            def run(precision=precision, reference=reference):
                row, labels = idm_label_fps(idm, frames, dev, size.idm_batch, precision, reference)
                holder["labels"] = labels
                return {"precision": precision, "window": idm.cfg.timesteps, "frames": len(frames), **row}
            _case(rows, "idm_label", f"{size.idm} {precision} {layout}", run)
            if precision == "fp32":
                reference = holder.get("labels")
        idm.set_fast()
    idm = None

    torch.manual_seed(0)
    bc_net = build_policy(preset=size.policy, device=dev)
    for precision in ("fp32", "bf16"):
        _case(rows, "bc", f"{size.policy} b{size.bc_batch}x{size.bc_seq} {precision}",
              lambda precision=precision: {"precision": precision,
                                           **bc_samples_per_s(bc_net, dev, size.bc_batch, size.bc_seq, size.bc_steps,
                                                              precision)})
    bc_net = None
    _case(rows, "filter", "frame filter cnn w16 b256", lambda: filter_fps(dev, size.idm_frames))
    _case(rows, "rl", f"sb3 VPTPPO {size.rl_net} x{size.sb3_envs} envs", lambda: sb3_env_steps(dev, size))
    row = _case(rows, "rl", f"sample factory async {size.rl_net}", lambda: sf_env_steps(dev, size, tmp, quick=size is QUICK))
    if row.get("skipped"):
        row["ok"] = True


# ---------------------------------------------------------------------------------------------------
# (d) the official code, imported from the user's checkout


def _to(x, dev):
    if isinstance(x, torch.Tensor):
        return x.to(dev)
    if isinstance(x, (list, tuple)):
        return type(x)(_to(v, dev) for v in x)
    return x


def official(path: Path, dev: torch.device, size, tmp: Path, rows: list, ours: dict) -> None:
    """Time the official policy (batch 8, step mode) and IDM (same windows) from ``path`` on ``dev``."""
    if not (path / "lib" / "policy.py").is_file():
        raise FileNotFoundError(f"--official {path}: expected a checkout of openai/Video-Pre-Training (lib/policy.py)")
    sys.path.insert(0, str(path))
    from gym3.types import DictType  # the official code's own dependency
    from lib.action_mapping import CameraHierarchicalMapping, IDMActionMapping
    from lib.policy import InverseActionPolicy, MinecraftAgentPolicy

    def policy_b8():
        torch.manual_seed(0)
        space = DictType(**CameraHierarchicalMapping(n_camera_bins=11).get_action_space_update())
        net = MinecraftAgentPolicy(action_space=space, policy_kwargs=POLICY_PRESETS[size.policy].to_kwargs(),
                                   pi_head_kwargs={"temperature": 1.0}).to(dev).eval()
        img = _uint8_frames((8, 128, 128, 3), seed=8, dev=dev)
        first = torch.zeros(8, dtype=torch.bool, device=dev)
        state = [_to(net.initial_state(8), dev)]

        def step():
            _, state[0], _ = net.act({"img": img}, first, state[0])
        _reset_peak(dev)
        with torch.no_grad():  # as the official agent
            sec = _seconds(step, dev, size.policy_steps, warmup=2)
        fps = 8 / sec
        row = {"frames_per_s": fps, "peak_mem_mib": _peak_mib(dev)}
        if ours.get("policy_b8"):
            row["vpt_rl_speedup"] = ours["policy_b8"] / fps
        return row

    def idm_windows():
        torch.manual_seed(0)
        cfg = IDM_PRESETS[size.idm]
        space = DictType(**IDMActionMapping(n_camera_bins=11).get_action_space_update())
        net = InverseActionPolicy(action_space=space, pi_head_kwargs={"temperature": 1.0},
                                  idm_net_kwargs=cfg.to_kwargs()).to(dev).eval()
        t = cfg.timesteps
        img = _uint8_frames((size.idm_batch, t, 128, 128, 3), seed=9, dev=dev)
        first = torch.zeros(size.idm_batch, t, dtype=torch.bool, device=dev)
        out = []

        def run():
            (pd, _, _), _ = net(obs={"img": img}, first=first, state_in=_to(net.initial_state(size.idm_batch), dev))
            out[:] = [pd]
        _reset_peak(dev)
        with torch.no_grad():
            sec = _seconds(run, dev, reps=2, warmup=1)
        official_fps = size.idm_batch * t / sec
        peak = _peak_mib(dev)
        # vpt-rl's IDM with the same weights, on the same windows, fp32: its speed and its argmax labels
        write_model_file(tmp / "off_idm.model", cfg.to_kwargs(), 1.0)
        torch.save(net.state_dict(), tmp / "off_idm.weights")
        mine = load_idm(tmp / "off_idm.model", tmp / "off_idm.weights", device=dev).eval()
        _set_layout(mine, "whole" if dev.type == "cuda" else "default")
        got = []

        def run_mine():
            got[:] = [mine(img)]
        _reset_peak(dev)
        with torch.inference_mode():
            sec_mine = _seconds(run_mine, dev, reps=2, warmup=1)
        b, c = idm_argmax(got[0])
        b_off, c_off = idm_argmax({"buttons": out[0]["buttons"].float(), "camera": out[0]["camera"].float()})
        agree = float(torch.cat([(b == b_off).flatten(), (c == c_off).flatten()]).float().mean())
        fps_mine = size.idm_batch * t / sec_mine
        return {"frames_per_s": official_fps, "peak_mem_mib": peak, "vpt_rl_frames_per_s": fps_mine,
                "vpt_rl_peak_mem_mib": _peak_mib(dev), "vpt_rl_speedup": fps_mine / official_fps,
                "argmax_agreement_fp32": agree}

    _case(rows, "official", f"official {size.policy} b8", policy_b8)
    _case(rows, "official", f"official {size.idm} {size.idm_batch}x{IDM_PRESETS[size.idm].timesteps} frames",
          idm_windows)


# ---------------------------------------------------------------------------------------------------


def _headline(rows: list, section: str) -> dict:
    """``{"<case> <metric>": value}`` of the rows of ``section`` (numbers only), the convention of bench-summary."""
    out = {}
    for r in rows:
        if r["section"] != section:
            continue
        for k, v in r.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "seconds":
                out[f"{r['case']} {k}"] = round(float(v), 6)
        if not r["ok"]:
            out[f"{r['case']} error"] = r["error"]
        if r.get("skipped"):
            out[f"{r['case']} skipped"] = r["skipped"]
    return out


def _meta(dev: torch.device, quick: bool) -> dict:
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    return {"date": datetime.date.today().isoformat(), "device": str(dev), "device_name": name, "quick": quick,
            "machine": f"{platform.node()}, {os.cpu_count()} cores", "torch": torch.__version__,
            "peak_mem_kind": "torch.cuda.max_memory_allocated per case" if dev.type == "cuda"
            else "process peak RSS (cumulative)"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="torch device: cuda, cuda:N or cpu (default: cuda)")
    p.add_argument("--quick", action="store_true", help="tiny nets and sizes (a CPU smoke run, under a minute)")
    p.add_argument("--official", default=None, help="a checkout of openai/Video-Pre-Training to time against")
    p.add_argument("--out-dir", default=str(HERE / "results"), help="where the gpu_*.json files go")
    p.add_argument("--parts", default="fixtures,train,throughput",
                   help="comma-separated subset of fixtures, train, throughput (official runs when --official is given)")
    args = p.parse_args(argv)
    try:
        dev = torch.device(args.device)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cuda", "cpu"):
        print(f"gpu_check: --device {args.device!r}: expected cuda, cuda:N or cpu", file=sys.stderr)
        return 2
    if dev.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: --device {args.device}, but CUDA is not available here (use --device cpu --quick)",
              file=sys.stderr)
        return 2
    parts = [s for s in args.parts.split(",") if s]
    unknown = set(parts) - {"fixtures", "train", "throughput"}
    if unknown:
        print(f"gpu_check: --parts {args.parts!r}: unknown {sorted(unknown)}; expected fixtures, train, throughput",
              file=sys.stderr)
        return 2
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    size = QUICK if args.quick else FULL
    out_dir = Path(args.out_dir)
    rows: list = []
    print(f"{'':4} {'section':<10} {'case':<34} {'time':>8}  results", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        tmp = Path(tmp)
        if "fixtures" in parts:
            check_fixtures(dev, rows)
        if "train" in parts:
            train_steps(dev, size, tmp, rows)
        if "throughput" in parts:
            throughput(dev, size, tmp, rows)
        if args.official:
            ours = {"policy_b8": next((r["frames_per_s"] for r in rows if r["section"] == "policy" and r.get("batch") == 8
                                       and r["ok"] and r["case"].endswith("whole" if dev.type == "cuda" else "default")),
                                      None)}
            try:
                official(Path(args.official).expanduser(), dev, size, tmp, rows, ours)
            except Exception as e:  # noqa: BLE001 (no checkout, or its dependencies missing: say so, keep the rest)
                rows.append({"section": "official", "case": "import", "ok": False, "seconds": 0.0,
                             "error": f"{type(e).__name__}: {e}"})
                print(_format_row(rows[-1]))
    meta = _meta(dev, args.quick)
    files = {"gpu_fixtures.json": ["fixtures"], "gpu_train_steps.json": ["train"],
             "gpu_throughput.json": ["policy", "idm_label", "bc", "filter", "rl"]}
    if args.official:
        files["gpu_official.json"] = ["official"]
    for name, sections in files.items():
        picked = [r for r in rows if r["section"] in sections]
        if not picked:
            continue
        headline = {}
        for s in sections:
            headline.update(_headline(rows, s))
        atomic_write_json(out_dir / name, {**meta, "headline": headline, "rows": picked}, indent=1)
        print(f"wrote {out_dir / name}")
    failed = [r for r in rows if not r["ok"]]
    if failed:
        print(f"{len(failed)} case(s) failed: " + "; ".join(f"{r['case']}: {r['error']}" for r in failed),
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
