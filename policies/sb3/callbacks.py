"""SB3 callbacks of the VPT plug-in: milestone statistics, the per-episode learning curve, and the
progress bar with periodic checkpoints at rollout boundaries used by :func:`~vpt_rl.policies.sb3.finetune_sb3`."""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

from vpt_rl.policies.episodes_csv import read_episodes_csv, write_episodes_csv


def _numeric_items(stats: Any) -> Dict[str, float]:
    out: Dict[str, float] = {}
    if isinstance(stats, dict):
        for k, v in stats.items():
            if isinstance(v, (bool, int, float, np.integer, np.floating)) or (isinstance(v, np.ndarray) and v.size == 1):
                out[str(k)] = float(v)
    return out


class EpisodeStatsCallback(BaseCallback):
    """Log the mean of each ``info["episode_extra_stats"]`` entry (the tech-tree milestones of
    ``make_vpt_env``) over the episodes that ended since the last rollout, as ``<prefix>/<key>``.

    Works with any SB3 algorithm; :class:`VPTPPO` already logs the same numbers itself.

    :param prefix: TensorBoard tag prefix.
    """

    def __init__(self, prefix: str = "milestones", verbose: int = 0):
        super().__init__(verbose)
        self.prefix = prefix
        self._episodes: List[Dict[str, float]] = []

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            stats = _numeric_items(info.get("episode_extra_stats"))
            if stats:
                self._episodes.append(stats)
        return True

    def _on_rollout_end(self) -> None:
        for k, v in _mean_stats(self._episodes).items():
            self.logger.record(f"{self.prefix}/{k}", v)
        self._episodes = []


def _mean_stats(episodes: Sequence[Dict[str, float]]) -> Dict[str, float]:
    keys = sorted({k for ep in episodes for k in ep})
    return {k: float(np.mean([ep[k] for ep in episodes if k in ep])) for k in keys}


class EpisodeCSVCallback(BaseCallback):
    """Logs every finished episode as a row ``steps,return,length,milestones`` of a CSV file: the total
    env-step count (over all envs) when the episode ended, its return and its length, from the
    ``info["episode"]`` that SB3's ``Monitor`` sets at an episode's end (episodes of envs that are not
    ``Monitor``-wrapped are not seen), and the tech-tree milestones it reached, ``;``-joined, from the
    ``info["milestones"]`` of :class:`~vpt_rl.envs.wrappers.EpisodeStats` (empty without it). This is the
    learning curve at episode resolution, and the milestone rates over training (the paper's Fig. 9).

    On construction, rows already in ``path`` with ``steps <= resume_steps`` are kept (a resumed run
    continues its curve; rows written after the checkpoint it resumes from are dropped). The file is
    rewritten atomically (:func:`~vpt_rl.policies.episodes_csv.write_episodes_csv`) by :meth:`flush`, which
    :func:`finetune_sb3` calls before every checkpoint and at the end, and which also runs at each rollout's
    end and training's end.

    :param path: the CSV file.
    :param resume_steps: keep the existing rows up to this env-step count; ``None`` starts a new file.
    """

    def __init__(self, path: Union[str, os.PathLike], resume_steps: Optional[int] = None, verbose: int = 0):
        super().__init__(verbose)
        self.path = os.fspath(path)
        self.rows: List[Tuple[int, float, int, Tuple[str, ...]]] = []
        if resume_steps is not None and os.path.isfile(self.path):
            self.rows = [r for r in read_episodes_csv(self.path, milestones=True) if r[0] <= int(resume_steps)]

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            ep = info.get("episode") if isinstance(info, dict) else None
            if ep is not None:
                reached = info.get("milestones") or {}
                names = tuple(k for k, v in reached.items() if v) if isinstance(reached, dict) else ()
                self.rows.append((int(self.num_timesteps), float(ep["r"]), int(ep["l"]), names))
        return True

    def _on_rollout_end(self) -> None:
        self.flush()

    def _on_training_end(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Write every row so far to :attr:`path` (atomically)."""
        write_episodes_csv(self.path, self.rows)


class _ProgressAndCheckpoint(BaseCallback):
    """tqdm progress bar plus periodic checkpoints: ``save()`` runs at the first rollout boundary at least
    ``every`` env steps after the last checkpoint.

    A boundary is the start of a rollout, which SB3 reaches after training on the previous one: there every
    collected step has been trained on, so a resume repeats no PPO update and skips none (saving during a
    rollout, as ``on_step`` would, stores steps whose update the resumed run never makes).
    """

    def __init__(self, total: int, save: Callable[[], None], every: int, desc: str = "sb3 finetune"):
        super().__init__()
        self.total, self.save, self.every, self.desc = total, save, every, desc
        self._bar = None
        self._last_save = 0

    def _on_training_start(self) -> None:
        self._bar = tqdm(total=self.total, initial=min(self.num_timesteps, self.total), unit="step", desc=self.desc)
        self._last_save = self.num_timesteps

    def _on_rollout_start(self) -> None:
        if self.every > 0 and self.num_timesteps - self._last_save >= self.every:
            self.save()
            self._last_save = self.num_timesteps

    def _on_step(self) -> bool:
        if self._bar is not None:
            self._bar.n = min(self.num_timesteps, self.total)
            self._bar.refresh()
        return True

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()
