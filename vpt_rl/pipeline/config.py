"""The pipeline's knobs: :class:`PipelineConfig`, the presets, and ``--set KNOB=VALUE`` parsing."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Sequence


@dataclass(frozen=True)
class PipelineConfig:
    """Every scale knob of the pipeline; the presets in :data:`PRESETS` fill them in."""

    name: str = "custom"
    """preset name (informational)"""
    # record
    episodes: int = 24
    """scripted-expert episodes recorded"""
    episode_ticks: int = 3000
    """ticks per recorded episode (20 ticks = 1 s of game time)"""
    resolution: int = 128
    """recorded frame size (square); the agent consumes 128x128"""
    expert_epsilon: float = 0.05
    """probability of a random action per tick in the expert (diversity)"""
    world_size: int = 64
    """MineLite world width = depth in blocks (48 tall) for recording, RL and evaluation (>= 16)"""
    imitable: bool = True
    """the expert finds trees from what the screen shows and crafts planks and a table after its first tree
    (``vpt-rl record --imitable``): play a policy can clone from pixels; False: the privileged-state expert"""
    # split
    n_labelled: int = 4
    """episodes kept with their actions (the rest become unlabelled video)"""
    label_camera_noise: float = 0.5
    """camera noise of the labelled episodes (``vpt-rl record --camera-noise``): the labelled split is
    recorded contractor-like, with scene-independent camera moves, so that the IDM learns to read image
    motion; the unlabelled split is plain expert play (0: both plain)"""
    video_camera_noise: float = 0.0
    """camera noise of the unlabelled (video) split: a little scene-independent camera motion that the expert
    then corrects shows the foundation model how to recover when its view drifts (DART-style noise
    injection; 0: plain expert play)"""
    # idm
    idm_preset: str = "tiny_idm"
    """IDM config preset (vpt_rl.model.IDM_PRESETS)"""
    idm_seq_len: int = 0
    """frames per IDM training and labelling window (0: the preset's ``timesteps``)"""
    idm_steps: int = 600
    """IDM optimiser steps"""
    idm_batch: int = 4
    """IDM batch size (windows)"""
    idm_lr: float = 3e-4
    """IDM learning rate"""
    # label
    label_batch: int = 8
    """windows per IDM forward pass while labelling"""
    # bc
    policy_preset: str = "tiny"
    """policy config preset (vpt_rl.model.POLICY_PRESETS) for the foundation model and the random init"""
    bc_steps: int = 1500
    """BC optimiser steps"""
    bc_batch: int = 8
    """BC batch size (sequences)"""
    bc_seq_len: int = 32
    """BC sequence length (frames)"""
    bc_lr: float = 3e-4
    """BC learning rate"""
    bc_min_confidence: float = 0.0
    """BC skips frames whose pseudo-label confidence (``idm_confidence``) is below this (0: none skipped)"""
    bc_labels: str = "idm"
    """what the foundation model is cloned from: "idm" (the IDM's pseudo-labels: the VPT recipe) or "true"
    (the recorded actions of the same videos: an oracle ablation that bypasses the IDM)"""
    # finetune (optional; the paper's foundation -> early-game BC -> RL)
    ft_steps: int = 0
    """BC fine-tuning steps of the foundation model on the early game of the pseudo-labelled episodes
    (0: no fine-tuning stage; RL and evaluation use the foundation model itself)"""
    ft_frames: int = 400
    """the early game: the first this many frames of each pseudo-labelled episode"""
    ft_lr: float = 1e-4
    """BC fine-tuning learning rate"""
    # rl
    rl_steps: int = 20000
    """env steps per RL run (the same budget for pretrained and random init)"""
    rl_n_envs: int = 4
    """parallel envs during RL"""
    rl_n_steps: int = 128
    """rollout length per env"""
    rl_max_ticks: int = 1000
    """RL episode length in ticks"""
    rl_lr: float = 1e-4
    """RL learning rate"""
    kl_coef: float = 0.2
    """rho of the KL(prior || policy) term for the pretrained run (decays x0.9995 per iteration)"""
    ent_coef_random: float = 0.01
    """entropy bonus of the random-init run (which has no KL term)"""
    # eval
    eval_episodes: int = 32
    """evaluation episodes (seeds) per agent"""
    eval_max_ticks: int = 1000
    """ticks per evaluation episode"""
    eval_batch: int = 8
    """envs batched through the policy during evaluation"""

    def replace(self, **changes: Any) -> "PipelineConfig":
        """A copy with some knobs changed; unknown names and wrong types raise ``ValueError``."""
        return dataclasses.replace(self, **_coerce(changes))


BC_LABELS = ("idm", "true")
"""values of :attr:`PipelineConfig.bc_labels`"""


def _coerce(changes: Mapping[str, Any]) -> Dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(PipelineConfig)}
    out = {}
    for key, value in changes.items():
        if key not in fields:
            raise ValueError(f"unknown pipeline knob {key!r}; expected one of: {', '.join(sorted(fields))}")
        default = getattr(PipelineConfig(), key)
        typ = type(default)
        if isinstance(value, str) and typ is bool:
            flag = value.strip().lower()
            if flag not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"pipeline knob {key}={value!r}: expected true or false")
            value = flag in ("true", "1", "yes")
        elif isinstance(value, str) and typ is not str:
            try:
                value = typ(float(value)) if typ is int and "." in value else typ(value)
            except ValueError:
                raise ValueError(f"pipeline knob {key}={value!r}: expected a {typ.__name__}") from None
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or isinstance(value, bool) != isinstance(default, bool):
            raise ValueError(f"pipeline knob {key}={value!r}: expected a {typ.__name__}")
        if typ in (int, float) and not isinstance(value, bool) and value < 0:
            raise ValueError(f"pipeline knob {key}={value!r}: expected a value >= 0")
        if key in ("label_camera_noise", "video_camera_noise", "bc_min_confidence", "expert_epsilon") and value > 1:
            raise ValueError(f"pipeline knob {key}={value!r}: expected a probability in [0, 1]")
        if key == "bc_labels" and value not in BC_LABELS:
            raise ValueError(f"pipeline knob bc_labels={value!r}: expected one of {', '.join(BC_LABELS)}")
        if key == "world_size" and value < 16:
            raise ValueError(f"pipeline knob world_size={value!r}: expected >= 16 (MineLite's smallest world)")
        out[key] = value
    return out


