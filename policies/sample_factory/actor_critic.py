"""The VPT policy as a Sample Factory 2.1.1 actor-critic.

SF splits a model into ``forward_head`` (encoder) -> ``forward_core`` (recurrent core) -> ``forward_tail``
(decoder + heads). For VPT:

* **encoder** = :meth:`PolicyNet.encode <vpt_rl.model.PolicyNet.encode>` (ImpalaCNN + linear) on uint8 HWC
  frames;
* **core** = :meth:`PolicyNet.core <vpt_rl.model.PolicyNet.core>`: the masked-attention transformer followed
  by ``ReLU -> lastlayer -> final_ln``. Its memory lives in SF's flat recurrent state (layout in :mod:`.state_layout`), where an
  all-zero state is empty memory; SF zeroes the state at episode ends, which is exactly VPT's "memory never
  crosses an episode start". The core takes a ``(B, D)`` tensor (one step per env, rollout) or a
  ``PackedSequence`` (learner: SF cuts sequences at episode ends and zeroes the state of sequences that start
  an episode), and both paths run the same transformer code;
* **heads** = VPT's ``pi_head`` (buttons, camera log-probs after temperature, as SF's
  ``Tuple(Discrete(8641), Discrete(121))`` logits) and ``value_head`` (the normalised value; SF's
  ``--normalize_returns`` supplies the normalisation statistics).

With the KL-to-prior loss (``kl_coef > 0``) a frozen copy of the starting network runs alongside: the encoder
output and the core output are ``[policy | prior]`` concatenations, the flat state is ``[policy memory |
prior memory]``, and :meth:`VPTActorCritic.prior_log_probs` gives the prior's log-probs for the last tail
call (used by :class:`~vpt_rl.policies.sample_factory.learner.VPTLearner`). The prior never receives
gradients.

:func:`make_vpt_actor_critic` is the factory SF calls (registered by ``register_vpt_components``); it
builds the network with :func:`vpt_rl.checkpoint.build_policy` from ``--model`` (an official ``.model`` file)
or ``--preset``, loads ``--weights`` strictly with ``weights_only=True``, and never re-initialises the
pretrained layers.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Tuple

import torch
from gymnasium import spaces
from sample_factory.algo.utils.action_distributions import get_action_distribution
from sample_factory.algo.utils.tensor_dict import TensorDict
from sample_factory.model.actor_critic import ActorCritic
from sample_factory.model.model_utils import model_device
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from vpt_rl.actions import N_BUTTON_CLASSES, N_CAMERA_CLASSES
from vpt_rl.checkpoint import build_policy, policy_config
from vpt_rl.model import PolicyConfig, PolicyNet
from vpt_rl.policies.sample_factory.envs import POV_SHAPE
from vpt_rl.policies.sample_factory.state_layout import StateLayout

OBS_KEY = "pov"
HEAD_ORDER = ("buttons", "camera")  # SF's Tuple action order


# ------------------------------------------------------------------------------------------- VPT pieces
def encode_frames(net: PolicyNet, img: Tensor) -> Tensor:
    """uint8 frames ``(N, 128, 128, 3)`` -> image features ``(N, H)`` (:meth:`PolicyNet.encode`, one frame each)."""
    return net.encode(img[:, None])[:, 0]


def run_transformer(net: PolicyNet, x_bth: Tensor, state: List) -> Tuple[Tensor, List]:
    """:meth:`PolicyNet.core` (transformer + ``ReLU -> lastlayer -> final_ln``) on features ``(B, T, H)`` from
    memory ``state``.

    No episode start is passed: SF guarantees a sequence never crosses one, and a new episode arrives as an
    all-zero (empty) memory.
    """
    first = torch.zeros(x_bth.shape[:2], dtype=torch.bool, device=x_bth.device)
    return net.core(x_bth, first, state)


def head_log_probs(net: nn.Module, latent: Tensor) -> Tensor:
    """Latent ``(N, H)`` -> concatenated log-probs ``(N, 8641 + 121)`` in SF's (buttons, camera) order."""
    logp, _ = net.heads(latent)
    return torch.cat([logp[k] for k in HEAD_ORDER], dim=-1)


