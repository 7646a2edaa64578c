"""Does the clean-footage filter help the foundation model? BC from filtered vs unfiltered pseudo-labels.

Two arms of ``vpt-rl pipeline`` on the same web-like recording, the same IDM, the same BC steps and the same
evaluation seeds; they differ only in the ``filter`` knob:

* ``filtered``: the filter stage cuts the unlabelled videos into clean spans; ``label`` labels only those, and BC
  clones only them;
* ``unfiltered``: ``filter=off``: every frame is labelled and cloned, the unclean footage (face-cams, logos,
  borders, pause menus, creative inventories) included.

Both arms hold the same clean frames (the unfiltered arm has the unclean ones besides; the filtered arm loses the
clean frames the filter removed by mistake, counted in the JSON). The shared stages (record, split, idm) run once,
in ``OUT/filtered``; that folder is then copied to ``OUT/unfiltered`` and the two arms' remaining stages run as two
processes side by side. Scores: the zero-shot foundation model's milestone rates on the pipeline's held-out
evaluation seeds (no RL: ``rl_steps`` is irrelevant here and set small). Writes ``benchmarks/results/filter_bc.json``
and ``filter_bc.png``.

    python benchmarks/bench_filter_bc.py                               # small preset, web_like_rate=1.0
    python benchmarks/bench_filter_bc.py --preset smoke                # minutes, numbers meaningless
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = "record,split,filter,idm"
ARM_STAGES = "filter,label,bc,finetune,rl,eval"


def _pipeline_cmd(out: Path, preset: str, sets: list, stages: str, seed: int) -> list:
    cmd = [sys.executable, "-m", "vpt_rl.pipeline", "--out", str(out), "--preset", preset, "--stages", stages,
           "--seed", str(seed), "--threads", "1"]
    for item in sets:
        cmd += ["--set", item]
    return cmd


def _marker(out: Path, stage: str) -> dict:
    p = out / ".stages" / f"{stage}.done"
    return json.loads(p.read_text()) if p.is_file() else {}


def _arm_numbers(out: Path) -> dict:
    from vpt_rl.data.clean_spans import read_spans, spans_mask
    from vpt_rl.data.weblike import read_sidecar, unclean_mask

    unl, truth = out / "data" / "unlabelled", out / "data" / "heldout_truth"
    clean = unclean = 0
    for mp4 in sorted(unl.glob("*.mp4")):
        gt = read_sidecar(truth / mp4.name) if (truth / (mp4.stem + ".clean.json")).is_file() else None
        n = gt["n_frames"] if gt else sum(1 for _ in open(truth / (mp4.stem + ".jsonl")))
        used = spans_mask(read_spans(mp4), n)
        bad = unclean_mask(gt) if gt else used & False
        clean += int((used & ~bad).sum())
        unclean += int((used & bad).sum())
    ev = json.loads((out / "eval" / "foundation.json").read_text()) if (out / "eval" / "foundation.json").is_file() else {}
    return {"bc_clean_frames": clean, "bc_unclean_frames": unclean,
            "label": _marker(out, "label").get("summary", {}), "filter": _marker(out, "filter").get("summary", {}),
            "bc": _marker(out, "bc").get("summary", {}),
            "foundation": {k: ev.get(k) for k in ("success", "success_ci", "mean_return", "return_ci95", "episodes",
                                                  "max_ticks")}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--out", default=str(HERE / "out" / "filter_bc"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE", help="override a knob in both arms")
    p.add_argument("--results", default=str(HERE / "results"))
    args = p.parse_args(argv)
    sets = ["web_like_rate=1.0", "rl_steps=512", *args.set]
    out = Path(args.out)
    on, off = out / "filtered", out / "unfiltered"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.time()
    print(f"[filter_bc] shared stages ({SHARED}) in {on}", flush=True)
    subprocess.run(_pipeline_cmd(on, args.preset, sets + ["filter=on"], SHARED, args.seed), check=True, env=env)
    if not (off / ".stages" / "idm.done").is_file():
        if off.exists():
            shutil.rmtree(off)
        shutil.copytree(on, off, symlinks=True)
    print(f"[filter_bc] arms ({ARM_STAGES}) side by side", flush=True)
    procs = [subprocess.Popen(_pipeline_cmd(d, args.preset, sets + [f"filter={mode}"], ARM_STAGES, args.seed),
                              env=env, stdout=open(d.parent / f"{d.name}.log", "a"), stderr=subprocess.STDOUT)
             for d, mode in ((on, "on"), (off, "off"))]
    codes = [pr.wait() for pr in procs]
    if any(codes):
        print(f"[filter_bc] an arm failed (exit codes {codes}); see {out}/*.log", file=sys.stderr)
        return 1
    arms = {"filtered": _arm_numbers(on), "unfiltered": _arm_numbers(off)}
    result = {"benchmark": "filter_bc", "preset": args.preset, "overrides": sets, "seed": args.seed,
              "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU",
              "wall_seconds": round(time.time() - t0, 1), "arms": arms}
    result["headline"] = {f"{name} {k}": v for name, a in arms.items() for k, v in (
        ("bc_clean_frames", a["bc_clean_frames"]), ("bc_unclean_frames", a["bc_unclean_frames"]),
        ("zero-shot log rate", (a["foundation"]["success"] or {}).get("log")),
        ("zero-shot mean return", a["foundation"]["mean_return"]))}
    res_dir = Path(args.results)
    res_dir.mkdir(parents=True, exist_ok=True)
    from vpt_rl.atomic import atomic_write_json

    atomic_write_json(res_dir / "filter_bc.json", result, indent=1)
    ms = _shown_milestones(arms)
    print("\n| arm | BC clean frames | BC unclean frames | " + " | ".join(ms) + " | mean return |")
    print("|---|---|---|" + "---|" * len(ms) + "---|")
    for name, a in arms.items():
        f = a["foundation"]
        rates = " | ".join(f"{100 * (f['success'] or {}).get(m, 0):.0f}%" for m in ms)
        print(f"| {name} | {a['bc_clean_frames']} | {a['bc_unclean_frames']} | {rates} | {f['mean_return']:.3f} |")
    _plot(arms, ms, res_dir / "filter_bc.png")
    print(f"\nwrote {res_dir / 'filter_bc.json'} and filter_bc.png")
    return 0


def _shown_milestones(arms: dict) -> list:
    """The milestones either arm reached at least once, in tech-tree order (at least the first three)."""
    from vpt_rl.evaluate import order_milestones

    order = order_milestones({m for a in arms.values() for m in (a["foundation"]["success"] or {})})
    reached = [m for m in order if any((a["foundation"]["success"] or {}).get(m) for a in arms.values())]
    return reached if len(reached) >= 3 else order[:3]


def _plot(arms: dict, ms: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.38
    for i, (name, a) in enumerate(arms.items()):
        f = a["foundation"]
        rates = [(f["success"] or {}).get(m, 0.0) for m in ms]
        ci = [(f.get("success_ci") or {}).get(m) for m in ms]
        err = np.array([[r - c[0], c[1] - r] if c else [0, 0] for r, c in zip(rates, ci)]).T
        ax.bar(np.arange(len(ms)) + (i - 0.5) * width, rates, width, yerr=err, capsize=3,
               label=f"{name} ({a['bc_clean_frames']} clean + {a['bc_unclean_frames']} unclean frames)")
    ax.set_xticks(np.arange(len(ms)), ms)
    ax.set_ylabel("zero-shot success rate")
    ax.set_ylim(0, 1)
    ax.set_title("Foundation model cloned from filtered vs unfiltered pseudo-labels")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
