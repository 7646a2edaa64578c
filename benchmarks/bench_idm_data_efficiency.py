"""IDM quality vs amount of labelled data, and the paper's data-efficiency claim (IDM vs BC on true labels).

For each labelled-data size (minutes of game time recorded from the MineLite scripted expert):

1. train an IDM (:func:`vpt_rl.train.idm.train_idm`) on that many minutes of true labels and score it on
   held-out episodes: keypress accuracy (all 20 buttons right; also the mean per-button accuracy) and
   camera R^2 (the paper's two numbers);
2. train a policy by behavioural cloning (:func:`vpt_rl.train.bc.run_bc`) on the same true labels and
   score both models on the same held-out non-null frames with the same joint-action accuracy
   (buttons class of 8641 and camera class of 121 both right). The IDM sees past and future frames, the
   policy only the past: the paper's claim is that the IDM needs far less data for the same accuracy.

Every model gets the same number of optimizer steps whatever the data size (smaller sets get more
epochs). Results: ``benchmarks/results/idm_data_efficiency.json`` and two PNG plots; the exact command is
in ``bench_idm_data_efficiency.sh``.

Run::

    python benchmarks/bench_idm_data_efficiency.py --sizes-min 0.5 1 2 4 --heldout-min 1
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from vpt_rl.actions import env_to_agent, env_to_factored, factored_to_joint
from vpt_rl.atomic import atomic_write_json, atomic_write_text
from vpt_rl.checkpoint import load_idm, load_policy
from vpt_rl.data.contractor import find_segments, load_actions
from vpt_rl.data.dataset import SequenceDataset, make_loader
from vpt_rl.data.record import record_dataset
from vpt_rl.model import idm_argmax
from vpt_rl.plots import save_figure
from vpt_rl.train import bc as bc_mod
from vpt_rl.train import idm as idm_mod
from vpt_rl.train.args import parse_args

HERE = Path(__file__).resolve().parent
TICKS_PER_MIN = 20 * 60


@dataclass
class Args:
    """IDM vs BC data efficiency on MineLite scripted-expert recordings."""

    sizes_min: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0, 4.0])
    """labelled-data sizes in minutes of game time (nested subsets of the training episodes)"""
    heldout_min: float = 1.0
    """held-out minutes (separate world seeds) for the metrics"""
    episode_ticks: int = 600
    """ticks per recorded episode (600 = 30 s); sizes are rounded to whole episodes"""
    data_dir: str = "benchmarks/out/idm_data"
    """where the recordings go (reused when present)"""
    out_dir: str = "benchmarks/out/idm_runs"
    """training runs"""
    results: str = str(HERE / "results" / "idm_data_efficiency.json")
    """results JSON (plots are written next to it)"""
    idm_preset: str = "micro_idm_motion"
    """IDM preset (vpt_rl.model.IDM_PRESETS)"""
    camera_noise: float = 0.5
    """scene-independent camera moves per tick in the recordings (contractor-like data, as the pipeline's
    labelled split); training and held-out episodes alike"""
    idm_steps: int = 60
    """IDM optimizer steps per size"""
    idm_seq_len: int = 32
    """IDM window length"""
    idm_batch: int = 4
    """IDM windows per step"""
    idm_lr: float = 2e-3
    """IDM peak learning rate"""
    bc_preset: str = "micro"
    """policy preset for the BC baseline"""
    bc_steps: int = 100
    """BC optimizer steps per size"""
    bc_seq_len: int = 16
    """BC chunk length"""
    bc_batch: int = 4
    """BC lanes per step"""
    bc_lr: float = 2e-3
    """BC peak learning rate"""
    seed: int = 0
    """base world seed: training episodes use seed + i, held-out ones seed + 10000 + i"""
    prior_init: bool = True
    """start the IDM and BC heads at the label prior (the fix for the collapse to the majority class)"""
    ablate_prior: bool = True
    """also train one IDM at the largest size without prior_init (the pre-fix behaviour) for comparison"""
    skip_bc: bool = False
    """only the IDM curve"""
    threads: int = 1
    """torch intra-op threads (1 is fastest on a loaded shared CPU)"""


def _record(out: Path, episodes: int, seed: int, ticks: int, camera_noise: float = 0.0) -> list[Path]:
    if episodes > 0:
        record_dataset(out, episodes, seed=seed, max_ticks=ticks, camera_noise=camera_noise, progress=False)
    return find_segments(out)


@torch.no_grad()
def idm_joint_eval(model_path: Path, segments, seq_len: int) -> dict:
    """Joint-action accuracy of the IDM's argmax on held-out non-null frames (plus all-frame metrics)."""
    idm = load_idm(model_path, model_path.with_suffix(".weights")).eval()
    ds = SequenceDataset(segments, batch_size=4, seq_len=seq_len, skip_null=False, pack=False, epochs=1, shuffle=False)
    pj_b, pj_c, tj_b, tj_c = [], [], [], []
    for batch in make_loader(ds):
        m = batch["mask"].numpy()
        if not m.any():
            continue
        b, c = idm_argmax(idm(batch["img"]))
        jb, jc = factored_to_joint(b.numpy(), c.numpy())
        pj_b.append(jb[m]), pj_c.append(jc[m])
        tj_b.append(batch["buttons"].numpy()[m]), tj_c.append(batch["camera"].numpy()[m])
    pb, pc, tb, tc = map(np.concatenate, (pj_b, pj_c, tj_b, tj_c))
    keep = ~((tb == 0) & (tc == 60))  # non-null frames: what BC trains and is scored on
    return _joint_scores(pb[keep], pc[keep], tb[keep], tc[keep])


