"""MineLite's HUD and GUI overlays: item icons, a little font, and ``Hud``.

``Hud`` composes the hotbar (item icons, counts, selected-slot frame), hearts, crosshair, the open screen
(panel, recipe buttons, inventory slots) and the mouse cursor. Overlays are laid out in the 640x360 "GUI
pixel" space of MineRL at GUI scale 1 and resized to the render resolution; they are cached and rebuilt
only when what they show changes.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from vpt_rl.envs.minelite import world as W
from vpt_rl.envs.minelite.items import ITEM_NAMES, ITEMS, N_HOTBAR, N_INVENTORY_SLOTS
from vpt_rl.envs.minelite.render import TEXTURES, blend_rgba
from vpt_rl.envs.minelite.screens import GUI_H, GUI_W  # MineRL's GUI pixel space (GUI scale 1)

# --- item icons and the little font --------------------------------------------------------------

_DIGITS = {
    "0": ("111", "101", "101", "101", "111"), "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"), "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"), "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"), "7": ("111", "001", "010", "010", "010"),
    "8": ("111", "101", "111", "101", "111"), "9": ("111", "101", "111", "001", "111"),
}

_MATERIAL = {"wooden": (150, 116, 66), "stone": (125, 125, 125), "iron": (225, 225, 225),
             "diamond": (80, 232, 240)}
_HANDLE = (105, 78, 40)


def _block_icon(b: int) -> np.ndarray:
    """A block's icon: a strip of its top face over its (darker) side face."""
    img = np.zeros((16, 16, 4), np.uint8)
    top, side = TEXTURES[b, 0], TEXTURES[b, 1]
    img[1:15, 1:15, 3] = 255
    img[1:15, 1:15, :3] = np.concatenate([top[5:10, 1:15], (side[7:16, 1:15] * 0.8).astype(np.uint8)], 0)
    return img


def _tool_icon(material: str, kind: str) -> np.ndarray:
    img = np.zeros((16, 16, 4), np.uint8)
    for k in range(4, 15):  # handle: diagonal from bottom-left
        y, x = k, 15 - k
        img[y, x, :3] = _HANDLE
        img[y, x, 3] = 255
    head = _MATERIAL[material]
    if kind == "pickaxe":
        pts = [(2, x) for x in range(4, 12)] + [(3, 3), (3, 12), (4, 2), (4, 13), (3, 11), (4, 12), (5, 13), (6, 13)]
        pts += [(3, x) for x in range(4, 12)]
    else:  # axe
        pts = [(y, x) for y in range(1, 7) for x in range(8, 13) if not (y == 1 and x > 10)]
    for y, x in pts:
        img[y, x, :3] = head
        img[y, x, 3] = 255
    return img


