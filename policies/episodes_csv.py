"""The per-episode learning-curve CSV (``steps,return,length,milestones``) that the SB3 plug-in writes.

This module does not import Stable-Baselines3, so a learning curve can be read (by the pipeline, plots,
notebooks) without the RL extra installed. :class:`vpt_rl.policies.sb3.EpisodeCSVCallback`
writes the file through :func:`write_episodes_csv`.
"""
from __future__ import annotations

import os
from typing import Iterable, List, Sequence, Tuple, Union

from vpt_rl.atomic import atomic_write_text

__all__ = ["EPISODES_CSV_HEADER", "read_episodes_csv", "write_episodes_csv"]

EPISODES_CSV_HEADER = "steps,return,length,milestones"
_EPISODES_CSV_HEADER_V1 = "steps,return,length"  # files written before the milestones column (still read)

Row = Tuple[int, float, int, Sequence[str]]


def write_episodes_csv(path: Union[str, os.PathLike], rows: Iterable[Row]) -> None:
    """Write ``(steps, return, length, milestones)`` rows atomically (``milestones`` ``;``-joined; returns
    written with ``repr`` so that they read back exactly)."""
    text = EPISODES_CSV_HEADER + "\n" + "".join(f"{s},{r!r},{n},{';'.join(m)}\n" for s, r, n, m in rows)
    atomic_write_text(os.path.abspath(os.fspath(path)), text)


def read_episodes_csv(path: Union[str, os.PathLike], milestones: bool = False) -> List[tuple]:
    """The rows of a file written by :class:`~vpt_rl.policies.sb3.EpisodeCSVCallback`: ``(steps, return,
    length)``, or with ``milestones=True`` ``(steps, return, length, (milestone, ...))`` (empty for files from
    before the milestones column)."""
    with open(path) as f:
        lines = f.read().splitlines()
    header = lines[0].strip() if lines else ""
    if header not in (EPISODES_CSV_HEADER, _EPISODES_CSV_HEADER_V1):
        raise ValueError(f"{os.fspath(path)!r}: expected a CSV with header {EPISODES_CSV_HEADER!r}, "
                         f"got {lines[0] if lines else '(empty file)'!r}")
    n_cols = header.count(",") + 1
    rows = []
    for k, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            parts = line.split(",")
            if len(parts) != n_cols:
                raise ValueError
            s, r, n = int(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise ValueError(f"{os.fspath(path)!r} line {k}: expected {header!r}, got {line!r}") from None
        names = tuple(m for m in parts[3].split(";") if m) if n_cols == 4 else ()
        rows.append((s, r, n, names) if milestones else (s, r, n))
    return rows
