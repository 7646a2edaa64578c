"""The ``eval`` stage: the zero-shot foundation model, its fine-tuned versions and the expert over many seeds."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

from vpt_rl import evaluate as ev
from vpt_rl.pipeline.config import PipelineConfig
from vpt_rl.pipeline.files import file_stamp, read_json, safe_name, up_to_date, write_json_atomic

if TYPE_CHECKING:  # annotations only: the engine imports this module
    from vpt_rl.pipeline.engine import StageContext

# the agents the eval stage compares, in table order
EVAL_AGENTS = ("foundation", "foundation+bc", "foundation+rl", "random-init+rl", "expert")
"""``foundation+bc`` (the early-game fine-tuned foundation model) only when ``ft_steps > 0``"""

EVAL_SEED_OFFSET = 10_000
"""evaluation episodes play world seeds ``pipeline seed + EVAL_SEED_OFFSET + i`` (unseen in training)"""


def eval_agents(cfg: PipelineConfig) -> tuple:
    """The agents the eval stage scores under ``cfg``, in table order."""
    return tuple(a for a in EVAL_AGENTS if a != "foundation+bc" or cfg.ft_steps > 0)


def agent_checkpoints(ctx: StageContext) -> Dict[str, Optional[Tuple[Path, Path]]]:
    """``agent -> (model, weights)`` of every agent :func:`eval_agents` scores (``None`` for the expert)."""
    paths = {"foundation": ctx.foundation_paths, "foundation+bc": ctx.finetuned_paths,
             "foundation+rl": ctx.rl_paths("pretrained"), "random-init+rl": ctx.rl_paths("random"), "expert": None}
    return {name: paths[name] for name in eval_agents(ctx.cfg)}


def stage_eval(ctx: StageContext) -> Dict[str, Any]:
    """Evaluate the four agents over ``cfg.eval_episodes`` seeds; one ``eval/<agent>.json`` each (an agent
    whose file exists with the same settings is not re-run)."""
    cfg = ctx.cfg
    stale = ctx.eval_dir / f"{safe_name('foundation+bc')}.json"
    if cfg.ft_steps <= 0 and stale.is_file():
        stale.unlink()  # from an earlier run with a fine-tuning stage
    summary = {}
    for name, paths in agent_checkpoints(ctx).items():
        # an agent's result is reused only for the same settings, upstream knobs and checkpoint file
        settings = {"episodes": cfg.eval_episodes, "max_ticks": cfg.eval_max_ticks,
                    "seed": ctx.seed + EVAL_SEED_OFFSET, "env_id": ctx.env_id, "env_kwargs": ctx.env_kwargs(),
                    "pipeline": ctx.stage_config("eval"),
                    "checkpoint": None if paths is None else file_stamp(paths[1])}
        path = ctx.eval_dir / f"{safe_name(name)}.json"
        if not ctx.force and up_to_date(path, settings, key="settings"):
            summary[name] = _eval_headline(read_json(path))
            continue
        agent = ev.make_agent("expert" if paths is None else str(paths[0]),
                              weights=None if paths is None else str(paths[1]), seed=ctx.seed,
                              epsilon=0.0, device=ctx.device)
        res = ev.evaluate(agent, episodes=cfg.eval_episodes, max_ticks=cfg.eval_max_ticks, seed=settings["seed"],
                          env_id=ctx.env_id, env_kwargs=ctx.env_kwargs(), batch_size=cfg.eval_batch,
                          desc=f"eval {name}")
        res = dict(res, agent=name, settings=settings)
        write_json_atomic(path, res)
        summary[name] = _eval_headline(res)
    return summary


def _eval_headline(res: Mapping[str, Any]) -> Dict[str, Any]:
    return {"mean_return": res["mean_return"], "success": res["success"]}
