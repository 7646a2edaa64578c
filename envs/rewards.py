"""Inventory-based reward tables: the VPT paper's tech-tree reward and MineRL 0.4's once-per-item reward.

A table maps an item name to an :class:`ItemReward`: which inventory keys count as that item (``members``;
any wood type counts as ``log`` / ``planks``), how many newly obtained units earn a reward (``cap``;
``None`` = no cap) and the reward per unit. "Newly obtained" is measured from inventory increases: an
:class:`InventoryTracker` adds up the positive changes of each item's count (summed over its members), so
crafting logs into planks and then getting more logs is rewarded again until the cumulative obtained
count passes the cap, while items held at reset earn nothing.

Example:

>>> from vpt_rl.envs.rewards import InventoryTracker, PAPER_TECH_TREE
>>> tracker = InventoryTracker(PAPER_TECH_TREE)
>>> tracker.reset({"oak_log": 0})
>>> tracker.update({"oak_log": 2, "birch_log": 1})  # 3 logs at 1/8 each
0.375
>>> tracker.obtained["log"]
3
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

__all__ = [
    "ItemReward",
    "LOG_ITEMS",
    "PLANK_ITEMS",
    "PAPER_TECH_TREE",
    "MINERL_OBTAIN_DIAMOND",
    "REWARD_TABLES",
    "MILESTONES",
    "InventoryTracker",
    "resolve_table",
]

# Minecraft 1.16 item tags #minecraft:logs (everything that crafts into planks) and #minecraft:planks.
_OVERWORLD_WOODS = ("oak", "spruce", "birch", "jungle", "acacia", "dark_oak")
_NETHER_WOODS = ("crimson", "warped")
LOG_ITEMS: Tuple[str, ...] = tuple(
    [f"{w}_{kind}" for w in _OVERWORLD_WOODS for kind in ("log", "wood")]
    + [f"stripped_{w}_{kind}" for w in _OVERWORLD_WOODS for kind in ("log", "wood")]
    + [f"{w}_{kind}" for w in _NETHER_WOODS for kind in ("stem", "hyphae")]
    + [f"stripped_{w}_{kind}" for w in _NETHER_WOODS for kind in ("stem", "hyphae")]
)
PLANK_ITEMS: Tuple[str, ...] = tuple(f"{w}_planks" for w in _OVERWORLD_WOODS + _NETHER_WOODS)


@dataclass(frozen=True)
class ItemReward:
    """Reward rule for one item.

    :param reward: reward per newly obtained unit.
    :param cap: number of units that earn the reward (``None``: every unit does).
    :param members: inventory keys whose counts add up to this item (default: the item name itself).
    """

    reward: float
    cap: Optional[int] = None
    members: Tuple[str, ...] = ()

    def __post_init__(self):
        if self.cap is not None and (not isinstance(self.cap, int) or self.cap < 1):
            raise ValueError(f"ItemReward cap must be a positive int or None, got {self.cap!r}")
        if not isinstance(self.members, tuple) or not all(isinstance(m, str) for m in self.members):
            raise TypeError(f"ItemReward members must be a tuple of item names, got {self.members!r}")


def _paper_row(reward, cap, members=()):
    return ItemReward(reward=float(Fraction(reward)), cap=cap, members=members)


# VPT paper (Baker et al. 2022) Table 7: reward per new unit obtained, up to a cap per item.
PAPER_TECH_TREE: Mapping[str, ItemReward] = {
    "log": _paper_row(Fraction(1, 8), 8, LOG_ITEMS),
    "planks": _paper_row(Fraction(1, 20), 20, PLANK_ITEMS),
    "stick": _paper_row(Fraction(1, 16), 16),
    "crafting_table": _paper_row(1, 1),
    "wooden_pickaxe": _paper_row(1, 1),
    "cobblestone": _paper_row(Fraction(1, 11), 11),
    "stone_pickaxe": _paper_row(1, 1),
    "furnace": _paper_row(1, 1),
    "coal": _paper_row(Fraction(2, 5), 5),
    "torch": _paper_row(Fraction(1, 8), 16),
    "iron_ore": _paper_row(Fraction(4, 3), 3),
    "iron_ingot": _paper_row(Fraction(4, 3), 3),
    "iron_pickaxe": _paper_row(4, 1),
    "diamond": _paper_row(Fraction(8, 3), None),
    "diamond_pickaxe": _paper_row(8, None),
}

# MineRL 0.4 ObtainDiamond (minerl 0.4 herobraine/env_specs/obtain_specs.py): each item rewarded once, the first time it is obtained.
MINERL_OBTAIN_DIAMOND: Mapping[str, ItemReward] = {
    "log": ItemReward(1.0, 1, LOG_ITEMS),
    "planks": ItemReward(2.0, 1, PLANK_ITEMS),
    "stick": ItemReward(4.0, 1),
    "crafting_table": ItemReward(4.0, 1),
    "wooden_pickaxe": ItemReward(8.0, 1),
    "cobblestone": ItemReward(16.0, 1),
    "furnace": ItemReward(32.0, 1),
    "stone_pickaxe": ItemReward(32.0, 1),
    "iron_ore": ItemReward(64.0, 1),
    "iron_ingot": ItemReward(128.0, 1),
    "iron_pickaxe": ItemReward(256.0, 1),
    "diamond": ItemReward(1024.0, 1),
}

REWARD_TABLES: Mapping[str, Mapping[str, ItemReward]] = {
    "techtree": PAPER_TECH_TREE,
    "obtain_diamond": MINERL_OBTAIN_DIAMOND,
}

# Every tech-tree item of the paper's Table 7, in tech-tree order: the order milestones are listed in
# (tables, plots, the paper's Fig. 9).
MILESTONE_ORDER: Tuple[str, ...] = tuple(PAPER_TECH_TREE)
# The milestones reported per episode (info["milestones"], EpisodeStats): the tech tree less the
# intermediate ingredients stick, coal and torch.
MILESTONES: Tuple[str, ...] = tuple(m for m in MILESTONE_ORDER if m not in ("stick", "coal", "torch"))
# How a milestone name maps to inventory keys when no table row says otherwise.
MILESTONE_MEMBERS: Mapping[str, Tuple[str, ...]] = {"log": LOG_ITEMS, "planks": PLANK_ITEMS}


def order_milestones(names: Iterable[str]) -> List[str]:
    """``names`` in tech-tree order (:data:`MILESTONE_ORDER`), unknown names last in sorted order."""
    names = set(names)
    known = [m for m in MILESTONE_ORDER if m in names]
    return known + sorted(names - set(known))


def resolve_table(table: Any) -> Dict[str, ItemReward]:
    """A reward table from a name in :data:`REWARD_TABLES` or a mapping ``item -> ItemReward``.

    Mapping values may also be ``(reward, cap)`` or ``(reward, cap, members)`` tuples.
    """
    if isinstance(table, str):
        if table not in REWARD_TABLES:
            raise ValueError(f"unknown reward table {table!r}; expected one of {sorted(REWARD_TABLES)} or a mapping")
        return dict(REWARD_TABLES[table])
    if not isinstance(table, Mapping) or not table:
        raise TypeError(f"reward table must be a table name or a non-empty mapping item -> ItemReward, got {table!r}")
    out: Dict[str, ItemReward] = {}
    for name, row in table.items():
        if isinstance(row, ItemReward):
            out[name] = row
        elif isinstance(row, (tuple, list)) and 2 <= len(row) <= 3:
            out[name] = ItemReward(float(row[0]), row[1], tuple(row[2]) if len(row) == 3 else ())
        else:
            raise TypeError(f"reward table row {name!r} must be an ItemReward or (reward, cap[, members]), got {row!r}")
    return out


def _count(inventory: Mapping[str, Any], members: Tuple[str, ...]) -> int:
    total = 0
    for key in members:
        v = inventory.get(key)
        if v is not None:
            total += int(v)
    return total


class InventoryTracker:
    """Cumulative "newly obtained" units per item from successive inventories, and the reward they earn.

    :param table: item -> :class:`ItemReward` (the items tracked and rewarded).
    :param extra_items: further item names to track without reward (e.g. milestones outside the table).

    After :meth:`reset`, each :meth:`update` returns the step's reward
    ``sum_i reward_i * (min(obtained_i, cap_i) - min(obtained_i_before, cap_i))``; ``obtained`` holds the
    cumulative positive inventory changes and ``first_tick`` the step (1-based) at which each item was first
    obtained.
    """

    def __init__(self, table: Mapping[str, ItemReward], extra_items: Tuple[str, ...] = ()):
        self.table = resolve_table(table) if table else {}  # empty: track only, no reward
        self.members: Dict[str, Tuple[str, ...]] = {
            name: (row.members or (name,)) for name, row in self.table.items()
        }
        for name in extra_items:
            if name not in self.members:
                self.members[name] = MILESTONE_MEMBERS.get(name, (name,))
        self._last: Dict[str, int] = {}
        self.obtained: Dict[str, int] = {}
        self.first_tick: Dict[str, Optional[int]] = {}
        self.tick = 0

    def reset(self, inventory: Optional[Mapping[str, Any]]) -> None:
        """Start an episode: the counts in ``inventory`` are the baseline (held items earn nothing)."""
        inventory = inventory or {}
        self._last = {name: _count(inventory, m) for name, m in self.members.items()}
        self.obtained = {name: 0 for name in self.members}
        self.first_tick = {name: None for name in self.members}
        self.tick = 0

    def update(self, inventory: Optional[Mapping[str, Any]]) -> float:
        """Account one step's inventory; return the reward it earns under the table."""
        self.tick += 1
        if inventory is None:
            return 0.0
        reward = 0.0
        for name, members in self.members.items():
            count = _count(inventory, members)
            gained = count - self._last[name]
            self._last[name] = count
            if gained <= 0:
                continue
            before = self.obtained[name]
            after = before + gained
            self.obtained[name] = after
            if self.first_tick[name] is None:
                self.first_tick[name] = self.tick
            row = self.table.get(name)
            if row is None:
                continue
            if row.cap is None:
                units = gained
            else:
                units = min(after, row.cap) - min(before, row.cap)
            reward += units * row.reward
        return reward

    def progress(self) -> Dict[str, int]:
        """Cumulative obtained units per tracked item (a copy)."""
        return dict(self.obtained)
