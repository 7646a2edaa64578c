"""Rollout storage for :class:`~vpt_rl.policies.sb3.VPTPPO`: memory once per segment, frames per step.

:class:`VPTRolloutBuffer` stores the policy's and the frozen prior's memory once per env and per
``segment_len`` steps (never per step), plus per-step uint8 frames, actions, rewards, values, log-probs and
the prior's action probabilities in float16.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch as th

from vpt_rl import model as vpt_model
from vpt_rl.policies.sb3.policy import N_LOGITS, POV_SHAPE, State, VPTStates


def _state_nbytes(state: Optional[State]) -> int:
    if state is None:
        return 0
    return int(sum(t.numel() * t.element_size() for layer in state for t in layer if isinstance(t, th.Tensor)))


def _state_clone(state: Optional[State]) -> Optional[State]:
    if state is None:
        return None
    return [tuple(t.detach().clone() if isinstance(t, th.Tensor) else t for t in layer) for layer in state]


class VPTRolloutBuffer:
    """Rollout storage for :class:`VPTPPO`: per-step fields for ``n_steps x n_envs`` steps and the memory of
    every env once per ``segment_len`` steps.

    Per step: ``pov`` uint8 (H, W, 3), ``actions`` (2,) int16, ``rewards``, ``episode_starts``, ``values``
    (denormalised), ``log_probs``, ``advantages``, ``returns`` float32, and ``prior_probs`` float16 (8762,)
    (the frozen prior's action probabilities, only when ``store_prior``). Per segment: a :class:`VPTStates`
    batched over envs (the memory before the segment's first frame).

    :param n_steps: steps per env per rollout.
    :param n_envs: number of envs.
    :param segment_len: steps per stored memory (must divide ``n_steps``).
    :param pov_shape: (H, W, 3).
    :param gamma: discount.
    :param gae_lambda: GAE lambda.
    :param store_prior: allocate ``prior_probs``.
    :param device: where the prior probabilities and memories live.
    """

    def __init__(
        self,
        n_steps: int,
        n_envs: int,
        segment_len: int,
        pov_shape: Sequence[int] = POV_SHAPE,
        gamma: float = 0.999,
        gae_lambda: float = 0.95,
        store_prior: bool = True,
        device: Union[th.device, str] = "cpu",
    ):
        if n_steps < 1 or n_envs < 1:
            raise ValueError(f"n_steps={n_steps} and n_envs={n_envs} must be >= 1")
        if segment_len < 1 or n_steps % segment_len:
            raise ValueError(f"segment_len={segment_len} must be >= 1 and divide n_steps={n_steps}")
        self.n_steps, self.n_envs, self.segment_len = int(n_steps), int(n_envs), int(segment_len)
        self.n_segments = self.n_steps // self.segment_len
        self.pov_shape = tuple(int(v) for v in pov_shape)
        self.gamma, self.gae_lambda = float(gamma), float(gae_lambda)
        self.store_prior = bool(store_prior)
        self.device = th.device(device)
        self.reset()

    def reset(self) -> None:
        """Allocate (or re-zero) every field."""
        shp = (self.n_steps, self.n_envs)
        if getattr(self, "pov", None) is None:
            self.pov = np.zeros(shp + self.pov_shape, dtype=np.uint8)
            self.actions = np.zeros(shp + (2,), dtype=np.int16)
            self.prior_probs = th.zeros(shp + (N_LOGITS,), dtype=th.float16, device=self.device) if self.store_prior else None
        for name in ("rewards", "episode_starts", "values", "log_probs", "advantages", "returns"):
            setattr(self, name, np.zeros(shp, dtype=np.float32))
        self.states: List[Optional[VPTStates]] = [None] * self.n_segments
        self.pos = 0
        self.full = False

    def store_states(self, states: VPTStates) -> None:
        """Record the memory before the current step; call it when ``pos`` starts a segment."""
        if self.pos % self.segment_len:
            raise ValueError(f"store_states at step {self.pos}, which is not a segment start (segment_len={self.segment_len})")
        self.states[self.pos // self.segment_len] = VPTStates(_state_clone(states.policy), _state_clone(states.prior))

    def add(
        self,
        pov: th.Tensor,
        actions: np.ndarray,
        rewards: np.ndarray,
        episode_starts: np.ndarray,
        values: th.Tensor,
        log_probs: th.Tensor,
        prior_probs: Optional[th.Tensor] = None,
    ) -> None:
        """Append one step for all envs (``pov`` (n_envs, H, W, 3) uint8, ``prior_probs`` (n_envs, 8762))."""
        if self.full:
            raise RuntimeError(f"the rollout buffer is full ({self.n_steps} steps); call reset()")
        p = self.pos
        self.pov[p] = pov.cpu().numpy() if isinstance(pov, th.Tensor) else pov
        self.actions[p] = np.asarray(actions).reshape(self.n_envs, 2)
        self.rewards[p] = np.asarray(rewards, dtype=np.float32)
        self.episode_starts[p] = np.asarray(episode_starts, dtype=np.float32)
        self.values[p] = values.detach().float().cpu().numpy().reshape(self.n_envs)
        self.log_probs[p] = log_probs.detach().float().cpu().numpy().reshape(self.n_envs)
        if self.store_prior:
            if prior_probs is None:
                raise ValueError("this buffer stores the prior's probabilities; prior_probs is required")
            self.prior_probs[p] = prior_probs.detach().reshape(self.n_envs, N_LOGITS).to(self.device, th.float16)
        self.pos += 1
        self.full = self.pos == self.n_steps

    def compute_returns_and_advantage(self, last_values: np.ndarray, dones: np.ndarray) -> None:
        """GAE(lambda) advantages and lambda-returns (``returns = advantages + values``), as SB3 computes them:
        ``episode_starts[t + 1]`` (or ``dones`` after the last step) stops the bootstrap."""
        last_values = np.asarray(last_values, dtype=np.float32).reshape(self.n_envs)
        dones = np.asarray(dones, dtype=np.float32).reshape(self.n_envs)
        gae = np.zeros(self.n_envs, dtype=np.float32)
        for t in reversed(range(self.n_steps)):
            if t == self.n_steps - 1:
                non_terminal, next_v = 1.0 - dones, last_values
            else:
                non_terminal, next_v = 1.0 - self.episode_starts[t + 1], self.values[t + 1]
            delta = self.rewards[t] + self.gamma * next_v * non_terminal - self.values[t]
            gae = delta + self.gamma * self.gae_lambda * non_terminal * gae
            self.advantages[t] = gae
        self.returns = self.advantages + self.values

    def sequences(self) -> List[Tuple[int, int]]:
        """Every stored ``(env, segment)`` pair."""
        return [(e, s) for s in range(self.n_segments) for e in range(self.n_envs)]

    def gather(self, seqs: Sequence[Tuple[int, int]], device: Union[th.device, str]) -> Dict[str, Any]:
        """(B, segment_len) tensors of the given ``(env, segment)`` sequences, plus their initial memories."""
        L = self.segment_len
        env_idx = np.array([e for e, _ in seqs])
        t_idx = np.stack([np.arange(s * L, (s + 1) * L) for _, s in seqs])  # (B, L)
        e_idx = np.repeat(env_idx[:, None], L, axis=1)

        def take(a: np.ndarray) -> th.Tensor:
            return th.as_tensor(a[t_idx, e_idx], device=device)

        out = {
            "pov": take(self.pov),
            "actions": take(self.actions).long(),
            "episode_starts": take(self.episode_starts).bool(),
            "values": take(self.values),
            "log_probs": take(self.log_probs),
            "advantages": take(self.advantages),
            "returns": take(self.returns),
        }
        if self.store_prior:
            out["prior_probs"] = self.prior_probs[th.as_tensor(t_idx), th.as_tensor(e_idx)].to(device)
        pi_states, prior_states = [], []
        for e, s in seqs:
            st = self.states[s]
            if st is None:
                raise RuntimeError(f"no memory stored for segment {s}; was the rollout complete?")
            pi_states.append(vpt_model.state_index(st.policy, [e]))
            if st.prior is not None:
                prior_states.append(vpt_model.state_index(st.prior, [e]))
        out["state"] = vpt_model.state_to(vpt_model.state_cat(pi_states), device)
        out["prior_state"] = vpt_model.state_to(vpt_model.state_cat(prior_states), device) if prior_states else None
        return out

    def nbytes(self) -> Dict[str, int]:
        """Bytes held per field (memories counted when stored), and ``total``."""
        out = {
            "pov": self.pov.nbytes,
            "actions": self.actions.nbytes,
            "scalars": sum(getattr(self, n).nbytes for n in ("rewards", "episode_starts", "values", "log_probs", "advantages", "returns")),
            "prior_probs": 0 if self.prior_probs is None else self.prior_probs.numel() * self.prior_probs.element_size(),
            "policy_states": sum(_state_nbytes(s.policy) for s in self.states if s is not None),
            "prior_states": sum(_state_nbytes(s.prior) for s in self.states if s is not None),
        }
        out["total"] = sum(out.values())
        return out


