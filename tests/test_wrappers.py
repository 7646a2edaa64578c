"""VPT wrappers, each alone on a small fake MineRL-style env, and the make_vpt_env stack (also vectorised)."""
import re
import warnings

import cv2
import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from vpt_rl import actions as A
from vpt_rl.envs.rewards import MILESTONES
from vpt_rl.envs.wrappers import (
    EXTRA_STATS_KEY,
    MILESTONES_KEY,
    EpisodeStats,
    ResizePov,
    TechTreeReward,
    VPTActions,
    make_vpt_env,
    resize_pov,
)

ITEMS = ("air", "oak_log", "birch_log", "oak_planks", "stick", "crafting_table", "wooden_pickaxe", "cobblestone",
         "stone_pickaxe", "furnace", "iron_ore", "iron_ingot", "iron_pickaxe", "diamond", "diamond_pickaxe")


def minerl_action_space():
    d = {k: spaces.Discrete(2) for k in A.ENV_ACTION_KEYS if k != "camera"}
    d["camera"] = spaces.Box(-180.0, 180.0, (2,), np.float32)
    return spaces.Dict(d)


class FakeMineEnv(gym.Env):
    """MineRL-1.0-shaped fake: pov, inventory (from a script, one inventory per step), life_stats."""

    metadata = {"render_modes": []}

    def __init__(self, script=None, pov_shape=(360, 640, 3), env_reward=0.5, with_inventory=True):
        self.script = script or [{}, {"oak_log": 1}, {"oak_log": 2}, {"oak_log": 2, "oak_planks": 4}]
        self.pov_shape = pov_shape
        self.env_reward = env_reward
        self.with_inventory = with_inventory
        obs = {"pov": spaces.Box(0, 255, pov_shape, np.uint8),
               "life_stats": spaces.Dict({"life": spaces.Box(0.0, 20.0, (), np.float64)})}
        if with_inventory:
            obs["inventory"] = spaces.Dict({k: spaces.Box(0, 2304, (), np.int64) for k in ITEMS})
        self.observation_space = spaces.Dict(obs)
        self.action_space = minerl_action_space()
        self.actions = []
        self.t = 0

    def _obs(self):
        obs = {"pov": self.np_random.integers(0, 256, self.pov_shape, dtype=np.uint8),
               "life_stats": {"life": np.array(20.0)}}
        if self.with_inventory:
            inv = self.script[min(self.t, len(self.script) - 1)]
            obs["inventory"] = {k: np.array(inv.get(k, 0), dtype=np.int64) for k in ITEMS}
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        self.actions.append(action)
        self.t += 1
        terminated = self.t >= len(self.script) - 1
        return self._obs(), self.env_reward, terminated, False, {"t": self.t}


def _noop():
    return np.array([A.NULL_BUTTONS, A.NULL_CAMERA])


# ---------------------------------------------------------------------------------------------- ResizePov


def test_resize_is_opencv_inter_linear():
    img = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    out = resize_pov(img)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, cv2.resize(img, (128, 128), interpolation=cv2.INTER_LINEAR))
    assert (out != cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)).any()
    assert (out != cv2.resize(img, (128, 128), interpolation=cv2.INTER_NEAREST)).any()


def test_resize_2x_downscale_is_rounded_block_mean():
    # bilinear sampling at exact factor 2 hits the middle of each 2x2 block: a rounded mean, by hand
    img = np.random.default_rng(1).integers(0, 256, (256, 256, 3)).astype(np.uint8)
    block = img.reshape(128, 2, 128, 2, 3).astype(np.int64).sum(axis=(1, 3))
    expected = (block + 2) // 4  # mean of 4, rounded half up (fixed point)
    np.testing.assert_array_equal(resize_pov(img), expected)


def test_resize_noop_when_already_128():
    img = np.zeros((128, 128, 3), np.uint8)
    assert resize_pov(img) is img


