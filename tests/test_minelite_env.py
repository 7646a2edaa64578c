"""MineLiteEnv's interface: MineRL 1.0 spaces (against the spec listings), check_env, determinism, bad actions."""
import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import vpt_rl.envs  # noqa: F401  (registers the ids)
from conftest import MINERL_SPEC
from vpt_rl.envs.minelite.env import ACTION_KEYS, MineLiteEnv
from vpt_rl.envs.minelite.items import ITEM_NAMES, MINERL_ITEM_NAMES, minerl_index, minerl_name

SMALL = dict(world_size=(24, 32, 24))


def _spec_lines(prefix):
    text = (MINERL_SPEC / "minerl_1_0_human_survival_spaces.txt").read_text().splitlines()
    return [line.strip()[2:] for line in text if line.strip().startswith(prefix + " ")]


def _lookup(space, path):
    for part in path.strip("/").split("/"):
        space = space[part]
    return space


def test_item_list_is_minerls_976_names():
    names = (MINERL_SPEC / "minerl_items_1_16.txt").read_text().split()
    assert list(MINERL_ITEM_NAMES) == names and len(names) == 976
    assert minerl_name(minerl_index("diamond_pickaxe")) == "diamond_pickaxe"
    with pytest.raises(ValueError, match="unknown Minecraft"):
        minerl_index("laser_sword")


def test_action_space_equals_minerl_human_control():
    env = MineLiteEnv(**SMALL)
    spec = {}
    for line in _spec_lines("A"):
        key, desc = line.split(" ", 1)
        spec[key] = desc
    assert sorted(env.action_space.spaces) == sorted(spec) == sorted(ACTION_KEYS)
    assert len(spec) == 24
    for key, desc in spec.items():
        sp = env.action_space[key]
        if key == "camera":
            assert isinstance(sp, spaces.Box) and sp.shape == (2,) and sp.dtype == np.float32
            assert np.all(sp.low == -180.0) and np.all(sp.high == 180.0)
        else:
            assert desc == "Discrete(2)" and isinstance(sp, spaces.Discrete) and sp.n == 2


def test_observation_space_matches_minerl_listing():
    env = MineLiteEnv(resolution=(640, 360), **SMALL)
    lines = _spec_lines("O")
    assert len(lines) == 40

    def leaves(sp, prefix=""):
        if isinstance(sp, spaces.Dict):
            for k, v in sp.spaces.items():
                yield from leaves(v, prefix + "/" + k)
        else:
            yield prefix

    ours = {p for p in leaves(env.observation_space) if not p.startswith("/inventory/")}
    assert ours == {line.split(" ", 1)[0] for line in lines}
    pat = re.compile(r"(\S+) (Box|Discrete)\((.*)\) (\(.*?\)) (\w+)$")
    for line in lines:
        m = pat.match(line)
        assert m, line
        path, kind, args, shape, dtype = m.groups()
        sp = _lookup(env.observation_space, path)
        assert np.dtype(sp.dtype) == np.dtype(dtype), path
        if kind == "Discrete":
            assert isinstance(sp, spaces.Discrete) and sp.n == int(args) == 976, path
            continue
        assert isinstance(sp, spaces.Box), path
        lo = re.search(r"low=([^,]+),", args).group(1)
        hi = re.search(r"high=([^,]+),", args).group(1)
        conv = (lambda s: s == "True") if dtype == "bool" else float
        assert np.all(sp.low == conv(lo)) and np.all(sp.high == conv(hi)), (path, sp)
        assert sp.shape == eval(shape), path
    # inventory: one Box(0, 2304, (), int64) per MineLite item, all of them MineRL names
    inv = env.observation_space["inventory"]
    assert tuple(inv.spaces) == tuple(sorted(ITEM_NAMES)) or set(inv.spaces) == set(ITEM_NAMES)
    for name, sp in inv.spaces.items():
        assert name in MINERL_ITEM_NAMES
        assert sp.dtype == np.int64 and sp.shape == () and sp.low == 0 and sp.high == 2304
    full = MineLiteEnv(full_inventory=True, **SMALL)
    assert set(full.observation_space["inventory"].spaces) == set(MINERL_ITEM_NAMES)


@pytest.mark.filterwarnings("ignore:.*symmetric and normalized space")  # camera is MineRL's [-180, 180] Box
def test_gym_make_and_check_env_pass():
    env = gym.make("vpt_rl/MineLite-v0", **SMALL)
    assert isinstance(env.unwrapped, MineLiteEnv)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    assert obs["pov"].shape == (128, 128, 3) and obs["pov"].dtype == np.uint8
    assert info["isGuiOpen"] is False
    full = MineLiteEnv(full_inventory=True, **SMALL)
    assert full.observation_space.contains(full.reset(seed=0)[0])


def test_reward_zero_and_step_limit_truncates():
    env = MineLiteEnv(max_steps=5, **SMALL)
    env.reset(seed=0)
    for t in range(5):
        obs, r, term, trunc, info = env.step({})
        assert r == 0.0 and not term
        assert trunc == (t == 4)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


def _rollout(seed, actions):
    env = MineLiteEnv(**SMALL)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        out.append(env.step(a)[0])
    return out, env


