"""CPU inference fast paths of the VPT networks, and the one frozen switch object that selects them.

A network (:class:`vpt_rl.model.PolicyNet`, :class:`vpt_rl.model.IDMNet`) holds one :class:`FastPaths` (its
CNN and its transformer keep a reference to the same frozen object) and passes it down the forward calls;
``set_fast(...)`` replaces it. No layer keeps a switch of its own.

Two paths call private PyTorch APIs. Each sits behind a feature probe and falls back to the public op:

* NNPACK Winograd 3x3 convolutions (``torch._nnpack_spatial_convolution``), probed with
  ``torch.backends.nnpack.is_available()`` and ``torch._nnpack_available()``;
* oneDNN conv + ReLU on a weight reordered once into oneDNN's blocked layout
  (``torch.ops.mkldnn._reorder_convolution_weight`` and ``torch.ops.mkldnn._convolution_pointwise``),
  probed with ``hasattr`` on ``torch.ops.mkldnn`` and ``torch.backends.mkldnn``.

:func:`group_norm_nchw` uses ``torch.native_group_norm`` (undocumented but not underscored) unguarded.

Checked on torch 2.13.0 (CPU build, the version setup.py recommends); setup.py accepts torch >= 2.3, where a
missing op turns the path off instead of failing. All timings quoted here are from the 2-core AVX-512 dev box.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

__all__ = [
    "FastPaths",
    "BLOCK_DEFAULTS",
    "ConvPackCache",
    "autocast_cpu",
    "nnpack_eligible",
    "nnpack_applies",
    "nnpack_conv",
    "prepack_applies",
    "prepacked_conv",
    "group_norm_nchw",
]


@dataclass(frozen=True)
class FastPaths:
    """Which inference fast paths a network takes (the arguments of ``PolicyNet.set_fast``).

    The defaults (:data:`BLOCK_DEFAULTS`) are what a building block (``ImpalaCNN``, an attention layer, ...)
    uses when called on its own; :class:`~vpt_rl.model.PolicyNet` and :class:`~vpt_rl.model.IDMNet` choose
    their own defaults in ``set_fast``. ``FastPaths(False, False, False, 0, False)`` is the official
    computation order. ``winograd``, ``micro_batch`` and ``prepack`` apply only without autograd.
    """

    sdpa: bool = True
    """fused attention (``F.scaled_dot_product_attention``); False: the official softmax formula"""
    fast_pool: bool = True
    """max-pool on channels-last memory (exact)"""
    winograd: bool = False
    """NNPACK Winograd 3x3 convolutions for single images (~1e-5 relative)"""
    micro_batch: int = 8
    """frames per CNN pass (exact; 0 = all frames at once)"""
    prepack: bool = False
    """single images: each conv + ReLU as one oneDNN call on a cached, reordered weight"""

    def __post_init__(self):
        if not isinstance(self.micro_batch, int) or self.micro_batch < 0:
            raise ValueError(f"micro_batch must be a non-negative int, got {self.micro_batch!r}")
        for name in ("sdpa", "fast_pool", "winograd", "prepack"):  # accept truthy values, store plain bools
            object.__setattr__(self, name, bool(getattr(self, name)))


BLOCK_DEFAULTS = FastPaths()
"""The fast paths of a building block called on its own (before any ``set_fast``)."""


def autocast_cpu() -> bool:
    """Whether CPU autocast (bf16) is on; the fast convolutions are float32-only."""
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4 has no device argument
        return torch.is_autocast_cpu_enabled()


# ----------------------------------------------------------------------------------------------------------
# NNPACK Winograd convolutions (private: torch._nnpack_spatial_convolution)
# ----------------------------------------------------------------------------------------------------------

_NNPACK_OK: Optional[bool] = None  # probed once, on first use


def nnpack_eligible(x: torch.Tensor) -> bool:
    """A single float32 CPU image without autograd or autocast, and NNPACK present in this torch build."""
    global _NNPACK_OK
    if x.shape[0] != 1 or x.dtype != torch.float32 or x.device.type != "cpu" or torch.is_grad_enabled():
        return False
    if autocast_cpu():
        return False
    if _NNPACK_OK is None:
        _NNPACK_OK = bool(torch.backends.nnpack.is_available()) and torch._nnpack_available()  # also initialises it
    return _NNPACK_OK


def nnpack_applies(x: torch.Tensor, layer: nn.Conv2d) -> bool:
    """NNPACK's Winograd convolution is ~2x faster than oneDNN for a single image on CPU, but has no backward;
    use it for batch-1 float32 inference only (and not for the 3-channel first conv)."""
    return layer.in_channels >= 8 and nnpack_eligible(x)


def nnpack_conv(x: torch.Tensor, layer: nn.Conv2d) -> torch.Tensor:
    """``layer(x)`` through NNPACK, on contiguous (NCHW) memory."""
    bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_channels, dtype=x.dtype)
    # private API (checked on torch 2.13.0); callers first check nnpack_applies, which probes for NNPACK
    return torch._nnpack_spatial_convolution(x.contiguous(), layer.weight, bias, list(layer.padding),
                                             list(layer.stride))


# ----------------------------------------------------------------------------------------------------------
# Prepacked oneDNN conv + ReLU (private: torch.ops.mkldnn._reorder_convolution_weight / _convolution_pointwise)
# ----------------------------------------------------------------------------------------------------------


class ConvPackCache:
    """A oneDNN-prepacked conv weight and its cache key. The prepacked weight is an opaque tensor that can be
    neither copied nor pickled, so copies and pickles of a module start with an empty cache."""

    __slots__ = ("key", "weight")

    def __init__(self):
        self.key: Any = None
        self.weight: Optional[torch.Tensor] = None

    def __reduce__(self):
        return (ConvPackCache, ())


_MKLDNN_POINTWISE: Optional[bool] = None  # probed once, on first use


def _mkldnn_pointwise_ok() -> bool:
    global _MKLDNN_POINTWISE
    if _MKLDNN_POINTWISE is None:
        ops = getattr(torch.ops, "mkldnn", None)
        _MKLDNN_POINTWISE = bool(torch.backends.mkldnn.is_available()) and all(
            hasattr(ops, n) for n in ("_convolution_pointwise", "_reorder_convolution_weight"))
    return _MKLDNN_POINTWISE and torch.backends.mkldnn.enabled


def prepack_applies(x: torch.Tensor, layer: nn.Module) -> bool:
    """The prepacked oneDNN path: a single channels-last float32 CPU image without autograd. oneDNN
    otherwise reorders the OIHW weight into its blocked layout on every call; for one image that reorder is
    ~10-15% of a 3x3 conv, for 8 images it is noise."""
    return (isinstance(layer, nn.Conv2d) and x.dim() == 4 and x.shape[0] == 1 and x.dtype == torch.float32
            and x.device.type == "cpu" and not torch.is_grad_enabled() and not autocast_cpu()
            and x.is_contiguous(memory_format=torch.channels_last) and _mkldnn_pointwise_ok())


def prepacked_conv(cache: ConvPackCache, layer: nn.Conv2d, x: torch.Tensor, relu: bool) -> torch.Tensor:
    """``relu(layer(x))`` (or ``layer(x)``) through oneDNN with the weight reordered once and kept in ``cache``.

    On the 1x model's shapes oneDNN picks the same kernel as for ``F.conv2d``: bit-identical outputs; with
    4-8 channels (the fixture config) it may pick another, ~5e-6 in log-prob (tests/test_model.py checks
    < 1e-5). The cache key holds the weight's storage pointer and version counter, so ``load_state_dict``,
    optimiser steps and ``.to()`` invalidate it."""
    w = layer.weight
    key = (tuple(x.shape), w.data_ptr(), w._version)
    # private oneDNN ops (checked on torch 2.13.0); callers first check prepack_applies, which probes for them
    if cache.weight is None or cache.key != key:
        cache.weight = torch.ops.mkldnn._reorder_convolution_weight(
            w.detach(), list(layer.padding), list(layer.stride), list(layer.dilation), layer.groups, list(x.shape))
        cache.key = key
    return torch.ops.mkldnn._convolution_pointwise(
        x, cache.weight, layer.bias, list(layer.padding), list(layer.stride), list(layer.dilation),
        layer.groups, "relu" if relu else "none", [], "")


# ----------------------------------------------------------------------------------------------------------
# GroupNorm for the NNPACK path
# ----------------------------------------------------------------------------------------------------------


def group_norm_nchw(x: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """``norm(x)`` for a contiguous (NCHW) ``x``, with the statistics of the channels-last kernel (parity)
    and ``x * a + b`` applied on the contiguous tensor, as that kernel does, so the result stays in the
    layout NNPACK needs without a second transposing copy."""
    n, c = x.shape[:2]
    g = norm.num_groups
    _, mean, rstd = torch.native_group_norm(x.contiguous(memory_format=torch.channels_last), None, None,
                                            n, c, x.shape[2] * x.shape[3], g, norm.eps)
    a = (rstd.view(n, g, 1).expand(n, g, c // g).reshape(n, c) * norm.weight).view(n, c, 1, 1)
    b = norm.bias.view(1, c, 1, 1) - a * mean.view(n, g, 1).expand(n, g, c // g).reshape(n, c, 1, 1)
    return torch.addcmul(b, x, a)
