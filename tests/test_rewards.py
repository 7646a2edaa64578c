"""Reward tables and the inventory tracker, item by item against hand-computed sums."""
from fractions import Fraction

import pytest

from conftest import MINERL_SPEC
from vpt_rl.envs.minelite.expert import MILESTONES as EXPERT_MILESTONES
from vpt_rl.envs.rewards import (
    LOG_ITEMS,
    MILESTONE_ORDER,
    MILESTONES,
    MINERL_OBTAIN_DIAMOND,
    PAPER_TECH_TREE,
    PLANK_ITEMS,
    InventoryTracker,
    ItemReward,
    order_milestones,
    resolve_table,
)
from vpt_rl.evaluate import MILESTONE_ORDER as EVAL_ORDER

# Paper Table 7 (Baker et al. 2022), written out again by hand: item -> (cap, reward per unit).
PAPER = {
    "log": (8, Fraction(1, 8)),
    "planks": (20, Fraction(1, 20)),
    "stick": (16, Fraction(1, 16)),
    "crafting_table": (1, Fraction(1)),
    "wooden_pickaxe": (1, Fraction(1)),
    "cobblestone": (11, Fraction(1, 11)),
    "stone_pickaxe": (1, Fraction(1)),
    "furnace": (1, Fraction(1)),
    "coal": (5, Fraction(2, 5)),
    "torch": (16, Fraction(1, 8)),
    "iron_ore": (3, Fraction(4, 3)),
    "iron_ingot": (3, Fraction(4, 3)),
    "iron_pickaxe": (1, Fraction(4)),
    "diamond": (None, Fraction(8, 3)),
    "diamond_pickaxe": (None, Fraction(8)),
}


def _run(table, inventories):
    """Rewards of successive inventories (the first one is the reset baseline)."""
    t = InventoryTracker(table)
    t.reset(inventories[0])
    return [t.update(inv) for inv in inventories[1:]], t


def test_paper_table_matches_table_7():
    assert set(PAPER_TECH_TREE) == set(PAPER)
    for item, (cap, per_unit) in PAPER.items():
        row = PAPER_TECH_TREE[item]
        assert row.cap == cap, item
        assert row.reward == pytest.approx(float(per_unit), abs=1e-15), item


def test_obtain_diamond_table_rewards_each_item_once():
    expected = {"log": 1, "planks": 2, "stick": 4, "crafting_table": 4, "wooden_pickaxe": 8, "cobblestone": 16,
                "furnace": 32, "stone_pickaxe": 32, "iron_ore": 64, "iron_ingot": 128, "iron_pickaxe": 256,
                "diamond": 1024}
    assert {k: (r.reward, r.cap) for k, r in MINERL_OBTAIN_DIAMOND.items()} == {k: (float(v), 1) for k, v in expected.items()}
    rewards, _ = _run(MINERL_OBTAIN_DIAMOND, [{}, {"oak_log": 3}, {"oak_log": 5, "birch_planks": 4}, {"oak_log": 9}])
    assert rewards == [1.0, 2.0, 0.0]


@pytest.mark.parametrize("item", [k for k in PAPER if k not in ("log", "planks")])
def test_each_item_reward_up_to_cap(item):
    cap, per_unit = PAPER[item]
    n = 25 if cap is None else cap + 4  # go past the cap
    invs = [{item: 0}] + [{item: k} for k in range(1, n + 1)]
    rewards, tracker = _run(PAPER_TECH_TREE, invs)
    expected_units = n if cap is None else cap
    assert sum(rewards) == pytest.approx(float(per_unit * expected_units), rel=1e-12)
    assert rewards[0] == pytest.approx(float(per_unit))
    if cap is not None:
        assert rewards[cap:] == [0.0] * (n - cap)
    assert tracker.obtained[item] == n


def test_any_wood_type_counts_as_log_and_planks():
    # 3 oak + 2 birch + 2 dark oak logs + 2 crimson stems = 9 logs -> capped at 8 -> 1.0
    # 4 spruce + 4 jungle planks = 8 planks -> 8/20
    invs = [
        {},
        {"oak_log": 3},
        {"oak_log": 3, "birch_log": 2},
        {"oak_log": 3, "birch_log": 2, "dark_oak_log": 2, "spruce_planks": 4},
        {"oak_log": 3, "birch_log": 2, "dark_oak_log": 2, "crimson_stem": 2, "spruce_planks": 4, "jungle_planks": 4},
    ]
    rewards, t = _run(PAPER_TECH_TREE, invs)
    assert rewards == pytest.approx([3 / 8, 2 / 8, 2 / 8 + 4 / 20, 1 / 8 + 4 / 20])  # 9th log earns nothing
    assert t.obtained["log"] == 9 and t.obtained["planks"] == 8
    assert {"oak_log", "birch_log", "acacia_log", "stripped_oak_log", "oak_wood", "warped_stem"} <= set(LOG_ITEMS)
    assert len(PLANK_ITEMS) == 8 and "crimson_planks" in PLANK_ITEMS


