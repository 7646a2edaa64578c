"""MineLite rendering: a numba per-pixel voxel raycaster plus the HUD and GUI overlays.

* ``render_world`` (numba, ``cache=True``) casts one ray per pixel through ``blocks[x, y, z]`` with a
  3-D DDA, samples a 16x16 procedural texture per block id and face (top / side / bottom), shades faces
  by orientation, draws the targeted block's outline and crack overlay, and blends to the sky colour
  with distance fog. The sky is a vertical gradient (brighter at the horizon) so pitch is visible.
* ``pick_block`` (numba) is the crosshair ray used for mining and placing.
* ``Hud`` composes the hotbar (item icons, counts, selected-slot frame), hearts, crosshair, the open
  screen (panel, recipe buttons, inventory slots) and the mouse cursor. Overlays are laid out in the
  640x360 "GUI pixel" space of MineRL at GUI scale 1 and resized to the render resolution; they are
  cached and rebuilt only when what they show changes.

Camera model: vertical FOV 70 degrees and a horizontal extent set by ``aspect`` (default 16/9, i.e. the
frame the VPT agent sees: MineRL's 640x360 view squeezed to 128x128).
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
from numba import njit

from vpt_rl.envs.minelite import world as W
from vpt_rl.envs.minelite.items import ITEM_NAMES, ITEMS, N_HOTBAR, N_INVENTORY_SLOTS

GUI_W, GUI_H = 640, 360  # MineRL's GUI pixel space (GUI scale 1)
SKY_TOP = np.array([104, 150, 235], dtype=np.float32)
SKY_HORIZON = np.array([190, 215, 250], dtype=np.float32)
VOID = np.array([120, 140, 170], dtype=np.float32)  # below the horizon, outside the world


# --- textures ------------------------------------------------------------------------------------

def _noisy(rng: np.random.RandomState, rgb, amp: float = 0.12, size: int = 16) -> np.ndarray:
    base = np.asarray(rgb, dtype=np.float32)
    n = 1.0 + amp * (rng.rand(size, size, 1).astype(np.float32) * 2 - 1)
    return base[None, None, :] * n


def _spots(rng: np.random.RandomState, img: np.ndarray, rgb, n: int, r: int = 1) -> np.ndarray:
    img = img.copy()
    for _ in range(n):
        cy, cx = rng.randint(1, 15, size=2)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if abs(dy) + abs(dx) <= r + (rng.rand() < 0.4):
                    y, x = min(15, max(0, cy + dy)), min(15, max(0, cx + dx))
                    img[y, x] = np.asarray(rgb, np.float32) * (0.85 + 0.3 * rng.rand())
    return img


def make_textures() -> np.ndarray:
    """Block textures, uint8 (N_BLOCKS, 3, 16, 16, 3): face kind 0 top, 1 side, 2 bottom. Deterministic."""
    rng = np.random.RandomState(1234)
    tex = np.zeros((W.N_BLOCKS, 3, 16, 16, 3), dtype=np.float32)

    def all_faces(b, img):
        tex[b, :] = img

    dirt = _noisy(rng, (134, 96, 67), 0.18)
    stone = _noisy(rng, (128, 128, 128), 0.10)
    grass_top = _noisy(rng, (95, 159, 53), 0.15)
    grass_side = dirt.copy()
    edge = 3 + (rng.rand(16) < 0.5)
    for x in range(16):
        grass_side[: edge[x], x] = grass_top[: edge[x], x]
    tex[W.GRASS, 0], tex[W.GRASS, 1], tex[W.GRASS, 2] = grass_top, grass_side, dirt
    all_faces(W.DIRT, dirt)
    all_faces(W.STONE, stone)
    cobble = _noisy(rng, (118, 118, 118), 0.15)
    for y in range(16):
        for x in range(16):
            if (x + 4 * (y // 4)) % 6 == 0 or y % 4 == 0:
                cobble[y, x] *= 0.7
    all_faces(W.COBBLESTONE, cobble)
    bed = _noisy(rng, (60, 60, 60), 0.6)
    all_faces(W.BEDROCK, bed)
    bark = _noisy(rng, (102, 81, 50), 0.1)
    bark[:, ::3] *= 0.8
    rings = np.zeros((16, 16, 3), np.float32)
    yy, xx = np.mgrid[0:16, 0:16]
    rad = np.sqrt((yy - 7.5) ** 2 + (xx - 7.5) ** 2)
    rings[:] = np.array([176, 144, 92], np.float32)
    rings[(rad.astype(int) % 3) == 0] *= 0.8
    rings[rad > 6.8] = np.array([102, 81, 50], np.float32)
    tex[W.LOG, 0], tex[W.LOG, 1], tex[W.LOG, 2] = rings, bark, rings
    leaves = _noisy(rng, (58, 118, 38), 0.35)
    leaves[rng.rand(16, 16) < 0.2] *= 0.55
    all_faces(W.LEAVES, leaves)
    planks = _noisy(rng, (168, 135, 84), 0.08)
    planks[3::4] *= 0.72
    for r in range(4):
        planks[4 * r: 4 * r + 3, (5 + 7 * r) % 16] *= 0.75
    all_faces(W.PLANKS, planks)
    all_faces(W.COAL_ORE, _spots(rng, stone, (30, 30, 30), 6))
    all_faces(W.IRON_ORE, _spots(rng, stone, (222, 170, 130), 6))
    all_faces(W.DIAMOND_ORE, _spots(rng, stone, (80, 232, 240), 5))
    table_top = planks.copy() * 0.95
    table_top[[0, 5, 10, 15], :] *= 0.55
    table_top[:, [0, 5, 10, 15]] *= 0.55
    table_side = planks.copy()
    table_side[:3] *= 0.6
    table_side[6:13, 3] = (120, 120, 120)  # a saw / hammer pictogram
    table_side[6:8, 3:7] = (120, 120, 120)
    table_side[6:13, 11] = (95, 70, 40)
    table_side[6:8, 9:14] = (140, 140, 140)
    tex[W.CRAFTING_TABLE, 0], tex[W.CRAFTING_TABLE, 1], tex[W.CRAFTING_TABLE, 2] = table_top, table_side, planks
    fur = _noisy(rng, (112, 112, 112), 0.08)
    fur_side = fur.copy()
    fur_side[8:14, 4:12] = (30, 26, 24)
    fur_side[11:14, 5:11] = (220, 120, 40)
    fur_side[2:4, 3:13] *= 0.6
    tex[W.FURNACE, 0], tex[W.FURNACE, 1], tex[W.FURNACE, 2] = fur, fur_side, fur
    all_faces(W.SAND, _noisy(rng, (219, 207, 160), 0.07))
    return np.clip(tex, 0, 255).astype(np.uint8)


def make_crack_masks() -> np.ndarray:
    """uint8 (10, 16, 16): crack pattern for stages 1..10 (index stage-1); each stage adds cracks."""
    rng = np.random.RandomState(99)
    masks = np.zeros((10, 16, 16), dtype=np.uint8)
    cur = np.zeros((16, 16), dtype=np.uint8)
    walkers = [(8, 8)]
    for s in range(10):
        for _ in range(14):
            y, x = walkers[rng.randint(len(walkers))]
            dy, dx = [(0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1)][rng.randint(6)]
            y, x = min(15, max(0, y + dy)), min(15, max(0, x + dx))
            cur[y, x] = 1
            walkers.append((y, x))
        masks[s] = cur
    return masks


TEXTURES = make_textures()
CRACKS = make_crack_masks()


# --- raycasting kernels --------------------------------------------------------------------------

TILE_SHIFT = 2  # the raycaster skips 4x4-column tiles whose blocks all lie below the ray


@njit(cache=True, nogil=True)
def tile_heights(blocks, shift):
    """int64 (ceil(X / 2^shift), ceil(Z / 2^shift)): 1 + the highest non-air y in each tile (0 = empty)."""
    X = blocks.shape[0]
    Y = blocks.shape[1]
    Z = blocks.shape[2]
    n = 1 << shift
    th = np.zeros(((X + n - 1) >> shift, (Z + n - 1) >> shift), dtype=np.int64)
    for x in range(X):
        for z in range(Z):
            h = 0
            for y in range(Y - 1, -1, -1):
                if blocks[x, y, z] != 0:
                    h = y + 1
                    break
            if h > th[x >> shift, z >> shift]:
                th[x >> shift, z >> shift] = h
    return th


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _dda_start(ex, ey, ez, dx, dy, dz):
    """Start of a voxel walk (Amanatides & Woo) along ``e + t d``: the cell of ``e``, the step sign per axis,
    the ``t`` one cell costs per axis, and the ``t`` of the first crossing per axis (1e30: never)."""
    ix = int(math.floor(ex))
    iy = int(math.floor(ey))
    iz = int(math.floor(ez))
    stx = 1 if dx > 0 else -1
    sty = 1 if dy > 0 else -1
    stz = 1 if dz > 0 else -1
    tdx = abs(1.0 / dx) if dx != 0.0 else 1e30
    tdy = abs(1.0 / dy) if dy != 0.0 else 1e30
    tdz = abs(1.0 / dz) if dz != 0.0 else 1e30
    tmx = ((ix + 1.0 - ex) if dx > 0 else (ex - ix)) * tdx if dx != 0.0 else 1e30
    tmy = ((iy + 1.0 - ey) if dy > 0 else (ey - iy)) * tdy if dy != 0.0 else 1e30
    tmz = ((iz + 1.0 - ez) if dz > 0 else (ez - iz)) * tdz if dz != 0.0 else 1e30
    return ix, iy, iz, stx, sty, stz, tdx, tdy, tdz, tmx, tmy, tmz


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _dda_advance(ix, iy, iz, stx, sty, stz, tdx, tdy, tdz, tmx, tmy, tmz):
    """One step of the voxel walk into the next cell; returns the new state, the ``t`` of the crossing and its
    axis (0 x, 1 y, 2 z)."""
    if tmx < tmy and tmx < tmz:
        return ix + stx, iy, iz, tmx + tdx, tmy, tmz, tmx, 0
    if tmy < tmz:
        return ix, iy + sty, iz, tmx, tmy + tdy, tmz, tmy, 1
    return ix, iy, iz + stz, tmx, tmy, tmz + tdz, tmz, 2


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _trace(blocks, th, ytop, ex, ey, ez, dx, dy, dz, view_dist):
    """DDA along the unit ray; returns (hit, block, ix, iy, iz, axis, t). axis -1: the eye is inside a block."""
    X = blocks.shape[0]
    Z = blocks.shape[2]
    n = 1 << TILE_SHIFT
    idx = 1.0 / dx if dx != 0.0 else 1e30
    idy = 1.0 / dy if dy != 0.0 else 1e30
    idz = 1.0 / dz if dz != 0.0 else 1e30
    ix, iy, iz, stx, sty, stz, tdx, tdy, tdz, tmx, tmy, tmz = _dda_start(ex, ey, ez, dx, dy, dz)
    t = 0.0
    axis = -1
    while True:
        if 0 <= ix < X and 0 <= iz < Z:
            if iy >= ytop:
                if dy >= 0.0:
                    return 0, 0, ix, iy, iz, axis, t
            elif iy >= 0:
                b = blocks[ix, iy, iz]
                if b != 0:
                    return 1, b, ix, iy, iz, axis, t
            else:
                return 0, 0, ix, iy, iz, axis, t
            h = th[ix >> TILE_SHIFT, iz >> TILE_SHIFT]
            if iy >= h:
                # the ray is above this tile's blocks: jump to where it leaves the tile, if it stays above
                bx = (ix >> TILE_SHIFT) << TILE_SHIFT
                bz = (iz >> TILE_SHIFT) << TILE_SHIFT
                txe = ((bx + n - ex) * idx if dx > 0 else (bx - ex) * idx) if dx != 0.0 else 1e30
                tze = ((bz + n - ez) * idz if dz > 0 else (bz - ez) * idz) if dz != 0.0 else 1e30
                te = min(txe, tze)
                if te > t and ey + te * dy >= h:
                    if te > view_dist:
                        return 0, 0, ix, iy, iz, axis, t
                    t = te
                    if txe <= tze:
                        axis = 0
                        ix = bx + n if dx > 0 else bx - 1
                        iz = int(math.floor(ez + te * dz))
                    else:
                        axis = 2
                        iz = bz + n if dz > 0 else bz - 1
                        ix = int(math.floor(ex + te * dx))
                    iy = int(math.floor(ey + te * dy))
                    tmx = ((ix + (1.0 if dx > 0 else 0.0)) - ex) * idx if dx != 0.0 else 1e30
                    tmy = ((iy + (1.0 if dy > 0 else 0.0)) - ey) * idy if dy != 0.0 else 1e30
                    tmz = ((iz + (1.0 if dz > 0 else 0.0)) - ez) * idz if dz != 0.0 else 1e30
                    if axis == 0:
                        tmx = te + tdx
                    else:
                        tmz = te + tdz
                    continue
        else:
            return 0, 0, ix, iy, iz, axis, t
        ix, iy, iz, tmx, tmy, tmz, t, axis = _dda_advance(ix, iy, iz, stx, sty, stz, tdx, tdy, tdz, tmx, tmy, tmz)
        if t > view_dist:
            return 0, 0, ix, iy, iz, axis, t


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _sky(out, i, j, dy, sky_top, sky_horizon, void):
    """Sky colour for a ray with vertical component ``dy`` (a gradient gives pitch cues; haze below)."""
    if dy >= 0.0:
        s = min(1.0, dy * 1.6)
        out[i, j, 0] = np.uint8(sky_horizon[0] + (sky_top[0] - sky_horizon[0]) * s)
        out[i, j, 1] = np.uint8(sky_horizon[1] + (sky_top[1] - sky_horizon[1]) * s)
        out[i, j, 2] = np.uint8(sky_horizon[2] + (sky_top[2] - sky_horizon[2]) * s)
    else:
        s = min(1.0, -dy * 3.0)
        out[i, j, 0] = np.uint8(sky_horizon[0] + (void[0] - sky_horizon[0]) * s)
        out[i, j, 1] = np.uint8(sky_horizon[1] + (void[1] - sky_horizon[1]) * s)
        out[i, j, 2] = np.uint8(sky_horizon[2] + (void[2] - sky_horizon[2]) * s)


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _shade(out, i, j, tex, b, ix, iy, iz, axis, down, t, px, py, pz, target, crack_stage, cracks, fog_start,
           fog_span, sky_horizon):
    """Colour of face ``axis`` of block ``b`` at (ix, iy, iz) hit at point p, distance t (``down``: ray going -y)."""
    # hit points lie inside the world (coordinates >= 0), so int() is floor()
    if axis == 0:
        u = pz - int(pz)
        v = py - int(py)
        kind = 1
        shade = 0.8
    elif axis == 1:
        u = px - int(px)
        v = pz - int(pz)
        kind = 0 if down else 2
        shade = 1.0 if down else 0.55
    elif axis == 2:
        u = px - int(px)
        v = py - int(py)
        kind = 1
        shade = 0.68
    else:  # the eye is inside a block
        u = 0.5
        v = 0.5
        kind = 1
        shade = 0.25
    col = int(u * 16.0)
    if kind == 1:
        row = 15 - int(v * 16.0)
    else:
        row = int(v * 16.0)
    col = min(15, max(0, col))
    row = min(15, max(0, row))
    cr = tex[b, kind, row, col, 0] * shade
    cg = tex[b, kind, row, col, 1] * shade
    cb = tex[b, kind, row, col, 2] * shade
    if ix == target[0] and iy == target[1] and iz == target[2]:
        if crack_stage > 0 and cracks[crack_stage - 1, row, col] != 0:
            cr *= 0.3
            cg *= 0.3
            cb *= 0.3
        if u < 0.035 or u > 0.965 or v < 0.035 or v > 0.965:
            cr = 20.0
            cg = 20.0
            cb = 20.0
    if t > fog_start:
        f = min(1.0, (t - fog_start) / fog_span)
        cr = cr + (sky_horizon[0] - cr) * f
        cg = cg + (sky_horizon[1] - cg) * f
        cb = cb + (sky_horizon[2] - cb) * f
    out[i, j, 0] = np.uint8(cr)  # shade <= 1 and fog blends towards the sky: always <= 255
    out[i, j, 1] = np.uint8(cg)
    out[i, j, 2] = np.uint8(cb)


_SKY_KEY = -1
_INSIDE_KEY = -2


@njit(cache=True, fastmath=True, nogil=True)
def render_world(blocks, tex, eye, fwd, right, up, tan_half, aspect, view_dist, fog_start,
                 target, crack_stage, cracks, sky_top, sky_horizon, void, out, exact):
    """Raycast the world into ``out`` (H, W, 3) uint8; ``fwd``, ``right``, ``up`` must be orthonormal.

    Per pixel a 3-D DDA that jumps over 4x4-column tiles lying wholly below the ray. Unless ``exact``, only
    pixels with even (row, column) are traced; any other pixel whose traced neighbours all hit the same
    block-face plane is intersected with that plane directly (checked: a solid block with an exposed face
    there), if they all saw sky it is sky, and otherwise it is traced too. ``target`` int64[3] (x, y, z) of
    the targeted block (x < 0 for none); ``crack_stage`` 0 (none) .. 10.
    """
    H = out.shape[0]
    Wd = out.shape[1]
    X = blocks.shape[0]
    Y = blocks.shape[1]
    Z = blocks.shape[2]
    ex = eye[0]
    ey = eye[1]
    ez = eye[2]
    e3 = (ex, ey, ez)
    fog_span = max(view_dist - fog_start, 1e-6)
    th = tile_heights(blocks, TILE_SHIFT)
    ytop = 0
    for a in range(th.shape[0]):
        for c in range(th.shape[1]):
            if th[a, c] > ytop:
                ytop = th[a, c]
    keys = np.empty((H, Wd), dtype=np.int64)
    for rnd in range(2):
        for i in range(H):
            sy = (1.0 - 2.0 * (i + 0.5) / H) * tan_half
            for j in range(Wd):
                sample = (i % 2 == 0) and (j % 2 == 0)
                if exact:
                    if rnd == 1:
                        continue
                elif (rnd == 0) != sample:
                    continue
                sx = (2.0 * (j + 0.5) / Wd - 1.0) * tan_half * aspect
                # fwd, right, up are orthonormal, so |fwd + sx right + sy up|^2 = 1 + sx^2 + sy^2
                inv = 1.0 / math.sqrt(1.0 + sx * sx + sy * sy)
                dx = (fwd[0] + sx * right[0] + sy * up[0]) * inv
                dy = (fwd[1] + sx * right[1] + sy * up[1]) * inv
                dz = (fwd[2] + sx * right[2] + sy * up[2]) * inv
                if rnd == 1:
                    # interpolate from the traced neighbours if they agree
                    i0 = i - (i % 2)
                    j0 = j - (j % 2)
                    i1 = i0 + 2 if i % 2 == 1 else i0
                    j1 = j0 + 2 if j % 2 == 1 else j0
                    if i1 < H and j1 < Wd:
                        k = keys[i0, j0]
                        if keys[i0, j1] == k and keys[i1, j0] == k and keys[i1, j1] == k:
                            if k == _SKY_KEY:
                                _sky(out, i, j, dy, sky_top, sky_horizon, void)
                                continue
                            if k >= 0:
                                pos = (k & 1) == 1
                                a = (k >> 1) & 3
                                coord = (k >> 3) - 1024
                                da = dx if a == 0 else (dy if a == 1 else dz)
                                if (da > 0.0) == pos and da != 0.0:
                                    t = (coord - e3[a]) / da
                                    if 0.0 < t <= view_dist:
                                        px = ex + t * dx
                                        py = ey + t * dy
                                        pz = ez + t * dz
                                        vx = int(math.floor(px))
                                        vy = int(math.floor(py))
                                        vz = int(math.floor(pz))
                                        back = -1 if pos else 1
                                        if a == 0:
                                            vx = coord if pos else coord - 1
                                        elif a == 1:
                                            vy = coord if pos else coord - 1
                                        else:
                                            vz = coord if pos else coord - 1
                                        nx = vx + back if a == 0 else vx
                                        ny = vy + back if a == 1 else vy
                                        nz = vz + back if a == 2 else vz
                                        if (0 <= vx < X and 0 <= vy < Y and 0 <= vz < Z and 0 <= nx < X
                                                and 0 <= ny < Y and 0 <= nz < Z):
                                            b = blocks[vx, vy, vz]
                                            if b != 0 and blocks[nx, ny, nz] == 0:
                                                _shade(out, i, j, tex, b, vx, vy, vz, a, dy < 0.0, t, px, py, pz,
                                                       target, crack_stage, cracks, fog_start, fog_span,
                                                       sky_horizon)
                                                continue
                hit, b, ix, iy, iz, axis, t = _trace(blocks, th, ytop, ex, ey, ez, dx, dy, dz, view_dist)
                if hit == 0:
                    keys[i, j] = _SKY_KEY
                    _sky(out, i, j, dy, sky_top, sky_horizon, void)
                    continue
                if axis < 0:
                    keys[i, j] = _INSIDE_KEY
                else:
                    da = dx if axis == 0 else (dy if axis == 1 else dz)
                    vi = ix if axis == 0 else (iy if axis == 1 else iz)
                    coord = vi if da > 0 else vi + 1
                    keys[i, j] = ((coord + 1024) << 3) | (axis << 1) | (1 if da > 0 else 0)
                _shade(out, i, j, tex, b, ix, iy, iz, axis, dy < 0.0, t, ex + t * dx, ey + t * dy, ez + t * dz,
                       target, crack_stage, cracks, fog_start, fog_span, sky_horizon)
    return out


@njit(cache=True, nogil=True)
def pick_block(blocks, eye, d, reach):
    """First non-air block along the unit ray ``eye + t d`` with t <= reach.

    Returns int64[7]: (hit, x, y, z, nx, ny, nz), n the outward normal of the face hit (0s when the
    eye is inside the block).
    """
    res = np.zeros(7, dtype=np.int64)
    X = blocks.shape[0]
    Y = blocks.shape[1]
    Z = blocks.shape[2]
    ex = eye[0]
    ey = eye[1]
    ez = eye[2]
    dx = d[0]
    dy = d[1]
    dz = d[2]
    ix, iy, iz, stx, sty, stz, tdx, tdy, tdz, tmx, tmy, tmz = _dda_start(ex, ey, ez, dx, dy, dz)
    t = 0.0
    axis = -1
    while t <= reach:
        if 0 <= ix < X and 0 <= iy < Y and 0 <= iz < Z:
            if blocks[ix, iy, iz] != 0:
                res[0] = 1
                res[1] = ix
                res[2] = iy
                res[3] = iz
                if axis == 0:
                    res[4] = -stx
                elif axis == 1:
                    res[5] = -sty
                elif axis == 2:
                    res[6] = -stz
                return res
        ix, iy, iz, tmx, tmy, tmz, t, axis = _dda_advance(ix, iy, iz, stx, sty, stz, tdx, tdy, tdz, tmx, tmy, tmz)
    return res


@njit(cache=True, nogil=True)
def blend_rgba(frame, y0, x0, rgba):
    """Alpha-blend the uint8 RGBA image ``rgba`` onto ``frame`` at (y0, x0), clipped to the frame, in place."""
    H = frame.shape[0]
    W_ = frame.shape[1]
    for i in range(rgba.shape[0]):
        y = y0 + i
        if y < 0 or y >= H:
            continue
        for j in range(rgba.shape[1]):
            x = x0 + j
            if x < 0 or x >= W_:
                continue
            a = np.int32(rgba[i, j, 3])
            if a == 0:
                continue
            for c in range(3):
                frame[y, x, c] = np.uint8((np.int32(frame[y, x, c]) * (255 - a) + np.int32(rgba[i, j, c]) * a) // 255)


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
