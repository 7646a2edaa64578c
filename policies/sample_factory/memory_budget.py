"""How much memory Sample Factory 2.1.1 will allocate for a VPT run, and refusing runs that cannot fit.

SF stores the recurrent state at *every* rollout step (``rnn_states`` has ``rollout + 1`` entries per
trajectory buffer), next to the observation and the action logits (8762 floats for the VPT heads). The
formulas below follow ``sample_factory/algo/utils/shared_buffers.py`` and ``algo/learning/batcher.py``:

* trajectory buffers (shared memory unless ``--serial_mode``):
  ``num_buffers = max(num_workers * num_envs_per_worker * (2 if async_rl else 1),
  accumulate * num_batches_per_epoch * batch_size // rollout)``, each buffer ``(rollout + 1)`` steps;
* policy-output buffers (shared): one step per env, including the new state;
* learner training batches (private RAM of the learner): ``accumulate`` batches of
  ``num_batches_per_epoch * batch_size // rollout`` trajectories,

where ``accumulate = num_batches_to_accumulate`` when ``async_rl`` else 1. Activation memory for the
backward pass is not part of this estimate.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from vpt_rl.actions import N_BUTTON_CLASSES, N_CAMERA_CLASSES
from vpt_rl.policies.sample_factory.envs import POV_SHAPE

MiB = 1024 * 1024


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes SF will allocate for buffers (see the module docstring for the formulas)."""

    state_bytes_per_env: int
    step_bytes: int
    num_traj_buffers: int
    shared_bytes: int
    learner_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.shared_bytes + self.learner_bytes

    def describe(self) -> str:
        return (
            f"VPT memory estimate: state {self.state_bytes_per_env / MiB:.2f} MiB/env, {self.step_bytes / MiB:.3f} "
            f"MiB per stored step, {self.num_traj_buffers} trajectory buffers -> shared memory "
            f"{self.shared_bytes / MiB:.1f} MiB, learner batches {self.learner_bytes / MiB:.1f} MiB, total "
            f"{self.total_bytes / MiB:.1f} MiB"
        )


def estimate_memory(cfg, state_floats: int, obs_bytes: int = math.prod(POV_SHAPE),
                    n_logits: int = N_BUTTON_CLASSES + N_CAMERA_CLASSES, n_actions: int = 2) -> MemoryEstimate:
    """Estimate SF's buffer memory for config ``cfg`` (SF's argparse namespace / AttrDict).

    :param state_floats: floats of flat recurrent state per env (``StateLayout.size``)
    :param obs_bytes: bytes of one observation (uint8 128x128x3 POV by default)
    :param n_logits: action-distribution parameters stored per step (VPT heads: 8641 + 121)
    :param n_actions: numbers per stored action (2: buttons, camera)
    """
    rollout = int(cfg.rollout)
    if rollout < 1 or int(cfg.batch_size) % rollout:
        raise ValueError(f"--batch_size ({cfg.batch_size}) must be a positive multiple of --rollout ({rollout})")
    state_bytes = 4 * int(state_floats)
    per_step_out = 4 * (n_actions + n_logits + 3)  # actions, action_logits, log_prob, value, policy_version
    # obs, rnn_states, values, valids have rollout+1 entries; the policy outputs and env outputs have rollout
    traj_bytes = (rollout + 1) * (obs_bytes + state_bytes + 4 + 1) + rollout * (per_step_out + 4 + 1 + 1 + 4)
    async_rl = bool(cfg.async_rl)  # BufferMgr doubles buffers and accumulates batches only when async
    accumulate = int(cfg.num_batches_to_accumulate) if async_rl else 1
    n_envs = int(cfg.num_workers) * int(cfg.num_envs_per_worker)
    traj_per_iter = int(cfg.num_batches_per_epoch) * (int(cfg.batch_size) // rollout)
    num_buffers = max(n_envs * (2 if async_rl else 1), accumulate * traj_per_iter)
    policy_outputs = n_envs * (per_step_out + state_bytes)
    shared = num_buffers * traj_bytes + policy_outputs
    learner = accumulate * traj_per_iter * traj_bytes
    return MemoryEstimate(state_bytes, traj_bytes // (rollout + 1), num_buffers, shared, learner)


def available_memory() -> tuple[int, int]:
    """(free bytes in /dev/shm, available RAM bytes), from ``os.statvfs`` and /proc/meminfo (Linux)."""
    shm = 0
    try:
        st = os.statvfs("/dev/shm")
        shm = st.f_bavail * st.f_frsize
    except OSError:
        pass
    ram = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    ram = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if ram == 0:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return shm, ram


def default_budget_bytes() -> int:
    """Half of the available RAM (and never more than the free /dev/shm, which SF's shared buffers use)."""
    shm, ram = available_memory()
    budget = ram // 2
    if shm:
        budget = min(budget, shm)
    return int(budget)


class MemoryBudgetError(RuntimeError):
    """A config whose SF buffers would not fit into the memory budget."""


def check_budget(est: MemoryEstimate, budget_bytes: int, with_prior: bool, serial_mode: bool) -> None:
    """Raise :class:`MemoryBudgetError` naming the knobs to turn when ``est`` exceeds ``budget_bytes``."""
    if est.total_bytes <= budget_bytes:
        return
    knobs = [
        "--rollout (fewer stored steps per trajectory)",
        "--num_workers / --num_envs_per_worker (fewer trajectory buffers)",
        "--batch_size or --num_batches_to_accumulate (smaller learner batches)",
    ]
    if with_prior:
        knobs.append("--kl_coef 0 (drops the prior's memory, halving the state)")
    knobs.append("a smaller model (--preset, or fewer attention-memory frames)")
    knobs.append("--memory_budget_mb (raise the budget, if the machine really has the memory)")
    where = "RAM" if serial_mode else "shared memory + learner RAM"
    raise MemoryBudgetError(
        f"{est.describe()}; this exceeds the memory budget of {budget_bytes / MiB:.0f} MiB ({where}). "
        f"Lower one of: " + "; ".join(knobs)
    )