def _shape_icon(name: str) -> np.ndarray:
    img = np.zeros((16, 16, 4), np.uint8)
    yy, xx = np.mgrid[0:16, 0:16]
    if name == "stick":
        for k in range(3, 14):
            img[k, 15 - k, :3] = _HANDLE
            img[k, 15 - k, 3] = 255
            img[k, 16 - k if k > 3 else 12, :3] = (80, 60, 30)
            img[k, 16 - k if k > 3 else 12, 3] = 255
    elif name == "coal":
        m = (yy - 8) ** 2 + (xx - 8) ** 2 < 26
        img[m, :3] = (35, 35, 38)
        img[m & ((yy + xx) % 5 == 0), :3] = (70, 70, 75)
        img[m, 3] = 255
    elif name == "iron_ingot":
        m = (yy > 5) & (yy < 11) & (xx > 1 + (10 - yy) // 2) & (xx < 14 - (10 - yy) // 2)
        img[m, :3] = (216, 216, 216)
        img[m & (yy == 6), :3] = (245, 245, 245)
        img[m, 3] = 255
    elif name == "diamond":
        m = (np.abs(yy - 8) + np.abs(xx - 8)) < 7
        img[m, :3] = (90, 230, 235)
        img[m & (yy < 7), :3] = (180, 250, 250)
        img[m, 3] = 255
    elif name == "torch":
        img[5:15, 7:9, :3] = _HANDLE
        img[5:15, 7:9, 3] = 255
        img[2:5, 6:10, :3] = (255, 210, 60)
        img[2:5, 6:10, 3] = 255
    return img


def make_item_icons() -> np.ndarray:
    """RGBA uint8 (len(ITEM_NAMES), 16, 16, 4) icons in ``ITEM_NAMES`` order (air transparent)."""
    icons = np.zeros((len(ITEM_NAMES), 16, 16, 4), np.uint8)
    for k, name in enumerate(ITEM_NAMES):
        info = ITEMS[name]
        if name == "air":
            continue
        if info.block is not None:
            icons[k] = _block_icon(W.BLOCK[info.block])
        elif info.tool is not None:
            icons[k] = _tool_icon(name.split("_")[0], info.tool)
        else:
            icons[k] = _shape_icon(name)
    return icons


ICONS = make_item_icons()


def _put(canvas: np.ndarray, x: int, y: int, rgba: np.ndarray, scale: int = 1, dim: float = 1.0) -> None:
    if scale != 1:
        rgba = np.repeat(np.repeat(rgba, scale, 0), scale, 1)
    h, w = rgba.shape[:2]
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    region = canvas[y: y + h, x: x + w]
    region[..., :3] = (region[..., :3] * (1 - a) + rgba[..., :3] * dim * a).astype(np.uint8)
    region[..., 3] = np.maximum(region[..., 3], rgba[..., 3])


def _rect(canvas: np.ndarray, x0: int, y0: int, x1: int, y1: int, rgb, alpha: int = 255) -> None:
    canvas[y0:y1, x0:x1, :3] = rgb
    canvas[y0:y1, x0:x1, 3] = alpha


def _frame(canvas: np.ndarray, x0: int, y0: int, x1: int, y1: int, rgb, t: int = 1) -> None:
    _rect(canvas, x0, y0, x1, y0 + t, rgb)
    _rect(canvas, x0, y1 - t, x1, y1, rgb)
    _rect(canvas, x0, y0, x0 + t, y1, rgb)
    _rect(canvas, x1 - t, y0, x1, y1, rgb)


def _text(canvas: np.ndarray, x: int, y: int, s: str, rgb=(255, 255, 255), scale: int = 1) -> None:
    """Draw digits (3x5 font) with a 1-px shadow; ``x`` is the right edge."""
    wch = 4 * scale
    x0 = x - wch * len(s)
    for k, ch in enumerate(s):
        g = _DIGITS.get(ch)
        if g is None:
            continue
        for r, line in enumerate(g):
            for c, bit in enumerate(line):
                if bit == "1":
                    px, py = x0 + k * wch + c * scale, y + r * scale
                    _rect(canvas, px + scale, py + scale, px + 2 * scale, py + 2 * scale, (40, 40, 40))
                    _rect(canvas, px, py, px + scale, py + scale, rgb)


def _slot(canvas: np.ndarray, x: int, y: int, size: int, item: int, count: int, icon_scale: int) -> None:
    _rect(canvas, x, y, x + size, y + size, (139, 139, 139))
    _frame(canvas, x, y, x + size, y + size, (55, 55, 55))
    if item > 0 and count > 0:
        off = (size - 16 * icon_scale) // 2
        _put(canvas, x + off, y + off, ICONS[item], icon_scale)
        if count > 1:
            _text(canvas, x + size - 1, y + size - 6 * icon_scale, str(count), scale=1 if icon_scale == 1 else 2)


# Hotbar geometry in GUI pixels (Minecraft: 182x22 centred at the bottom, slots 20 px apart).
HOTBAR_X0, HOTBAR_Y0 = GUI_W // 2 - 91, GUI_H - 22


def cursor_sprite() -> np.ndarray:
    """RGBA (16, 16, 4): a white arrow with a black outline (MineRL draws a 16x16 cursor)."""
    img = np.zeros((16, 16, 4), np.uint8)
    for y in range(16):
        for x in range(16):
            inside = x <= y * 0.62 and y < 13 or (10 <= y < 16 and 3 <= x <= 5 and x <= (y - 10) * 0.5 + 4)
            if inside:
                img[y, x] = (255, 255, 255, 255)
    m = img[..., 3] > 0
    border = np.zeros_like(m)
    border[1:] |= m[:-1]
    border[:-1] |= m[1:]
    border[:, 1:] |= m[:, :-1]
    border[:, :-1] |= m[:, 1:]
    edge = border & ~m
    img[edge] = (0, 0, 0, 255)
    return img


class Hud:
    """Draws the HUD and GUI over rendered frames of size (H, W); caches the overlays it builds."""

    def __init__(self, height: int, width: int):
        self.h, self.w = int(height), int(width)
        self._cache: Dict[tuple, object] = {}  # overlay key -> (y0, x0, RGBA uint8 at frame resolution)
        self._cursor = self._scale_sprite(cursor_sprite())
        cl = max(2, int(round(5 * self.h / GUI_H)))
        self._cross_len = cl

    # overlays are built at GUI resolution and resized once per change
    def _finish(self, canvas: np.ndarray, rect: Optional[Tuple[int, int, int, int]] = None):
        """Resize the part ``rect`` = (x0, y0, x1, y1) (GUI px; default all) of an RGBA canvas to the frame."""
        gx0, gy0, gx1, gy1 = rect if rect is not None else (0, 0, GUI_W, GUI_H)
        sx, sy = self.w / GUI_W, self.h / GUI_H
        rx0, ry0 = int(math.floor(gx0 * sx)), int(math.floor(gy0 * sy))
        rx1, ry1 = min(self.w, int(math.ceil(gx1 * sx))), min(self.h, int(math.ceil(gy1 * sy)))
        # the GUI crop that maps onto those whole frame pixels (rounded to GUI pixels)
        cx0, cy0 = int(round(rx0 / sx)), int(round(ry0 / sy))
        cx1, cy1 = min(GUI_W, int(round(rx1 / sx))), min(GUI_H, int(round(ry1 / sy)))
        crop = canvas[cy0:cy1, cx0:cx1]
        if crop.size == 0 or not crop[..., 3].any():
            return None
        interp = cv2.INTER_AREA if self.w < GUI_W else cv2.INTER_NEAREST
        small = cv2.resize(crop, (rx1 - rx0, ry1 - ry0), interpolation=interp).reshape(ry1 - ry0, rx1 - rx0, 4)
        return (ry0, rx0, np.ascontiguousarray(small))

    def _hud_base(self, life: int, food: int) -> np.ndarray:
        key = ("hud_base", life, food)
        base = self._cache.get(key)
        if base is None:
            c = np.zeros((GUI_H, GUI_W, 4), np.uint8)
            x0, y0 = HOTBAR_X0, HOTBAR_Y0
            _rect(c, x0, y0, x0 + 182, y0 + 22, (60, 60, 60), 200)
            _frame(c, x0, y0, x0 + 182, y0 + 22, (25, 25, 25))
            for k in range(N_HOTBAR):
                sx = x0 + 1 + 20 * k
                _frame(c, sx, y0 + 1, sx + 20, y0 + 21, (110, 110, 110))
            for k in range(10):
                hx, hy = x0 + 8 * k, y0 - 10
                full = life - 2 * k
                _rect(c, hx, hy, hx + 7, hy + 7, (30, 10, 10))
                if full >= 1:
                    _rect(c, hx + 1, hy + 1, hx + (6 if full >= 2 else 3), hy + 6, (220, 30, 30))
            for k in range(10):
                fx, fy = x0 + 182 - 8 * (k + 1), y0 - 10
                _rect(c, fx, fy, fx + 7, fy + 7, (30, 20, 10))
                if food - 2 * k >= 1:
                    _rect(c, fx + 1, fy + 1, fx + 6, fy + 6, (190, 120, 50))
            base = self._store(key, c)
        return base

    def _scale_sprite(self, sprite: np.ndarray) -> np.ndarray:
        h = max(2, int(round(16 * self.h / GUI_H)))
        w = max(2, int(round(16 * self.w / GUI_W)))
        interp = cv2.INTER_AREA if w < 16 else cv2.INTER_NEAREST
        return np.ascontiguousarray(cv2.resize(sprite, (w, h), interpolation=interp))

    def _store(self, key: tuple, ov):
        if len(self._cache) >= 256:  # bounded: forget everything (rebuilding is cheap enough)
            self._cache.clear()
        self._cache[key] = ov
        return ov

    @staticmethod
    def _blend(frame: np.ndarray, ov) -> None:
        if ov is not None:
            blend_rgba(frame, ov[0], ov[1], ov[2])

    def draw_hud(self, frame: np.ndarray, hotbar_items: Sequence[int], hotbar_counts: Sequence[int], selected: int,
                 life: float, food: int, crosshair: bool) -> None:
        """Hotbar (icons, counts, selected frame), hearts and food, and the crosshair, in place."""
        key = ("hud", tuple(hotbar_items), tuple(hotbar_counts), int(selected), int(math.ceil(life)), int(food))
        ov = self._cache.get(key, False)
        if ov is False:
            c = self._hud_base(int(math.ceil(life)), int(food)).copy()
            x0, y0 = HOTBAR_X0, HOTBAR_Y0
            for k in range(N_HOTBAR):
                sx = x0 + 1 + 20 * k
                if hotbar_items[k] > 0 and hotbar_counts[k] > 0:
                    _put(c, sx + 2, y0 + 3, ICONS[hotbar_items[k]])
                    if hotbar_counts[k] > 1:
                        _text(c, sx + 19, y0 + 14, str(int(hotbar_counts[k])))
            sx = x0 - 1 + 20 * int(selected)
            _frame(c, sx, y0 - 1, sx + 24, y0 + 23, (250, 250, 250), 2)
            ov = self._store(key, self._finish(c, (x0 - 2, y0 - 12, x0 + 184, GUI_H)))
        self._blend(frame, ov)
        if crosshair:
            cy, cx = self.h // 2, self.w // 2
            L = self._cross_len
            frame[cy, cx - L: cx + L + 1] = 255 - frame[cy, cx - L: cx + L + 1]
            col = frame[cy - L: cy + L + 1, cx]
            col[:L] = 255 - col[:L]
            col[L + 1:] = 255 - col[L + 1:]

    def draw_gui(self, frame: np.ndarray, screen, slot_items: np.ndarray, slot_counts: np.ndarray,
                 enabled: Dict[str, bool], fuel: float) -> None:
        """Dim the frame and draw ``screen`` (panel, buttons, slots) and its cursor, in place."""
        key = ("gui", screen.kind, tuple(slot_items.tolist()), tuple(slot_counts.tolist()),
               tuple(sorted(enabled.items())), round(float(fuel), 3))
        ov = self._cache.get(key, False)
        if ov is False:
            c = np.zeros((GUI_H, GUI_W, 4), np.uint8)
            px0, py0, px1, py1 = screen.panel_rect
            _rect(c, px0, py0, px1, py1, (198, 198, 198))
            _frame(c, px0, py0, px1, py1, (40, 40, 40), 2)
            title = {"inventory": (110, 110, 160), "crafting_table": (150, 110, 60),
                     "furnace": (80, 80, 80)}[screen.kind]
            _rect(c, px0 + 2, py0 + 2, px1 - 2, py0 + 16, title)
            for name in screen.buttons:
                x0, y0, x1, y1 = screen.button_rect(name)
                on = enabled.get(name, False)
                _rect(c, x0, y0, x1, y1, (225, 225, 225) if on else (120, 120, 120))
                _frame(c, x0, y0, x1, y1, (30, 30, 30) if on else (85, 85, 85), 2)
                icon = ICONS[ITEM_NAMES.index(name)]
                off = (x1 - x0 - 32) // 2
                _put(c, x0 + off, y0 + off, icon, 2, 1.0 if on else 0.45)
            if screen.kind == "furnace":  # fuel gauge next to the smelt button
                x0, y0, x1, y1 = screen.button_rect(screen.buttons[0])
                gx = x1 + 12
                _rect(c, gx, y0, gx + 10, y1, (60, 40, 30))
                filled = int(round((y1 - y0 - 4) * min(1.0, fuel / 8.0)))
                if filled > 0:
                    _rect(c, gx + 2, y1 - 2 - filled, gx + 8, y1 - 2, (255, 150, 40))
            for k in range(N_INVENTORY_SLOTS):
                x0, y0, x1, y1 = screen.slot_rect(k)
                _slot(c, x0, y0, x1 - x0, int(slot_items[k]), int(slot_counts[k]), 1)
            ov = self._store(key, self._finish(c, screen.panel_rect))
        frame >>= 1  # Minecraft dims the world behind a screen
        frame += frame >> 2
        self._blend(frame, ov)
        # cursor: its tip at the cursor position (GUI px) scaled to the frame
        cx = int(round(screen.cursor[0] * self.w / GUI_W))
        cy = int(round(screen.cursor[1] * self.h / GUI_H))
        blend_rgba(frame, cy, cx, self._cursor)
