"""MineRL 1.0's own interface on MineLite, so that code written against MineRL runs unmodified.

A MineRL user changes one import::

    - from minerl.herobraine.env_specs.human_survival_specs import HumanSurvival
    + from vpt_rl.envs.minelite import HumanSurvival

    env = HumanSurvival(**ENV_KWARGS).make()     # e.g. OpenAI's agent.py ENV_KWARGS
    obs = env.reset()
    obs, reward, done, info = env.step(env.noop_action())

What matches MineRL 1.0:

* ``HumanSurvival(...)`` takes MineRL's keyword arguments (``resolution``, ``fov_range``, ``gamma_range``,
  ``guiscale_range``, ``cursor_size_range``, ``frameskip``, ``max_episode_steps``, ``name``) and keeps them
  as given on ``env.task`` (``env.task.fov_range == [70, 70]``), as MineRL's env spec does.
* The old gym API: ``reset() -> obs``, ``step(a) -> (obs, reward, done, info)``, ``seed()``, ``render()``,
  ``close()``, ``noop_action()``. The spaces are ``gym.spaces`` objects when the old ``gym`` package is
  importable (as MineRL's are), otherwise the Gymnasium ones.
* Actions as MineRL takes them: missing keys count as 0, buttons may be arrays of shape ``(1,)`` and the
  camera ``(1, 2)``, any float dtype (what an agent with a batch of one produces). Anything else is checked
  by ``MineLiteEnv`` and refused with the same named-value errors.

What MineLite models of the settings: ``resolution`` (the ``pov`` size), ``fov_range`` (the vertical field
of view, drawn uniformly from the range at every reset, as MineRL does), ``frameskip`` (each step repeats the
action for that many ticks) and ``max_episode_steps``. ``gamma_range``, ``guiscale_range`` and
``cursor_size_range`` are kept on ``env.task`` but not modelled: MineLite draws at one brightness, GUI scale 1
and a 16-pixel cursor. ``load_filename`` (a saved Minecraft world) is refused. Further keyword arguments of
``HumanSurvival`` or ``make()`` go to :class:`~vpt_rl.envs.minelite.env.MineLiteEnv` (``world_size``, ``seed``,
``view_distance``, ...).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
from gymnasium import spaces as gymnasium_spaces

from vpt_rl.actions import noop_action
from vpt_rl.envs.minelite.env import MineLiteEnv

__all__ = ["HumanSurvival", "MineRLEnv"]

def _pair(name: str, value: Any, kind=float) -> None:
    """Check that ``value`` is a ``[low, high]`` pair of ``kind`` numbers with low <= high."""
    try:
        lo, hi = (kind(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a [low, high] pair of numbers, got {value!r}") from None
    if lo > hi:
        raise ValueError(f"{name} must have low <= high, got {value!r}")


class HumanSurvival:
    """MineRL 1.0's ``HumanSurvival`` env spec, played in MineLite; :meth:`make` builds the env.

    :param resolution: ``(width, height)`` of ``pov`` (MineRL's default 640x360).
    :param fov_range: ``[low, high]`` vertical field of view in degrees, drawn at every reset.
    :param gamma_range, guiscale_range, cursor_size_range: MineRL's rendering settings; kept, not modelled.
    :param frameskip: ticks each ``step`` lasts (the action is held for all of them).
    :param max_episode_steps: steps before ``done`` (None: no limit, MineRL's default for this spec).
    :param name: the spec's name (``env.task.name``).
    :param load_filename: refused (MineLite cannot load a saved Minecraft world); must be None.
    :param minelite_kwargs: passed to ``MineLiteEnv`` (e.g. ``world_size``, ``seed``).
    """

    def __init__(self, *, resolution: Sequence[int] = (640, 360), fov_range: Sequence[float] = (70.0, 70.0),
                 gamma_range: Sequence[float] = (2.0, 2.0), guiscale_range: Sequence[float] = (1, 1),
                 cursor_size_range: Sequence[float] = (16, 16), frameskip: int = 1,
                 max_episode_steps: Optional[int] = None, name: str = "MineRLHumanSurvival-v0",
                 load_filename: Optional[str] = None, **minelite_kwargs: Any):
        for key, value in (("fov_range", fov_range), ("gamma_range", gamma_range),
                           ("guiscale_range", guiscale_range), ("cursor_size_range", cursor_size_range)):
            _pair(key, value)
        if not 1.0 <= float(fov_range[0]) <= float(fov_range[1]) <= 170.0:
            raise ValueError(f"fov_range {fov_range!r} out of range; expected degrees within 1..170")
        if isinstance(frameskip, bool) or not isinstance(frameskip, (int, np.integer)) or frameskip < 1:
            raise ValueError(f"frameskip must be an int >= 1, got {frameskip!r}")
        if max_episode_steps is not None and (isinstance(max_episode_steps, bool)
                                              or not isinstance(max_episode_steps, (int, np.integer))
                                              or max_episode_steps < 1):
            raise ValueError(f"max_episode_steps must be a positive int or None, got {max_episode_steps!r}")
        if load_filename is not None:
            raise ValueError(f"load_filename={load_filename!r}: MineLite generates its worlds and cannot load a "
                             "saved Minecraft world; leave it None")
        _refuse_minerl_settings(minelite_kwargs)
        # kept exactly as given, like MineRL's env spec (agent.py's validate_env compares them to lists)
        self.name = name
        self.resolution = resolution
        self.fov_range = fov_range
        self.gamma_range = gamma_range
        self.guiscale_range = guiscale_range
        self.cursor_size_range = cursor_size_range
        self.frameskip = int(frameskip)
        self.max_episode_steps = max_episode_steps
        self.load_filename = load_filename
        self.minelite_kwargs = dict(minelite_kwargs)
        probe = MineLiteEnv(resolution=tuple(resolution), max_steps=None, **self.minelite_kwargs)  # checks them
        self.observation_space = _as_minerl_space(probe.observation_space)
        self.action_space = _as_minerl_space(probe.action_space)
        probe.close()

    def make(self, fake: bool = False, **minelite_kwargs: Any) -> "MineRLEnv":
        """A new env for this spec (``fake`` is accepted for MineRL's signature; MineLite is always real)."""
        _refuse_minerl_settings(minelite_kwargs)
        return MineRLEnv(self, **{**self.minelite_kwargs, **minelite_kwargs})

    def __repr__(self) -> str:
        return f"HumanSurvival(name={self.name!r}, resolution={self.resolution!r}, fov_range={self.fov_range!r})"


class MineRLEnv:
    """A MineLite world behind MineRL 1.0's old-gym interface (built by :meth:`HumanSurvival.make`)."""

    metadata = {"render.modes": ["rgb_array", "human"]}
    reward_range = (-float("inf"), float("inf"))
    spec = None

    def __init__(self, task: HumanSurvival, **minelite_kwargs: Any):
        self.task = task
        # MineLite counts ticks; a MineRL step lasts ``frameskip`` ticks
        max_ticks = None if task.max_episode_steps is None else task.max_episode_steps * task.frameskip
        self._env = MineLiteEnv(resolution=tuple(task.resolution), max_steps=max_ticks,
                                fov=float(task.fov_range[0]), **minelite_kwargs)
        self.action_space = task.action_space
        self.observation_space = task.observation_space
        self._next_seed: Optional[int] = None
        self._fov_rng = np.random.default_rng()
        self._last_pov: Optional[np.ndarray] = None

    @property
    def unwrapped(self) -> MineLiteEnv:
        """The MineLite env underneath (its privileged-state API: ``player``, ``world``, ``inventory``...)."""
        return self._env

    def seed(self, seed: Optional[int] = None) -> List[Optional[int]]:
        """Seed the world of the next :meth:`reset` (and the field-of-view draw)."""
        self._next_seed = None if seed is None else int(seed)
        if seed is not None:
            self._fov_rng = np.random.default_rng(int(seed))
        return [seed]

    def reset(self) -> Dict[str, Any]:
        """Start an episode in a new world; returns the observation (MineRL: no info)."""
        lo, hi = (float(v) for v in self.task.fov_range)
        fov = lo if lo == hi else float(self._fov_rng.uniform(lo, hi))
        obs, _ = self._env.reset(seed=self._next_seed, options={"fov": fov})
        self._next_seed = None
        self._last_pov = obs["pov"]
        return obs

    def step(self, action: Mapping[str, Any]):
        """Apply ``action`` for ``task.frameskip`` ticks; returns ``(obs, reward, done, info)``."""
        action = minerl_action(action)
        reward, done = 0.0, False
        for _ in range(self.task.frameskip):
            obs, r, terminated, truncated, info = self._env.step(action)
            reward += float(r)
            done = bool(terminated or truncated)
            if done:
                break
        self._last_pov = obs["pov"]
        return obs, reward, done, info

    def noop_action(self) -> Dict[str, Any]:
        """The action that does nothing: every button 0 and a zero camera."""
        return noop_action()

    def render(self, mode: str = "human") -> Optional[np.ndarray]:
        """The last ``pov`` frame as an RGB array (MineLite opens no window, also for ``mode="human"``)."""
        if mode not in self.metadata["render.modes"]:
            raise ValueError(f"render mode {mode!r} not supported; expected one of {self.metadata['render.modes']}")
        return None if self._last_pov is None else self._last_pov.copy()

    def close(self) -> None:
        self._env.close()

    def __enter__(self) -> "MineRLEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _refuse_minerl_settings(minelite_kwargs: Mapping[str, Any]) -> None:
    for key in ("resolution", "max_steps", "fov"):
        if key in minelite_kwargs:
            raise ValueError(f"{key!r} is set through MineRL's arguments of HumanSurvival (resolution, "
                             "max_episode_steps, fov_range), not as a MineLite argument")


def minerl_action(action: Mapping[str, Any]) -> Dict[str, Any]:
    """A MineRL action as ``MineLiteEnv`` takes it: a leading batch dimension of 1 is dropped (buttons of shape
    ``(1,)``, a camera of shape ``(1, 2)``); everything else is passed on unchanged for the env to check."""
    if not isinstance(action, Mapping):
        raise TypeError(f"action must be a dict of MineRL keys, got {type(action).__name__}")
    out = {}
    for key, value in action.items():
        arr = np.asarray(value) if isinstance(value, (np.ndarray, list, tuple)) else None
        if arr is not None and key == "camera" and arr.shape == (1, 2):
            value = arr[0]
        elif arr is not None and key != "camera" and arr.shape == (1,):
            value = arr[0]
        out[key] = value
    return out


def _as_minerl_space(space):
    """``space`` (Gymnasium) as the old ``gym`` package's space when ``gym`` is importable, as MineRL's spaces
    are (agent.py compares them with ``gym.spaces`` objects); else ``space`` itself."""
    try:
        import gym.spaces as gym_spaces  # optional: MineRL 1.0's old gym; absent in most installs
    except ImportError:
        return space
    return _convert(space, gym_spaces)


def _convert(space, gym_spaces):
    if isinstance(space, gymnasium_spaces.Dict):
        return gym_spaces.Dict({k: _convert(v, gym_spaces) for k, v in space.spaces.items()})
    if isinstance(space, gymnasium_spaces.Discrete):
        return gym_spaces.Discrete(int(space.n))
    if isinstance(space, gymnasium_spaces.Box):
        return gym_spaces.Box(low=space.low, high=space.high, shape=space.shape, dtype=space.dtype)
    raise TypeError(f"no gym counterpart for {type(space).__name__}")