def test_resize_pov_wrapper_spaces_and_keep_keys():
    env = ResizePov(FakeMineEnv())
    assert set(env.observation_space.spaces) == {"pov"}
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    raw = FakeMineEnv()
    raw_obs, _ = raw.reset(seed=3)
    np.testing.assert_array_equal(obs["pov"], cv2.resize(raw_obs["pov"], (128, 128), interpolation=cv2.INTER_LINEAR))
    kept = ResizePov(FakeMineEnv(), keep_keys=("inventory",))
    assert set(kept.observation_space.spaces) == {"pov", "inventory"}
    obs, _ = kept.reset(seed=0)
    assert kept.observation_space.contains(obs)
    everything = ResizePov(FakeMineEnv(), keep_keys=True)
    assert set(everything.observation_space.spaces) == {"pov", "inventory", "life_stats"}


def test_resize_pov_errors():
    with pytest.raises(ValueError, match="'compass'"):
        ResizePov(FakeMineEnv(), keep_keys=("compass",))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        ResizePov(FakeMineEnv(pov_shape=(64, 64, 4)))
    with pytest.raises(ValueError, match="size"):
        ResizePov(FakeMineEnv(), size=(128,))


# ---------------------------------------------------------------------------------------------- VPTActions


def test_vpt_actions_maps_joint_action_to_minerl_dict():
    inner = FakeMineEnv()
    env = VPTActions(inner)
    assert env.action_space == spaces.MultiDiscrete([8641, 121])
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(3):
        a = env.action_space.sample()
        env.step(a)
        sent = inner.actions[-1]
        expected = A.agent_to_env(int(a[0]), int(a[1]))
        assert sent.keys() == expected.keys()
        assert all(sent[k] == expected[k] for k in A.ENV_ACTION_KEYS if k != "camera")
        np.testing.assert_array_equal(sent["camera"], expected["camera"])
        assert sent["ESC"] == sent["pickItem"] == sent["swapHands"] == 0


def test_vpt_actions_hand_example_and_reverse():
    env = VPTActions(FakeMineEnv())
    sent = env.action(np.array([293, 63]))  # forward + attack + camera meta; camera (5, 8)
    assert [k for k in A.BUTTONS_ALL if sent[k]] == ["attack", "forward"]
    np.testing.assert_allclose(sent["camera"], [0.0, 3.2153692], atol=1e-6)
    assert env.reverse_action(sent).tolist() == [293, 63]


def test_vpt_actions_errors():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        VPTActions(FakeMineEnv()).action(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="8641"):
        VPTActions(FakeMineEnv()).action(np.array([8641, 0]))

    class NoCamera(FakeMineEnv):
        def __init__(self):
            super().__init__()
            self.action_space = spaces.Dict({k: s for k, s in minerl_action_space().spaces.items() if k != "camera"})

    with pytest.raises(ValueError, match="camera"):
        VPTActions(NoCamera())


# ---------------------------------------------------------------------------------------------- TechTreeReward


def test_techtree_reward_from_inventory_increases():
    script = [{}, {"oak_log": 2}, {"oak_log": 2, "birch_log": 3}, {"oak_log": 0, "birch_log": 3, "oak_planks": 8},
              {"oak_log": 0, "birch_log": 3, "oak_planks": 4, "crafting_table": 1}]
    env = TechTreeReward(FakeMineEnv(script=script))
    _, info = env.reset(seed=0)
    assert info["techtree"]["progress"]["log"] == 0
    rewards, infos = [], []
    for _ in range(4):
        _, r, term, trunc, info = env.step(A.noop_action())
        rewards.append(r)
        infos.append(info)
    assert rewards == pytest.approx([2 / 8, 3 / 8, 8 / 20, 1.0])  # env's own reward 0.5 is replaced
    last = infos[-1]["techtree"]
    assert last["progress"]["log"] == 5 and last["progress"]["planks"] == 8 and last["progress"]["crafting_table"] == 1
    assert last["first_tick"] == {"log": 1, "planks": 3, "crafting_table": 4}
    assert infos[-1]["t"] == 4  # the inner info is kept


def test_techtree_reward_adds_env_reward_and_other_table():
    script = [{}, {"oak_log": 2}, {"oak_log": 3}]
    env = TechTreeReward(FakeMineEnv(script=script), add_env_reward=True)
    env.reset(seed=0)
    assert env.step(A.noop_action())[1] == pytest.approx(0.5 + 2 / 8)
    once = TechTreeReward(FakeMineEnv(script=script), table="obtain_diamond")
    once.reset(seed=0)
    assert [once.step(A.noop_action())[1] for _ in range(2)] == [1.0, 0.0]


