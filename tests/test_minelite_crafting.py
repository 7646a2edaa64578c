"""MineLite screens and crafting: open/close, cursor movement, clicks on recipe buttons, every recipe, smelting."""
import numpy as np
import pytest

from conftest import flat_minelite
from vpt_rl.envs.minelite import world as W
from vpt_rl.envs.minelite.items import RECIPES, recipes_for_screen
from vpt_rl.envs.minelite.screens import Screen

GROUND = 10


@pytest.fixture()
def env():
    return flat_minelite(GROUND)


def _move_cursor_to(env, x, y):
    cx, cy = env.gui.cursor
    cam = np.array([(y - cy) * 0.15, (x - cx) * 0.15], dtype=np.float32)
    env.step({"camera": cam})


def _click(env, name):
    """Move the cursor onto button ``name`` with a camera action, then press and release attack."""
    _move_cursor_to(env, *env.gui.button_center(name))
    env.step({"attack": 1})
    env.step({"attack": 0})


def _open_block_screen(env, block):
    x, z = int(env.player.pos[0]), int(env.player.pos[2])
    pos = (x, GROUND + 1, z + 2)
    env.world.blocks[pos] = block
    if block == W.FURNACE:
        env.world.furnaces[pos] = 0.0
    env.player.yaw, env.player.pitch = env.angles_to(np.array(pos) + 0.5)
    env.step({})
    obs, _, _, _, info = env.step({"use": 1})
    env.step({"use": 0})
    assert info["isGuiOpen"]
    return pos


def test_inventory_key_opens_and_closes_the_inventory_screen(env):
    obs, _, _, _, info = env.step({"inventory": 1})
    assert info["isGuiOpen"] and env.gui.kind == "inventory"
    assert tuple(env.gui.cursor) == (320.0, 180.0)
    _, _, _, _, info = env.step({"inventory": 1})  # held: no new press, stays open
    assert info["isGuiOpen"]
    env.step({"inventory": 0})
    _, _, _, _, info = env.step({"inventory": 1})
    assert not info["isGuiOpen"] and env.gui is None
    env.step({"inventory": 0})
    env.step({"inventory": 1})
    env.step({"inventory": 0})
    _, _, _, _, info = env.step({"ESC": 1})
    assert not info["isGuiOpen"]


def test_cursor_moves_by_camera_over_point_one_five_and_clamps(env):
    env.step({"inventory": 1})
    env.step({"camera": np.array([1.5, -3.0], dtype=np.float32)})  # dy = 10 px, dx = -20 px
    assert env.gui.cursor == pytest.approx([300.0, 190.0])
    env.step({"camera": np.array([180.0, 180.0], dtype=np.float32)})
    assert env.gui.cursor == pytest.approx([639.0, 359.0])
    assert env.player.pitch == 0.0  # the view does not turn while the screen is open


def test_clicking_an_enabled_button_crafts_one_unit(env):
    env.inventory.add("oak_log", 2)
    env.step({"inventory": 1})
    _click(env, "oak_planks")
    c = env.inventory_counts()
    assert c["oak_log"] == 1 and c["oak_planks"] == 4
    # holding attack does not repeat; a click off any button does nothing
    _move_cursor_to(env, *env.gui.button_center("oak_planks"))
    env.step({"attack": 1})
    env.step({"attack": 1})
    assert env.inventory_counts()["oak_planks"] == 8
    env.step({"attack": 0})
    _move_cursor_to(env, 10, 10)
    env.step({"attack": 1})
    assert env.inventory_counts()["oak_planks"] == 8


def test_disabled_button_does_not_craft(env):
    env.inventory.add("oak_planks", 1)
    env.step({"inventory": 1})
    assert not env.button_enabled("stick")
    _click(env, "stick")
    assert env.inventory_counts()["stick"] == 0 and env.inventory_counts()["oak_planks"] == 1


def test_inventory_screen_offers_only_two_by_two_recipes(env):
    env.step({"inventory": 1})
    assert env.gui.buttons == ("oak_planks", "stick", "crafting_table", "torch")
    with pytest.raises(ValueError, match="no button 'wooden_pickaxe'"):
        env.gui.button_rect("wooden_pickaxe")


INPUTS = {name: {i: n for i, n in r.inputs} for name, r in RECIPES.items()}


@pytest.mark.parametrize("recipe", [r for r in RECIPES if r != "iron_ingot"])
def test_every_recipe_crafts_minecraft_quantities_on_the_crafting_table(env, recipe):
    for item, n in INPUTS[recipe].items():
        env.inventory.add(item, n)
    _open_block_screen(env, W.CRAFTING_TABLE)
    assert env.gui.kind == "crafting_table" and recipe in env.gui.buttons
    assert env.button_enabled(recipe)
    _click(env, recipe)
    counts = env.inventory_counts()
    assert counts[recipe] == RECIPES[recipe].count
    for item in INPUTS[recipe]:
        assert counts[item] == 0
    assert not env.button_enabled(recipe)


