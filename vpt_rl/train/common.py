"""The old home of the training helpers, kept so that existing imports keep working.

New code imports from the module that owns each helper: :mod:`vpt_rl.train.args` (CleanRL-style ``Args``),
:mod:`vpt_rl.train.runtime` (seeding, device, LR schedule, TensorBoard, DDP), :mod:`vpt_rl.train.prior`
(head initialisation from the label prior), :mod:`vpt_rl.atomic` (atomic writes), :mod:`vpt_rl.data.video`
(``write_video``) and :mod:`vpt_rl.data.synthetic` (synthetic contractor segments).
"""
from vpt_rl.atomic import atomic_torch_save, atomic_write_text
from vpt_rl.data.synthetic import synthetic_segment, write_synthetic_segment
from vpt_rl.data.video import write_video
from vpt_rl.train.args import parse_args
from vpt_rl.train.prior import init_head_from_prior, prior_log_probs
from vpt_rl.train.runtime import (
    all_reduce_mean,
    dist_env,
    init_distributed,
    lr_at,
    resolve_device,
    seed_everything,
    summary_writer,
)

__all__ = [
    "all_reduce_mean", "atomic_torch_save", "atomic_write_text", "dist_env", "init_distributed",
    "init_head_from_prior", "lr_at", "parse_args", "prior_log_probs", "resolve_device", "seed_everything",
    "summary_writer", "synthetic_segment", "write_synthetic_segment", "write_video",
]