def test_techtree_reward_needs_inventory():
    with pytest.raises(ValueError, match="inventory"):
        TechTreeReward(FakeMineEnv(with_inventory=False))


# ---------------------------------------------------------------------------------------------- EpisodeStats


def test_episode_stats_at_episode_end_only():
    script = [{}, {"oak_log": 1}, {"oak_log": 1, "oak_planks": 4}, {"oak_log": 1, "oak_planks": 4, "stick": 4}]
    env = EpisodeStats(TechTreeReward(FakeMineEnv(script=script)))
    env.reset(seed=0)
    infos = [env.step(A.noop_action())[4] for _ in range(3)]
    assert MILESTONES_KEY not in infos[0] and EXTRA_STATS_KEY not in infos[1]
    final = infos[-1]
    assert list(final[MILESTONES_KEY]) == list(MILESTONES)
    assert {k for k, v in final[MILESTONES_KEY].items() if v} == {"log", "planks"}  # stick is not a milestone
    stats = final[EXTRA_STATS_KEY]
    assert set(stats) == set(EpisodeStats.stat_keys())
    assert stats["milestone_log"] == 1.0 and stats["milestone_diamond"] == 0.0 and stats["milestones_reached"] == 2.0
    assert stats["episode_return"] == pytest.approx(1 / 8 + 4 / 20 + 4 / 16)
    assert stats["episode_length"] == 3.0
    assert all(isinstance(v, float) for v in stats.values())


def test_episode_stats_reset_clears_and_flat_info():
    env = EpisodeStats(FakeMineEnv(), flat_info=True)
    for _ in range(2):
        env.reset(seed=0)
        for _ in range(3):
            info = env.step(A.noop_action())[4]
        assert info[EXTRA_STATS_KEY]["episode_return"] == pytest.approx(1.5)  # env reward 0.5 x 3, not 3.0
        assert info["milestone_planks"] == 1.0 and info["episode_length"] == 3.0


def test_episode_stats_without_inventory_warns():
    with pytest.warns(UserWarning, match="inventory"):
        env = EpisodeStats(FakeMineEnv(with_inventory=False))
    env.reset(seed=0)
    for _ in range(3):
        info = env.step(A.noop_action())[4]
    assert not any(info[MILESTONES_KEY].values())


def test_episode_stats_on_truncation():
    env = EpisodeStats(gym.wrappers.TimeLimit(FakeMineEnv(script=[{}] * 10), max_episode_steps=2))
    env.reset(seed=0)
    env.step(A.noop_action())
    _, _, term, trunc, info = env.step(A.noop_action())
    assert trunc and not term and info[EXTRA_STATS_KEY]["episode_length"] == 2.0


# ---------------------------------------------------------------------------------------------- stack


def test_make_vpt_env_stack_on_fake_env():
    env = make_vpt_env(FakeMineEnv())
    assert env.observation_space == spaces.Dict({"pov": spaces.Box(0, 255, (128, 128, 3), np.uint8)})
    assert env.action_space == spaces.MultiDiscrete([8641, 121])
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    total = 0.0
    done = False
    while not done:
        obs, r, term, trunc, info = env.step(_noop())
        total += r
        done = term or trunc
    assert total == pytest.approx(2 / 8 + 4 / 20)
    assert info[EXTRA_STATS_KEY]["episode_return"] == pytest.approx(total)
    assert info[MILESTONES_KEY]["planks"] and not info[MILESTONES_KEY]["crafting_table"]


