"""The MineRL 1.0 -> Gymnasium adapter on a stand-in old-gym env built from MineRL 1.0's exact spaces.

MineRL cannot be installed here (JDK 8 + a networked Minecraft build), so the stand-in reproduces the spaces
listed in tests/fixtures/minerl/minerl_1_0_human_survival_spaces.txt (every key, dtype and bound) with duck-typed space
classes named like MineRL's, and the old gym API (reset() -> obs, seed(s), step -> 4-tuple).
"""
import re
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.error import DependencyNotInstalled
from gymnasium.utils.env_checker import check_env

from conftest import MINERL_SPEC
from vpt_rl import actions as A
from vpt_rl.envs.minerl import BASALT_TASKS, MineRLEnv, convert_space, make_basalt, make_human_survival
from vpt_rl.envs.wrappers import EXTRA_STATS_KEY, make_vpt_env

# ---------------------------------------------------------------------------------------------- stand-in


class Box:
    def __init__(self, low, high, shape, dtype):
        self.low, self.high, self.shape, self.dtype = low, high, tuple(shape), np.dtype(dtype)


class Discrete:
    def __init__(self, n):
        self.n = n
        self.dtype = np.dtype(np.int64)


class Enum(Discrete):
    """MineRL's Enum: a Discrete over string values."""

    def __init__(self, *values):
        super().__init__(len(values))
        self.values = np.array(values)


class Dict:
    def __init__(self, d):
        self.spaces = dict(d)


def _parse_spec():
    """(action {key: space}, observation {path tuple: (space, dtype)}, item names) from the spec listing."""
    text = (MINERL_SPEC / "minerl_1_0_human_survival_spaces.txt").read_text().splitlines()
    items = (MINERL_SPEC / "minerl_items_1_16.txt").read_text().split()
    act, obs = {}, {}
    for line in text:
        m = re.match(r"\s+A (\S+) (.*)$", line)
        if m:
            key, sp = m.groups()
            if sp == "Discrete(2)":
                act[key] = Discrete(2)
            else:
                b = re.match(r"Box\(low=(\S+), high=(\S+), shape=\((\d+),\)\)", sp)
                act[key] = Box(float(b[1]), float(b[2]), (int(b[3]),), np.float32)  # MineRL camera is float32
            continue
        m = re.match(r"\s+O (\S+) (\w+)\((.*)\) (\(.*\)) (\w+)$", line)
        if m:
            path, kind, args, shape, dtype = m.groups()
            if kind == "Discrete":
                sp = Discrete(int(args))
            else:
                b = re.match(r"low=(\S+), high=(\S+), shape=(\(.*\))", args)
                conv = (lambda s: s == "True") if dtype == "bool" else float
                sp = Box(conv(b[1]), conv(b[2]), eval(b[3]), dtype)
            obs[tuple(path.strip("/").split("/"))] = sp
    for name in items:  # the listing's header: inventory/<item> is Box(0, 2304, (), int64) for each item
        obs[("inventory", name)] = Box(0, 2304, (), np.int64)
    return act, obs, items


SPEC_ACTIONS, SPEC_OBS, ITEMS = _parse_spec()


def _nest(flat):
    root = {}
    for path, sp in flat.items():
        d = root
        for p in path[:-1]:
            d = d.setdefault(p, {})
        d[path[-1]] = sp
    return root


def _to_dict_space(tree):
    return Dict({k: _to_dict_space(v) if isinstance(v, dict) else v for k, v in tree.items()})


