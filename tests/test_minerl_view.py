"""MineLite behind MineRL 1.0's own interface (``HumanSurvival(**kwargs).make()``), driven the way OpenAI's
``run_agent.py`` drives MineRL, and observations that never share memory between calls."""
import sys
import types

import numpy as np
import pytest
from gymnasium import spaces

from vpt_rl.actions import ENV_ACTION_KEYS
from vpt_rl.envs.minelite import HumanSurvival, MineLiteEnv
from vpt_rl.envs.minelite.minerl_view import MineRLEnv, minerl_action

# agent.py's ENV_KWARGS (openai/Video-Pre-Training), which run_agent.py passes to HumanSurvival
ENV_KWARGS = dict(fov_range=[70, 70], frameskip=1, gamma_range=[2, 2], guiscale_range=[1, 1],
                  resolution=[640, 360], cursor_size_range=[16.0, 16.0])
SMALL = dict(world_size=(32, 32, 32))


def _validate_like_agent_py(env):
    """What agent.py's validate_env checks: the task's settings and every action space, key by key."""
    for key, value in ENV_KWARGS.items():
        if key != "frameskip":
            assert getattr(env.task, key) == value, key
    assert set(env.action_space.spaces) == set(ENV_ACTION_KEYS)
    for key in ENV_ACTION_KEYS:
        want = spaces.Box(low=-180.0, high=180.0, shape=(2,)) if key == "camera" else spaces.Discrete(2)
        assert env.action_space.spaces[key] == want, key


def _batched(action):
    """The action as an agent with a batch of one produces it: buttons (1,), camera (1, 2) float64."""
    out = {k: np.array([v]) for k, v in action.items() if k != "camera"}
    out["camera"] = np.asarray(action["camera"], dtype=np.float64)[None]
    return out


def _random_actions(n, seed):
    rng = np.random.default_rng(seed)
    acts = []
    for _ in range(n):
        a = {k: int(rng.random() < 0.3) for k in ("forward", "jump", "attack", "left", "sprint")}
        a["camera"] = rng.uniform(-5, 5, size=2).astype(np.float32)
        acts.append(a)
    return acts


def test_run_agent_loop_runs_with_minerl_settings_and_old_gym_api():
    env = HumanSurvival(**ENV_KWARGS).make(**SMALL)
    _validate_like_agent_py(env)
    env.seed(7)
    obs = env.reset()
    assert isinstance(obs, dict) and obs["pov"].shape == (360, 640, 3) and obs["pov"].dtype == np.uint8
    for action in _random_actions(5, 0):
        result = env.step(_batched(action))
        assert len(result) == 4
        obs, reward, done, info = result
        assert obs["pov"].shape == (360, 640, 3) and reward == 0.0 and done is False and "isGuiOpen" in info
    frame = env.render()
    assert np.array_equal(frame, obs["pov"]) and frame is not obs["pov"]
    env.close()


def test_batched_actions_give_the_same_episode_as_unbatched():
    a_env, b_env = (HumanSurvival(resolution=[64, 64]).make(**SMALL) for _ in range(2))
    a_env.seed(3), b_env.seed(3)
    a_obs, b_obs = a_env.reset(), b_env.reset()
    assert np.array_equal(a_obs["pov"], b_obs["pov"])
    for action in _random_actions(40, 1):
        a_obs = a_env.step(action)[0]
        b_obs = b_env.step(_batched(action))[0]
        assert np.array_equal(a_obs["pov"], b_obs["pov"])
    assert np.allclose(a_env.unwrapped.player.pos, b_env.unwrapped.player.pos)
    assert a_env.unwrapped.player.yaw == b_env.unwrapped.player.yaw != 0.0


def test_noop_action_is_a_noop_and_missing_keys_count_as_zero():
    env = HumanSurvival(resolution=[64, 64]).make(**SMALL)
    env.seed(5)
    env.reset()
    for _ in range(20):  # settle: the player spawns on the ground, but let any fall finish
        env.step(env.noop_action())
    game = env.unwrapped
    noop = env.noop_action()
    assert set(noop) == set(ENV_ACTION_KEYS) and all(noop[k] == 0 for k in noop if k != "camera")
    before = (game.player.pos.copy(), game.player.yaw, game.player.pitch, game.inventory_counts())
    obs_noop = env.step(noop)[0]
    obs_empty = env.step({})[0]
    after = (game.player.pos, game.player.yaw, game.player.pitch, game.inventory_counts())
    assert np.array_equal(before[0], after[0]) and before[1:] == after[1:]
    assert np.array_equal(obs_noop["pov"], obs_empty["pov"])


@pytest.mark.parametrize("action, match", [
    ({"attack": np.array([2])}, "attack"),
    ({"camera": np.zeros((2, 2))}, "camera"),
    ({"camera": np.array([[400.0, 0.0]])}, "camera"),
    ({"jump": np.array([1, 1])}, "jump"),
    ({"fly": 1}, "fly"),
])
def test_genuinely_bad_actions_are_refused_naming_the_value(action, match):
    env = HumanSurvival(resolution=[64, 64]).make(**SMALL)
    env.reset()
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_resolution_fov_and_frameskip_are_honoured():
    env = HumanSurvival(resolution=[96, 54], fov_range=[60, 90], frameskip=3).make(**SMALL)
    env.seed(11)
    obs = env.reset()
    fov = env.unwrapped.fov
    assert obs["pov"].shape == (54, 96, 3) and 60.0 <= fov <= 90.0
    env.seed(11)
    env.reset()
    assert env.unwrapped.fov == fov  # the draw follows the seed
    fovs = set()
    for _ in range(4):
        env.reset()
        fovs.add(env.unwrapped.fov)
    assert len(fovs) > 1 and all(60.0 <= f <= 90.0 for f in fovs)
    tick = env.unwrapped.tick
    env.step(env.noop_action())
    assert env.unwrapped.tick == tick + 3