def test_recipe_quantities_are_minecrafts():
    expect = {"oak_planks": (4, {"oak_log": 1}), "stick": (4, {"oak_planks": 2}),
              "crafting_table": (1, {"oak_planks": 4}), "torch": (4, {"coal": 1, "stick": 1}),
              "wooden_pickaxe": (1, {"oak_planks": 3, "stick": 2}),
              "stone_pickaxe": (1, {"cobblestone": 3, "stick": 2}),
              "iron_pickaxe": (1, {"iron_ingot": 3, "stick": 2}), "diamond_pickaxe": (1, {"diamond": 3, "stick": 2}),
              "furnace": (1, {"cobblestone": 8}), "iron_ingot": (1, {"iron_ore": 1})}
    for name, (count, inputs) in expect.items():
        assert RECIPES[name].count == count and INPUTS[name] == inputs, name
    assert set(recipes_for_screen("inventory")) == {"oak_planks", "stick", "crafting_table", "torch"}
    assert recipes_for_screen("furnace") == ("iron_ingot",)


def test_furnace_smelts_iron_with_coal_and_keeps_fuel(env):
    env.inventory.add("iron_ore", 3)
    env.inventory.add("coal", 1)
    pos = _open_block_screen(env, W.FURNACE)
    assert env.gui.kind == "furnace" and env.gui.button_rect("smelt") == env.gui.button_rect("iron_ingot")
    _click(env, "smelt")
    _click(env, "smelt")
    c = env.inventory_counts()
    assert c["iron_ingot"] == 2 and c["iron_ore"] == 1 and c["coal"] == 0
    assert env.world.furnaces[pos] == pytest.approx(6.0)  # one coal = 8 smelts


def test_furnace_burns_planks_and_needs_fuel(env):
    env.inventory.add("iron_ore", 3)
    env.inventory.add("oak_planks", 1)
    _open_block_screen(env, W.FURNACE)
    _click(env, "smelt")  # planks give 1.5 smelts
    assert env.inventory_counts()["iron_ingot"] == 1 and env.inventory_counts()["oak_planks"] == 0
    assert not env.button_enabled("smelt")  # 0.5 fuel left and nothing to burn
    _click(env, "smelt")
    assert env.inventory_counts()["iron_ingot"] == 1


def test_sneak_use_places_against_a_table_instead_of_opening(env):
    env.inventory.add("dirt", 1)
    x, z = int(env.player.pos[0]), int(env.player.pos[2])
    pos = (x, GROUND + 1, z + 2)
    env.world.blocks[pos] = W.CRAFTING_TABLE
    env.player.yaw, env.player.pitch = env.angles_to(np.array(pos) + 0.5)
    env.step({})
    _, _, _, _, info = env.step({"use": 1, "sneak": 1})
    assert not info["isGuiOpen"] and env.inventory_counts()["dirt"] == 0


def test_placed_crafting_table_and_furnace_open_their_screens(env):
    env.inventory.add("crafting_table", 1)
    env.inventory.add("furnace", 1)
    x, z = int(env.player.pos[0]), int(env.player.pos[2])
    ground = (x, GROUND, z + 2)
    env.player.yaw, env.player.pitch = env.angles_to(np.array(ground) + 0.5)
    env.step({})
    env.step({"use": 1})
    env.step({"use": 0})
    assert env.world.blocks[x, GROUND + 1, z + 2] == W.CRAFTING_TABLE
    env.step({})
    _, _, _, _, info = env.step({"use": 1})
    assert info["isGuiOpen"] and env.gui.kind == "crafting_table" and env.gui.pos == (x, GROUND + 1, z + 2)
    env.step({"use": 0, "ESC": 1})
    env.step({"hotbar.2": 1, "camera": np.array([0.0, 30.0], dtype=np.float32)})
    side = (env.target_block(), env.target_face())
    env.step({"use": 1})
    env.step({"use": 0})
    placed = tuple(np.add(side[0], side[1]))
    assert env.world.blocks[placed] == W.FURNACE and placed in env.world.furnaces


def test_screen_layout_keeps_buttons_and_slots_on_the_panel():
    for kind in ("inventory", "crafting_table", "furnace"):
        s = Screen(kind)
        px0, py0, px1, py1 = s.panel_rect
        rects = [s.button_rect(b) for b in s.buttons] + [s.slot_rect(k) for k in range(36)]
        for x0, y0, x1, y1 in rects:
            assert px0 <= x0 < x1 <= px1 and py0 <= y0 < y1 <= py1
        for b in s.buttons:
            assert s.button_at(*s.button_center(b)) == b
