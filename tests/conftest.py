"""Shared test helpers: where the fixtures live (``tests/fixtures``, see its README), single-thread torch for
reproducible numbers, and the memory-task env of the SB3 tests."""
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from vpt_rl.envs.minelite.env import MineLiteEnv

REPO = Path(__file__).resolve().parents[1]
FIXTURES_ROOT = Path(__file__).resolve().parent / "fixtures"
FIXTURES = FIXTURES_ROOT / "vpt"  # outputs of the official code (openai/Video-Pre-Training @ 095519f)
RELEASED_KEYS = FIXTURES_ROOT / "released_keys"  # state-dict keys of the released 1x/2x/3x/IDM networks
MINERL_SPEC = FIXTURES_ROOT / "minerl"  # MineRL 1.0 HumanSurvival spaces and the 1.16 item list


def pytest_configure(config):
    try:
        import torch

        # One thread: results then do not depend on how a batch is split over threads (we saw ~1e-3
        # differences with 2 threads on perturbed micro nets), and tiny test models gain nothing from more.
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"official fixtures not found at {FIXTURES}: the clone is incomplete (tests/fixtures is tracked)")
    return FIXTURES


def flat_minelite(ground: int = 10):
    """A reset 24x32x24 MineLite world with flat ground at height ``ground``, facing yaw 0, no step limit (the
    mining and crafting tests)."""
    env = MineLiteEnv(world_size=(24, 32, 24), max_steps=None)
    env.reset(seed=0, options={"flat": True, "ground": ground, "yaw": 0.0})
    return env


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Every test starts on one intra-op thread and leaves the count as it found it (a test or a library call
    that changes it cannot leak into the next test). The test nets are tiny: one thread is also faster."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


class CueEnv(gym.Env):
    """Frame 0 shows a red or blue cue, later frames are grey; each grey-frame step earns 1/(len-1) when the
    camera class is on the cue's side (< 60 for red). Episode return: 0.5 expected for any policy without
    memory, 1.0 for one that remembers the cue. ``var_len`` draws lengths 3..ep_len. ``cue_reward`` also
    rewards the right side on the cue frame itself (1.0, a visible hint that speeds learning; the grey
    frames still need memory)."""

    def __init__(self, ep_len=3, seed=None, size=128, var_len=False, cue_reward=False):
        self.observation_space = spaces.Dict({"pov": spaces.Box(0, 255, (size, size, 3), np.uint8)})
        self.action_space = spaces.MultiDiscrete([8641, 121])
        self.ep_len, self.var_len, self.cue_reward = ep_len, var_len, cue_reward
        self.rng = np.random.default_rng(seed)

    def _obs(self):
        img = np.full(self.observation_space["pov"].shape, 128, np.uint8)
        if self.t == 0:
            img[:] = (220, 30, 30) if self.cue == 0 else (30, 30, 220)
        return {"pov": img}

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.cue, self.t = int(self.rng.integers(2)), 0
        self.len = int(self.rng.integers(3, self.ep_len + 1)) if self.var_len else self.ep_len
        return self._obs(), {}

    def step(self, action):
        right = float((int(action[1]) < 60) == (self.cue == 0))
        r = right / (self.len - 1) if self.t > 0 else (right if self.cue_reward else 0.0)
        self.t += 1
        done = self.t >= self.len
        info = {"episode_extra_stats": {"milestone_cue_red": float(self.cue == 0), "episode_length": float(self.len)}} if done else {}
        return self._obs(), r, done, False, info
