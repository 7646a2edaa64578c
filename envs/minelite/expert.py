"""A scripted MineLite expert that plays like a contractor: it reads the privileged state, acts only
through MineRL actions.

The expert sees everything (``env.world.blocks``, the player, the inventory, the open screen and its
cursor; see the privileged-state API in ``env.py``), but every tick it returns one ordinary MineRL action
dict, as a person at the keyboard would: it walks with W (jumping up steps, digging through what is in
the way), turns the camera with a proportional controller (per-tick deltas bounded by ``max_turn``
degrees plus a little Gaussian jitter; with ``varied_camera`` its gain and speed limit change every few
dozen ticks, so turns are slow, brisk or overshooting, and it glances around while walking), holds
attack on blocks, opens screens with E / right click, moves the GUI cursor onto recipe buttons with the
mouse and clicks, selects hotbar slots with 1-9, places a crafting table and a furnace, smelts, and digs
down and tunnels to ores. It never presses ESC, pickItem or swapHands (the VPT agent cannot), so its
demonstrations are learnable by the 8641 x 121 joint action space.

Plan (re-decided after every sub-task from the inventory, so a failure or a random action is recovered):
logs (6) -> planks, sticks, 2 crafting tables in the inventory screen -> place a table, craft a wooden
pickaxe -> dig straight down to the mining level collecting cobblestone -> place the spare table, craft a
stone pickaxe and a furnace, take the table back -> tunnel to the nearest iron ore (3) -> place table
and furnace, smelt, craft an iron pickaxe -> tunnel to the nearest diamond ore.

Randomness (``seed``): tree choice, mining level, cursor target points inside buttons, camera jitter;
``epsilon`` replaces an action by a random one (a movement key and a camera move) with that probability,
except while a block is half-mined or a screen is open; ``camera_noise`` replaces only the camera move by a
scene-independent one (contractor-like data for the IDM, own random stream).

Example::

    from vpt_rl.envs.minelite.env import MineLiteEnv
    from vpt_rl.envs.minelite.expert import ScriptedExpert
    env = MineLiteEnv(seed=3)
    obs, info = env.reset(seed=3)
    expert = ScriptedExpert(env, seed=3)
    for t in range(6000):
        obs, r, term, trunc, info = env.step(expert.act(obs))
        if term or trunc:
            break
    print(expert.milestones)   # {'oak_log': 102, ...}: ticks played when each item was first held
"""
from __future__ import annotations

import math
from typing import Any, Dict, Generator, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from vpt_rl.actions import N_CAMERA_BINS, noop_action, undiscretize_camera
from vpt_rl.envs.minelite import world as W
from vpt_rl.envs.minelite.env import MineLiteEnv
from vpt_rl.envs.minelite.items import ITEMS
from vpt_rl.envs.minelite.render import pick_block
from vpt_rl.envs.minelite.screens import DEG_PER_PIXEL
from vpt_rl.envs.rewards import MILESTONE_MEMBERS, MILESTONE_ORDER

__all__ = ["ScriptedExpert", "MILESTONES", "run_expert_episode", "make_expert_env"]

# Items whose first appearance in the inventory is a tech-tree milestone, in order: the tech tree of
# vpt_rl.envs.rewards under MineLite's item names (its logs and planks are oak).
MILESTONES = tuple(next(i for i in MILESTONE_MEMBERS.get(m, (m,)) if i in ITEMS) for m in MILESTONE_ORDER)
PICKAXES = ("wooden_pickaxe", "stone_pickaxe", "iron_pickaxe", "diamond_pickaxe")
REACH = 4.5  # env.py
EYE = 1.62
Action = Dict[str, Any]
Skill = Generator[Action, None, bool]


def _yaw_pitch_to(eye: np.ndarray, point: Sequence[float]) -> Tuple[float, float]:
    """Minecraft yaw/pitch (degrees) that look from ``eye`` at ``point`` (yaw 0 = +z, 90 = -x; pitch + = down)."""
    d = np.asarray(point, dtype=np.float64) - eye
    yaw = math.degrees(math.atan2(-d[0], d[2]))
    pitch = -math.degrees(math.atan2(d[1], math.hypot(d[0], d[2])))
    return yaw, pitch


def _wrap(a: float) -> float:
    return (a + 180.0) % 360.0 - 180.0


# Degrees at the edges of the 11 mu-law camera bins (the bins round the mu-law code to the nearest even
# number, so the edges are the codes -11, -9, ..., 9, 11 decoded; the outer edges are opened up to +-inf).
_CAMERA_BIN_EDGES = np.concatenate([[-np.inf], undiscretize_camera(np.arange(N_CAMERA_BINS - 1) + 0.5), [np.inf]])

_KEEP = (W.BEDROCK, W.CRAFTING_TABLE, W.FURNACE)  # never mined as "something in the way"


