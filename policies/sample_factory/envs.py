"""Environment glue between the VPT wrapper stack and Sample Factory 2.1.1.

Sample Factory cannot sample ``MultiDiscrete`` action spaces, so every env it sees here has the action space
``Tuple(Discrete(8641), Discrete(121))`` (buttons, camera); :class:`TupleActionWrapper` converts the
``(buttons, camera)`` pair SF sends back into the ``MultiDiscrete([8641, 121])`` action that
:func:`vpt_rl.envs.wrappers.make_vpt_env` expects. Observations stay ``{"pov": uint8 (128, 128, 3)}`` (HWC,
as the VPT network wants it); the SF model in :mod:`vpt_rl.policies.sample_factory.model` reads them as
uint8 and never normalises them.

SF env names (``--env``):

* ``vpt_minelite``: ``vpt_rl/MineLite-v0`` through ``make_vpt_env`` (tech-tree reward, milestones in
  ``info["episode_extra_stats"]``, which SF logs as ``policy_stats/avg_*``).
* ``vpt_minerl_<name>``: the MineRL 1.0 ids registered by :mod:`vpt_rl.envs` (needs MineRL + Java):
  ``vpt_minerl_human_survival`` -> ``vpt_rl/MineRL-HumanSurvival-v0`` and the four BASALT tasks
  (``vpt_minerl_basalt_find_cave`` -> ``vpt_rl/MineRL-BasaltFindCave-v0``, ...).
* ``vpt_debug``: :class:`DebugVPTEnv`, a cheap random-frame env with the VPT spaces and a fake milestone,
  used by the tests and to measure the SF overhead without a simulator.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import vpt_rl.envs  # noqa: F401  (registers the gymnasium ids that make_vpt_env builds)
from vpt_rl.actions import N_BUTTON_CLASSES, N_CAMERA_CLASSES, NULL_CAMERA
from vpt_rl.envs.registration import MINELITE_ID, MINERL_BASALT_IDS, MINERL_HUMAN_SURVIVAL_ID
from vpt_rl.envs.wrappers import VPT_RESOLUTION, make_vpt_env

POV_SHAPE = (*VPT_RESOLUTION, 3)  # uint8 RGB HWC frames, as the VPT network reads them

# SF env name -> gymnasium id of the raw (MineRL-action-space) env wrapped by make_vpt_env
SF_ENV_IDS: Dict[str, str] = {
    "vpt_minelite": MINELITE_ID,
    "vpt_minerl_human_survival": MINERL_HUMAN_SURVIVAL_ID,
    "vpt_minerl_basalt_find_cave": MINERL_BASALT_IDS["FindCave"],
    "vpt_minerl_basalt_make_waterfall": MINERL_BASALT_IDS["MakeWaterfall"],
    "vpt_minerl_basalt_create_village_animal_pen": MINERL_BASALT_IDS["CreateVillageAnimalPen"],
    "vpt_minerl_basalt_build_village_house": MINERL_BASALT_IDS["BuildVillageHouse"],
}
DEBUG_ENV_NAME = "vpt_debug"


def sf_action_space() -> spaces.Tuple:
    """The action space SF samples: ``Tuple(Discrete(8641), Discrete(121))`` (buttons, camera)."""
    return spaces.Tuple((spaces.Discrete(N_BUTTON_CLASSES), spaces.Discrete(N_CAMERA_CLASSES)))


class TupleActionWrapper(gym.ActionWrapper):
    """Expose a ``MultiDiscrete([8641, 121])`` env as ``Tuple(Discrete(8641), Discrete(121))``.

    SF hands the env either a length-2 array ``[buttons, camera]`` (all-discrete tuples) or a pair; both are
    accepted and converted to the ``int64`` array the inner env's ``MultiDiscrete`` space contains.

    >>> env = TupleActionWrapper(DebugVPTEnv(episode_len=3))
    >>> env.action_space
    Tuple(Discrete(8641), Discrete(121))
    >>> env.action(np.array([5, 60])).tolist()
    [5, 60]
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, spaces.MultiDiscrete) or list(np.asarray(space.nvec).ravel()) != [
            N_BUTTON_CLASSES,
            N_CAMERA_CLASSES,
        ]:
            raise TypeError(
                f"TupleActionWrapper expects an env with action space MultiDiscrete([{N_BUTTON_CLASSES}, "
                f"{N_CAMERA_CLASSES}]) (make_vpt_env's), got {space!r}"
            )
        self.action_space = sf_action_space()

    def action(self, action: Any) -> np.ndarray:
        arr = np.asarray(action, dtype=np.int64).reshape(-1)
        if arr.shape != (2,):
            raise ValueError(f"expected a (buttons, camera) action pair, got {action!r}")
        if not (0 <= arr[0] < N_BUTTON_CLASSES and 0 <= arr[1] < N_CAMERA_CLASSES):
            raise ValueError(
                f"action {arr.tolist()} out of range: buttons must be in [0, {N_BUTTON_CLASSES}), camera in "
                f"[0, {N_CAMERA_CLASSES})"
            )
        return arr