def test_make_vpt_env_options():
    env = make_vpt_env(FakeMineEnv(script=[{}] * 50), reward=None, max_steps=5, keep_keys=("inventory",))
    assert set(env.observation_space.spaces) == {"pov", "inventory"}
    env.reset(seed=0)
    for i in range(5):
        _, r, term, trunc, info = env.step(_noop())
        assert r == 0.5
    assert trunc and "techtree" not in info and info[EXTRA_STATS_KEY]["episode_return"] == pytest.approx(2.5)
    with pytest.raises(TypeError, match="env_id"):
        make_vpt_env(42)
    with pytest.raises(ValueError, match="max_steps"):
        make_vpt_env("vpt_rl/MineRL-HumanSurvival-v0", max_steps=0)
    for bad in (2.5, False, "10"):  # refused, not rounded to 2 / read as 0 / parsed
        with pytest.raises(ValueError, match=re.escape(f"max_steps must be a whole number of steps >= 1 or None, "
                                                       f"got {bad!r}")):
            make_vpt_env(MINELITE, max_steps=bad, **SMALL_WORLD)
        with pytest.raises(ValueError, match="max_steps must be a whole number"):
            make_vpt_env(FakeMineEnv(script=[{}] * 5), max_steps=bad)
    assert make_vpt_env(MINELITE, max_steps=3.0, **SMALL_WORLD).spec.max_episode_steps == 3


