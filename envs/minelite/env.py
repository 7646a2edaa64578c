"""MineLite: an embedded, deterministic, Minecraft-like voxel world with MineRL 1.0's action and observation spaces.

``MineLiteEnv`` is registered as ``vpt_rl/MineLite-v0``. One step is one 50 ms game tick (20 ticks/s), as
in MineRL. Reward is always 0; episodes end on death (unless ``respawn=True``) or are truncated after
``max_steps``. Tasks and rewards are added by wrappers.

Actions: MineRL 1.0 HumanControl's Dict: 23 ``Discrete(2)`` keys (``ESC``, ``attack``, ``back``, ``drop``,
``forward``, ``hotbar.1``..``hotbar.9``, ``inventory``, ``jump``, ``left``, ``pickItem``, ``right``,
``sneak``, ``sprint``, ``swapHands``, ``use``) and ``camera`` ``Box(-180, 180, (2,), float32)`` =
[pitch delta, yaw delta] degrees; positive pitch looks down, positive yaw turns right. Keys missing from
an action dict count as 0; unknown keys, wrong shapes, non-0/1 buttons, a ``None`` value and non-finite or
out-of-range camera values raise ``ValueError``/``TypeError``. ``pickItem`` and ``swapHands`` do nothing; ``drop``
throws away one of the held item (dropped items vanish); ``ESC`` only closes screens.

Observations (MineRL 1.0 HumanSurvival names, dtypes and bounds; counters are not modelled):
``pov`` uint8 (H, W, 3); ``inventory`` {item: int64 count summed over slots} for every item MineLite has
(``air`` = number of empty slots; ``full_inventory=True`` lists all 976 MineRL names);
``equipped_items`` {mainhand, offhand, head, chest, legs, feet} x {``type`` Discrete(976) index into
``items.MINERL_ITEM_NAMES`` (``items.minerl_name`` decodes it), ``damage``, ``maxDamage``} (0 and 0 for
items without durability and for ``air``); ``life_stats`` and ``location_stats`` as in MineRL.
``info["isGuiOpen"]`` says whether a screen is open.

Game rules (Minecraft 1.16, simplified): walk 4.317 blocks/s, sprint 5.612 (forward only), sneak 1.31
(and sneaking stops you walking off edges), gravity and jumps as Minecraft's (0.08 blocks/tick^2, drag
0.98, jump velocity 0.42 -> 1.25 blocks high), fall damage ceil(fall - 3) life points for falls over 3
blocks. Reach 4.5 blocks from the eyes (1.62 above the feet). Holding ``attack`` breaks the
targeted block after Minecraft's time for its hardness and the held tool (``world.break_ticks``; scaled by
``mining_speed``); progress resets when the target changes or ``attack`` is released; the item goes
straight to the inventory (hotbar first); tools lose one durability per block. ``use`` (on press, then
every 4 ticks while held) opens a targeted crafting table / furnace (unless sneaking) or places the held
block on the targeted face. ``inventory`` (press) opens the inventory screen; ``inventory`` or ``ESC``
closes any screen. While a screen is open the player does not move or turn; the camera moves the cursor
(see ``screens``).

Coordinates and angles (Minecraft's): ``blocks[x, y, z]`` with y up; the player's ``pos`` is the centre of
the feet; ``yaw`` in degrees in [-180, 180), 0 looks towards +z and 90 towards -x (forward vector
(-sin(yaw) cos(pitch), -sin(pitch), cos(yaw) cos(pitch))); ``pitch`` in [-90, 90], positive looks down.

PRIVILEGED STATE API (stable; for scripted experts, tests and tools - not for agents):

* ``env.world``: ``World`` with ``.blocks`` (uint8 [x, y, z]), ``.size``, ``.spawn``, ``.heightmap``,
  ``.furnaces`` {(x, y, z): fuel}; block ids in ``vpt_rl.envs.minelite.world`` (``AIR``, ``GRASS``,
  ``DIRT``, ``STONE``, ``COBBLESTONE``, ``BEDROCK``, ``LOG``, ``LEAVES``, ``PLANKS``, ``COAL_ORE``,
  ``IRON_ORE``, ``DIAMOND_ORE``, ``CRAFTING_TABLE``, ``FURNACE``, ``SAND``; ``BLOCK`` name -> id).
* ``env.player``: ``.pos`` (float64 xyz of the feet), ``.eye_pos``, ``.yaw``, ``.pitch`` (degrees),
  ``.on_ground``, ``.vel``, ``.life``, ``.look_dir()``.
* ``env.inventory``: ``Inventory`` (36 slots: ``.items`` ids into ``items.ITEM_NAMES``, ``.counts``,
  ``.damage``; ``.slot_name(k)``, ``.count(name)``); ``env.inventory_counts()`` -> {name: count};
  ``env.selected_slot`` (0-8); ``env.hotbar()`` -> [(name, count)] * 9; ``env.held_item()`` -> name;
  ``env.hotbar_slot_of(name)`` -> first hotbar slot holding ``name`` or None.
* ``env.target_block()`` -> (x, y, z) of the block under the crosshair within reach, or None;
  ``env.target_face()`` -> outward normal (dx, dy, dz) of the face hit, or None;
  ``env.mining_progress`` in [0, 1); ``env.break_ticks(block_id)`` -> ticks with the held item;
  ``env.angles_to(point)`` -> (yaw, pitch) looking at ``point`` from the eyes.
* ``env.gui``: None or the open ``Screen`` with ``.kind`` ("inventory" | "crafting_table" | "furnace"),
  ``.cursor`` [x, y] in 640x360 GUI pixels, ``.buttons`` (recipe names), ``.button_rect(name)`` ->
  (x0, y0, x1, y1) and ``.button_center(name)``; ``env.button_enabled(name)``.
* ``env.tick``: game ticks since reset.

Tools and tests may edit ``world.blocks`` and call the ``Inventory`` methods directly between steps (the
renderer notices edited blocks). ``reset(options={"flat": True, "ground": 10, "yaw": 0.0, "pitch": 0.0})``
builds a flat test world and/or sets the spawn view; ``render_pov=False`` skips drawing (blank ``pov``).

Example (a hand-written policy reading the privileged state):

    >>> import gymnasium as gym, numpy as np, vpt_rl.envs
    >>> from vpt_rl.envs.minelite import world as W
    >>> env = gym.make("vpt_rl/MineLite-v0", world_size=(32, 32, 32))
    >>> obs, info = env.reset(seed=0)
    >>> game = env.unwrapped
    >>> a = {k: 0 for k in ("forward", "attack")}
    >>> a["camera"] = np.array([30.0, 0.0], dtype=np.float32)   # look down 30 degrees
    >>> obs, r, term, trunc, info = env.step(a)
    >>> round(game.player.pitch, 1), obs["pov"].shape, info["isGuiOpen"]
    (30.0, (128, 128, 3), False)
    >>> game.target_block() is None or bool(game.world.blocks[game.target_block()] != W.AIR)
    True
    >>> a = {"inventory": 1}; _ = env.step(a); game.gui.kind   # open the inventory screen
    'inventory'
    >>> game.inventory.add("oak_log", 1)  # privileged: hand the player a log (returns what did not fit)
    0
    >>> x, y = game.gui.button_center("oak_planks")
    >>> cx, cy = game.gui.cursor  # the camera moves the cursor by [dy, dx] * 0.15 degrees
    >>> _ = env.step({"camera": np.array([(y - cy) * 0.15, (x - cx) * 0.15], dtype=np.float32)})
    >>> _ = env.step({"attack": 1}); game.inventory_counts()["oak_planks"]
    4
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vpt_rl.envs.minelite import world as W
from vpt_rl.envs.minelite.hud import Hud
from vpt_rl.envs.minelite.inventory import Inventory
from vpt_rl.envs.minelite.items import ITEM_NAMES, ITEMS, MINERL_ITEM_NAMES, N_HOTBAR, N_MINERL_ITEMS, minerl_index
from vpt_rl.envs.minelite.render import CRACKS, SKY_HORIZON, SKY_TOP, TEXTURES, VOID, pick_block, render_world
from vpt_rl.envs.minelite.screens import DEG_PER_PIXEL, Screen, can_craft, craft
from vpt_rl.envs.wrappers import check_step_limit

# MineRL 1.0's action keys (sorted as MineRL lists them); all but camera are Discrete(2).
BUTTON_KEYS = ("ESC", "attack", "back", "drop", "forward", "hotbar.1", "hotbar.2", "hotbar.3", "hotbar.4",
               "hotbar.5", "hotbar.6", "hotbar.7", "hotbar.8", "hotbar.9", "inventory", "jump", "left",
               "pickItem", "right", "sneak", "sprint", "swapHands", "use")
ACTION_KEYS = tuple(sorted(BUTTON_KEYS + ("camera",)))
EQUIP_SLOTS = ("chest", "feet", "head", "legs", "mainhand", "offhand")

TICKS_PER_SECOND = 20
WALK_SPEED = 4.317 / TICKS_PER_SECOND  # blocks per tick
SPRINT_SPEED = 5.612 / TICKS_PER_SECOND
SNEAK_SPEED = 1.31 / TICKS_PER_SECOND
GRAVITY = 0.08  # blocks / tick^2, Minecraft's
DRAG = 0.98
JUMP_VELOCITY = 0.42  # -> 1.2523 blocks apex
HALF_WIDTH = 0.3  # player AABB 0.6 x 1.8 x 0.6
HEIGHT = 1.8
EYE_HEIGHT = 1.62
REACH = 4.5
USE_REPEAT_TICKS = 4  # Minecraft's right-click repeat delay
_EPS = 1e-6


class Player:
    """The player's physical state (``pos`` = centre of the feet, float64; angles in degrees)."""

    def __init__(self, pos: np.ndarray):
        self.pos = np.array(pos, dtype=np.float64)
        self.vel = np.zeros(3, dtype=np.float64)
        self.yaw = 0.0
        self.pitch = 0.0
        self.on_ground = False
        self.fall_distance = 0.0
        self.life = 20.0
        self.food = 20

    @property
    def eye_pos(self) -> np.ndarray:
        """Eye position (feet + 1.62 blocks)."""
        return self.pos + np.array([0.0, EYE_HEIGHT, 0.0])

    def look_dir(self) -> np.ndarray:
        """Unit view vector from yaw and pitch."""
        y, p = math.radians(self.yaw), math.radians(self.pitch)
        return np.array([-math.sin(y) * math.cos(p), -math.sin(p), math.cos(y) * math.cos(p)])

    def __repr__(self) -> str:
        x, y, z = self.pos
        return (f"Player(pos=({x:.2f}, {y:.2f}, {z:.2f}), yaw={self.yaw:.1f}, pitch={self.pitch:.1f}, "
                f"on_ground={self.on_ground})")


