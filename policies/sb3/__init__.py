"""Stable-Baselines3 plug-in for VPT: a memory-carrying actor-critic policy and a PPO that trains it.

Quick start (pretrained prior, KL-regularised fine-tuning as in the VPT paper)::

    from vpt_rl.envs.wrappers import make_vpt_env
    from vpt_rl.policies.sb3 import VPTPolicy, VPTPPO

    model = VPTPPO(VPTPolicy, make_vpt_env("vpt_rl/MineLite-v0"),
                   policy_kwargs=dict(model="foundation-model-1x.model", weights="foundation-model-1x.weights"))
    model.learn(1_000_000)
    model.save("vpt_ppo.zip")                    # policy, frozen prior, optimizer, KL coefficient
    model.export_vpt("ft.model", "ft.weights")   # the fine-tuned net in the official format

A randomly initialised network instead: ``policy_kwargs=dict(preset="tiny")`` (a preset name of
``vpt_rl.model.POLICY_PRESETS``, a ``.model`` file, a ``PolicyConfig`` or a dict of its fields; ``config=`` is
the old name); the paper trains those with ``kl_coef=0.0, ent_coef=0.01``.

Modules (laid out like sb3-contrib's RecurrentPPO):

* :mod:`.policy`: space checks and :class:`VPTPolicy` (wraps ``vpt_rl.model.PolicyNet``, per-env memory
  through :meth:`VPTPolicy.predict` like sb3-contrib's recurrent states);
* :mod:`.buffer`: :class:`VPTRolloutBuffer` (memory stored once per env and segment, frames per step);
* :mod:`.ppo`: :class:`VPTPPO` (segment replay in chunks, KL to the frozen prior);
* :mod:`.callbacks`: milestone statistics, the episodes CSV and atomic checkpoints;
* :mod:`.finetune`: :func:`make_vpt_vec_env`, :func:`finetune_sb3`, :func:`export_vpt`.

The episodes-CSV format lives in :mod:`vpt_rl.policies.episodes_csv`, which does not import SB3.
"""
from vpt_rl.policies.episodes_csv import EPISODES_CSV_HEADER, read_episodes_csv
from vpt_rl.policies.sb3.buffer import VPTRolloutBuffer
from vpt_rl.policies.sb3.callbacks import EpisodeCSVCallback, EpisodeStatsCallback
from vpt_rl.policies.sb3.finetune import export_vpt, finetune_sb3, make_vpt_vec_env
from vpt_rl.policies.sb3.policy import (
    N_BUTTONS,
    N_CAMERA,
    N_LOGITS,
    POV_SHAPE,
    State,
    VPTPolicy,
    VPTStates,
    check_vpt_spaces,
    kl_from_prior_probs,
)
from vpt_rl.policies.sb3.ppo import VPTPPO

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
