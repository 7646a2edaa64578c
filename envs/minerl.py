"""MineRL 1.0 (old gym API) -> Gymnasium adapter, and the ``vpt_rl/MineRL-*`` env factories.

MineRL 1.0 envs speak the old gym API: ``reset() -> obs`` (no seed argument; ``env.seed(s)`` sets the
next world seed), ``step(a) -> (obs, reward, done, info)``, gym/MineRL space classes, no step limit in
HumanSurvival. :class:`MineRLEnv` turns such an env into a Gymnasium env:

* ``reset(seed=..., options=...) -> (obs, info)``; ``seed`` is passed to the inner ``env.seed`` first;
* ``step(a) -> (obs, reward, terminated, truncated, info)``; ``truncated`` at ``max_steps`` (or when the inner
  env reports ``info["TimeLimit.truncated"]``);
* spaces converted to ``gymnasium.spaces`` (Dict, Box, Discrete, MultiDiscrete, MultiBinary, Tuple; MineRL's
  string ``Enum`` spaces become ``Discrete`` and their string observations indices); bool Boxes stay bool;
* ``close()`` closes the inner env.

Nothing here imports MineRL at module import; :func:`make_human_survival` and :func:`make_basalt` import it
when called and raise :class:`gymnasium.error.DependencyNotInstalled` (saying how to install) when absent.

Example with any old-gym-style env (MineRL itself needs JDK 8)::

    import vpt_rl.envs, gymnasium as gym
    env = gym.make("vpt_rl/MineRL-HumanSurvival-v0", max_steps=12000)
    obs, info = env.reset(seed=42)
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import DependencyNotInstalled

__all__ = [
    "ENV_KWARGS",
    "BASALT_TASKS",
    "HUMAN_SURVIVAL_MAX_STEPS",
    "INSTALL_HINT",
    "MineRLEnv",
    "convert_space",
    "make_human_survival",
    "make_basalt",
]

# agent.py ENV_KWARGS: what the released VPT models were trained with (640x360, FOV 70, ...).
ENV_KWARGS: Dict[str, Any] = dict(
    fov_range=[70, 70],
    frameskip=1,
    gamma_range=[2, 2],
    guiscale_range=[1, 1],
    resolution=[640, 360],
    cursor_size_range=[16.0, 16.0],
)
# VPT paper: RL episodes of 10 minutes = 12,000 ticks at 20 Hz (HumanSurvival itself never ends).
HUMAN_SURVIVAL_MAX_STEPS = 12_000
# MineRL 1.0 BASALT task ids and their episode limits in ticks (BASALT 2022 rules: 3, 5, 5 and 12 minutes).
BASALT_TASKS: Dict[str, Tuple[str, int]] = {
    "FindCave": ("MineRLBasaltFindCave-v0", 3_600),
    "MakeWaterfall": ("MineRLBasaltMakeWaterfall-v0", 6_000),
    "CreateVillageAnimalPen": ("MineRLBasaltCreateVillageAnimalPen-v0", 6_000),
    "BuildVillageHouse": ("MineRLBasaltBuildVillageHouse-v0", 14_400),
}
INSTALL_HINT = (
    "MineRL 1.0 is not installed. It needs JDK 8 and downloads Minecraft at install time: "
    "install a JDK 8, then `pip install 'vpt-rl[minerl]'` (i.e. "
    "`pip install git+https://github.com/minerllabs/minerl@v1.0.2`). "
    "Without MineRL, use the embedded world: make_vpt_env('vpt_rl/MineLite-v0')."
)


# ---------------------------------------------------------------------------------------------- spaces


def _space_kind(space: Any) -> str:
    """Classify a gym / MineRL / duck-typed space by its attributes (``gym`` itself is not needed)."""
    name = type(space).__name__
    if isinstance(space, spaces.Space):
        return "gymnasium"
    values = getattr(space, "values", None)
    if values is not None and not callable(values) and hasattr(space, "n"):
        return "enum"  # MineRL Enum: a Discrete over string values
    if isinstance(getattr(space, "spaces", None), dict) or name == "Dict":
        return "dict"
    if name == "Tuple" or isinstance(getattr(space, "spaces", None), (tuple, list)):
        return "tuple"
    if hasattr(space, "nvec"):
        return "multidiscrete"
    if hasattr(space, "low") and hasattr(space, "high"):
        return "box"
    if name == "MultiBinary":
        return "multibinary"
    if hasattr(space, "n"):
        return "discrete"
    raise TypeError(f"cannot convert space {space!r} ({name}); expected a gym/MineRL Dict, Box, Discrete, Enum, ...")


def convert_space(space: Any) -> spaces.Space:
    """A ``gymnasium.spaces`` equivalent of a gym or MineRL space (keys, dtypes and bounds kept).

    MineRL ``Enum`` spaces (string values) become ``Discrete(len(values))``.
    """
    return _convert(space)[0]


def _identity(x):
    return x


def _convert(space: Any) -> Tuple[spaces.Space, Callable[[Any], Any]]:
    """(gymnasium space, function converting one observation of the old space to the new one)."""
    kind = _space_kind(space)
    if kind == "gymnasium":
        return space, _identity
    if kind == "dict":
        items = [(k, _convert(s)) for k, s in space.spaces.items()]
        new = spaces.Dict({k: sp for k, (sp, _) in items})
        fns = {k: fn for k, (_, fn) in items}

        def conv_dict(obs, fns=fns):
            out = {}
            for k, fn in fns.items():
                if k not in obs:
                    raise KeyError(f"MineRL observation lacks key {k!r} of its observation space")
                out[k] = fn(obs[k])
            return out

        return new, conv_dict
    if kind == "tuple":
        items = [_convert(s) for s in space.spaces]
        return spaces.Tuple([sp for sp, _ in items]), lambda obs: tuple(fn(o) for (_, fn), o in zip(items, obs))
    if kind == "enum":
        values = [str(v) for v in space.values]
        index = {v: i for i, v in enumerate(values)}

        def conv_enum(obs):
            if isinstance(obs, (str, np.str_)):
                if obs not in index:
                    raise ValueError(f"MineRL Enum value {obs!r} not among the space's {len(values)} values")
                return index[str(obs)]
            return int(obs)

        return spaces.Discrete(len(values)), conv_enum
    if kind == "discrete":
        n = int(space.n)
        start = int(getattr(space, "start", 0))
        return spaces.Discrete(n, start=start), lambda obs: int(np.asarray(obs).reshape(()))
    if kind == "multidiscrete":
        nvec = np.asarray(space.nvec)
        return spaces.MultiDiscrete(nvec), lambda obs: np.asarray(obs, dtype=np.int64)
    if kind == "multibinary":
        n = space.n
        return spaces.MultiBinary(n), lambda obs: np.asarray(obs, dtype=np.int8)
    # Box
    dtype = np.dtype(getattr(space, "dtype", None) or np.float32)
    shape = tuple(getattr(space, "shape", None) or np.shape(space.low))
    low = np.broadcast_to(np.asarray(space.low, dtype=dtype), shape)
    high = np.broadcast_to(np.asarray(space.high, dtype=dtype), shape)
    if dtype == np.bool_:
        # gymnasium Box does not take a bool dtype everywhere; keep the values, store as a bool Box when
        # supported, else MultiBinary of the same shape
        try:
            new = spaces.Box(low=low, high=high, shape=shape, dtype=np.bool_)
        except Exception:  # pragma: no cover - depends on the gymnasium version
            new = spaces.MultiBinary(list(shape) or 1)
        return new, lambda obs: np.asarray(obs, dtype=np.bool_).reshape(shape)
    new = spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
    return new, lambda obs: np.asarray(obs, dtype=dtype).reshape(shape)


# ---------------------------------------------------------------------------------------------- adapter


class MineRLEnv(gym.Env):
    """A MineRL 1.0 (old gym API) env as a Gymnasium env. See the module docstring.

    :param env: the old-gym env (``reset() -> obs``, ``step(a) -> 4-tuple``, optional ``seed(s)``).
    :param max_steps: steps after which an episode is truncated (``None``: only the inner env ends it).
    :param render_mode: ``"rgb_array"`` returns the last ``pov``; ``None`` renders nothing.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, env: Any, max_steps: Optional[int] = None, render_mode: Optional[str] = None):
        for attr in ("reset", "step", "observation_space", "action_space"):
            if not hasattr(env, attr):
                raise TypeError(f"MineRLEnv needs an old-gym env with {attr!r}, got {type(env).__name__}")
        if max_steps is not None and (not isinstance(max_steps, (int, np.integer)) or max_steps < 1):
            raise ValueError(f"max_steps must be a positive int or None, got {max_steps!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.minerl_env = env
        self.max_steps = None if max_steps is None else int(max_steps)
        self.render_mode = render_mode
        self.observation_space, self._obs_fn = _convert(env.observation_space)
        self.action_space, _ = _convert(env.action_space)
        self._act_space = env.action_space
        self._steps = 0
        self._last_obs: Any = None
        self._needs_reset = True

    def _obs(self, raw: Any) -> Any:
        obs = self._obs_fn(raw)
        self._last_obs = obs
        return obs

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        if seed is not None:
            if not hasattr(self.minerl_env, "seed"):
                raise TypeError(f"{type(self.minerl_env).__name__} has no seed(); cannot reset with seed={seed}")
            self.minerl_env.seed(int(seed))
        if options:
            raise ValueError(f"MineRLEnv.reset takes no options, got {options!r}")
        raw = self.minerl_env.reset()
        self._steps = 0
        self._needs_reset = False
        return self._obs(raw), {}

    def _env_action(self, action: Any) -> Any:
        if isinstance(self.action_space, spaces.Dict):
            if not isinstance(action, dict):
                raise TypeError(f"action must be a dict with keys {list(self.action_space.spaces)}, got {type(action).__name__}")
            unknown = [k for k in action if k not in self.action_space.spaces]
            if unknown:
                raise ValueError(f"unknown action keys {unknown}; expected {list(self.action_space.spaces)}")
            out = {}
            for k, sub in self.action_space.spaces.items():
                v = action.get(k, 0)
                if isinstance(sub, spaces.Discrete):
                    out[k] = int(np.asarray(v).reshape(()))
                elif isinstance(sub, spaces.Box):
                    out[k] = np.asarray(v, dtype=sub.dtype).reshape(sub.shape)
                else:
                    out[k] = v
            return out
        return action

    def step(self, action: Any):
        if self._needs_reset:
            raise RuntimeError("MineRLEnv.step called before reset() or after the episode ended")
        raw, reward, done, info = self.minerl_env.step(self._env_action(action))
        self._steps += 1
        info = dict(info or {})
        inner_truncated = bool(info.pop("TimeLimit.truncated", False))
        at_limit = self.max_steps is not None and self._steps >= self.max_steps
        terminated = bool(done) and not inner_truncated
        truncated = (at_limit or inner_truncated) and not terminated
        if terminated or truncated:
            self._needs_reset = True
        return self._obs(raw), float(reward), terminated, truncated, info

    def render(self):
        if self.render_mode == "rgb_array" and isinstance(self._last_obs, dict):
            return self._last_obs.get("pov")
        return None

    def close(self):
        close = getattr(self.minerl_env, "close", None)
        if close is not None:
            close()
        super().close()


# ---------------------------------------------------------------------------------------------- factories


def _import_minerl():
    try:
        import minerl  # noqa: F401
    except ImportError as e:
        raise DependencyNotInstalled(INSTALL_HINT) from e
    return minerl


def make_human_survival(
    max_steps: Optional[int] = HUMAN_SURVIVAL_MAX_STEPS,
    env: Any = None,
    render_mode: Optional[str] = None,
    **env_kwargs: Any,
) -> MineRLEnv:
    """``vpt_rl/MineRL-HumanSurvival-v0``: MineRL 1.0 HumanSurvival with the VPT settings (:data:`ENV_KWARGS`).

    :param max_steps: truncation limit (default 12,000 ticks = the paper's 10-minute episodes).
    :param env: an already built old-gym env to adapt instead (tests, custom MineRL specs).
    :param env_kwargs: override :data:`ENV_KWARGS` (e.g. ``resolution=[640, 360]``).
    """
    if env is None:
        _import_minerl()
        from minerl.herobraine.env_specs.human_survival_specs import HumanSurvival

        unknown = set(env_kwargs) - set(ENV_KWARGS)
        if unknown:
            raise ValueError(f"unknown HumanSurvival kwargs {sorted(unknown)}; expected {sorted(ENV_KWARGS)}")
        env = HumanSurvival(**{**ENV_KWARGS, **env_kwargs}).make()
    elif env_kwargs:
        raise ValueError(f"env_kwargs {sorted(env_kwargs)} given together with an env instance")
    return MineRLEnv(env, max_steps=max_steps, render_mode=render_mode)


def make_basalt(
    task: str,
    max_steps: Optional[int] = None,
    env: Any = None,
    render_mode: Optional[str] = None,
) -> MineRLEnv:
    """``vpt_rl/MineRL-Basalt<Task>-v0``: a MineRL 1.0 BASALT task through the old ``gym.make``.

    :param task: one of :data:`BASALT_TASKS` (``FindCave``, ``MakeWaterfall``, ``CreateVillageAnimalPen``,
        ``BuildVillageHouse``).
    :param max_steps: truncation limit; default the task's own limit (FindCave 3,600 ticks, ...).
    :param env: an already built old-gym env to adapt instead.
    """
    if task not in BASALT_TASKS:
        raise ValueError(f"unknown BASALT task {task!r}; expected one of {sorted(BASALT_TASKS)}")
    minerl_id, limit = BASALT_TASKS[task]
    if env is None:
        _import_minerl()
        import gym as old_gym  # MineRL 1.0 depends on gym<=0.23.1 and registers its ids there

        env = old_gym.make(minerl_id)
    return MineRLEnv(env, max_steps=limit if max_steps is None else max_steps, render_mode=render_mode)