def bc_joint_eval(model_path: Path, segments, seq_len: int, train_segments) -> dict:
    """Joint-action accuracy of the BC policy's argmax on held-out non-null frames (memory carried), with
    :func:`vpt_rl.train.bc.evaluate_bc`."""
    net = load_policy(model_path, model_path.with_suffix(".weights")).eval()
    m = bc_mod.evaluate_bc(net, segments, seq_len, bc_mod.bc_label_counts(train_segments))
    return {"n_frames": m["n_frames"], "joint_accuracy": m["accuracy_joint"],
            "buttons_class_accuracy": m["accuracy_buttons"], "camera_class_accuracy": m["accuracy_camera"],
            "nll": m["nll"], "nll_marginal": m["nll_marginal"]}


def _joint_scores(pb, pc, tb, tc) -> dict:
    return {"n_frames": int(len(tb)), "joint_accuracy": float(((pb == tb) & (pc == tc)).mean()),
            "buttons_class_accuracy": float((pb == tb).mean()), "camera_class_accuracy": float((pc == tc).mean())}


def majority_baseline(segments) -> dict:
    """Scores of the constant "most frequent label" predictor on ``segments`` (the bar to beat)."""
    flags, deg, jb, jc = [], [], [], []
    for mp4 in segments:
        for env_action, is_null in load_actions(Path(mp4).with_suffix(".jsonl")):
            f, _ = env_to_factored(env_action)
            flags.append(np.asarray(f)), deg.append(np.asarray(env_action["camera"], np.float64))
            b, c = env_to_agent(env_action)
            if not is_null and not (b == 0 and c == 60):
                jb.append(int(b)), jc.append(int(c))
    flags, jb, jc = np.array(flags), np.array(jb), np.array(jc)
    maj = (flags.mean(0) > 0.5).astype(int)
    bb, bc_ = np.bincount(jb).argmax(), np.bincount(jc).argmax()
    return {"keypress_accuracy": float((flags == maj).all(1).mean()),
            "button_accuracy": float((flags == maj).mean()), "attack_accuracy": float((flags[:, 0] == maj[0]).mean()),
            "camera_r2": 0.0, "joint_accuracy": float(((jb == bb) & (jc == bc_)).mean())}


def headline(results: dict) -> dict:
    """The numbers ``vpt-rl bench-summary`` shows: the largest size's IDM and BC scores and the majority bar."""
    last, base = results["sizes"][-1], results.get("majority_baseline", {})
    out = {"minutes": last["minutes"], "idm_keypress_accuracy": last["idm"]["keypress_accuracy"],
           "idm_attack_accuracy": last["idm"]["button_accuracy_per_key"]["attack"],
           "idm_camera_r2": last["idm"]["camera_r2"],
           **{f"idm_{k}": last["idm"][k] for k in ("camera_r2_pitch_mean", "camera_r2_yaw_mean") if k in last["idm"]}}
    if "bc" in last:
        out["idm_joint_accuracy"] = last["idm_joint"]["joint_accuracy"]
        out["bc_joint_accuracy"] = last["bc"]["joint_accuracy"]
    for k in ("keypress_accuracy", "attack_accuracy", "joint_accuracy"):
        if k in base:
            out[f"majority_{k}"] = base[k]
    return out


