"""PPO for the VPT policy: memory stored once per segment, sequence replay in chunks, and the VPT paper's
KL penalty towards the frozen starting policy.

:meth:`VPTPPO.train` re-runs each stored segment in time order from its stored memory, ``chunk_len`` frames
at a time, carrying a detached memory between chunks (episode-start flags cut it), and accumulates gradients
over the chunks, so peak activation memory is that of one chunk.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.preprocessing import check_for_nested_spaces
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import explained_variance
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

try:  # SB3 >= 2.6
    from stable_baselines3.common.utils import FloatSchedule as _schedule
except ImportError:  # pragma: no cover - older SB3
    from stable_baselines3.common.utils import get_schedule_fn as _schedule

from vpt_rl import model as vpt_model
from vpt_rl.checkpoint import policy_config
from vpt_rl.policies.sb3.buffer import VPTRolloutBuffer
from vpt_rl.policies.sb3.callbacks import _mean_stats, _numeric_items
from vpt_rl.policies.sb3.policy import (
    POV_SHAPE,
    State,
    VPTPolicy,
    VPTStates,
    check_vpt_spaces,
    kl_from_prior_probs,
)


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
    :param batch_size: steps per optimizer step; a multiple of ``segment_len`` (default: the whole rollout, which
        follows the number of envs when a zip is loaded onto another env with ``VPTPPO.load(zip, env=...)``).
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
    :param policy_kwargs: :class:`VPTPolicy` kwargs (``model``/``weights`` or ``preset``, ...). After the
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
        # the constructor's numbers, kept as given: vpt-rl's resume files rebuild the algorithm from them
        # (policies/sb3/resume.py) and `vpt-rl finetune` compares them with a rerun's settings
        self.hyperparams: Dict[str, Any] = dict(
            learning_rate=learning_rate, n_steps=n_steps, batch_size=batch_size, n_epochs=n_epochs, gamma=gamma,
            gae_lambda=gae_lambda, clip_range=clip_range, clip_range_vf=clip_range_vf,
            normalize_advantage=normalize_advantage, ent_coef=ent_coef, vf_coef=vf_coef, max_grad_norm=max_grad_norm,
            kl_coef=kl_coef, kl_decay=kl_decay, value_warmup_iters=value_warmup_iters, segment_len=segment_len,
            chunk_len=chunk_len, target_kl=target_kl, stats_window_size=stats_window_size, seed=seed,
        )
        # batch_size=None means "the whole rollout", which follows the env count when a zip is loaded onto
        # another number of envs (SB3's load sets n_envs from the new env before _setup_model)
        self.whole_rollout_batch = batch_size is None
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
        if self.batch_size is None or getattr(self, "whole_rollout_batch", False):
            self.batch_size = rollout
        if self.batch_size % self.segment_len or not self.segment_len <= self.batch_size <= rollout:
            raise ValueError(
                f"batch_size={self.batch_size} must be a multiple of segment_len={self.segment_len} "
                f"and at most n_steps * n_envs = {self.n_steps} * {self.n_envs} = {rollout} (loading a zip onto "
                "fewer envs: VPTPPO.load(..., custom_objects={'batch_size': ...}))"
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
                actions, values, log_probs, prior_probs, next_states = self.policy.step(pov, first, states)
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
        # one step of the core schedule kl_coef_at (rho_i = rho_0 * decay ** i), applied to the current value so
        # that a loaded zip, which stores only the current coefficient, continues the same schedule
        self.kl_coef = vpt_model.kl_coef_at(self.kl_coef, self.kl_decay, 1)

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
    released model; a custom ``preset`` may choose another)."""
    pk = policy_kwargs or {}
    src = next((pk[k] for k in ("preset", "config", "model") if pk.get(k) is not None), None)
    if src is None:
        return POV_SHAPE
    try:
        cfg, _ = policy_config(src)
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

