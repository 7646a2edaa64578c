"""`vpt-rl pipeline`: the whole VPT recipe end to end on MineLite, and random init vs pretrained.

One command runs, at a scale chosen by ``--preset``::

    record  scripted-expert demonstrations in the contractor format (mp4 + jsonl)
    split   keep a small labelled part; strip the actions from the rest ("unlabelled video")
    idm     train the inverse dynamics model on the labelled part
    label   label the unlabelled videos with the IDM (pseudo-label jsonl next to each mp4)
    bc      behavioural cloning of a foundation model on the pseudo-labels (official checkpoint format)
    rl      RL fine-tuning with the tech-tree reward: from the foundation model (KL to it) and, with the
            same env-step budget, from random init (entropy bonus, no KL)
    eval    zero-shot foundation, foundation+RL, random-init+RL and the expert over many seeds
    report  results.md / results.json and the plots

Run it::

    vpt-rl pipeline                                  # the `small` preset, ~30 min on 2 CPU cores
    vpt-rl pipeline --preset smoke --out /tmp/smoke  # CI-sized, a few minutes
    vpt-rl pipeline --stages rl,eval,report --force  # re-run some stages
    vpt-rl pipeline --set rl_steps=20000             # change one knob of the preset

Every stage writes ``OUT/.stages/<stage>.done`` (JSON, atomically) with the configuration it ran with; a
stage whose marker holds the same configuration is skipped, so an interrupted run resumes where it
stopped. A stage's configuration includes every knob of the stages before it, so changing, say, the
number of recorded episodes re-runs everything downstream. Running a stage alone needs the stages it
reads from to be done with the same configuration, else it stops with a message saying which to run.

The stage functions come from :data:`STAGES` and can be replaced (``run_pipeline(stage_fns=...)``),
which is how the tests check the orchestration without training anything.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

MINELITE_ID = "vpt_rl/MineLite-v0"

# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


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

# --------------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------------

STAGE_ORDER = ("record", "split", "idm", "label", "bc", "finetune", "rl", "eval", "report")

# knobs each stage reads itself; a stage's marker config holds its own knobs and those of its inputs
STAGE_KNOBS: Dict[str, tuple] = {
    "record": ("episodes", "episode_ticks", "resolution", "expert_epsilon", "world_size", "n_labelled",
               "label_camera_noise", "video_camera_noise", "imitable"),
    "split": ("n_labelled",),
    "idm": ("idm_preset", "idm_seq_len", "idm_steps", "idm_batch", "idm_lr"),
    "label": ("label_batch",),
    "bc": ("policy_preset", "bc_steps", "bc_batch", "bc_seq_len", "bc_lr", "bc_labels", "bc_min_confidence"),
    "finetune": ("ft_steps", "ft_frames", "ft_lr"),
    "rl": ("rl_steps", "rl_n_envs", "rl_n_steps", "rl_max_ticks", "rl_lr", "kl_coef", "ent_coef_random"),
    "eval": ("eval_episodes", "eval_max_ticks", "eval_batch"),
    "report": (),
}
# direct inputs of each stage
STAGE_INPUTS: Dict[str, tuple] = {
    "record": (),
    "split": ("record",),
    "idm": ("split",),
    "label": ("split", "idm"),
    "bc": ("label",),
    "finetune": ("bc",),
    "rl": ("bc", "finetune"),
    "eval": ("bc", "finetune", "rl"),
    "report": ("split", "label", "rl", "eval"),
}
# stages whose result depends on --backend
BACKEND_STAGES = ("rl", "eval", "report")

# the agents the eval stage compares, in table order
EVAL_AGENTS = ("foundation", "foundation+bc", "foundation+rl", "random-init+rl", "expert")
"""``foundation+bc`` (the early-game fine-tuned foundation model) only when ``ft_steps > 0``"""


def eval_agents(cfg: "PipelineConfig") -> tuple:
    """The agents the eval stage scores under ``cfg``, in table order."""
    return tuple(a for a in EVAL_AGENTS if a != "foundation+bc" or cfg.ft_steps > 0)


@dataclass
class StageContext:
    """What a stage function gets: where to write, the knobs, the backend and the seed."""

    out: Path
    cfg: PipelineConfig
    backend: str = "sb3"
    seed: int = 0
    force: bool = False
    env_id: str = MINELITE_ID
    log: Callable[[str], None] = field(default=print)

    # the layout of OUT/ (README.md lists it)
    @property
    def recorded_dir(self) -> Path:
        return self.out / "data" / "recorded"

    @property
    def labelled_dir(self) -> Path:
        return self.out / "data" / "labelled"

    @property
    def unlabelled_dir(self) -> Path:
        return self.out / "data" / "unlabelled"

    @property
    def truth_dir(self) -> Path:
        return self.out / "data" / "heldout_truth"

    @property
    def idm_paths(self) -> tuple:
        return self.out / "idm" / "idm.model", self.out / "idm" / "idm.weights"

    @property
    def foundation_paths(self) -> tuple:
        return self.out / "foundation" / "foundation.model", self.out / "foundation" / "foundation.weights"

    @property
    def finetuned_paths(self) -> tuple:
        return self.out / "finetuned" / "finetuned.model", self.out / "finetuned" / "finetuned.weights"

    @property
    def rl_start_paths(self) -> tuple:
        """Where foundation+RL starts: the early-game fine-tuned model when ``ft_steps > 0``, else the
        foundation model."""
        return self.finetuned_paths if self.cfg.ft_steps > 0 else self.foundation_paths

    def rl_dir(self, run: str) -> Path:
        if run not in ("pretrained", "random"):
            raise ValueError(f"RL run {run!r}: expected 'pretrained' or 'random'")
        return self.out / "rl" / run

    def rl_paths(self, run: str) -> tuple:
        return self.rl_dir(run) / "policy.model", self.rl_dir(run) / "policy.weights"

    @property
    def eval_dir(self) -> Path:
        return self.out / "eval"

    @property
    def plots_dir(self) -> Path:
        return self.out / "plots"

    def env_kwargs(self) -> Dict[str, Any]:
        """MineLite constructor kwargs shared by recording, RL and evaluation."""
        return {"world_size": int(self.cfg.world_size)}


StageFn = Callable[[StageContext], Dict[str, Any]]


def write_json_atomic(path: os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` through a temp file and ``os.replace`` (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False, default=_json_default)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text_atomic(path: os.PathLike, text: str) -> None:
    """Write text to ``path`` through a temp file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def stage_config(stage: str, cfg: PipelineConfig, backend: str, seed: int) -> Dict[str, Any]:
    """The configuration recorded in (and compared against) a stage's marker: the stage's own knobs and
    those of every stage it reads from, transitively, plus the seed (and the backend where it matters)."""
    if stage not in STAGE_KNOBS:
        raise ValueError(f"unknown stage {stage!r}; expected one of: {', '.join(STAGE_ORDER)}")
    needed, todo = set(), [stage]
    while todo:
        s = todo.pop()
        if s not in needed:
            needed.add(s)
            todo.extend(STAGE_INPUTS[s])
    knobs = {k: getattr(cfg, k) for s in STAGE_ORDER if s in needed for k in STAGE_KNOBS[s]}
    out: Dict[str, Any] = {"seed": seed, "knobs": knobs}
    if stage in BACKEND_STAGES:
        out["backend"] = backend
    return json.loads(json.dumps(out))  # normalise (tuples -> lists) so it compares equal after a reload