@pytest.mark.parametrize("frameskip", [1, 2])
def test_max_episode_steps_ends_the_episode_with_done(frameskip):
    env = HumanSurvival(resolution=[64, 64], max_episode_steps=3, frameskip=frameskip).make(**SMALL)
    env.reset()
    dones = [env.step(env.noop_action())[2] for _ in range(3)]
    assert dones == [False, False, True]  # steps, not ticks
    assert env.unwrapped.tick == 3 * frameskip


@pytest.mark.parametrize("kwargs, match", [
    (dict(load_filename="world.zip"), "load_filename"),
    (dict(frameskip=0), "frameskip"),
    (dict(fov_range=[80, 70]), "fov_range"),
    (dict(fov_range=[70, 300]), "fov_range"),
    (dict(gamma_range=2.0), "gamma_range"),
    (dict(max_episode_steps=2.5), "max_episode_steps"),
    (dict(fov=90), "fov"),
])
def test_bad_settings_are_refused_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HumanSurvival(**kwargs)


def test_minerl_settings_given_to_make_are_refused_naming_them():
    with pytest.raises(ValueError, match="resolution"):
        HumanSurvival().make(resolution=(64, 64))


def test_spaces_are_old_gym_spaces_when_gym_is_importable(monkeypatch):
    # a stand-in for the old `gym` package: records how each space was built
    class Space:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    gym_spaces = types.ModuleType("gym.spaces")
    gym_spaces.Dict, gym_spaces.Discrete, gym_spaces.Box = (type(n, (Space,), {}) for n in ("Dict", "Discrete", "Box"))
    gym = types.ModuleType("gym")
    gym.spaces = gym_spaces
    monkeypatch.setitem(sys.modules, "gym", gym)
    monkeypatch.setitem(sys.modules, "gym.spaces", gym_spaces)
    env = HumanSurvival(resolution=[64, 64]).make(**SMALL)
    act = env.action_space
    assert isinstance(act, gym_spaces.Dict) and set(act.args[0]) == set(ENV_ACTION_KEYS)
    assert isinstance(act.args[0]["attack"], gym_spaces.Discrete) and act.args[0]["attack"].args == (2,)
    cam = act.args[0]["camera"]
    assert isinstance(cam, gym_spaces.Box) and cam.kwargs["shape"] == (2,) and cam.kwargs["dtype"] == np.float32
    assert np.all(cam.kwargs["low"] == -180.0) and np.all(cam.kwargs["high"] == 180.0)
    pov = env.observation_space.args[0]["pov"]
    assert pov.kwargs["shape"] == (64, 64, 3) and pov.kwargs["dtype"] == np.uint8


def test_without_gym_the_spaces_are_gymnasium_ones(monkeypatch):
    monkeypatch.setitem(sys.modules, "gym", None)  # `import gym` raises ImportError, as in most installs
    env = HumanSurvival(resolution=[64, 64]).make(**SMALL)
    assert isinstance(env.action_space, spaces.Dict) and isinstance(env.observation_space, spaces.Dict)
    assert isinstance(env, MineRLEnv) and env.action_space == MineLiteEnv(resolution=(64, 64)).action_space


def test_minerl_action_only_drops_a_batch_dimension_of_one():
    a = minerl_action({"attack": np.array([1]), "camera": np.array([[1.0, 2.0]]), "jump": 0})
    assert a["attack"] == 1 and a["jump"] == 0 and a["camera"].tolist() == [1.0, 2.0]
    b = minerl_action({"attack": np.array([1, 0]), "camera": np.zeros((3, 2))})
    assert b["attack"].shape == (2,) and b["camera"].shape == (3, 2)  # left for the env to refuse
    with pytest.raises(TypeError, match="dict"):
        minerl_action([1, 2])


def _leaves(obs, prefix=""):
    if isinstance(obs, dict):
        for k, v in obs.items():
            yield from _leaves(v, f"{prefix}/{k}")
    elif isinstance(obs, np.ndarray):
        yield prefix, obs


def test_observations_of_reset_and_step_share_no_memory():
    env = MineLiteEnv(resolution=(64, 64), world_size=(32, 32, 32))
    first, _ = env.reset(seed=0)
    second = env.step({})[0]
    third = env.step({})[0]
    for a, b in ((first, second), (second, third)):
        shared = [name for (name, x), (_, y) in zip(_leaves(a), _leaves(b)) if np.shares_memory(x, y)]
        assert not shared, f"arrays shared between calls: {shared}"
    # and the values are what they were: keeping an observation is safe
    assert int(first["inventory"]["air"]) == int(third["inventory"]["air"]) == 36
