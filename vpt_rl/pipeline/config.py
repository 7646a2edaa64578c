"""The pipeline's knobs: :class:`PipelineConfig`, the presets, and ``--set KNOB=VALUE`` parsing."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Sequence

from vpt_rl.model import IDM_PRESETS, POLICY_PRESETS


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
    web_like_rate: float = 0.0
    """share of the unlabelled (video) episodes recorded as web-like footage (``vpt-rl record --web-like``): each
    such episode carries seconds-long unclean spans (face-cam, logo, borders, pause menu, creative inventory),
    with the ground truth in a sidecar that only the filter stage's hand labels and its scores read"""
    # filter
    filter: str = "auto"
    """the clean-footage filter before labelling: "auto" (on when the unlabelled split holds unclean footage),
    "on" or "off"
    """
    filter_label_episodes: int = 8
    """unlabelled episodes whose ground truth plays the hand-labelled frames the filter is trained on (the paper
    hand-labelled 8,800 frames); the other unlabelled episodes score it"""
    filter_frames: int = 4000
    """labelled frames drawn from those episodes to train the filter"""
    filter_steps: int = 900
    """filter training steps (batches of 64 frames)"""
    filter_width: int = 16
    """channels of the filter's small CNN"""
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
        """A copy with some knobs changed; unknown names, wrong types and values out of range raise
        ``ValueError``."""
        return dataclasses.replace(self, **_coerce(changes))

    def validate(self) -> "PipelineConfig":
        """Check every knob and how they fit together; returns ``self``.

        :func:`~vpt_rl.pipeline.run_pipeline` calls this before the first stage, so that a bad value fails
        at once rather than when its stage is reached hours later (a config built directly, without
        :meth:`replace`, is only checked here).

        :raises ValueError: naming the first bad knob, its value and what is expected.
        """
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            default = getattr(PipelineConfig, f.name)
            if type(value) is not type(default) and not (isinstance(default, float) and type(value) is int):
                raise ValueError(f"pipeline knob {f.name}={value!r}: expected a {type(default).__name__}")
            check_knob(f.name, value)
        if self.n_labelled >= self.episodes:
            raise ValueError(f"pipeline knobs n_labelled={self.n_labelled}, episodes={self.episodes}: expected "
                             "n_labelled < episodes (the split keeps at least one episode as unlabelled video)")
        if self.rl_n_envs * self.rl_n_steps < 2:
            raise ValueError(f"pipeline knobs rl_n_envs={self.rl_n_envs}, rl_n_steps={self.rl_n_steps}: expected "
                             "a rollout of rl_n_envs * rl_n_steps >= 2 steps (PPO normalises advantages over it)")
        return self


BC_LABELS = ("idm", "true")
"""values of :attr:`PipelineConfig.bc_labels`"""

# The range of each knob (checked by PipelineConfig.replace as --set parses, and by PipelineConfig.validate).
_COUNTS = ("episodes", "episode_ticks", "n_labelled", "idm_steps", "idm_batch", "label_batch", "bc_steps", "bc_batch",
           "bc_seq_len", "ft_frames", "rl_steps", "rl_n_envs", "rl_n_steps", "rl_max_ticks", "eval_episodes",
           "eval_max_ticks", "eval_batch", "filter_label_episodes", "filter_frames", "filter_steps", "filter_width")
_RATES = ("idm_lr", "bc_lr", "ft_lr", "rl_lr")
_PROBABILITIES = ("expert_epsilon", "label_camera_noise", "video_camera_noise", "bc_min_confidence", "web_like_rate")
FILTER_MODES = ("auto", "on", "off")
"""values of :attr:`PipelineConfig.filter`"""
_CHOICES = {"idm_preset": tuple(IDM_PRESETS), "policy_preset": tuple(POLICY_PRESETS), "bc_labels": BC_LABELS,
            "filter": FILTER_MODES}


def check_knob(key: str, value: Any) -> None:
    """Raise ``ValueError`` naming the knob, the value and what is expected when ``value`` is out of range."""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key in _COUNTS and value < 1:
        expected = "a count >= 1"
    elif key in _RATES and not value > 0:
        expected = "a learning rate > 0"
    elif key in _PROBABILITIES and not 0 <= value <= 1:
        expected = "a probability in [0, 1]"
    elif key in _CHOICES and value not in _CHOICES[key]:
        expected = "one of " + ", ".join(_CHOICES[key])
    elif key == "world_size" and value < 16:
        expected = ">= 16 (MineLite's smallest world)"
    elif key == "resolution" and not (8 <= value <= 4096 and value % 2 == 0):
        expected = "an even number of pixels in [8, 4096] (MineLite's range; mp4 needs even sides)"
    elif key == "idm_seq_len" and (value < 0 or value == 1):
        expected = "0 (the IDM preset's timesteps) or a window of >= 2 frames"
    elif numeric and not value >= 0:  # also NaN, which fails every comparison
        expected = "a value >= 0"
    else:
        return
    raise ValueError(f"pipeline knob {key}={value!r}: expected {expected}")


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
        check_knob(key, value)
        out[key] = value
    return out


PRESETS: Dict[str, PipelineConfig] = {
    # CI-sized: a couple of short expert episodes, tiny nets, a few hundred RL steps (~2-4 min).
    "smoke": PipelineConfig(
        name="smoke", episodes=3, episode_ticks=160, n_labelled=1, filter_label_episodes=1, filter_frames=200,
        filter_steps=20, filter_width=4, idm_preset="micro_idm_motion", idm_steps=30,
        idm_batch=2, label_batch=4, policy_preset="micro", bc_steps=30, bc_batch=2, bc_seq_len=8, ft_steps=10,
        ft_frames=64, rl_steps=256,
        rl_n_envs=2, rl_n_steps=64, rl_max_ticks=128, eval_episodes=3, eval_max_ticks=150, eval_batch=3,
    ),
    # The README quick start: about half an hour on 2 CPU cores (docs/experiments/2026-12-02-bc-recipe.md).
    "small": PipelineConfig(
        name="small", episodes=60, episode_ticks=1500, n_labelled=28, video_camera_noise=0.15, web_like_rate=0.5,
        filter_label_episodes=16,
        idm_preset="micro_idm_motion", idm_seq_len=32, idm_steps=800, idm_batch=2, idm_lr=1e-3, label_batch=8,
        policy_preset="mini", bc_steps=2000, bc_batch=4, bc_seq_len=16, bc_lr=3e-4, ft_frames=500,
        rl_steps=6000, rl_n_envs=4, rl_n_steps=128, rl_max_ticks=300, rl_lr=1e-4, eval_episodes=30,
        eval_max_ticks=1500, eval_batch=10,
    ),
    # Runs worth a GPU.
    "full": PipelineConfig(
        name="full", episodes=400, episode_ticks=6000, n_labelled=40, video_camera_noise=0.15, web_like_rate=0.5,
        filter_label_episodes=40, filter_frames=8800, filter_steps=3000, filter_width=32,
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
