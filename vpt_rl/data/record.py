"""Recording scripted-expert MineLite episodes as contractor data: one episode, or a resumable dataset.

:func:`record_dataset` is what ``vpt-rl record`` and the pipeline's record stage call: episode ``i`` plays
world seed ``seed + i`` and is written as segments ``OUT/minelite-<alias>-s<seed>-e<i>-<k>.mp4`` +
``.jsonl`` (+ ``-options.json``); ``OUT/index.json`` lists every complete segment. Episodes already
recorded are skipped (resume): an episode counts as recorded when its segments are complete and the last
one's ``-options.json`` says ``episode_done``; an interrupted one is recorded again from its start.

The settings of a recording are kept in ``OUT/record.json`` (per alias, written atomically before the
first episode). A rerun with other settings for the same alias (``max_ticks``, ``resolution``,
``epsilon``, ...) is refused with :class:`RecordSettingsError` naming every differing setting, since the
folder would otherwise mix episodes of both; the same settings resume. Another alias in the same folder
(the pipeline's ``contractor`` and ``expert`` splits) is a recording of its own. A folder recorded before
``record.json`` existed is checked against its segments' ``-options.json``.

``unclean_rate`` (``vpt-rl record --web-like RATE``) records "web-like" footage: a ``RATE`` share of the
episodes carries unclean clips (face-cam, logo, letterbox, pause menu, creative inventory), and every
segment gets a ``NAME.clean.json`` sidecar with the ground truth (:mod:`vpt_rl.data.weblike`).

Example::

    from vpt_rl.data.record import record_dataset
    summary = record_dataset("data/expert", episodes=4, max_ticks=600, world_size=32)
    print(summary.recorded, summary.index)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

from vpt_rl.atomic import atomic_write_json, remove_stale_temporaries
from vpt_rl.data import weblike
from vpt_rl.data.game_state import jsonable
from vpt_rl.data.recorder import (
    RECORDER_VERSION,
    SEGMENT_TICKS,
    EpisodeRecording,
    PathLike,
    record_episode,
    segment_complete,
    segment_name,
    write_index,
)
from vpt_rl.envs.minelite import expert as expert_mod
from vpt_rl.model_config import AGENT_RESOLUTION

__all__ = ["record_expert_episode", "record_dataset", "DatasetRecording", "episode_prefix", "recorded_segments",
           "all_complete_segments", "RecordSettingsError", "SETTINGS_FILE", "check_record_settings"]

SETTINGS_FILE = "record.json"
"""the file in a recording folder that keeps each alias's recording settings"""
_SETTINGS_FORMAT = 1


class RecordSettingsError(ValueError):
    """A recording folder holds episodes of the same alias recorded with other settings."""


def record_expert_episode(out_dir: PathLike, seed: int, episode: int = 0, max_ticks: int = 6000, *,
                          segment_ticks: int = 6000, resolution: Tuple[int, int] = AGENT_RESOLUTION, epsilon: float = 0.0,
                          camera_noise: float = 0.0, imitable: bool = False, varied_camera: bool = True,
                          alias: str = "expert", progress: bool = False,
                          unclean_spans: Optional[Sequence[weblike.Span]] = None, **env_kwargs) -> EpisodeRecording:
    """Record one scripted-expert episode in the contractor format under ``out_dir``.

    Segments are named ``minelite-<alias>-s<seed>-e<episode>-<k>``; returns the ``EpisodeRecording`` with
    ``last_info["milestones"]``. ``camera_noise``: see ``ScriptedExpert`` (contractor-like camera);
    ``imitable``: the expert finds trees from the screen; ``varied_camera``: its turn style varies.
    ``unclean_spans``: ``[(start, end, kind), ...]`` ticks drawn with web-like overlays
    (:func:`vpt_rl.data.weblike.plan_unclean_spans`); given (even empty), each segment gets its
    ``NAME.clean.json`` sidecar. ``env_kwargs`` go to ``MineLiteEnv`` (e.g. ``world_size``).
    """
    # through the module, so that a test (or an experiment) can swap the env factory
    env = expert_mod.make_expert_env(seed, max_ticks, resolution, True, **env_kwargs)
    expert = expert_mod.ScriptedExpert(env, seed=seed, epsilon=epsilon, camera_noise=camera_noise,
                                       imitable=imitable, varied_camera=varied_camera)
    bar = tqdm(total=max_ticks, desc=f"seed {seed}", unit="tick", leave=False) if progress else None
    frame_fn = weblike.WebLikeFrames(unclean_spans, seed=seed) if unclean_spans else None

    def on_tick(t, info):
        if bar is not None:
            bar.update(1)
            if t % 100 == 0:
                bar.set_postfix_str(expert.phase)

    try:
        res = record_episode(env, expert.act, Path(out_dir) / episode_prefix(alias, seed, episode), max_ticks,
                             segment_ticks=segment_ticks, reset_kwargs={"seed": seed}, on_tick=on_tick,
                             meta={"alias": alias, "seed": seed, "episode": episode, "epsilon": epsilon,
                                   "camera_noise": camera_noise, "imitable": imitable,
                                   "varied_camera": varied_camera, "policy": "ScriptedExpert"},
                             frame_fn=frame_fn)
    finally:
        if bar is not None:
            bar.close()
    if unclean_spans is not None:
        # after the segments are complete: a kill in between leaves them without sidecars, which the
        # resumed record_dataset writes (the spans are planned from the seed again)
        weblike.write_sidecars(out_dir, res.relpaths, unclean_spans, segment_ticks)
    expert._note_milestones()
    res.last_info["milestones"] = dict(expert.milestones)
    return res


