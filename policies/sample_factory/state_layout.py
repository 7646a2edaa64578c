"""VPT transformer memory <-> Sample Factory's flat recurrent state.

Sample Factory keeps one float32 vector of ``rnn_size`` numbers per env and zeroes it when an episode ends
(rollout side) or starts inside a learner sequence. The VPT memory (:data:`vpt_rl.model.State`) is, per
transformer layer, a validity mask ``(B, maxlen)`` bool and the cached keys / values ``(B, maxlen, H)``.
The flat layout of one network is::

    [ K_0 | V_0 | K_1 | V_1 | ... | K_{L-1} | V_{L-1} | mask_0 | ... | mask_{L-1} ]
      maxlen*H each                                     maxlen each (1.0 = valid cached frame)

so an all-zero vector is an all-False mask, i.e. *empty memory*, exactly what a new episode needs. With the
KL-to-prior loss enabled the frozen prior's memory (same layout) is appended: ``[policy | prior]``.
Size of one network's block: ``L * maxlen * (2H + 1)`` floats, e.g. 4 x 128 x 2049 = 1,049,088 floats
(4.0 MiB) for the 1x foundation model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import Tensor

LayerState = Tuple[Tensor, Tensor, Tensor]  # (mask bool (B, maxlen), k (B, maxlen, H), v (B, maxlen, H))


@dataclass(frozen=True)
class StateLayout:
    """Flat layout of the VPT memory of one or two networks (policy, optionally the frozen prior).

    :param n_layers: transformer layers (``n_recurrence_layers``)
    :param maxlen: cached frames per layer (``attention_memory_size - timesteps``)
    :param hidsize: width H of the cached keys / values
    :param with_prior: whether a second block (the prior's memory) follows the policy's
    """

    n_layers: int
    maxlen: int
    hidsize: int
    with_prior: bool = False

    def __post_init__(self):
        for name in ("n_layers", "maxlen", "hidsize"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"StateLayout.{name} must be >= 1, got {getattr(self, name)!r}")

    @classmethod
    def from_config(cls, cfg, with_prior: bool = False) -> "StateLayout":
        """Layout for a :class:`vpt_rl.model.PolicyConfig`."""
        maxlen = int(cfg.attention_memory_size) - int(cfg.timesteps)
        return cls(int(cfg.n_recurrence_layers), maxlen, int(cfg.hidsize), bool(with_prior))

    @property
    def net_size(self) -> int:
        """Floats per env for one network's memory."""
        return self.n_layers * self.maxlen * (2 * self.hidsize + 1)

    @property
    def size(self) -> int:
        """Floats per env in SF's flat state (``--rnn_size``)."""
        return self.net_size * (2 if self.with_prior else 1)

    @property
    def nbytes(self) -> int:
        """Bytes per env of the flat state (float32)."""
        return 4 * self.size

    def split(self, flat: Tensor) -> Tuple[Tensor, Tensor | None]:
        """``(B, size)`` -> (policy block ``(B, net_size)``, prior block or None)."""
        if flat.shape[-1] != self.size:
            raise ValueError(f"flat state has {flat.shape[-1]} floats per env, the layout expects {self.size}")
        if not self.with_prior:
            return flat, None
        return flat[..., : self.net_size], flat[..., self.net_size :]

    def unpack(self, flat: Tensor) -> List[LayerState]:
        """One network's ``(B, net_size)`` block -> VPT State (list of ``(mask, k, v)`` per layer)."""
        if flat.dim() != 2 or flat.shape[1] != self.net_size:
            raise ValueError(f"expected a (B, {self.net_size}) state block, got shape {tuple(flat.shape)}")
        B, L, M, H = flat.shape[0], self.n_layers, self.maxlen, self.hidsize
        kv = flat[:, : L * 2 * M * H].reshape(B, L, 2, M, H)
        masks = flat[:, L * 2 * M * H :].reshape(B, L, M) > 0.5
        return [(masks[:, i], kv[:, i, 0], kv[:, i, 1]) for i in range(L)]

    def pack(self, state: List[LayerState]) -> Tensor:
        """VPT State -> ``(B, net_size)`` float32 block (inverse of :meth:`unpack`)."""
        if len(state) != self.n_layers:
            raise ValueError(f"expected a state with {self.n_layers} layers, got {len(state)}")
        kvs, masks = [], []
        for i, (mask, k, v) in enumerate(state):
            B = k.shape[0]
            if tuple(k.shape[1:]) != (self.maxlen, self.hidsize) or k.shape != v.shape:
                raise ValueError(
                    f"layer {i}: expected k/v of shape (B, {self.maxlen}, {self.hidsize}), got "
                    f"{tuple(k.shape)} / {tuple(v.shape)}"
                )
            mask = mask.reshape(B, -1)
            if mask.shape[1] != self.maxlen:
                raise ValueError(f"layer {i}: expected a mask of {self.maxlen} entries, got {tuple(mask.shape)}")
            kvs += [k.reshape(B, -1).float(), v.reshape(B, -1).float()]
            masks.append(mask.to(kvs[-1].dtype))
        return torch.cat(kvs + masks, dim=1)