class StandInMineRL:
    """Old-gym env with MineRL 1.0 HumanSurvival's spaces; obs values as MineRL returns them."""

    def __init__(self, episode_len=5, enum_items=False, info_truncated_at=None):
        flat = dict(SPEC_OBS)
        if enum_items:
            for path in [p for p in flat if p[-1] == "type"]:
                flat[path] = Enum(*ITEMS)
        self.enum_items = enum_items
        self.observation_space = _to_dict_space(_nest(flat))
        self.action_space = Dict(SPEC_ACTIONS)
        self.episode_len = episode_len
        self.info_truncated_at = info_truncated_at
        self.seeds, self.actions, self.closed, self._seed, self.t = [], [], False, None, 0

    def seed(self, seed=None):
        self.seeds.append(seed)
        self._seed = seed

    def _obs(self):
        rng = np.random.default_rng(None if self._seed is None else self._seed * 1000 + self.t)
        out = {}
        for path, sp in SPEC_OBS.items():
            d = out
            for p in path[:-1]:
                d = d.setdefault(p, {})
            if path[0] == "pov":
                v = rng.integers(0, 256, sp.shape, dtype=np.uint8)
            elif path[-1] == "type":
                v = "air" if self.enum_items else 0  # MineRL reports the item (name or index)
            elif path[0] == "inventory":
                v = np.int64(min(self.t, 3)) if path[1] == "oak_log" else np.int64(0)
            elif sp.dtype == np.bool_:
                v = True
            elif np.issubdtype(sp.dtype, np.integer):
                v = int(sp.low) if np.ndim(sp.low) == 0 else 0
            else:
                v = float(np.clip(0.5, sp.low, sp.high))
            d[path[-1]] = v
        return out

    def reset(self):
        self.t = 0
        return self._obs()

    def step(self, action):
        assert isinstance(action, dict) and set(action) == set(SPEC_ACTIONS), sorted(action)
        for k, v in action.items():
            if k == "camera":
                assert isinstance(v, np.ndarray) and v.shape == (2,) and v.dtype == np.float32
            else:
                assert type(v) is int and v in (0, 1), (k, v)
        self.actions.append(action)
        self.t += 1
        info = {"isGuiOpen": False}
        if self.info_truncated_at is not None and self.t >= self.info_truncated_at:
            info["TimeLimit.truncated"] = True
            return self._obs(), 0.0, True, info
        return self._obs(), 0.0, self.t >= self.episode_len, info

    def close(self):
        self.closed = True


# ---------------------------------------------------------------------------------------------- spaces


def test_stand_in_covers_the_spec_listing():
    assert len(SPEC_ACTIONS) == 24 and set(SPEC_ACTIONS) == set(A.ENV_ACTION_KEYS)
    assert len(ITEMS) == 976
    assert len([p for p in SPEC_OBS if p[0] != "inventory"]) == 40  # 18 equipped + 7 life + 14 location + pov


def test_spaces_converted_key_by_key():
    env = MineRLEnv(StandInMineRL())
    act = env.action_space
    assert isinstance(act, spaces.Dict) and list(act.spaces) == sorted(SPEC_ACTIONS)
    for k in A.ENV_ACTION_KEYS:
        if k == "camera":
            assert act[k] == spaces.Box(-180.0, 180.0, (2,), np.float32)
        else:
            assert act[k] == spaces.Discrete(2), k
    obs_space = env.observation_space
    for path, sp in SPEC_OBS.items():
        sub = obs_space
        for p in path:
            sub = sub[p]
        if isinstance(sp, Discrete):
            assert sub == spaces.Discrete(sp.n), path
        else:
            assert isinstance(sub, spaces.Box) and sub.dtype == sp.dtype and sub.shape == sp.shape, path
            assert np.all(sub.low == sp.low) and np.all(sub.high == sp.high), path
    assert obs_space["pov"] == spaces.Box(0, 255, (360, 640, 3), np.uint8)
    assert obs_space["life_stats"]["is_alive"].dtype == np.bool_
    assert obs_space["location_stats"]["xpos"] == spaces.Box(-640000.0, 640000.0, (), np.float64)
    assert obs_space["equipped_items"]["mainhand"]["type"] == spaces.Discrete(976)
    assert len(obs_space["inventory"].spaces) == 976


def test_enum_space_becomes_discrete_and_strings_indices():
    env = MineRLEnv(StandInMineRL(enum_items=True))
    assert env.observation_space["equipped_items"]["mainhand"]["type"] == spaces.Discrete(976)
    obs, _ = env.reset(seed=0)
    assert obs["equipped_items"]["mainhand"]["type"] == ITEMS.index("air")
    assert env.observation_space.contains(obs)
    assert convert_space(Enum("a", "b", "c")) == spaces.Discrete(3)


def test_convert_space_rejects_unknown():
    with pytest.raises(TypeError, match="cannot convert"):
        convert_space(object())


# ---------------------------------------------------------------------------------------------- reset / step


def test_reset_passes_seed_through_and_returns_obs_info():
    inner = StandInMineRL()
    env = MineRLEnv(inner)
    obs, info = env.reset(seed=123)
    assert inner.seeds == [123] and info == {}
    assert env.observation_space.contains(obs)
    obs2, _ = env.reset(seed=123)
    np.testing.assert_array_equal(obs["pov"], obs2["pov"])
    env.reset()
    assert inner.seeds == [123, 123]  # no seed -> inner seed() not called
    assert isinstance(obs["location_stats"]["xpos"], np.ndarray) and obs["location_stats"]["xpos"].shape == ()


