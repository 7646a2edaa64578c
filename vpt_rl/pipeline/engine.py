"""The make-like runner of the pipeline: the stage table, the stage context, markers and :func:`run_pipeline`.

Every stage is one :class:`Stage` record in :data:`STAGE_TABLE`: its name, the stages it reads from, the
knobs it reads itself, whether its result depends on ``--backend``, what it produces, and its function.
A stage's configuration (:func:`stage_config`) is its own knobs and those of every stage it reads from,
transitively, plus the seed (and the backend where it matters). A finished stage writes
``OUT/.stages/<stage>.done`` with that configuration; :func:`run_pipeline` skips a stage whose marker is
:func:`~vpt_rl.pipeline.files.matches`, the same check the stages use for their own partial results
(:func:`~vpt_rl.pipeline.files.up_to_date`).
"""
from __future__ import annotations

import datetime as _dt
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from tqdm.auto import tqdm

from vpt_rl.envs.registration import MINELITE_ID
from vpt_rl.pipeline.config import PipelineConfig, resolve_config
from vpt_rl.pipeline.files import (
    PathLike,
    PipelineError,
    jsonable,
    matches,
    prepare_dir,
    read_json,
    write_json_atomic,
)
from vpt_rl.pipeline.report import stage_report
from vpt_rl.pipeline.stages_data import stage_record, stage_split
from vpt_rl.pipeline.stages_eval import stage_eval
from vpt_rl.pipeline.stages_filter import stage_filter
from vpt_rl.pipeline.stages_rl import stage_rl
from vpt_rl.pipeline.stages_train import stage_bc, stage_finetune, stage_idm, stage_label
from vpt_rl.train.runtime import resolve_device, sf_device

BACKENDS = ("sb3", "sf")
"""RL plug-ins: Stable-Baselines3 and Sample Factory"""