def head_value(net: nn.Module, latent: Tensor) -> Tensor:
    """Latent ``(N, H)`` -> normalised value ``(N,)``."""
    return net.value_head(latent)  # ScaledMSEHead: linear only, (N, 1) -> (N,)


# ------------------------------------------------------------------------------------------- actor-critic
class VPTActorCritic(ActorCritic):
    """SF actor-critic wrapping a VPT :class:`vpt_rl.model.PolicyNet` (and optionally its frozen prior).

    :param cfg: SF config
    :param obs_space: must be a Dict with a uint8 ``"pov"`` (128, 128, 3) entry
    :param action_space: must be ``Tuple(Discrete(8641), Discrete(121))``
    :param policy: the trained network (``policy.*`` keys hold the official state dict)
    :param prior: frozen copy of the starting network for the KL loss, or None
    """

    def __init__(self, cfg, obs_space, action_space, policy: nn.Module, prior: Optional[nn.Module] = None):
        check_spaces(obs_space, action_space)
        super().__init__(obs_space, action_space, cfg)
        self.policy = policy
        self.prior = prior
        if prior is not None:
            for p in prior.parameters():
                p.requires_grad_(False)
            prior.eval()
        self.layout = StateLayout.from_config(policy.cfg, with_prior=prior is not None)
        self.hidsize = int(policy.cfg.hidsize)
        self._prior_latent: Optional[Tensor] = None

    # SF plumbing -----------------------------------------------------------------------------------------
    def device_for_input_tensor(self, input_tensor_name: str) -> torch.device:
        return model_device(self)

    def type_for_input_tensor(self, input_tensor_name: str) -> torch.dtype:
        return torch.uint8 if input_tensor_name == OBS_KEY else torch.float32

    def model_to_device(self, device):
        self.to(device)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.prior is not None:
            self.prior.eval()
        return self

    # encoder ---------------------------------------------------------------------------------------------
    def forward_head(self, normalized_obs_dict: Dict[str, Tensor]) -> Tensor:
        img = normalized_obs_dict[OBS_KEY]
        x = encode_frames(self.policy, img)
        if self.prior is None:
            return x
        with torch.no_grad():
            xp = encode_frames(self.prior, img)
        return torch.cat([x, xp], dim=1)

    # core ------------------------------------------------------------------------------------------------
    def _core_bt(self, x_btd: Tensor, flat: Tensor) -> Tuple[Tensor, Tensor]:
        """Features ``(B, T, D)`` + flat state ``(B, S)`` -> latents ``(B, T, D)`` + new flat state."""
        H = self.hidsize
        pol_flat, prior_flat = self.layout.split(flat)
        out, new_state = run_transformer(self.policy, x_btd[..., :H], self.layout.unpack(pol_flat))
        new_flat = [self.layout.pack(new_state)]
        outs = [out]
        if self.prior is not None:
            with torch.no_grad():
                out_p, new_state_p = run_transformer(self.prior, x_btd[..., H:], self.layout.unpack(prior_flat))
            outs.append(out_p)
            new_flat.append(self.layout.pack(new_state_p))
        return torch.cat(outs, dim=-1), torch.cat(new_flat, dim=1)

    def forward_core(self, head_output, rnn_states: Tensor):
        if isinstance(head_output, PackedSequence):
            return self._core_packed(head_output, rnn_states), None
        out, new_flat = self._core_bt(head_output[:, None], rnn_states)
        return out[:, 0], new_flat

    def _core_packed(self, seq: PackedSequence, rnn_states: Tensor) -> PackedSequence:
        # padded (N, T, D) in the original sequence order, which is the order of rnn_states
        padded, lengths = pad_packed_sequence(seq, batch_first=True)
        out, _ = self._core_bt(padded, rnn_states)  # padding sits after each sequence: causal, no effect
        # re-pack in exactly the input's data order (time-major over sequences sorted by length)
        sorted_idx = seq.sorted_indices
        if sorted_idx is None:
            sorted_idx = torch.arange(out.shape[0], device=out.device)
        rows = torch.cat([sorted_idx[: int(b)] for b in seq.batch_sizes])
        cols = torch.cat(
            [torch.full((int(b),), t, dtype=torch.long, device=out.device) for t, b in enumerate(seq.batch_sizes)]
        )
        return PackedSequence(out[rows, cols], seq.batch_sizes, seq.sorted_indices, seq.unsorted_indices)

    # decoder / heads -------------------------------------------------------------------------------------
    def forward_tail(self, core_output: Tensor, values_only: bool, sample_actions: bool) -> TensorDict:
        H = self.hidsize
        latent = core_output[:, :H]
        result = TensorDict(values=head_value(self.policy, latent))
        if self.prior is not None:
            self._prior_latent = core_output[:, H:].detach()
        if values_only:
            return result
        logits = head_log_probs(self.policy, latent)
        self.last_action_distribution = get_action_distribution(self.action_space, raw_logits=logits)
        result["action_logits"] = logits
        self._maybe_sample_actions(sample_actions, result)
        return result

    def forward(self, normalized_obs_dict, rnn_states, values_only: bool = False) -> TensorDict:
        x = self.forward_head(normalized_obs_dict)
        x, new_rnn_states = self.forward_core(x, rnn_states)
        result = self.forward_tail(x, values_only, sample_actions=True)
        result["new_rnn_states"] = new_rnn_states
        return result

    def prior_log_probs(self) -> Optional[Tensor]:
        """The frozen prior's log-probs ``(N, 8762)`` for the frames of the last tail call (None without prior)."""
        if self.prior is None or self._prior_latent is None:
            return None
        with torch.no_grad():
            return head_log_probs(self.prior, self._prior_latent)


