"""MineLite terrain: determinism, layers, ore depths and abundance, trees near spawn, inventory stacking."""
import math

import numpy as np
import pytest

from vpt_rl.envs.minelite import world as W
from vpt_rl.envs.minelite.inventory import Inventory

SEEDS = range(6)


@pytest.fixture(scope="module")
def worlds():
    return [W.generate_world(s) for s in SEEDS]


def test_same_seed_same_world_and_different_seeds_differ():
    a, b, c = W.generate_world(11), W.generate_world(11), W.generate_world(12)
    assert np.array_equal(a.blocks, b.blocks) and np.array_equal(a.spawn, b.spawn)
    assert not np.array_equal(a.blocks, c.blocks)


def test_bedrock_floor_and_surface_layers(worlds):
    for w in worlds:
        assert (w.blocks[:, 0, :] == W.BEDROCK).all()
        X, Y, Z = w.size
        xs, zs = np.meshgrid(np.arange(X), np.arange(Z), indexing="ij")
        top = w.blocks[xs, w.heightmap, zs]
        assert np.isin(top, [W.GRASS, W.SAND, W.DIRT]).all()  # DIRT: under a tree trunk
        # stone within 5 blocks under the surface everywhere
        below = np.stack([w.blocks[xs, w.heightmap - d, zs] for d in range(1, 6)], -1)
        assert np.isin(below, [W.STONE, W.COAL_ORE, W.IRON_ORE]).any(-1).all()
        # nothing floats above the terrain except trees
        above = w.blocks[:, :, :].copy()
        for y in range(Y):
            above[:, y, :][y <= w.heightmap] = W.AIR
        assert set(np.unique(above)) <= {W.AIR, W.LOG, W.LEAVES}


def test_ores_sit_at_their_depths(worlds):
    for w in worlds:
        Y = w.size[1]
        for ore, ymax in ((W.DIAMOND_ORE, int(Y * 0.25)), (W.IRON_ORE, int(Y * 0.5))):
            ys = np.nonzero(w.blocks == ore)[1]
            assert len(ys) > 0 and ys.max() <= ymax and ys.min() >= 1
        coal_y = np.nonzero(w.blocks == W.COAL_ORE)[1]
        assert coal_y.max() > np.nonzero(w.blocks == W.IRON_ORE)[1].max() - 8


def test_diamonds_are_rare_but_a_few_per_chunk(worlds):
    per_chunk = [w.count(W.DIAMOND_ORE) / (w.size[0] * w.size[2] / 256) for w in worlds]
    assert 1.5 <= float(np.mean(per_chunk)) <= 10.0
    assert min(w.count(W.DIAMOND_ORE) for w in worlds) >= 8
    for w in worlds:
        assert w.count(W.COAL_ORE) > w.count(W.IRON_ORE) > w.count(W.DIAMOND_ORE)


def test_trees_grow_near_spawn(worlds):
    for w in worlds:
        logs = np.argwhere(w.blocks == W.LOG)
        d = np.hypot(logs[:, 0] + 0.5 - w.spawn[0], logs[:, 2] + 0.5 - w.spawn[2])
        trunks = {(x, z) for (x, _, z), dd in zip(logs, d) if dd <= 11}
        assert len(trunks) >= 3
        # the spawn column is clear for the player (2 blocks of air)
        sx, sy, sz = (int(math.floor(v)) for v in w.spawn)
        assert w.blocks[sx, sy, sz] == W.AIR and w.blocks[sx, sy + 1, sz] == W.AIR
        assert w.blocks[sx, sy - 1, sz] != W.AIR


def test_world_size_is_configurable_and_validated():
    w = W.generate_world(0, (40, 32, 24))
    assert w.size == (40, 32, 24)
    with pytest.raises(ValueError, match="too small"):
        W.generate_world(0, (8, 32, 32))


def test_break_ticks_formula_matches_hand_values():
    # Minecraft: ticks = ceil(hardness * (30 if harvestable else 100) / tool speed)
    assert W.break_ticks(W.DIRT, None, 0) == (15, True)
    assert W.break_ticks(W.LOG, "axe", 1) == (30, True)
    assert W.break_ticks(W.STONE, "pickaxe", 1) == (23, True)
    assert W.break_ticks(W.IRON_ORE, "pickaxe", 1) == (150, False)
    assert W.break_ticks(W.STONE, "pickaxe", 1, mining_speed=2.0) == (12, True)
    assert W.break_ticks(W.BEDROCK, "pickaxe", 4) == (-1, False)


def test_inventory_stacks_to_64_and_counts_air_slots():
    inv = Inventory()
    assert inv.add("cobblestone", 130) == 0
    assert [int(c) for c in inv.counts[:3]] == [64, 64, 2]
    assert inv.add("wooden_pickaxe") == 0 and int(inv.counts[3]) == 1  # tools do not stack
    counts = inv.counts_by_name()
    assert counts["cobblestone"] == 130 and counts["air"] == 32
    assert inv.remove("cobblestone", 100) and inv.count("cobblestone") == 30
    assert not inv.remove("cobblestone", 31) and inv.count("cobblestone") == 30
    assert inv.add("dirt", 64 * 40) == 64 * 40 - 64 * 34  # 34 slots were free
    with pytest.raises(ValueError, match="unknown MineLite item"):
        inv.add("netherite_ingot")
