"""VPT wrappers: small single-purpose ``gymnasium.Wrapper`` classes and :func:`make_vpt_env`, the standard stack.

=====================  ============================================================================
wrapper                what it does
=====================  ============================================================================
:class:`ResizePov`     ``pov`` -> 128x128 RGB uint8 with OpenCV ``INTER_LINEAR`` (as the official agent)
:class:`VPTActions`    ``MultiDiscrete([8641, 121])`` joint actions -> MineRL 1.0 env action dicts
:class:`TechTreeReward`  the paper's shaped reward from inventory increases (table is an argument)
:class:`EpisodeStats`  milestone flags, return and length in ``info`` at episode end (SB3 / Sample Factory)
=====================  ============================================================================

:func:`make_vpt_env` stacks them (inner to outer): ``gym.make(env_id)`` -> ``TimeLimit`` (if ``max_steps``) ->
``TechTreeReward`` -> ``EpisodeStats`` -> ``VPTActions`` -> ``ResizePov``. The reward and stats wrappers
sit inside ``ResizePov`` because they read ``obs["inventory"]``, which the default observation drops.

Stable ``info`` keys (at the final step of an episode, from :class:`EpisodeStats`):

* ``info["milestones"]``: ``{name: bool}`` for every name in :data:`~vpt_rl.envs.rewards.MILESTONES`
  (``log``, ``planks``, ``crafting_table``, ``wooden_pickaxe``, ``cobblestone``, ``stone_pickaxe``,
  ``furnace``, ``iron_ore``, ``iron_ingot``, ``iron_pickaxe``, ``diamond``, ``diamond_pickaxe``).
* ``info["episode_extra_stats"]``: ``{"milestone_<name>": 0.0/1.0, ..., "milestones_reached": float,
  "episode_return": float, "episode_length": float}``; Sample Factory logs these as ``policy_stats/avg_*``.

Every step :class:`TechTreeReward` adds ``info["techtree"] = {"reward", "progress", "first_tick"}``.

Example on a fake env (any env whose observation is an image works too):

>>> import gymnasium as gym, numpy as np
>>> from vpt_rl.envs.wrappers import make_vpt_env
>>> env = make_vpt_env("vpt_rl/MineLite-v0", max_steps=10)  # doctest: +SKIP
>>> obs, info = env.reset(seed=0)  # doctest: +SKIP
>>> obs["pov"].shape, env.action_space  # doctest: +SKIP
((128, 128, 3), MultiDiscrete([8641   121]))
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import cv2
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vpt_rl import actions as vpt_actions
from vpt_rl.envs.rewards import MILESTONES, PAPER_TECH_TREE, InventoryTracker, ItemReward, resolve_table
from vpt_rl.model_config import AGENT_RESOLUTION

__all__ = [
    "VPT_RESOLUTION",
    "MILESTONES_KEY",
    "EXTRA_STATS_KEY",
    "TECHTREE_KEY",
    "ResizePov",
    "VPTActions",
    "TechTreeReward",
    "EpisodeStats",
    "make_vpt_env",
    "resize_pov",
]

VPT_RESOLUTION = AGENT_RESOLUTION  # (height, width) of the agent's view
MILESTONES_KEY = "milestones"
EXTRA_STATS_KEY = "episode_extra_stats"  # sample_factory: info["episode_extra_stats"] -> policy_stats/avg_*
TECHTREE_KEY = "techtree"


def resize_pov(img: np.ndarray, size: Tuple[int, int] = VPT_RESOLUTION) -> np.ndarray:
    """Resize an RGB uint8 frame as the official agent does: ``cv2.resize`` with ``INTER_LINEAR``.

    :param img: uint8 ``(H, W, 3)``.
    :param size: ``(height, width)`` of the result.
    :return: uint8 ``(height, width, 3)``; ``img`` itself when it already has that size.
    """
    if img.shape[:2] == tuple(size):
        return img
    # parity: agent.py resize_image -- cv2 dsize is (width, height); INTER_LINEAR on uint8, no anti-aliasing
    return cv2.resize(np.ascontiguousarray(img), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


class ResizePov(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Observation ``{"pov": uint8 (128, 128, 3)}``, resized with OpenCV ``INTER_LINEAR`` as in VPT's agent.

    :param env: env whose observation is a ``Dict`` with an RGB ``pov`` Box, or an RGB image ``Box``.
    :param size: ``(height, width)``; default VPT's 128x128. A ``pov`` already that size is passed as is.
    :param keep_keys: other observation keys to keep (``True`` = all of them); default none.

    >>> import gymnasium as gym, numpy as np
    >>> from gymnasium import spaces
    >>> class Img(gym.Env):
    ...     observation_space = spaces.Box(0, 255, (360, 640, 3), np.uint8)
    ...     action_space = spaces.Discrete(1)
    ...     def reset(self, *, seed=None, options=None):
    ...         return np.zeros((360, 640, 3), np.uint8), {}
    >>> obs, _ = ResizePov(Img()).reset()
    >>> obs["pov"].shape, obs["pov"].dtype
    ((128, 128, 3), dtype('uint8'))
    """

    def __init__(self, env: gym.Env, size: Tuple[int, int] = VPT_RESOLUTION, keep_keys: Union[bool, Sequence[str]] = ()):
        gym.utils.RecordConstructorArgs.__init__(self, size=size, keep_keys=keep_keys)
        gym.ObservationWrapper.__init__(self, env)
        if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
            raise ValueError(f"size must be (height, width) positive ints, got {size!r}")
        self.size = (int(size[0]), int(size[1]))
        space = env.observation_space
        if isinstance(space, spaces.Dict):
            if "pov" not in space.spaces:
                raise ValueError(f"observation Dict has no 'pov' key; keys are {list(space.spaces)}")
            pov_space = space.spaces["pov"]
            self._is_dict = True
        elif isinstance(space, spaces.Box):
            pov_space = space
            self._is_dict = False
        else:
            raise TypeError(f"ResizePov needs a Dict observation with 'pov' or an image Box, got {space}")
        if not isinstance(pov_space, spaces.Box) or len(pov_space.shape) != 3 or pov_space.shape[2] != 3:
            raise ValueError(f"pov must be a Box of shape (H, W, 3), got {pov_space}")
        if pov_space.dtype != np.uint8:
            raise ValueError(f"pov must be uint8 RGB, got dtype {pov_space.dtype}")
        if keep_keys is True:
            kept = [k for k in (space.spaces if self._is_dict else {}) if k != "pov"]
        elif keep_keys is False or keep_keys is None:
            kept = []
        else:
            if isinstance(keep_keys, str):
                keep_keys = (keep_keys,)
            kept = list(keep_keys)
            available = list(space.spaces) if self._is_dict else []
            for k in kept:
                if k not in available or k == "pov":
                    raise ValueError(f"cannot keep observation key {k!r}; available: {[a for a in available if a != 'pov']}")
        self.keep_keys: Tuple[str, ...] = tuple(kept)
        new = {"pov": spaces.Box(0, 255, (self.size[0], self.size[1], 3), np.uint8)}
        for k in self.keep_keys:
            new[k] = space.spaces[k]
        self.observation_space = spaces.Dict(new)

    def observation(self, observation: Any) -> Dict[str, Any]:
        pov = observation["pov"] if self._is_dict else observation
        out = {"pov": resize_pov(np.asarray(pov, dtype=np.uint8), self.size)}
        for k in self.keep_keys:
            out[k] = observation[k]
        return out