def test_same_seed_and_actions_give_identical_observations():
    asp = MineLiteEnv(**SMALL).action_space
    asp.seed(123)
    actions = []
    for _ in range(120):
        a = asp.sample()
        a["inventory"] = 0 if np.random.default_rng(len(actions)).random() < 0.9 else 1
        a["camera"] = (a["camera"] / 20.0).astype(np.float32)
        actions.append(a)
    o1, e1 = _rollout(7, actions)
    o2, e2 = _rollout(7, actions)
    for a, b in zip(o1, o2):
        assert np.array_equal(a["pov"], b["pov"])
        assert a["location_stats"]["xpos"] == b["location_stats"]["xpos"]
        assert {k: int(v) for k, v in a["inventory"].items()} == {k: int(v) for k, v in b["inventory"].items()}
    assert np.array_equal(e1.world.blocks, e2.world.blocks)
    o3, e3 = _rollout(8, actions[:1])
    assert not np.array_equal(e3.world.blocks, e1.world.blocks)


def test_constructor_seed_fixes_first_world():
    a = MineLiteEnv(seed=5, **SMALL)
    b = MineLiteEnv(seed=5, **SMALL)
    a.reset()
    b.reset()
    assert np.array_equal(a.world.blocks, b.world.blocks)


@pytest.mark.parametrize("action, err, match", [
    ({"fly": 1}, ValueError, "unknown action key 'fly'"),
    ({"camera": np.zeros(3)}, ValueError, "shape"),
    ({"camera": np.array([np.nan, 0.0])}, ValueError, "finite"),
    ({"camera": np.array([0.0, 200.0])}, ValueError, r"\[-180, 180\]"),
    ({"attack": 2}, ValueError, "0 or 1"),
    ({"attack": np.array([1, 0])}, ValueError, "scalar"),
    ({"camera": None}, ValueError, r"action\['camera'\] must be 2 numbers \[pitch, yaw\] in degrees, got None"),
    ({"attack": None}, ValueError, r"action\['attack'\] must be a scalar 0 or 1, got None"),
    ([1, 0, 1], TypeError, "dict"),
])
def test_bad_actions_raise_clear_errors(action, err, match):
    env = MineLiteEnv(**SMALL)
    env.reset(seed=0)
    with pytest.raises(err, match=match):
        env.step(action)


def test_bad_constructor_arguments_raise():
    with pytest.raises(ValueError, match="resolution"):
        MineLiteEnv(resolution=(128,))
    with pytest.raises(ValueError, match="too small"):
        MineLiteEnv(world_size=(8, 8, 8))
    with pytest.raises(ValueError, match="max_steps"):
        MineLiteEnv(max_steps=0)
    for bad in (2.5, True, "3", float("nan")):  # not a whole number of steps: refused, not rounded
        with pytest.raises(ValueError, match=f"max_steps must be a whole number of steps >= 1 or None, got {bad!r}"):
            MineLiteEnv(max_steps=bad, **SMALL)
    assert MineLiteEnv(max_steps=1e3, **SMALL).max_steps == 1000  # a whole float (from JSON, say) is fine
    with pytest.raises(ValueError, match="reset options"):
        MineLiteEnv(**SMALL).reset(options={"lava": True})


def test_camera_turns_view_and_clamps_pitch():
    env = MineLiteEnv(**SMALL)
    env.reset(seed=0, options={"yaw": 170.0})
    env.step({"camera": np.array([30.0, 20.0], dtype=np.float32)})
    assert env.player.pitch == pytest.approx(30.0)
    assert env.player.yaw == pytest.approx(-170.0)  # wrapped to [-180, 180)
    obs = env.step({"camera": np.array([100.0, 0.0], dtype=np.float32)})[0]
    assert env.player.pitch == 90.0 and float(obs["location_stats"]["pitch"]) == 90.0
    # forward vector follows Minecraft: yaw 0 -> +z, yaw 90 -> -x
    env.player.yaw, env.player.pitch = 90.0, 0.0
    assert np.allclose(env.player.look_dir(), [-1.0, 0.0, 0.0])


def test_equipped_mainhand_reports_held_item_and_durability():
    env = MineLiteEnv(**SMALL)
    env.reset(seed=0)
    env.inventory.add("dirt", 3)
    env.inventory.add("wooden_pickaxe")
    obs = env.step({"hotbar.2": 1})[0]
    mh = obs["equipped_items"]["mainhand"]
    assert minerl_name(mh["type"]) == "wooden_pickaxe"
    assert int(mh["maxDamage"]) == 59 and int(mh["damage"]) == 0
    obs = env.step({"hotbar.1": 1})[0]
    mh = obs["equipped_items"]["mainhand"]
    assert minerl_name(mh["type"]) == "dirt" and int(mh["maxDamage"]) == 0
    assert int(obs["inventory"]["dirt"]) == 3 and int(obs["inventory"]["air"]) == 34
    assert minerl_name(obs["equipped_items"]["offhand"]["type"]) == "air"


def test_render_mode_rgb_array_returns_last_pov():
    env = MineLiteEnv(render_mode="rgb_array", **SMALL)
    obs, _ = env.reset(seed=0)
    assert np.array_equal(env.render(), obs["pov"])


def test_docstring_examples_run():
    import doctest

    from vpt_rl.envs.minelite import env as env_mod
    from vpt_rl.envs.minelite import inventory, items, screens, world

    for mod in (env_mod, inventory, items, screens, world):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.failed == 0 and res.attempted > 0, mod.__name__