def test_wood_group_names_are_minecraft_1_16_items():
    names = set((MINERL_SPEC / "minerl_items_1_16.txt").read_text().split())
    assert set(LOG_ITEMS) <= names and set(PLANK_ITEMS) <= names
    for item in list(PAPER) + list(MILESTONES):
        assert item in names or item in ("log", "planks"), item


def test_consumed_items_are_not_rewarded_again_until_cap_exceeded():
    # get 4 logs, craft them all into 16 planks, get 4 more logs (8 obtained: still rewarded), then 2 more
    # logs (obtained 10 > cap 8: no reward); planks: 16 then 4 more (20 = cap), consume, 4 more (none).
    invs = [
        {"oak_log": 0},
        {"oak_log": 4},
        {"oak_log": 0, "oak_planks": 16},
        {"oak_log": 4, "oak_planks": 16},
        {"oak_log": 6, "oak_planks": 16},
        {"oak_log": 6, "oak_planks": 20},
        {"oak_log": 6, "oak_planks": 0, "crafting_table": 5},
        {"oak_log": 6, "oak_planks": 4, "crafting_table": 5},
    ]
    rewards, t = _run(PAPER_TECH_TREE, invs)
    assert rewards == pytest.approx([4 / 8, 16 / 20, 4 / 8, 0.0, 4 / 20, 1.0, 0.0])
    assert t.obtained == {**{k: 0 for k in PAPER}, "log": 10, "planks": 24, "crafting_table": 5}
    assert t.first_tick["log"] == 1 and t.first_tick["planks"] == 2 and t.first_tick["crafting_table"] == 6
    assert t.first_tick["diamond"] is None


def test_items_held_at_reset_earn_nothing():
    rewards, t = _run(PAPER_TECH_TREE, [{"stone_pickaxe": 1, "cobblestone": 30}, {"stone_pickaxe": 1, "cobblestone": 31}])
    assert rewards == pytest.approx([1 / 11]) and t.obtained["stone_pickaxe"] == 0


def test_full_tech_tree_sum():
    # everything up to each cap, plus 2 diamonds and 1 diamond pickaxe (no cap): hand sum
    final = {item: (cap if cap is not None else 0) for item, (cap, _) in PAPER.items()}
    final.update(diamond=2, diamond_pickaxe=1, log=0, planks=0, oak_log=8, birch_planks=20)
    expected = sum(float(per * (cap if cap is not None else 0)) for cap, per in PAPER.values()) + 2 * 8 / 3 + 8
    rewards, _ = _run(PAPER_TECH_TREE, [{}, final])
    assert rewards[0] == pytest.approx(expected)
    assert expected == pytest.approx(1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + 2 + 4 + 4 + 4 + 16 / 3 + 8)


def test_custom_table_and_errors():
    t = resolve_table({"dirt": (0.5, 2), "gem": (1.0, None, ("diamond", "emerald"))})
    rewards, _ = _run(t, [{}, {"dirt": 3, "diamond": 1, "emerald": 2}])
    assert rewards == pytest.approx([0.5 * 2 + 3.0])
    with pytest.raises(ValueError, match="'nope'"):
        resolve_table("nope")
    with pytest.raises(TypeError, match="'dirt'"):
        resolve_table({"dirt": 1.0})
    with pytest.raises(ValueError, match="cap"):
        ItemReward(1.0, cap=0)


def test_module_docstring_example_runs():
    import doctest

    from vpt_rl.envs import rewards

    result = doctest.testmod(rewards)
    assert result.failed == 0 and result.attempted >= 4


def test_milestone_lists_have_one_home_and_the_paper_order():
    # written out by hand from the paper's Table 7 / Fig. 9 (tech-tree order)
    paper = ["log", "planks", "stick", "crafting_table", "wooden_pickaxe", "cobblestone", "stone_pickaxe",
             "furnace", "coal", "torch", "iron_ore", "iron_ingot", "iron_pickaxe", "diamond", "diamond_pickaxe"]
    assert list(MILESTONE_ORDER) == paper
    assert list(MILESTONES) == [m for m in paper if m not in ("stick", "coal", "torch")]
    assert order_milestones({"zebra", "furnace", "log", "apple"}) == ["log", "furnace", "apple", "zebra"]
    assert EVAL_ORDER is MILESTONE_ORDER
    assert list(EXPERT_MILESTONES) == ["oak_log", "oak_planks"] + paper[2:]