def episode_prefix(alias: str, seed: int, episode: int) -> str:
    """Segment names of one episode without the ``-<segment>`` suffix."""
    return segment_name(alias, seed, episode, 0)[: -len("-000")]


def recorded_segments(out_dir: PathLike, prefix: str) -> Optional[List[str]]:
    """The segment names of a completely recorded episode, or ``None`` if it is missing or unfinished."""
    names = []
    for k in range(10_000):
        name = f"{prefix}-{k:03d}"
        if not segment_complete(out_dir, name):
            return None
        names.append(name)
        meta_path = Path(out_dir) / f"{name}-options.json"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return None
        if meta.get("episode_done"):
            return names
    return None


def all_complete_segments(out_dir: PathLike) -> List[str]:
    """Names of every complete segment in ``out_dir`` (``NAME.mp4`` with its ``NAME.jsonl``)."""
    return sorted(p.stem for p in Path(out_dir).glob(f"{RECORDER_VERSION}-*.jsonl") if p.with_suffix(".mp4").is_file())


def _show(value: Any) -> str:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}x{value[1]}"  # a resolution
    return json.dumps(value)


def _load_settings(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        return {"format": _SETTINGS_FORMAT, "aliases": {}}
    try:
        stored = json.loads(path.read_text())
        stored["aliases"].items()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: unreadable recording settings ({e}); delete it to record anew") from None
    return stored


_OPTIONS_SETTINGS = ("resolution", "epsilon", "camera_noise", "imitable", "varied_camera")
"""the settings that each segment's ``-options.json`` also records (folders recorded before ``record.json``)"""


def _settings_from_segments(out_dir: PathLike, alias: str) -> Optional[Dict[str, Any]]:
    """What the ``-options.json`` of the first complete segment of ``alias`` says about its settings, or
    ``None`` if there is none (a folder recorded before ``record.json`` existed)."""
    for name in all_complete_segments(out_dir):
        if name.startswith(f"{RECORDER_VERSION}-{alias}-"):
            try:
                options = json.loads((Path(out_dir) / f"{name}-options.json").read_text())
            except (OSError, ValueError):
                continue
            return {k: options[k] for k in _OPTIONS_SETTINGS if k in options}
    return None


def check_record_settings(out_dir: PathLike, alias: str, settings: Dict[str, Any]) -> bool:
    """Compare ``settings`` with those stored for ``alias`` in ``OUT/record.json``; store them if new.

    :return: True if the settings were stored now (the folder had none for ``alias``).
    :raises RecordSettingsError: naming every differing setting (``old -> new``) and the ways out.
    :raises ValueError: if the settings file is unreadable (it names the file).
    """
    path = Path(out_dir) / SETTINGS_FILE
    settings = jsonable(settings)
    stored = _load_settings(path)
    old = stored["aliases"].get(alias)
    if old is None:
        # none stored: a new alias, or a folder recorded before record.json; then what its segments' options
        # say must agree (the settings they do not record cannot be checked and are taken as given)
        old = {**settings, **(_settings_from_segments(out_dir, alias) or {})}
        if old == settings:
            stored["aliases"][alias] = settings
            atomic_write_json(path, stored, indent=1)
            return True
    diff = [f"{k} {_show(old.get(k))} -> {_show(settings.get(k))}" for k in sorted(set(old) | set(settings))
            if old.get(k) != settings.get(k)]
    if diff:
        raise RecordSettingsError(
            f"{out_dir} holds '{alias}' episodes recorded with other settings: {', '.join(diff)}. "
            f"Rerun with the old settings to resume, record into another folder (--out) or under another "
            f"--alias, or delete {out_dir} to start over.")
    return False


def _forget_record_settings(out_dir: PathLike, alias: str) -> None:
    """Drop ``alias`` from ``OUT/record.json`` (its first episode failed: nothing was recorded with them)."""
    path = Path(out_dir) / SETTINGS_FILE
    stored = _load_settings(path)
    stored["aliases"].pop(alias, None)
    atomic_write_json(path, stored, indent=1)


@dataclass
class DatasetRecording:
    """What :func:`record_dataset` did."""

    recorded: int = 0
    """episodes recorded by this call"""
    skipped: int = 0
    """episodes found already recorded (resume)"""
    milestones: Dict[str, int] = field(default_factory=dict)
    """milestone -> number of the episodes recorded now that reached it"""
    index: Optional[Path] = None
    """the ``index.json`` written"""


def record_dataset(out_dir: PathLike, episodes: int, *, seed: int = 0, max_ticks: int = SEGMENT_TICKS,
                   segment_ticks: int = SEGMENT_TICKS, resolution: Tuple[int, int] = AGENT_RESOLUTION,
                   epsilon: float = 0.0, camera_noise: float = 0.0, imitable: bool = False,
                   varied_camera: bool = True, alias: str = "expert", progress: bool = True,
                   unclean_rate: Optional[float] = None, **env_kwargs: Any) -> DatasetRecording:
    """Record ``episodes`` scripted-expert episodes into ``out_dir``, skipping those already recorded.

    Episode ``i`` plays world seed ``seed + i``; the index is rewritten after every episode, so a killed
    run leaves a usable dataset. The other knobs are those of :func:`record_expert_episode`.

    ``unclean_rate`` (None: a plain recording): record web-like footage, each episode unclean with this
    probability (its spans planned by :func:`vpt_rl.data.weblike.plan_unclean_spans` from its seed over
    ``max_ticks``), with a ``NAME.clean.json`` sidecar beside every segment, clean ones too.

    :raises ValueError: for a negative ``seed``, an ``alias`` that cannot be part of a segment name or an
        ``unclean_rate`` outside [0, 1] (before anything is written), or ``epsilon`` / ``camera_noise`` outside [0, 1] (from ``ScriptedExpert``).
    :raises RecordSettingsError: if ``out_dir`` holds episodes of ``alias`` recorded with other settings
        (see the module docstring); nothing is written then.
    """
    episode_prefix(alias, seed, 0)  # checks the seed and the alias before anything is written
    if unclean_rate is not None:
        unclean_rate = weblike.check_rate(unclean_rate)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # half-written index / settings files of a run that was killed
    stored_now = check_record_settings(out, alias, {
        "seed": seed, "max_ticks": max_ticks, "segment_ticks": segment_ticks, "resolution": list(resolution),
        "epsilon": epsilon, "camera_noise": camera_noise, "imitable": imitable, "varied_camera": varied_camera,
        "env": dict(sorted(env_kwargs.items())), "unclean_rate": unclean_rate})
    summary = DatasetRecording()
    bar = tqdm(range(episodes), desc="episodes", unit="ep", disable=not progress)
    try:
        for i in bar:
            plan = None if unclean_rate is None else weblike.plan_unclean_spans(max_ticks, unclean_rate, seed + i)
            done = recorded_segments(out, episode_prefix(alias, seed + i, i))
            if done is not None:
                if plan is not None:  # a run killed between the segments and their sidecars
                    weblike.write_sidecars(out, done, plan, segment_ticks, only_missing=True)
                summary.skipped += 1
                bar.set_postfix(skipped=summary.skipped)
                continue
            res = record_expert_episode(out, seed=seed + i, episode=i, max_ticks=max_ticks,
                                        segment_ticks=segment_ticks, resolution=resolution, epsilon=epsilon,
                                        camera_noise=camera_noise, imitable=imitable, varied_camera=varied_camera,
                                        alias=alias, progress=progress, unclean_spans=plan, **env_kwargs)
            summary.recorded += 1
            for k, v in (res.last_info.get("milestones") or {}).items():
                summary.milestones[k] = summary.milestones.get(k, 0) + int(bool(v))
            write_index(out, all_complete_segments(out))
            bar.set_postfix(skipped=summary.skipped, last_ticks=res.ticks)
    except BaseException:
        if stored_now and summary.recorded == 0:
            # nothing was recorded with these settings (a value the env refused, Ctrl-C in the first episode):
            # forget them, so that a corrected rerun is not refused for differing from them
            _forget_record_settings(out, alias)
        raise
    summary.index = write_index(out, all_complete_segments(out))
    return summary
