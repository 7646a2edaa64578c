"""Evaluate agents on MineLite: tech-tree milestone success rates and mean shaped return over many seeds.

An *agent* acts in ``n`` envs at once (the policy is batched over them). Three kinds:

* :class:`PolicyAgent` - a VPT policy checkpoint (``.model`` + ``.weights``), stochastic sampling (or a
  consistent deterministic decoding with ``deterministic=True``) with its transformer memory carried and
  cut at episode starts;
* :class:`ExpertAgent` - the scripted expert (``envs/minelite/expert.py``), which reads the world state;
* :class:`RandomAgent` - uniform samples from the joint action space ``MultiDiscrete([8641, 121])``.

Every episode runs on ``make_vpt_env(env_id, reward="techtree", max_steps=max_ticks)`` with its own seed
(``seed, seed + 1, ...``); the milestones are read from ``info["milestones"]`` at the episode's end.

Example::

    from vpt_rl.evaluate import evaluate, make_agent
    res = evaluate(make_agent("foundation.model", weights="foundation.weights"), episodes=32, max_ticks=1000)
    print(res["mean_return"], res["success"]["stone_pickaxe"])

or ``vpt-rl evaluate --agent foundation.model --weights foundation.weights --episodes 32 --max-ticks 1000``.
"""
from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from vpt_rl.actions import N_BUTTON_CLASSES, N_CAMERA_CLASSES, noop_action
from vpt_rl.checkpoint import build_policy
from vpt_rl.envs import wrappers
from vpt_rl.envs.minelite.expert import ScriptedExpert
from vpt_rl.envs.registration import MINELITE_ID
from vpt_rl.envs.rewards import MILESTONE_ORDER, order_milestones  # noqa: F401  (MILESTONE_ORDER re-exported)
from vpt_rl.model import consistent_argmax, sample_action
from vpt_rl.train.runtime import autocast, check_precision, resolve_device


def steps_to_reach(steps: Sequence[float], returns: Sequence[float], target: float, window: int = 1) -> Optional[float]:
    """The env step at which the trailing ``window``-episode mean of ``returns`` first reaches ``target``
    (``None`` if it never does). ``steps[i]`` is the cumulative env-step count at episode ``i``'s end.

    >>> steps_to_reach([10, 20, 30, 40], [0.0, 1.0, 0.0, 2.0], 1.0, window=1)
    20
    >>> steps_to_reach([10, 20, 30, 40], [0.0, 1.0, 0.0, 2.0], 1.0, window=2) is None
    True
    """
    if len(steps) != len(returns):
        raise ValueError(f"steps ({len(steps)}) and returns ({len(returns)}) must have the same length")
    if window < 1:
        raise ValueError(f"window={window}: expected >= 1")
    r = np.asarray(returns, dtype=np.float64)
    if r.size == 0:
        return None
    c = np.concatenate([[0.0], np.cumsum(r)])
    for i in range(r.size):
        lo = max(0, i + 1 - window)
        if (c[i + 1] - c[lo]) / (i + 1 - lo) >= target - 1e-12:
            return steps[i]
    return None


# --------------------------------------------------------------------------------------------------
# Agents
# --------------------------------------------------------------------------------------------------


class Agent:
    """Acts in ``n`` envs at once. Subclasses set :attr:`name` and implement :meth:`act`."""

    name = "agent"
    raw_actions = False
    """True when :meth:`act` returns MineRL env-action dicts instead of joint ``[buttons, camera]`` indices."""

    def start(self, n_envs: int) -> None:
        """Called once before the first step with the number of envs."""
        self.n_envs = n_envs

    def episode_start(self, i: int, env: Any, seed: int) -> None:
        """Env ``i`` was just reset with ``seed`` (its memory must be cleared)."""

    def act(self, obs: Sequence[Mapping[str, Any]], first: np.ndarray, active: np.ndarray) -> List[Any]:
        """Actions for every env: ``obs[i]`` its observation, ``first[i]`` True on its episode's first
        step, ``active[i]`` False for envs that have no episode left (their action is ignored)."""
        raise NotImplementedError