def check_spaces(obs_space, action_space) -> None:
    """Raise a clear error unless the spaces are the VPT ones SF can use."""
    if not isinstance(obs_space, spaces.Dict) or OBS_KEY not in obs_space.spaces:
        raise TypeError(f"the VPT actor-critic needs a Dict observation space with a {OBS_KEY!r} key, got {obs_space!r}")
    pov = obs_space[OBS_KEY]
    if tuple(pov.shape) != POV_SHAPE or pov.dtype != "uint8":
        raise TypeError(f"obs[{OBS_KEY!r}] must be uint8 {POV_SHAPE} HWC frames, got {pov!r}")
    ok = (
        isinstance(action_space, spaces.Tuple)
        and len(action_space.spaces) == 2
        and all(isinstance(s, spaces.Discrete) for s in action_space.spaces)
        and [int(s.n) for s in action_space.spaces] == [N_BUTTON_CLASSES, N_CAMERA_CLASSES]
    )
    if not ok:
        raise TypeError(
            f"the VPT actor-critic needs the action space Tuple(Discrete({N_BUTTON_CLASSES}), "
            f"Discrete({N_CAMERA_CLASSES})), got {action_space!r}"
        )


# ------------------------------------------------------------------------------------------- construction
def build_policy_net(model: Optional[str] = None, weights: Optional[str] = None, preset: str = "tiny") -> PolicyNet:
    """A :class:`vpt_rl.model.PolicyNet` from an official ``.model`` file (or, without one, a preset) and optional
    weights (:func:`vpt_rl.checkpoint.build_policy`: strict, ``weights_only=True``)."""
    if model:
        return build_policy(model=model, weights=weights or None)
    return build_policy(preset=preset, weights=weights or None)


def policy_config_for(cfg) -> PolicyConfig:
    """The PolicyConfig the run will build (without building the network): from ``--model`` or ``--preset``."""
    model = getattr(cfg, "model", None)
    config, _ = policy_config(model if model else getattr(cfg, "preset", "tiny"))
    return config


def make_vpt_actor_critic(cfg, obs_space, action_space) -> VPTActorCritic:
    """SF actor-critic factory: the VPT policy (pretrained when ``--model``/``--weights`` are given)."""
    policy = build_policy_net(getattr(cfg, "model", None), getattr(cfg, "weights", None), getattr(cfg, "preset", "tiny"))
    prior = copy.deepcopy(policy) if float(getattr(cfg, "kl_coef", None) or 0.0) > 0 else None
    return VPTActorCritic(cfg, obs_space, action_space, policy, prior)