class DebugVPTEnv(gym.Env):
    """A cheap env with the VPT wrapper-stack spaces, for tests and overhead measurements.

    Observations are ``{"pov": uint8 (128, 128, 3)}`` random-ish frames (a fixed noise image shifted by the
    step count, so consecutive frames differ); the action space is ``MultiDiscrete([8641, 121])``. Reward is
    1 whenever the camera action is the null camera (bin 60), so a policy can learn something; an episode
    lasts ``episode_len`` steps and reports ``info["episode_extra_stats"] = {"debug_milestone": 0/1}``
    (1 when any positive reward was collected), mimicking the tech-tree milestones.

    >>> env = DebugVPTEnv(episode_len=2)
    >>> obs, info = env.reset(seed=0)
    >>> obs["pov"].shape, obs["pov"].dtype
    ((128, 128, 3), dtype('uint8'))
    >>> _ = env.step(np.array([0, 60])); _, r, term, trunc, info = env.step(np.array([0, 0]))
    >>> r, trunc, info["episode_extra_stats"]
    (0.0, True, {'debug_milestone': 1.0})
    """

    metadata = {"render_modes": []}

    def __init__(self, episode_len: int = 64, seed: Optional[int] = None):
        if int(episode_len) < 1:
            raise ValueError(f"episode_len must be >= 1, got {episode_len!r}")
        self.episode_len = int(episode_len)
        self.observation_space = spaces.Dict({"pov": spaces.Box(0, 255, POV_SHAPE, dtype=np.uint8)})
        self.action_space = spaces.MultiDiscrete([N_BUTTON_CLASSES, N_CAMERA_CLASSES])
        self._rng = np.random.default_rng(seed)
        self._base = self._rng.integers(0, 256, size=(128, 256, 3), dtype=np.uint8)
        self._t = 0
        self._return = 0.0

    def _obs(self) -> Dict[str, np.ndarray]:
        shift = (self._t * 3) % 128
        return {"pov": np.ascontiguousarray(self._base[:, shift : shift + 128])}

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self._base = self._rng.integers(0, 256, size=(128, 256, 3), dtype=np.uint8)
        self._t = 0
        self._return = 0.0
        return self._obs(), {}

    def step(self, action):
        act = np.asarray(action).reshape(-1)
        reward = 1.0 if int(act[1]) == NULL_CAMERA else 0.0
        self._return += reward
        self._t += 1
        truncated = self._t >= self.episode_len
        info: Dict[str, Any] = {}
        if truncated:
            info["episode_extra_stats"] = {"debug_milestone": float(self._return > 0)}
        return self._obs(), reward, False, truncated, info


def parse_env_kwargs(text) -> Dict[str, Any]:
    """``--env_kwargs`` (a JSON object string, a dict or None) -> dict."""
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        return dict(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--env_kwargs must be a JSON object, got {text!r}: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"--env_kwargs must be a JSON object, got {text!r}")
    return value


def make_vpt_sf_env(full_env_name: str, cfg=None, env_config=None, render_mode: Optional[str] = None) -> gym.Env:
    """SF env factory (``register_env`` signature) for every name in :data:`SF_ENV_IDS` and ``vpt_debug``.

    Reads ``cfg.episode_steps`` (max steps per episode; 0/None keeps the env's default) and ``cfg.env_kwargs``
    (a JSON object passed to ``make_vpt_env``, e.g. ``'{"world_size": [32, 24, 32]}'``) when present.
    """
    env_kwargs = parse_env_kwargs(getattr(cfg, "env_kwargs", None) if cfg is not None else None)
    max_steps = getattr(cfg, "episode_steps", None) if cfg is not None else None
    max_steps = int(max_steps) if max_steps else None
    seed = None
    if env_config is not None and cfg is not None and getattr(cfg, "seed", None) is not None:
        seed = int(cfg.seed) * 1000 + int(env_config.get("env_id", 0))
    if full_env_name == DEBUG_ENV_NAME:
        return TupleActionWrapper(DebugVPTEnv(episode_len=max_steps or 64, seed=seed))
    if full_env_name not in SF_ENV_IDS:
        raise ValueError(
            f"unknown VPT env name {full_env_name!r}; expected one of {sorted(SF_ENV_IDS) + [DEBUG_ENV_NAME]}"
        )
    env = make_vpt_env(SF_ENV_IDS[full_env_name], reward="techtree", max_steps=max_steps, **env_kwargs)
    return TupleActionWrapper(env)