def marker_path(out: os.PathLike, stage: str) -> Path:
    return Path(out) / ".stages" / f"{stage}.done"


def read_marker(out: os.PathLike, stage: str) -> Optional[Dict[str, Any]]:
    """The stage's marker, or ``None`` if the stage never finished (or the marker is unreadable)."""
    p = marker_path(out, stage)
    try:
        with open(p) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as e:
        print(f"[pipeline] warning: ignoring unreadable marker {p}: {e}", file=sys.stderr)
        return None


class PipelineError(RuntimeError):
    """A pipeline stage cannot run (a missing or stale input, a bad option)."""


def parse_stages(spec: Optional[str | Sequence[str]]) -> List[str]:
    """``"rl,eval"`` or ``["rl", "eval"]`` -> the stages in pipeline order; ``None``/``"all"`` -> all."""
    if spec is None or spec == "all":
        return list(STAGE_ORDER)
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    bad = [s for s in names if s not in STAGE_ORDER]
    if bad or not names:
        raise ValueError(f"--stages {spec!r}: unknown stage(s) {bad}; expected a comma list of: {','.join(STAGE_ORDER)}")
    return [s for s in STAGE_ORDER if s in names]


def run_pipeline(
    out: os.PathLike,
    preset: str | PipelineConfig = "small",
    *,
    stages: Optional[str | Sequence[str]] = None,
    backend: str = "sb3",
    seed: int = 0,
    force: bool = False,
    overrides: Optional[Mapping[str, Any]] = None,
    stage_fns: Optional[Mapping[str, StageFn]] = None,
    env_id: str = MINELITE_ID,
    progress: bool = True,
) -> Dict[str, Dict[str, Any]]:
    """Run (or resume) the pipeline into ``out``; returns each selected stage's marker.

    :param preset: a name in :data:`PRESETS` or a :class:`PipelineConfig`.
    :param stages: the stages to run (default all); the others must already be done when read from.
    :param backend: ``"sb3"`` (Stable-Baselines3 plug-in) or ``"sf"`` (Sample Factory).
    :param force: re-run the selected stages even when their marker matches.
    :param overrides: knob -> value changes applied on top of the preset.
    :param stage_fns: stage name -> function replacing the built-in one (tests, experiments).
    """
    from tqdm.auto import tqdm

    if isinstance(preset, PipelineConfig):
        cfg = preset
    elif preset in PRESETS:
        cfg = PRESETS[preset]
    else:
        raise ValueError(f"preset {preset!r}: expected one of {', '.join(PRESETS)}")
    if overrides:
        cfg = cfg.replace(**overrides)
    if backend not in ("sb3", "sf"):
        raise ValueError(f"backend {backend!r}: expected 'sb3' or 'sf'")
    fns = dict(STAGES)
    for name, fn in (stage_fns or {}).items():
        if name not in STAGES:
            raise ValueError(f"stage_fns: unknown stage {name!r}; expected one of: {', '.join(STAGE_ORDER)}")
        fns[name] = fn
    selected = parse_stages(stages)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    bar = tqdm(selected, desc="pipeline", unit="stage", disable=not progress, dynamic_ncols=True)
    log = bar.write if progress else (lambda msg: print(msg, file=sys.stderr))
    ctx = StageContext(out=out, cfg=cfg, backend=backend, seed=seed, force=force, env_id=env_id, log=log)
    results: Dict[str, Dict[str, Any]] = {}
    for stage in bar:
        bar.set_postfix_str(stage)
        want = stage_config(stage, cfg, backend, seed)
        marker = read_marker(out, stage)
        if marker is not None and marker.get("config") == want and not force:
            log(f"[pipeline] {stage}: done already ({marker.get('finished', '?')}), skipping")
            results[stage] = marker
            continue
        for dep in STAGE_INPUTS[stage]:
            dep_marker = read_marker(out, dep)
            dep_want = stage_config(dep, cfg, backend, seed)
            if dep_marker is None:
                raise PipelineError(
                    f"stage {stage!r} reads the output of stage {dep!r}, which has not run in {out}; "
                    f"run `vpt-rl pipeline --out {out} --stages {dep},{stage}` (or without --stages)")
            if dep_marker.get("config") != dep_want:
                raise PipelineError(
                    f"stage {stage!r} reads the output of stage {dep!r}, which ran in {out} with another "
                    f"configuration ({_config_diff(dep_marker.get('config'), dep_want)}); re-run {dep!r} first")
        log(f"[pipeline] {stage}: running")
        t0 = time.time()
        summary = fns[stage](ctx) or {}
        if not isinstance(summary, dict):
            raise TypeError(f"stage {stage!r} returned {type(summary).__name__}; expected a dict summary")
        marker = {
            "stage": stage,
            "config": want,
            "preset": cfg.name,
            "seconds": round(time.time() - t0, 2),
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "summary": json.loads(json.dumps(summary, default=_json_default)),
        }
        write_json_atomic(marker_path(out, stage), marker)
        log(f"[pipeline] {stage}: done in {marker['seconds']:.1f} s")
        results[stage] = marker
    bar.close()
    return results


def _config_diff(have: Any, want: Dict[str, Any]) -> str:
    if not isinstance(have, dict):
        return "unreadable config"
    diffs = []
    for k in sorted(set(have) | set(want)):
        if k == "knobs":
            hk, wk = have.get(k) or {}, want.get(k) or {}
            diffs += [f"{n}: {hk.get(n)!r} != {wk.get(n)!r}" for n in sorted(set(hk) | set(wk)) if hk.get(n) != wk.get(n)]
        elif have.get(k) != want.get(k):
            diffs.append(f"{k}: {have.get(k)!r} != {want.get(k)!r}")
    return "; ".join(diffs) or "same"


