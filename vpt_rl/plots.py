"""Matplotlib (Agg, no display) plots of the pipeline and benchmarks.

* :func:`plot_reward_curves` - episode return vs env steps of several RL runs, raw points faded and a
  moving average on top (pretrained vs random init);
* :func:`plot_milestone_rates` - milestone success rate per agent as grouped bars;
* :func:`plot_milestone_curves` - return and milestone rates over RL training, one panel per milestone and
  one line per run, like the VPT paper's Fig. 9.

Each writes a PNG atomically and returns its path.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from vpt_rl.atomic import atomic_output
from vpt_rl.envs.rewards import order_milestones

# Figures are built with matplotlib's object API (``Figure``), never pyplot: no global backend is chosen or
# changed, no window opens, and nothing leaks between plots (a notebook's inline backend stays as it is).


def moving_average(y: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` points (shorter at the start); same length as ``y``.

    >>> moving_average([0, 2, 4, 6], 2).tolist()
    [0.0, 1.0, 3.0, 5.0]
    """
    if window < 1:
        raise ValueError(f"window={window}: expected >= 1")
    y = np.asarray(y, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(y)])
    idx = np.arange(1, y.size + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def save_figure(fig: Figure, path: os.PathLike) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically."""
    path = Path(path)
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    return path


def plot_reward_curves(curves: Mapping[str, Tuple[Sequence[float], Sequence[float]]], path: os.PathLike, *,
                       title: str = "Episode return vs env steps", window: Optional[int] = None,
                       ylabel: str = "episode return (tech-tree reward)") -> Path:
    """``curves``: label -> (env steps at each episode end, episode returns). A run without episodes
    is listed in the legend as such. ``window``: moving-average length (default: ~10% of the episodes)."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, (steps, rets)) in enumerate(curves.items()):
        steps, rets = np.asarray(steps, dtype=np.float64), np.asarray(rets, dtype=np.float64)
        if steps.shape != rets.shape:
            raise ValueError(f"curve {label!r}: {steps.size} steps but {rets.size} returns")
        color = colors[k % len(colors)]
        if steps.size == 0:
            ax.plot([], [], color=color, label=f"{label} (no finished episode)")
            continue
        w = window or max(1, steps.size // 10)
        ax.scatter(steps, rets, s=6, alpha=0.25, color=color)
        ax.plot(steps, moving_average(rets, w), color=color, lw=2, label=f"{label} (mean of {w})")
    ax.set_xlabel("env steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return save_figure(fig, path)


def plot_milestone_rates(rates: Mapping[str, Mapping[str, float]], path: os.PathLike, *,
                         milestones: Optional[Sequence[str]] = None,
                         title: str = "Milestone success rate per agent") -> Path:
    """``rates``: agent -> {milestone: fraction of episodes in [0, 1]}; grouped bars per milestone in
    ``milestones`` order (default: every milestone any agent reports, in tech-tree order)."""

    names = list(milestones) if milestones is not None else order_milestones({m for r in rates.values() for m in r})
    for agent, r in rates.items():
        bad = {m: v for m, v in r.items() if not (0.0 <= float(v) <= 1.0)}
        if bad:
            raise ValueError(f"agent {agent!r}: success rates must be in [0, 1], got {bad}")
    n_agents = max(1, len(rates))
    x = np.arange(len(names))
    width = 0.8 / n_agents
    fig = Figure(figsize=(max(6.0, 0.7 * len(names) + 2), 4.2))
    ax = fig.subplots()
    for k, (agent, r) in enumerate(rates.items()):
        vals = [100.0 * float(r.get(m, 0.0)) for m in names]
        ax.bar(x - 0.4 + width * (k + 0.5), vals, width, label=agent)
    ax.set_xticks(x)
    ax.set_xticklabels([m.replace("_", " ") for m in names], rotation=35, ha="right")
    ax.set_ylabel("% of episodes")
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return save_figure(fig, path)


def plot_milestone_curves(runs: Mapping[str, Mapping[str, Sequence]], path: os.PathLike, *,
                          milestones: Sequence[str] = ("log", "planks", "crafting_table", "wooden_pickaxe"),
                          window: Optional[int] = None,
                          title: str = "RL fine-tuning: return and milestone rates vs env steps") -> Path:
    """The paper's Fig. 9 for our runs: one panel with each run's episode return, then one panel per
    milestone with the share of a run's recent training episodes that reached it, all against env steps.

    ``runs``: label -> ``{"steps": [...], "returns": [...], "milestones": [[name, ...], ...]}`` (one entry
    per finished episode; ``milestones`` may be missing, then only the return panel has that run).
    Episodes that end at the same env step (parallel envs) are averaged into one point; ``window``: points
    in each moving average (default: ~10% of them).
    """
    panels = ["return"] + list(milestones)
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, run) in enumerate(runs.items()):
        steps = np.asarray(run.get("steps", []), dtype=np.float64)
        rets = np.asarray(run.get("returns", []), dtype=np.float64)
        if steps.shape != rets.shape:
            raise ValueError(f"run {label!r}: {steps.size} steps but {rets.size} returns")
        ms = run.get("milestones")
        if ms is not None and len(ms) != steps.size:
            raise ValueError(f"run {label!r}: {steps.size} episodes but {len(ms)} milestone lists")
        color = colors[k % len(colors)]
        # episodes of parallel envs often end at the same env step: average them into one point first
        xs, inv = np.unique(steps, return_inverse=True)
        w = window or max(1, xs.size // 10)
        for i, panel in enumerate(panels):
            ax = axes[i // cols][i % cols]
            if panel == "return":
                y = rets
            elif ms is None:
                continue
            else:
                y = np.array([100.0 * (panel in set(m)) for m in ms], dtype=np.float64)
            if steps.size:
                per_step = np.bincount(inv, weights=y) / np.bincount(inv)
                ax.plot(xs, moving_average(per_step, w), "o-", ms=3, color=color, lw=2, label=label)
            else:
                ax.plot([], [], color=color, label=f"{label} (no finished episode)")
    for i, panel in enumerate(panels):
        ax = axes[i // cols][i % cols]
        ax.set_title("episode return" if panel == "return" else panel.replace("_", " "), fontsize=10)
        ax.set_xlabel("env steps", fontsize=8)
        ax.set_ylabel("return" if panel == "return" else "% of episodes", fontsize=8)
        if panel != "return":
            ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
    for j in range(len(panels), rows * cols):
        axes[j // cols][j % cols].axis("off")
    axes[0][0].legend(loc="best", fontsize=7)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)
