"""Hyper-parameters of the VPT networks: :class:`PolicyConfig`, :class:`IDMConfig` and their presets.

The fields are named like the official ``net.args`` kwargs of a ``.model`` file (``from_kwargs`` /
``to_kwargs`` convert). Re-exported by :mod:`vpt_rl.model`, the usual import path.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

__all__ = ["AGENT_RESOLUTION", "IDMConfig", "IDM_PRESETS", "KNOWN_UNUSED_KEYS", "POLICY_PRESETS", "PolicyConfig"]

# Every frame the networks see is RGB at this size, (height, width); square, so it is also cv2's (width,
# height). The official agent resizes with cv2 INTER_LINEAR (agent.py AGENT_RESOLUTION / resize_image).
AGENT_RESOLUTION: Tuple[int, int] = (128, 128)

# Keys that appear in released .model files (or MinecraftPolicy's signature) but have no effect; accepted
# and ignored (openai/Video-Pre-Training: ``lib/policy.py`` ``MinecraftPolicy.__init__``).
KNOWN_UNUSED_KEYS = frozenset(
    {"diff_mlp_embedding", "only_img_input", "active_reward_monitors", "single_output", "input_shape", "first_conv_norm"}
)

# official kwargs whose only supported value is fixed: (key, required value)
_FIXED_KWARGS = {
    "recurrence_type": "transformer",
    "use_pointwise_layer": True,
    "pointwise_use_activation": False,
    "recurrence_is_residual": True,
}


def _parse_norm_kwargs(d: Any, what: str) -> Optional[int]:
    """``init_norm_kwargs`` -> group count (None = no norm)."""
    if not isinstance(d, Mapping):
        raise TypeError(f"{what} must be a dict, got {type(d).__name__}: {d!r}")
    unknown = set(d) - {"batch_norm", "group_norm_groups", "layer_norm"}
    if unknown:
        raise ValueError(f"{what}: unknown keys {sorted(unknown)}; expected batch_norm / group_norm_groups")
    if d.get("batch_norm", False):
        raise ValueError(f"{what}: batch_norm=True is not used by any released VPT model and is not supported")
    g = d.get("group_norm_groups", None)
    if g is None:
        raise ValueError(f"{what}: group_norm_groups=None (no conv norm) is not supported; released models use 1")
    return int(g)


def _parse_impala_kwargs(d: Any, what: str) -> Optional[int]:
    if not isinstance(d, Mapping):
        raise TypeError(f"{what} must be a dict, got {type(d).__name__}: {d!r}")
    unknown = set(d) - {"post_pool_groups"}
    if unknown:
        raise ValueError(f"{what}: unknown keys {sorted(unknown)}; expected only post_pool_groups")
    g = d.get("post_pool_groups", None)
    return None if g is None else int(g)


@dataclass(frozen=True)
class PolicyConfig:
    """Hyper-parameters of the VPT policy net (``MinecraftPolicy``), named like the official kwargs.

    Defaults are ``agent.py``'s ``POLICY_KWARGS`` (the 2x model). Build one from a ``.model`` file's
    ``net.args`` dict with :meth:`from_kwargs`; :meth:`to_kwargs` gives that dict back.
    """

    hidsize: int = 2048
    """transformer width H (1024 / 2048 / 3072 for 1x / 2x / 3x)"""
    impala_width: int = 8
    """multiplier of ``impala_chans``"""
    impala_chans: Tuple[int, ...] = (16, 32, 32)
    """base channels of the three CNN stacks"""
    attention_heads: int = 16
    """heads; head dim = hidsize / heads (128 in every released model)"""
    attention_memory_size: int = 256
    """keys per query in training; memory length ``maxlen = attention_memory_size - timesteps``"""
    timesteps: int = 128
    """training chunk length (only sets ``maxlen``)"""
    n_recurrence_layers: int = 4
    """number of transformer blocks"""
    pointwise_ratio: int = 4
    """MLP expansion factor"""
    img_shape: Tuple[int, int, int] = (*AGENT_RESOLUTION, 3)
    """input (H, W, C) of the CNN"""
    attention_mask_style: str = "clipped_causal"
    """``clipped_causal`` (policy) or ``none`` (IDM: bidirectional, no memory)"""
    post_pool_groups: Optional[int] = 1
    """GroupNorm groups after each max-pool (``impala_kwargs``); None = no norm"""
    group_norm_groups: int = 1
    """GroupNorm groups in front of convs (``init_norm_kwargs``); dense layers get LayerNorm"""
    use_pre_lstm_ln: bool = False
    """LayerNorm before the transformer (False in every released model)"""

    def __post_init__(self):
        for name in ("hidsize", "impala_width", "attention_heads", "n_recurrence_layers", "pointwise_ratio", "timesteps"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.hidsize % self.attention_heads:
            raise ValueError(f"hidsize={self.hidsize} must be divisible by attention_heads={self.attention_heads}")
        if not self.impala_chans:
            raise ValueError(f"impala_chans must be a non-empty sequence, got {self.impala_chans!r}")
        if len(self.img_shape) != 3:
            raise ValueError(f"img_shape must be (H, W, C), got {self.img_shape!r}")
        if self.attention_mask_style not in ("clipped_causal", "none"):
            raise ValueError(f"attention_mask_style must be 'clipped_causal' or 'none', got {self.attention_mask_style!r}")
        if self.attention_memory_size < self.timesteps:
            raise ValueError(
                f"attention_memory_size={self.attention_memory_size} must be >= timesteps={self.timesteps}"
            )
        if self.attention_mask_style == "clipped_causal" and self.maxlen < 1:
            raise ValueError(
                "clipped_causal attention needs attention_memory_size > timesteps (maxlen >= 1), got "
                f"{self.attention_memory_size} and {self.timesteps}"
            )

    @property
    def maxlen(self) -> int:
        """Number of cached past frames per layer (``attention_memory_size - timesteps``)."""
        return self.attention_memory_size - self.timesteps

    @property
    def head_dim(self) -> int:
        return self.hidsize // self.attention_heads

    @property
    def cnn_chans(self) -> Tuple[int, ...]:
        return tuple(int(self.impala_width * c) for c in self.impala_chans)

    # -- official kwargs <-> config --------------------------------------------------------------------
    @classmethod
    def _field_names(cls) -> set:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]):
        """Parse an official ``net.args`` dict. Unknown keys raise ``ValueError``; the known-unused official
        keys (:data:`KNOWN_UNUSED_KEYS`) are ignored; unsupported values of fixed keys raise."""
        if not isinstance(kwargs, Mapping):
            raise TypeError(f"net kwargs must be a dict, got {type(kwargs).__name__}")
        out: Dict[str, Any] = {}
        names = cls._field_names()
        unknown = []
        for k, v in kwargs.items():
            if k in KNOWN_UNUSED_KEYS:
                continue
            if k in _FIXED_KWARGS:
                if v != _FIXED_KWARGS[k]:
                    raise ValueError(f"{k}={v!r} is not supported; only {_FIXED_KWARGS[k]!r} (as in every released model)")
                continue
            if k == "init_norm_kwargs":
                out["group_norm_groups"] = _parse_norm_kwargs(v, k)
            elif k == "impala_kwargs":
                out["post_pool_groups"] = _parse_impala_kwargs(v, k)
            elif k == "conv3d_params" and "conv3d_inchan" in names:
                out.update(_parse_conv3d(v))
            elif k in names and not k.startswith("conv3d_"):
                out[k] = tuple(v) if isinstance(v, list) else v
            else:
                unknown.append(k)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} keys {sorted(unknown)}; expected official net kwargs "
                f"({', '.join(sorted(names))}, init_norm_kwargs, impala_kwargs, ...)"
            )
        return cls(**out)

    def to_kwargs(self) -> Dict[str, Any]:
        """The official ``net.args`` dict (plain Python data) for this config."""
        d: Dict[str, Any] = {
            "attention_heads": self.attention_heads,
            "attention_mask_style": self.attention_mask_style,
            "attention_memory_size": self.attention_memory_size,
            "diff_mlp_embedding": False,
            "hidsize": self.hidsize,
            "img_shape": list(self.img_shape),
            "impala_chans": list(self.impala_chans),
            "impala_kwargs": {"post_pool_groups": self.post_pool_groups},
            "impala_width": self.impala_width,
            "init_norm_kwargs": {"batch_norm": False, "group_norm_groups": self.group_norm_groups},
            "n_recurrence_layers": self.n_recurrence_layers,
            "only_img_input": True,
            "pointwise_ratio": self.pointwise_ratio,
            "pointwise_use_activation": False,
            "recurrence_is_residual": True,
            "recurrence_type": "transformer",
            "timesteps": self.timesteps,
            "use_pointwise_layer": True,
            "use_pre_lstm_ln": self.use_pre_lstm_ln,
        }
        return d

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _parse_conv3d(v: Any) -> Dict[str, Any]:
    if not isinstance(v, Mapping):
        raise TypeError(f"conv3d_params must be a dict, got {type(v).__name__}")
    need = {"inchan", "outchan", "kernel_size", "padding"}
    if set(v) != need:
        raise ValueError(f"conv3d_params must have exactly the keys {sorted(need)}, got {sorted(v)}")
    return {
        "conv3d_inchan": int(v["inchan"]),
        "conv3d_outchan": int(v["outchan"]),
        "conv3d_kernel_size": tuple(int(x) for x in v["kernel_size"]),
        "conv3d_padding": tuple(int(x) for x in v["padding"]),
    }


@dataclass(frozen=True)
class IDMConfig(PolicyConfig):
    """Hyper-parameters of the inverse dynamics model (``InverseActionNet``); defaults = ``4x_idm.model``."""

    hidsize: int = 4096
    impala_width: int = 16
    attention_heads: int = 32
    attention_memory_size: int = 128
    timesteps: int = 128
    n_recurrence_layers: int = 2
    img_shape: Tuple[int, int, int] = (128, 128, 128)
    attention_mask_style: str = "none"
    conv3d_inchan: int = 3
    """channels of the RGB input to the temporal conv"""
    conv3d_outchan: int = 128
    """channels after the temporal conv (= ``img_shape[2]``)"""
    conv3d_kernel_size: Tuple[int, int, int] = (5, 1, 1)
    """temporal conv kernel (T, H, W)"""
    conv3d_padding: Tuple[int, int, int] = (2, 0, 0)
    """temporal conv zero padding"""
    motion_hidden: int = 0
    """width of the optional motion trunk (:class:`MotionStem`, ours, not in any released IDM); 0 = none.
    Written to the ``.model`` args as ``motion_hidden`` only when > 0, so official configs are unchanged"""
    motion_context: int = 0
    """temporal kernel (odd, frames) of a residual conv over the motion trunk's per-pair features, so that a
    frame pair with little texture (sky, a GUI) borrows from its neighbours; 0 = none. Saved as
    ``motion_context`` only when > 0"""

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.motion_hidden, int) or isinstance(self.motion_hidden, bool) or self.motion_hidden < 0:
            raise ValueError(f"motion_hidden must be an int >= 0 (0: no motion trunk), got {self.motion_hidden!r}")
        if not isinstance(self.motion_context, int) or self.motion_context < 0 or (
                self.motion_context and (self.motion_context % 2 == 0 or not self.motion_hidden)):
            raise ValueError(f"motion_context must be 0 or an odd kernel size with a motion trunk (motion_hidden > 0), "
                             f"got {self.motion_context!r}")
        if self.motion_hidden and tuple(self.img_shape[:2]) != (128, 128):
            raise ValueError(f"the motion trunk reads 128x128 frames; img_shape is {self.img_shape}")
        if self.attention_mask_style != "none" or self.maxlen != 0:
            raise ValueError(
                "the IDM is bidirectional without memory: attention_mask_style must be 'none' and "
                f"attention_memory_size == timesteps; got {self.attention_mask_style!r}, "
                f"{self.attention_memory_size} and {self.timesteps}"
            )
        if self.conv3d_outchan != self.img_shape[2]:
            raise ValueError(f"conv3d outchan={self.conv3d_outchan} must equal img_shape[2]={self.img_shape[2]}")

    def to_kwargs(self) -> Dict[str, Any]:
        d = super().to_kwargs()
        for k in ("diff_mlp_embedding",):
            d.pop(k)
        d["single_output"] = True
        d["conv3d_params"] = {
            "inchan": self.conv3d_inchan,
            "kernel_size": list(self.conv3d_kernel_size),
            "outchan": self.conv3d_outchan,
            "padding": list(self.conv3d_padding),
        }
        if self.motion_hidden:
            d["motion_hidden"] = self.motion_hidden
        if self.motion_context:
            d["motion_context"] = self.motion_context
        return d


_FOUNDATION = dict(attention_memory_size=256, timesteps=128, n_recurrence_layers=4)
_P1X = PolicyConfig(hidsize=1024, impala_width=4, attention_heads=8, **_FOUNDATION)
_P2X = PolicyConfig(hidsize=2048, impala_width=8, attention_heads=16, **_FOUNDATION)
_P3X = PolicyConfig(hidsize=3072, impala_width=12, attention_heads=24, **_FOUNDATION)

POLICY_PRESETS: Dict[str, PolicyConfig] = {
    # released configs (the ``net.args`` of the released .model files); fine-tuned weights reuse the model of their width
    "foundation-model-1x": _P1X,
    "foundation-model-2x": _P2X,
    "2x": _P2X,
    "foundation-model-3x": _P3X,
    "bc-early-game-2x": _P2X,
    "bc-house-3x": _P3X,
    "bc-early-game-3x": _P3X,
    "rl-from-foundation-2x": _P2X,
    "rl-from-house-2x": _P2X,
    "rl-from-early-game-2x": _P2X,
    # small CPU presets. "micro" is the config of the official-code test fixture (policy.model).
    "tiny": PolicyConfig(
        hidsize=128, impala_width=1, impala_chans=(16, 32, 32), attention_heads=4,
        attention_memory_size=96, timesteps=32, n_recurrence_layers=2,
    ),
    "micro": PolicyConfig(
        hidsize=32, impala_width=1, impala_chans=(4, 8, 8), attention_heads=2,
        attention_memory_size=12, timesteps=8, n_recurrence_layers=2,
    ),
    # between micro and tiny: twice micro's width and 32 frames of memory, 1.4x micro's BC step time on CPU
    "mini": PolicyConfig(
        hidsize=64, impala_width=1, impala_chans=(8, 16, 16), attention_heads=4,
        attention_memory_size=48, timesteps=16, n_recurrence_layers=2,
    ),
}

IDM_PRESETS: Dict[str, IDMConfig] = {
    "4x_idm": IDMConfig(),
    "tiny_idm": IDMConfig(
        hidsize=128, impala_width=1, impala_chans=(8, 16, 16), attention_heads=4, attention_memory_size=32,
        timesteps=32, n_recurrence_layers=2, img_shape=(128, 128, 16), conv3d_outchan=16,
    ),
    # the official-code IDM test fixture (idm.model)
    "micro_idm": IDMConfig(
        hidsize=64, impala_width=1, impala_chans=(4, 8, 8), attention_heads=4, attention_memory_size=8,
        timesteps=8, n_recurrence_layers=2, img_shape=(128, 128, 8), conv3d_outchan=8,
    ),
}
# micro_idm with the motion trunk (MotionStem): reads the camera from image motion (docs/idm.md)
IDM_PRESETS["micro_idm_motion"] = IDM_PRESETS["micro_idm"].replace(motion_hidden=256)
IDM_PRESETS["micro_idm_motion_ctx"] = IDM_PRESETS["micro_idm"].replace(motion_hidden=256, motion_context=5)
IDM_PRESETS["tiny_idm_motion"] = IDM_PRESETS["tiny_idm"].replace(motion_hidden=256)