def _check_env_no_warnings(env):
    """gymnasium's check_env, failing on any checker warning except the one every wrapped env gets."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    benign = ("different from the unwrapped", "env.seed to get variables")  # the checker probing wrappers
    other = [str(w.message) for w in caught if not any(b in str(w.message) for b in benign)]
    assert not other, other


def test_check_env_passes_on_fake_stack():
    _check_env_no_warnings(make_vpt_env(FakeMineEnv(script=[{}] * 30)))


def _make_fake_stack():
    return make_vpt_env(FakeMineEnv(pov_shape=(72, 128, 3)))


def _drive_vector(venv, n_steps=4):
    venv.reset(seed=[0, 1])
    saw_final = False
    for _ in range(n_steps):
        obs, rew, term, trunc, info = venv.step(np.array([_noop(), [1, 0]]))
        assert obs["pov"].shape == (2, 128, 128, 3)
        done = term | trunc
        if done.any():
            if "final_info" in info:  # gymnasium 0.29: the last step's info moves to final_info
                finals = [f for f, d in zip(info["final_info"], done) if d]
                assert all(EXTRA_STATS_KEY in f for f in finals)
            else:  # gymnasium 1.x: merged into info, with a mask
                assert info["_" + EXTRA_STATS_KEY][done].all()
            saw_final = True
    venv.close()
    return saw_final


def test_sync_vector_env():
    assert _drive_vector(gym.vector.SyncVectorEnv([_make_fake_stack, _make_fake_stack]))


def test_async_vector_env():
    assert _drive_vector(gym.vector.AsyncVectorEnv([_make_fake_stack, _make_fake_stack]))


def test_sb3_subproc_vec_env():
    vec_env = pytest.importorskip("stable_baselines3.common.vec_env")
    # fork: a forkserver child would re-import torch (~10 s on a 2-core CI); the wrappers pickle either way
    venv = vec_env.SubprocVecEnv([_make_fake_stack, _make_fake_stack], start_method="fork")
    try:
        obs = venv.reset()
        assert obs["pov"].shape == (2, 128, 128, 3)
        finals = []
        for _ in range(4):
            obs, rew, done, infos = venv.step(np.array([_noop(), [1, 0]]))
            finals += [i for i, d in zip(infos, done) if d]
        assert finals and all(EXTRA_STATS_KEY in i and "terminal_observation" in i for i in finals)
        assert finals[0][EXTRA_STATS_KEY]["episode_return"] == pytest.approx(2 / 8 + 4 / 20)
    finally:
        venv.close()


# ---------------------------------------------------------------------------------------------- MineLite

MINELITE = "vpt_rl/MineLite-v0"
SMALL_WORLD = dict(world_size=(32, 32, 32))


def test_minelite_full_stack_spaces_and_check_env():
    env = make_vpt_env(MINELITE, max_steps=40, **SMALL_WORLD)
    assert env.observation_space == spaces.Dict({"pov": spaces.Box(0, 255, (128, 128, 3), np.uint8)})
    assert env.action_space == spaces.MultiDiscrete([8641, 121])
    _check_env_no_warnings(env)
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_checker.check_env(make_vpt_env(MINELITE, max_steps=40, **SMALL_WORLD))
    assert not [str(w.message) for w in caught]


def test_minelite_full_stack_episode_and_stats():
    env = make_vpt_env(MINELITE, max_steps=30, keep_keys=("inventory",), resolution=(128, 72), **SMALL_WORLD)
    obs, _ = env.reset(seed=0)
    assert obs["pov"].shape == (128, 128, 3) and "oak_log" in obs["inventory"]
    env.action_space.seed(0)
    for t in range(30):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        if term or trunc:
            break
    assert trunc and info[EXTRA_STATS_KEY]["episode_length"] == 30.0
    assert set(info[MILESTONES_KEY]) == set(MILESTONES)


def test_minelite_sync_vector_env():
    def make():
        return make_vpt_env(MINELITE, max_steps=3, **SMALL_WORLD)

    venv = gym.vector.SyncVectorEnv([make, make])
    obs, _ = venv.reset(seed=[0, 1])
    assert obs["pov"].shape == (2, 128, 128, 3)
    for _ in range(3):
        obs, rew, term, trunc, info = venv.step(np.array([_noop(), _noop()]))
    assert trunc.all()
    finals = info["final_info"] if "final_info" in info else [info]  # gymnasium 0.29 / 1.x
    assert all(EXTRA_STATS_KEY in f for f in finals)
    venv.close()


def _expected_techtree_return(inventories):
    """Hand accounting, independent of InventoryTracker: per item, cumulative positive count changes (all
    wood types together), then sum(per_unit * min(obtained, cap))."""
    from vpt_rl.envs.rewards import LOG_ITEMS, PLANK_ITEMS

    def group(inv, item):
        names = {"log": LOG_ITEMS, "planks": PLANK_ITEMS}.get(item, (item,))
        return sum(inv.get(n, 0) for n in names)

    from test_rewards import PAPER

    total = 0.0
    obtained = {}
    for item, (cap, per) in PAPER.items():
        counts = [group(inv, item) for inv in inventories]
        got = sum(max(0, b - a) for a, b in zip(counts, counts[1:]))
        obtained[item] = got
        total += float(per) * (got if cap is None else min(got, cap))
    return total, obtained


def test_scripted_expert_earns_what_the_table_predicts():
    expert_mod = pytest.importorskip("vpt_rl.envs.minelite.expert")
    raw = expert_mod.make_expert_env(0, 2500, render=False)  # the expert reads privileged state; no pov needed
    env = EpisodeStats(TechTreeReward(raw))
    obs, _ = env.reset(seed=0)
    expert = expert_mod.ScriptedExpert(raw, seed=0)
    inventories = [raw.inventory_counts()]
    total = 0.0
    for _ in range(2500):
        obs, r, term, trunc, info = env.step(expert.act(obs))
        total += r
        inventories.append(raw.inventory_counts())
        if term or trunc:
            break
    expected, obtained = _expected_techtree_return(inventories)
    assert obtained["log"] >= 1 and obtained["crafting_table"] >= 1  # the episode really climbs the tree
    assert total == pytest.approx(expected, abs=1e-9)
    assert info[EXTRA_STATS_KEY]["episode_return"] == pytest.approx(expected, abs=1e-9)
    assert info["techtree"]["progress"] == obtained
    reached = {k for k, v in info[MILESTONES_KEY].items() if v}
    assert reached == {k for k in MILESTONES if obtained.get(k, 0) > 0}


def test_scripted_expert_through_joint_action_space():
    """The expert's dict actions, squeezed through env_to_agent and the full stack's MultiDiscrete space,
    still climb the tech tree: the joint space loses nothing the expert needs."""
    expert_mod = pytest.importorskip("vpt_rl.envs.minelite.expert")
    raw = expert_mod.make_expert_env(1, 1500, render=False)
    env = make_vpt_env(raw)
    env.reset(seed=1)
    expert = expert_mod.ScriptedExpert(raw, seed=1)
    for _ in range(1500):
        _, _, term, trunc, info = env.step(np.array(A.env_to_agent(expert.act(None))))
        if term or trunc:
            break
    assert info[MILESTONES_KEY]["log"] and info[MILESTONES_KEY]["planks"] and info[MILESTONES_KEY]["crafting_table"]
    assert info[EXTRA_STATS_KEY]["episode_return"] >= 3.0


def test_wrapper_docstring_examples_run():
    import doctest

    from vpt_rl.envs import wrappers

    result = doctest.testmod(wrappers)
    assert result.failed == 0 and result.attempted >= 15