# --------------------------------------------------------------------------------------------------
# The built-in stage functions
# --------------------------------------------------------------------------------------------------


def list_segments(folder: os.PathLike, need_jsonl: bool = True) -> List[Path]:
    """The segment videos (``*.mp4``) in ``folder``, sorted; with ``need_jsonl`` only those with a jsonl."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    vids = sorted(p for p in folder.glob("*.mp4") if not p.name.startswith("."))
    if need_jsonl:
        vids = [p for p in vids if p.with_suffix(".jsonl").is_file()]
    return vids


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


LABELLED_ALIAS = "contractor"
"""segment-name alias of the episodes recorded for the labelled split"""


def stage_record(ctx: StageContext) -> Dict[str, Any]:
    """Record ``cfg.episodes`` scripted-expert episodes into ``data/recorded``: the first ``n_labelled``
    world seeds contractor-like (alias ``contractor``, ``--camera-noise cfg.label_camera_noise``), the
    others as expert play (alias ``expert``, ``--camera-noise cfg.video_camera_noise``), each with its own
    world seed; with ``imitable`` the expert finds trees from the screen. An interrupted recording
    resumes per episode; recordings made with other knobs (or ``--force``) are deleted first."""
    cfg = ctx.cfg
    _prepare_dir(ctx, "record", ctx.recorded_dir)
    from vpt_rl.commands import record as record_cmd

    n_lab = min(max(cfg.n_labelled, 0), cfg.episodes)
    for alias, n, seed, noise in ((LABELLED_ALIAS, n_lab, ctx.seed, cfg.label_camera_noise),
                                  ("expert", cfg.episodes - n_lab, ctx.seed + n_lab, cfg.video_camera_noise)):
        if n <= 0:
            continue
        argv = [
            "--episodes", str(n), "--out", str(ctx.recorded_dir), "--max-ticks", str(cfg.episode_ticks),
            "--seed", str(seed), "--epsilon", str(cfg.expert_epsilon), "--camera-noise", str(noise),
            "--alias", alias, "--resolution", f"{cfg.resolution}x{cfg.resolution}",
            "--world-size", str(cfg.world_size),
        ] + (["--imitable"] if cfg.imitable else [])
        rc = record_cmd.main(argv)
        if rc:
            raise PipelineError(f"`vpt-rl record {' '.join(argv)}` failed with exit status {rc}")
    segs = list_segments(ctx.recorded_dir)
    if len(segs) < cfg.episodes:
        raise PipelineError(f"record: expected >= {cfg.episodes} segments in {ctx.recorded_dir}, found {len(segs)}")
    return {"segments": len(segs), "frames": sum(_count_lines(p.with_suffix(".jsonl")) for p in segs)}


def _prepare_dir(ctx: StageContext, stage: str, folder: Path) -> None:
    """Make ``folder`` ready for ``stage``: keep it (so the stage's own resume continues an interrupted
    run) only when it was started with the same stage configuration, else delete it; then stamp it."""
    stamp = folder / ".stage_config.json"
    want = stage_config(stage, ctx.cfg, ctx.backend, ctx.seed)
    try:
        have = json.loads(stamp.read_text())
    except (OSError, ValueError):
        have = None
    if folder.exists() and (ctx.force or have != want):
        shutil.rmtree(folder)
    write_json_atomic(stamp, want)


def _episode_key(seg: Path) -> str:
    """Segments of one episode share a name up to the trailing ``-NNN`` segment number."""
    stem = seg.stem
    head, sep, tail = stem.rpartition("-")
    return head if sep and tail.isdigit() and len(tail) == 3 else stem


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def _write_index(folder: Path, segs: Sequence[Path]) -> None:
    write_json_atomic(folder / "index.json", {"basedir": str(folder), "relpaths": [s.name for s in segs]})


def stage_split(ctx: StageContext) -> Dict[str, Any]:
    """Keep ``cfg.n_labelled`` episodes labelled; the others become unlabelled video.

    ``data/labelled/``: mp4 + jsonl. ``data/unlabelled/``: the mp4 only (hard-linked); their true jsonl
    goes to ``data/heldout_truth/`` (with a hard link of the mp4, so it is a segment folder the IDM can be
    scored on) to measure the IDM's pseudo-labels later. Episodes (not segments) are split: the
    contractor-like recordings (alias ``contractor``, :func:`stage_record`) are the labelled part when there
    are ``n_labelled`` of them; otherwise (recordings of one kind) ``n_labelled`` episodes are chosen by a
    shuffle seeded with the pipeline seed.
    """
    segs = list_segments(ctx.recorded_dir)
    if not segs:
        raise PipelineError(f"split: no recorded segments (mp4 + jsonl) in {ctx.recorded_dir}")
    episodes: Dict[str, List[Path]] = {}
    for s in segs:
        episodes.setdefault(_episode_key(s), []).append(s)
    keys = sorted(episodes)
    n_lab = ctx.cfg.n_labelled
    if not 1 <= n_lab < len(keys):
        raise PipelineError(
            f"split: n_labelled={n_lab} with {len(keys)} recorded episodes; expected 1 <= n_labelled < episodes")
    contractor = [k for k in keys if Path(k).name.startswith(f"minelite-{LABELLED_ALIAS}-")]
    if len(contractor) == n_lab:
        labelled = contractor
    else:
        random.Random(ctx.seed).shuffle(keys)
        labelled = sorted(keys[:n_lab])
    unlabelled = sorted(set(keys) - set(labelled))
    for d in (ctx.labelled_dir, ctx.unlabelled_dir, ctx.truth_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    lab_segs, unl_segs = [], []
    for k in labelled:
        for s in episodes[k]:
            _link_or_copy(s, ctx.labelled_dir / s.name)
            _link_or_copy(s.with_suffix(".jsonl"), ctx.labelled_dir / s.with_suffix(".jsonl").name)
            lab_segs.append(ctx.labelled_dir / s.name)
    for k in unlabelled:
        for s in episodes[k]:
            _link_or_copy(s, ctx.unlabelled_dir / s.name)
            _link_or_copy(s.with_suffix(".jsonl"), ctx.truth_dir / s.with_suffix(".jsonl").name)
            _link_or_copy(s, ctx.truth_dir / s.name)  # so the IDM can be scored on it
            unl_segs.append(ctx.unlabelled_dir / s.name)
    _write_index(ctx.labelled_dir, lab_segs)
    _write_index(ctx.unlabelled_dir, unl_segs)
    lab_frames = sum(_count_lines(s.with_suffix(".jsonl")) for s in lab_segs)
    unl_frames = sum(_count_lines(ctx.truth_dir / (s.stem + ".jsonl")) for s in unl_segs)
    return {
        "labelled_episodes": labelled, "unlabelled_episodes": unlabelled,
        "labelled_segments": len(lab_segs), "unlabelled_segments": len(unl_segs),
        "labelled_frames": lab_frames, "unlabelled_frames": unl_frames,
    }


def stage_idm(ctx: StageContext) -> Dict[str, Any]:
    """Train the IDM on ``data/labelled`` into ``idm/idm.model`` + ``idm/idm.weights``; its held-out
    metrics are measured on (a capped number of frames of) the unlabelled videos' true actions."""
    from vpt_rl.train import idm as idm_train

    cfg = ctx.cfg
    model_path, weights_path = ctx.idm_paths
    _prepare_dir(ctx, "idm", model_path.parent)
    args = idm_train.Args(
        data=[str(ctx.labelled_dir)], val_data=[str(ctx.truth_dir)], preset=cfg.idm_preset,
        seq_len=cfg.idm_seq_len or None, total_steps=cfg.idm_steps, batch_size=cfg.idm_batch, lr=cfg.idm_lr,
        eval_every=0, eval_max_frames=4000,
        save_every=max(50, cfg.idm_steps // 4), seed=ctx.seed, device="auto", out_dir=str(model_path.parent),
        name="idm")
    idm_train.train_idm(args)
    _check_files(model_path, weights_path)
    out: Dict[str, Any] = {"model": str(model_path), "weights": str(weights_path)}
    metrics = model_path.parent / "metrics.json"
    if metrics.is_file():
        out["heldout_metrics"] = json.loads(metrics.read_text()).get("final")
    return out


def stage_label(ctx: StageContext) -> Dict[str, Any]:
    """Label every unlabelled video with the IDM (jsonl next to each mp4) and score the labels against
    the held-out true actions."""
    from vpt_rl.train import label as label_mod

    model_path, weights_path = ctx.idm_paths
    written = label_mod.label_videos([str(ctx.unlabelled_dir)], str(model_path), str(weights_path),
                                     timesteps=ctx.cfg.idm_seq_len or None, camera="mean",
                                     batch_size=ctx.cfg.label_batch, device="auto", overwrite=ctx.force)
    vids = list_segments(ctx.unlabelled_dir, need_jsonl=False)
    missing = [v.name for v in vids if not v.with_suffix(".jsonl").is_file()]
    if missing:
        raise PipelineError(f"label: no pseudo-label jsonl for {missing}")
    return {"videos": len(vids), "written": len(written), "accuracy": label_accuracy(ctx.unlabelled_dir, ctx.truth_dir)}


def label_accuracy(pseudo_dir: os.PathLike, truth_dir: os.PathLike) -> Dict[str, Any]:
    """Score pseudo-label jsonl files against the true ones of the same name, line by line, both read with
    the official contractor rules (:func:`vpt_rl.data.contractor.load_actions`), with the IDM's own
    metrics (:func:`vpt_rl.train.idm.idm_metrics`: ``keypress_accuracy`` = all 20 buttons right,
    ``button_accuracy`` = mean per-button accuracy, ``camera_r2`` against the truth clipped to +-10 deg)."""
    import numpy as np

    from vpt_rl.actions import BUTTONS_ALL, discretize_camera
    from vpt_rl.data.contractor import load_actions
    from vpt_rl.train.idm import idm_metrics

    pseudo_dir, truth_dir = Path(pseudo_dir), Path(truth_dir)
    btn_p, btn_t, cam_p, cam_t = [], [], [], []
    n_files = 0
    for tj in sorted(truth_dir.glob("*.jsonl")):
        pj = pseudo_dir / tj.name
        if not pj.is_file():
            continue
        truth, pseudo = load_actions(tj), load_actions(pj)
        n = min(len(truth), len(pseudo))
        if n == 0:
            continue
        n_files += 1
        for (ta, _), (pa, _) in zip(truth[:n], pseudo[:n]):
            btn_t.append([int(np.asarray(ta.get(b, 0)).item()) for b in BUTTONS_ALL])
            btn_p.append([int(np.asarray(pa.get(b, 0)).item()) for b in BUTTONS_ALL])
            cam_t.append(np.asarray(ta["camera"], dtype=np.float64).reshape(2))
            cam_p.append(np.asarray(pa["camera"], dtype=np.float64).reshape(2))
    if not btn_t:
        return {"files": 0, "n_frames": 0}
    cam_p = np.clip(np.array(cam_p), -10.0, 10.0)
    # the labels' own values (posterior means or bin centres) score as camera_r2_*_mean; their bins as camera_r2_*
    m = idm_metrics(np.array(btn_p), np.array(btn_t), discretize_camera(cam_p), np.array(cam_t), pred_deg_mean=cam_p)
    m.pop("button_accuracy_per_key", None)
    return {"files": n_files, **{k: (None if isinstance(v, float) and v != v else v) for k, v in m.items()}}


def stage_bc(ctx: StageContext) -> Dict[str, Any]:
    """Behavioural cloning of the foundation model (random init, ``cfg.policy_preset``) on the
    pseudo-labelled videos (or, with ``bc_labels="true"``, on the same videos' recorded actions in
    ``data/heldout_truth``), into ``foundation/foundation.model`` + ``.weights``."""
    from vpt_rl.train import bc as bc_train

    cfg = ctx.cfg
    model_path, weights_path = ctx.foundation_paths
    _prepare_dir(ctx, "bc", model_path.parent)
    data_dir = ctx.truth_dir if cfg.bc_labels == "true" else ctx.unlabelled_dir
    args = bc_train.Args(
        data=[str(data_dir)], preset=cfg.policy_preset, seq_len=cfg.bc_seq_len, batch_size=cfg.bc_batch,
        total_steps=cfg.bc_steps, lr=cfg.bc_lr, save_every=max(50, cfg.bc_steps // 4), seed=ctx.seed,
        min_label_confidence=cfg.bc_min_confidence, device="auto", out_dir=str(model_path.parent),
        name="foundation")
    bc_train.train_bc(args)
    _check_files(model_path, weights_path)
    out: Dict[str, Any] = {"model": str(model_path), "weights": str(weights_path), "labels": cfg.bc_labels,
                           "data": str(data_dir)}
    metrics = model_path.parent / "metrics.json"
    if metrics.is_file():
        hist = json.loads(metrics.read_text())
        last = hist.get("history", [])[-1:] if isinstance(hist, dict) else []
        if last:
            out["final_train"] = last[0]
    return out


def stage_finetune(ctx: StageContext) -> Dict[str, Any]:
    """Optional (``ft_steps > 0``): BC fine-tuning of the foundation model on a targeted set, the early game
    (first ``ft_frames`` frames) of the same labelled videos, as the paper's foundation -> early-game BC ->
    RL; into ``finetuned/finetuned.model`` + ``.weights``, which foundation+RL then starts from. With
    ``ft_steps == 0`` nothing is trained and RL starts from the foundation model."""
    from vpt_rl.train import bc as bc_train

    cfg = ctx.cfg
    model_path, weights_path = ctx.finetuned_paths
    _prepare_dir(ctx, "finetune", model_path.parent)
    if cfg.ft_steps <= 0:
        return {"skipped": True, "reason": "ft_steps = 0"}
    if cfg.ft_frames < 1:
        raise PipelineError(f"ft_frames must be >= 1 frame of early game, got {cfg.ft_frames}")
    fmodel, fweights = ctx.foundation_paths
    _check_files(fmodel, fweights)
    data_dir = ctx.truth_dir if cfg.bc_labels == "true" else ctx.unlabelled_dir
    args = bc_train.Args(
        data=[str(data_dir)], init_model=str(fmodel), init_weights=str(fweights), seq_len=cfg.bc_seq_len,
        batch_size=cfg.bc_batch, total_steps=cfg.ft_steps, lr=cfg.ft_lr, warmup_steps=min(50, cfg.ft_steps // 10),
        max_segment_frames=cfg.ft_frames, save_every=max(50, cfg.ft_steps // 4), seed=ctx.seed + 1,
        min_label_confidence=cfg.bc_min_confidence, device="auto", out_dir=str(model_path.parent), name="finetuned")
    bc_train.train_bc(args)
    _check_files(model_path, weights_path)
    return {"model": str(model_path), "weights": str(weights_path), "init": str(fmodel), "data": str(data_dir),
            "frames_per_episode": cfg.ft_frames, "steps": cfg.ft_steps}


def _check_files(*paths: Path) -> None:
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise PipelineError(f"expected output file(s) missing: {', '.join(missing)}")


RL_SEED_OFFSET = 1000
"""both RL runs use seed ``pipeline seed + RL_SEED_OFFSET`` (envs and algorithm)"""


def stage_rl(ctx: StageContext) -> Dict[str, Any]:
    """Fine-tune from the foundation model (or, with ``ft_steps > 0``, its early-game fine-tuned version; KL to
    the model it starts from, no entropy bonus) and from random init (entropy
    bonus, no KL) with the same env-step budget; export each to ``.model``/``.weights`` and write its
    learning curve (episode return vs env steps) to ``rl/<run>/curve.json``."""
    cfg = ctx.cfg
    fmodel, fweights = ctx.rl_start_paths
    runs = {
        "pretrained": dict(model=str(fmodel), weights=str(fweights), config=None, kl_coef=cfg.kl_coef, ent_coef=0.0),
        "random": dict(model=None, weights=None, config=cfg.policy_preset, kl_coef=0.0, ent_coef=cfg.ent_coef_random),
    }
    summary = {}
    for run, kw in runs.items():
        run_dir = ctx.rl_dir(run)
        done = run_dir / "run.done"
        want = stage_config("rl", cfg, ctx.backend, ctx.seed)
        old = json.loads(done.read_text()) if done.is_file() else None
        if old is not None and old.get("config") == want and not ctx.force:
            ctx.log(f"[pipeline] rl/{run}: done already, skipping")
            summary[run] = old
            continue
        if run_dir.exists() and (ctx.force or old is not None or _stale_run(run_dir, want)):
            shutil.rmtree(run_dir)  # finished with other settings: start over (else resume)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "run.config", want)
        t0 = time.time()
        # the same seed for both runs (a controlled comparison): env i of either run plays the worlds
        # seed + 1000 + i, ..., and the algorithm (torch/numpy) seed is seed + 1000 too
        info = _finetune(ctx, run, run_dir, seed=ctx.seed + RL_SEED_OFFSET, **kw)
        curve = read_learning_curve(run_dir)
        write_json_atomic(run_dir / "curve.json", curve)
        info.update(seconds=round(time.time() - t0, 1), episodes=len(curve["steps"]), config=want)
        write_json_atomic(done, info)
        summary[run] = info
    return summary


def _stale_run(run_dir: Path, want: Dict[str, Any]) -> bool:
    """True when an unfinished run in ``run_dir`` was started with other settings (not resumable)."""
    cfg_file = run_dir / "run.config"
    try:
        return json.loads(cfg_file.read_text()) != want
    except (OSError, ValueError):
        return True


def _finetune(ctx: StageContext, run: str, run_dir: Path, *, model, weights, config, kl_coef, ent_coef, seed) -> Dict[str, Any]:
    cfg = ctx.cfg
    model_out, weights_out = ctx.rl_paths(run)
    if ctx.backend == "sb3":
        from vpt_rl.policies.sb3 import finetune_sb3

        # checkpoint (and episodes.csv) every rollout; resumes from run_dir/checkpoint.zip
        zip_path = finetune_sb3(
            ctx.env_id, cfg.rl_steps, model=model, weights=weights, config=config, kl_coef=kl_coef,
            ent_coef=ent_coef, n_envs=cfg.rl_n_envs, n_steps=cfg.rl_n_steps, out_dir=str(run_dir), seed=seed,
            learning_rate=cfg.rl_lr, device="cpu", episodes_csv=EPISODES_CSV, progress_desc=f"rl {run}",
            max_steps=cfg.rl_max_ticks, **ctx.env_kwargs())
        result = {"zip": str(zip_path)}
    else:
        from vpt_rl.policies.sample_factory import finetune_sf

        exported = Path(finetune_sf(
            ctx.env_id, cfg.rl_steps, model=model, weights=weights, config=config, kl_coef=kl_coef,
            ent_coef=ent_coef, num_workers=cfg.rl_n_envs, out_dir=str(run_dir), seed=seed, experiment=run,
            extra_args={"episode_steps": cfg.rl_max_ticks, "learning_rate": cfg.rl_lr},
            env_kwargs=ctx.env_kwargs()))
        _link_or_copy(exported, weights_out)
        _link_or_copy(exported.with_suffix(".model"), model_out)
        result = {"exported": str(exported)}
    _check_files(model_out, weights_out)
    result.update(model=str(model_out), weights=str(weights_out), kl_coef=kl_coef, ent_coef=ent_coef,
                  init="foundation" if model else f"random ({config})", env_steps=cfg.rl_steps)
    return result


EPISODES_CSV = "episodes.csv"


def read_learning_curve(run_dir: os.PathLike) -> Dict[str, Any]:
    """Episode return vs env steps of an RL run: from ``run_dir/episodes.csv`` (written by
    :func:`vpt_rl.policies.sb3.finetune_sb3` with ``episodes_csv=``: ``steps,return,length,milestones``; the
    result then also has ``milestones``, the names each episode reached), else from SB3 Monitor CSVs
    (``*monitor.csv``: ``r,l,t`` rows; episodes of all envs ordered by wall time, lengths summed), else
    from TensorBoard: SB3's ``rollout/ep_rew_mean`` or Sample Factory's ``policy_stats/avg_episode_return``
    (the ``EpisodeStats`` wrapper's return) / ``policy_stats/avg_reward``, against env steps."""
    run_dir = Path(run_dir)
    ep_csv = run_dir / EPISODES_CSV
    if ep_csv.is_file():
        from vpt_rl.policies.sb3 import read_episodes_csv

        rows = read_episodes_csv(ep_csv, milestones=True)
        return {"steps": [r[0] for r in rows], "returns": [r[1] for r in rows],
                "milestones": [list(r[3]) for r in rows], "source": EPISODES_CSV}
    rows = []
    for csv_path in sorted(run_dir.rglob("*monitor.csv")):
        with open(csv_path) as f:
            lines = [ln for ln in f if not ln.startswith("#")]
        if not lines:
            continue
        header = lines[0].strip().split(",")
        try:
            ir, il, it = header.index("r"), header.index("l"), header.index("t")
        except ValueError:
            continue
        for ln in lines[1:]:
            parts = ln.strip().split(",")
            if len(parts) >= len(header):
                rows.append((float(parts[it]), float(parts[ir]), int(float(parts[il]))))
    if rows:
        rows.sort()
        steps, total = [], 0
        for _, _, length in rows:
            total += length
            steps.append(total)
        return {"steps": steps, "returns": [r for _, r, _ in rows], "source": "monitor"}
    tb = _tensorboard_curve(run_dir, ("rollout/ep_rew_mean", "policy_stats/avg_episode_return", "policy_stats/avg_reward",
                                          "reward/reward"))
    if tb is not None:
        return tb
    return {"steps": [], "returns": [], "source": "none"}


def _tensorboard_curve(run_dir: Path, tags: Sequence[str]) -> Optional[Dict[str, Any]]:
    files = sorted(run_dir.rglob("events.out.tfevents.*"))
    if not files:
        return None
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:  # pragma: no cover
        return None
    for tag in tags:
        pts = []
        for f in files:
            acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
            acc.Reload()
            if tag in acc.Tags().get("scalars", []):
                pts += [(e.step, e.value) for e in acc.Scalars(tag)]
        if pts:
            pts.sort()
            return {"steps": [p[0] for p in pts], "returns": [p[1] for p in pts], "source": f"tensorboard:{tag}"}
    return None


def stage_eval(ctx: StageContext) -> Dict[str, Any]:
    """Evaluate the four agents over ``cfg.eval_episodes`` seeds; one ``eval/<agent>.json`` each (an agent
    whose file exists with the same settings is not re-run)."""
    from vpt_rl import evaluate as ev

    cfg = ctx.cfg
    agents = {
        "foundation": ctx.foundation_paths,
        **({"foundation+bc": ctx.finetuned_paths} if cfg.ft_steps > 0 else {}),
        "foundation+rl": ctx.rl_paths("pretrained"),
        "random-init+rl": ctx.rl_paths("random"),
        "expert": None,
    }
    stale = ctx.eval_dir / f"{_safe('foundation+bc')}.json"
    if cfg.ft_steps <= 0 and stale.is_file():
        stale.unlink()  # from an earlier run with a fine-tuning stage
    summary = {}
    for name, paths in agents.items():
        # an agent's result is reused only for the same settings, upstream knobs and checkpoint file
        settings = {"episodes": cfg.eval_episodes, "max_ticks": cfg.eval_max_ticks, "seed": ctx.seed + 10_000,
                    "env_id": ctx.env_id, "env_kwargs": ctx.env_kwargs(),
                    "pipeline": stage_config("eval", cfg, ctx.backend, ctx.seed),
                    "checkpoint": None if paths is None else _file_stamp(paths[1])}
        path = ctx.eval_dir / f"{_safe(name)}.json"
        if path.is_file() and not ctx.force:
            old = json.loads(path.read_text())
            if old.get("settings") == json.loads(json.dumps(settings)):
                summary[name] = _eval_headline(old)
                continue
        agent = ev.make_agent("expert" if paths is None else str(paths[0]),
                              weights=None if paths is None else str(paths[1]), seed=ctx.seed,
                              epsilon=0.0)
        res = ev.evaluate(agent, episodes=cfg.eval_episodes, max_ticks=cfg.eval_max_ticks, seed=settings["seed"],
                          env_id=ctx.env_id, env_kwargs=ctx.env_kwargs(), batch_size=cfg.eval_batch,
                          desc=f"eval {name}")
        res = dict(res, agent=name, settings=settings)
        write_json_atomic(path, res)
        summary[name] = _eval_headline(res)
    return summary


def _file_stamp(path: os.PathLike) -> Dict[str, Any]:
    st = os.stat(path)
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _safe(name: str) -> str:
    return name.replace("+", "_plus_").replace("/", "_")


def _eval_headline(res: Mapping[str, Any]) -> Dict[str, Any]:
    return {"mean_return": res["mean_return"], "success": res["success"]}


def stage_report(ctx: StageContext) -> Dict[str, Any]:
    """Write ``results.json``, ``results.md`` and ``plots/{reward_curves,rl_milestones,milestones}.png``."""
    from vpt_rl import plots

    results = collect_results(ctx)
    write_json_atomic(ctx.out / "results.json", results)
    write_text_atomic(ctx.out / "results.md", results_markdown(results))
    curves = {label: (results["rl"][run]["curve"]["steps"], results["rl"][run]["curve"]["returns"])
              for run, label in (("pretrained", "foundation+RL (KL)"), ("random", "random init+RL (entropy)"))
              if run in results["rl"]}
    plots.plot_reward_curves(curves, ctx.plots_dir / "reward_curves.png",
                             title=f"MineLite tech-tree return vs env steps ({ctx.cfg.name} preset)")
    runs = {label: results["rl"][run]["curve"] for run, label in (("pretrained", "foundation+RL (KL)"),
                                                                    ("random", "random init+RL (entropy)"))
            if run in results["rl"]}
    plots.plot_milestone_curves(runs, ctx.plots_dir / "rl_milestones.png",
                                title=f"RL fine-tuning, same env steps ({ctx.cfg.name} preset, "
                                      f"{ctx.cfg.rl_max_ticks}-tick training episodes)")
    plots.plot_milestone_rates({a: r["success"] for a, r in results["agents"].items()},
                               ctx.plots_dir / "milestones.png", milestones=results["milestones"],
                               title=f"Milestone success rate over {ctx.cfg.eval_episodes} episodes "
                                     f"of {ctx.cfg.eval_max_ticks} ticks")
    return {"results": str(ctx.out / "results.json"), "comparison": results["comparison"]}


def collect_results(ctx: StageContext) -> Dict[str, Any]:
    """Gather every stage's numbers into one JSON-able dict (what ``results.json`` holds)."""
    from vpt_rl.evaluate import order_milestones

    agents = {}
    for name in eval_agents(ctx.cfg):
        p = ctx.eval_dir / f"{_safe(name)}.json"
        if p.is_file():
            res = json.loads(p.read_text())
            agents[name] = {k: res[k] for k in ("mean_return", "std_return", "sem_return", "return_ci95", "success",
                                                "success_ci", "episodes", "max_ticks") if k in res}
    milestones = order_milestones({m for a in agents.values() for m in a["success"]})
    rl = {}
    for run in ("pretrained", "random"):
        cp = ctx.rl_dir(run) / "curve.json"
        if cp.is_file():
            rl[run] = {"curve": json.loads(cp.read_text())}
            done = ctx.rl_dir(run) / "run.done"
            if done.is_file():
                rl[run].update(json.loads(done.read_text()))
    stages = {s: (read_marker(ctx.out, s) or {}) for s in STAGE_ORDER if s != "report"}
    return {
        "preset": ctx.cfg.name,
        "config": dataclasses.asdict(ctx.cfg),
        "backend": ctx.backend,
        "seed": ctx.seed,
        "env_id": ctx.env_id,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "data": stages.get("split", {}).get("summary", {}),
        "pseudo_labels": stages.get("label", {}).get("summary", {}).get("accuracy", {}),
        "stage_seconds": {s: m.get("seconds") for s, m in stages.items() if m},
        "milestones": milestones,
        "agents": agents,
        "rl": rl,
        "comparison": compare_runs(agents, rl),
        "recipe_checks": recipe_checks(agents),
    }


def recipe_checks(agents: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The VPT recipe's checks on the evaluated agents (those present): the zero-shot foundation model
    plays (log >= 80%, planks >= 50%, crafting table >= 20% of episodes), RL from it keeps at least its
    return and makes a crafting table in >= 40%, and random init with the same RL budget earns nothing
    (log <= 10%, mean return <= 0.1). Rates are point estimates; the table beside it has their intervals."""
    out: List[Dict[str, Any]] = []

    def rate(agent: str, m: str) -> Optional[float]:
        a = agents.get(agent)
        return None if a is None else a["success"].get(m)

    def add(check: str, value: Optional[float], target: str, met: bool, pct: bool = True) -> None:
        if value is not None:
            out.append({"check": check, "measured": f"{100 * value:.0f}%" if pct else f"{value:.3f}",
                        "target": target, "met": bool(met)})

    for m, lo in (("log", 0.8), ("planks", 0.5), ("crafting_table", 0.2)):
        v = rate("foundation", m)
        add(f"zero-shot foundation: {m}", v, f">= {100 * lo:.0f}%", v is not None and v >= lo)
    f, r = agents.get("foundation"), agents.get("foundation+rl")
    if f and r:
        add("foundation+RL mean return (zero-shot: {:.3f})".format(f["mean_return"]), r["mean_return"],
            ">= zero-shot", r["mean_return"] >= f["mean_return"], pct=False)
    v = rate("foundation+rl", "crafting_table")
    add("foundation+RL: crafting_table", v, ">= 40%", v is not None and v >= 0.4)
    v = rate("random-init+rl", "log")
    add("random-init+RL: log", v, "<= 10%", v is not None and v <= 0.1)
    rnd = agents.get("random-init+rl")
    if rnd:
        add("random-init+RL mean return", rnd["mean_return"], "<= 0.1", rnd["mean_return"] <= 0.1, pct=False)
    return out


def compare_runs(agents: Mapping[str, Any], rl: Mapping[str, Any], milestone: str = "stone_pickaxe") -> Dict[str, Any]:
    """The benchmark's two targets: ``milestone`` success of foundation+RL vs random-init+RL, and the
    fraction of the env-step budget the pretrained run needed to reach random init's final return
    (mean of the last 10% of random-init episodes, at least one; any positive return when that is 0),
    judged on the pretrained curve's trailing mean over 5% of its episodes."""
    from vpt_rl.evaluate import steps_to_reach

    out: Dict[str, Any] = {"milestone": milestone}
    pre, rnd = agents.get("foundation+rl"), agents.get("random-init+rl")
    if pre and rnd:
        out["pretrained_rate"] = pre["success"].get(milestone)
        out["random_rate"] = rnd["success"].get(milestone)
        if out["pretrained_rate"] is not None and out["random_rate"] is not None:
            out["milestone_target_met"] = bool(out["pretrained_rate"] >= 0.5 and out["random_rate"] < 0.05)
    if "pretrained" in rl and "random" in rl:
        rc, pc = rl["random"]["curve"], rl["pretrained"]["curve"]
        if rc["returns"] and pc["returns"]:
            k = max(1, len(rc["returns"]) // 10)
            final = sum(rc["returns"][-k:]) / k
            budget = max(rc["steps"][-1], pc["steps"][-1])
            # reaching a final return of 0 would be trivial: then the target is any positive return
            target = final if final > 0 else 1e-9
            reach = steps_to_reach(pc["steps"], pc["returns"], target, window=max(1, len(pc["returns"]) // 20))
            out.update(random_final_return=final, pretrained_steps_to_reach=reach, budget_steps=budget,
                       fraction_of_budget=(reach / budget) if reach is not None and budget else None)
            out["random_init_learned"] = bool(final > 0)
            # when random init never earned reward the target is vacuous (any positive episode "beats" it):
            # report it as not shown (None) rather than met
            out["speed_target_met"] = (bool(out["fraction_of_budget"] is not None and out["fraction_of_budget"] <= 0.1)
                                       if final > 0 else None)
    return out


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "-"
    if pct:
        return f"{100 * x:.0f}%"
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def _rate_cell(agent: Mapping[str, Any], milestone: str) -> str:
    if agent["success"].get(milestone) is None or not agent.get("episodes"):
        return _fmt(agent["success"].get(milestone), pct=True)
    from vpt_rl.evaluate import format_rate

    return format_rate(agent, milestone)


def results_markdown(results: Mapping[str, Any]) -> str:
    """The Markdown table of ``results.md``: one row per agent, mean return and milestone rates."""
    ms = results["milestones"]
    lines = [f"# vpt-rl pipeline results ({results['preset']} preset, backend {results['backend']}, "
             f"seed {results['seed']})", ""]
    agents = results["agents"]
    if agents:
        any_agent = next(iter(agents.values()))
        lines += [f"Evaluation: {any_agent.get('episodes', '?')} episodes of {any_agent.get('max_ticks', '?')} "
                  f"ticks per agent on {results['env_id']}, tech-tree reward, sampled actions. Mean return +- sd; "
                  "milestone rates with their 95% Wilson interval in brackets.", ""]
        lines.append("| agent | mean return | " + " | ".join(ms) + " |")
        lines.append("|---|---|" + "---|" * len(ms))
        for name, a in agents.items():
            lines.append(f"| {name} | {a['mean_return']:.3f} +- {a.get('std_return', 0.0):.3f} | "
                         + " | ".join(_rate_cell(a, m) for m in ms) + " |")
        lines.append("")
    cmp_ = results["comparison"]
    if cmp_:
        lines += ["## Random init vs pretrained (same env-step budget)", ""]
        m = cmp_.get("milestone")
        lines.append(f"- {m}: foundation+RL {_fmt(cmp_.get('pretrained_rate'), True)}, random-init+RL "
                     f"{_fmt(cmp_.get('random_rate'), True)} (target >= 50% vs < 5%: "
                     f"{'met' if cmp_.get('milestone_target_met') else 'not met'})")
        if "random_final_return" in cmp_:
            lines.append(f"- random init's final return {_fmt(cmp_['random_final_return'])}: reached by the "
                         f"pretrained run after {_fmt(cmp_.get('pretrained_steps_to_reach'))} of "
                         f"{_fmt(cmp_.get('budget_steps'))} env steps (target <= 1/10: "
                         + ("met)" if cmp_.get("speed_target_met") else "not met)" if cmp_.get("random_init_learned")
                            else "not shown: random init earned no reward, so there is no return to reach)"))
        lines.append("")
    checks = recipe_checks(agents)
    if checks:
        lines += ["## The recipe's targets", "", "| check | measured | target | |", "|---|---|---|---|"]
        lines += [f"| {c['check']} | {c['measured']} | {c['target']} | {'met' if c['met'] else 'not met'} |"
                  for c in checks]
        lines.append("")
    acc = results.get("pseudo_labels") or {}
    data = results.get("data") or {}
    if data:
        lines += ["## Data", "",
                  f"- labelled: {data.get('labelled_segments')} segments, {data.get('labelled_frames')} frames; "
                  f"unlabelled: {data.get('unlabelled_segments')} segments, {data.get('unlabelled_frames')} frames"]
        if (results.get("config") or {}).get("bc_labels") == "true":
            lines.append("- **oracle ablation**: the foundation model was cloned from the unlabelled videos' "
                         "*true* actions (`bc_labels=true`), not from the IDM's pseudo-labels")
        if acc.get("n_frames"):
            lines.append(f"- IDM pseudo-labels vs the held-out true actions ({acc['n_frames']} frames): all-buttons "
                         f"accuracy {_fmt(acc.get('keypress_accuracy'))}, per-button accuracy "
                         f"{_fmt(acc.get('button_accuracy'))}, camera R^2 {_fmt(acc.get('camera_r2'))}")
        lines.append("")
    secs = results.get("stage_seconds") or {}
    if secs:
        lines += ["## Stage times (s)", "", "| " + " | ".join(secs) + " |", "|" + "---|" * len(secs),
                  "| " + " | ".join(_fmt(v) for v in secs.values()) + " |", ""]
    lines += ["Plots: `plots/reward_curves.png`, `plots/rl_milestones.png` (return and milestone rates over RL "
              "training, both arms), `plots/milestones.png`.", ""]
    return "\n".join(lines)


STAGES: Dict[str, StageFn] = {
    "record": stage_record,
    "split": stage_split,
    "idm": stage_idm,
    "label": stage_label,
    "bc": stage_bc,
    "finetune": stage_finetune,
    "rl": stage_rl,
    "eval": stage_eval,
    "report": stage_report,
}

# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vpt-rl pipeline", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="stages: " + ", ".join(STAGE_ORDER) + "\npresets: " + ", ".join(PRESETS))
    p.add_argument("--preset", default="small", choices=sorted(PRESETS), help="scale (default: small)")
    p.add_argument("--out", default=None, help="results folder (default: results/pipeline-<preset>)")
    p.add_argument("--stages", default="all", help="comma list of stages to run (default: all)")
    p.add_argument("--backend", default="sb3", choices=("sb3", "sf"), help="RL plug-in (default: sb3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="re-run the selected stages even if done")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                   help="override one knob of the preset (repeatable), e.g. --set rl_steps=5000")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--list-knobs", action="store_true", help="print the preset's knobs and exit")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``vpt-rl pipeline``."""
    args = build_parser().parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"vpt-rl pipeline: --set {item!r}: expected KNOB=VALUE", file=sys.stderr)
            return 2
        overrides[key.strip()] = value.strip()
    try:
        cfg = PRESETS[args.preset].replace(**overrides)
    except ValueError as e:
        print(f"vpt-rl pipeline: {e}", file=sys.stderr)
        return 2
    if args.list_knobs:
        for f in dataclasses.fields(PipelineConfig):
            print(f"{f.name} = {getattr(cfg, f.name)!r}")
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = args.out or os.path.join("results", f"pipeline-{args.preset}")
    try:
        run_pipeline(out, cfg, stages=args.stages, backend=args.backend, seed=args.seed, force=args.force)
    except (PipelineError, ValueError) as e:
        print(f"vpt-rl pipeline: {e}", file=sys.stderr)
        return 1
    print(f"results: {os.path.join(out, 'results.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
