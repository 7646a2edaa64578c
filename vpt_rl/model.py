"""The VPT policy and inverse dynamics (IDM) networks, weight-compatible with OpenAI's released files.

Read top to bottom: configs and presets -> FanIn layers -> ImpalaCNN -> masked attention and the
residual transformer blocks -> heads and value normaliser -> :class:`PolicyNet` / :class:`IDMNet` ->
state helpers -> sampling and distribution helpers.

Every attribute path reproduces the official ``state_dict`` key names (``net.img_process.cnn.stacks.0
.firstconv.layer.weight``, ``net.recurrent_layer.blocks.0.r.orc_block.q_layer.weight``, ...), so the
released ``.weights`` files load with ``load_state_dict(sd, strict=True)``. Odd names such as
``orc_block`` and ``pre_lstm_ln`` are kept for that reason only. Numerics follow
``../shared/spec/VPT_SPEC.md`` (sections 1 and 6); quirks kept for parity are tagged ``# parity:``.

One deliberate difference from the official code: an episode start (``first=True``) anywhere inside a
chunk cuts the memory at that frame (the official code reads only ``first[:, 0]``). With flags at chunk
starts only, both agree exactly.

Example::

    >>> import torch
    >>> from vpt_rl.model import PolicyNet, POLICY_PRESETS, sample_action
    >>> net = PolicyNet(POLICY_PRESETS["micro"], temperature=2.0).eval()
    >>> state = net.initial_state(1)
    >>> img = torch.zeros(1, 1, 128, 128, 3, dtype=torch.uint8)
    >>> logp, vpred, state = net(img, torch.ones(1, 1, dtype=torch.bool), state)
    >>> logp["buttons"].shape, logp["camera"].shape, vpred.shape
    (torch.Size([1, 1, 8641]), torch.Size([1, 1, 121]), torch.Size([1, 1]))
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vpt_rl.actions import (
    _JOINT_GROUP_DIGITS,
    BUTTON_GROUPS,
    INVENTORY_BUTTONS,
    N_BUTTON_CLASSES,
    N_BUTTONS,
    N_CAMERA_BINS,
    N_CAMERA_CLASSES,
    NULL_CAMERA,
    factored_to_env,
)
from vpt_rl.cpu_kernels import (
    BLOCK_DEFAULTS,
    ConvPackCache,
    FastPaths,
    group_norm_nchw,
    nnpack_applies,
    nnpack_conv,
    nnpack_eligible,
    prepack_applies,
    prepacked_conv,
)

__all__ = [
    "PolicyConfig",
    "IDMConfig",
    "POLICY_PRESETS",
    "IDM_PRESETS",
    "KNOWN_UNUSED_KEYS",
    "PolicyNet",
    "IDMNet",
    "State",
    "state_index",
    "state_cat",
    "state_detach",
    "state_to",
    "state_reset",
    "sample_action",
    "action_log_prob",
    "entropy",
    "kl_divergence",
    "idm_argmax",
    "idm_to_env_actions",
    "consistent_argmax",
    "N_BUTTON_CLASSES",
    "N_CAMERA_CLASSES",
]

# N_BUTTON_CLASSES and N_CAMERA_CLASSES (the policy heads' sizes) live in vpt_rl.actions and are re-exported here.
N_IDM_BUTTONS = N_BUTTONS  # the IDM predicts each of lib/actions.py Buttons.ALL on its own
N_IDM_CAMERA_BINS = N_CAMERA_BINS  # ... and each camera axis's mu-law bin
NBASIS = 10  # lib/xf.py SelfAttentionLayer relattn nbasis
MASK_VALUE = -1e9  # lib/xf.py attention(): bias = -1e9 * ~mask
EWMA_BETA = 0.99999  # lib/scaled_mse_head.py NormalizeEwma(beta)
EWMA_EPS = 1e-5  # lib/normalize_ewma.py epsilon
VAR_MIN = 1e-2  # lib/normalize_ewma.py running_mean_var clamp

# Keys that appear in released .model files (or MinecraftPolicy's signature) but have no effect; accepted
# and ignored (VPT_SPEC.md section 2.2).
KNOWN_UNUSED_KEYS = frozenset(
    {"diff_mlp_embedding", "only_img_input", "active_reward_monitors", "single_output", "input_shape", "first_conv_norm"}
)


# ----------------------------------------------------------------------------------------------------------
# Configs
# ----------------------------------------------------------------------------------------------------------

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
    img_shape: Tuple[int, int, int] = (128, 128, 3)
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
    # released configs (VPT_SPEC.md section 2.2); fine-tuned weights reuse the model of their width
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
    # small CPU presets. "micro" is the config of the official-code fixture (shared/fixtures/vpt/policy.model).
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
    # the official-code IDM fixture (shared/fixtures/vpt/idm.model)
    "micro_idm": IDMConfig(
        hidsize=64, impala_width=1, impala_chans=(4, 8, 8), attention_heads=4, attention_memory_size=8,
        timesteps=8, n_recurrence_layers=2, img_shape=(128, 128, 8), conv3d_outchan=8,
    ),
}
# micro_idm with the motion trunk (MotionStem): reads the camera from image motion (docs/idm.md)
IDM_PRESETS["micro_idm_motion"] = IDM_PRESETS["micro_idm"].replace(motion_hidden=256)
IDM_PRESETS["micro_idm_motion_ctx"] = IDM_PRESETS["micro_idm"].replace(motion_hidden=256, motion_context=5)
IDM_PRESETS["tiny_idm_motion"] = IDM_PRESETS["tiny_idm"].replace(motion_hidden=256)


# ----------------------------------------------------------------------------------------------------------
# FanIn layers (lib/util.py FanInInitReLULayer): optional PRE-norm -> layer -> optional ReLU
# ----------------------------------------------------------------------------------------------------------


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` (same parameters and keys) that runs on a fixed memory layout.

    PyTorch's float32 GroupNorm gives slightly different results on channels-last and on contiguous
    memory (the channels-last kernel uses a one-pass variance, ~1e-5 relative). The official code runs the
    policy CNN on channels-last memory (its HWC -> CHW permute is a view) and the batch-1 IDM on contiguous
    memory, so each network pins the layout the official code used: parity to ~1e-6 instead of ~3e-5.
    With autograd on (training) the layout is always channels-last: parity does not matter there, and the
    backward pass of small-channel convolutions is 3-4x faster on channels-last memory.
    """

    channels_last: bool = True

    def forward(self, x: torch.Tensor, fast: FastPaths = BLOCK_DEFAULTS) -> torch.Tensor:
        if x.dim() != 4 or not (self.channels_last or torch.is_grad_enabled()):
            return F.group_norm(x.contiguous(), self.num_groups, self.weight, self.bias, self.eps)
        if x.is_contiguous(memory_format=torch.channels_last) or not (fast.winograd and nnpack_eligible(x)):
            return F.group_norm(x.contiguous(memory_format=torch.channels_last), self.num_groups, self.weight,
                                self.bias, self.eps)
        # the batch-1 NNPACK path (already ~1e-5 off) stays on contiguous memory
        return group_norm_nchw(x, self)