PRESETS: Dict[str, PipelineConfig] = {
    # CI-sized: a couple of short expert episodes, tiny nets, a few hundred RL steps (~2-4 min).
    "smoke": PipelineConfig(
        name="smoke", episodes=3, episode_ticks=160, n_labelled=1, idm_preset="micro_idm_motion", idm_steps=30,
        idm_batch=2, label_batch=4, policy_preset="micro", bc_steps=30, bc_batch=2, bc_seq_len=8, ft_steps=10,
        ft_frames=64, rl_steps=256,
        rl_n_envs=2, rl_n_steps=64, rl_max_ticks=128, eval_episodes=3, eval_max_ticks=150, eval_batch=3,
    ),
    # The README quick start: about half an hour on 2 CPU cores (docs/experiments/2026-12-02-bc-recipe.md).
    "small": PipelineConfig(
        name="small", episodes=60, episode_ticks=1500, n_labelled=28, video_camera_noise=0.15,
        idm_preset="micro_idm_motion", idm_seq_len=32, idm_steps=800, idm_batch=2, idm_lr=1e-3, label_batch=8,
        policy_preset="mini", bc_steps=2000, bc_batch=4, bc_seq_len=16, bc_lr=3e-4, ft_frames=500,
        rl_steps=6000, rl_n_envs=4, rl_n_steps=128, rl_max_ticks=300, rl_lr=1e-4, eval_episodes=30,
        eval_max_ticks=1500, eval_batch=10,
    ),
    # Runs worth a GPU.
    "full": PipelineConfig(
        name="full", episodes=400, episode_ticks=6000, n_labelled=40, video_camera_noise=0.15,
        idm_preset="tiny_idm_motion",
        idm_steps=20000,
        idm_batch=16, policy_preset="tiny", bc_steps=50000, bc_batch=32, bc_seq_len=64, rl_steps=2_000_000,
        rl_n_envs=16, rl_n_steps=256, rl_max_ticks=6000, rl_lr=2e-5, eval_episodes=200,
        eval_max_ticks=6000, eval_batch=32,
    ),
}


def parse_set_items(items: Sequence[str]) -> Dict[str, str]:
    """``["rl_steps=5000", "imitable=false"]`` -> ``{"rl_steps": "5000", "imitable": "false"}`` (the values are
    coerced by :meth:`PipelineConfig.replace`).

    :raises ValueError: for an item without ``=``.
    """
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KNOB=VALUE")
        overrides[key.strip()] = value.strip()
    return overrides


def resolve_config(preset: str | PipelineConfig, overrides: Mapping[str, Any] | None = None) -> PipelineConfig:
    """A preset name (or a ready :class:`PipelineConfig`) with ``overrides`` applied.

    :raises ValueError: for an unknown preset name or a bad override.
    """
    if isinstance(preset, PipelineConfig):
        cfg = preset
    elif preset in PRESETS:
        cfg = PRESETS[preset]
    else:
        raise ValueError(f"preset {preset!r}: expected one of {', '.join(PRESETS)}")
    return cfg.replace(**overrides) if overrides else cfg
