"""Stable-Baselines3 plug-in for VPT: a memory-carrying actor-critic policy and a PPO that trains it.

Quick start (pretrained prior, KL-regularised fine-tuning as in the VPT paper)::

    from vpt_rl.envs.wrappers import make_vpt_env
    from vpt_rl.policies.sb3 import VPTPolicy, VPTPPO

    model = VPTPPO(VPTPolicy, make_vpt_env("vpt_rl/MineLite-v0"),
                   policy_kwargs=dict(model="foundation-model-1x.model", weights="foundation-model-1x.weights"))
    model.learn(1_000_000)
    model.save("vpt_ppo.zip")                    # policy, frozen prior, optimizer, KL coefficient
    model.export_vpt("ft.model", "ft.weights")   # the fine-tuned net in the official format

A randomly initialised network instead: ``policy_kwargs=dict(config="tiny")`` (a preset name of
``vpt_rl.model.POLICY_PRESETS``, a ``.model`` file, a ``PolicyConfig`` or a dict of its fields); the paper
trains those with ``kl_coef=0.0, ent_coef=0.01``.

Design (details in ``README.md``):

* :class:`VPTPolicy` wraps ``vpt_rl.model.PolicyNet`` (official key names, strict loading, no orthogonal
  re-init). It reads the 128x128x3 RGB ``pov`` image in HWC order; :class:`VPTPPO` never inserts SB3's
  ``VecTransposeImage`` and the policy undoes it when an env already has it. The transformer memory is
  kept per env and travels through :meth:`VPTPolicy.predict` like sb3-contrib's recurrent states, so
  ``evaluate_policy`` and hand-written loops work.
* :class:`VPTRolloutBuffer` stores the policy's and the frozen prior's memory once per env and per
  ``segment_len`` steps (never per step), plus per-step uint8 frames, actions, rewards, values,
  log-probs and the prior's action probabilities in float16.
* :meth:`VPTPPO.train` re-runs each stored segment in time order from its stored memory, ``chunk_len``
  frames at a time, carrying a detached memory between chunks (episode-start flags cut it), and
  accumulates gradients over the chunks, so peak activation memory is that of one chunk.
"""
from __future__ import annotations

import copy
import os
from collections import deque
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.preprocessing import check_for_nested_spaces
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import explained_variance
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

try:  # SB3 >= 2.6
    from stable_baselines3.common.utils import FloatSchedule as _schedule
except ImportError:  # pragma: no cover - older SB3
    from stable_baselines3.common.utils import get_schedule_fn as _schedule

from vpt_rl import model as vpt_model
from vpt_rl.model import PolicyConfig, PolicyNet

__all__ = [
    "N_BUTTONS",
    "N_CAMERA",
    "POV_SHAPE",
    "VPTStates",
    "VPTPolicy",
    "VPTRolloutBuffer",
    "VPTPPO",
    "EpisodeStatsCallback",
    "EpisodeCSVCallback",
    "read_episodes_csv",
    "check_vpt_spaces",
    "make_vpt_vec_env",
    "finetune_sb3",
    "export_vpt",
]

N_BUTTONS = 8641  # vpt_rl.actions.N_BUTTON_CLASSES (joint button combinations of the official action space)
N_CAMERA = 121  # vpt_rl.actions.N_CAMERA_CLASSES (11 x 11 mu-law camera bins)
N_LOGITS = N_BUTTONS + N_CAMERA
POV_SHAPE = (128, 128, 3)  # RGB HWC, the resolution every released VPT policy reads
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
    expected_action = f"MultiDiscrete([{N_BUTTONS}, {N_CAMERA}])"
    if not isinstance(action_space, spaces.MultiDiscrete) or list(np.asarray(action_space.nvec).ravel()) != [N_BUTTONS, N_CAMERA]:
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


def _config_from(config: Any) -> Tuple[PolicyConfig, Optional[float]]:
    """Resolve ``config`` (preset name, ``.model`` path, PolicyConfig, dict) into ``(PolicyConfig, temperature)``;
    the temperature is None unless a ``.model`` file gives one."""
    if isinstance(config, PolicyConfig):
        return config, None
    if isinstance(config, dict):
        return PolicyConfig.from_kwargs(dict(config)), None
    if isinstance(config, (str, os.PathLike)):
        name = str(config)
        if name in vpt_model.POLICY_PRESETS:
            return vpt_model.POLICY_PRESETS[name], None
        if os.path.isfile(name):
            from vpt_rl.checkpoint import read_model_file

            d = read_model_file(name)
            try:
                args = d["model"]["args"]
                net_kwargs = args["net"]["args"]
            except (KeyError, TypeError) as e:
                raise ValueError(f"{name!r} is not an official .model file (no model.args.net.args)") from e
            temp = args.get("pi_head_opts", {}).get("temperature")
            return PolicyConfig.from_kwargs(dict(net_kwargs)), None if temp is None else float(temp)
        raise ValueError(
            f"config {name!r} is neither a preset ({', '.join(sorted(vpt_model.POLICY_PRESETS))}) nor an existing .model file"
        )
    raise TypeError(f"config must be a preset name, a .model path, a PolicyConfig or a dict, got {type(config).__name__}")


def _build_net(model: Optional[str], weights: Optional[str], config: Any, temperature: Optional[float]) -> PolicyNet:
    from vpt_rl.checkpoint import check_state_dict, load_policy, read_weights

    if model is not None and config is not None:
        raise ValueError(f"give either model={model!r} (a .model file) or config={config!r}, not both")
    if model is None and config is None:
        raise ValueError("VPTPolicy needs policy_kwargs model=<.model file> (with weights=<.weights>) or config=<preset name>")
    if model is not None:
        net = load_policy(str(model), None if weights is None else str(weights), device="cpu")
    else:
        cfg, file_temp = _config_from(config)
        net = PolicyNet(cfg, temperature=file_temp if file_temp is not None else 1.0)
        if weights is not None:
            sd = read_weights(str(weights))
            check_state_dict(net, sd, source=repr(str(weights)))
            net.load_state_dict(sd, strict=True)
    if temperature is not None and float(temperature) != net.temperature:
        net = _with_temperature(net, temperature)
    return net


