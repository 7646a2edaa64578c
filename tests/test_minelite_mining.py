"""MineLite mining and placing: Minecraft break times, tool requirements, drops, durability, reach, placement."""
import numpy as np
import pytest

from conftest import flat_minelite
from vpt_rl.envs.minelite import world as W
from vpt_rl.envs.minelite.items import minerl_name

GROUND = 10


@pytest.fixture()
def env():
    return flat_minelite(GROUND)


def _setup_target(env, block, tool=None, dz=2):
    """Put ``block`` in front of the player at feet level, hold ``tool`` (slot 0) and look at it."""
    x, z = int(env.player.pos[0]), int(env.player.pos[2])
    pos = (x, GROUND + 1, z + dz)
    env.world.blocks[pos] = block
    if tool is not None:
        env.inventory.add(tool)
    yaw, pitch = env.angles_to(np.array(pos) + 0.5)
    env.player.yaw, env.player.pitch = yaw, pitch
    env.step({})
    assert env.target_block() == pos
    return pos


def _mine(env, pos, limit=400):
    """Hold attack until the block at ``pos`` is gone; returns the number of ticks."""
    for t in range(1, limit + 1):
        env.step({"attack": 1})
        if env.world.blocks[pos] == W.AIR:
            return t
    return None


# (block, tool, expected ticks from Minecraft's formula, expected drop)
CASES = [
    (W.LOG, None, 60, "oak_log"),            # 3 s by hand
    (W.LOG, "wooden_axe", 30, "oak_log"),    # 1.5 s
    (W.LOG, "stone_axe", 15, "oak_log"),
    (W.DIRT, None, 15, "dirt"),              # 0.75 s
    (W.GRASS, None, 18, "dirt"),
    (W.SAND, None, 15, "sand"),
    (W.LEAVES, None, 6, None),
    (W.PLANKS, None, 60, "oak_planks"),
    (W.CRAFTING_TABLE, None, 75, "crafting_table"),
    (W.STONE, None, 150, None),              # hand: slow, no cobblestone
    (W.STONE, "wooden_pickaxe", 23, "cobblestone"),  # 1.15 s
    (W.STONE, "stone_pickaxe", 12, "cobblestone"),
    (W.COBBLESTONE, "wooden_pickaxe", 30, "cobblestone"),
    (W.COAL_ORE, None, 300, None),
    (W.COAL_ORE, "wooden_pickaxe", 45, "coal"),
    (W.IRON_ORE, "wooden_pickaxe", 150, None),  # needs a stone pickaxe
    (W.IRON_ORE, "stone_pickaxe", 23, "iron_ore"),
    (W.DIAMOND_ORE, "stone_pickaxe", 75, None),  # needs an iron pickaxe
    (W.DIAMOND_ORE, "iron_pickaxe", 15, "diamond"),
    (W.DIAMOND_ORE, "diamond_pickaxe", 12, "diamond"),
    (W.FURNACE, "wooden_pickaxe", 53, "furnace"),
]


@pytest.mark.parametrize("block, tool, ticks, drop", CASES)
def test_break_time_and_drop_follow_minecraft(env, block, tool, ticks, drop):
    pos = _setup_target(env, block, tool)
    before = env.inventory_counts()
    assert env.break_ticks(block) == ticks
    assert _mine(env, pos) == ticks
    after = env.inventory_counts()
    gained = {k: after[k] - before[k] for k in after if k != "air" and after[k] != before[k]}
    assert gained == ({drop: 1} if drop else {})


def test_bedrock_is_unbreakable(env):
    pos = _setup_target(env, W.BEDROCK, "diamond_pickaxe")
    assert _mine(env, pos, limit=300) is None
    assert env.break_ticks(W.BEDROCK) == -1


def test_releasing_attack_resets_progress(env):
    pos = _setup_target(env, W.LOG)
    for _ in range(40):
        env.step({"attack": 1})
    assert env.mining_progress == pytest.approx(40 / 60)
    env.step({})
    assert env.mining_progress == 0.0
    assert _mine(env, pos) == 60


def test_drops_go_to_the_hotbar_first_and_stack(env):
    env.inventory.add("stick")  # slot 0
    pos = _setup_target(env, W.DIRT)
    _mine(env, pos)
    assert env.inventory.slot_name(1) == "dirt"
    env.world.blocks[pos] = W.DIRT
    _mine(env, pos)
    assert env.inventory.slot_name(1) == "dirt" and int(env.inventory.counts[1]) == 2


def test_tools_wear_and_break(env):
    pos = _setup_target(env, W.DIRT, "wooden_pickaxe")
    _mine(env, pos)
    obs = env.step({})[0]
    assert int(obs["equipped_items"]["mainhand"]["damage"]) == 1
    env.inventory.damage[0] = 58  # one use left
    env.world.blocks[pos] = W.DIRT
    _mine(env, pos)
    obs = env.step({})[0]
    assert env.inventory_counts()["wooden_pickaxe"] == 0
    assert minerl_name(obs["equipped_items"]["mainhand"]["type"]) == "air"


def test_reach_is_four_and_a_half_blocks(env):
    x, z = int(env.player.pos[0]), int(env.player.pos[2])
    eye = env.player.eye_pos
    env.player.pitch = 0.0
    env.world.blocks[x, int(eye[1]), z + 6] = W.STONE  # face 5.5 blocks from the eye
    env.step({})
    assert env.target_block() is None
    env.world.blocks[x, int(eye[1]), z + 4] = W.STONE  # face 3.5 blocks away
    env.step({})
    assert env.target_block() == (x, int(eye[1]), z + 4) and env.target_face() == (0, 0, -1)


def test_use_places_held_block_on_targeted_face(env):
    env.inventory.add("cobblestone", 2)
    pos = _setup_target(env, W.STONE)
    face = env.target_face()
    assert face == (0, 0, -1)
    env.step({"use": 1})
    placed = (pos[0], pos[1], pos[2] - 1)
    assert env.world.blocks[placed] == W.COBBLESTONE
    assert env.inventory_counts()["cobblestone"] == 1
    env.step({"use": 0})
    # a block is never placed inside the player
    env.player.pitch = 90.0
    env.step({})
    assert env.target_face() == (0, 1, 0)
    env.step({"use": 1})
    assert env.inventory_counts()["cobblestone"] == 1


def test_holding_use_repeats_every_four_ticks(env):
    env.inventory.add("dirt", 64)
    env.world.blocks[:, GROUND + 1:, :] = W.AIR
    x, z = int(env.player.pos[0]), int(env.player.pos[2])
    placed_at = []
    for t in range(13):
        # look at the top of the next free ground block ahead each tick (a contractor sweeping the mouse)
        k = 3 + len(placed_at)
        env.player.yaw, env.player.pitch = env.angles_to((x + 0.5, GROUND + 1.0, z + k + 0.5))
        env._update_target()
        before = env.inventory_counts()["dirt"]
        env.step({"use": 1})
        if env.inventory_counts()["dirt"] < before:
            placed_at.append(t)
    assert placed_at == [0, 4, 8, 12]


def test_drop_throws_away_one_held_item(env):
    env.inventory.add("dirt", 3)
    env.step({"drop": 1})
    env.step({"drop": 1})  # held, not pressed again: nothing more
    assert env.inventory_counts()["dirt"] == 2