def test_step_converts_to_five_tuple_and_actions():
    inner = StandInMineRL(episode_len=3)
    env = MineRLEnv(inner)
    env.reset(seed=0)
    a = A.noop_action()
    a["forward"] = np.int64(1)
    a["camera"] = [1.5, -2.0]
    obs, r, term, trunc, info = env.step(a)
    assert (r, term, trunc) == (0.0, False, False) and info == {"isGuiOpen": False}
    assert inner.actions[-1]["forward"] == 1 and inner.actions[-1]["camera"].tolist() == [1.5, -2.0]
    assert obs["inventory"]["oak_log"] == 1
    env.step(A.noop_action())
    _, _, term, trunc, _ = env.step(A.noop_action())
    assert term and not trunc
    with pytest.raises(RuntimeError, match="reset"):
        env.step(A.noop_action())


def test_truncation_at_step_limit_and_inner_time_limit():
    env = MineRLEnv(StandInMineRL(episode_len=100), max_steps=2)
    env.reset(seed=0)
    assert env.step(A.noop_action())[2:4] == (False, False)
    assert env.step(A.noop_action())[2:4] == (False, True)
    env2 = MineRLEnv(StandInMineRL(episode_len=100, info_truncated_at=1))
    env2.reset(seed=0)
    _, _, term, trunc, info = env2.step(A.noop_action())
    assert (term, trunc) == (False, True) and "TimeLimit.truncated" not in info


def test_action_errors_and_close():
    inner = StandInMineRL()
    env = MineRLEnv(inner)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="'craft'"):
        env.step({"craft": 1})
    with pytest.raises(ValueError, match="max_steps"):
        MineRLEnv(inner, max_steps=0)
    with pytest.raises(TypeError, match="reset"):
        MineRLEnv(object())
    env.close()
    assert inner.closed


def test_check_env_on_adapter():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(MineRLEnv(StandInMineRL(episode_len=50)), skip_render_check=True)


# ---------------------------------------------------------------------------------------------- ids / stack


def test_registered_ids_build_with_an_injected_env():
    env = gym.make("vpt_rl/MineRL-HumanSurvival-v0", env=StandInMineRL())
    assert env.unwrapped.max_steps == 12_000
    env.reset(seed=1)
    env.close()
    for task, (_, limit) in BASALT_TASKS.items():
        env = gym.make(f"vpt_rl/MineRL-Basalt{task}-v0", env=StandInMineRL())
        assert env.unwrapped.max_steps == limit
    assert make_basalt("FindCave", env=StandInMineRL()).max_steps == 3600
    with pytest.raises(ValueError, match="'FindDiamonds'"):
        make_basalt("FindDiamonds", env=StandInMineRL())


def test_vpt_stack_on_stand_in():
    inner = StandInMineRL(episode_len=4)
    env = make_vpt_env("vpt_rl/MineRL-HumanSurvival-v0", env=inner)
    assert env.observation_space == spaces.Dict({"pov": spaces.Box(0, 255, (128, 128, 3), np.uint8)})
    assert env.action_space == spaces.MultiDiscrete([8641, 121])
    obs, _ = env.reset(seed=5)
    rewards = []
    for _ in range(4):
        obs, r, term, trunc, info = env.step(np.array([293, 63]))
        rewards.append(r)
    assert term and info[EXTRA_STATS_KEY]["milestone_log"] == 1.0
    assert rewards == pytest.approx([1 / 8, 1 / 8, 1 / 8, 0.0])  # oak_log count 1, 2, 3, 3
    sent = inner.actions[-1]
    assert sent["forward"] == sent["attack"] == 1 and sent["ESC"] == sent["pickItem"] == sent["swapHands"] == 0
    assert obs["pov"].shape == (128, 128, 3)


def test_check_env_on_vpt_stack_over_stand_in():
    env = make_vpt_env("vpt_rl/MineRL-HumanSurvival-v0", env=StandInMineRL(episode_len=50))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)


# ---------------------------------------------------------------------------------------------- no MineRL


def test_clear_error_when_minerl_is_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "minerl", None)  # import minerl -> ImportError, installed or not
    with pytest.raises(DependencyNotInstalled, match=r"pip install .*minerl"):
        gym.make("vpt_rl/MineRL-HumanSurvival-v0")
    with pytest.raises(DependencyNotInstalled, match="JDK 8"):
        make_vpt_env("vpt_rl/MineRL-BasaltFindCave-v0")
    with pytest.raises(DependencyNotInstalled):
        make_human_survival()


def test_importing_envs_does_not_import_minerl():
    code = ("import sys, vpt_rl.envs, gymnasium as gym; "
            "assert 'vpt_rl/MineRL-HumanSurvival-v0' in gym.registry; "
            "assert 'minerl' not in sys.modules and 'vpt_rl.envs.minerl' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
