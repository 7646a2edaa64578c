"""Sample Factory 2.1.1 plug-in for VPT (imported as ``vpt_rl.policies.sample_factory``; needs the ``sf`` extra).

We plug into Sample Factory, we do not fork it:

* :func:`register_vpt_components` registers the SF env names (``vpt_minelite``, ``vpt_minerl_*``,
  ``vpt_debug``; see :mod:`.envs`) and the VPT actor-critic factory (:mod:`.actor_critic`);
* :func:`add_vpt_args` adds the VPT options (``--model``, ``--weights``, ``--preset``, ``--kl_coef``,
  ``--kl_decay``, ``--episode_steps``, ``--env_kwargs``, ``--memory_budget_mb``, ``--export_prefix``) and VPT-friendly
  defaults for SF's own options (``--device`` also takes vpt-rl's ``auto`` / ``cuda``, the default ``auto`` being
  ``gpu`` when CUDA is available, else ``cpu``: :func:`vpt_rl.train.runtime.sf_device`);
* :mod:`.train` is the entry point, and :func:`finetune_sf` the Python API used by the pipeline.

Train (serial, then async with 2 workers), then resume the same experiment::

    python -m vpt_rl.policies.sample_factory.train --env vpt_minelite --model policy.model \\
        --weights policy.weights --experiment sf_minelite --train_dir runs/sf --serial_mode True \\
        --async_rl False --train_for_env_steps 2000
    python -m vpt_rl.policies.sample_factory.train --env vpt_minelite --model policy.model \\
        --weights policy.weights --experiment sf_minelite_async --num_workers 2 --train_for_env_steps 4000
"""
from __future__ import annotations

import argparse

from vpt_rl.policies.sample_factory.envs import DEBUG_ENV_NAME, SF_ENV_IDS, make_vpt_sf_env

__all__ = ["register_vpt_components", "add_vpt_args", "finetune_sf", "VPT_SF_DEFAULTS"]

# SF options whose defaults we change for VPT (all still overridable on the command line)
VPT_SF_DEFAULTS = dict(
    device="auto",  # vpt-rl's spelling: gpu when CUDA is available, else cpu (train.prepare_cfg resolves it)
    use_rnn=True,  # the transformer memory travels in SF's recurrent state ...
    rnn_type="gru",  # ... declared as a 1-layer "GRU" state of --rnn_size floats (set from the model)
    rnn_num_layers=1,
    actor_critic_share_weights=True,  # separate actor/critic weights + RNN crash in SF 2.1.1
    normalize_input=False,  # the network scales uint8 frames itself
    normalize_returns=True,  # VPT's value head predicts normalised returns
    policy_initialization="torch_default",
    exploration_loss_coeff=0.0,  # the KL to the prior replaces the entropy bonus (VPT paper)
    learning_rate=2e-5,
    gamma=0.999,
    gae_lambda=0.95,
    ppo_clip_ratio=0.2,
    max_grad_norm=5.0,
    rollout=32,
    batch_size=256,
    num_workers=2,
    num_envs_per_worker=4,
    # no double-buffered sampling: on a few CPU cores it only halves the inference batch, and per-frame cost
    # of the VPT CNN drops sharply with the batch (measured: 1 -> 4 frames = 2.9x cheaper per frame)
    worker_num_splits=1,
    set_workers_cpu_affinity=False,
    decorrelate_envs_on_one_worker=False,
    heartbeat_reporting_interval=600,
    heartbeat_interval=60,
    save_every_sec=60,
    experiment_summaries_interval=10,
    stats_avg=10,  # SF writes episode stats (milestones) once this many episodes were seen; 100 suits long runs
)


def register_vpt_components() -> None:
    """Register the VPT envs and the VPT actor-critic with Sample Factory's global registries.

    Safe to call more than once. Factories are importable top-level functions, as SF pickles them into its
    worker processes.
    """
    # lazy: Sample Factory is an optional extra; the package itself imports without it
    from sample_factory.algo.utils.context import global_env_registry, global_model_factory
    from sample_factory.envs.env_utils import register_env

    from vpt_rl.policies.sample_factory.actor_critic import make_vpt_actor_critic

    registry = global_env_registry()
    for name in list(SF_ENV_IDS) + [DEBUG_ENV_NAME]:
        if registry.get(name) is not make_vpt_sf_env:
            register_env(name, make_vpt_sf_env)
    global_model_factory().register_actor_critic_factory(make_vpt_actor_critic)


def add_vpt_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the VPT options to an SF parser (from ``parse_sf_args``) and set VPT defaults for SF options."""
    g = parser.add_argument_group("VPT")
    g.add_argument("--model", default=None, type=str, help="official .model file (architecture); else --preset")
    g.add_argument("--weights", default=None, type=str,
                   help="official .weights file loaded after construction (default: the one beside --model)")
    g.add_argument("--preset", default="tiny", type=str,
                   help="vpt_rl.model.POLICY_PRESETS name or .model file of a randomly initialised net, when no --model")
    g.add_argument("--kl_coef", default=None, type=float,
                   help="coefficient rho of KL(prior || policy) to the frozen starting network; 0 disables it "
                        "(and halves the recurrent state). Default 0.2 with pretrained weights, else 0")
    g.add_argument("--kl_decay", default=0.9995, type=float, help="rho is multiplied by this every training iteration")
    g.add_argument("--episode_steps", default=0, type=int, help="max steps per episode (0: the env's default)")
    g.add_argument("--env_kwargs", default="", type=str,
                   help='JSON object of extra make_vpt_env / env constructor kwargs, e.g. \'{"world_size": [32, 24, 32]}\'')
    g.add_argument("--memory_budget_mb", default=0, type=float,
                   help="refuse configs whose SF buffers exceed this (0: half the available RAM, capped by /dev/shm)")
    g.add_argument("--export_prefix", default=None, type=str,
                   help="after training, write PREFIX.model / PREFIX.weights (official format)")
    parser.set_defaults(**VPT_SF_DEFAULTS)
    return parser


def finetune_sf(*args, **kwargs):
    """See :func:`vpt_rl.policies.sample_factory.train.finetune_sf` (imported lazily: that module imports this
    package, and running it needs Sample Factory)."""
    from vpt_rl.policies.sample_factory.train import finetune_sf as _finetune_sf

    return _finetune_sf(*args, **kwargs)
