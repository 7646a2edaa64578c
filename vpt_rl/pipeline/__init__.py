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

The stages are the records of :data:`STAGE_TABLE` (name, inputs, knobs, outputs, function); their
functions can be replaced (``run_pipeline(stage_fns=...)`` or :data:`STAGES`), which is how the tests
check the orchestration without training anything.

The package, one job per module: :mod:`~vpt_rl.pipeline.config` (knobs, presets, ``--set``),
:mod:`~vpt_rl.pipeline.engine` (the stage table, the context, markers, :func:`run_pipeline`),
:mod:`~vpt_rl.pipeline.files` (JSON records, the up-to-date check, segment folders), the stages
(:mod:`~vpt_rl.pipeline.stages_data`, :mod:`~vpt_rl.pipeline.stages_train`, :mod:`~vpt_rl.pipeline.stages_rl`,
:mod:`~vpt_rl.pipeline.stages_eval`), :mod:`~vpt_rl.pipeline.report` (results.md / results.json, the plots)
and :mod:`~vpt_rl.pipeline.cli` (``vpt-rl pipeline``, ``python -m vpt_rl.pipeline``).
"""

from vpt_rl.envs.registration import MINELITE_ID
from vpt_rl.pipeline.cli import build_parser, main

# The private helpers of the single-module vpt_rl.pipeline, under their old names (tests use some).
from vpt_rl.pipeline.config import _coerce  # noqa: F401
from vpt_rl.pipeline.config import BC_LABELS, PRESETS, PipelineConfig, check_knob, parse_set_items, resolve_config
from vpt_rl.pipeline.engine import (  # noqa: F401
    BACKEND_STAGES,
    BACKENDS,
    STAGE_BY_NAME,
    STAGE_INPUTS,
    STAGE_KNOBS,
    STAGE_ORDER,
    STAGE_TABLE,
    STAGES,
    Stage,
    StageContext,
    StageFn,
    _config_diff,
    _prepare_dir,
    check_run,
    marker_path,
    parse_stages,
    read_marker,
    run_pipeline,
    stage_config,
)
from vpt_rl.pipeline.files import _json_default  # noqa: F401
from vpt_rl.pipeline.files import (
    PipelineError,
)
from vpt_rl.pipeline.files import check_files as _check_files  # noqa: F401
from vpt_rl.pipeline.files import count_lines as _count_lines  # noqa: F401
from vpt_rl.pipeline.files import episode_key as _episode_key  # noqa: F401
from vpt_rl.pipeline.files import file_stamp as _file_stamp  # noqa: F401
from vpt_rl.pipeline.files import link_or_copy as _link_or_copy  # noqa: F401
from vpt_rl.pipeline.files import list_segments, matches, read_json
from vpt_rl.pipeline.files import safe_name as _safe  # noqa: F401
from vpt_rl.pipeline.files import up_to_date, write_json_atomic
from vpt_rl.pipeline.files import write_segment_index as _write_index  # noqa: F401
from vpt_rl.pipeline.files import write_text_atomic
from vpt_rl.pipeline.report import (  # noqa: F401
    _fmt,
    _rate_cell,
    collect_results,
    compare_runs,
    recipe_checks,
    results_markdown,
    stage_report,
)
from vpt_rl.pipeline.stages_data import LABELLED_ALIAS, stage_record, stage_split
from vpt_rl.pipeline.stages_eval import _eval_headline  # noqa: F401
from vpt_rl.pipeline.stages_eval import EVAL_AGENTS, eval_agents, stage_eval
from vpt_rl.pipeline.stages_rl import (  # noqa: F401
    EPISODES_CSV,
    RL_SEED_OFFSET,
    _finetune,
    _stale_run,
    _tensorboard_curve,
    read_learning_curve,
    stage_rl,
)
from vpt_rl.pipeline.stages_train import label_accuracy, stage_bc, stage_finetune, stage_idm, stage_label

__all__ = [
    "MINELITE_ID",
    "build_parser",
    "main",
    "BC_LABELS",
    "PRESETS",
    "PipelineConfig",
    "check_knob",
    "parse_set_items",
    "resolve_config",
    "BACKEND_STAGES",
    "BACKENDS",
    "STAGE_BY_NAME",
    "STAGE_INPUTS",
    "STAGE_KNOBS",
    "STAGE_ORDER",
    "STAGE_TABLE",
    "STAGES",
    "Stage",
    "StageContext",
    "StageFn",
    "check_run",
    "marker_path",
    "parse_stages",
    "read_marker",
    "run_pipeline",
    "stage_config",
    "PipelineError",
    "list_segments",
    "matches",
    "read_json",
    "up_to_date",
    "write_json_atomic",
    "write_text_atomic",
    "collect_results",
    "compare_runs",
    "recipe_checks",
    "results_markdown",
    "stage_report",
    "LABELLED_ALIAS",
    "stage_record",
    "stage_split",
    "EVAL_AGENTS",
    "eval_agents",
    "stage_eval",
    "EPISODES_CSV",
    "RL_SEED_OFFSET",
    "read_learning_curve",
    "stage_rl",
    "label_accuracy",
    "stage_bc",
    "stage_finetune",
    "stage_idm",
    "stage_label",
]
