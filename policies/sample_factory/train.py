"""Train (fine-tune) a VPT policy with Sample Factory 2.1.1, and export it to the official format.

Run::

    python -m vpt_rl.policies.sample_factory.train --env vpt_minelite --model policy.model \\
        --weights policy.weights --experiment sf_minelite --train_dir runs/sf --num_workers 2 \\
        --train_for_env_steps 4000 --export_prefix runs/sf/sf_minelite/export/policy

(``vpt-rl finetune --backend sf ...`` passes its arguments to :func:`main`.) Any SF option works
(``--serial_mode True --async_rl False`` for the serial runner, ``--num_workers``, ``--rollout``, ...).
Running the same command again resumes the experiment from its last checkpoint (``--restart_behavior
resume``, SF's default; checkpoints are loaded with ``weights_only=True`` by
:class:`~vpt_rl.policies.sample_factory.learner.VPTLearner`).

At start-up the run prints SF's buffer-memory estimate (:mod:`.memory_budget`) and refuses configs above
``--memory_budget_mb``, naming the knobs to turn. TensorBoard summaries land in
``TRAIN_DIR/EXPERIMENT/.summary/0/``; ``train/kl_prior*`` are the KL-to-prior terms and ``policy_stats/avg_*``
the tech-tree milestones.

From Python, :func:`finetune_sf` runs a whole fine-tuning job in a subprocess and returns the exported
``.weights`` path.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import torch
from tqdm import tqdm

from vpt_rl.checkpoint import save_policy, weights_beside, write_model_file
from vpt_rl.model import PolicyConfig
from vpt_rl.policies.sample_factory import add_vpt_args, register_vpt_components
from vpt_rl.policies.sample_factory.envs import DEBUG_ENV_NAME, SF_ENV_IDS
from vpt_rl.policies.sample_factory.memory_budget import (
    MemoryBudgetError,
    MemoryEstimate,
    check_budget,
    default_budget_bytes,
    estimate_memory,
)
from vpt_rl.policies.sample_factory.state_layout import StateLayout
from vpt_rl.train.runtime import sf_device

MiB = 1024 * 1024


# ------------------------------------------------------------------------------------------- config
def sf_device_argv(argv: Sequence[str]) -> List[str]:
    """``argv`` with a ``--device`` value in vpt-rl's spelling (``auto``, ``cpu``, ``cuda``) turned into Sample
    Factory's (``gpu`` / ``cpu``, :func:`~vpt_rl.train.runtime.sf_device`), which is all SF's parser takes.

    :raises ValueError: naming the value (a misspelt device, ``cuda:N``, or a GPU on a machine without one).
    """
    out, i = [], 0
    argv = list(argv)
    while i < len(argv):
        a = argv[i]
        if a == "--device" and i + 1 < len(argv):
            out += [a, sf_device(argv[i + 1])]
            i += 2
            continue
        if a.startswith("--device="):
            a = "--device=" + sf_device(a.split("=", 1)[1])
        out.append(a)
        i += 1
    return out


def parse_vpt_cfg(argv: Optional[Sequence[str]] = None, evaluation: bool = False):
    """SF's full config with the VPT options (registers the VPT components first); ``--device`` may be given
    in vpt-rl's spelling (:func:`sf_device_argv`).

    :raises ValueError: for a ``--device`` SF cannot run on (:func:`~vpt_rl.train.runtime.sf_device`).
    """
    # lazy (here and below): Sample Factory is an optional extra; this module is imported without it
    from sample_factory.cfg.arguments import parse_full_cfg, parse_sf_args

    argv = sf_device_argv(sys.argv[1:] if argv is None else argv)
    register_vpt_components()
    parser, _ = parse_sf_args(argv, evaluation=evaluation)
    add_vpt_args(parser)
    return parse_full_cfg(parser, argv)


def prepare_cfg(cfg, verbose: bool = True) -> MemoryEstimate:
    """Validate the VPT-specific config, set ``rnn_size`` / ``recurrence`` and check the memory budget.

    :raises ValueError: for settings the VPT model cannot run with (the message names the option)
    :raises MemoryBudgetError: when SF's buffers would not fit (the message names the knobs to turn)
    """
    from vpt_rl.policies.sample_factory.actor_critic import policy_config_for  # lazy: imports Sample Factory

    names = list(SF_ENV_IDS) + [DEBUG_ENV_NAME]
    if cfg.env not in names:
        raise ValueError(f"--env {cfg.env!r} is not a VPT env; expected one of {names}")
    required = dict(use_rnn=True, rnn_type="gru", rnn_num_layers=1, actor_critic_share_weights=True,
                    normalize_input=False)
    for key, want in required.items():
        if getattr(cfg, key) != want:
            raise ValueError(f"--{key}={getattr(cfg, key)!r} is not supported with the VPT model; expected {want!r}")
    if cfg.weights and not os.path.isfile(cfg.weights):
        raise ValueError(f"--weights {cfg.weights!r} does not exist")
    if cfg.model and not os.path.isfile(cfg.model):
        raise ValueError(f"--model {cfg.model!r} does not exist")
    if cfg.model and not cfg.weights:
        # the .weights beside the .model, as label / train-bc take it; never a silent random init
        cfg.weights = weights_beside(cfg.model)
    if cfg.kl_coef is None:  # as the SB3 backend: the paper's 0.2 towards pretrained weights, no KL from scratch
        cfg.kl_coef = 0.2 if cfg.weights else 0.0
    cfg.device = sf_device(cfg.device)  # the default "auto" -> gpu or cpu (and a resumed "gpu" needs a GPU here)
    if cfg.kl_coef < 0:
        raise ValueError(f"--kl_coef must be >= 0, got {cfg.kl_coef}")
    if not 0 < cfg.kl_decay <= 1:
        raise ValueError(f"--kl_decay must be in (0, 1], got {cfg.kl_decay}")

    layout = StateLayout.from_config(policy_config_for(cfg), with_prior=cfg.kl_coef > 0)
    cli = getattr(cfg, "cli_args", {}) or {}
    if "rnn_size" in cli and int(cli["rnn_size"]) != layout.size:
        raise ValueError(
            f"--rnn_size {cli['rnn_size']} does not match the VPT memory layout ({layout.size} floats); leave it unset"
        )
    cfg.rnn_size = layout.size
    if cfg.recurrence == -1:
        cfg.recurrence = cfg.rollout

    est = estimate_memory(cfg, layout.size)
    budget = int(cfg.memory_budget_mb * MiB) if cfg.memory_budget_mb else default_budget_bytes()
    if verbose:
        prior = " (policy + prior memory)" if layout.with_prior else ""
        print(f"[vpt-sf] recurrent state: {layout.size} floats/env{prior}; {est.describe()}; "
              f"budget {budget / MiB:.0f} MiB", flush=True)
    check_budget(est, budget, with_prior=layout.with_prior, serial_mode=bool(cfg.serial_mode))
    return est


# ------------------------------------------------------------------------------------------- run
class _ProgressObserver:
    """tqdm bar over env steps (an SF ``AlgoObserver``)."""

    def __init__(self, total: int):
        self.bar = tqdm(total=int(total), unit="step", desc="sample-factory", mininterval=2.0)

    def on_init(self, runner):
        pass

    def on_connect_components(self, runner):
        pass

    def on_start(self, runner):
        pass

    def on_training_step(self, runner, training_iteration_since_resume):
        steps = int(sum(runner.env_steps.values())) if runner.env_steps else 0
        self.bar.n = min(steps, self.bar.total)
        self.bar.refresh()

    def extra_summaries(self, runner, policy_id, env_steps, writer):
        pass

    def on_stop(self, runner):
        self.bar.close()


def run(cfg) -> int:
    """Run SF on a prepared config (see :func:`prepare_cfg`); returns SF's ExperimentStatus (0 = success)."""
    from sample_factory.algo.utils.misc import ExperimentStatus
    from sample_factory.train import make_runner

    from vpt_rl.policies.sample_factory.learner import install_vpt_learner  # lazy: imports Sample Factory
    from vpt_rl.policies.sample_factory.processes import install_worker_parent_guard

    install_vpt_learner()
    install_worker_parent_guard()  # a killed main process takes its workers with it
    cfg, runner = make_runner(cfg)
    runner.register_observer(_ProgressObserver(cfg.train_for_env_steps))
    status = runner.init()
    if status == ExperimentStatus.SUCCESS:
        status = runner.run()
    return int(status)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: parse SF + VPT options, check memory, train, and export when ``--export_prefix`` is set."""
    try:
        cfg = parse_vpt_cfg(argv)
    except ValueError as exc:  # a --device SF cannot run on
        print(f"[vpt-sf] error: {exc}", file=sys.stderr)
        return 2
    effective = cfg
    if cfg.restart_behavior == "resume" and os.path.isfile(os.path.join(cfg.train_dir, cfg.experiment, "config.json")):
        # resuming: the saved config (overridden by the command line) is what will run, so check that one;
        # SF's make_runner performs the same merge again on `cfg`
        from sample_factory.cfg.arguments import load_from_checkpoint

        effective = load_from_checkpoint(cfg)
    try:
        prepare_cfg(effective)
    except (ValueError, MemoryBudgetError) as exc:
        print(f"[vpt-sf] error: {exc}", file=sys.stderr)
        return 2
    for key in ("rnn_size", "recurrence", "weights", "kl_coef", "device"):  # what prepare_cfg resolved
        setattr(cfg, key, getattr(effective, key))
    status = run(cfg)
    if status == 0 and effective.export_prefix:
        model_path, weights_path = export_policy(effective, effective.export_prefix)
        print(f"[vpt-sf] exported {model_path} and {weights_path}", flush=True)
    return status


# ------------------------------------------------------------------------------------------- export
def latest_checkpoint(train_dir: str, experiment: str, policy_id: int = 0) -> str:
    """Path of the newest SF checkpoint of an experiment (raises FileNotFoundError when there is none)."""
    pattern = os.path.join(train_dir, experiment, f"checkpoint_p{policy_id}", "checkpoint_*.pth")
    found = sorted(glob.glob(pattern))
    if not found:
        raise FileNotFoundError(f"no Sample Factory checkpoint matches {pattern}")
    return found[-1]


def policy_from_checkpoint(cfg, checkpoint_path: Optional[str] = None):
    """The trained :class:`vpt_rl.model.PolicyNet` from an SF checkpoint of a VPT run.

    The value head's EWMA normaliser is set to SF's return statistics (mean, var), so that the exported net
    denormalises values the way the SF run did.
    """
    from vpt_rl.policies.sample_factory.actor_critic import build_policy_net  # lazy: imports Sample Factory

    path = checkpoint_path or latest_checkpoint(cfg.train_dir, cfg.experiment)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model_sd = ckpt["model"]
    # the architecture only (no weights are read): the checkpoint's state dict is loaded next
    net = build_policy_net(None, None, getattr(cfg, "model", None) or getattr(cfg, "preset", "tiny"))
    prefix = "policy."
    sd = {k[len(prefix):]: v for k, v in model_sd.items() if k.startswith(prefix)}
    mean_key, var_key = "returns_normalizer.running_mean", "returns_normalizer.running_var"
    if mean_key in model_sd and "value_head.normalizer.running_mean" in sd:
        mean = model_sd[mean_key].float().reshape(-1)[:1]
        var = model_sd[var_key].float().reshape(-1)[:1]
        sd["value_head.normalizer.running_mean"] = mean.reshape(sd["value_head.normalizer.running_mean"].shape)
        sd["value_head.normalizer.running_mean_sq"] = (var + mean**2).reshape(
            sd["value_head.normalizer.running_mean_sq"].shape
        )
        sd["value_head.normalizer.debiasing_term"] = torch.ones_like(sd["value_head.normalizer.debiasing_term"])
    net.load_state_dict(sd, strict=True)
    return net


def export_policy(cfg, prefix: str, checkpoint_path: Optional[str] = None):
    """Write ``prefix.model`` / ``prefix.weights`` (official format) from the run's latest checkpoint."""
    net = policy_from_checkpoint(cfg, checkpoint_path)
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    model_path, weights_path = prefix + ".model", prefix + ".weights"
    save_policy(net, model_path, weights_path)
    return model_path, weights_path