class VPTActions(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Action space ``MultiDiscrete([8641, 121])`` (VPT's joint buttons x camera) over a MineRL-style env.

    Each action ``[buttons_idx, camera_idx]`` becomes a MineRL 1.0 action dict through
    :func:`vpt_rl.actions.agent_to_env` (ESC, pickItem and swapHands held at 0; camera float32 degrees).
    The inner env's action space must be a ``Dict`` holding the 20 VPT buttons and ``camera``; keys it lacks
    (e.g. ``ESC``) are left out of the dict.

    >>> import gymnasium as gym, numpy as np
    >>> from gymnasium import spaces
    >>> from vpt_rl import actions
    >>> class Keys(gym.Env):
    ...     observation_space = spaces.Discrete(1)
    ...     action_space = spaces.Dict({k: spaces.Discrete(2) for k in actions.ENV_ACTION_KEYS if k != "camera"}
    ...                                | {"camera": spaces.Box(-180, 180, (2,), np.float32)})
    >>> env = VPTActions(Keys())
    >>> a = env.action(np.array([293, 63]))
    >>> a["forward"], a["attack"], a["camera"].tolist()
    (1, 1, [0.0, 3.21536922454834])
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ActionWrapper.__init__(self, env)
        inner = env.action_space
        if not isinstance(inner, spaces.Dict):
            raise TypeError(f"VPTActions needs a MineRL-style Dict action space, got {inner}")
        missing = [k for k in (*vpt_actions.BUTTONS_ALL, "camera") if k not in inner.spaces]
        if missing:
            raise ValueError(f"inner action space lacks VPT keys {missing}; expected MineRL 1.0 keys")
        self._drop = tuple(k for k in vpt_actions.ENV_ACTION_KEYS if k not in inner.spaces)
        self.action_space = vpt_actions.action_space()

    def action(self, action: Any) -> Dict[str, Any]:
        a = np.asarray(action)
        if a.shape != (2,):
            raise ValueError(f"VPT action must be [buttons_idx, camera_idx] of shape (2,), got shape {a.shape}: {action!r}")
        env_action = vpt_actions.agent_to_env(a[0], a[1])
        for k in self._drop:
            del env_action[k]
        return env_action

    def reverse_action(self, action: Mapping[str, Any]) -> np.ndarray:
        """A MineRL env action dict -> the joint VPT action (``env_to_agent``), int64 ``(2,)``."""
        return np.array(vpt_actions.env_to_agent(action), dtype=np.int64)


def _inventory_space_ok(env: gym.Env, inventory_key: str) -> bool:
    space = env.observation_space
    return isinstance(space, spaces.Dict) and inventory_key in space.spaces


class TechTreeReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """The VPT paper's shaped reward: a reward per newly obtained unit of each item, up to the item's cap.

    Units are counted from increases of ``obs[inventory_key]`` (any wood type counts as log / planks; items
    held at reset earn nothing; consumed items are not rewarded again until the cumulative obtained count
    passes the cap). The env's own reward is replaced unless ``add_env_reward``.

    :param env: env whose observation Dict has ``inventory`` (item name -> count), e.g. MineRL or MineLite.
    :param table: ``"techtree"`` (paper Table 7, default), ``"obtain_diamond"`` (MineRL 0.4 once-per-item)
        or a mapping ``item -> ItemReward`` (see :mod:`vpt_rl.envs.rewards`).
    :param add_env_reward: add the inner env's reward to the shaped one.
    :param inventory_key: observation key of the inventory dict.

    ``info["techtree"]`` each step: ``reward`` (this step's shaped reward), ``progress`` (cumulative obtained
    units per table item) and ``first_tick`` (1-based step at which each item was first obtained, only for
    items obtained so far).

    >>> import gymnasium as gym, numpy as np
    >>> from gymnasium import spaces
    >>> class Logs(gym.Env):  # one more birch log every step
    ...     observation_space = spaces.Dict({"inventory": spaces.Dict({"birch_log": spaces.Box(0, 64, (), np.int64)})})
    ...     action_space = spaces.Discrete(1)
    ...     def reset(self, *, seed=None, options=None):
    ...         self.n = 0
    ...         return {"inventory": {"birch_log": np.int64(0)}}, {}
    ...     def step(self, action):
    ...         self.n += 1
    ...         return {"inventory": {"birch_log": np.int64(self.n)}}, 0.0, False, False, {}
    >>> env = TechTreeReward(Logs())
    >>> _ = env.reset()
    >>> [env.step(0)[1] for _ in range(10)]  # 1/8 per log, capped at 8 logs
    [0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.0, 0.0]
    """

    def __init__(
        self,
        env: gym.Env,
        table: Union[str, Mapping[str, ItemReward]] = PAPER_TECH_TREE,
        *,
        add_env_reward: bool = False,
        inventory_key: str = "inventory",
    ):
        gym.utils.RecordConstructorArgs.__init__(
            self, table=table, add_env_reward=add_env_reward, inventory_key=inventory_key
        )
        gym.Wrapper.__init__(self, env)
        if not _inventory_space_ok(env, inventory_key):
            raise ValueError(
                f"TechTreeReward reads obs[{inventory_key!r}], but the observation space is {env.observation_space}"
            )
        self.table = resolve_table(table)
        self.add_env_reward = bool(add_env_reward)
        self.inventory_key = inventory_key
        self.tracker = InventoryTracker(self.table)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.tracker.reset(obs[self.inventory_key])
        info = dict(info)
        info[TECHTREE_KEY] = self._info(0.0)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        shaped = self.tracker.update(obs[self.inventory_key])
        info = dict(info)
        info[TECHTREE_KEY] = self._info(shaped)
        total = shaped + float(reward) if self.add_env_reward else shaped
        return obs, total, terminated, truncated, info

    def _info(self, reward: float) -> Dict[str, Any]:
        return {
            "reward": reward,
            "progress": self.tracker.progress(),
            "first_tick": {k: t for k, t in self.tracker.first_tick.items() if t is not None},
        }


class EpisodeStats(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """At an episode's last step, put milestone flags, return and length into ``info``.

    ``info["milestones"]`` = ``{name: bool}`` (item obtained at least once this episode, from inventory
    increases; any wood type counts as log / planks) and ``info["episode_extra_stats"]`` =
    ``{"milestone_<name>": 0.0/1.0, "milestones_reached": float, "episode_return": float,
    "episode_length": float}``, which Sample Factory logs as ``policy_stats/avg_<key>`` and the SB3 callback
    of :mod:`vpt_rl.policies.sb3` logs to TensorBoard. The return is the sum of the rewards that reach this
    wrapper (the shaped reward when it sits outside :class:`TechTreeReward`).

    :param env: any env; without an ``inventory`` observation every milestone stays False (with a warning).
    :param milestones: names to report; default :data:`~vpt_rl.envs.rewards.MILESTONES`.
    :param flat_info: also copy the ``episode_extra_stats`` entries to top-level ``info`` keys, so that
        SB3's ``Monitor(env, info_keywords=...)`` can record them.
    :param inventory_key: observation key of the inventory dict.
    """

    def __init__(
        self,
        env: gym.Env,
        milestones: Sequence[str] = MILESTONES,
        *,
        flat_info: bool = False,
        inventory_key: str = "inventory",
    ):
        gym.utils.RecordConstructorArgs.__init__(
            self, milestones=milestones, flat_info=flat_info, inventory_key=inventory_key
        )
        gym.Wrapper.__init__(self, env)
        if isinstance(milestones, str) or not all(isinstance(m, str) for m in milestones):
            raise TypeError(f"milestones must be a sequence of item names, got {milestones!r}")
        self.milestones: Tuple[str, ...] = tuple(milestones)
        self.flat_info = bool(flat_info)
        self.inventory_key = inventory_key
        self._has_inventory = _inventory_space_ok(env, inventory_key)
        if not self._has_inventory and self.milestones:
            warnings.warn(
                f"EpisodeStats: the observation has no {inventory_key!r} key, so milestones are always False",
                stacklevel=2,
            )
        self.tracker = InventoryTracker({}, extra_items=self.milestones) if self.milestones else None
        self._return = 0.0
        self._length = 0

    @staticmethod
    def stat_keys(milestones: Sequence[str] = MILESTONES) -> Tuple[str, ...]:
        """The keys of ``info["episode_extra_stats"]`` (e.g. for ``Monitor(info_keywords=...)``)."""
        return tuple(f"milestone_{m}" for m in milestones) + ("milestones_reached", "episode_return", "episode_length")

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._return = 0.0
        self._length = 0
        if self.tracker is not None:
            self.tracker.reset(obs[self.inventory_key] if self._has_inventory else None)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        self._length += 1
        if self.tracker is not None:
            self.tracker.update(obs[self.inventory_key] if self._has_inventory else None)
        if terminated or truncated:
            info = dict(info)
            reached = {m: self.tracker.obtained[m] > 0 for m in self.milestones} if self.tracker else {}
            stats = {f"milestone_{m}": float(v) for m, v in reached.items()}
            stats["milestones_reached"] = float(sum(reached.values()))
            stats["episode_return"] = self._return
            stats["episode_length"] = float(self._length)
            info[MILESTONES_KEY] = reached
            info[EXTRA_STATS_KEY] = stats
            if self.flat_info:
                info.update(stats)
        return obs, reward, terminated, truncated, info


def check_step_limit(max_steps: Any, name: str = "max_steps") -> Optional[int]:
    """``None`` or a whole number of steps >= 1 as an ``int``; a float is accepted only when whole (``1e4``), so
    that ``2.5`` is refused instead of silently becoming 2.

    :raises ValueError: naming ``name``, the value and what is expected.
    """
    if max_steps is None:
        return None
    whole = (isinstance(max_steps, (int, float, np.integer, np.floating)) and not isinstance(max_steps, bool)
             and float(max_steps).is_integer())
    if not whole or max_steps < 1:
        raise ValueError(f"{name} must be a whole number of steps >= 1 or None, got {max_steps!r}")
    return int(max_steps)


def make_vpt_env(
    env_id: Union[str, gym.Env],
    *,
    reward: Union[None, str, Mapping[str, ItemReward]] = "techtree",
    max_steps: Optional[int] = None,
    keep_keys: Union[bool, Sequence[str]] = (),
    size: Tuple[int, int] = VPT_RESOLUTION,
    flat_info: bool = False,
    **env_kwargs: Any,
) -> gym.Env:
    """The standard VPT stack: obs ``{"pov": uint8 (128, 128, 3)}``, action ``MultiDiscrete([8641, 121])``.

    :param env_id: a Gymnasium id (``"vpt_rl/MineLite-v0"``, ``"vpt_rl/MineRL-HumanSurvival-v0"``,
        ``"vpt_rl/MineRL-BasaltFindCave-v0"``, ...) or an already built MineRL-style Gymnasium env.
    :param reward: ``"techtree"`` (paper, default), ``"obtain_diamond"`` (MineRL 0.4 once-per-item), a table
        mapping, or ``None`` / ``"env"`` to keep the env's own reward.
    :param max_steps: episode step limit (Gymnasium ``TimeLimit``, truncation), a whole number >= 1; ``None`` keeps
        the env's.
    :param keep_keys: observation keys to keep besides ``pov`` (``True`` = all), e.g. ``("inventory",)``.
    :param size: ``(height, width)`` of ``pov``; VPT's networks need 128x128.
    :param flat_info: see :class:`EpisodeStats`.
    :param env_kwargs: passed to ``gymnasium.make``.

    Example (SB3)::

        from stable_baselines3.common.env_util import make_vec_env
        venv = make_vec_env(lambda: make_vpt_env("vpt_rl/MineLite-v0", max_steps=2000), n_envs=4)
    """
    max_steps = check_step_limit(max_steps)
    if isinstance(env_id, gym.Env):
        if env_kwargs:
            raise ValueError(f"env_kwargs {sorted(env_kwargs)} given with an env instance; pass them when building it")
        env = env_id
        if max_steps is not None:
            env = gym.wrappers.TimeLimit(env, max_episode_steps=max_steps)
    elif isinstance(env_id, str):
        if max_steps is not None:
            env_kwargs["max_episode_steps"] = max_steps
        env = gym.make(env_id, **env_kwargs)
    else:
        raise TypeError(f"env_id must be a Gymnasium id or a gymnasium.Env, got {env_id!r}")
    if reward is not None and reward != "env":
        env = TechTreeReward(env, table=reward)
    env = EpisodeStats(env, flat_info=flat_info)
    env = VPTActions(env)
    env = ResizePov(env, size=size, keep_keys=keep_keys)
    return env