class ScriptedExpert:
    """A scripted MineLite player: ``act(obs) -> MineRL action dict`` from the env's privileged state.

    :param env: a ``MineLiteEnv`` (or a wrapper around one; ``env.unwrapped`` is read), already reset.
    :param seed: seed of the expert's own randomness (route choices, jitter, cursor targets).
    :param epsilon: probability of replacing an action by a random movement/camera action (0 = none).
    :param max_turn: largest camera move per tick, degrees (per axis).
    :param jitter: standard deviation of the Gaussian camera jitter, degrees.
    :param camera_noise: probability per tick (outside screens and while no block is half-mined) of replacing
        the camera move by a scene-independent one: each axis uniform over the 11 mu-law bins, the value
        uniform inside its bin (the outer bins reach ``max_turn``), pitch reflected to stay within +-70
        degrees. Paid contractors move the mouse in every direction whatever the scene shows; such data
        teaches an IDM to read image motion instead of guessing the turn from the scene. The plan re-aims
        afterwards, so it still progresses. Drawn from a separate random stream, so the same ``seed`` gives
        the same plan decisions for every ``camera_noise``.
    :param varied_camera: vary the controller's turn style per sweep (gain 0.3-1.3, so some turns are slow
        and some overshoot and come back; per-sweep speed limits of 4 degrees up to ``max_turn``) and glance
        around while walking, as people do. False: the fixed proportional controller (gain 0.55).
    :param imitable: find trees from what the screen shows (:meth:`chop_visible_tree`: turn until a trunk is
        in view, walk straight at it, chop its lowest three logs, then craft planks and a first crafting table
        at once) instead of walking an L-shaped path to the nearest trunk known from the world state, which
        often is not on screen, and crafting only after six logs. Such play can be cloned from pixels.
    :raises ValueError: for ``epsilon`` or ``camera_noise`` outside [0, 1], or a non-positive ``max_turn``.
    """

    def __init__(self, env: Any, seed: int = 0, epsilon: float = 0.0, max_turn: float = 12.0, jitter: float = 0.25,
                 camera_noise: float = 0.0, varied_camera: bool = True, imitable: bool = False):
        if not 0.0 <= float(epsilon) <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        if not 0.0 <= float(camera_noise) <= 1.0:
            raise ValueError(f"camera_noise must be a probability in [0, 1], got {camera_noise!r}")
        if not float(max_turn) > 0:
            raise ValueError(f"max_turn must be positive degrees, got {max_turn!r}")
        if float(jitter) < 0:
            raise ValueError(f"jitter must be >= 0 degrees, got {jitter!r}")
        self.env = env
        self.seed = int(seed)
        self.epsilon = float(epsilon)
        self.max_turn = float(max_turn)
        self.jitter = float(jitter)
        self.camera_noise = float(camera_noise)
        self.varied_camera = bool(varied_camera)
        self.imitable = bool(imitable)
        self.reset()

    # ------------------------------------------------------------------ public API
    @property
    def game(self):
        """The underlying ``MineLiteEnv`` (privileged state)."""
        return getattr(self.env, "unwrapped", self.env)

    def reset(self) -> None:
        """Start a new episode's plan (call after ``env.reset()``)."""
        self.rng = np.random.default_rng(self.seed)
        self.t = 0
        self.milestones: Dict[str, int] = {}
        self.phase = "start"
        self._prev: Action = {}
        self._plan_gen = self._plan()
        self._mining_level = int(self.rng.integers(9, 13))
        # separate streams: the camera noise and the turn style never shift the plan's own random draws
        self.noise_rng = np.random.default_rng([self.seed, 0x6E6F6973])
        self.style_rng = np.random.default_rng([self.seed, 0x7374796C])
        self._style_left = 0
        self._gain, self._turn_cap = 0.55, self.max_turn
        self._glance, self._glance_left = 0.0, 0

    def act(self, obs: Any = None) -> Action:
        """The next MineRL action (24 keys; camera float32 [pitch, yaw] degrees)."""
        g = self.game
        self._note_milestones()
        if self.t == 0:
            a: Action = {}  # nothing pressed on the first tick (a recording starts with no key held)
        else:
            try:
                a = next(self._plan_gen)
            except StopIteration:
                self._plan_gen = self._plan()
                a = {}
            # a random action now and then, but never one that would throw away mining progress or click
            # in a screen (a person's stray key press, not sabotage); the plan re-reads the state anyway
            if self.epsilon > 0 and self.rng.random() < self.epsilon and g.gui is None and g.mining_progress == 0:
                a = self._random_action(False)
            elif self.camera_noise > 0 and self.noise_rng.random() < self.camera_noise and g.gui is None \
                    and g.mining_progress == 0:
                a = dict(a, camera=self.scene_independent_camera())
        self.t += 1
        out = self._full(a)
        self._prev = out
        return out

    # ------------------------------------------------------------------ helpers
    def _full(self, a: Action) -> Action:
        out = noop_action()
        for k, v in a.items():
            out[k] = np.asarray(v, dtype=np.float32) if k == "camera" else int(v)
        return out

    def _random_action(self, gui: bool) -> Action:
        a: Action = {"camera": self.rng.normal(0, 4.0, size=2).clip(-15, 15)}
        if not gui:
            k = self.rng.choice(["forward", "back", "left", "right", "jump", "none"])
            if k != "none":
                a[k] = 1
        return a

    def scene_independent_camera(self) -> np.ndarray:
        """A random camera move ``[pitch, yaw]``: each axis a uniform mu-law bin, uniform inside the bin (the
        outer bins span 10..``max_turn`` degrees); pitch is reflected so the view stays within +-70 degrees."""
        bins = self.noise_rng.integers(0, N_CAMERA_BINS, size=2)
        lo, hi = _CAMERA_BIN_EDGES[bins], _CAMERA_BIN_EDGES[bins + 1]
        lo, hi = np.maximum(lo, -self.max_turn), np.minimum(hi, self.max_turn)
        cam = lo + (hi - lo) * self.noise_rng.random(2)
        pitch = self.game.player.pitch
        if abs(pitch + cam[0]) > 70.0 and abs(pitch - cam[0]) <= abs(pitch + cam[0]):
            cam[0] = -cam[0]
        return cam

    def _note_milestones(self) -> None:
        inv = self.game.inventory
        for name in MILESTONES:
            if name not in self.milestones and inv.count(name) > 0:
                self.milestones[name] = self.t
        # placed blocks count as having been held; the inventory check above sees them first

    def count(self, name: str) -> int:
        return self.game.inventory.count(name)

    def best_pickaxe(self) -> Tuple[Optional[str], int]:
        best, tier = None, 0
        for name in PICKAXES:
            if self.count(name) > 0 and ITEMS[name].tier > tier:
                best, tier = name, ITEMS[name].tier
        return best, tier

    @property
    def feet_cell(self) -> Tuple[int, int, int]:
        p = self.game.player.pos
        return int(math.floor(p[0])), int(math.floor(p[1] + 1e-3)), int(math.floor(p[2]))

    def block(self, x: int, y: int, z: int) -> int:
        return self.game.world.get(int(x), int(y), int(z))

    def solid(self, x: int, y: int, z: int) -> bool:
        return self.block(x, y, z) != W.AIR

    def _camera_towards(self, yaw_t: float, pitch_t: float, gain: float = 0.55) -> Tuple[np.ndarray, float]:
        """A bounded, jittered camera move towards (yaw_t, pitch_t); returns (camera, remaining error)."""
        p = self.game.player
        ey, ep = _wrap(yaw_t - p.yaw), float(np.clip(pitch_t, -89.5, 89.5)) - p.pitch
        cap = self.max_turn
        if self.varied_camera:
            # a new turn style every ~25 ticks: slow, brisk or overshooting sweeps (gain > 1 overshoots and
            # comes back), each with its own speed limit
            if self._style_left <= 0:
                self._style_left = int(self.style_rng.integers(10, 40))
                self._gain = float(self.style_rng.uniform(0.3, 1.3)) * gain / 0.55
                self._turn_cap = float(self.style_rng.uniform(4.0, self.max_turn))
            self._style_left -= 1
            gain, cap = self._gain, self._turn_cap
        cam = np.array([ep, ey]) * gain
        small = np.abs(np.array([ep, ey])) < 1.0
        cam[small] = np.array([ep, ey])[small]  # finish small corrections in one tick
        cam = np.clip(cam, -cap, cap)
        cam += self.rng.normal(0.0, self.jitter, size=2)
        return cam, math.hypot(ey, ep)

    def _look_at(self, point: Sequence[float], gain: float = 0.55) -> Tuple[np.ndarray, float]:
        yaw, pitch = _yaw_pitch_to(self.game.player.eye_pos, point)
        return self._camera_towards(yaw, pitch, gain)

    # ------------------------------------------------------------------ low-level skills (generators)
    def wait(self, n: int) -> Skill:
        for _ in range(n):
            yield {}
        return True

    def press(self, key: str) -> Skill:
        """Press a key for one tick then release it (one rising edge)."""
        if self._prev.get(key):
            yield {}
        yield {key: 1}
        yield {}
        return True

    def close_gui(self) -> Skill:
        for _ in range(4):
            if self.game.gui is None:
                return True
            yield from self.press("inventory")
        return self.game.gui is None

    def select(self, item: str) -> Skill:
        g = self.game
        slot = g.hotbar_slot_of(item)
        if slot is None:
            return False
        if g.selected_slot != slot:
            yield {f"hotbar.{slot + 1}": 1}
        return True

    def select_pickaxe(self) -> Skill:
        for name in reversed(PICKAXES):
            if self.game.hotbar_slot_of(name) is not None:
                return (yield from self.select(name))
        return False

    def mine_block(self, cell: Tuple[int, int, int], timeout: int = 400) -> Skill:
        """Aim at ``cell`` and hold attack until it is air; blocks in the way are mined too (never bedrock)."""
        g = self.game
        cell = tuple(int(c) for c in cell)
        for _ in range(timeout):
            if self.block(*cell) == W.AIR:
                return True
            if g.gui is not None:
                yield from self.close_gui()
                continue
            centre = np.array(cell, dtype=np.float64) + 0.5
            dist = float(np.linalg.norm(centre - g.player.eye_pos))
            if dist > REACH + 0.3:
                return False
            cam, err = self._look_at(centre)
            tgt = g.target_block()
            a: Action = {"camera": cam}
            if tgt is not None and (tuple(tgt) == cell or (err < 6.0 and self.block(*tgt) not in _KEEP)):
                if tuple(tgt) == cell:
                    a["camera"] = cam * 0.3  # steady while mining (progress resets if the target changes)
                a["attack"] = 1
            yield a
        return self.block(*cell) == W.AIR

    def _center_in_cell(self, timeout: int = 60) -> Skill:
        """Sneak towards the middle of the current cell (needed to fall through a 1x1 hole)."""
        g = self.game
        for _ in range(timeout):
            p = g.player.pos
            cx, _, cz = self.feet_cell
            d = np.array([cx + 0.5 - p[0], cz + 0.5 - p[2]])
            if np.abs(d).max() < 0.18:
                return True
            yaw = math.degrees(math.atan2(-d[0], d[1]))
            cam, err = self._camera_towards(yaw, g.player.pitch)
            a: Action = {"camera": cam}
            if self.solid(cx, self.feet_cell[1] - 1, cz):
                a["sneak"] = 1  # slow and precise; not over an open hole (sneaking would not step in)
            if abs(_wrap(yaw - g.player.yaw)) < 25:
                a["forward"] = 1
            yield a
        return False

    def dig_down(self, to_y: int, timeout: int = 1500) -> Skill:
        """Dig straight down (looking at the floor) until the feet are at ``to_y``; stops above bedrock."""
        g = self.game
        for _ in range(timeout // 10):
            x, y, z = self.feet_cell
            if y <= to_y:
                return True
            below = (x, y - 1, z)
            if self.block(*below) == W.BEDROCK or self.block(x, y - 2, z) == W.BEDROCK:
                return False
            if not (yield from self._center_in_cell()):
                pass
            yield from self.select_pickaxe()
            yield from self.mine_nearby_ores()
            if self.block(*below) != W.AIR:
                ok = yield from self.mine_block(below, timeout=300)
                if not ok:
                    return False
            for _ in range(20):  # fall into the hole
                yield {"camera": self._camera_towards(g.player.yaw, 85.0)[0]}
                if g.player.on_ground and self.feet_cell[1] < y:
                    break
        return self.feet_cell[1] <= to_y

    def walk_to(self, tx: int, tz: int, level: bool = False, timeout: int = 800, tol: float = 0.3) -> Skill:
        """Walk cell by cell (x first or z first) to the middle of column (tx, tz).

        Blocks in the way are jumped over (a one-block step, unless ``level``) or mined (head-high ones, and
        feet-high ones when ``level``: tunnelling keeps the floor level). Gives up after ``timeout`` ticks.
        """
        g = self.game
        last_pos, still = g.player.pos.copy(), 0
        for _ in range(timeout):
            if g.gui is not None:
                yield from self.close_gui()
            p = g.player.pos
            x, y, z = self.feet_cell
            if x == tx and z == tz and abs(p[0] - (tx + 0.5)) < tol and abs(p[2] - (tz + 0.5)) < tol:
                return True
            # next cell: along the axis with the larger remaining distance
            dx, dz = tx - x, tz - z
            if dx == 0 and dz == 0:
                nx, nz = x, z
            elif abs(dx) >= abs(dz):
                nx, nz = x + int(np.sign(dx)), z
            else:
                nx, nz = x, z + int(np.sign(dz))
            head, feet = (nx, y + 1, nz), (nx, y, nz)
            if (nx, nz) != (x, z) and self.solid(*head):
                if self.block(*head) == W.BEDROCK:
                    return False
                yield from self.select_pickaxe()
                if not (yield from self.mine_block(head, timeout=300)):
                    return False
                continue
            if (nx, nz) != (x, z) and self.solid(*feet):
                can_jump = not self.solid(x, y + 2, z) and not self.solid(nx, y + 2, nz)
                if level or not can_jump or still > 15:
                    if self.block(*feet) == W.BEDROCK:
                        return False
                    yield from self.select_pickaxe()
                    if not (yield from self.mine_block(feet, timeout=300)):
                        return False
                    continue
            # walk towards the next cell's centre, looking slightly down
            yaw, _ = _yaw_pitch_to(g.player.eye_pos, (nx + 0.5, 0, nz + 0.5))
            look_yaw, look_pitch = yaw, 12.0 + 6.0 * math.sin(self.t / 17.0)
            if self.varied_camera:
                # now and then glance aside (and up or down) for a second while walking on
                if self._glance_left <= 0 and self.style_rng.random() < 0.02:
                    self._glance_left = int(self.style_rng.integers(8, 25))
                    self._glance = float(self.style_rng.uniform(-30.0, 30.0))
                    self._glance_pitch = float(self.style_rng.uniform(-25.0, 20.0))
                if self._glance_left > 0:
                    self._glance_left -= 1
                    look_yaw, look_pitch = yaw + self._glance, look_pitch + self._glance_pitch
            cam, _ = self._camera_towards(look_yaw, look_pitch)
            a: Action = {"camera": cam}
            if abs(_wrap(yaw - g.player.yaw)) < 35:
                a["forward"] = 1
                near = (nx, nz) == (x, z)
                if near:
                    a["sneak"] = 1  # the final centring is slow and precise
                if (nx, nz) != (x, z) and self.solid(*feet) and g.player.on_ground:
                    a["jump"] = 1
            moved = float(np.linalg.norm(p - last_pos))
            still = still + 1 if moved < 0.01 else 0
            last_pos = p.copy()
            if still > 40:
                return False
            yield a
        return False

    def place(self, item: str, timeout: int = 80) -> Skill:
        """Place ``item`` on the floor of a free neighbouring cell (mining one free if needed); returns success."""
        g = self.game
        x, y, z = self.feet_cell
        want = W.BLOCK[ITEMS[item].block]
        options = []
        for dx, dz in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            c = (x + dx, y, z + dz)
            if not g.world.in_bounds(*c) or not self.solid(c[0], y - 1, c[2]):
                continue
            cost = 0 if not self.solid(*c) else 1
            if self.block(*c) in (W.CRAFTING_TABLE, W.FURNACE, W.BEDROCK):
                continue
            options.append((cost, self.rng.random(), c))
        if not options:
            return False
        options.sort()
        c = options[0][2]
        if self.solid(*c):
            yield from self.select_pickaxe()
            if not (yield from self.mine_block(c, timeout=300)):
                return False
        # the new block must not overlap the player: stand in the middle of our cell first
        yield from self._center_in_cell()
        floor_top = (c[0] + 0.5, c[1] + 0.02, c[2] + 0.5)
        for _ in range(timeout):
            if self.block(*c) == want:
                return True
            if self.count(item) == 0:
                return False
            if g.held_item() != item:
                yield from self.select(item)
                if g.held_item() != item:
                    return False
                continue
            cam, err = self._look_at(floor_top)
            a: Action = {"camera": cam}
            tgt, face = g.target_block(), g.target_face()
            if tgt is not None and tuple(tgt) == (c[0], c[1] - 1, c[2]) and face == (0, 1, 0) and not self._prev.get("use"):
                a = {"use": 1, "camera": cam * 0.2}
            yield a
        return self.block(*c) == want

    def find_near(self, block_id: int, radius: float = 4.2) -> Optional[Tuple[int, int, int]]:
        """Nearest ``block_id`` cell whose centre is within ``radius`` of the eyes."""
        g = self.game
        e = g.player.eye_pos
        lo = np.maximum(np.floor(e - radius).astype(int), 0)
        hi = np.minimum(np.floor(e + radius).astype(int) + 1, np.array(g.world.blocks.shape))
        sub = g.world.blocks[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        cells = np.argwhere(sub == block_id) + lo
        if len(cells) == 0:
            return None
        d = np.linalg.norm(cells + 0.5 - e, axis=1)
        i = int(np.argmin(d))
        return tuple(int(v) for v in cells[i]) if d[i] <= radius else None

    def visible(self, cell: Tuple[int, int, int]) -> bool:
        """Whether the ray from the eyes to the centre of ``cell`` hits ``cell`` first."""
        g = self.game
        e = g.player.eye_pos
        d = np.array(cell, dtype=np.float64) + 0.5 - e
        n = float(np.linalg.norm(d))
        if n < 1e-6:
            return True
        res = pick_block(g.world.blocks, e, d / n, n + 0.5)
        return bool(res[0]) and (int(res[1]), int(res[2]), int(res[3])) == tuple(cell)

    def open_block(self, cell: Tuple[int, int, int], kind: str, timeout: int = 120) -> Skill:
        """Look at a crafting table / furnace and right-click it until its screen is open."""
        g = self.game
        for _ in range(timeout):
            if g.gui is not None and g.gui.kind == kind:
                return True
            if g.gui is not None:
                yield from self.close_gui()
                continue
            cam, err = self._look_at(np.array(cell) + 0.5)
            a: Action = {"camera": cam}
            tgt = g.target_block()
            if tgt is not None and tuple(tgt) == tuple(cell) and not self._prev.get("use"):
                a = {"use": 1, "camera": cam * 0.2}
            elif tgt is not None and tuple(tgt) != tuple(cell) and err < 3.0:
                return False  # something in the way
            yield a
        return False

    def open_inventory(self) -> Skill:
        g = self.game
        for _ in range(4):
            if g.gui is not None and g.gui.kind == "inventory":
                return True
            if g.gui is not None:
                yield from self.close_gui()
            yield from self.press("inventory")
        return g.gui is not None and g.gui.kind == "inventory"

    def click_button(self, name: str, times: int = 1, timeout: int = 200) -> Skill:
        """Move the cursor onto recipe button ``name`` and click it ``times`` times (while it stays enabled)."""
        g = self.game
        if g.gui is None:
            return False
        x0, y0, x1, y1 = g.gui.button_rect(name)
        tx = self.rng.uniform(x0 + 7, x1 - 7)
        ty = self.rng.uniform(y0 + 7, y1 - 7)
        done = 0
        for _ in range(timeout):
            if g.gui is None:
                return False
            if done >= times or not g.button_enabled(name):
                return done > 0
            cx, cy = g.gui.cursor
            ex, ey = tx - cx, ty - cy
            inside = x0 + 2 <= cx < x1 - 2 and y0 + 2 <= cy < y1 - 2
            if inside and math.hypot(ex, ey) < 10:
                if self._prev.get("attack"):
                    yield {}
                else:
                    yield {"attack": 1}
                    done += 1
                continue
            cam = np.array([ey, ex]) * DEG_PER_PIXEL * 0.5
            cam = np.clip(cam, -self.max_turn, self.max_turn) + self.rng.normal(0.0, self.jitter, size=2)
            yield {"camera": cam}
        return done > 0

    def craft(self, recipes: Iterable[Tuple[str, int]]) -> Skill:
        """Click the buttons of the open screen: ``[(recipe, times), ...]``."""
        ok = True
        for name, times in recipes:
            if times <= 0:
                continue
            before = self.count("iron_ingot" if name == "smelt" else name)
            yield from self.click_button(name, times)
            ok &= self.count("iron_ingot" if name == "smelt" else name) > before
        yield from self.wait(int(self.rng.integers(1, 4)))
        return ok

    def ensure_hotbar_space(self, keep: Sequence[str]) -> Skill:
        """Drop junk (dirt, sand, spare cobblestone, a worse pickaxe) until a hotbar slot is free."""
        g = self.game
        for _ in range(3):
            names = [n for n, c in g.hotbar()]
            if "air" in names:
                return True
            _, tier = self.best_pickaxe()
            junk_order = ["dirt", "sand", "torch", "wooden_pickaxe" if tier > 1 else "",
                          "stone_pickaxe" if tier > 2 else "", "cobblestone" if self.count("furnace") or tier > 2 else "",
                          "coal" if self.count("iron_pickaxe") else ""]
            junk = next((n for n in junk_order if n and n in names and n not in keep), None)
            if junk is None:
                return False
            yield from self.select(junk)
            for _ in range(70):
                if g.held_item() != junk:
                    break
                yield {"drop": 1}
                yield {}
        return "air" in [n for n, c in g.hotbar()]

    def mine_nearby_ores(self) -> Skill:
        """Mine ores within reach and in sight that the held pickaxe tier can harvest (coal, iron, diamond)."""
        g = self.game
        _, tier = self.best_pickaxe()
        wanted = [W.COAL_ORE] if tier >= 1 else []
        if tier >= 2 and self.count("iron_ore") + self.count("iron_ingot") < 3 and self.count("iron_pickaxe") == 0:
            wanted.append(W.IRON_ORE)
        if tier >= 3:
            wanted.append(W.DIAMOND_ORE)
        if tier >= 1 and self.count("coal") >= 2:
            wanted.remove(W.COAL_ORE)
        for _ in range(6):
            cell = None
            for b in wanted:
                cell = self.find_near(b, radius=3.6)
                if cell is not None and (b != W.COAL_ORE or self.visible(cell)):
                    break  # coal only when in sight: digging to it with a wooden pickaxe is slow
                cell = None
            if cell is None:
                return True
            yield from self.select_pickaxe()
            if not (yield from self.mine_block(cell, timeout=250)):
                return False
        return True

    # ------------------------------------------------------------------ tasks
    def chop_tree(self) -> Skill:
        """Walk next to the nearest reachable trunk and mine its logs bottom-up."""
        g = self.game
        blocks = g.world.blocks
        logs = np.argwhere(blocks == W.LOG)
        if len(logs) == 0:
            return False
        p = g.player.pos
        cols = {}
        for x, y, z in logs:
            cols.setdefault((int(x), int(z)), []).append(int(y))
        scored = []
        for (x, z), ys in cols.items():
            d = math.hypot(x + 0.5 - p[0], z + 0.5 - p[2])
            scored.append((d + self.rng.uniform(0, 3.0), x, z, sorted(ys)))
        scored.sort()
        _, x, z, ys = scored[0]
        # stand on a neighbour column (the free one closest to us)
        ground = ys[0] - 1
        stands = []
        for dx, dz in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            sx, sz = x + dx, z + dz
            if not g.world.in_bounds(sx, ground, sz):
                continue
            stands.append((math.hypot(sx + 0.5 - p[0], sz + 0.5 - p[2]), sx, sz))
        stands.sort()
        if not stands:
            return False
        _, sx, sz = stands[0]
        self.phase = "walk to tree"
        yield from self.walk_to(sx, sz, timeout=600)
        if math.hypot(x + 0.5 - g.player.pos[0], z + 0.5 - g.player.pos[2]) > 2.5:
            return False
        self.phase = "chop"
        got = False
        for yy in ys:
            if self.block(x, yy, z) != W.LOG:
                continue
            ok = yield from self.mine_block((x, yy, z), timeout=240)
            got |= ok
        return got

    def _trunks_in_view(self, radius: float = 20.0, half_fov: float = 40.0) -> List[Tuple[float, int, int, List[int]]]:
        """Log columns one of whose lowest three logs is on screen and unoccluded: ``[(dist, x, z, ys)]``,
        nearest first (on screen: within ``half_fov`` degrees of the view direction on both axes)."""
        g = self.game
        p, e = g.player, g.player.eye_pos
        logs = np.argwhere(g.world.blocks == W.LOG)
        if len(logs) == 0:
            return []
        d2 = (logs[:, 0] + 0.5 - e[0]) ** 2 + (logs[:, 2] + 0.5 - e[2]) ** 2
        logs = logs[d2 <= radius * radius]
        cols: Dict[Tuple[int, int], List[int]] = {}
        for x, y, z in logs:
            cols.setdefault((int(x), int(z)), []).append(int(y))
        out = []
        for (x, z), ys in cols.items():
            ys = sorted(ys)
            for y in ys[:3]:
                yaw, pitch = _yaw_pitch_to(e, (x + 0.5, y + 0.5, z + 0.5))
                if abs(_wrap(yaw - p.yaw)) < half_fov and abs(pitch - p.pitch) < half_fov and self.visible((x, y, z)):
                    out.append((math.hypot(x + 0.5 - e[0], z + 0.5 - e[2]), x, z, ys))
                    break
        out.sort()
        return out

    def chop_visible_tree(self, max_logs: int = 3) -> Skill:
        """Find a trunk the way a player does, from the screen: turn on the spot (one way, level gaze) until a
        trunk is in view, walk straight at the nearest one in view keeping it centred, and chop its lowest
        ``max_logs`` logs (those within a comfortable look up). Falls back to :meth:`chop_tree` when no trunk
        shows up within a full turn."""
        g = self.game
        self.phase = "look for a tree"
        direction = 1.0 if self.rng.random() < 0.5 else -1.0
        speed = float(self.rng.uniform(6.0, self.max_turn))
        seen = self._trunks_in_view()
        turned = 0.0
        while not seen and turned < 360.0:
            pitch_move = float(np.clip(10.0 - g.player.pitch, -self.max_turn, self.max_turn) * 0.5)
            yield {"camera": np.array([pitch_move, direction * speed]) + self.rng.normal(0.0, self.jitter, 2)}
            turned += speed
            seen = self._trunks_in_view()
        if not seen:
            return (yield from self.chop_tree())
        _, x, z, ys = seen[0]
        self.phase = "walk to tree"
        base = np.array([x + 0.5, ys[0] + 0.5, z + 0.5])
        best, since = float("inf"), 0
        for _ in range(600):
            if g.gui is not None:
                yield from self.close_gui()
            p = g.player.pos
            dist = math.hypot(base[0] - p[0], base[2] - p[2])
            if dist < 1.3:
                break
            # no headway for 40 ticks (a wall, a hole, a tree in the way): walk there the planned way
            best, since = (dist, 0) if dist < best - 0.1 else (best, since + 1)
            if since > 40:
                return (yield from self.chop_tree())
            cam, _ = self._look_at(base + np.array([0.0, 0.6, 0.0]))
            yaw, _ = _yaw_pitch_to(g.player.eye_pos, base)
            a: Action = {"camera": cam}
            if abs(_wrap(yaw - g.player.yaw)) < 30:
                a["forward"] = 1
                # jump onto a one-block step in front
                fx = int(math.floor(p[0] - math.sin(math.radians(g.player.yaw)) * 0.8))
                fz = int(math.floor(p[2] + math.cos(math.radians(g.player.yaw)) * 0.8))
                if (fx, fz) != (x, z) and self.solid(fx, self.feet_cell[1], fz) and g.player.on_ground:
                    a["jump"] = 1
            yield a
        else:
            return False
        self.phase = "chop"
        got = False
        for yy in ys[:max_logs]:
            if self.block(x, yy, z) != W.LOG:
                continue
            ok = yield from self.mine_block((x, yy, z), timeout=240)
            got |= ok
        return got

    def craft_after_tree(self) -> Skill:
        """In the inventory screen, right after a tree: planks from every log, and a crafting table when there
        is none yet (the early-game routine players show; it makes each chopped tree end the same way)."""
        self.phase = "craft planks"
        if not (yield from self.open_inventory()):
            return False
        yield from self.craft([("oak_planks", self.count("oak_log"))])
        if self.count("crafting_table") == 0 and self.find_near(W.CRAFTING_TABLE) is None:
            yield from self.craft([("crafting_table", 1)])
        yield from self.close_gui()
        return True

    def craft_basics(self) -> Skill:
        """In the inventory screen: planks from every log, sticks, and crafting tables (2 if planks allow)."""
        self.phase = "craft planks"
        if not (yield from self.open_inventory()):
            return False
        yield from self.craft([("oak_planks", self.count("oak_log"))])
        sticks = 1 if self.count("stick") < 4 else 0
        tables = max(0, 2 - self.count("crafting_table"))
        while tables and self.count("oak_planks") - 4 * tables < 2 * sticks + 3:
            tables -= 1
        yield from self.craft([("stick", sticks), ("crafting_table", tables)])
        yield from self.close_gui()
        return True

    def at_table(self, recipes: List[Tuple[str, int]], take_back: bool) -> Skill:
        """Use a crafting table within reach (placing one if needed), craft, optionally mine it back."""
        g = self.game
        self.phase = "table"
        cell = self.find_near(W.CRAFTING_TABLE)
        placed = False
        if cell is None:
            if self.count("crafting_table") == 0:
                if self.count("oak_planks") >= 4:
                    yield from self.open_inventory()
                    yield from self.craft([("crafting_table", 1)])
                    yield from self.close_gui()
                if self.count("crafting_table") == 0:
                    return False
            yield from self.ensure_hotbar_space(keep=("crafting_table",))
            if not (yield from self.place("crafting_table")):
                return False
            placed = True
            cell = self.find_near(W.CRAFTING_TABLE)
            if cell is None:
                return False
        if not (yield from self.open_block(cell, "crafting_table")):
            return False
        yield from self.craft(recipes)
        yield from self.close_gui()
        if take_back and (placed or self.count("crafting_table") == 0):
            yield from self.mine_block(cell, timeout=300)
        return True

    def smelt(self, n: int) -> Skill:
        g = self.game
        self.phase = "smelt"
        cell = self.find_near(W.FURNACE)
        if cell is None:
            if self.count("furnace") == 0:
                return False
            yield from self.ensure_hotbar_space(keep=("furnace",))
            if not (yield from self.place("furnace")):
                return False
            cell = self.find_near(W.FURNACE)
            if cell is None:
                return False
        if not (yield from self.open_block(cell, "furnace")):
            return False
        yield from self.craft([("smelt", n)])
        yield from self.close_gui()
        return True

    def go_mine(self, block_ids: Sequence[int], max_radius: int = 40) -> Skill:
        """Tunnel to the nearest of ``block_ids`` at or below head level and mine it."""
        g = self.game
        x, y, z = self.feet_cell
        blocks = g.world.blocks
        cand = np.argwhere(np.isin(blocks, np.asarray(block_ids, dtype=blocks.dtype)))
        if len(cand) == 0:
            return False
        cand = cand[(cand[:, 1] <= y + 1) & (cand[:, 1] >= 2)]
        if len(cand) == 0:
            return False
        cost = np.abs(cand[:, 0] - x) + np.abs(cand[:, 2] - z) + 1.5 * np.maximum(0, y - cand[:, 1])
        cost = cost + self.rng.uniform(0, 1.0, size=len(cost))
        i = int(np.argmin(cost))
        if cost[i] > max_radius:
            return False
        ox, oy, oz = (int(v) for v in cand[i])
        self.phase = f"go mine {W.BLOCK_NAMES[blocks[ox, oy, oz]]}"
        yield from self.select_pickaxe()
        if oy < y:
            if not (yield from self.dig_down(oy)):
                return False
        # tunnel along x, then z, to the ore's column; the ore is mined as the last obstacle
        for _ in range(3):
            if self.block(ox, oy, oz) == W.AIR:
                return True
            if math.dist(np.array([ox, oy, oz]) + 0.5, g.player.eye_pos) < 3.5:
                return (yield from self.mine_block((ox, oy, oz), timeout=300))
            ok = yield from self.walk_to(ox, oz, level=True, timeout=900)
            yield from self.mine_nearby_ores()
            if not ok and self.block(ox, oy, oz) != W.AIR:
                return False
        return self.block(ox, oy, oz) == W.AIR

    def tunnel_random(self, n: int) -> Skill:
        """Tunnel ``n`` blocks in a random horizontal direction (for cobblestone)."""
        x, y, z = self.feet_cell
        dx, dz = [(1, 0), (-1, 0), (0, 1), (0, -1)][int(self.rng.integers(4))]
        X, _, Z = self.game.world.size
        tx, tz = int(np.clip(x + dx * n, 1, X - 2)), int(np.clip(z + dz * n, 1, Z - 2))
        return (yield from self.walk_to(tx, tz, level=True, timeout=600))

    # ------------------------------------------------------------------ the plan
    def _plan(self) -> Generator[Action, None, None]:
        g = self.game
        failures = 0
        while True:
            if g.gui is not None:
                yield from self.close_gui()
            _, tier = self.best_pickaxe()
            planks_potential = self.count("oak_planks") + 4 * self.count("oak_log")
            ok = True
            if tier == 0:
                tables = self.count("crafting_table") + (self.find_near(W.CRAFTING_TABLE) is not None)
                # wooden pickaxe 3, sticks 2, two tables, and 8 spare: later sticks (2), furnace fuel (2) and a
                # third table if one is lost (4) -> 6 logs from scratch
                need = 3 + (2 if self.count("stick") < 2 else 0) + 4 * max(0, 2 - tables) + 8
                if planks_potential < need:
                    self.phase = "logs"
                    if self.imitable:
                        ok = yield from self.chop_visible_tree()
                        if ok and self.count("oak_log") > 0:
                            ok = yield from self.craft_after_tree()
                    else:
                        ok = yield from self.chop_tree()
                elif self.count("oak_log") > 0 or (self.count("stick") < 2) or not tables:
                    ok = yield from self.craft_basics()
                else:
                    ok = yield from self.at_table([("wooden_pickaxe", 1)], take_back=False)
            elif tier == 1:
                cobble_need = 3 + (8 if self.count("furnace") == 0 else 0)
                if self.count("cobblestone") >= cobble_need:
                    recipes = []
                    if self.count("stick") < 2:
                        recipes.append(("stick", 1))
                    recipes.append(("stone_pickaxe", 1))
                    if self.count("furnace") == 0:
                        recipes.append(("furnace", 1))
                    ok = yield from self.at_table(recipes, take_back=True)
                elif self.feet_cell[1] > self._mining_level:
                    self.phase = "dig down"
                    ok = yield from self.dig_down(self._mining_level)
                else:
                    self.phase = "tunnel for cobblestone"
                    ok = yield from self.tunnel_random(6)
            elif tier == 2:
                ingots, ore = self.count("iron_ingot"), self.count("iron_ore")
                if ingots >= 3:
                    recipes = [("stick", 1)] if self.count("stick") < 2 else []
                    recipes.append(("iron_pickaxe", 1))
                    yield from self.ensure_hotbar_space(keep=())
                    ok = yield from self.at_table(recipes, take_back=False)
                elif ingots + ore >= 3:
                    if self.count("coal") == 0 and self.count("oak_planks") < 2:
                        if self.count("oak_log"):
                            yield from self.open_inventory()
                            yield from self.craft([("oak_planks", 1)])
                            yield from self.close_gui()
                        else:
                            self.phase = "find coal"
                            ok = yield from self.go_mine([W.COAL_ORE])
                            continue
                    if self.count("furnace") == 0 and self.find_near(W.FURNACE) is None and \
                            self.count("cobblestone") >= 8:
                        ok = yield from self.at_table([("furnace", 1)], take_back=True)
                    ok = yield from self.smelt(3 - ingots)
                else:
                    ok = yield from self.go_mine([W.IRON_ORE])
                    if not ok:
                        self.phase = "explore"
                        if self.feet_cell[1] > 6:
                            yield from self.dig_down(self.feet_cell[1] - 3)
                        yield from self.tunnel_random(8)
            else:
                self.phase = "diamonds"
                ok = yield from self.go_mine([W.DIAMOND_ORE])
                if not ok:
                    if self.feet_cell[1] > 5:
                        yield from self.dig_down(self.feet_cell[1] - 2)
                    yield from self.tunnel_random(8)
            failures = 0 if ok else failures + 1
            if failures >= 3:
                # unstick: look around and wander a few steps
                self.phase = "unstick"
                failures = 0
                for _ in range(int(self.rng.integers(10, 30))):
                    yield {"forward": 1, "jump": int(self.rng.random() < 0.3),
                           "camera": np.array([0.0, float(self.rng.normal(0, 8))])}


# ---------------------------------------------------------------------------------------------------
# Episodes


def make_expert_env(seed: int, max_ticks: int, resolution: Tuple[int, int] = (128, 128), render: bool = True,
                    **env_kwargs):
    """A reset ``MineLiteEnv`` for an expert episode on ``seed`` (``render=False`` skips drawing ``pov``)."""
    # The expert reads the privileged state only; a blank pov (render_pov=False) makes benchmarks ~5x faster.
    return MineLiteEnv(resolution=resolution, max_steps=max_ticks, seed=seed, render_pov=render, **env_kwargs)


def run_expert_episode(seed: int, max_ticks: int = 6000, *, resolution: Tuple[int, int] = (128, 128),
                       epsilon: float = 0.0, keep_frames: bool = False, render: bool = True,
                       expert_seed: Optional[int] = None, stop_at: Optional[str] = None, camera_noise: float = 0.0,
                       imitable: bool = False, varied_camera: bool = True, **env_kwargs):
    """Play one expert episode; returns ``(frames or None, actions, infos)``.

    ``infos[-1]["milestones"]`` maps each reached milestone item to the first tick it was held.

    :param seed: world seed (``env.reset(seed=seed)``); the expert uses ``expert_seed`` (default ``seed``).
    :param max_ticks: episode length limit.
    :param keep_frames: return the ``pov`` frames the expert acted on (memory: 49 KB per 128x128 frame).
    :param render: draw ``pov`` (False: blank frames, for fast benchmarks).
    :param stop_at: end the episode as soon as this milestone item is held (e.g. ``"stone_pickaxe"``).
    :param camera_noise: scene-independent camera moves per tick (see :class:`ScriptedExpert`).
    :param imitable: find trees from the screen (see :class:`ScriptedExpert`).
    :param varied_camera: vary the turn style (see :class:`ScriptedExpert`); False: one steady controller.
    """
    if not isinstance(max_ticks, int) or max_ticks <= 0:
        raise ValueError(f"max_ticks must be a positive int, got {max_ticks!r}")
    if stop_at is not None and stop_at not in MILESTONES:
        raise ValueError(f"stop_at must be one of {MILESTONES}, got {stop_at!r}")
    env = make_expert_env(seed, max_ticks, resolution, render, **env_kwargs)
    obs, info = env.reset(seed=seed)
    expert = ScriptedExpert(env, seed=seed if expert_seed is None else expert_seed, epsilon=epsilon,
                            camera_noise=camera_noise, imitable=imitable, varied_camera=varied_camera)
    frames: Optional[List[np.ndarray]] = [] if keep_frames else None
    actions, infos = [], []
    for t in range(max_ticks):
        if frames is not None:
            frames.append(obs["pov"])
        a = expert.act(obs)
        obs, _, term, trunc, info = env.step(a)
        expert._note_milestones()
        actions.append(a)
        info = dict(info, phase=expert.phase, milestones=dict(expert.milestones))
        infos.append(info)
        if term or trunc or (stop_at is not None and stop_at in expert.milestones):
            break
    return frames, actions, infos
