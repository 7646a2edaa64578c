"""VPT's joint action space: 8641 button combinations x 121 camera classes, and the MineRL mapping.

The official agent (``lib/actions.py`` + ``lib/action_mapping.py``) converts a MineRL 1.0 env action in two
stages; this module reproduces both, quirks included, with precomputed tables (O(1) per step):

* **factored** action: 20 buttons (:data:`BUTTONS_ALL` order, 0/1) and 2 camera bins (0..10, mu-law);
* **joint** ("agent") action: ``buttons_idx`` in ``[0, 8640]`` and ``camera_idx`` in ``[0, 120]``.

Quirks kept for parity (openai/Video-Pre-Training: ``lib/actions.py``, ``ActionTransformer``/``CameraQuantizer``):

* in a button group the later button wins (hotbar.1 + hotbar.3 -> hotbar.3, sprint + sneak -> sneak),
  but forward + back -> none and left + right -> none;
* env -> agent: ``inventory`` pressed gives button class 8640 and forces the camera class to 60 (null);
* agent -> env: class 8640 is *not* marked camera-off, so the sampled camera is applied with it.

Example:

>>> from vpt_rl import actions
>>> b, c = actions.env_to_agent({"forward": 1, "attack": 1, "camera": [0.0, 3.0]})
>>> int(b), int(c)
(293, 63)
>>> env_action = actions.agent_to_env(b, c)
>>> env_action["forward"], env_action["attack"], env_action["camera"].tolist()
(1, 1, [0.0, 3.21536922454834])
"""
from __future__ import annotations

import bisect
import math
import operator
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np
from gymnasium import spaces

__all__ = [
    "BUTTONS_ALL",
    "ENV_ACTION_KEYS",
    "BUTTON_GROUPS",
    "N_BUTTONS",
    "N_BUTTON_CLASSES",
    "N_CAMERA_CLASSES",
    "N_CAMERA_BINS",
    "NULL_BUTTONS",
    "NULL_CAMERA",
    "NULL_CAMERA_BIN",
    "INVENTORY_BUTTONS",
    "CAMERA_MAXVAL",
    "CAMERA_BINSIZE",
    "CAMERA_MU",
    "noop_action",
    "discretize_camera",
    "undiscretize_camera",
    "camera_bin_centres",
    "env_to_factored",
    "factored_to_joint",
    "joint_to_factored",
    "env_to_agent",
    "agent_to_env",
    "env_to_agent_batch",
    "agent_to_env_batch",
    "factored_to_env",
    "action_space",
]

# --------------------------------------------------------------------------------------------------
# Constants (each defined once, with its source)
# --------------------------------------------------------------------------------------------------

BUTTONS_ALL: Tuple[str, ...] = (  # lib/actions.py Buttons.ALL
    "attack", "back", "forward", "jump", "left", "right", "sneak", "sprint", "use", "drop", "inventory",
    *(f"hotbar.{i}" for i in range(1, 10)),
)
N_BUTTONS = len(BUTTONS_ALL)  # 20
# env_to_agent unpacks a pressed-list positionally in this order
assert BUTTONS_ALL[:11] == ("attack", "back", "forward", "jump", "left", "right", "sneak", "sprint", "use", "drop", "inventory")

# MineRL 1.0 HumanSurvival action keys, in the (sorted) order MineRL lists them (agent.TARGET_ACTION_SPACE).
ENV_ACTION_KEYS: Tuple[str, ...] = (
    "ESC", "attack", "back", "camera", "drop", "forward",
    *(f"hotbar.{i}" for i in range(1, 10)),
    "inventory", "jump", "left", "pickItem", "right", "sneak", "sprint", "swapHands", "use",
)
# Env keys the agent never emits (not in Buttons.ALL): always 0 in agent -> env, ignored in env -> agent.
UNMODELLED_KEYS: Tuple[str, ...] = ("ESC", "pickItem", "swapHands")