@dataclass
class StageContext:
    """What a stage function gets: where to write, the knobs, the backend, the seed and the torch device."""

    out: Path
    cfg: PipelineConfig
    backend: str = "sb3"
    seed: int = 0
    force: bool = False
    env_id: str = MINELITE_ID
    log: Callable[[str], None] = field(default=print)
    device: str = "auto"
    """where the stages run their models (auto, cpu, cuda, cuda:N); not part of :meth:`stage_config`: a stage
    done on one device counts as done on another"""

    def stage_config(self, stage: str) -> Dict[str, Any]:
        """:func:`stage_config` of ``stage`` under this context's knobs, backend and seed."""
        return stage_config(stage, self.cfg, self.backend, self.seed)

    def markers(self) -> Dict[str, Optional[Dict[str, Any]]]:
        """Every stage's marker in ``out`` (``None`` for a stage not done), in pipeline order."""
        return {s: read_marker(self.out, s) for s in STAGE_ORDER}

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


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline."""

    name: str
    inputs: Tuple[str, ...]
    """the stages whose output it reads"""
    knobs: Tuple[str, ...]
    """the :class:`PipelineConfig` knobs it reads itself"""
    produces: Tuple[str, ...]
    """what it writes, relative to ``OUT/``"""
    fn: StageFn
    uses_backend: bool = False
    """its result depends on ``--backend``"""


STAGE_TABLE: Tuple[Stage, ...] = (
    Stage("record", (), ("episodes", "episode_ticks", "resolution", "expert_epsilon", "world_size", "n_labelled",
                         "label_camera_noise", "video_camera_noise", "imitable", "web_like_rate"),
          ("data/recorded/",), stage_record),
    Stage("split", ("record",), ("n_labelled",), ("data/labelled/", "data/unlabelled/", "data/heldout_truth/"),
          stage_split),
    Stage("filter", ("split",), ("filter", "filter_label_episodes", "filter_frames", "filter_steps", "filter_width"),
          ("filter/filter.pt", "data/unlabelled/*.spans.json"), stage_filter),
    Stage("idm", ("split",), ("idm_preset", "idm_seq_len", "idm_steps", "idm_batch", "idm_lr"),
          ("idm/idm.model", "idm/idm.weights"), stage_idm),
    Stage("label", ("split", "filter", "idm"), ("label_batch",), ("data/unlabelled/*.jsonl",), stage_label),
    Stage("bc", ("label",), ("policy_preset", "bc_steps", "bc_batch", "bc_seq_len", "bc_lr", "bc_labels",
                             "bc_min_confidence"),
          ("foundation/foundation.model", "foundation/foundation.weights"), stage_bc),
    Stage("finetune", ("bc",), ("ft_steps", "ft_frames", "ft_lr"),
          ("finetuned/finetuned.model", "finetuned/finetuned.weights"), stage_finetune),
    Stage("rl", ("bc", "finetune"), ("rl_steps", "rl_n_envs", "rl_n_steps", "rl_max_ticks", "rl_lr", "kl_coef",
                                     "ent_coef_random"),
          ("rl/pretrained/", "rl/random/"), stage_rl, uses_backend=True),
    Stage("eval", ("bc", "finetune", "rl"), ("eval_episodes", "eval_max_ticks", "eval_batch"), ("eval/",),
          stage_eval, uses_backend=True),
    Stage("report", ("split", "label", "rl", "eval"), (), ("results.json", "results.md", "plots/"), stage_report,
          uses_backend=True),
)
"""the stages in pipeline order"""

STAGE_BY_NAME: Dict[str, Stage] = {s.name: s for s in STAGE_TABLE}
STAGE_ORDER = tuple(STAGE_BY_NAME)

# Views of the table in the shape of the dicts the pipeline module had before the table (still importable).
STAGE_KNOBS: Dict[str, tuple] = {s.name: s.knobs for s in STAGE_TABLE}
STAGE_INPUTS: Dict[str, tuple] = {s.name: s.inputs for s in STAGE_TABLE}
BACKEND_STAGES = tuple(s.name for s in STAGE_TABLE if s.uses_backend)
STAGES: Dict[str, StageFn] = {s.name: s.fn for s in STAGE_TABLE}
"""stage name -> the function :func:`run_pipeline` calls (replace one here, or pass ``stage_fns``)"""


def _stage(name: str) -> Stage:
    if name not in STAGE_BY_NAME:
        raise ValueError(f"unknown stage {name!r}; expected one of: {', '.join(STAGE_ORDER)}")
    return STAGE_BY_NAME[name]


def stage_config(stage: str, cfg: PipelineConfig, backend: str, seed: int) -> Dict[str, Any]:
    """The configuration recorded in (and compared against) a stage's marker: the stage's own knobs and
    those of every stage it reads from, transitively, plus the seed (and the backend where it matters)."""
    needed, todo = set(), [_stage(stage).name]
    while todo:
        s = todo.pop()
        if s not in needed:
            needed.add(s)
            todo.extend(STAGE_BY_NAME[s].inputs)
    knobs = {k: getattr(cfg, k) for s in STAGE_TABLE if s.name in needed for k in s.knobs}
    out: Dict[str, Any] = {"seed": seed, "knobs": knobs}
    if _stage(stage).uses_backend:
        out["backend"] = backend
    return jsonable(out)  # tuples -> lists, so it compares equal after a reload


def _prepare_dir(ctx: StageContext, stage: str, folder: Path) -> None:
    """:func:`~vpt_rl.pipeline.files.prepare_dir` for ``stage`` under ``ctx`` (kept for older callers)."""
    prepare_dir(folder, ctx.stage_config(stage), ctx.force)


def marker_path(out: PathLike, stage: str) -> Path:
    """``OUT/.stages/<stage>.done``."""
    return Path(out) / ".stages" / f"{stage}.done"


def read_marker(out: PathLike, stage: str) -> Optional[Dict[str, Any]]:
    """The stage's marker, or ``None`` if the stage never finished (or the marker is unreadable)."""
    return read_json(marker_path(out, stage),
                     warn=lambda why: print(f"[pipeline] warning: ignoring unreadable marker {why}", file=sys.stderr))


def parse_stages(spec: Optional[str | Sequence[str]]) -> List[str]:
    """``"rl,eval"`` or ``["rl", "eval"]`` -> the stages in pipeline order; ``None``/``"all"`` -> all."""
    if spec is None or spec == "all":
        return list(STAGE_ORDER)
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    bad = [s for s in names if s not in STAGE_ORDER]
    if bad or not names:
        raise ValueError(f"--stages {spec!r}: unknown stage(s) {bad}; expected a comma list of: {','.join(STAGE_ORDER)}")
    return [s for s in STAGE_ORDER if s in names]


