"""MineLite's items, tools and recipes, named as in Minecraft 1.16 / MineRL 1.0.

Every item MineLite can hold is one of MineRL's 976 item names (``MINERL_ITEM_NAMES``, read from
``assets/minerl_items_1_16.txt``). ``ITEM_NAMES`` lists the items the game has, in the order of the
observation's ``inventory`` keys; ``air`` counts empty slots as in MineRL.

Recipes use Minecraft's quantities. ``RECIPES`` maps a recipe name (the name of the item it makes) to a
``Recipe``; ``screens`` says on which GUI screen it is offered: ``inventory`` (2x2 grid, also offered on
the crafting table), ``crafting_table`` (3x3 only) or ``furnace``.

Example:
    >>> from vpt_rl.envs.minelite.items import RECIPES, minerl_index, minerl_name
    >>> RECIPES["stick"].inputs, RECIPES["stick"].count
    ((('oak_planks', 2),), 4)
    >>> minerl_name(minerl_index("diamond_pickaxe"))
    'diamond_pickaxe'
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

_ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")


def _read_minerl_items() -> Tuple[str, ...]:
    path = os.path.join(_ASSETS, "minerl_items_1_16.txt")
    with open(path, "r", encoding="utf-8") as f:
        names = tuple(line.strip() for line in f if line.strip())
    assert len(names) == 976, f"{path} should list MineRL's 976 item names, found {len(names)}"
    return names


MINERL_ITEM_NAMES: Tuple[str, ...] = _read_minerl_items()  # MineRL 1.0 `equipped_items.*.type` order
N_MINERL_ITEMS = len(MINERL_ITEM_NAMES)  # 976, the size of MineRL's Discrete item spaces
_MINERL_INDEX: Dict[str, int] = {n: i for i, n in enumerate(MINERL_ITEM_NAMES)}


def minerl_index(name: str) -> int:
    """Position of ``name`` in MineRL's 1.16 item list (the value of ``equipped_items.*.type``)."""
    try:
        return _MINERL_INDEX[name]
    except KeyError:
        raise ValueError(f"unknown Minecraft 1.16 item name {name!r}; expected one of minerl_items_1_16.txt") from None


def minerl_name(index: int) -> str:
    """Item name for a MineRL ``equipped_items.*.type`` index (inverse of ``minerl_index``)."""
    i = int(index)
    if not 0 <= i < N_MINERL_ITEMS:
        raise ValueError(f"item index {index!r} out of range; expected 0 <= index < {N_MINERL_ITEMS}")
    return MINERL_ITEM_NAMES[i]


@dataclass(frozen=True)
class ItemInfo:
    """Static properties of one item.

    ``tool`` is ``"pickaxe"``, ``"axe"`` or ``None``; ``tier`` 1 wood, 2 stone, 3 iron, 4 diamond (0 hand);
    ``max_damage`` is Minecraft's durability (0 = not damageable); ``block`` the name of the block it
    places (``None`` if it cannot be placed).
    """

    name: str
    stack: int = 64
    tool: Optional[str] = None
    tier: int = 0
    max_damage: int = 0
    block: Optional[str] = None


