"""The layers of the VPT networks and their shared trunk (``MinecraftPolicy``, the ``net.*`` keys).

Read top to bottom: FanIn layers -> ImpalaCNN -> masked attention and the residual transformer blocks ->
heads and value normaliser -> the trunk. :mod:`vpt_rl.model` builds :class:`~vpt_rl.model.PolicyNet` and
:class:`~vpt_rl.model.IDMNet` from these and re-exports them. Attribute names reproduce the official
``state_dict`` keys; quirks kept for parity with the official code are tagged ``# parity:``.

The CPU fast paths live in :mod:`vpt_rl.cpu_kernels`: :class:`ImpalaCNN` and
:class:`ResidualRecurrentBlocks` each hold the network's frozen :class:`~vpt_rl.cpu_kernels.FastPaths` and
pass it down to the layers below them.
"""
from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

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
from vpt_rl.model_config import PolicyConfig

__all__ = [
    "State",
    "GroupNorm",
    "FanInLayer",
    "CnnBasicBlock",
    "CnnDownStack",
    "ImpalaCNN",
    "ImgObsProcess",
    "clipped_causal_visibility",
    "SelfAttentionLayer",
    "MaskedAttention",
    "ResidualRecurrentBlock",
    "ResidualRecurrentBlocks",
    "CategoricalHead",
    "NormalizeEwma",
    "ScaledMSEHead",
    "MinecraftPolicy",
]

NBASIS = 10  # lib/xf.py SelfAttentionLayer relattn nbasis
MASK_VALUE = -1e9  # lib/xf.py attention(): bias = -1e9 * ~mask
EWMA_BETA = 0.99999  # lib/scaled_mse_head.py NormalizeEwma(beta)
EWMA_EPS = 1e-5  # lib/normalize_ewma.py epsilon
VAR_MIN = 1e-2  # lib/normalize_ewma.py running_mean_var clamp


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
# The trunk shared by the policy and the IDM (lib/policy.py MinecraftPolicy, InverseActionNet)
# ----------------------------------------------------------------------------------------------------------


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
            ic = cfg  # an IDMConfig (idm=True)
            self.conv3d_layer = FanInLayer("conv3d", ic.conv3d_inchan, ic.conv3d_outchan, init_scale=1.0,
                                           kernel_size=ic.conv3d_kernel_size, padding=ic.conv3d_padding)

    @property
    def fast(self) -> FastPaths:
        """The CPU fast paths in use (the CNN and the transformer hold the same frozen object)."""
        return self.img_process.cnn.fast

    def set_fast_paths(self, fast: FastPaths) -> None:
        """Hand ``fast`` to the two parts that read it and empty the cached prepacked conv weights."""
        # The CNN and the transformer each hold it (and pass it down), not this trunk, because callers such as
        # the Sample Factory encoder and core run ``img_process`` and ``recurrent_layer`` on their own.
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