def check_run(cfg: PipelineConfig, stages: Optional[str | Sequence[str]], backend: str, seed: int,
              device: str = "auto") -> List[str]:
    """Check everything a run is given before its first stage (every knob, the stages, the backend, the
    seed, the device); returns the selected stages in pipeline order.

    :raises ValueError: naming the first bad setting, its value and what is expected.
    """
    cfg.validate()
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    resolve_device(device)  # a misspelt device, or a GPU this machine lacks
    if backend == "sf":
        sf_device(device)  # Sample Factory picks its GPUs itself: no cuda:N
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed {seed!r}: expected an integer >= 0 (episode i records world seed + i)")
    return parse_stages(stages)


def _check_inputs(out: Path, stage: Stage, ctx: StageContext) -> None:
    """Raise :class:`PipelineError` unless every stage ``stage`` reads from is done with this configuration."""
    for dep in stage.inputs:
        want = ctx.stage_config(dep)
        marker = read_marker(out, dep)
        if matches(marker, want, key="config"):
            continue
        if marker is None:
            raise PipelineError(
                f"stage {stage.name!r} reads the output of stage {dep!r}, which has not run in {out}; "
                f"run `vpt-rl pipeline --out {out} --stages {dep},{stage.name}` (or without --stages)")
        raise PipelineError(
            f"stage {stage.name!r} reads the output of stage {dep!r}, which ran in {out} with another "
            f"configuration ({_config_diff(marker.get('config'), want)}); re-run {dep!r} first")


def run_pipeline(
    out: PathLike,
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
    device: str = "auto",
) -> Dict[str, Dict[str, Any]]:
    """Run (or resume) the pipeline into ``out``; returns each selected stage's marker.

    :param preset: a name in :data:`PRESETS` or a :class:`PipelineConfig`.
    :param stages: the stages to run (default all); the others must already be done when read from.
    :param backend: ``"sb3"`` (Stable-Baselines3 plug-in) or ``"sf"`` (Sample Factory).
    :param force: re-run the selected stages even when their marker matches.
    :param overrides: knob -> value changes applied on top of the preset.
    :param stage_fns: stage name -> function replacing the built-in one (tests, experiments).
    :param device: where the stages run their models: ``auto`` (cuda when there is a GPU, else cpu), ``cpu``,
        ``cuda`` or ``cuda:N``; the stages' markers do not record it, so a run resumes on another device.
    """
    cfg = resolve_config(preset, overrides)
    selected = check_run(cfg, stages, backend, seed, device)
    fns = dict(STAGES)
    for name, fn in (stage_fns or {}).items():
        if name not in STAGES:
            raise ValueError(f"stage_fns: unknown stage {name!r}; expected one of: {', '.join(STAGE_ORDER)}")
        fns[name] = fn
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    bar = tqdm(selected, desc="pipeline", unit="stage", disable=not progress, dynamic_ncols=True)
    log = bar.write if progress else (lambda msg: print(msg, file=sys.stderr))
    ctx = StageContext(out=out, cfg=cfg, backend=backend, seed=seed, force=force, env_id=env_id, log=log,
                       device=device)
    results: Dict[str, Dict[str, Any]] = {}
    for name in bar:
        bar.set_postfix_str(name)
        want = ctx.stage_config(name)
        marker = read_marker(out, name)
        if not force and matches(marker, want, key="config"):
            log(f"[pipeline] {name}: done already ({marker.get('finished', '?')}), skipping")
            results[name] = marker
            continue
        _check_inputs(out, STAGE_BY_NAME[name], ctx)
        log(f"[pipeline] {name}: running")
        t0 = time.time()
        summary = fns[name](ctx) or {}
        if not isinstance(summary, dict):
            raise TypeError(f"stage {name!r} returned {type(summary).__name__}; expected a dict summary")
        marker = {
            "stage": name,
            "config": want,
            "preset": cfg.name,
            "seconds": round(time.time() - t0, 2),
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "summary": jsonable(summary),
        }
        write_json_atomic(marker_path(out, name), marker)
        log(f"[pipeline] {name}: done in {marker['seconds']:.1f} s")
        results[name] = marker
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