def _with_temperature(net: PolicyNet, temperature: float) -> PolicyNet:
    new = PolicyNet(net.cfg, temperature=float(temperature))
    new.load_state_dict(net.state_dict(), strict=True)
    return new


def _net_temperature(net: PolicyNet) -> float:
    return float(net.temperature)


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
    """KL(prior || pi) per step, summed over both heads, from the prior's stored probabilities.

    :param prior_probs: (B, T, 8762) probabilities (any float dtype; float16 in the buffer), buttons then camera.
    :param logp: the current policy's log-probs ``{"buttons": (B, T, 8641), "camera": (B, T, 121)}``.
    :return: (B, T) float32.
    """
    p = prior_probs.float()
    lq = _logp_flat(logp)
    lp = th.log(p.clamp_min(1e-30))
    return th.where(p > 0, p * (lp - lq), th.zeros_like(p)).sum(-1)


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
    :param config: instead of ``model``: a preset name (``"tiny"``, ``"micro"``, ``"foundation-model-1x"``, ...),
        a ``.model`` path, a ``PolicyConfig`` or a dict of its fields; the network is randomly initialised
        (official init) unless ``weights`` is given.
    :param temperature: overrides the pi-head temperature (default: the ``.model`` file's, else 1.0).
    :param with_prior: keep a frozen copy of the starting network (``self.prior``) for the KL term.
    :param freeze_cnn: stop gradients into the ImpalaCNN (``net.img_process``) to save memory and time.
    :param reset_value_head: zero the value head (the paper zero-initialises it before RL); the EWMA
        normaliser keeps its official formulas.
    :param autocast_bf16: run forward passes under ``torch.autocast(dtype=bfloat16)`` (CPU or CUDA).
    :param optimizer_class: default ``torch.optim.AdamW``.
    :param optimizer_kwargs: default ``{"weight_decay": 0.04}`` for AdamW (the paper's value).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        model: Optional[str] = None,
        weights: Optional[str] = None,
        config: Any = None,
        temperature: Optional[float] = None,
        with_prior: bool = True,
        freeze_cnn: bool = False,
        reset_value_head: bool = True,
        autocast_bf16: bool = False,
        optimizer_class: type = th.optim.AdamW,
        optimizer_kwargs: Optional[Dict[str, Any]] = None,
        use_sde: bool = False,
        ortho_init: bool = False,
        **unsupported: Any,
    ):
        if unsupported:
            raise TypeError(
                f"VPTPolicy does not take {sorted(unsupported)}; its kwargs are model, weights, config, temperature, "
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
        net = _build_net(model, weights, config, temperature)
        self.pov_shape = tuple(int(v) for v in getattr(net.cfg, "img_shape", POV_SHAPE))
        self._chw = check_vpt_spaces(observation_space, action_space, self.pov_shape)
        self._pov_key, _ = _pov_space(observation_space)
        if reset_value_head:
            _reset_value_head(net)
        # SB3 attributes other code may read
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
            config=self.cfg.to_kwargs(),
            temperature=_net_temperature(self.vpt),
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
        from vpt_rl.checkpoint import save_policy

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
        n = pov.shape[0]
        state, first = self._state_and_first(state, episode_starts, n)
        logp, vpred, pi_state = self.run_net(self.vpt, pov[:, None], first[:, None], state.policy)
        buttons, camera = vpt_model.sample_action(logp, deterministic=deterministic)
        log_prob = vpt_model.action_log_prob(logp, buttons, camera)[:, 0]
        values = self.vpt.denormalize_value(vpred)[:, 0]
        actions = th.stack([buttons[:, 0], camera[:, 0]], dim=-1)
        prior_state = state.prior
        if self.prior is not None and state.prior is not None:
            _, _, prior_state = self.run_net(self.prior, pov[:, None], first[:, None], state.prior)
        return actions, values, log_prob, VPTStates(pi_state, prior_state)

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


# ---------------------------------------------------------------------------------------------------------
# rollout buffer
# ---------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------
# episode statistics (milestones)
# ---------------------------------------------------------------------------------------------------------


def _numeric_items(stats: Any) -> Dict[str, float]:
    out: Dict[str, float] = {}
    if isinstance(stats, dict):
        for k, v in stats.items():
            if isinstance(v, (bool, int, float, np.integer, np.floating)) or (isinstance(v, np.ndarray) and v.size == 1):
                out[str(k)] = float(v)
    return out


class EpisodeStatsCallback(BaseCallback):
    """Log the mean of each ``info["episode_extra_stats"]`` entry (the tech-tree milestones of
    ``make_vpt_env``) over the episodes that ended since the last rollout, as ``<prefix>/<key>``.

    Works with any SB3 algorithm; :class:`VPTPPO` already logs the same numbers itself.

    :param prefix: TensorBoard tag prefix.
    """

    def __init__(self, prefix: str = "milestones", verbose: int = 0):
        super().__init__(verbose)
        self.prefix = prefix
        self._episodes: List[Dict[str, float]] = []

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            stats = _numeric_items(info.get("episode_extra_stats"))
            if stats:
                self._episodes.append(stats)
        return True

    def _on_rollout_end(self) -> None:
        for k, v in _mean_stats(self._episodes).items():
            self.logger.record(f"{self.prefix}/{k}", v)
        self._episodes = []


def _mean_stats(episodes: Sequence[Dict[str, float]]) -> Dict[str, float]:
    keys = sorted({k for ep in episodes for k in ep})
    return {k: float(np.mean([ep[k] for ep in episodes if k in ep])) for k in keys}


# ---------------------------------------------------------------------------------------------------------
# algorithm
# ---------------------------------------------------------------------------------------------------------


class VPTPPO(PPO):
    """PPO for :class:`VPTPolicy`: memory stored once per segment, sequence replay in chunks, and the VPT
    paper's KL penalty towards the frozen starting policy.

    Loss per step (averaged over the minibatch's steps)::

        clipped PPO surrogate + vf_coef * (vpred - normalize(return))^2
            + kl_coef * KL(pi_prior || pi) - ent_coef * entropy(pi)

    ``kl_coef`` is multiplied by ``kl_decay`` after every iteration. Value targets are normalised by the
    network's EWMA normaliser (updated once per iteration with the rollout's returns). The first
    ``value_warmup_iters`` iterations train only the value head.

    :param policy: :class:`VPTPolicy` (or its subclass).
    :param env: a gymnasium env or VecEnv with ``Dict(pov=Box(0, 255, (128, 128, 3), uint8))`` observations and
        ``MultiDiscrete([8641, 121])`` actions (``make_vpt_env``), or an env id.
    :param learning_rate: 2e-5 (paper).
    :param n_steps: steps per env per rollout.
    :param batch_size: steps per optimizer step; a multiple of ``segment_len`` (default: the whole rollout).
    :param n_epochs: passes over the rollout.
    :param gamma: 0.999 (paper).
    :param gae_lambda: 0.95 (paper).
    :param clip_range: 0.2 (paper).
    :param clip_range_vf: optional value clipping, in normalised-value units.
    :param normalize_advantage: normalise advantages per minibatch.
    :param ent_coef: entropy bonus (0 with a prior; the paper uses 0.01 from random init).
    :param vf_coef: value-loss weight.
    :param max_grad_norm: 5.0 (paper).
    :param kl_coef: rho, weight of KL(prior || pi); 0.2 (paper). 0 disables the prior entirely.
    :param kl_decay: rho is multiplied by this after each iteration; 0.9995 (paper).
    :param value_warmup_iters: iterations at the start that train only the value head.
    :param segment_len: steps per stored memory (default ``n_steps``: once per rollout); must divide ``n_steps``.
    :param chunk_len: frames per forward/backward chunk in training (default: the net's ``timesteps``, at most
        ``segment_len``); must not exceed the net's ``timesteps``.
    :param target_kl: optional early stop on the approximate policy KL, as in SB3.
    :param stats_window_size: episodes averaged in rollout logs and milestone means.
    :param tensorboard_log: TensorBoard folder.
    :param policy_kwargs: :class:`VPTPolicy` kwargs (``model``/``weights`` or ``config``, ...). After the
        policy is built they are replaced by file-free kwargs, so a saved zip never re-reads the weights.
    :param verbose: SB3 verbosity.
    :param seed: random seed.
    :param device: torch device.
    """

    def __init__(
        self,
        policy: Union[str, type],
        env: Union[GymEnv, str, None],
        learning_rate: Union[float, Schedule] = 2e-5,
        n_steps: int = 256,
        batch_size: Optional[int] = None,
        n_epochs: int = 2,
        gamma: float = 0.999,
        gae_lambda: float = 0.95,
        clip_range: Union[float, Schedule] = 0.2,
        clip_range_vf: Union[None, float, Schedule] = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 5.0,
        kl_coef: float = 0.2,
        kl_decay: float = 0.9995,
        value_warmup_iters: int = 0,
        segment_len: Optional[int] = None,
        chunk_len: Optional[int] = None,
        target_kl: Optional[float] = None,
        stats_window_size: int = 100,
        tensorboard_log: Optional[str] = None,
        policy_kwargs: Optional[Dict[str, Any]] = None,
        verbose: int = 0,
        seed: Optional[int] = None,
        device: Union[th.device, str] = "auto",
        _init_setup_model: bool = True,
    ):
        if isinstance(policy, str) and policy not in self.policy_aliases:
            raise ValueError(f"unknown policy {policy!r}; use VPTPolicy")
        if env is not None:
            env = maybe_make_env(env, verbose)
            check_vpt_spaces(env.observation_space, env.action_space, _img_shape_hint(policy_kwargs))
        for name, v in (("kl_coef", kl_coef), ("ent_coef", ent_coef), ("vf_coef", vf_coef)):
            if v < 0:
                raise ValueError(f"{name}={v} must be >= 0")
        if not 0 < kl_decay <= 1:
            raise ValueError(f"kl_decay={kl_decay} must be in (0, 1]")
        if value_warmup_iters < 0:
            raise ValueError(f"value_warmup_iters={value_warmup_iters} must be >= 0")
        OnPolicyAlgorithm.__init__(
            self,
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=n_steps,
            gamma=gamma,
            gae_lambda=gae_lambda,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=False,
            sde_sample_freq=-1,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            device=device,
            seed=seed,
            _init_setup_model=False,
            supported_action_spaces=(spaces.MultiDiscrete,),
        )
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.clip_range = clip_range
        self.clip_range_vf = clip_range_vf
        self.normalize_advantage = normalize_advantage
        self.target_kl = target_kl
        self.kl_coef = float(kl_coef)
        self.kl_decay = float(kl_decay)
        self.value_warmup_iters = int(value_warmup_iters)
        self.segment_len = segment_len
        self.chunk_len = chunk_len
        self._n_iterations = 0
        self._last_states: Optional[VPTStates] = None
        self._last_kl_prior = float("nan")
        self._extra_stats_buffer: deque = deque(maxlen=stats_window_size)
        if _init_setup_model:
            self._setup_model()

    policy_aliases = {"VPTPolicy": VPTPolicy}

    # --- construction --------------------------------------------------------------------------------------
    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        """SB3's wrapping without ``VecTransposeImage``: the VPT net reads HWC images."""
        if not isinstance(env, VecEnv):
            if monitor_wrapper and not _is_wrapped(env, Monitor):
                env = Monitor(env)
            env = DummyVecEnv([lambda: env])
        check_for_nested_spaces(env.observation_space)
        return env

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        kwargs = dict(self.policy_kwargs)
        kwargs.setdefault("with_prior", self.kl_coef > 0)
        self.policy = self.policy_class(self.observation_space, self.action_space, self.lr_schedule, **kwargs)
        self.policy = self.policy.to(self.device)
        # file-free kwargs: save/load rebuilds the architecture and then loads the saved parameters
        self.policy_kwargs = self.policy.portable_kwargs()

        if self.segment_len is None:
            self.segment_len = self.n_steps
        if self.segment_len < 1 or self.n_steps % self.segment_len:
            raise ValueError(f"segment_len={self.segment_len} must be >= 1 and divide n_steps={self.n_steps}")
        timesteps = int(self.policy.cfg.timesteps)
        if self.chunk_len is None:
            self.chunk_len = min(timesteps, self.segment_len)
        if not 1 <= self.chunk_len <= timesteps:
            raise ValueError(f"chunk_len={self.chunk_len} must be in [1, timesteps={timesteps}] of the network config")
        rollout = self.n_steps * self.n_envs
        if self.batch_size is None:
            self.batch_size = rollout
        if self.batch_size % self.segment_len or not self.segment_len <= self.batch_size <= rollout:
            raise ValueError(
                f"batch_size={self.batch_size} must be a multiple of segment_len={self.segment_len} "
                f"and at most n_steps * n_envs = {rollout}"
            )
        if self.kl_coef > 0 and self.policy.prior is None:
            raise ValueError(f"kl_coef={self.kl_coef} needs a prior, but policy_kwargs has with_prior=False")
        self.rollout_buffer = VPTRolloutBuffer(  # type: ignore[assignment]
            self.n_steps,
            self.n_envs,
            self.segment_len,
            pov_shape=self.policy.pov_shape,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
            store_prior=self.policy.prior is not None,
            device=self.device,
        )
        self.clip_range = _schedule(self.clip_range)
        if self.clip_range_vf is not None:
            self.clip_range_vf = _schedule(self.clip_range_vf)
        if not hasattr(self, "_extra_stats_buffer"):
            self._extra_stats_buffer = deque(maxlen=self._stats_window_size)

    def _excluded_save_params(self) -> List[str]:
        return super()._excluded_save_params() + ["_last_states", "_extra_stats_buffer"]

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        check_vpt_spaces(env.observation_space, env.action_space, self.policy.pov_shape)
        super().set_env(env, force_reset=force_reset)
        self._last_states = None

    # --- rollouts ------------------------------------------------------------------------------------------
    def _step_nets(self, pov: th.Tensor, first: th.Tensor, states: VPTStates):
        pol = self.policy
        logp, vpred, pi_state = pol.run_net(pol.vpt, pov[:, None], first[:, None], states.policy)
        buttons, camera = vpt_model.sample_action(logp)
        log_prob = vpt_model.action_log_prob(logp, buttons, camera)[:, 0]
        values = pol.vpt.denormalize_value(vpred)[:, 0]
        prior_probs, prior_state = None, None
        if pol.prior is not None:
            plogp, _, prior_state = pol.run_net(pol.prior, pov[:, None], first[:, None], states.prior)
            prior_probs = _logp_flat(plogp)[:, 0].exp()
        actions = th.stack([buttons[:, 0], camera[:, 0]], dim=-1)
        return actions, values, log_prob, prior_probs, VPTStates(pi_state, prior_state)

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, rollout_buffer: VPTRolloutBuffer, n_rollout_steps: int) -> bool:  # type: ignore[override]
        """Fill the buffer with ``n_rollout_steps`` steps per env, storing the memory once per segment."""
        assert self._last_obs is not None, "No previous observation was provided"
        if n_rollout_steps != rollout_buffer.n_steps:
            raise ValueError(f"n_rollout_steps={n_rollout_steps} differs from the buffer's n_steps={rollout_buffer.n_steps}")
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        states = self._last_states
        if states is None or _state_batch(states.policy) != env.num_envs:
            states = self.policy.initial_state(env.num_envs)
            self._last_episode_starts = np.ones((env.num_envs,), dtype=bool)
        callback.on_rollout_start()
        new_obs, dones = self._last_obs, self._last_episode_starts
        for step in range(n_rollout_steps):
            if step % rollout_buffer.segment_len == 0:
                rollout_buffer.store_states(states)
            with th.no_grad():
                pov, _ = self.policy.obs_to_pov(self._last_obs)
                first = th.as_tensor(np.asarray(self._last_episode_starts), device=self.device).to(th.bool)
                actions, values, log_probs, prior_probs, next_states = self._step_nets(pov, first, states)
            actions_np = actions.cpu().numpy().astype(np.int64)
            new_obs, rewards, dones, infos = env.step(actions_np)
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            rewards = np.asarray(rewards, dtype=np.float32).copy()
            for idx, done in enumerate(dones):
                if done and infos[idx].get("terminal_observation") is not None and infos[idx].get("TimeLimit.truncated", False):
                    # bootstrap a time-out with the value of the final frame, seen with this env's memory
                    term = infos[idx]["terminal_observation"]
                    with th.no_grad():
                        one = VPTStates(vpt_model.state_index(next_states.policy, [idx]), None)
                        term_value = self.policy.predict_values(_batch_obs(term), one, np.zeros(1, dtype=bool))[0]
                    rewards[idx] += self.gamma * float(term_value)
            rollout_buffer.add(pov, actions_np, rewards, self._last_episode_starts, values, log_probs, prior_probs)
            self._last_obs = new_obs
            self._last_episode_starts = dones
            states = next_states
        self._last_states = states
        with th.no_grad():
            last_values = self.policy.predict_values(new_obs, states, dones)
        rollout_buffer.compute_returns_and_advantage(last_values.cpu().numpy(), np.asarray(dones))
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _update_info_buffer(self, infos: List[Dict[str, Any]], dones: Optional[np.ndarray] = None) -> None:
        super()._update_info_buffer(infos, dones)
        for info in infos:
            stats = _numeric_items(info.get("episode_extra_stats"))
            if stats:
                self._extra_stats_buffer.append(stats)

    def dump_logs(self, iteration: int = 0) -> None:
        """SB3's logs plus the mean ``episode_extra_stats`` (milestones) of the last episodes."""
        for k, v in _mean_stats(list(self._extra_stats_buffer)).items():
            self.logger.record(f"milestones/{k}", v)
        super().dump_logs(iteration)

    # --- training ------------------------------------------------------------------------------------------
    def replay(self) -> Dict[str, np.ndarray]:
        """Re-run every stored sequence from its stored memory (in ``chunk_len`` chunks, carrying the memory)
        with the current policy, without gradients.

        :return: ``log_probs`` of the stored actions (n_steps, n_envs) - equal to the buffer's ``log_probs``
            when the policy has not changed since the rollout - and ``kl_prior``, KL(prior || pi) per step
            from the stored prior probabilities (zeros without a prior).
        """
        buf = self.rollout_buffer
        shape = (buf.n_steps, buf.n_envs)
        out = {"log_probs": np.zeros(shape, dtype=np.float32), "kl_prior": np.zeros(shape, dtype=np.float32)}
        self.policy.set_training_mode(False)
        seqs = buf.sequences()
        with th.no_grad():
            data = buf.gather(seqs, self.device)
            state = data["state"]
            lps, kls = [], []
            for c0 in range(0, buf.segment_len, self.chunk_len):
                sl = slice(c0, c0 + self.chunk_len)
                _, lp, _, logp, state = self.policy.evaluate_actions(
                    data["pov"][:, sl], data["actions"][:, sl], data["episode_starts"][:, sl], state
                )
                lps.append(lp)
                kls.append(kl_from_prior_probs(data["prior_probs"][:, sl], logp) if buf.store_prior else th.zeros_like(lp))
            lp = th.cat(lps, dim=1).cpu().numpy()
            kl = th.cat(kls, dim=1).cpu().numpy()
        L = buf.segment_len
        for i, (e, s) in enumerate(seqs):
            out["log_probs"][s * L : (s + 1) * L, e] = lp[i]
            out["kl_prior"][s * L : (s + 1) * L, e] = kl[i]
        return out

    def train(self) -> None:
        """One PPO iteration over the rollout: minibatches of whole segments replayed in chunks."""
        pol = self.policy
        buf = self.rollout_buffer
        pol.set_training_mode(True)
        self._update_learning_rate(pol.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        clip_range_vf = None if self.clip_range_vf is None else self.clip_range_vf(self._current_progress_remaining)  # type: ignore[operator]
        warmup = self._n_iterations < self.value_warmup_iters
        use_kl = pol.prior is not None and self.kl_coef > 0
        with th.no_grad():
            pol.vpt.update_value_normalizer(th.as_tensor(buf.returns, device=self.device))
        value_params = {id(p) for p in pol.value_head_parameters()}
        trainable = pol.trainable_parameters()

        seqs = buf.sequences()
        seqs_per_batch = self.batch_size // buf.segment_len
        L, C = buf.segment_len, self.chunk_len
        stats: Dict[str, List[float]] = {k: [] for k in ("pg", "vf", "ent", "kl_prior", "clip", "approx_kl", "loss")}
        continue_training = True
        for epoch in range(self.n_epochs):
            order = np.random.permutation(len(seqs))
            for b0 in range(0, len(seqs), seqs_per_batch):
                mb = [seqs[i] for i in order[b0 : b0 + seqs_per_batch]]
                d = buf.gather(mb, self.device)
                adv = d["advantages"]
                if self.normalize_advantage and adv.numel() > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                with th.no_grad():
                    ret_n = pol.vpt.normalize_value(d["returns"])
                    old_v_n = pol.vpt.normalize_value(d["values"])
                n_total = float(adv.numel())
                pol.optimizer.zero_grad(set_to_none=True)
                state = d["state"]
                acc = {k: 0.0 for k in stats}
                for c0 in range(0, L, C):
                    sl = slice(c0, c0 + C)
                    vpred, logp_a, ent, logp, state = pol.evaluate_actions(d["pov"][:, sl], d["actions"][:, sl], d["episode_starts"][:, sl], state)
                    state = vpt_model.state_detach(state)
                    log_ratio = logp_a - d["log_probs"][:, sl]
                    ratio = th.exp(log_ratio)
                    a = adv[:, sl]
                    pg = -th.min(a * ratio, a * th.clamp(ratio, 1 - clip_range, 1 + clip_range)).sum() / n_total
                    if clip_range_vf is None:
                        v_used = vpred
                    else:
                        v_used = old_v_n[:, sl] + th.clamp(vpred - old_v_n[:, sl], -clip_range_vf, clip_range_vf)
                    vf = ((ret_n[:, sl] - v_used) ** 2).sum() / n_total
                    ent_sum = ent.sum() / n_total
                    if use_kl:
                        kl = kl_from_prior_probs(d["prior_probs"][:, sl], logp).sum() / n_total
                    else:
                        kl = th.zeros((), device=self.device)
                    if warmup:
                        loss = self.vf_coef * vf
                    else:
                        loss = pg + self.vf_coef * vf - self.ent_coef * ent_sum + (self.kl_coef * kl if use_kl else 0.0)
                    loss.backward()
                    with th.no_grad():
                        acc["pg"] += pg.item()
                        acc["vf"] += vf.item()
                        acc["ent"] += ent_sum.item()
                        acc["kl_prior"] += kl.item()
                        acc["loss"] += float(loss.item())
                        acc["clip"] += ((ratio - 1).abs() > clip_range).float().sum().item() / n_total
                        acc["approx_kl"] += ((ratio - 1) - log_ratio).sum().item() / n_total
                for k, v in acc.items():
                    stats[k].append(v)
                if self.target_kl is not None and acc["approx_kl"] > 1.5 * self.target_kl:
                    continue_training = False
                    pol.optimizer.zero_grad(set_to_none=True)
                    if self.verbose >= 1:
                        print(f"Early stopping at epoch {epoch}: approx_kl {acc['approx_kl']:.3f} > 1.5 * target_kl")
                    break
                if warmup:
                    for p in trainable:
                        if id(p) not in value_params:
                            p.grad = None
                th.nn.utils.clip_grad_norm_(trainable, self.max_grad_norm)
                pol.optimizer.step()
            self._n_updates += 1
            if not continue_training:
                break

        self._n_iterations += 1
        self._last_kl_prior = float(np.mean(stats["kl_prior"])) if stats["kl_prior"] else float("nan")
        log = self.logger.record
        log("train/entropy_loss", -float(np.mean(stats["ent"])))
        log("train/policy_gradient_loss", float(np.mean(stats["pg"])))
        log("train/value_loss", float(np.mean(stats["vf"])))
        log("train/approx_kl", float(np.mean(stats["approx_kl"])))
        log("train/clip_fraction", float(np.mean(stats["clip"])))
        log("train/loss", float(stats["loss"][-1]))
        log("train/explained_variance", float(explained_variance(buf.values.flatten(), buf.returns.flatten())))
        log("train/kl_prior", self._last_kl_prior)
        log("train/kl_coef", self.kl_coef)
        log("train/value_warmup", float(warmup))
        log("train/n_updates", self._n_updates, exclude="tensorboard")
        log("train/clip_range", clip_range)
        if clip_range_vf is not None:
            log("train/clip_range_vf", clip_range_vf)
        self.kl_coef *= self.kl_decay

    def learn(self, total_timesteps: int, callback=None, log_interval: int = 1, tb_log_name: str = "VPTPPO",
              reset_num_timesteps: bool = True, progress_bar: bool = False) -> "VPTPPO":
        """SB3's ``learn`` (the prior is never re-synced: after ``load`` it is the saved one)."""
        if reset_num_timesteps:
            self._last_states = None
        return super().learn(total_timesteps, callback=callback, log_interval=log_interval, tb_log_name=tb_log_name,
                             reset_num_timesteps=reset_num_timesteps, progress_bar=progress_bar)

    def export_vpt(self, model_path: str, weights_path: str) -> None:
        """Write the fine-tuned network as an official ``.model`` / ``.weights`` pair."""
        self.policy.export(model_path, weights_path)


def _img_shape_hint(policy_kwargs: Optional[Dict[str, Any]]) -> Tuple[int, ...]:
    """The image shape to validate an env against before the network exists (128x128x3 for every
    released model; a custom ``config`` may choose another)."""
    pk = policy_kwargs or {}
    src = pk.get("config") if pk.get("config") is not None else pk.get("model")
    if src is None:
        return POV_SHAPE
    try:
        cfg, _ = _config_from(src)
    except (ValueError, TypeError, OSError):
        return POV_SHAPE  # the policy constructor reports a bad config with its own message
    return tuple(int(v) for v in cfg.img_shape)


def _state_batch(state: State) -> int:
    for layer in state:
        for t in layer:
            if isinstance(t, th.Tensor):
                return int(t.shape[0])
    return -1


def _batch_obs(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: np.asarray(v)[None] for k, v in obs.items()}
    return np.asarray(obs)[None]


def _is_wrapped(env: Any, wrapper: type) -> bool:
    while env is not None:
        if isinstance(env, wrapper):
            return True
        env = getattr(env, "env", None)
    return False


# ---------------------------------------------------------------------------------------------------------
# end-to-end helpers
# ---------------------------------------------------------------------------------------------------------


def _make_env_fn(env_id: str, seed: int, env_kwargs: Dict[str, Any]) -> Callable[[], Any]:
    def _thunk():
        from vpt_rl.envs.wrappers import make_vpt_env

        env = make_vpt_env(env_id, **env_kwargs)
        env = Monitor(env)
        env.reset(seed=seed)
        return env

    return _thunk


def make_vpt_vec_env(env_id: str, n_envs: int = 1, seed: int = 0, vec_env: str = "dummy", **env_kwargs: Any) -> VecEnv:
    """A ``DummyVecEnv`` (``vec_env="dummy"``) or ``SubprocVecEnv`` (``"subproc"``) of
    ``Monitor(make_vpt_env(env_id, **env_kwargs))``, env ``i`` seeded with ``seed + i``."""
    if n_envs < 1:
        raise ValueError(f"n_envs={n_envs} must be >= 1")
    fns = [_make_env_fn(env_id, seed + i, env_kwargs) for i in range(n_envs)]
    if vec_env == "dummy":
        return DummyVecEnv(fns)
    if vec_env == "subproc":
        return SubprocVecEnv(fns)
    raise ValueError(f"vec_env={vec_env!r}; expected 'dummy' or 'subproc'")


EPISODES_CSV_HEADER = "steps,return,length,milestones"
_EPISODES_CSV_HEADER_V1 = "steps,return,length"  # files written before the milestones column (still read)


class EpisodeCSVCallback(BaseCallback):
    """Logs every finished episode as a row ``steps,return,length,milestones`` of a CSV file: the total
    env-step count (over all envs) when the episode ended, its return and its length, from the
    ``info["episode"]`` that SB3's ``Monitor`` sets at an episode's end (episodes of envs that are not
    ``Monitor``-wrapped are not seen), and the tech-tree milestones it reached, ``;``-joined, from the
    ``info["milestones"]`` of :class:`~vpt_rl.envs.wrappers.EpisodeStats` (empty without it). This is the
    learning curve at episode resolution, and the milestone rates over training (the paper's Fig. 9).

    On construction, rows already in ``path`` with ``steps <= resume_steps`` are kept (a resumed run
    continues its curve; rows written after the checkpoint it resumes from are dropped). The file is
    rewritten atomically (temp file + ``os.replace``) by :meth:`flush`, which :func:`finetune_sb3` calls
    before every checkpoint and at the end, and which also runs at each rollout's end and training's end.

    :param path: the CSV file.
    :param resume_steps: keep the existing rows up to this env-step count; ``None`` starts a new file.
    """

    def __init__(self, path: Union[str, os.PathLike], resume_steps: Optional[int] = None, verbose: int = 0):
        super().__init__(verbose)
        self.path = os.fspath(path)
        self.rows: List[Tuple[int, float, int, Tuple[str, ...]]] = []
        if resume_steps is not None and os.path.isfile(self.path):
            self.rows = [r for r in read_episodes_csv(self.path, milestones=True) if r[0] <= int(resume_steps)]

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            ep = info.get("episode") if isinstance(info, dict) else None
            if ep is not None:
                reached = info.get("milestones") or {}
                names = tuple(k for k, v in reached.items() if v) if isinstance(reached, dict) else ()
                self.rows.append((int(self.num_timesteps), float(ep["r"]), int(ep["l"]), names))
        return True

    def _on_rollout_end(self) -> None:
        self.flush()

    def _on_training_end(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Write every row so far to :attr:`path` (atomically)."""
        text = EPISODES_CSV_HEADER + "\n" + "".join(f"{s},{r!r},{n},{';'.join(m)}\n" for s, r, n, m in self.rows)
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(d, f".{os.path.basename(self.path)}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.path)


def read_episodes_csv(path: Union[str, os.PathLike], milestones: bool = False) -> List[tuple]:
    """The rows of a file written by :class:`EpisodeCSVCallback`: ``(steps, return, length)``, or with
    ``milestones=True`` ``(steps, return, length, (milestone, ...))`` (empty for files from before the
    milestones column)."""
    with open(path) as f:
        lines = f.read().splitlines()
    header = lines[0].strip() if lines else ""
    if header not in (EPISODES_CSV_HEADER, _EPISODES_CSV_HEADER_V1):
        raise ValueError(f"{os.fspath(path)!r}: expected a CSV with header {EPISODES_CSV_HEADER!r}, "
                         f"got {lines[0] if lines else '(empty file)'!r}")
    n_cols = header.count(",") + 1
    rows = []
    for k, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            parts = line.split(",")
            if len(parts) != n_cols:
                raise ValueError
            s, r, n = int(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise ValueError(f"{os.fspath(path)!r} line {k}: expected {header!r}, got {line!r}") from None
        names = tuple(m for m in parts[3].split(";") if m) if n_cols == 4 else ()
        rows.append((s, r, n, names) if milestones else (s, r, n))
    return rows


class _ProgressAndCheckpoint(BaseCallback):
    """tqdm progress bar plus atomic periodic checkpoints (temp file + os.replace); ``before_save`` runs
    just before each checkpoint (the episode log is flushed there, so that it never lags a checkpoint)."""

    def __init__(self, total: int, path: str, every: int, desc: str = "sb3 finetune",
                 before_save: Optional[Callable[[], None]] = None):
        super().__init__()
        self.total, self.path, self.every, self.desc = total, path, every, desc
        self.before_save = before_save
        self._bar = None
        self._last_save = 0

    def _on_training_start(self) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=self.total, initial=min(self.num_timesteps, self.total), unit="step", desc=self.desc)
        self._last_save = self.num_timesteps

    def _on_step(self) -> bool:
        if self._bar is not None:
            self._bar.n = min(self.num_timesteps, self.total)
            self._bar.refresh()
        if self.every > 0 and self.num_timesteps - self._last_save >= self.every:
            if self.before_save is not None:
                self.before_save()
            _atomic_save(self.model, self.path)
            self._last_save = self.num_timesteps
        return True

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _atomic_save(model: VPTPPO, path: str) -> None:
    tmp = path + f".tmp{os.getpid()}.zip"
    model.save(tmp)
    os.replace(tmp, path)


def finetune_sb3(
    env_id: str,
    total_steps: int,
    model: Optional[str] = None,
    weights: Optional[str] = None,
    config: Any = None,
    kl_coef: Optional[float] = None,
    ent_coef: Optional[float] = None,
    n_envs: int = 2,
    n_steps: int = 128,
    out_dir: str = "runs/sb3",
    seed: int = 0,
    learning_rate: Optional[float] = None,
    vec_env: str = "dummy",
    checkpoint_every: Optional[int] = None,
    device: str = "cpu",
    policy_kwargs: Optional[Dict[str, Any]] = None,
    ppo_kwargs: Optional[Dict[str, Any]] = None,
    export: bool = True,
    callbacks: Optional[Sequence[BaseCallback]] = None,
    episodes_csv: Optional[Union[str, os.PathLike]] = None,
    progress_desc: str = "sb3 finetune",
    **env_kwargs: Any,
) -> str:
    """Fine-tune (or train from scratch) a VPT policy with :class:`VPTPPO` and return the saved zip's path.

    Resumes from ``out_dir/checkpoint.zip`` when it exists (training continues up to ``total_steps``).
    Writes ``out_dir/final.zip`` (atomically), TensorBoard logs under ``out_dir/tb`` and, with ``export``,
    ``out_dir/policy.model`` / ``out_dir/policy.weights`` in the official format.

    :param env_id: gymnasium id passed to ``make_vpt_env`` (e.g. ``"vpt_rl/MineLite-v0"``).
    :param total_steps: env steps in total (over all envs).
    :param model: official ``.model`` file (pretrained start with ``weights``).
    :param weights: official ``.weights`` file.
    :param config: preset / ``.model`` / dict for a randomly initialised net (instead of ``model``).
    :param kl_coef: rho; default 0.2 with pretrained weights, 0 otherwise (paper).
    :param ent_coef: default 0 with pretrained weights, 0.01 otherwise (paper).
    :param n_envs: parallel envs.
    :param n_steps: steps per env per rollout.
    :param out_dir: output folder.
    :param seed: seed of the algorithm and of the envs (env i gets seed + i).
    :param learning_rate: default 2e-5 with pretrained weights (paper), 3e-4 from scratch.
    :param vec_env: ``"dummy"`` or ``"subproc"``.
    :param checkpoint_every: env steps between checkpoints (default: every rollout).
    :param device: torch device.
    :param policy_kwargs: extra :class:`VPTPolicy` kwargs (``freeze_cnn``, ``autocast_bf16``, ...).
    :param ppo_kwargs: extra :class:`VPTPPO` kwargs (``n_epochs``, ``batch_size``, ``segment_len``, ...).
    :param export: also write the official ``.model`` / ``.weights`` pair.
    :param callbacks: extra SB3 callbacks, run after the built-in progress/checkpoint callback.
    :param episodes_csv: path (relative paths are inside ``out_dir``) of a per-episode learning curve
        written by :class:`EpisodeCSVCallback`: ``steps,return,length,milestones`` rows, ``steps`` = env steps over all
        envs when the episode ended. Flushed before every checkpoint; on resume the rows up to the
        checkpoint's step count are kept, so the curve of a resumed run equals an uninterrupted one's rows.
    :param progress_desc: the progress bar's label.
    :param env_kwargs: passed to ``make_vpt_env``.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps={total_steps} must be >= 1")
    pretrained = weights is not None
    kl_coef = (0.2 if pretrained else 0.0) if kl_coef is None else float(kl_coef)
    ent_coef = (0.0 if pretrained else 0.01) if ent_coef is None else float(ent_coef)
    learning_rate = (2e-5 if pretrained else 3e-4) if learning_rate is None else float(learning_rate)
    os.makedirs(out_dir, exist_ok=True)
    ckpt = os.path.join(out_dir, "checkpoint.zip")
    final = os.path.join(out_dir, "final.zip")
    venv = make_vpt_vec_env(env_id, n_envs=n_envs, seed=seed, vec_env=vec_env, **env_kwargs)
    try:
        if os.path.isfile(ckpt):
            algo = VPTPPO.load(ckpt, env=venv, device=device)
            algo.tensorboard_log = os.path.join(out_dir, "tb")
            reset = False
        else:
            pk = dict(policy_kwargs or {})
            pk.update({k: v for k, v in (("model", model), ("weights", weights), ("config", config)) if v is not None})
            algo = VPTPPO(
                VPTPolicy, venv, learning_rate=learning_rate, n_steps=n_steps, kl_coef=kl_coef, ent_coef=ent_coef,
                tensorboard_log=os.path.join(out_dir, "tb"), policy_kwargs=pk, seed=seed, device=device, **(ppo_kwargs or {}),
            )
            reset = True
        curve = None
        if episodes_csv is not None:
            csv_path = os.path.join(out_dir, os.fspath(episodes_csv))
            curve = EpisodeCSVCallback(csv_path, resume_steps=None if reset else algo.num_timesteps)
        remaining = total_steps - algo.num_timesteps
        if remaining > 0:
            every = checkpoint_every if checkpoint_every is not None else n_steps * n_envs
            # the curve logs a step's episodes before the checkpoint callback may save at that step
            cbs: List[BaseCallback] = [curve] if curve is not None else []
            cbs.append(_ProgressAndCheckpoint(total_steps, ckpt, every, progress_desc,
                                              before_save=curve.flush if curve is not None else None))
            cbs += list(callbacks or [])
            algo.learn(remaining, callback=CallbackList(cbs), reset_num_timesteps=reset, tb_log_name="VPTPPO")
            if curve is not None:
                curve.flush()
            _atomic_save(algo, ckpt)
        if curve is not None:
            curve.flush()
        _atomic_save(algo, final)
        if export:
            algo.export_vpt(os.path.join(out_dir, "policy.model"), os.path.join(out_dir, "policy.weights"))
    finally:
        venv.close()
    return final


def export_vpt(zip_path: str, model_path: str, weights_path: str, device: str = "cpu") -> None:
    """Export the network of a saved :class:`VPTPPO` zip as an official ``.model`` / ``.weights`` pair."""
    algo = VPTPPO.load(zip_path, device=device)
    algo.export_vpt(model_path, weights_path)