# Mutually exclusive groups of lib/action_mapping.py CameraHierarchicalMapping, index 0 = "none".
BUTTON_GROUPS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("hotbar", ("none", *(f"hotbar.{i}" for i in range(1, 10)))),
    ("fore_back", ("none", "forward", "back")),
    ("left_right", ("none", "left", "right")),
    ("sprint_sneak", ("none", "sprint", "sneak")),
    ("use", ("none", "use")),
    ("drop", ("none", "drop")),
    ("attack", ("none", "attack")),
    ("jump", ("none", "jump")),
    ("camera", ("none", "camera")),  # meta-action: is the camera moved at all
)
_GROUP_SIZES = tuple(len(opts) for _, opts in BUTTON_GROUPS)  # (10, 3, 3, 3, 2, 2, 2, 2, 2)

N_CAMERA_BINS = 11  # agent.py ACTION_TRANSFORMER_KWARGS / CameraHierarchicalMapping(n_camera_bins=11)
CAMERA_MAXVAL = 10  # agent.py camera_maxval (degrees)
CAMERA_BINSIZE = 2  # agent.py camera_binsize
CAMERA_MU = 10  # agent.py camera_mu (mu-law)
NULL_CAMERA_BIN = CAMERA_MAXVAL // CAMERA_BINSIZE  # 5: the zero bin

N_BUTTON_CLASSES = int(np.prod(_GROUP_SIZES)) + 1  # 8640 combinations + "inventory" = 8641
N_CAMERA_CLASSES = N_CAMERA_BINS * N_CAMERA_BINS  # 121
NULL_BUTTONS = 0  # every group "none"
INVENTORY_BUTTONS = N_BUTTON_CLASSES - 1  # 8640
NULL_CAMERA = NULL_CAMERA_BIN * N_CAMERA_BINS + NULL_CAMERA_BIN  # 60
# MineRL's mouse: 360 degrees of camera per 2400 counts (data_loader.py CAMERA_SCALER), i.e. 0.15 degrees per
# count, for the camera and for the GUI cursor alike. Computed as 360 / 2400 (not written 0.15) on purpose:
# ``counts * 360 / 2400`` is exact where ``counts * 0.15`` is off in the last bit (e.g. -24 * 0.15 != -3.6).
MOUSE_DEGREES_PER_TURN = 360.0
MOUSE_COUNTS_PER_TURN = 2400.0
MOUSE_DEGREES_PER_COUNT = MOUSE_DEGREES_PER_TURN / MOUSE_COUNTS_PER_TURN  # 0.15

_BUTTON_INDEX = {name: i for i, name in enumerate(BUTTONS_ALL)}
_KNOWN_ENV_KEYS = frozenset(ENV_ACTION_KEYS)

# --------------------------------------------------------------------------------------------------
# Camera quantisation (mu-law)
# --------------------------------------------------------------------------------------------------


