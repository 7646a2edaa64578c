"""The game state a contractor line records, read from whatever an env offers.

:func:`env_state` turns an env (MineLite's privileged-state API, a custom ``privileged_state()``, or
MineRL-style ``obs``/``info``) into the recorder's state dict; :func:`inventory_list` and :func:`jsonable`
put inventories and stats into the shapes the jsonl lines hold. Used by :mod:`vpt_rl.data.recorder`.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from vpt_rl.envs.minelite.screens import GUI_H, GUI_W


def env_state(env: Any, obs: Optional[Mapping] = None, info: Optional[Mapping] = None) -> dict:
    """The recorder's state dict for the current moment of ``env``, from whatever the env offers.

    Keys (all optional for :meth:`ContractorRecorder.add`): ``isGuiOpen``, ``isGuiInventory``, ``cursor``
    (GUI cursor ``(x, y)`` in frame pixels), ``hotbar`` (0-8), ``yaw``, ``pitch``, ``xpos``, ``ypos``,
    ``zpos``, ``inventory`` (``[{"type", "quantity"}]``), ``stats`` (dict).

    Sources, first found wins: MineLite's privileged-state API (``env.unwrapped.player``, ``.gui`` with its
    cursor in 640x360 GUI pixels, ``.selected_slot``, ``.inventory`` slots, ``.tick``); a custom env's
    ``privileged_state()`` returning a dict with ``gui_open``, ``gui_screen``, ``cursor`` (frame pixels),
    ``hotbar``, ``yaw``, ``pitch``, ``pos``, ``inventory``, ``stats``; then MineRL-style ``obs``/``info``
    (``location_stats``, ``isGuiOpen``, ``inventory`` counts). Anything else is left out (neutral defaults).
    """
    state: dict = {}
    base = getattr(env, "unwrapped", env)
    if all(hasattr(base, a) for a in ("player", "gui", "selected_slot", "inventory", "height", "width")) \
            and base.player is not None:
        return _minelite_state(base)
    getter = getattr(base, "privileged_state", None)
    if callable(getter):
        ps = getter()
        screen = ps.get("gui_screen")
        gui_open = bool(ps.get("gui_open", screen is not None))
        state["isGuiOpen"] = gui_open
        state["isGuiInventory"] = bool(gui_open and screen == "inventory")
        if ps.get("cursor") is not None:
            state["cursor"] = tuple(float(v) for v in ps["cursor"])
        for key in ("hotbar", "yaw", "pitch"):
            if key in ps:
                state[key] = ps[key]
        if ps.get("pos") is not None:
            state["xpos"], state["ypos"], state["zpos"] = (float(v) for v in ps["pos"])
        if ps.get("inventory") is not None:
            state["inventory"] = ps["inventory"]
        if ps.get("stats") is not None:
            state["stats"] = ps["stats"]
        return state
    info = info or {}
    obs = obs or {}
    loc = info.get("location_stats") or (obs.get("location_stats") if isinstance(obs, Mapping) else None)
    if isinstance(loc, Mapping):
        for key in ("yaw", "pitch", "xpos", "ypos", "zpos"):
            if key in loc:
                state[key] = float(np.asarray(loc[key]).reshape(-1)[0])
    if "isGuiOpen" in info:
        state["isGuiOpen"] = bool(info["isGuiOpen"])
    inv = obs.get("inventory") if isinstance(obs, Mapping) else None
    if isinstance(inv, Mapping):
        state["inventory"] = inv
    return state


def _minelite_state(game: Any) -> dict:
    """State dict from MineLite's privileged API (see ``vpt_rl.envs.minelite.env``)."""
    p = game.player
    gui = game.gui
    inv = game.inventory
    slots = [{"type": inv.slot_name(k), "quantity": int(inv.counts[k])} for k in range(len(inv.counts))
             if inv.counts[k] > 0]
    state = {
        "isGuiOpen": gui is not None,
        "isGuiInventory": gui is not None and gui.kind == "inventory",
        "hotbar": int(game.selected_slot),
        "yaw": float(p.yaw), "pitch": float(p.pitch),
        "xpos": float(p.pos[0]), "ypos": float(p.pos[1]), "zpos": float(p.pos[2]),
        "inventory": slots,
    }
    if gui is not None:  # GUI pixels (640x360) -> pixels of the (possibly squeezed) frame
        state["cursor"] = (float(gui.cursor[0]) * game.width / GUI_W, float(gui.cursor[1]) * game.height / GUI_H)
    return state


def inventory_list(inv: Any) -> list:
    """``[{"type", "quantity"}]`` from a list of slots or a ``{name: count}`` dict (``air`` dropped)."""
    if inv is None:
        return []
    if isinstance(inv, Mapping):
        out = []
        for name, count in inv.items():
            n = int(np.asarray(count).reshape(-1)[0])
            if n > 0 and name != "air":
                out.append({"type": str(name), "quantity": n})
        return out
    out = []
    for slot in inv:
        if isinstance(slot, Mapping):
            name, n = slot.get("type"), int(slot.get("quantity", 0))
        else:
            name, n = slot[0], int(slot[1])
        if name and name != "air" and n > 0:
            out.append({"type": str(name), "quantity": n})
    return out


def jsonable(value: Any) -> Any:
    """``value`` with numpy arrays and scalars turned into lists and Python numbers (for JSON)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value