class PolicyAgent(Agent):
    """A VPT policy checkpoint, batched over the envs, memory carried and cut at episode starts.

    :param model_path: the ``.model`` file (config); :param weights_path: the ``.weights`` file.
    :param deterministic: no sampling (the paper samples): ``True`` or ``"consistent"`` decodes with
        :func:`vpt_rl.model.consistent_argmax` (each button group by its marginal, a camera that agrees with
        the camera meta-action); ``"argmax"`` is the official per-head argmax, which for cloned policies
        often lands on an incoherent null action.
    :param seed: seeds the sampling generator.
    :param device: ``auto`` (cuda when there is a GPU, else cpu), ``cpu``, ``cuda`` or ``cuda:N``
        (:func:`~vpt_rl.train.runtime.resolve_device`).
    :param precision: ``fp32``, ``bf16`` (autocast, CPU or GPU) or ``fp16`` (autocast, GPU only) for the policy's
        forward pass; docs/performance.md gives how far bf16 moves the log-probabilities.
    """

    def __init__(self, model_path: str, weights_path: Optional[str] = None, *, deterministic: Union[bool, str] = False,
                 seed: int = 0, device: str = "auto", name: Optional[str] = None, precision: str = "fp32"):
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.device)
        self.net = build_policy(model=model_path, weights=weights_path, device=self.device).eval()
        if deterministic not in (False, True, "consistent", "argmax"):
            raise ValueError(f"deterministic must be False, True, 'consistent' or 'argmax', got {deterministic!r}")
        self.deterministic = "consistent" if deterministic is True else deterministic
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self.name = name or str(model_path)
        self.state = None

    def start(self, n_envs: int) -> None:
        super().start(n_envs)
        self.state = self.net.initial_state(n_envs, device=self.device)

    def act(self, obs, first, active):
        img = np.stack([np.asarray(o["pov"], dtype=np.uint8) for o in obs])[:, None]  # (B, 1, H, W, 3)
        with torch.inference_mode():
            img_t = torch.from_numpy(img).to(self.device)
            first_t = torch.from_numpy(np.asarray(first, dtype=bool)[:, None]).to(self.device)
            with autocast(self.device, self.precision):
                logp, _, state = self.net(img_t, first_t, self.state)
            logp = {k: v.float() for k, v in logp.items()}
            self.state = [(m, k.float(), v.float()) for m, k, v in state]  # the memory stays float32
            if self.deterministic == "consistent":
                buttons, camera = consistent_argmax(logp)
            else:
                buttons, camera = sample_action(logp, deterministic=self.deterministic == "argmax",
                                                generator=self.generator)
        b, c = buttons[:, 0].cpu().numpy(), camera[:, 0].cpu().numpy()
        return [np.array([b[i], c[i]], dtype=np.int64) for i in range(len(obs))]