def _fan_in_rescale_(weight: torch.Tensor, scale: float) -> None:
    """Rescale each output unit's weight slice to L2 norm ``scale`` (official init)."""
    with torch.no_grad():
        norms = weight.flatten(1).norm(dim=1).clamp_min(1e-12)
        weight.mul_((scale / norms).view(-1, *([1] * (weight.dim() - 1))))


class FanInLayer(nn.Module):
    """``norm (on the input) -> conv/linear -> ReLU``; the layer has a bias only when there is no norm.

    Keys: ``norm.{weight,bias}`` (if norm), ``layer.weight``, ``layer.bias`` (if no norm).
    """

    def __init__(self, kind: str, inchan: int, outchan: int, *, norm: Optional[str] = None, groups: int = 1,
                 init_scale: float = 1.0, activation: bool = True, **layer_kwargs):
        super().__init__()
        if norm == "group":
            self.norm = GroupNorm(groups, inchan)
        elif norm == "layer":
            self.norm = nn.LayerNorm(inchan)
        elif norm is None:
            self.norm = None
        else:  # pragma: no cover - internal
            raise ValueError(f"norm must be 'group', 'layer' or None, got {norm!r}")
        bias = self.norm is None
        if kind == "conv":
            self.layer = nn.Conv2d(inchan, outchan, bias=bias, **layer_kwargs)
        elif kind == "conv3d":
            self.layer = nn.Conv3d(inchan, outchan, bias=bias, **layer_kwargs)
        elif kind == "linear":
            self.layer = nn.Linear(inchan, outchan, bias=bias)
        else:  # pragma: no cover - internal
            raise ValueError(f"kind must be conv, conv3d or linear, got {kind!r}")
        self.activation = activation
        self._packed = ConvPackCache()  # the reordered weight of the prepacked path (FastPaths.prepack); not state
        _fan_in_rescale_(self.layer.weight, init_scale)
        if self.layer.bias is not None:
            nn.init.zeros_(self.layer.bias)

    def forward(self, x: torch.Tensor, fast: FastPaths = BLOCK_DEFAULTS) -> torch.Tensor:
        if isinstance(self.norm, GroupNorm):
            x = self.norm(x, fast)
        elif self.norm is not None:
            x = self.norm(x)
        conv2d = isinstance(self.layer, nn.Conv2d)  # the CPU fast paths are for 2D convolutions only
        if conv2d and fast.winograd and nnpack_applies(x, self.layer):
            x = nnpack_conv(x, self.layer)
        elif conv2d and fast.prepack and prepack_applies(x, self.layer):
            return prepacked_conv(self._packed, self.layer, x, self.activation)  # ReLU fused in
        else:
            x = self.layer(x)
        return F.relu(x, inplace=True) if self.activation else x


# ----------------------------------------------------------------------------------------------------------
# ImpalaCNN (lib/impala_cnn.py)
# ----------------------------------------------------------------------------------------------------------


class CnnBasicBlock(nn.Module):
    """``x + conv1(conv0(x))``, each conv = GroupNorm -> conv3x3 (no bias) -> ReLU; no ReLU after the sum."""

    def __init__(self, chan: int, init_scale: float, groups: int):
        super().__init__()
        s = math.sqrt(init_scale)
        self.conv0 = FanInLayer("conv", chan, chan, norm="group", groups=groups, init_scale=s, kernel_size=3, padding=1)
        self.conv1 = FanInLayer("conv", chan, chan, norm="group", groups=groups, init_scale=s, kernel_size=3, padding=1)

    def forward(self, x, fast: FastPaths = BLOCK_DEFAULTS):
        return x + self.conv1(self.conv0(x, fast), fast)


class CnnDownStack(nn.Module):
    """firstconv (3x3) -> max-pool 3/2 -> GroupNorm ``n`` -> ``nblock`` basic blocks."""

    def __init__(self, inchan: int, outchan: int, nblock: int, init_scale: float, first_conv_norm: bool,
                 groups: int, post_pool_groups: Optional[int]):
        super().__init__()
        self.firstconv = FanInLayer("conv", inchan, outchan, norm="group" if first_conv_norm else None,
                                    groups=groups, kernel_size=3, padding=1)
        self.n = GroupNorm(post_pool_groups, outchan) if post_pool_groups is not None else None
        block_scale = init_scale / math.sqrt(nblock)
        self.blocks = nn.ModuleList(CnnBasicBlock(outchan, block_scale, groups) for _ in range(nblock))

    def forward(self, x, fast: FastPaths = BLOCK_DEFAULTS):
        x = self.firstconv(x, fast)
        if fast.fast_pool:  # CPU max-pool is ~10x faster on channels-last memory (and exact either way)
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        if fast.winograd and nnpack_eligible(x):
            x = x.contiguous()  # the batch-1 NNPACK path runs on contiguous (NCHW) memory
        if self.n is not None:
            x = self.n(x, fast)
        for block in self.blocks:
            x = block(x, fast)
        return x


class ImpalaCNN(nn.Module):
    """(B, T, H, W, C) float -> (B, T, 256). Three down-stacks, flatten (C, H, W), LayerNorm -> dense -> ReLU.

    ``fast`` (a frozen :class:`~vpt_rl.cpu_kernels.FastPaths`, replaced by the network's ``set_fast``) selects
    the CPU fast paths of every layer below.
    """

    def __init__(self, img_shape: Sequence[int], chans: Sequence[int], first_conv_norm: bool, groups: int,
                 post_pool_groups: Optional[int], nblock: int = 2, outsize: int = 256):
        super().__init__()
        h, w, c = img_shape
        stacks = []
        for i, outchan in enumerate(chans):
            stacks.append(CnnDownStack(c, outchan, nblock, math.sqrt(len(chans)), first_conv_norm or i > 0,
                                       groups, post_pool_groups))
            c, h, w = outchan, (h + 1) // 2, (w + 1) // 2
        self.stacks = nn.ModuleList(stacks)
        self.dense = FanInLayer("linear", c * h * w, outsize, norm="layer", init_scale=1.4)
        # parity: memory layout of the official run (policy: channels-last; batch-1 IDM: contiguous)
        self.channels_last = not first_conv_norm
        for m in self.modules():
            if isinstance(m, GroupNorm):
                m.channels_last = self.channels_last
        self.fast = BLOCK_DEFAULTS

    def forward(self, x_bthwc: torch.Tensor) -> torch.Tensor:
        b, t = x_bthwc.shape[:2]
        x = x_bthwc.reshape(b * t, *x_bthwc.shape[2:])
        mb = self.fast.micro_batch  # frames per CNN pass without autograd (cache-friendly; 0 = all at once)
        if torch.is_grad_enabled() or not mb or b * t <= mb:
            feats = self._stacks(x)
        else:  # frames are independent: same numbers, activations of mb frames instead of B*T
            feats = torch.cat([self._stacks(x[i:i + mb]) for i in range(0, b * t, mb)])
        return self.dense(feats.view(b, t, -1))

    def _stacks(self, x_nhwc: torch.Tensor) -> torch.Tensor:
        x = x_nhwc.permute(0, 3, 1, 2)  # NCHW view of NHWC memory, as the official code
        if not self.channels_last and not torch.is_grad_enabled():  # training: channels-last (GroupNorm doc)
            x = x.contiguous()
        for stack in self.stacks:
            x = stack(x, self.fast)
        return x.reshape(x.shape[0], -1)  # flatten over (C, H, W), C-major, as the official code