# ------------------------------------------------------------------------------------------- Python API
def _sf_env_name(env_id_or_name: str) -> str:
    if env_id_or_name in SF_ENV_IDS or env_id_or_name == DEBUG_ENV_NAME:
        return env_id_or_name
    for name, gym_id in SF_ENV_IDS.items():
        if gym_id == env_id_or_name:
            return name
    raise ValueError(
        f"unknown env {env_id_or_name!r}; expected an SF name {sorted(SF_ENV_IDS) + [DEBUG_ENV_NAME]} or one of "
        f"the gymnasium ids {sorted(SF_ENV_IDS.values())}"
    )


def run_in_own_process_group(cmd: Sequence[str], timeout: Optional[float] = None, **popen_kwargs) -> int:
    """Run ``cmd`` in a new session; if we are interrupted or time out, kill its whole process group.

    SF's main process starts learner / inference / rollout worker processes; killing only the main process
    could leave them running. Returns the exit code.
    """
    proc = subprocess.Popen(list(cmd), start_new_session=True, **popen_kwargs)
    try:
        return proc.wait(timeout=timeout)
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise


def finetune_sf(
    env_id_or_name: str,
    total_steps: int,
    model: Optional[str] = None,
    weights: Optional[str] = None,
    preset=None,
    kl_coef: Optional[float] = None,
    ent_coef: float = 0.0,
    num_workers: int = 2,
    out_dir: str = "runs/sf",
    seed: int = 0,
    experiment: str = "vpt_sf",
    extra_args: Optional[Dict[str, object]] = None,
    env_kwargs: Optional[Dict[str, object]] = None,
    config=None,
    device: str = "auto",
) -> str:
    """Fine-tune a VPT policy with Sample Factory and export it; returns the exported ``.weights`` path.

    Runs ``python -m vpt_rl.policies.sample_factory.train`` in a subprocess (SF keeps global state and starts
    worker processes; a subprocess leaves nothing behind) and exports to
    ``out_dir/experiment/export/policy.{model,weights}``. Calling it again with the same ``out_dir`` and
    ``experiment`` resumes that run up to ``total_steps``.

    :param env_id_or_name: ``"vpt_minelite"`` / ``"vpt_rl/MineLite-v0"`` (or another name in ``SF_ENV_IDS``)
    :param total_steps: env steps to train for (in total, across resumes)
    :param model: official ``.model`` file of a pretrained start; without it ``preset`` picks the architecture
    :param weights: its ``.weights`` file (default: the one beside ``model``, same stem, which must exist; the
        net is randomly initialised only from a ``preset``)
    :param preset: a preset name (``"tiny"``, ``"micro"``, ...) or a ``vpt_rl.model.PolicyConfig`` when no
        ``model`` is given; a dict of extra SF options otherwise also accepted here
    :param kl_coef: coefficient of KL(prior || policy) (decays by ``--kl_decay`` per iteration; 0 disables);
        default 0.2 with pretrained weights, 0 from scratch (as :func:`~vpt_rl.policies.sb3.finetune_sb3`)
    :param ent_coef: entropy bonus coefficient (SF's ``exploration_loss_coeff``)
    :param num_workers: rollout worker processes; 0 runs SF's serial runner (one process)
    :param out_dir: SF ``--train_dir``
    :param seed: SF seed
    :param experiment: SF experiment name (a folder in ``out_dir``)
    :param extra_args: further SF options, e.g. ``{"rollout": 16, "batch_size": 64, "episode_steps": 500}``
    :param env_kwargs: extra ``make_vpt_env`` / env constructor kwargs (JSON-serialisable), e.g.
        ``{"world_size": [32, 24, 32]}``
    :param config: the old name of ``preset`` (still accepted)
    :param device: ``auto`` (a GPU when CUDA is available, else the CPU), ``cpu`` or ``cuda``: SF's ``--device``
        (:func:`~vpt_rl.train.runtime.sf_device`; SF picks GPUs itself, ``CUDA_VISIBLE_DEVICES`` limits them)
    """
    if config is not None:
        if preset is not None and preset != config:
            raise ValueError(f"config={config!r} is the old name of preset={preset!r}; give one of them")
        preset = config
    if int(total_steps) <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps!r}")
    if int(num_workers) < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers!r}")
    extra = dict(extra_args or {})
    argv: List[str] = [
        "--env", _sf_env_name(env_id_or_name), "--train_for_env_steps", str(int(total_steps)),
        "--exploration_loss_coeff", str(float(ent_coef)),
        "--train_dir", str(out_dir), "--experiment", str(experiment), "--seed", str(int(seed)),
        "--device", sf_device(device),
    ]
    if kl_coef is not None:
        argv += ["--kl_coef", str(float(kl_coef))]
    if env_kwargs:
        argv += ["--env_kwargs", json.dumps(env_kwargs)]
    if isinstance(preset, dict):
        extra = {**preset, **extra}
        preset = None
    if model:
        argv += ["--model", str(model)]
    elif preset is not None and not isinstance(preset, str):
        # a PolicyConfig: write it as an official .model file so the SF processes can read it (as --preset:
        # a random init of that architecture)
        if not isinstance(preset, PolicyConfig):
            raise TypeError(f"preset must be a preset name, a PolicyConfig or a dict of SF options, got {preset!r}")
        cfg_dir = os.path.join(out_dir, experiment)
        os.makedirs(cfg_dir, exist_ok=True)
        architecture = os.path.join(cfg_dir, "architecture.model")
        write_model_file(architecture, preset.to_kwargs(), 1.0)
        argv += ["--preset", architecture]
    elif isinstance(preset, str):
        argv += ["--preset", preset]
    if weights:
        argv += ["--weights", str(weights)]
    if int(num_workers) == 0:
        argv += ["--serial_mode", "True", "--async_rl", "False", "--num_workers", "1"]
    else:
        argv += ["--num_workers", str(int(num_workers))]
    for key, value in extra.items():
        argv += [f"--{key}", str(value)]
    prefix = os.path.join(out_dir, experiment, "export", "policy")
    argv += ["--export_prefix", prefix]
    cmd = [sys.executable, "-m", "vpt_rl.policies.sample_factory.train", *argv]
    returncode = run_in_own_process_group(cmd)
    if returncode != 0:
        raise RuntimeError(f"Sample Factory run failed with exit code {returncode}: {' '.join(cmd)}")
    weights_path = prefix + ".weights"
    if not os.path.isfile(weights_path):
        raise RuntimeError(f"the SF run finished but did not export {weights_path}")
    return weights_path


if __name__ == "__main__":
    sys.exit(main())