class RandomAgent(Agent):
    """Uniform samples of the joint action ``[buttons in 0..8640, camera in 0..120]``."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def act(self, obs, first, active):
        b = self.rng.integers(0, N_BUTTON_CLASSES, size=len(obs))
        c = self.rng.integers(0, N_CAMERA_CLASSES, size=len(obs))
        return [np.array([b[i], c[i]], dtype=np.int64) for i in range(len(obs))]


class ExpertAgent(Agent):
    """The scripted expert; one :class:`ScriptedExpert` per env, rebuilt at each episode start.

    It acts with MineRL env-action dicts on the raw MineLite env (:attr:`raw_actions`), below the VPT
    action wrapper, so its camera is not quantised; the tech-tree reward is computed the same way."""

    name = "expert"
    raw_actions = True

    def __init__(self, seed: int = 0, epsilon: float = 0.0):
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon={epsilon}: expected a probability in [0, 1]")
        self.seed, self.epsilon = seed, epsilon
        self.experts: Dict[int, Any] = {}

    def episode_start(self, i, env, seed):
        self.experts[i] = ScriptedExpert(env.unwrapped, seed=self.seed * 100_003 + seed, epsilon=self.epsilon)

    def act(self, obs, first, active):
        return [self.experts[i].act(obs[i]) if active[i] else noop_action() for i in range(len(obs))]


def make_agent(spec: str, weights: Optional[str] = None, *, seed: int = 0, epsilon: float = 0.0,
               deterministic: Union[bool, str] = False, device: str = "auto", precision: str = "fp32") -> Agent:
    """``"expert"``, ``"random"`` or a ``.model`` path (with ``weights``) -> an :class:`Agent`; a policy agent runs
    on ``device`` at ``precision`` (:class:`PolicyAgent`)."""
    if spec == "expert":
        return ExpertAgent(seed=seed, epsilon=epsilon)
    if spec == "random":
        return RandomAgent(seed=seed)
    if not str(spec).endswith(".model"):
        raise ValueError(f"agent {spec!r}: expected 'expert', 'random' or a path to a .model file")
    return PolicyAgent(spec, weights, deterministic=deterministic, seed=seed, device=device, precision=precision)


# --------------------------------------------------------------------------------------------------
# Environments
# --------------------------------------------------------------------------------------------------


def make_eval_env(env_id: str, max_ticks: int, raw_actions: bool = False, **env_kwargs: Any):
    """The VPT stack with the tech-tree reward and episode statistics, truncated at ``max_ticks``.

    With ``raw_actions`` the env takes MineRL action dicts (the expert's) and returns the env's full
    observation, with the same ``TimeLimit``, ``TechTreeReward`` and ``EpisodeStats`` wrappers as
    :func:`~vpt_rl.envs.wrappers.make_vpt_env` (only its action and observation wrappers are left out)."""
    if not raw_actions:
        return wrappers.make_vpt_env(env_id, reward="techtree", max_steps=max_ticks, **env_kwargs)

    env = gym.make(env_id, max_episode_steps=int(max_ticks), **env_kwargs)
    return wrappers.EpisodeStats(wrappers.TechTreeReward(env, table="techtree"))


def _reset(env, seed: int):
    out = env.reset(seed=int(seed))
    return out if isinstance(out, tuple) else (out, {})


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


def evaluate(
    agent: Agent,
    episodes: int,
    max_ticks: int,
    *,
    seed: int = 0,
    env_id: str = MINELITE_ID,
    env_kwargs: Optional[Mapping[str, Any]] = None,
    batch_size: int = 8,
    progress: bool = True,
    desc: Optional[str] = None,
    env_fn=None,
) -> Dict[str, Any]:
    """Run ``episodes`` episodes (seeds ``seed .. seed + episodes - 1``) of at most ``max_ticks`` ticks,
    ``batch_size`` envs at a time, and return a JSON-able dict:

    ``mean_return``, ``std_return``, ``sem_return``, ``success`` (milestone -> fraction of episodes that
    reached it), ``milestones`` (their order), ``per_episode`` (seed, return, length, reached milestones),
    ``env_steps``, ``seconds``, ``steps_per_s``.

    :param env_fn: ``(raw_actions: bool) -> env`` replacing :func:`make_eval_env` (tests).
    """
    if not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes={episodes!r}: expected a positive int")
    if not isinstance(max_ticks, int) or max_ticks < 1:
        raise ValueError(f"max_ticks={max_ticks!r}: expected a positive int")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive int")
    n = min(batch_size, episodes)
    kw = dict(env_kwargs or {})
    if env_fn is None:
        env_fn = lambda raw: make_eval_env(env_id, max_ticks, raw_actions=raw, **kw)  # noqa: E731
    envs = [env_fn(agent.raw_actions) for _ in range(n)]
    agent.start(n)

    next_ep = 0
    ep_seed = [0] * n
    ep_return = np.zeros(n)
    ep_len = np.zeros(n, dtype=np.int64)
    active = np.zeros(n, dtype=bool)
    first = np.ones(n, dtype=bool)
    obs: List[Any] = [None] * n
    records: List[Dict[str, Any]] = []

    def start_episode(i: int) -> None:
        nonlocal next_ep
        if next_ep >= episodes:
            active[i] = False
            return
        ep_seed[i] = seed + next_ep
        next_ep += 1
        obs[i], _ = _reset(envs[i], ep_seed[i])
        agent.episode_start(i, envs[i], ep_seed[i])
        ep_return[i], ep_len[i], active[i], first[i] = 0.0, 0, True, True

    for i in range(n):
        start_episode(i)

    t0, total_steps = time.time(), 0
    bar = tqdm(total=episodes, desc=desc or f"eval {agent.name}", unit="ep", disable=not progress, dynamic_ncols=True)
    try:
        while active.any():
            actions = agent.act(obs, first.copy(), active.copy())
            first[:] = False
            for i in range(n):
                if not active[i]:
                    continue
                o, r, terminated, truncated, info = envs[i].step(actions[i])
                obs[i] = o
                ep_return[i] += float(r)
                ep_len[i] += 1
                total_steps += 1
                if terminated or truncated or ep_len[i] >= max_ticks:
                    records.append(_episode_record(ep_seed[i], ep_return[i], ep_len[i], info))
                    bar.update(1)
                    start_episode(i)
    finally:
        bar.close()
        for e in envs:
            e.close()
    seconds = time.time() - t0
    return summarize(records, seconds=seconds, env_steps=total_steps, max_ticks=max_ticks, agent=agent.name)


def _episode_record(seed: int, ret: float, length: int, info: Mapping[str, Any]) -> Dict[str, Any]:
    ms = info.get("milestones")
    if ms is None:
        raise KeyError("the env gave no info['milestones'] at the episode's end; evaluate needs the "
                       "vpt_rl.envs.wrappers episode-statistics wrapper (make_vpt_env adds it)")
    return {"seed": int(seed), "return": float(ret), "length": int(length),
            "milestones": {str(k): bool(v) for k, v in ms.items()}}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple:
    """The Wilson score interval of a success rate (95% for z = 1.96): ``(low, high)`` in [0, 1].

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n successes, which
    matters at the 10-30 episodes a CPU evaluation affords (0 of 10 is still compatible with 28%).
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize(records: Sequence[Mapping[str, Any]], **extra: Any) -> Dict[str, Any]:
    """Aggregate per-episode records (``return``, ``milestones``) into rates and return statistics.

    ``success_ci`` holds each milestone rate's 95% Wilson interval and ``return_ci95`` the mean return's
    normal-approximation 95% interval."""
    if not records:
        raise ValueError("no finished episodes to summarise")
    records = sorted(records, key=lambda r: r["seed"])
    rets = np.array([r["return"] for r in records], dtype=np.float64)
    names = order_milestones({m for r in records for m in r["milestones"]})
    success = {m: float(np.mean([bool(r["milestones"].get(m, False)) for r in records])) for m in names}
    std = float(rets.std(ddof=1)) if len(rets) > 1 else 0.0
    n = len(records)
    sem = std / math.sqrt(n)
    out = {
        "episodes": n,
        "mean_return": float(rets.mean()),
        "std_return": std,
        "sem_return": sem,
        "return_ci95": [float(rets.mean()) - 1.96 * sem, float(rets.mean()) + 1.96 * sem],
        "success": success,
        "success_ci": {m: list(wilson_interval(int(round(success[m] * n)), n)) for m in names},
        "milestones": names,
        "per_episode": list(records),
    }
    out.update(extra)
    if extra.get("seconds"):
        out["steps_per_s"] = extra.get("env_steps", 0) / extra["seconds"]
    return out


def format_rate(result: Mapping[str, Any], milestone: str) -> str:
    """``"20% (6-51)"``: a milestone's success rate with its 95% Wilson interval when the result has one."""
    rate = result["success"].get(milestone, 0.0)
    ci = (result.get("success_ci") or {}).get(milestone)
    if ci is None and result.get("episodes"):
        ci = wilson_interval(int(round(rate * result["episodes"])), int(result["episodes"]))
    return f"{100 * rate:.0f}%" + (f" ({100 * ci[0]:.0f}-{100 * ci[1]:.0f})" if ci is not None else "")


def format_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table of several agents' results (agent -> :func:`evaluate` output)."""
    names = order_milestones({m for r in results.values() for m in r["success"]})
    lines = ["| agent | episodes | mean return | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for agent, r in results.items():
        lines.append(f"| {agent} | {r['episodes']} | {r['mean_return']:.3f} +- {r.get('sem_return', 0.0):.3f} | "
                     + " | ".join(format_rate(r, m) for m in names) + " |")
    return "\n".join(lines)