class ImgObsProcess(nn.Module):
    """``cnn`` -> ``linear`` (LayerNorm(256) -> Linear(256 -> H, no bias) -> ReLU)."""

    def __init__(self, cfg: PolicyConfig, first_conv_norm: bool):
        super().__init__()
        self.cnn = ImpalaCNN(cfg.img_shape, cfg.cnn_chans, first_conv_norm, cfg.group_norm_groups, cfg.post_pool_groups)
        self.linear = FanInLayer("linear", 256, cfg.hidsize, norm="layer", init_scale=1.0)

    def forward(self, x):
        return self.linear(self.cnn(x))


# ----------------------------------------------------------------------------------------------------------
# Masked attention (lib/masked_attention.py, lib/xf.py) and the residual transformer blocks
# ----------------------------------------------------------------------------------------------------------

State = List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
"""Per transformer layer ``(mask (B, maxlen) bool, k (B, maxlen, H), v (B, maxlen, H))``; mask True = a valid
cached frame (oldest first). An all-False mask is an empty memory."""


def _normed_linear(inchan: int, outchan: int, scale: float, bias: bool = True) -> nn.Linear:
    layer = nn.Linear(inchan, outchan, bias=bias)
    _fan_in_rescale_(layer.weight, scale)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def clipped_causal_visibility(first_bt: torch.Tensor, mask_bm: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Which keys each query may attend to, and the memory mask to carry forward.

    Keys are the ``M`` cached frames (oldest first) followed by the ``t`` chunk frames. Key ``j`` is
    visible to query ``i`` iff ``0 <= d <= M - 1`` with ``d`` the distance back in time, the key is valid
    (cached: ``mask_bm`` True; chunk frames always), and no episode start lies in ``(j, i]``.

    :param first_bt: bool (B, t) episode-start flags of the chunk.
    :param mask_bm: bool (B, M) validity of the cached frames.
    :return: ``visible`` bool (B, t, M + t) and the new memory mask bool (B, M).
    """
    b, t = first_bt.shape
    m = mask_bm.shape[1]
    dev = first_bt.device
    i = torch.arange(t, device=dev).view(t, 1)
    j = torch.arange(m + t, device=dev).view(1, m + t)
    d = (m + i) - j
    band = (d >= 0) & (d < m)  # (t, T)
    seg_chunk = torch.cumsum(first_bt.to(torch.int32), dim=1)  # (B, t): episode index within the chunk
    seg = torch.cat([torch.zeros(b, m, dtype=seg_chunk.dtype, device=dev), seg_chunk], dim=1)  # (B, T)
    valid = torch.cat([mask_bm, torch.ones(b, t, dtype=torch.bool, device=dev)], dim=1)  # (B, T)
    visible = band.unsqueeze(0) & valid.unsqueeze(1) & (seg.unsqueeze(1) == seg_chunk.unsqueeze(2))
    new_mask = (valid & (seg == seg_chunk[:, -1:]))[:, t:] if m else mask_bm
    return visible, new_mask


class SelfAttentionLayer(nn.Module):
    """Multi-head self-attention with a KV cache and a relative-position bias (lib/xf.py, ``norm="none"``).

    ``out = x + proj(softmax(bias + (1/hd) Q K^T) V)`` with ``bias = -1e9 * ~visible + sum_n R b_nd[n, d]``
    (``R = r_layer(x)``, ``d`` = distance back). The residual is added to the (already normalised) input.
    """

    def __init__(self, hidsize: int, heads: int, maxlen: int, init_scale: float):
        super().__init__()
        self.heads, self.maxlen = heads, maxlen
        self.head_dim = hidsize // heads
        self.b_nd = nn.Parameter(torch.randn(NBASIS, maxlen) * 0.2)  # parity: registered before the linears
        self.q_layer = _normed_linear(hidsize, hidsize, 0.1)
        self.k_layer = _normed_linear(hidsize, hidsize, 0.2, bias=False)
        self.v_layer = _normed_linear(hidsize, hidsize, math.sqrt(init_scale), bias=False)
        self.proj_layer = _normed_linear(hidsize, hidsize, math.sqrt(init_scale))
        self.r_layer = _normed_linear(hidsize, NBASIS * heads, 0.1)

    def _rel_bias(self, x_btc: torch.Tensor, t: int, total: int) -> torch.Tensor:
        """(B, h, t, T) relative-position logits; zero outside ``0 <= d < maxlen``."""
        b = x_btc.shape[0]
        m = self.maxlen
        r = self.r_layer(x_btc).float().view(b, t, self.heads, NBASIS).transpose(1, 2)  # (B, h, t, n)
        rb = torch.matmul(r, self.b_nd.float())  # (B, h, t, maxlen): coefficient for distance d
        dev = x_btc.device
        d = (total - t + torch.arange(t, device=dev).view(t, 1)) - torch.arange(total, device=dev).view(1, total)
        in_band = (d >= 0) & (d < m)
        extra = rb.gather(-1, d.clamp(0, m - 1).expand(b, self.heads, t, total))
        return extra * in_band

    def forward(self, x_btc: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                visible: Optional[torch.Tensor], fast: FastPaths = BLOCK_DEFAULTS,
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, c = x_btc.shape
        h, hd = self.heads, self.head_dim
        q = self.q_layer(x_btc)
        k = self.k_layer(x_btc)
        v = self.v_layer(x_btc)
        if self.maxlen:
            k = torch.cat([k_cache.to(k.dtype), k], dim=1)
            v = torch.cat([v_cache.to(v.dtype), v], dim=1)
            new_k, new_v = k[:, -self.maxlen:], v[:, -self.maxlen:]
        else:
            new_k, new_v = k_cache, v_cache
        total = k.shape[1]
        q_bhtd = q.view(b, t, h, hd).transpose(1, 2).float()
        k_bhtd = k.view(b, total, h, hd).transpose(1, 2).float()
        v_bhtd = v.view(b, total, h, hd).transpose(1, 2)
        bias = None
        if visible is not None:
            bias = torch.zeros(b, 1, t, total, dtype=torch.float32, device=x_btc.device)
            bias.masked_fill_(~visible.unsqueeze(1), MASK_VALUE)
            if self.maxlen:
                bias = bias + self._rel_bias(x_btc, t, total)
        if fast.sdpa:
            a = F.scaled_dot_product_attention(q_bhtd, k_bhtd, v_bhtd.to(q_bhtd.dtype), attn_mask=bias, scale=1.0 / hd)
        else:  # the official formula, for reference: baddbmm(bias, Q, K^T, alpha=1/hd) in float32
            logits = torch.matmul(q_bhtd, k_bhtd.transpose(-1, -2)) * (1.0 / hd)
            if bias is not None:
                logits = logits + bias
            a = torch.matmul(torch.softmax(logits, dim=-1), v_bhtd.to(logits.dtype))
        a = a.to(x_btc.dtype).transpose(1, 2).reshape(b, t, c)
        return x_btc + self.proj_layer(a), new_k, new_v


class MaskedAttention(nn.Module):
    """Holds ``orc_block`` (the name is kept for the official state-dict keys) and the mask style."""

    def __init__(self, hidsize: int, heads: int, maxlen: int, mask_style: str, init_scale: float):
        super().__init__()
        self.mask_style = mask_style
        self.orc_block = SelfAttentionLayer(hidsize, heads, maxlen, init_scale)

    def forward(self, x, first_bt, layer_state, fast: FastPaths = BLOCK_DEFAULTS):
        mask, k_cache, v_cache = layer_state
        if self.mask_style == "clipped_causal":
            visible, new_mask = clipped_causal_visibility(first_bt, mask)
        else:  # "none": bidirectional, no memory (IDM)
            visible, new_mask = None, mask
        out, new_k, new_v = self.orc_block(x, k_cache, v_cache, visible, fast)
        return out, (new_mask, new_k, new_v)


class ResidualRecurrentBlock(nn.Module):
    """``y = pre_r_ln(x); y = y + attn(y); return y + mlp1(mlp0(y))``.

    parity: lib/util.py ResidualRecurrentBlock -- the raw block input ``x`` is NOT added back (the residual
    flag only applies to LSTMs).
    """

    def __init__(self, cfg: PolicyConfig, init_scale: float):
        super().__init__()
        hsz = cfg.hidsize
        self.mlp0 = FanInLayer("linear", hsz, hsz * cfg.pointwise_ratio, norm="layer", init_scale=1.0)
        self.mlp1 = FanInLayer("linear", hsz * cfg.pointwise_ratio, hsz, init_scale=init_scale, activation=False)
        self.pre_r_ln = nn.LayerNorm(hsz)
        self.r = MaskedAttention(hsz, cfg.attention_heads, cfg.maxlen, cfg.attention_mask_style, init_scale)

    def forward(self, x, first_bt, layer_state, fast: FastPaths = BLOCK_DEFAULTS):
        y = self.pre_r_ln(x)
        y, layer_state = self.r(y, first_bt, layer_state, fast)
        return y + self.mlp1(self.mlp0(y)), layer_state


class ResidualRecurrentBlocks(nn.Module):
    """The transformer blocks; ``fast`` (see :class:`ImpalaCNN`) selects the attention kernel."""

    def __init__(self, cfg: PolicyConfig):
        super().__init__()
        n = cfg.n_recurrence_layers
        init_scale = n ** -0.5 * 2 ** -0.5
        self.blocks = nn.ModuleList(ResidualRecurrentBlock(cfg, init_scale) for _ in range(n))
        self.fast = BLOCK_DEFAULTS

    def forward(self, x, first_bt, state: State):
        if len(state) != len(self.blocks):
            raise ValueError(f"state has {len(state)} layers, the network has {len(self.blocks)}")
        new_state = []
        for block, layer_state in zip(self.blocks, state):
            x, layer_state = block(x, first_bt, layer_state, self.fast)
            new_state.append(layer_state)
        return x, new_state


# ----------------------------------------------------------------------------------------------------------
# Heads (lib/action_head.py, lib/scaled_mse_head.py, lib/normalize_ewma.py)
# ----------------------------------------------------------------------------------------------------------


class CategoricalHead(nn.Module):
    """``linear_layer`` -> reshape ``(..., *shape, n)`` -> divide by temperature -> log_softmax (float32)."""

    def __init__(self, hidsize: int, shape: Tuple[int, ...], n: int):
        super().__init__()
        self.shape, self.n = shape, n
        self.linear_layer = nn.Linear(hidsize, int(math.prod(shape)) * n)  # PyTorch default init, as official

    def forward(self, x, temperature: float, extra_logits: Optional[torch.Tensor] = None):
        logits = self.linear_layer(x).view(*x.shape[:-1], *self.shape, self.n)
        if extra_logits is not None:  # the IDM's motion trunk (not in the official code)
            logits = logits + extra_logits
        return torch.log_softmax(logits.float() / temperature, dim=-1)


class NormalizeEwma(nn.Module):
    """Running mean/variance of the value targets (non-trainable parameters, in the state dict)."""

    def __init__(self, beta: float = EWMA_BETA, epsilon: float = EWMA_EPS):
        super().__init__()
        self.beta, self.epsilon = beta, epsilon
        self.running_mean = nn.Parameter(torch.zeros(1), requires_grad=False)
        self.running_mean_sq = nn.Parameter(torch.zeros(1), requires_grad=False)
        self.debiasing_term = nn.Parameter(torch.tensor(0.0), requires_grad=False)

    def mean_var(self) -> Tuple[torch.Tensor, torch.Tensor]:
        debias = self.debiasing_term.clamp(min=self.epsilon)
        mean = self.running_mean / debias
        var = (self.running_mean_sq / debias - mean ** 2).clamp(min=VAR_MIN)
        return mean, var

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.mean_var()
        return (x - mean) / torch.sqrt(var)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.mean_var()
        return x * torch.sqrt(var) + mean

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.detach().to(self.running_mean.dtype)
        w = self.beta
        self.running_mean.mul_(w).add_((1 - w) * x.mean())
        self.running_mean_sq.mul_(w).add_((1 - w) * (x ** 2).mean())
        self.debiasing_term.mul_(w).add_(1 - w)


class ScaledMSEHead(nn.Module):
    def __init__(self, hidsize: int):
        super().__init__()
        self.linear = nn.Linear(hidsize, 1)
        self.normalizer = NormalizeEwma()

    def forward(self, x):
        return self.linear(x)[..., 0]


# ----------------------------------------------------------------------------------------------------------
# The networks
# ----------------------------------------------------------------------------------------------------------


class MotionStem(nn.Module):
    """A motion trunk for the IDM (ours; no released IDM has one): image motion between frames t and t+1.

    The camera action of line t shows as a shift of the image between frames t and t+1 (about 1 px per
    degree of yaw and 1.6 px per degree of pitch at 128x128). A plain IDM learns to read this slowly and,
    on scripted play, prefers to guess the turn from the scene (docs/experiments/2026-12-02-idm-camera.md).
    This trunk hands it the evidence directly, as optical-flow networks do with a cost volume:

    1. **Cost volume (fixed, no parameters).** Both frames to grey, 2x2 average-pooled to 64x64. A
       reference window of frame t (rows 12..50, columns 8..55) is compared with frame t+1 shifted by every
       ``dy`` in -12..12 and ``dx`` in -8..8 (425 shifts): the mean absolute difference, averaged
       separately over a 3x3 grid of regions of the window, then z-scored per region over its 425 shifts.
       That is 9 x 25 x 17 = 3825 numbers per frame; the last frame of a window (no t+1) gets zeros.
    2. **MLP** 3825 -> ``hidden`` -> ``hidden`` (ReLU), one frame pair at a time, with two outputs:
       ``embed`` (``hidsize`` numbers added to frame t's image embedding before the attention layers),
       ``camera`` (2 x 11 logits added to the camera head's logits) and ``buttons`` (20 x 2 logits added to
       the buttons head's: walking shows as the regions' shifts spreading apart); both zero at init.

    3. Optionally (``context`` = ``IDMConfig.motion_context`` > 0) a residual temporal conv over the window's
       per-pair features before the outputs, zero at init: a pair with little texture (sky, a GUI) can
       borrow from its neighbours.

    Keys: ``motion.mlp.{0,2}.*``, ``motion.embed.*``, ``motion.camera.*``, ``motion.buttons.*`` (and
    ``motion.context.*``).
    """

    FRAME_SHAPE = (128, 128)
    SHIFTS_Y, SHIFTS_X = 12, 8  # dy in -12..12, dx in -8..8 (64x64 pixels)
    WIN_Y, WIN_X = (12, 51), (8, 56)  # reference window rows / columns (64x64 pixels)
    GRID = 3
    N_FEATURES = GRID * GRID * (2 * SHIFTS_Y + 1) * (2 * SHIFTS_X + 1)  # 3825

    def __init__(self, hidden: int, hidsize: int, context: int = 0):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(self.N_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.context = None
        if context:
            self.context = nn.Conv1d(hidden, hidden, context, padding=context // 2)
            nn.init.zeros_(self.context.weight)  # starts as the per-pair trunk
            nn.init.zeros_(self.context.bias)
        self.embed = nn.Linear(hidden, hidsize)
        self.camera = nn.Linear(hidden, 2 * N_IDM_CAMERA_BINS)
        self.buttons = nn.Linear(hidden, N_IDM_BUTTONS * 2)
        for layer in (self.camera, self.buttons):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @classmethod
    @torch.no_grad()
    def cost_volume(cls, img: torch.Tensor) -> torch.Tensor:
        """uint8 (B, T, 128, 128, 3) -> float32 (B, T, 3825) z-scored matching costs (see the class doc)."""
        b, t, h, w, _ = img.shape
        out = torch.zeros(b, t, cls.N_FEATURES, device=img.device)
        if t < 2:
            return out
        weights = torch.tensor([0.299, 0.587, 0.114], device=img.device) / 255.0
        grey = (img.reshape(b * t, h, w, 3).to(torch.float32) @ weights).view(b * t, 1, h, w)
        grey = F.avg_pool2d(grey, 2).view(b, t, h // 2, w // 2)
        cur, nxt = grey[:, :-1].reshape(-1, h // 2, w // 2), grey[:, 1:].reshape(-1, h // 2, w // 2)
        (y0, y1), (x0, x1) = cls.WIN_Y, cls.WIN_X
        ref = cur[:, y0:y1, x0:x1]  # (N, 39, 48)
        ny, nx, g = y1 - y0, x1 - x0, cls.GRID
        sx = cls.SHIFTS_X
        costs = []
        for dy in range(-cls.SHIFTS_Y, cls.SHIFTS_Y + 1):
            rows = nxt[:, y0 + dy:y1 + dy, x0 - sx:x1 + sx]  # (N, 39, 48 + 2 sx)
            cand = rows.unfold(2, nx, 1)  # (N, 39, 17, 48): dx = index - sx
            diff = (cand - ref.unsqueeze(2)).abs()
            diff = diff.view(-1, g, ny // g, 2 * sx + 1, g, nx // g).mean(dim=(2, 5))  # (N, g, 17, g)
            costs.append(diff.permute(0, 1, 3, 2).reshape(-1, g * g, 2 * sx + 1))
        vol = torch.stack(costs, dim=2)  # (N, 9, 25, 17)
        flat = vol.reshape(vol.shape[0], g * g, -1)
        flat = (flat - flat.mean(-1, keepdim=True)) / (flat.std(-1, keepdim=True) + 1e-5)
        out[:, :-1] = flat.reshape(b, t - 1, -1)
        return out

    def forward(self, img: torch.Tensor, volume: Optional[torch.Tensor] = None):
        """:return: ``(embed (B, T, hidsize), camera logits (B, T, 2, 11), button logits (B, T, 20, 2))`` for a
        uint8 window, or from a precomputed :meth:`cost_volume` ``volume``."""
        if volume is None:
            volume = self.cost_volume(img)
        h = self.mlp(volume)
        if self.context is not None:  # residual temporal conv over the window, (B, T, H) -> (B, T, H)
            h = h + F.relu(self.context(h.transpose(-1, -2))).transpose(-1, -2)
        return (self.embed(h), self.camera(h).view(*h.shape[:-1], 2, N_IDM_CAMERA_BINS),
                self.buttons(h).view(*h.shape[:-1], N_IDM_BUTTONS, 2))


class MinecraftPolicy(nn.Module):
    """The trunk (``net.*``): /255 -> ImpalaCNN -> linear -> transformer blocks -> ReLU -> lastlayer -> final_ln."""

    def __init__(self, cfg: PolicyConfig, idm: bool = False):
        super().__init__()
        self.cfg, self.idm = cfg, idm
        self.img_process = ImgObsProcess(cfg, first_conv_norm=idm)
        self.pre_lstm_ln = nn.LayerNorm(cfg.hidsize) if cfg.use_pre_lstm_ln else None
        self.recurrent_layer = ResidualRecurrentBlocks(cfg)
        self.lastlayer = FanInLayer("linear", cfg.hidsize, cfg.hidsize, norm="layer", init_scale=1.0)
        self.final_ln = nn.LayerNorm(cfg.hidsize)
        if idm:
            ic = cfg  # type: IDMConfig
            self.conv3d_layer = FanInLayer("conv3d", ic.conv3d_inchan, ic.conv3d_outchan, init_scale=1.0,
                                           kernel_size=ic.conv3d_kernel_size, padding=ic.conv3d_padding)

    @property
    def fast(self) -> FastPaths:
        """The CPU fast paths in use (the CNN and the transformer hold the same frozen object)."""
        return self.img_process.cnn.fast

    def set_fast_paths(self, fast: FastPaths) -> None:
        """Hand ``fast`` to the two parts that read it and empty the cached prepacked conv weights."""
        self.img_process.cnn.fast = fast
        self.recurrent_layer.fast = fast
        for m in self.modules():
            if isinstance(m, FanInLayer):
                m._packed = ConvPackCache()

    def _conv3d(self, x_bthwc):
        x = x_bthwc.permute(0, 4, 1, 2, 3)  # (B, C, T, H, W)
        x = self.conv3d_layer(x)
        return x.permute(0, 2, 3, 4, 1)  # (B, T, H, W, C)

    def _idm_features(self, x_bthwc: torch.Tensor) -> torch.Tensor:
        """conv3d -> ImpalaCNN, ``micro_batch`` output frames at a time without autograd. Each window reads
        its temporal neighbours (the conv3d halo) and keeps only outputs whose inputs are all real or the
        sequence's own zero padding, so the result equals one pass over the whole window."""
        cnn = self.img_process.cnn
        t = x_bthwc.shape[1]
        mb = cnn.fast.micro_batch
        mb = max(mb, 8) if mb else 0  # conv3d windows; the CNN splits them further
        if torch.is_grad_enabled() or not mb or t <= mb:
            return cnn(self._conv3d(x_bthwc))
        halo = self.conv3d_layer.layer.padding[0]
        out = []
        for i in range(0, t, mb):
            lo, hi = max(0, i - halo), min(t, i + mb + halo)
            y = self._conv3d(x_bthwc[:, lo:hi])[:, i - lo:i - lo + min(mb, t - i)]
            out.append(cnn(y))
        return torch.cat(out, dim=1)

    def forward(self, img: torch.Tensor, first: torch.Tensor, state: State,
                embed_add: Optional[torch.Tensor] = None):
        x = img.to(torch.float32) / 255.0
        if self.idm:
            x = self.img_process.linear(self._idm_features(x))
        else:
            x = self.img_process(x)
        if embed_add is not None:  # the IDM's motion trunk: added to each frame's embedding
            x = x + embed_add
        if self.pre_lstm_ln is not None and not self.idm:  # parity: the IDM forward never applies it
            x = self.pre_lstm_ln(x)
        x, state = self.recurrent_layer(x, first, state)
        x = F.relu(x)
        if self.idm:
            # parity: lib/policy.py InverseActionNet.forward computes lastlayer(x) and discards it
            # (openai/Video-Pre-Training issue #53). Skipping the dead computation gives identical outputs.
            return self.final_ln(x), state
        return self.final_ln(self.lastlayer(x)), state


def _check_img(img: Any, cfg: PolicyConfig, channels: int) -> torch.Tensor:
    if not isinstance(img, torch.Tensor):
        raise TypeError(f"img must be a torch.Tensor, got {type(img).__name__}")
    h, w = cfg.img_shape[:2]
    if img.dim() != 5 or tuple(img.shape[2:]) != (h, w, channels):
        raise ValueError(f"img must have shape (B, T, {h}, {w}, {channels}) (RGB, HWC), got {tuple(img.shape)}")
    if img.dtype != torch.uint8 and not img.is_floating_point():
        raise TypeError(f"img must be uint8 (0..255) or float (0..255), got {img.dtype}")
    return img


class PolicyNet(nn.Module):
    """The VPT policy (``MinecraftAgentPolicy``): keys ``net.*``, ``value_head.*``, ``pi_head.*``.

    :param cfg: a :class:`PolicyConfig` (or a preset name of :data:`POLICY_PRESETS`).
    :param temperature: divides the action logits before log_softmax (``pi_head_opts.temperature``).
    """

    def __init__(self, cfg: PolicyConfig | str = "foundation-model-1x", temperature: float = 1.0):
        super().__init__()
        if isinstance(cfg, str):
            if cfg not in POLICY_PRESETS:
                raise ValueError(f"unknown policy preset {cfg!r}; expected one of {sorted(POLICY_PRESETS)}")
            cfg = POLICY_PRESETS[cfg]
        if not isinstance(cfg, PolicyConfig) or isinstance(cfg, IDMConfig):
            raise TypeError(f"cfg must be a PolicyConfig, got {type(cfg).__name__}")
        temperature = float(temperature)
        if not temperature > 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
        self.cfg, self.temperature = cfg, temperature
        self.net = MinecraftPolicy(cfg)
        self.value_head = ScaledMSEHead(cfg.hidsize)
        self.pi_head = nn.ModuleDict()
        self.pi_head["camera"] = CategoricalHead(cfg.hidsize, (1,), N_CAMERA_CLASSES)  # parity: camera first
        self.pi_head["buttons"] = CategoricalHead(cfg.hidsize, (1,), N_BUTTON_CLASSES)
        self.set_fast()  # the inference defaults (see set_fast)

    # -- memory ------------------------------------------------------------------------------------------
    def initial_state(self, batch_size: int, device: Any = None) -> State:
        """Empty memory for ``batch_size`` rows: per layer (all-False mask, zero K, zero V)."""
        if not isinstance(batch_size, int) or batch_size < 0:
            raise ValueError(f"batch_size must be a non-negative int, got {batch_size!r}")
        if device is None:
            device = self.net.final_ln.weight.device
        m, hsz = self.cfg.maxlen, self.cfg.hidsize
        return [
            (torch.zeros(batch_size, m, dtype=torch.bool, device=device),
             torch.zeros(batch_size, m, hsz, device=device),
             torch.zeros(batch_size, m, hsz, device=device))
            for _ in range(self.cfg.n_recurrence_layers)
        ]

    # -- forward -----------------------------------------------------------------------------------------
    def features(self, img: torch.Tensor, first: torch.Tensor, state: State) -> Tuple[torch.Tensor, State]:
        """The shared latent (B, T, H) after ``final_ln``, and the new memory."""
        img = _check_img(img, self.cfg, self.cfg.img_shape[2])
        b, t = img.shape[:2]
        if not isinstance(first, torch.Tensor) or first.shape != (b, t):
            raise ValueError(f"first must be a bool tensor of shape {(b, t)}, got "
                             f"{tuple(first.shape) if isinstance(first, torch.Tensor) else type(first).__name__}")
        if first.dtype != torch.bool:
            raise TypeError(f"first must be a bool tensor, got {first.dtype}")
        _check_state(state, b, self.cfg)
        return self.net(img, first.to(img.device), state)

    def heads(self, latent: torch.Tensor) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
        """Latent -> (log-prob dict after temperature, normalised value (B, T))."""
        logp = {
            "buttons": self.pi_head["buttons"](latent, self.temperature)[..., 0, :],
            "camera": self.pi_head["camera"](latent, self.temperature)[..., 0, :],
        }
        return logp, self.value_head(latent)

    def forward(self, img: torch.Tensor, first: torch.Tensor, state: State):
        """Run ``T`` frames with memory.

        :param img: uint8 (B, T, 128, 128, 3) RGB frames.
        :param first: bool (B, T); True marks an episode start (memory before it is hidden).
        :param state: from :meth:`initial_state` or a previous call.
        :return: ``(logp, vpred, new_state)`` with ``logp = {"buttons": (B, T, 8641), "camera": (B, T, 121)}``
            log-probabilities after temperature and ``vpred`` (B, T) the normalised value.
        """
        latent, state = self.features(img, first, state)
        logp, vpred = self.heads(latent)
        return logp, vpred, state

    @torch.inference_mode()
    def act(self, img: torch.Tensor, first: torch.Tensor, state: State, deterministic: bool = False,
            generator: Optional[torch.Generator] = None, bf16: bool = False):
        """Inference helper: forward (no autograd, optional bf16 autocast) + sampling.

        :return: ``(buttons (B, T) long, camera (B, T) long, logp_action (B, T), value (B, T) denormalised,
            new_state)``.
        """
        ctx = torch.autocast("cpu" if img.device.type == "cpu" else img.device.type, dtype=torch.bfloat16) if bf16 \
            else contextlib.nullcontext()
        with ctx:
            logp, vpred, state = self(img, first, state)
        logp = {k: v.float() for k, v in logp.items()}
        buttons, camera = sample_action(logp, deterministic=deterministic, generator=generator)
        state = [(m, k.float(), v.float()) for m, k, v in state]
        return buttons, camera, action_log_prob(logp, buttons, camera), self.denormalize_value(vpred.float()), state

    # -- value normaliser --------------------------------------------------------------------------------
    def denormalize_value(self, vpred: torch.Tensor) -> torch.Tensor:
        """Normalised value -> reward units: ``v * sqrt(var) + mean``."""
        return self.value_head.normalizer.denormalize(vpred)

    def normalize_value(self, x: torch.Tensor) -> torch.Tensor:
        """Reward units -> normalised value: ``(x - mean) / sqrt(var)``."""
        return self.value_head.normalizer.normalize(x)

    def update_value_normalizer(self, x: torch.Tensor) -> None:
        """EWMA update with value targets ``x`` (any shape; mean over all elements), beta 0.99999."""
        self.value_head.normalizer.update(x)

    def set_fast(self, sdpa: bool = True, fast_pool: bool = True, winograd: bool = False,
                 micro_batch: int = 8, prepack: bool = True) -> "PolicyNet":
        """Choose the inference fast paths.

        :param sdpa: fused attention (``F.scaled_dot_product_attention`` with the mask and the relative
            bias as one additive float mask, ``scale=1/hd``); same numbers to ~1e-6.
        :param fast_pool: max-pool on channels-last memory (exact).
        :param winograd: NNPACK Winograd 3x3 convolutions for single images without autograd; ~1e-5
            relative difference (within the 1e-4 fixture tolerance). Off by default for the policy: with the
            channels-last GroupNorm the policy needs for parity it gains little (see README.md).
        :param micro_batch: frames per CNN pass without autograd (exact; 0 = all at once).
        :param prepack: for single images without autograd, run each conv + ReLU as one oneDNN call with the
            weight reordered into oneDNN's blocked layout once and cached, instead of on every call.
            Bit-identical outputs on the 1x model (< 1e-5 in log-prob on tiny configs); ~1 ms (2%) less per
            batch-1 step of the 1x model. Copies and pickles of the network start with an empty cache.

        ``set_fast(False, False, False, 0, prepack=False)`` is the official computation order (the benchmark
        baseline). Each call replaces the network's frozen :class:`~vpt_rl.cpu_kernels.FastPaths` (see
        :attr:`fast`) and empties the prepacked-weight caches.
        """
        self.net.set_fast_paths(FastPaths(sdpa, fast_pool, winograd, micro_batch, prepack))
        return self

    @property
    def fast(self) -> FastPaths:
        """The inference fast paths in use (frozen; change them with :meth:`set_fast`)."""
        return self.net.fast


class IDMNet(nn.Module):
    """The inverse dynamics model (``InverseActionPolicy``): keys ``net.*`` and ``pi_head.*``.

    ``forward(img)`` -> ``{"buttons": (B, T, 20, 2), "camera": (B, T, 2, 11)}`` log-probabilities. Every frame
    of the window gets a prediction; attention is bidirectional within the window, with no memory.
    """

    def __init__(self, cfg: IDMConfig | str = "4x_idm", temperature: float = 1.0):
        super().__init__()
        if isinstance(cfg, str):
            if cfg not in IDM_PRESETS:
                raise ValueError(f"unknown IDM preset {cfg!r}; expected one of {sorted(IDM_PRESETS)}")
            cfg = IDM_PRESETS[cfg]
        if not isinstance(cfg, IDMConfig):
            raise TypeError(f"cfg must be an IDMConfig, got {type(cfg).__name__}")
        temperature = float(temperature)
        if not temperature > 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
        self.cfg, self.temperature = cfg, temperature
        self.net = MinecraftPolicy(cfg, idm=True)
        self.pi_head = nn.ModuleDict()
        self.pi_head["buttons"] = CategoricalHead(cfg.hidsize, (N_IDM_BUTTONS,), 2)  # parity: buttons first
        self.pi_head["camera"] = CategoricalHead(cfg.hidsize, (2,), N_IDM_CAMERA_BINS)
        self.motion = MotionStem(cfg.motion_hidden, cfg.hidsize, cfg.motion_context) if cfg.motion_hidden else None
        self.set_fast()

    def forward(self, img: torch.Tensor, return_motion: bool = False) -> Dict[str, torch.Tensor]:
        """:param img: uint8 (B, T, 128, 128, 3) RGB window. :return: log-prob dict (see class doc).

        :param return_motion: with a motion trunk, also return its own logits before they are added to the
            heads (for the auxiliary training loss): ``"motion_camera"`` (B, T, 2, 11) and
            ``"motion_buttons"`` (B, T, 20, 2)."""
        img = _check_img(img, self.cfg, self.cfg.conv3d_inchan)
        b, t = img.shape[:2]
        dev = img.device
        empty = [(torch.zeros(b, 0, dtype=torch.bool, device=dev), torch.zeros(b, 0, self.cfg.hidsize, device=dev),
                  torch.zeros(b, 0, self.cfg.hidsize, device=dev)) for _ in range(self.cfg.n_recurrence_layers)]
        first = torch.zeros(b, t, dtype=torch.bool, device=dev)
        if self.motion is None:
            latent, _ = self.net(img, first, empty)
            return {k: self.pi_head[k](latent, self.temperature) for k in ("buttons", "camera")}
        embed, cam_logits, button_logits = self.motion(img)
        latent, _ = self.net(img, first, empty, embed_add=embed)
        out = {"buttons": self.pi_head["buttons"](latent, self.temperature, extra_logits=button_logits),
               "camera": self.pi_head["camera"](latent, self.temperature, extra_logits=cam_logits)}
        if return_motion:
            out["motion_camera"], out["motion_buttons"] = cam_logits, button_logits
        return out

    @torch.inference_mode()
    def predict(self, img: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Argmax actions for a window: ``(buttons (B, T, 20) 0/1, camera (B, T, 2) bins)``."""
        return idm_argmax(self(img))

    def set_fast(self, sdpa: bool = True, fast_pool: bool = True, winograd: bool = True,
                 micro_batch: int = 1) -> "IDMNet":
        """Choose the inference fast paths (see :meth:`PolicyNet.set_fast`). IDM defaults: Winograd on, one
        frame per CNN pass (1.9x faster on CPU; max |d log p| ~3e-5 against the exact path, within the fixture
        tolerance). ``set_fast(winograd=False, micro_batch=8)`` is the exact-order path."""
        self.net.set_fast_paths(FastPaths(sdpa, fast_pool, winograd, micro_batch, prepack=False))
        return self

    @property
    def fast(self) -> FastPaths:
        """The inference fast paths in use (frozen; change them with :meth:`set_fast`)."""
        return self.net.fast


# ----------------------------------------------------------------------------------------------------------
# State helpers
# ----------------------------------------------------------------------------------------------------------


def _check_state(state: Any, batch: int, cfg: PolicyConfig) -> None:
    if not isinstance(state, (list, tuple)) or len(state) != cfg.n_recurrence_layers:
        raise ValueError(f"state must be a list of {cfg.n_recurrence_layers} (mask, k, v) tuples, got "
                         f"{type(state).__name__} of length {len(state) if hasattr(state, '__len__') else '?'}")
    for i, layer in enumerate(state):
        if len(layer) != 3:
            raise ValueError(f"state[{i}] must be a (mask, k, v) tuple, got {len(layer)} items")
        mask, k, v = layer
        want = (batch, cfg.maxlen)
        if tuple(mask.shape) != want or mask.dtype != torch.bool:
            raise ValueError(f"state[{i}] mask must be bool {want}, got {mask.dtype} {tuple(mask.shape)}")
        want_kv = (batch, cfg.maxlen, cfg.hidsize)
        if tuple(k.shape) != want_kv or tuple(v.shape) != want_kv:
            raise ValueError(f"state[{i}] k/v must have shape {want_kv}, got {tuple(k.shape)} / {tuple(v.shape)}")


def state_index(state: State, idx: Any) -> State:
    """Select batch rows (``idx``: int, slice, index or bool tensor) of every layer's memory."""
    if isinstance(idx, int):
        idx = slice(idx, idx + 1)
    return [(m[idx], k[idx], v[idx]) for m, k, v in state]


def state_cat(states: Sequence[State]) -> State:
    """Concatenate memories along the batch dimension."""
    if not states:
        raise ValueError("state_cat needs at least one state")
    n = len(states[0])
    if any(len(s) != n for s in states):
        raise ValueError(f"all states must have the same number of layers ({n}), got {[len(s) for s in states]}")
    return [tuple(torch.cat([s[layer][i] for s in states], dim=0) for i in range(3)) for layer in range(n)]


def state_detach(state: State) -> State:
    """Detach K/V from the autograd graph (truncated backprop between chunks)."""
    return [(m, k.detach(), v.detach()) for m, k, v in state]


def state_to(state: State, device: Any) -> State:
    """Move every tensor of the memory to ``device``."""
    return [(m.to(device), k.to(device), v.to(device)) for m, k, v in state]


def state_reset(state: State, done: Any) -> State:
    """Empty the memory of the rows where ``done`` (bool (B,)) is True; K/V are zeroed too."""
    done = torch.as_tensor(done, dtype=torch.bool)
    out = []
    for m, k, v in state:
        d = done.to(m.device)
        if d.shape != (m.shape[0],):
            raise ValueError(f"done must have shape ({m.shape[0]},), got {tuple(d.shape)}")
        keep = (~d).view(-1, 1)
        out.append((m & keep, k * keep.unsqueeze(-1).to(k.dtype), v * keep.unsqueeze(-1).to(v.dtype)))
    return out


# ----------------------------------------------------------------------------------------------------------
# Sampling and distribution helpers (joint action space: buttons 8641 x camera 121)
# ----------------------------------------------------------------------------------------------------------


def _gumbel_argmax(logp: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    u = torch.rand(logp.shape, generator=generator, dtype=logp.dtype, device=logp.device)
    u = torch.where(u == 1.0, torch.full_like(u, 0.999), u)  # parity: lib/action_head.py
    return torch.argmax(logp - torch.log(-torch.log(u)), dim=-1)


def sample_action(logp: Mapping[str, torch.Tensor], deterministic: bool = False,
                  generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sample ``(buttons, camera)`` long tensors of shape ``logp[...].shape[:-1]``.

    Stochastic sampling is Gumbel-max as in the official code (camera drawn first, then buttons, like the
    official ``DictActionHead`` order); ``deterministic`` takes the argmax.
    """
    if deterministic:
        return torch.argmax(logp["buttons"], dim=-1), torch.argmax(logp["camera"], dim=-1)
    camera = _gumbel_argmax(logp["camera"], generator)
    buttons = _gumbel_argmax(logp["buttons"], generator)
    return buttons, camera


_GROUP_ONEHOTS: Dict[str, List[torch.Tensor]] = {}


def consistent_argmax(logp: Mapping[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """A deterministic action that is coherent and robust to probability mass split over classes.

    The official ``deterministic`` decoding takes the argmax of each head on its own. A cloned policy spreads
    the mass of "attack" over several joint classes (attack with the camera moved or not, with or without
    other keys), so that argmax can land on a class with far less mass than attack has in total, and the
    camera argmax can contradict the class's camera meta-action (a "camera moved" class with the no-move
    bin). Here every button group of :data:`vpt_rl.actions.BUTTON_GROUPS` (hotbar, forward/back,
    left/right, sprint/sneak, use, drop, attack, jump, and the camera meta-action) takes its most probable
    option by **marginal** probability; the inventory class wins when its probability exceeds 0.5. The
    camera is then the most probable bin pair that agrees with the meta-action (the no-move pair 60 when
    the camera is off, the argmax over the other 120 when it is on).

    :param logp: ``{"buttons": (..., 8641), "camera": (..., 121)}`` log-probs.
    :return: ``(buttons, camera)`` long tensors of shape ``logp["buttons"].shape[:-1]``.
    """
    pb = logp["buttons"].float().exp()
    key = str(pb.device)
    if key not in _GROUP_ONEHOTS:  # (8640, n_options) membership matrices, one per group
        digits = torch.tensor(np.array(_JOINT_GROUP_DIGITS[:-1]), device=pb.device)
        _GROUP_ONEHOTS[key] = [F.one_hot(digits[:, g], len(o)).float() for g, (_, o) in enumerate(BUTTON_GROUPS)]
    index = torch.zeros(pb.shape[:-1], dtype=torch.long, device=pb.device)
    camera_on = None
    for g, (name, options) in enumerate(BUTTON_GROUPS):
        choice = (pb[..., :-1] @ _GROUP_ONEHOTS[key][g]).argmax(-1)  # the option with the most marginal mass
        stride = int(math.prod(len(o) for _, o in BUTTON_GROUPS[g + 1:]))
        index = index + choice * stride
        if name == "camera":
            camera_on = choice == 1
    inventory = pb[..., INVENTORY_BUTTONS] > 0.5
    buttons = torch.where(inventory, torch.full_like(index, INVENTORY_BUTTONS), index)
    cam_logp = logp["camera"].clone()
    cam_logp[..., NULL_CAMERA] = float("-inf")
    camera = torch.where(camera_on & ~inventory, cam_logp.argmax(-1), torch.full_like(index, NULL_CAMERA))
    return buttons, camera


def action_log_prob(logp: Mapping[str, torch.Tensor], buttons: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """Joint log-probability ``log p(buttons) + log p(camera)`` (as the official ``DictActionHead.logprob``)."""
    lb = torch.gather(logp["buttons"], -1, buttons.long().unsqueeze(-1))[..., 0]
    lc = torch.gather(logp["camera"], -1, camera.long().unsqueeze(-1))[..., 0]
    return lb + lc


def entropy(logp: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Entropy of the joint distribution, summed over the two heads."""
    return sum(-(torch.exp(logp[k]) * logp[k]).sum(-1) for k in ("buttons", "camera"))


def kl_divergence(logp_p: Mapping[str, torch.Tensor], logp_q: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``KL(p || q) = sum p (log p - log q)``, summed over both heads."""
    return sum((torch.exp(logp_p[k]) * (logp_p[k] - logp_q[k])).sum(-1) for k in ("buttons", "camera"))


def idm_argmax(logp: Mapping[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """IDM log-probs -> deterministic factored action ``(buttons (B, T, 20) 0/1, camera (B, T, 2) bins)``."""
    return torch.argmax(logp["buttons"], dim=-1), torch.argmax(logp["camera"], dim=-1)


def idm_to_env_actions(logp: Mapping[str, torch.Tensor]) -> List[List[Dict[str, Any]]]:
    """IDM log-probs -> MineRL env actions: a list over B of lists over T of 24-key action dicts."""
    buttons, camera = idm_argmax(logp)
    b_np, c_np = buttons.cpu().numpy(), camera.cpu().numpy()
    return [[factored_to_env(b_np[i, j], c_np[i, j]) for j in range(b_np.shape[1])] for i in range(b_np.shape[0])]