# Items the game has, in observation order (``air`` first: it counts empty slots).
_ITEMS = (
    ItemInfo("air", stack=0),
    ItemInfo("dirt", block="dirt"),
    ItemInfo("sand", block="sand"),
    ItemInfo("oak_log", block="oak_log"),
    ItemInfo("oak_planks", block="oak_planks"),
    ItemInfo("stick"),
    ItemInfo("crafting_table", block="crafting_table"),
    ItemInfo("wooden_pickaxe", stack=1, tool="pickaxe", tier=1, max_damage=59),
    ItemInfo("wooden_axe", stack=1, tool="axe", tier=1, max_damage=59),
    ItemInfo("cobblestone", block="cobblestone"),
    ItemInfo("stone_pickaxe", stack=1, tool="pickaxe", tier=2, max_damage=131),
    ItemInfo("stone_axe", stack=1, tool="axe", tier=2, max_damage=131),
    ItemInfo("furnace", block="furnace"),
    ItemInfo("coal"),
    ItemInfo("torch"),
    ItemInfo("iron_ore", block="iron_ore"),
    ItemInfo("iron_ingot"),
    ItemInfo("iron_pickaxe", stack=1, tool="pickaxe", tier=3, max_damage=250),
    ItemInfo("iron_axe", stack=1, tool="axe", tier=3, max_damage=250),
    ItemInfo("diamond"),
    ItemInfo("diamond_pickaxe", stack=1, tool="pickaxe", tier=4, max_damage=1561),
)
ITEMS: Dict[str, ItemInfo] = {it.name: it for it in _ITEMS}
ITEM_NAMES: Tuple[str, ...] = tuple(it.name for it in _ITEMS)
ITEM_ID: Dict[str, int] = {n: i for i, n in enumerate(ITEM_NAMES)}  # MineLite's compact item ids
for _n in ITEM_NAMES:
    minerl_index(_n)  # every MineLite item must be a MineRL 1.16 name
del _n

N_INVENTORY_SLOTS = 36  # hotbar 0-8 + main 9-35, as in Minecraft
N_HOTBAR = 9

# Tool speed multipliers by tier (Minecraft: hand 1, wood 2, stone 4, iron 6, diamond 8).
TOOL_SPEED = {0: 1.0, 1: 2.0, 2: 4.0, 3: 6.0, 4: 8.0}

# Furnace fuel: smelting operations one fuel item provides (Minecraft: coal 8, planks 1.5).
FUEL_VALUE = {"coal": 8.0, "oak_planks": 1.5}


@dataclass(frozen=True)
class Recipe:
    """One crafting (or smelting) recipe: ``inputs`` (item, count) pairs make ``count`` of ``output``."""

    output: str
    count: int
    inputs: Tuple[Tuple[str, int], ...]
    screens: Tuple[str, ...]


_INV = ("inventory", "crafting_table")  # 2x2 recipes work in both grids
_TABLE = ("crafting_table",)

RECIPES: Dict[str, Recipe] = {
    r.output: r
    for r in (
        Recipe("oak_planks", 4, (("oak_log", 1),), _INV),
        Recipe("stick", 4, (("oak_planks", 2),), _INV),
        Recipe("crafting_table", 1, (("oak_planks", 4),), _INV),
        Recipe("torch", 4, (("coal", 1), ("stick", 1)), _INV),
        Recipe("wooden_pickaxe", 1, (("oak_planks", 3), ("stick", 2)), _TABLE),
        Recipe("wooden_axe", 1, (("oak_planks", 3), ("stick", 2)), _TABLE),
        Recipe("stone_pickaxe", 1, (("cobblestone", 3), ("stick", 2)), _TABLE),
        Recipe("stone_axe", 1, (("cobblestone", 3), ("stick", 2)), _TABLE),
        Recipe("furnace", 1, (("cobblestone", 8),), _TABLE),
        Recipe("iron_pickaxe", 1, (("iron_ingot", 3), ("stick", 2)), _TABLE),
        Recipe("iron_axe", 1, (("iron_ingot", 3), ("stick", 2)), _TABLE),
        Recipe("diamond_pickaxe", 1, (("diamond", 3), ("stick", 2)), _TABLE),
        # Smelting: one iron ore -> one ingot; fuel is drawn separately (see FUEL_VALUE).
        Recipe("iron_ingot", 1, (("iron_ore", 1),), ("furnace",)),
    )
}

SCREEN_KINDS = ("inventory", "crafting_table", "furnace")


def recipes_for_screen(kind: str) -> Tuple[str, ...]:
    """Names of the recipes offered on screen ``kind``, in button order."""
    if kind not in SCREEN_KINDS:
        raise ValueError(f"unknown screen kind {kind!r}; expected one of {SCREEN_KINDS}")
    return tuple(name for name, r in RECIPES.items() if kind in r.screens)
