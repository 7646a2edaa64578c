"""MineLite rendering: a numba per-pixel voxel raycaster (the HUD and GUI overlays are in ``hud``).

* ``render_world`` (numba, ``cache=True``) casts one ray per pixel through ``blocks[x, y, z]`` with a
  3-D DDA, samples a 16x16 procedural texture per block id and face (top / side / bottom), shades faces
  by orientation, draws the targeted block's outline and crack overlay, and blends to the sky colour
  with distance fog. The sky is a vertical gradient (brighter at the horizon) so pitch is visible.
* ``pick_block`` (numba) is the crosshair ray used for mining and placing.
* ``blend_rgba`` (numba) alpha-blends an RGBA overlay into a frame (used by ``hud``).

Camera model: vertical FOV 70 degrees and a horizontal extent set by ``aspect`` (default 16/9, i.e. the
frame the VPT agent sees: MineRL's 640x360 view squeezed to 128x128).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from vpt_rl.envs.minelite import world as W

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
