"""The player's 36-slot inventory (hotbar = slots 0-8), with Minecraft's stacking and pick-up order.

Example:
    >>> from vpt_rl.envs.minelite.inventory import Inventory
    >>> inv = Inventory()
    >>> inv.add("oak_log", 70)   # fills slot 0 (64) then slot 1 (6); returns what did not fit
    0
    >>> inv.count("oak_log"), inv.slot_name(1), int(inv.counts[1])
    (70, 'oak_log', 6)
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from vpt_rl.envs.minelite.items import ITEM_ID, ITEM_NAMES, ITEMS, N_HOTBAR, N_INVENTORY_SLOTS


class Inventory:
    """36 slots of (item id, count, damage). ``items[k]`` is an index into ``ITEM_NAMES`` (0 = empty).

    ``version`` increases on every change (the renderer and the observation cache on it): change slots through
    the methods, or bump ``version`` after writing the arrays directly.
    """

    def __init__(self):
        self.items = np.zeros(N_INVENTORY_SLOTS, dtype=np.int64)
        self.counts = np.zeros(N_INVENTORY_SLOTS, dtype=np.int64)
        self.damage = np.zeros(N_INVENTORY_SLOTS, dtype=np.int64)
        self.version = 0
        self._counts_cache = None

    @staticmethod
    def _id(name: str) -> int:
        try:
            return ITEM_ID[name]
        except KeyError:
            raise ValueError(f"unknown MineLite item {name!r}; expected one of {ITEM_NAMES[1:]}") from None

    def clear(self) -> None:
        """Empty every slot."""
        self.items[:] = 0
        self.counts[:] = 0
        self.damage[:] = 0
        self.version += 1

    def slot_name(self, k: int) -> str:
        """Item name in slot ``k`` (``"air"`` when empty)."""
        return ITEM_NAMES[int(self.items[k])] if self.counts[k] > 0 else "air"

    def hotbar(self) -> List[Tuple[str, int]]:
        """(item name, count) for hotbar slots 0-8."""
        return [(self.slot_name(k), int(self.counts[k])) for k in range(N_HOTBAR)]

    def count(self, name: str) -> int:
        """Total count of ``name`` over all slots."""
        i = self._id(name)
        return int(self.counts[self.items == i].sum())

    def counts_by_name(self) -> Dict[str, int]:
        """Counts summed over slots for every MineLite item; ``air`` = number of empty slots (MineRL's rule)."""
        if self._counts_cache is not None and self._counts_cache[0] == self.version:
            return dict(self._counts_cache[1])
        totals = np.bincount(self.items[self.counts > 0], weights=self.counts[self.counts > 0],
                             minlength=len(ITEM_NAMES)).astype(np.int64)
        out = {name: int(totals[k]) for k, name in enumerate(ITEM_NAMES)}
        out["air"] = int(np.count_nonzero(self.counts == 0))
        self._counts_cache = (self.version, out)
        return dict(out)

    def space_for(self, name: str) -> int:
        """How many more of ``name`` fit."""
        i = self._id(name)
        stack = ITEMS[name].stack
        same = (self.items == i) & (self.counts > 0)
        free = int((stack - self.counts[same]).sum()) + int(np.count_nonzero(self.counts == 0)) * stack
        return free

    def add(self, name: str, n: int = 1, damage: int = 0, prefer: int = -1) -> int:
        """Pick up ``n`` of ``name``; returns the number that did not fit.

        Minecraft's order: the ``prefer`` slot (the selected hotbar slot) if it holds the same item, then
        partial stacks of the item in slot order (hotbar first), then empty slots in slot order.
        """
        i = self._id(name)
        if n < 0:
            raise ValueError(f"cannot add a negative count {n} of {name!r}")
        stack = ITEMS[name].stack
        left = int(n)
        order = ([prefer] if 0 <= prefer < N_INVENTORY_SLOTS else []) + list(range(N_INVENTORY_SLOTS))
        for k in order:
            if left == 0:
                break
            if self.items[k] == i and 0 < self.counts[k] < stack:
                put = min(left, stack - int(self.counts[k]))
                self.counts[k] += put
                left -= put
        for k in range(N_INVENTORY_SLOTS):
            if left == 0:
                break
            if self.counts[k] == 0:
                put = min(left, stack)
                self.items[k], self.counts[k], self.damage[k] = i, put, damage
                left -= put
        if left != n:
            self.version += 1
        return left

    def remove(self, name: str, n: int = 1) -> bool:
        """Take ``n`` of ``name`` (from the last slots first, so the hotbar stays put); all or nothing."""
        i = self._id(name)
        if self.count(name) < n:
            return False
        left = int(n)
        for k in range(N_INVENTORY_SLOTS - 1, -1, -1):
            if left == 0:
                break
            if self.items[k] == i and self.counts[k] > 0:
                take = min(left, int(self.counts[k]))
                self.counts[k] -= take
                left -= take
                if self.counts[k] == 0:
                    self.items[k] = 0
                    self.damage[k] = 0
        self.version += 1
        return True

    def take_from_slot(self, k: int, n: int = 1) -> None:
        """Remove ``n`` items from slot ``k`` (used for placing and dropping the held item)."""
        self.counts[k] = max(0, int(self.counts[k]) - n)
        if self.counts[k] == 0:
            self.items[k] = 0
            self.damage[k] = 0
        self.version += 1

    def damage_slot(self, k: int) -> bool:
        """Wear the tool in slot ``k`` by one use; returns True when it broke (and the slot emptied)."""
        name = self.slot_name(k)
        md = ITEMS[name].max_damage
        if md <= 0:
            return False
        self.damage[k] += 1
        self.version += 1
        if self.damage[k] >= md:
            self.take_from_slot(k, int(self.counts[k]))
            return True
        return False