def data_ratio(sizes, idm_acc, bc_acc) -> dict:
    """How much more data BC needs to match the IDM trained on the smallest size (log-linear interpolation
    of BC's accuracy curve); a lower bound when BC never gets there."""
    target = idm_acc[0]
    for i in range(len(sizes)):
        if bc_acc[i] >= target:
            if i == 0:
                return {"ratio": 1.0, "bound": "upper", "target": target}
            x0, x1 = math.log(sizes[i - 1]), math.log(sizes[i])
            y0, y1 = bc_acc[i - 1], bc_acc[i]
            x = x0 + (target - y0) / (y1 - y0) * (x1 - x0) if y1 != y0 else x1
            return {"ratio": math.exp(x) / sizes[0], "bound": "interpolated", "target": target}
    return {"ratio": sizes[-1] / sizes[0], "bound": "lower (BC never reached the IDM's accuracy)", "target": target}


def _minutes_axis(ax, minutes) -> None:
    ax.set_xscale("log")
    ax.set_xticks(minutes)
    ax.set_xticklabels([f"{m:g}" for m in minutes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("labelled data (minutes of game time)")


def plot(results: dict, out_png_idm: Path, out_png_eff: Path) -> None:
    rows = results["sizes"]
    x = [r["minutes"] for r in rows]
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    ax.plot(x, [r["idm"]["keypress_accuracy"] for r in rows], "o-", label="keypress accuracy (all 20 right)")
    ax.plot(x, [r["idm"]["button_accuracy"] for r in rows], "s--", label="per-button accuracy (mean)")
    ax.plot(x, [r["idm"]["camera_r2"] for r in rows], "^-", label="camera R$^2$ (argmax bin)")
    if all("camera_r2_pitch_mean" in r["idm"] for r in rows):
        ax.plot(x, [r["idm"]["camera_r2_pitch_mean"] for r in rows], "v:", label="pitch R$^2$ (posterior mean)")
        ax.plot(x, [r["idm"]["camera_r2_yaw_mean"] for r in rows], ">:", label="yaw R$^2$ (posterior mean)")
    ax.axhline(0.9, color="grey", lw=0.8, ls=":")
    _minutes_axis(ax, x)
    ax.set_ylabel("held-out score")
    ax.set_title("IDM quality vs labelled data (MineLite, contractor-like)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out_png_idm)
    if not all("bc" in r for r in rows):
        return
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    ax.plot(x, [r["idm_joint"]["joint_accuracy"] for r in rows], "o-", label="IDM (past + future frames)")
    ax.plot(x, [r["bc"]["joint_accuracy"] for r in rows], "s-", label="BC policy (past frames)")
    if "majority_baseline" in results:
        ax.axhline(results["majority_baseline"]["joint_accuracy"], color="grey", lw=0.8, ls=":",
                   label="majority action")
    _minutes_axis(ax, x)
    ax.set_ylabel("held-out joint action accuracy")
    ax.set_title("Data efficiency: IDM vs BC on true labels")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out_png_eff)


def main(argv: Optional[list] = None) -> int:
    args = parse_args(Args, argv)
    torch.set_num_threads(max(1, args.threads))
    t_start = time.time()
    sizes = sorted(float(s) for s in args.sizes_min)
    ep_min = args.episode_ticks / TICKS_PER_MIN
    n_train = int(math.ceil(sizes[-1] / ep_min))
    n_held = max(1, int(math.ceil(args.heldout_min / ep_min)))
    data = Path(args.data_dir)
    train_all = _record(data / "train", n_train, args.seed, args.episode_ticks, args.camera_noise)[:n_train]
    held = _record(data / "heldout", n_held, args.seed + 10000, args.episode_ticks, args.camera_noise)[:n_held]
    results = {"args": asdict(args), "machine": "2-core CPU (shared), no GPU", "sizes": [],
               "majority_baseline": majority_baseline(held)}
    res_path = Path(args.results)
    for minutes in sizes:
        k = max(1, int(round(minutes / ep_min)))
        segs = train_all[:k]
        row = {"minutes": k * ep_min, "episodes": k}
        run = Path(args.out_dir) / f"idm_{k}ep"
        t0 = time.time()
        model = idm_mod.train_idm(idm_mod.Args(
            data=[str(s) for s in segs], val_data=[str(s) for s in held], preset=args.idm_preset,
            seq_len=args.idm_seq_len, batch_size=args.idm_batch, total_steps=args.idm_steps, lr=args.idm_lr,
            warmup_steps=max(1, args.idm_steps // 10), eval_every=0, save_every=0, out_dir=str(run), seed=args.seed,
            device="cpu", resume=False, progress=False, prior_init=args.prior_init))
        final = json.loads((run / "metrics.json").read_text())["final"]
        row["idm"] = {k2: v for k2, v in final.items() if k2 != "button_accuracy_per_key"}
        row["idm"]["button_accuracy_per_key"] = final["button_accuracy_per_key"]
        row["idm_train_s"] = round(time.time() - t0, 1)
        if not args.skip_bc:
            row["idm_joint"] = idm_joint_eval(model, held, args.idm_seq_len)
            run_bc = Path(args.out_dir) / f"bc_{k}ep"
            t0 = time.time()
            bc_path, _ = bc_mod.run_bc(bc_mod.Args(
                data=[str(s) for s in segs], preset=args.bc_preset, seq_len=args.bc_seq_len, batch_size=args.bc_batch,
                total_steps=args.bc_steps, lr=args.bc_lr, warmup_steps=max(1, args.bc_steps // 10), save_every=0,
                out_dir=str(run_bc), seed=args.seed, device="cpu", resume=False, progress=False,
                val_data=[str(s) for s in held], eval_every=0,
                prior_init=args.prior_init))
            row["bc_train_s"] = round(time.time() - t0, 1)
            row["bc"] = bc_joint_eval(bc_path, held, args.bc_seq_len, segs)
        results["sizes"].append(row)
        print(json.dumps({"minutes": row["minutes"], "keypress_accuracy": row["idm"]["keypress_accuracy"],
                          "button_accuracy": row["idm"]["button_accuracy"], "camera_r2": row["idm"]["camera_r2"],
                          **({"idm_joint": row["idm_joint"]["joint_accuracy"], "bc_joint": row["bc"]["joint_accuracy"]}
                             if "bc" in row else {})}), flush=True)
        atomic_write_json(res_path, results, indent=1)
    if args.ablate_prior and args.prior_init:
        k = max(1, int(round(sizes[-1] / ep_min)))
        run = Path(args.out_dir) / f"idm_{k}ep_noprior"
        t0 = time.time()
        idm_mod.train_idm(idm_mod.Args(
            data=[str(s) for s in train_all[:k]], val_data=[str(s) for s in held], preset=args.idm_preset,
            seq_len=args.idm_seq_len, batch_size=args.idm_batch, total_steps=args.idm_steps, lr=args.idm_lr,
            warmup_steps=max(1, args.idm_steps // 10), eval_every=0, save_every=0, out_dir=str(run), seed=args.seed,
            device="cpu", resume=False, progress=False, prior_init=False))
        final = json.loads((run / "metrics.json").read_text())["final"]
        results["ablation_no_prior_init"] = {"minutes": k * ep_min, "train_s": round(time.time() - t0, 1),
                                             **{k2: v for k2, v in final.items()}}
        print(json.dumps({"ablation_no_prior_init": {k2: final[k2] for k2 in ("keypress_accuracy", "camera_r2")}}),
              flush=True)
        atomic_write_text(res_path, json.dumps(results, indent=1))
    if not args.skip_bc:
        mins = [r["minutes"] for r in results["sizes"]]
        results["data_efficiency"] = data_ratio(mins, [r["idm_joint"]["joint_accuracy"] for r in results["sizes"]],
                                                [r["bc"]["joint_accuracy"] for r in results["sizes"]])
    results["wall_s"] = round(time.time() - t_start, 1)
    results["headline"] = headline(results)
    res_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(res_path, json.dumps(results, indent=1))
    plot(results, res_path.with_name("idm_data_efficiency_idm.png"), res_path.with_name("idm_data_efficiency_vs_bc.png"))
    print(json.dumps({"results": str(res_path), "data_efficiency": results.get("data_efficiency"),
                      "wall_s": results["wall_s"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