def _wrap_yaw(yaw: float) -> float:
    return (yaw + 180.0) % 360.0 - 180.0


def _parse_resolution(resolution) -> Tuple[int, int]:
    try:
        w, h = (int(v) for v in resolution)
    except (TypeError, ValueError):
        raise ValueError(f"resolution must be (width, height), got {resolution!r}") from None
    if not (8 <= w <= 4096 and 8 <= h <= 4096):
        raise ValueError(f"resolution {resolution!r} out of range; expected 8..4096 pixels per side")
    return w, h


def _parse_world_size(world_size) -> Tuple[int, int, int]:
    if isinstance(world_size, (int, np.integer)):
        return int(world_size), 48, int(world_size)
    try:
        x, y, z = (int(v) for v in world_size)
    except (TypeError, ValueError):
        raise ValueError(f"world_size must be an int (horizontal) or (X, Y, Z), got {world_size!r}") from None
    return x, y, z


class MineLiteEnv(gym.Env):
    """A fast Minecraft-like world speaking MineRL 1.0's spaces (see the module docstring for the rules and the
    privileged-state API).

    :param resolution: (width, height) of ``pov``; (128, 128) is what the VPT agent consumes, (640, 360) is MineRL's.
    :param world_size: (X, Y, Z) blocks (Y = height) or an int for a square X = Z world 48 blocks tall.
    :param max_steps: truncate after this many steps (None: never).
    :param seed: world seed used by the first ``reset()`` without a seed.
    :param fov: vertical field of view in degrees (Minecraft/MineRL: 70).
    :param aspect: horizontal/vertical extent of the view; default 16/9 (MineRL's frame, which the VPT agent
        sees squeezed to 128x128) whatever the resolution.
    :param view_distance: blocks to the far plane; fog starts at 60 % of it.
    :param mining_speed: multiplies mining progress per tick (1.0 = Minecraft's times).
    :param respawn: on death respawn at the spawn point with an empty inventory instead of terminating.
    :param full_inventory: list all 976 MineRL item names in ``inventory`` (default: the items MineLite has).
    :param render_pov: False skips drawing: ``pov`` is all zeros (for scripted agents that read the privileged
        state only; many times faster).
    :param exact_render: trace every pixel; by default pixels between traced neighbours that hit the same face
        are intersected with it directly (about 2x faster; differs on well under 1 % of pixels).
    :param render_mode: None or "rgb_array" (``render()`` returns the last ``pov``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": TICKS_PER_SECOND}

    def __init__(self, resolution=(128, 128), world_size=(64, 48, 64), max_steps: Optional[int] = 18000,
                 seed: Optional[int] = None, fov: float = 70.0, aspect: Optional[float] = None,
                 view_distance: float = 32.0, mining_speed: float = 1.0, respawn: bool = False,
                 full_inventory: bool = False, render_pov: bool = True, exact_render: bool = False,
                 render_mode: Optional[str] = None):
        self.width, self.height = _parse_resolution(resolution)
        self.world_size = _parse_world_size(world_size)
        X, Y, Z = self.world_size
        if X < 16 or Z < 16 or Y < 24:
            raise ValueError(f"world_size {world_size!r} too small; expected X, Z >= 16 and Y >= 24")
        if not 1.0 <= float(fov) <= 170.0:
            raise ValueError(f"fov {fov!r} out of range; expected 1..170 degrees")
        if aspect is not None and not float(aspect) > 0:
            raise ValueError(f"aspect must be positive, got {aspect!r}")
        if not float(view_distance) > 1.0:
            raise ValueError(f"view_distance must be > 1 block, got {view_distance!r}")
        if not float(mining_speed) > 0:
            raise ValueError(f"mining_speed must be positive, got {mining_speed!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} not supported; expected None or 'rgb_array'")
        self.max_steps = check_step_limit(max_steps)
        self.fov = float(fov)
        self.aspect = 16.0 / 9.0 if aspect is None else float(aspect)
        self.view_distance = float(view_distance)
        self.mining_speed = float(mining_speed)
        self.respawn = bool(respawn)
        self.full_inventory = bool(full_inventory)
        self.render_pov = bool(render_pov)
        self.exact_render = bool(exact_render)
        self.render_mode = render_mode
        self._init_seed = seed

        self.action_space = spaces.Dict(
            {k: (spaces.Box(-180.0, 180.0, (2,), np.float32) if k == "camera" else spaces.Discrete(2))
             for k in ACTION_KEYS}
        )
        inv_names = MINERL_ITEM_NAMES if self.full_inventory else ITEM_NAMES
        self._inv_names = tuple(inv_names)

        def box(lo, hi, dtype):
            return spaces.Box(np.array(lo, dtype=dtype), np.array(hi, dtype=dtype), (), dtype)

        equip = spaces.Dict({
            s: spaces.Dict({"damage": box(-1, 1562, np.int64), "maxDamage": box(-1, 1562, np.int64),
                            "type": spaces.Discrete(N_MINERL_ITEMS)}) for s in EQUIP_SLOTS
        })
        self.observation_space = spaces.Dict({
            "pov": spaces.Box(0, 255, (self.height, self.width, 3), np.uint8),
            "inventory": spaces.Dict({n: box(0, 2304, np.int64) for n in self._inv_names}),
            "equipped_items": equip,
            "life_stats": spaces.Dict({
                "air": box(0, 300, np.int64), "food": box(0, 20, np.int64), "is_alive": box(False, True, bool),
                "life": box(0.0, 20.0, np.float64), "saturation": box(0.0, 20.0, np.float64),
                "score": box(0, 8388607, np.int64), "xp": box(0, 1395, np.int64),
            }),
            "location_stats": spaces.Dict({
                "biome_id": box(0, 167, np.int64), "biome_rainfall": box(0.0, 1.0, np.float32),
                "biome_temperature": box(0.0, 1.0, np.float32), "can_see_sky": box(0, 1, np.int64),
                "is_raining": box(0, 1, np.int64), "light_level": box(0, 15, np.int64),
                "pitch": box(-180.0, 180.0, np.float64), "sea_level": box(0, 255, np.int64),
                "sky_light_level": box(0.0, 1.0, np.float64), "sun_brightness": box(0.0, 1.0, np.float64),
                "xpos": box(-640000.0, 640000.0, np.float64), "yaw": box(-180.0, 180.0, np.float64),
                "ypos": box(-640000.0, 640000.0, np.float64), "zpos": box(-640000.0, 640000.0, np.float64),
            }),
        })

        self._hud = Hud(self.height, self.width)
        self._frame = np.zeros((self.height, self.width, 3), dtype=np.uint8)
        # last world image (before HUD) and what it showed, to skip re-rendering an unchanged view
        self._view_frame = np.zeros_like(self._frame)
        self._view_key = None
        self._view_blocks = np.zeros((0, 0, 0), dtype=np.uint8)
        self._obs_cache = None
        self._tan_half = math.tan(math.radians(self.fov) / 2.0)
        self.world: Optional[W.World] = None
        self.player: Optional[Player] = None
        self.inventory = Inventory()
        self.gui: Optional[Screen] = None
        self.selected_slot = 0
        self.tick = 0
        self._steps = 0
        self._needs_reset = True

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        """Generate a new world (from ``seed``, else the constructor seed once, else the env's RNG) and spawn.

        ``options``: ``{"flat": True}`` builds ``world.flat_world`` (grass at y = ``options.get("ground", 10)``,
        no trees or ores) instead of the procedural terrain; ``{"yaw": deg, "pitch": deg}`` sets the spawn view
        (default: random yaw, pitch 0); ``{"fov": deg}`` sets the vertical field of view from now on.
        """
        if seed is None and self._init_seed is not None:
            seed, self._init_seed = self._init_seed, None
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"flat", "ground", "yaw", "pitch", "fov"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; expected 'flat', 'ground', 'yaw', 'pitch', 'fov'")
        if "fov" in options:  # the MineRL view draws the field of view per episode, as MineRL does
            fov = float(options["fov"])
            if not 1.0 <= fov <= 170.0:
                raise ValueError(f"reset option fov={options['fov']!r} out of range; expected 1..170 degrees")
            self.fov, self._tan_half, self._view_key = fov, math.tan(math.radians(fov) / 2.0), None
        world_seed = int(self.np_random.integers(0, 2**31 - 1))
        if options.get("flat", False):
            self.world = W.flat_world(self.world_size, int(options.get("ground", 10)), world_seed)
        else:
            self.world = W.generate_world(world_seed, self.world_size)
        self.player = Player(self.world.spawn)
        yaw = float(self.np_random.uniform(-180.0, 180.0))
        self.player.yaw = _wrap_yaw(float(options.get("yaw", yaw)))
        self.player.pitch = min(90.0, max(-90.0, float(options.get("pitch", 0.0))))
        self.player.on_ground = True
        self.inventory = Inventory()
        self.gui = None
        self.selected_slot = 0
        self.tick = 0
        self._steps = 0
        self._prev = {k: 0 for k in BUTTON_KEYS}
        self._mine_target: Optional[Tuple[int, int, int]] = None
        self._mine_progress = 0.0
        self._use_timer = 0
        self._target = None
        self._needs_reset = False
        self._update_target()
        return self._observe(), self._info()

    def step(self, action: Mapping[str, Any]):
        """Apply one MineRL action for one tick; returns (obs, 0.0, terminated, truncated, info)."""
        if self._needs_reset:
            raise RuntimeError("MineLiteEnv.step() called before reset() or after the episode ended; call reset()")
        keys, cam = self._parse_action(action)
        prev = self._prev
        p = self.player

        def pressed(k):
            return keys[k] == 1 and prev[k] == 0

        move = (0, 0, 0, 0, 0)  # forward, strafe, jump, sprint, sneak
        if self.gui is not None:
            self.gui.move_cursor(cam[1] / DEG_PER_PIXEL, cam[0] / DEG_PER_PIXEL)
            if pressed("attack"):
                self._click()
            if pressed("inventory") or pressed("ESC"):
                self.gui = None
            self._mine_target, self._mine_progress = None, 0.0
        else:
            for k in range(N_HOTBAR):
                if keys[f"hotbar.{k + 1}"]:
                    self.selected_slot = k
            p.pitch = min(90.0, max(-90.0, p.pitch + float(cam[0])))
            p.yaw = _wrap_yaw(p.yaw + float(cam[1]))
            if pressed("inventory"):
                self.gui = Screen("inventory")
                self._mine_target, self._mine_progress = None, 0.0
            else:
                self._update_target()
                if pressed("drop") and self.inventory.counts[self.selected_slot] > 0:
                    self.inventory.take_from_slot(self.selected_slot, 1)
                self._mine(keys["attack"] == 1)
                if keys["use"]:  # act on the press, then every USE_REPEAT_TICKS ticks while held
                    self._use_timer -= 1
                    if pressed("use") or self._use_timer <= 0:
                        self._use(sneaking=keys["sneak"] == 1)
                        self._use_timer = USE_REPEAT_TICKS
                else:
                    self._use_timer = 0
                move = (keys["forward"] - keys["back"], keys["right"] - keys["left"], keys["jump"], keys["sprint"],
                        keys["sneak"])
        self._physics(*move)
        self._prev = keys
        self.tick += 1
        self._steps += 1

        terminated = False
        if p.life <= 0.0:
            if self.respawn:
                self._respawn()
            else:
                terminated = True
        truncated = self.max_steps is not None and self._steps >= self.max_steps and not terminated
        if terminated or truncated:
            self._needs_reset = True
        self._update_target()
        obs = self._observe()
        return obs, 0.0, terminated, truncated, self._info()

    def render(self):
        """The last ``pov`` frame (``render_mode="rgb_array"``); None otherwise."""
        if self.render_mode == "rgb_array":
            return self._frame.copy()
        return None

    # ------------------------------------------------------------------ privileged API
    def inventory_counts(self) -> Dict[str, int]:
        """{item name: count summed over slots} for every MineLite item (``air`` = empty slots)."""
        return self.inventory.counts_by_name()

    def hotbar(self):
        """[(item name, count)] for hotbar slots 0-8."""
        return self.inventory.hotbar()

    def held_item(self) -> str:
        """Name of the item in the selected hotbar slot (``"air"`` if empty)."""
        return self.inventory.slot_name(self.selected_slot)

    def hotbar_slot_of(self, name: str) -> Optional[int]:
        """First hotbar slot (0-8) holding ``name``, or None."""
        for k in range(N_HOTBAR):
            if self.inventory.slot_name(k) == name:
                return k
        return None

    def target_block(self) -> Optional[Tuple[int, int, int]]:
        """(x, y, z) of the block under the crosshair within reach, or None."""
        return None if self._target is None else self._target[0]

    def target_face(self) -> Optional[Tuple[int, int, int]]:
        """Outward normal of the targeted face, e.g. (0, 1, 0) for a top face, or None."""
        return None if self._target is None else self._target[1]

    def angles_to(self, point) -> Tuple[float, float]:
        """(yaw, pitch) in degrees that point the view from the eyes at ``point`` (e.g. a block centre
        ``(x + 0.5, y + 0.5, z + 0.5)``); the camera action to get there is ``[pitch - player.pitch,
        wrapped(yaw - player.yaw)]``."""
        d = np.asarray(point, dtype=np.float64) - self.player.eye_pos
        yaw = math.degrees(math.atan2(-d[0], d[2]))
        pitch = -math.degrees(math.atan2(d[1], math.hypot(d[0], d[2])))
        return _wrap_yaw(yaw), pitch

    @property
    def mining_progress(self) -> float:
        """Progress in [0, 1) of breaking the block being mined (0 when not mining)."""
        return float(self._mine_progress)

    def _held_tool(self) -> Tuple[Optional[str], int]:
        info = ITEMS[self.held_item()]
        return info.tool, info.tier if info.tool is not None else 0

    def break_ticks(self, block: int) -> int:
        """Ticks of held ``attack`` to break ``block`` with the held item (-1: unbreakable)."""
        tool, tier = self._held_tool()
        return W.break_ticks(block, tool, tier, self.mining_speed)[0]

    def button_enabled(self, name: str) -> bool:
        """Whether the open screen's button ``name`` would craft now (False when no screen is open)."""
        if self.gui is None:
            return False
        name = self.gui._resolve(name)
        return can_craft(name, self.inventory, self._fuel())

    # ------------------------------------------------------------------ internals
    def _parse_action(self, action) -> Tuple[Dict[str, int], np.ndarray]:
        if not isinstance(action, Mapping):
            raise TypeError(f"action must be a dict of MineRL keys, got {type(action).__name__}")
        for k in action:
            if k not in _ACTION_KEY_SET:
                raise ValueError(f"unknown action key {k!r}; expected MineRL 1.0 keys {ACTION_KEYS}")
        keys = {}
        for k in BUTTON_KEYS:
            v = action.get(k, 0)
            if isinstance(v, (int, np.integer)):  # int, bool, numpy integer scalars
                iv = int(v)
            else:
                arr = np.asarray(v)
                if arr.shape != () or arr.dtype.kind not in "biuf":
                    raise ValueError(f"action[{k!r}] must be a scalar 0 or 1, got {v!r}")
                iv = int(arr)
                if iv != arr:
                    raise ValueError(f"action[{k!r}] must be 0 or 1, got {v!r}")
            if iv != 0 and iv != 1:
                raise ValueError(f"action[{k!r}] must be 0 or 1, got {v!r}")
            keys[k] = iv
        if "camera" not in action:
            cam = np.zeros(2)
        else:
            cam = action["camera"]
            if cam is None:  # not a missing key (no turn): a value that was never filled in
                raise ValueError("action['camera'] must be 2 numbers [pitch, yaw] in degrees, got None; leave the "
                                 "key out for no camera move")
            try:
                cam = np.asarray(cam, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"action['camera'] must be 2 numbers [pitch, yaw], got {action['camera']!r}") from None
            if cam.shape != (2,):
                raise ValueError(f"action['camera'] must have shape (2,) = [pitch, yaw] degrees, got shape {cam.shape}")
            if not np.all(np.isfinite(cam)):
                raise ValueError(f"action['camera'] must be finite, got {cam.tolist()}")
            if np.any(np.abs(cam) > 180.0):
                raise ValueError(f"action['camera'] must lie in [-180, 180] degrees, got {cam.tolist()}")
        return keys, cam

    def _fuel(self) -> float:
        if self.gui is not None and self.gui.kind == "furnace":
            return self.world.furnaces.get(self.gui.pos, 0.0)
        return 0.0

    def _click(self) -> None:
        name = self.gui.button_at(*self.gui.cursor)
        if name is None:
            return
        ok, fuel = craft(name, self.inventory, self._fuel(), prefer=-1)
        if ok and self.gui.kind == "furnace":
            self.world.furnaces[self.gui.pos] = fuel

    def _update_target(self) -> None:
        p = self.player
        res = pick_block(self.world.blocks, p.eye_pos, p.look_dir(), REACH)
        if res[0]:
            self._target = ((int(res[1]), int(res[2]), int(res[3])), (int(res[4]), int(res[5]), int(res[6])))
        else:
            self._target = None

    def _mine(self, attacking: bool) -> None:
        tgt = self.target_block()
        if not attacking or tgt is None:
            self._mine_target, self._mine_progress = None, 0.0
            return
        if tgt != self._mine_target:
            self._mine_target, self._mine_progress = tgt, 0.0
        block = int(self.world.blocks[tgt])
        tool, tier = self._held_tool()
        ticks, drops = W.break_ticks(block, tool, tier, self.mining_speed)
        if ticks < 0:
            return
        self._mine_progress += 1.0 / ticks
        if self._mine_progress < 1.0 - 1e-9:
            return
        # break it
        self.world.blocks[tgt] = W.AIR
        if block == W.FURNACE:
            self.world.furnaces.pop(tgt, None)
        if drops:
            self.inventory.add(W.BLOCK_INFO[block].drop, 1, prefer=self.selected_slot)
        if tool is not None:
            self.inventory.damage_slot(self.selected_slot)
        self._mine_target, self._mine_progress = None, 0.0
        self._update_target()

    def _use(self, sneaking: bool) -> None:
        if self._target is None:
            return
        (x, y, z), (nx, ny, nz) = self._target
        block = int(self.world.blocks[x, y, z])
        if not sneaking and block in (W.CRAFTING_TABLE, W.FURNACE):
            self.gui = Screen("crafting_table" if block == W.CRAFTING_TABLE else "furnace", (x, y, z))
            self._mine_target, self._mine_progress = None, 0.0
            return
        info = ITEMS[self.held_item()]
        if info.block is None or (nx, ny, nz) == (0, 0, 0):
            return
        px, py, pz = x + nx, y + ny, z + nz
        if not self.world.in_bounds(px, py, pz) or self.world.blocks[px, py, pz] != W.AIR:
            return
        if self._aabb_overlaps_block(self.player.pos, px, py, pz):
            return
        new_block = W.BLOCK[info.block]
        self.world.blocks[px, py, pz] = new_block
        if new_block == W.FURNACE:
            self.world.furnaces[(px, py, pz)] = 0.0
        self.inventory.take_from_slot(self.selected_slot, 1)

    @staticmethod
    def _aabb_overlaps_block(pos, bx, by, bz) -> bool:
        return (pos[0] - HALF_WIDTH < bx + 1 and pos[0] + HALF_WIDTH > bx and pos[1] < by + 1
                and pos[1] + HEIGHT > by and pos[2] - HALF_WIDTH < bz + 1 and pos[2] + HALF_WIDTH > bz)

    def _collides(self, x: float, y: float, z: float) -> bool:
        blocks = self.world.blocks
        X, Y, Z = blocks.shape
        x0, x1 = math.floor(x - HALF_WIDTH), math.ceil(x + HALF_WIDTH) - 1
        z0, z1 = math.floor(z - HALF_WIDTH), math.ceil(z + HALF_WIDTH) - 1
        y0, y1 = math.floor(y), math.ceil(y + HEIGHT) - 1
        if x0 < 0 or z0 < 0 or x1 >= X or z1 >= Z or y0 < 0:
            return True  # world border / below bedrock
        if y0 >= Y:
            return False
        return bool(blocks[x0:x1 + 1, y0:min(y1, Y - 1) + 1, z0:z1 + 1].any())

    def _move_axis(self, axis: int, delta: float) -> bool:
        """Move the player along ``axis`` by ``delta``, stopping at blocks; returns True on collision."""
        if delta == 0.0:
            return False
        pos = self.player.pos
        n = max(1, int(math.ceil(abs(delta) / 0.9)))
        step = delta / n
        for _ in range(n):
            new = pos.copy()
            new[axis] += step
            if self._collides(new[0], new[1], new[2]):
                if axis == 1:
                    if step < 0:
                        pos[1] = math.floor(new[1]) + 1.0
                    else:
                        pos[1] = math.ceil(new[1] + HEIGHT) - 1 - HEIGHT - _EPS
                else:
                    if step < 0:
                        pos[axis] = math.floor(new[axis] - HALF_WIDTH) + 1 + HALF_WIDTH + _EPS
                    else:
                        pos[axis] = math.ceil(new[axis] + HALF_WIDTH) - 1 - HALF_WIDTH - _EPS
                return True
            pos[:] = new
        return False

    def _supported(self, x: float, z: float) -> bool:
        y = self.player.pos[1]
        return self._collides(x, y - 0.05, z)

    def _physics(self, fwd: int, strafe: int, jump: int, sprint: int, sneak: int) -> None:
        p = self.player
        speed = SNEAK_SPEED if sneak else (SPRINT_SPEED if (sprint and fwd > 0) else WALK_SPEED)
        norm = math.hypot(fwd, strafe)
        vx = vz = 0.0
        if norm > 0:
            yr = math.radians(p.yaw)
            f, s = fwd / norm * speed, strafe / norm * speed
            vx = -math.sin(yr) * f - math.cos(yr) * s
            vz = math.cos(yr) * f - math.sin(yr) * s
        if jump and p.on_ground:
            p.vel[1] = JUMP_VELOCITY
        y_before = p.pos[1]
        hit_y = self._move_axis(1, p.vel[1])
        landed = hit_y and p.vel[1] < 0
        if hit_y:
            p.vel[1] = 0.0
        for axis, v in ((0, vx), (2, vz)):
            if v == 0.0:
                continue
            if sneak and landed:  # sneaking: do not step off an edge
                trial = p.pos.copy()
                trial[axis] += v
                if not self._supported(trial[0], trial[2]):
                    continue
            self._move_axis(axis, v)
        dy = p.pos[1] - y_before
        if landed:
            if p.fall_distance > 3.0:
                p.life = max(0.0, p.life - math.ceil(p.fall_distance - 3.0))
            p.fall_distance = 0.0
            p.on_ground = True
        else:
            p.on_ground = False
            if dy < 0:
                p.fall_distance -= dy
            else:
                p.fall_distance = 0.0
        p.vel[1] = (p.vel[1] - GRAVITY) * DRAG

    def _respawn(self) -> None:
        self.player = Player(self.world.spawn)
        self.player.on_ground = True
        self.inventory.clear()
        self.gui = None
        self._mine_target, self._mine_progress = None, 0.0

    def _render(self) -> np.ndarray:
        if not self.render_pov:
            return np.zeros((self.height, self.width, 3), dtype=np.uint8)
        p = self.player
        yr, pr = math.radians(p.yaw), math.radians(p.pitch)
        fwd = np.array([-math.sin(yr) * math.cos(pr), -math.sin(pr), math.cos(yr) * math.cos(pr)])
        right = np.array([-math.cos(yr), 0.0, -math.sin(yr)])
        up = np.array([right[1] * fwd[2] - right[2] * fwd[1], right[2] * fwd[0] - right[0] * fwd[2],
                       right[0] * fwd[1] - right[1] * fwd[0]])  # right x forward
        tgt = np.array(self._target[0] if self._target is not None else (-1, -1, -1), dtype=np.int64)
        stage = 0
        if self._mine_target is not None and self._mine_progress > 0:
            stage = min(10, int(self._mine_progress * 10) + 1)
        frame = self._frame
        eye = p.eye_pos
        key = (float(eye[0]), float(eye[1]), float(eye[2]), p.yaw, p.pitch, tuple(tgt.tolist()), stage)
        blocks = self.world.blocks
        if (key == self._view_key and self._view_blocks.shape == blocks.shape
                and np.array_equal(self._view_blocks, blocks)):
            frame[:] = self._view_frame  # nothing visible changed: reuse the last world image
        else:
            render_world(blocks, TEXTURES, eye, fwd, right, up, self._tan_half, self.aspect, self.view_distance,
                         0.6 * self.view_distance, tgt, stage, CRACKS, SKY_TOP, SKY_HORIZON, VOID, frame,
                         self.exact_render)
            self._view_key = key
            if self._view_blocks.shape != blocks.shape:
                self._view_blocks = np.empty_like(blocks)
            np.copyto(self._view_blocks, blocks)
            np.copyto(self._view_frame, frame)
        inv = self.inventory
        self._hud.draw_hud(frame, inv.items[:N_HOTBAR].tolist(), inv.counts[:N_HOTBAR].tolist(), self.selected_slot,
                           p.life, p.food, crosshair=self.gui is None)
        if self.gui is not None:
            enabled = {n: can_craft(n, inv, self._fuel()) for n in self.gui.buttons}
            self._hud.draw_gui(frame, self.gui, inv.items, inv.counts, enabled, self._fuel())
        return frame.copy()

    def _observe(self) -> Dict[str, Any]:
        p = self.player
        pov = self._render()
        inv = self.inventory
        held = self.held_item()
        md = ITEMS[held].max_damage
        dmg = int(inv.damage[self.selected_slot]) if md > 0 else 0
        i64 = np.int64
        # the per-item counts are recomputed only when the inventory changes; the arrays are new on every call,
        # so no two observations share an object (a caller may keep or modify what it was given)
        ckey = (id(inv), inv.version)
        if self._obs_cache is None or self._obs_cache[0] != ckey:
            counts = inv.counts_by_name()
            self._obs_cache = (ckey, [counts.get(n, 0) for n in self._inv_names])
        inventory = {n: np.array(c, dtype=i64) for n, c in zip(self._inv_names, self._obs_cache[1])}
        equipped = {s: {"damage": np.array(0, i64), "maxDamage": np.array(0, i64), "type": _AIR_INDEX}
                    for s in EQUIP_SLOTS}
        equipped["mainhand"] = {"damage": np.array(dmg, i64), "maxDamage": np.array(md, i64),
                                "type": np.int64(minerl_index(held))}
        x, y, z = (float(v) for v in p.pos)
        ex = p.eye_pos
        X, Y, Z = self.world.blocks.shape
        ix, iy, iz = int(math.floor(ex[0])), int(math.floor(ex[1])), int(math.floor(ex[2]))
        sky = 1 if (iy >= Y or not (0 <= ix < X and 0 <= iz < Z) or not self.world.blocks[ix, iy:, iz].any()) else 0
        return {
            "pov": pov,
            "inventory": inventory,
            "equipped_items": equipped,
            "life_stats": {
                "air": np.array(300, i64), "food": np.array(p.food, i64), "is_alive": np.array(p.life > 0, bool),
                "life": np.array(p.life, np.float64), "saturation": np.array(5.0, np.float64),
                "score": np.array(0, i64), "xp": np.array(0, i64),
            },
            "location_stats": {
                "biome_id": np.array(1, i64), "biome_rainfall": np.array(0.4, np.float32),
                "biome_temperature": np.array(0.8, np.float32), "can_see_sky": np.array(sky, i64),
                "is_raining": np.array(0, i64), "light_level": np.array(15 if sky else 7, i64),
                "pitch": np.array(p.pitch, np.float64), "sea_level": np.array(int(Y * 0.62) - 2, i64),
                "sky_light_level": np.array(1.0 if sky else 0.5, np.float64),
                "sun_brightness": np.array(1.0, np.float64),
                "xpos": np.array(x, np.float64), "yaw": np.array(p.yaw, np.float64),
                "ypos": np.array(y, np.float64), "zpos": np.array(z, np.float64),
            },
        }

    def _info(self) -> Dict[str, Any]:
        return {"isGuiOpen": self.gui is not None, "tick": self.tick}


_ACTION_KEY_SET = frozenset(ACTION_KEYS)
_AIR_INDEX = np.int64(minerl_index("air"))
