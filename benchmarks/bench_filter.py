"""The clean-footage filter on held-out web-like video: frame precision / recall, and throughput beside labelling.

1. Records web-like MineLite footage (``vpt-rl record --web-like 1.0``): ``--train-episodes`` episodes to draw the
   labelled frames from, and ``--heldout-episodes`` on other world seeds that no stage trains on.
2. Trains the filter (``vpt-rl train-filter``: the small CNN by default; ``--vpt-model`` adds a second arm, the
   linear probe on that policy's frozen encoder) on ``--frames`` labelled frames.
3. Filters the held-out videos (``vpt-rl filter``: scores, smoothing, spans) and compares the frames kept with the
   ground truth: precision and recall of the clean frames kept, and of the unclean frames removed, with the
   share removed of each kind. Baselines in the same conditions: keep everything (no filter), and the raw
   classifier without smoothing.
4. Throughput on this machine: ``vpt-rl filter`` frames/s (decode + score + spans, batch 256), against ``vpt-rl
   label`` frames/s of the pipeline's IDM (``micro_idm_motion``, 32-frame windows) and of the released 4x IDM
   config (128-frame windows) on the same videos.

Writes ``benchmarks/results/filter.json`` and ``filter.png`` (kept/removed per kind, and one held-out video's
scores over time against its ground truth).

    python benchmarks/bench_filter.py                       # what bench_filter.sh runs
    python benchmarks/bench_filter.py --train-episodes 4 --heldout-episodes 2 --steps 100   # a quick look
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def _truth(videos):
    from vpt_rl.data.weblike import frame_kinds, read_sidecar

    return [frame_kinds(read_sidecar(mp4)) for mp4 in videos]


def _quality(videos, kinds, spans_of) -> dict:
    from vpt_rl.data.clean_spans import spans_mask
    from vpt_rl.data.weblike import removal_scores

    kept = np.concatenate([spans_mask(spans_of(v), len(k)) for v, k in zip(videos, kinds)])
    return removal_scores(kept, np.concatenate(kinds))


def headline(result: dict) -> dict:
    """The numbers bench-summary shows: the cnn filter's held-out precision / recall (clean kept, unclean removed),
    the share of logo frames removed, and filter vs labelling frames/s."""
    q = result["arms"]["cnn"]["filter"]
    out = {f"heldout {k}": q[k] for k in ("precision", "recall", "unclean_precision", "unclean_recall")}
    out["heldout logo removed"] = q["removed_by_kind"].get("logo")
    out["filter frames_per_s"] = result["arms"]["cnn"]["filter_frames_per_s"]
    for lab in result["label_throughput"]:
        out[f"label {lab['idm']} frames_per_s"] = lab["frames_per_s"]
    return out


def _label_fps(videos, preset: str, timesteps: int, max_frames: int) -> dict:
    """frames/s of ``label_videos`` with a fresh IDM of ``preset`` on (a prefix of) ``videos``."""
    from vpt_rl.checkpoint import save_idm
    from vpt_rl.data.video import read_video_frames, write_video
    from vpt_rl.model import IDM_PRESETS, IDMNet
    from vpt_rl.train.label import label_videos

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        save_idm(IDMNet(IDM_PRESETS[preset]), str(tmp / "idm.model"), str(tmp / "idm.weights"))
        frames = read_video_frames(videos[0])[:max_frames]
        write_video(tmp / "v" / "clip.mp4", frames)
        t0 = time.perf_counter()
        label_videos([tmp / "v"], tmp / "idm.model", timesteps=timesteps, batch_size=4, device="cpu",
                     out_dir=tmp / "labels", progress=False)
        secs = time.perf_counter() - t0
    return {"idm": preset, "timesteps": timesteps, "frames": len(frames), "seconds": round(secs, 2),
            "frames_per_s": len(frames) / secs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(HERE / "out" / "filter"))
    p.add_argument("--results", default=str(HERE / "results"))
    p.add_argument("--train-episodes", type=int, default=40)
    p.add_argument("--heldout-episodes", type=int, default=16)
    p.add_argument("--ticks", type=int, default=600, help="ticks per recorded episode")
    p.add_argument("--frames", type=int, default=4000, help="labelled frames drawn for training")
    p.add_argument("--steps", type=int, default=900)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--vpt-model", default=None, help="also train the linear probe on this policy's encoder")
    p.add_argument("--skip-label", action="store_true", help="do not time the IDMs")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    from vpt_rl.atomic import atomic_write_json
    from vpt_rl.data.clean_spans import read_spans, scores_to_spans
    from vpt_rl.data.contractor import find_segments
    from vpt_rl.data.record import record_dataset
    from vpt_rl.data.video import read_video_frames
    from vpt_rl.train import filter as filter_mod
    from vpt_rl.train import train_filter
    from vpt_rl.train.filter_model import load_filter, score_frames

    out = Path(args.out)
    rec = {}
    for name, n, seed in (("train", args.train_episodes, 20_000), ("heldout", args.heldout_episodes, 90_000)):
        t0 = time.time()
        record_dataset(out / name, n, seed=seed, max_ticks=args.ticks, unclean_rate=1.0, imitable=True,
                       progress=False)
        rec[name] = {"episodes": n, "seeds": [seed, seed + n - 1], "seconds": round(time.time() - t0, 1)}
    heldout = find_segments(out / "heldout", require_jsonl=False)
    kinds = _truth(heldout)
    arms = {}
    backbones = [("cnn", {})] + ([("vpt", {"vpt_model": args.vpt_model})] if args.vpt_model else [])
    for backbone, extra in backbones:
        run = out / f"run-{backbone}"
        t0 = time.time()
        fa = train_filter.Args(data=[str(out / "train")], val_fraction=0.0, frames=args.frames, width=args.width,
                               total_steps=args.steps, backbone=backbone, eval_every=0, save_every=300,
                               out_dir=str(run), progress=False, device="cpu", seed=0, **extra)
        path = train_filter.train_filter(fa)
        train_s = time.time() - t0
        for mp4 in heldout:  # score again: the run may be a rerun with other settings
            mp4.with_name(mp4.stem + ".spans.json").unlink(missing_ok=True)
        done = filter_mod.filter_videos([out / "heldout"], path, device="cpu", progress=False)
        filt = load_filter(path)
        raw = {}
        for v in heldout:
            p_unclean = score_frames(filt, read_video_frames(v))
            raw[v] = scores_to_spans(p_unclean, window=1, margin=0, min_span=1)
        arms[backbone] = {
            "train_seconds": round(train_s, 1), "train_frames": args.frames, "steps": args.steps,
            "filter": _quality(heldout, kinds, read_spans),
            "raw_classifier": _quality(heldout, kinds, lambda v: raw[v]),
            "filter_frames_per_s": done.frames_per_s, "kept_share": done.kept_share,
        }
    arms["keep_everything"] = {"filter": _quality(heldout, kinds, lambda v: None)}
    label = [] if args.skip_label else [_label_fps(heldout, "micro_idm_motion", 32, 600),
                                        _label_fps(heldout, "4x_idm", 128, 128)]
    result = {"benchmark": "filter", "date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU, torch {torch.__version__}, 1 thread",
              "settings": vars(args), "recordings": rec, "heldout_frames": int(sum(len(k) for k in kinds)),
              "arms": arms, "label_throughput": label}
    result["headline"] = headline(result)
    res = Path(args.results)
    res.mkdir(parents=True, exist_ok=True)
    atomic_write_json(res / "filter.json", result, indent=1)
    print(f"held-out web-like video: {len(heldout)} videos, {result['heldout_frames']} frames "
          f"({sum(int((k != 'clean').sum()) for k in kinds)} unclean)\n")
    print("| arm | clean kept: precision | recall | unclean removed: precision | recall | facecam | logo | "
          "letterbox | pause | creative |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, a in arms.items():
        for variant in ("filter", "raw_classifier"):
            if variant not in a:
                continue
            q = a[variant]
            kinds_removed = " | ".join(f"{100 * q['removed_by_kind'].get(k, float('nan')):.0f}%"
                                       for k in ("facecam", "logo", "letterbox", "pause", "creative"))
            label_ = name if variant == "filter" else f"{name}, no smoothing"
            print(f"| {label_} | " + " | ".join("-" if q[k] is None else f"{q[k]:.3f}" for k in
                                                ("precision", "recall", "unclean_precision", "unclean_recall"))
                  + f" | {kinds_removed} |")
    print()
    for name, a in arms.items():
        if "filter_frames_per_s" in a:
            print(f"vpt-rl filter ({name}): {a['filter_frames_per_s']:.0f} frames/s (decode + score + spans)")
    for lab in label:
        print(f"vpt-rl label ({lab['idm']}, {lab['timesteps']}-frame windows): {lab['frames_per_s']:.1f} frames/s")
    _plot(result, heldout, kinds, res / "filter.png", out)
    print(f"\nwrote {res / 'filter.json'} and {res / 'filter.png'}")
    return 0


def _plot(result, heldout, kinds, path, out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vpt_rl.data.video import read_video_frames
    from vpt_rl.train.filter_model import load_filter, score_frames

    fig, (a0, a1) = plt.subplots(1, 2, figsize=(12, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
    q = result["arms"]["cnn"]["filter"]["removed_by_kind"]
    names = list(q)
    a0.bar(names, [q[k] for k in names], color=["tab:green"] + ["tab:red"] * (len(names) - 1))
    a0.set_ylim(0, 1)
    a0.set_ylabel("share of frames removed")
    a0.set_title("held-out frames removed, by kind (cnn filter)")
    a0.tick_params(axis="x", rotation=30)
    # the held-out video with the most kinds of unclean footage
    i = max(range(len(heldout)), key=lambda j: len(set(kinds[j]) - {"clean"}))
    p = score_frames(load_filter(out / "run-cnn" / "filter.pt"), read_video_frames(heldout[i]))
    from vpt_rl.data.clean_spans import read_spans, spans_mask

    kept = spans_mask(read_spans(heldout[i]), len(p))
    t = np.arange(len(p))
    for s in np.flatnonzero(np.diff(np.r_[0, kinds[i] != "clean", 0])).reshape(-1, 2):
        a1.axvspan(s[0], s[1], color="tab:red", alpha=0.15)
        a1.text((s[0] + s[1]) / 2, 1.02, kinds[i][s[0]], ha="center", fontsize=8)
    a1.plot(t, p, lw=0.8, label="P(unclean)")
    a1.plot(t, ~kept * 1.0, lw=1.2, color="k", label="removed by vpt-rl filter")
    a1.set_ylim(-0.05, 1.12)
    a1.set_xlabel("frame")
    a1.set_title(f"{heldout[i].name}: ground truth shaded")
    a1.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
