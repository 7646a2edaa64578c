"""The SB3 policy: space checks, the VPT network and :class:`VPTPolicy` (an actor-critic with memory).

:class:`VPTPolicy` wraps ``vpt_rl.model.PolicyNet`` (official key names, strict loading, no orthogonal
re-init). It reads the 128x128x3 RGB ``pov`` image in HWC order; :class:`~vpt_rl.policies.sb3.VPTPPO` never
inserts SB3's ``VecTransposeImage`` and the policy undoes it when an env already has it. The transformer
memory is kept per env and travels through :meth:`VPTPolicy.predict` like sb3-contrib's recurrent states, so
``evaluate_policy`` and hand-written loops work.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import Schedule

from vpt_rl import model as vpt_model
from vpt_rl.actions import N_BUTTON_CLASSES, N_CAMERA_CLASSES
from vpt_rl.checkpoint import build_policy, save_policy
from vpt_rl.envs.wrappers import VPT_RESOLUTION
from vpt_rl.model import PolicyConfig, PolicyNet

N_BUTTONS = N_BUTTON_CLASSES  # old public name of this module (vpt_rl.actions.N_BUTTONS is another count)
N_CAMERA = N_CAMERA_CLASSES
N_LOGITS = N_BUTTON_CLASSES + N_CAMERA_CLASSES
POV_SHAPE = (*VPT_RESOLUTION, 3)  # RGB HWC (128, 128, 3), the resolution every released VPT policy reads
State = List[Tuple[th.Tensor, th.Tensor, th.Tensor]]  # vpt_rl.model's State: (mask, k, v) per layer


class VPTStates(NamedTuple):
    """Per-env transformer memory, passed to and returned by :meth:`VPTPolicy.predict` (like sb3-contrib's
    ``RNNStates``). ``policy`` is the trained net's memory, ``prior`` the frozen prior's (``None`` when the
    prior is not run). Both are ``vpt_rl.model`` ``State`` lists batched over envs."""

    policy: State
    prior: Optional[State] = None


# ---------------------------------------------------------------------------------------------------------
# spaces
# ---------------------------------------------------------------------------------------------------------


def _pov_space(observation_space: spaces.Space) -> Tuple[Optional[str], spaces.Box]:
    """Return ``(key, box)`` of the image the policy reads: ``("pov", box)`` for Dict spaces, ``(None, box)``
    for a bare Box."""
    if isinstance(observation_space, spaces.Dict):
        if "pov" not in observation_space.spaces:
            raise ValueError(
                f"observation space {observation_space} has no 'pov' key; expected Dict(pov=Box(0, 255, (128, 128, 3), uint8), ...)"
            )
        return "pov", observation_space.spaces["pov"]
    if isinstance(observation_space, spaces.Box):
        return None, observation_space
    raise ValueError(
        f"observation space {observation_space} is not supported; expected Dict(pov=Box(0, 255, (128, 128, 3), uint8)) or that Box"
    )


def check_vpt_spaces(observation_space: spaces.Space, action_space: spaces.Space, img_shape: Sequence[int] = POV_SHAPE) -> bool:
    """Check an env's spaces against what the VPT policy needs and return whether the image is channel-first.

    :param observation_space: ``Dict(pov=Box(0, 255, (H, W, 3), uint8), ...)`` or that Box; ``(3, H, W)`` (what
        SB3's ``VecTransposeImage`` produces) is accepted too.
    :param action_space: must be ``MultiDiscrete([8641, 121])``.
    :param img_shape: the network's ``(H, W, 3)``.
    :return: True when the image is channel-first (CHW).
    :raises ValueError: naming the offending space and what was expected.
    """
    expected_action = f"MultiDiscrete([{N_BUTTON_CLASSES}, {N_CAMERA_CLASSES}])"
    if not isinstance(action_space, spaces.MultiDiscrete) or list(np.asarray(action_space.nvec).ravel()) != [N_BUTTON_CLASSES, N_CAMERA_CLASSES]:
        raise ValueError(
            f"action space {action_space} does not fit the VPT policy; expected {expected_action} "
            "(wrap the env with vpt_rl.envs.wrappers.make_vpt_env)"
        )
    _, box = _pov_space(observation_space)
    hwc = tuple(int(v) for v in img_shape)
    chw = (hwc[2], hwc[0], hwc[1])
    if box.dtype != np.uint8 or tuple(box.shape) not in (hwc, chw):
        raise ValueError(
            f"image observation space {box} does not fit the VPT policy; expected Box(0, 255, {hwc}, uint8) "
            f"(or {chw} after VecTransposeImage)"
        )
    return tuple(box.shape) == chw and chw != hwc


# ---------------------------------------------------------------------------------------------------------
# network construction
# ---------------------------------------------------------------------------------------------------------


def _reset_value_head(net: PolicyNet) -> None:
    """Zero the value head and reset its EWMA normaliser to the untrained state (paper, appendix G)."""
    with th.no_grad():
        for p in net.value_head.parameters():
            p.zero_()


def _logp_flat(logp: Dict[str, th.Tensor]) -> th.Tensor:
    """(B, T, 8762) log-probs: buttons then camera."""
    b = logp["buttons"]
    c = logp["camera"]
    return th.cat([b.reshape(*b.shape[:2], -1), c.reshape(*c.shape[:2], -1)], dim=-1)


def _squeeze_logp(logp: Dict[str, th.Tensor]) -> Dict[str, th.Tensor]:
    return {k: v.reshape(*v.shape[:2], -1).float() for k, v in logp.items()}


def kl_from_prior_probs(prior_probs: th.Tensor, logp: Dict[str, th.Tensor]) -> th.Tensor:
    """KL(prior || pi) per step, summed over both heads, from the prior's stored probabilities
    (:func:`vpt_rl.model.kl_divergence` on the flat heads).

    :param prior_probs: (B, T, 8762) probabilities (any float dtype; float16 in the buffer), buttons then camera.
    :param logp: the current policy's log-probs ``{"buttons": (B, T, 8641), "camera": (B, T, 121)}``.
    :return: (B, T) float32.
    """
    p = prior_probs.float()
    return vpt_model.kl_divergence(th.log(p.clamp_min(1e-30)), _logp_flat(logp), probs_p=p)


# ---------------------------------------------------------------------------------------------------------
# policy
# ---------------------------------------------------------------------------------------------------------


class VPTPolicy(ActorCriticPolicy):
    """SB3 actor-critic policy around ``vpt_rl.model.PolicyNet`` with per-env transformer memory.

    Build it through an algorithm (``VPTPPO(VPTPolicy, env, policy_kwargs=...)``); ``policy_kwargs`` are the
    keyword arguments below.

    :param observation_space: ``Dict(pov=Box(0, 255, (128, 128, 3), uint8), ...)`` (or the Box itself; CHW accepted).
    :param action_space: ``MultiDiscrete([8641, 121])`` (buttons, camera) as ``make_vpt_env`` gives.
    :param lr_schedule: learning-rate schedule (SB3 passes it).
    :param model: path of an official ``.model`` file (config and temperature); with ``weights`` the released
        weights are loaded strictly.
    :param weights: path of the ``.weights`` state dict (``torch.load(weights_only=True)``).
    :param preset: instead of ``model``: a preset name (``"tiny"``, ``"micro"``, ``"foundation-model-1x"``, ...),
        a ``.model`` path, a ``PolicyConfig`` or a dict of its fields; the network is randomly initialised
        (official init) unless ``weights`` is given. ``config`` is its old name and still accepted.
    :param temperature: overrides the pi-head temperature (default: the ``.model`` file's, else 1.0).
    :param with_prior: keep a frozen copy of the starting network (``self.prior``) for the KL term.
    :param freeze_cnn: stop gradients into the ImpalaCNN (``net.img_process``) to save memory and time.
    :param reset_value_head: zero the value head (the paper zero-initialises it before RL); the EWMA
        normaliser keeps its official formulas.
    :param autocast_bf16: run forward passes under ``torch.autocast(dtype=bfloat16)`` (CPU or CUDA).
    :param optimizer_class: default ``torch.optim.AdamW``.
    :param optimizer_kwargs: default ``{"weight_decay": 0.04}`` for AdamW (the paper's value).

    Why ``BasePolicy.__init__`` and not ``ActorCriticPolicy.__init__``: the latter builds SB3's features
    extractor, MLP extractor, action and value nets and an optimizer over them, with their own (orthogonal)
    initialisation and random draws; ``PolicyNet`` replaces every one of them, so building them would only
    waste memory and change the random stream. The class still subclasses ``ActorCriticPolicy`` because
    ``OnPolicyAlgorithm`` / ``PPO`` declare their policy as one (type hints, ``policy_aliases``) and user code
    may test ``isinstance(model.policy, ActorCriticPolicy)``; the ``ActorCriticPolicy`` entry points that would
    reach the missing nets (``forward``, ``_predict``, ``evaluate_actions``, ``get_distribution``,
    ``predict_values``) are all overridden here. The attributes set by hand after the network (``ortho_init``,
    ``use_sde``, ``share_features_extractor``, ``net_arch``, ``dist_kwargs``) are the ones the remaining
    inherited code and SB3 tools read, set to what describes this policy (no SDE, one shared trunk).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        model: Optional[str] = None,
        weights: Optional[str] = None,
        preset: Any = None,
        temperature: Optional[float] = None,
        with_prior: bool = True,
        freeze_cnn: bool = False,
        reset_value_head: bool = True,
        autocast_bf16: bool = False,
        optimizer_class: type = th.optim.AdamW,
        optimizer_kwargs: Optional[Dict[str, Any]] = None,
        use_sde: bool = False,
        ortho_init: bool = False,
        config: Any = None,
        **unsupported: Any,
    ):
        if unsupported:
            raise TypeError(
                f"VPTPolicy does not take {sorted(unsupported)}; its kwargs are model, weights, preset (or config), temperature, "
                "with_prior, freeze_cnn, reset_value_head, autocast_bf16, optimizer_class, optimizer_kwargs"
            )
        if use_sde:
            raise ValueError("use_sde=True is for continuous actions; the VPT action space is MultiDiscrete")
        if ortho_init:
            raise ValueError("ortho_init=True would overwrite the VPT initialisation / pretrained weights; leave it False")
        if optimizer_kwargs is None:
            optimizer_kwargs = {"weight_decay": 0.04} if optimizer_class is th.optim.AdamW else {}
        BasePolicy.__init__(
            self,
            observation_space,
            action_space,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=False,
        )
        if model is None and preset is None and config is None:
            raise ValueError("VPTPolicy needs policy_kwargs model=<.model file> (with weights=<.weights>) or preset=<preset name>")
        net = build_policy(model, weights, preset, temperature, device="cpu", config=config)
        self.pov_shape = tuple(int(v) for v in getattr(net.cfg, "img_shape", POV_SHAPE))
        self._chw = check_vpt_spaces(observation_space, action_space, self.pov_shape)
        self._pov_key, _ = _pov_space(observation_space)
        if reset_value_head:
            _reset_value_head(net)
        # ActorCriticPolicy attributes that inherited code and SB3 tools read (see the class docstring)
        self.ortho_init = False
        self.use_sde = False
        self.share_features_extractor = True
        self.net_arch = None
        self.dist_kwargs = None
        self.with_prior = bool(with_prior)
        self.freeze_cnn = bool(freeze_cnn)
        self.autocast_bf16 = bool(autocast_bf16)

        self.vpt = net
        if self.with_prior:
            self.prior = copy.deepcopy(net)
            self.prior.requires_grad_(False)
            self.prior.eval()
        else:
            self.prior = None
        if self.freeze_cnn:
            self.vpt.net.img_process.requires_grad_(False)
        # The normaliser's statistics are requires_grad=False parameters: they stay out of the optimizer.
        self.optimizer = self.optimizer_class(self.trainable_parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    # --- bookkeeping ---------------------------------------------------------------------------------------
    @property
    def cfg(self) -> PolicyConfig:
        """The network's ``PolicyConfig``."""
        return self.vpt.cfg

    def trainable_parameters(self) -> List[th.nn.Parameter]:
        """Parameters the optimizer updates (the prior, frozen parts and normaliser stats excluded)."""
        return [p for p in self.vpt.parameters() if p.requires_grad]

    def value_head_parameters(self) -> List[th.nn.Parameter]:
        """Parameters updated during value-only warm-up."""
        return [p for p in self.vpt.value_head.parameters() if p.requires_grad]

    def portable_kwargs(self) -> Dict[str, Any]:
        """``policy_kwargs`` that rebuild this policy without reading any file (what ``save`` pickles)."""
        return dict(
            preset=self.cfg.to_kwargs(),
            temperature=float(self.vpt.temperature),
            with_prior=self.with_prior,
            freeze_cnn=self.freeze_cnn,
            reset_value_head=False,
            autocast_bf16=self.autocast_bf16,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )

    def _get_constructor_parameters(self) -> Dict[str, Any]:
        data = dict(observation_space=self.observation_space, action_space=self.action_space, lr_schedule=self._dummy_schedule)
        data.update(self.portable_kwargs())
        return data

    def train(self, mode: bool = True) -> "VPTPolicy":
        super().train(mode)
        if self.prior is not None:
            self.prior.eval()  # the prior never leaves eval mode
        return self

    def export(self, model_path: str, weights_path: str) -> None:
        """Write the trained network as an official ``.model`` / ``.weights`` pair (``checkpoint.save_policy``)."""
        save_policy(self.vpt, model_path, weights_path)

    # --- memory ------------------------------------------------------------------------------------------
    def initial_state(self, n_envs: int) -> VPTStates:
        """Empty memory for ``n_envs`` envs (prior included when it is kept)."""
        pi = self.vpt.initial_state(n_envs, device=self.device)
        prior = self.prior.initial_state(n_envs, device=self.device) if self.prior is not None else None
        return VPTStates(pi, prior)

    # --- observations ------------------------------------------------------------------------------------
    def obs_to_pov(self, observation: Any) -> Tuple[th.Tensor, bool]:
        """Turn an observation (dict or array, numpy or torch, batched or not, HWC or CHW) into a uint8
        (B, H, W, 3) tensor on the policy's device; also return whether it was batched."""
        x = observation
        if isinstance(x, dict):
            if self._pov_key is None or self._pov_key not in x:
                raise ValueError(f"observation dict with keys {sorted(x)} has no 'pov' image")
            x = x[self._pov_key]
        t = th.as_tensor(np.asarray(x) if not isinstance(x, th.Tensor) else x)
        h, w, c = self.pov_shape
        if t.ndim == 3:
            t, batched = t[None], False
        elif t.ndim == 4:
            batched = True
        else:
            raise ValueError(f"pov observation of shape {tuple(t.shape)} is neither (H, W, 3) nor (B, H, W, 3) for {self.pov_shape}")
        if tuple(t.shape[1:]) == (c, h, w) and tuple(t.shape[1:]) != (h, w, c):
            t = t.permute(0, 2, 3, 1)  # undo VecTransposeImage
        if tuple(t.shape[1:]) != (h, w, c):
            raise ValueError(f"pov observation of shape {tuple(t.shape)} does not match the network's image shape {self.pov_shape}")
        if t.dtype != th.uint8:
            t = t.round().clamp(0, 255).to(th.uint8)
        return t.to(self.device), batched

    # --- forward passes ------------------------------------------------------------------------------------
    def _autocast(self):
        return th.autocast(device_type=self.device.type, dtype=th.bfloat16, enabled=self.autocast_bf16)

    def run_net(self, net: PolicyNet, pov: th.Tensor, first: th.Tensor, state: State) -> Tuple[Dict[str, th.Tensor], th.Tensor, State]:
        """One forward pass of ``net`` (the policy's ``self.vpt`` or ``self.prior``) over (B, T) frames.

        :return: ``(logp, vpred, new_state)`` with float32 ``logp`` ``{"buttons": (B, T, 8641), "camera": (B, T, 121)}``
            and normalised ``vpred`` (B, T).
        """
        with self._autocast():
            logp, vpred, new_state = net(pov, first.to(th.bool), state)
        if self.autocast_bf16:  # keep the carried memory in float32 so every call sees the same dtypes
            new_state = [(m, k.float(), v.float()) for m, k, v in new_state]
        return _squeeze_logp(logp), vpred.reshape(pov.shape[0], pov.shape[1]).float(), new_state

    def forward(
        self, obs: Any, state: Optional[VPTStates] = None, episode_starts: Any = None, deterministic: bool = False
    ) -> Tuple[th.Tensor, th.Tensor, th.Tensor, VPTStates]:
        """One environment step for a batch of envs (the sb3-contrib recurrent signature).

        :param obs: batched observation (dict with ``pov`` or the image).
        :param state: memory from the previous call (``None``: empty memory).
        :param episode_starts: (B,) bools, True where an episode starts at this frame (the memory is cut).
        :param deterministic: argmax actions instead of sampling.
        :return: actions (B, 2) long, denormalised values (B,), log-probs (B,), the new memory.
        """
        pov, _ = self.obs_to_pov(obs)
        state, first = self._state_and_first(state, episode_starts, pov.shape[0])
        actions, values, log_prob, _, new_state = self.step(pov, first, state, deterministic)
        return actions, values, log_prob, new_state

    def step(
        self, pov: th.Tensor, first: th.Tensor, state: VPTStates, deterministic: bool = False
    ) -> Tuple[th.Tensor, th.Tensor, th.Tensor, Optional[th.Tensor], VPTStates]:
        """One frame per env through the policy and, when its memory is given, the frozen prior: the step that
        :meth:`forward` and ``VPTPPO``'s rollouts share.

        :param pov: uint8 (B, H, W, 3) frames on the policy's device.
        :param first: (B,) bools, True where an episode starts at this frame.
        :param state: the memory before this frame; ``state.prior=None`` skips the prior.
        :param deterministic: argmax actions instead of sampling.
        :return: actions (B, 2) long, denormalised values (B,), log-probs (B,), the prior's action
            probabilities (B, 8762) (buttons then camera; ``None`` when the prior is not run) and the new memory.
        """
        logp, vpred, pi_state = self.run_net(self.vpt, pov[:, None], first[:, None], state.policy)
        buttons, camera = vpt_model.sample_action(logp, deterministic=deterministic)
        log_prob = vpt_model.action_log_prob(logp, buttons, camera)[:, 0]
        values = self.vpt.denormalize_value(vpred)[:, 0]
        prior_probs, prior_state = None, state.prior
        if self.prior is not None and state.prior is not None:
            prior_logp, _, prior_state = self.run_net(self.prior, pov[:, None], first[:, None], state.prior)
            prior_probs = _logp_flat(prior_logp)[:, 0].exp()
        actions = th.stack([buttons[:, 0], camera[:, 0]], dim=-1)
        return actions, values, log_prob, prior_probs, VPTStates(pi_state, prior_state)

    def _state_and_first(self, state: Any, episode_starts: Any, n: int) -> Tuple[VPTStates, th.Tensor]:
        if state is None:
            state = self.initial_state(n)
            first = th.ones(n, dtype=th.bool, device=self.device)
        else:
            if not isinstance(state, VPTStates):
                state = VPTStates(state, None)
            if episode_starts is None:
                first = th.zeros(n, dtype=th.bool, device=self.device)
            else:
                first = th.as_tensor(np.asarray(episode_starts), device=self.device).reshape(n).to(th.bool)
        return state, first

    def predict(
        self,
        observation: Any,
        state: Optional[VPTStates] = None,
        episode_start: Optional[np.ndarray] = None,
        deterministic: bool = False,
    ) -> Tuple[np.ndarray, VPTStates]:
        """Actions for a batch of envs, carrying the transformer memory like sb3-contrib's recurrent policies.

        Pass the returned state back on the next call together with ``episode_start`` (True where the env
        was reset), exactly as ``evaluate_policy`` does; ``state=None`` starts with an empty memory.

        :return: ``(actions (B, 2) int64, new_state)``; ``(2,)`` for an unbatched observation.
        """
        self.set_training_mode(False)
        if isinstance(observation, tuple) and len(observation) == 2 and isinstance(observation[1], dict):
            raise ValueError("predict() got an (obs, info) tuple: pass the observation only (VecEnv API)")
        with th.no_grad():
            pov, batched = self.obs_to_pov(observation)
            # predict() needs only the policy's memory; the prior's is not run.
            if isinstance(state, VPTStates):
                state = VPTStates(state.policy, None)
            st, first = self._state_and_first(state, episode_start, pov.shape[0])
            logp, _, pi_state = self.run_net(self.vpt, pov[:, None], first[:, None], st.policy)
            buttons, camera = vpt_model.sample_action(logp, deterministic=deterministic)
        actions = th.stack([buttons[:, 0], camera[:, 0]], dim=-1).cpu().numpy().astype(np.int64)
        if not batched:
            actions = actions[0]
        return actions, VPTStates(pi_state, None)

    def _predict(self, observation: Any, deterministic: bool = False) -> th.Tensor:
        """Memoryless action (each call is treated as the first frame of an episode); prefer :meth:`predict`."""
        actions, _, _, _ = self.forward(observation, None, None, deterministic)
        return actions

    def evaluate_actions(  # type: ignore[override]
        self, pov: th.Tensor, actions: th.Tensor, episode_starts: th.Tensor, state: State
    ) -> Tuple[th.Tensor, th.Tensor, th.Tensor, Dict[str, th.Tensor], State]:
        """Re-run time-ordered sequences: ``pov`` (B, T, H, W, 3) uint8, ``actions`` (B, T, 2), ``episode_starts``
        (B, T), ``state`` the policy memory before the first frame.

        :return: normalised values (B, T), action log-probs (B, T), entropies (B, T), the log-prob dict and the
            memory after the last frame (with gradients; detach it before carrying it on).
        """
        logp, vpred, new_state = self.run_net(self.vpt, pov, episode_starts, state)
        log_prob = vpt_model.action_log_prob(logp, actions[..., 0].long(), actions[..., 1].long())
        ent = vpt_model.entropy(logp)
        return vpred, log_prob, ent, logp, new_state

    def predict_values(  # type: ignore[override]
        self, obs: Any, state: Optional[VPTStates] = None, episode_starts: Any = None
    ) -> th.Tensor:
        """Denormalised values (B,) of one batched frame given the memory before it (the memory is not advanced)."""
        pov, _ = self.obs_to_pov(obs)
        st, first = self._state_and_first(state, episode_starts, pov.shape[0])
        _, vpred, _ = self.run_net(self.vpt, pov[:, None], first[:, None], st.policy)
        return self.vpt.denormalize_value(vpred)[:, 0]

    def get_distribution(self, obs: Any) -> Any:  # type: ignore[override]
        raise NotImplementedError(
            "VPTPolicy has memory: use predict(obs, state, episode_start) or forward(obs, state, episode_starts); "
            "log-probs of sequences come from evaluate_actions(pov, actions, episode_starts, state)"
        )


