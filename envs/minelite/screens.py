"""GUI screens (inventory, crafting table, furnace): layout, cursor, recipe buttons, crafting and smelting.

A screen is a panel in MineRL's 640x360 GUI pixel space (GUI scale 1). It shows one button per recipe
the screen offers (greyed when the ingredients are missing) above the 36 inventory slots (three rows of
main inventory, then the hotbar row). The cursor starts at the centre (320, 180), moves by the camera
action (dx = yaw / 0.15, dy = pitch / 0.15 GUI pixels, MineRL's 0.15 degrees per mouse pixel) and is
clamped to the screen. A rising edge of ``attack`` over an enabled button crafts one unit of that recipe.

Furnace: one "smelt" button (recipe ``iron_ingot``, alias ``"smelt"``) turns one iron ore into one
iron ingot instantly. Each smelt costs one unit of the furnace's fuel; when its fuel is below one unit
it burns one fuel item from the inventory first (coal preferred: 8 smelts, oak planks: 1.5 smelts).
Fuel stays in that furnace (``World.furnaces``).

Example:
    >>> from vpt_rl.envs.minelite.screens import Screen
    >>> s = Screen("inventory")
    >>> s.buttons
    ('oak_planks', 'stick', 'crafting_table', 'torch')
    >>> s.button_rect("stick")
    (214, 54, 250, 90)
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

from vpt_rl.actions import MOUSE_DEGREES_PER_COUNT
from vpt_rl.envs.minelite.inventory import Inventory
from vpt_rl.envs.minelite.items import FUEL_VALUE, N_HOTBAR, N_INVENTORY_SLOTS, RECIPES, recipes_for_screen

GUI_W, GUI_H = 640, 360
DEG_PER_PIXEL = MOUSE_DEGREES_PER_COUNT  # MineRL: one mouse count moves the cursor one GUI pixel

PANEL_RECT = (160, 30, 480, 300)
BUTTON_ORIGIN = (172, 54)
BUTTON_SIZE = 36
BUTTON_PITCH = 42
BUTTONS_PER_ROW = 7
SLOT_ORIGIN = (167, 150)
SLOT_SIZE = 32
SLOT_PITCH = 34

Rect = Tuple[int, int, int, int]


class Screen:
    """An open GUI screen.

    Attributes: ``kind`` ("inventory" | "crafting_table" | "furnace"), ``cursor`` [x, y] floats in GUI
    pixels, ``buttons`` (recipe names in button order), ``pos`` (the block position of the table or
    furnace, ``None`` for the inventory screen), ``panel_rect``.
    """

    def __init__(self, kind: str, pos: Optional[Tuple[int, int, int]] = None):
        self.buttons = recipes_for_screen(kind)  # validates kind
        self.kind = kind
        self.pos = pos
        self.cursor = [GUI_W / 2.0, GUI_H / 2.0]
        self.panel_rect: Rect = PANEL_RECT

    def __repr__(self) -> str:
        return f"Screen(kind={self.kind!r}, cursor=({self.cursor[0]:.1f}, {self.cursor[1]:.1f}), pos={self.pos})"

    def _resolve(self, name: str) -> str:
        if name == "smelt" and self.kind == "furnace":
            return "iron_ingot"
        if name not in self.buttons:
            raise ValueError(f"no button {name!r} on the {self.kind} screen; expected one of {self.buttons}")
        return name

    def button_rect(self, name: str) -> Rect:
        """(x0, y0, x1, y1) of recipe ``name``'s button in GUI pixels (x1, y1 exclusive)."""
        k = self.buttons.index(self._resolve(name))
        r, c = divmod(k, BUTTONS_PER_ROW)
        x0 = BUTTON_ORIGIN[0] + c * BUTTON_PITCH
        y0 = BUTTON_ORIGIN[1] + r * BUTTON_PITCH
        return (x0, y0, x0 + BUTTON_SIZE, y0 + BUTTON_SIZE)

    def button_center(self, name: str) -> Tuple[float, float]:
        """Centre of recipe ``name``'s button in GUI pixels."""
        x0, y0, x1, y1 = self.button_rect(name)
        return ((x0 + x1) / 2.0, (y0 + y1) / 2.0)

    @staticmethod
    def slot_rect(k: int) -> Rect:
        """(x0, y0, x1, y1) of inventory slot ``k`` (0-8 hotbar, drawn as the bottom row)."""
        if not 0 <= k < N_INVENTORY_SLOTS:
            raise ValueError(f"slot {k} out of range; expected 0 <= slot < {N_INVENTORY_SLOTS}")
        if k < N_HOTBAR:
            r, c = 3, k
            extra = 8
        else:
            r, c = divmod(k - N_HOTBAR, 9)
            extra = 0
        x0 = SLOT_ORIGIN[0] + c * SLOT_PITCH
        y0 = SLOT_ORIGIN[1] + r * SLOT_PITCH + extra
        return (x0, y0, x0 + SLOT_SIZE, y0 + SLOT_SIZE)

    def button_at(self, x: float, y: float) -> Optional[str]:
        """The recipe whose button contains GUI point (x, y), or None."""
        for name in self.buttons:
            x0, y0, x1, y1 = self.button_rect(name)
            if x0 <= x < x1 and y0 <= y < y1:
                return name
        return None

    def move_cursor(self, dx: float, dy: float) -> None:
        """Move the cursor by (dx, dy) GUI pixels, clamped to the 640x360 screen."""
        self.cursor[0] = min(GUI_W - 1.0, max(0.0, self.cursor[0] + float(dx)))
        self.cursor[1] = min(GUI_H - 1.0, max(0.0, self.cursor[1] + float(dy)))


def can_craft(recipe: str, inv: Inventory, fuel: float = 0.0) -> bool:
    """Whether ``recipe`` can be made now from ``inv`` (and, for smelting, the furnace's ``fuel``)."""
    r = RECIPES[recipe]
    if any(inv.count(name) < n for name, n in r.inputs):
        return False
    if "furnace" in r.screens and fuel < 1.0:
        if not any(inv.count(f) > 0 for f in FUEL_VALUE):
            return False
    # the output must fit once the inputs are gone (inputs free a slot only when fully used: be conservative)
    return inv.space_for(r.output) >= r.count


def craft(recipe: str, inv: Inventory, fuel: float = 0.0, prefer: int = -1) -> Tuple[bool, float]:
    """Make one unit of ``recipe`` in place: take inputs, burn fuel if smelting, add the output.

    Returns ``(crafted, fuel_left)``; nothing changes when it cannot be crafted.
    """
    if not can_craft(recipe, inv, fuel):
        return False, fuel
    r = RECIPES[recipe]
    if "furnace" in r.screens:
        if fuel < 1.0:
            for f in FUEL_VALUE:  # coal first, then planks
                if inv.count(f) > 0:
                    inv.remove(f, 1)
                    fuel += FUEL_VALUE[f]
                    break
        fuel -= 1.0
    for name, n in r.inputs:
        inv.remove(name, n)
    left = inv.add(r.output, r.count, prefer=prefer)
    assert left == 0, "can_craft checked the space"
    return True, fuel


def enabled_buttons(screen: Screen, inv: Inventory, fuel: float = 0.0) -> Dict[str, bool]:
    """{recipe name: craftable now} for every button of ``screen``."""
    return {name: can_craft(name, inv, fuel) for name in screen.buttons}
