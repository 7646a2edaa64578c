"""The VPT policy and inverse dynamics (IDM) networks, weight-compatible with OpenAI's released files.

This module is the public entry point: :class:`PolicyNet` / :class:`IDMNet` -> state helpers -> sampling
and distribution helpers. The parts live in their own modules and are re-exported here, so the old import
paths keep working: configs and presets in :mod:`vpt_rl.model_config`, layers and the shared trunk in
:mod:`vpt_rl.layers`, the IDM's motion trunk in :mod:`vpt_rl.motion_stem`, the CPU fast paths in
:mod:`vpt_rl.cpu_kernels`.

Every attribute path reproduces the official ``state_dict`` key names (``net.img_process.cnn.stacks.0
.firstconv.layer.weight``, ``net.recurrent_layer.blocks.0.r.orc_block.q_layer.weight``, ...), so the
released ``.weights`` files load with ``load_state_dict(sd, strict=True)``. Odd names such as
``orc_block`` and ``pre_lstm_ln`` are kept for that reason only. Numerics follow
openai/Video-Pre-Training (``lib/policy.py``, ``lib/impala_cnn.py``, ``lib/xf.py``, ``lib/util.py``,
``lib/action_head.py``); quirks kept for parity are tagged ``# parity:``.

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
import math
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
from vpt_rl.cpu_kernels import FastPaths
from vpt_rl.layers import (  # noqa: F401  (re-exported: the old import paths of the building blocks)
    EWMA_BETA,
    EWMA_EPS,
    MASK_VALUE,
    NBASIS,
    VAR_MIN,
    CategoricalHead,
    CnnBasicBlock,
    CnnDownStack,
    FanInLayer,
    GroupNorm,
    ImgObsProcess,
    ImpalaCNN,
    MaskedAttention,
    MinecraftPolicy,
    NormalizeEwma,
    ResidualRecurrentBlock,
    ResidualRecurrentBlocks,
    ScaledMSEHead,
    SelfAttentionLayer,
    State,
    _check_img,
    clipped_causal_visibility,
)
from vpt_rl.model_config import (  # noqa: F401  (re-exported)
    IDM_PRESETS,
    KNOWN_UNUSED_KEYS,
    POLICY_PRESETS,
    IDMConfig,
    PolicyConfig,
)
from vpt_rl.motion_stem import MotionStem

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


# ----------------------------------------------------------------------------------------------------------
# The networks
# ----------------------------------------------------------------------------------------------------------


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
        return self.core(self.encode(img), first.to(img.device), state)

    def encode(self, img: torch.Tensor) -> torch.Tensor:
        """Per-frame image encoder: uint8 (B, T, H, W, 3) frames -> embeddings (B, T, hidsize).

        ``/255 -> ImpalaCNN -> linear (-> pre_lstm_ln)``; each frame is encoded on its own (no memory), so
        callers may fold any batch of frames into (N, 1). Inputs are not validated (see :meth:`features`).
        """
        trunk = self.net
        x = trunk.img_process(img.to(torch.float32) / 255.0)
        if trunk.pre_lstm_ln is not None:  # absent in every released config
            x = trunk.pre_lstm_ln(x)
        return x

    def core(self, x: torch.Tensor, first: torch.Tensor, state: State) -> Tuple[torch.Tensor, State]:
        """Memory part: embeddings (B, T, hidsize) from :meth:`encode` -> ``(latent (B, T, hidsize), new state)``.

        ``transformer blocks -> ReLU -> lastlayer -> final_ln``; ``first`` (B, T) bool cuts the memory at
        episode starts. :meth:`heads` turns the latent into log-probs and values.
        """
        trunk = self.net
        x, state = trunk.recurrent_layer(x, first, state)
        return trunk.final_ln(trunk.lastlayer(F.relu(x))), state

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
            channels-last GroupNorm the policy needs for parity it gains little (see docs/performance.md).
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


def kl_divergence(logp_p: Any, logp_q: Any, probs_p: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``KL(p || q) = sum p (log p - log q)`` over the last dim, summed over the heads.

    The one KL of the project: the SB3 and Sample Factory plug-ins use it for the VPT paper's
    ``KL(pi_prior || pi)`` penalty.

    :param logp_p: log-probs of ``p``: a dict ``{"buttons": (..., 8641), "camera": (..., 121)}``, a list or
        tuple of per-head tensors (e.g. ``torch.split`` of concatenated heads), or one tensor.
    :param logp_q: log-probs of ``q``, in the same form.
    :param probs_p: only with single tensors: the probabilities of ``p`` when they are stored more exactly than
        ``exp(logp_p)`` (the SB3 buffer keeps the prior's float16 probabilities); entries with ``p == 0``
        add nothing.
    :return: (...) per-step KL.
    """
    if isinstance(logp_p, Mapping):
        return sum(kl_divergence(logp_p[k], logp_q[k]) for k in ("buttons", "camera"))
    if isinstance(logp_p, (list, tuple)):
        return sum(kl_divergence(a, b) for a, b in zip(logp_p, logp_q))
    if probs_p is None:
        return (torch.exp(logp_p) * (logp_p - logp_q)).sum(-1)
    return torch.where(probs_p > 0, probs_p * (logp_p - logp_q), torch.zeros_like(probs_p)).sum(-1)


def kl_coef_at(kl_coef: float, kl_decay: float, iteration: int) -> float:
    """The KL coefficient after ``iteration`` training iterations: ``kl_coef * kl_decay ** iteration``
    (VPT paper: rho = 0.2, decay 0.9995 per iteration)."""
    return float(kl_coef) * float(kl_decay) ** int(iteration)


def idm_argmax(logp: Mapping[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """IDM log-probs -> deterministic factored action ``(buttons (B, T, 20) 0/1, camera (B, T, 2) bins)``."""
    return torch.argmax(logp["buttons"], dim=-1), torch.argmax(logp["camera"], dim=-1)


def idm_to_env_actions(logp: Mapping[str, torch.Tensor]) -> List[List[Dict[str, Any]]]:
    """IDM log-probs -> MineRL env actions: a list over B of lists over T of 24-key action dicts."""
    buttons, camera = idm_argmax(logp)
    b_np, c_np = buttons.cpu().numpy(), camera.cpu().numpy()
    return [[factored_to_env(b_np[i, j], c_np[i, j]) for j in range(b_np.shape[1])] for i in range(b_np.shape[0])]
