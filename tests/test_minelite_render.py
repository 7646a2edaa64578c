"""MineLite rendering: the view follows the camera, ores are recognisable, crack overlay, HUD, GUI and cursor."""
import numpy as np

from vpt_rl.envs.minelite import world as W
from vpt_rl.envs.minelite.env import MineLiteEnv
from vpt_rl.envs.minelite.render import SKY_HORIZON, SKY_TOP, TEXTURES

GROUND = 10


def _flat(resolution=(128, 128), **kw):
    env = MineLiteEnv(resolution=resolution, world_size=(24, 32, 24), max_steps=None, **kw)
    obs, _ = env.reset(seed=0, options={"flat": True, "ground": GROUND, "yaw": 0.0})
    return env, obs


def _diff(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_pov_shape_follows_resolution():
    env, obs = _flat(resolution=(640, 360))
    assert obs["pov"].shape == (360, 640, 3)


def test_small_camera_moves_change_the_frame():
    env = MineLiteEnv(world_size=(32, 48, 32))
    obs0, _ = env.reset(seed=3, options={"yaw": 0.0, "pitch": 10.0})
    obs1 = env.step({"camera": np.array([0.0, 1.0], dtype=np.float32)})[0]
    obs2 = env.step({"camera": np.array([1.0, 0.0], dtype=np.float32)})[0]
    assert _diff(obs0["pov"], obs1["pov"]) > 0.5  # textured faces: even 1 degree shows
    assert _diff(obs1["pov"], obs2["pov"]) > 0.5
    still = env.step({})[0]
    assert np.array_equal(still["pov"], obs2["pov"])


def test_sky_gradient_shows_pitch():
    env, _ = _flat()
    up = env.step({"camera": np.array([-90.0, 0.0], dtype=np.float32)})[0]["pov"]
    level = env.step({"camera": np.array([90.0, 0.0], dtype=np.float32)})[0]["pov"]
    # looking straight up: the zenith colour; level: the horizon colour just above the horizon (row 60 of 128)
    assert np.abs(up[64, 20].astype(float) - SKY_TOP).max() < 10
    assert np.abs(level[60, 20].astype(float) - SKY_HORIZON).max() < 10
    assert level[60, 20, 0] > level[5, 20, 0] > up[64, 20, 0] - 1


def _face_color(block):
    env, _ = _flat()
    x, z = int(env.player.pos[0]), int(env.player.pos[2])
    env.world.blocks[x - 1: x + 2, GROUND + 1: GROUND + 4, z + 2] = block  # a wall ahead
    env.player.pitch = 0.0
    env.world.blocks[x, GROUND + 1, z + 1] = W.AIR
    obs = env.step({"hotbar.1": 0})[0]
    c = obs["pov"][10:100, 30:98].reshape(-1, 3).astype(float)  # the wall fills this part of the view
    return c.mean(0), c.std(0).mean()


def test_ores_and_blocks_are_distinct_and_textured():
    names = {"stone": W.STONE, "coal": W.COAL_ORE, "iron": W.IRON_ORE, "diamond": W.DIAMOND_ORE, "log": W.LOG,
             "planks": W.PLANKS, "dirt": W.DIRT, "cobblestone": W.COBBLESTONE}
    colors = {k: _face_color(b) for k, b in names.items()}
    for k, (mean, std) in colors.items():
        assert std > 2.0, f"{k} face looks flat"
    keys = list(colors)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert np.abs(colors[a][0] - colors[b][0]).max() > 2.0, (a, b)
    # ore spots differ from plain stone in the texture itself
    for ore in (W.COAL_ORE, W.IRON_ORE, W.DIAMOND_ORE):
        assert (np.abs(TEXTURES[ore, 1].astype(int) - TEXTURES[W.STONE, 1]).max(-1) > 40).sum() >= 10


def test_crack_overlay_grows_while_mining():
    env, _ = _flat()
    x, z = int(env.player.pos[0]), int(env.player.pos[2])
    pos = (x, GROUND + 1, z + 2)
    env.world.blocks[pos] = W.LOG
    env.player.yaw, env.player.pitch = env.angles_to(np.array(pos) + 0.5)
    base = env.step({})[0]["pov"]
    dark = []
    for t in range(55):
        pov = env.step({"attack": 1})[0]["pov"]
        if t in (5, 30, 54):
            dark.append(int((base.astype(int).sum(-1) - pov.astype(int).sum(-1) > 60).sum()))
    assert 0 < dark[0] < dark[1] < dark[2]


def test_hotbar_shows_items_and_selected_slot():
    env, obs = _flat()
    empty = obs["pov"]
    env.inventory.add("diamond", 3)
    with_item = env.step({})[0]["pov"]
    sel = env.step({"hotbar.5": 1})[0]["pov"]
    bottom = slice(110, 128)
    assert _diff(empty[bottom], with_item[bottom]) > 0.1
    assert _diff(with_item[bottom], sel[bottom]) > 0.1
    assert np.array_equal(with_item[:100], sel[:100])  # only the HUD changed


def test_gui_dims_world_and_draws_a_moving_cursor():
    env, obs = _flat()
    opened = env.step({"inventory": 1})[0]["pov"]
    assert opened[5:20, 5:20].mean() < obs["pov"][5:20, 5:20].mean() - 20  # dimmed sky
    moved = env.step({"camera": np.array([0.0, 6.0], dtype=np.float32)})[0]["pov"]  # 40 GUI px right
    changed = np.nonzero(np.abs(opened.astype(int) - moved.astype(int)).sum(-1))
    assert len(changed[0]) > 0
    cols = changed[1]
    assert cols.min() >= 60 and cols.max() <= 75  # the cursor near x = 320..360 GUI px -> 64..72 px
    closed = env.step({"inventory": 0, "ESC": 1})[0]["pov"]
    assert np.array_equal(closed, obs["pov"])


def test_disabled_recipe_buttons_are_greyed():
    env, _ = _flat(resolution=(640, 360))
    env.step({"inventory": 1})
    off = env.step({})[0]["pov"]
    env.inventory.add("oak_log", 1)
    on = env.step({})[0]["pov"]
    x0, y0, x1, y1 = env.gui.button_rect("oak_planks")
    assert on[y0 + 2: y1 - 2, x0 + 2: x1 - 2].mean() > off[y0 + 2: y1 - 2, x0 + 2: x1 - 2].mean() + 15


def test_adaptive_rendering_matches_exact_tracing():
    fast = MineLiteEnv(world_size=(48, 48, 48))
    exact = MineLiteEnv(world_size=(48, 48, 48), exact_render=True)
    differing = []
    for seed, pitch, yaw in ((0, 0.0, 10.0), (1, 35.0, -120.0), (2, -25.0, 70.0), (3, 80.0, 0.0)):
        a = fast.reset(seed=seed, options={"pitch": pitch, "yaw": yaw})[0]["pov"]
        b = exact.reset(seed=seed, options={"pitch": pitch, "yaw": yaw})[0]["pov"]
        differing.append(float((np.abs(a.astype(int) - b.astype(int)).sum(-1) > 0).mean()))
    assert max(differing) < 0.005, differing


def test_unchanged_view_is_reused_and_block_edits_still_show():
    env, obs = _flat()
    same = env.step({})[0]["pov"]
    assert np.array_equal(same, obs["pov"])
    x, z = int(env.player.pos[0]), int(env.player.pos[2])
    env.world.blocks[x, GROUND + 1: GROUND + 3, z + 3] = W.DIAMOND_ORE  # edited behind the env's back
    edited = env.step({})[0]["pov"]
    exact = MineLiteEnv(world_size=(24, 32, 24), exact_render=True)
    exact.reset(seed=0, options={"flat": True, "ground": GROUND, "yaw": 0.0})
    exact.world.blocks[x, GROUND + 1: GROUND + 3, z + 3] = W.DIAMOND_ORE
    assert _diff(edited, same) > 1.0
    assert (np.abs(edited.astype(int) - exact.step({})[0]["pov"].astype(int)).sum(-1) > 0).mean() < 0.005