def discretize_camera(deg: Any) -> np.ndarray:
    """Quantise camera degrees to mu-law bins ``0..10`` (the official ``ActionTransformer.discretize``).

    Values are clipped to +-10 degrees, mu-law encoded (mu 10) and rounded with numpy's
    round-half-to-even. The operations run in the official order so the bins agree bit for bit.

    :param deg: array-like of camera degrees, any shape (usually ``(..., 2)`` = pitch, yaw).
    :return: int64 array of the same shape.
    :raises ValueError: if any value is NaN.
    """
    x = np.asarray(deg, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError(f"camera contains NaN: {deg!r}; expected finite degrees")
    x = np.clip(x, -CAMERA_MAXVAL, CAMERA_MAXVAL)
    x = x / CAMERA_MAXVAL
    enc = np.sign(x) * (np.log(1.0 + CAMERA_MU * np.abs(x)) / np.log(1.0 + CAMERA_MU))
    enc = enc * CAMERA_MAXVAL
    return np.round((enc + CAMERA_MAXVAL) / CAMERA_BINSIZE).astype(np.int64)


def undiscretize_camera(bins: Any) -> np.ndarray:
    """Map mu-law bins ``0..10`` back to degrees (the official ``ActionTransformer.undiscretize``).

    :param bins: integer array-like, any shape, values in ``[0, 10]``.
    :return: float64 array of the same shape (bin centres in degrees; bin 5 -> 0.0).
    :raises ValueError: if a bin is outside ``[0, 10]``.
    """
    b = np.asarray(bins)
    if b.size and (b.min() < 0 or b.max() >= N_CAMERA_BINS):
        raise ValueError(f"camera bins must lie in [0, {N_CAMERA_BINS - 1}], got {bins!r}")
    x = b * CAMERA_BINSIZE - CAMERA_MAXVAL
    x = x / CAMERA_MAXVAL
    dec = np.sign(x) * (1.0 / CAMERA_MU) * ((1.0 + CAMERA_MU) ** np.abs(x) - 1.0)
    return dec * CAMERA_MAXVAL


def camera_bin_centres() -> np.ndarray:
    """The 11 bin centres in degrees, float64 (``[-10, -5.809, ..., 0, ..., 10]``)."""
    return undiscretize_camera(np.arange(N_CAMERA_BINS))


def _exact_bin_edges() -> List[float]:
    """For k = 1..10 the smallest float64 ``x`` with ``discretize_camera(x) >= k``, found by bisection on
    :func:`discretize_camera` itself, so a ``bisect`` over these edges gives the numpy result bit for bit
    (the mapping is monotone) at a fraction of the cost of numpy on a 2-element array."""
    lo = np.full(N_CAMERA_BINS - 1, -float(CAMERA_MAXVAL))  # discretize(lo) < k
    hi = np.full(N_CAMERA_BINS - 1, float(CAMERA_MAXVAL))  # discretize(hi) >= k
    k = np.arange(1, N_CAMERA_BINS)
    for _ in range(200):
        mid = lo + (hi - lo) / 2
        done = (mid == lo) | (mid == hi)
        if done.all():
            break
        up = discretize_camera(mid) >= k
        hi = np.where(~done & up, mid, hi)
        lo = np.where(~done & ~up, mid, lo)
    assert (discretize_camera(hi) >= k).all() and (discretize_camera(np.nextafter(hi, -np.inf)) < k).all()
    return hi.tolist()


_BIN_EDGES = _exact_bin_edges()


def _discretize_scalar(x: float) -> int:
    """One camera value -> bin, equal to :func:`discretize_camera` (edges precomputed from it)."""
    return bisect.bisect_right(_BIN_EDGES, x)


# --------------------------------------------------------------------------------------------------
# Precomputed tables
# --------------------------------------------------------------------------------------------------


def _build_joint_tables() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(8641, 20) uint8 factored buttons per joint class, (8641,) bool "camera applied" flags, and (8641, 9)
    the option index of each :data:`BUTTON_GROUPS` group per class (-1 for the inventory class)."""
    buttons = np.zeros((N_BUTTON_CLASSES, N_BUTTONS), dtype=np.uint8)
    camera_on = np.zeros(N_BUTTON_CLASSES, dtype=bool)
    # Mixed-radix digits of every combination index, the last group varying fastest.
    idx = np.arange(N_BUTTON_CLASSES - 1)
    rem = idx.copy()
    digits = []
    for size in reversed(_GROUP_SIZES):
        digits.append(rem % size)
        rem = rem // size
    digits.reverse()
    group_digits = np.full((N_BUTTON_CLASSES, len(BUTTON_GROUPS)), -1, dtype=np.int64)  # inventory: -1
    group_digits[:-1] = np.stack(digits, axis=1)
    for (group, options), d in zip(BUTTON_GROUPS, digits):
        if group == "camera":
            camera_on[idx] = d == 1
            continue
        for opt_i, name in enumerate(options):
            if name != "none":
                buttons[idx[d == opt_i], _BUTTON_INDEX[name]] = 1
    buttons[INVENTORY_BUTTONS, _BUTTON_INDEX["inventory"]] = 1
    # parity: lib/action_mapping.py CameraHierarchicalMapping -- the inventory class is not camera-off,
    # so to_factored applies the sampled camera with it.
    camera_on[INVENTORY_BUTTONS] = True
    return buttons, camera_on, group_digits


_JOINT_BUTTONS, _JOINT_CAMERA_ON, _JOINT_GROUP_DIGITS = _build_joint_tables()
# _JOINT_GROUP_DIGITS (8641, 9): the option index of every BUTTON_GROUPS group in each class (-1: inventory)
_JOINT_GROUP_DIGITS.setflags(write=False)
_JOINT_BUTTONS.setflags(write=False)
_JOINT_CAMERA_ON.setflags(write=False)
_CAMERA_BINS = np.stack(np.divmod(np.arange(N_CAMERA_CLASSES), N_CAMERA_BINS), axis=1).astype(np.int64)  # (121, 2)
_CAMERA_DEG = undiscretize_camera(_CAMERA_BINS).astype(np.float32)  # (121, 2)
_CAMERA_BINS.setflags(write=False)
_CAMERA_DEG.setflags(write=False)
# Python-level copies for the scalar (per-step) path: list indexing beats numpy for one element.
_JOINT_PRESSED: List[Tuple[str, ...]] = [
    tuple(BUTTONS_ALL[j] for j in np.flatnonzero(row)) for row in _JOINT_BUTTONS
]
_JOINT_CAMERA_ON_LIST: List[bool] = _JOINT_CAMERA_ON.tolist()
_CAMERA_DEG_LIST: List[Tuple[float, float]] = [tuple(row) for row in _CAMERA_DEG.tolist()]
# Group strides of the joint index (last group fastest).
_STRIDES = tuple(int(np.prod(_GROUP_SIZES[i + 1:])) for i in range(len(_GROUP_SIZES)))
(_S_HOTBAR, _S_FB, _S_LR, _S_SS, _S_USE, _S_DROP, _S_ATTACK, _S_JUMP, _S_CAM) = _STRIDES

# --------------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------------


def _button_value(key: str, value: Any) -> int:
    """A 0/1 button value from a scalar or a size-1 array; anything else raises naming the key."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"env action key {key!r} must be a single 0/1 value, got array of shape {value.shape}")
        value = value.reshape(()).item()
    if value == 0:
        return 0
    if value == 1:
        return 1
    raise ValueError(f"env action key {key!r} must be 0 or 1, got {value!r}")


def _camera_pair(value: Any) -> np.ndarray:
    cam = np.asarray(value, dtype=np.float64)
    if cam.size != 2:
        raise ValueError(f"env action 'camera' must hold 2 values [pitch, yaw] in degrees, got {value!r}")
    cam = cam.reshape(2)
    if not np.isfinite(cam).all():
        raise ValueError(f"env action 'camera' must be finite degrees, got {value!r}")
    return cam


def _camera_floats(value: Any) -> Tuple[float, float]:
    """Fast path of :func:`_camera_pair` for the per-step mapping: two finite Python floats."""
    if isinstance(value, np.ndarray) and value.size == 2:
        pitch, yaw = value.reshape(2).tolist()
    elif isinstance(value, (list, tuple)) and len(value) == 2 and not isinstance(value[0], (list, tuple, np.ndarray)):
        pitch, yaw = value
    else:
        pitch, yaw = _camera_pair(value).tolist()
    try:
        pitch, yaw = float(pitch), float(yaw)
    except (TypeError, ValueError):
        raise ValueError(f"env action 'camera' must hold 2 numbers [pitch, yaw] in degrees, got {value!r}") from None
    if not (math.isfinite(pitch) and math.isfinite(yaw)):
        raise ValueError(f"env action 'camera' must be finite degrees, got {value!r}")
    return pitch, yaw


def _read_env_action(env_action: Mapping[str, Any]) -> Tuple[List[int], float, float]:
    """One pass over an env action dict: validated 0/1 list in BUTTONS_ALL order, pitch, yaw (floats).

    Missing keys count as 0 / no camera; ESC, pickItem and swapHands are checked and dropped.
    """
    if not isinstance(env_action, Mapping):
        raise TypeError(f"env action must be a dict of MineRL keys, got {type(env_action).__name__}")
    pressed = [0] * N_BUTTONS
    pitch = yaw = 0.0
    col = _BUTTON_INDEX
    for key, value in env_action.items():
        if key == "camera":
            pitch, yaw = _camera_floats(value)
            continue
        if value.__class__ is int and (value == 0 or value == 1):
            v = value
        elif key in _KNOWN_ENV_KEYS:
            v = _button_value(key, value)
        else:
            v = 0
        i = col.get(key)
        if i is not None:
            pressed[i] = v
        elif key not in _KNOWN_ENV_KEYS:
            raise ValueError(f"unknown env action key {key!r}; expected MineRL 1.0 keys {list(ENV_ACTION_KEYS)}")
    return pressed, pitch, yaw


def _check_env_keys(env_action: Mapping[str, Any]) -> None:
    if not isinstance(env_action, Mapping):
        raise TypeError(f"env action must be a dict of MineRL keys, got {type(env_action).__name__}")
    for key in env_action:
        if key not in _KNOWN_ENV_KEYS:
            raise ValueError(f"unknown env action key {key!r}; expected MineRL 1.0 keys {list(ENV_ACTION_KEYS)}")


def _index(value: Any, name: str, n: int) -> int:
    """An int in ``[0, n)`` from a Python/numpy integer or a size-1 integer array."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"{name} must be a single index, got array of shape {value.shape}")
        value = value.reshape(())[()]
    if hasattr(value, "item") and hasattr(value, "dtype") and not isinstance(value, np.generic):
        value = value.item()  # e.g. a one-element torch tensor
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got bool {value!r}")
    try:
        i = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer in [0, {n - 1}], got {value!r} ({type(value).__name__})") from None
    if not 0 <= i < n:
        raise ValueError(f"{name} must lie in [0, {n - 1}], got {i}")
    return i


def _index_array(values: Any, name: str, n: int) -> np.ndarray:
    if hasattr(values, "detach") and hasattr(values, "cpu"):
        values = values.detach().cpu().numpy()  # torch tensor
    arr = np.asarray(values)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = arr[(arr < 0) | (arr >= n)].ravel()[0]
        raise ValueError(f"{name} must lie in [0, {n - 1}], got {int(bad)}")
    return arr.astype(np.int64, copy=False)


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def noop_action() -> Dict[str, Any]:
    """A fresh MineRL 1.0 no-op: all 23 button keys ``0`` and ``camera`` float32 ``[0, 0]``."""
    action: Dict[str, Any] = {key: 0 for key in ENV_ACTION_KEYS}
    action["camera"] = np.zeros(2, dtype=np.float32)
    return action


def env_to_factored(env_action: Mapping[str, Any]) -> Tuple[np.ndarray, np.ndarray]:
    """MineRL env action -> factored action (the official ``ActionTransformer.env2policy``).

    Missing button keys count as 0 (as in the official code); ``ESC``, ``pickItem`` and ``swapHands`` are
    accepted and ignored; a missing ``camera`` counts as ``[0, 0]``.

    :return: ``(buttons, camera_bins)``: int64 ``(20,)`` 0/1 in :data:`BUTTONS_ALL` order, int64 ``(2,)``.
    :raises ValueError: unknown key, a button not 0/1, a camera that is not 2 finite numbers.
    """
    pressed, pitch, yaw = _read_env_action(env_action)
    return np.array(pressed, dtype=np.int64), discretize_camera(np.array([pitch, yaw]))


def factored_to_joint(buttons: Any, camera_bins: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Factored -> joint action (the official ``CameraHierarchicalMapping.from_factored``), vectorised.

    :param buttons: 0/1 array ``(..., 20)`` in :data:`BUTTONS_ALL` order.
    :param camera_bins: int array ``(..., 2)`` with bins in ``[0, 10]``.
    :return: ``(buttons_idx, camera_idx)``, int64 arrays of shape ``(...)``.
    """
    b = np.asarray(buttons)
    c = np.asarray(camera_bins)
    if b.shape[-1:] != (N_BUTTONS,):
        raise ValueError(f"buttons must have shape (..., {N_BUTTONS}), got {b.shape}")
    if c.shape[-1:] != (2,) or c.shape[:-1] != b.shape[:-1]:
        raise ValueError(f"camera_bins must have shape {b.shape[:-1] + (2,)}, got {c.shape}")
    if b.size and not np.isin(b, (0, 1)).all():
        raise ValueError("buttons must be 0/1")
    if c.size and (c.min() < 0 or c.max() >= N_CAMERA_BINS):
        raise ValueError(f"camera bins must lie in [0, {N_CAMERA_BINS - 1}], got {c[(c < 0) | (c >= N_CAMERA_BINS)].ravel()[0]}")
    b = b.astype(bool)
    c = c.astype(np.int64)
    col = _BUTTON_INDEX
    # hotbar: the last pressed of hotbar.1..9 wins (1..9), none -> 0
    hb = b[..., col["hotbar.1"]:col["hotbar.9"] + 1]
    hotbar = np.where(hb.any(-1), 9 - np.argmax(hb[..., ::-1], axis=-1), 0)
    fwd, back = b[..., col["forward"]], b[..., col["back"]]
    fore_back = np.where(fwd & back, 0, np.where(back, 2, np.where(fwd, 1, 0)))
    left, right = b[..., col["left"]], b[..., col["right"]]
    left_right = np.where(left & right, 0, np.where(right, 2, np.where(left, 1, 0)))
    sprint_sneak = np.where(b[..., col["sneak"]], 2, np.where(b[..., col["sprint"]], 1, 0))
    cam_meta = (c[..., 0] != NULL_CAMERA_BIN) | (c[..., 1] != NULL_CAMERA_BIN)
    joint = (
        hotbar * _S_HOTBAR + fore_back * _S_FB + left_right * _S_LR + sprint_sneak * _S_SS
        + b[..., col["use"]] * _S_USE + b[..., col["drop"]] * _S_DROP + b[..., col["attack"]] * _S_ATTACK
        + b[..., col["jump"]] * _S_JUMP + cam_meta * _S_CAM
    ).astype(np.int64)
    cam = c[..., 0] * N_CAMERA_BINS + c[..., 1]
    inv = b[..., col["inventory"]]
    # parity: lib/action_mapping.py from_factored -- inventory overrides every button and nulls the camera
    joint = np.where(inv, INVENTORY_BUTTONS, joint).astype(np.int64)
    cam = np.where(inv, NULL_CAMERA, cam).astype(np.int64)
    return joint, cam


def joint_to_factored(buttons_idx: Any, camera_idx: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Joint -> factored action (the official ``CameraHierarchicalMapping.to_factored``), vectorised.

    :return: ``(buttons, camera_bins)``: uint8 ``(..., 20)`` and int64 ``(..., 2)``. Combinations whose
        camera meta-action is "none" get bins (5, 5); class 8640 keeps the sampled camera (official quirk).
    """
    bi = _index_array(buttons_idx, "buttons_idx", N_BUTTON_CLASSES)
    ci = _index_array(camera_idx, "camera_idx", N_CAMERA_CLASSES)
    if bi.shape != ci.shape:
        raise ValueError(f"buttons_idx and camera_idx must have the same shape, got {bi.shape} and {ci.shape}")
    bins = np.where(_JOINT_CAMERA_ON[bi][..., None], _CAMERA_BINS[ci], NULL_CAMERA_BIN)
    return _JOINT_BUTTONS[bi], bins.astype(np.int64)


def env_to_agent(env_action: Mapping[str, Any]) -> Tuple[int, int]:
    """MineRL env action dict -> joint agent action ``(buttons_idx, camera_idx)``.

    Same result as the official ``MineRLAgent._env_action_to_agent`` (without its optional null check).
    Missing button keys count as 0; ``ESC``/``pickItem``/``swapHands`` are ignored (must still be 0/1).

    :param env_action: dict with MineRL 1.0 keys; values 0/1 (Python, numpy scalars or size-1 arrays),
        ``camera`` 2 degrees ``[pitch, yaw]``.
    :return: ``(buttons_idx in [0, 8640], camera_idx in [0, 120])`` as Python ints.
    :raises ValueError: unknown keys, non-0/1 buttons, a camera that is not 2 finite numbers.
    """
    pressed, pitch, yaw = _read_env_action(env_action)
    col = _BUTTON_INDEX
    if pressed[col["inventory"]]:
        # parity: from_factored -- inventory wins over everything and forces the null camera
        return INVENTORY_BUTTONS, NULL_CAMERA
    bin0, bin1 = _discretize_scalar(pitch), _discretize_scalar(yaw)
    (attack, back, forward, jump, left, right, sneak, sprint, use, drop, _inventory, *hotbars) = pressed
    hotbar = 0
    for i in range(8, -1, -1):  # the last pressed hotbar key wins
        if hotbars[i]:
            hotbar = i + 1
            break
    fore_back = 0 if forward and back else (2 if back else (1 if forward else 0))
    left_right = 0 if left and right else (2 if right else (1 if left else 0))
    sprint_sneak = 2 if sneak else (1 if sprint else 0)
    cam_meta = int(bin0 != NULL_CAMERA_BIN or bin1 != NULL_CAMERA_BIN)
    joint = (
        hotbar * _S_HOTBAR + fore_back * _S_FB + left_right * _S_LR + sprint_sneak * _S_SS
        + use * _S_USE + drop * _S_DROP + attack * _S_ATTACK + jump * _S_JUMP + cam_meta * _S_CAM
    )
    return joint, bin0 * N_CAMERA_BINS + bin1


def agent_to_env(buttons_idx: Any, camera_idx: Any) -> Dict[str, Any]:
    """Joint agent action -> MineRL 1.0 env action dict with all 24 keys.

    Buttons are Python ints (0/1); ``ESC``, ``pickItem`` and ``swapHands`` are always 0; ``camera`` is a
    float32 ``(2,)`` array of degrees (bin centres). Matches the official ``_agent_action_to_env`` (which
    returns only the 20 modelled keys) including the inventory-keeps-camera quirk.

    :param buttons_idx: int in ``[0, 8640]`` (Python/numpy int or a size-1 array/tensor).
    :param camera_idx: int in ``[0, 120]``.
    :raises ValueError: out-of-range index. :raises TypeError: non-integer index.
    """
    b = _index(buttons_idx, "buttons_idx", N_BUTTON_CLASSES)
    c = _index(camera_idx, "camera_idx", N_CAMERA_CLASSES)
    action: Dict[str, Any] = dict.fromkeys(ENV_ACTION_KEYS, 0)
    for name in _JOINT_PRESSED[b]:
        action[name] = 1
    if _JOINT_CAMERA_ON_LIST[b]:
        action["camera"] = np.array(_CAMERA_DEG_LIST[c], dtype=np.float32)
    else:
        action["camera"] = np.zeros(2, dtype=np.float32)
    return action


def _columns_from_dicts(env_actions: Sequence[Mapping[str, Any]]) -> Tuple[np.ndarray, np.ndarray]:
    n = len(env_actions)
    buttons = np.zeros((n, N_BUTTONS), dtype=np.int64)
    cams = np.zeros((n, 2), dtype=np.float64)
    rows = []
    for i, act in enumerate(env_actions):
        pressed, cams[i, 0], cams[i, 1] = _read_env_action(act)
        rows.append(pressed)
    if n:
        buttons[:] = rows
    return buttons, cams


def _columns_from_arrays(columns: Mapping[str, Any]) -> Tuple[np.ndarray, np.ndarray]:
    _check_env_keys(columns)
    lengths = {k: np.shape(v)[0] if np.ndim(v) else None for k, v in columns.items()}
    n_set = {v for v in lengths.values() if v is not None}
    if len(n_set) != 1:
        raise ValueError(f"columnar env actions need one leading batch length for every key, got {lengths}")
    n = n_set.pop()
    buttons = np.zeros((n, N_BUTTONS), dtype=np.int64)
    for key, value in columns.items():
        if key == "camera":
            continue
        col = np.asarray(value).reshape(n)
        if not np.isin(col, (0, 1)).all():
            raise ValueError(f"env action key {key!r} must be 0 or 1, got values {np.unique(col)[:8]}")
        if key in _BUTTON_INDEX:
            buttons[:, _BUTTON_INDEX[key]] = col
    if "camera" in columns:
        cams = np.asarray(columns["camera"], dtype=np.float64)
        if cams.shape != (n, 2):
            raise ValueError(f"columnar 'camera' must have shape ({n}, 2), got {cams.shape}")
        if not np.isfinite(cams).all():
            bad = cams[~np.isfinite(cams)][0]
            raise ValueError(f"env action 'camera' must be finite degrees, got {bad!r}")
    else:
        cams = np.zeros((n, 2))
    return buttons, cams


def env_to_agent_batch(
    env_actions: Union[Sequence[Mapping[str, Any]], Mapping[str, Any]],
) -> Tuple[np.ndarray, np.ndarray]:
    """Many env actions -> joint actions, vectorised.

    :param env_actions: a list of env action dicts, or one *columnar* dict (each button key an ``(N,)``
        array, ``camera`` ``(N, 2)``), which skips the per-dict Python loop.
    :return: ``(buttons_idx, camera_idx)``, int64 arrays of shape ``(N,)``.
    """
    if isinstance(env_actions, Mapping):
        buttons, cams = _columns_from_arrays(env_actions)
    else:
        buttons, cams = _columns_from_dicts(env_actions)
    return factored_to_joint(buttons, discretize_camera(cams))


def agent_to_env_batch(buttons_idx: Any, camera_idx: Any, *, columns: bool = False):
    """Many joint actions -> env actions, vectorised table lookups.

    :param buttons_idx: int array ``(N,)`` in ``[0, 8640]``.
    :param camera_idx: int array ``(N,)`` in ``[0, 120]``.
    :param columns: if True return one columnar dict (each of the 24 keys an ``(N,)`` int64 array,
        ``camera`` float32 ``(N, 2)``) instead of a list of ``N`` dicts as :func:`agent_to_env` gives.
    """
    bi = _index_array(buttons_idx, "buttons_idx", N_BUTTON_CLASSES).reshape(-1)
    ci = _index_array(camera_idx, "camera_idx", N_CAMERA_CLASSES).reshape(-1)
    if bi.shape != ci.shape:
        raise ValueError(f"buttons_idx and camera_idx must have the same length, got {bi.shape} and {ci.shape}")
    pressed = _JOINT_BUTTONS[bi]  # (N, 20)
    cam = np.where(_JOINT_CAMERA_ON[bi][:, None], _CAMERA_DEG[ci], np.float32(0.0)).astype(np.float32)
    if columns:
        out: Dict[str, Any] = {}
        for key in ENV_ACTION_KEYS:
            if key == "camera":
                out[key] = cam
            elif key in _BUTTON_INDEX:
                out[key] = pressed[:, _BUTTON_INDEX[key]].astype(np.int64)
            else:
                out[key] = np.zeros(len(bi), dtype=np.int64)
        return out
    rows = pressed.tolist()
    result = []
    for i, row in enumerate(rows):
        action: Dict[str, Any] = dict.fromkeys(ENV_ACTION_KEYS, 0)
        for j, v in enumerate(row):
            if v:
                action[BUTTONS_ALL[j]] = 1
        action["camera"] = cam[i].copy()
        result.append(action)
    return result


def factored_to_env(buttons: Any, camera_bins: Any) -> Dict[str, Any]:
    """Factored action (IDM output) -> MineRL env action (the official ``ActionTransformer.policy2env``).

    No joint-space rules apply: every pressed button is kept. ``ESC``/``pickItem``/``swapHands`` are 0.

    :param buttons: 0/1 array ``(..., 20)`` in :data:`BUTTONS_ALL` order.
    :param camera_bins: int array ``(..., 2)`` in ``[0, 10]``.
    :return: for one action (``(20,)``, ``(2,)``): Python-int buttons and float32 ``(2,)`` camera; for a
        batch ``(...)``: each button an int64 array of shape ``(...)`` and camera float32 ``(..., 2)``.
    """
    b = np.asarray(buttons)
    c = np.asarray(camera_bins)
    if b.shape[-1:] != (N_BUTTONS,):
        raise ValueError(f"buttons must have shape (..., {N_BUTTONS}), got {b.shape}")
    if c.shape != b.shape[:-1] + (2,):
        raise ValueError(f"camera_bins must have shape {b.shape[:-1] + (2,)}, got {c.shape}")
    if b.size and not np.isin(b, (0, 1)).all():
        raise ValueError("buttons must be 0/1")
    deg = undiscretize_camera(c).astype(np.float32)
    b = b.astype(np.int64)
    batch = b.shape[:-1]
    out: Dict[str, Any] = {}
    for key in ENV_ACTION_KEYS:
        if key == "camera":
            out[key] = deg
        elif key in _BUTTON_INDEX:
            v = b[..., _BUTTON_INDEX[key]]
            out[key] = int(v) if not batch else v
        else:
            out[key] = 0 if not batch else np.zeros(batch, dtype=np.int64)
    return out


def action_space():
    """The joint action space ``gymnasium.spaces.MultiDiscrete([8641, 121])``."""
    return spaces.MultiDiscrete(np.array([N_BUTTON_CLASSES, N_CAMERA_CLASSES], dtype=np.int64))
